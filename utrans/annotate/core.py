"""``annotate`` and ``classify``: a model applied to continuous records.

Everything about the input comes from the model's conventions
(:mod:`utrans.core.conventions`): sampling rate, component order, window length,
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
from tqdm.auto import tqdm

from utrans.annotate.picks import ClassifyOutput, decode_segment
from utrans.annotate.batching import predict_segments
from utrans.core.errors import AnnotateWarning, ModelInputError
from utrans.pipeline import DETECTION_LABEL, Pipeline
from utrans.processing.stacking import STACKING
from utrans.processing.streams import MISSING_POLICIES, group_stream
from utrans.processing.windows import make_plan
from utrans.runtime import load_runner

__all__ = ["Annotator", "annotate", "classify", "model_name"]

logger = logging.getLogger(__name__)


def model_name(spec, runner):
    """Display name of a model: the preset or registered name given, a file's stem, or its name."""
    if isinstance(spec, (str, pathlib.Path)):
        spec = str(spec)
        path = pathlib.Path(spec)
        return path.name.split(".")[0] if path.suffix else spec
    return getattr(runner, "name", type(spec).__name__)


def _check_picker(runner, pipeline, name):
    """Raise unless the model gives one value per input sample for each of its labels."""
    conv = pipeline.conventions
    zeros = pipeline.blank_window(name, "annotate")
    if not conv.labels:
        raise ModelInputError(f"Model {name!r} names no outputs (conventions.labels).")
    try:
        curves = pipeline.curves(runner(zeros))
    except ValueError as err:
        raise ModelInputError(f"annotate applies pickers and detectors, models with one output "
                              f"value per input sample for each of their labels; model "
                              f"{name!r} does not ({err})") from None
    if curves.shape[1] != conv.in_samples:
        raise ModelInputError(
            f"annotate applies pickers and detectors: models with one output value per input "
            f"sample. Model {name!r} outputs {curves.shape[1]} samples for windows of "
            f"{conv.in_samples} samples.")


class Annotator:
    """One model and the options of applying it to continuous records.

    Args:
        model: preset name, ``.keras`` path, ``keras.Model`` or runner
            (:func:`utrans.runtime.load_runner`; a registered name only with
            ``allow_random=True``).
        batch_size: windows per model call (the last batch is padded; a run
            with fewer windows uses the next power of two).
        overlap: overlap of consecutive windows: a fraction in ``[0, 1)`` or a
            number of samples (default: the model's ``conventions.overlap``,
            else half a window).
        blinding: samples discarded at window edges, one number or ``(start,
            end)`` (default: the model's ``conventions.blinding``, else 5% of
            the window, at most half the overlap).
        stacking: ``"avg"`` or ``"max"`` over overlapping windows (default:
            the model's ``conventions.stacking``, else ``"avg"``).
        missing_components: ``"zeros"``, ``"copy"`` or ``"skip"`` for absent
            components (see :mod:`utrans.processing.streams`).
        min_length_s: gap-free spans shorter than this are not annotated.
        errors: ``"warn"``: a bad station is skipped with a warning (an error
            only when no station is left); ``"raise"``: any bad station raises.
        name: display name of the model in trace channels and pick tables.
        fast: use the inference-only graph of the model where one exists
            (:mod:`utrans.runtime.fast`), numerically equal to the model.
        allow_random: a registered model name without weights gets random
            weights (otherwise it is refused: random pickers write nonsense).
        window_grid: ``"absolute"`` (default: windows on a grid counted from
            1970, so pieces of a record give the whole record's output) or
            ``"record"`` (windows from each record's start, its edges blinded
            too: SeisBench's ``annotate``, to reproduce it).

    Returns:
        An annotator; see :meth:`annotate`, :meth:`classify`, :meth:`results`.
    """

    def __init__(self, model, *, batch_size=64, overlap=None, blinding=None, stacking=None,
                 missing_components="zeros", min_length_s=1.0, errors="warn", name=None,
                 fast=True, allow_random=False, window_grid="absolute"):
        if stacking is not None and stacking not in STACKING:
            raise ValueError(f"stacking must be one of {STACKING}. Received: stacking={stacking!r}")
        if missing_components not in MISSING_POLICIES:
            raise ValueError(f"missing_components must be one of {MISSING_POLICIES}. "
                             f"Received: missing_components={missing_components!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
        if errors not in ("warn", "raise"):
            raise ValueError(f"errors must be 'warn' or 'raise'. Received: errors={errors!r}")
        self.runner = load_runner(model, batch_size=int(batch_size), fast=fast,
                                  allow_random=allow_random)
        self.pipeline = Pipeline.of(self.runner)
        self.conventions = self.pipeline.conventions
        self.name = name or model_name(model, self.runner)
        _check_picker(self.runner, self.pipeline, self.name)
        conv = self.conventions
        # the model's own annotate settings (SeisBench's weight files) where the caller sets none
        self.plan = make_plan(conv.in_samples, conv.overlap if overlap is None else overlap,
                              conv.blinding if blinding is None else blinding, window_grid)
        self.batch_size = self.runner.batch_size
        self.stacking = stacking or conv.stacking or "avg"
        self.missing_components = missing_components
        self.min_length_s = float(min_length_s)
        self.errors = errors

    @property
    def labels(self):
        """The model's output labels."""
        return tuple(self.conventions.labels)

    # ------------------------------------------------------------------ core
    def groups(self, stream):
        """Checked instrument groups of a stream (bad ones skipped or raised per ``errors``).

        Returns:
            ``(groups, skipped)`` as :func:`utrans.processing.streams.group_stream`.
        """
        groups, skipped = group_stream(stream, self.conventions.component_order, self.errors)
        if not groups:
            reasons = "; ".join(f"{gid}: {msg}" for gid, msg in skipped)
            raise ValueError(f"No station of the stream can be annotated. {reasons}")
        return groups, skipped

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
        runner = self.runner
        if estimate < runner.batch_size:  # a short run: a smaller batch, padded work avoided
            runner = runner.resized(min(runner.batch_size,
                                        1 << max(0, int(estimate - 1).bit_length())))
        segments = self._segments(groups, rate, skipped)
        bar = None
        if progress:
            bar = tqdm(total=estimate, unit="win", desc=f"{self.name}", leave=False)
        try:
            yield from predict_segments(segments, runner, self.pipeline, self.plan,
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
            "sampling_rate": seg.sampling_rate, "starttime": result.start,
        }) for k, label in enumerate(self.labels)]

    def thresholds(self, overrides=None):
        """The model's thresholds with overrides ``{label: value}`` (see the pipeline)."""
        return self.pipeline.thresholds(overrides)

    def decode(self, result, thresholds=None, min_peak_distance_s=None):
        """Pick and detection rows of one segment result (:func:`utrans.annotate.picks.decode_segment`)."""
        return decode_segment(result, self.pipeline, thresholds or self.thresholds(),
                                     min_peak_distance_s, self.name, self.plan.in_samples)

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
        merged = self.thresholds(thresholds)
        self.pipeline.min_distance(min_peak_distance_s)  # checked before any work
        groups, skipped = self.groups(stream)
        pick_rows, det_rows = [], []
        for result in self.results(groups, progress, skipped):
            p, d = self.decode(result, merged, min_peak_distance_s)
            pick_rows += p
            det_rows += d
        return ClassifyOutput.from_rows(
            self.name, pick_rows, det_rows if DETECTION_LABEL in merged else None, skipped)


_ANNOTATOR_KEYS = ("batch_size", "overlap", "blinding", "stacking", "missing_components",
                   "min_length_s", "errors", "name", "fast", "allow_random", "window_grid")


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
