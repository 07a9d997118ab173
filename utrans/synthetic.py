"""A small, physically plausible STEAD-like synthetic dataset.

:func:`write_synthetic_dataset` writes local earthquakes and noise traces in a
California box in the STEAD merged layout (HDF5 + CSV), the U-Trans
DataCollected layout and (optionally) a SeisBench WaveformDataset, with
train/valid/test split files. It is the data of the demo and of the tests.

The physics is deliberately simple but consistent, so every task is learnable:

* station and event coordinates in the box; epicentral distance 5-110 km,
  depth 0-114.5 km (skewed shallow);
* straight rays in a constant-velocity medium (vp 6.2 km/s, vs 3.6 km/s):
  S-P time grows with hypocentral distance;
* S amplitude from magnitude and distance
  (``log10 A = 0.7 M - log10 R + 2.5``, noise standard deviation ~1), so the
  signal-to-noise ratio carries magnitude (the weakest events sit near the
  noise, most are clear, as in a curated catalogue such as STEAD); coda
  duration grows with magnitude and the corner frequency falls with it;
* the P arrival is a one-sided (Brune-type) velocity pulse: its first lobe,
  half a period long, has the sign of the polarity (``'U'``/``'D'``) on Z and
  dominates the arrival; an incoherent band-limited P coda follows. The
  horizontal P particle motion points away from the event (compression) or
  towards it (dilatation), along the back-azimuth; its ratio to Z is the
  tangent of the incidence angle, the straight ray refracted towards the
  vertical by a slower near-surface layer (3.5 km/s), so Z carries most of the
  P energy and depth shows in H/V as well as in S-P;
* S is polarised transversely, decays exponentially to the coda end;
* noise traces are coloured Gaussian noise; some repeat the vertical channel
  on all components, as some STEAD noise traces do.

Waveforms are stored as float32 ``(6000, 3)`` in E, N, Z order at 100 Hz.
"""

from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from obspy.geodetics import gps2dist_azimuth

logger = logging.getLogger(__name__)

__all__ = ["CALIFORNIA_BOX", "synthesize_records", "write_synthetic_dataset",
           "write_datacollected", "write_stead", "write_seisbench"]

#: The default region: (lat_min, lat_max, lon_min, lon_max) in degrees.
CALIFORNIA_BOX = {"lat_min": 32.5, "lat_max": 42.0, "lon_min": -124.5, "lon_max": -114.0}

_KM_PER_DEG = 111.19


def _bandlimited(rng, n, length, fmin, fmax, fs):
    """``n`` unit-std band-limited Gaussian noise series of ``length`` samples."""
    spec = rng.standard_normal((n, length // 2 + 1)) + 1j * rng.standard_normal((n, length // 2 + 1))
    freqs = np.fft.rfftfreq(length, 1.0 / fs)
    fmin = np.broadcast_to(np.asarray(fmin, dtype=float), (n,))[:, None]
    fmax = np.broadcast_to(np.asarray(fmax, dtype=float), (n,))[:, None]
    mask = (freqs[None, :] >= fmin) & (freqs[None, :] <= fmax)
    out = np.fft.irfft(spec * mask, n=length, axis=-1)
    out /= out.std(axis=-1, keepdims=True) + 1e-12
    return out


def synthesize_records(n_events=300, n_noise=60, seed=0, box=None, dim=6000, sampling_rate=100.0):
    """Simulate traces and their metadata in memory.

    Args:
        n_events: number of earthquake traces.
        n_noise: number of noise traces.
        seed: random seed.
        box: region dict (``lat_min``, ``lat_max``, ``lon_min``, ``lon_max``);
            :data:`CALIFORNIA_BOX` by default.
        dim: samples per trace.
        sampling_rate: Hz.

    Returns:
        list of dicts with ``waveform`` (float32 ``(dim, 3)`` E, N, Z) and the
        metadata fields (``trace_name``, ``category``, picks, coordinates, ...).
    """
    box = dict(CALIFORNIA_BOX if box is None else box)
    rng = np.random.default_rng(seed)
    fs = float(sampling_rate)
    t = np.arange(dim) / fs
    vp, vs = 6.2, 3.6
    vp_surface = 3.5
    records = []
    t0 = _dt.datetime(2020, 1, 1)
    n_stations = max(8, (n_events + n_noise) // 10)
    st_lat = rng.uniform(box["lat_min"] + 0.5, box["lat_max"] - 0.5, n_stations)
    st_lon = rng.uniform(box["lon_min"] + 0.5, box["lon_max"] - 0.5, n_stations)
    st_noise = rng.uniform(0.6, 1.6, n_stations)

    for k in range(n_events + n_noise):
        is_noise = k >= n_events
        sta = int(rng.integers(n_stations))
        code, net = f"S{sta:03d}", "SY"
        when = t0 + _dt.timedelta(seconds=int(k * 3607 + rng.integers(0, 3600)))
        name = f"{code}.{net}_{when:%Y%m%d%H%M%S}_{'NO' if is_noise else 'EV'}"
        # coloured background noise, per channel
        sigma = st_noise[sta]
        noise = _bandlimited(rng, 3, dim, 0.5, 20.0, fs) * sigma
        rec = {
            "trace_name": name, "station_code": code, "network_code": net,
            "station_lat": float(st_lat[sta]), "station_lon": float(st_lon[sta]),
            "station_elev_m": float(rng.uniform(0, 1500)),
            "trace_start_time": when.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "sampling_rate": fs,
        }
        if is_noise:
            if rng.random() < 0.2:
                noise[0] = noise[2]
                noise[1] = noise[2]
            rec.update(category="noise", waveform=np.ascontiguousarray(noise.T, dtype=np.float32))
            records.append(rec)
            continue

        mag = float(rng.uniform(0.5, 4.5))
        dist = float(rng.uniform(5.0, 110.0))
        depth = float(114.5 * rng.beta(1.1, 2.6))
        azi = float(rng.uniform(0.0, 360.0))  # direction station -> event
        ev_lat = rec["station_lat"] + dist * np.cos(np.radians(azi)) / _KM_PER_DEG
        ev_lon = rec["station_lon"] + dist * np.sin(np.radians(azi)) / (
            _KM_PER_DEG * np.cos(np.radians(rec["station_lat"])))
        dist_m, _az, baz = gps2dist_azimuth(ev_lat, ev_lon, rec["station_lat"], rec["station_lon"])
        dist = dist_m / 1000.0
        hypo = float(np.hypot(dist, depth))
        sp_sec = hypo / vs - hypo / vp
        p_samp = int(rng.integers(int(3 * fs), int(18 * fs)))
        s_samp = p_samp + int(round(sp_sec * fs))
        coda_len = int((2.0 + 2.5 * mag + 0.6 * sp_sec) * fs)
        coda_end = min(s_samp + coda_len, dim - int(3 * fs))
        pol = 1.0 if rng.random() < 0.5 else -1.0

        amp_s = 10.0 ** (0.7 * mag - np.log10(hypo) + 2.5) * float(rng.uniform(0.8, 1.25))
        amp_p = amp_s / float(rng.uniform(1.5, 2.5))
        fp = float(np.clip(12.0 - 1.6 * mag + rng.normal(0, 0.5), 3.0, 15.0))
        fsw = fp * 0.6
        # P: a one-sided (Brune-type) velocity pulse whose first lobe, half a period of
        # fp long, carries the polarity and dominates the arrival, then an incoherent
        # band-limited coda (no preferred sign) that builds up after the first lobe
        tau = t - p_samp / fs
        on = tau >= 0
        tau_c = np.where(on, tau, 0.0)
        lobe = 0.5 / fp
        rise = 1 - np.exp(-tau_c / (0.25 * lobe))
        pulse = on * rise * (1 - tau_c / lobe) * np.exp(-tau_c / lobe)
        pulse /= np.abs(pulse).max()
        env_p = on * np.exp(-tau_c / (0.8 + 0.4 * mag))
        bl = _bandlimited(rng, 3, dim, fp * 0.5, fp * 1.5, fs)
        pwave = pulse + 0.3 * env_p * bl[0] * np.clip(tau_c * fp - 0.5, 0, 1)
        # S: transverse band-limited burst decaying to the coda end
        tau_s = t - s_samp / fs
        on_s = tau_s >= 0
        tau_sc = np.where(on_s, tau_s, 0.0)
        decay = max((coda_end - s_samp) / fs / 4.0, 0.5)
        env_s = on_s * (1 - np.exp(-tau_sc / 0.1)) * np.exp(-tau_sc / decay)
        sh = env_s * _bandlimited(rng, 1, dim, fsw * 0.5, fsw * 1.5, fs)[0]
        sv = env_s * bl[1] * 0.4
        sz = env_s * bl[2] * 0.25
        # geometry: straight ray to the station, refracted towards the vertical by the
        # slower near-surface layer (vp0 = 3.5 km/s); radial direction = propagation
        sin_i = (vp_surface / vp) * dist / hypo
        cos_i = float(np.sqrt(1.0 - sin_i ** 2))
        prop = np.radians(baz + 180.0)
        ue, un = np.sin(prop), np.cos(prop)  # radial unit vector (away from event)
        te, tn = np.cos(prop), -np.sin(prop)  # transverse unit vector
        radial = pol * amp_p * sin_i * pwave + amp_s * sv
        transverse = amp_s * sh
        vertical = pol * amp_p * cos_i * pwave + amp_s * sz
        sig = np.stack([radial * ue + transverse * te, radial * un + transverse * tn, vertical])
        wave = sig + noise
        sig_pow = (sig[:, p_samp:coda_end] ** 2).mean(axis=1) + 1e-12
        noise_pow = (noise[:, :p_samp] ** 2).mean(axis=1) + 1e-12
        snr = 10 * np.log10(sig_pow / noise_pow)
        rec.update(
            category="earthquake_local", waveform=np.ascontiguousarray(wave.T, dtype=np.float32),
            p_arrival_sample=float(p_samp), s_arrival_sample=float(s_samp),
            coda_end_sample=float(coda_end), snr_db=snr.astype(np.float64),
            magnitude=round(mag, 2), magnitude_type="ml", depth_km=round(depth, 3),
            event_lat=float(ev_lat), event_lon=float(ev_lon), distance_km=float(dist),
            back_azimuth_deg=float(baz), polarity="U" if pol > 0 else "D",
            p_travel_sec=hypo / vp,
            source_id=f"syn{k:06d}",
            origin_time=(when + _dt.timedelta(seconds=p_samp / fs - hypo / vp)).strftime(
                "%Y-%m-%d %H:%M:%S.%f"),
        )
        records.append(rec)
    return records


def write_datacollected(path, records):
    """Write records in the U-Trans DataCollected layout (one group per trace).

    Args:
        path: output HDF5 file.
        records: output of :func:`synthesize_records`.

    Returns:
        the path.
    """
    path = Path(path)
    with h5py.File(path, "w") as f:
        for r in records:
            g = f.create_group(r["trace_name"])
            g.create_dataset("data", data=r["waveform"])
            eq = r["category"] != "noise"
            a = g.attrs
            a["p_arrival_sample"] = r["p_arrival_sample"] if eq else "None"
            a["s_arrival_sample"] = r["s_arrival_sample"] if eq else "None"
            a["coda_end_sample"] = r["coda_end_sample"] if eq else "None"
            a["snr_db"] = r["snr_db"] if eq else "None"
            a["depth"] = r["depth_km"] if eq else "None"
            a["magnitude"] = r["magnitude"] if eq else "None"
            a["magnitude_type"] = r["magnitude_type"] if eq else "None"
            a["event_lat"] = r["event_lat"] if eq else "None"
            a["event_long"] = r["event_lon"] if eq else "None"
            a["station_lat"] = r["station_lat"]
            a["station_long"] = r["station_lon"]
            a["data_category"] = "earthquake" if eq else "noise"
            a["P_polarity"] = r["polarity"] if eq else "None"
            a["event_label"] = 1 if eq else 0
            a["AI_Set"] = "SYNTHETIC"
    return path


_STEAD_COLUMNS = [
    "network_code", "receiver_code", "receiver_type", "receiver_latitude", "receiver_longitude",
    "receiver_elevation_m", "p_arrival_sample", "p_status", "p_weight", "p_travel_sec",
    "s_arrival_sample", "s_status", "s_weight", "source_id", "source_origin_time",
    "source_origin_uncertainty_sec", "source_latitude", "source_longitude", "source_error_sec",
    "source_gap_deg", "source_horizontal_uncertainty_km", "source_depth_km",
    "source_depth_uncertainty_km", "source_magnitude", "source_magnitude_type",
    "source_magnitude_author", "source_mechanism_strike_dip_rake", "source_distance_deg",
    "source_distance_km", "back_azimuth_deg", "snr_db", "coda_end_sample", "trace_start_time",
    "trace_category", "trace_name",
]


def _stead_row(r):
    eq = r["category"] != "noise"
    none = "None"
    return {
        "network_code": r["network_code"], "receiver_code": r["station_code"], "receiver_type": "HH",
        "receiver_latitude": r["station_lat"], "receiver_longitude": r["station_lon"],
        "receiver_elevation_m": r["station_elev_m"],
        "p_arrival_sample": r["p_arrival_sample"] if eq else none,
        "p_status": "manual" if eq else none, "p_weight": 0.8 if eq else none,
        "p_travel_sec": r["p_travel_sec"] if eq else none,
        "s_arrival_sample": r["s_arrival_sample"] if eq else none,
        "s_status": "manual" if eq else none, "s_weight": 0.8 if eq else none,
        "source_id": r["source_id"] if eq else none,
        "source_origin_time": r["origin_time"] if eq else none,
        "source_origin_uncertainty_sec": 0.1 if eq else none,
        "source_latitude": r["event_lat"] if eq else none,
        "source_longitude": r["event_lon"] if eq else none,
        "source_error_sec": none, "source_gap_deg": none,
        "source_horizontal_uncertainty_km": none,
        "source_depth_km": r["depth_km"] if eq else none,
        "source_depth_uncertainty_km": none,
        "source_magnitude": r["magnitude"] if eq else none,
        "source_magnitude_type": r["magnitude_type"] if eq else none,
        "source_magnitude_author": "SYN" if eq else none,
        "source_mechanism_strike_dip_rake": none,
        "source_distance_deg": round(r["distance_km"] / _KM_PER_DEG, 4) if eq else none,
        "source_distance_km": round(r["distance_km"], 2) if eq else none,
        "back_azimuth_deg": round(r["back_azimuth_deg"], 1) if eq else none,
        "snr_db": r["snr_db"] if eq else none,
        "coda_end_sample": np.array([[r["coda_end_sample"]]]) if eq else none,
        "trace_start_time": r["trace_start_time"],
        "trace_category": r["category"],
        "trace_name": r["trace_name"],
    }


def write_stead(path, records, csv_path=None):
    """Write records in the STEAD merged layout (``data/<trace_name>`` + CSV).

    Args:
        path: output HDF5 file.
        records: output of :func:`synthesize_records`.
        csv_path: CSV path; by default beside the HDF5 file with the same stem.

    Returns:
        ``(hdf5_path, csv_path)``.
    """
    path = Path(path)
    csv_path = Path(csv_path) if csv_path is not None else path.with_suffix(".csv")
    rows = []
    with h5py.File(path, "w") as f:
        grp = f.create_group("data")
        for r in records:
            row = _stead_row(r)
            ds = grp.create_dataset(r["trace_name"], data=r["waveform"])
            for key in _STEAD_COLUMNS:
                ds.attrs[key] = row[key]
            csv_row = dict(row)
            if r["category"] != "noise":
                csv_row["snr_db"] = "[" + " ".join(f"{v:.2f}" for v in r["snr_db"]) + "]"
                csv_row["coda_end_sample"] = f"[[{r['coda_end_sample']:.1f}]]"
            else:
                csv_row = {k: (np.nan if v == "None" else v) for k, v in csv_row.items()}
            rows.append(csv_row)
    pd.DataFrame(rows, columns=_STEAD_COLUMNS).to_csv(csv_path, index=False)
    return path, csv_path


def write_seisbench(folder, records, splits=None, bucket_size=64, component_order="ZNE"):
    """Write records as a SeisBench WaveformDataset with bucketed ``(C, W)`` traces.

    Args:
        folder: output folder (``metadata.csv`` + ``waveforms.hdf5``).
        records: output of :func:`synthesize_records`.
        splits: optional dict trace_name -> 'train'/'dev'/'test'.
        bucket_size: traces per bucket.
        component_order: component order written to ``data_format``.

    Returns:
        the folder path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    perm = ["ENZ".index(c) for c in component_order]
    rows = []
    with h5py.File(folder / "waveforms.hdf5", "w") as f:
        fmt = f.create_group("data_format")
        fmt.create_dataset("dimension_order", data="CW")
        fmt.create_dataset("component_order", data=component_order)
        fmt.create_dataset("sampling_rate", data=100.0)
        data = f.create_group("data")
        for b0 in range(0, len(records), bucket_size):
            chunk = records[b0:b0 + bucket_size]
            width = max(r["waveform"].shape[0] for r in chunk)
            arr = np.zeros((len(chunk), 3, width), dtype=np.float32)
            for i, r in enumerate(chunk):
                w = r["waveform"][:, perm].T
                arr[i, :, :w.shape[1]] = w
                eq = r["category"] != "noise"
                rows.append({
                    "trace_name": f"bucket{b0 // bucket_size}${i},:3,:{w.shape[1]}",
                    "trace_name_original": r["trace_name"],
                    "trace_category": r["category"],
                    "trace_sampling_rate_hz": 100.0,
                    "trace_start_time": r["trace_start_time"],
                    "trace_p_arrival_sample": r["p_arrival_sample"] if eq else np.nan,
                    "trace_s_arrival_sample": r["s_arrival_sample"] if eq else np.nan,
                    "trace_coda_end_sample": f"[[{r['coda_end_sample']:.1f}]]" if eq else np.nan,
                    "trace_snr_db": ("[" + " ".join(f"{v:.2f}" for v in r["snr_db"]) + "]") if eq else np.nan,
                    "trace_polarity": r["polarity"] if eq else np.nan,
                    "source_id": r["source_id"] if eq else np.nan,
                    "source_latitude_deg": r["event_lat"] if eq else np.nan,
                    "source_longitude_deg": r["event_lon"] if eq else np.nan,
                    "source_depth_km": r["depth_km"] if eq else np.nan,
                    "source_magnitude": r["magnitude"] if eq else np.nan,
                    "source_magnitude_type": r["magnitude_type"] if eq else np.nan,
                    "station_code": r["station_code"], "station_network_code": r["network_code"],
                    "station_latitude_deg": r["station_lat"], "station_longitude_deg": r["station_lon"],
                    "station_elevation_m": r["station_elev_m"],
                    "path_ep_distance_km": r["distance_km"] if eq else np.nan,
                    "path_back_azimuth_deg": r["back_azimuth_deg"] if eq else np.nan,
                    "split": (splits or {}).get(r["trace_name"], "train"),
                })
            data.create_dataset(f"bucket{b0 // bucket_size}", data=arr)
    pd.DataFrame(rows).to_csv(folder / "metadata.csv", index=False)
    return folder


def write_synthetic_dataset(out_dir, n_events=300, n_noise=60, seed=0,
                            layouts=("datacollected", "stead", "seisbench"),
                            fractions=(0.7, 0.15, 0.15), box=None, dim=6000):
    """Write the synthetic dataset in the requested layouts with split files.

    Args:
        out_dir: output folder (created).
        n_events: number of earthquake traces.
        n_noise: number of noise traces.
        seed: random seed (same seed, same files).
        layouts: any of ``'datacollected'``, ``'stead'``, ``'seisbench'``.
        fractions: train/valid/test fractions.
        box: region; :data:`CALIFORNIA_BOX` by default.
        dim: samples per trace.

    Returns:
        dict with ``'datacollected'`` (HDF5 path), ``'stead'`` (HDF5 path),
        ``'stead_csv'``, ``'seisbench'`` (folder) for the layouts written;
        ``'train'``, ``'valid'``, ``'test'``: ``.npy`` files of earthquake trace
        IDs (as the reference ``*_Events.npy``); ``'train_all'``,
        ``'valid_all'``, ``'test_all'``: the same splits plus noise traces;
        ``'box'``: the region; ``'n_events'``, ``'n_noise'``, ``'max_d'``,
        ``'min_d'``.
    """
    unknown = set(layouts) - {"datacollected", "stead", "seisbench"}
    if unknown:
        raise ValueError(f"Unknown layouts. Received: layouts={tuple(layouts)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    box = dict(CALIFORNIA_BOX if box is None else box)
    records = synthesize_records(n_events, n_noise, seed=seed, box=box, dim=dim)
    rng = np.random.default_rng(seed + 1)
    result = {"box": box, "n_events": n_events, "n_noise": n_noise, "max_d": 114.5, "min_d": 1e-5}

    def split(names):
        names = list(names)
        order = rng.permutation(len(names))
        n_tr = int(round(fractions[0] * len(names)))
        n_va = int(round(fractions[1] * len(names)))
        parts = (order[:n_tr], order[n_tr:n_tr + n_va], order[n_tr + n_va:])
        return [[names[i] for i in sorted(p)] for p in parts]

    ev = split(r["trace_name"] for r in records if r["category"] != "noise")
    no = split(r["trace_name"] for r in records if r["category"] == "noise")
    split_of = {}
    for key, sb, e, n in zip(("train", "valid", "test"), ("train", "dev", "test"), ev, no):
        np.save(out / f"{key}_Events.npy", np.array(e))
        np.save(out / f"{key}_All.npy", np.array(e + n))
        result[key] = out / f"{key}_Events.npy"
        result[f"{key}_all"] = out / f"{key}_All.npy"
        split_of.update({name: sb for name in e + n})

    if "datacollected" in layouts:
        result["datacollected"] = write_datacollected(out / "DataCollected.hdf5", records)
    if "stead" in layouts:
        result["stead"], result["stead_csv"] = write_stead(out / "merged.hdf5", records)
    if "seisbench" in layouts:
        result["seisbench"] = write_seisbench(out / "seisbench", records, splits=split_of)
    logger.info("Wrote %d earthquake and %d noise traces to %s", n_events, n_noise, out)
    return result
