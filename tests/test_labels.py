"""Labellers: exact targets, inverses, pick curves that follow the (moved) picks."""

import numpy as np
import pytest

from utrans.augment import Batch
from utrans.labels import (
    BackAzimuthLabeller,
    DetectionPickLabeller,
    DistanceLabeller,
    LocationLabeller,
    MagnitudeLabeller,
    PickLabeller,
    PolarityLabeller,
    ReconstructionLabeller,
    SeisTLabeller,
    get_labeller,
    pair_phases,
    pick_curve,
    soft_label_window,
)


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
    inputs = x.transpose(0, 2, 1).copy()  # the model inputs (batch, samples, 3)
    y = ReconstructionLabeller().label_batch(b, np.random.default_rng(1), inputs=inputs)
    assert y.shape == (2, 6000, 3) and y.dtype == np.float32
    np.testing.assert_array_equal(y, x.transpose(0, 2, 1))  # the clean inputs
    assert not np.allclose(inputs, y)  # the model inputs are corrupted in place
    np.testing.assert_array_equal(b.x, x)  # the stored waveforms are left alone
    zeros = (inputs == 0).all(axis=2).sum(axis=1)
    assert ((zeros >= 1) & (zeros < 600)).all()
    with pytest.raises(ValueError, match="inputs="):
        ReconstructionLabeller().label_batch(Batch(x.copy()), np.random.default_rng(1))


def test_get_labeller():
    assert isinstance(get_labeller("location", max_d=10.0, min_d=0.0), LocationLabeller)
    assert get_labeller("location", max_d=10.0, min_d=0.0).max_d == 10.0
    assert get_labeller("s_pick").phase == "S"
    with pytest.raises(ValueError, match="nonsense"):
        get_labeller("nonsense")


# --------------------------------------------------------------------------- SeisT soft labels
def test_soft_label_window_shapes():
    k, g = soft_label_window(25)  # 0.5 s at 50 Hz
    assert k[0] == -12 and k[-1] == 13 and k.size == 26
    np.testing.assert_allclose(g, np.exp(-k ** 2 / 200.0))  # sigma 10 samples, not width / 4
    assert g[0] == pytest.approx(0.4868, abs=1e-4) and g[-1] == pytest.approx(0.4296, abs=1e-4)
    _, g50 = soft_label_window(50, sigma=10.0)
    assert g50.size == 51 and g50[0] == pytest.approx(np.exp(-625 / 200))
    _, tri = soft_label_window(25, "triangle")
    assert tri[12] == 1.0 and tri[0] == pytest.approx(1 - 24 / 25) and tri[-1] == pytest.approx(-0.04)
    _, box = soft_label_window(4, "box")
    np.testing.assert_array_equal(box, np.ones(5))
    k, sig = soft_label_window(20, "sigmoid")
    assert sig[10] == 1.0 and sig.size == 21 and k[0] == -10
    assert np.all(np.diff(sig[:11]) > 0) and np.all(np.diff(sig[10:]) < 0)
    assert sig[0] == pytest.approx(1 / (1 + np.exp(5.0)))
    with pytest.raises(ValueError, match="gauss"):
        soft_label_window(25, "gauss")


def test_pair_phases_pads_unmatched_picks():
    assert pair_phases([100], [150], 25, 8192) == [(100, 150)]
    assert pair_phases([], [150], 25, 8192) == [(-25, 150)]  # P before the window
    assert pair_phases([100], [], 25, 8192) == [(100, 8217)]  # S beyond the window
    assert pair_phases([5000], [150, 5100], 25, 8192) == [(-25, 150), (5000, 5100)]
    assert pair_phases([100, 5000], [150], 25, 8192) == [(100, 150), (5000, 8217)]
    assert pair_phases([8000], [50], 25, 8192) == [(-25, 50), (8000, 8217)]


def _seist(p, s, p2=np.nan, s2=np.nan, labels=("det", "ppk", "spk", "non"), samples=1000, **kw):
    lab = SeisTLabeller(labels, sampling_rate=50.0, samples=samples, **kw)
    return lab.from_picks([p], [s], [p2], [s2])[0].astype(np.float64)


def test_seist_labels_exact():
    y = _seist(200, 250)
    det, ppk, spk, non = y.T
    k = np.arange(-12, 14)
    np.testing.assert_allclose(ppk[188:214], np.exp(-k ** 2 / 200.0), rtol=1e-7)
    assert ppk[187] == 0 and ppk[214] == 0 and ppk.sum() == pytest.approx(np.exp(-k ** 2 / 200).sum(), rel=1e-6)
    np.testing.assert_allclose(spk[238:264], np.exp(-k ** 2 / 200.0), rtol=1e-7)
    # coda end D = int(250 + 2 * 50) = 350: det rises before P, is 1 on [P, D], falls after D
    np.testing.assert_array_equal(det[200:351], 1.0)
    np.testing.assert_allclose(det[188:200], ppk[188:200], rtol=1e-7)
    assert det[351] == pytest.approx(np.exp(-1 / 200), rel=1e-6) and det[363] > 0 and det[364] == 0
    np.testing.assert_allclose(non, np.maximum(1 - ppk - spk, 0), atol=1e-7)
    # the old behaviour is one option away: another width, sigma and coda ratio
    other = _seist(200, 250, label_width_s=0.2, sigma=4.0, coda_ratio=0.4)
    assert other[210, 1] == 0 and other[205, 1] == pytest.approx(np.exp(-25 / 32), rel=1e-6)
    assert other[270, 0] == 1 and other[271, 0] < 1


def test_seist_labels_cut_at_the_edges_and_summed():
    edge = _seist(3, 51, samples=400)
    # the P label keeps its alignment: samples -9..16 of which 0..16 remain
    np.testing.assert_allclose(edge[:17, 1], np.exp(-(np.arange(17) - 3) ** 2 / 200), rtol=1e-7)
    late = _seist(340, 388, samples=400)
    assert late[388, 2] == 1.0 and late[399, 2] == pytest.approx(np.exp(-121 / 200), rel=1e-6)
    # coda end 484 beyond the window: no label there, det is 1 up to the end
    np.testing.assert_array_equal(late[340:, 0], 1.0)
    # S before the window start (P missing): P padded at -width, det from 0 to D
    cut = _seist(np.nan, 20, samples=400)
    assert not cut[:, 1].any() and cut[20, 2] == 1.0
    d = int(20 + 2 * (20 + 25))
    np.testing.assert_array_equal(cut[:d + 1, 0], 1.0)
    assert cut[d + 1, 0] < 1.0
    # two close P picks add up (the reference sums, it does not take the maximum)
    two = _seist(100, 300, p2=105, s2=320, samples=1000)
    assert two[100, 1] == pytest.approx(1 + np.exp(-25 / 200), rel=1e-7)
    assert two[:, 0].max() == 1.0  # det is clipped at 1
    # a P that does not precede its S makes the trace a noise trace (no label)
    assert not _seist(300, 250).any()
    assert _seist(np.nan, np.nan)[:, 3].min() == 1.0


def test_seist_labeller_scales_data_picks_to_the_model_rate():
    x = np.zeros((3, 3, 6000), np.float32)
    b = Batch(x, p=[701.0, 700.0, 500.0], s=[901.0, 899.0, 800.0], noise=[False, False, True])
    lab = SeisTLabeller(("det", "ppk", "spk"), sampling_rate=50.0, samples=4096, data_rate=100.0)
    y = lab.label_batch(b)
    assert y.shape == (3, 4096, 3) and y.dtype == np.float32
    assert np.argmax(y[0, :, 1]) == 351 and np.argmax(y[0, :, 2]) == 451  # 350.5, 450.5: halves up
    assert np.argmax(y[1, :, 1]) == 350 and np.argmax(y[1, :, 2]) == 450  # 449.5 -> 450
    assert not y[2].any()  # noise
    assert lab.width == 25 and lab.output_shape == (4096, 3)
    free = SeisTLabeller(("ppk",), sampling_rate=50.0, data_rate=100.0).label_batch(b)
    assert free.shape == (3, 3000, 1)
    one = SeisTLabeller(("ppk",), sampling_rate=50.0, samples=3000, data_rate=100.0)(
        {"trace_p_arrival_sample": 1000.0, "trace_s_arrival_sample": 1200.0})
    assert one.shape == (3000, 1) and one[500, 0] == 1.0
    with pytest.raises(ValueError, match="labels"):
        SeisTLabeller(("det", "P"))
