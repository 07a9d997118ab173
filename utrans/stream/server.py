"""A small SeedLink v3 server that replays miniSEED records, for tests and demos.

It speaks the part of SeedLink v3 that ObsPy's clients
(:mod:`obspy.clients.seedlink`: ``EasySeedLinkClient``, ``create_client``,
``SLClient``, the request ``Client``) and :class:`utrans.stream.sources.SeedLinkSource`
use: ``HELLO``, ``CAT``, ``INFO`` (ID, CAPABILITIES, STATIONS, STREAMS),
``STATION``, ``SELECT``, ``DATA``/``FETCH`` (resume from a sequence number,
optionally with a time), ``TIME`` (a window), ``END`` and ``BYE``, in
multi-station and uni-station mode. Data go out as SeedLink packets:
``SL`` + six hex digits of a per-station sequence number + one 512-byte
miniSEED record. ``INFO`` answers are XML in ASCII miniSEED records behind
``SLINFO *`` (more follow) / ``SLINFO  `` (last) headers.

It replays a :class:`StreamSource` (an ObsPy Stream cut into records) or an
:class:`SDSSource` (an SDS archive, records read in file order), the
channels interleaved in time order, either in real time times ``speed`` or,
with ``speed=None``, as fast as the connected clients read (the replay then
pauses while no client is streaming, so that nothing is lost from the
bounded buffer). Each station keeps the last ``ring_size`` records, so that
a client can resume from a sequence number or a time after a disconnect.

Faults can be injected per station (:class:`Faults`): drop the connection
after a number of records, add latency, swap neighbouring records (out of
order), publish records twice.

::

    from utrans.stream.server import Faults, ReplayServer, StreamSource

    with ReplayServer(StreamSource(stream), speed=None,
                      faults={"XX.S1": Faults(drop_after=100, max_drops=2)}) as server:
        print(server.address)          # "127.0.0.1:40123"
        ...

    python -m utrans.stream.server --sds /data/sds --select "XX.*.*.HH?" --speed 10
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import glob
import heapq
import io
import logging
import os
import re
import select
import socket
import struct
import sys
import threading
import time

import numpy as np
import obspy

from utrans.stream.mseed import complete_records, decode, trace_records
from utrans.stream.selection import matches, parse_sds_name, parse_select

__all__ = ["Faults", "ReplayServer", "SDSSource", "StreamSource", "main"]

logger = logging.getLogger(__name__)

SEQ_MASK = 0xFFFFFF
SL_RECLEN = 512
_HELLO = "SeedLink v3.1 (utrans replay) :: SLPROTO:3.1"
_CAPABILITIES = ("dialup", "multistation", "window-extraction", "info:id", "info:capabilities",
                 "info:stations", "info:streams")
_UNI_START_DELAY = 0.1  # uni-station mode: pause between "OK" and the first packet


# --------------------------------------------------------------------------- sources


class StreamSource:
    """Records of an ObsPy Stream: each trace cut into 512-byte miniSEED records.

    Args:
        stream: ``obspy.Stream`` (integer samples are written with Steim-2,
            floating point ones as FLOAT32/FLOAT64).
    """

    def __init__(self, stream):
        if not isinstance(stream, obspy.Stream):
            raise TypeError(f"StreamSource needs an obspy.Stream. Received: {type(stream)!r}")
        if len(stream) == 0:
            raise ValueError("StreamSource needs a non-empty obspy.Stream. Received: 0 traces")
        self.stream = stream

    @property
    def channels(self):
        """Sorted channel ids ``NET.STA.LOC.CHA``."""
        return sorted({tr.id for tr in self.stream})

    def channel_records(self):
        """``{channel id: iterator of (RecordHeader, bytes)}``, each in time order."""
        by_id = {}
        for trace in sorted(self.stream, key=lambda tr: (tr.id, tr.stats.starttime)):
            by_id.setdefault(trace.id, []).append(trace)
        return {cid: self._records(traces) for cid, traces in by_id.items()}

    def _records(self, traces):
        for trace in traces:
            blob = b"".join(trace_records(trace, reclen=SL_RECLEN))
            records, _ = complete_records(blob)
            yield from records


class SDSSource:
    """Records of an SDS archive (``ROOT/YEAR/NET/STA/CHA.TYPE/NET.STA.LOC.CHA.TYPE.YEAR.DOY``).

    Files are read record by record (never whole), day after day per channel;
    records of another length than SeedLink's 512 bytes are decoded and cut
    again into 512-byte records.

    Args:
        root: SDS root folder.
        select: comma-separated ``NET.STA.LOC.CHA`` ``fnmatch`` patterns.
        start: optional start of the time range (records ending before it
            are skipped).
        end: optional end of the time range (records starting at or after it
            are skipped).
        sds_type: the SDS data type letter.
    """

    def __init__(self, root, select="*.*.*.*", start=None, end=None, sds_type="D"):
        if not os.path.isdir(root):
            raise FileNotFoundError(f"SDS archive folder not found: {root}")
        self.root = str(root)
        self.patterns = parse_select(select)
        self.start = None if start is None else obspy.UTCDateTime(start)
        self.end = None if end is None else obspy.UTCDateTime(end)
        self.sds_type = sds_type
        self._files = self._find_files()
        if not self._files:
            raise ValueError(f"no SDS file under {self.root} matches select={select!r}")

    def _find_files(self):
        files = {}
        for net, sta, loc, cha in self.patterns:
            pattern = os.path.join(self.root, "*", net, sta, f"{cha}.{self.sds_type}",
                                   f"{net}.{sta}.{loc}.{cha}.{self.sds_type}.*.*")
            for path in glob.glob(pattern):
                parsed = parse_sds_name(path)
                if parsed is None:
                    continue
                cid, day = parsed
                if self.start is not None and day + 2 * 86400 <= self.start:
                    continue  # one day of slack: a day file may hold a little of the next
                if self.end is not None and day > self.end:
                    continue
                files.setdefault(cid, {})[path] = day
        return {cid: sorted(((day, path) for path, day in paths.items()), key=lambda dp: dp[0])
                for cid, paths in files.items()}

    @property
    def channels(self):
        """Sorted channel ids ``NET.STA.LOC.CHA``."""
        return sorted(self._files)

    def channel_records(self):
        """``{channel id: iterator of (RecordHeader, bytes)}``, each in file order."""
        return {cid: self._records(paths) for cid, paths in self._files.items()}

    def _records(self, paths):
        for _, path in paths:
            with open(path, "rb") as handle:
                buffer = b""
                while True:
                    chunk = handle.read(1 << 16)
                    if not chunk:
                        break
                    buffer += chunk
                    try:
                        records, used = complete_records(buffer)
                    except ValueError as err:
                        raise ValueError(f"{path}: {err}") from err
                    buffer = buffer[used:]
                    for header, data in records:
                        if self.start is not None and header.end_of_data <= self.start:
                            continue
                        if self.end is not None and header.starttime >= self.end:
                            continue
                        if header.record_length == SL_RECLEN:
                            yield header, data
                        else:
                            yield from _recut(data)
                if buffer:
                    logger.warning("%s ends with %d bytes of an incomplete record; skipped",
                                   path, len(buffer))


def _recut(data):
    """A record of another length as 512-byte records."""
    for trace in decode(data):
        blob = b"".join(trace_records(trace, reclen=SL_RECLEN))
        yield from complete_records(blob)[0]


# --------------------------------------------------------------------------- faults


@dataclasses.dataclass(frozen=True)
class Faults:
    """Faults injected for one station's records.

    Args:
        drop_after: close each connection (abruptly, with a TCP reset) after
            it has sent this many records of the station; None: never.
        max_drops: at most this many such drops over the server's life
            (None: every connection that reaches ``drop_after``).
        delay: extra latency in seconds (wall time) for the station's records.
        reorder_every: every k-th record of each channel is published after
            the record that follows it (0: never).
        duplicate_every: every k-th record of each channel is published twice,
            under two sequence numbers (0: never).
    """

    drop_after: int | None = None
    max_drops: int | None = None
    delay: float = 0.0
    reorder_every: int = 0
    duplicate_every: int = 0

    def __post_init__(self):
        if self.drop_after is not None and self.drop_after < 1:
            raise ValueError(f"drop_after must be >= 1 or None. Received: {self.drop_after}")
        if self.max_drops is not None and self.max_drops < 0:
            raise ValueError(f"max_drops must be >= 0 or None. Received: {self.max_drops}")
        if not np.isfinite(self.delay) or self.delay < 0:
            raise ValueError(f"delay must be a finite number >= 0. Received: {self.delay}")
        if self.reorder_every < 0 or self.reorder_every == 1:
            raise ValueError("reorder_every must be 0 (off) or >= 2. "
                             f"Received: {self.reorder_every}")
        if self.duplicate_every < 0:
            raise ValueError("duplicate_every must be 0 (off) or >= 1. "
                             f"Received: {self.duplicate_every}")

    @classmethod
    def parse(cls, text):
        """``"XX.S1:drop_after=100,max_drops=2"`` -> ``("XX.S1", Faults(...))``.

        Args:
            text: ``NET.STA`` pattern, a colon, then ``name=value`` pairs.

        Returns:
            ``(pattern, Faults)``.
        """
        pattern, _, spec = text.partition(":")
        if not pattern or not spec:
            raise ValueError("a fault is NET.STA:name=value[,name=value], e.g. "
                             f"'XX.S1:drop_after=100'. Received: {text!r}")
        kwargs = {}
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        for pair in spec.split(","):
            name, _, value = pair.partition("=")
            name = name.strip()
            if name not in fields:
                raise ValueError(f"unknown fault {name!r} (one of {', '.join(fields)}). "
                                 f"Received: {text!r}")
            try:
                kwargs[name] = float(value) if name == "delay" else int(value)
            except ValueError as err:
                raise ValueError(f"fault {name} needs a number. Received: {text!r}") from err
        return pattern, cls(**kwargs)


# --------------------------------------------------------------------------- ring buffer


@dataclasses.dataclass(frozen=True)
class _Entry:
    gidx: int            # global publication index (interleaves the stations)
    seq: int             # per-station sequence number (monotonic; sent modulo 2**24)
    header: object       # RecordHeader
    data: bytes


class _Ring:
    """The last ``capacity`` records of one station, addressed by sequence number."""

    def __init__(self, capacity):
        self.capacity = capacity
        self._buf = [None] * capacity
        self.first = 0
        self.next = 0

    def __len__(self):
        return self.next - self.first

    def append(self, gidx, header, data):
        entry = _Entry(gidx, self.next, header, data)
        self._buf[self.next % self.capacity] = entry
        self.next += 1
        if self.next - self.first > self.capacity:
            self.first = self.next - self.capacity
        return entry

    def get(self, seq):
        if self.first <= seq < self.next:
            return self._buf[seq % self.capacity]
        return None

    def resolve(self, seq24):
        """The internal sequence number that a 24-bit one names (None if not held)."""
        candidate = self.next - ((self.next - seq24) & SEQ_MASK)
        if candidate == self.next or self.first <= candidate < self.next:
            return candidate
        return None


class _Station:
    def __init__(self, station_id, capacity, faults):
        self.id = station_id
        self.network, self.station = station_id.split(".")
        self.ring = _Ring(capacity)
        self.faults = faults
        self.drops = 0
        self.extent = {}    # channel id -> [first start, last end]


# --------------------------------------------------------------------------- server


class ReplayServer:
    """A SeedLink v3 server on ``host`` replaying a record source.

    Args:
        source: a :class:`StreamSource` or :class:`SDSSource` (anything with
            ``channels`` and ``channel_records()``).
        speed: replay speed as a multiple of real time (1.0: real time), or
            None: as fast as the connected clients read, paused while no
            client is streaming.
        host: address to listen on (loopback by default).
        port: port; 0 lets the OS choose (read it back from :attr:`port`).
        ring_size: records kept per station for resuming clients.
        faults: ``{NET.STA pattern: Faults}``; the first matching pattern applies.
        backlog: what ``DATA`` without a sequence number sends first:
            ``"ring"`` every record still held, ``"next"`` only records
            published from then on.
        hangup_at_end: once the source is exhausted and a client has
            everything, send it ``END`` (ObsPy's clients then stop).
        min_readers: fast replay (``speed=None``) only: publish the first
            record once this many clients are streaming (so that each of them
            gets everything from a small buffer).
        organization: the organisation named in ``HELLO`` and ``INFO ID``.
    """

    def __init__(self, source, speed=1.0, host="127.0.0.1", port=0, ring_size=10000,
                 faults=None, backlog="ring", hangup_at_end=False, min_readers=1,
                 organization="utrans replay"):
        if speed is not None and (not np.isfinite(speed) or speed <= 0):
            raise ValueError(f"speed must be a positive number or None. Received: speed={speed}")
        if ring_size < 2:
            raise ValueError(f"ring_size must be >= 2. Received: ring_size={ring_size}")
        if min_readers < 1:
            raise ValueError(f"min_readers must be >= 1. Received: min_readers={min_readers}")
        if backlog not in ("ring", "next"):
            raise ValueError(f"backlog must be 'ring' or 'next'. Received: backlog={backlog!r}")
        self.source = source
        self.speed = speed
        self.host = host
        self._port = port
        self.ring_size = int(ring_size)
        self.faults = dict(faults or {})
        for pattern, fault in self.faults.items():
            if not isinstance(fault, Faults):
                raise TypeError(f"faults values must be Faults. Received: {pattern!r}: {fault!r}")
        self.backlog = backlog
        self.hangup_at_end = hangup_at_end
        self.min_readers = int(min_readers)
        self.organization = organization
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.exhausted = threading.Event()
        self._stations = {}
        self._station_version = 0
        self._published = 0
        self._sessions = set()
        self._threads = []
        self._listener = None
        self._started = time.time()
        self.stats = {"published": 0, "connections": 0, "drops": 0, "sent": 0}
        for cid in source.channels:
            self._station(cid.rsplit(".", 2)[0])

    # ---- lifecycle

    @property
    def port(self):
        """The port listened on (after :meth:`start`)."""
        return self._port

    @property
    def address(self):
        """``host:port``, as SeedLink clients take it."""
        return f"{self.host}:{self._port}"

    def start(self):
        """Bind, listen and start the replay in background threads.

        Returns:
            self.
        """
        if self._listener is not None:
            raise RuntimeError("ReplayServer.start() called twice")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self._port))
        listener.listen(16)
        listener.settimeout(0.2)
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._started = time.time()
        for target, name in ((self._accept_loop, "accept"), (self._feed, "feed")):
            thread = threading.Thread(target=target, name=f"seedlink-replay-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info("SeedLink replay server listening on %s (%d stations, speed %s)",
                    self.address, len(self._stations),
                    "as fast as clients read" if self.speed is None else f"x{self.speed:g}")
        return self

    def stop(self):
        """Stop the replay, close every connection and the listening socket."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
            sessions = list(self._sessions)
        for session in sessions:
            session.close()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
        logger.info("SeedLink replay server on %s stopped (%s)", self.address, self.stats)

    def __enter__(self):
        return self.start() if self._listener is None else self

    def __exit__(self, *exc):
        self.stop()

    def wait_exhausted(self, timeout=None):
        """Block until every record of the source was published.

        Returns:
            True if so, False on timeout.
        """
        return self.exhausted.wait(timeout)

    def ring_lengths(self):
        """``{NET.STA: records held}`` (each at most ``ring_size``)."""
        with self._cond:
            return {sid: len(st.ring) for sid, st in self._stations.items()}

    # ---- stations and publication

    def _station(self, station_id):
        station = self._stations.get(station_id)
        if station is None:
            faults = next((f for p, f in self.faults.items()
                           if fnmatch.fnmatchcase(station_id, p)), Faults())
            station = _Station(station_id, self.ring_size, faults)
            self._stations[station_id] = station
            self._station_version += 1
        return station

    def _faulty(self, cid, records):
        """Apply a station's reorder/duplicate faults to one channel's records."""
        faults = self._station(cid.rsplit(".", 2)[0]).faults
        held = None
        for count, item in enumerate(records, start=1):
            if faults.duplicate_every and count % faults.duplicate_every == 0:
                yield item
            if held is not None:
                yield item
                yield held
                held = None
                continue
            if faults.reorder_every and count % faults.reorder_every == 0:
                held = item
                continue
            yield item
        if held is not None:
            yield held

    def _keyed(self, cid, records):
        delay = self._station(cid.rsplit(".", 2)[0]).faults.delay
        last = None
        for header, data in self._faulty(cid, records):
            if self.speed is None:
                key = (delay, header.end_of_data.ns)
            else:
                key = (header.end_of_data.ns + round(delay * self.speed * 1e9), 0)
            if last is not None and key < last:
                key = last      # a held-back (reordered) record goes out with its successor
            last = key
            yield key, header, data

    def _feed(self):
        channel_iters = [self._keyed(cid, records)
                         for cid, records in self.source.channel_records().items()]
        merged = heapq.merge(*channel_iters, key=lambda item: item[0])
        wall0 = None
        key0 = None
        try:
            for key, header, data in merged:
                if self._stop.is_set():
                    return
                if self.speed is None:
                    if not self._wait_for_readers():
                        return
                    if wall0 is None:
                        wall0 = time.monotonic()
                    due = wall0 + key[0]
                else:
                    if wall0 is None:
                        wall0, key0 = time.monotonic(), key[0]
                    due = wall0 + (key[0] - key0) * 1e-9 / self.speed
                pause = due - time.monotonic()
                if pause > 0 and self._stop.wait(pause):
                    return
                self._publish(header, data)
        except Exception:
            logger.exception("SeedLink replay: reading the source failed; no more records")
        finally:
            self.exhausted.set()
            with self._cond:
                self._cond.notify_all()
        logger.info("SeedLink replay: source exhausted after %d records", self.stats["published"])

    def _wait_for_readers(self):
        """Fast replay: wait until the streaming clients are less than half a ring behind."""
        limit = self.ring_size // 2
        needed = self.min_readers if self._published == 0 else 1
        with self._cond:
            while not self._stop.is_set():
                readers = [s.scanned for s in self._sessions if s.streaming]
                if len(readers) >= needed and self._published - min(readers) < limit:
                    return True
                self._cond.wait(0.02)
        return False

    def _publish(self, header, data):
        if len(data) != SL_RECLEN:
            raise ValueError(f"SeedLink carries {SL_RECLEN}-byte records; {header.id} at "
                             f"{header.starttime} has {len(data)} bytes")
        with self._cond:
            station = self._station(header.station_id)
            self._published += 1
            station.ring.append(self._published, header, data)
            extent = station.extent.setdefault(header.id, [header.starttime, header.endtime])
            extent[0] = min(extent[0], header.starttime)
            extent[1] = max(extent[1], header.endtime)
            self.stats["published"] += 1
            self._cond.notify_all()

    # ---- connections

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                sock, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                raise
            session = _Session(self, sock, peer)
            with self._cond:
                self._sessions.add(session)
                self.stats["connections"] += 1
            thread = threading.Thread(target=session.run, name=f"seedlink-replay-{peer[1]}",
                                      daemon=True)
            thread.start()

    def _forget(self, session):
        with self._cond:
            self._sessions.discard(session)
            self._cond.notify_all()

    # ---- INFO

    def info_xml(self, level):
        """The XML text of an ``INFO`` level (None for a level not served)."""
        level = level.upper()
        started = obspy.UTCDateTime(self._started).strftime("%Y/%m/%d %H:%M:%S.0000")
        head = (f'<?xml version="1.0"?>\n<seedlink software="{_HELLO}" '
                f'organization="{self.organization}" started="{started}"')
        if level == "ID":
            return head + "/>"
        if level == "CAPABILITIES":
            caps = "".join(f'<capability name="{c}"/>' for c in _CAPABILITIES)
            return head + ">" + caps + "</seedlink>"
        if level not in ("STATIONS", "STREAMS", "ALL"):
            return None
        parts = [head + ">"]
        with self._cond:
            stations = sorted(self._stations.values(), key=lambda s: s.id)
            for st in stations:
                begin = st.ring.first & SEQ_MASK
                end = st.ring.next & SEQ_MASK
                attrs = (f'name="{st.station}" network="{st.network}" description="" '
                         f'begin_seq="{begin:06X}" end_seq="{end:06X}" stream_check="enabled"')
                if level == "STATIONS":
                    parts.append(f"<station {attrs}/>")
                    continue
                parts.append(f"<station {attrs}>")
                channels = sorted(set(st.extent) | {c for c in self.source.channels
                                                    if c.rsplit(".", 2)[0] == st.id})
                for cid in channels:
                    _, _, loc, cha = cid.split(".")
                    first, last = st.extent.get(cid, (None, None))
                    times = ""
                    if first is not None:
                        times = (f' begin_time="{first.strftime("%Y/%m/%d %H:%M:%S.%f")[:-2]}"'
                                 f' end_time="{last.strftime("%Y/%m/%d %H:%M:%S.%f")[:-2]}"')
                    parts.append(f'<stream location="{loc}" seedname="{cha}" type="D"{times} '
                                 'begin_recno="0" end_recno="0" gap_check="disabled" '
                                 'gap_treshold="0"/>')
                parts.append("</station>")
        parts.append("</seedlink>")
        return "".join(parts)


def _info_packets(xml):
    """SeedLink INFO packets (``SLINFO *`` ... ``SLINFO  ``) carrying ``xml``."""
    trace = obspy.Trace(np.frombuffer(xml.encode("ascii", "replace"), dtype="|S1"),
                        header={"network": "SL", "station": "INFO", "channel": "LOG"})
    buffer = io.BytesIO()
    trace.write(buffer, format="MSEED", reclen=SL_RECLEN, encoding="ASCII")
    blob = buffer.getvalue()
    records = [blob[i:i + SL_RECLEN] for i in range(0, len(blob), SL_RECLEN)]
    return b"".join((b"SLINFO *" if i < len(records) - 1 else b"SLINFO  ") + record
                    for i, record in enumerate(records))


# --------------------------------------------------------------------------- one connection


@dataclasses.dataclass
class _Subscription:
    network: str                 # fnmatch pattern ("*" in uni-station mode)
    station: str
    selectors: list
    action: str = "DATA"         # DATA | FETCH | TIME
    seq: int | None = None       # 24-bit sequence number to resume from
    begin: object = None         # UTCDateTime
    end: object = None


_SELECTOR = re.compile(r"^(!?)([A-Z0-9?\- ]{0,5})(?:\.([A-Z?]))?$")


def _parse_selector(text):
    """``(negate, location pattern or None, channel pattern, type)`` or None if invalid."""
    found = _SELECTOR.match(text.upper())
    if not found:
        return None
    negate, codes, kind = found.groups()
    if len(codes) > 3:
        loc, cha = codes[:2].replace("-", " "), codes[2:]
    else:
        loc, cha = None, codes
    return bool(negate), loc, (cha + "???")[:3], kind or "D"


def _selected(selectors, header):
    if not selectors:
        return True
    loc = (header.location + "  ")[:2]

    def hit(sel):
        _, sloc, scha, kind = sel
        return (fnmatch.fnmatchcase("D", kind)
                and (sloc is None or fnmatch.fnmatchcase(loc, sloc))
                and fnmatch.fnmatchcase(header.channel, scha))

    positive = [s for s in selectors if not s[0]]
    if positive and not any(hit(s) for s in positive):
        return False
    return not any(hit(s) for s in selectors if s[0])


class _Cursor:
    def __init__(self, station, sub, server):
        self.station = station
        self.sub = sub
        self.sent = 0
        ring = station.ring
        self.begin = sub.begin
        self.end = sub.end if sub.action == "TIME" else None
        if sub.action == "TIME":
            self.seq = ring.first
        elif sub.seq is not None:
            resolved = ring.resolve(sub.seq)
            if resolved is None:
                logger.info("%s: sequence number %06X is not held (held %06X-%06X); "
                            "starting %s", station.id, sub.seq, ring.first & SEQ_MASK,
                            ring.next & SEQ_MASK,
                            f"at {sub.begin}" if sub.begin is not None else "at the oldest")
                self.seq = ring.first
            else:
                self.seq = resolved
                self.begin = None
        elif server.backlog == "ring" or sub.begin is not None:
            self.seq = ring.first
        else:
            self.seq = ring.next

    def wants(self, entry):
        header = entry.header
        if self.begin is not None and header.end_of_data <= self.begin:
            return False
        if self.end is not None and header.starttime >= self.end:
            return False
        return _selected(self.sub.selectors, header)

    def window_done(self):
        """TIME with an end: a record at or after the end was published and passed."""
        if self.end is None:
            return False
        return any(last >= self.end for _, last in self.station.extent.values())


class _Session:
    """One client connection: handshake, then streaming."""

    def __init__(self, server, sock, peer):
        self.server = server
        self.sock = sock
        self.peer = f"{peer[0]}:{peer[1]}"
        self.streaming = False
        self.scanned = 0
        self._inbox = b""
        self._closed = False
        self._multistation = False
        self._subs = []
        self._current = None
        self._uni = _Subscription("*", "*", [])
        self._cursors = {}
        self._version = -1
        self._mode_end = False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(30.0)

    def close(self, reset=False):
        if self._closed:
            return
        self._closed = True
        try:
            if reset:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def run(self):
        logger.debug("connection from %s", self.peer)
        try:
            while not self._closed and not self.server._stop.is_set():
                if self.streaming:
                    self._stream_step()
                else:
                    line = self._read_line(timeout=0.2)
                    if line is not None:
                        self._command(line)
        except (OSError, ValueError) as err:
            if not self._closed:
                logger.debug("connection %s ended: %s", self.peer, err)
        finally:
            self.close()
            self.server._forget(self)
            logger.debug("connection %s closed", self.peer)

    # ---- I/O

    def _read_line(self, timeout):
        while True:
            found = re.search(rb"[\r\n]", self._inbox)
            if found:
                line = self._inbox[:found.start()]
                self._inbox = self._inbox[found.end():].lstrip(b"\r\n")
                if line.strip():
                    return line.decode("ascii", "replace").strip()
                continue
            if len(self._inbox) > 4096:
                raise ValueError("command line longer than 4096 bytes")
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return None
            chunk = self.sock.recv(4096)
            if not chunk:
                self._closed = True
                return None
            self._inbox += chunk

    def _send(self, data):
        self.sock.sendall(data)

    def _reply(self, ok):
        self._send(b"OK\r\n" if ok else b"ERROR\r\n")

    # ---- handshake

    def _command(self, line):
        words = line.split()
        verb, args = words[0].upper(), words[1:]
        logger.debug("%s: %s", self.peer, line)
        if verb == "HELLO":
            self._send(f"{_HELLO}\r\n{self.server.organization}\r\n".encode())
        elif verb == "BYE":
            self.close()
        elif verb == "CAT":
            with self.server._cond:
                names = sorted(self.server._stations)
            text = "".join(f"{sid.split('.')[0]:<2} {sid.split('.')[1]:<5} replay\r\n"
                           for sid in names)
            self._send(text.encode() + b"END")
        elif verb == "INFO":
            xml = self.server.info_xml(args[0] if args else "")
            self._send(_info_packets(xml) if xml is not None else b"ERROR\r\n")
        elif verb == "STATION":
            self._station(args)
        elif verb == "SELECT":
            self._select(args)
        elif verb in ("DATA", "FETCH", "TIME"):
            self._action(verb, args)
        elif verb == "END":
            if not self._multistation or not self._subs:
                self._reply(False)
                return
            self._start_streaming()
        else:
            self._reply(False)

    def _station(self, args):
        if not args or len(args) > 2:
            self._reply(False)
            return
        sta, net = args[0], (args[1] if len(args) > 1 else "*")
        with self.server._cond:
            known = [s for s in self.server._stations.values()
                     if fnmatch.fnmatchcase(s.network, net) and fnmatch.fnmatchcase(s.station, sta)]
        if not known:
            self._current = None
            self._reply(False)
            return
        self._multistation = True
        self._current = _Subscription(net, sta, [])
        self._subs.append(self._current)
        self._reply(True)

    def _select(self, args):
        target = self._current if self._multistation else self._uni
        if self._multistation and target is None:
            self._reply(False)
            return
        if not args:
            target.selectors.clear()
            self._reply(True)
            return
        parsed = [_parse_selector(a) for a in args]
        if any(p is None for p in parsed):
            self._reply(False)
            return
        target.selectors.extend(parsed)
        self._reply(True)

    def _action(self, verb, args):
        target = self._current if self._multistation else self._uni
        if self._multistation and target is None:
            self._reply(False)
            return
        try:
            target.action = verb
            if verb == "TIME":
                if not args:
                    raise ValueError("TIME needs a begin time")
                target.begin = _parse_sl_time(args[0])
                target.end = _parse_sl_time(args[1]) if len(args) > 1 else None
            else:
                target.seq = int(args[0], 16) & SEQ_MASK if args else None
                target.begin = _parse_sl_time(args[1]) if len(args) > 1 else None
        except ValueError as err:
            logger.info("%s: bad %s arguments %s: %s", self.peer, verb, args, err)
            self._reply(False)
            return
        self._reply(True)
        if not self._multistation:
            self._subs = [self._uni]
            time.sleep(_UNI_START_DELAY)
            self._start_streaming()

    # ---- streaming

    def _start_streaming(self):
        with self.server._cond:
            self._refresh_cursors()
            pending = [c.station.ring.get(c.seq) for c in self._cursors.values()]
            behind = [entry.gidx - 1 for entry in pending if entry is not None]
            # where this client stands: a fast replay waits for it to catch up
            self.scanned = min(behind) if behind else self.server._published
            self.streaming = True
        self._mode_end = any(s.action in ("FETCH", "TIME") for s in self._subs)

    def _refresh_cursors(self):
        """Open cursors for stations that match a subscription (held lock)."""
        if self._version == self.server._station_version:
            return
        self._version = self.server._station_version
        for station in self.server._stations.values():
            if station.id in self._cursors:
                continue
            for sub in self._subs:
                if (fnmatch.fnmatchcase(station.network, sub.network)
                        and fnmatch.fnmatchcase(station.station, sub.station)):
                    self._cursors[station.id] = _Cursor(station, sub, self.server)
                    break

    def _next_entry(self):
        """The next record to send (held lock), or None."""
        self._refresh_cursors()
        best = None
        for cursor in self._cursors.values():
            ring = cursor.station.ring
            if cursor.seq < ring.first:
                logger.warning("%s: %s fell %d records behind the buffer; they are lost to it",
                               self.peer, cursor.station.id, ring.first - cursor.seq)
                cursor.seq = ring.first
            while cursor.seq < ring.next:
                entry = ring.get(cursor.seq)
                if cursor.wants(entry):
                    if best is None or entry.gidx < best[1].gidx:
                        best = (cursor, entry)
                    break
                cursor.seq += 1
        if best is None:
            self.scanned = self.server._published
            return None
        cursor, entry = best
        cursor.seq += 1
        self.scanned = entry.gidx
        self.server.stats["sent"] += 1
        return cursor, entry

    def _finished(self):
        """Whether END is due (held lock): windows complete, FETCH caught up, or hang-up."""
        if self.server.hangup_at_end and self.server.exhausted.is_set():
            return True
        if not self._mode_end:
            return False
        if self.server.exhausted.is_set():
            return True
        for cursor in self._cursors.values():
            if cursor.sub.action == "DATA":
                return False
            if cursor.sub.action == "TIME" and not cursor.window_done():
                return False
        return True

    def _stream_step(self):
        with self.server._cond:
            found = self._next_entry()
            if found is None:
                if self._finished():
                    self.streaming = False
                    finished = True
                else:
                    finished = False
                    self.server._cond.wait(0.05)
        if found is None:
            if finished:
                self._send(b"END")
                logger.debug("%s: END sent", self.peer)
            self._poll_commands()
            return
        cursor, entry = found
        self._send(b"SL%06X" % (entry.seq & SEQ_MASK) + entry.data)
        cursor.sent += 1
        faults = cursor.station.faults
        if faults.drop_after is not None and cursor.sent >= faults.drop_after:
            with self.server._cond:
                allowed = faults.max_drops is None or cursor.station.drops < faults.max_drops
                if allowed:
                    cursor.station.drops += 1
                    self.server.stats["drops"] += 1
            if allowed:
                logger.info("%s: dropping the connection after %d records of %s (fault)",
                            self.peer, cursor.sent, cursor.station.id)
                self.close(reset=True)
                return
        if cursor.sent % 64 == 0:
            self._poll_commands()

    def _poll_commands(self):
        """Serve commands a streaming client may send (INFO keep-alives, BYE)."""
        while not self._closed:
            line = self._read_line(timeout=0)
            if line is None:
                return
            verb = line.split()[0].upper()
            if verb == "INFO":
                self._command(line)
            elif verb == "BYE":
                self.close()
            else:
                logger.debug("%s: ignoring %r while streaming", self.peer, line)


def _parse_sl_time(text):
    """SeedLink time ``YYYY,MM,DD,hh,mm,ss[.ffff]`` -> UTCDateTime."""
    fields = text.split(",")
    if len(fields) != 6:
        raise ValueError(f"a SeedLink time is YYYY,MM,DD,hh,mm,ss. Received: {text!r}")
    year, month, day, hour, minute = (int(f) for f in fields[:5])
    return obspy.UTCDateTime(year, month, day, hour, minute) + float(fields[5])


def format_sl_time(time):
    """UTCDateTime -> SeedLink ``YYYY,MM,DD,hh,mm,ss`` (whole seconds, rounded down)."""
    return obspy.UTCDateTime(time).format_seedlink()


# --------------------------------------------------------------------------- command line


def main(argv=None):
    """Run a replay server until Ctrl-C: ``python -m utrans.stream.server``.

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
        Exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m utrans.stream.server",
        description="Replay miniSEED (files or an SDS archive) as a SeedLink v3 server.")
    parser.add_argument("files", nargs="*", help="miniSEED files to replay")
    parser.add_argument("--sds", help="SDS archive root to replay instead of files")
    parser.add_argument("--select", default="*.*.*.*",
                        help="NET.STA.LOC.CHA fnmatch patterns, comma-separated")
    parser.add_argument("--start", help="first time to replay (SDS)")
    parser.add_argument("--end", help="end of the replay (SDS)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18000)
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--speed", type=float, default=1.0,
                       help="multiple of real time (default 1)")
    speed.add_argument("--fast", action="store_true",
                       help="as fast as the clients read")
    parser.add_argument("--ring", type=int, default=10000, help="records kept per station")
    parser.add_argument("--backlog", choices=("ring", "next"), default="ring")
    parser.add_argument("--fault", action="append", default=[],
                        help="NET.STA:name=value,... (drop_after, max_drops, delay, "
                             "reorder_every, duplicate_every); repeatable")
    parser.add_argument("--min-readers", type=int, default=1,
                        help="--fast: start once this many clients stream")
    parser.add_argument("--hangup-at-end", action="store_true",
                        help="send END to clients once everything was replayed")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    if args.sds:
        source = SDSSource(args.sds, args.select, args.start, args.end)
    elif args.files:
        stream = obspy.Stream()
        for path in args.files:
            stream += obspy.read(path)
        patterns = parse_select(args.select)
        stream = obspy.Stream([tr for tr in stream if matches(patterns, tr.id)])
        source = StreamSource(stream)
    else:
        parser.error("give miniSEED files or --sds ROOT")
    faults = dict(Faults.parse(text) for text in args.fault)
    server = ReplayServer(source, speed=None if args.fast else args.speed, host=args.host,
                          port=args.port, ring_size=args.ring, faults=faults,
                          backlog=args.backlog, hangup_at_end=args.hangup_at_end,
                          min_readers=args.min_readers)
    server.start()
    print(f"SeedLink replay of {len(source.channels)} channels on {server.address} "
          "(Ctrl-C stops)", flush=True)
    try:
        while not server._stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
