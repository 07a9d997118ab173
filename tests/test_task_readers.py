"""Readers of tasks 2-10 on hand-made CSVs, and the models' pipelines and objectives on known arrays."""

import json

import numpy as np
import pandas as pd
import pytest

from script_runner import run_script
from utrans.augment import Batch
from utrans.core.tasks import get_task
from utrans.labels import BackAzimuthLabeller, MagnitudeLabeller, PolarityLabeller, get_labeller
from utrans.loading import get_conventions
from utrans.models import losses
from utrans.objectives import get_objective, task_labeller
from utrans.pipeline import Pipeline


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


# --------------------------------------------------------------------------- pipelines and objectives
DATA_RATE = 100.0


def _enz(n=2, t=6000):
    x = np.empty((n, t, 3), dtype=np.float32)
    x[..., 0], x[..., 1], x[..., 2] = 1.0, 2.0, 3.0  # E, N, Z
    return x


def _conv(model, **changes):
    return get_conventions(model).replace(**changes)


def _inputs(conv, records, picks=None):
    """Model inputs and frame of data-layer records (100 Hz, E, N, Z)."""
    return Pipeline(conv).record_inputs(records, DATA_RATE, "ENZ", picks=picks)


def test_pipeline_channels_padding_cropping():
    raw = _conv("seist_s_emg", normalization="none")
    assert (raw.in_samples, raw.component_order, raw.sampling_rate) == (8192, "ZNE", 100.0)
    x, frame = _inputs(raw, _enz())
    assert x.shape == (2, 8192, 3)
    np.testing.assert_array_equal(x[0, 0], [3.0, 2.0, 1.0])  # Z, N, E
    assert not x[:, 6000:].any()
    np.testing.assert_array_equal(frame.valid, [[0, 6000], [0, 6000]])
    # 'std' (deliberately not the reference): each channel is normalised over its 6000 record
    # samples and the padding stays 0. The reference normalised over all 8192 samples: a
    # constant c on 6000 samples became sqrt(2192 / 6000), the padding -sqrt(6000 / 2192);
    # now a constant channel is 0, and a sine of any offset and amplitude sqrt(2) sin.
    t = np.arange(6000)
    wave = _enz()
    wave[1] += (np.array([5.0, 0.5, 40.0]) * np.sin(2 * np.pi * t / 100)[:, None]).astype(np.float32)
    std, _ = _inputs(_conv("seist_s_emg"), wave)
    assert not std[0].any()  # constant channels
    np.testing.assert_allclose(std[1, :6000], np.sqrt(2) * np.sin(2 * np.pi * t / 100)[:, None]
                               * np.ones(3), atol=1e-5)
    assert not std[1, 6000:].any()
    np.testing.assert_allclose(std[1, :6000].astype(np.float64).mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(std[1, :6000].astype(np.float64).std(axis=0), 1.0, rtol=1e-6)
    crop = _conv("magnet", in_samples=4096, component_order="ENZ", normalization="none")
    np.testing.assert_array_equal(_inputs(crop, _enz())[0][0, -1], [1.0, 2.0, 3.0])
    assert Pipeline(crop).covered(6000, DATA_RATE) == 4096
    with pytest.raises(ValueError, match="component_order"):
        _conv("magnet", component_order="ZNN")
    with pytest.raises(TypeError, match="no option label_width_s"):
        get_objective(get_task("emg"), _conv("magnet"), label_width_s=0.5)


def _pick_batch(p, s, t=6000):
    return Batch(np.zeros((len(p), 3, t), np.float32), p=p, s=s,
                 meta={"trace_category": np.full(len(p), "earthquake")})


def _targets(objective, batch, picks=True):
    """The objective's targets of a batch in the windows its pipeline cuts (as DataGenerator)."""
    labeller = objective.labeller(task_labeller(objective.task))
    inputs, frame = objective.pipeline.record_inputs(
        np.moveaxis(batch.x, 1, 2), DATA_RATE, "ENZ", picks=batch.p if picks else None)
    return labeller.label_batch(batch, frame=frame, inputs=inputs), inputs, frame


def test_curves_round_trip_and_resampling():
    task = get_task("dpk")
    a = get_objective(task, _conv("eqtransformer", in_samples=4096, sampling_rate=50.0))
    t, x, frame = _targets(a, _pick_batch([1000.0], [1100.0]))
    # Built at 50 Hz from the picks: P at 500, S at 550, coda end 550 + 2 * 50 = 650;
    # width int(0.5 * 50) = 25 samples, sigma 10 samples.
    assert t.shape == (1, 4096, 3)
    assert t[0, 500, 1] == 1.0 and t[0, 550, 2] == 1.0
    assert t[0, 513, 1] == pytest.approx(np.exp(-13 ** 2 / 200), rel=1e-6) and t[0, 514, 1] == 0
    assert t[0, 488, 1] == pytest.approx(np.exp(-12 ** 2 / 200), rel=1e-6) and t[0, 487, 1] == 0
    np.testing.assert_array_equal(t[0, 500:651, 0], 1.0)
    assert t[0, 651, 0] == pytest.approx(np.exp(-1 / 200), rel=1e-6) and t[0, 664, 0] == 0
    x, _ = a.pipeline.record_inputs(_enz(1), DATA_RATE, "ENZ")
    assert x.shape == (1, 4096, 3) and np.allclose(x[0, 100:2900, 0], x[0, 1500, 0], atol=1e-3)
    # the model's curves map back to data samples through the frame
    assert frame.ratio == 0.5 and frame.start[0] == 0
    peak = frame.to_record(int(np.argmax(a.pipeline.curves(t)[0, :, 1])))
    assert abs(float(peak[0]) - 1000.0) <= 2
    same = get_objective(task, _conv("seist_s_dpk", in_samples=8192))
    t100, _, frame = _targets(same, _pick_batch([1000.0], [1100.0]))
    assert t100.shape == (1, 8192, 3) and t100[0, 1000, 1] == 1.0 and t100[0, 1025, 1] > 0
    np.testing.assert_array_equal(frame.to_record(np.arange(6000)), np.arange(6000.0))
    # the targets are made from the picks: the labeller requires them of earthquakes
    labeller = same.labeller(task_labeller(task))
    assert {"trace_p_arrival_sample", "trace_s_arrival_sample"} <= set(labeller.required_earthquake)


def test_phasenet_and_seist_targets():
    batch = _pick_batch([1000.0], [1010.0])
    t, _, _ = _targets(get_objective(get_task("dpk"), _conv("phasenet", in_samples=6000)), batch)
    assert t[0, 0, 0] == 1.0 and t[0, 1000, 1] == 1.0 and t[0, 1010, 2] == 1.0
    # noise = max(1 - P - S, 0) with overlapping P and S labels
    np.testing.assert_allclose(t[0, :, 0], np.maximum(1.0 - t[0, :, 1] - t[0, :, 2], 0.0),
                               atol=1e-7)
    assert t[0, 1005, 0] == 0.0 and np.all(t >= 0)
    baz = get_objective(get_task("baz"), _conv("seist_s_baz"))
    labeller = baz.labeller(BackAzimuthLabeller())
    assert "path_back_azimuth_deg" in labeller.required_earthquake
    rad = np.radians(300.0)
    batch = Batch(np.zeros((2, 3, 100), np.float32),
                  meta={"path_back_azimuth_deg": np.array([300.0, -0.5])})
    y = np.array([[np.cos(rad), np.sin(rad)], [1.0, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(baz.targets(y, batch, None), [[300.0], [359.5]])  # the metadata
    est = baz.pipeline.estimates(np.array([[300.0], [-0.5]]))
    np.testing.assert_allclose(est["back_azimuth_deg"], [300.0, 359.5])
    pmp = get_objective(get_task("pmp"), _conv("seist_s_pmp"))
    np.testing.assert_array_equal(pmp.targets(np.array([[1.0], [0.0]]), None, None), [[1, 0], [0, 1]])
    assert pmp.pipeline.estimates(np.array([[0.8, 0.2]]))["polarity_up"][0] == pytest.approx(0.8)


def test_ditingmotion_window_around_p():
    task = get_task("pmp")
    a = get_objective(task, _conv("ditingmotion"))
    assert a.loss()[1] == [1.0, 1.0]  # clarity and polarity heads, as the reference
    x = np.zeros((1, 6000, 3), dtype=np.float32)
    x[0, 1000:, 2] = 1.0  # a step on Z at the P pick
    inp, frame = a.pipeline.record_inputs(x, DATA_RATE, "ENZ", picks=[1000.0])
    assert inp.shape == (1, 128, 2) and frame.start[0] == 1000 - 64
    assert np.argmax(inp[0, :, 1]) == 64  # the first difference jumps at the window's centre
    # 'std' over the 128-sample window: a step of half the window is -1 / +1
    np.testing.assert_allclose(inp[0, [0, 63, 64, 127], 0], [-1, -1, 1, 1], rtol=1e-6)
    assert inp[0, 64, 1] == pytest.approx(2.0, rel=1e-6) and inp[0, 0, 1] == 0.0
    scaled = Pipeline(_conv("ditingmotion", normalization="max"))
    got, _ = scaled.record_inputs(x * 3.0 + 5.0, DATA_RATE, "ENZ", picks=[1000.0])
    np.testing.assert_allclose(got[0, [0, 64], 0], [-1, 1], rtol=1e-6)
    up = Batch(np.zeros((1, 3, 6000), np.float32), p=[1000.0],
               meta={"trace_p_polarity": np.array(["positive"], dtype=object),
                     "trace_category": np.array(["earthquake"])})
    clarity, pol = a.labeller(PolarityLabeller()).label_batch(up)
    np.testing.assert_array_equal(pol, [[1.0, 0.0]])
    np.testing.assert_array_equal(clarity, [[0.0, 0.0]])  # no clarity labels: no clarity loss
    prob = a.pipeline.estimates([clarity, np.array([[2.0, 0.0]])])["polarity_up"]
    assert prob[0] == pytest.approx(np.exp(2) / (np.exp(2) + 1))
    withc = get_objective(task, _conv("ditingmotion"), clarity_key="trace_p_clarity")
    labeller = withc.labeller(PolarityLabeller())
    assert {"trace_p_clarity", "trace_p_arrival_sample"} <= set(labeller.required_earthquake)
    rows = Batch(np.zeros((3, 3, 6000), np.float32), p=[1000.0, 900.0, 900.0],
                 meta={"trace_p_polarity": np.array(["negative", "positive", "positive"], object),
                       "trace_p_clarity": np.array([1.0, 0.0, np.nan]),
                       "trace_category": np.full(3, "earthquake")})
    clarity, pol = labeller.label_batch(rows)
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
    conv = _conv("magnet", in_samples=400, p_position_ratio=0.25, normalization="none")
    objective = get_objective(task, conv)
    labeller = objective.labeller(MagnitudeLabeller())
    # the window is cut around P: every earthquake trace needs its P pick
    assert labeller.required == ("source_magnitude",)
    assert "trace_p_arrival_sample" in labeller.required_earthquake
    whole = get_objective(task, _conv("magnet")).labeller(MagnitudeLabeller())
    assert "trace_p_arrival_sample" not in whole.required_earthquake
    x = np.zeros((2, 6000, 3), dtype=np.float32)
    x[0, 1000, 2] = 7.0  # Z spike at the P pick of trace 0
    x[1, 50, 2] = 5.0  # trace 1: P at sample 50, the window starts before the trace
    batch = Batch(np.moveaxis(x, 1, 2).copy(), p=[1000.0, 50.0],
                  meta={"source_magnitude": np.array([3.0, 2.0]),
                        "trace_category": np.full(2, "earthquake")})
    target, inp, frame = _targets(objective, batch)
    assert inp.shape == (2, 400, 3)
    assert inp[0, 100, 0] == 7.0 and inp[1, 100, 0] == 5.0  # P at 0.25 * 400, Z first
    assert not inp[1, :50].any()  # zeros before the trace start
    np.testing.assert_array_equal(frame.start, [900, -50])
    np.testing.assert_array_equal(frame.valid, [[0, 400], [50, 400]])
    np.testing.assert_array_equal(target, [[3.0], [2.0]])
    # 'std' normalises the window over its record samples: one spike in 400 samples for
    # trace 0; trace 1's window holds 350 record samples (the reference, normalising over
    # the 50 zeros of padding too, gave sqrt(399) there; deliberately no longer)
    std, _ = Pipeline(conv.replace(normalization="std")).record_inputs(
        x, DATA_RATE, "ENZ", picks=[1000.0, 50.0])
    assert std[0, 100, 0] == pytest.approx(np.sqrt(399), rel=1e-5)
    assert std[1, 100, 0] == pytest.approx(np.sqrt(349), rel=1e-5)
    assert not std[1, :50].any()
    with pytest.raises(ValueError, match="scalar tasks"):
        get_objective(get_task("dpk"), _conv("phasenet", p_position_ratio=0.5))
