"""Metrics checked against hand-computed numbers."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from utrans.processing import decode as D
from utrans import metrics as M


# --------------------------------------------------------------------------- peaks
def _curve(length, peaks):
    x = np.zeros(length)
    for pos, h in peaks:
        x[pos] = h
    return x


def test_find_peaks_threshold_and_min_distance():
    x = _curve(600, [(100, 0.9), (150, 0.5), (300, 0.35), (400, 0.29)])
    assert D.find_peaks(x, 0.3, 1).tolist() == [100, 150, 300]
    # 150 lies within 100 samples of the higher peak at 100 -> suppressed.
    assert D.find_peaks(x, 0.3, 100).tolist() == [100, 300]
    # distance is inclusive: |150 - 100| = 50 <= 50 removes it, 49 keeps it
    assert D.find_peaks(x, 0.3, 50).tolist() == [100, 300]
    assert D.find_peaks(x, 0.3, 49).tolist() == [100, 150, 300]
    assert D.find_peaks(x, 0.3, 1, max_peaks=2).tolist() == [100, 150]
    assert D.find_peaks(x, 0.95, 1).size == 0


def test_find_peaks_plateau_edges_and_nan():
    x = np.array([0.0, 0.5, 0.8, 0.8, 0.8, 0.2, 0.9])
    # flat top -> first sample of the plateau; the last sample is never a peak
    assert D.find_peaks(x, 0.3, 1).tolist() == [2]
    y = np.array([0.0, 0.9, np.nan, 0.0, 0.7, 0.1])
    # NaN samples and their neighbours are not peaks
    assert D.find_peaks(y, 0.3, 1).tolist() == [4]
    with pytest.raises(ValueError, match=r"prob.shape=\(2, 3\)"):
        D.find_peaks(np.zeros((2, 3)), 0.3, 1)


def test_find_peaks_top_k_before_distance_rule_and_float32_threshold():
    x = _curve(600, [(100, 0.9), (130, 0.8), (300, 0.5)])
    # SeisT's topk: the 2 highest peaks (100, 130) are kept first, then 130 falls within 50
    # samples of 100; 300 is not considered any more.
    assert D.find_peaks(x, 0.3, 50, max_peaks=2).tolist() == [100]
    assert D.find_peaks(x, 0.3, 50, max_peaks=3).tolist() == [100, 300]
    assert D.find_peaks(x, 0.3, 50, max_peaks=1).tolist() == [100]
    # ties: the later sample wins, as the reference's reversed argsort
    assert D.find_peaks(_curve(600, [(100, 0.8), (140, 0.8)]), 0.3, 50).tolist() == [140]
    # float32 comparison: float32(0.7) < 0.7 in float64, but equals the float32 threshold
    edge = _curve(50, [(20, float(np.float32(0.7)))])
    assert D.find_peaks(edge, 0.7, 1).tolist() == [20]
    assert D.detect_events(edge, 0.7).tolist() == [[20, 20]]


def test_detect_events_equals_obspy_trigger_onset():
    from obspy.signal.trigger import trigger_onset

    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        x = np.round(rng.random(n) * (rng.random(n) < rng.random()) + 0.5 * rng.random(n), 1)
        ref = np.asarray(trigger_onset(x, 0.5, 0.5), dtype=np.int64).reshape(-1, 2)
        np.testing.assert_array_equal(D.detect_events(x, 0.5), ref)


def test_decode_outputs_reference_layout():
    L = 400
    curves = np.zeros((3, L, 3), dtype=np.float32)
    curves[0, 10:20, 0] = 0.8  # 10 samples
    curves[0, 100:150, 0] = 0.9  # the longest window
    curves[0, 300:330, 0] = 0.6
    curves[0, [120, 160, 250], 1] = [0.9, 0.95, 0.4]  # 120 lies within 50 samples of 160
    curves[0, 200, 2] = 0.31
    curves[1, 5, 2] = 0.29  # below the S threshold
    curves[2, 0:L, 0] = 0.7  # a detection over the whole window
    out = D.decode_outputs(curves, ("det", "P", "S"), sampling_rate=50.0)
    assert set(out) == {"det", "ppk", "spk"}
    np.testing.assert_array_equal(out["det"], [[100, 149], list(D.NO_DETECTION), [0, L - 1]])
    np.testing.assert_array_equal(out["ppk"], [[160], [D.PICK_PADDING], [D.PICK_PADDING]])
    np.testing.assert_array_equal(out["spk"], [[200], [D.PICK_PADDING], [D.PICK_PADDING]])
    two = D.decode_outputs(curves, ("det", "ppk", "spk"), 50.0, max_events=2,
                           thresholds={"P": 0.3})
    # longest first (not by time), [1, 0] padding; picks in time order, padded
    np.testing.assert_array_equal(two["det"][0], [100, 149, 300, 329])
    np.testing.assert_array_equal(two["det"][2], [0, L - 1, 1, 0])
    # top 2 P peaks are 160 and 120; 120 is removed by the distance rule and 250 (the third
    # highest) is not considered: one pick and one padding value, as the reference
    np.testing.assert_array_equal(two["ppk"][0], [160, D.PICK_PADDING])
    # PhaseNet: the noise channel is not decoded; 1 s at 100 Hz = 100 samples apart
    pn = D.decode_outputs(curves[..., [0, 1, 2]], ("N", "P", "S"), 100.0)
    assert set(pn) == {"ppk", "spk"}
    with pytest.raises(ValueError, match=r"curves.shape=\(3, 400, 3\)"):
        D.decode_outputs(curves, ("det", "P"), 50.0)


def test_highest_peak_utrans_rule():
    x = _curve(600, [(100, 0.4), (250, 0.8), (400, 0.15)])
    assert D.highest_peak(x, 0.1) == 250
    assert D.highest_peak(x * 0.1, 0.1) is None  # 0.08 < 0.1
    assert D.highest_peak(np.full(600, 0.05), 0.1) is None


def test_pick_rules_per_trace_feed_pick_metrics():
    probs = np.stack([_curve(300, [(50, 0.9), (200, 0.6)]), np.zeros(300)])
    # "peaks" (SeisT): every peak above the threshold, 100 samples apart
    allp = [D.pick(row, "peaks", 0.3, 100) for row in probs]
    np.testing.assert_array_equal(allp[0], [50, 200])
    assert allp[1].dtype == np.int64 and allp[1].size == 0
    # "highest" (U-Trans): one pick per window, the highest peak
    hi = [D.pick(row, "highest", 0.1) for row in probs]
    np.testing.assert_array_equal(hi[0], [50])
    assert hi[1].size == 0
    # two overlapping windows choosing the same peak give one pick; a window of its own
    # gives its own highest peak
    np.testing.assert_array_equal(D.pick(probs[0], "highest", 0.1, windows=((0, 40), 180)), [50])
    np.testing.assert_array_equal(D.pick(probs[0], "highest", 0.1, windows=((0, 120), 180)),
                                  [50, 200])
    with pytest.raises(ValueError, match="rule='all'"):
        D.pick(probs[0], "all", 0.3)
    # ragged per-trace picks (an empty trace = no pick) go straight into pick_metrics
    r = M.pick_metrics(allp, [[50.0, 205.0], [np.nan]], 10, 100)
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (2, 0, 0, 1)


def test_min_distance_samples_truncates_seconds_times_rate():
    assert D.min_distance_samples(1.0, 100.0) == 100
    assert D.min_distance_samples(0.5, 50.0) == 25
    assert D.min_distance_samples(0.999, 100.0) == 99  # int(), not round()
    assert D.min_distance_samples(0.29, 100.0) == 29  # 0.29 * 100 = 28.999999999999996
    assert D.min_distance_samples(0.0, 100.0) == 1
    assert D.min_distance_samples(None, 100.0) == 1
    assert D.min_distance_samples(0.001, 100.0) == 1  # at least one sample


# --------------------------------------------------------------------------- picks
def test_pick_4_samples_off_at_100hz():
    tp = M.pick_metrics(np.array([104.0]), np.array([100.0]), tolerance_samples=10, sampling_rate=100)
    assert (tp["tp"], tp["fp"], tp["fn"]) == (1, 0, 0)
    assert tp["precision"] == tp["recall"] == tp["f1"] == 1.0
    assert tp["mean_s"] == pytest.approx(0.04)  # pred - true
    assert tp["mae_s"] == pytest.approx(0.04)
    assert tp["rmse_s"] == pytest.approx(0.04)
    far = M.pick_metrics(np.array([104.0]), np.array([100.0]), tolerance_samples=2, sampling_rate=100)
    assert (far["tp"], far["fp"], far["fn"]) == (0, 1, 1)
    assert far["f1"] == 0.0 and math.isnan(far["mae_s"])
    # the tolerance is inclusive: 10 samples off at a 10-sample tolerance is a TP
    edge = M.pick_metrics([110.0], [100.0], tolerance_samples=10, sampling_rate=100)
    assert edge["tp"] == 1 and edge["mae_s"] == pytest.approx(0.1)
    # U-Trans counting: a too-far pick is only a miss
    ut = M.pick_metrics([104.0], [100.0], 2, 100, far_pick_counts_as_fp=False)
    assert (ut["tp"], ut["fp"], ut["fn"]) == (0, 0, 1)


def test_one_to_one_matching_two_preds_one_true():
    r = M.pick_metrics([[98.0, 103.0]], [100.0], tolerance_samples=10, sampling_rate=100)
    assert (r["tp"], r["fp"], r["fn"]) == (1, 1, 0)
    assert r["precision"] == 0.5 and r["recall"] == 1.0
    assert r["f1"] == pytest.approx(2 / 3)
    assert r["mae_s"] == pytest.approx(0.02)  # the closer pick (98) is the match
    # optimal assignment: closest-first greedy would pair 101<->102 and leave 98 and 104 unmatched
    assert len(M.match_picks([101.0, 104.0], [98.0, 102.0], tolerance=3)) == 2


def test_pick_metrics_mixed_batch_with_noise():
    true = np.array([100.0, 200.0, np.nan, np.nan, 300.0])
    pred = [105.0, None, 50.0, None, 340.0]
    # trace0 TP (+0.05 s); trace1 FN; trace2 noise with pick -> FP;
    # trace3 noise, no pick -> TN; trace4 |40| > 10 -> FP + FN
    r = M.pick_metrics(pred, true, 10, 100)
    assert (r["tp"], r["fp"], r["fn"], r["tn"], r["n_traces"]) == (1, 2, 2, 1, 5)
    assert r["precision"] == pytest.approx(1 / 3)
    assert r["recall"] == pytest.approx(1 / 3)
    both = M.pick_metrics_at_tolerances(pred, true, 100, tolerances_s=(0.1, 0.5))
    assert set(both) == {0.1, 0.5}
    assert both[0.1]["tp"] == 1
    assert (both[0.5]["tp"], both[0.5]["fp"], both[0.5]["fn"]) == (2, 1, 1)
    assert both[0.5]["mean_s"] == pytest.approx((0.05 + 0.40) / 2)
    assert both[0.5]["std_s"] == pytest.approx(0.175)
    assert both[0.5]["rmse_s"] == pytest.approx(math.sqrt((0.05**2 + 0.4**2) / 2))


def test_pick_metrics_all_noise_and_shape_errors():
    r = M.pick_metrics([np.nan, np.nan], [np.nan, np.nan], 10, 100)
    assert r["tn"] == 2 and math.isnan(r["precision"]) and math.isnan(r["f1"])
    assert M.pick_metrics([np.nan], [np.nan], 10, 100, zero_division=0.0)["f1"] == 0.0
    with pytest.raises(ValueError, match="3 and 2 traces"):
        M.pick_metrics([1.0, 2.0, 3.0], [1.0, 2.0], 10, 100)
    with pytest.raises(ValueError, match=r"pred_picks.shape=\(2, 2, 2\)"):
        M.pick_metrics(np.zeros((2, 2, 2)), np.zeros(2), 10, 100)


# --------------------------------------------------------------------------- detection
def test_detect_events_and_sample_wise_metrics():
    x = np.zeros(20)
    x[2:5] = 0.6  # 3 samples
    x[10:16] = 0.7  # 6 samples, the longest
    assert D.detect_events(x, 0.5).tolist() == [[2, 4], [10, 15]]
    assert D.detect_events(x, 0.5, max_events=1).tolist() == [[10, 15]]
    pred = np.stack([M.intervals_to_mask(D.detect_events(row, 0.5, max_events=1), 20)
                     for row in (x, np.zeros(20))])
    true = np.stack([M.intervals_to_mask([[8, 13]], 20), M.intervals_to_mask([[0, 1]], 20)])
    r = M.detection_metrics(true, pred)
    # samples 10..13 TP (4), 14..15 FP (2), 8..9 and trace-2 0..1 FN (4)
    assert (r["tp"], r["fp"], r["fn"]) == (4, 2, 4)
    assert r["precision"] == pytest.approx(4 / 6)
    assert r["recall"] == pytest.approx(0.5)
    assert r["f1"] == pytest.approx(2 * (4 / 6) * 0.5 / (4 / 6 + 0.5))
    assert (r["trace_tp"], r["trace_fn"], r["trace_fp"], r["trace_tn"]) == (1, 1, 0, 0)
    with pytest.raises(ValueError, match=r"true_mask.shape=\(2, 20\), pred_mask.shape=\(2, 19\)"):
        M.detection_metrics(true, pred[:, :19])


# --------------------------------------------------------------------------- regression
def test_regression_metrics_values():
    perfect = M.regression_metrics([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0])
    assert perfect["r2"] == 1.0 and perfect["mae"] == 0.0
    r = M.regression_metrics([1.0, 2.0, 3.0], [2.0, 2.0, 5.0])
    # errors +1, 0, +2: mean 1, MAE 1, RMSE sqrt(5/3); SSres 5, SStot 2 -> R2 = -1.5
    assert r["mean"] == pytest.approx(1.0)
    assert r["std"] == pytest.approx(math.sqrt(2 / 3))
    assert r["mae"] == pytest.approx(1.0)
    assert r["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert r["r2"] == pytest.approx(-1.5)
    nan = M.regression_metrics([1.0, np.nan, 3.0], [1.0, 5.0, 4.0])
    assert nan["n"] == 2 and nan["n_nan"] == 1 and nan["mae"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"y_true.shape=\(3,\), y_pred.shape=\(2,\)"):
        M.regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0])


def test_angle_wrap_and_backazimuth():
    assert M.angle_error_deg(10, 350) == pytest.approx(20.0)
    assert M.angle_error_deg(350, 10) == pytest.approx(-20.0)
    assert M.angle_error_deg(180, 0) == 180.0 and M.angle_error_deg(0, 180) == 180.0  # (-180, 180]
    np.testing.assert_allclose(M.angle_error_deg([720.0, -190.0], [0.0, 0.0]), [0.0, 170.0])
    r = M.backazimuth_metrics([350.0, 10.0, 90.0], [10.0, 350.0, 100.0])
    assert r["mae"] == pytest.approx((20 + 20 + 10) / 3)
    assert r["mean"] == pytest.approx((20 - 20 + 10) / 3)


# --------------------------------------------------------------------------- classification
def test_classification_confusion_counts():
    y_true = np.array([1, 1, 1, 1, 0, 0, 0])
    y_pred = np.array([1, 1, 1, 0, 0, 1, 0])
    r = M.classification_metrics(y_true, y_pred)
    assert r["confusion_matrix"] == [[2, 1], [1, 3]]
    assert r["accuracy"] == pytest.approx(5 / 7)
    assert r["precision"] == pytest.approx(3 / 4) and r["recall"] == pytest.approx(3 / 4)
    assert r["precision_0"] == pytest.approx(2 / 3)
    assert r["f1_macro"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    json.dumps(r)  # plain types only
    # probabilities with a threshold, string labels, one-hot targets
    p = M.classification_metrics(y_true, np.array([0.9, 0.6, 0.5, 0.2, 0.1, 0.7, 0.4]), threshold=0.5)
    assert p["confusion_matrix"] == [[2, 1], [1, 3]]
    s = M.classification_metrics(np.array(["U", "D", "U"]), np.array(["U", "U", "U"]), labels=["D", "U"])
    assert s["confusion_matrix"] == [[0, 1], [0, 2]] and s["recall_D"] == 0.0
    onehot = M.classification_metrics(np.eye(3)[[0, 1, 2, 2]], np.eye(3)[[0, 2, 2, 2]])
    assert onehot["confusion_matrix"] == [[1, 0, 0], [0, 0, 1], [0, 0, 2]]
    with pytest.raises(ValueError, match=r"y_true.shape=\(7,\), y_pred.shape=\(3,\)"):
        M.classification_metrics(y_true, y_pred[:3])


# --------------------------------------------------------------------------- location
def test_epicentral_distance_one_degree_latitude():
    d = M.epicentral_distance_km(0.0, 0.0, 1.0, 0.0)
    assert 110.5 < d < 110.65  # WGS84 meridian degree at the equator: 110.574 km
    many = M.epicentral_distance_km([0.0, 45.0, 89.0], [0.0, 10.0, 0.0], [1.0, 46.0, 90.0], [0.0, 10.0, 0.0])
    assert many.shape == (3,)
    assert np.all((many > 110.5) & (many < 111.8))
    assert many[0] < many[1] < many[2]  # the meridian degree grows towards the pole
    assert M.epicentral_distance_km(36.0, -120.0, 36.0, -120.0) == 0.0
    assert np.isnan(M.epicentral_distance_km([np.nan], [0.0], [1.0], [0.0])[0])


def test_location_metrics_hand_case():
    r = M.location_metrics(
        true_lat=[0.0, 10.0],
        true_lon=[179.9, 20.0],
        pred_lat=[1.0, 10.0],
        pred_lon=[-179.9, 20.0],
        true_depth_km=[10.0, 5.0],
        pred_depth_km=[12.0, 4.0],
    )
    assert r["n_traces"] == 2
    assert r["lat_mae_deg"] == pytest.approx(0.5)
    assert r["lat_std_deg"] == pytest.approx(0.5)
    assert r["lon_mae_deg"] == pytest.approx(0.1)  # wrapped across the antimeridian
    d0 = M.epicentral_distance_km(0.0, 179.9, 1.0, -179.9)
    assert r["epicentral_mae_km"] == pytest.approx(d0 / 2)
    assert r["epicentral_median_km"] == pytest.approx(d0 / 2)
    assert r["depth_mae_km"] == pytest.approx(1.5)
    assert r["depth_std_km"] == pytest.approx(1.5)  # errors +2, -1
    with pytest.raises(ValueError, match="same shape"):
        M.location_metrics([0.0, 1.0], [0.0], [0.0, 1.0], [0.0, 1.0])


def test_metrics_module_does_not_import_tensorflow():
    code = "import sys, utrans.metrics; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
