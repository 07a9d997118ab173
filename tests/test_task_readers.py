"""Readers of tasks 2-10 on hand-made CSVs, and the model adapters on known arrays."""

import json

import numpy as np
import pandas as pd
import pytest

from script_runner import run_script
from utrans import adapters
from utrans.models import losses
from utrans.core.tasks import get_task


def _read(tmp_path, number, frame):
    results = tmp_path / "hand_outputs" / "test"
    results.mkdir(parents=True)
    frame.to_csv(results / "predictions.csv", index=False)
    run_script(f"03_read/reader{number}.py", "--output_name", tmp_path / "hand")
    return json.loads((results / "metrics.json").read_text()), results


def test_picking_reader_single_phase_model(tmp_path):
    """An EQCCT-P-like CSV (P curve only): picks at 0.05, 0.3 and 1.0 s, one missed, one on noise.

    Every picker is scored by one rule: one-to-one matching, an unmatched pick
    is a false positive (also a too-far one), an unmatched arrival a miss.
    """
    nan = np.nan
    frame = pd.DataFrame({
        "trace_name": [f"T{i}" for i in range(6)],
        "true_p_sample": [500, 800, 300, 600, nan, nan],
        "pred_p_samples": ["505", "830", "400", "", "200", ""],
        "true_s_sample": nan, "pred_s_samples": nan,
        "true_det_start": nan, "true_det_end": nan, "pred_det_start": nan, "pred_det_end": nan,
        "n_samples": 6000, "sampling_rate": 100.0, "outputs": "P",
    })
    m, results = _read(tmp_path, 4, frame)
    # 0.5 s: TP T0, T1; T2's pick is 1 s off: FP and FN; FN T3; FP T4 (pick on noise)
    assert (m["p_tp_0.5s"], m["p_fp_0.5s"], m["p_fn_0.5s"]) == (2, 2, 2)
    assert m["p_precision_0.5s"] == pytest.approx(0.5) and m["p_recall_0.5s"] == pytest.approx(0.5)
    assert m["p_f1_0.5s"] == pytest.approx(0.5)
    assert m["p_mae_s_0.5s"] == pytest.approx(0.175) and m["p_std_s_0.5s"] == pytest.approx(0.125)
    # 0.1 s: only T0
    assert (m["p_tp_0.1s"], m["p_fp_0.1s"], m["p_fn_0.1s"]) == (1, 3, 3)
    assert m["p_mae_s_0.1s"] == pytest.approx(0.05)
    assert "s_f1_0.5s" not in m and m["det_f1"] is None  # the model has no S or detection curve
    assert m["outputs"] == ["P"]
    assert (results / "p_residual_hist.png").stat().st_size > 1000


def test_dpk_reader_seist_rule(tmp_path):
    nan = np.nan
    frame = pd.DataFrame({
        "trace_name": ["T0", "T1", "T2"],
        "true_p_sample": [100, 200, nan], "pred_p_samples": ["105;600", "", "50"],
        "true_s_sample": [300, 500, nan], "pred_s_samples": ["292", "540", ""],
        "true_det_start": [100, 200, nan], "true_det_end": [380, 620, nan],
        "pred_det_start": [100, 250, 0], "pred_det_end": [380, 620, 99],
        "n_samples": 1000, "sampling_rate": 100.0, "outputs": "det;P;S",
    })
    m, results = _read(tmp_path, 6, frame)
    # P: 105 matches 100; 600 and 50 are false picks; T1's P is missed
    for tol in ("0.1s", "0.5s"):
        assert (m[f"p_tp_{tol}"], m[f"p_fp_{tol}"], m[f"p_fn_{tol}"]) == (1, 2, 1)
        assert m[f"p_f1_{tol}"] == pytest.approx(0.4)
    # S: 292 within 0.1 s; 540 is 0.4 s late: FP + FN at 0.1 s, TP at 0.5 s
    assert (m["s_tp_0.1s"], m["s_fp_0.1s"], m["s_fn_0.1s"]) == (1, 1, 1)
    assert (m["s_tp_0.5s"], m["s_fp_0.5s"], m["s_fn_0.5s"]) == (2, 0, 0)
    assert m["s_mean_s_0.5s"] == pytest.approx(0.16) and m["s_mae_s_0.5s"] == pytest.approx(0.24)
    assert m["s_rmse_s_0.5s"] == pytest.approx(np.sqrt((0.08 ** 2 + 0.4 ** 2) / 2))
    # detection, sample-wise: TP 281 + 371, FN 50 (T1 200..249), FP 100 (T2 0..99)
    assert m["det_precision"] == pytest.approx(652 / 752)
    assert m["det_recall"] == pytest.approx(652 / 702)
    assert m["det_trace_precision"] == pytest.approx(2 / 3) and m["det_trace_recall"] == 1.0
    assert (results / "p_residual_hist.png").stat().st_size > 1000


def test_backazimuth_reader_wraps_errors(tmp_path):
    frame = pd.DataFrame({"trace_name": list("abcd"),
                          "true_baz_deg": [350.0, 10.0, 180.0, 90.0],
                          "pred_baz_deg": [10.0, 350.0, 90.0, 120.0]})
    frame["error_baz_deg"] = 0.0
    m, _ = _read(tmp_path, 9, frame)
    # wrapped errors +20, -20, -90, +30
    assert m["mae_deg"] == pytest.approx(40.0)
    assert m["mean_deg"] == pytest.approx(-15.0)
    assert m["rmse_deg"] == pytest.approx(np.sqrt(2450.0))


def test_classification_and_regression_readers(tmp_path):
    frame = pd.DataFrame({"trace_name": list("abcde"), "true_polarity": list("UUDDU"),
                          "pred_polarity": list("UDDUU"), "prob_up": [.9, .2, .1, .7, .8]})
    m, results = _read(tmp_path / "c", 7, frame)
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["confusion_matrix"] == [[1, 1], [1, 2]]  # rows true D, U; columns predicted D, U
    assert (results / "confusion_matrix.png").stat().st_size > 1000

    frame = pd.DataFrame({"trace_name": list("abcd"), "true_magnitude": [1.0, 2.0, 3.0, 4.0],
                          "pred_magnitude": [1.5, 2.0, 2.0, 5.0]})
    m, _ = _read(tmp_path / "r", 8, frame)
    assert m["mae"] == pytest.approx(0.625) and m["mean_error"] == pytest.approx(0.125)
    assert m["rmse"] == pytest.approx(0.75) and m["r2"] == pytest.approx(0.55)


# --------------------------------------------------------------------------- adapters
def _enz(n=2, t=6000):
    x = np.empty((n, t, 3), dtype=np.float32)
    x[..., 0], x[..., 1], x[..., 2] = 1.0, 2.0, 3.0  # E, N, Z
    return x


def test_waveform_adapter_channels_padding_cropping():
    task = get_task("emg")
    raw = adapters.get_adapter(task, "seist_s_emg", normalization="none")
    assert (raw.in_samples, raw.component_order, raw.sampling_rate) == (8192, "ZNE", 100.0)
    x = raw.inputs(_enz(), None)
    assert x.shape == (2, 8192, 3)
    np.testing.assert_array_equal(x[0, 0], [3.0, 2.0, 1.0])  # Z, N, E
    assert not x[:, 6000:].any()
    # Default (the reference): the padded window is normalised after the cut, per channel over
    # all 8192 samples: a constant c on 6000 samples becomes sqrt(2192 / 6000), the padding
    # -sqrt(6000 / 2192), whatever c.
    std = adapters.get_adapter(task, "seist_s_emg").inputs(_enz(), None)
    np.testing.assert_allclose(std[0, 0], np.sqrt(2192 / 6000), rtol=1e-6)
    np.testing.assert_allclose(std[0, -1], -np.sqrt(6000 / 2192), rtol=1e-6)
    np.testing.assert_allclose(std.astype(np.float64).mean(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(std.astype(np.float64).std(axis=1), 1.0, rtol=1e-6)
    crop = adapters.get_adapter(task, "magnet", in_samples=4096, component_order="ENZ",
                                normalization="none")
    np.testing.assert_array_equal(crop.inputs(_enz(), None)[0, -1], [1.0, 2.0, 3.0])
    assert crop.covered_samples(6000) == 4096
    with pytest.raises(ValueError, match="component_order"):
        adapters.get_adapter(task, "magnet", component_order="ZNN")
    with pytest.raises(TypeError, match="no option label_width_s"):
        adapters.get_adapter(task, "magnet", label_width_s=0.5)


def _dpk_targets(p, s, t=6000):
    """The dpk labeller's targets wrapped by a picking adapter: curves + picks channel."""
    from utrans.augment import Batch
    from utrans.labels import get_labeller

    batch = Batch(np.zeros((len(p), 3, t), np.float32), p=p, s=s)
    return adapters.PickChannelLabeller(get_labeller("dpk")).label_batch(batch)


def test_curves_round_trip_and_resampling():
    task = get_task("dpk")
    y = _dpk_targets([1000.0], [1100.0])
    assert y.shape == (1, 6000, 4)
    np.testing.assert_array_equal(y[0, :4, 3], [1000.0, 1100.0, np.nan, np.nan])
    a = adapters.get_adapter(task, "eqtransformer", in_samples=4096, sampling_rate=50)
    t = a.targets(y)
    # Built at 50 Hz from the picks: P at 500, S at 550, coda end 550 + 2 * 50 = 650;
    # width int(0.5 * 50) = 25 samples, sigma 10 samples.
    assert t.shape == (1, 4096, 3)
    assert t[0, 500, 1] == 1.0 and t[0, 550, 2] == 1.0
    assert t[0, 513, 1] == pytest.approx(np.exp(-13 ** 2 / 200), rel=1e-6) and t[0, 514, 1] == 0
    assert t[0, 488, 1] == pytest.approx(np.exp(-12 ** 2 / 200), rel=1e-6) and t[0, 487, 1] == 0
    np.testing.assert_array_equal(t[0, 500:651, 0], 1.0)
    assert t[0, 651, 0] == pytest.approx(np.exp(-1 / 200), rel=1e-6) and t[0, 664, 0] == 0
    x = a.inputs(_enz(1), None)
    assert x.shape == (1, 4096, 3) and np.allclose(x[0, 100:2900, 0], x[0, 1500, 0], atol=1e-3)
    back, _ = a.predictions(t, _enz(1), y)
    assert back.shape == (1, 6000, 3) and abs(int(np.argmax(back[0, :, 1])) - 1000) <= 2
    same = adapters.get_adapter(task, "seist_s_dpk", in_samples=8192)
    t100 = same.targets(y)
    assert t100.shape == (1, 8192, 3) and t100[0, 1000, 1] == 1.0 and t100[0, 1025, 1] > 0
    back, _ = same.predictions(t100, _enz(1), y)
    np.testing.assert_array_equal(back, t100[:, :6000])
    with pytest.raises(ValueError, match="picks channel"):
        same.targets(y[..., :3])


def test_phasenet_and_seist_targets():
    y = _dpk_targets([1000.0], [1010.0])
    t = adapters.get_adapter(get_task("dpk"), "phasenet", in_samples=6000).targets(y)
    assert t[0, 0, 0] == 1.0 and t[0, 1000, 1] == 1.0 and t[0, 1010, 2] == 1.0
    # noise = max(1 - P - S, 0) with overlapping P and S labels
    np.testing.assert_allclose(t[0, :, 0], np.maximum(1.0 - t[0, :, 1] - t[0, :, 2], 0.0),
                               atol=1e-7)
    assert t[0, 1005, 0] == 0.0 and np.all(t >= 0)
    baz = adapters.get_adapter(get_task("baz"), "seist_s_baz")
    from utrans.labels import BackAzimuthLabeller

    assert isinstance(baz.labeller(BackAzimuthLabeller()), adapters.ExtraColumnsLabeller)
    rad = np.radians(300.0)
    y = np.array([[np.cos(rad), np.sin(rad), 300.0], [1.0, 0.0, -0.5]], dtype=np.float32)
    np.testing.assert_array_equal(baz.targets(y), [[300.0], [359.5]])  # the metadata degrees
    np.testing.assert_array_equal(baz.task_columns(y), y[:, :2])
    pred, _ = baz.predictions(np.array([[300.0]]), None, None)
    np.testing.assert_allclose(pred, y[:1, :2], atol=1e-6)
    pmp = adapters.get_adapter(get_task("pmp"), "seist_s_pmp")
    np.testing.assert_array_equal(pmp.targets(np.array([[1.0], [0.0]])), [[1, 0], [0, 1]])


def test_ditingmotion_window_around_p():
    a = adapters.get_adapter(get_task("pmp"), "ditingmotion")
    assert a.loss()[1] == [1.0, 1.0]  # clarity and polarity heads, as the reference
    x = np.zeros((1, 6000, 3), dtype=np.float32)
    x[0, 1000:, 2] = 1.0  # a step on Z at the P pick
    y = np.array([[1.0, 1000.0]], dtype=np.float32)  # polarity up, P sample
    inp = a.inputs(x, y)
    assert inp.shape == (1, 128, 2)
    assert np.argmax(inp[0, :, 1]) == 64  # the first difference jumps at the window's centre
    # 'std' over the 128-sample window: a step of half the window is -1 / +1
    np.testing.assert_allclose(inp[0, [0, 63, 64, 127], 0], [-1, -1, 1, 1], rtol=1e-6)
    assert inp[0, 64, 1] == pytest.approx(2.0, rel=1e-6) and inp[0, 0, 1] == 0.0
    scaled = adapters.get_adapter(get_task("pmp"), "ditingmotion", normalization="max")
    np.testing.assert_allclose(scaled.inputs(x * 3.0 + 5.0, y)[0, [0, 64], 0], [-1, 1], rtol=1e-6)
    clarity, pol = a.targets(y)
    np.testing.assert_array_equal(pol, [[1.0, 0.0]])
    np.testing.assert_array_equal(clarity, [[0.0, 0.0]])  # no clarity labels: no clarity loss
    prob, _ = a.predictions([clarity, np.array([[2.0, 0.0]])], x, y)
    assert prob[0, 0] == pytest.approx(np.exp(2) / (np.exp(2) + 1))
    withc = adapters.get_adapter(get_task("pmp"), "ditingmotion", clarity_key="trace_p_clarity")
    assert withc.extra_columns() == ("trace_p_clarity", "p_sample")
    yc = np.array([[0.0, 1.0, 1000.0], [1.0, 0.0, 900.0], [1.0, np.nan, 900.0]], np.float32)
    clarity, pol = withc.targets(yc)
    np.testing.assert_array_equal(clarity, [[0, 1], [1, 0], [0, 0]])
    np.testing.assert_array_equal(pol, [[0, 1], [1, 0], [1, 0]])


def test_losses_by_hand():
    t = np.array([[[1.0, 0.0, 1.0]]], dtype=np.float32)
    p = np.array([[[0.8, 0.3, 0.6]]], dtype=np.float32)
    bce = losses.WeightedBinaryCrossentropy((0.5, 1.0, 1.0))(t, p)
    expected = np.mean([-0.5 * np.log(0.8 + 1e-6), -np.log(0.7 + 1e-6), -np.log(0.6 + 1e-6)])
    assert float(bce) == pytest.approx(expected, rel=1e-5)
    # summed over the batch (reference MousaviLoss); the mean on request
    t2, p2 = np.array([[2.0], [1.0]]), np.array([[1.0, np.log(4.0)], [1.0, 0.0]])
    one = 0.5 / 4.0 + 0.5 * np.log(4.0)
    assert float(losses.AleatoricLoss()(t2, p2)) == pytest.approx(one, rel=1e-5)
    mean = losses.AleatoricLoss(reduction="sum_over_batch_size")(t2, p2)
    assert float(mean) == pytest.approx(one / 2, rel=1e-5)
    foc = losses.FocalLoss()(np.array([[1.0, 0.0]]), np.array([[0.0, 0.0]]))
    assert float(foc) == pytest.approx(-(0.5 ** 2) * np.log(0.5 + 1e-6), rel=1e-5)
    weighted = losses.FocalLoss(weights=(3.0, 1.0))(np.array([[1.0, 0.0], [0.0, 0.0]]),
                                                   np.array([[0.0, 0.0], [1.0, 0.0]]))
    assert float(weighted) == pytest.approx(-3 * 0.25 * np.log(0.5 + 1e-6) / 2, rel=1e-5)
    # cross-entropy: eps inside the log, no clipping or renormalisation, mean over samples
    cce = losses.WeightedCategoricalCrossentropy((1.0, 2.0))(
        np.array([[[0.0, 1.0], [1.0, 0.0]]]), np.array([[[0.5, 0.25], [1.0, 0.0]]]))
    assert float(cce) == pytest.approx(-(2 * np.log(0.25 + 1e-6) + np.log(1 + 1e-6)) / 2, rel=1e-5)


def test_p_position_window():
    task = get_task("emg")
    a = adapters.get_adapter(task, "magnet", in_samples=400, p_position_ratio=0.25,
                             normalization="none")
    from utrans.labels import MagnitudeLabeller

    assert isinstance(a.labeller(MagnitudeLabeller()), adapters.ExtraColumnsLabeller)
    x = np.zeros((2, 6000, 3), dtype=np.float32)
    x[0, 1000, 2] = 7.0  # Z spike at the P pick of trace 0
    x[1, 50, 2] = 5.0  # trace 1: P at sample 50, the window starts before the trace
    y = np.array([[3.0, 1000.0], [2.0, 50.0]], dtype=np.float32)
    inp, target = a.conform(x, y)
    assert inp.shape == (2, 400, 3)
    assert inp[0, 100, 0] == 7.0 and inp[1, 100, 0] == 5.0  # P at 0.25 * 400, Z first
    assert not inp[1, :50].any()  # zeros before the trace start
    np.testing.assert_array_equal(target, [[3.0], [2.0]])
    # the reference normalises the window after cutting it: one spike in 400 samples
    std = adapters.get_adapter(task, "magnet", in_samples=400, p_position_ratio=0.25).inputs(x, y)
    assert std[0, 100, 0] == pytest.approx(np.sqrt(399), rel=1e-5)
    with pytest.raises(ValueError, match="scalar tasks"):
        adapters.get_adapter(get_task("dpk"), "phasenet", p_position_ratio=0.5)
