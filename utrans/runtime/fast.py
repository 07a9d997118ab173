"""Inference-only forward functions: the same model, fewer passes over memory.

A Keras functional model built for training evaluates batch normalisation as
separate multiply/add passes after each convolution, zero-pads with separate
layers and keeps dropout layers as no-ops (PERFORMANCE.md: a quarter of a
PhaseNet call). :func:`inference_function` walks a functional model's layer
graph and returns a function computing the same outputs with:

* each ``BatchNormalization`` that directly follows a ``Conv1D`` or
  ``Conv1DTranspose`` (and is that convolution's only consumer) folded into
  the convolution's kernel and bias: ``W' = W * g / sqrt(v + eps)``,
  ``b' = (b - m) * g / sqrt(v + eps) + beta``, and a ReLU right after them
  applied inside the same step (on TensorFlow the convolution runs as a 2-D
  convolution, bias-add and ReLU that oneDNN fuses into one kernel);
* any other ``BatchNormalization`` as one precomputed scale and shift;
* a ``ZeroPadding1D`` whose only consumer is a ``"valid"`` ``Conv1D`` turned
  into that convolution's ``"same"`` padding when the two are the same
  (TensorFlow's ``SAME`` rule: total ``max((ceil(L/s) - 1) s + k - L, 0)``,
  the smaller half on the left);
* dropout-type layers removed (they are the identity at inference);
* a softmax over a last axis of two to four channels written out per
  channel (the fused kernel is slow on such narrow axes);
* every other layer called as it is (``training=False``).

Models that hold nested models (SeisT's backbone) or shared layers are left
to Keras (``None``): their graph cannot be walked through public attributes.

The model and its training graph are not changed; the function reads the
model's variables each time it runs. Equality with the model (and with the reference outputs of the
original implementations) is checked by the tests to float32 rounding.
"""

from __future__ import annotations

import logging
import math
import sys
import weakref

import keras

__all__ = ["inference_function"]

logger = logging.getLogger(__name__)

_DROPOUTS = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianDropout",
             "GaussianNoise", "AlphaDropout")
_MERGES = ("Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
_CONVS = (keras.layers.Conv1D, keras.layers.Conv1DTranspose)


class _Unsupported(Exception):
    """A graph this module does not rewrite (the model is then called as it is)."""


def _flat(x):
    return keras.tree.flatten(x)


def _is_functional(layer):
    return isinstance(layer, keras.Model) and hasattr(layer, "layers") and \
        hasattr(layer, "inputs") and layer.inputs is not None


def _check_bn(bn):
    axis = bn.axis if isinstance(bn.axis, int) else (bn.axis[0] if len(bn.axis) == 1 else None)
    if axis not in (-1, len(bn.input.shape) - 1):
        raise _Unsupported(f"{bn.name}: batch normalisation over axis {bn.axis}")
    return bn


def _bn_scale_shift(bn):
    """Scale and shift of a BatchNormalization at inference, from its current variables."""
    ops = keras.ops
    scale = ops.rsqrt(ops.convert_to_tensor(bn.moving_variance) + bn.epsilon)
    if bn.scale:
        scale = scale * bn.gamma
    shift = -ops.convert_to_tensor(bn.moving_mean) * scale
    if bn.center:
        shift = shift + bn.beta
    return scale, shift


def _same_padding(length, kernel, stride):
    out = math.ceil(length / stride)
    total = max((out - 1) * stride + kernel - length, 0)
    return total // 2, total - total // 2


def _is_plain_relu(layer):
    if isinstance(layer, keras.layers.ReLU):
        return layer.max_value is None and not layer.negative_slope and not layer.threshold
    return isinstance(layer, keras.layers.Activation) and \
        layer.activation is keras.activations.relu


class _Plan:
    """The rewritten evaluation of one functional model."""

    def __init__(self, model):
        self.model = model
        layers = list(model.layers)
        self.inputs_of = {}
        consumers = {}
        for layer in layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            try:
                tensors = _flat(layer.input)
            except (AttributeError, ValueError) as err:  # a shared layer: several call sites
                raise _Unsupported(f"{layer.name}: {err}") from err
            if len(tensors) > 1 and type(layer).__name__ not in _MERGES:
                raise _Unsupported(f"{layer.name} takes {len(tensors)} tensors")
            self.inputs_of[layer.name] = tensors
            for t in tensors:
                consumers.setdefault(id(t), []).append(layer)
        for t in _flat(model.output):
            consumers.setdefault(id(t), []).append(None)

        def only_consumer(layer):
            found = consumers.get(id(layer.output), [])
            return found[0] if len(found) == 1 else None

        # Convolutions absorb a following BatchNormalization and ReLU, and a
        # ZeroPadding1D before them when it equals "same" padding.
        convs, absorbed = {}, set()
        for layer in layers:
            if type(layer) not in _CONVS or layer.data_format != "channels_last" or \
                    getattr(layer, "groups", 1) != 1 or layer.padding not in ("valid", "same"):
                continue
            spec = {"bn": None, "padding": layer.padding, "relu": False,
                    "transpose": isinstance(layer, keras.layers.Conv1DTranspose)}
            tail = layer
            if layer.activation is keras.activations.linear:
                nxt = only_consumer(tail)
                if isinstance(nxt, keras.layers.BatchNormalization):
                    spec["bn"] = _check_bn(nxt)
                    absorbed.add(nxt.name)
                    tail = nxt
                nxt = only_consumer(tail)
                if nxt is not None and _is_plain_relu(nxt):
                    spec["relu"] = True
                    absorbed.add(nxt.name)
            convs[layer.name] = spec
        for layer in layers:
            conv = only_consumer(layer) if isinstance(layer, keras.layers.ZeroPadding1D) else None
            if conv is not None and conv.name in convs and not convs[conv.name]["transpose"] \
                    and conv.padding == "valid" and tuple(conv.dilation_rate) == (1,) and \
                    layer.input.shape[1] is not None and tuple(layer.padding) == \
                    _same_padding(layer.input.shape[1], conv.kernel_size[0], conv.strides[0]):
                convs[conv.name]["padding"] = "same"
                absorbed.add(layer.name)

        self.steps = []  # (layer, how, spec)
        for layer in layers:
            kind = type(layer).__name__
            if isinstance(layer, keras.layers.InputLayer):
                continue
            if layer.name in absorbed or kind in _DROPOUTS:
                self.steps.append((layer, "identity", None))
            elif layer.name in convs:
                self.steps.append((layer, "conv", convs[layer.name]))
            elif kind == "BatchNormalization":
                self.steps.append((layer, "affine", _check_bn(layer)))
            elif kind == "Softmax" and layer.input.shape[-1] is not None and \
                    2 <= layer.input.shape[-1] <= 4 and layer.axis in (-1, [-1]):
                self.steps.append((layer, "softmax", None))
            else:
                self.steps.append((layer, "call", None))
        self.n_rewrites = sum(how != "call" for _, how, _c in self.steps)
        # Every tensor a step reads must be made by an earlier step. (A nested model's
        # ``output`` is its inner graph's tensor, not the one its call made in this
        # graph: such models are left to Keras.)
        known = {id(t) for t in _flat(model.input)}
        for layer, _, _ in self.steps:
            if any(id(t) not in known for t in self.inputs_of[layer.name]):
                raise _Unsupported(f"{layer.name} reads a tensor made inside a nested model")
            known.update(id(t) for t in _flat(layer.output))
        if any(id(t) not in known for t in _flat(model.output)):
            raise _Unsupported("an output is made inside a nested model")

    @staticmethod
    def _folded(conv, bn):
        """Kernel and bias of a convolution with its batch normalisation folded in."""
        ops = keras.ops
        kernel = ops.convert_to_tensor(conv.kernel)
        filters = conv.filters
        bias = ops.convert_to_tensor(conv.bias) if conv.use_bias else ops.zeros((filters,))
        if bn is None:
            return kernel, bias
        scale, shift = _bn_scale_shift(bn)
        # Conv1D kernels are (k, in, out); Conv1DTranspose kernels (k, out, in).
        if isinstance(conv, keras.layers.Conv1DTranspose):
            kernel = kernel * ops.reshape(scale, (1, filters, 1))
        else:
            kernel = kernel * scale
        return kernel, bias * scale + shift

    @staticmethod
    def _conv(layer, spec, x):
        kernel, bias = _Plan._folded(layer, spec["bn"])
        ops = keras.ops
        if keras.backend.backend() == "tensorflow" and (
                not spec["transpose"] or (spec["padding"] == "valid" and
                                          layer.output_padding is None and
                                          tuple(layer.dilation_rate) == (1,))):
            # As a 2-D convolution with a bias_add and a ReLU next to it, so that
            # TensorFlow fuses them into one oneDNN kernel.
            tf = sys.modules["tensorflow"]  # the backend Keras runs on, loaded already
            x4 = tf.expand_dims(x, 1)
            if spec["transpose"]:
                stride, size = layer.strides[0], layer.kernel_size[0]
                length = (tf.shape(x)[1] - 1) * stride + size
                y = tf.nn.conv2d_transpose(
                    x4, tf.expand_dims(kernel, 0),
                    tf.stack([tf.shape(x)[0], 1, length, layer.filters]),
                    strides=[1, 1, stride, 1], padding="VALID")
            else:
                y = tf.nn.conv2d(x4, tf.expand_dims(kernel, 0),
                                 strides=[1, 1, layer.strides[0], 1],
                                 padding=spec["padding"].upper(),
                                 dilations=[1, 1, layer.dilation_rate[0], 1])
            y = tf.nn.bias_add(y, bias)
            y = tf.nn.relu(y) if spec["relu"] else layer.activation(y)
            return tf.squeeze(y, 1)
        if spec["transpose"]:
            y = ops.conv_transpose(x, kernel, strides=layer.strides, padding=spec["padding"],
                                   output_padding=layer.output_padding,
                                   dilation_rate=layer.dilation_rate)
        else:
            y = ops.conv(x, kernel, strides=layer.strides, padding=spec["padding"],
                         dilation_rate=layer.dilation_rate)
        y = y + bias
        return ops.relu(y) if spec["relu"] else layer.activation(y)

    def __call__(self, x):
        values = {id(t): v for t, v in zip(_flat(self.model.input), _flat(x))}
        ops = keras.ops
        for layer, how, c in self.steps:
            args = [values[id(t)] for t in self.inputs_of[layer.name]]
            arg = args if type(layer).__name__ in _MERGES else args[0]
            if how == "identity":
                y = arg
            elif how == "conv":
                y = self._conv(layer, c, arg)
            elif how == "affine":
                scale, shift = _bn_scale_shift(c)
                y = arg * scale + shift
            elif how == "softmax":
                parts = [arg[..., i] for i in range(arg.shape[-1])]
                top = parts[0]
                for p in parts[1:]:
                    top = ops.maximum(top, p)
                exps = [ops.exp(p - top) for p in parts]
                total = exps[0]
                for e in exps[1:]:
                    total = total + e
                y = ops.stack([e / total for e in exps], axis=-1)
            else:
                y = layer(arg, training=False)
            for t, v in zip(_flat(layer.output), _flat(y)):
                values[id(t)] = v
        structure = self.model.output
        return keras.tree.pack_sequence_as(
            structure, [values[id(t)] for t in _flat(structure)])


_PLANS = weakref.WeakKeyDictionary()


def inference_function(model):
    """An inference-only forward function of a functional model (module doc).

    The function reads the model's variables when it runs (folding costs a
    few small tensor products per call), so it stays right after new weights
    are loaded; it is built once per model object.

    Args:
        model: a ``keras.Model`` built with the functional API.

    Returns:
        A callable ``f(x) -> outputs`` equal to ``model(x, training=False)``
        up to float32 rounding, or ``None`` when the model is not functional,
        has shared layers, or nothing would be gained.
    """
    if not _is_functional(model):
        return None
    try:
        if model in _PLANS:
            return _PLANS[model]
    except TypeError:  # unhashable model: no cache
        pass
    try:
        plan = _Plan(model)
    except _Unsupported as err:
        logger.debug("no inference graph for %s: %s", model.name, err)
        plan = None
    if plan is not None and not plan.n_rewrites:
        plan = None
    try:
        _PLANS[model] = plan
    except TypeError:
        pass
    return plan
