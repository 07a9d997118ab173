"""Export utrans models to SavedModel, ONNX and LiteRT, with their conventions.

::

    import utrans

    utrans.export("phasenet:stead", "onnx", "out/phasenet")      # out/phasenet/model.onnx + conventions.json
    utrans.export(model, "litert", "out/seist_m_dpk.tflite")     # out/seist_m_dpk.tflite + out/conventions.json
    utrans.export(model, "savedmodel", "out/seist_m_dpk_sm")     # SavedModel directory holding conventions.json

or ``utrans export MODEL --format onnx --output DIR`` on the command line.

Every exported graph takes what the Keras model takes: a float32 batch
``(batch, samples, channels)`` of model inputs as
:meth:`utrans.pipeline.Pipeline.window_inputs` makes them (normalised as
``model.conventions.normalization`` says), with a free batch dimension
(LiteRT graphs of LSTM models: a fixed one, see :mod:`~utrans.export.litert`).
The graph holds no pre-processing (:mod:`~utrans.export.graph`); its outputs
carry the Keras output names, in the model's output order.
``conventions.json`` beside it (:mod:`utrans.runtime.manifest`) holds the
model's conventions and the input and output names, order and shapes, from
which :func:`utrans.runtime.load_runner` and the pipeline run the export in
``annotate`` and ``classify``: ONNX and LiteRT without TensorFlow.

Formats and what they need:

* ``"savedmodel"``: Keras's ``ExportArchive`` (TensorFlow only).
* ``"onnx"``: tf2onnx and onnx (``pip install 'utrans[export]'``).
* ``"litert"``: TensorFlow's TFLite converter, builtin ops only; running it
  needs ``ai-edge-litert``.

The module is callable: ``utrans.export(...)`` is :func:`export` whether or
not this package has been imported by name before.
"""

from __future__ import annotations

import pathlib
import sys
import types

import keras

from utrans.core.conventions import Conventions
from utrans.core.errors import ExportError, ManifestError
from utrans.export.graph import output_layout, serving_function, write_manifest
from utrans.export.litert import write_litert
from utrans.export.onnx import write_onnx
from utrans.export.savedmodel import write_savedmodel
from utrans.loading import load_model
from utrans.runtime.manifest import MANIFEST_NAME, Manifest

__all__ = ["FORMATS", "ExportError", "export", "output_layout", "serving_function"]

#: Export formats and the file suffix of their graph (SavedModel: a directory).
FORMATS = {"savedmodel": None, "onnx": ".onnx", "litert": ".tflite"}
_DEFAULT_FILE = {"onnx": "model.onnx", "litert": "model.tflite"}
_OPTIONS = {"savedmodel": (), "onnx": ("opset",),
            "litert": ("batch_size", "quantize", "representative_data")}


def _check_folder(folder, file):
    """Refuse to overwrite the manifest of another export in ``folder``."""
    existing = folder / MANIFEST_NAME
    if not existing.is_file():
        return
    try:
        other = Manifest.read(existing).file
    except ManifestError:
        other = None
    if other != file:
        raise ExportError(f"{existing} belongs to another export ({other or 'unreadable'}); "
                          f"export each model into its own folder. Received: {folder / file}")


def _target(format, path):
    """``(folder, file, target)`` of an export to ``path`` (see :func:`export`)."""
    path = pathlib.Path(path)
    if format == "savedmodel":
        if path.exists() and not path.is_dir():
            raise ExportError(f"A SavedModel is a directory; {path} is a file.")
        if path.is_dir() and any(path.iterdir()) and not (path / MANIFEST_NAME).is_file():
            raise ExportError(f"{path} is a folder that holds other files; export into a new "
                              "or empty folder.")
        return path, ".", path
    suffix = FORMATS[format]
    if path.suffix == suffix:
        folder, file = path.parent, path.name
    elif path.suffix:
        raise ValueError(f"A {format} export is a {suffix} file or a folder. Received: {path}")
    else:
        folder, file = path, _DEFAULT_FILE[format]
    target = folder / file
    if target.is_dir():
        raise ExportError(f"{target} is a folder; pass the folder that should hold it.")
    return folder, file, target


def export(model, format, path, **options):
    """Export a utrans model and write its ``conventions.json`` beside it.

    Args:
        model: a utrans ``keras.Model`` (it carries ``model.conventions``),
            or anything :func:`utrans.loading.load_model` takes (a preset, a
            ``.keras`` file, a SeisBench weight file or ``"phasenet:stead"``).
        format: ``"savedmodel"``, ``"onnx"`` or ``"litert"``.
        path: for ``"savedmodel"`` the directory to write (holding the
            manifest); for ``"onnx"`` / ``"litert"`` either the ``.onnx`` /
            ``.tflite`` file (the manifest goes into its folder) or a folder
            (written as ``model.onnx`` / ``model.tflite`` in it).
        **options: ``opset`` (onnx); ``batch_size``, ``quantize``,
            ``representative_data`` (litert, see :mod:`utrans.export.litert`).

    Returns:
        The path of the written graph (file, or SavedModel directory).

    Raises:
        ValueError: unknown format or an option the format does not take.
        MissingExtraError: the format's converter is not installed; the
            message says which ``pip install`` to run.
        ExportError: the model cannot be expressed in the format; the message
            says why (the op, or what to change).
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}. Received: format={format!r}")
    unknown = sorted(set(options) - set(_OPTIONS[format]))
    if unknown:
        raise ValueError(f"{format} export takes the options "
                         f"{', '.join(_OPTIONS[format]) or 'none'}. Received: {', '.join(unknown)}")
    if not isinstance(model, keras.Model):
        model = load_model(model)
    layout = output_layout(model)
    if not isinstance(getattr(model, "conventions", None), Conventions):
        raise ExportError(f"Export writes the model's conventions beside it; {model.name} has "
                          "none (a utrans model carries model.conventions).")
    folder, file, target = _target(format, path)
    folder.mkdir(parents=True, exist_ok=True)
    _check_folder(folder, file)
    writer = {"savedmodel": write_savedmodel, "onnx": write_onnx, "litert": write_litert}[format]
    writer(model, layout, target, **options)
    write_manifest(model, layout, format, file, folder,
                   batch_size=options.get("batch_size"), quantization=options.get("quantize"))
    return target


class _CallableModule(types.ModuleType):
    """This package, callable as :func:`export` (``utrans.export(...)`` once it is imported)."""

    def __call__(self, model, format, path, **options):
        return export(model, format, path, **options)


# Importing the package makes ``utrans.export`` this module; being callable, it
# still answers ``utrans.export(model, format, path)``.
sys.modules[__name__].__class__ = _CallableModule
