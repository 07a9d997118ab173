"""A catalogue against a known one: matched events, recall, precision and errors.

:func:`score_catalogue` matches each true event to at most one found event
and each found event to at most one true event: true events are taken in
time order, and each takes the unmatched found event closest in origin time
among those within ``max_dt_s`` seconds and ``max_km`` km of epicentral
distance (WGS84 geodesic). Recall is matched / true events, precision is
matched / found events; the errors are over the matched pairs: epicentral
distance (km), absolute depth difference (km) and absolute magnitude
difference (where both have one).
"""

from __future__ import annotations

import numpy as np
import obspy
import pandas as pd

from utrans.processing.geodesy import epicentral_distance_km

__all__ = ["MATCH_COLUMNS", "match_events", "score_catalogue"]

MATCH_COLUMNS = ["true_event_id", "event_id", "dt_s", "epicentral_km", "depth_error_km",
                 "magnitude_error"]


def _seconds(times):
    return np.array([obspy.UTCDateTime(t).timestamp for t in times], dtype=float)


def match_events(true_events, events, max_dt_s=2.0, max_km=10.0):
    """Pairs of true and found events (module doc).

    Args:
        true_events: table with ``event_id, time, latitude, longitude,
            depth_km`` and optionally ``magnitude``.
        events: the found events, same columns.
        max_dt_s: largest origin time difference of a match, s.
        max_km: largest epicentral distance of a match, km.

    Returns:
        DataFrame :data:`MATCH_COLUMNS`, one row per matched pair (signed
        ``dt_s`` = found - true; errors as absolute values).
    """
    rows = []
    if len(true_events) and len(events):
        t_true, t_found = _seconds(true_events["time"]), _seconds(events["time"])
        taken = np.zeros(len(events), dtype=bool)
        for k in np.argsort(t_true, kind="stable"):
            true = true_events.iloc[k]
            dt = t_found - t_true[k]
            km = np.asarray(epicentral_distance_km(true["latitude"], true["longitude"],
                                                   events["latitude"].to_numpy(float),
                                                   events["longitude"].to_numpy(float)))
            ok = (~taken) & (np.abs(dt) <= max_dt_s) & (km <= max_km)
            if not ok.any():
                continue
            j = int(np.flatnonzero(ok)[np.argmin(np.abs(dt[ok]))])
            taken[j] = True
            found = events.iloc[j]
            magnitude = (float(found["magnitude"]) - float(true["magnitude"])
                         if "magnitude" in events and "magnitude" in true_events else np.nan)
            rows.append({"true_event_id": true["event_id"], "event_id": found["event_id"],
                         "dt_s": float(dt[j]), "epicentral_km": float(km[j]),
                         "depth_error_km": abs(float(found["depth_km"]) - float(true["depth_km"])),
                         "magnitude_error": abs(magnitude)})
    return pd.DataFrame(rows, columns=MATCH_COLUMNS)


def score_catalogue(true_events, events, max_dt_s=2.0, max_km=10.0):
    """Recall, precision and median errors of a catalogue against a known one (module doc).

    Args:
        true_events: the known events.
        events: the found events.
        max_dt_s: largest origin time difference of a match, s.
        max_km: largest epicentral distance of a match, km.

    Returns:
        Dict: ``n_true``, ``n_found``, ``n_matched``, ``recall``,
        ``precision``, ``median_epicentral_km``, ``median_depth_error_km``,
        ``median_magnitude_error`` (NaN where nothing to take a median of)
        and ``matches`` (the :func:`match_events` table).
    """
    matches = match_events(true_events, events, max_dt_s, max_km)

    def median(column):
        values = matches[column].dropna()
        return float(np.median(values)) if len(values) else float("nan")

    return {"n_true": len(true_events), "n_found": len(events), "n_matched": len(matches),
            "recall": len(matches) / len(true_events) if len(true_events) else float("nan"),
            "precision": len(matches) / len(events) if len(events) else float("nan"),
            "median_epicentral_km": median("epicentral_km"),
            "median_depth_error_km": median("depth_error_km"),
            "median_magnitude_error": median("magnitude_error"), "matches": matches}
