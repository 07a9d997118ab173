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
* with a streaming catalogue (:class:`utrans.stream.catalog.StreamCatalog`),
  :class:`EventWriter`: ``events.csv`` (the columns of ``utrans catalog``'s
  events table) and ``arrivals.csv`` appended atomically as events are
  confirmed, and ``quakeml/event_<event_id>.xml`` for each event (its
  origin, magnitude, arrivals and picks), through the package's one QuakeML
  writer :func:`utrans.quakeml.build_catalog`; the arrivals' ``pick_index``
  is the pick's row in ``picks.csv`` (from 0, header not counted);
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
from utrans.catalog.values import station_magnitudes
from utrans.core.errors import OutputPathError
from utrans.core.io import atomic_write, write_json
from utrans.quakeml import EVENT_COLUMNS, build_catalog

__all__ = ["EventWriter", "PickWriter", "append_csv", "load_state", "save_state",
           "write_quakeml"]

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
        _check_header(self.path, self.columns)

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
        append_csv(pd.DataFrame(rows, columns=self.columns), self.path)
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


def append_csv(frame, path):
    """Append rows to a CSV file atomically: the whole file is written anew and renamed.

    Args:
        frame: the rows (a DataFrame in the file's columns); the header is
            written when the file is new.
        path: the file.

    Returns:
        The path.
    """
    path = pathlib.Path(path)
    with atomic_write(path) as tmp:
        if path.exists():
            shutil.copyfile(path, tmp)
        with open(tmp, "a", encoding="utf-8", newline="") as handle:
            frame.to_csv(handle, header=not path.exists(), index=False)
    return path


def _check_header(path, columns):
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    if header != list(columns):
        raise OutputPathError(f"{path} holds other columns ({', '.join(header)}); this run "
                              f"writes {', '.join(columns)}. Give another --output folder.")


class EventWriter:
    """The events of a streaming catalogue, each written once, as it is confirmed (module doc).

    Args:
        folder: the output folder (created if missing).
        quakeml: write ``quakeml/event_<event_id>.xml`` for each event.

    Raises:
        OutputPathError: ``events.csv`` exists with other columns.
    """

    def __init__(self, folder, quakeml=True):
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.events_path = self.folder / "events.csv"
        self.arrivals_path = self.folder / "arrivals.csv"
        self.quakeml = bool(quakeml)
        self.written = 0
        _check_header(self.events_path, EVENT_COLUMNS)

    def write(self, events, arrivals, picks, magnitude_column=None):
        """Append confirmed events to ``events.csv`` and ``arrivals.csv``, and their QuakeML.

        Args:
            events: events table (:data:`utrans.quakeml.EVENT_COLUMNS`).
            arrivals: their arrivals (``pick_index``: the pick's row in ``picks.csv``).
            picks: the picks the arrivals name, indexed by ``pick_index``.
            magnitude_column: the pick column of the magnitudes (``None``: the
                first ``magnitude__`` column).

        Returns:
            The paths written.
        """
        if not len(events):
            return []
        written = [append_csv(events[EVENT_COLUMNS], self.events_path)]
        if len(arrivals):
            if self.arrivals_path.exists():
                _check_header(self.arrivals_path, list(arrivals.columns))
            written.append(append_csv(arrivals, self.arrivals_path))
        if self.quakeml:
            magnitudes = station_magnitudes(arrivals, magnitude_column)
            for event in events.itertuples():
                mine = arrivals[arrivals["event_id"] == event.event_id]
                used = picks.loc[sorted(set(mine["pick_index"].astype(int)))]
                catalog = build_catalog(used, events[events["event_id"] == event.event_id],
                                        mine, magnitudes[magnitudes["event_id"] == event.event_id],
                                        magnitude_column)
                path = self.folder / "quakeml" / f"event_{event.event_id}.xml"
                with atomic_write(path) as tmp:
                    catalog.write(str(tmp), format="QUAKEML")
                written.append(path)
        self.written += len(events)
        return written


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
