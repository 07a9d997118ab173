"""Scoring a catalogue against a known one: one-to-one matches within 2 s and 10 km."""

import numpy as np
import obspy
import pandas as pd
import pytest

from utrans.catalog.scoring import score_catalogue

T0 = "2024-03-01T00:00:00"


def _events(ids, seconds, lat, lon, depth, magnitude):
    return pd.DataFrame({"event_id": ids,
                         "time": [str(obspy.UTCDateTime(T0) + s) for s in seconds],
                         "latitude": lat, "longitude": lon, "depth_km": depth,
                         "magnitude": magnitude})


def test_matches_are_one_to_one_within_time_and_distance():
    true = _events(["a", "b", "c", "d"], [0.0, 10.0, 100.0, 200.0], [47.0] * 4, [12.0] * 4,
                   [5.0, 5.0, 5.0, 5.0], [2.0, 2.5, 3.0, 1.0])
    # 0.01 deg of latitude is 1.11 km; 0.1 deg is 11.1 km (too far).
    found = _events(["x", "y", "z", "w"], [0.5, 1.0, 102.5, 200.2], [47.01, 47.0, 47.0, 47.1],
                    [12.0] * 4, [7.0, 5.0, 5.0, 5.0], [2.25, np.nan, 3.0, 1.0])
    score = score_catalogue(true, found)
    matches = score["matches"]
    # a takes the closer in time (x); b (10 s) and c (2.5 s off) and d (11 km off) find none.
    assert list(zip(matches.true_event_id, matches.event_id)) == [("a", "x")]
    assert score["recall"] == 0.25 and score["precision"] == 0.25
    assert score["median_epicentral_km"] == pytest.approx(1.112, abs=0.002)
    assert score["median_depth_error_km"] == 2.0 and score["median_magnitude_error"] == 0.25
    looser = score_catalogue(true, found, max_dt_s=3.0, max_km=12.0)
    assert list(looser["matches"].event_id) == ["x", "z", "w"]
    assert looser["n_matched"] == 3 and looser["recall"] == 0.75


def test_nothing_found():
    true = _events(["a"], [0.0], [47.0], [12.0], [5.0], [2.0])
    score = score_catalogue(true, true.iloc[:0])
    assert score["recall"] == 0.0 and np.isnan(score["precision"])
    assert np.isnan(score["median_epicentral_km"]) and len(score["matches"]) == 0
