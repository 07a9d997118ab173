"""Files of a streaming run: ``picks.csv`` appended atomically, hourly QuakeML, the run state.

* ``picks.csv``: annotate's pick columns (:data:`utrans.annotate.picks.PICK_COLUMNS`),
  the characterisation columns when there are any, and ``latency_s``. Rows
  are appended in batches; each append writes the whole file anew under a
  temporary name and renames it (:func:`utrans.core.io.atomic_write`), so the
  file is never seen half-written, whatever happens to the process.
* ``quakeml/picks_<YYYY-MM-DDTHH>.xml``: the picks of each hour (by pick
  time) as QuakeML, through the package's one QuakeML writer of picks
  (:func:`write_quakeml`); an hour's file is rewritten when it gets new picks,
  at most every ``quakeml_every_s`` seconds, and when the run ends.
* ``state.json`` in the state folder: the picker's state and where each
  channel resumes (:func:`save_state`, :func:`load_state`).
"""

from __future__ import annotations

import json
import logging
import pathlib
import shutil
import time

import obspy
import pandas as pd

from utrans.annotate.output import write_quakeml as _annotate_write_quakeml
from utrans.core.errors import OutputPathError
from utrans.core.io import atomic_write, write_json

__all__ = ["PickWriter", "load_state", "save_state", "write_quakeml"]

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"


def write_quakeml(picks, path, model):
    """Write picks as QuakeML: the package's one writer (one place to change if it moves)."""
    return _annotate_write_quakeml(picks, path, model)


def _hour(peak_time):
    return str(obspy.UTCDateTime(peak_time))[:13]


class PickWriter:
    """``picks.csv`` and the hourly QuakeML files of one output folder (module doc).

    Args:
        folder: the output folder (created if missing).
        columns: the columns of a pick row, in order.
        model: the model's name (QuakeML ``method_id``).
        quakeml: write the hourly QuakeML files.
        quakeml_every_s: least time between two rewrites of an hour's file.
        clock: wall-clock function.

    Raises:
        OutputPathError: ``picks.csv`` exists with other columns (another
            model or options): give another folder.
    """

    def __init__(self, folder, columns, model, quakeml=True, quakeml_every_s=10.0,
                 clock=time.time):
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "picks.csv"
        self.columns = list(columns)
        self.model = model
        self.quakeml = bool(quakeml)
        self.quakeml_every_s = float(quakeml_every_s)
        self.clock = clock
        self.written = 0
        self._hours = {}      # hour -> rows, for the last few hours written
        self._dirty = set()
        self._flushed = 0.0
        if self.path.exists():
            with open(self.path, encoding="utf-8") as handle:
                header = handle.readline().strip().split(",")
            if header != self.columns:
                raise OutputPathError(
                    f"{self.path} holds other columns ({', '.join(header)}); this run writes "
                    f"{', '.join(self.columns)}. Give another --output folder.")

    def existing(self, since=None):
        """Rows already in ``picks.csv`` (with pick times from ``since`` on), as dicts."""
        if not self.path.exists():
            return []
        frame = pd.read_csv(self.path, dtype={"trace_id": str, "instrument": str})
        if since is not None and len(frame):
            times = frame.peak_time.map(lambda t: obspy.UTCDateTime(t) >= since)
            frame = frame[times]
        return frame.to_dict("records")

    def write(self, rows):
        """Append rows to ``picks.csv`` (atomically) and mark their hours for QuakeML."""
        if not rows:
            return
        hours = [_hour(row["peak_time"]) for row in rows]
        if self.quakeml:
            for hour in hours:
                self._rows(hour)  # an hour not in memory is read before the rows join the file
        frame = pd.DataFrame(rows, columns=self.columns)
        with atomic_write(self.path) as tmp:
            if self.path.exists():
                shutil.copyfile(self.path, tmp)
            with open(tmp, "a", encoding="utf-8", newline="") as handle:
                frame.to_csv(handle, header=not self.path.exists(), index=False)
        self.written += len(rows)
        if self.quakeml:
            for hour, row in zip(hours, rows):
                self._hours[hour].append(row)
                self._dirty.add(hour)
            if self.clock() - self._flushed >= self.quakeml_every_s:
                self.flush()

    def flush(self):
        """Rewrite the QuakeML files of the hours with new picks."""
        for hour in sorted(self._dirty):
            frame = pd.DataFrame(self._hours[hour], columns=self.columns)
            write_quakeml(frame, self.folder / "quakeml" / f"picks_{hour}.xml", self.model)
        self._dirty.clear()
        self._flushed = self.clock()
        for hour in sorted(self._hours)[:-3]:  # keep the last three hours in memory
            if hour not in self._dirty:
                del self._hours[hour]

    def _rows(self, hour):
        if hour not in self._hours:  # an hour not in memory: its rows written before
            self._hours[hour] = [row for row in self.existing()
                                 if _hour(row["peak_time"]) == hour]
        return self._hours[hour]


def save_state(folder, state):
    """Write ``state.json`` into ``folder`` atomically; returns its path."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return write_json(state, folder / STATE_FILE)


def load_state(folder):
    """The state saved in ``folder`` (``None`` when there is none)."""
    path = pathlib.Path(folder) / STATE_FILE
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
