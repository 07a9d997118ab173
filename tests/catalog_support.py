"""Shared by the catalogue tests: the optional ``catalog`` extra, QuakeML read back value by value."""

import importlib
import os

import numpy as np
import obspy
import pandas as pd
import pytest

from utrans.annotate.archive import read_table
from utrans.quakeml import read_catalog_values


def require(module):
    """Import ``module`` (pyocto, pyrocko); skip without it, fail under ``CI=true``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        message = f"{module} is not installed (pip install '.[catalog]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true requires the catalog extra")
        pytest.skip(message, allow_module_level=True)


def _text(values):
    """A column as text, empty where missing."""
    return [str(v) for v in values.astype(object).where(values.notna(), "")]


def assert_picks_equal(back, picks):
    """Picks read back from QuakeML (``read_catalog_values``) hold every value of ``picks``."""
    assert list(back.index) == list(picks.index)
    for column in picks.columns:
        if column.startswith("polarity__"):
            got = back["polarity"]
        elif column.startswith("back_azimuth_deg__"):
            got = back[column]
            np.testing.assert_allclose(back["backazimuth"].astype(float), picks[column], atol=0)
        elif column in ("start_time", "end_time", "peak_time"):
            diff = [obspy.UTCDateTime(a) - obspy.UTCDateTime(b)
                    for a, b in zip(back[column], picks[column])]
            assert np.max(np.abs(diff), initial=0.0) <= 1e-6, column
            continue
        else:
            got = back[column] if column in back else pd.Series([np.nan] * len(back))
        expected = picks[column]
        if not pd.api.types.is_numeric_dtype(expected):
            assert _text(got) == _text(expected), column
        else:
            np.testing.assert_allclose(got.astype(float), expected.astype(float), atol=0,
                                       err_msg=column)


def assert_quakeml_matches_tables(folder):
    """``catalog.xml`` of a catalogue folder reads back to its three CSV tables, value by value.

    Returns:
        ``(events, arrivals, picks)`` as read from the CSV files.
    """
    catalog = obspy.read_events(str(folder / "catalog.xml"))
    events_back, arrivals_back, picks_back, _ = read_catalog_values(catalog)
    events = pd.read_csv(folder / "events.csv", keep_default_na=False, na_values=[""])
    arrivals = pd.read_csv(folder / "arrivals.csv", keep_default_na=False, na_values=[""],
                           dtype={"trace_id": str})
    picks = read_table(folder / "picks.csv")
    picks["event_id"] = picks["event_id"].fillna("").astype(str)
    assert list(events_back.columns) == list(events.columns)
    for column in events.columns:
        if pd.api.types.is_numeric_dtype(events[column]):
            np.testing.assert_allclose(events_back[column].astype(float),
                                       events[column].astype(float), atol=1e-9, err_msg=column)
        else:
            assert list(events_back[column]) == list(events[column]), column
    arrivals_back = arrivals_back.sort_values(["event_id", "pick_index"]).reset_index(drop=True)
    arrivals_sorted = arrivals.sort_values(["event_id", "pick_index"]).reset_index(drop=True)
    for column in arrivals.columns:
        assert column in arrivals_back, column
        expected, got = arrivals_sorted[column], arrivals_back[column]
        if pd.api.types.is_numeric_dtype(expected):
            np.testing.assert_allclose(got.astype(float), expected.astype(float), atol=1e-9,
                                       err_msg=column)
        else:
            assert _text(got) == _text(expected), column
    assert_picks_equal(picks_back, picks)
    return events, arrivals, picks
