"""Records read piece by piece: joined traces and resampled records without a copy of the whole.

A long record (days of continuous data) is annotated window by window; only
the samples of the windows in flight need to exist at the model's rate. The
classes here stand for a 1-D record and compute its samples when asked:

* :class:`JoinedSamples`: traces of one channel joined end to end (and the
  short fills between them), read as one record without concatenating them;
* :class:`ResampledSamples`: a record at another sampling rate, computed in
  chunks by the package's one resampler
  (:func:`utrans.processing.resample.resample`), each chunk from the source
  samples it needs plus a margin beyond the resampling filter's reach and
  started on a source sample that falls on an output sample, so every
  sample equals the one of the whole record resampled at once, bit for bit;
* :class:`SampleView`: samples ``[a, b)`` of another record.

Reading ``x[a:b]`` returns a float64 numpy array; ``np.asarray(x)`` reads
the whole record. :func:`view` and :func:`concatenate` work on numpy arrays
and on these records alike.
"""

from __future__ import annotations

import math

import numpy as np

from utrans.processing.resample import rate_fraction, resample

__all__ = ["JoinedSamples", "ResampledSamples", "SampleView", "Samples", "concatenate", "view"]

#: Output samples a :class:`ResampledSamples` computes at a time (at least).
CHUNK = 1 << 18


class Samples:
    """A 1-D record whose samples are computed when read (module doc).

    Subclasses set ``length`` and implement :meth:`read`.
    """

    length = 0
    ndim = 1
    #: The samples read are float64.
    dtype = np.dtype(np.float64)

    @property
    def shape(self):
        """``(length,)``."""
        return (self.length,)

    def __len__(self):
        return self.length

    def read(self, a, b):
        """Samples ``[a, b)`` (``0 <= a <= b <= length``) as a float64 array."""
        raise NotImplementedError

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError(f"{type(self).__name__} reads slices of consecutive samples. "
                            f"Received: {key!r}")
        a, b, _ = key.indices(self.length)
        return self.read(a, max(a, b))

    def view(self, a, b):
        """Samples ``[a, b)`` as a record (nothing is read)."""
        return SampleView(self, a, b)

    def __array__(self, dtype=None, copy=None):
        x = self.read(0, self.length)
        return x if dtype is None else x.astype(dtype)


class SampleView(Samples):
    """Samples ``[a, b)`` of another record.

    Args:
        base: a :class:`Samples`.
        a: the first sample in ``base``.
        b: the end (excluded) in ``base``.
    """

    def __init__(self, base, a, b):
        if not 0 <= a <= b <= base.length:
            raise ValueError(f"A view must lie inside its record of {base.length} samples. "
                             f"Received: [{a}, {b})")
        self.base, self.start, self.length = base, int(a), int(b - a)

    def read(self, a, b):
        return self.base.read(self.start + a, self.start + b)

    def view(self, a, b):
        return SampleView(self.base, self.start + a, self.start + b)


class JoinedSamples(Samples):
    """Records joined end to end, read as one (float64) without concatenating them.

    Args:
        parts: 1-D numpy arrays or :class:`Samples`, in order.
    """

    def __init__(self, parts):
        self.parts = [p for p in parts if len(p)]
        self.bounds = np.concatenate([[0], np.cumsum([len(p) for p in self.parts])]).astype(
            np.int64)
        self.length = int(self.bounds[-1])

    def read(self, a, b):
        out = np.empty(b - a, dtype=np.float64)
        k = max(int(np.searchsorted(self.bounds, a, side="right")) - 1, 0)
        at = a
        while at < b:
            lo, hi = int(self.bounds[k]), int(self.bounds[k + 1])
            stop = min(b, hi)
            out[at - a:stop - a] = self.parts[k][at - lo:stop - lo]
            at = stop
            k += 1
        return out


class ResampledSamples(Samples):
    """A record at another sampling rate, computed chunk by chunk (module doc).

    The samples equal ``resample(np.asarray(source), from_rate, to_rate)``:
    ``ceil(n * up / down)`` of them, the first at the time of the source's first.

    Args:
        source: 1-D numpy array or :class:`Samples` at ``from_rate``.
        from_rate: the source's sampling rate in Hz.
        to_rate: the rate of the samples read, in Hz.
        chunk: output samples computed at a time (at least).
    """

    def __init__(self, source, from_rate, to_rate, chunk=CHUNK):
        self.source = source
        self.from_rate, self.to_rate = float(from_rate), float(to_rate)
        self.up, self.down = rate_fraction(from_rate, to_rate)
        self.length = -(-len(source) * self.up // self.down)
        self.chunk = max(int(chunk), 1)
        # Source samples beyond a chunk that reach into it through the filter (SciPy's
        # resample_poly designs 2 * 10 * max(up, down) + 1 taps at the upsampled rate),
        # four times over, a whole number of output steps.
        reach = 4 * 10 * max(self.up, self.down) / self.up + 4
        self.margin = self.down * math.ceil(reach / self.down)
        self._cache = (0, 0, np.zeros(0))

    def read(self, a, b):
        lo, hi, data = self._cache
        if not lo <= a <= b <= hi:
            lo, hi, data = self._compute(a, b)
            self._cache = (lo, hi, data)
        return data[a - lo:b - lo].copy()

    def _compute(self, a, b):
        up, down = self.up, self.down
        lo = a // up * up  # an output sample on a source sample: exact alignment
        hi = min(self.length, max(b, lo + self.chunk))
        first = lo * down // up
        last = min(len(self.source), -(-hi * down // up))
        start = max(0, first - self.margin)  # a multiple of down when not 0: first is one
        stop = min(len(self.source), last + self.margin)
        piece = resample(self.source[start:stop], self.from_rate, self.to_rate)
        offset = (first - start) * up // down
        return lo, hi, piece[offset:offset + hi - lo]


def view(data, a, b):
    """Samples ``[a, b)`` of a numpy array (a numpy view) or of a :class:`Samples` (a record)."""
    return data.view(a, b) if isinstance(data, Samples) else data[a:b]


def concatenate(parts):
    """Records end to end: ``np.concatenate`` of arrays, a :class:`JoinedSamples` otherwise."""
    if len(parts) == 1:
        return parts[0]
    if any(isinstance(p, Samples) for p in parts):
        return JoinedSamples(parts)
    return np.concatenate(parts)
