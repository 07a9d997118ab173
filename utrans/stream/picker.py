"""The streaming picker: live samples in, the offline picks out, each once, as soon as settled.

::

    from utrans.stream import StreamPicker

    picker = StreamPicker("seist_m_dpk_diting", on_pick=print)
    for packet in source.packets():          # utrans.stream.sources
        picker.feed(packet.trace)
        picker.process()                     # runs the windows that are ready
    picker.close()                           # the end of the stream: the last picks

Everything that decides a pick is annotate's (:class:`utrans.annotate.Annotator`
holds the model, its runner and pipeline, the window plan and thresholds):

* **Per channel** (:class:`~utrans.stream.buffers.ChannelInput`): samples put
  in time order, late packets waited for, short gaps interpolated and
  longer ones ending the channel's run, each run resampled to the model's
  rate by the one resampler as the whole record would be.
* **Per instrument** (``NET.STA.LOC`` and band/instrument code, as annotate
  groups traces): the components are mapped onto the model's
  (:func:`utrans.processing.streams.map_components`) and the samples that all
  components hold enter a *segment* (a gap-free span, as in annotate) kept
  in a :class:`~utrans.stream.buffers.RingBuffer` at the model's rate.
* **Windows** lie on the absolute grid of annotate's plan
  (:class:`utrans.processing.windows.WindowPlan`, ``grid="absolute"``): a
  window at the segment's first sample, then every ``step`` samples counted
  from 1970; a window is cut as soon as its last sample is in.
* **Batching.** :meth:`StreamPicker.process` runs the windows that became
  ready on every station in shared forward passes
  (:func:`utrans.annotate.batching.window_curves`, batch sizes rounded up to
  a power of two so the compiled model is reused).
* **Stacking** as annotate's (:class:`utrans.processing.stacking.Accumulator`,
  blinding and all), released up to the next window's first kept sample.
* **Decoding** by the model's rule, a pick given once no later sample can
  change it (:class:`~utrans.stream.decoding.FinalPicks`): never withdrawn,
  never twice.

Streamed picks are therefore annotate's picks of the whole record, except
within one window (and the minimum pick distance) of a segment's end (a gap,
a station gone silent, the end of the stream), where annotate adds a window
ending at the last sample over samples the stream has already settled (the
stream adds it only over the samples not yet settled: settling them later
would delay every pick by a window step).

Each pick is a row of annotate's ``picks.csv`` columns plus ``latency_s``:
the wall-clock time from the arrival of the last sample the pick needed to
its emission. With a :class:`utrans.annotate.Characterizer` the P picks wait
until the windows of its models after the P are complete and carry their
estimates (the characterizer is applied to the ring buffer's samples).

**Restart.** :meth:`StreamPicker.state` says, per channel, from which time
the data must be fed again to rebuild every unsettled pick (one window
before the first sample such a pick may need) and, per instrument and
phase, up to where picks were settled; :meth:`StreamPicker.restore` takes
it back: the re-fed data rebuild the same windows on the absolute grid, and
picks settled before are not given again.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import time
import warnings

import numpy as np
import obspy
import pandas as pd

from utrans.annotate.batching import window_curves
from utrans.annotate.core import Annotator
from utrans.annotate.picks import PICK_COLUMNS, pick_row
from utrans.core.errors import AnnotateWarning, StationError
from utrans.processing.resample import rate_fraction
from utrans.processing.stacking import Accumulator
from utrans.processing.streams import MISSING_POLICIES, map_components
from utrans.stream.buffers import ChannelInput, RingBuffer
from utrans.stream.decoding import FinalPicks
from utrans.stream.mseed import decode

__all__ = ["LATENCY_COLUMN", "StreamPicker"]

logger = logging.getLogger(__name__)

#: The column added to annotate's pick columns.
LATENCY_COLUMN = "latency_s"
_STATE_VERSION = 1
# A gap of at most this many samples at the model's rate is interpolated (annotate's rule).
_FILLED_GAP = 2


@dataclasses.dataclass
class _Job:
    """One window to run: ``kind`` is "grid", "end" (ends at the segment's end) or "short"."""

    segment: object
    offset: int
    window: np.ndarray
    valid: int
    ready: float
    kind: str = "grid"


class _Run:
    """Model-rate samples of one component's run that no segment has taken yet."""

    __slots__ = ("blocks", "ended", "start")

    def __init__(self, start):
        self.start = start          # group-grid index of the first untaken sample
        self.blocks = collections.deque()  # [samples, arrival]
        self.ended = False

    @property
    def end(self):
        return self.start + sum(len(b[0]) for b in self.blocks)

    def drop_before(self, index):
        while self.blocks and self.start < index:
            data = self.blocks[0][0]
            k = min(len(data), index - self.start)
            if k == len(data):
                self.blocks.popleft()
            else:
                self.blocks[0][0] = data[k:]
            self.start += k
        if not self.blocks and self.start < index and not self.ended:
            self.start = index  # nothing held: the run continues from here


class _Segment:
    """A gap-free span of one instrument being picked."""

    def __init__(self, picker, group, index, present):
        p = picker
        self.group = group
        self.index = index                       # group-grid index of sample 0
        self.start = group.origin + index / p.rate
        self.grid_index = int(round(self.start.timestamp * p.rate))
        self.present = present                   # model components recorded
        self.length = 0                          # samples taken in
        self.ring = RingBuffer(len(p.order), p.ring_capacity)
        self.acc = Accumulator(len(p.labels), 2 * p.plan.in_samples, p.stacking)
        self.decoder = FinalPicks(p.pipeline, p.thresholds, p.min_peak_distance_s,
                                  p.plan.in_samples)
        self.phase = (-self.grid_index) % p.plan.step
        self.next_offset = 0
        self.scheduled = None                    # the last window start scheduled
        self.last_offset = None
        self.last_curve = None
        self.outstanding = 0
        self.closing = False
        self.marks = collections.deque()         # (end index, wall time all components held it)

    def following(self, offset, step):
        """The window start after ``offset`` on the absolute grid."""
        return self.phase if offset == 0 and self.phase > 0 else offset + step

    def available(self, index):
        """Wall-clock time at which every component held segment sample ``index``."""
        for end, when in self.marks:
            if index < end:
                return when
        return self.marks[-1][1]


class _Group:
    """One instrument: its channels, untaken samples per component, the open segment."""

    def __init__(self, gid, origin):
        self.gid = gid
        net, sta, loc, self.instrument = gid.split(".")
        self.station = f"{net}.{sta}.{loc}"
        self.channels = {}           # channel id -> ChannelInput
        self.component = {}          # channel id -> model component
        self.runs = collections.defaultdict(collections.deque)  # component -> [_Run]
        self.origin = origin
        self.segment = None
        self.refused = None
        self.last_arrival = None
        self.silent = False
        self.first_arrival = None
        self.ignored = set()         # channels of no model component
        self.done = {}               # phase -> absolute sample: picks settled up to there
        self.characterize = []       # (row, segment, peak, needed) waiting for a window


class StreamPicker:
    """A phase picker on live data: ObsPy Traces in, final picks out (module doc).

    Args:
        model: preset name, ``.keras`` path, ``keras.Model`` or runner (as
            :class:`utrans.annotate.Annotator`; a registered name only with
            ``allow_random=True``).
        on_pick: called with each pick (a dict of annotate's pick columns,
            the characterisation columns, and ``latency_s``).
        batch_size: most windows per forward pass.
        overlap: annotate's window overlap (default: the model's).
        blinding: annotate's blinding (default: the model's).
        stacking: annotate's stacking (default: the model's).
        thresholds: ``{label: threshold}`` overriding the model's.
        min_peak_distance_s: overrides the model's minimum pick distance.
        missing_components: ``"zeros"``, ``"copy"`` or ``"skip"`` (annotate's).
        characterizer: an optional :class:`utrans.annotate.Characterizer`.
        name: display name of the model (pick rows, logs).
        fast: use the model's inference-only graph.
        allow_random: accept a registered architecture without weights.
        max_late_s: how long a gap waits for late packets (seconds of data
            after it, or of wall-clock time).
        settle_s: seconds of data an instrument waits for its other
            components before it starts without them.
        silence_s: an instrument without data for this long is reported
            silent (once; again when it resumes).
        min_length_s: shorter gap-free spans are not picked (annotate's).
        clock: wall-clock function (seconds since the epoch).
    """

    def __init__(self, model, *, on_pick=None, batch_size=64, overlap=None, blinding=None,
                 stacking=None, thresholds=None, min_peak_distance_s=None,
                 missing_components="zeros", characterizer=None, name=None, fast=True,
                 allow_random=False, max_late_s=30.0, settle_s=10.0, silence_s=120.0,
                 min_length_s=1.0, clock=time.time):
        if missing_components not in MISSING_POLICIES:
            raise ValueError(f"missing_components must be one of {MISSING_POLICIES}. "
                             f"Received: missing_components={missing_components!r}")
        for key, value in (("max_late_s", max_late_s), ("settle_s", settle_s),
                           ("silence_s", silence_s)):
            if not value > 0:
                raise ValueError(f"{key} must be > 0 seconds. Received: {key}={value}")
        self.annotator = Annotator(model, batch_size=batch_size, overlap=overlap,
                                   blinding=blinding, stacking=stacking,
                                   missing_components=missing_components, name=name, fast=fast,
                                   allow_random=allow_random, window_grid="absolute")
        ann = self.annotator
        self.name = ann.name
        self.pipeline = ann.pipeline
        self.conventions = ann.conventions
        self.plan = ann.plan
        self.stacking = ann.stacking
        self.labels = tuple(self.conventions.labels)
        self.order = self.conventions.component_order
        self.rate = float(self.conventions.sampling_rate)
        self.thresholds = ann.thresholds(thresholds)
        self.min_peak_distance_s = min_peak_distance_s
        self.pipeline.min_distance(min_peak_distance_s)  # checked now
        self.phases = tuple(p for p in self.pipeline.phases if p in self.thresholds)
        self.missing_components = missing_components
        self.characterizer = characterizer
        self.on_pick = on_pick
        self.batch_size = ann.batch_size
        # batch shapes the model is compiled for (each costs one trace): 1, 4, 16, ... up to
        # batch_size; a batch runs in the smallest that holds it
        self.batch_sizes = sorted({min(4 ** k, self.batch_size)
                                   for k in range(int(math.log(self.batch_size, 4)) + 2)})
        self.max_late_s = float(max_late_s)
        self.settle_s = float(settle_s)
        self.silence_s = float(silence_s)
        self.min_length = max(2, int(round(min_length_s * self.rate)))
        self.clock = clock
        w = self.plan.in_samples
        self._char_before, self._char_after = self._characterization_span()
        # the samples a segment keeps: a window and a step to cut windows from, and the
        # record a characterisation window needs around a P settled up to a window late
        self.ring_capacity = 2 * w + self.plan.step + self._char_before + self._char_after
        self.groups = {}
        self._fresh = set()    # groups fed since the last process()
        self._scanned = -math.inf  # when process() last looked at every group (clocks)
        self.jobs = collections.deque()
        self.closing = []
        self._runners = {}
        # picks given (group -> {(phase, absolute sample)}), as far back as a restart re-feeds
        self._emitted = collections.defaultdict(dict)
        self._restored = {}
        self._closed = False
        self.counts = collections.Counter()
        self.seconds = collections.Counter()  # wall time spent: "model", "samples", "picks"

    # ------------------------------------------------------------------ input
    def feed(self, trace, arrival=None):
        """Hand over new samples of one channel.

        Args:
            trace: an ``obspy.Trace`` (a :class:`~utrans.stream.tracker.Packet`
                is taken as its trace); samples may come late or out of
                order, but each sample once (the sources of
                :mod:`utrans.stream` drop repeats).
            arrival: wall-clock time the samples arrived (default: now).
        """
        trace = getattr(trace, "trace", trace)
        arrival = self.clock() if arrival is None else float(arrival)
        stats = trace.stats
        if stats.npts == 0:
            return
        gid = f"{stats.network}.{stats.station}.{stats.location}.{stats.channel[:-1]}"
        group = self.groups.get(gid)
        if group is None:
            group = self._new_group(gid)
        if group.refused is not None:
            self.counts["refused_samples"] += stats.npts
            return
        if group.silent:
            logger.warning("%s: data again after %.0f s of silence", gid,
                           arrival - group.last_arrival)
            group.silent = False
        group.last_arrival = arrival
        if group.first_arrival is None:
            group.first_arrival = arrival
        channel = group.channels.get(trace.id)
        if channel is None:
            if trace.id in group.ignored:
                return
            channel = self._new_channel(group, trace)
            if channel is None:
                return
        if abs(stats.sampling_rate - channel.rate) > 1e-6 * channel.rate:
            self._refuse(group, f"{trace.id} changed its sampling rate from {channel.rate:g} "
                                f"to {stats.sampling_rate:g} Hz")
            return
        channel.push(trace, arrival)
        self._fresh.add(gid)
        self.counts["samples"] += stats.npts

    def feed_records(self, data, arrival=None):
        """Hand over miniSEED records (bytes); each trace as :meth:`feed`."""
        for trace in decode(data):
            self.feed(trace, arrival)

    def _new_group(self, gid):
        origin = self._restored.get(gid, {}).get("origin")
        group = _Group(gid, None if origin is None else obspy.UTCDateTime(origin))
        done = self._restored.get(gid, {}).get("done", {})
        group.done = {phase: int(v) for phase, v in done.items()}
        self.groups[gid] = group
        logger.info("%s: new instrument", gid)
        return group

    def _new_channel(self, group, trace):
        rate = float(trace.stats.sampling_rate)
        others = {ch.rate for ch in group.channels.values()}
        if others and rate not in others:
            self._refuse(group, f"mixed sampling rates within one instrument ({trace.id} "
                                f"{rate:g} Hz, others {', '.join(f'{r:g}' for r in others)} Hz)")
            return None
        try:
            up, down = rate_fraction(rate, self.rate)
        except ValueError as err:
            self._refuse(group, str(err))
            return None
        if abs(rate * up / down - self.rate) > 1e-9 * self.rate:
            self._refuse(group, f"{trace.id}: {rate:g} Hz cannot be resampled exactly to the "
                                f"model's {self.rate:g} Hz")
            return None
        codes = {cid[-1:].upper() for cid in group.channels} | {trace.stats.channel[-1:].upper()}
        try:
            mapping, ignored = map_components(codes, self.order)
        except StationError as err:
            self._refuse(group, str(err))
            return None
        code = trace.stats.channel[-1:].upper()
        if code not in mapping:
            if code in ignored:
                logger.warning("%s: component %s not used (model components %s)", trace.id,
                               code, self.order)
            else:
                logger.info("%s: component %s not used by a %s model", trace.id, code,
                            self.order)
            group.ignored.add(trace.id)
            return None
        if any(group.component.get(cid) == mapping[code] for cid in group.channels):
            self._refuse(group, f"two channels give component {mapping[code]} ({trace.id})")
            return None
        if group.origin is None:
            group.origin = trace.stats.starttime
        channel = ChannelInput(trace.id, rate, self.rate, self.max_late_s,
                               fill_gap_s=_FILLED_GAP / self.rate)
        group.channels[trace.id] = channel
        group.component[trace.id] = mapping[code]
        return channel

    def _check_usable(self, group, settled):
        """An instrument that has sent only channels of no model component is refused."""
        if settled and group.ignored and not group.channels and group.refused is None:
            channels = ", ".join(sorted(cid.rsplit(".", 1)[1] for cid in group.ignored))
            self._refuse(group, f"no usable component for a {self.order} model. "
                                f"Received: channels={channels}")

    def _refuse(self, group, reason):
        if group.refused is None:
            logger.error("%s: not picked: %s (the other stations go on)", group.gid, reason)
            self.counts["refused_groups"] += 1
        group.refused = reason
        group.channels.clear()
        group.runs.clear()
        group.segment = None

    # ------------------------------------------------------------------ the work
    def process(self):
        """Move the new samples into segments, run every ready window, settle picks.

        Returns:
            The picks emitted (list of dicts), also passed to ``on_pick``.
        """
        emitted = []
        now = self.clock()
        started = time.perf_counter()
        # groups with new samples; every group once a second (gaps and silences by the clock)
        if now - self._scanned >= 1.0:
            due, self._scanned = list(self.groups), now
        else:
            due = sorted(self._fresh)
        self._fresh = set()
        for group in (self.groups[gid] for gid in due):
            if group.refused is not None:
                continue
            self._check_usable(group, now - group.first_arrival >= self.settle_s)
            for channel in group.channels.values():
                channel.poll(now)
            self._advance(group)
            if (group.last_arrival is not None and not group.silent
                    and now - group.last_arrival > self.silence_s):
                group.silent = True
                logger.warning("%s: no data for %.0f s", group.gid, now - group.last_arrival)
        self.seconds["samples"] += time.perf_counter() - started
        while self.jobs:
            n = min(len(self.jobs), self.batch_size)
            emitted += self._run([self.jobs.popleft() for _ in range(n)])
        for segment in [s for s in self.closing if s.outstanding == 0]:
            self.closing.remove(segment)
            emitted += self._finish(segment)
        emitted += self._characterize(final=False)
        return emitted

    def close(self):
        """The end of the stream: every run ends here, every pick is settled.

        Returns:
            The picks emitted.
        """
        for group in self.groups.values():
            for channel in group.channels.values():
                channel.poll(math.inf)
                channel.end_run()
            self._check_usable(group, True)
            if group.refused is None:
                self._advance(group, force=True)
        emitted = self.process()
        for group in self.groups.values():
            if group.segment is not None:
                self._close(group.segment)
        emitted += self.process()
        emitted += self._characterize(final=True)
        self._closed = True
        return emitted

    # ---- samples into segments

    def _ingest(self, group):
        for cid, channel in group.channels.items():
            comp = group.component[cid]
            for event in channel.take():
                if event[0] == "run":
                    index = int(round((event[1] - group.origin) * self.rate))
                    group.runs[comp].append(_Run(index))
                elif event[0] == "data":
                    group.runs[comp][-1].blocks.append([event[1], event[2]])
                else:
                    group.runs[comp][-1].ended = True

    def _advance(self, group, force=False):
        self._ingest(group)
        while True:
            if group.segment is None and not self._open(group, force):
                return
            if not self._take(group, group.segment):
                return

    def _open(self, group, force=False):
        """Start a segment where the components with data all hold samples; False: wait.

        Without all the model's components, an instrument waits until it has
        ``settle_s`` of data and has been sending for ``settle_s`` (``force``: not at all).
        """
        for runs in group.runs.values():  # forget runs that ended with nothing left
            while runs and runs[0].ended and not runs[0].blocks:
                runs.popleft()
        heads = {c: runs[0] for c, runs in group.runs.items() if runs and runs[0].blocks}
        if not heads:
            return False
        start = max(r.start for r in heads.values())
        for run in heads.values():
            run.drop_before(start)
        have = {c for c, r in heads.items() if r.blocks}
        latest = max(r.end for r in heads.values())
        waited = (latest - start >= self.settle_s * self.rate
                   and self.clock() - group.first_arrival >= self.settle_s)
        if not have or not (have >= set(self.order) or waited or force):
            return False  # the other components may still come
        if self.missing_components == "skip" and not have >= set(self.order):
            for run in heads.values():  # keep at most settle_s of data while waiting
                run.drop_before(run.end - int(self.settle_s * self.rate))
            return False
        present = "".join(c for c in self.order if c in have)
        missing = "".join(c for c in self.order if c not in have)
        when = group.origin + start / self.rate
        if missing:
            how = "zeros" if self.missing_components == "zeros" else "copies"
            logger.warning("%s: component(s) %s missing from %s; fed as %s", group.gid, missing,
                           when, how)
        group.segment = _Segment(self, group, start, present)
        logger.info("%s: segment from %s (%s)", group.gid, when, present)
        return True

    def _heads(self, group, seg, at):
        """The runs that continue the segment at ``at``; None: wait; False: the segment ends."""
        heads = {}
        for comp in seg.present:
            runs = group.runs[comp]
            if not runs:
                return None
            run = runs[0]
            if run.start > at:
                return False  # the component starts again after a gap
            if not run.blocks:
                return False if run.ended or len(runs) > 1 else None
            heads[comp] = run
        return heads

    def _stalled(self, group, seg):
        """Whether a component of the segment has sent nothing for ``max_late_s`` while others did."""
        now = self.clock()
        quiet = [cid for cid, comp in group.component.items() if comp in seg.present
                 and not any(r.blocks for r in group.runs[comp])
                 and now - (group.channels[cid].last_arrival or now) > self.max_late_s]
        if quiet and any(r.blocks for c in seg.present for r in group.runs[c]):
            logger.warning("%s: %s sent nothing for %.0f s while the other components did; "
                           "segment ended", group.gid, ", ".join(quiet), self.max_late_s)
            return True
        return False

    def _take(self, group, seg):
        """Move the samples every component holds into the segment; False when none moved."""
        at = seg.index + seg.length
        moved = False
        while True:
            heads = self._heads(group, seg, at)
            if heads is None:
                if self._stalled(group, seg):
                    self._close(seg)
                return moved
            if heads is False:
                self._close(seg)
                return moved
            k = min(self.plan.step, *(len(r.blocks[0][0]) for r in heads.values()))
            block = np.zeros((len(self.order), k))
            ready = 0.0
            for comp, run in heads.items():
                data, arrival = run.blocks[0]
                block[self.order.index(comp)] = data[:k]
                ready = max(ready, arrival)
                if k == len(data):
                    run.blocks.popleft()
                else:
                    run.blocks[0][0] = data[k:]
                run.start += k
            if self.missing_components == "copy" and len(seg.present) < len(self.order):
                source = "Z" if "Z" in seg.present else seg.present[0]
                for comp in self.order:
                    if comp not in seg.present:
                        block[self.order.index(comp)] = block[self.order.index(source)]
            for comp, runs in group.runs.items():  # components not picked keep pace
                if comp not in seg.present and runs:
                    runs[0].drop_before(at + k)
            seg.ring.write(block)
            seg.length += k
            at += k
            seg.marks.append((seg.length, ready))
            while seg.marks and seg.marks[0][0] <= seg.ring.start:
                seg.marks.popleft()
            self._schedule(seg)
            moved = True

    def _schedule(self, seg):
        w = self.plan.in_samples
        while seg.next_offset + w <= seg.length:
            o = seg.next_offset
            self._queue(_Job(seg, o, seg.ring.read(o, o + w), w, seg.available(o + w - 1)))
            seg.scheduled = o
            seg.next_offset = seg.following(o, self.plan.step)

    def _queue(self, job):
        job.segment.outstanding += 1
        self.jobs.append(job)

    def _close(self, seg):
        """The segment ends at its last sample taken: the windows of its end (annotate's plan)."""
        group = seg.group
        if group.segment is seg:
            group.segment = None
        seg.closing = True
        length, w = seg.length, self.plan.in_samples
        if length < self.min_length:
            if length:
                logger.info("%s: span of %d samples at %s not picked (shorter than %d)",
                            group.gid, length, seg.start, self.min_length)
            seg.length = 0
        elif seg.scheduled is None:  # shorter than a window: one window, zero padded
            self._queue(_Job(seg, 0, self._padded(seg, 0, length), length,
                             seg.available(length - 1), "short"))
        elif seg.scheduled + w < length:  # a window ending at the last sample
            self._queue(_Job(seg, length - w, seg.ring.read(length - w, length), w,
                             seg.available(length - 1), "end"))
        self.closing.append(seg)

    def _padded(self, seg, start, stop):
        window = np.zeros((self.plan.in_samples, len(self.order)))
        window[:stop - start] = seg.ring.read(start, stop)
        return window

    # ---- windows through the model

    def _runner(self, n):
        size = next(s for s in self.batch_sizes if s >= n)
        if size not in self._runners:
            self._runners[size] = self.annotator.runner.resized(size)
        return self._runners[size]

    def warm_up(self):
        """Compile the model for every batch shape it will run (:attr:`batch_sizes`) now.

        The first call of a shape traces the model (seconds for a large one), which would
        otherwise delay the first picks that need it.

        Returns:
            Seconds spent.
        """
        started = time.perf_counter()
        w, channels = self.plan.in_samples, len(self.order)
        for size in self.batch_sizes:
            window_curves(self._runner(size), self.pipeline, np.zeros((size, w, channels)))
        return time.perf_counter() - started

    def _run(self, jobs):
        started = time.perf_counter()
        windows = np.stack([job.window for job in jobs])
        valid = np.array([[0, job.valid] for job in jobs], dtype=np.int64)
        curves = window_curves(self._runner(len(jobs)), self.pipeline, windows, valid)
        self.counts["windows"] += len(jobs)
        self.counts["batches"] += 1
        middle = time.perf_counter()
        self.seconds["model"] += middle - started
        emitted = []
        for job, curve in zip(jobs, curves):
            emitted += self._stack(job, curve)
        self.seconds["picks"] += time.perf_counter() - middle
        return emitted

    def _stack(self, job, curve):
        """Stack one window's kept prediction; settle the picks it makes final."""
        seg, o = job.segment, job.offset
        seg.outstanding -= 1
        if seg.length == 0:
            return []
        acc = seg.acc
        if job.kind == "grid":  # its end may still turn out to be the segment's (_finish)
            lo, hi = self.plan.kept(o, math.inf)
            seg.last_offset, seg.last_curve = o, curve
        else:
            lo, hi = self.plan.kept(o, seg.length)
        lo = max(lo, acc.origin - o)  # an end window over samples already settled: the rest
        if hi > lo:
            acc.add(o + lo, curve[lo:hi].T)
        seg.decoder.add_window(o)
        if job.kind != "grid":
            return []
        # no later window reaches before the next one's first kept sample
        upto = min(seg.following(o, self.plan.step) + self.plan.blinding[0], acc.reached)
        if upto <= acc.origin:
            return []
        return self._settle(seg, seg.decoder.feed(acc.release(upto)), job.ready)

    def _finish(self, seg):
        """The segment's last samples: its final window's tail, every pick left."""
        if seg.length == 0:
            return []
        acc, w = seg.acc, self.plan.in_samples
        if seg.last_offset is not None and seg.last_offset + w == seg.length:
            lo = max(w - self.plan.blinding[1], acc.origin - seg.last_offset)
            if lo < w:  # the last window ends at the segment's end: its edge is kept
                acc.add(seg.last_offset + lo, seg.last_curve[lo:w].T)
        picks = []
        ready = seg.available(seg.length - 1)
        if acc.reached > acc.origin:
            picks += seg.decoder.feed(acc.release(acc.reached))
        picks += seg.decoder.close()
        seg.last_curve = None
        return self._settle(seg, picks, ready)

    # ---- picks

    def _settle(self, seg, picks, ready):
        group = seg.group
        out = []
        for fp in picks:
            index = seg.grid_index + fp.peak
            if index <= group.done.get(fp.phase, -1):
                continue  # settled before a restart
            if (fp.phase, index) in self._emitted[group.gid]:
                continue
            self._remember(group.gid, fp.phase, index)
            row = pick_row(group.station, group.instrument, self.name, fp.phase, seg.start,
                           self.rate, fp.peak, fp.extent, fp.value)
            if self.characterizer is not None and fp.phase in self.characterizer.phases:
                group.characterize.append((row, seg, fp.peak, ready))
                continue
            out.append(self._deliver(row, ready))
        return out

    def _remember(self, gid, phase, index):
        """Note a pick given; forget those older than a restart can re-feed (bounded memory)."""
        mine = self._emitted[gid]
        mine[(phase, index)] = None
        horizon = index - 4 * self.ring_capacity
        while mine:
            oldest = next(iter(mine))
            if oldest[1] >= horizon:
                break
            del mine[oldest]

    def _deliver(self, row, ready):
        row[LATENCY_COLUMN] = round(max(0.0, self.clock() - ready), 6)
        self.counts["picks"] += 1
        logger.info("%s %s.%s %s p=%.3f latency %.2f s", row["phase"], row["trace_id"],
                    row["instrument"], row["peak_time"], row["peak_value"], row[LATENCY_COLUMN])
        if self.on_pick is not None:
            self.on_pick(row)
        return row

    # ---- characterisation

    def _characterization_span(self):
        """Model samples needed before and after a P by the characterizer's window models."""
        if self.characterizer is None:
            return 0, 0
        before = after = 0
        for wm in self.characterizer.window_models:
            ratio = self.rate / wm.conventions.sampling_rate
            before = max(before, math.ceil(wm.p_index * ratio))
            after = max(after, math.ceil((wm.conventions.in_samples - wm.p_index) * ratio))
        margin = int(self.rate)  # resampling to the window models' rate reads around the edges
        return before + margin, after + margin

    def _characterize(self, final):
        out = []
        for group in self.groups.values():
            if not group.characterize:
                continue
            due = [item for item in group.characterize
                   if final or item[1].closing or item[2] + self._char_after <= item[1].length]
            if not due:
                continue
            group.characterize = [item for item in group.characterize if item not in due]
            for seg in {id(item[1]): item[1] for item in due}.values():
                mine = [item for item in due if item[1] is seg]
                out += self._characterize_segment(seg, mine)
        return out

    def _characterize_segment(self, seg, items):
        first = max(seg.ring.start, min(p for _, _, p, _ in items) - self._char_before, 0)
        last = min(seg.length, max(p for _, _, p, _ in items) + self._char_after)
        stream = obspy.Stream()
        if last > first:
            data = seg.ring.read(first, last)
            net, sta, loc = seg.group.station.split(".")
            for comp in seg.present:
                stream += obspy.Trace(data[:, self.order.index(comp)].copy(), header={
                    "network": net, "station": sta, "location": loc,
                    "channel": seg.group.instrument + comp, "sampling_rate": self.rate,
                    "starttime": seg.start + first / self.rate})
        rows = pd.DataFrame([row for row, _, _, _ in items], columns=PICK_COLUMNS)
        if len(stream):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AnnotateWarning)
                rows = self.characterizer.characterize(stream, rows)
        else:
            rows = rows.assign(**{c: np.nan for c in self.characterizer.columns[:-1]},
                               characterize_note="no record held around the pick")
        out = []
        for (_, _, p, ready), (_, filled) in zip(items, rows.iterrows()):
            row = {k: (None if isinstance(v, float) and np.isnan(v) else v)
                   for k, v in filled.items()}
            needed = max(ready, seg.available(min(seg.length, p + self._char_after) - 1))
            out.append(self._deliver(row, needed))
        return out

    # ------------------------------------------------------------------ state
    def columns(self):
        """The columns of a pick row, in order."""
        extra = list(self.characterizer.columns) if self.characterizer is not None else []
        return PICK_COLUMNS + extra + [LATENCY_COLUMN]

    def state(self):
        """What a restarted picker needs (module doc "Restart"); JSON-serialisable.

        Returns:
            ``{"version", "model", "groups": {gid: {"origin", "done": {phase:
            absolute sample}}}, "resume": {channel id: ISO time}}``.
        """
        groups, resume = {}, {}
        w = self.plan.in_samples
        for group in self.groups.values():
            if group.refused is not None or group.origin is None:
                continue
            done = dict(group.done)
            seg = group.segment
            if seg is not None:
                for phase in self.phases:
                    settled = seg.grid_index + seg.decoder.done(phase)
                    waiting = [seg.grid_index + p for row, s, p, _ in group.characterize
                               if s is seg and row["phase"] == phase]
                    if waiting:
                        settled = min(settled, min(waiting) - 1)
                    done[phase] = max(done.get(phase, -1), settled)
                needed = seg.decoder.needed_from()
                for _, s, p, _ in group.characterize:
                    if s is seg:
                        needed = min(needed, p - self._char_before)
                back = needed - w - 2 * int(self.rate)  # a window, and resampling edges
                when = seg.start if back <= 0 else seg.start + back / self.rate
            else:
                when = None
            groups[group.gid] = {"origin": str(group.origin),
                                 "done": {k: int(v) for k, v in done.items()}}
            for cid, channel in group.channels.items():
                resume[cid] = str(self._resume_time(group, cid, channel, when))
        return {"version": _STATE_VERSION, "model": self.name, "groups": groups,
                "resume": resume}

    def _resume_time(self, group, cid, channel, when):
        """Where a channel's data must start again: ``when``, or its first sample not taken."""
        if when is None:
            runs = group.runs.get(group.component[cid])
            if runs and runs[0].blocks:
                when = group.origin + runs[0].start / self.rate
            elif channel.next_ns is not None:
                return obspy.UTCDateTime(ns=channel.next_ns)
            else:
                return group.origin
        if channel.run_start_ns is None:
            return when
        # a resampled channel starts again on a sample where the resampler's phase is the same
        _, down = rate_fraction(channel.rate, self.rate)
        t0 = obspy.UTCDateTime(ns=channel.run_start_ns)
        steps = max(0, math.floor((when - t0) * channel.rate / down + 1e-9))
        return t0 + steps * down / channel.rate

    def restore(self, state, picks=None):
        """Carry on after a restart: picks settled before are not given again.

        Args:
            state: a :meth:`state` dict (from an earlier run of the same model).
            picks: optional rows already written (``trace_id``, ``instrument``,
                ``phase``, ``peak_time``): never given again either.

        Raises:
            ValueError: a state of another version or model.
        """
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"state version {state.get('version')!r} is not "
                             f"{_STATE_VERSION}; start without it")
        if state.get("model") != self.name:
            raise ValueError(f"the state was written for model {state.get('model')!r}, "
                             f"not {self.name!r}; start without it or with another folder")
        self._restored = dict(state.get("groups", {}))
        for gid, saved in self._restored.items():
            if gid in self.groups:
                self.groups[gid].done = {k: int(v) for k, v in saved.get("done", {}).items()}
        for row in picks or ():
            gid = f"{row['trace_id']}.{row['instrument']}"
            index = int(round(obspy.UTCDateTime(row["peak_time"]).timestamp * self.rate))
            self._remember(gid, row["phase"], index)

    def settled_time(self):
        """The time before which every pick of the network has been given, POSIX seconds.

        Per instrument, the earliest of: every phase's settled sample of its
        open and closing segments, a P pick waiting for its characterisation,
        and the first sample it has not taken into a segment yet (what comes
        next is picked after it). Instruments refused or silent (no data for
        ``silence_s``) do not hold the network back. Picks emitted later
        never lie before it, except those of an instrument that returns from
        silence with older data or joins later.

        Returns:
            A float (``-inf`` before any instrument has data; ``inf`` after
            :meth:`close`).
        """
        if self._closed:
            return math.inf
        times = []
        for group in self.groups.values():
            if group.refused is not None or group.silent or group.origin is None:
                continue
            times.append(self._group_settled(group))
        return min(times) if times else -math.inf

    def _group_settled(self, group):
        indexes = []
        for seg in [group.segment] + [s for s in self.closing if s.group is group]:
            if seg is None or seg.length == 0:
                continue
            indexes += [seg.grid_index + seg.decoder.done(p) + 1 for p in self.phases]
        indexes += [seg.grid_index + p for _, seg, p, _ in group.characterize]
        origin = int(round(group.origin.timestamp * self.rate))
        untaken = [origin + runs[0].start for runs in group.runs.values() if runs]
        if group.segment is not None:
            untaken.append(group.segment.grid_index + group.segment.length)
        else:
            # a second before the channel's next sample: what its resampler still holds
            untaken += [int(round(channel.next_ns * 1e-9 * self.rate)) - int(self.rate)
                        for channel in group.channels.values() if channel.next_ns is not None]
        indexes.append(min(untaken, default=origin))
        return min(indexes) / self.rate

    def resume_points(self, state=None):
        """``{channel id: UTCDateTime}`` to start the sources at (from ``state`` or now)."""
        state = self.state() if state is None else state
        return {cid: obspy.UTCDateTime(t) for cid, t in state.get("resume", {}).items()}

    def sizes(self):
        """Samples held, by kind (for memory checks): rings, curves, waiting data, jobs."""
        out = collections.Counter()
        for group in self.groups.values():
            for channel in group.channels.values():
                out["channel_waiting"] += channel.held_samples()
            for runs in group.runs.values():
                out["untaken"] += sum(sum(len(b[0]) for b in r.blocks) for r in runs)
            seg = group.segment
            if seg is not None:
                out["ring"] += seg.ring.data.size
                out["stacked"] += seg.acc.values.size
                out["curves"] += sum(len(c.values) for c in seg.decoder.curves.values())
                out["marks"] += len(seg.marks)
        out["jobs"] = len(self.jobs)
        out["remembered"] = sum(len(keys) for keys in self._emitted.values())
        return dict(out)
