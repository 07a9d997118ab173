"""Evaluation metrics for picking, detection, regression, classification and location.

Everything here is plain numpy/scipy/obspy: no deep-learning framework is imported,
so testers and readers can compute metrics from saved predictions alone.

Conventions used throughout the module:

- **Residuals are ``prediction - truth``** (pick time, magnitude, depth, angle).
  The SeisT and U-Trans picking code report ``truth - prediction``; only the sign
  of the mean differs, MAE/std/RMSE are identical.
- **Standard deviations are population standard deviations** (``ddof=0``), as
  ``np.std`` in the reference evaluations.
- **Missing values are NaN.** A NaN (or ``None`` in an object array) pick means
  "no pick on this trace"; in regression inputs a pair with a NaN on either side
  is dropped and counted in ``n_nan``. Undefined ratios (0/0) are NaN unless a
  ``zero_division`` value is given.
- Every function returns a plain ``dict`` of Python floats/ints (JSON friendly);
  counts are ints.
"""

from __future__ import annotations

import logging
import math
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.metrics import precision_recall_fscore_support

from utrans.processing.geodesy import epicentral_distance_km

logger = logging.getLogger(__name__)

__all__ = [
    "match_picks",
    "pick_metrics",
    "pick_metrics_at_tolerances",
    "intervals_to_mask",
    "detection_metrics",
    "regression_metrics",
    "angle_error_deg",
    "backazimuth_metrics",
    "confusion_matrix",
    "classification_metrics",
    "location_metrics",
]


# --------------------------------------------------------------------------- internal utilities
def _as_1d_float(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"`{name}` must be a 1-D array (or shape (N, 1)). Received: {name}.shape={arr.shape}"
        )
    return arr


def _check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same shape. "
            f"Received: {name_a}.shape={a.shape}, {name_b}.shape={b.shape}"
        )


def _ratio(num: float, den: float, zero_division: float) -> float:
    return float(num) / float(den) if den > 0 else float(zero_division)


def _f1(p: float, r: float, zero_division: float) -> float:
    """Harmonic mean; 0 when either side is 0, ``zero_division`` when undefined."""
    if p == 0 or r == 0:
        return 0.0
    if math.isnan(p) or math.isnan(r):
        return float(zero_division)
    return 2.0 * p * r / (p + r)


def _error_stats(err: np.ndarray) -> dict:
    """Mean, std (ddof=0), MAE, RMSE of a 1-D error array (NaN when empty)."""
    if err.size == 0:
        nan = float("nan")
        return {"mean": nan, "std": nan, "mae": nan, "rmse": nan}
    return {
        "mean": float(np.mean(err)),
        "std": float(np.std(err)),
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
    }


# --------------------------------------------------------------------------- pick matching
def _picks_per_trace(picks, name: str) -> list[np.ndarray]:
    """Normalise picks to one float array per trace, NaN entries removed."""
    if isinstance(picks, np.ndarray) and picks.dtype != object:
        arr = picks.astype(float)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ValueError(
                f"`{name}` must be (N,), (N, K) or a sequence of per-trace sequences. "
                f"Received: {name}.shape={picks.shape}"
            )
        return [row[~np.isnan(row)] for row in arr]
    out = []
    for i, item in enumerate(picks):
        if item is None:
            out.append(np.zeros(0))
            continue
        row = np.atleast_1d(np.asarray(item, dtype=float))
        if row.ndim != 1:
            raise ValueError(
                f"`{name}[{i}]` must be a scalar or a 1-D sequence of picks. Received: shape={row.shape}"
            )
        out.append(row[~np.isnan(row)])
    return out


def match_picks(pred, true, tolerance: float) -> list[tuple[int, int]]:
    """One-to-one matching of the picks of one trace within a tolerance.

    The matching maximises the number of pairs with ``|pred - true| <= tolerance``
    and, among those, minimises the summed absolute residual (Hungarian
    algorithm). Each prediction and each true pick is used at most once.

    Args:
        pred: 1-D array of predicted pick samples (no NaN).
        true: 1-D array of true pick samples (no NaN).
        tolerance: maximum absolute residual, same unit as the picks (inclusive).

    Returns:
        List of ``(pred_index, true_index)`` pairs.
    """
    pred = np.atleast_1d(np.asarray(pred, dtype=float))
    true = np.atleast_1d(np.asarray(true, dtype=float))
    if pred.size == 0 or true.size == 0:
        return []
    diff = np.abs(pred[:, None] - true[None, :])
    ok = diff <= tolerance
    if not ok.any():
        return []
    if pred.size == 1 or true.size == 1:
        i, j = np.unravel_index(np.argmin(np.where(ok, diff, np.inf)), diff.shape)
        return [(int(i), int(j))]
    big = float(diff[ok].sum()) + 1.0
    cost = np.where(ok, diff, big + diff.max() + 1.0)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if ok[r, c]]


def pick_metrics(
    pred_picks,
    true_picks,
    tolerance_samples: float,
    sampling_rate: float,
    far_pick_counts_as_fp: bool = True,
    zero_division: float = float("nan"),
) -> dict:
    """Precision, recall, F1 and residual statistics of phase picks.

    Picks of each trace are matched one-to-one (``match_picks``) within
    ``tolerance_samples``. Matched pairs are true positives; unmatched
    predictions are false positives; unmatched true picks are false negatives.
    Traces without a true pick (noise) only contribute false positives; traces
    with neither a true nor a predicted pick are counted in ``tn``.

    Args:
        pred_picks: predicted pick samples: (N,) or (N, K) float array with NaN
            for "no pick", or a length-N sequence of per-trace sequences / None.
        true_picks: true pick samples, same forms as ``pred_picks``.
        tolerance_samples: matching tolerance in samples (inclusive).
        sampling_rate: samples per second, to convert residuals to seconds.
        far_pick_counts_as_fp: if False, unmatched predictions on traces that
            do have a true pick are not counted as FP (the U-Trans notebooks
            count a too-far pick only as a missed event, FN).
        zero_division: value of a ratio whose denominator is 0.

    Returns:
        Dict with ``n_traces``, ``tp``, ``fp``, ``fn``, ``tn`` (ints),
        ``precision``, ``recall``, ``f1``, ``tolerance_s`` and residual
        ``mean_s``, ``std_s``, ``mae_s``, ``rmse_s`` (``pred - true`` of the
        true positives, seconds; NaN when there is no TP).
    """
    if sampling_rate <= 0:
        raise ValueError(f"`sampling_rate` must be > 0. Received: sampling_rate={sampling_rate}")
    if tolerance_samples < 0:
        raise ValueError(f"`tolerance_samples` must be >= 0. Received: tolerance_samples={tolerance_samples}")
    preds = _picks_per_trace(pred_picks, "pred_picks")
    trues = _picks_per_trace(true_picks, "true_picks")
    if len(preds) != len(trues):
        raise ValueError(
            "`pred_picks` and `true_picks` must hold the same number of traces. "
            f"Received: {len(preds)} and {len(trues)} traces"
        )
    tp = fp = fn = tn = 0
    residuals: list[float] = []
    for p, t in zip(preds, trues):
        if p.size == 0 and t.size == 0:
            tn += 1
            continue
        pairs = match_picks(p, t, tolerance_samples)
        tp += len(pairs)
        unmatched_pred = p.size - len(pairs)
        if t.size == 0 or far_pick_counts_as_fp:
            fp += unmatched_pred
        fn += t.size - len(pairs)
        residuals.extend(float(p[i] - t[j]) for i, j in pairs)
    precision = _ratio(tp, tp + fp, zero_division)
    recall = _ratio(tp, tp + fn, zero_division)
    stats = _error_stats(np.asarray(residuals) / float(sampling_rate))
    return {
        "n_traces": len(preds),
        "tolerance_s": float(tolerance_samples) / float(sampling_rate),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall, zero_division),
        "mean_s": stats["mean"],
        "std_s": stats["std"],
        "mae_s": stats["mae"],
        "rmse_s": stats["rmse"],
    }


def pick_metrics_at_tolerances(
    pred_picks,
    true_picks,
    sampling_rate: float,
    tolerances_s: Sequence[float] = (0.1, 0.5),
    **kwargs,
) -> dict:
    """``pick_metrics`` at several tolerances given in seconds.

    Args:
        pred_picks: predicted picks (see ``pick_metrics``).
        true_picks: true picks (see ``pick_metrics``).
        sampling_rate: samples per second.
        tolerances_s: tolerances in seconds (default 0.1 s and 0.5 s).
        **kwargs: forwarded to ``pick_metrics``.

    Returns:
        Dict ``{tolerance_s (float): pick_metrics dict}``.
    """
    return {
        float(tol): pick_metrics(pred_picks, true_picks, float(tol) * sampling_rate, sampling_rate, **kwargs)
        for tol in tolerances_s
    }


# --------------------------------------------------------------------------- detection
def intervals_to_mask(intervals, length: int) -> np.ndarray:
    """Turn inclusive ``[start, end]`` sample windows into a boolean mask.

    Args:
        intervals: array-like (n, 2) of windows; NaN rows and empty windows
            (end < start) are ignored; windows are clipped to ``[0, length)``.
        length: mask length in samples.

    Returns:
        Boolean array (length,).
    """
    win = np.asarray(intervals, dtype=float).reshape(-1, 2) if np.size(intervals) else np.zeros((0, 2))
    mask = np.zeros(int(length), dtype=bool)
    for s, e in win:
        if np.isnan(s) or np.isnan(e) or e < s:
            continue
        s, e = max(int(s), 0), min(int(e), length - 1)
        if e >= s:
            mask[s : e + 1] = True
    return mask


def detection_metrics(true_mask, pred_mask, zero_division: float = float("nan")) -> dict:
    """Detection precision/recall/F1, sample-wise (SeisT) and trace-wise.

    SeisT scores detection per sample: a sample is a TP when it lies in both a
    true and a predicted window, summed over all traces. The trace-wise scores
    say whether a trace holding any true window got any predicted window.

    Args:
        true_mask: (N, L) boolean/0-1 array of true event windows (see
            ``intervals_to_mask``). NaN is not allowed.
        pred_mask: (N, L) boolean/0-1 array of predicted windows (``detection_mask``).
        zero_division: value of a ratio whose denominator is 0.

    Returns:
        Dict with ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``
        (sample-wise) and ``trace_tp``, ``trace_fp``, ``trace_fn``, ``trace_tn``,
        ``trace_precision``, ``trace_recall``, ``trace_f1``, ``n_traces``.
    """
    t = np.asarray(true_mask)
    p = np.asarray(pred_mask)
    _check_same_shape(t, p, "true_mask", "pred_mask")
    if t.ndim != 2:
        raise ValueError(f"`true_mask` must have shape (N, L). Received: true_mask.shape={t.shape}")
    for name, a in (("true_mask", t), ("pred_mask", p)):
        if a.dtype.kind == "f" and np.isnan(a).any():
            raise ValueError(f"`{name}` contains NaN; detection masks must be 0/1.")
    t = t.astype(bool)
    p = p.astype(bool)
    tp = int(np.sum(t & p))
    fp = int(np.sum(~t & p))
    fn = int(np.sum(t & ~p))
    pr, rc = _ratio(tp, tp + fp, zero_division), _ratio(tp, tp + fn, zero_division)
    tt, pt = t.any(axis=1), p.any(axis=1)
    ttp, tfp = int(np.sum(tt & pt)), int(np.sum(~tt & pt))
    tfn, ttn = int(np.sum(tt & ~pt)), int(np.sum(~tt & ~pt))
    tpr, trc = _ratio(ttp, ttp + tfp, zero_division), _ratio(ttp, ttp + tfn, zero_division)
    return {
        "n_traces": int(t.shape[0]),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": pr,
        "recall": rc,
        "f1": _f1(pr, rc, zero_division),
        "trace_tp": ttp,
        "trace_fp": tfp,
        "trace_fn": tfn,
        "trace_tn": ttn,
        "trace_precision": tpr,
        "trace_recall": trc,
        "trace_f1": _f1(tpr, trc, zero_division),
    }


# --------------------------------------------------------------------------- regression
def _paired(y_true, y_pred) -> tuple[np.ndarray, np.ndarray, int]:
    t = _as_1d_float(y_true, "y_true")
    p = _as_1d_float(y_pred, "y_pred")
    _check_same_shape(t, p, "y_true", "y_pred")
    keep = ~(np.isnan(t) | np.isnan(p))
    return t[keep], p[keep], int(np.sum(~keep))


def _r2(t: np.ndarray, err: np.ndarray, centred: np.ndarray) -> float:
    ss_tot = float(np.sum(centred**2))
    ss_res = float(np.sum(err**2))
    if t.size == 0 or ss_tot == 0.0:
        return float("nan")
    return 1.0 - ss_res / ss_tot


def regression_metrics(y_true, y_pred) -> dict:
    """Error statistics of a scalar regression (magnitude, distance, depth...).

    Pairs where either value is NaN are dropped and counted in ``n_nan``.

    Args:
        y_true: 1-D array (or (N, 1)) of true values.
        y_pred: predictions, same shape.

    Returns:
        Dict with ``n``, ``n_nan`` and, on ``error = y_pred - y_true``: ``mean``,
        ``std`` (ddof=0), ``mae``, ``rmse``, plus ``r2`` (coefficient of
        determination; NaN when y_true is constant or empty).
    """
    t, p, n_nan = _paired(y_true, y_pred)
    err = p - t
    out = {"n": int(t.size), "n_nan": n_nan}
    out.update(_error_stats(err))
    out["r2"] = _r2(t, err, t - t.mean() if t.size else t)
    return out


def angle_error_deg(a, b) -> np.ndarray | float:
    """Signed angular difference ``a - b`` wrapped to (-180, 180] degrees.

    Args:
        a: angle(s) in degrees (array-like, broadcastable with ``b``).
        b: angle(s) in degrees.

    Returns:
        The wrapped difference; a float for scalar inputs, else an array. NaN propagates.
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    w = -(np.mod(-d + 180.0, 360.0) - 180.0)
    return float(w) if w.ndim == 0 else w


def backazimuth_metrics(y_true, y_pred) -> dict:
    """Back-azimuth error statistics with errors wrapped to (-180, 180] degrees.

    As in SeisT, ``r2`` uses the wrapped deviations of ``y_true`` from its
    arithmetic mean. NaN pairs are dropped (``n_nan``).

    Args:
        y_true: 1-D array of true back-azimuths (degrees).
        y_pred: predicted back-azimuths (degrees), same shape.

    Returns:
        Dict with ``n``, ``n_nan``, ``mean``, ``std``, ``mae``, ``rmse`` (degrees) and ``r2``.
    """
    t, p, n_nan = _paired(y_true, y_pred)
    err = np.asarray(angle_error_deg(p, t), dtype=float).reshape(-1)
    out = {"n": int(t.size), "n_nan": n_nan}
    out.update(_error_stats(err))
    centred = np.asarray(angle_error_deg(t, t.mean()), dtype=float).reshape(-1) if t.size else t
    out["r2"] = _r2(t, err, centred)
    return out


# --------------------------------------------------------------------------- classification
def _class_labels(y, name: str, threshold: float | None) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim == 2 and a.shape[1] > 1:
        if a.dtype.kind == "f" and np.isnan(a).any():
            raise ValueError(f"`{name}` contains NaN scores.")
        return np.argmax(a, axis=1)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(
            f"`{name}` must be labels (N,), scores (N, C) or (N, 1). Received: {name}.shape={a.shape}"
        )
    if a.dtype.kind == "f":
        if np.isnan(a).any():
            raise ValueError(f"`{name}` contains NaN; drop those traces first.")
        if threshold is not None:
            return (a >= threshold).astype(np.int64)
    return a


def confusion_matrix(y_true, y_pred, labels: Sequence) -> np.ndarray:
    """Confusion matrix, rows = true class, columns = predicted class, in ``labels`` order.

    Args:
        y_true: 1-D array of true labels.
        y_pred: 1-D array of predicted labels, same shape.
        labels: the classes, in display order. Samples with a label outside
            ``labels`` are ignored.

    Returns:
        int64 array (C, C).
    """
    t, p = np.asarray(y_true), np.asarray(y_pred)
    _check_same_shape(t, p, "y_true", "y_pred")
    labels = list(labels)
    if t.size == 0:
        return np.zeros((len(labels), len(labels)), dtype=np.int64)
    return sk_confusion_matrix(t, p, labels=labels).astype(np.int64)


def classification_metrics(
    y_true,
    y_pred,
    labels: Sequence | None = None,
    pos_label=None,
    threshold: float | None = None,
    zero_division: float = 0.0,
) -> dict:
    """Accuracy, per-class / binary / macro precision, recall, F1 and confusion matrix.

    Computed with scikit-learn (``precision_recall_fscore_support``,
    ``confusion_matrix``) over the given ``labels``.

    Args:
        y_true: (N,) labels, or (N, C) one-hot/scores (argmax is taken).
        y_pred: (N,) labels, (N, C) scores (argmax), or (N,) probabilities of the
            positive class when ``threshold`` is given (``>= threshold`` -> 1).
        labels: class order; default the sorted union of the labels seen.
        pos_label: positive class of the binary scores; default ``labels[-1]``
            (e.g. 1 for {0, 1}, 'U' for {'D', 'U'}).
        threshold: decision threshold for 1-D float probabilities (U-Trans uses 0.5).
        zero_division: value of precision/recall of a class never predicted /
            never present (sklearn's default, 0).

    Returns:
        Dict with ``n``, ``accuracy``, ``precision``/``recall``/``f1`` (binary,
        for ``pos_label``), ``precision_macro``/``recall_macro``/``f1_macro``,
        ``f1_micro`` (= accuracy for single-label data), per-class
        ``precision_<label>`` etc., ``labels`` (list) and ``confusion_matrix``
        (nested list of ints, rows = true, columns = predicted).
    """
    t = _class_labels(y_true, "y_true", None)
    p = _class_labels(y_pred, "y_pred", threshold)
    _check_same_shape(t, p, "y_true", "y_pred")
    if labels is None:
        labels = sorted(set(t.tolist()) | set(p.tolist()))
    labels = list(labels)
    if not labels:
        raise ValueError("No labels: `y_true` and `y_pred` are empty and `labels` was not given.")
    if pos_label is None:
        pos_label = labels[-1]
    if pos_label not in labels:
        raise ValueError(f"`pos_label` must be one of labels={labels}. Received: pos_label={pos_label!r}")
    cm = confusion_matrix(t, p, labels)
    n = int(t.size)
    out: dict = {"n": n, "accuracy": float(np.trace(cm)) / n if n else float("nan")}
    if n:
        pr, rc, f1, _ = precision_recall_fscore_support(
            t, p, labels=labels, average=None, zero_division=zero_division)
    else:
        pr = rc = f1 = np.full(len(labels), float(zero_division))
    for i, lab in enumerate(labels):
        out[f"precision_{lab}"], out[f"recall_{lab}"], out[f"f1_{lab}"] = (
            float(pr[i]), float(rc[i]), float(f1[i]))
    k = labels.index(pos_label)
    out["precision"], out["recall"], out["f1"] = float(pr[k]), float(rc[k]), float(f1[k])
    out["precision_macro"] = float(np.mean(pr))
    out["recall_macro"] = float(np.mean(rc))
    out["f1_macro"] = float(np.mean(f1))
    out["f1_micro"] = out["accuracy"]
    out["labels"] = [lab.item() if isinstance(lab, np.generic) else lab for lab in labels]
    out["confusion_matrix"] = cm.tolist()
    return out


# --------------------------------------------------------------------------- location
def location_metrics(
    true_lat,
    true_lon,
    pred_lat,
    pred_lon,
    true_depth_km=None,
    pred_depth_km=None,
) -> dict:
    """Hypocentre error statistics (U-Trans location evaluation).

    Errors are ``pred - true``; longitude errors are wrapped to (-180, 180].
    Traces with a NaN in any used column are dropped (``n_nan``).

    Args:
        true_lat: 1-D array of true event latitudes (degrees).
        true_lon: true event longitudes (degrees).
        pred_lat: predicted latitudes (degrees).
        pred_lon: predicted longitudes (degrees).
        true_depth_km: optional true depths (km).
        pred_depth_km: optional predicted depths (km); both depth arrays or neither.

    Returns:
        Dict with ``n_traces``, ``n_nan``, ``lat_mean_deg``, ``lat_mae_deg``,
        ``lat_std_deg`` (sigma of the signed error), the same for ``lon_``,
        ``epicentral_mean_km`` (= ``epicentral_mae_km``), ``epicentral_std_km``,
        ``epicentral_median_km``, ``epicentral_rmse_km`` (WGS84 geodesic) and,
        with depths, ``depth_mean_km``, ``depth_mae_km``, ``depth_std_km``, ``depth_rmse_km``.
    """
    cols = {
        "true_lat": _as_1d_float(true_lat, "true_lat"),
        "true_lon": _as_1d_float(true_lon, "true_lon"),
        "pred_lat": _as_1d_float(pred_lat, "pred_lat"),
        "pred_lon": _as_1d_float(pred_lon, "pred_lon"),
    }
    if (true_depth_km is None) != (pred_depth_km is None):
        raise ValueError("Pass both `true_depth_km` and `pred_depth_km`, or neither.")
    if true_depth_km is not None:
        cols["true_depth_km"] = _as_1d_float(true_depth_km, "true_depth_km")
        cols["pred_depth_km"] = _as_1d_float(pred_depth_km, "pred_depth_km")
    shapes = {k: v.shape for k, v in cols.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"All location arrays must have the same shape. Received: {shapes}")
    keep = ~np.any(np.isnan(np.stack(list(cols.values()))), axis=0)
    c = {k: v[keep] for k, v in cols.items()}
    out: dict = {"n_traces": int(keep.sum()), "n_nan": int((~keep).sum())}
    for name, err in (
        ("lat", c["pred_lat"] - c["true_lat"]),
        ("lon", np.asarray(angle_error_deg(c["pred_lon"], c["true_lon"]), dtype=float).reshape(-1)),
    ):
        s = _error_stats(err)
        out[f"{name}_mean_deg"], out[f"{name}_mae_deg"] = s["mean"], s["mae"]
        out[f"{name}_std_deg"], out[f"{name}_rmse_deg"] = s["std"], s["rmse"]
    dist = np.asarray(
        epicentral_distance_km(c["true_lat"], c["true_lon"], c["pred_lat"], c["pred_lon"]), dtype=float
    ).reshape(-1)
    s = _error_stats(dist)
    out["epicentral_mean_km"] = s["mean"]
    out["epicentral_mae_km"] = s["mae"]
    out["epicentral_std_km"] = s["std"]
    out["epicentral_rmse_km"] = s["rmse"]
    out["epicentral_median_km"] = float(np.median(dist)) if dist.size else float("nan")
    if "true_depth_km" in c:
        s = _error_stats(c["pred_depth_km"] - c["true_depth_km"])
        out["depth_mean_km"], out["depth_mae_km"] = s["mean"], s["mae"]
        out["depth_std_km"], out["depth_rmse_km"] = s["std"], s["rmse"]
    return out
