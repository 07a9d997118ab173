"""The description written beside an exported model: ``conventions.json``.

An exported model (:func:`utrans.export.export`) is a graph file plus this
manifest, which is all a runtime needs to feed the graph and read its
outputs: the model's :class:`~utrans.core.conventions.Conventions` (sampling
rate, component order, window length, normalisation, labels, thresholds,
...), from which :class:`utrans.pipeline.Pipeline` makes the graph's inputs
and reads its outputs, the input tensor (name, shape, dtype) and the outputs
in order with their names and shapes. The file is plain JSON::

    {
      "manifest_version": 1,
      "utrans_version": "0.3.0",
      "model": {"name": "seist_m_dpk", "class": "SeisTPicker"},
      "format": "onnx",
      "file": "model.onnx",
      "conventions": {"sampling_rate": 50.0, "component_order": "ZNE", ...},
      "input": {"name": "waveform", "shape": [null, 8192, 3], "dtype": "float32",
                "normalized": true},
      "output_structure": "single",
      "outputs": [{"name": "out_head-out_act", "shape": [null, 8192, 3],
                   "dtype": "float32"}],
      "batch_size": null,
      "quantization": null
    }

``null`` in a shape is a free dimension (the batch). ``output_structure``
says how the Keras model's ``predict`` returns its outputs: ``"single"`` (one
array), ``"list"`` (a list in ``outputs`` order) or ``"dict"`` (a dict keyed
by the output names). ``batch_size`` is ``null`` for a graph of any batch
size, or the one batch size a graph was exported for. ``quantization`` is
``null`` (float32), ``"dynamic_range"`` or ``"int8"`` (LiteRT).

The manifest of ``dir/model.onnx`` is ``dir/conventions.json``; that of a
SavedModel directory ``dir`` is ``dir/conventions.json``. One folder holds
one export.

This module needs only the standard library and :mod:`utrans.core`.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

from utrans.core.conventions import Conventions
from utrans.core.errors import ManifestError

__all__ = ["MANIFEST_NAME", "MANIFEST_VERSION", "Manifest", "ManifestError", "OutputSpec",
           "manifest_path"]

MANIFEST_NAME = "conventions.json"
MANIFEST_VERSION = 1
FORMATS = ("savedmodel", "onnx", "litert")
STRUCTURES = ("single", "list", "dict")
QUANTIZATIONS = (None, "dynamic_range", "int8")


def _shape(value, what, source):
    if not isinstance(value, (list, tuple)) or not all(
            v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)
            for v in value):
        raise ManifestError(f"{source}: {what} must be a list of non-negative integers or null. "
                            f"Received: {value!r}")
    return tuple(value)


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """One output of an exported graph.

    Args:
        name: the output's name in the graph (the Keras model's output name).
        shape: its shape, ``None`` for the batch dimension.
        dtype: its dtype name (``"float32"``).
    """

    name: str
    shape: tuple
    dtype: str = "float32"

    def to_config(self):
        """JSON-serialisable dict."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclasses.dataclass(frozen=True)
class Manifest:
    """What an exported model expects and returns (see the module doc).

    Args:
        conventions: the model's :class:`~utrans.core.conventions.Conventions`.
        format: ``"savedmodel"``, ``"onnx"`` or ``"litert"``.
        file: the graph's file name relative to the manifest's folder
            (``"."`` for a SavedModel, which is the folder itself).
        input_name: name of the graph's input.
        input_shape: shape of the input, ``None`` for the batch dimension.
        outputs: the outputs in order (:class:`OutputSpec`).
        output_structure: ``"single"``, ``"list"`` or ``"dict"``.
        model_name: the Keras model's name.
        model_class: the Keras model's class name.
        batch_size: ``None`` (any batch size) or the fixed batch size of the graph.
        quantization: ``None``, ``"dynamic_range"`` or ``"int8"``.
        utrans_version: the version of utrans that wrote the export.
    """

    conventions: Conventions
    format: str
    file: str
    input_name: str
    input_shape: tuple
    outputs: tuple
    output_structure: str
    model_name: str = ""
    model_class: str = ""
    batch_size: int | None = None
    quantization: str | None = None
    utrans_version: str = ""

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ManifestError(f"format must be one of {FORMATS}. Received: format={self.format!r}")
        if self.output_structure not in STRUCTURES:
            raise ManifestError(f"output_structure must be one of {STRUCTURES}. "
                                f"Received: output_structure={self.output_structure!r}")
        if not self.outputs:
            raise ManifestError("An exported model has at least one output. Received: outputs=[]")
        if self.output_structure == "single" and len(self.outputs) != 1:
            raise ManifestError(f"output_structure 'single' takes one output. Received: "
                                f"{len(self.outputs)} outputs")
        if self.quantization not in QUANTIZATIONS:
            raise ManifestError(f"quantization must be one of {QUANTIZATIONS}. "
                                f"Received: quantization={self.quantization!r}")
        if len(self.input_shape) != 3:
            raise ManifestError("The input of an exported model is (batch, samples, channels). "
                                f"Received: input shape {list(self.input_shape)}")

    @property
    def output_names(self):
        """The output names in order."""
        return tuple(o.name for o in self.outputs)

    # ------------------------------------------------------------------ JSON
    def to_config(self):
        """The JSON document (a dict) described in the module doc."""
        return {
            "manifest_version": MANIFEST_VERSION,
            "utrans_version": self.utrans_version,
            "model": {"name": self.model_name, "class": self.model_class},
            "format": self.format,
            "file": self.file,
            "conventions": self.conventions.to_config(),
            "input": {"name": self.input_name, "shape": list(self.input_shape),
                      "dtype": "float32", "normalized": self.conventions.normalization != "none"},
            "output_structure": self.output_structure,
            "outputs": [o.to_config() for o in self.outputs],
            "batch_size": self.batch_size,
            "quantization": self.quantization,
        }

    @classmethod
    def from_config(cls, config, source="conventions.json"):
        """Inverse of :meth:`to_config`.

        Args:
            config: the parsed JSON document.
            source: where it came from (for error messages).

        Returns:
            A :class:`Manifest`.

        Raises:
            ManifestError: a key is missing or a value is malformed; the
                message names ``source``.
        """
        if not isinstance(config, dict):
            raise ManifestError(f"{source}: expected a JSON object. Received: "
                                f"{type(config).__name__}")
        version = config.get("manifest_version")
        if version != MANIFEST_VERSION:
            raise ManifestError(f"{source}: this utrans reads manifest_version {MANIFEST_VERSION}. "
                                f"Received: manifest_version={version!r}")
        try:
            conventions = Conventions.from_config(config["conventions"])
            outputs = tuple(OutputSpec(str(o["name"]), _shape(o["shape"], "an output shape",
                                                               source), str(o.get("dtype",
                                                                                 "float32")))
                            for o in config["outputs"])
            model = config.get("model", {})
            return cls(
                conventions=conventions,
                format=config["format"],
                file=str(config["file"]),
                input_name=str(config["input"]["name"]),
                input_shape=_shape(config["input"]["shape"], "the input shape", source),
                outputs=outputs,
                output_structure=config["output_structure"],
                model_name=str(model.get("name", "")),
                model_class=str(model.get("class", "")),
                batch_size=config.get("batch_size"),
                quantization=config.get("quantization"),
                utrans_version=str(config.get("utrans_version", "")),
            )
        except KeyError as err:
            raise ManifestError(f"{source}: missing key {err.args[0]!r}.") from err
        except (TypeError, ValueError, AttributeError) as err:
            # Conventions and the checks above raise ValueError / TypeError for
            # bad values; a list where an object belongs raises AttributeError.
            raise ManifestError(f"{source}: {err}") from err

    def write(self, path):
        """Write the manifest as JSON to ``path``.

        Args:
            path: the ``conventions.json`` file.

        Returns:
            ``path`` as a ``pathlib.Path``.
        """
        path = pathlib.Path(path)
        path.write_text(json.dumps(self.to_config(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, path):
        """Read a ``conventions.json``.

        Args:
            path: the file.

        Returns:
            A :class:`Manifest`.

        Raises:
            ManifestError: the file is missing, not JSON or malformed.
        """
        path = pathlib.Path(path)
        if not path.is_file():
            raise ManifestError(f"No {MANIFEST_NAME} at {path}: an exported model needs the "
                                "manifest written beside it by utrans.export.export.")
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ManifestError(f"{path} is not valid JSON ({err}).") from err
        return cls.from_config(config, source=str(path))


def manifest_path(model_path):
    """Where the manifest of an exported model lives.

    Args:
        model_path: a SavedModel directory, or a ``.onnx`` / ``.tflite`` file.

    Returns:
        ``model_path / "conventions.json"`` for a directory, otherwise the
        ``conventions.json`` in the file's folder.
    """
    model_path = pathlib.Path(model_path)
    if model_path.is_dir():
        return model_path / MANIFEST_NAME
    return model_path.parent / MANIFEST_NAME
