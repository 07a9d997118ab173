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
  resampled first (polyphase filter): a model built from a ``*_diting``
  preset carries 50 Hz and is fed 50 Hz windows without being told. As in
  the SeisT reference, the model's window is normalised *after* it is cut
  (``normalization`` of the conventions, ``"std"`` by default: per channel,
  over the whole window including its zero padding).
* **targets and losses**: as the SeisT reference trains each model (its
  ``config.py``, ``training/preprocess.py`` and ``models/loss.py``), checked
  against the reference's training steps (``training/`` of the reference
  folder). Pick and detection targets are built at the model's rate and in
  its window from the pick positions (:class:`utrans.labels.SeisTLabeller`),
  not interpolated from data-rate curves. Losses: weighted binary
  cross-entropy (0.5, 1, 1 for det, P, S) for SeisT ``dpk`` and
  EQTransformer; cross-entropy (``eps`` 1e-6) over (noise, P, S) for
  PhaseNet and over (up, down) for SeisT ``pmp``; Huber for the SeisT
  regressions (magnitude, back-azimuth in degrees, distance in km); the
  aleatoric-uncertainty loss of Mousavi & Beroza, summed over the batch, for
  MagNet and dist-PT Network (weights 0.1 distance, 0.9 travel time); MSE on
  (cos, sin) for BAZ-Network; focal losses on both heads (clarity and
  polarity, weights 1, 1) for DiTingMotion.
* **predictions**: the model's outputs turned back into the task's layout,
  the one its labeller produces (magnitude ``(B, 1)``, polarity
  ``(B, 1)`` = probability of an upward first motion, back-azimuth
  ``(B, 2)`` = (cos, sin), distance ``(B, 1)`` km, pick curves ``(B, T, 1)``,
  detection + P + S ``(B, T, 3)``) at the data's rate and length (samples the
  model did not see are 0), plus optional extra columns (uncertainties,
  travel times).

An adapter may need more from the data than the task's labels (the P pick of
a window centred on P, the back-azimuth in degrees, the P travel time, the
pick positions behind the curves): :meth:`ModelAdapter.labeller` wraps the
task's labeller so that its targets carry them (extra columns, or one extra
channel for curves), :meth:`ModelAdapter.task_columns` strips them again and
:meth:`ModelAdapter.targets` / :meth:`ModelAdapter.conform` take the wrapped
labeller's output.

Adapter options (keywords of :func:`get_adapter` that are not conventions;
each adapter lists its own in ``OPTIONS`` and records them in
:meth:`ModelAdapter.settings`): ``label_width_s``, ``label_shape``,
``sigma``, ``coda_ratio`` (pick and detection targets), ``channel_weights`` /
``class_weights`` / ``loss_weights`` / ``loss_reduction`` / ``gamma``
(losses) and ``clarity_key`` (DiTingMotion). Every default is the
reference's.

:func:`get_adapter` picks the adapter a model's conventions name (never its
registry name); a user's model declares its own with :func:`register_adapter`.
:class:`AdaptedDataset` wraps a DataGenerator for ``model.fit``.
"""

from __future__ import annotations

import fractions
import math
from typing import ClassVar

import keras
import numpy as np

from utrans.labels import Labeller, SeisTLabeller
from utrans.losses import (
    AleatoricLoss,
    FocalLoss,
    WeightedBinaryCrossentropy,
    WeightedCategoricalCrossentropy,
)

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
    "PickChannelLabeller",
    "ReconstructionAdapter",
    "SeisTAdapter",
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


#: Slots of the picks channel appended by :class:`PickChannelLabeller`.
PICK_SLOTS = ("p", "s", "p2", "s2")


class PickChannelLabeller(Labeller):
    """Wrap a curve labeller and append one channel carrying the picks behind the curves.

    The extra (last) channel holds, at samples 0-3, the P, S, second-event
    P and second-event S picks of the trace after augmentation, in data
    samples (NaN: none; noise traces have none); its other samples are 0.
    Adapters rebuild the targets at the model's rate from these positions
    (:class:`utrans.labels.SeisTLabeller`); the task's own curves come first
    and are unchanged.

    Args:
        base: the task's labeller (curves, ``output_shape`` ``(samples, k)``).
    """

    def __init__(self, base):
        self.base = base
        self.required = tuple(base.required)
        self.required_earthquake = tuple(dict.fromkeys(
            tuple(base.required_earthquake) + ("trace_p_arrival_sample", "trace_s_arrival_sample")))
        self.output_shape = (base.output_shape[0], base.output_shape[1] + 1)

    @staticmethod
    def _channel(samples, picks):
        if samples < len(PICK_SLOTS):
            raise ValueError(f"PickChannelLabeller needs windows of at least {len(PICK_SLOTS)} "
                             f"samples. Received: samples={samples}")
        ch = np.zeros((picks.shape[0], samples, 1), dtype=np.float32)
        ch[:, :len(PICK_SLOTS), 0] = picks
        return ch

    def __call__(self, meta):
        y = self.base(meta)
        noise = meta.get("trace_category") == "noise"
        picks = [np.nan if noise or meta.get(k) is None else float(meta[k])
                 for k in ("trace_p_arrival_sample", "trace_s_arrival_sample")]
        picks = np.array([picks + [np.nan, np.nan]], dtype=np.float64)
        return np.concatenate([y, self._channel(y.shape[0], picks)[0]], axis=-1)

    def label_batch(self, batch, rng=None):
        y = self.base.label_batch(batch, rng)
        picks = np.stack([np.asarray(getattr(batch, k), dtype=np.float64) for k in PICK_SLOTS], axis=-1)
        picks[np.asarray(batch.noise, dtype=bool)] = np.nan
        return np.concatenate([y, self._channel(y.shape[1], picks)], axis=-1)

    def get_config(self):
        return {"base": repr(self.base)}


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
    A fractional pick is rounded to the nearest sample (halves up).
    """
    n, t = x.shape[:2]
    p = np.nan_to_num(np.asarray(p, dtype=np.float64), nan=t / 2.0)
    start = np.floor(p + 0.5).astype(np.int64) - int(length * ratio)
    idx = start[:, None] + np.arange(length)[None, :]
    valid = (idx >= 0) & (idx < t)
    win = np.take_along_axis(x, np.clip(idx, 0, t - 1)[..., None], axis=1)
    return np.where(valid[..., None], win, 0.0).astype(np.float32)



def _normalize_window(a, mode, float32=False):
    """Normalise ``(B, L, C)`` windows per window and channel (after the window is cut).

    ``"std"``: subtract the mean, divide by the population standard deviation;
    ``"max"``: subtract the mean, divide by the largest absolute value;
    ``"none"``: unchanged. A flat channel stays 0. Computed in float64, or in
    float32 with ``float32=True`` (the SeisT reference allocates windows cut
    around P as float32 and normalises them so), returned as float32.
    """
    if mode == "none":
        return np.asarray(a, dtype=np.float32)
    if mode not in ("std", "max"):
        raise ValueError(f"normalization must be 'std', 'max' or 'none'. Received: {mode!r}")
    w = np.array(np.moveaxis(np.asarray(a), 1, 2), dtype=np.float32 if float32 else np.float64,
                 order="C")  # (B, C, L): reduce along contiguous samples, as the reference
    w -= w.mean(axis=-1, keepdims=True)
    scale = w.std(axis=-1, keepdims=True) if mode == "std" else np.abs(w).max(axis=-1, keepdims=True)
    scale[scale == 0] = 1
    w /= scale
    return np.ascontiguousarray(np.moveaxis(w, 1, 2), dtype=np.float32)

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


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


@register_adapter("utrans")
class ModelAdapter:
    """Conform data batches to a model's conventions; the task's own loss.

    The data layer's batches (E, N, Z at 100 Hz, ``T`` samples) are reordered
    to the model's ``component_order``, resampled to its ``sampling_rate``
    (polyphase filter for waveforms) and zero padded at the end or cropped
    (keeping the start) to its ``in_samples``. A model whose conventions set
    ``p_position_ratio`` (scalar tasks) gets the window cut so the P pick
    sits at that fraction of it. The U-Trans models (adapter ``"utrans"``)
    take the data as it is.

    Args:
        task: the :class:`utrans.tasks.Task`.
        conventions: the model's :class:`utrans.conventions.Conventions`.
        **options: adapter options (the keys of ``OPTIONS``; ``None`` keeps
            the default); an unknown option raises ``TypeError``.
    """

    #: The options this adapter takes and their defaults (the reference's).
    OPTIONS: ClassVar[dict] = {}
    #: Whether the model's window is normalised (``conventions.normalization``) after it is cut.
    normalize_window = False

    def __init__(self, task, conventions, **options):
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
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            raise TypeError(f"{type(self).__name__} has no option {', '.join(unknown)}. Its options: "
                            f"{', '.join(sorted(self.OPTIONS)) or 'none'}. Received: "
                            + ", ".join(f"{k}={options[k]!r}" for k in unknown))
        for key, value in options.items():
            if value is not None:
                _check_option(type(self).__name__, key, value, self.OPTIONS[key])
        self.options = {**self.OPTIONS, **{k: v for k, v in options.items() if v is not None}}
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
        """JSON-serialisable conventions and options (recorded in ``training_config.json``)."""
        return {**self.conventions.to_config(),
                "options": {k: _jsonable(v) for k, v in self.options.items()}}

    # -- configuration
    def extra_columns(self):
        """Names of the columns :meth:`labeller` appends to the task's ``(B, k)`` targets."""
        return ("p_sample",) if self.p_position_ratio is not None else ()

    def labeller(self, base):
        """The labeller the DataGenerator uses (``base``: the task's labeller).

        Its targets are the task's, followed by what the adapter needs
        besides (:meth:`extra_columns`).
        """
        cols = self.extra_columns()
        return ExtraColumnsLabeller(base, cols) if cols else base

    def task_columns(self, y):
        """The labeller's targets without the columns the adapter appended for itself."""
        n = len(self.extra_columns())
        return y[..., :np.shape(y)[-1] - n] if n else y

    def _column(self, y, name):
        """Column ``name`` of :meth:`extra_columns` in the labeller's targets ``y``."""
        extra = self.extra_columns()
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[-1] <= len(extra):
            raise ValueError(f"{type(self).__name__} needs targets from adapter.labeller(base): the "
                             f"task's columns followed by {', '.join(extra)}. Received: targets of "
                             f"shape {y.shape}")
        return y[:, y.shape[-1] - len(extra) + extra.index(name)]

    def loss(self):
        """``(loss, loss_weights)`` for ``model.compile``."""
        return self.task.loss, None

    def covered_samples(self, data_samples):
        """How many samples of a ``data_samples`` long window the model sees."""
        if self.in_samples is None or self.p_position_ratio is not None:
            return data_samples
        return int(min(data_samples, math.floor(self.in_samples / self.ratio)))

    def model_samples(self, data_samples):
        """Length of the model's window for a ``data_samples`` long data window."""
        if self.in_samples is not None:
            return self.in_samples
        return int(round(data_samples * self.ratio))

    def _is_identity(self, length):
        return (self._perm == [0, 1, 2] and self.ratio == 1.0
                and self.in_samples in (None, length))

    def _time_forward(self, a):
        if self.ratio != 1.0:
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

    def _normalize(self, windows):
        if not self.normalize_window:
            return windows
        return _normalize_window(windows, self.conventions.normalization,
                                 float32=self.p_position_ratio is not None)

    # -- batches
    def inputs(self, x, y):
        """Model input(s) for a data batch ``x`` ``(B, T, 3)`` (``y``: the labeller's targets)."""
        x = np.asarray(x, dtype=np.float32)
        if self.p_position_ratio is None:
            if self._is_identity(x.shape[1]):
                return self._normalize(x)
            return self._normalize(self._time_forward(x[..., self._perm]))
        x = x[..., self._perm]
        if self.ratio != 1.0:
            x = _resample_waveform(x, self.ratio)
        p = self._column(y, "p_sample") * self.ratio
        return self._normalize(_window_at_p(x, p, self.in_samples, self.p_position_ratio))

    def targets(self, y):
        """Model target(s) for the targets ``y`` of :meth:`labeller`'s labeller."""
        return self.task_columns(y)

    def predictions(self, outputs, x, y):
        """Model outputs -> ``(pred, extras)`` in the task's layout (see module doc).

        Returns:
            ``pred`` numpy array in the task layout and ``extras``, a dict of
            additional per-trace columns (may be empty).
        """
        return np.asarray(outputs, dtype=np.float32), {}

    def conform(self, x, y):
        """``(inputs, targets)`` for ``model.fit``."""
        return self.inputs(x, y), self.targets(y)


class SeisTAdapter(ModelAdapter):
    """Base of the SeisT and baseline adapters: the window is normalised after it is cut.

    As the SeisT reference (``training/preprocess.py``: cut the window, then
    normalise it), the model's window (resampled, padded or cropped, or cut
    around P) is normalised per channel with the model's ``normalization``
    (``"std"``: over all ``in_samples`` samples, zero padding included).
    Windows cut around P are normalised in float32, whole windows in float64,
    as the reference does. Use ``normalization="none"`` in the conventions to
    feed the data layer's normalisation unchanged (the behaviour before).
    """

    normalize_window = True


_LABEL_OPTIONS = dict(label_width_s=0.5, label_shape="gaussian", sigma=10.0)


@register_adapter("detection_picking")
class DetectionPickingAdapter(SeisTAdapter):
    """Sigmoid (det, P, S) curves, weighted BCE: SeisT ``dpk`` and EQTransformer.

    Targets are SeisT's soft labels (:class:`utrans.labels.SeisTLabeller`),
    built at the model's rate and in its window from the picks that
    :meth:`labeller` appends to the task's curves (:class:`PickChannelLabeller`).

    Options:
        label_width_s: label width in seconds (0.5; ``int(0.5 * rate)`` samples).
        label_shape: ``"gaussian"``, ``"triangle"``, ``"box"`` or ``"sigmoid"``.
        sigma: Gaussian sigma in samples of the model's rate (10, whatever the width).
        coda_ratio: detection ends at ``S + coda_ratio * (S - P)`` (2.0).
        channel_weights: BCE weights of det, P, S (0.5, 1, 1).
    """

    OPTIONS: ClassVar[dict] = dict(_LABEL_OPTIONS, coda_ratio=2.0, channel_weights=(0.5, 1.0, 1.0))
    #: SeisT names of the model's output channels.
    LABELS: ClassVar[tuple] = ("det", "ppk", "spk")
    #: Channels of the task's curves (before the picks channel).
    task_channels = 3

    def seist_labeller(self, samples=None):
        """The :class:`utrans.labels.SeisTLabeller` of the model's frame."""
        opts = {k: self.options[k] for k in ("label_width_s", "label_shape", "sigma", "coda_ratio")
                if k in self.options}
        return SeisTLabeller(self.LABELS, sampling_rate=self.sampling_rate,
                             samples=self.in_samples if samples is None else samples,
                             data_rate=DATA_RATE, **opts)

    def extra_columns(self):
        return ("picks",)

    def labeller(self, base):
        return PickChannelLabeller(base)

    def targets(self, y):
        y = np.asarray(y)
        if y.ndim != 3 or y.shape[-1] != self.task_channels + 1 or y.shape[1] < len(PICK_SLOTS):
            raise ValueError(
                f"{type(self).__name__}.targets needs the output of adapter.labeller(base): "
                f"{self.task_channels} curves followed by the picks channel, (B, T, "
                f"{self.task_channels + 1}). Received: targets of shape {y.shape}")
        lab = self.seist_labeller(self.model_samples(y.shape[1]))
        picks = [lab.to_samples(y[:, i, -1]) for i in range(len(PICK_SLOTS))]
        return lab.from_picks(*picks)

    def loss(self):
        return WeightedBinaryCrossentropy(self.options["channel_weights"]), None

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
        curves = np.asarray(y, dtype=np.float32)[..., self._channels]
        if self.ratio != 1.0:
            curves = _interp_time(curves, int(round(curves.shape[1] * self.ratio)))
        return curves if self.in_samples is None else _fit_length(curves, self.in_samples)

    def predictions(self, outputs, x, y):
        curves = self._time_back(outputs, x.shape[1])
        full = np.full(curves.shape[:2] + (3,), np.nan, dtype=np.float32)
        full[..., self._channels] = curves
        return full, {}


@register_adapter("phasenet")
class PhaseNetAdapter(DetectionPickingAdapter):
    """PhaseNet: softmax over (noise, P, S) per sample <-> P and S curves.

    Targets: SeisT's ``non``, ``ppk``, ``spk`` soft labels at the model's
    rate (``non = max(1 - P - S, 0)``); loss: cross-entropy with ``eps`` 1e-6
    and class weights 1, 1, 1 (SeisT's ``CELoss``). Predictions: the P and S
    probabilities; PhaseNet has no detection output, so the detection channel
    is NaN (the dpk reader then reports picks only).

    Options:
        label_width_s, label_shape, sigma: as :class:`DetectionPickingAdapter`.
        class_weights: cross-entropy weights of noise, P, S (1, 1, 1).
    """

    OPTIONS: ClassVar[dict] = dict(_LABEL_OPTIONS, class_weights=(1.0, 1.0, 1.0))
    LABELS: ClassVar[tuple] = ("non", "ppk", "spk")

    def loss(self):
        return WeightedCategoricalCrossentropy(self.options["class_weights"]), None

    def predictions(self, outputs, x, y):
        c = self._time_back(outputs, x.shape[1])
        c[..., 0] = np.nan
        return c, {}


def _up_down(up):
    """``(B, 1)`` probability of up -> one-hot ``(B, 2)`` (up, down), SeisT's ``pmp`` classes."""
    up = np.asarray(up, dtype=np.float32)[:, :1]
    return np.concatenate([up, 1.0 - up], axis=-1).astype(np.float32)


@register_adapter("seist_pmp")
class SeisTPolarityAdapter(SeisTAdapter):
    """SeisT ``pmp``: softmax over (up, down), cross-entropy (SeisT's ``CELoss``).

    Options:
        class_weights: weights of up, down (1, 1).
    """

    OPTIONS: ClassVar[dict] = dict(class_weights=(1.0, 1.0))

    def loss(self):
        return WeightedCategoricalCrossentropy(self.options["class_weights"]), None

    def targets(self, y):
        return _up_down(self.task_columns(y))

    def predictions(self, outputs, x, y):
        return np.asarray(outputs, dtype=np.float32)[:, :1], {}


@register_adapter("seist_regression")
class SeisTRegressionAdapter(SeisTAdapter):
    """SeisT ``emg``/``dis``: ``scale * sigmoid`` (magnitude, km), Huber loss on the raw value.

    Options:
        delta: Huber threshold (1.0, as ``torch.nn.HuberLoss()``).
    """

    OPTIONS: ClassVar[dict] = dict(delta=1.0)

    def loss(self):
        return keras.losses.Huber(delta=self.options["delta"]), None

    def predictions(self, outputs, x, y):
        return np.asarray(outputs, dtype=np.float32)[:, :1], {}


@register_adapter("seist_baz")
class SeisTBackAzimuthAdapter(SeisTRegressionAdapter):
    """SeisT ``baz``: ``360 * sigmoid`` degrees, Huber on degrees; predictions as (cos, sin).

    The target is the metadata's ``path_back_azimuth_deg`` modulo 360 in
    float32 (as the reference reads it), appended by :meth:`labeller`; it is
    not recomputed from the task's (cos, sin), whose float32 rounding would
    move it by up to 3e-5 degrees.
    """

    def extra_columns(self):
        return ("path_back_azimuth_deg",) + super().extra_columns()

    def targets(self, y):
        deg = self._column(y, "path_back_azimuth_deg").astype(np.float32)
        return (deg % np.float32(360.0))[:, None]

    def predictions(self, outputs, x, y):
        a = np.radians(np.asarray(outputs, dtype=np.float64)[:, 0])
        return np.stack([np.cos(a), np.sin(a)], axis=-1).astype(np.float32), {}


@register_adapter("magnet")
class MagNetAdapter(SeisTAdapter):
    """MagNet: (magnitude, log variance) with the aleatoric-uncertainty loss.

    Options:
        loss_reduction: ``"sum"`` over the batch (the reference's
            ``MousaviLoss``) or ``"sum_over_batch_size"`` (the mean).
    """

    OPTIONS: ClassVar[dict] = dict(loss_reduction="sum")

    def loss(self):
        return AleatoricLoss(reduction=self.options["loss_reduction"]), None

    def predictions(self, outputs, x, y):
        out = np.asarray(outputs, dtype=np.float64)
        return out[:, :1].astype(np.float32), {"pred_std": np.exp(0.5 * out[:, 1])}


@register_adapter("baz_network")
class BAZNetworkAdapter(SeisTAdapter):
    """BAZ-Network: two outputs (cos, sin) of the back-azimuth, MSE on each."""

    def loss(self):
        return ["mse", "mse"], None

    def targets(self, y):
        y = self.task_columns(y)
        return (y[:, :1], y[:, 1:2])

    def predictions(self, outputs, x, y):
        cos, sin = (np.asarray(o, dtype=np.float32).reshape(-1) for o in outputs)
        return np.stack([cos, sin], axis=-1), {}


@register_adapter("distpt_network")
class DistPTAdapter(SeisTAdapter):
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

    def extra_columns(self):
        return ("path_p_travel_sec",) + super().extra_columns()

    def loss(self):
        red = self.options["loss_reduction"]
        return [AleatoricLoss(reduction=red), AleatoricLoss(reduction=red)], \
            list(self.options["loss_weights"])

    def targets(self, y):
        dist = self.task_columns(y)[:, :1]
        return (dist, self._column(y, "path_p_travel_sec")[:, None])

    def predictions(self, outputs, x, y):
        dist, ptt = (np.asarray(o, dtype=np.float64) for o in outputs)
        extras = {"pred_std": np.exp(0.5 * dist[:, 1]), "pred_p_travel_s": ptt[:, 0],
                  "pred_p_travel_s_std": np.exp(0.5 * ptt[:, 1])}
        if y is not None and np.shape(y)[-1] > 1:
            extras["true_p_travel_s"] = np.asarray(self._column(y, "path_p_travel_sec"),
                                                   dtype=np.float64)
        return dist[:, :1].astype(np.float32), extras


@register_adapter("ditingmotion")
class DiTingMotionAdapter(SeisTAdapter):
    """DiTingMotion: Z and its first difference in a short window around P.

    The window has ``in_samples`` (128) samples with the P pick at
    ``p_position_ratio`` (half the window); positions outside the trace are
    zero. Z is normalised over the window with the model's ``normalization``
    (``"std"``, in float32, as the reference; ``"max"`` gives the max-abs
    scaling utrans used before) and ``dz[0] = 0``, ``dz[j] = z[j] - z[j-1]``
    (the difference of the normalised Z, not renormalised).

    Both heads are trained as in the reference: focal losses on the softmax
    of the clarity scores (first output; class 0 impulsive, 1 emergent) and
    of the polarity scores (second output; class 0 up, 1 down), weights 1, 1.
    Without clarity labels (``clarity_key=None``, the default: none of the
    supported formats carries them) the clarity targets are all zero, which
    makes the clarity loss 0: only polarity is learnt. Predictions are
    ``softmax(polarity)[up]``.

    Options:
        clarity_key: metadata column of the clarity (0 impulsive, 1 emergent,
            NaN unknown), required for every earthquake trace when given.
        gamma: focal exponent (2).
        loss_weights: weights of the clarity and polarity losses (1, 1).
    """

    OPTIONS: ClassVar[dict] = dict(clarity_key=None, gamma=2.0, loss_weights=(1.0, 1.0))

    def extra_columns(self):
        key = self.options["clarity_key"]
        return ((key,) if key else ()) + ("p_sample",)

    def loss(self):
        gamma = self.options["gamma"]
        return [FocalLoss(gamma=gamma), FocalLoss(gamma=gamma)], list(self.options["loss_weights"])

    def inputs(self, x, y):
        if y is None or self.p_position_ratio is None:
            raise ValueError("DiTingMotion needs the P pick of every trace (targets of "
                             "adapter.labeller(base)) and a p_position_ratio. Received: "
                             f"targets={None if y is None else np.shape(y)}, "
                             f"p_position_ratio={self.p_position_ratio}")
        z = np.asarray(x, dtype=np.float32)[..., DATA_CHANNELS.index("Z"):][..., :1]
        if self.ratio != 1.0:
            z = _resample_waveform(z, self.ratio)
        p = self._column(y, "p_sample") * self.ratio
        win = _window_at_p(z, p, self.in_samples, self.p_position_ratio)
        z = _normalize_window(win, self.conventions.normalization, float32=True)[..., 0]
        dz = np.zeros_like(z)
        dz[:, 1:] = np.diff(z, axis=1)
        return np.stack([z, dz], axis=-1)

    def targets(self, y):
        polarity = _up_down(self.task_columns(y))
        clarity = np.zeros_like(polarity)
        key = self.options["clarity_key"]
        if key:
            c = self._column(y, key)
            clarity[:, 0] = c == 0
            clarity[:, 1] = c == 1
        return (clarity, polarity)

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


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_option(owner, key, value, default):
    """An adapter option given as the kind of value its default is (number, text, numbers)."""
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


def get_adapter(task, model, **overrides):
    """The adapter of ``model`` on ``task``, chosen by the model's conventions.

    Args:
        task: the :class:`utrans.tasks.Task`.
        model: a utrans model (its ``conventions``), a registered model name
            or preset name (their conventions), or a
            :class:`utrans.conventions.Conventions`.
        **overrides: convention changes (``in_samples``, ``sampling_rate``,
            ``component_order``, ``p_position_ratio``, ...) and adapter options
            (the adapter's ``OPTIONS``, e.g. ``label_width_s``,
            ``loss_reduction``); ``None`` values are ignored.

    Returns:
        A :class:`ModelAdapter`.

    Raises:
        KeyError: the conventions name an adapter nobody registered.
        TypeError: an override is neither a convention nor an option of the adapter.
    """
    from utrans.conventions import CONVENTION_KEYS, Conventions, get_conventions

    conv = model if isinstance(model, Conventions) else get_conventions(model)
    conv = conv.replace(**{k: v for k, v in overrides.items() if k in CONVENTION_KEYS})
    options = {k: v for k, v in overrides.items() if k not in CONVENTION_KEYS}
    if conv.adapter not in _ADAPTERS:
        raise KeyError(f"No adapter {conv.adapter!r} is registered (utrans.adapters."
                       f"register_adapter). Registered: {', '.join(sorted(_ADAPTERS))}")
    return _ADAPTERS[conv.adapter](task, conv, **options)


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
