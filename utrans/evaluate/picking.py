"""Picking and detection, whatever the picker: CSV rows and metrics.

Every picker of the ``picking`` quantity (U-Trans EQCCT P/S, SeisT dpk,
PhaseNet, EQTransformer) is decoded by its pipeline with the same decoder as
``classify`` (:meth:`utrans.pipeline.Pipeline.picks`) and scored by the same
code, so tasks 4, 5 and 6 and every model in them report comparable numbers:

* the model's curves are decoded at the model's own rate, over the part of
  its window that holds the test trace; the picks are then placed on the test
  trace's samples (:meth:`utrans.pipeline.Frame.to_record`). A curve the model
  lacks is not decoded (EQCCT P has no S; PhaseNet no detection), and the
  ``outputs`` column lists the curves it has;
* picks: the model's ``pick_rule`` (``peaks``: the highest ``--max_picks``
  peaks above the threshold (1 per window, the SeisT reference's
  ``max_detect_event_num``), at least ``min_peak_distance_s`` apart;
  ``highest``: the single highest peak of the window, U-Trans), thresholds
  from the model's conventions unless ``--threshold`` / ``--det_threshold``
  are given; the true event window is P to ``S + 2 (S - P)``, the SeisT
  reference's;
* scores: one-to-one matching of picks to arrivals within 0.1 s and 0.5 s; an
  unmatched pick is a false positive, an unmatched arrival a false negative
  (``p_f1_0.5s``, ``s_f1_0.5s``, ...); detection sample-wise (``det_f1``).

Baseline: a trivial picker that picks every trace at the mean arrival
sample of the training split (``baseline_p_f1_0.5s``, ...).
"""

import numpy as np
import pandas as pd

from utrans import plots
from utrans.evaluate.common import mean_or_nan, training_metadata
from utrans.metrics import (
    detection_metrics,
    intervals_to_mask,
    match_picks,
    pick_metrics,
)

#: Shape of one prediction: the model's curves over its window.
LAYOUT = (None, None)
_KEYS = {"P": "trace_p_arrival_sample", "S": "trace_s_arrival_sample"}


def headline(task):
    """``(metric, baseline metric, "lower" or "higher" is better)`` of the kind."""
    ph = (task.phases or ("P",))[0].lower()
    return f"{ph}_f1_0.5s", f"baseline_{ph}_f1_0.5s", "higher"


def _true_pick(metas, phase, covered):
    out = np.full(len(metas), np.nan)
    for i, m in enumerate(metas):
        v = m.get(_KEYS[phase])
        if m.get("trace_category") != "noise" and v is not None and np.isfinite(float(v)):
            out[i] = float(v) if 0 <= float(v) < covered else np.nan
    return out


def _join(values, fmt="{:d}"):
    return ";".join(fmt.format(int(v) if fmt == "{:d}" else float(v)) for v in values)


def true_detection(meta, covered, coda_ratio=2.0):
    """The event window ``[P, S + coda_ratio (S - P))`` of one trace (inclusive samples), or NaNs.

    The detection truth of every picker, whatever it was trained on: the
    SeisT reference window (coda end ``int(S + 2 (S - P))``), clipped to the
    samples the model sees.
    """
    p, s = meta.get(_KEYS["P"]), meta.get(_KEYS["S"])
    if meta.get("trace_category") == "noise" or p is None or s is None:
        return np.nan, np.nan
    p, s = float(p), float(s)
    if not (np.isfinite(p) and np.isfinite(s)) or not 0 <= p < covered:
        return np.nan, np.nan
    end = min(int(s + coda_ratio * (s - p)), covered) - 1
    return int(p), end


def _join(values, fmt="{:g}"):
    return ";".join(fmt.format(float(v)) for v in values)


def rows(ids, metas, y, pred, pred_std, extras, ctx):
    """Picks and detection windows of a batch as a DataFrame (see the module doc).

    ``pred`` holds the model's curves ``(batch, samples, labels)`` at its rate;
    ``ctx`` the pipeline, the batch's frame, the thresholds and the decoding
    options; picks and windows are written in samples of the test traces.
    """
    pipeline, frame = ctx["pipeline"], ctx["frame"]
    labels = pipeline.conventions.labels
    curves = np.asarray(pred, dtype=np.float32)
    has = [name for name in ("det", "P", "S") if name in labels]
    out = pd.DataFrame({"trace_name": ids})
    cols = {"P": ([], []), "S": ([], [])}
    spans = []
    for i in range(len(ids)):
        lo, hi = (int(v) for v in frame.valid[i])
        row = curves[i, lo:hi]
        for phase in ("P", "S"):
            if phase not in has:
                continue
            curve = row[:, labels.index(phase)]
            picks = pipeline.picks(curve, phase, ctx["thresholds"][phase],
                                   ctx["min_peak_distance_s"], max_picks=ctx.get("max_picks"))
            where = (picks + lo + frame.start[i]) / frame.ratio  # row i's Frame.to_record
            cols[phase][0].append(_join(where))
            cols[phase][1].append(_join(curve[picks], "{:.4f}"))
        if "det" in has:
            win = pipeline.detections(row[:, labels.index("det")], ctx["thresholds"]["det"],
                                      max_events=1)
            spans.append(((win[0] + lo + frame.start[i]) / frame.ratio) if len(win)
                         else (np.nan, np.nan))
        else:
            spans.append((np.nan, np.nan))
    for phase in ("P", "S"):
        ph = phase.lower()
        out[f"true_{ph}_sample"] = _true_pick(metas, phase, ctx["covered"])
        out[f"pred_{ph}_samples"] = cols[phase][0] if phase in has else np.nan
        out[f"pred_{ph}_probs"] = cols[phase][1] if phase in has else np.nan
    truth = np.asarray([true_detection(m, ctx["covered"]) for m in metas],
                       dtype=np.float64).reshape(-1, 2)
    pred_spans = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
    out["true_det_start"], out["true_det_end"] = truth[:, 0], truth[:, 1]
    out["pred_det_start"], out["pred_det_end"] = pred_spans[:, 0], pred_spans[:, 1]
    out["n_samples"] = ctx["covered"]
    out["sampling_rate"] = ctx["sampling_rate"]
    out["outputs"] = ";".join(has)
    return out


def split_picks(column):
    """``"12;250"`` cells -> list of float arrays (empty for no pick)."""
    out = []
    for v in column:
        if isinstance(v, str) and v:
            out.append(np.array([float(t) for t in v.split(";")]))
        elif isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v):
            out.append(np.array([float(v)]))
        else:
            out.append(np.zeros(0))
    return out


def _matched_residuals(pred, true, tolerance, fs):
    out = []
    for p, t in zip(pred, true):
        p, t = np.asarray(p, float), np.asarray(t, float)
        p, t = p[~np.isnan(p)], t[~np.isnan(t)]
        out += [(p[i] - t[j]) / fs for i, j in match_picks(p, t, tolerance)]
    return np.asarray(out)


def pick_block(prefix, pred, true, fs):
    """``pick_metrics`` at 0.1 s and 0.5 s as flat keys ``<prefix><name>_<tol>s``."""
    out = {}
    for tol in (0.1, 0.5):
        m = pick_metrics(pred, true, tol * fs, fs)
        for key in ("precision", "recall", "f1", "mean_s", "std_s", "mae_s", "rmse_s", "tp",
                    "fp", "fn"):
            out[f"{prefix}{key}_{tol}s"] = m[key]
    return out


def outputs_of(frame):
    """The curves the tested model has (``det``, ``P``, ``S``), from the ``outputs`` column."""
    if "outputs" not in frame or not len(frame) or not isinstance(frame["outputs"].iloc[0], str):
        return []
    return frame["outputs"].iloc[0].split(";")


def baseline(config, frame, phase, fs):
    """F1 at 0.5 s of picking every trace at the mean training arrival sample (NaN if unknown)."""
    mean = mean_or_nan([m.get(_KEYS[phase], np.nan) for m in training_metadata(config)
                        if m.get("trace_category") != "noise"])
    if np.isnan(mean):
        return float("nan")
    true = split_picks(frame[f"true_{phase.lower()}_sample"])
    return pick_metrics([np.array([round(mean)])] * len(frame), true, 0.5 * fs, fs)["f1"]


def read(frame, results, config, task):
    """Pick and detection metrics at 0.1 s and 0.5 s, baselines, residual and example figures."""
    fs = float(frame["sampling_rate"].iloc[0]) if len(frame) else 100.0
    has = outputs_of(frame)
    metrics = dict(n_traces=int(len(frame)), outputs=has)
    for phase in ("P", "S"):
        if phase not in has:
            continue
        ph = phase.lower()
        pred = split_picks(frame[f"pred_{ph}_samples"])
        true = split_picks(frame[f"true_{ph}_sample"])
        metrics.update(pick_block(f"{ph}_", pred, true, fs))
        metrics[f"baseline_{ph}_f1_0.5s"] = baseline(config, frame, phase, fs)
        res = _matched_residuals(pred, true, 0.5 * fs, fs)
        plots.plot_residual_histogram(res, results / f"{ph}_residual_hist.png",
                                      label=f"{phase} pick residual", unit="s", xlim=(-0.5, 0.5))
    keys = ("precision", "recall", "f1", "trace_precision", "trace_recall", "trace_f1")
    if "det" in has and len(frame):
        n = int(frame["n_samples"].iloc[0])
        true_mask = np.stack([intervals_to_mask([[a, b]], n) for a, b in
                              frame[["true_det_start", "true_det_end"]].to_numpy(float)])
        pred_mask = np.stack([intervals_to_mask([[a, b]], n) for a, b in
                              frame[["pred_det_start", "pred_det_end"]].to_numpy(float)])
        d = detection_metrics(true_mask, pred_mask)
        metrics.update({f"det_{k}": d[k] for k in keys})
    else:
        metrics.update({f"det_{k}": None for k in keys})
    plot_examples(results, frame)
    return metrics


def plot_examples(results, frame):
    """Waveform + probability figures of the first test traces (``examples.npz`` of the tester).

    The figures show what the model saw: its input window and its curves, at
    its own rate, with the true picks placed in that window.
    """
    path = results / "examples.npz"
    if not path.exists():
        return
    with np.load(path) as ex:
        names, waves, curves = ex["trace_name"], ex["waveform"], ex["curves"]
        labels, rate = [str(v) for v in ex["labels"]], float(ex["sampling_rate"])
    data_rate = float(frame["sampling_rate"].iloc[0]) if len(frame) else 100.0
    table = frame.set_index("trace_name")
    for j, (name, wave, curve) in enumerate(zip(names, waves, curves)):
        probs = {("detection" if label == "det" else label): curve[:, k]
                 for k, label in enumerate(labels) if label in ("det", "P", "S")}
        picks = {}
        if name in table.index:
            row = table.loc[name]
            row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
            for key in row.index:
                if key.startswith("true_") and key.endswith("_sample"):
                    picks[key[5:-7].upper() + " true"] = row[key] * rate / data_rate
        plots.plot_waveform_with_probs(wave, probs, results / f"example_{j}.png", picks=picks,
                                       sampling_rate=rate)


def score(frame, task):
    """The headline metric (F1 at 0.5 s of the task's first phase) recomputed from a frame."""
    ph = headline(task)[0].split("_")[0]
    fs = float(frame["sampling_rate"].iloc[0]) if len(frame) else 100.0
    return pick_metrics(split_picks(frame[f"pred_{ph}_samples"]),
                        split_picks(frame[f"true_{ph}_sample"]), 0.5 * fs, fs)["f1"]
