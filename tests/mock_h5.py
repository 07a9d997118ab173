"""Builders of small HDF5 files in the three on-disk layouts, with their real quirks.

Every mock waveform has a recognisable signature so tests can check channel
order and pick positions: column E holds 1.0, N holds 2.0, Z holds 3.0, and a
spike of +100 sits on every channel at the P sample (earthquakes only).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

DIM = 6000


def mock_wave(p=None, dim=DIM, spike=100.0):
    """A (dim, 3) E, N, Z float32 trace: constant 1/2/3 per channel, spike at ``p`` (when inside)."""
    w = np.empty((dim, 3), dtype=np.float32)
    w[:, 0], w[:, 1], w[:, 2] = 1.0, 2.0, 3.0
    if p is not None and 0 <= p < dim:
        w[int(p), :] += spike
    return w


def event_rows(n_events=6, n_noise=2):
    """Plain-python metadata rows for the mocks (with NaN / negative depths)."""
    rows = []
    for i in range(n_events):
        rows.append({
            "name": f"ST{i:02d}.XX_2019010100{i:02d}00_EV", "eq": True,
            "p": 700.0 + 100 * i, "s": 1500.0 + 150 * i, "coda": 3000.0 + 100 * i,
            "snr": np.array([30.0 + i, 25.0, 20.0]),
            "mag": 1.0 + 0.5 * i,
            "depth": [-1.2, 10.0, 57.25, 114.5, float("nan"), 20.0][i % 6],
            "ev_lat": 35.0 + 0.1 * i, "ev_lon": -118.0 - 0.1 * i,
            "st_lat": 35.3 + 0.05 * i, "st_lon": -117.8,
            "pol": "U" if i % 2 == 0 else "D",
            "baz_reported": 999.0,  # a wrong stored value, as in some STEAD rows
        })
    for j in range(n_noise):
        rows.append({"name": f"NS{j:02d}.XX_2019010200{j:02d}00_NO", "eq": False,
                     "st_lat": 36.0, "st_lon": -119.0})
    return rows


def make_stead(folder, rows=None, waves=None, csv=True):
    """STEAD merged layout: ``data/<name>`` datasets with attributes (+ CSV)."""
    folder = Path(folder)
    rows = rows if rows is not None else event_rows()
    path = folder / "merge.hdf5"
    table = []
    with h5py.File(path, "w") as f:
        g = f.create_group("data")
        for r in rows:
            w = waves[r["name"]] if waves and r["name"] in waves else mock_wave(r.get("p"))
            ds = g.create_dataset(r["name"], data=w)
            a = ds.attrs
            a["receiver_latitude"] = r["st_lat"]
            a["receiver_longitude"] = r["st_lon"]
            a["receiver_code"] = r["name"].split(".")[0]
            a["network_code"] = "XX"
            a["trace_name"] = r["name"]
            if r["eq"]:
                a["p_arrival_sample"] = r["p"]
                a["s_arrival_sample"] = r["s"]
                a["coda_end_sample"] = np.array([[r["coda"]]])
                a["snr_db"] = r["snr"]
                a["source_magnitude"] = r["mag"]
                a["source_depth_km"] = r["depth"] if np.isfinite(r["depth"]) else "None"
                a["source_latitude"] = r["ev_lat"]
                a["source_longitude"] = r["ev_lon"]
                a["back_azimuth_deg"] = r["baz_reported"]
                a["trace_category"] = "earthquake_local"
            else:
                for k in ("p_arrival_sample", "s_arrival_sample", "coda_end_sample", "snr_db",
                          "source_magnitude", "source_depth_km", "source_latitude",
                          "source_longitude", "back_azimuth_deg"):
                    a[k] = "None"
                a["trace_category"] = "noise"
            table.append({
                "trace_name": r["name"], "receiver_latitude": r["st_lat"],
                "receiver_longitude": r["st_lon"], "receiver_code": r["name"].split(".")[0],
                "network_code": "XX",
                "p_arrival_sample": r.get("p", np.nan), "s_arrival_sample": r.get("s", np.nan),
                "coda_end_sample": f"[[{r['coda']}]]" if r["eq"] else np.nan,
                "snr_db": ("[" + " ".join(str(v) for v in r["snr"]) + "]") if r["eq"] else np.nan,
                "source_magnitude": r.get("mag", np.nan), "source_depth_km": r.get("depth", np.nan),
                "source_latitude": r.get("ev_lat", np.nan), "source_longitude": r.get("ev_lon", np.nan),
                "back_azimuth_deg": r.get("baz_reported", np.nan),
                "trace_category": "earthquake_local" if r["eq"] else "noise",
            })
    if csv:
        pd.DataFrame(table).to_csv(path.with_suffix(".csv"), index=False)
    return path


def make_datacollected(folder, rows=None, waves=None, name="DataCollected.hdf5"):
    """U-Trans DataCollected layout: one group per trace, attributes on the group."""
    folder = Path(folder)
    rows = rows if rows is not None else event_rows()
    path = folder / name
    with h5py.File(path, "w") as f:
        for r in rows:
            g = f.create_group(r["name"])
            w = waves[r["name"]] if waves and r["name"] in waves else mock_wave(r.get("p"))
            g.create_dataset("data", data=w)
            a = g.attrs
            a["station_lat"] = r["st_lat"]
            a["station_long"] = r["st_lon"]
            if r["eq"]:
                a["data_category"] = "earthquake"
                a["p_arrival_sample"] = r["p"]
                a["s_arrival_sample"] = r["s"]
                a["coda_end_sample"] = r["coda"]
                a["snr_db"] = r["snr"]
                a["magnitude"] = r["mag"]
                a["depth"] = r["depth"]
                a["event_lat"] = r["ev_lat"]
                a["event_long"] = r["ev_lon"]
                a["P_polarity"] = r["pol"]
            else:
                a["data_category"] = "noise"
                for k in ("p_arrival_sample", "s_arrival_sample", "coda_end_sample", "snr_db",
                          "magnitude", "depth", "event_lat", "event_long", "P_polarity"):
                    a[k] = "None"
    return path


def make_seisbench(folder, rows=None, bucketed=True, component_order="ZNE", dimension_order="CW"):
    """SeisBench WaveformDataset: metadata.csv + waveforms.hdf5, optionally bucketed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = rows if rows is not None else event_rows()
    perm = ["ENZ".index(c) for c in component_order]
    meta = []
    with h5py.File(folder / "waveforms.hdf5", "w") as f:
        fmt = f.create_group("data_format")
        fmt.create_dataset("dimension_order", data=dimension_order)
        fmt.create_dataset("component_order", data=component_order)
        data = f.create_group("data")
        stored = []
        for r in rows:
            w = mock_wave(r.get("p"))[:, perm]
            stored.append(w.T if dimension_order == "CW" else w)
        if bucketed:
            # zero padded bucket, traces stored (C, W)
            bucket = np.zeros((len(rows), 3, DIM + 100), dtype=np.float32)
            for i, w in enumerate(stored):
                bucket[i, :, :DIM] = w if dimension_order == "CW" else w.T
            data.create_dataset("bucket0", data=bucket)
            names = [f"bucket0${i},:3,:{DIM}" for i in range(len(rows))]
        else:
            names = [r["name"] for r in rows]
            for name, w in zip(names, stored):
                data.create_dataset(name, data=w)
    for name, r in zip(names, rows):
        meta.append({
            "trace_name": name, "trace_name_original": r["name"],
            "station_latitude_deg": r["st_lat"], "station_longitude_deg": r["st_lon"],
            "trace_p_arrival_sample": r.get("p", np.nan), "trace_s_arrival_sample": r.get("s", np.nan),
            "trace_coda_end_sample": f"[[{r['coda']}]]" if r["eq"] else np.nan,
            "trace_snr_db": ("|".join(str(v) for v in r["snr"])) if r["eq"] else np.nan,
            "source_magnitude": r.get("mag", np.nan), "source_depth_km": r.get("depth", np.nan),
            "source_latitude_deg": r.get("ev_lat", np.nan), "source_longitude_deg": r.get("ev_lon", np.nan),
            "trace_P_polarity": {"U": "positive", "D": "negative"}.get(r.get("pol"), ""),
            "trace_category": "earthquake_local" if r["eq"] else "noise",
            "trace_sampling_rate_hz": 100.0,
            "split": "train",
        })
    pd.DataFrame(meta).to_csv(folder / "metadata.csv", index=False)
    return folder
