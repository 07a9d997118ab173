"""A channel's live samples put in order and brought to the model's rate; ring buffers.

* :class:`ChannelInput`: the samples of one channel as they arrive
  (:class:`utrans.stream.tracker.Packet` pieces: new samples only, possibly
  late or out of order). Pieces that leave a gap wait, so that a late packet
  can still fill it; a gap is declared once ``max_late_s`` seconds of data
  (or of wall-clock time) have followed it. A gap of at most
  ``fill_gap_s`` is filled by linear interpolation, by the rule annotate
  applies to the traces of a record (:func:`utrans.processing.streams.join_traces`);
  a longer one ends the channel's *run*. Each run is resampled to the
  model's rate by :class:`RunResampler` and handed over as events:
  ``("run", start_time)``, ``("data", samples, arrival)``, ``("end",)``.
* :class:`RunResampler`: the package's one resampler
  (:func:`utrans.processing.resample.resample`, scipy's ``resample_poly``)
  applied to a record that grows: each output sample is computed once its
  filter's input samples are all in, so the output equals that of the whole
  record resampled at once (annotate's), sample for sample.
* :class:`RingBuffer`: the last samples of a segment at the model's rate,
  indexed by segment sample, in fixed memory.
"""

from __future__ import annotations

import bisect
import logging
import math
import warnings

import numpy as np
import obspy

from utrans.core.errors import AnnotateWarning
from utrans.processing.resample import rate_fraction, resample
from utrans.processing.streams import join_traces

__all__ = ["ChannelInput", "RingBuffer", "RunResampler"]

logger = logging.getLogger(__name__)


class RingBuffer:
    """The last ``capacity`` samples of ``channels`` series, indexed from the segment's start.

    Args:
        channels: number of series (model components).
        capacity: samples held.
    """

    def __init__(self, channels, capacity):
        self.capacity = int(capacity)
        self.data = np.zeros((int(channels), self.capacity), dtype=np.float64)
        self.end = 0  # samples written so far (the next sample's index)

    @property
    def start(self):
        """The oldest sample still held."""
        return max(0, self.end - self.capacity)

    def write(self, block):
        """Append ``(channels, k)`` samples (only the last ``capacity`` are kept)."""
        k = block.shape[1]
        if k > self.capacity:
            block = block[:, -self.capacity:]
            self.end += k - self.capacity
            k = self.capacity
        at = self.end % self.capacity
        first = min(k, self.capacity - at)
        self.data[:, at:at + first] = block[:, :first]
        self.data[:, :k - first] = block[:, first:]
        self.end += k

    def read(self, start, stop):
        """Samples ``[start, stop)`` as ``(stop - start, channels)`` (a copy).

        Raises:
            IndexError: the range is not (or no longer) held.
        """
        if start < self.start or stop > self.end or stop < start:
            raise IndexError(f"samples [{start}, {stop}) are not held "
                             f"(the ring holds [{self.start}, {self.end}))")
        idx = np.arange(start, stop) % self.capacity
        return self.data[:, idx].T.copy()


class RunResampler:
    """Resample a growing record exactly as the whole record would be (module doc).

    Args:
        from_rate: the record's rate in Hz.
        to_rate: the model's rate in Hz.
    """

    def __init__(self, from_rate, to_rate):
        self.up, self.down = rate_fraction(from_rate, to_rate)
        self.from_rate, self.to_rate = float(from_rate), float(to_rate)
        self.identity = self.up == self.down
        # input samples on either side of an output sample that its filter reads
        self.margin = math.ceil(10 * max(self.up, self.down) / self.up) + 1
        self._held = np.zeros(0)   # input samples from index _base
        self._base = 0
        self._received = 0         # input samples so far
        self._produced = 0         # output samples so far

    def push(self, samples):
        """Output samples that the new input completes (float64, possibly none)."""
        x = np.asarray(samples, dtype=np.float64)
        if self.identity:
            self._produced += len(x)
            return x
        self._held = np.concatenate([self._held, x])
        self._received += len(x)
        return self._compute(final=False)

    def finish(self):
        """The last output samples: the record ends here (zero padding after it, as offline)."""
        if self.identity:
            return np.zeros(0)
        return self._compute(final=True)

    def _compute(self, final):
        up, down = self.up, self.down
        total = -(-self._received * up // down)  # outputs of the whole record so far
        if final:
            stop = total
        else:  # outputs whose filter reads only received samples
            stop = min(total, max(0, ((self._received - 1 - self.margin) * up) // down + 1))
        if stop <= self._produced:
            return np.zeros(0)
        # start at an input sample that is a multiple of `down`, far enough back
        first_in = max(0, (self._produced * down) // up - self.margin)
        first_in -= first_in % down
        first_in = max(first_in, self._base)
        chunk = resample(self._held[first_in - self._base:], self.from_rate, self.to_rate)
        offset = first_in * up // down
        out = chunk[self._produced - offset:stop - offset]
        self._produced = stop
        # forget inputs that no later output reads
        keep = max(0, (self._produced * down) // up - self.margin - down)
        keep -= keep % down
        if keep > self._base:
            self._held = self._held[keep - self._base:]
            self._base = keep
        return out


class ChannelInput:
    """One channel's samples in time order, at the model's rate, run by run (module doc).

    Args:
        channel_id: ``NET.STA.LOC.CHA``.
        sampling_rate: the channel's rate in Hz.
        model_rate: the model's rate in Hz.
        max_late_s: how long a gap waits for late packets, in seconds of data
            after it or of wall-clock time.
        fill_gap_s: gaps up to this long are interpolated (annotate's rule:
            two samples at the model's rate).
    """

    def __init__(self, channel_id, sampling_rate, model_rate, max_late_s=30.0, fill_gap_s=0.0):
        self.channel_id = channel_id
        self.rate = float(sampling_rate)
        self.delta_ns = round(1e9 / self.rate)
        self.model_rate = float(model_rate)
        self.max_late_s = float(max_late_s)
        self.fill_gap_s = float(fill_gap_s)
        self.next_ns = None       # time of the next sample of the current run
        self.last_value = 0.0
        self.pending = []         # [(start_ns, data, arrival)] after a gap, in time order
        self.events = []          # handed over by take()
        self.run_start_ns = None  # first sample of the current run
        self.resampler = None
        self.last_arrival = None
        self.dropped = 0          # samples too late to place

    def push(self, trace, arrival):
        """Add a piece of new samples (a :class:`~utrans.stream.tracker.Packet` trace).

        Args:
            trace: ``obspy.Trace`` of this channel.
            arrival: wall-clock time it arrived (seconds since the epoch).
        """
        self.last_arrival = arrival
        start = trace.stats.starttime.ns
        data = np.asarray(trace.data, dtype=np.float64)
        if not len(data):
            return
        if self.next_ns is None:
            self._start_run(start)
            self._append(data, arrival)
        else:
            bisect.insort(self.pending, (start, len(self.pending), data, arrival),
                          key=lambda p: (p[0], p[1]))
        self.poll(arrival)

    def poll(self, now):
        """Place waiting pieces that now follow on, and declare the gaps that waited enough."""
        while self.pending:
            start, _, data, arrival = self.pending[0]
            ahead = (start - self.next_ns) / self.delta_ns
            if ahead < -0.5:  # older than samples already placed: drop what overlaps
                skip = int(round(-ahead))
                self.pending.pop(0)
                if skip >= len(data):
                    self.dropped += len(data)
                    logger.warning("%s: %d samples from %s arrived after their gap was closed; "
                                   "dropped", self.channel_id, len(data),
                                   obspy.UTCDateTime(ns=start))
                    continue
                self.dropped += skip
                self.pending.insert(0, (start + skip * self.delta_ns, -1, data[skip:], arrival))
                continue
            if ahead <= 0.5:
                self.pending.pop(0)
                self._append(data, arrival)
                continue
            end_ns = max(s + len(d) * self.delta_ns for s, _, d, _ in self.pending)
            waited_data = (end_ns - self.next_ns) * 1e-9
            waited_wall = now - min(a for _, _, _, a in self.pending)
            if waited_data < self.max_late_s and waited_wall < self.max_late_s:
                return
            self.pending.pop(0)
            self._gap(start, data, arrival)

    def take(self):
        """The events since the last call (module doc)."""
        events, self.events = self.events, []
        return events

    def held_samples(self):
        """Samples waiting behind a gap (bounded by ``max_late_s`` of data)."""
        return sum(len(d) for _, _, d, _ in self.pending)

    def _start_run(self, start_ns):
        self.run_start_ns = start_ns
        self.next_ns = start_ns
        self.resampler = RunResampler(self.rate, self.model_rate)
        self.events.append(("run", obspy.UTCDateTime(ns=start_ns)))

    def _append(self, data, arrival):
        self.next_ns += len(data) * self.delta_ns
        self.last_value = float(data[-1])
        out = self.resampler.push(data)
        if len(out):
            self.events.append(("data", out, arrival))

    def _gap(self, start, data, arrival):
        """The gap before a piece is final: fill it (short) or end the run there."""
        head = obspy.Trace(np.array([self.last_value]), header={
            "sampling_rate": self.rate, "starttime": obspy.UTCDateTime(ns=self.next_ns
                                                                       - self.delta_ns)})
        piece = obspy.Trace(data, header={"sampling_rate": self.rate,
                                          "starttime": obspy.UTCDateTime(ns=start)})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AnnotateWarning)
            joined = join_traces([head, piece], self.fill_gap_s)
        if len(joined) == 1:  # a short gap, interpolated as annotate does
            for warning in caught:
                logger.info("%s: %s", self.channel_id, warning.message)
            self._append(joined[0][0].data[1:], arrival)
            return
        logger.warning("%s: gap of %.3f s from %s to %s", self.channel_id,
                       (start - self.next_ns) * 1e-9, obspy.UTCDateTime(ns=self.next_ns),
                       obspy.UTCDateTime(ns=start))
        self.end_run()
        self._start_run(start)
        self._append(data, arrival)

    def end_run(self):
        """End the current run here (its resampled tail is handed over)."""
        if self.resampler is None:
            return
        tail = self.resampler.finish()
        if len(tail):
            self.events.append(("data", tail, self.last_arrival))
        self.events.append(("end",))
        self.resampler = None
