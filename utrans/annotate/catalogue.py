"""The merged pick catalogue of a network run: one table, QuakeML, an overview figure.

* ``picks.csv``: every station-day's picks (:mod:`utrans.annotate.archive`)
  in one table, sorted by peak time, station and phase, with the
  characterisation columns (:mod:`utrans.annotate.characterization`).
* ``picks.xml`` (optional): QuakeML from the package's one writer,
  :func:`utrans.catalog.quakeml.build_catalog`: each pick with its
  ``polarity`` from the first polarity column (``U`` -> ``positive``, ``D``
  -> ``negative``), ``backazimuth`` from the first back-azimuth column, and
  one comment per filled estimate (``magnitude__seist_m_emg_diting=2.134``).
  The picks are not associated into events (``utrans.catalog`` does that).
* ``catalogue.png`` (optional): the picks of every station in time (P and S)
  and, when a magnitude column is present, the magnitudes in time.
"""

from __future__ import annotations

import logging
import pathlib

import pandas as pd

from utrans.annotate.archive import atomic_write
from utrans.catalog.quakeml import build_catalog

__all__ = ["merge_units", "plot_catalogue", "write_catalogue", "write_quakeml"]

logger = logging.getLogger(__name__)

_SORT = ["peak_time", "trace_id", "phase"]
_POLARITY = {"U": "positive", "D": "negative"}


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


def _estimate_columns(frame):
    return [c for c in frame.columns if "__" in c]


def write_quakeml(frame, path):
    """Write the catalogue as QuakeML with the characterisation (module doc).

    Args:
        frame: the merged picks.
        path: output file.

    Returns:
        The path.
    """
    catalog = build_catalog(frame.reset_index(drop=True), author="utrans.annotate")
    return atomic_write(path, lambda tmp: catalog.write(tmp, format="QUAKEML"))


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
    import obspy
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    magnitude = next((c for c in _estimate_columns(frame) if c.startswith("magnitude__")), None)
    fig = Figure(figsize=(12, 6.5 if magnitude else 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2 if magnitude else 1, 1, sharex=True, squeeze=False)[:, 0]
    stations = sorted(set(frame["trace_id"])) if len(frame) else []
    times = [obspy.UTCDateTime(t).matplotlib_date for t in frame.get("peak_time", [])]
    frame = frame.assign(_t=times)
    ax = axes[0]
    for phase, color in (("P", "tab:blue"), ("S", "tab:red")):
        rows = frame[frame.phase == phase] if len(frame) else frame
        ax.scatter(rows["_t"], [stations.index(s) for s in rows.get("trace_id", [])],
                   marker="|", s=200, color=color, label=f"{phase} ({len(rows)})")
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
    files = [atomic_write(folder / "picks.csv", lambda tmp: frame.to_csv(tmp, index=False))]
    if quakeml:
        files.append(write_quakeml(frame, folder / "picks.xml"))
    if plot:
        files.append(plot_catalogue(frame, folder / "catalogue.png"))
    for path in files:
        logger.info("Wrote %s", path)
    return files
