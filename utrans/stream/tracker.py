"""What a live source hands to its consumer: new samples, each exactly once.

Live data arrives in records that may repeat (a server resending after a
reconnect, a duplicated packet), come late (out of order) or leave gaps.
:class:`ChannelTracker` remembers, per channel, the time of the next
expected sample and a bounded list of open gaps, and turns every decoded
record into the pieces that are new: samples already handed over are
dropped (counted as duplicates), samples that fall into an open gap are
handed over flagged ``late``. Every source of :mod:`utrans.stream` delivers
:class:`Packet` objects built this way, so a consumer (a picker's ring
buffers) sees the same thing from a SeedLink server and from an SDS archive.

::

    tracker = ChannelTracker()
    for piece, late in tracker.accept(trace):
        ...
    tracker.state()   # {"XX.S1..HHZ": UTCDateTime of the next expected sample}
"""

from __future__ import annotations

import dataclasses
import logging

import obspy

__all__ = ["ChannelTracker", "Packet", "SourceStats"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Packet:
    """Samples of one channel, new to the consumer.

    Args:
        trace: ``obspy.Trace`` holding only samples not handed over before
            (part of a record when the rest was a duplicate); its stats hold
            the codes, start time and sampling rate (nothing format-specific).
        late: True when the samples fill an earlier gap, i.e. they are older
            than samples already handed over for this channel.
        seq: SeedLink sequence number of the record they came in (None for
            sources without one).
    """

    trace: obspy.Trace
    late: bool = False
    seq: int | None = None

    @property
    def id(self):
        """The channel, ``NET.STA.LOC.CHA``."""
        return self.trace.id


@dataclasses.dataclass
class SourceStats:
    """Counters of a live source.

    Args:
        records: miniSEED records received or read.
        packets: packets handed to the consumer.
        samples: samples handed to the consumer.
        duplicates: records dropped whole (every sample handed over before).
        duplicate_samples: samples dropped as already handed over (whole or
            partial duplicates).
        late: records whose samples (partly) filled an earlier gap.
        gaps: gaps opened (a record started after the next expected sample).
        reconnects: connections made after the first one.
    """

    records: int = 0
    packets: int = 0
    samples: int = 0
    duplicates: int = 0
    duplicate_samples: int = 0
    late: int = 0
    gaps: int = 0
    reconnects: int = 0

    def as_dict(self):
        """The counters as a plain dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class _Channel:
    next_ns: int            # time of the next expected sample
    delta_ns: int | None    # sample interval (None until a record was seen)
    gaps: list              # open gaps [(start_ns, end_ns)], oldest first, all before next_ns


def _ns(time):
    return obspy.UTCDateTime(time).ns


class ChannelTracker:
    """Per channel: the next expected sample time and the open gaps.

    Memory is bounded: one small entry per channel with at most ``max_gaps``
    open gaps (the oldest is forgotten first; samples that would have filled
    it then count as duplicates).

    Args:
        max_gaps: open gaps remembered per channel.
        stats: a :class:`SourceStats` to count into (a new one by default).
    """

    def __init__(self, max_gaps=16, stats=None):
        if max_gaps < 0:
            raise ValueError(f"max_gaps must be >= 0. Received: max_gaps={max_gaps}")
        self.max_gaps = int(max_gaps)
        self.stats = stats if stats is not None else SourceStats()
        self._channels = {}

    def __len__(self):
        return len(self._channels)

    def start_at(self, trace_id, time):
        """Hand over only samples at or after ``time`` for ``trace_id``.

        Args:
            trace_id: ``NET.STA.LOC.CHA``.
            time: anything ``obspy.UTCDateTime`` reads (a resume point from
                :meth:`state`).
        """
        self._channels[trace_id] = _Channel(next_ns=_ns(time), delta_ns=None, gaps=[])

    def state(self):
        """Resume points: ``{trace_id: UTCDateTime of the next expected sample}``."""
        return {tid: obspy.UTCDateTime(ns=ch.next_ns) for tid, ch in self._channels.items()}

    def next_time(self, trace_id):
        """The next expected sample time of a channel (None if never seen)."""
        channel = self._channels.get(trace_id)
        return None if channel is None else obspy.UTCDateTime(ns=channel.next_ns)

    def open_gaps(self, trace_id):
        """The open gaps of a channel as ``[(UTCDateTime, UTCDateTime), ...]``."""
        channel = self._channels.get(trace_id)
        if channel is None:
            return []
        return [(obspy.UTCDateTime(ns=a), obspy.UTCDateTime(ns=b)) for a, b in channel.gaps]

    def gap_count(self):
        """Open gaps over all channels (bounded by ``len(self) * max_gaps``)."""
        return sum(len(ch.gaps) for ch in self._channels.values())

    def accept(self, trace):
        """The new pieces of a decoded record.

        Args:
            trace: ``obspy.Trace`` of one record (or several contiguous ones).

        Returns:
            A list of ``(obspy.Trace, late)`` pieces, in time order; empty when
            every sample was handed over before.
        """
        npts = trace.stats.npts
        rate = trace.stats.sampling_rate
        if npts == 0 or rate <= 0:
            return []
        tid = trace.id
        delta = round(1e9 / rate)
        tol = delta // 2
        start = trace.stats.starttime.ns
        channel = self._channels.get(tid)
        if channel is None:
            self._channels[tid] = _Channel(next_ns=start + npts * delta, delta_ns=delta, gaps=[])
            self.stats.packets += 1
            self.stats.samples += npts
            return [(trace, False)]
        if channel.delta_ns is not None and abs(channel.delta_ns - delta) > 1:
            logger.warning("%s: sampling interval changed from %d ns to %d ns; restarting its "
                           "bookkeeping at %s", tid, channel.delta_ns, delta,
                           trace.stats.starttime)
            self._channels[tid] = _Channel(next_ns=start + npts * delta, delta_ns=delta, gaps=[])
            self.stats.packets += 1
            self.stats.samples += npts
            return [(trace, False)]
        channel.delta_ns = delta

        def index(t_ns):
            # first sample whose time is >= t_ns (within half a sample), clipped to [0, npts]
            i = -((start - t_ns + tol) // delta)
            return min(max(i, 0), npts)

        pieces = []
        split = index(channel.next_ns)
        delivered_old = 0
        if split > 0 and channel.gaps:
            remaining = []
            for gap_start, gap_end in channel.gaps:
                i0, i1 = index(gap_start), min(index(gap_end), split)
                if i0 >= i1:
                    remaining.append((gap_start, gap_end))
                    continue
                pieces.append((i0, i1, True))
                delivered_old += i1 - i0
                first, after = start + i0 * delta, start + i1 * delta
                if first - gap_start > tol:
                    remaining.append((gap_start, first))
                if gap_end - after > tol:
                    remaining.append((after, gap_end))
            channel.gaps = remaining
        if split < npts:
            if start - channel.next_ns > tol:
                self.stats.gaps += 1
                # a late packet may still fill it: the consumer decides when a gap is final
                logger.info("%s: %.3f s missing from %s to %s so far", tid,
                            (start - channel.next_ns) * 1e-9,
                            obspy.UTCDateTime(ns=channel.next_ns), trace.stats.starttime)
                channel.gaps.append((channel.next_ns, start))
                if len(channel.gaps) > self.max_gaps:
                    dropped = channel.gaps.pop(0)
                    logger.info("%s: forgetting the gap from %s to %s (more than %d open)",
                                tid, obspy.UTCDateTime(ns=dropped[0]),
                                obspy.UTCDateTime(ns=dropped[1]), self.max_gaps)
            pieces.append((split, npts, False))
            channel.next_ns = start + npts * delta
        dropped_samples = split - delivered_old
        if dropped_samples:
            self.stats.duplicate_samples += dropped_samples
        if not pieces:
            self.stats.duplicates += 1
            logger.info("%s: duplicate record %s - %s dropped (all %d samples handed over "
                        "before)", tid, trace.stats.starttime, trace.stats.endtime, npts)
            return []
        if delivered_old:
            self.stats.late += 1
            logger.info("%s: late record %s - %s fills %d samples of an earlier gap", tid,
                        trace.stats.starttime, trace.stats.endtime, delivered_old)
        pieces.sort()
        self.stats.packets += len(pieces)
        self.stats.samples += sum(i1 - i0 for i0, i1, _ in pieces)
        return [(_piece(trace, i0, i1), late) for i0, i1, late in pieces]


def _piece(trace, i0, i1):
    if i0 == 0 and i1 == trace.stats.npts:
        return trace
    stats = trace.stats.copy()
    stats.starttime = trace.stats.starttime + i0 * trace.stats.delta
    stats.npts = i1 - i0
    piece = obspy.Trace(data=trace.data[i0:i1])
    piece.stats = stats
    return piece
