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

Models loaded from a preset or a ``.keras`` file are shared within a process
(the eight most recently used): annotators and characterizers opened again and
again on one preset (``classify`` or ``characterize`` called per event or per
station) reuse one model and its traced forward pass instead of rebuilding
both on every call. A preset is known by its checked weights file, a
``.keras`` file by its path, size and modification time, so a changed file is
loaded again.

This module imports no framework itself.
"""

from __future__ import annotations

import collections
import importlib
import os
import pathlib

from utrans.core import presets
from utrans.runtime.exported import is_exported, load_exported
from utrans.runtime.manifest import Manifest, manifest_path

__all__ = ["conventions_of", "is_exported", "load_exported", "load_runner"]

_LOADED = collections.OrderedDict()  # cache key -> keras.Model, most recently used last
_LOADED_MAX = 8


def _file_key(path):
    stat = path.stat()
    return str(path.resolve()), stat.st_mtime_ns, stat.st_size


def _cache_key(spec):
    """The key of a model loaded from a preset or a ``.keras`` file; ``None`` for others."""
    if not isinstance(spec, (str, os.PathLike)):
        return None
    name = os.fspath(spec)
    if name in presets.PRESETS:
        return ("preset", name, *_file_key(presets.preset_path(name)))
    path = pathlib.Path(name)
    if path.name.endswith(".keras") and path.is_file():
        return ("file", *_file_key(path))
    return None


def _load_model(spec, allow_random):
    # Keras is imported only for Keras models: exported models run without it.
    loading = importlib.import_module("utrans.loading")
    key = _cache_key(spec)
    if key is None:
        return loading.load_model(spec, allow_random=allow_random)
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    model = loading.load_model(spec, allow_random=allow_random)
    _LOADED[key] = model
    while len(_LOADED) > _LOADED_MAX:
        _LOADED.popitem(last=False)
    return model


def load_runner(spec, batch_size=64, fast=True, allow_random=False):
    """A runner for a model (module doc).

    Args:
        spec: a runner (returned as is), a ``keras.Model``, a preset name, a
            registered name (with ``allow_random=True``), a model file (presets
            and ``.keras`` files: shared within the process, module doc), or an
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
    return keras_runner.KerasRunner(_load_model(spec, allow_random), batch_size=batch_size,
                                    fast=fast)


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
