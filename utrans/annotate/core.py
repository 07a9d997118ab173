"""``annotate`` and ``classify``: a model applied to continuous records.

Everything about the input comes from the model's conventions
(:mod:`utrans.conventions`): sampling rate, component order, window length,
normalisation, output labels, thresholds, minimum pick distance and pick
rule. :class:`Annotator` holds one model and the run options; its
:meth:`~Annotator.results` is the reusable core (stream -> stacked curves per
gap-free segment) on which :meth:`~Annotator.annotate`,
:meth:`~Annotator.classify` and the command line are built.

Probability traces are named as in SeisBench: channel ``<model>_<label>``
(``phasenet_P``, ``seist_m_dpk_diting_det``), with the network, station and
location of the input. When one ``NET.STA.LOC`` holds several instruments
(``HH`` and ``HN``), the band/instrument code is put in front so the traces
stay apart: ``HH_phasenet_P``.
"""

from __future__ import annotations

import logging
import pathlib
import warnings
from collections import Counter

import obspy

from utrans.annotate import picks as _picks
from utrans.annotate.batching import predict_segments
from utrans.annotate.predict import Predictor
from utrans.annotate.stacking import STACKING
from utrans.annotate.streams import MISSING_POLICIES, AnnotateWarning, group_stream
from utrans.annotate.windows import make_plan

__all__ = ["Annotator", "annotate", "classify", "resolve_model"]

logger = logging.getLogger(__name__)


def resolve_model(model, name=None):
    """The model object, its conventions and its display name.

    Args:
        model: a preset name (``"seist_m_dpk_diting"``), a registered model name
            (``"phasenet"``), a ``.keras`` path or a ``keras.Model``.
        name: display name for the output traces (default: the preset or
            registry name given, the file stem, or the model's ``name``).

    Returns:
        ``(model, conventions, name)``.

    Raises:
        KeyError: an unknown name; ValueError: a model annotate cannot apply.
    """
    from utrans.conventions import get_conventions
    from utrans.presets import load_model

    if isinstance(model, (str, pathlib.Path)):
        spec = str(model)
        default = pathlib.Path(spec).stem if spec.endswith(".keras") else spec
        model = load_model(spec)
    else:
        model = load_model(model)
        default = model.name
    conv = get_conventions(model)
    if conv.in_samples is None:
        raise ValueError(f"Model {default!r} has no fixed window length (in_samples); "
                         "annotate needs one.")
    if not conv.labels:
        raise ValueError(f"Model {default!r} names no outputs (conventions.labels).")
    outputs = model.outputs if isinstance(model.outputs, (list, tuple)) else [model.outputs]
    shapes = [tuple(o.shape) for o in outputs]
    if any(len(s) != 3 or s[1] != conv.in_samples for s in shapes) or \
            sum(s[2] for s in shapes) != len(conv.labels):
        raise ValueError(
            f"annotate applies pickers and detectors: models with one output value per input "
            f"sample for each of their labels ({'/'.join(conv.labels)}). Model {default!r} "
            f"outputs {shapes} for windows of {conv.in_samples} samples.")
    return model, conv, name or default


class Annotator:
    """One model and the options of applying it to continuous records.

    Args:
        model: preset name, registered name, ``.keras`` path or ``keras.Model``
            (:func:`utrans.presets.load_model`).
        batch_size: windows per model call (the last batch is padded; a run
            with fewer windows uses the next power of two).
        overlap: overlap of consecutive windows: a fraction in ``[0, 1)`` or a
            number of samples (default: half a window).
        blinding: samples discarded at interior window edges (default: 5% of
            the window, at most half the overlap).
        stacking: ``"avg"`` or ``"max"`` over overlapping windows.
        missing_components: ``"zeros"``, ``"copy"`` or ``"skip"`` for absent
            components (see :mod:`utrans.annotate.streams`).
        min_length_s: gap-free spans shorter than this are not annotated.
        errors: ``"warn"``: a bad station is skipped with a warning (an error
            only when no station is left); ``"raise"``: any bad station raises.
        name: display name of the model in trace channels and pick tables.
        fast: use the inference-only graph of the model where one exists
            (:mod:`utrans.annotate.fast`), numerically equal to the model.

    Returns:
        An annotator; see :meth:`annotate`, :meth:`classify`, :meth:`results`.
    """

    def __init__(self, model, *, batch_size=64, overlap=None, blinding=None, stacking="avg",
                 missing_components="zeros", min_length_s=1.0, errors="warn", name=None,
                 fast=True):
        self.model, self.conventions, self.name = resolve_model(model, name)
        if stacking not in STACKING:
            raise ValueError(f"stacking must be one of {STACKING}. Received: stacking={stacking!r}")
        if missing_components not in MISSING_POLICIES:
            raise ValueError(f"missing_components must be one of {MISSING_POLICIES}. "
                             f"Received: missing_components={missing_components!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
        if errors not in ("warn", "raise"):
            raise ValueError(f"errors must be 'warn' or 'raise'. Received: errors={errors!r}")
        self.plan = make_plan(self.conventions.in_samples, overlap, blinding)
        self.batch_size = int(batch_size)
        self.stacking = stacking
        self.missing_components = missing_components
        self.min_length_s = float(min_length_s)
        self.errors = errors
        self.fast = bool(fast)
        self._forward = None
        if self.fast:
            from utrans.annotate.fast import inference_function

            self._forward = inference_function(self.model)

    @property
    def labels(self):
        """The model's output labels."""
        return tuple(self.conventions.labels)

    # ------------------------------------------------------------------ core
    def groups(self, stream):
        """Checked instrument groups of a stream (bad ones skipped or raised per ``errors``).

        Returns:
            ``(groups, skipped)`` as :func:`utrans.annotate.streams.group_stream`.
        """
        groups, skipped = group_stream(stream, self.conventions.component_order, self.errors)
        if not groups:
            reasons = "; ".join(f"{gid}: {msg}" for gid, msg in skipped)
            raise ValueError(f"No station of the stream can be annotated. {reasons}")
        return groups, skipped

    def predictor(self, n_windows):
        """The compiled forward pass for a run of about ``n_windows`` windows."""
        batch = self.batch_size
        if n_windows < batch:
            batch = min(batch, 1 << max(0, int(n_windows - 1).bit_length()))
        return Predictor(self.model, batch, self.conventions.normalization, self._forward)

    def results(self, groups, progress=False, skipped=None):
        """Stacked model output of every gap-free segment of the groups.

        Args:
            groups: from :meth:`groups`.
            progress: show a tqdm bar over windows.
            skipped: optional list to which ``(group_id, reason)`` of groups that
                fail while resampled or cut is appended (they are skipped with a
                warning unless ``errors="raise"``).

        Yields:
            :class:`utrans.annotate.batching.SegmentResult`, group by group in time order.
        """
        rate = self.conventions.sampling_rate
        estimate = sum(self.plan.count(g.duration_samples(rate)) for g in groups)
        predictor = self.predictor(estimate)
        segments = self._segments(groups, rate, skipped)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=estimate, unit="win", desc=f"{self.name}", leave=False)
        try:
            yield from predict_segments(segments, predictor, self.plan, len(self.labels),
                                        self.stacking, bar)
        finally:
            if bar is not None:
                bar.close()

    def _segments(self, groups, rate, skipped):
        # Resampling happens here, group by group as the batch loop asks for more
        # windows; a group that fails now is skipped like a bad group at check time.
        for group in groups:
            try:
                segments = group.segments(rate, self.missing_components, self.min_length_s)
            except ValueError as err:
                if self.errors == "raise":
                    raise
                warnings.warn(f"Skipping {group.group_id}: {err}", AnnotateWarning, stacklevel=2)
                if skipped is not None:
                    skipped.append((group.group_id, str(err)))
                continue
            yield from segments

    # ------------------------------------------------------------------ outputs
    def channel_names(self, groups):
        """``group_id -> {label: channel}`` following the naming rule of the module doc."""
        per_station = Counter(g.station for g in groups)
        names = {}
        for g in groups:
            prefix = f"{g.instrument}_" if per_station[g.station] > 1 else ""
            names[g.group_id] = {label: f"{prefix}{self.name}_{label}" for label in self.labels}
        return names

    def traces(self, result, channels):
        """The probability traces of one segment result.

        Args:
            result: a :class:`~utrans.annotate.batching.SegmentResult`.
            channels: ``{label: channel}`` of its group (:meth:`channel_names`).

        Returns:
            A list of ``obspy.Trace``, one per label.
        """
        seg = result.segment
        net, sta, loc = seg.station.split(".")
        return [obspy.Trace(result.probabilities[k], header={
            "network": net, "station": sta, "location": loc, "channel": channels[label],
            "sampling_rate": seg.sampling_rate, "starttime": seg.start,
        }) for k, label in enumerate(self.labels)]

    def decode(self, result, rules):
        """Pick and detection rows of one segment result (:func:`utrans.annotate.picks.decode_segment`)."""
        seg = result.segment
        return _picks.decode_segment(
            result.probabilities, seg.start, seg.sampling_rate, rules, seg.station,
            seg.instrument, self.name, windows=(result.offsets, self.plan.in_samples))

    def rules(self, thresholds=None, min_peak_distance_s=None):
        """:class:`utrans.annotate.picks.DecodeRules` of the model with overrides."""
        return _picks.decode_rules(self.conventions, thresholds, min_peak_distance_s)

    def annotate(self, stream, progress=False):
        """Probability traces of the model over a stream.

        Args:
            stream: an ``obspy.Stream`` (not modified).
            progress: show a tqdm bar.

        Returns:
            An ``obspy.Stream``: one float32 trace per output label and gap-free
            segment, at the model's sampling rate, named as in the module doc.
        """
        groups, _ = self.groups(stream)
        names = self.channel_names(groups)
        out = obspy.Stream()
        for result in self.results(groups, progress):
            out.extend(self.traces(result, names[result.segment.group_id]))
        if not len(out):
            warnings.warn("No segment was long enough to annotate "
                          f"(min_length_s={self.min_length_s}).", AnnotateWarning, stacklevel=2)
        return out

    def classify(self, stream, thresholds=None, min_peak_distance_s=None, progress=False):
        """Picks (and detections) of the model over a stream.

        The curves of each segment are decoded as soon as they are stacked and
        then released, so memory does not grow with the record length.

        Args:
            stream: an ``obspy.Stream`` (not modified).
            thresholds: dict label -> threshold overriding the model's.
            min_peak_distance_s: overrides the model's minimum pick distance.
            progress: show a tqdm bar.

        Returns:
            A :class:`utrans.annotate.picks.ClassifyOutput`.
        """
        rules = self.rules(thresholds, min_peak_distance_s)
        groups, skipped = self.groups(stream)
        pick_rows, det_rows = [], []
        for result in self.results(groups, progress, skipped):
            p, d = self.decode(result, rules)
            pick_rows += p
            det_rows += d
        return _picks.ClassifyOutput.from_rows(
            self.name, pick_rows, det_rows if rules.detection_threshold is not None else None,
            skipped)


_ANNOTATOR_KEYS = ("batch_size", "overlap", "blinding", "stacking", "missing_components",
                   "min_length_s", "errors", "name", "fast")


def _split(options):
    unknown = sorted(set(options) - set(_ANNOTATOR_KEYS) - {"progress", "thresholds",
                                                          "min_peak_distance_s"})
    if unknown:
        raise TypeError(f"Unknown option(s) {unknown}. Known: "
                        f"{', '.join(_ANNOTATOR_KEYS + ('progress', 'thresholds', 'min_peak_distance_s'))}")
    return ({k: v for k, v in options.items() if k in _ANNOTATOR_KEYS},
            {k: v for k, v in options.items() if k not in _ANNOTATOR_KEYS})


def annotate(model, stream, **options):
    """Probability traces of a picker or detector over continuous records.

    Args:
        model: preset name (``"seist_m_dpk_diting"``), registered model name,
            ``.keras`` path or model object.
        stream: an ``obspy.Stream`` of any sampling rate, stations and
            locations (not modified).
        **options: :class:`Annotator` options (``batch_size``, ``overlap``,
            ``blinding``, ``stacking``, ``missing_components``,
            ``min_length_s``, ``errors``, ``name``, ``fast``) and ``progress``.

    Returns:
        An ``obspy.Stream`` of probability traces (channel ``<model>_<label>``).
    """
    init, rest = _split(options)
    if set(rest) - {"progress"}:
        raise TypeError(f"annotate takes no {sorted(set(rest) - {'progress'})}; "
                        "thresholds belong to classify.")
    return Annotator(model, **init).annotate(stream, progress=rest.get("progress", False))


def classify(model, stream, **options):
    """Picks (and detections) of a picker or detector over continuous records.

    Args:
        model: preset name, registered model name, ``.keras`` path or model object.
        stream: an ``obspy.Stream`` (not modified).
        **options: :class:`Annotator` options, ``thresholds`` (dict label ->
            threshold, default the model's), ``min_peak_distance_s`` and ``progress``.

    Returns:
        A :class:`utrans.annotate.picks.ClassifyOutput` with ``.picks``
        (``trace_id``, ``phase``, ``peak_time``, ``peak_value``,
        ``start_time``, ``end_time``, ``instrument``, ``model``) and, for
        models with a ``det`` output, ``.detections``.
    """
    init, rest = _split(options)
    return Annotator(model, **init).classify(stream, **rest)
