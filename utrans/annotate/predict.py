"""The compiled forward pass that annotate calls on every batch of windows.

:class:`Predictor` wraps a model into one function of fixed batch shape
``(batch_size, channels, in_samples)``: per-window normalisation
(``conventions.normalization``), the model in inference mode, and the
outputs arranged as ``(batch, labels, samples)``. On the TensorFlow backend
it is a ``tf.function`` traced once per batch size (eager ``model(x)`` is
2.5-10x slower, see PERFORMANCE.md); the last batch of a run is padded to the
full size so the graph is never traced again. Other backends use
``model.predict_on_batch``. Compiled functions are cached per model object
and batch size, so repeated calls on the same model do not trace again.

Normalisation per window and channel (float32): ``"std"`` subtracts the mean
and divides by the population standard deviation, ``"max"`` subtracts the
mean and divides by the largest absolute value, ``"none"`` leaves the window
as it is; a flat (or zero-filled) channel stays zero.
"""

from __future__ import annotations

import logging
import weakref

import keras
import numpy as np

__all__ = ["Predictor", "normalize_windows"]

logger = logging.getLogger(__name__)

_CACHE = weakref.WeakKeyDictionary()


def normalize_windows(x, mode):
    """Normalise a batch of windows per window and channel (numpy, float32).

    Args:
        x: array ``(batch, samples, channels)``.
        mode: ``"std"``, ``"max"`` or ``"none"``.

    Returns:
        float32 array of the same shape.
    """
    x = np.asarray(x, dtype=np.float32)
    if mode == "none":
        return x
    x = x - x.mean(axis=1, keepdims=True)
    scale = x.std(axis=1, keepdims=True) if mode == "std" else np.abs(x).max(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, x / scale, np.float32(0)).astype(np.float32)


def _normalize_ops(x, mode):
    """The same normalisation in ``keras.ops`` (inside the compiled graph)."""
    ops = keras.ops
    if mode == "none":
        return x
    x = x - ops.mean(x, axis=1, keepdims=True)
    if mode == "std":
        scale = ops.sqrt(ops.mean(ops.square(x), axis=1, keepdims=True))
    else:
        scale = ops.max(ops.abs(x), axis=1, keepdims=True)
    safe = ops.where(scale > 0, scale, ops.ones_like(scale))
    return ops.where(scale > 0, x / safe, ops.zeros_like(x))


def _as_labels_last(out):
    """A model's output(s) as one tensor (batch, samples, labels)."""
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        out = keras.ops.concatenate([keras.ops.cast(o, "float32") for o in out], axis=-1)
    return out


class Predictor:
    """A model's compiled forward pass over batches of raw windows.

    Args:
        model: a ``keras.Model`` with per-sample outputs ``(batch, samples, labels)``.
        batch_size: the fixed batch size of the compiled function.
        normalization: ``"std"``, ``"max"`` or ``"none"`` (usually the model's
            ``conventions.normalization``).
        forward: optional callable replacing ``model(x, training=False)``
            inside the compiled function (an inference-only graph of the same
            model, e.g. :func:`utrans.annotate.fast.inference_function`).

    Returns:
        Calling the predictor on float32 windows ``(n <= batch_size, channels,
        samples)`` (channels first, so that windows are cut with contiguous
        copies) returns float32 probabilities ``(n, labels, samples)``.
    """

    def __init__(self, model, batch_size, normalization="std", forward=None):
        self.model = model
        self.batch_size = int(batch_size)
        self.normalization = normalization
        shape = model.input_shape if not isinstance(model.input_shape, list) else model.input_shape[0]
        self.in_samples, self.channels = int(shape[1]), int(shape[2])
        self._forward = forward
        self._fn = self._compiled()

    def _compiled(self):
        if keras.backend.backend() != "tensorflow":
            return None
        import tensorflow as tf

        key = (self.batch_size, self.normalization, self._forward)
        try:
            per_model = _CACHE.setdefault(self.model, {})
        except TypeError:  # an unhashable model: no cache
            per_model = {}
        if key in per_model:
            return per_model[key]
        model, mode = self.model, self.normalization
        forward = self._forward or (lambda x: model(x, training=False))

        @tf.function(
            input_signature=[tf.TensorSpec((self.batch_size, self.channels, self.in_samples),
                                           tf.float32)],
            autograph=False,
        )
        def predict(x):
            x = tf.transpose(x, (0, 2, 1))
            y = _as_labels_last(forward(_normalize_ops(x, mode)))
            return tf.transpose(tf.cast(y, tf.float32), (0, 2, 1))

        per_model[key] = predict
        return predict

    def __call__(self, windows):
        n = windows.shape[0]
        if n > self.batch_size:
            raise ValueError(f"At most {self.batch_size} windows per call. "
                             f"Received: {n} windows")
        if n < self.batch_size:
            padded = np.zeros((self.batch_size,) + windows.shape[1:], dtype=np.float32)
            padded[:n] = windows
            windows = padded
        if self._fn is not None:
            out = self._fn(windows).numpy()
        else:
            x = normalize_windows(windows.transpose(0, 2, 1), self.normalization)
            y = self.model.predict_on_batch(x)
            y = keras.ops.convert_to_numpy(_as_labels_last(y)).astype(np.float32)
            out = np.ascontiguousarray(y.transpose(0, 2, 1))
        if out.shape[2] != self.in_samples:
            raise ValueError(
                "annotate needs a model with one output value per input sample (a picker or "
                f"detector). Received: output shape {out.shape[1:]} (labels, samples) for "
                f"windows of {self.in_samples} samples")
        return out[:n]
