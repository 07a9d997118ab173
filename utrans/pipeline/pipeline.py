"""A model's conventions applied: records in, model inputs; model outputs out, quantities and picks.

One :class:`Pipeline` per model, made from its :class:`~utrans.core.conventions.Conventions`,
is the only way in and out of a model. Training (:class:`utrans.data.DataGenerator`),
testing, ``annotate``, ``classify``, ``characterize``, the streaming picker and an
exported model's runtime all call it, so they cannot disagree about a window or a pick.

**In** (:meth:`Pipeline.record_inputs` for whole records, :meth:`Pipeline.window_inputs`
for windows already cut at the model's rate):

1. the record's components are put in the model's ``component_order``
   (a component the record lacks is zeros);
2. the record is resampled to the model's ``sampling_rate``
   (:func:`utrans.processing.resample.resample`, the one resampler);
3. a window of ``in_samples`` is cut: from the record's start, or, for models
   whose conventions set ``p_position_ratio``, with the P pick at that fraction
   of the window (:mod:`utrans.processing.windows`); samples outside the
   record are zero padding;
4. the window is normalised over its record samples, the padding left out
   (:func:`utrans.processing.normalize.normalize`), and models whose head
   asks for it get each component followed by its first difference.

**Out**: :meth:`Pipeline.curves` (pickers and detectors) and
:meth:`Pipeline.estimates` (one value per window) read the raw outputs through
the model's head (:mod:`utrans.pipeline.heads`); :meth:`Pipeline.picks` and
:meth:`Pipeline.detections` decode curves with the model's pick rule,
thresholds and minimum pick distance (:mod:`utrans.processing.decode`, the one
decoder).

Plain numpy: no framework is imported, so the pipeline serves exported models
in a TensorFlow-free runtime too.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from utrans.core.conventions import Conventions
from utrans.core.errors import ModelInputError
from utrans.pipeline.heads import get_head
from utrans.processing import decode
from utrans.processing.normalize import normalize, taper
from utrans.processing.resample import resample, resampled_length
from utrans.processing.windows import cut, nearest_sample, pick_window_starts

__all__ = ["DETECTION_LABEL", "Frame", "Pipeline"]

#: The output label of a detection curve.
DETECTION_LABEL = "det"


@dataclasses.dataclass(frozen=True)
class Frame:
    """Where model windows lie in the records they were cut from.

    Attributes:
        start: ``(batch,)`` int64: model-rate sample of each record at which
            the window starts (negative when the window starts before it).
        ratio: model samples per record sample.
        length: window length in model samples.
        valid: ``(batch, 2)`` int64 ``[start, stop)`` window samples holding record data.
    """

    start: np.ndarray
    ratio: float
    length: int
    valid: np.ndarray

    def to_model(self, record_samples):
        """Record-rate sample positions -> whole window samples (halves up; NaN stays NaN).

        Args:
            record_samples: ``(batch,)`` (or broadcastable) positions in record samples.

        Returns:
            float64 array of window sample indices (may fall outside the window).
        """
        scaled = nearest_sample(np.asarray(record_samples, dtype=np.float64) * self.ratio)
        return scaled - self.start

    def to_record(self, window_samples):
        """Window samples -> record-rate sample positions (float; NaN stays NaN)."""
        return (np.asarray(window_samples, dtype=np.float64) + self.start) / self.ratio


class Pipeline:
    """The conventions of one model applied to its inputs and outputs (module doc).

    Args:
        conventions: the model's :class:`~utrans.core.conventions.Conventions`.

    Raises:
        KeyError: the conventions name a head nobody registered.
    """

    def __init__(self, conventions):
        if not isinstance(conventions, Conventions):
            raise TypeError(f"Pipeline needs Conventions. Received: {type(conventions).__name__}")
        self.conventions = conventions
        self.head = get_head(conventions.head)

    @classmethod
    def of(cls, source):
        """The pipeline of a model, its conventions, or a pipeline (returned as is).

        Args:
            source: a :class:`Pipeline`, a :class:`~utrans.core.conventions.Conventions`,
                or an object with a ``conventions`` attribute (every utrans model,
                an exported model's runner).

        Raises:
            TypeError: ``source`` carries no conventions.
        """
        if isinstance(source, cls):
            return source
        if isinstance(source, Conventions):
            return cls(source)
        conventions = getattr(source, "conventions", None)
        if isinstance(conventions, Conventions):
            return cls(conventions)
        raise TypeError("A pipeline is made from a model's conventions: give a utrans model, "
                        "its Conventions or a Pipeline. Received: "
                        f"{type(source).__name__} without conventions")

    def __repr__(self):
        return f"Pipeline({self.conventions.describe()})"

    # ------------------------------------------------------------------ shapes
    @property
    def in_channels(self):
        """Input channels of the model: its components, twice over with first differences."""
        return len(self.conventions.component_order) * (2 if self.head.differences else 1)

    def blank_window(self, name, job):
        """One all-zero model input ``(1, in_samples, in_channels)``, to probe a model once.

        Args:
            name: the model's name, for the error.
            job: what needs the window (``"annotate"``, ``"characterize"``), for the error.

        Raises:
            ModelInputError: the model has no fixed window length.
        """
        if self.conventions.in_samples is None:
            raise ModelInputError(f"Model {name!r} has no fixed window length (in_samples); "
                                  f"{job} needs one.")
        return np.zeros((1, self.conventions.in_samples, self.in_channels), dtype=np.float32)

    @property
    def p_position_ratio(self):
        """Where P sits in the window (``None``: windows start at the record's start)."""
        return self.conventions.p_position_ratio

    def ratio(self, rate):
        """Model samples per sample of a record at ``rate`` Hz."""
        return self.conventions.sampling_rate / float(rate)

    def window_length(self, samples, rate):
        """Model window length for a record of ``samples`` at ``rate`` (``in_samples`` if fixed)."""
        if self.conventions.in_samples is not None:
            return self.conventions.in_samples
        return resampled_length(samples, rate, self.conventions.sampling_rate)

    def covered(self, samples, rate):
        """How many record samples (from its start) a whole-record window holds."""
        if self.conventions.in_samples is None or self.p_position_ratio is not None:
            return int(samples)
        return int(min(samples, np.floor(self.conventions.in_samples / self.ratio(rate))))

    # ------------------------------------------------------------------ in
    def components(self, records, components):
        """Records ``(batch, samples, len(components))`` in the model's component order.

        A model component the records lack is zeros.

        Args:
            records: array, channels last.
            components: the records' component letters in order (``"ENZ"``).

        Returns:
            float64 array ``(batch, samples, len(component_order))``.
        """
        x = np.asarray(records)
        components = str(components).upper()
        if x.ndim != 3 or x.shape[-1] != len(components):
            raise ValueError(f"records must be (batch, samples, {len(components)}) for components "
                             f"{components}. Received: shape={x.shape}")
        order = self.conventions.component_order
        out = np.zeros(x.shape[:2] + (len(order),), dtype=np.float64)
        for k, comp in enumerate(order):
            if comp in components:
                out[..., k] = x[..., components.index(comp)]
        return out

    def window_inputs(self, windows, valid=None):
        """Model inputs from windows at the model's rate in its component order.

        Args:
            windows: ``(batch, samples, components)`` raw samples.
            valid: ``(batch, 2)`` ranges of samples that hold record data
                (``None``: all); the rest is padding, left out of the
                normalisation and set to 0.

        Returns:
            float32 ``(batch, samples, in_channels)``.
        """
        dtype = np.float32 if self.p_position_ratio is not None else np.float64
        x = normalize(windows, self.conventions.normalization, valid, dtype=dtype)
        if self.conventions.taper_samples:
            x = taper(x, self.conventions.taper_samples)
        if not self.head.differences:
            return x
        diff = np.zeros_like(x)
        diff[:, 1:] = np.diff(x, axis=1)
        return np.concatenate([x, diff], axis=2)

    def record_inputs(self, records, rate, components, picks=None):
        """Model inputs from whole records at any rate (steps 1-4 of the module doc).

        Args:
            records: ``(batch, samples, len(components))`` raw samples.
            rate: the records' sampling rate in Hz.
            components: the records' component letters in order (``"ENZ"``).
            picks: ``(batch,)`` P picks in record samples, needed by models
                whose conventions set ``p_position_ratio`` (NaN: none; the
                window is then centred on the record).

        Returns:
            ``(inputs, frame)``: float32 ``(batch, length, in_channels)`` and
            the :class:`Frame` of the windows.
        """
        conv = self.conventions
        x = resample(self.components(records, components), rate, conv.sampling_rate, axis=1)
        ratio = self.ratio(rate)
        length = conv.in_samples if conv.in_samples is not None else x.shape[1]
        if self.p_position_ratio is None:
            starts = np.zeros(len(x), dtype=np.int64)
        else:
            if picks is None:
                raise ValueError(f"This model takes a window around the P pick (P at "
                                 f"{self.p_position_ratio:g} of it): give the picks. "
                                 "Received: picks=None")
            starts = pick_window_starts(np.asarray(picks, dtype=np.float64) * ratio, length,
                                        self.p_position_ratio, x.shape[1])
        windows, valid = cut(x, starts, length)
        return self.window_inputs(windows, valid), Frame(starts, ratio, length, valid)

    # ------------------------------------------------------------------ out
    def curves(self, outputs):
        """The model's curves ``(batch, samples, labels)`` (pickers and detectors)."""
        return self.head.curves(outputs, self.conventions.labels)

    def estimates(self, outputs):
        """The model's estimates ``{name: (batch,)}`` (see :mod:`utrans.pipeline.heads`)."""
        return self.head.estimates(outputs, self.conventions.labels)

    @property
    def phases(self):
        """The labels that are phases to pick (those with a threshold, other than ``det``)."""
        conv = self.conventions
        return tuple(k for k in conv.labels if k != DETECTION_LABEL and k in conv.threshold)

    def thresholds(self, overrides=None):
        """The model's thresholds with overrides ``{label: value}`` (``None`` values ignored).

        Raises:
            ValueError: an override names no output label or lies outside [0, 1].
        """
        conv = self.conventions
        merged = dict(conv.threshold)
        for label, value in (overrides or {}).items():
            if value is None:
                continue
            if label not in conv.labels:
                raise ValueError(f"No output called {label!r} to threshold; the model's outputs "
                                 f"are {', '.join(conv.labels)}. Received: thresholds={overrides}")
            value = float(value)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Thresholds must lie in [0, 1]. Received: {label}={value}")
            merged[label] = value
        return merged

    def min_distance(self, min_peak_distance_s=None):
        """The minimum pick distance in samples of the model's rate (override in seconds)."""
        seconds = (self.conventions.min_peak_distance_s if min_peak_distance_s is None
                   else min_peak_distance_s)
        if seconds is not None and seconds < 0:
            raise ValueError(f"min_peak_distance_s must be >= 0. "
                             f"Received: min_peak_distance_s={seconds}")
        return decode.min_distance_samples(seconds, self.conventions.sampling_rate)

    def picks(self, curve, label, threshold=None, min_peak_distance_s=None, max_picks=None,
              windows=None):
        """Pick sample indices of one curve by the model's pick rule (the one decoder).

        Args:
            curve: 1-D curve of output ``label`` at the model's rate.
            label: the phase label (``"P"``, ``"S"``).
            threshold: overrides the model's threshold of ``label``.
            min_peak_distance_s: overrides the model's minimum pick distance.
            max_picks: picks considered per curve, the highest first (``None``: all).
            windows: ``(starts, length)`` of the windows stacked into the curve
                (the ``"highest"`` rule picks once per window).

        Returns:
            Sorted int64 sample indices.
        """
        if threshold is None:
            threshold = self.thresholds()[label]
        return decode.pick(curve, self.conventions.pick_rule, threshold,
                           self.min_distance(min_peak_distance_s), max_peaks=max_picks,
                           windows=windows)

    def extents(self, curve, picks, threshold):
        """First and last sample ``(n, 2)`` of each pick (the run or region that holds it)."""
        return decode.extents(curve, picks, threshold, self.conventions.pick_rule)

    def detections(self, curve, threshold=None, max_events=None):
        """Detection windows ``(n, 2)`` (inclusive samples) of a detection curve.

        Runs at or above the threshold; under the ``"regions"`` pick rule
        (SeisBench's) the triggered regions of the curve.
        """
        if threshold is None:
            threshold = self.thresholds()[DETECTION_LABEL]
        if self.conventions.pick_rule == "regions":
            regions = decode.trigger_regions(np.asarray(curve), threshold)
            if max_events is not None and len(regions) > max_events:
                longest = np.lexsort((regions[:, 0], -(regions[:, 1] - regions[:, 0])))
                regions = regions[np.sort(longest[:max_events])]
            return regions
        return decode.detect_events(curve, threshold, max_events=max_events)
