"""The one QuakeML writer: events and picks-only catalogues read back value by value."""

import numpy as np
import obspy
import pandas as pd
import pytest
from catalog_support import assert_picks_equal

from utrans.catalog import station_magnitudes
from utrans.quakeml import ARRIVAL_COLUMNS, EVENT_COLUMNS, build_catalog, read_catalog_values

M = "seist_m_emg_diting"


def _picks():
    """Six picks: two events of two P and one S each, and one unassociated pick."""
    rows = []
    times = ["2024-03-01T00:10:01.230000Z", "2024-03-01T00:10:01.840000Z",
             "2024-03-01T00:10:02.915000Z", "2024-03-01T00:20:05.010000Z",
             "2024-03-01T00:20:05.500000Z", "2024-03-01T00:20:07.125000Z",
             "2024-03-01T00:30:00.000000Z"]
    specs = [("SY.A.", "P", "e1"), ("SY.B.00", "P", "e1"), ("SY.A.", "S", "e1"),
             ("SY.A.", "P", "e2"), ("SY.B.00", "P", "e2"), ("SY.B.00", "S", "e2"),
             ("SY.C.", "P", "")]
    for k, ((trace_id, phase, event_id), time) in enumerate(zip(specs, times)):
        peak = obspy.UTCDateTime(time)
        p = phase == "P"
        rows.append({
            "trace_id": trace_id, "phase": phase, "peak_time": time,
            "peak_value": 0.5 + k / 17.0, "start_time": str(peak - 0.07),
            "end_time": str(peak + 0.11), "instrument": "HH", "model": "seist_m_dpk_diting",
            f"magnitude__{M}": 1.0 + k / 7.0 if p else np.nan,
            "back_azimuth_deg__seist_m_baz_diting": 10.0 + 40.3 * k if p else np.nan,
            "distance_km__seist_m_dis_diting": 5.0 + k / 3.0 if p else np.nan,
            "polarity__seist_m_pmp_diting": ("U" if k % 2 else "D") if p else "",
            "polarity_prob__seist_m_pmp_diting": 0.6 + k / 31.0 if p else np.nan,
            "characterize_note": "" if p or k != 2 else "seist_m_pmp_diting: 0.2 s before P",
            "event_id": event_id})
    return pd.DataFrame(rows, index=[3, 5, 8, 13, 21, 34, 55])   # pick numbers need not be 0..n


def _tables():
    picks = _picks()
    arrivals = picks[picks["event_id"] != ""].copy()
    arrivals = arrivals.rename(columns={"peak_time": "time"})
    arrivals["pick_index"] = arrivals.index
    arrivals["residual_s"] = [0.031, -0.12, 0.2125, -0.04, 0.5, -0.333]
    arrivals["distance_km"] = [4.25, 6.5, 4.25, 12.0, 9.875, 9.875]
    arrivals["azimuth_deg"] = [15.5, 200.25, 15.5, 300.0, 90.5, 90.5]
    arrivals["back_azimuth_deg"] = (arrivals["azimuth_deg"] + 180.0) % 360.0
    arrivals["back_azimuth_residual_deg__seist_m_baz_diting"] = np.where(
        arrivals["phase"] == "P", [-3.5, 12.25, np.nan, 7.0, -170.5, np.nan], np.nan)
    arrivals["distance_residual_km__seist_m_dis_diting"] = np.where(
        arrivals["phase"] == "P", [0.75, -1.5, np.nan, 2.0, 0.125, np.nan], np.nan)
    arrivals = arrivals.drop(columns=["peak_value", "start_time", "end_time", "instrument",
                                      "model", "characterize_note"]).reset_index(drop=True)
    estimate = [c for c in picks.columns if "__" in c]
    residual = [c for c in arrivals.columns if "_residual_" in c]
    arrivals = arrivals[ARRIVAL_COLUMNS + estimate + residual]
    events = pd.DataFrame({
        "event_id": ["e1", "e2"],
        "time": ["2024-03-01T00:09:59.123456Z", "2024-03-01T00:20:02.654321Z"],
        "latitude": [47.512345678, 47.4], "longitude": [12.0987654321, 11.95],
        "depth_km": [7.03125, 12.65625], "n_picks": [3, 3], "n_p": [2, 2], "n_s": [1, 1],
        "rms_s": [0.1411, 0.3459], "magnitude": [1.0714285714285714, np.nan],
        "magnitude_n_stations": [2, 0], "magnitude_spread": [0.0714285714285714, np.nan]})
    return events[EVENT_COLUMNS], arrivals, picks


def _read_back(catalog, tmp_path):
    path = tmp_path / "catalog.xml"
    catalog.write(str(path), format="QUAKEML")
    return obspy.read_events(str(path))


def test_event_catalogue_round_trip(tmp_path):
    events, arrivals, picks = _tables()
    stations = station_magnitudes(arrivals)
    catalog = _read_back(build_catalog(picks, events, arrivals, stations), tmp_path)
    assert len(catalog) == 3                               # two events + unassociated picks
    e1 = catalog.events[0]
    origin, magnitude = e1.preferred_origin(), e1.preferred_magnitude()
    assert str(e1.resource_id) == "smi:local/utrans/event/e1"
    assert origin.time == obspy.UTCDateTime("2024-03-01T00:09:59.123456Z")
    assert (origin.latitude, origin.longitude) == (47.512345678, 12.0987654321)
    assert origin.depth == 7031.25
    assert origin.quality.used_phase_count == 3 and origin.quality.standard_error == 0.1411
    assert magnitude.mag == 1.0714285714285714
    assert magnitude.mag_errors.uncertainty == 0.0714285714285714
    assert magnitude.station_count == 2 and len(magnitude.station_magnitude_contributions) == 2
    assert sorted(sm.mag for sm in e1.station_magnitudes) == [1.0, 1.1428571428571428]
    assert catalog.events[1].preferred_magnitude() is None       # no magnitude, none written
    arrival = origin.arrivals[1]
    assert arrival.time_residual == -0.12 and arrival.azimuth == 200.25
    assert arrival.backazimuth_residual == 12.25
    pick = next(p for p in e1.picks if p.resource_id == arrival.pick_id)
    assert pick.waveform_id.get_seed_string() == "SY.B.00.HH?"
    assert pick.polarity == "positive" and pick.backazimuth == 10.0 + 40.3 * 1
    assert pick.time_errors.lower_uncertainty == pytest.approx(0.07, abs=1e-6)
    assert str(catalog.events[2].event_type) == "not reported"
    assert [p.waveform_id.station_code for p in catalog.events[2].picks] == ["C"]

    # Every value, table by table.
    events_back, arrivals_back, picks_back, stations_back = read_catalog_values(catalog)
    pd.testing.assert_frame_equal(events_back, events, check_dtype=False, atol=1e-9)
    arrivals_back = arrivals_back.sort_values("pick_index").reset_index(drop=True)
    for column in arrivals.columns:
        expected = arrivals[column]
        got = arrivals_back[column] if column in arrivals_back else None
        assert got is not None, column
        if not pd.api.types.is_numeric_dtype(expected):
            assert list(got.fillna("")) == list(expected.fillna("")), column
        else:
            np.testing.assert_allclose(got.astype(float), expected.astype(float), atol=1e-9,
                                       err_msg=column)
    pd.testing.assert_frame_equal(stations_back.reset_index(drop=True), stations,
                                  check_dtype=False)
    assert_picks_equal(picks_back, picks)


def test_picks_only_catalogue_is_the_same_writer(tmp_path):
    picks = _picks().drop(columns="event_id")
    catalog = _read_back(build_catalog(picks), tmp_path)
    assert len(catalog) == 1
    event = catalog.events[0]
    assert str(event.event_type) == "not reported" and len(event.picks) == len(picks)
    first = event.picks[0]
    texts = [c.text for c in first.comments]
    assert "probability=0.5" in texts
    assert f"magnitude__{M}=1.0" in texts
    assert "polarity__seist_m_pmp_diting=D" in texts and first.polarity == "negative"
    third = event.picks[2]                                  # an S pick: a note, no estimates
    assert [c.text for c in third.comments][1:] == [
        "characterize_note=seist_m_pmp_diting: 0.2 s before P"]
    _, _, picks_back, _ = read_catalog_values(catalog)
    assert_picks_equal(picks_back, picks.assign(event_id=""))


def test_empty_picks_make_one_empty_event():
    catalog = build_catalog(pd.DataFrame(columns=["trace_id", "phase", "peak_time"]))
    assert len(catalog) == 1 and len(catalog.events[0].picks) == 0


def test_inconsistent_tables_are_refused():
    events, arrivals, picks = _tables()
    with pytest.raises(ValueError, match="needs their arrivals"):
        build_catalog(picks, events)
    with pytest.raises(ValueError, match=r"absent from the picks table. Received: pick_index=\[3"):
        build_catalog(picks.drop(index=3), events, arrivals)
