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

from utrans.pipeline import DETECTION_LABEL

__all__ = ["DETECTION_COLUMNS", "PICK_COLUMNS", "ClassifyOutput", "decode_segment", "iso_times"]

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
        times = zip(iso_times(start, rate, peaks), iso_times(start, rate, extents[:, 0]),
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
        detections += [{
            "trace_id": seg.station, "start_time": first, "end_time": last, "peak_value": value,
            "instrument": seg.instrument, "model": model,
        } for first, last, value in zip(iso_times(start, rate, found[:, 0]),
                                        iso_times(start, rate, found[:, 1]), peak_values)]
    return picks, detections


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
