"""Pretraining: reconstruction error per trace, its baseline (the masked input) and figures."""

import numpy as np
import pandas as pd

from utrans import plots
from utrans.evaluate.common import mean_or_nan

#: Shape of one prediction in the task layout: the reconstructed (E, N, Z) window.
LAYOUT = (None, 3)


def headline(task):
    """``(metric, baseline metric, "lower" or "higher" is better)`` of the kind."""
    return "mae", "masked_input_mae", "lower"


def _channel_correlation(a, b):
    """Pearson correlation of ``a`` and ``b`` (B, T, C) along time: (B, C), NaN for a flat channel."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1.0), np.nan)


def rows(ids, metas, y, pred, pred_std, extras, ctx):
    """Per-trace MAE and channel correlations of the reconstructions of a batch."""
    clean = np.asarray(y, dtype=np.float64)
    recon = np.asarray(pred, dtype=np.float64)
    corr = _channel_correlation(recon, clean)
    frame = pd.DataFrame({"trace_name": ids, "mae": np.abs(recon - clean).mean(axis=(1, 2))})
    for c, name in enumerate("ENZ"):
        frame[f"corr_{name}"] = corr[:, c]
    for key, values in extras.items():
        frame[key] = np.asarray(values, dtype=np.float64).reshape(len(frame))
    if pred_std is not None:
        frame["recon_std_mean"] = np.asarray(pred_std, dtype=np.float64).mean(axis=(1, 2))
    return frame


def read(frame, results, config, task):
    """Reconstruction MAE, the masked input's own MAE, per-channel correlation, and figures.

    Figures: the histogram of the per-trace MAE and, for the first test traces
    (``examples.npz`` of the tester), clean input / masked input / reconstruction.
    """
    corr = {c: mean_or_nan(frame[f"corr_{c}"]) for c in "ENZ"}
    masked = mean_or_nan(frame["masked_input_mae"]) if "masked_input_mae" in frame else \
        float("nan")
    metrics = dict(n_traces=int(len(frame)), mae=float(frame["mae"].mean()),
                   mae_median=float(frame["mae"].median()),
                   mae_std=float(frame["mae"].std(ddof=0)), masked_input_mae=masked,
                   corr_E=corr["E"], corr_N=corr["N"], corr_Z=corr["Z"],
                   corr_mean=mean_or_nan(list(corr.values())))
    plots.plot_residual_histogram(frame["mae"], results / "mae_hist.png",
                                  label="reconstruction MAE per trace", unit="normalised")
    path = results / "examples.npz"
    if path.exists():
        with np.load(path) as ex:
            if "target" in ex:
                for j, (clean, wave, recon) in enumerate(zip(ex["target"], ex["waveform"],
                                                             ex["curves"])):
                    plots.plot_reconstruction(clean, wave, recon, results / f"example_{j}.png",
                                              sampling_rate=float(ex["sampling_rate"]))
    return metrics


def score(frame, task):
    """The headline metric (mean reconstruction MAE) recomputed from a predictions frame."""
    return mean_or_nan(frame["mae"])
