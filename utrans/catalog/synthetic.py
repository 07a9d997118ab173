"""A synthetic seismic network with a known catalogue, for testing the catalogue chain.

:func:`write_synthetic_network` writes, in a few seconds:

* ``sds/``: continuous 100 Hz three-component records (``HHZ``, ``HHN``,
  ``HHE``, int32 counts, Steim-2 miniSEED) in ObsPy's SDS layout
  (``YEAR/NET/STA/CHAN.D/NET.STA.LOC.CHAN.D.YEAR.DOY``), one file per channel
  and day;
* ``stations.xml``: StationXML of the network;
* ``catalogue.csv``: the true events (``event_id, time, latitude, longitude,
  depth_km, magnitude``);
* ``arrivals.csv``: the true arrivals (``event_id, trace_id, phase, time,
  distance_km, back_azimuth_deg, polarity``).

**Network and events.** ``n_stations`` stations are spread uniformly over a
square of ``aperture_km`` around ``center`` (no two closer than a tenth of
the aperture), 0-800 m above sea level; ``n_events`` events at uniform times
in ``duration_s`` (at least ``min_gap_s`` apart), epicentres uniform over
the network's square, depths 2-15 km, magnitudes from a Gutenberg-Richter
law (b = 1) between 1.5 and 4.0.

**Records.** The shapes are those of a real local earthquake: ObsPy's
example record (``obspy.read()``, BW.RJOB, 100 Hz), band-passed 1-20 Hz and
cut into its P part (from P, 00:20:07.70, to just before S, with a decaying
P coda built from the S coda at a third of the P amplitude) and its S part
(from S, 00:20:08.62, to the end, tapered). Each is placed at the travel
time of its phase from the known velocity model, its horizontals rotated
from the example's back-azimuth (estimated from the example's P particle
motion) to the station's, its sign set by a vertical strike-slip mechanism
of random strike (``polarity``), and its amplitude scaled from the example
(taken as magnitude 2.0 at the hypocentral distance of its S-P time) by the
magnitude and the Hutton & Boore (1987) distance term,
``A ~ 10**M * r**-1.11 * 10**(-0.00189 r)``, times a station site factor.
The noise has the amplitude spectrum and the level (in counts) of the
example's quiet end (its last 12 s: microseism and 1-20 Hz noise of about
15 counts against the example's 1500-count peak), random phases, times a
station factor (log-normal, sigma 0.3): a magnitude 1 event stands out of
the noise at 10 km and is lost in it at 40 km.

:func:`synthetic_picks` turns a true catalogue into the picks table a picker
would give: every arrival picked with a probability, its time blurred,
false picks added, and each P pick characterised (magnitude, back-azimuth,
distance, polarity) with noise, in the column names of
``utrans.annotate.characterize`` for a model called ``synthetic``.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib

import numpy as np
import obspy
import pandas as pd
from obspy.clients.filesystem.sds import SDS_FMTSTR
from obspy.core.inventory import Channel, Inventory, Network, Site, Station
from obspy.signal.rotate import rotate_ne_rt, rotate_rt_ne
from scipy.signal import welch

from utrans.catalog.velocity import parse_velocity
from utrans.core.errors import CatalogError
from utrans.core.io import atomic_write, write_csv
from utrans.processing.geodesy import distance_azimuth

__all__ = ["SyntheticNetwork", "synthetic_arrivals", "synthetic_events", "synthetic_picks",
           "synthetic_stations", "synthetic_waveforms", "write_sds", "write_synthetic_network"]

logger = logging.getLogger(__name__)

_KM_PER_DEG = 111.195
_TEMPLATE_P = obspy.UTCDateTime("2009-08-24T00:20:07.70")
_TEMPLATE_S = obspy.UTCDateTime("2009-08-24T00:20:08.62")
_TEMPLATE_MAGNITUDE = 2.0
SAMPLING_RATE = 100.0
DEFAULT_START = obspy.UTCDateTime("2024-03-01T00:00:00")


def _offsets_to_degrees(center, east_km, north_km):
    lat = center[0] + np.asarray(north_km) / _KM_PER_DEG
    lon = center[1] + np.asarray(east_km) / (_KM_PER_DEG * np.cos(np.radians(center[0])))
    return lat, lon


def synthetic_stations(n_stations=10, aperture_km=50.0, center=(47.5, 12.0), network="SY",
                       seed=0):
    """Station table of a synthetic network (module doc).

    Args:
        n_stations: number of stations.
        aperture_km: side of the square they are spread over, km.
        center: ``(latitude, longitude)`` of the square's centre.
        network: network code.
        seed: random seed.

    Returns:
        DataFrame ``network, station, latitude, longitude, elevation_m``.
    """
    rng = np.random.default_rng(seed)
    spacing = aperture_km / 10.0
    points = []
    while len(points) < n_stations:
        p = rng.uniform(-aperture_km / 2, aperture_km / 2, 2)
        if all(np.hypot(*(p - q)) >= spacing for q in points):
            points.append(p)
    points = np.array(points)
    lat, lon = _offsets_to_degrees(center, points[:, 0], points[:, 1])
    return pd.DataFrame({"network": network, "station": [f"S{k:02d}" for k in range(n_stations)],
                         "latitude": np.round(lat, 5), "longitude": np.round(lon, 5),
                         "elevation_m": np.round(rng.uniform(0.0, 800.0, n_stations), 1)})


def synthetic_events(stations, n_events=20, duration_s=10800.0, start=DEFAULT_START,
                     min_gap_s=60.0, depth_km=(2.0, 15.0), magnitude=(1.5, 4.0), seed=0):
    """True catalogue of synthetic events over the stations' area (module doc).

    Args:
        stations: station table.
        n_events: number of events.
        duration_s: time span, s.
        start: ``obspy.UTCDateTime`` (or text) of the span's start.
        min_gap_s: least time between two origins, s.
        depth_km: ``(shallowest, deepest)``.
        magnitude: ``(smallest, largest)``; Gutenberg-Richter with b = 1.
        seed: random seed.

    Returns:
        DataFrame ``event_id, time, latitude, longitude, depth_km, magnitude``
        sorted by time (``time`` ISO text).
    """
    rng = np.random.default_rng(seed)
    start = obspy.UTCDateTime(start)
    if n_events * min_gap_s >= duration_s:
        raise CatalogError(f"{n_events} events at least {min_gap_s} s apart do not fit in "
                           f"{duration_s} s. Received: n_events={n_events}, duration_s={duration_s}")
    # Origins at least min_gap_s apart: uniform gaps in the slack, sorted.
    slack = duration_s - 60.0 - n_events * min_gap_s
    offsets = np.sort(rng.uniform(0.0, slack, n_events)) + np.arange(n_events) * min_gap_s + 10.0
    lat = rng.uniform(stations["latitude"].min(), stations["latitude"].max(), n_events)
    lon = rng.uniform(stations["longitude"].min(), stations["longitude"].max(), n_events)
    low, high = magnitude
    u = rng.uniform(0.0, 1.0, n_events)
    mags = low - np.log10(1.0 - u * (1.0 - 10.0 ** -(high - low)))
    times = [start + float(t) for t in offsets]
    return pd.DataFrame({
        "event_id": [f"true{k:03d}" for k in range(n_events)],
        "time": [str(t) for t in times], "latitude": np.round(lat, 5),
        "longitude": np.round(lon, 5), "depth_km": np.round(rng.uniform(*depth_km, n_events), 2),
        "magnitude": np.round(mags, 2)})


def synthetic_arrivals(events, stations, velocity="vp=6.0,vs=3.5", seed=0):
    """True P and S arrivals of every event at every station.

    Args:
        events: :func:`synthetic_events` table.
        stations: station table.
        velocity: :class:`~utrans.catalog.velocity.VelocityModel` or its text.
        seed: random seed (of the strike of each event's mechanism).

    Returns:
        DataFrame ``event_id, trace_id, phase, time, distance_km,
        back_azimuth_deg, hypocentral_km, polarity`` (``polarity`` of P
        only: ``"U"``/``"D"``).
    """
    velocity = parse_velocity(velocity)
    rng = np.random.default_rng(seed)
    strikes = rng.uniform(0.0, 180.0, len(events))
    rows = []
    for event, strike in zip(events.itertuples(), strikes):
        origin = obspy.UTCDateTime(event.time)
        for station in stations.itertuples():
            distance, azimuth, back_azimuth = distance_azimuth(
                event.latitude, event.longitude, station.latitude, station.longitude)
            trace_id = f"{station.network}.{station.station}."
            hypocentral = float(np.hypot(distance, event.depth_km + station.elevation_m / 1000.0))
            radiation = np.sin(2 * np.radians(azimuth - strike))
            for phase in ("P", "S"):
                travel = float(velocity.travel_time(phase, distance, event.depth_km,
                                                    station.elevation_m))
                rows.append({"event_id": event.event_id, "trace_id": trace_id, "phase": phase,
                             "time": str(origin + travel), "distance_km": distance,
                             "back_azimuth_deg": back_azimuth, "hypocentral_km": hypocentral,
                             "polarity": ("U" if radiation >= 0 else "D") if phase == "P" else ""})
    return pd.DataFrame(rows, columns=["event_id", "trace_id", "phase", "time", "distance_km",
                                       "back_azimuth_deg", "hypocentral_km", "polarity"])


def synthetic_picks(arrivals, events, stations, duration_s=None, start=None, p_detect=0.95,
                    s_detect=0.85, p_error_s=0.05, s_error_s=0.10, false_per_hour=3.0,
                    model="synthetic", seed=0):
    """The picks a good picker would give on the synthetic records (module doc).

    Args:
        arrivals: :func:`synthetic_arrivals` table.
        events: the true catalogue (for magnitudes).
        stations: station table.
        duration_s: span of the false picks (``None``: the arrivals' span).
        start: start of that span (``None``: the first arrival - 60 s).
        p_detect: probability that a P arrival is picked.
        s_detect: probability that an S arrival is picked.
        p_error_s: standard deviation of P pick times, s.
        s_error_s: standard deviation of S pick times, s.
        false_per_hour: false picks per station and hour (P or S at random).
        model: name in the estimate columns (``magnitude__<model>``, ...).
        seed: random seed.

    Returns:
        A picks table (``trace_id, phase, peak_time, peak_value, start_time,
        end_time, instrument, model`` and ``magnitude__``, ``magnitude_std__``,
        ``back_azimuth_deg__``, ``distance_km__``, ``polarity__``,
        ``polarity_prob__`` columns on P picks) sorted by time, with a
        ``true_event_id`` column (empty for false picks).
    """
    rng = np.random.default_rng(seed)
    magnitude = events.set_index("event_id")["magnitude"]
    rows = []
    for arrival in arrivals.itertuples():
        detect, error = (p_detect, p_error_s) if arrival.phase == "P" else (s_detect, s_error_s)
        if rng.uniform() >= detect:
            continue
        time = obspy.UTCDateTime(arrival.time) + float(rng.normal(0.0, error))
        row = {"trace_id": arrival.trace_id, "phase": arrival.phase, "time": time,
               "peak_value": float(rng.uniform(0.5, 1.0)), "true_event_id": arrival.event_id}
        if arrival.phase == "P":
            flip = rng.uniform() < 0.1
            polarity = arrival.polarity if not flip else {"U": "D", "D": "U"}[arrival.polarity]
            row.update({
                "magnitude": magnitude[arrival.event_id] + float(rng.normal(0.0, 0.2)),
                "back_azimuth": (arrival.back_azimuth_deg + float(rng.normal(0.0, 15.0))) % 360.0,
                "distance": max(0.5, arrival.distance_km * float(np.exp(rng.normal(0.0, 0.2)))),
                "polarity": polarity, "polarity_prob": float(rng.uniform(0.6, 1.0))})
        rows.append(row)
    times = [obspy.UTCDateTime(t) for t in arrivals["time"]]
    start = obspy.UTCDateTime(start) if start is not None else min(times) - 60.0
    duration_s = duration_s if duration_s is not None else (max(times) + 60.0) - start
    trace_ids = [f"{s.network}.{s.station}." for s in stations.itertuples()]
    n_false = rng.poisson(false_per_hour * duration_s / 3600.0 * len(trace_ids))
    for _ in range(n_false):
        phase = "P" if rng.uniform() < 0.5 else "S"
        row = {"trace_id": trace_ids[rng.integers(len(trace_ids))], "phase": phase,
               "time": start + float(rng.uniform(0.0, duration_s)),
               "peak_value": float(rng.uniform(0.3, 0.8)), "true_event_id": ""}
        if phase == "P":
            row.update({"magnitude": float(rng.uniform(0.0, 2.0)),
                        "back_azimuth": float(rng.uniform(0.0, 360.0)),
                        "distance": float(rng.uniform(1.0, 80.0)),
                        "polarity": "U" if rng.uniform() < 0.5 else "D",
                        "polarity_prob": float(rng.uniform(0.5, 0.8))})
        rows.append(row)
    rows.sort(key=lambda r: (r["time"], r["trace_id"], r["phase"]))
    half = {"P": 0.1, "S": 0.2}
    frame = pd.DataFrame({
        "trace_id": [r["trace_id"] for r in rows], "phase": [r["phase"] for r in rows],
        "peak_time": [str(r["time"]) for r in rows],
        "peak_value": [round(r["peak_value"], 4) for r in rows],
        "start_time": [str(r["time"] - half[r["phase"]]) for r in rows],
        "end_time": [str(r["time"] + half[r["phase"]]) for r in rows],
        "instrument": "HH", "model": "synthetic_picker",
        f"magnitude__{model}": [r.get("magnitude", np.nan) for r in rows],
        f"magnitude_std__{model}": [0.2 if "magnitude" in r else np.nan for r in rows],
        f"back_azimuth_deg__{model}": [r.get("back_azimuth", np.nan) for r in rows],
        f"distance_km__{model}": [r.get("distance", np.nan) for r in rows],
        f"polarity__{model}": [r.get("polarity", "") for r in rows],
        f"polarity_prob__{model}": [r.get("polarity_prob", np.nan) for r in rows],
        "characterize_note": "",
        "true_event_id": [r["true_event_id"] for r in rows]})
    return frame


# ---------------------------------------------------------------- waveforms


@dataclasses.dataclass(frozen=True)
class _Template:
    p_part: np.ndarray      # (3, n) Z, R, T
    s_part: np.ndarray      # (3, n) Z, R, T
    noise_amplitude: np.ndarray  # (3, f) amplitude spectrum per component, Z N E
    noise_freqs: np.ndarray
    noise_std: np.ndarray        # (3,) standard deviation of the quiet end, counts
    hypocentral_km: float


def _template(velocity):
    stream = obspy.read()
    stream.detrend("linear")
    stream.taper(0.05)
    fs = stream[0].stats.sampling_rate
    quiet = np.array([stream.select(component=c)[0].data[-1200:] for c in "ZNE"])
    freqs, power = welch(quiet, fs=fs, nperseg=512, axis=-1)
    stream.filter("bandpass", freqmin=1.0, freqmax=20.0, corners=4, zerophase=True)
    start = stream[0].stats.starttime
    z, n, e = (stream.select(component=c)[0].data.astype(float) for c in "ZNE")
    p = int(round((_TEMPLATE_P - start) * fs))
    s = int(round((_TEMPLATE_S - start) * fs))
    # Back-azimuth of the example from its first 0.3 s of P particle motion:
    # the principal horizontal direction, pointing away from the source for
    # an upward (compressional) Z first motion.
    window = slice(p, p + int(0.3 * fs))
    covariance = np.cov(np.vstack([n[window], e[window]]))
    direction = np.linalg.eigh(covariance)[1][:, -1]
    if np.dot(direction, [n[window] @ z[window], e[window] @ z[window]]) > 0:
        direction = -direction       # radial motion points away from the source
    back_azimuth = float(np.degrees(np.arctan2(direction[1], direction[0])) % 360.0)
    r, t = rotate_ne_rt(n, e, back_azimuth)
    zrt = np.vstack([z, r, t])
    lead = int(0.05 * fs)
    p_wavelet = zrt[:, p - lead:s - lead].copy()
    p_wavelet[:, -lead:] *= np.linspace(1.0, 0.0, lead)[None, :]
    s_part = zrt[:, s - lead:].copy()
    s_part[:, :lead] *= np.linspace(0.0, 1.0, lead)[None, :]
    tail = s_part.shape[1] // 2
    s_part[:, -tail:] *= np.cos(np.linspace(0.0, np.pi / 2, tail))[None, :] ** 2
    # P coda: the S coda (3 s after S on) at a third of the P wavelet's
    # peak, decaying with a 3 s time constant.
    coda = zrt[:, s + int(3 * fs):].copy()
    coda *= (np.abs(p_wavelet).max() / 3.0) / np.abs(coda).max()
    coda *= np.exp(-np.arange(coda.shape[1]) / (3.0 * fs))[None, :]
    p_part = np.concatenate([p_wavelet, coda], axis=1)
    delta = (_TEMPLATE_S - _TEMPLATE_P) / (1.0 / velocity.vs[0] - 1.0 / velocity.vp[0])
    return _Template(p_part=p_part, s_part=s_part, noise_amplitude=np.sqrt(power),
                     noise_freqs=freqs, noise_std=quiet.std(axis=1),
                     hypocentral_km=float(delta)), back_azimuth


def _noise(rng, template, npts, fs, level):
    freqs = np.fft.rfftfreq(npts, 1.0 / fs)
    out = np.empty((3, npts))
    for k in range(3):
        amplitude = np.interp(freqs, template.noise_freqs, template.noise_amplitude[k])
        phases = rng.uniform(0.0, 2 * np.pi, len(freqs))
        series = np.fft.irfft(amplitude * np.exp(1j * phases), n=npts)
        out[k] = series / series.std() * level[k]
    return out


def synthetic_waveforms(stations, events, arrivals, start=DEFAULT_START, duration_s=10800.0,
                        velocity="vp=6.0,vs=3.5", seed=0):
    """Continuous three-component records of the synthetic network (module doc).

    Args:
        stations: station table.
        events: true catalogue.
        arrivals: true arrivals (:func:`synthetic_arrivals`).
        start: first sample time.
        duration_s: record length, s.
        velocity: the velocity model (its top layer's velocities set the
            template's reference distance).
        seed: random seed.

    Returns:
        An ``obspy.Stream`` of ``HHZ``, ``HHN``, ``HHE`` traces (float64 counts).
    """
    velocity = parse_velocity(velocity)
    rng = np.random.default_rng(seed)
    template, template_baz = _template(velocity)
    fs = SAMPLING_RATE
    start = obspy.UTCDateTime(start)
    npts = int(round(duration_s * fs))
    magnitude = events.set_index("event_id")["magnitude"]
    by_station = dict(tuple(arrivals.groupby("trace_id")))
    stream = obspy.Stream()
    for station in stations.itertuples():
        trace_id = f"{station.network}.{station.station}."
        site = float(np.exp(rng.normal(0.0, 0.25)))
        noise_level = template.noise_std * float(np.exp(rng.normal(0.0, 0.3)))
        data = _noise(rng, template, npts, fs, noise_level)   # Z N E
        for arrival in by_station.get(trace_id, pd.DataFrame()).itertuples():
            r = arrival.hypocentral_km
            scale = site * 10.0 ** (magnitude[arrival.event_id] - _TEMPLATE_MAGNITUDE) * \
                (template.hypocentral_km / r) ** 1.11 * \
                10.0 ** (-0.00189 * (r - template.hypocentral_km))
            part = template.p_part if arrival.phase == "P" else template.s_part
            if arrival.phase == "P" and arrival.polarity == "D":
                scale = -scale
            z = part[0] * scale
            n, e = rotate_rt_ne(part[1] * scale, part[2] * scale, arrival.back_azimuth_deg)
            lead = int(0.05 * fs)
            first = int(round((obspy.UTCDateTime(arrival.time) - start) * fs)) - lead
            a, b = max(first, 0), min(first + part.shape[1], npts)
            if b <= a:
                continue
            for k, values in enumerate((z, n, e)):
                data[k, a:b] += values[a - first:b - first]
        for k, component in enumerate("ZNE"):
            stream.append(obspy.Trace(data[k], header={
                "network": station.network, "station": station.station, "location": "",
                "channel": f"HH{component}", "sampling_rate": fs, "starttime": start}))
    logger.debug("Template back-azimuth %.1f deg", template_baz)
    return stream


def _inventory(stations, start):
    networks = {}
    for station in stations.itertuples():
        channels = [Channel(code=f"HH{c}", location_code="", latitude=station.latitude,
                            longitude=station.longitude, elevation=station.elevation_m, depth=0.0,
                            azimuth=azimuth, dip=dip, sample_rate=SAMPLING_RATE, start_date=start)
                    for c, azimuth, dip in (("Z", 0.0, -90.0), ("N", 0.0, 0.0), ("E", 90.0, 0.0))]
        networks.setdefault(station.network, []).append(Station(
            code=station.station, latitude=station.latitude, longitude=station.longitude,
            elevation=station.elevation_m, channels=channels, start_date=start,
            site=Site(name=f"synthetic {station.station}")))
    return Inventory(networks=[Network(code=code, stations=items, start_date=start)
                               for code, items in networks.items()], source="utrans synthetic")


def write_sds(stream, root):
    """Write a Stream into an SDS archive (one Steim-2 file per channel and day).

    Args:
        stream: ``obspy.Stream``; samples are rounded to int32 counts.
        root: archive root folder.

    Returns:
        List of the files written.
    """
    root = pathlib.Path(root)
    files = []
    for trace in stream:
        day = obspy.UTCDateTime(trace.stats.starttime.date)
        while day < trace.stats.endtime:
            piece = trace.slice(day, day + 86400.0 - trace.stats.delta / 2, nearest_sample=False)
            day += 86400.0
            if not piece.stats.npts:
                continue
            piece = piece.copy()
            piece.data = np.round(piece.data).astype(np.int32)
            t = piece.stats.starttime
            relative = SDS_FMTSTR.format(year=t.year, doy=t.julday, sds_type="D",
                                         network=piece.stats.network, station=piece.stats.station,
                                         location=piece.stats.location,
                                         channel=piece.stats.channel)
            with atomic_write(root / relative) as tmp:
                piece.write(str(tmp), format="MSEED", encoding="STEIM2", reclen=4096)
            files.append(root / relative)
    return files


@dataclasses.dataclass
class SyntheticNetwork:
    """What :func:`write_synthetic_network` wrote.

    Args:
        folder: the output folder.
        sds: root of the SDS archive.
        stationxml: StationXML file.
        catalogue: true catalogue CSV.
        arrivals_csv: true arrivals CSV.
        stations: station table.
        events: true catalogue.
        arrivals: true arrivals.
        start: first sample time.
        duration_s: record length.
    """

    folder: pathlib.Path
    sds: pathlib.Path
    stationxml: pathlib.Path
    catalogue: pathlib.Path
    arrivals_csv: pathlib.Path
    stations: pd.DataFrame
    events: pd.DataFrame
    arrivals: pd.DataFrame
    start: obspy.UTCDateTime
    duration_s: float


def write_synthetic_network(folder, n_stations=10, aperture_km=50.0, n_events=20,
                            duration_s=10800.0, start=DEFAULT_START, velocity="vp=6.0,vs=3.5",
                            center=(47.5, 12.0), seed=0):
    """Write a synthetic network with a known catalogue (module doc).

    Args:
        folder: output folder.
        n_stations: number of stations.
        aperture_km: network size, km.
        n_events: number of events.
        duration_s: record length, s.
        start: first sample time.
        velocity: :class:`~utrans.catalog.velocity.VelocityModel` or its text.
        center: ``(latitude, longitude)`` of the network.
        seed: random seed (one seed for everything).

    Returns:
        A :class:`SyntheticNetwork`.
    """
    folder = pathlib.Path(folder)
    velocity = parse_velocity(velocity)
    start = obspy.UTCDateTime(start)
    seeds = np.random.SeedSequence(seed).spawn(4)
    stations = synthetic_stations(n_stations, aperture_km, center, seed=seeds[0])
    events = synthetic_events(stations, n_events, duration_s, start, seed=seeds[1])
    arrivals = synthetic_arrivals(events, stations, velocity, seed=seeds[2])
    stream = synthetic_waveforms(stations, events, arrivals, start, duration_s, velocity,
                                 seed=seeds[3])
    sds = folder / "sds"
    write_sds(stream, sds)
    inventory = _inventory(stations, start)
    stationxml = folder / "stations.xml"
    with atomic_write(stationxml) as tmp:
        inventory.write(str(tmp), format="STATIONXML")
    catalogue = write_csv(events, folder / "catalogue.csv")
    arrivals_csv = write_csv(arrivals, folder / "arrivals.csv")
    logger.info("Wrote a synthetic network of %d stations and %d events to %s", len(stations),
                len(events), folder)
    return SyntheticNetwork(folder=folder, sds=sds, stationxml=stationxml, catalogue=catalogue,
                            arrivals_csv=arrivals_csv, stations=stations, events=events,
                            arrivals=arrivals, start=start, duration_s=float(duration_s))

