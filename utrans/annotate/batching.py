"""The batch loop: windows of many segments through one compiled forward pass.

:func:`predict_segments` pulls segments lazily from instrument groups (a
group is resampled only when its windows are due, and released when its
last window is stacked), cuts windows into one reused batch buffer across
segment and station boundaries so every call of the model is full, and
yields each segment's stacked curves as soon as its last window is in.
Memory is one batch, the segments in flight and their outputs.
"""

from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np

from utrans.annotate.stacking import Accumulator
from utrans.annotate.streams import Segment

__all__ = ["SegmentResult", "cut_window", "predict_segments"]


@dataclasses.dataclass
class SegmentResult:
    """The stacked model output over one segment.

    Args:
        segment: the :class:`~utrans.annotate.streams.Segment`.
        probabilities: float32 ``(labels, segment.length)``.
        offsets: start samples of the windows that produced it.
    """

    segment: Segment
    probabilities: np.ndarray
    offsets: np.ndarray


class _State:
    __slots__ = ("acc", "offsets", "remaining", "segment")

    def __init__(self, segment, n_labels, offsets, stacking):
        self.segment = segment
        self.acc = Accumulator(n_labels, segment.length, stacking)
        self.offsets = offsets
        self.remaining = len(offsets)


def cut_window(segment, offset, in_samples, out, remove_offset=True):
    """Copy one window of a segment into ``out`` (channels, in_samples), offset removed.

    A full window has each channel's first sample subtracted (in float64, so
    large offsets of raw counts cost no float32 precision; the compiled
    forward pass then normalises the window exactly, and the value depends on
    the window alone, so any cut of a record gives the same windows). A
    window longer than the rest of the segment has the mean of its samples
    subtracted and zeros after them (demeaned, then padded). Missing channels
    are zero.

    Args:
        segment: a :class:`~utrans.annotate.streams.Segment`.
        offset: the window's first sample.
        in_samples: window length.
        out: float32 array (channels, in_samples) to fill.
        remove_offset: ``False`` copies the samples unchanged (models with
            ``normalization="none"``).
    """
    stop = min(offset + in_samples, segment.length)
    k = stop - offset
    for c, data in enumerate(segment.components):
        if data is None:
            out[c] = 0.0
            continue
        piece = data[offset:stop]
        if not remove_offset:
            out[c, :k] = piece
            out[c, k:] = 0.0
        elif k < in_samples:
            np.subtract(piece, piece.mean(dtype=np.float64), out=out[c, :k], casting="unsafe")
            out[c, k:] = 0.0
        else:
            np.subtract(piece, np.float64(piece[0]), out=out[c], casting="unsafe")


def predict_segments(segments, predictor, plan, n_labels, stacking="avg", progress=None):
    """Annotate segments in full batches; yield each segment's stacked output.

    Args:
        segments: iterable of :class:`~utrans.annotate.streams.Segment` (consumed lazily).
        predictor: a :class:`~utrans.annotate.predict.Predictor`.
        plan: a :class:`~utrans.annotate.windows.WindowPlan`.
        n_labels: number of model outputs per sample.
        stacking: ``"avg"`` or ``"max"``.
        progress: optional tqdm-like object, updated with windows done.

    Yields:
        :class:`SegmentResult`, in the order of ``segments``.
    """
    w, batch_size = plan.in_samples, predictor.batch_size
    remove_offset = predictor.normalization != "none"
    buffer = np.zeros((batch_size, predictor.channels, w), dtype=np.float32)
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
            offsets = plan.offsets(segment.length, segment.grid_index)
            state = _State(segment, n_labels, offsets, stacking)
            in_flight.append(state)
            queue.extend((state, int(o)) for o in offsets)
        if not queue:
            break
        batch = [queue.popleft() for _ in range(min(batch_size, len(queue)))]
        for i, (state, offset) in enumerate(batch):
            cut_window(state.segment, offset, w, buffer[i], remove_offset)
        predictions = predictor(buffer[:len(batch)])
        for pred, (state, offset) in zip(predictions, batch):
            lo, hi = plan.kept(offset, state.segment.length)
            state.acc.add(offset + lo, pred[:, lo:hi])
            state.remaining -= 1
        if progress is not None:
            progress.update(len(batch))
        while in_flight and in_flight[0].remaining == 0:
            state = in_flight.popleft()
            yield SegmentResult(state.segment, state.acc.result(), state.offsets)
