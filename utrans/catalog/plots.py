"""Figures of a catalogue: the network map and the record section of one event.

* :func:`plot_map`: stations (triangles) and epicentres (circles, area
  growing with magnitude, colour = depth) in longitude/latitude at the
  network's aspect ratio, above a depth cross-section (longitude vs depth).
* :func:`plot_record_section`: one trace per station (vertical component,
  band-passed 1-20 Hz, each scaled to its own peak) at its epicentral
  distance, time from the origin; observed picks as thick ticks (P blue,
  S red), the travel-time curves of the velocity model for the event's depth
  as dashed lines, and the times PyOcto predicted for the associated picks
  (pick time minus residual) as open circles.

Figures are drawn on a ``matplotlib.figure.Figure`` with the Agg canvas: no
pyplot state, no backend switch.
"""

from __future__ import annotations

import logging
import pathlib

import numpy as np
import obspy
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from utrans.catalog.velocity import parse_velocity
from utrans.core.io import atomic_write
from utrans.processing.geodesy import epicentral_distance_km

__all__ = ["plot_map", "plot_record_section"]

logger = logging.getLogger(__name__)

_PHASE_COLOURS = {"P": "tab:blue", "S": "tab:red"}


def _save(fig, path, dpi):
    path = pathlib.Path(path)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


def _marker_area(magnitude):
    magnitude = np.asarray(magnitude, dtype=float)
    area = 12.0 * 2.5 ** np.clip(np.nan_to_num(magnitude, nan=0.0), -1.0, 6.0)
    return np.where(np.isnan(magnitude), 10.0, area)


def plot_map(events, stations, path, title="", dpi=110):
    """Save the map and depth cross-section of a catalogue (module doc).

    Args:
        events: events table (``latitude, longitude, depth_km, magnitude``).
        stations: station table (``network, station, latitude, longitude``).
        path: PNG file.
        title: figure title (default: counts).
        dpi: resolution.

    Returns:
        The path.
    """
    fig = Figure(figsize=(7.5, 9.0), layout="constrained")
    FigureCanvasAgg(fig)
    map_ax, section_ax = fig.subplots(2, 1, height_ratios=[3, 1.2])
    lat0 = float(stations["latitude"].mean()) if len(stations) else 0.0
    map_ax.set_aspect(1.0 / max(np.cos(np.radians(lat0)), 0.05), adjustable="box")
    lats = np.concatenate([stations["latitude"].to_numpy(float),
                           events["latitude"].to_numpy(float) if len(events) else []])
    lons = np.concatenate([stations["longitude"].to_numpy(float),
                           events["longitude"].to_numpy(float) if len(events) else []])
    if len(lats):  # a margin, so stations and their names at the edge stay inside the map
        pad_lat = max(np.ptp(lats) * 0.08, 0.01)
        pad_lon = max(np.ptp(lons) * 0.08, 0.01)
        map_ax.set_ylim(lats.min() - pad_lat, lats.max() + pad_lat)
        map_ax.set_xlim(lons.min() - pad_lon, lons.max() + pad_lon)
    map_ax.scatter(stations["longitude"], stations["latitude"], marker="^", s=70, c="k",
                   label=f"stations ({len(stations)})", zorder=3)
    for row in stations.itertuples():
        map_ax.annotate(row.station, (row.longitude, row.latitude), xytext=(4, 4),
                        textcoords="offset points", fontsize=7)
    if len(events):
        depth = events["depth_km"].astype(float)
        area = _marker_area(events["magnitude"])
        points = map_ax.scatter(events["longitude"], events["latitude"], s=area, c=depth,
                                cmap="viridis_r", edgecolors="k", linewidths=0.5, alpha=0.85,
                                label=f"events ({len(events)})", zorder=2)
        section_ax.scatter(events["longitude"], depth, s=area, c=depth, cmap="viridis_r",
                           edgecolors="k", linewidths=0.5, alpha=0.85)
        fig.colorbar(points, ax=map_ax, label="depth (km)", shrink=0.7)
        magnitudes = events["magnitude"].astype(float).dropna()
        for m in np.unique(np.round(np.quantile(magnitudes, [0.0, 0.5, 1.0]))) \
                if len(magnitudes) else []:
            map_ax.scatter([], [], s=_marker_area(m), facecolors="none", edgecolors="k",
                           label=f"M {m:g}")
    else:
        map_ax.text(0.5, 0.5, "no events", transform=map_ax.transAxes, ha="center",
                    va="center", fontsize=14, color="0.4")
    # Above the map, so that it hides no station and no event.
    map_ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=5, fontsize="small",
                  frameon=False, borderaxespad=0.0)
    map_ax.set_ylabel("latitude (deg)")
    fig.suptitle(title or f"{len(events)} events, {len(stations)} stations")
    map_ax.grid(alpha=0.3)
    section_ax.scatter(stations["longitude"], -stations["elevation_m"] / 1000.0, marker="^",
                       s=40, c="k")
    section_ax.set_xlim(map_ax.get_xlim())
    section_ax.invert_yaxis()
    section_ax.set_xlabel("longitude (deg)")
    section_ax.set_ylabel("depth (km)")
    section_ax.grid(alpha=0.3)
    return _save(fig, path, dpi)


def _trace_per_station(stream):
    chosen = {}
    for trace in stream:
        key = f"{trace.stats.network}.{trace.stats.station}.{trace.stats.location}"
        rank = 0 if trace.stats.channel.endswith("Z") else 1
        if key not in chosen or rank < chosen[key][0]:
            chosen[key] = (rank, trace)
    return {key: trace for key, (rank, trace) in chosen.items()}


def plot_record_section(stream, event, arrivals, stations, velocity, path, before_s=5.0,
                        after_s=None, bandpass=(1.0, 20.0), dpi=110):
    """Save the record section of one event with its picks and predicted times (module doc).

    Args:
        stream: ``obspy.Stream`` holding the event's time span (other traces
            and times are ignored).
        event: one row of the events table (dict or Series).
        arrivals: arrivals table (rows of other events are ignored).
        stations: station table.
        velocity: :class:`~utrans.catalog.velocity.VelocityModel` or its text.
        path: PNG file.
        before_s: seconds shown before the origin.
        after_s: seconds shown after it (``None``: the latest S pick or
            predicted S at the farthest trace, plus 10 s).
        bandpass: ``(fmin, fmax)`` Hz of the display filter, or ``None``.
        dpi: resolution.

    Returns:
        The path.
    """
    velocity = parse_velocity(velocity)
    origin = obspy.UTCDateTime(event["time"])
    depth = float(event["depth_km"])
    rows = arrivals[arrivals["event_id"] == event["event_id"]]
    coordinates = {f"{s.network}.{s.station}": s for s in stations.itertuples()}
    traces = _trace_per_station(stream)
    distances = {}
    for key in traces:
        site = coordinates.get(".".join(key.split(".")[:2]))
        if site is not None:
            distances[key] = epicentral_distance_km(float(event["latitude"]),
                                                    float(event["longitude"]),
                                                    site.latitude, site.longitude)
    far = max([*distances.values(), *rows.get("distance_km", [])], default=10.0)
    if after_s is None:
        latest = max([obspy.UTCDateTime(t) - origin for t in rows["time"]], default=0.0)
        after_s = max(latest, float(velocity.travel_time("S", far, depth))) + 10.0
    spacing = max(far / max(len(distances), 1), 1.0)
    fig = Figure(figsize=(10.0, 7.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for key, distance in sorted(distances.items(), key=lambda item: item[1]):
        trace = traces[key].slice(origin - before_s - 2.0, origin + after_s + 2.0).copy()
        if trace.stats.npts < 10:
            continue
        trace.detrend("demean")
        if bandpass is not None:
            trace.taper(0.05)
            trace.filter("bandpass", freqmin=bandpass[0], freqmax=bandpass[1], zerophase=True)
        data = trace.data.astype(float)
        peak = np.abs(data).max() or 1.0
        times = trace.times() + (trace.stats.starttime - origin)
        ax.plot(times, distance + 0.45 * spacing * data / peak, lw=0.5, color="0.25")
        ax.annotate(key, (-before_s, distance), xytext=(2, 2), textcoords="offset points",
                    fontsize=7)
    grid = np.linspace(0.0, far * 1.05 + 1.0, 200)
    for phase, colour in _PHASE_COLOURS.items():
        ax.plot(velocity.travel_time(phase, grid, depth), grid, ls="--", lw=1.0, color=colour,
                alpha=0.6, label=f"{phase} predicted ({depth:.1f} km deep)")
        picked = rows[rows["phase"] == phase]
        if len(picked):
            observed = np.array([obspy.UTCDateTime(t) - origin for t in picked["time"]])
            ax.scatter(observed, picked["distance_km"], marker="|", s=400, linewidths=2.5,
                       color=colour, label=f"{phase} picks ({len(picked)})", zorder=3)
            ax.scatter(observed - picked["residual_s"].astype(float), picked["distance_km"],
                       marker="o", s=30, facecolors="none", edgecolors=colour, zorder=3)
    ax.set_xlim(-before_s, after_s)
    ax.set_ylim(-spacing, far * 1.05 + spacing)
    ax.set_xlabel(f"time after origin {origin} (s)")
    ax.set_ylabel("epicentral distance (km)")
    magnitude = event.get("magnitude", np.nan)
    label = f"M {float(magnitude):.1f}, " if magnitude is not None and np.isfinite(
        float(magnitude)) else ""
    ax.set_title(f"event {event['event_id']}: {label}{float(event['latitude']):.4f}, "
                 f"{float(event['longitude']):.4f}, {depth:.1f} km")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    return _save(fig, path, dpi)
