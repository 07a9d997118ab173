"""One figure per instrument: waveforms, model probabilities and picks.

The figure is drawn on its own ``matplotlib.figure.Figure`` with an Agg
canvas chosen here, in the plotting entry point (no pyplot state, no global
backend switch, headless-safe). Long records are drawn as per-pixel min/max
envelopes, so a station-day plots in about a second.
"""

from __future__ import annotations

import logging
import pathlib

import numpy as np
import obspy
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["plot_station"]

logger = logging.getLogger(__name__)

_PHASE_COLORS = {"P": "tab:blue", "S": "tab:red"}
_LABEL_COLORS = {"P": "tab:blue", "S": "tab:red", "det": "tab:green", "N": "0.6"}


def _envelope(x0, dx, y, max_points=3000):
    """(x, y) to draw: the samples, or min/max pairs per bin for long series."""
    n = y.size
    if n <= 2 * max_points:
        return x0 + dx * np.arange(n), y
    per = int(np.ceil(n / max_points))
    m = n // per
    body = y[: m * per].reshape(m, per)
    lo, hi = body.min(axis=1), body.max(axis=1)
    xs = x0 + dx * per * np.arange(m)
    return np.repeat(xs, 2), np.column_stack([lo, hi]).ravel()


def plot_station(path, waveforms, probabilities, picks, detections=None, title="", dpi=110):
    """Save a PNG: the instrument's components, the model outputs and the picks.

    Args:
        path: PNG file to write (parent folders are created).
        waveforms: ``obspy.Stream`` of the instrument's input traces.
        probabilities: ``obspy.Stream`` of its probability traces (one per
            label and segment; channel ends with ``_<label>``).
        picks: DataFrame of its picks (``phase``, ``peak_time``, ``peak_value``).
        detections: DataFrame of its detections (``start_time``, ``end_time``) or None.
        title: figure title.
        dpi: resolution.

    Returns:
        The path written.
    """
    fig = Figure(figsize=(12, 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax_w, ax_p = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    everything = list(waveforms) + list(probabilities)
    origin = min(tr.stats.starttime for tr in everything)
    span = max(tr.stats.endtime for tr in everything) - origin
    unit, scale = ("hours", 3600.0) if span > 7200 else \
        (("minutes", 60.0) if span > 600 else ("seconds", 1.0))

    comps = sorted({tr.stats.channel for tr in waveforms},
                   key=lambda c: "ZNE123".find(c[-1]) if c[-1] in "ZNE123" else 9)
    for k, cha in enumerate(comps):
        traces = waveforms.select(channel=cha)
        # The envelope of the raw samples first (no full-length copy of a long record),
        # then demeaned and scaled.
        drawn = []
        for tr in traces:
            x, y = _envelope((tr.stats.starttime - origin) / scale, tr.stats.delta / scale,
                             tr.data)
            drawn.append((x, np.asarray(y, dtype=np.float64) - np.mean(tr.data, dtype=np.float64)))
        peak = max(float(np.abs(y).max()) for _, y in drawn) or 1.0
        for x, y in drawn:
            ax_w.plot(x, y / (2.2 * peak) - k, lw=0.5, color="k")
        ax_w.text(0.0, -k + 0.3, cha, transform=ax_w.get_yaxis_transform(), fontsize=9,
                  ha="left", va="center", color="0.3")
    ax_w.set_yticks([])
    ax_w.set_ylim(-len(comps) + 0.4, 0.6)

    seen = set()
    for tr in probabilities:
        label = tr.stats.channel.rsplit("_", 1)[-1]
        x, y = _envelope((tr.stats.starttime - origin) / scale, tr.stats.delta / scale, tr.data)
        ax_p.plot(x, y, lw=0.8, color=_LABEL_COLORS.get(label, None),
                  label=label if label not in seen else None)
        seen.add(label)
    ax_p.set_ylim(-0.02, 1.02)
    ax_p.set_ylabel("probability")
    if seen:
        ax_p.legend(loc="upper right", fontsize=8, ncols=len(seen))

    for row in picks.itertuples(index=False):
        t = (obspy.UTCDateTime(row.peak_time) - origin) / scale
        color = _PHASE_COLORS.get(row.phase, "tab:purple")
        for ax in (ax_w, ax_p):
            ax.axvline(t, color=color, lw=1.0, alpha=0.8)
        ax_w.text(t, 0.55 if row.phase != "S" else 0.4, f" {row.phase} {row.peak_value:.2f}",
                  color=color, fontsize=8, va="top")
    if detections is not None:
        for row in detections.itertuples(index=False):
            a = (obspy.UTCDateTime(row.start_time) - origin) / scale
            b = (obspy.UTCDateTime(row.end_time) - origin) / scale
            ax_p.axvspan(a, b, color="tab:green", alpha=0.12, lw=0)
    ax_p.set_xlabel(f"{unit} after {origin}")
    ax_p.set_xlim(0, span / scale)
    fig.suptitle(title or "annotate", fontsize=11)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    logger.info("Wrote figure %s", path)
    return path
