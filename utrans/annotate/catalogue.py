"""The merged pick catalogue of a network run: one table, QuakeML, an overview figure.

* ``picks.csv``: every station-day's picks (:mod:`utrans.annotate.archive`)
  in one table, sorted by peak time, station and phase, with the
  characterisation columns (:mod:`utrans.annotate.characterization`).
* ``picks.xml`` (optional): QuakeML as :func:`utrans.annotate.output.write_quakeml`
  writes it for files too, the characterisation with each pick. The picks
  are not associated into events.
* ``catalogue.png`` (optional): the picks of every station in time (P and S)
  and, when a magnitude column is present, the magnitudes in time.
"""

from __future__ import annotations

import logging
import pathlib

import obspy
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from utrans.annotate.output import estimate_columns, write_csv, write_quakeml

__all__ = ["merge_units", "plot_catalogue", "write_catalogue"]

logger = logging.getLogger(__name__)

_SORT = ["peak_time", "trace_id", "phase"]


def merge_units(store, units):
    """The picks of every unit in one table.

    Args:
        store: the run's :class:`~utrans.annotate.archive.UnitStore`.
        units: the units to merge (all done).

    Returns:
        A DataFrame sorted by peak time, station and phase.
    """
    frames = [store.read(u) for u in units]
    frames = [f for f in frames if len(f)] or frames[:1]
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    if len(frame):
        frame = frame.sort_values(_SORT, kind="stable").reset_index(drop=True)
    return frame


def plot_catalogue(frame, path, title="", dpi=110):
    """Save a PNG overview of the catalogue (module doc).

    Args:
        frame: the merged picks.
        path: PNG file.
        title: figure title.
        dpi: resolution.

    Returns:
        The path.
    """
    magnitude = next((c for c in estimate_columns(frame) if c.startswith("magnitude__")), None)
    fig = Figure(figsize=(12, 6.5 if magnitude else 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2 if magnitude else 1, 1, sharex=True, squeeze=False)[:, 0]
    stations = sorted(set(frame["trace_id"])) if len(frame) else []
    times = [obspy.UTCDateTime(t).matplotlib_date for t in frame.get("peak_time", [])]
    frame = frame.assign(_t=times)
    ax = axes[0]
    # P above and S below each station's line: a P and its S seconds later stay apart
    for phase, color, shift in (("P", "tab:blue", 0.18), ("S", "tab:red", -0.18)):
        rows = frame[frame.phase == phase] if len(frame) else frame
        ax.scatter(rows["_t"], [stations.index(s) + shift for s in rows.get("trace_id", [])],
                   marker="|", s=120, linewidths=1.5, color=color, label=f"{phase} ({len(rows)})")
    ax.set_yticks(range(len(stations)), stations)
    ax.set_ylim(-0.7, max(len(stations), 1) - 0.3)
    ax.legend(loc="upper right")
    ax.set_title(title or f"{len(frame)} picks on {len(stations)} station(s)")
    if magnitude:
        ax = axes[1]
        rows = frame[frame[magnitude].notna()]
        for station, group in rows.groupby("trace_id"):
            ax.scatter(group["_t"], group[magnitude], s=18, label=station)
        if 0 < rows.trace_id.nunique() <= 12:
            ax.legend(loc="upper right", fontsize="small")
        ax.set_ylabel(magnitude.replace("__", "\n"))
        ax.grid(alpha=0.3)
    axes[-1].xaxis_date()
    axes[-1].set_xlabel("time (UTC)")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def write_catalogue(frame, folder, quakeml=False, plot=False):
    """Write ``picks.csv`` and optionally ``picks.xml`` and ``catalogue.png`` in ``folder``.

    Args:
        frame: the merged picks.
        folder: output folder.
        quakeml: also write QuakeML.
        plot: also write the overview figure.

    Returns:
        The list of paths written.
    """
    folder = pathlib.Path(folder)
    files = [write_csv(frame, folder / "picks.csv")]
    if quakeml:
        files.append(write_quakeml(frame, folder / "picks.xml"))
    if plot:
        files.append(plot_catalogue(frame, folder / "catalogue.png"))
    for path in files:
        logger.info("Wrote %s", path)
    return files
