"""Picking and detection, whatever the picker: CSV rows and metrics.

Every picker of the ``picking`` quantity (U-Trans EQCCT P/S, SeisT dpk,
PhaseNet, EQTransformer) is turned into the same columns by the same decoder
(:mod:`utrans.decode`) and scored by the same code, so tasks 4, 5 and 6 and
every model in them report comparable numbers:

* the model's curves come back from its adapter as (det, P, S) at the data's
  rate; a curve the model lacks is NaN (EQCCT P has no S; PhaseNet no
  detection), and the ``outputs`` column lists the curves it has;
* picks: the model's ``pick_rule`` (``peaks``: every peak above the threshold
  at least ``min_peak_distance_s`` apart, SeisT; ``highest``: the single
  highest peak of the window, U-Trans), thresholds from the model's
  conventions unless ``--threshold`` / ``--det_threshold`` are given;
* scores: one-to-one matching of picks to arrivals within 0.1 s and 0.5 s; an
  unmatched pick is a false positive, an unmatched arrival a false negative
  (``p_f1_0.5s``, ``s_f1_0.5s``, ...); detection sample-wise (``det_f1``).

Baseline: a trivial picker that picks every trace at the mean arrival
sample of the training split (``baseline_p_f1_0.5s``, ...).
"""

import numpy as np
import pandas as pd

from utrans.evaluate.common import mean_or_nan, training_metadata

#: Shape of one prediction in the task layout: (det, P, S) curves over the window.
LAYOUT = (None, 3)
_CHANNELS = {"det": 0, "P": 1, "S": 2}
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


def decode_phase(curve, rule, threshold, min_distance):
    """Pick samples of one probability curve by the model's rule (:mod:`utrans.decode`)."""
    from utrans.decode import find_peaks, highest_peak

    if rule == "highest":
        h = highest_peak(curve, threshold)
        return np.zeros(0, dtype=np.int64) if h is None else np.array([h], dtype=np.int64)
    return find_peaks(curve, threshold, min_distance)


def rows(ids, metas, y, pred, pred_std, extras, ctx):
    """Picks and detection windows of a batch as a DataFrame (see the module doc)."""
    from utrans.decode import detect_events

    fs = ctx["sampling_rate"]
    curves = np.asarray(pred, dtype=np.float64)
    labels = np.asarray(y, dtype=np.float64)
    has = [name for name, c in _CHANNELS.items() if not np.isnan(curves[..., c]).all()]
    min_dist = int(round(ctx["min_peak_distance_s"] * fs))
    frame = pd.DataFrame({"trace_name": ids})
    for phase in ("P", "S"):
        ph = phase.lower()
        c = _CHANNELS[phase]
        frame[f"true_{ph}_sample"] = _true_pick(metas, phase, ctx["covered"])
        if phase in has:
            picks = [decode_phase(row, ctx["rule"], ctx["thresholds"][phase], min_dist)
                     for row in curves[..., c]]
            frame[f"pred_{ph}_samples"] = [_join(p) for p in picks]
            frame[f"pred_{ph}_probs"] = [_join(row[p], "{:.4f}")
                                         for row, p in zip(curves[..., c], picks)]
        else:
            frame[f"pred_{ph}_samples"] = np.nan
            frame[f"pred_{ph}_probs"] = np.nan
    spans = {"true": [], "pred": []}
    for i in range(len(ids)):
        for key, row in (("true", labels[i, :, 0]), ("pred", curves[i, :, 0])):
            win = (detect_events(row, ctx["thresholds"]["det"], max_events=1)
                   if key == "true" or "det" in has else np.zeros((0, 2)))
            spans[key].append(win[0] if len(win) else (np.nan, np.nan))
    for key in ("true", "pred"):
        arr = np.asarray(spans[key], dtype=np.float64).reshape(-1, 2)
        frame[f"{key}_det_start"], frame[f"{key}_det_end"] = arr[:, 0], arr[:, 1]
    frame["n_samples"] = curves.shape[1]
    frame["sampling_rate"] = fs
    frame["outputs"] = ";".join(has)
    return frame


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
    from utrans.metrics import match_picks

    out = []
    for p, t in zip(pred, true):
        p, t = np.asarray(p, float), np.asarray(t, float)
        p, t = p[~np.isnan(p)], t[~np.isnan(t)]
        out += [(p[i] - t[j]) / fs for i, j in match_picks(p, t, tolerance)]
    return np.asarray(out)


def pick_block(prefix, pred, true, fs):
    """``pick_metrics`` at 0.1 s and 0.5 s as flat keys ``<prefix><name>_<tol>s``."""
    from utrans.metrics import pick_metrics

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
    from utrans.metrics import pick_metrics

    mean = mean_or_nan([m.get(_KEYS[phase], np.nan) for m in training_metadata(config)
                        if m.get("trace_category") != "noise"])
    if np.isnan(mean):
        return float("nan")
    true = split_picks(frame[f"true_{phase.lower()}_sample"])
    return pick_metrics([np.array([round(mean)])] * len(frame), true, 0.5 * fs, fs)["f1"]


def read(frame, results, config, task):
    """Pick and detection metrics at 0.1 s and 0.5 s, baselines, residual and example figures."""
    from utrans import plots
    from utrans.metrics import detection_metrics, intervals_to_mask

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
    plot_examples(results, frame, [(_CHANNELS[c], c if c != "det" else "detection")
                                   for c in has], fs)
    return metrics


def plot_examples(results, frame, channels, sampling_rate):
    """Waveform + probability figures of the first test traces (``examples.npz`` of the tester)."""
    from utrans import plots

    path = results / "examples.npz"
    if not path.exists():
        return
    with np.load(path) as ex:
        names, waves, curves = ex["trace_name"], ex["waveform"], ex["curves"]
    table = frame.set_index("trace_name")
    for j, (name, wave, curve) in enumerate(zip(names, waves, curves)):
        probs, picks = {}, {}
        for c, label in channels:
            if not np.isnan(curve[:, c]).all():
                probs[label] = curve[:, c]
        if name in table.index:
            row = table.loc[name]
            row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
            for key in row.index:
                if key.startswith("true_") and key.endswith("_sample"):
                    picks[key[5:-7].upper() + " true"] = row[key]
        plots.plot_waveform_with_probs(wave, probs, results / f"example_{j}.png", picks=picks,
                                       sampling_rate=sampling_rate)


def score(frame, task):
    """The headline metric (F1 at 0.5 s of the task's first phase) recomputed from a frame."""
    from utrans.metrics import pick_metrics

    ph = headline(task)[0].split("_")[0]
    fs = float(frame["sampling_rate"].iloc[0]) if len(frame) else 100.0
    return pick_metrics(split_picks(frame[f"pred_{ph}_samples"]),
                        split_picks(frame[f"true_{ph}_sample"]), 0.5 * fs, fs)["f1"]
