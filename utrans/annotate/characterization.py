"""Characterise picks: first-motion polarity, magnitude, back-azimuth and distance per P pick.

::

    import obspy
    from utrans.annotate import characterize, classify

    st = obspy.read("day.mseed")
    picks = classify("seist_m_dpk_diting", st).picks
    table = characterize(st, picks, models=["seist_m_pmp_diting", "seist_m_emg_diting",
                                            "seist_m_baz_diting", "seist_m_dis_diting"])

A *window model* gives one estimate per window: SeisT ``pmp``/``emg``/``baz``/``dis``,
DiTingMotion, the U-Trans CCT and ViT heads, MagNet, BAZ-Network and
distPT-Network. For every P pick each model gets the window it was trained on,
through its pipeline (:class:`utrans.pipeline.Pipeline`):

* the record of the pick's instrument, joined, grouped and resampled to the
  model's sampling rate exactly as annotate does it
  (:mod:`utrans.processing.streams`), its components in the model's
  ``component_order``;
* ``in_samples`` long, the P pick at sample ``int(p_position_ratio *
  in_samples)`` (the window starts ``round(P) - int(ratio * in_samples)``);
  samples the record does not hold (before its start, after its end, across
  a gap, an absent component) are zero padding;
* normalised as the model's conventions say over the record samples of the
  window, the padding left out, as in training; a model that takes each
  component and its first difference (DiTingMotion: ``z, dz``) gets them.

Windows are batched per model (one compiled forward pass of fixed batch
shape) and the raw outputs become estimates through the model's head
(:mod:`utrans.pipeline.heads`): SeisT ``pmp`` softmax -> probability of an
upward first motion, MagNet -> magnitude and a standard deviation from its
log variance, BAZ-Network (cos, sin) and SeisT degrees -> back-azimuth,
distPT-Network -> distance and P travel time with their deviations.

**Where P sits in the window.** A model's ``conventions.p_position_ratio``
says it (DiTingMotion: 0.5, its 128-sample window centred on P; the SeisT
``pmp``/``emg``/``baz``/``dis`` presets: 0.1, see :mod:`utrans.core.presets`). For a
model whose conventions give none (MagNet, BAZ-Network, distPT-Network, the
U-Trans CCT and ViT heads and any user model), the ``p_position_ratio``
option is used (default 0.1: P about a tenth into the window, where these
models meet P in the STEAD-like traces this package trains them on).

**Columns** (``<model>`` is the name the model was given as: preset or
registry name, ``.keras`` file stem, or the model's ``name``):

* ``polarity__<model>``: ``"U"`` or ``"D"``; ``polarity_prob__<model>``: the
  probability of that polarity;
* ``magnitude__<model>``, and ``magnitude_std__<model>`` where the model
  gives an uncertainty (MagNet);
* ``back_azimuth_deg__<model>``: degrees clockwise from north in [0, 360);
* ``distance_km__<model>``, and for distPT-Network ``distance_km_std__``,
  ``p_travel_s__`` and ``p_travel_s_std__``;
* ``characterize_note``: for each model that left a P pick empty,
  ``<model>: <reason>`` (``"; "``-separated); empty when every estimate of
  the row is filled. Picks of other phases are not characterised and carry
  no note.

**Edges.** A pick is characterised by a model when the gap-free record
around it holds at least ``min_span_s[0]`` seconds before P and
``min_span_s[1]`` seconds after it (each capped by the part of the model's
window on that side, so a 128-sample polarity window needs only its own
0.64 s). Otherwise the estimate stays empty (NaN) and the note says how
much record there was. The rest of a window may be zero padding.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings

import numpy as np
import obspy

from utrans.annotate.core import model_name
from utrans.core.errors import AnnotateWarning, ModelInputError
from utrans.pipeline import ESTIMATES, Pipeline
from utrans.processing.streams import MISSING_POLICIES, group_stream
from utrans.processing.windows import nearest_sample
from utrans.runtime import load_runner

__all__ = ["NOTE_COLUMN", "Characterizer", "WindowModel", "characterize", "estimate_columns"]

logger = logging.getLogger(__name__)

NOTE_COLUMN = "characterize_note"

#: Output columns per quantity (each gets ``__<model>`` appended); the first is always filled.
_QUANTITY_COLUMNS = {
    "polarity": ("polarity", "polarity_prob"),
    "magnitude": ("magnitude", "magnitude_std"),
    "backazimuth": ("back_azimuth_deg",),
    "distance": ("distance_km", "distance_km_std", "p_travel_s", "p_travel_s_std"),
}
# The output label that names the estimate of a quantity (models given as (model, quantity)).
_QUANTITY_LABEL = {"polarity": "U", "magnitude": "magnitude", "backazimuth": "back_azimuth_deg",
                   "distance": "distance_km"}


def _columns(estimates, name):
    """Characterisation columns ``<column>__<name>`` of a model's estimates."""
    out = {}
    if "polarity_up" in estimates:
        up = np.asarray(estimates["polarity_up"], dtype=np.float64)
        out[f"polarity__{name}"] = np.where(up >= 0.5, "U", "D")
        out[f"polarity_prob__{name}"] = np.maximum(up, 1.0 - up)
    for key, values in estimates.items():
        if key != "polarity_up" and ESTIMATES.get(key) in _QUANTITY_COLUMNS:
            out[f"{key}__{name}"] = np.asarray(values, dtype=np.float64)
    return out


@dataclasses.dataclass
class WindowModel:
    """One window model, its pipeline and where P sits in its windows.

    Args:
        name: column suffix.
        runner: the model's runner (:mod:`utrans.runtime`).
        pipeline: its :class:`~utrans.pipeline.Pipeline` (with the P position).
        quantity: ``"polarity"``, ``"magnitude"``, ``"backazimuth"`` or ``"distance"``.
        given: the columns the model fills.
    """

    name: str
    runner: object
    pipeline: object
    quantity: str
    given: list = dataclasses.field(default_factory=list)

    @classmethod
    def load(cls, spec, p_position_ratio=0.1, batch_size=64):
        """Load a window model: a preset, a ``.keras`` file, a model object or a runner.

        Args:
            spec: the model, or ``(model, quantity)`` to name the quantity of a
                model whose output labels do not tell it.
            p_position_ratio: P position for a model whose conventions give none.
            batch_size: windows per model call.

        Returns:
            A :class:`WindowModel`.

        Raises:
            ModelInputError: a model that gives no single estimate per window,
                or whose quantity cannot be told.
        """
        quantity = None
        if isinstance(spec, tuple):
            spec, quantity = spec
        runner = load_runner(spec, batch_size=batch_size)
        name = model_name(spec, runner)
        try:
            pipeline = Pipeline.of(runner)
        except TypeError as err:
            raise ModelInputError(f"Model {name!r} carries no conventions: set its sampling "
                                  "rate, component order and window length as "
                                  "model.conventions.") from err
        conv = pipeline.conventions
        known = ", ".join(_QUANTITY_COLUMNS)
        if quantity is not None:
            if quantity not in _QUANTITY_COLUMNS:
                raise ModelInputError(f"characterize measures {known}. Received: quantity="
                                      f"{quantity!r}")
            conv = conv.replace(labels=(_QUANTITY_LABEL[quantity],))
        if conv.p_position_ratio is None:
            logger.info("%s: conventions give no P position; P at %.3g of the window", name,
                        p_position_ratio)
            conv = conv.replace(p_position_ratio=float(p_position_ratio))
        pipeline = Pipeline(conv)
        # One flat window through the model: traces the forward pass once and tells
        # which estimates the model gives (an uncertainty only where it has one).
        flat = pipeline.blank_window(name, "characterize")
        try:
            estimates = pipeline.estimates(runner(flat))
        except ValueError as err:
            raise ModelInputError(f"characterize applies window models ({known}); model "
                                  f"{name!r} gives no single estimate per window ({err}). "
                                  "Pickers go to annotate/classify; a model whose outputs do "
                                  "not say what they measure is given as (model, quantity).") \
                from None
        found = {ESTIMATES.get(k) for k in estimates} & set(_QUANTITY_COLUMNS)
        if len(found) != 1:
            raise ModelInputError(f"characterize applies window models ({known}); {name!r} "
                                  f"estimates {', '.join(sorted(estimates))}.")
        wm = cls(name=name, runner=runner, pipeline=pipeline, quantity=found.pop())
        wm.given = list(_columns(estimates, name))
        return wm

    @property
    def conventions(self):
        """The model's conventions (with the P position used)."""
        return self.pipeline.conventions

    @property
    def p_position_ratio(self):
        """Where P sits in the window, as a fraction of it."""
        return self.conventions.p_position_ratio

    @property
    def p_index(self):
        """The window sample on which P sits."""
        return int(self.conventions.in_samples * self.p_position_ratio)

    def columns(self):
        """The columns this model fills."""
        return list(self.given)

    def estimates(self, windows, valid):
        """The model's columns for raw windows ``(n, in_samples, components)``.

        Args:
            windows: raw samples at the model's rate, in its component order.
            valid: ``(n, 2)`` ranges of window samples that hold record data.

        Returns:
            dict column -> array of length ``n``.
        """
        inputs = self.pipeline.window_inputs(windows, valid)
        batch = self.runner.batch_size
        parts = [self.pipeline.estimates(self.runner(inputs[i:i + batch]))
                 for i in range(0, len(inputs), batch)]
        merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return _columns(merged, self.name)


def estimate_columns(window_models):
    """Every column the models may fill, in order, with the note last."""
    return [c for wm in window_models for c in wm.columns()] + [NOTE_COLUMN]


class Characterizer:
    """Window models loaded once, applied to the P picks of any number of streams.

    Args:
        models: list of preset names, registered names, ``.keras`` paths,
            model objects, or ``(model, quantity)`` tuples.
        batch_size: windows per model call.
        min_span_s: ``(before, after)``: record needed around P, in seconds
            (module doc).
        p_position_ratio: P position for models whose conventions give none.
        missing_components: ``"zeros"``, ``"copy"`` or ``"skip"`` for absent
            components (as in annotate).
        phases: pick phases that are characterised.

    Returns:
        A characterizer; see :meth:`characterize`.
    """

    def __init__(self, models, *, batch_size=64, min_span_s=(2.0, 10.0), p_position_ratio=0.1,
                 missing_components="zeros", phases=("P",)):
        if isinstance(models, (str, tuple)) or not hasattr(models, "__iter__"):
            models = [models]
        models = list(models)
        if not models:
            raise ValueError("characterize needs at least one window model. Received: models=[]")
        if missing_components not in MISSING_POLICIES:
            raise ValueError(f"missing_components must be one of {MISSING_POLICIES}. "
                             f"Received: missing_components={missing_components!r}")
        before, after = (float(v) for v in min_span_s)
        if before < 0 or after < 0:
            raise ValueError(f"min_span_s must be two non-negative durations. "
                             f"Received: min_span_s={min_span_s}")
        if not 0.0 <= float(p_position_ratio) <= 1.0:
            raise ValueError(f"p_position_ratio must lie in [0, 1]. "
                             f"Received: p_position_ratio={p_position_ratio}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
        self.window_models = [WindowModel.load(m, p_position_ratio, int(batch_size))
                              for m in models]
        names = [wm.name for wm in self.window_models]
        if len(set(names)) != len(names):
            raise ValueError(f"Two models share a name; columns would clash. Received: {names}")
        self.batch_size = int(batch_size)
        self.min_span_s = (before, after)
        self.missing_components = missing_components
        self.phases = tuple(phases)

    @property
    def columns(self):
        """The columns :meth:`characterize` adds."""
        return estimate_columns(self.window_models)

    def characterize(self, stream, picks):
        """The picks with one column per estimate and a note column.

        Args:
            stream: ``obspy.Stream`` holding the records of the picks (not modified).
            picks: DataFrame with ``trace_id`` (``NET.STA.LOC``), ``phase``,
                ``peak_time`` (the pick time) and optionally ``instrument``
                (band and instrument code), as :func:`utrans.annotate.classify` gives.

        Returns:
            A copy of ``picks`` with the columns of :attr:`columns` (module doc).
        """
        missing = {"trace_id", "phase", "peak_time"} - set(picks.columns)
        if missing:
            raise ValueError(f"picks need the columns trace_id, phase and peak_time. "
                             f"Received: columns={list(picks.columns)}")
        out = picks.copy().reset_index(drop=True)
        notes = [[] for _ in range(len(out))]
        rows = [i for i, phase in enumerate(out["phase"]) if phase in self.phases]
        times = [obspy.UTCDateTime(out.at[i, "peak_time"]) for i in rows]
        segments = {}  # (rate, order) -> {(station, instrument): [Segment]}
        for wm in self.window_models:
            columns = {c: np.full(len(out), np.nan, dtype=object if c.startswith("polarity__")
                                  else np.float64) for c in wm.columns()}
            key = (wm.conventions.sampling_rate, wm.conventions.component_order)
            if key not in segments:
                segments[key] = self._segments(stream, *key)
            windows, valid, where = [], [], []
            for i, t in zip(rows, times):
                instrument = out.at[i, "instrument"] if "instrument" in out.columns else ""
                instrument = instrument if isinstance(instrument, str) else ""
                window, reason = self._window(wm, segments[key], out.at[i, "trace_id"],
                                              instrument, t)
                if window is None:
                    notes[i].append(f"{wm.name}: {reason}")
                else:
                    windows.append(window[0])
                    valid.append(window[1])
                    where.append(i)
            if windows:
                values = wm.estimates(np.stack(windows), np.stack(valid))
                for col, vals in columns.items():
                    vals[where] = values[col]
            for col, vals in columns.items():
                out[col] = vals
        out[NOTE_COLUMN] = ["; ".join(n) for n in notes]
        return out

    def _segments(self, stream, rate, order):
        """Gap-free segments at ``rate`` per (station, instrument); problems noted."""
        with warnings.catch_warnings():
            # classify already reported these on the same stream
            warnings.simplefilter("ignore", AnnotateWarning)
            groups, problems = group_stream(stream, order, errors="warn")
            found = {}
            for group in groups:
                try:
                    segs = group.segments(rate, self.missing_components, min_length_s=0.0)
                except ValueError as err:
                    problems.append((group.group_id, str(err)))
                    continue
                found[(group.station, group.instrument)] = segs
        found["problems"] = dict(problems)
        return found

    def _window(self, wm, segments, station, instrument, t):
        """``((window, valid), None)`` or ``(None, reason)`` for the pick at ``t``."""
        candidates = [k for k in segments if k != "problems" and k[0] == station
                      and (not instrument or k[1] == instrument)]
        if not candidates:
            bad = [f"{gid}: {msg}" for gid, msg in segments["problems"].items()
                   if gid.startswith(f"{station}.{instrument or ''}")]
            return None, (bad[0] if bad else f"no record of {station} {instrument or ''}".strip())
        conv = wm.conventions
        rate, length = conv.sampling_rate, conv.in_samples
        for key in candidates:
            for seg in segments[key]:
                if not seg.start - 0.5 / rate <= t <= seg.end + 0.5 / rate:
                    continue
                p = int(nearest_sample((t - seg.start) * rate))
                before_need = min(wm.p_index, round(self.min_span_s[0] * rate))
                after_need = min(length - 1 - wm.p_index, round(self.min_span_s[1] * rate))
                have_after = seg.length - 1 - p
                if p < before_need or have_after < after_need:
                    return None, (f"{p / rate:.2f} s of record before P and "
                                  f"{have_after / rate:.2f} s after, needs "
                                  f"{before_need / rate:g} s and {after_need / rate:g} s")
                return _cut(seg, p - wm.p_index, length), None
        return None, "no record at the pick time"


def _cut(segment, start, length):
    """Samples ``[start, start + length)`` of a segment, zero outside it.

    Returns:
        ``(window, valid)``: ``(length, components)`` float64 and the
        ``[start, stop)`` window samples that hold record data.
    """
    window = np.zeros((length, len(segment.components)), dtype=np.float64)
    a, b = max(start, 0), min(start + length, segment.length)
    if b > a:
        for c, data in enumerate(segment.components):
            if data is not None:
                window[a - start:b - start, c] = data[a:b]
    return window, np.array([a - start, max(b, a) - start])


def characterize(stream, picks, models, **options):
    """Estimate polarity, magnitude, back-azimuth and distance at every P pick.

    Args:
        stream: ``obspy.Stream`` with the records of the picks (not modified).
        picks: DataFrame of picks (``trace_id``, ``phase``, ``peak_time``,
            ``instrument``), e.g. ``classify(...).picks``.
        models: window models: preset names (``"seist_m_pmp_diting"``),
            registered names, ``.keras`` paths, model objects or
            ``(model, quantity)`` tuples.
        **options: :class:`Characterizer` options (``batch_size``,
            ``min_span_s``, ``p_position_ratio``, ``missing_components``, ``phases``).

    Returns:
        A copy of ``picks`` with one column per estimate and ``characterize_note``
        (module doc).
    """
    return Characterizer(models, **options).characterize(stream, picks)
