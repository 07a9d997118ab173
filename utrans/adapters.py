"""Model adapters: conform the data layer's batches to a model and its outputs back.

The data layer (:class:`utrans.data.DataGenerator`) produces one layout for
every model: ``x`` float32 ``(B, T, 3)`` with channels E, N, Z at 100 Hz
(``T = 6000`` for STEAD-like data) and the task's labels (see
:mod:`utrans.labels`). Models differ in what they take and return; an adapter
is the only place that knows, per registered model:

* **inputs**: the model's conventions (:mod:`utrans.conventions`) decide the
  component order, sampling rate and window length. The U-Trans models take
  the data as it is (E, N, Z, 100 Hz, 6000 samples). SeisT and the
  three-component baselines take ``in_samples`` samples (8192 by default) in
  the order Z, N, E (the reference's ``inputs: ["z", "n", "e"]``). A window
  shorter than ``in_samples`` is zero padded at the end; a longer one is
  cropped, keeping its start. A model at another sampling rate gets the data
  resampled first (polyphase filter for waveforms, linear interpolation for
  label curves): a model built from a ``*_diting`` preset carries 50 Hz and
  is fed 50 Hz windows without being told.
* **targets and losses**: as the reference trains each model (SeisT's
  ``config.py``): weighted binary cross-entropy (weights 0.5, 1, 1 for det,
  P, S) for SeisT ``dpk`` and EQTransformer, categorical cross-entropy over
  (noise, P, S) for PhaseNet and over (up, down) for SeisT ``pmp``, Huber for
  the SeisT regressions (magnitude, back-azimuth in degrees, distance in km),
  the aleatoric-uncertainty loss of Mousavi & Beroza for MagNet and
  dist-PT Network, MSE on (cos, sin) for BAZ-Network and the focal loss for
  DiTingMotion.
* **predictions**: the model's outputs turned back into the task's layout,
  the one its labeller produces (magnitude ``(B, 1)``, polarity
  ``(B, 1)`` = probability of an upward first motion, back-azimuth
  ``(B, 2)`` = (cos, sin), distance ``(B, 1)`` km, pick curves ``(B, T, 1)``,
  detection + P + S ``(B, T, 3)``) at the data's rate and length (samples the
  model did not see are 0), plus optional extra columns (uncertainties,
  travel times).

:func:`get_adapter` picks the adapter a model's conventions name (never its
registry name); a user's model declares its own with :func:`register_adapter`.
:class:`AdaptedDataset` wraps a DataGenerator for ``model.fit``.
"""

from __future__ import annotations

import fractions
import math

import keras
import numpy as np

from utrans.labels import Labeller
from utrans.losses import AleatoricLoss, FocalLoss, WeightedBinaryCrossentropy

__all__ = [
    "AdaptedDataset",
    "BAZNetworkAdapter",
    "CurvePickingAdapter",
    "DetectionPickingAdapter",
    "DiTingMotionAdapter",
    "DistPTAdapter",
    "ExtraColumnsLabeller",
    "MagNetAdapter",
    "ModelAdapter",
    "PhaseNetAdapter",
    "ReconstructionAdapter",
    "SeisTBackAzimuthAdapter",
    "SeisTPolarityAdapter",
    "SeisTRegressionAdapter",
    "get_adapter",
    "register_adapter",
]

DATA_CHANNELS = "ENZ"
DATA_RATE = 100.0


# --------------------------------------------------------------------------- labellers
class ExtraColumnsLabeller(Labeller):
    """Wrap a labeller and append per-trace columns to its ``(B, k)`` targets.

    Columns: ``"p_sample"`` (the P pick after augmentation, NaN for noise) or
    any metadata key (required for every earthquake trace, e.g.
    ``"path_p_travel_sec"``).

    Args:
        base: the task's labeller (scalar targets, ``output_shape`` ``(k,)``).
        columns: names of the appended columns.
    """

    def __init__(self, base, columns):
        self.base = base
        self.columns = tuple(columns)
        keys = tuple(c for c in self.columns if c != "p_sample")
        self.required = tuple(base.required)
        self.required_earthquake = tuple(base.required_earthquake) + keys + (
            ("trace_p_arrival_sample",) if "p_sample" in self.columns else ())
        self.output_shape = (base.output_shape[0] + len(self.columns),)

    def __call__(self, meta):
        extra = [meta.get("trace_p_arrival_sample", np.nan) if c == "p_sample" else meta[c]
                 for c in self.columns]
        return np.concatenate([self.base(meta), np.asarray(extra, dtype=np.float32)])

    def label_batch(self, batch, rng=None):
        y = self.base.label_batch(batch, rng)
        cols = []
        for c in self.columns:
            if c == "p_sample":
                cols.append(np.asarray(batch.p, dtype=np.float64))
            else:
                cols.append(np.asarray(batch.meta[c], dtype=np.float64))
        return np.concatenate([y, np.stack(cols, axis=-1).astype(np.float32)], axis=-1)

    def get_config(self):
        return {"base": repr(self.base), "columns": list(self.columns)}


# --------------------------------------------------------------------------- time axis
def _resample_waveform(x, ratio):
    """Resample ``(B, T, C)`` along time by ``ratio`` (polyphase anti-aliasing filter)."""
    from scipy.signal import resample_poly

    frac = fractions.Fraction(ratio).limit_denominator(1000)
    return resample_poly(x, frac.numerator, frac.denominator, axis=1).astype(np.float32)


def _interp_time(a, length):
    """Linear interpolation of ``(B, T, C)`` curves onto ``length`` equally spaced samples."""
    t = a.shape[1]
    if t == length:
        return a
    pos = np.arange(length) * ((t - 1) / max(length - 1, 1))
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, t - 1)
    w = (pos - lo)[None, :, None]
    return (a[:, lo] * (1 - w) + a[:, hi] * w).astype(np.float32)


def _fit_length(a, length):
    """Crop (keeping the start) or zero pad (at the end) ``(B, T, C)`` to ``length``."""
    t = a.shape[1]
    if t >= length:
        return np.ascontiguousarray(a[:, :length])
    pad = np.zeros((a.shape[0], length - t) + a.shape[2:], dtype=a.dtype)
    return np.concatenate([a, pad], axis=1)


def _window_at_p(x, p, length, ratio):
    """Windows of ``length`` samples of ``x`` ``(B, T, C)`` with the pick ``p`` at ``ratio * length``.

    Samples outside the trace are zero; a missing pick (NaN) centres the trace.
    """
    n, t = x.shape[:2]
    p = np.nan_to_num(np.asarray(p, dtype=np.float64), nan=t / 2.0)
    start = np.round(p).astype(np.int64) - int(length * ratio)
    idx = start[:, None] + np.arange(length)[None, :]
    valid = (idx >= 0) & (idx < t)
    win = np.take_along_axis(x, np.clip(idx, 0, t - 1)[..., None], axis=1)
    return np.where(valid[..., None], win, 0.0).astype(np.float32)


# --------------------------------------------------------------------------- adapters
_ADAPTERS = {}


def register_adapter(name):
    """Register an adapter class under ``name`` (the ``adapter`` of a model's conventions).

    A user's model declares its adapter in its conventions
    (``Conventions(adapter="mine")``); ``@register_adapter("mine")`` on a
    :class:`ModelAdapter` subclass makes :func:`get_adapter` find it.
    """

    def decorator(cls):
        if name in _ADAPTERS and _ADAPTERS[name] is not cls:
            raise ValueError(f"An adapter is already registered as {name!r}.")
        _ADAPTERS[name] = cls
        return cls

    return decorator


@register_adapter("utrans")
class ModelAdapter:
    """Conform data batches to a model's conventions; the task's own loss.

    The data layer's batches (E, N, Z at 100 Hz, ``T`` samples) are reordered
    to the model's ``component_order``, resampled to its ``sampling_rate``
    (polyphase filter for waveforms, linear interpolation for label curves)
    and zero padded at the end or cropped (keeping the start) to its
    ``in_samples``. A model whose conventions set ``p_position_ratio`` (scalar
    tasks) gets the window cut so the P pick sits at that fraction of it.
    The U-Trans models (adapter ``"utrans"``) take the data as it is.

    Args:
        task: the :class:`utrans.tasks.Task`.
        conventions: the model's :class:`utrans.conventions.Conventions`.
    """

    def __init__(self, task, conventions):
        self.task = task
        self.conventions = conventions
        order = conventions.component_order
        if len(order) == 3 and sorted(order) != sorted(DATA_CHANNELS):
            raise ValueError(f"component_order must be a permutation of 'ENZ'. Received: "
                             f"component_order={order!r}")
        if any(c not in DATA_CHANNELS for c in order):
            raise ValueError(f"component_order may hold E, N and Z only. Received: "
                             f"component_order={order!r}")
        if conventions.p_position_ratio is not None and task.kind in ("picking", "dpk"):
            raise ValueError("p_position_ratio applies to scalar tasks (polarity, magnitude, "
                             "back-azimuth, distance) only. Received: "
                             f"p_position_ratio={conventions.p_position_ratio} for the "
                             f"{task.name} task")
        self._perm = [DATA_CHANNELS.index(c) for c in order]

    # -- conventions
    @property
    def in_samples(self):
        """The model's window length in samples (``None``: the data's length)."""
        return self.conventions.in_samples

    @property
    def sampling_rate(self):
        """The model's sampling rate in Hz."""
        return self.conventions.sampling_rate

    @property
    def component_order(self):
        """The model's input components in order."""
        return self.conventions.component_order

    @property
    def p_position_ratio(self):
        """Where the P pick sits in the model's window (``None``: window start)."""
        return self.conventions.p_position_ratio

    @property
    def ratio(self):
        """Model samples per data sample."""
        return self.sampling_rate / DATA_RATE

    def settings(self):
        """JSON-serialisable conventions (recorded in ``training_config.json``)."""
        return self.conventions.to_config()

    # -- configuration
    def labeller(self, base):
        """The labeller the DataGenerator uses (``base``: the task's labeller)."""
        if self.p_position_ratio is None:
            return base
        return ExtraColumnsLabeller(base, ["p_sample"])

    def task_columns(self, y):
        """The labeller's targets without columns the adapter appended for itself."""
        return y[:, :-1] if self.p_position_ratio is not None else y

    def loss(self):
        """``(loss, loss_weights)`` for ``model.compile``."""
        return self.task.loss, None

    def covered_samples(self, data_samples):
        """How many samples of a ``data_samples`` long window the model sees."""
        if self.in_samples is None or self.p_position_ratio is not None:
            return data_samples
        return int(min(data_samples, math.floor(self.in_samples / self.ratio)))

    def _is_identity(self, length):
        return (self._perm == [0, 1, 2] and self.ratio == 1.0
                and self.in_samples in (None, length))

    def _time_forward(self, a, curves):
        if self.ratio != 1.0:
            if curves:
                a = _interp_time(a, int(round(a.shape[1] * self.ratio)))
            else:
                a = _resample_waveform(a, self.ratio)
        return a if self.in_samples is None else _fit_length(a, self.in_samples)

    def _time_back(self, a, data_samples):
        """Model-frame curves ``(B, L, C)`` -> data frame ``(B, data_samples, C)``."""
        resampled = int(round(data_samples * self.ratio))
        a = _fit_length(np.asarray(a, dtype=np.float32), resampled)
        if self.ratio != 1.0:
            a = _interp_time(a, data_samples)
        covered = self.covered_samples(data_samples)
        a = np.array(a, dtype=np.float32)
        a[:, covered:] = 0.0
        return a

    # -- batches
    def inputs(self, x, y):
        """Model input(s) for a data batch ``x`` ``(B, T, 3)`` (``y``: the labeller's targets)."""
        x = np.asarray(x, dtype=np.float32)
        if self.p_position_ratio is None:
            if self._is_identity(x.shape[1]):
                return x
            return self._time_forward(x[..., self._perm], curves=False)
        x = x[..., self._perm]
        if self.ratio != 1.0:
            x = _resample_waveform(x, self.ratio)
        return _window_at_p(x, y[:, -1] * self.ratio, self.in_samples, self.p_position_ratio)

    def targets(self, y):
        """Model target(s) for the labeller's targets ``y``."""
        return y

    def predictions(self, outputs, x, y):
        """Model outputs -> ``(pred, extras)`` in the task's layout (see module doc).

        Returns:
            ``pred`` numpy array in the task layout and ``extras``, a dict of
            additional per-trace columns (may be empty).
        """
        return np.asarray(outputs, dtype=np.float32), {}

    def conform(self, x, y):
        """``(inputs, targets)`` for ``model.fit``."""
        return self.inputs(x, y), self.targets(self.task_columns(y))


@register_adapter("detection_picking")
class DetectionPickingAdapter(ModelAdapter):
    """Sigmoid (det, P, S) curves with weighted BCE (0.5, 1, 1): SeisT ``dpk``, EQTransformer."""

    def loss(self):
        return WeightedBinaryCrossentropy((0.5, 1.0, 1.0)), None

    def targets(self, y):
        return self._time_forward(y, curves=True)

    def predictions(self, outputs, x, y):
        return self._time_back(outputs, x.shape[1]), {}


@register_adapter("curve_picking")
class CurvePickingAdapter(ModelAdapter):
    """Pickers with one sigmoid curve per label among (det, P, S), trained with the task's loss.

    The U-Trans EQCCT pickers output one curve (``labels=("P",)`` or
    ``("S",)``): their targets are that channel of the picking labels, and
    their predictions come back as (det, P, S) with NaN for the curves they
    lack, so every picker is scored by the same code.
    """

    _CHANNELS = {"det": 0, "P": 1, "S": 2}

    @property
    def _channels(self):
        try:
            return [self._CHANNELS[label] for label in self.conventions.labels]
        except KeyError as err:
            raise ValueError(f"A picking model's labels must be among det, P, S. Received: "
                             f"labels={self.conventions.labels}") from err

    def targets(self, y):
        return self._time_forward(np.asarray(y)[..., self._channels], curves=True)

    def predictions(self, outputs, x, y):
        curves = self._time_back(outputs, x.shape[1])
        full = np.full(curves.shape[:2] + (3,), np.nan, dtype=np.float32)
        full[..., self._channels] = curves
        return full, {}


@register_adapter("phasenet")
class PhaseNetAdapter(ModelAdapter):
    """PhaseNet: softmax over (noise, P, S) per sample <-> P and S curves.

    Targets: ``noise = max(1 - P - S, 0)`` from the labeller's P and S curves.
    Predictions: the P and S probabilities; PhaseNet has no detection output,
    so the detection channel is NaN (the dpk reader then reports picks only).
    """

    def loss(self):
        return keras.losses.CategoricalCrossentropy(), None

    def targets(self, y):
        c = self._time_forward(y, curves=True)
        ps = c[..., 1:3]
        non = np.clip(1.0 - ps.sum(axis=-1, keepdims=True), 0.0, 1.0)
        return np.concatenate([non, ps], axis=-1).astype(np.float32)

    def predictions(self, outputs, x, y):
        c = self._time_back(outputs, x.shape[1])
        c[..., 0] = np.nan
        return c, {}


@register_adapter("seist_pmp")
class SeisTPolarityAdapter(ModelAdapter):
    """SeisT ``pmp``: softmax over (up, down), categorical cross-entropy."""

    def loss(self):
        return keras.losses.CategoricalCrossentropy(), None

    def targets(self, y):
        up = y[:, :1]
        return np.concatenate([up, 1.0 - up], axis=-1).astype(np.float32)

    def predictions(self, outputs, x, y):
        return np.asarray(outputs, dtype=np.float32)[:, :1], {}


@register_adapter("seist_regression")
class SeisTRegressionAdapter(ModelAdapter):
    """SeisT ``emg``/``dis``: ``scale * sigmoid`` (magnitude, km), Huber loss on the raw value."""

    def loss(self):
        return keras.losses.Huber(delta=1.0), None

    def predictions(self, outputs, x, y):
        return np.asarray(outputs, dtype=np.float32)[:, :1], {}


@register_adapter("seist_baz")
class SeisTBackAzimuthAdapter(ModelAdapter):
    """SeisT ``baz``: ``360 * sigmoid`` degrees, Huber on degrees; predictions as (cos, sin)."""

    def loss(self):
        return keras.losses.Huber(delta=1.0), None

    def targets(self, y):
        return (np.degrees(np.arctan2(y[:, 1], y[:, 0])) % 360.0)[:, None].astype(np.float32)

    def predictions(self, outputs, x, y):
        a = np.radians(np.asarray(outputs, dtype=np.float64)[:, 0])
        return np.stack([np.cos(a), np.sin(a)], axis=-1).astype(np.float32), {}


@register_adapter("magnet")
class MagNetAdapter(ModelAdapter):
    """MagNet: (magnitude, log variance) with the aleatoric-uncertainty loss."""

    def loss(self):
        return AleatoricLoss(), None

    def predictions(self, outputs, x, y):
        out = np.asarray(outputs, dtype=np.float64)
        return out[:, :1].astype(np.float32), {"pred_std": np.exp(0.5 * out[:, 1])}


@register_adapter("baz_network")
class BAZNetworkAdapter(ModelAdapter):
    """BAZ-Network: two outputs (cos, sin) of the back-azimuth, MSE on each."""

    def loss(self):
        return ["mse", "mse"], None

    def targets(self, y):
        return (y[:, :1], y[:, 1:2])

    def predictions(self, outputs, x, y):
        cos, sin = (np.asarray(o, dtype=np.float32).reshape(-1) for o in outputs)
        return np.stack([cos, sin], axis=-1), {}


@register_adapter("distpt_network")
class DistPTAdapter(ModelAdapter):
    """dist-PT Network: distance (km) and P travel time (s), each (value, log variance).

    Both outputs are trained with the aleatoric loss, weights 0.1 (distance)
    and 0.9 (travel time) as in the reference configuration; the traces need
    ``path_p_travel_sec`` (STEAD ``p_travel_sec``) besides the distance.
    """

    def labeller(self, base):
        return super().labeller(ExtraColumnsLabeller(base, ["path_p_travel_sec"]))

    def loss(self):
        return [AleatoricLoss(), AleatoricLoss()], [0.1, 0.9]

    def targets(self, y):
        return (y[:, :1], y[:, 1:2])

    def predictions(self, outputs, x, y):
        dist, ptt = (np.asarray(o, dtype=np.float64) for o in outputs)
        extras = {"pred_std": np.exp(0.5 * dist[:, 1]), "pred_p_travel_s": ptt[:, 0],
                  "pred_p_travel_s_std": np.exp(0.5 * ptt[:, 1])}
        if y is not None and y.shape[-1] > 1:
            extras["true_p_travel_s"] = np.asarray(y[:, 1], dtype=np.float64)
        return dist[:, :1].astype(np.float32), extras


@register_adapter("ditingmotion")
class DiTingMotionAdapter(ModelAdapter):
    """DiTingMotion: Z and its first difference in a short window around P.

    The window has ``in_samples`` (128) samples with the P pick at
    ``p_position_ratio`` (half the window); the two outputs are (clarity,
    polarity) scores. Our data has no clarity labels, so only the polarity
    output is trained (focal loss on the softmax of its scores, class 0 = up
    as in the reference); predictions are ``softmax(polarity)[up]``.
    """

    def loss(self):
        return [FocalLoss(), FocalLoss()], [0.0, 1.0]

    def inputs(self, x, y):
        if y is None or y.shape[-1] < 2:
            raise ValueError("DiTingMotion needs the P pick of every trace (targets with a "
                             f"p_sample column). Received: targets of shape {None if y is None else y.shape}")
        z = np.asarray(x, dtype=np.float32)[..., DATA_CHANNELS.index("Z"):][..., :1]
        if self.ratio != 1.0:
            z = _resample_waveform(z, self.ratio)
        n = z.shape[0]
        win = _window_at_p(z, y[:, -1] * self.ratio, self.in_samples, self.p_position_ratio)[..., 0]
        win = win.astype(np.float64)
        win = win - win.mean(axis=1, keepdims=True)
        scale = np.abs(win).max(axis=1, keepdims=True)
        win = win / np.where(scale > 0, scale, 1.0)
        dz = np.concatenate([np.zeros((n, 1)), np.diff(win, axis=1)], axis=1)
        return np.stack([win, dz], axis=-1).astype(np.float32)

    def targets(self, y):
        up = y[:, :1]
        onehot = np.concatenate([up, 1.0 - up], axis=-1).astype(np.float32)
        return (np.zeros_like(onehot), onehot)

    def predictions(self, outputs, x, y):
        pol = np.asarray(outputs[1], dtype=np.float64)
        e = np.exp(pol - pol.max(axis=-1, keepdims=True))
        return (e[:, :1] / e.sum(axis=-1, keepdims=True)).astype(np.float32), {}


@register_adapter("reconstruction")
class ReconstructionAdapter(ModelAdapter):
    """The U-Trans backbone in self-supervised pretraining (task 0).

    The backbone returns ``{"latent", "reconstruction"}``; only the
    ``reconstruction`` output is trained, with the task's loss (MAE), against
    the clean trace that :class:`utrans.labels.ReconstructionLabeller` keeps
    before it masks the input. Predictions are the reconstructions
    ``(B, T, 3)``, with the MAE of the masked input itself (what returning the
    input unchanged would score) as an extra per-trace column.
    """

    def loss(self):
        return {"reconstruction": self.task.loss}, None

    def targets(self, y):
        return {"reconstruction": y}

    def predictions(self, outputs, x, y):
        recon = outputs["reconstruction"] if isinstance(outputs, dict) else outputs
        extras = {}
        if y is not None and np.shape(x) == np.shape(y):
            extras["masked_input_mae"] = np.mean(np.abs(np.asarray(x, np.float64) - y), axis=(1, 2))
        return np.asarray(recon, dtype=np.float32), extras


def get_adapter(task, model, **overrides):
    """The adapter of ``model`` on ``task``, chosen by the model's conventions.

    Args:
        task: the :class:`utrans.tasks.Task`.
        model: a utrans model (its ``conventions``), a registered model name
            or preset name (their conventions), or a
            :class:`utrans.conventions.Conventions`.
        **overrides: convention changes (``in_samples``, ``sampling_rate``,
            ``component_order``, ``p_position_ratio``); ``None`` values are ignored.

    Returns:
        A :class:`ModelAdapter`.

    Raises:
        KeyError: the conventions name an adapter nobody registered.
    """
    from utrans.conventions import Conventions, get_conventions

    conv = model if isinstance(model, Conventions) else get_conventions(model)
    conv = conv.replace(**overrides)
    if conv.adapter not in _ADAPTERS:
        raise KeyError(f"No adapter {conv.adapter!r} is registered (utrans.adapters."
                       f"register_adapter). Registered: {', '.join(sorted(_ADAPTERS))}")
    return _ADAPTERS[conv.adapter](task, conv)


class AdaptedDataset(keras.utils.PyDataset):
    """A DataGenerator whose batches pass through an adapter's :meth:`~ModelAdapter.conform`.

    Args:
        generator: a :class:`utrans.data.DataGenerator`.
        adapter: a :class:`ModelAdapter`.
    """

    def __init__(self, generator, adapter):
        super().__init__(workers=generator.workers, use_multiprocessing=generator.use_multiprocessing,
                         max_queue_size=generator.max_queue_size)
        self.generator = generator
        self.adapter = adapter

    def __len__(self):
        return len(self.generator)

    def __getitem__(self, index):
        x, y = self.generator[index]
        return self.adapter.conform(x, y)

    def on_epoch_end(self):
        self.generator.on_epoch_end()
