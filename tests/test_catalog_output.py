"""write_catalog: tables, QuakeML, settings and figures in one folder, atomically."""

import json
import logging
import os
import stat

import numpy as np
import obspy
import pandas as pd
import pytest
from catalog_support import require

from utrans.catalog import (
    AssociationSettings,
    synthetic_arrivals,
    synthetic_events,
    synthetic_picks,
    synthetic_stations,
    synthetic_waveforms,
    write_catalog,
)
from utrans.catalog.values import ARRIVAL_COLUMNS, EVENT_COLUMNS

require("pyocto")
from utrans.catalog import associate_picks  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:The inplace keyword in DataFrame.drop is deprecated")

START = obspy.UTCDateTime("2024-03-01T00:00:00")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def scenario():
    stations = synthetic_stations(n_stations=6, aperture_km=30.0, seed=21)
    events = synthetic_events(stations, n_events=3, duration_s=600.0, start=START, seed=22)
    arrivals = synthetic_arrivals(events, stations, "vp=6.0,vs=3.5", seed=23)
    picks = synthetic_picks(arrivals, events, stations, seed=24).drop(columns="true_event_id")
    stream = synthetic_waveforms(stations, events, arrivals, START, 600.0, seed=25)
    settings = AssociationSettings(min_picks=6, min_p_picks=3, min_s_picks=2)
    return stations, events, picks, stream, settings


def test_writes_every_file(tmp_path, scenario):
    stations, events, picks, stream, settings = scenario
    result = associate_picks(picks, stations, "vp=6.0,vs=3.5", settings)
    assert len(result.events) == 3
    old = os.umask(0o022)
    try:
        written = write_catalog(tmp_path, result.events, result.arrivals, result.picks,
                                stations=stations, velocity="vp=6.0,vs=3.5",
                                settings=result.settings, waveforms=stream)
    finally:
        os.umask(old)
    names = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    expected = ["arrivals.csv", "catalog.xml", "events.csv", "map.png", "picks.csv",
                "settings.json"] + [f"events/{e}.png" for e in result.events["event_id"]]
    assert names == sorted(expected)
    assert set(written) == {"events", "arrivals", "picks", "catalog", "settings", "map"} | {
        f"events/{e}" for e in result.events["event_id"]}
    for name in names:
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
    assert all((tmp_path / n).read_bytes()[:8] == PNG for n in names if n.endswith(".png"))
    back = pd.read_csv(tmp_path / "events.csv")
    assert list(back.columns) == EVENT_COLUMNS
    np.testing.assert_allclose(back["latitude"], result.events["latitude"])
    arrivals = pd.read_csv(tmp_path / "arrivals.csv")
    assert list(arrivals.columns[:len(ARRIVAL_COLUMNS)]) == ARRIVAL_COLUMNS
    assert "back_azimuth_residual_deg__synthetic" in arrivals.columns
    picks_back = pd.read_csv(tmp_path / "picks.csv", keep_default_na=False)
    assert len(picks_back) == len(picks) and (picks_back["event_id"] != "").sum() == len(arrivals)
    catalog = obspy.read_events(str(tmp_path / "catalog.xml"))
    located = [e for e in catalog if str(e.event_type) == "earthquake"]
    assert len(located) == 3
    assert sum(len(e.picks) for e in catalog) == len(picks)
    data = json.loads((tmp_path / "settings.json").read_text())
    assert data["settings"]["min_picks"] == 6 and data["resolved"]["overlap_s"] > 0


def test_empty_period_writes_headers_and_says_so(tmp_path, scenario, caplog):
    stations, _, picks, _, settings = scenario
    quiet = picks.iloc[:5]                     # too few picks for any event
    result = associate_picks(quiet, stations, "vp=6.0,vs=3.5", settings)
    assert len(result.events) == 0
    with caplog.at_level(logging.WARNING, logger="utrans.catalog.output"):
        write_catalog(tmp_path, result.events, result.arrivals, result.picks, stations=stations,
                      settings=settings)
    assert "No events in this period (5 picks)" in caplog.text
    assert (tmp_path / "events.csv").read_text().strip() == ",".join(EVENT_COLUMNS)
    header = (tmp_path / "arrivals.csv").read_text().strip().split(",")
    assert header[:len(ARRIVAL_COLUMNS)] == ARRIVAL_COLUMNS
    assert "distance_residual_km__synthetic" in header
    assert len(pd.read_csv(tmp_path / "picks.csv")) == 5
    catalog = obspy.read_events(str(tmp_path / "catalog.xml"))
    assert len(catalog) == 1 and len(catalog[0].picks) == 5
    assert AssociationSettings.read(tmp_path / "settings.json") == settings
    assert (tmp_path / "map.png").read_bytes()[:8] == PNG


def test_record_sections_need_stations_and_model(tmp_path, scenario):
    stations, _, picks, stream, settings = scenario
    result = associate_picks(picks, stations, "vp=6.0,vs=3.5", settings)
    with pytest.raises(ValueError, match="Record sections need the stations and the velocity"):
        write_catalog(tmp_path, result.events, result.arrivals, result.picks, waveforms=stream)
