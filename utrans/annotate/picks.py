"""Picks and detections from stacked probability curves, through :mod:`utrans.decode`.

Which output is decoded how follows the model's conventions:

* every label with a threshold other than ``det`` is a phase (``P``, ``S``);
  labels without one (PhaseNet's noise ``N``) are not decoded;
* ``det`` is a detection curve: :func:`utrans.decode.detect_events` gives
  one detection per run of samples at or above its threshold, with the run's
  highest value as ``peak_value``;
* ``pick_rule="peaks"`` (SeisT, PhaseNet, EQTransformer): every peak of the
  stacked curve at or above the threshold, lower peaks closer than
  ``min_peak_distance_s`` to a higher one removed
  (:func:`utrans.decode.find_peaks`), separately on each gap-free segment;
* ``pick_rule="highest"`` (the U-Trans EQCCT pickers, trained to find the one
  arrival of a 60 s window): the U-Trans rule applied to every annotation
  window of the stacked curve: in each window the highest peak at or above
  the threshold (:func:`utrans.decode.highest_peak`) is a pick; a peak
  chosen by several overlapping windows is one pick. At most one pick per
  phase in any window, as in the model's training;
* a pick's ``start_time``/``end_time`` are the first and last samples of the
  run at or above the threshold that holds the peak
  (:func:`utrans.decode.peak_extents`).

Times are ISO-8601 UTC strings (``2009-08-24T00:20:07.700000Z``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from utrans import decode

__all__ = [
    "DETECTION_COLUMNS",
    "PICK_COLUMNS",
    "ClassifyOutput",
    "DecodeRules",
    "decode_rules",
    "decode_segment",
]

PICK_COLUMNS = ["trace_id", "phase", "peak_time", "peak_value", "start_time", "end_time",
                "instrument", "model"]
DETECTION_COLUMNS = ["trace_id", "start_time", "end_time", "peak_value", "instrument", "model"]
DETECTION_LABEL = "det"


@dataclasses.dataclass(frozen=True)
class DecodeRules:
    """How the curves of one model become picks and detections.

    Args:
        labels: the model's output labels, in output order.
        phases: phase label -> threshold.
        detection_threshold: threshold of the ``det`` output (``None``: no detections).
        min_peak_distance_s: minimum separation of two picks of one phase.
        pick_rule: ``"peaks"`` or ``"highest"``.
    """

    labels: tuple
    phases: dict
    detection_threshold: float | None
    min_peak_distance_s: float
    pick_rule: str


def decode_rules(conventions, thresholds=None, min_peak_distance_s=None):
    """The model's :class:`DecodeRules`, with user overrides.

    Args:
        conventions: the model's :class:`utrans.conventions.Conventions`.
        thresholds: dict label -> threshold overriding the model's
            (``{"P": 0.5, "det": 0.3}``).
        min_peak_distance_s: overrides the model's (``None``: the model's, or 0).

    Returns:
        A :class:`DecodeRules`.

    Raises:
        ValueError: a threshold names no output label, or is outside [0, 1].
    """
    merged = dict(conventions.threshold)
    for label, value in (thresholds or {}).items():
        if value is None:
            continue
        if label not in conventions.labels:
            raise ValueError(f"No output called {label!r} to threshold; the model's outputs are "
                             f"{', '.join(conventions.labels)}. Received: thresholds={thresholds}")
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"Thresholds must lie in [0, 1]. Received: {label}={value}")
        merged[label] = value
    distance = min_peak_distance_s if min_peak_distance_s is not None else \
        (conventions.min_peak_distance_s or 0.0)
    if distance < 0:
        raise ValueError(f"min_peak_distance_s must be >= 0. "
                         f"Received: min_peak_distance_s={distance}")
    return DecodeRules(
        labels=tuple(conventions.labels),
        phases={k: v for k, v in merged.items() if k != DETECTION_LABEL and k in conventions.labels},
        detection_threshold=merged.get(DETECTION_LABEL) if DETECTION_LABEL in conventions.labels
        else None,
        min_peak_distance_s=float(distance),
        pick_rule=conventions.pick_rule,
    )


def _iso(start, sampling_rate, index):
    return str(start + float(index) / sampling_rate)


def decode_segment(probabilities, start, sampling_rate, rules, trace_id, instrument="",
                   model="", windows=None):
    """Picks and detections of one gap-free segment.

    Args:
        probabilities: float array ``(labels, samples)`` in ``rules.labels`` order.
        start: ``obspy.UTCDateTime`` of sample 0.
        sampling_rate: Hz.
        rules: :class:`DecodeRules`.
        trace_id: ``NET.STA.LOC`` written in the rows.
        instrument: band/instrument code written in the rows.
        model: model name written in the rows.
        windows: ``(starts, in_samples)`` of the annotation windows (needed by
            ``pick_rule="highest"``).

    Returns:
        ``(picks, detections)``: two lists of row dicts (:data:`PICK_COLUMNS`,
        :data:`DETECTION_COLUMNS`).
    """
    picks, detections = [], []
    n = probabilities.shape[1]
    min_distance = max(1, int(round(rules.min_peak_distance_s * sampling_rate)))
    for label, threshold in rules.phases.items():
        curve = probabilities[rules.labels.index(label)]
        if rules.pick_rule == "highest":
            if windows is None:
                raise ValueError("pick_rule 'highest' needs the annotation windows.")
            starts, in_samples = windows
            found = set()
            for s in starts:
                s = int(s)
                h = decode.highest_peak(curve[s:min(s + in_samples, n)], threshold)
                if h is not None:
                    found.add(s + h)
            peaks = np.array(sorted(found), dtype=np.int64)
        else:
            peaks = decode.find_peaks(curve, threshold, min_distance)
        extents = decode.peak_extents(curve, peaks, threshold)
        for p, (a, b) in zip(peaks, extents):
            picks.append({
                "trace_id": trace_id, "phase": label,
                "peak_time": _iso(start, sampling_rate, p), "peak_value": float(curve[p]),
                "start_time": _iso(start, sampling_rate, a), "end_time": _iso(start, sampling_rate, b),
                "instrument": instrument, "model": model,
            })
    if rules.detection_threshold is not None:
        curve = probabilities[rules.labels.index(DETECTION_LABEL)]
        for a, b in decode.detect_events(curve, rules.detection_threshold):
            detections.append({
                "trace_id": trace_id,
                "start_time": _iso(start, sampling_rate, a), "end_time": _iso(start, sampling_rate, b),
                "peak_value": float(curve[a:b + 1].max()),
                "instrument": instrument, "model": model,
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
