"""Stacking overlapping window predictions into one curve per label.

An :class:`Accumulator` holds a ``(labels, length)`` float32 array for one
segment. Windows arrive in the order of their start, so each kept prediction
is written where no earlier window reached and combined (``"max"``:
element-wise maximum; ``"avg"``: sum) where one did; with ``"avg"``, the
samples before the newest window's start can no longer change and are
divided by their window count right away, while still in cache. Memory is
the output itself, whatever the number of windows.

A streaming picker uses it *rolling*: :meth:`Accumulator.release` hands over
the samples no later window can reach and forgets them, so memory is that of
the windows in flight, however long the stream (``length`` is then only the
first capacity; the array grows if a window reaches past it).
"""

from __future__ import annotations

import numpy as np

__all__ = ["STACKING", "Accumulator"]

STACKING = ("avg", "max")


class Accumulator:
    """Stacked predictions of one segment.

    Args:
        n_labels: output labels of the model.
        length: segment length in samples.
        method: ``"avg"`` or ``"max"``.

    Returns:
        :meth:`result` returns the stacked ``(n_labels, length)`` float32 array.
    """

    def __init__(self, n_labels, length, method="avg"):
        if method not in STACKING:
            raise ValueError(f"stacking must be one of {STACKING}. Received: stacking={method!r}")
        self.method = method
        self.length = int(length)
        self.values = np.empty((n_labels, self.length), dtype=np.float32)
        self.origin = 0  # segment sample held in values[:, 0] (moves on release)
        self._reached = 0  # samples [0, reached) hold at least one prediction
        self._final = 0  # avg: samples [0, final) are divided by their counts
        self._ranges = []  # avg: (start, stop) of windows that may still cover unfinished samples

    @property
    def reached(self):
        """Samples before this one have at least one prediction."""
        return self._reached

    def add(self, start, prediction):
        """Fold in a window's kept prediction ``(n_labels, k)`` starting at sample ``start``.

        Raises:
            AssertionError: windows out of order or leaving a sample uncovered
                (the window plan guarantees neither happens).
        """
        stop = start + prediction.shape[1]
        if start > self._reached or start < self._final:
            raise AssertionError(f"window at {start} out of order (covered up to {self._reached})")
        if self.method == "avg":
            self._divide(start)
        self._reserve(stop)
        o = self.origin
        seen = min(stop, self._reached)
        if seen > start:
            target = self.values[:, start - o:seen - o]
            if self.method == "max":
                np.maximum(target, prediction[:, :seen - start], out=target)
            else:
                target += prediction[:, :seen - start]
        if stop > self._reached:
            self.values[:, self._reached - o:stop - o] = prediction[:, self._reached - start:]
            self._reached = stop
        if self.method == "avg":
            self._ranges.append((start, stop))

    def _reserve(self, stop):
        """Grow the array (rolling use) so that it holds samples up to ``stop``."""
        need = stop - self.origin
        if need > self.values.shape[1]:
            grown = np.empty((self.values.shape[0], max(need, 2 * self.values.shape[1])),
                             dtype=np.float32)
            held = self._reached - self.origin
            grown[:, :held] = self.values[:, :held]
            self.values = grown

    def release(self, upto):
        """Hand over the stacked samples before ``upto`` and forget them (rolling use).

        The caller guarantees that no later window starts before ``upto``
        (with ``"avg"`` those samples are divided by their window counts now).

        Args:
            upto: segment sample; every sample before it has been reached.

        Returns:
            float32 ``(n_labels, upto - origin)``: samples ``origin`` to ``upto``
            (a copy); ``origin`` then moves to ``upto``.

        Raises:
            AssertionError: ``upto`` before ``origin`` or past the samples reached.
        """
        if not self.origin <= upto <= self._reached:
            raise AssertionError(f"release({upto}) outside the samples held "
                                 f"[{self.origin}, {self._reached})")
        if self.method == "avg":
            self._divide(upto)
        n = upto - self.origin
        out = self.values[:, :n].copy()
        held = self._reached - upto
        self.values[:, :held] = self.values[:, n:n + held]
        self.origin = upto
        self._final = max(self._final, upto)
        return out

    def _divide(self, upto):
        """Divide samples [final, upto) by the number of windows that covered them."""
        a = self._final
        if upto <= a:
            return
        self._ranges = [(s, e) for s, e in self._ranges if e > a]
        diff = np.zeros(upto - a + 1, dtype=np.int32)
        for s, e in self._ranges:
            diff[max(s, a) - a] += 1
            diff[min(e, upto) - a] -= 1
        counts = np.cumsum(diff[:-1], dtype=np.int32)
        o = self.origin
        self.values[:, a - o:upto - o] /= counts.astype(np.float32)  # >= 1: samples before upto are reached
        self._final = upto

    def result(self):
        """The stacked curves (the accumulator's own array, finished in place).

        Raises:
            AssertionError: a sample received no prediction.
        """
        if self._reached != self.length:
            raise AssertionError(f"samples from {self._reached} received no prediction")
        if self.method == "avg":
            self._divide(self.length)
            self._ranges = []
        return self.values
