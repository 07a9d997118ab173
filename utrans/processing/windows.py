"""Cutting model windows out of records, and where windows go on continuous records.

**Cutting** (:func:`cut`, :func:`pick_window_starts`): a window of ``length``
samples starting at any sample of a record (before its start, beyond its end)
holds the record's samples where it overlaps the record and zeros elsewhere;
the range of samples that hold record data is returned with it, so that the
normaliser leaves the padding out (:mod:`utrans.processing.normalize`). A
window cut around a pick puts the pick at ``int(ratio * length)``; a
fractional pick is rounded to the nearest sample, halves up
(``floor(p + 0.5)``), everywhere in the package.

**Continuous records** (:class:`WindowPlan`):

Windows of ``in_samples`` samples are laid every ``step = in_samples -
overlap`` samples on an *absolute* grid: a window starts at sample ``i`` of a
segment when ``grid_index + i`` (the sample's index counted from
1970-01-01 at the model's rate) is a multiple of ``step``. Two more windows
cover a segment's ends when the grid does not: one starting at the first
sample and one ending at the last. A segment shorter than one window gets one
window, zero padded after its end.

Because the grid is absolute, annotating a record in pieces gives the same
windows, hence the same output sample for sample, everywhere farther than
one window from a cut (the property the Dask runner relies on: annotate a
day with one window of extra data on both sides, keep the day).

**Blinding.** As in SeisBench, the first and last ``blinding`` samples of
each window's prediction are discarded, because a model sees too little
context there; a window's edge is kept only where it is the edge of the
segment (nothing else covers it). Every sample is then covered by at least
one kept prediction when ``2 * blinding <= overlap``, which is checked.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

__all__ = ["WindowPlan", "cut", "make_plan", "nearest_sample", "pick_window_starts"]

def nearest_sample(position):
    """The nearest whole sample of a fractional position, halves up (``floor(p + 0.5)``).

    Args:
        position: float sample position(s); NaN stays NaN.

    Returns:
        float array (or scalar) of whole sample indices.
    """
    return np.floor(np.asarray(position, dtype=np.float64) + 0.5)


def pick_window_starts(picks, length, ratio, samples):
    """Window starts that put each pick at sample ``int(ratio * length)`` of its window.

    Args:
        picks: pick positions in record samples (float; NaN: no pick, the
            record's middle is used).
        length: window length in samples.
        ratio: where the pick sits, as a fraction of the window.
        samples: record length (for the NaN case).

    Returns:
        int64 array of window starts (may be negative or beyond the record).
    """
    p = np.asarray(picks, dtype=np.float64)
    p = np.where(np.isnan(p), samples / 2.0, p)
    return nearest_sample(p).astype(np.int64) - int(length * ratio)


def cut(records, starts, length):
    """Windows of ``length`` samples of each record, zero where a window leaves its record.

    Args:
        records: array ``(batch, samples, channels)``.
        starts: ``(batch,)`` first sample of each window (any integer).
        length: window length.

    Returns:
        ``(windows, valid)``: windows ``(batch, length, channels)`` of the
        records' dtype, and int64 ``(batch, 2)`` ``[start, stop)`` ranges of
        window samples that hold record data.
    """
    x = np.asarray(records)
    n, t = x.shape[:2]
    starts = np.broadcast_to(np.asarray(starts, dtype=np.int64), (n,))
    lo = np.clip(-starts, 0, length)
    hi = np.clip(t - starts, 0, length)
    hi = np.maximum(hi, lo)
    out = np.zeros((n, length) + x.shape[2:], dtype=x.dtype)
    if np.all(starts == 0) and t >= length:
        out[:] = x[:, :length]
    else:
        for i in range(n):
            if hi[i] > lo[i]:
                out[i, lo[i]:hi[i]] = x[i, starts[i] + lo[i]:starts[i] + hi[i]]
    return out, np.stack([lo, hi], axis=1)


#: Default overlap (fraction of the window) and blinding (fraction of the window).
DEFAULT_OVERLAP = 0.5
DEFAULT_BLINDING = 0.05


#: Where windows go on a continuous record: an absolute grid, or from the record's start.
WINDOW_GRIDS = ("absolute", "record")


@dataclasses.dataclass(frozen=True)
class WindowPlan:
    """Window length, step, blinding and grid of one annotate run.

    Args:
        in_samples: window length in samples.
        step: distance between grid windows in samples (``in_samples - overlap``).
        blinding: ``(start, end)`` samples discarded at the start and end of
            each window's output.
        grid: ``"absolute"`` (windows on a grid counted from 1970-01-01: any
            cut of a record gives the same windows; a window's edge is kept
            where it is the segment's edge) or ``"record"`` (windows from each
            segment's first sample, blinded at the segment's edges too: the
            output starts ``blinding[0]`` samples after the segment's start and
            ends ``blinding[1]`` before its end, as SeisBench's ``annotate``).
    """

    in_samples: int
    step: int
    blinding: tuple
    grid: str = "absolute"

    @property
    def overlap(self):
        """``in_samples - step``."""
        return self.in_samples - self.step

    def offsets(self, length, grid_index=0):
        """Start samples of the windows covering a segment.

        Args:
            length: segment length in samples.
            grid_index: absolute sample index of the segment's first sample.

        Returns:
            Sorted int64 array of window starts (``[0]`` for a short segment).
        """
        w = self.in_samples
        if length <= w:
            return np.zeros(1, dtype=np.int64)
        phase = (-int(grid_index)) % self.step if self.grid == "absolute" else 0
        starts = np.arange(phase, length - w + 1, self.step, dtype=np.int64)
        if starts.size == 0 or starts[0] > 0:
            starts = np.concatenate([[0], starts])
        if starts[-1] + w < length:
            starts = np.concatenate([starts, [length - w]])
        return starts

    def count(self, length, grid_index=0):
        """Number of windows :meth:`offsets` returns (without building them)."""
        w = self.in_samples
        if length <= w:
            return 1
        phase = (-int(grid_index)) % self.step if self.grid == "absolute" else 0
        n = 0 if phase > length - w else (length - w - phase) // self.step + 1
        last = phase + (n - 1) * self.step
        return n + (n == 0 or phase > 0) + (n == 0 or last + w < length)

    def covered(self, length):
        """``(first, stop)``: the samples of a segment that receive an output."""
        if self.grid == "absolute" or length <= self.in_samples:
            return 0, length
        return self.blinding[0], length - self.blinding[1]

    def kept(self, offset, length):
        """The part ``[lo, hi)`` of a window's prediction that is stacked.

        Args:
            offset: the window's start in the segment.
            length: segment length in samples.

        Returns:
            ``(lo, hi)`` in window samples.
        """
        w = self.in_samples
        if length <= w:
            return 0, length
        start, end = self.blinding
        if self.grid == "record":
            return start, w - end
        lo = 0 if offset == 0 else start
        hi = w if offset + w >= length else w - end
        return lo, hi


def make_plan(in_samples, overlap=None, blinding=None, grid="absolute"):
    """Resolve user options into a :class:`WindowPlan`.

    Args:
        in_samples: the model's window length.
        overlap: overlap of consecutive windows: a float in ``[0, 1)`` is a
            fraction of the window, an integer a number of samples (as in
            SeisBench); ``None``: half a window.
        blinding: samples discarded at window edges: one number (both ends)
            or ``(start, end)``; ``None``: 5% of the window, at most half the
            overlap.
        grid: ``"absolute"`` or ``"record"`` (:class:`WindowPlan`).

    Returns:
        A :class:`WindowPlan`.

    Raises:
        ValueError: an option is out of range (the message echoes it).
    """
    w = int(in_samples)
    if grid not in WINDOW_GRIDS:
        raise ValueError(f"window grid must be one of {WINDOW_GRIDS}. Received: grid={grid!r}")
    if overlap is None:
        overlap = DEFAULT_OVERLAP
    if isinstance(overlap, numbers.Real) and not isinstance(overlap, numbers.Integral) \
            and 0.0 <= overlap < 1.0:
        samples = int(round(overlap * w))
    elif isinstance(overlap, numbers.Real) and float(overlap).is_integer():
        samples = int(overlap)
    else:
        raise ValueError("overlap must be a fraction in [0, 1) or a whole number of samples. "
                         f"Received: overlap={overlap!r}")
    if not 0 <= samples < w:
        raise ValueError(f"overlap must be at least 0 and less than the window ({w} samples). "
                         f"Received: overlap={overlap!r}")
    if blinding is None:
        blinding = min(int(round(DEFAULT_BLINDING * w)), samples // 2)
    pair = tuple(blinding) if isinstance(blinding, (list, tuple)) else (blinding, blinding)
    if (len(pair) != 2 or not all(float(b).is_integer() and b >= 0 for b in pair)
            or sum(int(b) for b in pair) > samples):
        raise ValueError("blinding must be a whole number of samples (or a pair for the start "
                         "and the end of a window) that together leave every sample a "
                         f"prediction: at most the overlap ({samples}) in all. "
                         f"Received: blinding={blinding!r}")
    return WindowPlan(in_samples=w, step=w - samples, blinding=tuple(int(b) for b in pair),
                      grid=grid)
