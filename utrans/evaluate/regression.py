"""Scalar regression (magnitude, epicentral distance): CSV rows and metrics.

Baseline: predicting the mean training target for every trace.
"""

import numpy as np
import pandas as pd

from utrans.evaluate.common import mean_or_nan, training_metadata
from utrans import plots
from utrans.metrics import regression_metrics
from utrans.labels import get_labeller

#: Shape of one prediction in the task layout.
LAYOUT = (1,)


def headline(task):
    """``(metric, baseline metric, "lower" or "higher" is better)`` of the kind."""
    return "mae", "baseline_mae", "lower"


def extra_columns(frame, extras, pred_std, slug):
    """Add the model's extra columns and the Monte-Carlo std to ``frame``."""
    for key, values in extras.items():
        name = f"pred_{slug}_std" if key == "pred_std" else key
        frame[name] = np.asarray(values, dtype=np.float64).reshape(len(frame))
    if pred_std is not None:
        name = f"pred_{slug}_std" if f"pred_{slug}_std" not in frame else f"pred_{slug}_mc_std"
        frame[name] = np.asarray(pred_std, dtype=np.float64)[:, 0]
    return frame


def rows(ids, metas, y, pred, pred_std, extras, ctx):
    """True and predicted values of a batch as a DataFrame."""
    slug = ctx["task"].measures.column
    true = np.asarray(y, dtype=np.float64)[:, 0]
    p = np.asarray(pred, dtype=np.float64)[:, 0]
    frame = pd.DataFrame({"trace_name": ids, f"true_{slug}": true, f"pred_{slug}": p,
                          f"error_{slug}": p - true})
    if "pred_p_travel_s" in extras:  # dist-PT Network: the P travel time beside the distance
        frame["true_p_travel_s"] = [float(m.get("path_p_travel_sec", np.nan)) for m in metas]
    return extra_columns(frame, extras, pred_std, slug)


def training_target_mean(config, task):
    """Mean training target of the task's quantity (the predict-the-mean baseline), or None."""
    labeller = get_labeller(task.labeller_name)
    values = []
    for meta in training_metadata(config):
        try:
            values.append(float(labeller(meta)[0]))
        except (KeyError, TypeError, ValueError):
            continue
    mean = mean_or_nan(values)
    return None if np.isnan(mean) else mean


def read(frame, results, config, task):
    """Regression metrics (MAE, std, RMSE, R2), predicted-vs-true plot and residual histogram."""
    slug = task.measures.column
    true, pred = frame[f"true_{slug}"].to_numpy(float), frame[f"pred_{slug}"].to_numpy(float)
    m = regression_metrics(true, pred)
    metrics = dict(n_traces=int(len(frame)), quantity=task.quantity, unit=task.unit,
                   mean_error=m["mean"], std=m["std"], mae=m["mae"], rmse=m["rmse"], r2=m["r2"])
    mean = training_target_mean(config, task)
    metrics["baseline_mae"] = (mean_or_nan(np.abs(true - mean)) if mean is not None
                               else float("nan"))
    label = task.measures.description
    plots.plot_pred_vs_true(true, pred, results / "pred_vs_true.png", label=label, unit=task.unit)
    plots.plot_residual_histogram(pred - true, results / "residual_hist.png",
                                  label=f"{label} error", unit=task.unit)
    if "pred_p_travel_s" in frame and "true_p_travel_s" in frame:
        t = regression_metrics(frame["true_p_travel_s"], frame["pred_p_travel_s"])
        metrics.update(p_travel_mae_s=t["mae"], p_travel_rmse_s=t["rmse"], p_travel_r2=t["r2"])
        plots.plot_pred_vs_true(frame["true_p_travel_s"], frame["pred_p_travel_s"],
                                results / "pred_vs_true_p_travel.png", label="P travel time",
                                unit="s")
    return metrics


def score(frame, task):
    """The headline metric (MAE) recomputed from a predictions frame."""
    slug = task.measures.column
    return mean_or_nan(np.abs(frame[f"pred_{slug}"].to_numpy(float)
                              - frame[f"true_{slug}"].to_numpy(float)))
