"""Final picks of a growing curve: the offline decoder, kept to where its answer is settled.

A streaming picker stacks a segment's curves window by window
(:class:`utrans.processing.stacking.Accumulator`) and hands over each
stretch that no later window can change. :class:`FinalPicks` decodes those
stretches with the model's own rule (:meth:`utrans.pipeline.Pipeline.picks`
and :meth:`~utrans.pipeline.Pipeline.extents`, the one decoder) and returns a
pick only once no later sample of the curve can change it, so a pick is
never withdrawn, moved or given twice, and the picks of the whole segment
are those of the offline decoder run on the whole curve. When is a pick
settled?

* ``"peaks"`` (SeisT, PhaseNet): a peak is a local maximum at or above the
  threshold (a *candidate*, as the decoder finds them); the decoder keeps
  candidates greedily from the highest and drops those within the minimum
  distance ``d`` of a kept one. Going through the known candidates in the
  decoder's order, a candidate is *dropped* for good when a candidate kept
  for good lies within ``d``; it is *kept* for good when every higher one
  within ``d`` is dropped for good and no unknown candidate (at the last
  known sample or later, of any height) can come within ``d``; otherwise it
  waits. These are exactly the decoder's decisions on any continuation of
  the curve. A kept pick also waits for the end of its run above the
  threshold (its ``end_time``).
* ``"regions"`` (SeisBench's weight files): one pick per triggered region,
  settled once the region's run above half the threshold has ended.
* ``"highest"`` (the U-Trans EQCCT pickers): the highest peak of each
  annotation window, settled once the whole window is stacked and the
  peak's run has ended; a peak chosen by several windows is one pick.

Only the samples that an unsettled pick may still need are kept (from the
start of its run or the sample before it), so memory does not grow with
the stream. :meth:`FinalPicks.close` settles everything at the end of a
segment, as the offline decoder treats the end of a record.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from utrans.processing import decode

__all__ = ["FinalPick", "FinalPicks"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FinalPick:
    """A settled pick of one segment.

    Args:
        phase: the label picked.
        peak: segment sample of the pick.
        extent: ``(first, last)`` segment samples of its run (or region).
        value: the curve at the pick.
    """

    phase: str
    peak: int
    extent: tuple
    value: float


class _Curve:
    """The kept part of one label's curve: samples ``anchor`` to ``anchor + len(values)``."""

    __slots__ = ("anchor", "decided", "done", "emitted", "values", "windows")

    def __init__(self):
        self.values = np.zeros(0, dtype=np.float32)
        self.anchor = 0      # segment sample of values[0]
        self.done = -1       # every pick at or before this sample has been settled
        self.emitted = set()  # settled peaks still inside the kept samples
        self.windows = []    # "highest": starts of stacked windows not settled yet
        self.decided = {}    # "peaks": candidate -> (height, kept) decided for good

    @property
    def end(self):
        return self.anchor + len(self.values)

    def trim(self, anchor):
        anchor = min(max(anchor, self.anchor), self.end)
        self.values = self.values[anchor - self.anchor:]
        self.anchor = anchor
        self.emitted = {p for p in self.emitted if p >= anchor}


class FinalPicks:
    """Settled picks of one segment's stacked curves, stretch by stretch (module doc).

    Args:
        pipeline: the model's :class:`~utrans.pipeline.Pipeline`.
        thresholds: ``{label: threshold}`` (:meth:`~utrans.pipeline.Pipeline.thresholds`).
        min_peak_distance_s: overrides the model's minimum pick distance.
        window_length: annotation window length in samples (the ``"highest"`` rule).
        max_kept: samples kept per label at most; beyond, the oldest are
            dropped with a warning (a curve that stays above its threshold
            for that long).

    Returns:
        Call :meth:`add_window` for each window stacked (its start),
        :meth:`feed` with each released stretch, :meth:`close` at the end.
    """

    def __init__(self, pipeline, thresholds, min_peak_distance_s=None, window_length=None,
                 max_kept=1_000_000):
        self.pipeline = pipeline
        self.labels = tuple(pipeline.conventions.labels)
        self.phases = tuple(p for p in pipeline.phases if p in thresholds)
        self.rule = pipeline.conventions.pick_rule
        self.thresholds = dict(thresholds)
        self.min_peak_distance_s = min_peak_distance_s
        self.distance = pipeline.min_distance(min_peak_distance_s)
        self.window_length = int(window_length or pipeline.conventions.in_samples)
        self.max_kept = int(max_kept)
        self.curves = {label: _Curve() for label in self.phases}
        self.closed = False

    # ------------------------------------------------------------------ state
    @property
    def end(self):
        """Segment samples received so far."""
        return max((c.end for c in self.curves.values()), default=0)

    def needed_from(self):
        """The first segment sample that an unsettled pick may still need."""
        return min((c.anchor for c in self.curves.values()), default=self.end)

    def done(self, phase):
        """Every pick of ``phase`` at or before this segment sample has been settled."""
        return self.curves[phase].done

    # ------------------------------------------------------------------ input
    def add_window(self, start):
        """Record a window stacked into the curve (its start in the segment)."""
        if self.rule == "highest":
            for curve in self.curves.values():
                curve.windows.append(int(start))

    def feed(self, stretch):
        """Settled picks after appending the next stretch of the curves.

        Args:
            stretch: ``(labels, samples)`` stacked values no later window changes.

        Returns:
            A list of :class:`FinalPick` (time order within a phase).
        """
        if self.closed:
            raise RuntimeError("feed() after close()")
        stretch = np.asarray(stretch)
        for label, curve in self.curves.items():
            row = stretch[self.labels.index(label)].astype(np.float32, copy=False)
            curve.values = np.concatenate([curve.values, row])
        return self._settle(final=False)

    def close(self):
        """The picks left at the end of the segment (the curve ends here).

        Returns:
            A list of :class:`FinalPick`.
        """
        picks = self._settle(final=True)
        self.closed = True
        return picks

    # ------------------------------------------------------------------ rules
    def _settle(self, final):
        out = []
        for label, curve in self.curves.items():
            if len(curve.values) < 1:
                continue
            rule = {"peaks": self._peaks, "regions": self._regions,
                    "highest": self._highest}[self.rule]
            out += rule(label, curve, final)
            if len(curve.values) > self.max_kept:
                drop = len(curve.values) - self.max_kept
                logger.warning("%s curve above its threshold for %d samples; its oldest %d "
                               "samples are dropped undecoded", label, len(curve.values), drop)
                curve.trim(curve.anchor + drop)
                curve.done = max(curve.done, curve.anchor - 1)
        return out

    def _accept(self, label, curve, peaks, extents):
        x, a = curve.values, curve.anchor
        return [FinalPick(label, int(p) + a, (int(e0) + a, int(e1) + a), float(x[p]))
                for p, (e0, e1) in zip(peaks, extents)]

    def _peaks(self, label, curve, final):
        x, a = curve.values, curve.anchor
        thr = self.thresholds[label]
        d = self.distance
        last = curve.end - 1  # an unknown candidate may sit here or later (its next sample is unknown)
        # every local maximum at or above the threshold (the decoder without its distance rule)
        found = self.pipeline.picks(x, label, thr, 0.0) + a
        height = {int(c): np.float32(x[c - a]) for c in found}
        height.update({c: h for c, (h, _) in curve.decided.items()})
        kept, waiting, status = [], [], {}
        for c in sorted(height, key=lambda c: (-height[c], -c)):  # the decoder's order
            if c in curve.decided:
                status[c] = curve.decided[c][1]
            elif d <= 1:
                status[c] = True  # no distance rule
            elif any(abs(q - c) <= d for q in kept):
                status[c] = False
            elif any(abs(q - c) <= d for q in waiting) or (not final and c + d >= last):
                status[c] = None
            else:
                status[c] = True
            (kept if status[c] else waiting if status[c] is None else []).append(c)
        for c, value in status.items():
            if value is not None:
                curve.decided[c] = (height[c], value)
        runs = decode.detect_events(x, thr) + a
        picks, unsettled = [], [c for c, v in status.items() if v is None]
        for c in sorted(c for c, v in status.items() if v and c not in curve.emitted):
            run = runs[np.searchsorted(runs[:, 0], c, side="right") - 1]
            if not final and run[1] >= last:
                unsettled.append(c)  # its run goes on: its end is not known yet
                continue
            picks += self._accept(label, curve, np.array([c - a]),
                                  self.pipeline.extents(x, np.array([c - a]), thr))
            curve.emitted.add(c)
        if final:
            curve.done = last
            curve.trim(curve.end)
            curve.decided.clear()
            return picks
        curve.done = max(curve.done, min(unsettled + [last]) - 1)
        # keep what an unsettled candidate needs: the sample before it, its run, the run
        # still open at the end and the last known sample
        keep = [last - 1] + [c - 1 for c in unsettled]
        for c in unsettled:
            keep.append(int(runs[np.searchsorted(runs[:, 0], c, side="right") - 1, 0]))
        if len(runs) and runs[-1, 1] >= last:
            keep.append(int(runs[-1, 0]))
        curve.trim(min(keep))
        # decisions within d of the kept samples are the context of the ones to come
        curve.decided = {c: v for c, v in curve.decided.items() if c >= curve.anchor - d}
        curve.emitted |= {c for c in curve.decided if c < curve.anchor and curve.decided[c][1]}
        return picks

    def _regions(self, label, curve, final):
        x, a = curve.values, curve.anchor
        thr = self.thresholds[label]
        last = curve.end - 1
        peaks = self.pipeline.picks(x, label, thr, self.min_peak_distance_s)
        extents = self.pipeline.extents(x, peaks, thr)
        settled = (peaks + a > curve.done) & (final | (extents[:, 1] + a < last))
        picks = self._accept(label, curve, peaks[settled], extents[settled])
        if final:
            curve.done = last
            curve.trim(curve.end)
            return picks
        if picks:
            curve.done = max(p.extent[1] for p in picks)
        # keep the run above the trigger-off level that is still open at the end
        held = decode.detect_events(x, thr / 2) + a
        open_run = [int(held[-1, 0])] if len(held) and held[-1, 1] >= last else []
        curve.trim(min([last] + open_run))
        return picks

    def _highest(self, label, curve, final):
        x, a = curve.values, curve.anchor
        thr = self.thresholds[label]
        last = curve.end - 1
        length = self.window_length
        picks, waiting = [], []
        for s in curve.windows:
            if not final and s + length > curve.end:
                waiting.append(s)
                continue
            found = self.pipeline.picks(x, label, thr, windows=(np.array([s - a]), length))
            extents = self.pipeline.extents(x, found, thr)
            if len(found) and not final and extents[0, 1] + a >= last:
                waiting.append(s)  # the peak's run goes on
                continue
            if len(found) and int(found[0]) + a not in curve.emitted:
                picks += self._accept(label, curve, found, extents)
                curve.emitted.add(int(found[0]) + a)
        curve.windows = waiting
        if final:
            curve.done = last
            curve.trim(curve.end)
            return sorted(picks, key=lambda p: p.peak)
        # windows still to come start after curve.end - length
        keep = min(waiting + [curve.end - length])
        runs = decode.detect_events(x, thr) + a
        inside = runs[(runs[:, 0] <= keep) & (runs[:, 1] >= keep)]
        if len(inside):
            keep = int(inside[0, 0])  # a pick there may have its run start earlier
        curve.done = max(curve.done, keep - 1)
        curve.trim(keep)
        return sorted(picks, key=lambda p: p.peak)
