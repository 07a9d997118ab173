"""Runners: a model's forward pass on numpy batches, whatever runs it.

A runner is called on normalised windows ``(n, samples, channels)`` and
returns the model's raw outputs as numpy; it carries the model's
``conventions`` (from which :class:`utrans.pipeline.Pipeline` does the rest)
and its ``batch_size``. :func:`load_runner` opens one for anything a user
names a model with:

* a Keras model, a preset, a registered name or a ``.keras`` file:
  :class:`utrans.runtime.keras.KerasRunner` (imports Keras);
* exported models (``.onnx``, ``.tflite``) run through their runtimes
  without TensorFlow.

This module imports no framework itself.
"""

from __future__ import annotations

import importlib

__all__ = ["conventions_of", "load_runner"]


def load_runner(spec, batch_size=64, fast=True, allow_random=False):
    """A runner for a model (module doc).

    Args:
        spec: a runner (returned as is), a ``keras.Model``, a preset name, a
            registered name (with ``allow_random=True``), or a model file.
        batch_size: windows per call.
        fast: Keras models: use the inference-only graph where one exists.
        allow_random: a registered name without weights gets random weights.

    Returns:
        A runner.
    """
    if callable(spec) and hasattr(spec, "batch_size") and hasattr(spec, "conventions"):
        return spec
    # Keras is imported only for Keras models: exported models run without it.
    keras_runner = importlib.import_module("utrans.runtime.keras")
    loading = importlib.import_module("utrans.loading")
    return keras_runner.KerasRunner(loading.load_model(spec, allow_random=allow_random),
                                    batch_size=batch_size, fast=fast)


def conventions_of(spec):
    """The conventions of a model without loading its weights where it can.

    Args:
        spec: anything :func:`load_runner` takes.

    Returns:
        A :class:`~utrans.core.conventions.Conventions`.
    """
    conventions = getattr(spec, "conventions", None)
    if conventions is not None:
        return conventions
    # Keras is imported only for Keras models: exported models run without it.
    return importlib.import_module("utrans.loading").get_conventions(spec)
