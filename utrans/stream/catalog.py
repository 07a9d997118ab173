"""Events from a live stream: ``utrans catalog``'s association on a sliding window of final picks.

::

    from utrans.stream import StreamCatalog, StreamPicker

    catalog = StreamCatalog("stations.xml", "vp=6.0,vs=3.5", on_event=print)
    picker = StreamPicker("seist_m_dpk_diting")
    for packet in source.packets():
        picker.feed(packet.trace)
        catalog.add(picker.process())            # the final picks, in the order given
        catalog.advance(picker.settled_time())   # the events now confirmed
    catalog.add(picker.close())
    catalog.close()                              # the end of the stream: the last events

The association is :func:`utrans.catalog.associate.associate_picks` itself
(PyOcto, with :class:`~utrans.catalog.settings.AssociationSettings`), run
again on the picks of a window that slides with the stream; nothing of it is
rewritten here.

**When an event is confirmed.** The picker's :meth:`settled time
<utrans.stream.picker.StreamPicker.settled_time>` ``T`` is the trailing
edge of the final picks: no pick earlier than ``T`` can still come. An
event's picks all lie within ``wait_s`` of its origin, where ``wait_s`` is
the longest S travel time from the search zone to the picked stations
(:func:`utrans.catalog.associate.longest_s_travel_s`, recomputed when a
station gives its first pick) plus the larger of the association tolerance
``tolerance_s`` and the residual a pick may keep, ``pick_match_tolerance_s``.
So an event whose origin time is earlier than ``T - wait_s`` has all its
picks in hand, and no later pick can change it: it is confirmed, written
and given to ``on_event``. A pass runs when ``T`` has moved ``every_s``
seconds since the last one (and at :meth:`StreamCatalog.close`); it
confirms the events with origins in ``[C - g, T - wait_s)``, ``C`` being
where the previous pass stopped and ``g`` the ``min_interevent_time_s``
(an event placed just after ``C`` by one pass and just before it by the
next is not lost).

**Never twice.** The picks of a confirmed event leave the window, so no
later pass can rebuild it, and an event whose origin lies within
``min_interevent_time_s`` of a confirmed one is left out. The window keeps
the picks from ``C - g - wait_s`` on, the overlap ``utrans catalog`` gives
its chunks, so an event near the window's start is associated from the
picks ``utrans catalog`` would give it.

The events are therefore those of ``utrans catalog`` on the same picks,
except where a station's picks come later than the others' by more than
``wait_s`` (a station silent for a while that sends its old data, or joins
late): the events confirmed meanwhile are not revised.
"""

from __future__ import annotations

import logging
import math
import pathlib

import numpy as np
import obspy
import pandas as pd

from utrans.catalog.settings import AssociationSettings
from utrans.catalog.stations import read_stations, station_key
from utrans.catalog.values import event_id_of
from utrans.catalog.velocity import parse_velocity
from utrans.core.errors import CatalogError

__all__ = ["StreamCatalog"]

logger = logging.getLogger(__name__)

_TIME = "_time"


class StreamCatalog:
    """Events confirmed from a stream of final picks (module doc).

    Args:
        stations: station coordinates: a StationXML or CSV path, an
            ``obspy.Inventory`` or a station table (as ``utrans catalog``:
            :func:`utrans.catalog.stations.read_stations`).
        velocity: ``"vp=6.0,vs=3.5"``, a CSV of layers or a
            :class:`~utrans.catalog.velocity.VelocityModel`.
        settings: :class:`~utrans.catalog.settings.AssociationSettings` (or
            its dict; ``None``: defaults).
        writer: an optional :class:`~utrans.stream.output.EventWriter`.
        on_event: called with each confirmed event (a dict of the events
            table's columns).
        every_s: seconds the settled time must move between two passes.
        first_index: number of the first pick added (its row in ``picks.csv``).

    Raises:
        CatalogError, FileNotFoundError: bad stations, velocity or settings.
        ImportError: PyOcto is not installed (the ``catalog`` extra).
    """

    def __init__(self, stations, velocity="vp=6.0,vs=3.5", settings=None, *, writer=None,
                 on_event=None, every_s=10.0, first_index=0):
        # Imported here: PyOcto is an optional dependency (the catalog extra).
        from utrans.catalog import associate  # noqa: PLC0415

        self._associate = associate
        self.stations = read_stations(stations)
        self.velocity = parse_velocity(velocity)
        if settings is None:
            settings = AssociationSettings()
        elif not isinstance(settings, AssociationSettings):
            settings = AssociationSettings.from_dict(dict(settings))
        self.settings = settings
        if not every_s > 0:
            raise CatalogError(f"every_s must be > 0 seconds. Received: every_s={every_s}")
        self.writer = writer
        self.on_event = on_event
        self.every_s = float(every_s)
        self.next_index = int(first_index)
        self._keys = set(self.stations["network"] + "." + self.stations["station"])
        self._unknown = set()
        self._picked = set()
        self._picks = []            # pick rows in the window, with "pick_index" and _TIME
        self.wait_s = None          # None until a station with coordinates gives a pick
        self.settled = -math.inf
        self.confirmed_until = -math.inf
        self._passed = -math.inf
        self._origins = []          # origin times of the events confirmed lately
        self.events = []            # the confirmed events, in order
        self.passes = 0

    # ------------------------------------------------------------------ input
    def add(self, rows):
        """Take final picks, in the order the picker gives them.

        Args:
            rows: pick dicts (``trace_id``, ``phase``, ``peak_time``, ... as
                :class:`~utrans.stream.picker.StreamPicker` gives them). Each
                is numbered in turn (``pick_index``, from ``first_index``).
        """
        for row in rows:
            index = self.next_index
            self.next_index += 1
            if row.get("phase") not in ("P", "S"):
                continue
            key = station_key(row["trace_id"])
            if key not in self._keys:
                if key not in self._unknown:
                    self._unknown.add(key)
                    logger.warning("%s has no coordinates in the station table; its picks are "
                                   "not associated", key)
                continue
            if key not in self._picked:
                self._picked.add(key)
                self._update_wait()
            self._picks.append({**row, "pick_index": index,
                                _TIME: obspy.UTCDateTime(row["peak_time"]).timestamp})

    def _update_wait(self):
        keys = self.stations["network"] + "." + self.stations["station"]
        longest = self._associate.longest_s_travel_s(self.stations[keys.isin(self._picked)],
                                                     self.velocity, self.settings)
        self.wait_s = longest + max(self.settings.tolerance_s,
                                    self.settings.pick_match_tolerance_s)

    def advance(self, settled):
        """The picker's settled time moved: confirm the events that no later pick can change.

        Args:
            settled: POSIX seconds (or ``obspy.UTCDateTime``):
                :meth:`~utrans.stream.picker.StreamPicker.settled_time`.

        Returns:
            The events confirmed (list of dicts), also written and given to ``on_event``.
        """
        settled = float(settled.timestamp if isinstance(settled, obspy.UTCDateTime) else settled)
        if settled == -math.inf:
            return []
        self.settled = max(self.settled, settled)
        if self.settled - self._passed < self.every_s:
            return []
        return self._pass(self.settled)

    def close(self):
        """The end of the stream: every pick is in; confirm the events left.

        Returns:
            The events confirmed.
        """
        self.settled = math.inf
        return self._pass(math.inf)

    # ------------------------------------------------------------------ a pass
    def _pass(self, settled):
        self._passed = settled
        if self.wait_s is None or not self._picks:
            return []
        until = settled - self.wait_s
        if until <= self.confirmed_until:
            return []
        grace = self.settings.min_interevent_time_s
        frame = pd.DataFrame(self._picks)
        result = self._associate.associate_picks(frame.drop(columns=[_TIME]), self.stations,
                                                 self.velocity, self.settings)
        self.passes += 1
        events = result.events
        times = np.array([obspy.UTCDateTime(t).timestamp for t in events["time"]], dtype=float)
        recent = np.array(self._origins, dtype=float)
        take = (times < until) & (times >= self.confirmed_until - grace)
        if len(recent):
            take &= np.array([np.abs(recent - t).min() >= grace for t in times], dtype=bool)
        confirmed = events[take].reset_index(drop=True)
        out = []
        if len(confirmed):
            out = self._emit(confirmed, times[take], result.arrivals, frame)
        self.confirmed_until = until
        keep_from = until - grace - self.wait_s
        self._picks = [p for p in self._picks if p[_TIME] >= keep_from]
        self._origins = [t for t in self._origins if t >= until - 2 * grace]
        return out

    def _emit(self, events, times, arrivals, frame):
        # event ids unique over the run: a letter suffix as event_id_of gives within one table
        ids = event_id_of(times)
        for k, event_id in enumerate(ids):
            suffix = 0
            while any(e["event_id"] == ids[k] for e in self.events[-50:]):
                suffix += 1
                ids[k] = f"{event_id}{chr(ord('a') + suffix - 1)}"
        renamed = dict(zip(events["event_id"], ids))
        events = events.assign(event_id=ids)
        arrivals = arrivals[arrivals["event_id"].isin(renamed)].copy()
        arrivals["event_id"] = arrivals["event_id"].map(renamed)
        # the arrivals name the picks by their number in the stream (picks.csv's row)
        numbers = frame["pick_index"].to_numpy()
        used = arrivals["pick_index"].astype(int).to_numpy()
        arrivals["pick_index"] = numbers[used]
        picks = frame.drop(columns=[_TIME]).iloc[used].assign(
            event_id=arrivals["event_id"].to_numpy()).set_index("pick_index")
        picks.index.name = None
        if self.writer is not None:
            self.writer.write(events, arrivals, picks, self.settings.magnitude_column)
        assigned = set(arrivals["pick_index"])
        self._picks = [p for p in self._picks if p["pick_index"] not in assigned]
        self._origins += [float(t) for t in times]
        out = events.to_dict("records")
        for event in out:
            self.events.append(event)
            logger.info("Event %s at %s, %.3f %.3f, %.1f km deep, %d picks", event["event_id"],
                        event["time"], event["latitude"], event["longitude"],
                        event["depth_km"], event["n_picks"])
            if self.on_event is not None:
                self.on_event(event)
        return out

    # ------------------------------------------------------------------ state
    def state(self):
        """What a restart needs (JSON-serialisable).

        Returns:
            ``{"confirmed_until": POSIX s or None, "next_index": the next
            pick's number, "origins": origin times of the events confirmed lately}``.
        """
        return {"confirmed_until": None if math.isinf(self.confirmed_until)
                else self.confirmed_until, "next_index": self.next_index,
                "origins": list(self._origins)}

    def restore(self, state, folder):
        """Carry on after a restart: the window's picks are read back from the output folder.

        Args:
            state: a :meth:`state` dict (``None``: nothing to restore).
            folder: the run's output folder: its ``picks.csv`` (rows numbered
                from 0, as :meth:`add` numbered them) and ``arrivals.csv``
                (the picks of confirmed events stay out of the window).
        """
        if not state:
            return
        folder = pathlib.Path(folder)
        confirmed = state.get("confirmed_until")
        self.confirmed_until = -math.inf if confirmed is None else float(confirmed)
        self._passed = self.confirmed_until
        self._origins = [float(t) for t in state.get("origins", [])]
        picks = folder / "picks.csv"
        rows = pd.read_csv(picks, dtype={"trace_id": str, "instrument": str}).to_dict("records") \
            if picks.exists() else []
        arrivals = folder / "arrivals.csv"
        assigned = set(pd.read_csv(arrivals, usecols=["pick_index"])["pick_index"].astype(int)) \
            if arrivals.exists() else set()
        self.next_index = 0
        self.add([{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
                  for r in rows])
        self._picks = [p for p in self._picks if p["pick_index"] not in assigned]
        if self.wait_s is not None:
            keep_from = self.confirmed_until - self.settings.min_interevent_time_s - self.wait_s
            self._picks = [p for p in self._picks if p[_TIME] >= keep_from]
        self.next_index = max(self.next_index, int(state.get("next_index", 0)))
