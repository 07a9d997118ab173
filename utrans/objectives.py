"""What a model is trained to output: its targets and its loss, one objective per head.

A model's conventions name its head (``conventions.head``); the objective of
that head decides, for a training or test run,

* the **targets**: the task's labeller (:mod:`utrans.labels`) makes the
  quantity's targets from the metadata and the picks after augmentation;
  the objective turns them into what the model outputs, in the model's
  window (:class:`utrans.pipeline.Frame`): SeisT soft labels at the model's
  rate (:class:`utrans.labels.SeisTLabeller`), one-hot classes, degrees, the
  pairs of two-output models;
* the **loss**, as the reference trains each model (SeisT's ``config.py``
  and ``models/loss.py``): weighted binary cross-entropy (0.5, 1, 1 for det,
  P, S) for SeisT ``dpk`` and EQTransformer; cross-entropy (``eps`` 1e-6)
  over (noise, P, S) for PhaseNet and over (up, down) for SeisT ``pmp``;
  Huber for the SeisT regressions (magnitude, back-azimuth in degrees,
  distance in km); the aleatoric-uncertainty loss of Mousavi & Beroza,
  summed over the batch, for MagNet and dist-PT Network (weights 0.1
  distance, 0.9 travel time); MSE on (cos, sin) for BAZ-Network; focal
  losses on both heads (clarity and polarity, weights 1, 1) for DiTingMotion;
  the task's own loss for the U-Trans models.

Objective options (each objective lists its own in ``OPTIONS``; every default
is the reference's): ``label_width_s``, ``label_shape``, ``sigma``,
``coda_ratio`` (pick and detection targets), ``channel_weights`` /
``class_weights`` / ``loss_weights`` / ``loss_reduction`` / ``gamma`` /
``delta`` (losses) and ``clarity_key`` (DiTingMotion). ``fit(...,
objective_options={...})`` and ``trainerN.py --objective_options JSON`` set
them; an unknown option or one of the wrong kind is one error naming the
objective's options.

:func:`get_objective` chooses the objective a model's conventions name; a
user's model with a new head registers one with :func:`register_objective`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import keras
import numpy as np

from utrans.labels import Labeller, SeisTLabeller, get_labeller
from utrans.models.losses import (
    AleatoricLoss,
    FocalLoss,
    WeightedBinaryCrossentropy,
    WeightedCategoricalCrossentropy,
)
from utrans.pipeline import Pipeline
from utrans.processing.resample import interpolate
from utrans.processing.windows import cut

__all__ = [
    "Objective",
    "ObjectiveLabeller",
    "get_objective",
    "list_objectives",
    "register_objective",
]

_OBJECTIVES = {}


def register_objective(head):
    """Register an :class:`Objective` subclass for the models whose conventions name ``head``."""

    def decorator(cls):
        if head in _OBJECTIVES and _OBJECTIVES[head] is not cls:
            raise ValueError(f"An objective is already registered for the head {head!r}.")
        _OBJECTIVES[head] = cls
        return cls

    return decorator


def list_objectives():
    """Heads with a registered objective."""
    return sorted(_OBJECTIVES)


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_option(owner, key, value, default):
    """An option given as the kind of value its default is (number, text, numbers)."""
    if _is_number(default):
        ok = _is_number(value) and math.isfinite(value)
        kind = "a finite number"
    elif isinstance(default, str):
        ok, kind = isinstance(value, str), "text"
    elif isinstance(default, tuple):
        ok = (isinstance(value, (list, tuple)) and len(value) == len(default)
              and all(_is_number(v) and math.isfinite(v) for v in value))
        kind = f"{len(default)} finite numbers"
    else:
        return
    if not ok:
        raise ValueError(f"{owner} option {key} must be {kind} (default {default!r}). "
                         f"Received: {key}={value!r}")


def frame_curves(curves, frame):
    """Data-frame curves ``(batch, samples, k)`` in the model's window (rate and cut of ``frame``)."""
    if frame is None:
        return curves
    curves = np.asarray(curves, dtype=np.float32)
    if frame.ratio != 1.0:
        curves = interpolate(curves, int(round(curves.shape[1] * frame.ratio)), axis=1)
    if np.all(frame.start == 0) and curves.shape[1] == frame.length:
        return curves
    return cut(curves, frame.start, frame.length)[0]


class ObjectiveLabeller(Labeller):
    """The labeller a DataGenerator uses for training: the task's targets, then the objective's.

    Args:
        objective: the :class:`Objective`.
        base: the task's labeller.
    """

    def __init__(self, objective, base):
        self.objective = objective
        self.base = base
        self.required = tuple(base.required)
        # a window cut around P needs the P pick of every earthquake trace
        around_p = (("trace_p_arrival_sample",)
                    if objective.conventions.p_position_ratio is not None else ())
        self.required_earthquake = tuple(dict.fromkeys(
            tuple(base.required_earthquake) + tuple(objective.required_earthquake()) + around_p))
        self.uses_inputs = getattr(base, "uses_inputs", False)

    def label_batch(self, batch, rng=None, frame=None, inputs=None):
        y = self.base.label_batch(batch, rng, frame=frame, inputs=inputs)
        return self.objective.targets(y, batch, frame)

    def get_config(self):
        return {"objective": type(self.objective).__name__, "base": repr(self.base)}


class Objective:
    """The task's targets in the model's window and the task's loss (the U-Trans models).

    Args:
        task: the :class:`utrans.core.tasks.Task`.
        conventions: the model's :class:`~utrans.core.conventions.Conventions`.
        **options: the objective's options (the keys of ``OPTIONS``;
            ``None`` keeps the default); an unknown option raises ``TypeError``.
    """

    #: The options this objective takes and their defaults (the reference's).
    OPTIONS: ClassVar[dict] = {}

    def __init__(self, task, conventions, **options):
        self.task = task
        self.conventions = conventions
        self.pipeline = Pipeline(conventions)
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            raise TypeError(f"{type(self).__name__} has no option {', '.join(unknown)}. Its "
                            f"options: {', '.join(sorted(self.OPTIONS)) or 'none'}. Received: "
                            + ", ".join(f"{k}={options[k]!r}" for k in unknown))
        for key, value in options.items():
            if value is not None:
                _check_option(type(self).__name__, key, value, self.OPTIONS[key])
        self.options = {**self.OPTIONS, **{k: v for k, v in options.items() if v is not None}}
        if conventions.p_position_ratio is not None and task.kind == "picking":
            raise ValueError("p_position_ratio applies to scalar tasks (polarity, magnitude, "
                             "back-azimuth, distance) only. Received: "
                             f"p_position_ratio={conventions.p_position_ratio} for the "
                             f"{task.name} task")

    def settings(self):
        """JSON-serialisable conventions and options (recorded in ``training_config.json``)."""
        return {**self.conventions.to_config(),
                "options": {k: _jsonable(v) for k, v in self.options.items()}}

    def required_earthquake(self):
        """Metadata keys the targets need besides the task's (earthquake traces)."""
        return ()

    def labeller(self, base):
        """The labeller of a training run (``base``: the task's labeller)."""
        return ObjectiveLabeller(self, base)

    def targets(self, y, batch, frame):
        """Model targets from the task's targets ``y`` of a batch (in the model's ``frame``)."""
        y = np.asarray(y)
        return frame_curves(y, frame) if y.ndim == 3 else y

    def loss(self):
        """``(loss, loss_weights)`` for ``model.compile``."""
        return self.task.loss, None


@register_objective("utrans")
class DirectObjective(Objective):
    """U-Trans downstream models: the task's targets as they are, the task's loss."""


@register_objective("reconstruction")
class ReconstructionObjective(Objective):
    """The U-Trans backbone in pretraining: the clean window restored from a masked one (task loss).

    The task's labeller (:class:`utrans.labels.ReconstructionLabeller`) keeps
    the clean model inputs as the target and masks the inputs in place.
    """

    def targets(self, y, batch, frame):
        return {"reconstruction": np.asarray(y, dtype=np.float32)}

    def loss(self):
        return {"reconstruction": self.task.loss}, None


@register_objective("curve_picking")
class CurvePickingObjective(Objective):
    """Pickers with one sigmoid curve per label among (det, P, S), trained with the task's loss.

    The U-Trans EQCCT pickers output one curve (``labels=("P",)`` or
    ``("S",)``): their targets are that channel of the picking targets.
    """

    _CHANNELS: ClassVar[dict] = {"det": 0, "P": 1, "S": 2}

    def targets(self, y, batch, frame):
        try:
            channels = [self._CHANNELS[label] for label in self.conventions.labels]
        except KeyError as err:
            raise ValueError(f"A picking model's labels must be among det, P, S. Received: "
                             f"labels={self.conventions.labels}") from err
        return frame_curves(np.asarray(y, dtype=np.float32)[..., channels], frame)


_LABEL_OPTIONS = dict(label_width_s=0.5, label_shape="gaussian", sigma=10.0)
# SeisT names of the curves a model's labels stand for.
_SEIST_NAMES = {"det": "det", "P": "ppk", "S": "spk", "N": "non"}


@register_objective("detection_picking")
class DetectionPickingObjective(Objective):
    """Sigmoid (det, P, S) curves, weighted BCE: SeisT ``dpk`` and EQTransformer.

    Targets are SeisT's soft labels (:class:`utrans.labels.SeisTLabeller`),
    built at the model's rate and in its window from the picks after
    augmentation, in the order of the model's labels.

    Options:
        label_width_s: label width in seconds (0.5; ``int(0.5 * rate)`` samples).
        label_shape: ``"gaussian"``, ``"triangle"``, ``"box"`` or ``"sigmoid"``.
        sigma: Gaussian sigma in samples of the model's rate (10, whatever the width).
        coda_ratio: detection ends at ``S + coda_ratio * (S - P)`` (2.0).
        channel_weights: BCE weights of det, P, S (0.5, 1, 1).
    """

    OPTIONS: ClassVar[dict] = dict(_LABEL_OPTIONS, coda_ratio=2.0, channel_weights=(0.5, 1.0, 1.0))

    def seist_labeller(self):
        """The :class:`utrans.labels.SeisTLabeller` of the model's window and labels."""
        try:
            names = [_SEIST_NAMES[label] for label in self.conventions.labels]
        except KeyError as err:
            raise ValueError(f"Soft-label targets need labels among det, P, S, N. Received: "
                             f"labels={self.conventions.labels}") from err
        opts = {k: self.options[k] for k in ("label_width_s", "label_shape", "sigma", "coda_ratio")
                if k in self.options}
        return SeisTLabeller(names, sampling_rate=self.conventions.sampling_rate,
                             samples=self.conventions.in_samples, **opts)

    def required_earthquake(self):
        return ("trace_p_arrival_sample", "trace_s_arrival_sample")

    def targets(self, y, batch, frame):
        return self.seist_labeller().label_batch(batch, frame=frame)

    def loss(self):
        return WeightedBinaryCrossentropy(self.options["channel_weights"]), None


@register_objective("phasenet")
class PhaseNetObjective(DetectionPickingObjective):
    """PhaseNet: softmax over (noise, P, S) per sample, cross-entropy.

    Targets: SeisT's ``non``, ``ppk``, ``spk`` soft labels at the model's rate
    (``non = max(1 - P - S, 0)``), in the order of the model's labels; loss:
    cross-entropy with ``eps`` 1e-6 and class weights 1, 1, 1 (SeisT's ``CELoss``).

    Options:
        label_width_s, label_shape, sigma: as :class:`DetectionPickingObjective`.
        class_weights: cross-entropy weights of the classes, in label order (1, 1, 1).
    """

    OPTIONS: ClassVar[dict] = dict(_LABEL_OPTIONS, class_weights=(1.0, 1.0, 1.0))

    def loss(self):
        return WeightedCategoricalCrossentropy(self.options["class_weights"]), None


def _up_down(up):
    """``(B, 1)`` probability of up -> one-hot ``(B, 2)`` (up, down), SeisT's ``pmp`` classes."""
    up = np.asarray(up, dtype=np.float32)[:, :1]
    return np.concatenate([up, 1.0 - up], axis=-1).astype(np.float32)


def _column(batch, key):
    return np.asarray(batch.meta[key], dtype=np.float64)


@register_objective("seist_pmp")
class SoftmaxPolarityObjective(Objective):
    """SeisT ``pmp``: softmax over (up, down), cross-entropy (SeisT's ``CELoss``).

    Options:
        class_weights: weights of up, down (1, 1).
    """

    OPTIONS: ClassVar[dict] = dict(class_weights=(1.0, 1.0))

    def targets(self, y, batch, frame):
        return _up_down(y)

    def loss(self):
        return WeightedCategoricalCrossentropy(self.options["class_weights"]), None


@register_objective("seist_regression")
class HuberObjective(Objective):
    """SeisT ``emg``/``dis``: ``scale * sigmoid`` (magnitude, km), Huber loss on the raw value.

    Options:
        delta: Huber threshold (1.0, as ``torch.nn.HuberLoss()``).
    """

    OPTIONS: ClassVar[dict] = dict(delta=1.0)

    def loss(self):
        return keras.losses.Huber(delta=self.options["delta"]), None


@register_objective("seist_baz")
class DegreesObjective(HuberObjective):
    """SeisT ``baz``: ``360 * sigmoid`` degrees, Huber on degrees.

    The target is the metadata's ``path_back_azimuth_deg`` modulo 360 in
    float32 (as the reference reads it), not recomputed from the task's
    (cos, sin), whose float32 rounding would move it by up to 3e-5 degrees.
    """

    def required_earthquake(self):
        return ("path_back_azimuth_deg",)

    def targets(self, y, batch, frame):
        deg = _column(batch, "path_back_azimuth_deg").astype(np.float32)
        return (deg % np.float32(360.0))[:, None]


@register_objective("magnet")
class AleatoricObjective(Objective):
    """MagNet: (magnitude, log variance) with the aleatoric-uncertainty loss.

    Options:
        loss_reduction: ``"sum"`` over the batch (the reference's
            ``MousaviLoss``) or ``"sum_over_batch_size"`` (the mean).
    """

    OPTIONS: ClassVar[dict] = dict(loss_reduction="sum")

    def loss(self):
        return AleatoricLoss(reduction=self.options["loss_reduction"]), None


@register_objective("baz_network")
class CosSinObjective(Objective):
    """BAZ-Network: two outputs (cos, sin) of the back-azimuth, MSE on each."""

    def targets(self, y, batch, frame):
        y = np.asarray(y, dtype=np.float32)
        return (y[:, :1], y[:, 1:2])

    def loss(self):
        return ["mse", "mse"], None


@register_objective("distpt_network")
class DistanceTravelTimeObjective(Objective):
    """dist-PT Network: distance (km) and P travel time (s), each (value, log variance).

    Both outputs are trained with the aleatoric loss, summed over the batch,
    weights 0.1 (distance) and 0.9 (travel time) as in the reference
    configuration; the traces need ``path_p_travel_sec`` (STEAD
    ``p_travel_sec``) besides the distance.

    Options:
        loss_reduction: ``"sum"`` (reference) or ``"sum_over_batch_size"``.
        loss_weights: weights of the distance and travel-time losses (0.1, 0.9).
    """

    OPTIONS: ClassVar[dict] = dict(loss_reduction="sum", loss_weights=(0.1, 0.9))

    def required_earthquake(self):
        return ("path_p_travel_sec",)

    def targets(self, y, batch, frame):
        travel = _column(batch, "path_p_travel_sec").astype(np.float32)[:, None]
        return (np.asarray(y, dtype=np.float32)[:, :1], travel)

    def loss(self):
        red = self.options["loss_reduction"]
        return [AleatoricLoss(reduction=red), AleatoricLoss(reduction=red)], \
            list(self.options["loss_weights"])


@register_objective("ditingmotion")
class ClarityPolarityObjective(Objective):
    """DiTingMotion: focal losses on the clarity and polarity softmaxes (weights 1, 1).

    Without clarity labels (``clarity_key=None``, the default: none of the
    supported formats carries them) the clarity targets are all zero, which
    makes the clarity loss 0: only polarity is learnt.

    Options:
        clarity_key: metadata column of the clarity (0 impulsive, 1 emergent,
            NaN unknown), required for every earthquake trace when given.
        gamma: focal exponent (2).
        loss_weights: weights of the clarity and polarity losses (1, 1).
    """

    OPTIONS: ClassVar[dict] = dict(clarity_key=None, gamma=2.0, loss_weights=(1.0, 1.0))

    def required_earthquake(self):
        key = self.options["clarity_key"]
        return (key,) if key else ()

    def targets(self, y, batch, frame):
        polarity = _up_down(y)
        clarity = np.zeros_like(polarity)
        key = self.options["clarity_key"]
        if key:
            c = _column(batch, key)
            clarity[:, 0] = c == 0
            clarity[:, 1] = c == 1
        return (clarity, polarity)

    def loss(self):
        gamma = self.options["gamma"]
        return [FocalLoss(gamma=gamma), FocalLoss(gamma=gamma)], list(self.options["loss_weights"])


def get_objective(task, model, **options):
    """The objective of ``model`` on ``task``, chosen by the model's conventions.

    Args:
        task: the :class:`utrans.core.tasks.Task`.
        model: a utrans model (its ``conventions``), a
            :class:`~utrans.core.conventions.Conventions` or a
            :class:`~utrans.pipeline.Pipeline`.
        **options: the objective's options (``None`` values are ignored).

    Returns:
        An :class:`Objective`.

    Raises:
        KeyError: the conventions name a head with no objective.
        TypeError: an option the objective does not take.
    """
    conv = Pipeline.of(model).conventions
    if conv.head not in _OBJECTIVES:
        raise KeyError(f"No objective is registered for the head {conv.head!r} "
                       f"(utrans.objectives.register_objective). Registered: "
                       f"{', '.join(list_objectives())}")
    return _OBJECTIVES[conv.head](task, conv, **{k: v for k, v in options.items()
                                                 if v is not None})


def task_labeller(task, **options):
    """The task's labeller (:func:`utrans.labels.get_labeller` of its quantity)."""
    return get_labeller(task.labeller_name, **options)
