"""Pick and detection rows from stacked curves, through the model's pipeline (the one decoder).

Which output is decoded how follows the model's conventions
(:meth:`utrans.pipeline.Pipeline.picks`):

* every label with a threshold other than ``det`` is a phase (``P``, ``S``);
  labels without one (PhaseNet's noise ``N``) are not decoded;
* ``det`` is a detection curve: one detection per run of samples at or above
  its threshold, with the run's highest value as ``peak_value``;
* ``pick_rule="peaks"`` (SeisT, PhaseNet, EQTransformer): every peak of the
  stacked curve at or above the threshold, lower peaks closer than
  ``min_peak_distance_s`` to a higher one removed, separately on each
  gap-free segment;
* ``pick_rule="highest"`` (the U-Trans EQCCT pickers, trained to find the one
  arrival of a 60 s window): in each annotation window the highest peak at or
  above the threshold is a pick; a peak chosen by several overlapping windows
  is one pick;
* ``pick_rule="regions"`` (SeisBench's weight files): a trigger turns on
  where the curve reaches the threshold and off after the last sample at or
  above half of it; one pick per region, at its maximum; detections are the
  regions of the detection curve;
* a pick's ``start_time``/``end_time`` are the first and last samples of the
  run at or above the threshold that holds the peak (of its region under
  ``"regions"``).

Times are ISO-8601 UTC strings (``2009-08-24T00:20:07.700000Z``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from utrans.annotate.batching import SegmentResult
from utrans.pipeline import DETECTION_LABEL

__all__ = ["DETECTION_COLUMNS", "PICK_COLUMNS", "ClassifyOutput", "SegmentDecoder", "decode_segment",
           "iso_times", "pick_row"]

PICK_COLUMNS = ["trace_id", "phase", "peak_time", "peak_value", "start_time", "end_time",
                "instrument", "model"]
DETECTION_COLUMNS = ["trace_id", "start_time", "end_time", "peak_value", "instrument", "model"]


def iso_times(start, sampling_rate, indices):
    """``str(start + index / sampling_rate)`` for many sample indices at once.

    The same strings as ObsPy's (``UTCDateTime`` addition rounds the offset to
    whole nanoseconds, ``str`` rounds to microseconds, both halves to even),
    without a ``UTCDateTime`` per index.

    Args:
        start: ``obspy.UTCDateTime`` of sample 0.
        sampling_rate: Hz.
        indices: integer sample indices.

    Returns:
        A list of ISO-8601 strings (``2009-08-24T00:20:07.700000Z``).
    """
    idx = np.asarray(indices, dtype=np.float64)
    if not idx.size:
        return []
    offset = np.round(idx / float(sampling_rate) * 1e9).astype(np.int64)
    ns = np.int64(start.ns) + offset
    micro, rest = np.divmod(ns, 1000)
    micro += (rest > 500) | ((rest == 500) & (micro % 2 == 1))
    text = np.datetime_as_string(micro.astype("datetime64[us]"), unit="us")
    return [t + "Z" for t in text.tolist()]


def pick_row(station, instrument, model, phase, start, rate, peak, extent, value):
    """One row of :data:`PICK_COLUMNS` (shared by annotate and the streaming picker).

    Args:
        station: ``NET.STA.LOC``.
        instrument: band and instrument code.
        model: model name.
        phase: the phase label.
        start: time of the segment's first sample.
        rate: the curve's sampling rate.
        peak: the pick's sample in the segment.
        extent: its first and last samples (:meth:`~utrans.pipeline.Pipeline.extents`).
        value: the curve at the peak.

    Returns:
        A dict (times as ISO-8601 strings, module doc).
    """
    peak_time, first, last = iso_times(start, rate, [peak, *extent])
    return {
        "trace_id": station, "phase": phase,
        "peak_time": peak_time, "peak_value": float(value),
        "start_time": first, "end_time": last,
        "instrument": instrument, "model": model,
    }


def decode_segment(result, pipeline, thresholds, min_peak_distance_s=None, model="",
                   in_samples=None, edge_guard=0):
    """Picks and detections of one segment's stacked curves.

    Args:
        result: a :class:`~utrans.annotate.batching.SegmentResult`.
        pipeline: the model's :class:`~utrans.pipeline.Pipeline`.
        thresholds: ``{label: threshold}`` (:meth:`~utrans.pipeline.Pipeline.thresholds`).
        min_peak_distance_s: overrides the model's minimum pick distance.
        model: model name written in the rows.
        in_samples: window length (the ``"highest"`` rule picks per window).
        edge_guard: picks at most this many samples from one of the
            segment's ``edges`` (where the model saw no record beside it) are
            made by the edge and dropped (0: none dropped).

    Returns:
        ``(picks, detections)``: two lists of row dicts (:data:`PICK_COLUMNS`,
        :data:`DETECTION_COLUMNS`).
    """
    seg = result.segment
    labels = pipeline.conventions.labels
    rate, start, first = seg.sampling_rate, seg.start, result.first
    windows = (result.offsets - first, in_samples or pipeline.conventions.in_samples)
    picks, detections = [], []
    for label in pipeline.phases:
        curve = result.probabilities[labels.index(label)]
        peaks = pipeline.picks(curve, label, thresholds[label], min_peak_distance_s,
                               windows=windows)
        if edge_guard > 0 and len(result.edges):
            distance = np.abs(peaks[:, None] + first - np.asarray(result.edges)[None, :])
            peaks = peaks[(distance > edge_guard).all(axis=1)]
        extents = pipeline.extents(curve, peaks, thresholds[label]) + first
        times = zip(iso_times(start, rate, peaks + first), iso_times(start, rate, extents[:, 0]),
                    iso_times(start, rate, extents[:, 1]), curve[peaks].tolist())
        picks += [{
            "trace_id": seg.station, "phase": label,
            "peak_time": peak, "peak_value": value, "start_time": first, "end_time": last,
            "instrument": seg.instrument, "model": model,
        } for peak, first, last, value in times]
    if DETECTION_LABEL in labels and DETECTION_LABEL in thresholds:
        curve = result.probabilities[labels.index(DETECTION_LABEL)]
        found = pipeline.detections(curve, thresholds[DETECTION_LABEL])
        peak_values = _run_maxima(curve, found)
        found = found + first
        detections += [{
            "trace_id": seg.station, "start_time": first, "end_time": last, "peak_value": value,
            "instrument": seg.instrument, "model": model,
        } for first, last, value in zip(iso_times(start, rate, found[:, 0]),
                                        iso_times(start, rate, found[:, 1]), peak_values)]
    return picks, detections


class SegmentDecoder:
    """Picks and detections of segments whose output arrives in consecutive parts.

    Gives the rows :func:`decode_segment` gives on each segment's whole
    output (with the same options), while holding only the part not decoded
    yet: a part is decoded up to a *safe cut*, a sample around which every
    decoded curve stays below the level at which the pick rule looks
    (``"peaks"``: the threshold, for more than half the minimum pick
    distance on each side, so no peak, run or distance rule reaches across;
    ``"regions"``: half the threshold, SeisBench's trigger-off level;
    ``"highest"``: the threshold for a window on each side, so no window
    sees a peak on both sides; detections: their threshold, or half of it
    under ``"regions"``). A curve that never falls quiet is held until its
    segment's last part.

    Args:
        pipeline: the model's :class:`~utrans.pipeline.Pipeline`.
        thresholds: ``{label: threshold}``.
        min_peak_distance_s: overrides the model's minimum pick distance.
        model: model name written in the rows.
        in_samples: window length (the ``"highest"`` rule).
        edge_guard: see :func:`decode_segment`.

    Returns:
        A decoder; :meth:`add` each :class:`~utrans.annotate.batching.SegmentResult`
        part in order.
    """

    def __init__(self, pipeline, thresholds, min_peak_distance_s=None, model="",
                 in_samples=None, edge_guard=0):
        conv = pipeline.conventions
        self.options = dict(pipeline=pipeline, thresholds=thresholds,
                            min_peak_distance_s=min_peak_distance_s, model=model,
                            in_samples=in_samples or conv.in_samples, edge_guard=edge_guard)
        rule = conv.pick_rule
        reach = {"peaks": pipeline.min_distance(min_peak_distance_s) // 2 + 1, "regions": 1,
                 "highest": int(in_samples or conv.in_samples)}[rule]
        self.quiet = [(conv.labels.index(label), thresholds[label] / (2 if rule == "regions" else 1),
                       reach) for label in pipeline.phases]
        if DETECTION_LABEL in conv.labels and DETECTION_LABEL in thresholds:
            self.quiet.append((conv.labels.index(DETECTION_LABEL), thresholds[DETECTION_LABEL]
                               / (2 if rule == "regions" else 1), 1))
        self._open = {}  # id(segment) -> [segment, first, curves, windows, edges]

    def add(self, result):
        """Decode what can be decoded once ``result`` (the next part of its segment) is in.

        Returns:
            ``(picks, detections)`` row lists (possibly empty).

        Raises:
            AssertionError: parts of a segment out of order.
        """
        key = id(result.segment)
        state = self._open.get(key)
        if state is None:
            state = [result.segment, result.first, result.probabilities, [result.offsets],
                     result.edges]
        else:
            if result.first != state[1] + state[2].shape[1]:
                raise AssertionError(f"part at {result.first} does not follow "
                                     f"{state[1] + state[2].shape[1]}")
            state[2] = np.concatenate([state[2], result.probabilities], axis=1)
            state[3].append(result.offsets)
        if result.final:
            self._open.pop(key, None)
            return self._decode(state, state[2].shape[1])
        self._open[key] = state
        cut = self._safe_cut(state[2])
        if cut <= 0:
            return [], []
        rows = self._decode(state, cut)
        windows = np.unique(np.concatenate(state[3]))
        state[1] += cut
        state[2] = state[2][:, cut:]
        state[3] = [windows[windows + self.options["in_samples"] > state[1]]]
        return rows

    def _safe_cut(self, curves):
        """The last sample at which the curves may be decoded apart (class doc), or 0."""
        n = curves.shape[1]
        most = max((reach for _, _, reach in self.quiet), default=1)
        if n < 2 * most + 1:
            return 0
        ok = np.ones(n - 2 * most + 1, dtype=bool)  # for cuts most .. n - most
        for k, level, reach in self.quiet:
            with np.errstate(invalid="ignore"):
                loud = np.concatenate([[0], np.cumsum(curves[k] >= level)])
            cuts = np.arange(most, n - most + 1)
            ok &= loud[cuts + reach] == loud[cuts - reach]
        found = np.flatnonzero(ok)
        return int(found[-1]) + most if found.size else 0

    def _decode(self, state, stop):
        segment, first, curves, windows, edges = state
        result = SegmentResult(segment=segment, probabilities=curves[:, :stop],
                               offsets=np.unique(np.concatenate(windows)), first=first,
                               edges=edges)
        return decode_segment(result, **self.options)


def _run_maxima(curve, runs):
    """The maximum of ``curve`` over each inclusive ``[start, end]`` run (sorted, disjoint)."""
    if not len(runs):
        return []
    bounds = np.stack([runs[:, 0], runs[:, 1] + 1], axis=1).ravel()
    padded = np.append(curve, curve[-1:])  # reduceat needs every bound inside the array
    return np.maximum.reduceat(padded, bounds)[::2].astype(np.float64).tolist()


def _frame(rows, columns, sort):
    frame = pd.DataFrame(rows, columns=columns)
    if len(frame):
        frame = frame.sort_values(sort, kind="stable").reset_index(drop=True)
    return frame


@dataclasses.dataclass
class ClassifyOutput:
    """Picks (and detections) of one model on one stream.

    Args:
        model: the model's name.
        picks: DataFrame with columns :data:`PICK_COLUMNS`, sorted by peak time.
        detections: DataFrame with columns :data:`DETECTION_COLUMNS` for models
            with a ``det`` output, else ``None``.
        skipped: ``(group_id, reason)`` of instrument groups that were skipped.
    """

    model: str
    picks: pd.DataFrame
    detections: pd.DataFrame | None = None
    skipped: list = dataclasses.field(default_factory=list)

    @classmethod
    def from_rows(cls, model, pick_rows, detection_rows=None, skipped=()):
        """Build from row dicts (``detection_rows=None``: a model without detections)."""
        picks = _frame(pick_rows, PICK_COLUMNS, ["peak_time", "trace_id", "phase"])
        detections = None if detection_rows is None else \
            _frame(detection_rows, DETECTION_COLUMNS, ["start_time", "trace_id"])
        return cls(model=model, picks=picks, detections=detections, skipped=list(skipped))
