"""Association with PyOcto: a synthetic catalogue recovered, chunk edges, the merge rule."""

import pickle

import numpy as np
import obspy
import pandas as pd
import pytest
from catalog_support import require
from obspy.geodetics import gps2dist_azimuth

from utrans.catalog import (
    AssociationSettings,
    CatalogWarning,
    synthetic_arrivals,
    synthetic_events,
    synthetic_picks,
    synthetic_stations,
)
from utrans.catalog.chain import _chunk_runner
from utrans.catalog.values import wrap_degrees

require("pyocto")

from utrans.catalog import (  # noqa: E402  (after the pyocto check)
    Chunk,
    ChunkResult,
    associate_chunk,
    associate_picks,
    merge_chunks,
    plan_chunks,
    prepare_jobs,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:The inplace keyword in DataFrame.drop is deprecated")

#: Chosen before the first run and never changed; see the README's catalogue
#: section for the spread over other seeds.
SEED = 4242
VELOCITY = "vp=6.0,vs=3.5"


def _match(true_events, found, max_dt=3.0):
    """For each true event: index of the found event within max_dt s, or -1."""
    found_times = np.array([obspy.UTCDateTime(t).timestamp for t in found["time"]])
    out = []
    for t in true_events["time"]:
        dt = np.abs(found_times - obspy.UTCDateTime(t).timestamp) if len(found_times) else []
        out.append(int(np.argmin(dt)) if len(dt) and np.min(dt) < max_dt else -1)
    return np.array(out)


def _scenario(seed, n_events=20, duration_s=10800.0, events=None, **kwargs):
    """Stations, true events and arrivals, and the picks of a good picker."""
    seeds = np.random.SeedSequence(seed).spawn(4)
    stations = synthetic_stations(seed=seeds[0])
    if events is None:
        events = synthetic_events(stations, n_events=n_events, duration_s=duration_s,
                                  seed=seeds[1])
    elif callable(events):
        events = events(stations)
    arrivals = synthetic_arrivals(events, stations, VELOCITY, seed=seeds[2])
    picks = synthetic_picks(arrivals, events, stations, seed=seeds[3], **kwargs)
    return stations, events, arrivals, picks


def test_recovers_a_synthetic_catalogue():
    stations, events, _, picks = _scenario(SEED)
    assert (picks["true_event_id"] == "").sum() > 50      # false picks are there
    result = associate_picks(picks, stations, VELOCITY, AssociationSettings())
    match = _match(events, result.events)
    recall = np.mean(match >= 0)
    assert recall >= 0.9
    found = result.events.iloc[match[match >= 0]]
    errors = [gps2dist_azimuth(t.latitude, t.longitude, f.latitude, f.longitude)[0] / 1000.0
              for t, f in zip(events[match >= 0].itertuples(), found.itertuples())]
    assert np.median(errors) <= 5.0
    assert len(result.events) <= len(events) + 1         # no flood of false events
    # Magnitudes: the median of station medians of noisy (0.2) estimates.
    true_magnitudes = events["magnitude"].to_numpy()[match >= 0]
    assert np.median(np.abs(found["magnitude"].to_numpy() - true_magnitudes)) < 0.2


def test_event_values_are_consistent():
    stations, events, _, picks = _scenario(SEED + 1, n_events=6, duration_s=1800.0)
    result = associate_picks(picks, stations, VELOCITY)
    events_out, arrivals, picks_out = result.events, result.arrivals, result.picks
    assert len(events_out) >= 5
    for event in events_out.itertuples():
        rows = arrivals[arrivals["event_id"] == event.event_id]
        assert event.n_picks == len(rows) == event.n_p + event.n_s
        assert event.rms_s == pytest.approx(np.sqrt(np.mean(rows["residual_s"] ** 2)))
        p_rows = rows[rows["phase"] == "P"]
        station_magnitudes = p_rows.groupby("trace_id")["magnitude__synthetic"].median()
        assert event.magnitude == pytest.approx(np.median(station_magnitudes))
        assert event.magnitude_n_stations == len(station_magnitudes)
        assert event.magnitude_spread == pytest.approx(
            np.median(np.abs(station_magnitudes - event.magnitude)))
        # Residuals against the located event; obspy's geodesics (geographiclib)
        # check the package's (pyproj).
        site = stations.assign(trace_id=stations.network + "." + stations.station + ".") \
            .set_index("trace_id").loc[rows["trace_id"]]
        geodesics = np.array([gps2dist_azimuth(event.latitude, event.longitude, lat, lon)
                              for lat, lon in zip(site["latitude"], site["longitude"])])
        metres, back_azimuth = geodesics[:, 0], geodesics[:, 2]
        np.testing.assert_allclose(rows["distance_km"], metres / 1000.0, rtol=1e-6)
        np.testing.assert_allclose(wrap_degrees(rows["back_azimuth_deg"] - back_azimuth), 0.0,
                                   atol=1e-5)
        np.testing.assert_allclose(wrap_degrees(rows["azimuth_deg"] - geodesics[:, 1]), 0.0,
                                   atol=1e-5)
        estimated = rows["back_azimuth_deg__synthetic"].astype(float)
        residual = rows["back_azimuth_residual_deg__synthetic"]
        filled = estimated.notna()
        located = back_azimuth[filled.to_numpy()]
        np.testing.assert_allclose(residual[filled], wrap_degrees(estimated[filled] - located),
                                   atol=1e-5)
        assert residual[filled].between(-180.0, 180.0, inclusive="left").all()
        np.testing.assert_allclose(rows["distance_residual_km__synthetic"][filled],
                                   rows["distance_km__synthetic"][filled] - metres[filled] / 1e3,
                                   rtol=1e-6, atol=1e-6)
    # picks.csv: every pick, event_id where associated, consistent with arrivals.
    assert len(picks_out) == len(picks)
    associated = picks_out[picks_out["event_id"] != ""]
    assert sorted(associated.index) == sorted(arrivals["pick_index"])
    assert (associated.loc[arrivals["pick_index"], "event_id"].to_numpy()
            == arrivals["event_id"].to_numpy()).all()


def test_residuals_are_observed_minus_predicted():
    stations, _, _, picks = _scenario(SEED + 2, n_events=3, duration_s=900.0)
    result = associate_picks(picks, stations, VELOCITY)
    from utrans.catalog import parse_velocity
    model = parse_velocity(VELOCITY)
    elevation = stations.assign(trace_id=stations.network + "." + stations.station + ".") \
        .set_index("trace_id")["elevation_m"]
    rows = result.arrivals.merge(result.events[["event_id", "time", "depth_km"]]
                                 .rename(columns={"time": "origin"}), on="event_id")
    predicted = [obspy.UTCDateTime(r.origin) + float(model.travel_time(
        r.phase, r.distance_km, r.depth_km, elevation[r.trace_id])) for r in rows.itertuples()]
    observed = [obspy.UTCDateTime(t) for t in rows["time"]]
    np.testing.assert_allclose([o - p for o, p in zip(observed, predicted)], rows["residual_s"],
                               atol=0.01)


def _edge_events(stations, boundaries, offsets):
    """One event per (boundary, offset) pair: origin = boundary + offset."""
    rng = np.random.default_rng(11)
    rows = []
    for k, (b, d) in enumerate(zip(boundaries, offsets)):
        rows.append({"event_id": f"edge{k}", "time": str(obspy.UTCDateTime(b + d)),
                     "latitude": rng.uniform(stations.latitude.min(), stations.latitude.max()),
                     "longitude": rng.uniform(stations.longitude.min(), stations.longitude.max()),
                     "depth_km": rng.uniform(3.0, 12.0), "magnitude": 2.0})
    return pd.DataFrame(rows)


def test_chunk_edge_events_neither_lost_nor_doubled():
    chunk_s = 600.0
    start = obspy.UTCDateTime("2024-03-01T00:00:00").timestamp
    boundaries = start + chunk_s * np.arange(1, 9)
    # Origins just before, on, and just after chunk boundaries: their picks
    # fall in two chunks.
    offsets = [-12.0, -2.0, -0.4, 0.0, 0.3, 1.5, 6.0, -25.0]
    stations, events, _, picks = _scenario(
        SEED, events=lambda sites: _edge_events(sites, boundaries, offsets), false_per_hour=0.0)
    settings = AssociationSettings(chunk_s=chunk_s)
    chunked = associate_picks(picks, stations, VELOCITY, settings)
    whole = associate_picks(picks, stations, VELOCITY, AssociationSettings(chunk_s=1e6))
    assert chunked.settings["resolved"]["n_chunks"] == 8
    assert whole.settings["resolved"]["n_chunks"] == 1
    match = _match(events, chunked.events)
    assert (match >= 0).all(), f"lost: {list(events.event_id[match < 0])}"
    assert len(set(match)) == len(events) == len(chunked.events)   # none doubled
    assert len(whole.events) == len(events)
    # Chunk jobs travel (pickled, as to Dask workers) and give the same catalogue.
    shipped = associate_picks(picks, stations, VELOCITY, settings, map_function=lambda f, jobs: [
        f(pickle.loads(pickle.dumps(job))) for job in reversed(list(jobs))])
    pd.testing.assert_frame_equal(shipped.events, chunked.events)
    pd.testing.assert_frame_equal(shipped.arrivals, chunked.arrivals)
    # The merge had work to do: before it, edge events were seen by two chunks.
    jobs = prepare_jobs(picks, stations, VELOCITY, settings)[0]
    raw = [associate_chunk(job) for job in jobs]
    assert sum(len(r.events) for r in raw) > len(events)
    # Same picks, same events, whether cut or not.
    assert (chunked.arrivals.groupby("event_id").size().sort_index().to_numpy()
            == whole.arrivals.groupby("event_id").size().sort_index().to_numpy()).all()
    assert chunked.picks["event_id"].ne("").sum() == whole.picks["event_id"].ne("").sum()


def test_chunks_on_dask_workers_give_the_same_catalogue():
    """The runner of utrans catalog: chunks as Dask tasks (here threads) in any order."""
    distributed = pytest.importorskip("distributed")
    stations, _, _, picks = _scenario(SEED + 1, n_events=8, duration_s=5400.0)
    settings = AssociationSettings(chunk_s=900.0)
    here = associate_picks(picks, stations, VELOCITY, settings)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        there = associate_picks(picks, stations, VELOCITY, settings,
                                map_function=_chunk_runner(client, progress=False))
    assert here.settings["resolved"]["n_chunks"] == 6 and len(here.events) >= 7
    pd.testing.assert_frame_equal(there.events, here.events)
    pd.testing.assert_frame_equal(there.arrivals, here.arrivals)
    pd.testing.assert_frame_equal(there.picks, here.picks)


def test_plan_chunks_is_aligned_and_covers_origins():
    times = np.array([1000.0, 1190.0, 1210.0, 2050.0])
    chunks = plan_chunks(times, chunk_s=100.0, overlap_s=30.0)
    assert [c.index for c in chunks] == [9, 10, 11, 12, 20]   # 13-19 hold no pick
    first = chunks[0]
    assert (first.start, first.end, first.read_start, first.read_end) == (900.0, 1000.0, 870.0,
                                                                          1030.0)
    assert plan_chunks([], 100.0, 30.0) == []


def _result(index, start, events, assignments):
    chunk = Chunk(index, start, start + 100.0, start - 30.0, start + 130.0)
    return ChunkResult(chunk,
                       pd.DataFrame(events, columns=["chunk", "event", "time", "x", "y", "z",
                                                     "n_picks"]),
                       pd.DataFrame(assignments, columns=["chunk", "event", "pick_index",
                                                          "residual_s"]))


def test_merge_rule():
    settings = AssociationSettings(min_picks=4, min_p_picks=2, min_s_picks=2,
                                   min_p_and_s_stations=1)
    phases = pd.Series(["P", "S"] * 10)
    # The same event seen by chunks 0 and 1, placed either side of the boundary
    # at 100 s: kept once, by the chunk that gave it more picks.
    a = _result(0, 0.0, [(0, 0, 99.9, 0, 0, 5, 4)],
                [(0, 0, i, 0.1) for i in range(4)])
    b = _result(1, 100.0, [(1, 0, 100.2, 0, 0, 5, 5), (1, 1, 150.0, 1, 1, 5, 6)],
                [(1, 0, i, 0.1) for i in range(5)]
                + [(1, 1, i, 0.2) for i in (4, 10, 11, 12, 13, 14)])
    events, assignments = merge_chunks([a, b], settings, phases)
    assert list(events["key"]) == ["1:0", "1:1"]
    # Pick 4 claimed by both kept events: it stays where its residual is smaller.
    assert assignments.loc[assignments["pick_index"] == 4, "key"].tolist() == ["1:0"]
    assert assignments["pick_index"].is_unique
    # An event left without enough picks after the pick rule is dropped.
    c = _result(2, 200.0, [(2, 0, 210.0, 0, 0, 5, 4)], [(2, 0, i, 0.5) for i in (0, 1, 2, 15)])
    events, assignments = merge_chunks([b, c], settings, phases)
    assert list(events["key"]) == ["1:0", "1:1"]
    assert set(assignments["pick_index"]) == {0, 1, 2, 3, 4, 10, 11, 12, 13, 14}


def test_empty_and_unknown_station_picks():
    stations, _, _, picks = _scenario(SEED, n_events=2, duration_s=600.0)
    empty = pd.DataFrame(columns=["trace_id", "phase", "peak_time", "peak_value", "start_time",
                                  "end_time", "instrument", "model"])
    result = associate_picks(empty, stations, VELOCITY)
    assert len(result.events) == 0 and list(result.events.columns)[:3] == ["event_id", "time",
                                                                            "latitude"]
    picks.loc[picks.index[:3], "trace_id"] = "ZZ.NONE."
    with pytest.warns(CatalogWarning, match="ZZ.NONE"):
        result = associate_picks(picks, stations, VELOCITY)
    assert (result.picks.loc[picks.index[:3], "event_id"] == "").all()
    assert len(result.picks) == len(picks)


def test_bad_inputs():
    stations, _, _, picks = _scenario(SEED, n_events=2, duration_s=600.0)
    with pytest.raises(ValueError, match=r"lack the column\(s\) peak_time"):
        associate_picks(picks.drop(columns="peak_time"), stations, VELOCITY)
    bad_time = picks.assign(peak_time=picks["peak_time"].where(picks.index != 2, "yesterday"))
    with pytest.raises(ValueError, match=r"Pick times are ISO-8601 UTC text"):
        associate_picks(bad_time, stations, VELOCITY)
    with pytest.raises(ValueError, match=r"overlap_s must cover the longest S travel time"):
        associate_picks(picks, stations, VELOCITY, AssociationSettings(overlap_s=5.0))
    with pytest.raises(ValueError, match=r"No pick column 'magnitude__x'"):
        associate_picks(picks, stations, VELOCITY,
                        AssociationSettings(magnitude_column="magnitude__x"))
    with pytest.raises(ValueError, match=r"S must be slower than P"):
        associate_picks(picks, stations, "vp=3.0,vs=3.5")


def test_layered_model_association():
    require("pyrocko")
    from utrans.catalog import VelocityModel
    layered = VelocityModel(depth_km=(0.0, 4.0, 20.0), vp=(5.5, 6.1, 6.8), vs=(3.2, 3.55, 3.9))
    seeds = np.random.SeedSequence(SEED + 3).spawn(4)
    stations = synthetic_stations(seed=seeds[0])
    events = synthetic_events(stations, n_events=5, duration_s=1800.0, seed=seeds[1])
    arrivals = synthetic_arrivals(events, stations, layered, seed=seeds[2])
    picks = synthetic_picks(arrivals, events, stations, seed=seeds[3])
    result = associate_picks(picks, stations, layered)
    match = _match(events, result.events)
    assert np.mean(match >= 0) >= 0.8
    found = result.events.iloc[match[match >= 0]]
    errors = [gps2dist_azimuth(t.latitude, t.longitude, f.latitude, f.longitude)[0] / 1000.0
              for t, f in zip(events[match >= 0].itertuples(), found.itertuples())]
    assert np.median(errors) <= 5.0
    assert np.median(np.abs(result.arrivals["residual_s"])) < 0.3
