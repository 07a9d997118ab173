"""What annotate windows together, and in which pieces: tracks and chunks.

The segments of an instrument group (:meth:`utrans.processing.streams.InstrumentGroup.segments`,
gap-free spans at the model's rate) become *tracks*, the spans over which
windows are laid:

* a segment at least one window long is a track of its own: windows on the
  absolute grid inside it, never across a gap (:mod:`utrans.processing.windows`);
* consecutive segments shorter than one window (a record in fragments, as
  telemetry leaves it) whose gaps are shorter than one window share a track:
  its windows are laid over the whole span on the same grid, so a window holds
  several fragments, and the gaps are *holes* (zeros, left out of the
  normalisation). A day in thousands of fragments then takes about the
  windows of the day, not one window per fragment. (With
  ``window_grid="record"``, SeisBench's placement, every segment is a track.)

A track longer than a chunk (``chunk_samples``) is annotated in *pieces*:
chunks on the absolute grid (multiples of ``chunk_samples`` from 1970; on the
record grid multiples of the window step from the track's start), each
extended by one window (in whole steps) on both sides, as an SDS station-day
is read with its neighbours. The windows that reach a chunk's samples are then exactly those
of the whole track, with the same kept parts, added in the same order, so
the chunk's stacked output equals the whole track's; the extensions are
computed twice and dropped. Memory is one chunk, whatever the record's
length.

Each piece's output is split back into the segments it covers, as
:class:`~utrans.annotate.batching.SegmentResult` parts in time order, the
last part of a segment marked ``final``. Parts carry the *edges* of their
segment where the model saw no data beside it (a hole, or the zero padding
after a track shorter than a window), so that the decoder can drop picks
made by the edge (:func:`utrans.annotate.picks.decode_segment`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from utrans.annotate.batching import SegmentResult
from utrans.processing.samples import view
from utrans.processing.streams import Segment, sample_dtype

__all__ = ["CHUNK_S", "Track", "make_tracks", "track_pieces"]

#: Default chunk length in seconds (an hour: a few windows of every model).
CHUNK_S = 3600.0


@dataclasses.dataclass
class Track:
    """Segments of one instrument annotated as one span of windows (module doc).

    Args:
        segments: the segments, in time order.
        offsets: track sample of each segment's first sample.
        length: samples from the first segment's start to the last one's end.
    """

    segments: list
    offsets: list
    length: int

    @property
    def first(self):
        """The first segment (its start and grid index are the track's)."""
        return self.segments[0]

    @property
    def grid_index(self):
        """Absolute sample index of track sample 0."""
        return self.first.grid_index

    def edges(self, k, in_samples):
        """Sample positions of segment ``k`` next to no data in some window (module doc)."""
        seg, at = self.segments[k], self.offsets[k]
        out = []
        if k > 0 and self.offsets[k - 1] + self.segments[k - 1].length < at:
            out.append(0)
        last = k + 1 == len(self.segments)
        if (not last and at + seg.length < self.offsets[k + 1]) or \
                (last and self.length < in_samples):
            out.append(seg.length)
        return tuple(out)


def make_tracks(segments, plan):
    """Tracks of an instrument's segments (module doc), lazily.

    Args:
        segments: iterable of :class:`~utrans.processing.streams.Segment` of one
            instrument group, in time order.
        plan: the :class:`~utrans.processing.windows.WindowPlan`.

    Yields:
        :class:`Track`, in time order.
    """
    w = plan.in_samples
    share = plan.grid == "absolute"
    track = None
    for seg in segments:
        short = seg.length < w
        if track is not None and share and short and track.segments[-1].length < w:
            at = seg.grid_index - track.grid_index
            end = track.offsets[-1] + track.segments[-1].length
            if end <= at < end + w:
                track.segments.append(seg)
                track.offsets.append(at)
                track.length = at + seg.length
                continue
        if track is not None:
            yield track
        track = Track([seg], [0], seg.length)
    if track is not None:
        yield track


def _bounds(track, plan, chunk):
    """Chunk boundaries ``[0, ..., length]`` of a track (module doc)."""
    n = track.length
    if chunk is None or n <= chunk + 4 * plan.in_samples:
        return [0, n]
    if plan.grid == "absolute":
        g = track.grid_index
        cuts = np.arange(-(-g // chunk) * chunk - g, n, chunk)
    else:
        step = plan.step * max(1, chunk // plan.step)
        cuts = np.arange(step, n, step)
    cuts = [int(c) for c in cuts if chunk // 4 <= c <= n - chunk // 4]
    return [0, *cuts, n]


def _piece(track, a, b):
    """The track's samples ``[a, b)`` as a :class:`Segment` (holes zero)."""
    seg0 = track.first
    if len(track.segments) == 1:
        if a == 0 and b == track.length:
            return seg0  # the whole segment
        return dataclasses.replace(  # a chunk of it: views, nothing is copied
            seg0, start=seg0.start + a / seg0.sampling_rate, length=b - a,
            components=[None if c is None else view(c, a, b) for c in seg0.components],
            grid_index=seg0.grid_index + a, patched=[])
    n_comp = len(seg0.components)
    arrays = [None] * n_comp
    dtype = sample_dtype(c for seg in track.segments for c in seg.components)
    holes, at = [], a
    for seg, off in zip(track.segments, track.offsets):
        lo, hi = max(a, off), min(b, off + seg.length)
        if hi <= lo:
            continue
        if lo > at:
            holes.append((at - a, lo - a))
        for c, data in enumerate(seg.components):
            if data is None:
                continue
            if arrays[c] is None:
                arrays[c] = np.zeros(b - a, dtype=dtype)
            arrays[c][lo - a:hi - a] = data[lo - off:hi - off]
        at = hi
    if at < b:
        holes.append((at - a, b - a))
    return Segment(station=seg0.station, instrument=seg0.instrument,
                   start=seg0.start + a / seg0.sampling_rate, sampling_rate=seg0.sampling_rate,
                   length=b - a, components=arrays, channels=seg0.channels,
                   filled=seg0.filled, grid_index=seg0.grid_index + a,
                   holes=np.array(holes, dtype=np.int64).reshape(-1, 2))


def track_pieces(track, plan, chunk_samples):
    """The pieces of a track to annotate and where their output goes (module doc).

    Args:
        track: a :class:`Track`.
        plan: the :class:`~utrans.processing.windows.WindowPlan`.
        chunk_samples: chunk length in samples (``None``: the track in one piece).

    Yields:
        ``(piece, split)``: the piece as a :class:`Segment`, and a function
        turning its :class:`SegmentResult` into the list of segment parts it
        contributes (module doc).
    """
    w = plan.in_samples
    pad = -(-w // plan.step) * plan.step  # at least a window, whole steps (the record grid's)
    bounds = _bounds(track, plan, None if chunk_samples is None else int(chunk_samples))
    whole = plan.offsets(track.length, track.grid_index)
    cov_a, cov_b = plan.covered(track.length)
    ends = [off + seg.length for seg, off in zip(track.segments, track.offsets)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        start, stop = max(0, a - pad), min(track.length, b + pad)
        piece = _piece(track, start, stop)

        def split(result, a=a, b=b, start=start):
            lo, hi = max(a, cov_a), min(b, cov_b)
            parts = []
            for k, (seg, off, end) in enumerate(zip(track.segments, track.offsets, ends)):
                p, q = max(lo, off), min(hi, end)
                if q <= p:
                    continue
                at = start + result.first  # track sample of probabilities[:, 0]
                windows = whole[(whole < q) & (whole + w > p)] - off
                parts.append(SegmentResult(
                    segment=seg, probabilities=result.probabilities[:, p - at:q - at],
                    offsets=windows, first=p - off, final=q == min(end, cov_b),
                    edges=track.edges(k, w)))
            return parts

        yield piece, split
