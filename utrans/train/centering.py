"""Start a randomly initialised model with its outputs centred on the training targets.

A model trained from scratch begins far from its targets when its output is
bounded or offset: a SeisT distance head (``500 * sigmoid``) first predicts
250 km for events 5-110 km away, a linear magnitude head predicts ~0 for
magnitudes around 2.5, and pick curves start at 0.5 where the labels average
~0.01. Adam moves each weight by about one learning rate per step, so many
steps are spent only on that offset. :func:`center_outputs` sets the bias of
each output's last affine layer (a Dense or convolution reached from the
output through weight-free layers such as activations and scalings) so that
the mean prediction on a few training batches equals the mean target, channel
by channel. Only the bias changes; the rest of the initialisation is kept.

``fit`` does this when a model starts from random initialisation (no
checkpoint, preset or foundation weights in its output layer);
``center_outputs=False`` (``--no_center_outputs``) keeps the random bias.
"""

from __future__ import annotations

import logging

import keras
import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["center_outputs", "output_bias_layer"]


def _output_chain(model, index):
    """(input tensor, [bias layer, weight-free layers...]) that make output ``index``, or None."""
    tensor = model.outputs[index]
    chain = []
    for _ in range(64):
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            return None
        operation, node_index, _ = tuple(history)
        if isinstance(operation, keras.Model) or _is_softmax(operation):
            return None  # nested model, or softmax channels that no single bias sets
        inputs = [t for t in operation._inbound_nodes[node_index].input_tensors if t is not None]
        if len(inputs) != 1:
            return None
        chain.insert(0, operation)
        if getattr(operation, "bias", None) is not None:
            return inputs[0], chain
        if operation.weights:
            return None
        tensor = inputs[0]
    return None


def output_bias_layer(model, index=0):
    """The layer whose bias sets output ``index`` of a functional ``model``, or None.

    Walks back from the output through single-input layers without weights
    (activations, scalings, reshapes, pooling) to the first layer with a bias
    (``Dense``, ``Conv1D``, ...). None when the walk meets a layer with weights
    but no bias, several inputs, a softmax or a nested model.
    """
    found = _output_chain(model, index)
    return None if found is None else found[1][0]


def _columns(targets, index, channels):
    """Target columns of output ``index`` (at most ``channels``), or None if they do not fit."""
    shapes = {np.shape(t[index])[1:] for t in targets}
    if len(shapes) != 1:
        return None
    shape = shapes.pop()
    columns = shape[-1] if shape else 1
    return columns if columns <= channels else None


def _is_softmax(layer):
    activation = getattr(layer, "activation", None)
    return type(layer).__name__ == "Softmax" or getattr(activation, "__name__", "") == "softmax"


def _as_list(outputs, names):
    if isinstance(outputs, dict):
        return [np.asarray(outputs[n]) for n in names]
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(o) for o in outputs]
    return [np.asarray(outputs)]


def _mean_by_channel(arrays, channels):
    """Mean over everything but the last axis (of ``channels``), or None if shapes differ."""
    arrays = [np.asarray(a, dtype="float64") for a in arrays]
    if not all((a.ndim == 1 and channels == 1) or (a.ndim > 1 and a.shape[-1] == channels)
               for a in arrays):
        return None
    return np.concatenate([a.reshape(-1, channels) for a in arrays]).mean(axis=0)


def center_outputs(model, batches, outputs=None, steps=40):
    """Set output biases so the mean prediction on ``batches`` equals the mean target.

    Args:
        model: a functional Keras model (built).
        batches: list of ``(x, y)`` training batches in the model's format (``y``
            an array, a list in output order, or a dict by output name).
        outputs: names of the outputs to centre (default: all of them).
        steps: bisection steps per output.

    Returns:
        dict output name -> ``(mean target, mean prediction before, after)``
        (per channel) for the outputs that were centred.
    """
    names = list(model.output_names)
    wanted = names if outputs is None else [n for n in names if n in outputs]
    targets = [_as_list(y, names) for _, y in batches]
    plans = []
    for index, name in enumerate(names):
        found = _output_chain(model, index) if name in wanted else None
        if found is None:
            if name in wanted:
                logger.info("Output %s: no bias layer found behind it; left as initialised", name)
            continue
        features, chain = found
        channels = int(chain[0].bias.shape[-1])
        # targets with fewer columns than the output (MagNet's and dist-PT's log
        # variance channel follows the value) centre the leading channels only
        columns = _columns(targets, index, channels)
        goal = None if columns is None else _mean_by_channel([t[index] for t in targets], columns)
        if goal is None or not np.all(np.isfinite(goal)):
            logger.info("Output %s: targets do not match its %d channel(s); left as initialised",
                        name, channels)
            continue
        plans.append((name, features, chain, channels, columns, goal))
    if not plans:
        return {}
    # The inputs of the bias layers as training sees them (batch statistics in the
    # normalisation layers; at initialisation the moving ones are meaningless), all
    # from one pass. Calling in training mode moves those moving statistics: they are
    # put back.
    frozen = [(v, keras.ops.convert_to_numpy(v)) for v in model.non_trainable_variables]
    extractor = keras.Model(model.inputs[0] if len(model.inputs) == 1 else model.inputs,
                            [plan[1] for plan in plans])
    # (a one-output extractor returns its tensor, not a list)
    hidden_all = [_as_sequence(extractor(x, training=True)) for x, _ in batches]
    for variable, value in frozen:
        variable.assign(value)
    done = {}
    for k, (name, _features, chain, channels, columns, goal) in enumerate(plans):
        bias = chain[0].bias
        hidden = [h[k] for h in hidden_all]
        start = np.array(keras.ops.convert_to_numpy(bias), dtype="float64")

        def at(delta):
            shift = np.zeros(channels)
            shift[:columns] = delta
            bias.assign((start + shift).astype(bias.dtype))
            outs = []
            for h in hidden:
                for layer in chain:
                    h = layer(h)
                outs.append(keras.ops.convert_to_numpy(h))
            return _mean_by_channel(outs, channels)[:columns]

        before = at(0.0)
        low, high = np.full(columns, -30.0), np.full(columns, 30.0)
        # widen the bracket for unbounded (linear) heads whose targets are far away
        for _ in range(6):
            below, above = at(low) > goal, at(high) < goal
            if not (below.any() or above.any()):
                break
            low = np.where(below, low * 4, low)
            high = np.where(above, high * 4, high)
        for _ in range(steps):
            middle = 0.5 * (low + high)
            under = at(middle) < goal
            low = np.where(under, middle, low)
            high = np.where(under, high, middle)
        # rounded, so that workers whose float sums differ in the last bit agree
        after = at(np.round(0.5 * (low + high), 5))
        done[name] = (goal, before, after)
        logger.info("Output %s: bias of %s set so the first predictions average the training "
                    "targets (%s; they averaged %s)", name, chain[0].name, _fmt(goal),
                    _fmt(before))
    return done


def _as_sequence(outputs):
    return outputs if isinstance(outputs, (list, tuple)) else [outputs]


def _fmt(values):
    return ", ".join(f"{v:.4g}" for v in np.atleast_1d(values))
