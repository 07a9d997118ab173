"""Evaluation figures: loss curves, predicted vs. true, confusion matrix, residuals, maps, waveforms.

Every function draws on its own ``matplotlib.figure.Figure`` (no pyplot state,
no backend selection, so it works headless and inside notebooks), saves a PNG to
the given path (creating the parent folder) and returns that path.
matplotlib is imported only when a function is called.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from utrans import metrics as _metrics
from utrans.processing.geodesy import epicentral_distance_km

logger = logging.getLogger(__name__)

__all__ = [
    "plot_loss_curves",
    "plot_pred_vs_true",
    "plot_confusion_matrix",
    "plot_residual_histogram",
    "plot_location_map",
    "plot_waveform_with_probs",
    "plot_reconstruction",
    "plot_comparison",
]


def _new_figure(nrows: int = 1, ncols: int = 1, figsize=(6.0, 4.5), **kwargs):
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def _save(fig, path, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi)
    logger.info("Wrote figure %s", path)
    return path


def _read_history(history) -> dict[str, np.ndarray]:
    if isinstance(history, Mapping):
        items = history.items()
    elif isinstance(history, (str, os.PathLike)):
        path = Path(history)
        if not path.is_file():
            raise FileNotFoundError(f"Training history CSV not found. Received: history={str(path)!r}")
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        if not rows:
            raise ValueError(f"Training history CSV {str(path)!r} has no rows.")
        items = [(k, [r[k] for r in rows]) for k in rows[0].keys()]
    elif hasattr(history, "history") and isinstance(history.history, Mapping):  # keras History
        items = history.history.items()
    else:
        raise TypeError(
            "`history` must be a CSV path, a dict of lists or a keras History. "
            f"Received: type={type(history).__name__}"
        )
    out = {}
    for key, values in items:
        try:
            out[str(key)] = np.asarray(values, dtype=float).reshape(-1)
        except ValueError:
            continue  # non-numeric column
    return out


def _epochs(hist, size):
    """Epoch numbers from 1: Keras's ``CSVLogger`` counts from 0, utrans's ``history.csv`` from 1."""
    epochs = hist.get("epoch")
    if epochs is None or epochs.shape != (size,):
        return np.arange(1, size + 1)
    return epochs + 1 if epochs.size and epochs.min() == 0 else epochs


def plot_loss_curves(history, path, keys: Sequence[str] | None = None, log_y: bool = False, dpi: int = 100) -> Path:
    """Plot training curves (loss and val_loss by default) against epochs.

    Args:
        history: a ``keras.callbacks.CSVLogger`` file path, a dict ``name -> values``
            or a ``keras.callbacks.History``.
        path: output PNG path.
        keys: columns to plot; default every column whose name ends in ``loss``.
        log_y: use a logarithmic y axis.
        dpi: resolution of the PNG.

    Returns:
        ``Path`` of the written PNG.
    """
    hist = _read_history(history)
    if keys is None:
        keys = [k for k in hist if k.endswith("loss")]
        if not keys:
            raise ValueError(f"No column ending in 'loss' in the history. Received columns: {sorted(hist)}")
    missing = [k for k in keys if k not in hist]
    if missing:
        raise KeyError(f"History has no column(s) {missing}. Received columns: {sorted(hist)}")
    fig, axes = _new_figure()
    ax = axes[0, 0]
    for k in keys:
        y = hist[k]
        ax.plot(_epochs(hist, y.size), y, marker="o", ms=3, label=k)
    ax.set_xlabel("epoch")
    ax.set_ylabel("value")
    if log_y:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title("Training curves")
    return _save(fig, path, dpi)


def plot_pred_vs_true(
    y_true,
    y_pred,
    path,
    label: str = "value",
    unit: str = "",
    dpi: int = 100,
    metrics: dict | None = None,
) -> Path:
    """Scatter of predicted vs. true values with the 1:1 line; metrics in the title.

    Args:
        y_true: 1-D array of true values.
        y_pred: 1-D array of predictions (same shape); NaN pairs are not drawn.
        path: output PNG path.
        label: quantity name for the axes (e.g. ``"magnitude"``).
        unit: unit for the axes, e.g. ``"km"``.
        dpi: resolution of the PNG.
        metrics: the title's metrics (``n``, ``mae``, ``std``, ``rmse``, ``r2``,
            ``mean``) when they are not plain differences, e.g. back-azimuth
            errors wrapped to +-180 degrees; default: computed from the values.

    Returns:
        ``Path`` of the written PNG.
    """
    m = _metrics.regression_metrics(y_true, y_pred)  # validates shapes
    m = dict(m, **(metrics or {}))
    t = _metrics._as_1d_float(y_true, "y_true")
    p = _metrics._as_1d_float(y_pred, "y_pred")
    keep = ~(np.isnan(t) | np.isnan(p))
    t, p = t[keep], p[keep]
    fig, axes = _new_figure(figsize=(5.5, 5.5))
    ax = axes[0, 0]
    ax.scatter(t, p, s=8, alpha=0.4, facecolors="none", edgecolors="tab:red")
    if t.size:
        lo = float(min(t.min(), p.min()))
        hi = float(max(t.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1.5, alpha=0.6, label="1:1")
        ax.legend(loc="upper left")
    suffix = f" ({unit})" if unit else ""
    ax.set_xlabel(f"true {label}{suffix}")
    ax.set_ylabel(f"predicted {label}{suffix}")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(True, alpha=0.3)
    ax.set_title(
        f"{label}: n={m['n']}  MAE={m['mae']:.3g}  std={m['std']:.3g}\n"
        f"RMSE={m['rmse']:.3g}  R$^2$={m['r2']:.3f}  mean err={m['mean']:.3g}"
    )
    return _save(fig, path, dpi)


def plot_confusion_matrix(cm, labels: Sequence, path, normalize: bool = True,
                          title: str = "Confusion matrix", dpi: int = 100) -> Path:
    """Heat map of a confusion matrix with counts (and row percentages) in each cell.

    Args:
        cm: square array (C, C), rows = true class, columns = predicted class
            (as returned by ``utrans.metrics.confusion_matrix``).
        labels: the C class names.
        path: output PNG path.
        normalize: colour by the fraction of each true class (row) instead of counts.
        title: figure title.
        dpi: resolution of the PNG.

    Returns:
        ``Path`` of the written PNG.
    """
    cm = np.asarray(cm)
    labels = list(labels)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"`cm` must be a square 2-D array. Received: cm.shape={cm.shape}")
    if len(labels) != cm.shape[0]:
        raise ValueError(
            f"`labels` must name every row of `cm`. Received: len(labels)={len(labels)}, cm.shape={cm.shape}"
        )
    if np.any(np.isnan(cm.astype(float))) or np.any(cm < 0):
        raise ValueError("`cm` must hold non-negative counts (no NaN).")
    rows = cm.sum(axis=1, keepdims=True).astype(float)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    shown = frac if normalize else cm.astype(float)
    size = 1.2 + 1.1 * len(labels)
    fig, axes = _new_figure(figsize=(size + 1.0, size))
    ax = axes[0, 0]
    im = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else max(float(shown.max()), 1.0))
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of true class" if normalize else "count")
    thresh = (1.0 if normalize else max(float(shown.max()), 1.0)) / 2.0
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j, i, f"{int(cm[i, j])}\n{100 * frac[i, j]:.1f}%", ha="center", va="center",
                color="white" if shown[i, j] > thresh else "black",
            )
    ax.set_xticks(range(len(labels)), [str(x) for x in labels])
    ax.set_yticks(range(len(labels)), [str(x) for x in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    total = cm.sum()
    acc = np.trace(cm) / total if total else float("nan")
    ax.set_title(f"{title}\naccuracy={acc:.3f}  n={int(total)}")
    return _save(fig, path, dpi)


def plot_residual_histogram(
    residuals_s,
    path,
    bins: int = 40,
    xlim: tuple[float, float] | None = None,
    label: str = "pick residual",
    unit: str = "s",
    dpi: int = 100,
) -> Path:
    """Histogram of residuals with mean, std and MAE in the title.

    Args:
        residuals_s: 1-D array of residuals (seconds for picks; any unit with ``unit``).
            NaN entries are ignored.
        path: output PNG path.
        bins: number of histogram bins.
        xlim: optional x-axis limits.
        label: quantity name for the x axis.
        unit: unit of the residuals.
        dpi: resolution of the PNG.

    Returns:
        ``Path`` of the written PNG.
    """
    r = _metrics._as_1d_float(residuals_s, "residuals_s")
    n_nan = int(np.isnan(r).sum())
    r = r[~np.isnan(r)]
    fig, axes = _new_figure()
    ax = axes[0, 0]
    if r.size:
        ax.hist(r, bins=bins, range=xlim, color="tab:red", alpha=0.6, edgecolor="black", linewidth=0.8)
        ax.axvline(0.0, color="k", lw=1, ls="--")
        title = (
            f"n={r.size}  mean={r.mean():.3g} {unit}  std={r.std():.3g} {unit}  "
            f"MAE={np.abs(r).mean():.3g} {unit}"
        )
    else:
        title = "no residuals"
    if n_nan:
        title += f"  ({n_nan} NaN ignored)"
    if xlim is not None:
        ax.set_xlim(*xlim)
    ax.set_xlabel(f"{label} ({unit})" if unit else label)
    ax.set_ylabel("count")
    ax.grid(True, alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(title, fontsize=9)
    return _save(fig, path, dpi)


def plot_location_map(station, true_event, pred_event, path, max_lines: int = 500, dpi: int = 100) -> Path:
    """Longitude/latitude map of stations, true and predicted epicentres with error lines.

    Args:
        station: array (N, 2) of station (lat, lon) in degrees, or (2,) for one
            station; NaN rows are skipped.
        true_event: array (N, 2) of true epicentre (lat, lon).
        pred_event: array (N, 2) of predicted epicentre (lat, lon).
        path: output PNG path.
        max_lines: draw error lines for at most this many events (the first ones).
        dpi: resolution of the PNG.

    Returns:
        ``Path`` of the written PNG.
    """
    def as_pts(a, name):
        arr = np.asarray(a, dtype=float)
        if arr.ndim == 1 and arr.shape == (2,):
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(f"`{name}` must have shape (N, 2) as (lat, lon). Received: {name}.shape={np.shape(a)}")
        return arr

    sta = as_pts(station, "station")
    tru = as_pts(true_event, "true_event")
    pre = as_pts(pred_event, "pred_event")
    if tru.shape != pre.shape:
        raise ValueError(
            f"`true_event` and `pred_event` must have the same shape. Received: {tru.shape} and {pre.shape}"
        )
    if sta.shape[0] not in (1, tru.shape[0]):
        raise ValueError(
            f"`station` must have 1 or N={tru.shape[0]} rows. Received: station.shape={sta.shape}"
        )
    keep = ~(np.isnan(tru).any(axis=1) | np.isnan(pre).any(axis=1))
    tru_k, pre_k = tru[keep], pre[keep]
    fig, axes = _new_figure(figsize=(6.5, 6.0))
    ax = axes[0, 0]
    n_lines = min(int(max_lines), tru_k.shape[0])
    if n_lines:
        segs = np.stack([tru_k[:n_lines, ::-1], pre_k[:n_lines, ::-1]], axis=1)
        ax.add_collection(LineCollection(segs, colors="0.5", linewidths=0.7, alpha=0.7, label="error"))
    sta_k = sta[~np.isnan(sta).any(axis=1)]
    ax.scatter(sta_k[:, 1], sta_k[:, 0], marker="^", s=60, c="tab:blue", edgecolors="k", label="station", zorder=3)
    ax.scatter(tru_k[:, 1], tru_k[:, 0], marker="*", s=70, c="gold", edgecolors="k", label="true epicentre", zorder=4)
    ax.scatter(pre_k[:, 1], pre_k[:, 0], marker="o", s=25, c="tab:red", alpha=0.7, label="predicted", zorder=5)
    title = f"Epicentres (n={tru_k.shape[0]})"
    if tru_k.shape[0]:
        err = np.asarray(
            epicentral_distance_km(tru_k[:, 0], tru_k[:, 1], pre_k[:, 0], pre_k[:, 1]), dtype=float
        ).reshape(-1)
        title += f"  epicentral MAE={np.mean(err):.2f} km  median={np.median(err):.2f} km"
        mid_lat = float(np.nanmean(np.concatenate([tru_k[:, 0], sta_k[:, 0]])))
        ax.set_aspect(1.0 / max(np.cos(np.radians(mid_lat)), 1e-3), adjustable="datalim")
    ax.autoscale_view()
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title, fontsize=9)
    return _save(fig, path, dpi)


def plot_waveform_with_probs(
    waveform,
    probs: Mapping[str, np.ndarray],
    path,
    picks: Mapping[str, float | Sequence[float]] | None = None,
    sampling_rate: float | None = None,
    channel_names: Sequence[str] = ("E", "N", "Z"),
    dpi: int = 100,
) -> Path:
    """Three-component waveform above the model's probability curves, with pick markers.

    Args:
        waveform: array (L, 3), channels last.
        probs: dict ``name -> (L,)`` probability curve (e.g. ``{"P": p, "S": s, "det": d}``).
        path: output PNG path.
        picks: optional dict ``name -> sample or list of samples`` drawn as
            vertical lines on every panel (e.g. ``{"P true": 500, "P pred": 504}``).
        sampling_rate: if given, the x axis is in seconds, else in samples.
        channel_names: labels of the three channels.
        dpi: resolution of the PNG.

    Returns:
        ``Path`` of the written PNG.
    """
    w = np.asarray(waveform, dtype=float)
    if w.ndim != 2 or w.shape[1] != 3:
        raise ValueError(f"`waveform` must have shape (L, 3). Received: waveform.shape={w.shape}")
    if len(channel_names) != 3:
        raise ValueError(f"`channel_names` must name 3 channels. Received: channel_names={list(channel_names)}")
    curves = {}
    for name, p in dict(probs).items():
        arr = np.asarray(p, dtype=float)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr.reshape(-1)
        if arr.shape != (w.shape[0],):
            raise ValueError(
                f"Probability curve {name!r} must have shape ({w.shape[0]},) to match the waveform. "
                f"Received: shape={np.shape(p)}"
            )
        curves[name] = arr
    scale = 1.0 / sampling_rate if sampling_rate else 1.0
    t = np.arange(w.shape[0]) * scale
    n_panels = 4 if curves else 3
    fig, axes = _new_figure(n_panels, 1, figsize=(9.0, 1.7 * n_panels + 0.6), sharex=True)
    axes = axes[:, 0]
    for c in range(3):
        axes[c].plot(t, w[:, c], color="k", lw=0.6)
        axes[c].set_ylabel(channel_names[c])
    if curves:
        for name, arr in curves.items():
            axes[3].plot(t, arr, lw=1.2, label=name)
        axes[3].set_ylim(-0.05, 1.05)
        axes[3].set_ylabel("probability")
        axes[3].legend(loc="upper right", fontsize=8)
    colors = ["tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown"]
    for k, (name, samples) in enumerate(dict(picks or {}).items()):
        vals = np.atleast_1d(np.asarray(samples, dtype=float))
        vals = vals[~np.isnan(vals)]
        for j, s in enumerate(vals):
            for ax in axes:
                ax.axvline(s * scale, color=colors[k % len(colors)], ls="--", lw=1.0,
                           label=name if (ax is axes[0] and j == 0) else None)
    if picks:
        axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("time (s)" if sampling_rate else "sample")
    return _save(fig, path, dpi)


def plot_reconstruction(
    input,  # noqa: A002 - mirrors the model's vocabulary (input / masked / reconstruction)
    masked,
    recon,
    path,
    sampling_rate: float | None = None,
    channel_names: Sequence[str] = ("E", "N", "Z"),
    dpi: int = 100,
) -> Path:
    """Input, masked input and reconstruction of a waveform, one column each, one row per channel.

    Args:
        input: clean waveform (L, C).
        masked: the masked/corrupted waveform fed to the model (L, C).
        recon: the model's reconstruction (L, C).
        path: output PNG path.
        sampling_rate: if given, the x axis is in seconds, else in samples.
        channel_names: labels of the C channels.
        dpi: resolution of the PNG.

    Returns:
        ``Path`` of the written PNG.
    """
    arrays = {n: np.asarray(a, dtype=float) for n, a in (("input", input), ("masked", masked), ("recon", recon))}
    shapes = {n: a.shape for n, a in arrays.items()}
    if arrays["input"].ndim != 2 or len(set(shapes.values())) != 1:
        raise ValueError(f"`input`, `masked` and `recon` must share one (L, C) shape. Received: {shapes}")
    n_ch = arrays["input"].shape[1]
    names = list(channel_names) if len(channel_names) == n_ch else [f"ch{i}" for i in range(n_ch)]
    scale = 1.0 / sampling_rate if sampling_rate else 1.0
    t = np.arange(arrays["input"].shape[0]) * scale
    fig, axes = _new_figure(n_ch, 3, figsize=(12.0, 1.8 * n_ch + 0.8), sharex=True)
    titles = {"input": "input", "masked": "masked input", "recon": "reconstruction"}
    colors = {"input": "k", "masked": "tab:gray", "recon": "tab:blue"}
    for col, key in enumerate(("input", "masked", "recon")):
        for ch in range(n_ch):
            ax = axes[ch, col]
            ax.plot(t, arrays[key][:, ch], color=colors[key], lw=0.6)
            if col == 0:
                ax.set_ylabel(names[ch])
            if ch == 0:
                title = titles[key]
                if key == "recon":
                    mae = float(np.nanmean(np.abs(arrays["recon"] - arrays["input"])))
                    title += f" (MAE to input {mae:.3g})"
                ax.set_title(title, fontsize=10)
        axes[-1, col].set_xlabel("time (s)" if sampling_rate else "sample")
    return _save(fig, path, dpi)


def plot_comparison(table, path, title: str = "", dpi: int = 100) -> Path:
    """Models side by side: the metric with its 95% interval, the baseline, size and speed.

    Args:
        table: rows with ``model``, ``value``, ``ci_low``, ``ci_high``, ``baseline``,
            ``better`` and optionally ``parameters``, ``inference_traces_per_s``
            (the table of :func:`utrans.compare.compare`).
        path: output PNG.
        title: figure title (the quantity and metric).
        dpi: resolution.

    Returns:
        The path written.
    """
    rows = list(table.itertuples()) if hasattr(table, "itertuples") else list(table)
    fig, axes = _new_figure(1, 2, figsize=(10.0, 1.2 + 0.6 * max(len(rows), 1)),
                            width_ratios=(2, 1))
    ax, ax2 = axes[0]
    ypos = np.arange(len(rows))
    values = np.array([float(r.value) if r.value is not None else np.nan for r in rows])
    low = np.array([float(r.ci_low) for r in rows])
    high = np.array([float(r.ci_high) for r in rows])
    err = np.vstack([np.clip(values - low, 0, None), np.clip(high - values, 0, None)])
    ax.barh(ypos, values, xerr=np.nan_to_num(err), color="tab:blue", alpha=0.8,
            label="model (95% bootstrap interval)", capsize=4)
    base = np.array([float(r.baseline) if r.baseline is not None else np.nan for r in rows])
    ax.scatter(base, ypos, marker="|", s=400, color="tab:red", zorder=3,
               label="trivial baseline")
    ax.set_yticks(ypos, [r.model for r in rows])
    ax.invert_yaxis()
    better = getattr(rows[0], "better", "") if rows else ""
    ax.set_xlabel(f"{getattr(rows[0], 'metric', 'metric') if rows else 'metric'} "
                  f"({better} is better)")
    ax.legend(loc="best", fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    speed = np.array([float(getattr(r, "inference_traces_per_s", np.nan)) for r in rows])
    ax2.barh(ypos, speed, color="tab:gray")
    for y, r in zip(ypos, rows):
        params = getattr(r, "parameters", None)
        if params is not None and np.isfinite(float(params)):
            ax2.text(0, y, f" {int(params):,} params", va="center", fontsize="small")
    ax2.set_yticks(ypos, [""] * len(rows))
    ax2.invert_yaxis()
    ax2.set_xlabel("inference traces/s")
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi)
