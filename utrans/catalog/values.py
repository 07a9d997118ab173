"""Event values from the located events and the per-pick estimates.

* **Magnitude**: per station (``trace_id``), the median over its associated
  P picks of the chosen magnitude column; the event magnitude is the median
  of the station magnitudes, ``magnitude_n_stations`` their number and
  ``magnitude_spread`` their median absolute deviation from the event
  magnitude (unscaled MAD, in magnitude units; 0 for one station, empty for
  none). The column is the one the settings name, else the first
  ``magnitude__<model>`` column of the picks.
* **Arrivals**: one row per associated pick with its travel-time residual
  (``residual_s``, observed minus predicted, from PyOcto), the located
  epicentral distance (``distance_km``) and azimuths (``azimuth_deg`` from
  the event to the station, ``back_azimuth_deg`` from the station to the
  event), geodesics on the WGS84 ellipsoid (``pyproj.Geod.inv``); every
  ``<quantity>__<model>`` estimate of the pick; and for every
  ``back_azimuth_deg__<model>`` a ``back_azimuth_residual_deg__<model>``
  (estimate minus located, wrapped to [-180, 180)) and for every
  ``distance_km__<model>`` a ``distance_residual_km__<model>`` (estimate
  minus located epicentral distance).
* **Polarities**: :func:`event_polarities` lists the P first motions of each
  event with azimuth and distance (the input of a focal mechanism).
"""

from __future__ import annotations

import numpy as np
import obspy
import pandas as pd

from utrans.core.errors import CatalogError
from utrans.processing.geodesy import distance_azimuth
from utrans.quakeml import (
    ARRIVAL_COLUMNS,
    EVENT_COLUMNS,
    STATION_MAGNITUDE_COLUMNS,
    estimate_columns,
)

__all__ = ["ARRIVAL_COLUMNS", "EVENT_COLUMNS", "STATION_MAGNITUDE_COLUMNS", "estimate_columns",
           "event_id_of", "event_polarities", "event_values", "magnitude_column_of",
           "station_magnitudes", "wrap_degrees"]


def wrap_degrees(values):
    """Angles wrapped to [-180, 180).

    Args:
        values: degrees (array-like).

    Returns:
        A float array.
    """
    return (np.asarray(values, dtype=float) + 180.0) % 360.0 - 180.0


def magnitude_column_of(frame, column=None):
    """The magnitude column to use (module doc).

    Args:
        frame: picks or arrivals table.
        column: the requested column, or ``None`` for the first ``magnitude__``.

    Returns:
        The column name, or ``None`` when the table has no magnitude.

    Raises:
        CatalogError: ``column`` names a column the table lacks.
    """
    if column is not None:
        if column not in frame.columns:
            found = [c for c in frame.columns if str(c).startswith("magnitude__")]
            raise CatalogError(f"No pick column {column!r} to take magnitudes from; magnitude "
                               f"columns: {', '.join(found) or 'none'}. Received: "
                               f"magnitude_column={column!r}")
        return column
    return next((c for c in frame.columns if str(c).startswith("magnitude__")), None)


def event_id_of(times):
    """Event ids from origin times: ``YYYYMMDDThhmmss.cc`` (UTC, centiseconds).

    Args:
        times: POSIX seconds (array-like).

    Returns:
        A list of text ids, made unique with a letter suffix if two events
        fall in the same centisecond.
    """
    ids, seen = [], {}
    for t in np.asarray(times, dtype=float):
        rounded = obspy.UTCDateTime(round(float(t), 2))
        text = rounded.strftime("%Y%m%dT%H%M%S") + f".{int(round(rounded.microsecond / 1e4)):02d}"
        count = seen.get(text, 0)
        seen[text] = count + 1
        ids.append(text if count == 0 else f"{text}{chr(ord('a') + count - 1)}")
    return ids


def station_magnitudes(arrivals, column=None):
    """Station magnitudes: per event and station, the median over its P arrivals.

    Args:
        arrivals: arrivals table (:data:`ARRIVAL_COLUMNS` + estimates).
        column: magnitude column (``None``: the first ``magnitude__``).

    Returns:
        DataFrame :data:`STATION_MAGNITUDE_COLUMNS` (empty without magnitudes).
    """
    column = magnitude_column_of(arrivals, column)
    if column is None or not len(arrivals):
        return pd.DataFrame(columns=STATION_MAGNITUDE_COLUMNS)
    rows = arrivals[(arrivals["phase"] == "P") & arrivals[column].notna()]
    if not len(rows):
        return pd.DataFrame(columns=STATION_MAGNITUDE_COLUMNS)
    grouped = rows.groupby(["event_id", "trace_id"], sort=True)[column]
    table = pd.DataFrame({"magnitude": grouped.median(), "n_picks": grouped.size()}).reset_index()
    return table[STATION_MAGNITUDE_COLUMNS]


def _event_magnitudes(station_table):
    out = {}
    for event_id, group in station_table.groupby("event_id"):
        values = group["magnitude"].to_numpy(dtype=float)
        median = float(np.median(values))
        out[event_id] = (median, len(values), float(np.median(np.abs(values - median))))
    return out


def _geometry(arrivals, events, sites):
    located = events.set_index("event_id")
    site = sites.set_index("id")
    ev = located.loc[arrivals["event_id"], ["latitude", "longitude"]].to_numpy(dtype=float)
    st = site.loc[arrivals["trace_id"], ["latitude", "longitude"]].to_numpy(dtype=float)
    return distance_azimuth(ev[:, 0], ev[:, 1], st[:, 0], st[:, 1])


def event_values(events, assignments, picks, sites, magnitude_column=None):
    """Events, arrivals and picks tables of located events (module doc).

    Args:
        events: located events ``event_id, time`` (POSIX s), ``latitude``,
            ``longitude``, ``depth_km``.
        assignments: ``event_id, pick_index, residual_s``, one row per pick.
        picks: the picks table, indexed by ``pick_index``.
        sites: ``id, latitude, longitude, elevation_m`` of the picked stations.
        magnitude_column: see :func:`magnitude_column_of`.

    Returns:
        ``(events, arrivals, picks)``: :data:`EVENT_COLUMNS`;
        :data:`ARRIVAL_COLUMNS` + estimates + residuals; the picks with an
        ``event_id`` column (empty text when not associated).
    """
    estimates = estimate_columns(picks)
    magnitude_column = magnitude_column_of(picks, magnitude_column)
    picks_out = picks.copy()
    picks_out["event_id"] = ""
    if len(assignments):
        picks_out.loc[assignments["pick_index"].to_numpy(), "event_id"] = \
            assignments["event_id"].to_numpy()
    arrival_columns = ARRIVAL_COLUMNS + estimates
    if not len(events):
        arrivals = pd.DataFrame(columns=arrival_columns)
        for column in estimates:
            arrivals = _add_residual_columns(arrivals, column)
        return pd.DataFrame(columns=EVENT_COLUMNS), arrivals, picks_out
    rows = picks.loc[assignments["pick_index"].to_numpy()]
    arrivals = pd.DataFrame({
        "event_id": assignments["event_id"].to_numpy(),
        "pick_index": assignments["pick_index"].to_numpy().astype(int),
        "trace_id": rows["trace_id"].to_numpy(), "phase": rows["phase"].to_numpy(),
        "time": rows["peak_time"].to_numpy(),
        "residual_s": assignments["residual_s"].to_numpy(dtype=float)})
    arrivals["distance_km"], arrivals["azimuth_deg"], arrivals["back_azimuth_deg"] = \
        _geometry(arrivals, events, sites)
    for column in estimates:
        arrivals[column] = rows[column].to_numpy()
    for column in estimates:
        arrivals = _add_residual_columns(arrivals, column)
    arrivals = arrivals.sort_values(["event_id", "time", "trace_id", "phase"],
                                    kind="stable").reset_index(drop=True)

    magnitudes = _event_magnitudes(station_magnitudes(arrivals, magnitude_column))
    table = events.copy()
    grouped = arrivals.groupby("event_id")
    table["n_picks"] = table["event_id"].map(grouped.size()).astype(int)
    table["n_p"] = table["event_id"].map(grouped["phase"].apply(lambda p: int((p == "P").sum())))
    table["n_s"] = table["event_id"].map(grouped["phase"].apply(lambda p: int((p == "S").sum())))
    table["rms_s"] = table["event_id"].map(
        grouped["residual_s"].apply(lambda r: float(np.sqrt(np.mean(np.square(r))))))
    nan = (np.nan, 0, np.nan)
    table["magnitude"] = [magnitudes.get(e, nan)[0] for e in table["event_id"]]
    table["magnitude_n_stations"] = [magnitudes.get(e, nan)[1] for e in table["event_id"]]
    table["magnitude_spread"] = [magnitudes.get(e, nan)[2] for e in table["event_id"]]
    table["time"] = [str(obspy.UTCDateTime(float(t))) for t in table["time"]]
    return table[EVENT_COLUMNS].reset_index(drop=True), arrivals, picks_out


def _add_residual_columns(arrivals, column):
    quantity, _, model = str(column).partition("__")
    if quantity == "back_azimuth_deg":
        name = f"back_azimuth_residual_deg__{model}"
        values = pd.to_numeric(arrivals[column], errors="coerce")
        arrivals[name] = wrap_degrees(values - arrivals["back_azimuth_deg"].astype(float)) \
            if len(arrivals) else pd.Series(dtype=float)
    elif quantity == "distance_km":
        name = f"distance_residual_km__{model}"
        values = pd.to_numeric(arrivals[column], errors="coerce")
        arrivals[name] = (values - arrivals["distance_km"].astype(float)) \
            if len(arrivals) else pd.Series(dtype=float)
    return arrivals


def event_polarities(arrivals, column=None):
    """The P first motions of each event, with the located geometry.

    Args:
        arrivals: arrivals table.
        column: polarity column (``None``: the first ``polarity__``).

    Returns:
        DataFrame ``event_id, trace_id, polarity, polarity_prob, azimuth_deg,
        distance_km`` (``polarity`` ``"U"``/``"D"``; ``polarity_prob`` empty
        when the picks carry none), one row per P arrival with a polarity.
    """
    columns = ["event_id", "trace_id", "polarity", "polarity_prob", "azimuth_deg", "distance_km"]
    column = column or next((c for c in arrivals.columns if str(c).startswith("polarity__")), None)
    if column is None or not len(arrivals):
        return pd.DataFrame(columns=columns)
    rows = arrivals[(arrivals["phase"] == "P") & arrivals[column].isin(["U", "D"])]
    model = str(column).partition("__")[2]
    probability = f"polarity_prob__{model}"
    return pd.DataFrame({
        "event_id": rows["event_id"], "trace_id": rows["trace_id"], "polarity": rows[column],
        "polarity_prob": rows[probability] if probability in rows.columns else np.nan,
        "azimuth_deg": rows["azimuth_deg"], "distance_km": rows["distance_km"],
    }, columns=columns).reset_index(drop=True)
