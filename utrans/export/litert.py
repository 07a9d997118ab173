"""LiteRT (``.tflite``) export through TensorFlow's TFLite converter.

The graph is converted with LiteRT's builtin operators only: the
``ai-edge-litert`` interpreter that runs it without TensorFlow has no
TensorFlow ("Flex") kernels, so a graph that needs one is refused here with
the op named, rather than written and failing at run time.

Quantisation (``quantize``):

* ``None``: float32 weights and arithmetic.
* ``"dynamic_range"``: int8 weights, activations quantised on the fly
  (no calibration data).
* ``"int8"``: full-integer weights and activations, calibrated on
  ``representative_data`` (normalised windows of the model's input shape);
  the graph's input and outputs stay float32.
"""

from __future__ import annotations

import re
import tempfile

import numpy as np
import tensorflow as tf

from utrans.core.errors import ExportError
from utrans.export.graph import output_layout
from utrans.export.savedmodel import write_savedmodel

__all__ = ["QUANTIZATIONS", "write_litert"]

QUANTIZATIONS = (None, "dynamic_range", "int8")

# What the converter says about an op it cannot lower to a builtin.
_OP_PATTERNS = (
    re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op"),
    re.compile(r"failed to legalize operation 'tf\.(\w+)'"),
)
_STATIC_SHAPE = re.compile(r"'tf\.(\w+)' op requires element_shape to be static")


def _summary(err):
    """One line from the converter's (very long) error."""
    text = str(err)
    if _STATIC_SHAPE.search(text):
        return ("its recurrent (LSTM) layers need a fixed batch size in LiteRT: pass "
                "batch_size=N (the runner then feeds batches of N windows)")
    ops = sorted({m.group(1) for pattern in _OP_PATTERNS for m in pattern.finditer(text)})
    if ops:
        return (f"TensorFlow op(s) {', '.join(ops)} have no LiteRT builtin kernel (the "
                "TensorFlow-free interpreter runs builtins only)")
    lines = [line.strip() for line in text.splitlines() if "error:" in line]
    return lines[0] if lines else text.splitlines()[0]


def _representative(data, input_shape):
    x = np.asarray(data, dtype=np.float32)
    if x.ndim != 3 or tuple(x.shape[1:]) != tuple(input_shape[1:]) or x.shape[0] < 1:
        raise ValueError(f"representative_data must be normalised windows of shape (n, "
                         f"{input_shape[1]}, {input_shape[2]}). Received: shape={x.shape}")

    def gen():
        for window in x:
            yield [window[None]]

    return gen


def write_litert(model, layout, path, batch_size=None, quantize=None, representative_data=None):
    """Convert the model's serving function to a ``.tflite`` file.

    Args:
        model: the ``keras.Model``.
        layout: its :class:`utrans.export.graph.OutputLayout`.
        path: the ``.tflite`` file to write.
        batch_size: ``None`` (any batch size: the interpreter resizes its
            input) or a fixed batch size (needed by LSTM layers).
        quantize: ``None``, ``"dynamic_range"`` or ``"int8"`` (module doc).
        representative_data: calibration windows for ``quantize="int8"``.

    Returns:
        ``path``.

    Raises:
        ValueError: bad ``quantize``, ``batch_size`` or ``representative_data``.
        ExportError: the converter cannot express the graph with builtin ops.
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}. Received: quantize={quantize!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) != batch_size
                                   or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None. "
                         f"Received: batch_size={batch_size!r}")
    if quantize == "int8" and representative_data is None:
        raise ValueError("quantize='int8' calibrates on representative_data: pass normalised "
                         "windows (n, samples, channels). Received: representative_data=None")
    layout = layout or output_layout(model)
    # Keras 3's path to LiteRT: ExportArchive -> SavedModel -> converter (the
    # converter freezes a SavedModel's variables; those of a concrete function
    # of a Keras 3 model stay resource variables the interpreter cannot read).
    with tempfile.TemporaryDirectory(prefix="utrans_litert_") as tmp:
        write_savedmodel(model, layout, tmp, batch_size=batch_size)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "int8":
            converter.representative_dataset = _representative(representative_data,
                                                                layout.input_shape)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        try:
            content = converter.convert()
        except Exception as err:
            # TensorFlow raises its ConverterError, which has no public name; anything
            # else is not a conversion failure and goes up as it is.
            if type(err).__name__ != "ConverterError":
                raise
            raise ExportError(f"LiteRT export of {model.name}: {_summary(err)}.") from err
    with open(path, "wb") as handle:
        handle.write(content)
    return path
