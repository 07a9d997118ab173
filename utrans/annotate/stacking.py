"""Stacking overlapping window predictions into one curve per label.

An :class:`Accumulator` holds a preallocated ``(labels, length)`` float32
array for one segment; each window's kept prediction is folded in as it
arrives (``"max"``: element-wise maximum; ``"avg"``: running sum, divided at
the end by the number of windows that covered each sample, counted in
chunks from the windows' ranges). Memory is the output itself, whatever the
number of windows.
"""

from __future__ import annotations

import numpy as np

__all__ = ["STACKING", "Accumulator"]

STACKING = ("avg", "max")
_CHUNK = 1 << 16  # samples per chunk when dividing the sums by the counts


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
        fill = -np.inf if method == "max" else 0.0
        self.values = np.full((n_labels, self.length), fill, dtype=np.float32)
        self._starts, self._stops = [], []

    def add(self, start, prediction):
        """Fold in a window's kept prediction ``(n_labels, k)`` starting at sample ``start``."""
        stop = start + prediction.shape[1]
        target = self.values[:, start:stop]
        if self.method == "max":
            np.maximum(target, prediction, out=target)
        else:
            target += prediction
        self._starts.append(start)
        self._stops.append(stop)

    def result(self):
        """The stacked curves (the accumulator's own array, finished in place).

        Raises:
            AssertionError: a sample received no prediction (the window plan
                guarantees it does).
        """
        starts = np.asarray(self._starts, dtype=np.int64)
        stops = np.asarray(self._stops, dtype=np.int64)
        for c0 in range(0, self.length, _CHUNK):
            c1 = min(c0 + _CHUNK, self.length)
            a, b = np.clip(starts, c0, c1) - c0, np.clip(stops, c0, c1) - c0
            diff = np.zeros(c1 - c0 + 1, dtype=np.int32)
            np.add.at(diff, a, 1)
            np.add.at(diff, b, -1)
            counts = np.cumsum(diff[:-1], dtype=np.int32)
            if not counts.all():
                raise AssertionError("a sample received no prediction")
            if self.method == "avg":
                self.values[:, c0:c1] /= counts
        self._starts, self._stops = [], []
        return self.values
