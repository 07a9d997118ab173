"""Model adapters: conform the data layer's batches to a model and its outputs back.

The data layer (:class:`utrans.data.DataGenerator`) produces one layout for
every model: ``x`` float32 ``(B, T, 3)`` with channels E, N, Z at 100 Hz
(``T = 6000`` for STEAD-like data) and the task's labels (see
:mod:`utrans.labels`). Models differ in what they take and return; an adapter
is the only place that knows, per registered model:

* **inputs**: channel order, sampling rate and window length. The U-Trans
  models take the data as it is (E, N, Z, 100 Hz, 6000 samples). SeisT and the
  three-component baselines take ``in_samples`` samples (``--in_samples``,
  8192 by default) in the order Z, N, E (the order of the reference's
  ``inputs: ["z", "n", "e"]`` and of the published checkpoints). A window
  shorter than ``in_samples`` is zero padded at the end; a longer one is
  cropped, keeping its start. ``--sampling_rate`` resamples first (polyphase
  filter for waveforms, linear interpolation for label curves): the
  published DiTing checkpoints were trained on 50 Hz data (Z, N, E), so use
  ``--sampling_rate 50`` with them on 100 Hz data; the PNW ones on 100 Hz.
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

:func:`get_adapter` picks the adapter of a model name; :class:`AdaptedDataset`
wraps a DataGenerator for ``model.fit``.
"""

from __future__ import annotations

import fractions
import math

import keras
import numpy as np
from keras import ops

from utrans.labels import Labeller

__all__ = [
    "AdaptedDataset",
    "AleatoricLoss",
    "BAZNetworkAdapter",
    "DiTingMotionAdapter",
    "DistPTAdapter",
    "EQTransformerAdapter",
    "ExtraColumnsLabeller",
    "FocalLoss",
    "MagNetAdapter",
    "ModelAdapter",
    "PhaseNetAdapter",
    "ReconstructionAdapter",
    "SeisTAdapter",
    "WaveformAdapter",
    "WeightedBinaryCrossentropy",
    "get_adapter",
]

DATA_CHANNELS = "ENZ"
DATA_RATE = 100.0
_EPS = 1e-6


# --------------------------------------------------------------------------- losses
@keras.saving.register_keras_serializable(package="utrans")
class WeightedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy of probability curves with one weight per channel.

    ``-(t log(p + eps) + (1 - t) log(1 - p + eps)) * w[c]``, averaged over
    batch, samples and channels (SeisT's ``BCELoss``; ``eps`` = 1e-6).

    Args:
        weights: one weight per output channel (SeisT dpk: 0.5, 1, 1).
        name: loss name.
    """

    def __init__(self, weights=(0.5, 1.0, 1.0), name="weighted_bce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weights = [float(w) for w in weights]

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        w = ops.convert_to_tensor(self.weights, dtype=y_pred.dtype)
        loss = -(y_true * ops.log(y_pred + _EPS) + (1.0 - y_true) * ops.log(1.0 - y_pred + _EPS))
        return ops.mean(loss * w, axis=-1)

    def get_config(self):
        return {**super().get_config(), "weights": self.weights}


@keras.saving.register_keras_serializable(package="utrans")
class AleatoricLoss(keras.losses.Loss):
    """Regression loss with learned aleatoric uncertainty (Mousavi & Beroza, 2020).

    The prediction's column 0 is the value ``y`` and column 1 is
    ``s = log(sigma^2)``: ``0.5 exp(-s) (t - y)^2 + 0.5 s``. The reference
    sums it over the batch; here it is averaged (same minimiser, gradient
    scaled by ``1 / batch``).

    Args:
        name: loss name.
    """

    def __init__(self, name="aleatoric", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        t = ops.reshape(ops.cast(y_true, y_pred.dtype), (-1,))
        y, s = y_pred[:, 0], y_pred[:, 1]
        return 0.5 * ops.exp(-s) * ops.square(t - y) + 0.5 * s


@keras.saving.register_keras_serializable(package="utrans")
class FocalLoss(keras.losses.Loss):
    """Focal loss on class scores, softmax applied first (DiTingMotion, SeisT's ``FocalLoss``).

    ``sum_c -t_c (1 - p_c)^gamma log(p_c + eps)`` with ``p = softmax(scores)``.

    Args:
        gamma: focusing exponent (2).
        name: loss name.
    """

    def __init__(self, gamma=2.0, name="focal", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        p = ops.softmax(y_pred, axis=-1)
        t = ops.cast(y_true, p.dtype)
        return ops.sum(-t * ops.power(1.0 - p, self.gamma) * ops.log(p + _EPS), axis=-1)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


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
class ModelAdapter:
    """Identity adapter: the model takes the data as the data layer makes it.

    Used for the U-Trans models (E, N, Z at 100 Hz, 6000 samples) with the
    task's own loss.

    Args:
        task: the :class:`utrans.tasks.Task`.
        model_name: registry name of the model.
        in_samples, sampling_rate, channel_order, p_position_ratio: ignored
            here (the U-Trans models take the data's own layout); accepted so
            every adapter is built the same way.
    """

    family = "utrans"
    #: Whether the model's window covers the whole trace (``--in_samples`` / demo length apply).
    full_window = False

    def __init__(self, task, model_name, in_samples=None, sampling_rate=None, channel_order=None,
                 p_position_ratio=None):
        self.task = task
        self.model_name = model_name
        self.in_samples = None
        self.sampling_rate = DATA_RATE
        self.channel_order = DATA_CHANNELS
        self.p_position_ratio = None

    # -- configuration
    def settings(self):
        """JSON-serialisable settings (recorded in ``training_config.json``)."""
        return {"in_samples": self.in_samples, "sampling_rate": self.sampling_rate,
                "channel_order": self.channel_order, "p_position_ratio": self.p_position_ratio}

    def model_kwargs(self):
        """Constructor arguments the adapter imposes on the model."""
        return {}

    def labeller(self, base):
        """The labeller the DataGenerator uses (``base``: the task's labeller)."""
        return base

    def loss(self):
        """``(loss, loss_weights)`` for ``model.compile``."""
        return self.task.loss, None

    def covered_samples(self, data_samples):
        """How many samples of a ``data_samples`` long window the model sees."""
        return data_samples

    # -- batches
    def inputs(self, x, y):
        """Model input(s) for a data batch ``x`` ``(B, T, 3)`` (``y``: the labeller's targets)."""
        return x

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

    def task_columns(self, y):
        """The labeller's targets without columns the adapter appended for itself."""
        return y


class WaveformAdapter(ModelAdapter):
    """Three-component models with their own window, channel order and rate.

    Args:
        task: the :class:`utrans.tasks.Task`.
        model_name: registry name.
        in_samples: model window in samples (default :attr:`default_in_samples`).
        sampling_rate: the model's sampling rate in Hz (default 100: no resampling).
        channel_order: a permutation of ``"ENZ"`` (default ``"ZNE"``).
        p_position_ratio: for scalar tasks (polarity, magnitude, back-azimuth,
            distance), cut the window so that the P pick (from the metadata)
            sits at ``p_position_ratio * in_samples`` (the reference's
            ``--p-position-ratio``); ``None`` or a negative value keeps the
            window start.
    """

    family = "waveform"
    full_window = True
    default_in_samples = 8192
    default_channel_order = "ZNE"

    def __init__(self, task, model_name, in_samples=None, sampling_rate=None, channel_order=None,
                 p_position_ratio=None):
        super().__init__(task, model_name)
        self.in_samples = int(in_samples or self.default_in_samples)
        if p_position_ratio is not None and p_position_ratio >= 0:
            if p_position_ratio > 1 or task.kind in ("picking", "dpk"):
                raise ValueError("p_position_ratio must be in [0, 1] and applies to scalar tasks "
                                 f"only. Received: p_position_ratio={p_position_ratio} for the "
                                 f"{task.name} task")
            self.p_position_ratio = float(p_position_ratio)
        self.sampling_rate = float(sampling_rate or DATA_RATE)
        order = (channel_order or self.default_channel_order).upper()
        if sorted(order) != sorted(DATA_CHANNELS):
            raise ValueError(f"channel_order must be a permutation of 'ENZ'. Received: "
                             f"channel_order={channel_order!r}")
        if self.in_samples < 1 or self.sampling_rate <= 0:
            raise ValueError(f"in_samples and sampling_rate must be positive. Received: "
                             f"in_samples={in_samples}, sampling_rate={sampling_rate}")
        self.channel_order = order
        self._perm = [DATA_CHANNELS.index(c) for c in order]

    @property
    def ratio(self):
        """Model samples per data sample."""
        return self.sampling_rate / DATA_RATE

    def model_kwargs(self):
        return {"in_samples": self.in_samples}

    def labeller(self, base):
        if self.p_position_ratio is None:
            return base
        return ExtraColumnsLabeller(base, ["p_sample"])

    def task_columns(self, y):
        return y[:, :-1] if self.p_position_ratio is not None else y

    def covered_samples(self, data_samples):
        return int(min(data_samples, math.floor(self.in_samples / self.ratio)))

    def _time_forward(self, a, curves):
        if self.ratio != 1.0:
            if curves:
                a = _interp_time(a, int(round(a.shape[1] * self.ratio)))
            else:
                a = _resample_waveform(a, self.ratio)
        return _fit_length(a, self.in_samples)

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

    def inputs(self, x, y):
        x = np.asarray(x, dtype=np.float32)[..., self._perm]
        if self.p_position_ratio is None:
            return self._time_forward(x, curves=False)
        if self.ratio != 1.0:
            x = _resample_waveform(x, self.ratio)
        return _window_at_p(x, y[:, -1] * self.ratio, self.in_samples, self.p_position_ratio)


class SeisTAdapter(WaveformAdapter):
    """SeisT models ``seist_{s,m,l}_{dpk,pmp,emg,baz,dis}`` (Li et al. 2024).

    dpk: sigmoid curves (det, P, S), weighted BCE. pmp: softmax over
    (up, down), cross-entropy. emg/dis: ``8 * sigmoid`` magnitude and
    ``500 * sigmoid`` km, Huber. baz: ``360 * sigmoid`` degrees, Huber on
    degrees; predictions are turned into (cos, sin).
    """

    family = "seist"

    @property
    def head(self):
        return self.model_name.split("_")[2] if self.model_name.startswith("seist_") else \
            self.task.name

    def loss(self):
        head = self.head
        if head == "dpk":
            return WeightedBinaryCrossentropy((0.5, 1.0, 1.0)), None
        if head == "pmp":
            return keras.losses.CategoricalCrossentropy(), None
        return keras.losses.Huber(delta=1.0), None

    def targets(self, y):
        head = self.head
        if head == "dpk":
            return self._time_forward(y, curves=True)
        if head == "pmp":
            up = y[:, :1]
            return np.concatenate([up, 1.0 - up], axis=-1).astype(np.float32)
        if head == "baz":
            return (np.degrees(np.arctan2(y[:, 1], y[:, 0])) % 360.0)[:, None].astype(np.float32)
        return y

    def predictions(self, outputs, x, y):
        out = np.asarray(outputs, dtype=np.float32)
        head = self.head
        if head == "dpk":
            return self._time_back(out, x.shape[1]), {}
        if head == "pmp":
            return out[:, :1], {}
        if head == "baz":
            a = np.radians(out[:, 0].astype(np.float64))
            return np.stack([np.cos(a), np.sin(a)], axis=-1).astype(np.float32), {}
        return out[:, :1], {}


class EQTransformerAdapter(WaveformAdapter):
    """EQTransformer: sigmoid (det, P, S) curves, weighted BCE (0.5, 1, 1)."""

    def loss(self):
        return WeightedBinaryCrossentropy((0.5, 1.0, 1.0)), None

    def targets(self, y):
        return self._time_forward(y, curves=True)

    def predictions(self, outputs, x, y):
        return self._time_back(outputs, x.shape[1]), {}


class PhaseNetAdapter(WaveformAdapter):
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


class MagNetAdapter(WaveformAdapter):
    """MagNet: (magnitude, log variance) with the aleatoric-uncertainty loss."""

    def loss(self):
        return AleatoricLoss(), None

    def predictions(self, outputs, x, y):
        out = np.asarray(outputs, dtype=np.float64)
        return out[:, :1].astype(np.float32), {"pred_std": np.exp(0.5 * out[:, 1])}


class BAZNetworkAdapter(WaveformAdapter):
    """BAZ-Network: two outputs (cos, sin) of the back-azimuth, MSE on each."""

    def loss(self):
        return ["mse", "mse"], None

    def targets(self, y):
        return (y[:, :1], y[:, 1:2])

    def predictions(self, outputs, x, y):
        cos, sin = (np.asarray(o, dtype=np.float32).reshape(-1) for o in outputs)
        return np.stack([cos, sin], axis=-1), {}


class DistPTAdapter(WaveformAdapter):
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


class DiTingMotionAdapter(WaveformAdapter):
    """DiTingMotion: Z and its first difference in a short window around P.

    The window has ``in_samples`` (128) samples with the P pick at
    ``p_position`` (half the window); the two outputs are (clarity, polarity)
    scores. Our data has no clarity labels, so only the polarity output is
    trained (focal loss on the softmax of its scores, class 0 = up as in the
    reference); predictions are ``softmax(polarity)[up]``.
    """

    full_window = False
    default_in_samples = 128
    default_channel_order = "ZNE"

    def model_kwargs(self):
        return {"in_samples": self.in_samples, "in_channels": 2}

    def labeller(self, base):
        return ExtraColumnsLabeller(base, ["p_sample"])

    def task_columns(self, y):
        return y[:, :-1]

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
        win = _window_at_p(z, y[:, -1] * self.ratio, self.in_samples, 0.5)[..., 0]
        win = win.astype(np.float64)
        win = win - win.mean(axis=1, keepdims=True)
        scale = np.abs(win).max(axis=1, keepdims=True)
        win = win / np.where(scale > 0, scale, 1.0)
        dz = np.concatenate([np.zeros((n, 1)), np.diff(win, axis=1)], axis=1)
        return np.stack([win, dz], axis=-1).astype(np.float32)

    def covered_samples(self, data_samples):
        return data_samples

    def targets(self, y):
        up = y[:, :1]
        onehot = np.concatenate([up, 1.0 - up], axis=-1).astype(np.float32)
        return (np.zeros_like(onehot), onehot)

    def predictions(self, outputs, x, y):
        pol = np.asarray(outputs[1], dtype=np.float64)
        e = np.exp(pol - pol.max(axis=-1, keepdims=True))
        return (e[:, :1] / e.sum(axis=-1, keepdims=True)).astype(np.float32), {}


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


_ADAPTERS = {
    "utrans_foundation": ReconstructionAdapter,
    "phasenet": PhaseNetAdapter,
    "eqtransformer": EQTransformerAdapter,
    "ditingmotion": DiTingMotionAdapter,
    "magnet": MagNetAdapter,
    "baz_network": BAZNetworkAdapter,
    "distpt_network": DistPTAdapter,
}

def get_adapter(task, model_name, in_samples=None, sampling_rate=None, channel_order=None,
                p_position_ratio=None):
    """The adapter of ``model_name`` on ``task``.

    Args:
        task: the :class:`utrans.tasks.Task`.
        model_name: registry name (``seist_*``, a baseline name, or a U-Trans model).
        in_samples: model window (SeisT/baselines; default 8192, DiTingMotion 128).
        sampling_rate: model sampling rate in Hz (default 100, the data's).
        channel_order: model channel order (default ``"ZNE"`` for SeisT/baselines).
        p_position_ratio: place the P pick at this fraction of the window
            (scalar tasks of SeisT/baselines; ``None``: window start).

    Returns:
        A :class:`ModelAdapter`.
    """
    if model_name.startswith("seist_"):
        cls = SeisTAdapter
    else:
        cls = _ADAPTERS.get(model_name, ModelAdapter)
    return cls(task, model_name, in_samples=in_samples, sampling_rate=sampling_rate,
               channel_order=channel_order, p_position_ratio=p_position_ratio)


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
