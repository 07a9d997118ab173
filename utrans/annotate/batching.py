"""The batch loop: windows of many segments through one forward pass of fixed shape.

:func:`predict_segments` pulls segments lazily from instrument groups (a
group is resampled only when its windows are due, and released when its
last window is stacked), cuts windows into one reused batch buffer across
segment and station boundaries so every call of the model is full, turns
them into model inputs and the outputs into curves through the model's
pipeline (:class:`utrans.pipeline.Pipeline`), and yields each segment's
stacked curves as soon as its last window is in. Memory is one batch, the
segments in flight and their outputs.
"""

from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np

from utrans.processing.stacking import Accumulator
from utrans.processing.streams import Segment, sample_dtype

__all__ = ["SegmentResult", "cut_window", "predict_segments", "window_curves"]


@dataclasses.dataclass
class SegmentResult:
    """The stacked model output over one segment.

    Args:
        segment: the :class:`~utrans.processing.streams.Segment`.
        probabilities: float32 ``(labels, samples)``: the segment's samples
            ``first`` to ``first + samples`` (all of them unless the window
            plan blinds the segment's edges, ``grid="record"``).
        offsets: start samples of the windows that produced it.
        first: the segment sample of ``probabilities[:, 0]``.
        final: whether this is the last part of the segment's output (annotate
            hands long segments over in consecutive parts,
            :mod:`utrans.annotate.tracks`); ``True`` for a whole segment.
        edges: segment sample positions (``0``, ``length``) next to which the
            model saw no record in some window (a gap inside its window, the
            padding after a record shorter than a window): picks close to
            them are made by the edge and dropped by the decoder.
    """

    segment: Segment
    probabilities: np.ndarray
    offsets: np.ndarray
    first: int = 0
    final: bool = True
    edges: tuple = ()

    @property
    def start(self):
        """Time of ``probabilities[:, 0]``."""
        return self.segment.start + self.first / self.segment.sampling_rate


class _State:
    __slots__ = ("acc", "first", "offsets", "remaining", "segment")

    def __init__(self, segment, n_labels, offsets, stacking, covered):
        self.segment = segment
        self.first, stop = covered
        self.acc = Accumulator(n_labels, stop - self.first, stacking)
        self.offsets = offsets
        self.remaining = len(offsets)


def cut_window(segment, offset, out):
    """Copy one window of a segment into ``out`` ``(in_samples, components)``.

    Samples after the segment's end and absent components are zero.

    Returns:
        The number of samples that hold record data (the window's valid part).
    """
    length = out.shape[0]
    stop = min(offset + length, segment.length)
    k = stop - offset
    for c, data in enumerate(segment.components):
        if data is None:
            out[:, c] = 0.0
            continue
        out[:k, c] = data[offset:stop]
        out[k:, c] = 0.0
    return k


def _valid_mask(segment, offset, k, out):
    """The window samples holding record data: the first ``k``, less the segment's holes."""
    out[:] = False
    out[:k] = True
    holes = np.asarray(segment.holes, dtype=np.int64).reshape(-1, 2)
    if len(holes):
        w = out.shape[0]
        first = int(np.searchsorted(holes[:, 1], offset, side="right"))
        for a, b in holes[first:]:
            if a >= offset + w:
                break
            out[max(a - offset, 0):min(b - offset, w)] = False
def window_curves(runner, pipeline, windows, valid=None):
    """The model's curves of raw windows: model inputs, one forward pass, curves.

    The one path from cut windows to curves, shared by annotate and the
    streaming picker (:mod:`utrans.stream`).

    Args:
        runner: the model's runner (at most ``runner.batch_size`` windows).
        pipeline: the model's :class:`~utrans.pipeline.Pipeline`.
        windows: ``(n, in_samples, components)`` raw samples at the model's rate.
        valid: ``(n, 2)`` ranges of window samples that hold record data (``None``: all).

    Returns:
        float32 curves ``(n, in_samples, labels)``.
    """
    return pipeline.curves(runner(pipeline.window_inputs(windows, valid)))


def predict_segments(segments, runner, pipeline, plan, stacking="avg", progress=None):
    """Annotate segments in full batches; yield each segment's stacked output.

    Args:
        segments: iterable of :class:`~utrans.processing.streams.Segment` (consumed lazily;
            the samples of a segment's ``holes`` are left out of the normalisation).
        runner: the model's runner (:mod:`utrans.runtime`).
        pipeline: the model's :class:`~utrans.pipeline.Pipeline`.
        plan: a :class:`~utrans.processing.windows.WindowPlan`.
        stacking: ``"avg"`` or ``"max"``.
        progress: optional tqdm-like object, updated with windows done.

    Yields:
        :class:`SegmentResult`, in the order of ``segments``.
    """
    w, batch_size = plan.in_samples, runner.batch_size
    n_labels = len(pipeline.conventions.labels)
    n_comp = len(pipeline.conventions.component_order)
    # float32 records are cut into a float32 buffer (the normaliser computes in float64 all
    # the same); a record of wider samples widens it, before any window is cut into it
    buffer = np.zeros((batch_size, w, n_comp), dtype=np.float32)
    valid = np.zeros((batch_size, 2), dtype=np.int64)
    mask = np.zeros((batch_size, w), dtype=bool)  # for segments with holes
    segments = iter(segments)
    in_flight = deque()  # states whose windows are not all stacked yet, in order
    queue = deque()  # (state, offset) still to be cut
    exhausted = False
    while True:
        while len(queue) < batch_size and not exhausted:
            segment = next(segments, None)
            if segment is None:
                exhausted = True
                break
            dtype = sample_dtype(segment.components, buffer.dtype)
            if dtype != buffer.dtype:
                buffer = np.zeros(buffer.shape, dtype=dtype)
            offsets = plan.offsets(segment.length, segment.grid_index)
            state = _State(segment, n_labels, offsets, stacking, plan.covered(segment.length))
            in_flight.append(state)
            queue.extend((state, int(o)) for o in offsets)
        if not queue:
            break
        batch = [queue.popleft() for _ in range(min(batch_size, len(queue)))]
        n = len(batch)
        holed = False
        for i, (state, offset) in enumerate(batch):
            valid[i, 1] = cut_window(state.segment, offset, buffer[i])
            holed = holed or len(state.segment.holes) > 0
        if holed:
            for i, (state, offset) in enumerate(batch):
                _valid_mask(state.segment, offset, valid[i, 1], mask[i])
        # Inputs and outputs of a batch are released as soon as they are used, so that
        # they do not stay alive beside those of the next batch.
        curves = window_curves(runner, pipeline, buffer[:n], mask[:n] if holed else valid[:n])
        for curve, (state, offset) in zip(curves, batch):
            lo, hi = plan.kept(offset, state.segment.length)
            state.acc.add(offset + lo - state.first, curve[lo:hi].T)
            state.remaining -= 1
        del curves, curve
        if progress is not None:
            progress.update(n)
        while in_flight and in_flight[0].remaining == 0:
            state = in_flight.popleft()
            yield SegmentResult(state.segment, state.acc.result(), state.offsets, state.first)
