"""Runners: a model's forward pass on numpy batches, whatever runs it.

A runner is called on normalised windows ``(n, samples, channels)`` and
returns the model's raw outputs as numpy; it carries the model's
``conventions`` (from which :class:`utrans.pipeline.Pipeline` does the rest)
and its ``batch_size``. :func:`load_runner` opens one for anything a user
names a model with:

* a Keras model, a preset, a registered name or a ``.keras`` file:
  :class:`utrans.runtime.keras.KerasRunner` (imports Keras);
* an exported model (a ``.onnx`` or ``.tflite`` file, or a folder written
  by :func:`utrans.export.export`, SavedModels included):
  :func:`utrans.runtime.exported.load_exported`, which runs ``.onnx``
  through ONNX Runtime and ``.tflite`` through LiteRT without TensorFlow,
  Keras or utrans's models, using the ``conventions.json`` beside the graph
  (:mod:`utrans.runtime.manifest`).

This module imports no framework itself.
"""

from __future__ import annotations

import importlib
import pathlib

from utrans.runtime.exported import is_exported, load_exported
from utrans.runtime.manifest import Manifest, manifest_path

__all__ = ["conventions_of", "is_exported", "load_exported", "load_runner"]


def load_runner(spec, batch_size=64, fast=True, allow_random=False):
    """A runner for a model (module doc).

    Args:
        spec: a runner (returned as is), a ``keras.Model``, a preset name, a
            registered name (with ``allow_random=True``), a model file, or an
            exported model (``.onnx``, ``.tflite``, an export folder).
        batch_size: windows per call.
        fast: Keras models: use the inference-only graph where one exists.
        allow_random: a registered name without weights gets random weights.

    Returns:
        A runner.
    """
    if callable(spec) and hasattr(spec, "batch_size") and hasattr(spec, "conventions"):
        return spec
    if is_exported(spec):
        return load_exported(spec, batch_size=batch_size)
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
    if is_exported(spec):
        path = pathlib.Path(spec)
        if not path.exists():
            raise FileNotFoundError(f"Exported model not found: {path}")
        return Manifest.read(manifest_path(path)).conventions
    # Keras is imported only for Keras models: exported models run without it.
    return importlib.import_module("utrans.loading").get_conventions(spec)
