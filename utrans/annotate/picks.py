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

import pandas as pd

from utrans.pipeline import DETECTION_LABEL

__all__ = ["DETECTION_COLUMNS", "PICK_COLUMNS", "ClassifyOutput", "decode_segment", "pick_row"]

PICK_COLUMNS = ["trace_id", "phase", "peak_time", "peak_value", "start_time", "end_time",
                "instrument", "model"]
DETECTION_COLUMNS = ["trace_id", "start_time", "end_time", "peak_value", "instrument", "model"]


def _iso(start, sampling_rate, index):
    return str(start + float(index) / sampling_rate)


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
    a, b = extent
    return {
        "trace_id": station, "phase": phase,
        "peak_time": _iso(start, rate, peak), "peak_value": float(value),
        "start_time": _iso(start, rate, a), "end_time": _iso(start, rate, b),
        "instrument": instrument, "model": model,
    }


def decode_segment(result, pipeline, thresholds, min_peak_distance_s=None, model="",
                   in_samples=None):
    """Picks and detections of one segment's stacked curves.

    Args:
        result: a :class:`~utrans.annotate.batching.SegmentResult`.
        pipeline: the model's :class:`~utrans.pipeline.Pipeline`.
        thresholds: ``{label: threshold}`` (:meth:`~utrans.pipeline.Pipeline.thresholds`).
        min_peak_distance_s: overrides the model's minimum pick distance.
        model: model name written in the rows.
        in_samples: window length (the ``"highest"`` rule picks per window).

    Returns:
        ``(picks, detections)``: two lists of row dicts (:data:`PICK_COLUMNS`,
        :data:`DETECTION_COLUMNS`).
    """
    seg = result.segment
    labels = pipeline.conventions.labels
    rate, start = seg.sampling_rate, result.start
    windows = (result.offsets - result.first, in_samples or pipeline.conventions.in_samples)
    picks, detections = [], []
    for label in pipeline.phases:
        curve = result.probabilities[labels.index(label)]
        peaks = pipeline.picks(curve, label, thresholds[label], min_peak_distance_s,
                               windows=windows)
        extents = pipeline.extents(curve, peaks, thresholds[label])
        picks += [pick_row(seg.station, seg.instrument, model, label, start, rate, p, extent,
                           curve[p]) for p, extent in zip(peaks, extents)]
    if DETECTION_LABEL in labels and DETECTION_LABEL in thresholds:
        curve = result.probabilities[labels.index(DETECTION_LABEL)]
        for a, b in pipeline.detections(curve, thresholds[DETECTION_LABEL]):
            detections.append({
                "trace_id": seg.station,
                "start_time": _iso(start, rate, a), "end_time": _iso(start, rate, b),
                "peak_value": float(curve[a:b + 1].max()),
                "instrument": seg.instrument, "model": model,
            })
    return picks, detections


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
