"""Back-azimuth: CSV rows (degrees from (cos, sin)) and metrics with errors wrapped to +-180 deg.

Baseline: predicting the circular mean of the training back-azimuths for every trace.
"""

import numpy as np
import pandas as pd
import scipy.stats

from utrans import plots
from utrans.evaluate.common import mean_or_nan, training_metadata
from utrans.metrics import angle_error_deg, backazimuth_metrics
from utrans.labels import BackAzimuthLabeller
from utrans.evaluate.regression import extra_columns

#: Shape of one prediction in the task layout: (cos, sin).
LAYOUT = (2,)


def headline(task):
    """``(metric, baseline metric, "lower" or "higher" is better)`` of the kind."""
    return "mae_deg", "baseline_mae_deg", "lower"


def rows(ids, metas, y, pred, pred_std, extras, ctx):
    """True and predicted back-azimuths of a batch as a DataFrame."""
    true = BackAzimuthLabeller.inverse(y)
    p = BackAzimuthLabeller.inverse(pred)
    frame = pd.DataFrame({"trace_name": ids, "true_baz_deg": true, "pred_baz_deg": p,
                          "error_baz_deg": np.asarray(angle_error_deg(p, true)).reshape(-1),
                          "pred_cos": np.asarray(pred)[:, 0], "pred_sin": np.asarray(pred)[:, 1]})
    return extra_columns(frame, extras, None, "baz_deg")


def circular_mean_deg(values):
    """Circular mean of angles in degrees, in [0, 360) (NaN for no finite value)."""
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return float("nan")
    return float(scipy.stats.circmean(a, high=360.0, low=0.0))


def read(frame, results, config, task):
    """Back-azimuth metrics with errors wrapped to +-180 degrees, and figures."""
    m = backazimuth_metrics(frame["true_baz_deg"], frame["pred_baz_deg"])
    metrics = dict(n_traces=int(len(frame)), mean_deg=m["mean"], std_deg=m["std"],
                   mae_deg=m["mae"], rmse_deg=m["rmse"], r2=m["r2"])
    mean = circular_mean_deg([meta.get("path_back_azimuth_deg", np.nan)
                              for meta in training_metadata(config)])
    metrics["baseline_mae_deg"] = mean_or_nan(
        np.abs(angle_error_deg(np.full(len(frame), mean), frame["true_baz_deg"].to_numpy(float))))
    metrics["baseline_circular_mean_deg"] = mean
    plots.plot_pred_vs_true(frame["true_baz_deg"], frame["pred_baz_deg"],
                            results / "pred_vs_true.png", label="back-azimuth", unit="deg",
                            metrics=m)  # errors wrapped to +-180 degrees, as in metrics.json
    plots.plot_residual_histogram(frame["error_baz_deg"], results / "residual_hist.png",
                                  label="back-azimuth error", unit="deg", xlim=(-180, 180))
    return metrics


def score(frame, task):
    """The headline metric (MAE of the wrapped error, degrees) recomputed from a predictions frame."""
    return mean_or_nan(np.abs(angle_error_deg(frame["pred_baz_deg"].to_numpy(float),
                                              frame["true_baz_deg"].to_numpy(float))))
