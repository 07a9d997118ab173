"""The graph every export format is written from, and its manifest.

One serving function per model: it takes the Keras model's input, a float32
batch ``(batch, samples, channels)`` of normalised windows, runs the model in
inference mode and returns a dict ``output name -> tensor``. The names are
the Keras model's ``output_names``; their order is the model's output order
(a list-output model's list order, a dict-output model's ``output_names``).
The graph holds no pre-processing: it computes exactly what the Keras model
computes on its inputs, so the exported outputs are compared with it one to
one, and whoever runs it makes the inputs with the model's pipeline
(:meth:`utrans.pipeline.Pipeline.window_inputs`), as ``annotate`` does.
"""

from __future__ import annotations

import dataclasses
import functools

import keras
import tensorflow as tf

from utrans import __version__
from utrans.core.errors import ExportError
from utrans.runtime.fast import inference_function
from utrans.runtime.manifest import MANIFEST_NAME, Manifest, OutputSpec

__all__ = ["OutputLayout", "output_layout", "serving_function", "write_manifest"]


@dataclasses.dataclass(frozen=True)
class OutputLayout:
    """A model's input and outputs as the export sees them.

    Args:
        input_name: the model input's name (``"waveform"``).
        input_shape: ``(None, samples, channels)``.
        structure: ``"single"``, ``"list"`` or ``"dict"`` (what ``predict`` returns).
        names: output names in order.
        shapes: output shapes in order (``None`` for the batch).
        dtypes: output dtype names in order.
    """

    input_name: str
    input_shape: tuple
    structure: str
    names: tuple
    shapes: tuple
    dtypes: tuple


def output_layout(model):
    """The input and outputs of a functional utrans model.

    Args:
        model: a ``keras.Model`` with one input ``(batch, samples, channels)``.

    Returns:
        An :class:`OutputLayout`.

    Raises:
        ExportError: the model has no known input, several inputs, or an
            input that is not ``(batch, samples, channels)``.
    """
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ExportError(f"Export needs a model with a known input (a functional model). "
                          f"Received: {type(model).__name__} {model.name!r} without inputs")
    if len(inputs) != 1:
        raise ExportError(f"Export takes models with one input (batch, samples, channels). "
                          f"Received: {model.name} with {len(inputs)} inputs")
    shape = tuple(inputs[0].shape)
    if len(shape) != 3:
        raise ExportError(f"Export takes models whose input is (batch, samples, channels). "
                          f"Received: {model.name} input shape {shape}")
    out = model.output
    names = tuple(model.output_names)
    if isinstance(out, dict):
        if set(out) != set(names):
            raise ExportError(f"{model.name}: output dict keys {sorted(out)} differ from "
                              f"output_names {list(names)}")
        structure, flat = "dict", [out[n] for n in names]
    elif isinstance(out, (list, tuple)):
        structure, flat = "list", list(out)
    else:
        structure, flat = "single", [out]
    if len(flat) != len(names) or len(set(names)) != len(names):
        raise ExportError(f"{model.name}: every output needs its own name. Received: "
                          f"output_names={list(names)} for {len(flat)} outputs")
    return OutputLayout(
        input_name=inputs[0].name,
        input_shape=(None,) + shape[1:],
        structure=structure,
        names=names,
        shapes=tuple((None,) + tuple(o.shape[1:]) for o in flat),
        dtypes=tuple(keras.backend.standardize_dtype(o.dtype) for o in flat),
    )


def serving_function(model, layout=None, batch_size=None, inference=True):
    """The model's forward pass as a ``tf.function`` returning named outputs.

    Args:
        model: the ``keras.Model``.
        layout: its :class:`OutputLayout` (default: computed).
        batch_size: ``None`` for a graph of any batch size, or a fixed one.

    Returns:
        ``(function, input_signature)``: a ``tf.function`` of one float32
        argument named after the model input, returning ``{name: tensor}``,
        and its ``[tf.TensorSpec]``.
    """
    layout = layout or output_layout(model)
    spec = tf.TensorSpec((batch_size,) + tuple(layout.input_shape[1:]), tf.float32,
                         name=layout.input_name)
    names, structure = layout.names, layout.structure

    fast = inference_function(model) if inference else None
    forward = fast if fast is not None else functools.partial(model, training=False)

    def serve(waveform):
        out = forward(waveform)
        if structure == "dict":
            flat = [out[n] for n in names]
        elif structure == "list":
            flat = list(out)
        else:
            flat = [out]
        return dict(zip(names, flat, strict=True))

    serve.__name__ = "serve"
    return tf.function(serve, input_signature=[spec], autograph=False), [spec]


def write_manifest(model, layout, fmt, file, folder, batch_size=None, quantization=None):
    """Write ``conventions.json`` for an export into ``folder``.

    Args:
        model: the exported ``keras.Model`` (its ``conventions`` are written).
        layout: its :class:`OutputLayout`.
        fmt: ``"savedmodel"``, ``"onnx"`` or ``"litert"``.
        file: the graph's file name in ``folder`` (``"."`` for a SavedModel).
        folder: where the manifest goes.
        batch_size: the graph's fixed batch size, or ``None``.
        quantization: ``None``, ``"dynamic_range"`` or ``"int8"``.

    Returns:
        The path of the written ``conventions.json``.
    """
    conventions = getattr(model, "conventions", None)
    if conventions is None:
        raise ExportError(f"Export writes the model's conventions beside it; {model.name} "
                          "has none (a utrans model carries model.conventions).")
    batch = (batch_size,)
    manifest = Manifest(
        conventions=conventions,
        format=fmt,
        file=file,
        input_name=layout.input_name,
        input_shape=batch + tuple(layout.input_shape[1:]),
        outputs=tuple(OutputSpec(n, batch + tuple(s[1:]), d)
                      for n, s, d in zip(layout.names, layout.shapes, layout.dtypes, strict=True)),
        output_structure=layout.structure,
        model_name=model.name,
        model_class=type(model).__name__,
        batch_size=batch_size,
        quantization=quantization,
        utrans_version=__version__,
    )
    return manifest.write(folder / MANIFEST_NAME)
