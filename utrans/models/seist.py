"""SeisT: the Seismogram Transformer (sizes S, M, L) and its five task heads.

Reference:
    Li, S., Yang, X., Cao, A., Wang, C., Liu, Y., Liu, Y., & Niu, Q. (2024).
    SeisT: A foundational deep-learning model for earthquake monitoring tasks.
    IEEE Transactions on Geoscience and Remote Sensing, 62, 1-15.
    https://doi.org/10.1109/TGRS.2024.3371503

Keras 3 port, channels-last: the input is ``(batch, in_samples, 3)`` with the
components in the order Z, N, E; sequence outputs are ``(batch, in_samples, C)``.
Every layer that holds weights is named after the module of the original
PyTorch model that holds the same tensors, with dots written as dashes
(``"stem-0-convs-1-dconv"``, ``"encoder_layers-2-3-attention-q_proj"``,
``"out_head-lin"``), so
:meth:`torch_weight_map` can pair them by name and the published ``.pth``
checkpoints load with :func:`utrans.convert.load_torch_checkpoint`.

Models (registered names ``seist_{s,m,l}_{dpk,pmp,emg,baz,dis}``):

* :class:`SeisTBackbone`: stem + four encoder stages, features ``(B, L/32, C)``.
* :class:`SeisTPicker` (``dpk``): sigmoid curves ``(B, L, 3)``, channels det, ppk, spk.
* :class:`SeisTClassifier` (``pmp``): softmax over 2 polarity classes ``(B, 2)``.
* :class:`SeisTRegressor` (``emg``/``baz``/``dis``): ``scale * sigmoid`` ``(B, 1)``
  with scale 8 (magnitude), 360 (back-azimuth, degrees) or 500 (distance).
"""

import inspect
import math

import keras
import numpy as np
from keras import layers, ops

from utrans.weights.pytorch import TorchMapping, linear_kernel
from utrans.core.conventions import Conventions, pop_conventions
from utrans.core.registry import register_model
from utrans.models.normalization import BatchNormalization
from utrans.models.torch_port import layer_mappings

__all__ = [
    "SeisTBackbone",
    "SeisTPicker",
    "SeisTClassifier",
    "SeisTRegressor",
    "SeisTDropPath",
    "SeisTLocalPool1D",
    "SeisTAttention",
    "SeisTLinearResize1D",
    "SeisTGroupConv1D",
    "SeisTGELU",
    "seist_size_config",
]

_CITATION = "Li et al. (2024), IEEE TGRS 62, doi:10.1109/TGRS.2024.3371503"


def seist_size_config(size):
    """Architecture arguments of the published SeisT sizes.

    Args:
        size: ``"s"``, ``"m"`` or ``"l"`` (case-insensitive).

    Returns:
        dict of :class:`SeisTBackbone` constructor arguments (a fresh copy).
    """
    common = dict(
        stem_channels=[16, 8, 16, 16],
        stem_kernel_sizes=[11, 5, 5, 7],
        stem_strides=[2, 1, 1, 2],
        stage_aggr_ratios=[2, 2, 2, 2],
        attn_aggr_ratios=[8, 4, 2, 1],
        attn_ratio=0.6,
        qkv_bias=True,
        mlp_bias=True,
    )
    drops = dict(path_drop_rate=0.1, attn_drop_rate=0.1, key_drop_rate=0.1,
                 mlp_drop_rate=0.1, other_drop_rate=0.1)
    key = str(size).lower()
    if key == "s":
        arch = dict(layer_blocks=[2, 2, 3, 2], layer_channels=[16, 24, 32, 64],
                    attn_blocks=[1, 1, 1, 1], head_dims=[8, 8, 8, 16],
                    msmc_kernel_sizes=[5, 7], mlp_ratio=2)
    elif key == "m":
        arch = dict(layer_blocks=[2, 3, 6, 2], layer_channels=[24, 32, 64, 96],
                    attn_blocks=[1, 1, 1, 1], head_dims=[8, 8, 16, 32],
                    msmc_kernel_sizes=[5, 7], mlp_ratio=2)
    elif key == "l":
        arch = dict(layer_blocks=[2, 3, 6, 3], layer_channels=[32, 32, 64, 128],
                    attn_blocks=[1, 1, 2, 1], head_dims=[8, 8, 16, 32],
                    msmc_kernel_sizes=[3, 5, 7, 11], mlp_ratio=3)
        drops = dict(path_drop_rate=0.2, attn_drop_rate=0.2, key_drop_rate=0.1,
                     mlp_drop_rate=0.2, other_drop_rate=0.1)
    else:
        raise ValueError(
            f"seist_size_config: size must be one of 's', 'm', 'l'. Received: size={size!r}"
        )
    return {**common, **arch, **drops}


def _make_divisible(value, divisor):
    """Round ``value`` to a multiple of ``divisor``, never below 90% of it."""
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def _kname(torch_name):
    """Keras layer name for a torch module name: dots become dashes.

    Dots would read best, but the PyTorch backend of Keras turns weight paths
    into ``torch.nn.ParameterDict`` keys, which may not contain dots.
    """
    return torch_name.replace(".", "-")


def _torch_name(keras_name):
    """Inverse of :func:`_kname`."""
    return keras_name.replace("-", ".")


def _check_positive_int(name, value, owner):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        why = " (the model is built for a fixed window length)" if name == "in_samples" else ""
        raise ValueError(
            f"{owner}: {name} must be a positive integer{why}. Received: {name}={value!r}"
        )


# --- custom layers -----------------------------------------------------------


@keras.saving.register_keras_serializable(package="utrans")
class SeisTDropPath(layers.Layer):
    """Stochastic depth: drop a whole residual branch per sample during training.

    Args:
        rate: probability of dropping the branch; kept samples are scaled by
            ``1 / (1 - rate)``.
        seed: optional integer seed.

    Returns:
        The input unchanged at inference, masked and rescaled in training.
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"SeisTDropPath: rate must be in [0, 1). Received: rate={rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        noise = keras.random.uniform(shape, seed=self.seed_generator, dtype=x.dtype)
        mask = ops.floor(keep + noise)
        return x / keep * mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="utrans")
class SeisTLocalPool1D(layers.Layer):
    """Sum of average and max pooling over non-overlapping windows, ceil mode.

    The window count is ``ceil(L / pool_size)``; a last, shorter window is
    averaged over its real samples only (no padding counted).

    Args:
        pool_size: window length and stride.

    Returns:
        ``(B, ceil(L / pool_size), C)``.
    """

    def __init__(self, pool_size, **kwargs):
        super().__init__(**kwargs)
        _check_positive_int("pool_size", pool_size, "SeisTLocalPool1D")
        self.pool_size = int(pool_size)

    def call(self, x):
        k = self.pool_size
        length = x.shape[1]
        if length is None:
            raise ValueError("SeisTLocalPool1D needs a static sequence length. Received: None")
        n = -(-length // k)
        pad = n * k - length
        if pad == 0:
            avg = ops.average_pool(x, k, strides=k, padding="valid")
            mx = ops.max_pool(x, k, strides=k, padding="valid")
            return avg + mx
        xz = ops.pad(x, [[0, 0], [0, pad], [0, 0]])
        xm = ops.pad(x, [[0, 0], [0, pad], [0, 0]], constant_values=-np.inf)
        counts = np.full((n, 1), float(k), dtype="float32")
        counts[-1, 0] = k - pad
        scale = ops.convert_to_tensor(k / counts, dtype=x.dtype)
        avg = ops.average_pool(xz, k, strides=k, padding="valid") * scale
        mx = ops.max_pool(xm, k, strides=k, padding="valid")
        return avg + mx

    def compute_output_shape(self, input_shape):
        b, length, c = input_shape
        return (b, None if length is None else -(-length // self.pool_size), c)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}


@keras.saving.register_keras_serializable(package="utrans")
class SeisTAttention(layers.Layer):
    """Multi-head scaled dot-product attention on already projected q, k, v.

    Heads split the channel axis into ``num_heads`` contiguous groups. Keys may
    be shorter than queries (aggregated keys/values).

    Args:
        num_heads: number of heads (the channel count must be divisible by it).
        attn_drop_rate: dropout on the attention weights (training only).
        key_drop_rate: dropout on the keys (training only).
        seed: optional integer seed for both dropouts.

    Returns:
        ``(B, Lq, C)`` attention output (before the output projection).
    """

    def __init__(self, num_heads, attn_drop_rate=0.0, key_drop_rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        _check_positive_int("num_heads", num_heads, "SeisTAttention")
        self.num_heads = int(num_heads)
        self.attn_drop_rate = float(attn_drop_rate)
        self.key_drop_rate = float(key_drop_rate)
        self.seed = seed
        self.key_dropout = layers.Dropout(self.key_drop_rate, seed=seed)
        self.attn_dropout = layers.Dropout(
            self.attn_drop_rate, seed=None if seed is None else seed + 1
        )

    def call(self, q, k, v, training=None):
        h = self.num_heads
        c = q.shape[-1]
        e = c // h
        lq = ops.shape(q)[1]
        lk = ops.shape(k)[1]
        k = self.key_dropout(k, training=training)
        q = ops.transpose(ops.reshape(q, (-1, lq, h, e)), (0, 2, 1, 3)) / math.sqrt(e)
        k = ops.transpose(ops.reshape(k, (-1, lk, h, e)), (0, 2, 3, 1))
        v = ops.transpose(ops.reshape(v, (-1, lk, h, e)), (0, 2, 1, 3))
        weights = ops.softmax(ops.matmul(q, k), axis=-1)
        weights = self.attn_dropout(weights, training=training)
        out = ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3))
        return ops.reshape(out, (-1, lq, c))

    def compute_output_shape(self, q_shape, k_shape=None, v_shape=None):
        return q_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "attn_drop_rate": self.attn_drop_rate,
            "key_drop_rate": self.key_drop_rate,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="utrans")
class SeisTLinearResize1D(layers.Layer):
    """Linear resampling of the time axis to a fixed length (half-pixel centres).

    Source position of output sample ``i`` is ``(i + 0.5) * L_in / size - 0.5``
    clipped at 0, interpolated between its two neighbours (edge repeated).

    Args:
        size: output length.

    Returns:
        ``(B, size, C)``.
    """

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        _check_positive_int("size", size, "SeisTLinearResize1D")
        self.size = int(size)

    def _taps(self, length):
        scale = np.float32(length / self.size)
        src = scale * (np.arange(self.size, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5)
        src = np.maximum(src, np.float32(0.0))
        i0 = np.minimum(np.floor(src).astype("int32"), length - 1)
        i1 = np.minimum(i0 + 1, length - 1).astype("int32")
        w1 = (src - i0).astype("float32")
        return i0, i1, (1.0 - w1)[:, None].astype("float32"), w1[:, None]

    def call(self, x):
        length = x.shape[1]
        if length is None:
            raise ValueError("SeisTLinearResize1D needs a static sequence length. Received: None")
        i0, i1, w0, w1 = self._taps(length)
        a = ops.take(x, ops.convert_to_tensor(i0), axis=1)
        b = ops.take(x, ops.convert_to_tensor(i1), axis=1)
        return a * ops.cast(w0, x.dtype) + b * ops.cast(w1, x.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@keras.saving.register_keras_serializable(package="utrans")
class SeisTGroupConv1D(layers.Conv1D):
    """Grouped ``Conv1D`` computed as one dense convolution with a block-diagonal kernel.

    The weight is the usual grouped kernel ``(K, C_in / groups, filters)``; at
    call time it is expanded to ``(K, C_in, filters)`` with zeros outside the
    diagonal blocks. The groups here are few (1-4) and narrow, so the dense
    convolution is cheap, and unlike Keras' grouped path on the TensorFlow CPU
    backend it needs no XLA compilation per call.

    Arguments, inputs and outputs are those of ``keras.layers.Conv1D``.
    """

    def _dense_kernel(self):
        kernel = self.kernel
        if self.groups == 1:
            return kernel
        k, c_group, filters = kernel.shape
        in_group = np.arange(c_group * self.groups) // c_group
        out_group = np.arange(filters) // (filters // self.groups)
        mask = (in_group[:, None] == out_group[None, :]).astype("float32")
        return ops.tile(kernel, (1, self.groups, 1)) * ops.cast(mask, kernel.dtype)

    def call(self, inputs):
        if self.padding == "causal":
            raise ValueError(
                "SeisTGroupConv1D does not support causal padding. Received: padding='causal'"
            )
        outputs = ops.conv(inputs, self._dense_kernel(), strides=list(self.strides),
                           padding=self.padding, dilation_rate=self.dilation_rate,
                           data_format=self.data_format)
        if self.use_bias:
            outputs = outputs + self.bias
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


@keras.saving.register_keras_serializable(package="utrans")
class SeisTGELU(layers.Layer):
    """Exact (erf) GELU written as ``(x * 0.5) * (1 + erf(x / sqrt(2)))``.

    Same function as ``keras.activations.gelu(approximate=False)``; this form
    runs about twice as fast on the TensorFlow CPU backend (one erf pass, no
    erfc), which matters because SeisT applies GELU at full resolution. In
    float32 ``1 + erf`` cancels for ``x < -4``, where the result (below 1e-4
    in size) is off by less than 1e-6 absolute. The TFLite converter
    recognises this form (not ``x * (0.5 + 0.5 * erf)``) as its builtin GELU,
    so SeisT exports to LiteRT without TensorFlow kernels.

    Returns:
        Tensor of the input's shape.
    """

    def call(self, x):
        return (x * 0.5) * (1.0 + ops.erf(x * 0.7071067811865476))

    def compute_output_shape(self, input_shape):
        return input_shape


# --- weight map ----------------------------------------------------------------


def _pointwise_kernel(w):
    """Torch Conv1d weight (O, I, 1) -> Dense kernel (I, O) (other shapes stay mis-shaped)."""
    return np.transpose(w.reshape(w.shape[0], -1))


def _depthwise_kernel(w):
    """Torch depthwise Conv1d weight (C, 1, K) -> DepthwiseConv1D kernel (K, C, 1)."""
    return np.transpose(w, (2, 0, 1))


def _torch_mappings(keras_layers, skip=()):
    """TorchMapping list for every weighted layer, paired by name (see :func:`_kname`)."""
    out = []
    for layer in keras_layers:
        if layer in skip or not layer.weights:
            continue
        name = _torch_name(layer.name)
        if isinstance(layer, layers.DepthwiseConv1D):
            out.append(TorchMapping(layer.kernel, [f"{name}.weight"], _depthwise_kernel))
            if layer.use_bias:
                out.append(TorchMapping(layer.bias, [f"{name}.bias"]))
        elif isinstance(layer, layers.Dense):
            # 1x1 Conv1d in the reference, Linear in the pooled heads.
            fn = linear_kernel if name.endswith(".lin") else _pointwise_kernel
            out.append(TorchMapping(layer.kernel, [f"{name}.weight"], fn))
            if layer.use_bias:
                out.append(TorchMapping(layer.bias, [f"{name}.bias"]))
        else:
            out.extend(layer_mappings(layer, name))
    return out


# --- building blocks (functional) ----------------------------------------------


class _Builder:
    """Creates the named layers of one SeisT graph and hands out dropout seeds."""

    def __init__(self, seed):
        self._seed = seed
        self._count = 0

    def seed(self):
        if self._seed is None:
            return None
        self._count += 2
        return self._seed + self._count

    @staticmethod
    def norm(x, name):
        return BatchNormalization(axis=-1, momentum=0.9, epsilon=1e-5, name=_kname(name))(x)

    @staticmethod
    def act(x, name):
        return SeisTGELU(name=_kname(name))(x)

    @staticmethod
    def pointwise(x, filters, use_bias, name):
        return layers.Dense(filters, use_bias=use_bias, name=_kname(name))(x)

    @staticmethod
    def pad(x, kernel_size, stride, name):
        """Zero padding so a valid conv yields ceil(L / stride) samples.

        Returns the padded tensor and the padding argument for the conv.
        """
        length = x.shape[1]
        total = (stride - length % stride) % stride + kernel_size - stride
        left, right = total // 2, total - total // 2
        if stride == 1 and left == right:
            return x, "same"
        if total == 0:
            return x, "valid"
        return layers.ZeroPadding1D((left, right), name=_kname(f"{name}.pad"))(x), "valid"

    def drop_path(self, x, rate, name):
        if rate <= 0.0:
            return x
        return SeisTDropPath(rate, seed=self.seed(), name=_kname(name))(x)

    def dropout(self, x, rate, name):
        if rate <= 0.0:
            return x
        return layers.Dropout(rate, seed=self.seed(), name=_kname(name))(x)

    def mlp(self, x, ratio, bias, drop, p):
        dim = x.shape[-1]
        h = self.pointwise(x, int(dim * ratio), bias, f"{p}.lin0")
        h = self.act(h, f"{p}.act")
        h = self.pointwise(h, dim, bias, f"{p}.lin1")
        return self.dropout(h, drop, f"{p}.dropout")

    def local_aggregation(self, x, out_dim, kernel_size, p):
        if kernel_size > 1:
            x = SeisTLocalPool1D(kernel_size, name=_kname(f"{p}.pool"))(x)
        x = self.pointwise(x, out_dim, False, f"{p}.proj")
        return self.norm(x, f"{p}.norm")

    def ds_conv(self, x, out_dim, kernel_size, stride, p):
        x = self.pointwise(x, x.shape[-1], False, f"{p}.in_proj")
        x, padding = self.pad(x, kernel_size, stride, f"{p}.dconv")
        x = layers.DepthwiseConv1D(kernel_size, strides=stride, padding=padding,
                                   use_bias=False, name=_kname(f"{p}.dconv"))(x)
        x = self.pointwise(x, out_dim, False, f"{p}.pconv")
        x = self.norm(x, f"{p}.norm")
        return self.act(x, f"{p}.act")

    def stem_block(self, x, out_dim, kernel_size, stride, p, npath=3):
        paths = [self.ds_conv(x, out_dim, kernel_size + 4 * d, stride, f"{p}.convs.{d}")
                 for d in range(npath)]
        x = layers.Concatenate(axis=-1, name=_kname(f"{p}.concat"))(paths)
        x = self.pointwise(x, out_dim, False, f"{p}.out_proj")
        return self.norm(x, f"{p}.norm")

    def group_conv_block(self, x, groups, kernel_size, path_rate, cfg, p):
        dim = x.shape[-1]
        h, padding = self.pad(x, kernel_size, 1, f"{p}.conv")
        h = SeisTGroupConv1D(dim, kernel_size, padding=padding, groups=groups, use_bias=False,
                             name=_kname(f"{p}.conv"))(h)
        h = self.norm(h, f"{p}.norm0")
        h = self.act(h, f"{p}.act")
        h = self.pointwise(h, dim, False, f"{p}.proj")
        h = self.drop_path(h, path_rate, f"{p}.droppath0")
        x = layers.Add(name=_kname(f"{p}.add0"))([x, h])
        h = self.norm(x, f"{p}.norm1")
        h = self.mlp(h, cfg["mlp_ratio"], cfg["mlp_bias"], cfg["mlp_drop_rate"], f"{p}.mlp")
        h = self.drop_path(h, path_rate, f"{p}.droppath1")
        return layers.Add(name=_kname(f"{p}.add1"))([x, h])

    def multiscale_conv(self, x, groups, path_rate, cfg, p):
        io_dim = x.shape[-1]
        kernel_sizes = cfg["msmc_kernel_sizes"]
        group_size = io_dim // groups
        dims, outs = [], []
        for i, kernel_size in enumerate(kernel_sizes):
            dim = _make_divisible(
                (io_dim - sum(dims)) // (len(kernel_sizes) - len(dims)), group_size
            )
            dims.append(dim)
            xi = self.pointwise(x, dim, False, f"{p}.projs.{i}")
            xi = self.norm(xi, f"{p}.norms.{i}")
            yi = self.group_conv_block(xi, dim // group_size, kernel_size, path_rate, cfg,
                                       f"{p}.convs.{i}")
            outs.append(layers.Add(name=_kname(f"{p}.convs.{i}.residual"))([xi, yi]))
        x = layers.Concatenate(axis=-1, name=_kname(f"{p}.concat"))(outs)
        return self.norm(x, f"{p}.out_norm")

    def attention(self, x, head_dim, aggr_ratio, cfg, p):
        dim = x.shape[-1]
        bias = cfg["qkv_bias"]
        q = self.pointwise(x, dim, bias, f"{p}.q_proj")
        if aggr_ratio > 1:
            x = self.local_aggregation(x, dim, aggr_ratio, f"{p}.aggr")
            x = self.norm(x, f"{p}.norm")
        k = self.pointwise(x, dim, bias, f"{p}.k_proj")
        v = self.pointwise(x, dim, bias, f"{p}.v_proj")
        y = SeisTAttention(dim // head_dim, cfg["attn_drop_rate"], cfg["key_drop_rate"],
                           seed=self.seed(), name=_kname(f"{p}.mha"))(q, k, v)
        y = self.pointwise(y, dim, bias, f"{p}.out_proj")
        return self.dropout(y, cfg["other_drop_rate"], f"{p}.proj_dropout")

    def transformer_layer(self, x, head_dim, aggr_ratio, path_rate, cfg, p):
        io_dim = x.shape[-1]
        ratio = cfg["attn_ratio"]
        attn_dim = _make_divisible(int(io_dim * ratio), head_dim) if ratio > 0 else 0
        conv_dim = max(io_dim - attn_dim, 0)
        outs = []
        if attn_dim > 0:
            x1 = self.norm(self.pointwise(x, attn_dim, False, f"{p}.attn_proj"), f"{p}.norm0")
            y1 = self.attention(x1, head_dim, aggr_ratio, cfg, f"{p}.attention")
            y1 = self.drop_path(y1, path_rate * ratio, f"{p}.attn_droppath")
            outs.append(layers.Add(name=_kname(f"{p}.attn_add"))([x1, y1]))
        if conv_dim > 0:
            x2 = self.norm(self.pointwise(x, conv_dim, False, f"{p}.conv_proj"), f"{p}.norm1")
            y2 = self.group_conv_block(x2, conv_dim // head_dim, 3, path_rate, cfg, f"{p}.gconv")
            y2 = self.drop_path(y2, path_rate * (1 - ratio), f"{p}.gconv_droppath")
            outs.append(layers.Add(name=_kname(f"{p}.gconv_add"))([x2, y2]))
        if len(outs) > 1:
            x = layers.Concatenate(axis=-1, name=_kname(f"{p}.concat"))(outs)
        else:
            x = outs[0]
        x = self.norm(x, f"{p}.norm2")
        h = self.mlp(x, cfg["mlp_ratio"], cfg["mlp_bias"], cfg["mlp_drop_rate"], f"{p}.mlp")
        h = self.drop_path(h, path_rate, f"{p}.mlp_droppath")
        return layers.Add(name=_kname(f"{p}.mlp_add"))([x, h])


# --- backbone ----------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="utrans")
class SeisTBackbone(keras.Model):
    """SeisT encoder: multi-path stem and four stages of multi-scale convolution
    and attention blocks (Li et al. 2024, IEEE TGRS, doi:10.1109/TGRS.2024.3371503).

    Intermediate features are reachable by layer name: ``"stem_output"`` and
    ``"stage_0"`` ... ``"stage_3"`` (identity layers at each stage's end).

    Args:
        in_samples: fixed window length L (samples).
        in_channels: number of input components (3: Z, N, E).
        stem_channels: output channels, one entry per stem block.
        stem_kernel_sizes: kernel sizes, one entry per stem block.
        stem_strides: strides, one entry per stem block.
        layer_blocks: blocks per encoder stage.
        layer_channels: channels per encoder stage.
        attn_blocks: how many of each stage's last blocks are attention blocks.
        stage_aggr_ratios: pooling factor at the start of each stage.
        attn_aggr_ratios: key/value pooling factor of each stage's attention.
        head_dims: channels per attention head (and per conv group) per stage.
        msmc_kernel_sizes: kernel sizes of the multi-scale convolution paths.
        path_drop_rate: maximum stochastic-depth rate (linearly increasing per block).
        attn_drop_rate: dropout rate of attention weights.
        key_drop_rate: dropout rate of keys.
        mlp_drop_rate: dropout rate of MLP outputs.
        other_drop_rate: dropout rate of attention outputs.
        attn_ratio: fraction of channels routed through attention in transformer blocks.
        mlp_ratio: MLP hidden width / input width.
        qkv_bias: whether the query/key/value projections have a bias.
        mlp_bias: whether the MLP projections have a bias.
        seed: optional integer seed for every dropout / stochastic-depth layer.
        **kwargs: ``name``, ``trainable``, ... passed to ``keras.Model``.

    Returns:
        A model mapping ``(B, in_samples, in_channels)`` to features
        ``(B, L_out, layer_channels[-1])``.
    """

    def __init__(
        self,
        in_samples=8192,
        in_channels=3,
        stem_channels=(16, 8, 16, 16),
        stem_kernel_sizes=(11, 5, 5, 7),
        stem_strides=(2, 1, 1, 2),
        layer_blocks=(2, 3, 6, 2),
        layer_channels=(24, 32, 64, 96),
        attn_blocks=(1, 1, 1, 1),
        stage_aggr_ratios=(2, 2, 2, 2),
        attn_aggr_ratios=(8, 4, 2, 1),
        head_dims=(8, 8, 16, 32),
        msmc_kernel_sizes=(5, 7),
        path_drop_rate=0.1,
        attn_drop_rate=0.1,
        key_drop_rate=0.1,
        mlp_drop_rate=0.1,
        other_drop_rate=0.1,
        attn_ratio=0.6,
        mlp_ratio=2,
        qkv_bias=True,
        mlp_bias=True,
        seed=None,
        **kwargs,
    ):
        owner = "SeisTBackbone"
        _check_positive_int("in_samples", in_samples, owner)
        _check_positive_int("in_channels", in_channels, owner)
        stem = [list(stem_channels), list(stem_kernel_sizes), list(stem_strides)]
        if len({len(v) for v in stem}) != 1:
            raise ValueError(
                f"{owner}: stem_channels, stem_kernel_sizes and stem_strides must have the same "
                f"length. Received: {stem}"
            )
        stages = [list(layer_blocks), list(layer_channels), list(attn_blocks),
                  list(stage_aggr_ratios), list(attn_aggr_ratios), list(head_dims)]
        if len({len(v) for v in stages}) != 1:
            raise ValueError(
                f"{owner}: layer_blocks, layer_channels, attn_blocks, stage_aggr_ratios, "
                f"attn_aggr_ratios and head_dims must have the same length. Received: {stages}"
            )
        for k, s in zip(stem_kernel_sizes, stem_strides):
            if k < s:
                raise ValueError(
                    f"{owner}: each stem kernel must be >= its stride. Received: "
                    f"stem_kernel_sizes={list(stem_kernel_sizes)}, "
                    f"stem_strides={list(stem_strides)}"
                )
        if not 0.0 <= attn_ratio <= 1.0:
            raise ValueError(
                f"{owner}: attn_ratio must be in [0, 1]. Received: attn_ratio={attn_ratio}"
            )

        cfg = dict(
            msmc_kernel_sizes=list(msmc_kernel_sizes), mlp_ratio=mlp_ratio, mlp_bias=mlp_bias,
            qkv_bias=qkv_bias, attn_ratio=attn_ratio, attn_drop_rate=attn_drop_rate,
            key_drop_rate=key_drop_rate, mlp_drop_rate=mlp_drop_rate,
            other_drop_rate=other_drop_rate,
        )
        b = _Builder(seed)
        inputs = keras.Input((in_samples, in_channels), name="waveform")
        x = inputs
        for i, (outc, kers, strd) in enumerate(zip(*stem)):
            x = b.stem_block(x, outc, kers, strd, f"stem.{i}")
        x = layers.Identity(name="stem_output")(x)

        total = sum(layer_blocks)
        rates = [float(r) for r in np.linspace(0.0, path_drop_rate, total, dtype=np.float32)]
        for i, (nblocks, lc, nattn, aggr, attn_aggr, hdim) in enumerate(zip(*stages)):
            p = f"encoder_layers.{i}"
            x = b.local_aggregation(x, lc, aggr, f"{p}.0")
            for j in range(nblocks):
                rate = rates[sum(layer_blocks[:i]) + j]
                if j >= nblocks - nattn:
                    x = b.transformer_layer(x, hdim, attn_aggr, rate, cfg, f"{p}.{j + 1}")
                else:
                    x = b.multiscale_conv(x, lc // hdim, rate, cfg, f"{p}.{j + 1}")
            x = layers.Identity(name=f"stage_{i}")(x)

        name = kwargs.pop("name", "seist_backbone")
        super().__init__(inputs=inputs, outputs=x, name=name, **kwargs)

        self.in_samples = int(in_samples)
        self.in_channels = int(in_channels)
        self.stem_channels = list(stem_channels)
        self.stem_kernel_sizes = list(stem_kernel_sizes)
        self.stem_strides = list(stem_strides)
        self.layer_blocks = list(layer_blocks)
        self.layer_channels = list(layer_channels)
        self.attn_blocks = list(attn_blocks)
        self.stage_aggr_ratios = list(stage_aggr_ratios)
        self.attn_aggr_ratios = list(attn_aggr_ratios)
        self.head_dims = list(head_dims)
        self.msmc_kernel_sizes = list(msmc_kernel_sizes)
        self.path_drop_rate = path_drop_rate
        self.attn_drop_rate = attn_drop_rate
        self.key_drop_rate = key_drop_rate
        self.mlp_drop_rate = mlp_drop_rate
        self.other_drop_rate = other_drop_rate
        self.attn_ratio = attn_ratio
        self.mlp_ratio = mlp_ratio
        self.qkv_bias = qkv_bias
        self.mlp_bias = mlp_bias
        self.seed = seed

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "in_samples": self.in_samples,
            "in_channels": self.in_channels,
            "stem_channels": self.stem_channels,
            "stem_kernel_sizes": self.stem_kernel_sizes,
            "stem_strides": self.stem_strides,
            "layer_blocks": self.layer_blocks,
            "layer_channels": self.layer_channels,
            "attn_blocks": self.attn_blocks,
            "stage_aggr_ratios": self.stage_aggr_ratios,
            "attn_aggr_ratios": self.attn_aggr_ratios,
            "head_dims": self.head_dims,
            "msmc_kernel_sizes": self.msmc_kernel_sizes,
            "path_drop_rate": self.path_drop_rate,
            "attn_drop_rate": self.attn_drop_rate,
            "key_drop_rate": self.key_drop_rate,
            "mlp_drop_rate": self.mlp_drop_rate,
            "other_drop_rate": self.other_drop_rate,
            "attn_ratio": self.attn_ratio,
            "mlp_ratio": self.mlp_ratio,
            "qkv_bias": self.qkv_bias,
            "mlp_bias": self.mlp_bias,
            "seed": self.seed,
        }

    def torch_weight_map(self):
        """Pair every weight with the reference's state_dict names (no ``out_head``).

        Returns:
            list of :class:`utrans.convert.TorchMapping`.
        """
        return _torch_mappings(self.layers)


# --- task models ---------------------------------------------------------------------


def _seist_conventions(head):
    """Conventions of a SeisT model with the ``head`` output (the reference's defaults)."""
    base = dict(sampling_rate=100.0, component_order="ZNE", in_samples=8192, normalization="std")
    if head == "dpk":
        return Conventions(**base, labels=("det", "P", "S"),
                           thresholds={"det": 0.5, "P": 0.3, "S": 0.3}, min_peak_distance_s=1.0,
                           head="detection_picking")
    if head == "pmp":
        return Conventions(**base, labels=("U", "D"), head="seist_pmp")
    label, head_name = {"emg": ("magnitude", "seist_regression"),
                      "baz": ("back_azimuth_deg", "seist_baz"),
                      "dis": ("distance_km", "seist_regression"),
                      "regression": ("value", "seist_regression")}[head]
    return Conventions(**base, labels=(label,), head=head_name)


class _SeisTTask(keras.Model):
    """Shared plumbing of the SeisT task models (backbone + named head layers)."""

    def _finish(self, backbone, inputs, outputs, default_name, kwargs, head):
        name = kwargs.pop("name", default_name)
        conventions = pop_conventions(kwargs, _seist_conventions(head),
                                      in_samples=backbone.in_samples)
        # super(), not keras.Model.__init__: after the first build Keras has
        # rebased this class on Functional, whose __init__ must be the one called.
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.backbone = backbone
        self.conventions = conventions

    def torch_weight_map(self):
        """Pair every weight (backbone and head) with the reference's state_dict names.

        Returns:
            list of :class:`utrans.convert.TorchMapping`.
        """
        head = _torch_mappings(self.layers, skip=(self.backbone,))
        return self.backbone.torch_weight_map() + head

    def _base_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            **self.conventions.to_config(),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("backbone"), dict):
            config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)


def _upsampling_sizes(in_size, out_size, depth):
    """Intermediate lengths of the picking head (geometric steps, truncated)."""
    sizes = [out_size] * depth
    factor = (out_size / in_size) ** (1 / depth)
    for i in range(depth - 2, -1, -1):
        sizes[i] = int(sizes[i + 1] / factor)
    return sizes


@keras.saving.register_keras_serializable(package="utrans")
class SeisTPicker(_SeisTTask):
    """SeisT detection and phase picking (``dpk``): per-sample probability curves.

    The head upsamples the backbone features back to the input length in as
    many steps as the encoder has strided stages, each a linear resize, a
    convolution, batch normalisation and GELU, followed by a 7-tap output
    convolution and a sigmoid (Li et al. 2024, IEEE TGRS,
    doi:10.1109/TGRS.2024.3371503).

    Args:
        backbone: a :class:`SeisTBackbone`.
        out_channels: number of output curves (3: det, ppk, spk).
        **kwargs: ``name``, ``trainable`` passed to ``keras.Model``.

    Returns:
        A model mapping ``(B, L, C_in)`` to ``(B, L, out_channels)`` in [0, 1].
    """

    def __init__(self, backbone, out_channels=3, **kwargs):
        _check_positive_int("out_channels", out_channels, "SeisTPicker")
        bb = backbone
        channels, kernels = [], []
        for ch, k, s in zip(
            [bb.in_channels] + bb.stem_channels + bb.layer_channels[:-1],
            bb.stem_kernel_sizes + [max(bb.msmc_kernel_sizes)] * len(bb.layer_channels),
            bb.stem_strides + bb.stage_aggr_ratios,
        ):
            if s > 1:
                channels.insert(0, ch)
                kernels.insert(0, k)
        if not channels:
            raise ValueError("SeisTPicker: the backbone has no strided stage to upsample.")
        out_dims = channels[:-1] + [out_channels * 2]
        inputs = bb.input
        x = bb(inputs)
        sizes = _upsampling_sizes(x.shape[1], bb.in_samples, len(channels))
        if min(sizes) < 1:
            raise ValueError(
                f"SeisTPicker: in_samples={bb.in_samples} is too short for the picking head "
                f"(intermediate lengths {sizes}). Received: in_samples={bb.in_samples}"
            )
        for i, (size, outc, k) in enumerate(zip(sizes, out_dims, kernels)):
            p = f"out_head.up_layers.{i}"
            x = SeisTLinearResize1D(size, name=_kname(f"{p}.resize"))(x)
            x, padding = _Builder.pad(x, k, 1, f"{p}.conv")
            x = layers.Conv1D(outc, k, padding=padding, name=_kname(f"{p}.conv"))(x)
            x = _Builder.norm(x, f"{p}.norm")
            x = _Builder.act(x, f"{p}.act")
        x = layers.Conv1D(out_channels, 7, padding="same", name=_kname("out_head.out_conv"))(x)
        outputs = layers.Activation("sigmoid", name=_kname("out_head.out_act"), dtype="float32")(x)
        self._finish(bb, inputs, outputs, "seist_picker", kwargs, "dpk")
        self.out_channels = int(out_channels)

    def get_config(self):
        return {**self._base_config(), "out_channels": self.out_channels}


@keras.saving.register_keras_serializable(package="utrans")
class SeisTClassifier(_SeisTTask):
    """SeisT classifier (``pmp``: first-motion polarity): pooled features -> softmax.

    Li et al. 2024, IEEE TGRS, doi:10.1109/TGRS.2024.3371503.

    Args:
        backbone: a :class:`SeisTBackbone`.
        num_classes: number of classes (2 for polarity).
        **kwargs: ``name``, ``trainable`` passed to ``keras.Model``.

    Returns:
        A model mapping ``(B, L, C_in)`` to class probabilities ``(B, num_classes)``.
    """

    def __init__(self, backbone, num_classes=2, **kwargs):
        _check_positive_int("num_classes", num_classes, "SeisTClassifier")
        inputs = backbone.input
        x = backbone(inputs)
        x = layers.GlobalAveragePooling1D(name=_kname("out_head.pool"))(x)
        x = layers.Dense(num_classes, name=_kname("out_head.lin"))(x)
        outputs = layers.Activation("softmax", name=_kname("out_head.out_act"), dtype="float32")(x)
        self._finish(backbone, inputs, outputs, "seist_classifier", kwargs, "pmp")
        self.num_classes = int(num_classes)

    def get_config(self):
        return {**self._base_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="utrans")
class SeisTRegressor(_SeisTTask):
    """SeisT regressor (``emg``, ``baz``, ``dis``): pooled features -> ``scale * sigmoid``.

    Li et al. 2024, IEEE TGRS, doi:10.1109/TGRS.2024.3371503.

    Args:
        backbone: a :class:`SeisTBackbone`.
        scale: output range (8 for magnitude, 360 for back-azimuth in degrees,
            500 for epicentral distance).
        **kwargs: ``name``, ``trainable`` passed to ``keras.Model``.

    Returns:
        A model mapping ``(B, L, C_in)`` to ``(B, 1)`` in ``(0, scale)``.
    """

    def __init__(self, backbone, scale=1.0, **kwargs):
        inputs = backbone.input
        x = backbone(inputs)
        x = layers.GlobalAveragePooling1D(name=_kname("out_head.pool"))(x)
        x = layers.Dense(1, name=_kname("out_head.lin"))(x)
        x = layers.Activation("sigmoid", name=_kname("out_head.sigmoid"))(x)
        outputs = layers.Rescaling(float(scale), name=_kname("out_head.out_act"),
                                   dtype="float32")(x)
        self._finish(backbone, inputs, outputs, "seist_regressor", kwargs, "regression")
        self.scale = float(scale)

    def get_config(self):
        return {**self._base_config(), "scale": self.scale}


# --- registry --------------------------------------------------------------------------

# Per published variant: the reference's training-time drop rates (all five
# rates equal) where they differ from the size defaults.
def _variant_drop_rates(size, task):
    table = {("m", "dpk"): 0.2, ("l", "dpk"): 0.3, ("s", "pmp"): 0.2, ("m", "pmp"): 0.25,
             ("l", "pmp"): 0.3}
    rate = table.get((size, task))
    if rate is None:
        return {}
    return {k: rate for k in ("path_drop_rate", "attn_drop_rate", "key_drop_rate",
                              "mlp_drop_rate", "other_drop_rate")}


def _build_seist(size, task, in_samples=8192, in_channels=3, seed=None, **kwargs):
    backbone_args = {**seist_size_config(size), **_variant_drop_rates(size, task)}
    head_key, head_default = {
        "dpk": ("out_channels", 3),
        "pmp": ("num_classes", 2),
        "emg": ("scale", 8.0),
        "baz": ("scale", 360.0),
        "dis": ("scale", 500.0),
    }[task]
    head_value = kwargs.pop(head_key, head_default)
    name = kwargs.pop("name", f"seist_{size}_{task}")
    conventions = pop_conventions(kwargs, _seist_conventions(task)).to_config()
    known = set(inspect.signature(SeisTBackbone.__init__).parameters) | {"trainable", "dtype"}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(
            f"seist_{size}_{task}: unknown arguments {unknown}; accepted are in_samples, "
            f"in_channels, seed, {head_key}, the SeisTBackbone arguments and the conventions "
            "(utrans.core.conventions). "
            f"Received: {', '.join(f'{k}={kwargs[k]!r}' for k in unknown)}"
        )
    backbone_args.update(kwargs)
    backbone = SeisTBackbone(in_samples=in_samples, in_channels=in_channels, seed=seed,
                             name=f"{name}_backbone", **backbone_args)
    if task == "dpk":
        return SeisTPicker(backbone, out_channels=head_value, name=name, **conventions)
    if task == "pmp":
        return SeisTClassifier(backbone, num_classes=head_value, name=name, **conventions)
    return SeisTRegressor(backbone, scale=head_value, name=name, **conventions)


# The quantity each SeisT head measures (utrans.core.tasks.QUANTITIES).
_QUANTITY = {"dpk": "picking", "pmp": "polarity", "emg": "magnitude", "baz": "backazimuth",
             "dis": "distance"}


def _register(size, task):
    name = f"seist_{size}_{task}"

    def constructor(in_samples=8192, in_channels=3, seed=None, **kwargs):
        return _build_seist(size, task, in_samples=in_samples, in_channels=in_channels,
                            seed=seed, **kwargs)

    constructor.__name__ = name
    constructor.__qualname__ = name
    constructor.__doc__ = (
        f"SeisT-{size.upper()} with the {task!r} head ({_CITATION}).\n\n"
        "Args:\n"
        "    in_samples: window length in samples (default 8192).\n"
        "    in_channels: input components (default 3: Z, N, E).\n"
        "    seed: optional seed for dropout / stochastic depth.\n"
        "    **kwargs: ``name``, overrides of SeisTBackbone arguments, or the head's\n"
        "        out_channels (dpk) / num_classes (pmp) / scale (emg, baz, dis).\n\n"
        "Returns:\n"
        f"    A keras.Model named {name!r} that loads the reference's {name}_*.pth.\n"
    )
    register_model(name, quantity=_QUANTITY[task], conventions=_seist_conventions(task))(constructor)
    return constructor


for _size in ("s", "m", "l"):
    for _task in ("dpk", "pmp", "emg", "baz", "dis"):
        _register(_size, _task)
del _size, _task
