"""Labellers: exact targets, inverses, pick curves that follow the (moved) picks."""

import numpy as np
import pytest

from utrans.augment import Batch
from utrans.labels import (BackAzimuthLabeller, DetectionPickLabeller, DistanceLabeller,
                           LocationLabeller, MagnitudeLabeller, PickLabeller, PolarityLabeller,
                           ReconstructionLabeller, get_labeller, pick_curve)


def test_location_target_and_exact_inverse():
    lab = LocationLabeller(max_d=114.5, min_d=1e-5)
    meta = {"station_latitude_deg": 35.5, "station_longitude_deg": -117.25,
            "source_latitude_deg": 35.0, "source_longitude_deg": -118.0, "source_depth_km": 57.25}
    y = lab(meta)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [0.5, 0.75, (57.25 - 1e-5) / (114.5 - 1e-5)], rtol=1e-6)
    # inverse in float64 recovers the event exactly
    pred = np.array([[0.5, 0.75, (57.25 - 1e-5) / (114.5 - 1e-5)]])
    lat, lon, dep = lab.inverse(pred, 35.5, -117.25)
    assert lat[0] == pytest.approx(35.0, abs=1e-12)
    assert lon[0] == pytest.approx(-118.0, abs=1e-12)
    assert dep[0] == pytest.approx(57.25, abs=1e-10)
    assert lab.normalize_depth(114.5) == pytest.approx(1.0)
    assert lab.normalize_depth(1e-5) == pytest.approx(0.0)
    # negative depth is clipped to 0 before normalising
    meta["source_depth_km"] = -3.0
    assert lab(meta)[2] == pytest.approx(-1e-5 / (114.5 - 1e-5))
    with pytest.raises(ValueError, match="max_d"):
        LocationLabeller(max_d=1.0, min_d=2.0)
    with pytest.raises(ValueError, match="shape"):
        lab.inverse(np.zeros((2, 2)), 0.0, 0.0)


def test_location_batch_matches_single():
    lab = LocationLabeller(max_d=100.0, min_d=0.0)
    meta = {"station_latitude_deg": np.array([1.0, 2.0]), "station_longitude_deg": np.array([3.0, 4.0]),
            "source_latitude_deg": np.array([0.5, 2.5]), "source_longitude_deg": np.array([3.0, 5.0]),
            "source_depth_km": np.array([50.0, -1.0])}
    batch = Batch(np.zeros((2, 3, 10), np.float32), meta=meta)
    np.testing.assert_allclose(lab.label_batch(batch), [[0.5, 0.0, 0.5], [-0.5, -1.0, 0.0]])


@pytest.mark.parametrize("kind,at10", [("triangle", 0.5), ("gaussian", np.exp(-0.5)), ("box", 1.0)])
def test_pick_curves(kind, at10):
    y = pick_curve(6000, 700.0, kind, width=40)
    assert y.shape == (6000,) and y.dtype == np.float32
    assert y[700] == pytest.approx(1.0)
    assert y[710] == pytest.approx(at10, rel=1e-6)
    assert y[690] == pytest.approx(at10, rel=1e-6)
    assert y[721] == 0.0 and y[679] == 0.0
    if kind == "triangle":
        assert y[720] == 0.0
    assert not pick_curve(100, np.nan).any()
    assert not pick_curve(100, 150.0).any()
    edge = pick_curve(100, 3.0, "triangle", 40)
    assert edge[3] == 1.0 and edge[0] == pytest.approx(1 - 3 / 20)
    with pytest.raises(ValueError, match="bogus"):
        pick_curve(100, 5.0, "bogus")


def test_pick_labeller_uses_moved_and_second_picks():
    x = np.zeros((2, 3, 6000), np.float32)
    b = Batch(x, p=[900.0, 500.0], s=[1500.0, 800.0], noise=[False, True])
    b.p2[0], b.s2[0] = 4000.0, 4600.0
    y = PickLabeller("P", "triangle").label_batch(b)
    assert y.shape == (2, 6000, 1)
    assert y[0, 900, 0] == 1.0 and y[0, 4000, 0] == 1.0
    assert y[0].sum() == pytest.approx(2 * 20.0)
    assert not y[1].any()  # noise traces get no pick
    ys = PickLabeller("S", "box").label_batch(b)
    assert ys[0, 1500, 0] == 1.0 and ys[0, 4600, 0] == 1.0 and ys[0, 900, 0] == 0.0
    single = PickLabeller("P", samples=6000)({"trace_p_arrival_sample": 100.0})
    assert single.shape == (6000, 1) and single[100, 0] == 1.0


def test_detection_window():
    b = Batch(np.zeros((1, 3, 6000), np.float32), p=[1000.0], s=[2000.0])
    y = DetectionPickLabeller(coda_ratio=0.4).label_batch(b)
    assert y.shape == (1, 6000, 3)
    det = y[0, :, 0]
    assert det[999] == 0 and det[1000] == 1 and det[2399] == 1 and det[2400] == 0
    assert y[0, 1000, 1] == 1.0 and y[0, 2000, 2] == 1.0
    assert DetectionPickLabeller()({"trace_category": "noise"}).sum() == 0


def test_scalar_labellers():
    meta = {"source_magnitude": 3.25, "path_ep_distance_km": 42.0, "path_back_azimuth_deg": 90.0,
            "trace_p_polarity": "negative"}
    assert MagnitudeLabeller()(meta)[0] == pytest.approx(3.25)
    assert DistanceLabeller()(meta)[0] == pytest.approx(42.0)
    assert DistanceLabeller(scale=100.0)(meta)[0] == pytest.approx(0.42)
    np.testing.assert_allclose(BackAzimuthLabeller()(meta), [0.0, 1.0], atol=1e-7)
    assert PolarityLabeller()(meta)[0] == 0.0
    assert PolarityLabeller()({"trace_p_polarity": "positive"})[0] == 1.0
    with pytest.raises(ValueError, match="None"):
        PolarityLabeller()({"trace_p_polarity": None})
    baz = np.array([0.0, 45.0, 200.0, 359.0])
    enc = np.stack([np.cos(np.radians(baz)), np.sin(np.radians(baz))], -1)
    np.testing.assert_allclose(BackAzimuthLabeller.inverse(enc), baz, atol=1e-9)


def test_reconstruction_target_is_clean():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6000)).astype(np.float32)
    b = Batch(x.copy())
    y = ReconstructionLabeller().label_batch(b, np.random.default_rng(1))
    np.testing.assert_array_equal(y, x.transpose(0, 2, 1))
    assert not np.allclose(b.x, x)  # input corrupted
    zeros = (b.x == 0).all(axis=1).sum(axis=1)
    assert ((zeros >= 1) & (zeros < 600)).all()


def test_get_labeller():
    assert isinstance(get_labeller("location", max_d=10.0, min_d=0.0), LocationLabeller)
    assert get_labeller("location", max_d=10.0, min_d=0.0).max_d == 10.0
    assert get_labeller("s_pick").phase == "S"
    with pytest.raises(ValueError, match="nonsense"):
        get_labeller("nonsense")
