"""A synthetic network for streaming demos and benchmarks, and the picks it should give.

:func:`demo_network` builds continuous 3-component 100 Hz records of a
small network: coloured background noise (the band-limited noise of
:mod:`utrans.synthetic`) and, every ``every_s`` seconds, a local event that
each station records with its own delay (a straight ray at 6 km/s from an
epicentre in and around the network, to the P). The waveform of each
event at each station is the local event that ObsPy ships as its example
record (``obspy.read()``: BW.RJOB, a real recording, its P 4.70 s and S
5.62 s after the record's start; the picker presets recognise it, whereas
the parametric events of :mod:`utrans.synthetic` are too simple for them),
its horizontals rotated and its sign and amplitude varied at random. The
true P and S times are returned with the records; samples are integers
(counts), as a digitiser gives them, so the records compress as Steim-2
miniSEED for the replay server.

Its arrivals do not follow a velocity model (the S comes 0.92 s after the P
at every station, as in the example record), so the streaming catalogue's
demo uses :func:`demo_catalog_network` instead: the synthetic network of
``utrans catalog`` (:mod:`utrans.catalog.synthetic`: stations with
coordinates, events at known times, places and magnitudes, P and S at the
travel times of a velocity model), as integer counts.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import obspy
import pandas as pd

from utrans.catalog.synthetic import (
    synthetic_arrivals,
    synthetic_events,
    synthetic_stations,
    synthetic_waveforms,
)
from utrans.synthetic import _bandlimited

__all__ = ["DemoCatalogNetwork", "demo_catalog_network", "demo_network", "event_template"]

#: P and S of the template after its first sample (ObsPy's example record, BW.RJOB).
TEMPLATE_P_S = 4.70
TEMPLATE_S_S = 5.62
_VP = 6.0


def event_template():
    """ObsPy's example event (BW.RJOB), demeaned and tapered at its ends.

    Returns:
        ``(data, noise_std)``: float64 ``(3, 3000)`` in Z, N, E order at 100 Hz
        (P 4.70 s and S 5.62 s after the first sample), and the standard
        deviation of each component before the event.
    """
    st = obspy.read()
    st.detrend("demean")
    data = np.stack([st.select(component=c)[0].data for c in "ZNE"])
    taper = np.ones(data.shape[1])
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(200) / 200)
    taper[:100] = ramp[::2]
    taper[-200:] = ramp[::-1]
    return data * taper, data[:, :400].std(axis=1)


def demo_network(stations=6, seconds=600.0, seed=0, start=None, every_s=90.0, network="XX",
                 spacing_km=15.0):
    """Continuous records of a synthetic network with events at known times (module doc).

    Args:
        stations: number of stations (``S01``, ``S02``, ... on a square grid).
        seconds: length of the records.
        seed: random seed.
        start: time of the first sample (default: 2024-03-01T00:00:00).
        every_s: mean time between events (the first one after 30 s).
        network: network code.
        spacing_km: distance between neighbouring stations.

    Returns:
        ``(stream, truth)``: an ``obspy.Stream`` (``HHZ``/``HHN``/``HHE``, int32
        counts) and a DataFrame of the arrivals (``station``, ``phase``,
        ``time`` as UTCDateTime, ``event``).
    """
    if stations < 1 or seconds <= 0 or every_s <= 0:
        raise ValueError("demo_network needs stations >= 1, seconds > 0 and every_s > 0. "
                         f"Received: stations={stations}, seconds={seconds}, every_s={every_s}")
    start = obspy.UTCDateTime(2024, 3, 1) if start is None else obspy.UTCDateTime(start)
    template, noise_std = event_template()
    rng = np.random.default_rng(seed)
    fs, n = 100.0, int(round(seconds * 100.0))
    side = int(np.ceil(np.sqrt(stations)))
    xy = np.array([(i % side, i // side) for i in range(stations)], dtype=float) * spacing_km
    data = _bandlimited(rng, 3 * stations, n, 1.0, 20.0, fs).reshape(stations, 3, n)
    data *= 0.3 * noise_std[None, :, None]
    truth = []
    width = max(xy.max(), spacing_km)
    for k, origin_s in enumerate(np.arange(30.0, seconds - 40.0, every_s)):
        origin_s += rng.uniform(0, 0.3 * every_s)
        epicentre = rng.uniform(-0.2 * width, 1.2 * width, 2)
        for s in range(stations):
            dist = float(np.hypot(*(xy[s] - epicentre)) + 3.0)
            p_s = origin_s + dist / _VP
            first = int(round((p_s - TEMPLATE_P_S) * fs))
            if first < 0 or first + template.shape[1] > n:
                continue
            angle = rng.uniform(0, 2 * np.pi)
            z, north, east = template
            rotated = np.stack([z, np.cos(angle) * north - np.sin(angle) * east,
                                np.sin(angle) * north + np.cos(angle) * east])
            scale = rng.choice([-1.0, 1.0]) * 10 ** rng.uniform(-0.15, 0.3)
            data[s, :, first:first + template.shape[1]] += scale * rotated
            at = start + first / fs
            code = f"S{s + 1:02d}"
            truth.append((code, "P", at + TEMPLATE_P_S, k))
            truth.append((code, "S", at + TEMPLATE_S_S, k))
    stream = obspy.Stream()
    for s in range(stations):
        for c, comp in enumerate("ZNE"):
            counts = np.round(10.0 * data[s, c]).astype(np.int32)
            stream += obspy.Trace(counts, header={
                "network": network, "station": f"S{s + 1:02d}", "location": "",
                "channel": f"HH{comp}", "sampling_rate": fs, "starttime": start})
    truth.sort(key=lambda row: (row[2].ns, row[0]))
    return stream, pd.DataFrame(truth, columns=["station", "phase", "time", "event"])


@dataclasses.dataclass
class DemoCatalogNetwork:
    """A synthetic network with its station coordinates and true events.

    Args:
        stream: ``obspy.Stream`` (``HHZ``/``HHN``/``HHE``, int32 counts).
        truth: the true arrivals (``station``, ``phase``, ``time`` as
            UTCDateTime, ``event``), as :func:`demo_network` gives them.
        stations: station table (``network, station, latitude, longitude,
            elevation_m``: :func:`utrans.catalog.stations.read_stations`'s).
        events: the true events (``event_id, time, latitude, longitude,
            depth_km, magnitude``).
        velocity: the velocity model of the travel times.
    """

    stream: obspy.Stream
    truth: pd.DataFrame
    stations: pd.DataFrame
    events: pd.DataFrame
    velocity: str


def demo_catalog_network(stations=6, seconds=600.0, seed=0, start=None, every_s=90.0,
                         network="XX", aperture_km=40.0, magnitude=(2.0, 3.5),
                         velocity="vp=6.0,vs=3.5"):
    """Records of ``utrans catalog``'s synthetic network, with coordinates and true events.

    Args:
        stations: number of stations (``S00``, ``S01``, ...).
        seconds: length of the records.
        seed: random seed.
        start: time of the first sample (default: 2024-03-01T00:00:00).
        every_s: mean time between events (at least half of it between two).
        network: network code.
        aperture_km: side of the square the stations lie in, km.
        magnitude: ``(smallest, largest)`` event magnitude.
        velocity: the velocity model of the arrivals (``"vp=6.0,vs=3.5"`` or a CSV).

    Returns:
        A :class:`DemoCatalogNetwork`.
    """
    if stations < 1 or seconds <= 120.0 or every_s <= 0:
        raise ValueError("demo_catalog_network needs stations >= 1, seconds > 120 and every_s "
                         f"> 0. Received: stations={stations}, seconds={seconds}, "
                         f"every_s={every_s}")
    start = obspy.UTCDateTime(2024, 3, 1) if start is None else obspy.UTCDateTime(start)
    seeds = np.random.SeedSequence(seed).spawn(4)
    table = synthetic_stations(stations, aperture_km, network=network, seed=seeds[0])
    n_events = max(1, int((seconds - 60.0) / every_s))
    events = synthetic_events(table, n_events, seconds, start, min_gap_s=every_s / 2,
                              magnitude=magnitude, seed=seeds[1])
    arrivals = synthetic_arrivals(events, table, velocity, seed=seeds[2])
    stream = synthetic_waveforms(table, events, arrivals, start, seconds, velocity,
                                 seed=seeds[3])
    for trace in stream:
        trace.data = np.round(trace.data).astype(np.int32)
    numbers = {e: k for k, e in enumerate(events["event_id"])}
    truth = pd.DataFrame({"station": [t.split(".")[1] for t in arrivals["trace_id"]],
                          "phase": arrivals["phase"],
                          "time": [obspy.UTCDateTime(t) for t in arrivals["time"]],
                          "event": [numbers[e] for e in arrivals["event_id"]]})
    truth = truth[truth["time"] < start + seconds]
    truth = truth.sort_values(["time", "station"], key=lambda c: c.map(
        lambda v: v.ns if isinstance(v, obspy.UTCDateTime) else v)).reset_index(drop=True)
    return DemoCatalogNetwork(stream, truth, table, events, str(velocity))
