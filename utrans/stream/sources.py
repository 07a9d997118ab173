"""Live data sources: a reconnecting SeedLink client and an SDS archive follower.

Both hand over :class:`~utrans.stream.tracker.Packet` objects (an
``obspy.Trace`` of samples new to the consumer, a ``late`` flag, the SeedLink
sequence number when there is one), each sample exactly once per channel,
through the same three calls, so that a picker can be driven by either:

* ``source.packets()``: a generator of packets (runs until ``stop()``, the
  end of the data, or the consumer closes it);
* ``source.run(on_packet)``: calls ``on_packet(packet)`` for each, returns
  the :class:`~utrans.stream.tracker.SourceStats` when stopped or on Ctrl-C;
* ``source.state()``: ``{NET.STA.LOC.CHA: UTCDateTime of the next expected
  sample}``; pass it back as ``resume_from=`` to a new source to carry on
  where an earlier one stopped.

::

    from utrans.stream.sources import SDSFollower, SeedLinkSource

    source = SeedLinkSource("127.0.0.1:18000", select="XX.*.*.HH?")
    stats = source.run(lambda packet: picker.feed(packet.trace))

    follower = SDSFollower("/data/sds", select="XX.*.*.HH?", poll_interval=1.0)
    for packet in follower.packets():
        ...

:class:`SeedLinkSource` negotiates SeedLink v3 in multi-station mode. It
expands the selection against the server's ``INFO STREAMS`` list (so
wildcards in network and station codes work with any server), reconnects
with exponential back-off after any failure (a log line at every retry),
and resumes each station from the sequence number after the last packet it
received (with the time of that station's earliest next sample, less one
record span, as a fallback for servers that lost the sequence), or, when it
only has times, with ``TIME`` from there. Records repeated across a
reconnect are trimmed to their new samples; duplicates, late packets and
gaps are counted and logged. Without data for ``keepalive`` seconds it asks
the server ``INFO ID``; without any byte for ``timeout`` seconds it
reconnects.

:class:`SDSFollower` polls an SDS archive that writers append to: it reads
only whole records past its last offset in each day file (a record still
being written is left for the next poll, never read in part), notices new
day files, and forgets files a few days old.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import select
import socket
import threading
import time
import xml.etree.ElementTree as ElementTree

import obspy
from obspy.clients.seedlink.seedlinkexception import SeedLinkException
from obspy.clients.seedlink.slpacket import SLPacket

from utrans.stream.mseed import IncompleteRecord, RecordHeader, complete_records, decode
from utrans.stream.selection import matches, parse_sds_name, parse_select
from utrans.stream.tracker import ChannelTracker, Packet, SourceStats

__all__ = ["SDSFollower", "SeedLinkSource", "SelectionError"]

logger = logging.getLogger(__name__)

_PACKET = 520            # SeedLink packet: 8-byte header + 512-byte record
_SEQ_MASK = 0xFFFFFF
_DEFAULT_SPAN = 60.0     # s to go back when resuming by time before any record was seen


class SelectionError(ValueError):
    """A selection matches none of the channels a source offers."""


class _ProtocolError(Exception):
    """The server answered something unexpected (reconnect)."""


class _Refused(_ProtocolError):
    """The server answered ERROR to a command."""


class _Source:
    """What both sources share: the tracker, counters, stop and the callback loop."""

    def __init__(self, select, resume_from, max_gaps):
        self.select = select
        self.patterns = parse_select(select)
        self.stats = SourceStats()
        self.tracker = ChannelTracker(max_gaps=max_gaps, stats=self.stats)
        self._stop = threading.Event()
        for trace_id, when in (resume_from or {}).items():
            self.tracker.start_at(trace_id, when)

    def stop(self):
        """Make ``packets()`` / ``run()`` return (thread-safe)."""
        self._stop.set()

    def state(self):
        """Resume points: ``{NET.STA.LOC.CHA: UTCDateTime of the next expected sample}``."""
        return self.tracker.state()

    def packets(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def run(self, on_packet):
        """Call ``on_packet(packet)`` for every packet until stopped or Ctrl-C.

        Args:
            on_packet: callable taking a :class:`~utrans.stream.tracker.Packet`.

        Returns:
            The :class:`~utrans.stream.tracker.SourceStats`.
        """
        generator = self.packets()
        try:
            for packet in generator:
                on_packet(packet)
        except KeyboardInterrupt:
            logger.info("%s: interrupted; stopping", self)
        finally:
            generator.close()
        logger.info("%s: stopped after %d packets (%d samples, %d duplicate records, %d late, "
                    "%d gaps, %d reconnects)", self, self.stats.packets, self.stats.samples,
                    self.stats.duplicates, self.stats.late, self.stats.gaps,
                    self.stats.reconnects)
        return self.stats

    def _pieces(self, trace, seq=None):
        if not matches(self.patterns, trace.id):
            return []
        stats = trace.stats
        plain = obspy.Trace(data=trace.data, header={
            "network": stats.network, "station": stats.station, "location": stats.location,
            "channel": stats.channel, "starttime": stats.starttime,
            "sampling_rate": stats.sampling_rate})
        return [Packet(piece, late, seq) for piece, late in self.tracker.accept(plain)]


# --------------------------------------------------------------------------- SeedLink


class SeedLinkSource(_Source):
    """A SeedLink v3 client that reconnects and resumes by itself.

    Args:
        address: ``host:port`` of the SeedLink server (port 18000 if omitted).
        select: comma-separated ``NET.STA.LOC.CHA`` ``fnmatch`` patterns,
            expanded against the server's ``INFO STREAMS`` list on the first
            connection.
        start: optional first time to ask for on the first connection
            (``TIME``); default: the server's next data (``DATA``).
        resume_from: ``{channel id: time}`` from an earlier ``state()``: those
            channels start at that time (and samples before it are dropped).
        backoff: first retry delay in seconds; it doubles at every failed
            attempt, up to ``max_backoff``, and starts over once data flow.
        max_backoff: longest retry delay in seconds.
        connect_timeout: seconds to wait for a connection or an answer
            during the handshake.
        keepalive: seconds without data after which an ``INFO ID`` is sent.
        timeout: seconds without any byte from the server after which the
            connection is dropped and made again.
        max_gaps: open gaps remembered per channel (for late packets).
    """

    def __init__(self, address, select="*.*.*.*", start=None, resume_from=None, backoff=0.5,
                 max_backoff=60.0, connect_timeout=10.0, keepalive=30.0, timeout=90.0,
                 max_gaps=16):
        super().__init__(select, resume_from, max_gaps)
        host, _, port = str(address).rpartition(":")
        if not host:
            host, port = str(address), "18000"
        try:
            self.port = int(port)
        except ValueError as err:
            raise ValueError(f"a SeedLink address is host:port. Received: {address!r}") from err
        self.host = host
        for name, value in (("backoff", backoff), ("max_backoff", max_backoff),
                            ("connect_timeout", connect_timeout), ("keepalive", keepalive),
                            ("timeout", timeout)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0 seconds. Received: {name}={value}")
        self.start = None if start is None else obspy.UTCDateTime(start)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.connect_timeout = float(connect_timeout)
        self.keepalive = float(keepalive)
        self.timeout = float(timeout)
        self.stations = None          # {NET.STA: sorted channel codes}, from INFO STREAMS
        self.sequence = {}            # {NET.STA: last sequence number received}
        self.server_version = 0.0
        self.max_buffer = 0           # largest receive buffer held (bytes), for checks
        self._buffer = bytearray()
        self._sock = None
        self._connections = 0
        self._ended = False
        self._span = {}               # {NET.STA: longest record span seen, s}

    def __str__(self):
        return f"seedlink {self.host}:{self.port}"

    # ---- the loop

    def packets(self):
        """Packets from the server until ``stop()``, an ``END`` from the server or close.

        Yields:
            :class:`~utrans.stream.tracker.Packet`.

        Raises:
            SelectionError: the selection matches no stream of the server.
        """
        attempt = 0
        try:
            while not self._stop.is_set():
                try:
                    for packet in self._session():
                        attempt = 0
                        yield packet
                    if self._stop.is_set():
                        return
                    if self._ended:
                        logger.info("%s: the server ended the stream (END)", self)
                        return
                    reason = "the server closed the connection"
                except (OSError, _ProtocolError) as err:
                    reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
                finally:
                    self._close()
                if self._stop.is_set():
                    return
                attempt += 1
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                logger.warning("%s: %s; reconnecting in %.3g s (attempt %d)", self, reason, delay,
                               attempt)
                if self._stop.wait(delay):
                    return
        finally:
            self._close()

    def _close(self):
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.sendall(b"BYE\r")
            sock.close()
        self._buffer.clear()

    # ---- one connection

    def _session(self):
        self._ended = False
        self._sock = socket.create_connection((self.host, self.port),
                                              timeout=self.connect_timeout)
        self._connections += 1
        if self._connections > 1:
            self.stats.reconnects += 1
        self._buffer.clear()
        self._hello()
        if self.stations is None:
            self.stations = self._expand_selection()
        for station_id, channels in self.stations.items():
            self._negotiate(station_id, channels)
        self._sock.sendall(b"END\r")
        logger.info("%s: streaming %d stations (%s)", self, len(self.stations),
                    ", ".join(sorted(self.stations)) if len(self.stations) <= 8
                    else f"{', '.join(sorted(self.stations)[:8])}, ...")
        yield from self._stream()

    def _command(self, text):
        self._sock.sendall(text.encode("ascii") + b"\r")
        return self._line()

    def _line(self):
        deadline = time.monotonic() + self.connect_timeout
        while True:
            found = re.search(rb"\r\n|\r|\n", self._buffer)
            if found:
                line = bytes(self._buffer[:found.start()])
                del self._buffer[:found.end()]
                return line.decode("ascii", "replace")
            self._receive(deadline)

    def _receive(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no answer within {self.connect_timeout:g} s")
        ready, _, _ = select.select([self._sock], [], [], min(remaining, 0.2))
        if self._stop.is_set():
            raise _Stopped()
        if not ready:
            return False
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._buffer += chunk
        self.max_buffer = max(self.max_buffer, len(self._buffer))
        return True

    def _hello(self):
        first = self._command("HELLO")
        second = self._line()
        found = re.search(r"v(\d+(?:\.\d+)?)", first)
        if not first.lower().startswith("seedlink") or not found:
            raise _ProtocolError(f"not a SeedLink server (HELLO answered {first!r})")
        self.server_version = float(found.group(1))
        if self._connections == 1:
            logger.info("%s: connected to %r (%s)", self, first, second)

    def _info(self, level):
        """The XML text of an INFO level."""
        self._sock.sendall(f"INFO {level}\r".encode("ascii"))
        deadline = time.monotonic() + self.connect_timeout
        text = bytearray()
        while True:
            while len(self._buffer) < _PACKET:
                if self._buffer.startswith(b"ERROR"):
                    self._line()
                    raise _Refused(f"the server refused INFO {level}")
                self._receive(deadline)
            head = bytes(self._buffer[:8])
            if not head.startswith(b"SLINFO"):
                raise _ProtocolError(f"INFO {level} answered {head!r}")
            for trace in decode(self._buffer[8:_PACKET]):
                text += trace.data.tobytes()
            del self._buffer[:_PACKET]
            if head[7:8] != b"*":
                return text.decode("ascii", "replace").rstrip("\x00 ")

    def _expand_selection(self):
        """``{NET.STA: channel codes}`` of the server's streams that the selection matches."""
        try:
            xml = self._info("STREAMS")
        except _Refused:
            return self._literal_selection()
        try:
            root = ElementTree.fromstring(xml.encode("utf-8") if "encoding=" in xml else xml)
        except ElementTree.ParseError as err:
            raise _ProtocolError(f"INFO STREAMS is not XML: {err}") from err
        offered = []
        for station in root.iter("station"):
            for stream in station.iter("stream"):
                if stream.get("type", "D") != "D":
                    continue
                offered.append(f"{station.get('network')}.{station.get('name')}."
                               f"{stream.get('location', '').strip()}.{stream.get('seedname')}")
        chosen = sorted(cid for cid in offered if matches(self.patterns, cid))
        if not chosen:
            shown = ", ".join(sorted(offered)[:10]) + (", ..." if len(offered) > 10 else "")
            raise SelectionError(
                f"select={self.select!r} matches none of the {len(offered)} streams that "
                f"{self.host}:{self.port} offers ({shown or 'none'})")
        stations = {}
        for cid in chosen:
            net, sta, _, cha = cid.split(".")
            stations.setdefault(f"{net}.{sta}", set()).add(cha)
        logger.info("%s: select=%r matches %d streams of %d stations", self, self.select,
                    len(chosen), len(stations))
        return {sid: sorted(chas) for sid, chas in sorted(stations.items())}

    def _literal_selection(self):
        """Stations and channel selectors straight from the patterns (no INFO STREAMS)."""
        stations = {}
        for net, sta, loc, cha in self.patterns:
            if any(c in net + sta for c in "*?[") or any(c in loc + cha for c in "*["):
                raise SelectionError(
                    f"{self.host}:{self.port} refuses INFO STREAMS, so select={self.select!r} "
                    "cannot be expanded: name networks and stations without wildcards "
                    "(locations and channels may use '?')")
            stations.setdefault(f"{net}.{sta}", set()).add(cha)
        logger.info("%s: the server refuses INFO STREAMS; selecting %s as given", self,
                    self.select)
        return {sid: sorted(chas) for sid, chas in sorted(stations.items())}

    def _resume_time(self, station_id):
        """Where a station resumes by time: its earliest next sample, less one record span.

        A server may send only records that start at or after the time asked
        for; going back by the longest record seen (60 s before any was seen)
        loses nothing, and the overlap is trimmed as duplicates.
        """
        times = [when for cid, when in self.tracker.state().items()
                 if cid.rsplit(".", 2)[0] == station_id]
        if not times:
            return None
        return min(times) - self._span.get(station_id, _DEFAULT_SPAN)

    def _negotiate(self, station_id, channels):
        net, sta = station_id.split(".")
        if self._command(f"STATION {sta} {net}") != "OK":
            raise _ProtocolError(f"the server refused STATION {sta} {net}")
        for cha in channels:
            if self._command(f"SELECT {cha}.D") != "OK":
                raise _ProtocolError(f"the server refused SELECT {cha}.D for {station_id}")
        seq = self.sequence.get(station_id)
        when = self._resume_time(station_id)
        if seq is not None:
            action = f"DATA {(seq + 1) & _SEQ_MASK:06X}"
            if when is not None and self.server_version >= 2.93:
                action += f" {when.format_seedlink()}"
        elif when is not None:
            action = f"TIME {when.format_seedlink()}"
        elif self.start is not None:
            action = f"TIME {self.start.format_seedlink()}"
        else:
            action = "DATA"
        if self._command(action) != "OK":
            raise _ProtocolError(f"the server refused {action} for {station_id}")
        if self._connections > 1:
            logger.info("%s: %s resumes with %s", self, station_id, action)

    def _stream(self):
        last_byte = time.monotonic()
        asked = False
        while not self._stop.is_set():
            while len(self._buffer) >= 3 and not self._stop.is_set():
                head = bytes(self._buffer[:8])
                if head.startswith(b"END"):
                    self._ended = True
                    return
                if head.startswith(b"ERROR"):
                    raise _ProtocolError("the server sent ERROR while streaming")
                if len(self._buffer) < _PACKET:
                    break
                if head.startswith(b"SLINFO"):
                    del self._buffer[:_PACKET]        # answer to a keep-alive
                    continue
                if not head.startswith(b"SL"):
                    raise _ProtocolError(f"lost packet framing (header {head!r})")
                seq = int(head[2:8], 16)
                packet = bytes(self._buffer[:_PACKET])
                del self._buffer[:_PACKET]
                yield from self._record(seq, packet)
            try:
                got = self._receive(time.monotonic() + 1.0)
            except TimeoutError:
                got = False
            now = time.monotonic()
            if got:
                last_byte, asked = now, False
            elif now - last_byte > self.timeout:
                raise TimeoutError(f"no data for {self.timeout:g} s")
            elif not asked and now - last_byte > self.keepalive:
                self._sock.sendall(b"INFO ID\r")
                asked = True

    def _record(self, seq, packet):
        self.stats.records += 1
        try:
            # ObsPy's SeedLink packet decoder (libmseed), several times faster than obspy.read
            trace = SLPacket(packet, 0).get_trace()
        except SeedLinkException as err:
            logger.warning("%s: packet %06X dropped: %s", self, seq, err)
            return
        station_id = f"{trace.stats.network}.{trace.stats.station}"
        self.sequence[station_id] = seq
        span = trace.stats.npts * trace.stats.delta
        if span > self._span.get(station_id, 0.0):
            self._span[station_id] = span
        yield from self._pieces(trace, seq)


class _Stopped(OSError):
    """stop() was called while waiting for the server."""


# --------------------------------------------------------------------------- SDS


class _File:
    def __init__(self, path, channel_id, day, offset):
        self.path = path
        self.channel_id = channel_id
        self.day = day
        self.offset = offset
        self.bad = False


class SDSFollower(_Source):
    """Follow a growing SDS archive: new whole records of every selected channel.

    Args:
        root: SDS root (``ROOT/YEAR/NET/STA/CHA.TYPE/NET.STA.LOC.CHA.TYPE.YEAR.DOY``).
        select: comma-separated ``NET.STA.LOC.CHA`` ``fnmatch`` patterns.
        poll_interval: seconds between polls when nothing new was found.
        start: ``"end"`` (default): only data written after the follower
            started; ``"begin"``: the files of the last ``keep_days`` days from
            their start; or a time: data from that time on.
        resume_from: ``{channel id: time}`` from an earlier ``state()``
            (those channels start at that time).
        keep_days: a day file is followed until a file ``keep_days`` days
            newer exists for its channel.
        sds_type: the SDS data type letter.
        max_read: bytes read from one file per poll (bounds memory).
        max_gaps: open gaps remembered per channel (for late packets).
    """

    def __init__(self, root, select="*.*.*.*", poll_interval=1.0, start="end",
                 resume_from=None, keep_days=2, sds_type="D", max_read=4 << 20, max_gaps=16):
        super().__init__(select, resume_from, max_gaps)
        if not os.path.isdir(root):
            raise FileNotFoundError(f"SDS archive folder not found: {root}")
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0 seconds. Received: {poll_interval}")
        if keep_days < 1:
            raise ValueError(f"keep_days must be >= 1. Received: keep_days={keep_days}")
        if start not in ("end", "begin"):
            try:
                start = obspy.UTCDateTime(start)
            except (TypeError, ValueError) as err:
                raise ValueError("start must be 'end', 'begin' or a time. "
                                 f"Received: start={start!r}") from err
        self.root = str(root)
        self.poll_interval = float(poll_interval)
        self.start = start
        self.keep_days = int(keep_days)
        self.sds_type = sds_type
        self.max_read = int(max_read)
        self._resume = dict(resume_from or {})
        self._files = {}         # path -> _File
        self._newest = {}        # channel id -> newest day seen
        self._first_scan = True
        self._warned_empty = False

    def __str__(self):
        return f"sds {self.root}"

    def watched(self):
        """Paths of the files followed now (bounded by channels x (keep_days + 1))."""
        return sorted(self._files)

    # ---- the loop

    def packets(self):
        """New packets, polling every ``poll_interval`` seconds, until ``stop()``.

        Yields:
            :class:`~utrans.stream.tracker.Packet`.
        """
        while not self._stop.is_set():
            found = False
            for packet in self.poll():
                found = True
                yield packet
            if not found and self._stop.wait(self.poll_interval):
                return

    def poll(self):
        """One pass: find new files, read the new whole records of every followed file.

        Returns:
            A list of :class:`~utrans.stream.tracker.Packet` (empty if nothing new).
        """
        self._discover()
        packets = []
        for entry in sorted(self._files.values(), key=lambda f: (f.channel_id, f.day)):
            if not entry.bad:
                packets.extend(self._read(entry))
        self._forget_old()
        return packets

    # ---- files

    def _years(self):
        try:
            names = os.listdir(self.root)
        except OSError as err:
            logger.warning("%s: cannot list the archive: %s", self, err)
            return []
        years = sorted(n for n in names if re.fullmatch(r"\d{4}", n))
        if self._newest and not self._first_scan:
            oldest = min(self._newest.values()) - self.keep_days * 86400
            years = [y for y in years if int(y) >= oldest.year]
        return years

    def _discover(self):
        candidates = {}
        for year in self._years():
            for net, sta, loc, cha in self.patterns:
                pattern = os.path.join(self.root, year, net, sta, f"{cha}.{self.sds_type}",
                                       f"{net}.{sta}.{loc}.{cha}.{self.sds_type}.{year}.*")
                for path in sorted(glob.glob(pattern)):
                    if path in self._files or path in candidates:
                        continue
                    parsed = parse_sds_name(path)
                    if parsed is not None and matches(self.patterns, parsed[0]):
                        candidates[path] = parsed
        for cid, day in candidates.values():
            if cid not in self._newest or day > self._newest[cid]:
                self._newest[cid] = day
        for path, (cid, day) in sorted(candidates.items(), key=lambda c: c[1]):
            if day >= self._newest[cid] - self.keep_days * 86400:
                self._add(path, cid, day)
        if not self._files and not self._warned_empty:
            logger.warning("%s: no file matches select=%r yet; waiting for one", self, self.select)
            self._warned_empty = True
        self._first_scan = False

    def _add(self, path, cid, day):
        offset = 0
        resume = self._resume.get(cid)
        if resume is not None:
            if day + 2 * 86400 <= obspy.UTCDateTime(resume):
                return
        elif self._first_scan:
            if self.start == "end":
                offset = _end_of_whole_records(path)
            elif self.start != "begin":
                if day + 2 * 86400 <= self.start:
                    return  # one day of slack: a day file may hold a little of the next
                if self.tracker.next_time(cid) is None:
                    self.tracker.start_at(cid, self.start)
        self._files[path] = _File(path, cid, day, offset)
        if not self._first_scan:
            logger.info("%s: following new file %s", self, path)

    def _forget_old(self):
        for path, entry in list(self._files.items()):
            if entry.day < self._newest[entry.channel_id] - self.keep_days * 86400:
                del self._files[path]

    def _read(self, entry):
        try:
            size = os.path.getsize(entry.path)
        except OSError:
            logger.warning("%s: %s disappeared; no longer following it", self, entry.path)
            entry.bad = True
            return []
        if size < entry.offset:
            logger.warning("%s: %s shrank from %d to %d bytes; reading it again from the "
                           "start (records already handed over are dropped)", self, entry.path,
                           entry.offset, size)
            entry.offset = 0
        if size == entry.offset:
            return []
        with open(entry.path, "rb") as handle:
            handle.seek(entry.offset)
            data = handle.read(min(size - entry.offset, self.max_read))
        try:
            records, used = complete_records(data)
        except ValueError as err:
            logger.error("%s: %s is not miniSEED after byte %d (%s); no longer following it",
                         self, entry.path, entry.offset, err)
            entry.bad = True
            return []
        if not records:
            return []
        entry.offset += used
        self.stats.records += len(records)
        try:
            stream = decode(b"".join(record for _, record in records))
        except ValueError as err:
            logger.error("%s: %s: %s; skipped %d records", self, entry.path, err, len(records))
            return []
        packets = []
        for trace in sorted(stream, key=lambda tr: tr.stats.starttime):
            packets.extend(self._pieces(trace))
        return packets


def _end_of_whole_records(path):
    """Offset just after the last whole record of a file (records of one length assumed,
    checked on the last one; otherwise every header is read)."""
    size = os.path.getsize(path)
    if size == 0:
        return 0
    with open(path, "rb") as handle:
        head = handle.read(4096)
        try:
            reclen = RecordHeader.parse(head).record_length
        except (ValueError, IncompleteRecord):
            return 0
        end = size // reclen * reclen
        if end >= reclen:
            handle.seek(end - reclen)
            try:
                if RecordHeader.parse(handle.read(4096)).record_length == reclen:
                    return end
            except (ValueError, IncompleteRecord):
                pass
        handle.seek(0)
        data = handle.read()
    _, used = complete_records(data)
    return used
