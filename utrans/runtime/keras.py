"""A Keras model as a runner: one compiled forward pass of fixed batch shape.

:class:`KerasRunner` calls a model on batches of normalised windows
``(n <= batch_size, samples, channels)`` and returns its raw outputs as numpy
(one array, a list or a dict, as the model returns them) for the ``n`` rows.
On the TensorFlow backend the forward pass is a ``tf.function`` traced once
per model, batch size and input shape (eager ``model(x)`` is 2.5-10x slower,
PERFORMANCE.md); a short last batch is zero padded to the full size so the
graph is never traced again. It uses the model's inference-only graph where
one exists (:mod:`utrans.runtime.fast`, BatchNorm folded), which equals the
model to float32 rounding. Other backends use ``model.predict_on_batch``.
Compiled functions are cached per model object.
"""

from __future__ import annotations

import copy
import sys
import weakref

import keras
import numpy as np

from utrans.core.conventions import Conventions
from utrans.runtime.fast import inference_function

__all__ = ["KerasRunner", "trace_count"]

_CACHE = weakref.WeakKeyDictionary()
_TRACES = [0]  # forward passes traced in this process (the Python body runs only when tracing)


def trace_count():
    """How many forward-pass graphs runners have traced in this process.

    A graph is traced once per model object, batch size and window shape;
    any further trace is a rebuild (TensorFlow's "retracing").

    Returns:
        An int that only grows.
    """
    return _TRACES[0]


def _numpy(outputs, n):
    """Outputs as numpy, the first ``n`` rows."""
    return keras.tree.map_structure(lambda a: np.asarray(a)[:n], outputs)


class _Forward:
    """The traced body of one runner's forward pass.

    A callable object rather than a closure: TensorFlow's warning about
    frequent retracing counts the traces of all functions that share one
    code object, so the graphs of distinct models (each traced once) would
    be reported as one function retraced. Each object is counted on its own.
    """

    def __init__(self, model, forward):
        self.model, self.forward = model, forward

    def __call__(self, x):
        _TRACES[0] += 1  # runs only while TensorFlow traces
        if self.forward is not None:
            return self.forward(x)
        return self.model(x, training=False)


class KerasRunner:
    """A Keras model's forward pass on numpy batches (module doc).

    Args:
        model: a ``keras.Model`` (a utrans model carries ``conventions``).
        batch_size: the fixed batch size of the compiled function.
        fast: use the inference-only graph where one exists.

    Returns:
        Calling the runner on float32 ``(n, samples, channels)`` with
        ``n <= batch_size`` returns the model's outputs for the ``n`` rows.
    """

    def __init__(self, model, batch_size=64, fast=True):
        self.model = model
        self.name = model.name
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
        conv = getattr(model, "conventions", None)
        self.conventions = conv if isinstance(conv, Conventions) else None
        shape = model.input_shape[0] if isinstance(model.input_shape, list) else model.input_shape
        self.in_samples, self.in_channels = shape[1], int(shape[2])
        self.fast = bool(fast)
        self._forward = inference_function(model) if self.fast else None

    def __repr__(self):
        return f"KerasRunner({self.name}, batch_size={self.batch_size})"

    def resized(self, batch_size):
        """The same model with another fixed batch size (compiled functions are shared)."""
        if int(batch_size) == self.batch_size:
            return self
        other = copy.copy(self)
        other.batch_size = int(batch_size)
        return other

    def _compiled(self, shape):
        if keras.backend.backend() != "tensorflow":
            return None
        tf = sys.modules["tensorflow"]  # the backend Keras runs on, loaded already
        key = (self.batch_size, shape, self._forward)
        try:
            per_model = _CACHE.setdefault(self.model, {})
        except TypeError:  # an unhashable model: no cache
            per_model = {}
        if key not in per_model:
            per_model[key] = tf.function(
                _Forward(self.model, self._forward),
                input_signature=[tf.TensorSpec((self.batch_size,) + shape, tf.float32)],
                autograph=False)
        return per_model[key]

    def __call__(self, inputs):
        x = np.asarray(inputs, dtype=np.float32)
        n = x.shape[0]
        if n > self.batch_size:
            raise ValueError(f"At most {self.batch_size} windows per call. Received: {n} windows")
        if n < self.batch_size:
            padded = np.zeros((self.batch_size,) + x.shape[1:], dtype=np.float32)
            padded[:n] = x
            x = padded
        fn = self._compiled(x.shape[1:])
        outputs = fn(x) if fn is not None else self.model.predict_on_batch(x)
        return _numpy(outputs, n)
