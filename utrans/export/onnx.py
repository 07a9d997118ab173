"""ONNX export through tf2onnx.

Keras's own ``model.export(format="onnx")`` is, on the TensorFlow backend, a
call of ``tf2onnx.convert.from_function`` on the model's forward pass that
names the outputs by position (``output_0``) and patches NumPy globally
for old tf2onnx releases. Here the same converter runs on the serving
function of :mod:`utrans.export.graph`, so the ONNX outputs carry the Keras
output names and the batch dimension is called ``batch``.

TensorFlow writes the exact GELU of Keras (``tf.nn.gelu(approximate=False)``)
with ``Erfc``, for which tf2onnx has no converter; it is given one here:
``erfc(x) = 1 - erf(x)`` with ONNX's ``Erf``. In float32 the difference loses
``erfc``'s relative precision where ``erfc(x)`` is below about 1e-7, which
changes a GELU output by less than 1e-7 absolute.
"""

from __future__ import annotations

import numpy as np

from utrans.core.errors import ExportError, MissingExtraError
from utrans.export.graph import serving_function
from utrans.export.onnx_layout import tidy

__all__ = ["DEFAULT_OPSET", "write_onnx"]

#: ONNX opset of the exported graphs (ONNX Runtime runs opsets up to 23 and more).
DEFAULT_OPSET = 18


def _import_converter():
    try:
        import onnx  # noqa: PLC0415 (optional dependency: the export extra)
        import tf2onnx  # noqa: PLC0415 (optional dependency: the export extra)
    except ImportError as err:
        raise MissingExtraError("ONNX export needs tf2onnx and onnx, which are not installed: "
                                "pip install 'utrans[export]'") from err
    return onnx, tf2onnx


def _erfc_handler(ctx, node, name, args):
    """tf2onnx custom-op handler: ``Erfc(x)`` becomes ``Sub(1, Erf(x))``."""
    erf = ctx.make_node("Erf", [node.input[0]], op_name_scope=name)
    one = ctx.make_const(f"{name}/one", np.array(1.0, dtype=np.float32))
    node.type = "Sub"
    ctx.replace_inputs(node, [one.output[0], erf.output[0]])
    return node


def _name_batch_dimension(proto, input_name, output_names):
    """Call the free first dimension of the input and outputs ``batch``."""
    for value in list(proto.graph.input) + list(proto.graph.output):
        if value.name not in (input_name, *output_names):
            continue
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"


def write_onnx(model, layout, path, opset=DEFAULT_OPSET):
    """Convert the model's serving function to an ONNX file.

    Args:
        model: the ``keras.Model``.
        layout: its :class:`utrans.export.graph.OutputLayout`.
        path: the ``.onnx`` file to write.
        opset: ONNX opset version.

    Returns:
        ``path``.

    Raises:
        MissingExtraError: tf2onnx or onnx is missing (the message says what to install).
        ExportError: the converter left ops it has no ONNX equivalent for.
    """
    onnx, tf2onnx = _import_converter()
    fn, signature = serving_function(model, layout)
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=signature, opset=int(opset),
                                             custom_op_handlers={"Erfc": (_erfc_handler, [])})
    graph_outputs = [o.name for o in proto.graph.output]
    if sorted(graph_outputs) != sorted(layout.names):
        raise ExportError(f"ONNX export of {model.name}: the converted graph's outputs "
                          f"{graph_outputs} are not the model's {list(layout.names)}")
    # tf2onnx keeps a TensorFlow op it cannot convert as a node of that name, which
    # no ONNX runtime can run: refuse the graph here, naming the op.
    unknown = sorted({node.op_type for node in proto.graph.node
                      if node.domain in ("", "ai.onnx", "ai.onnx.ml")
                      and not onnx.defs.has(node.op_type, node.domain)})
    if unknown:
        raise ExportError(f"ONNX export of {model.name}: tf2onnx has no ONNX equivalent for "
                          f"the TensorFlow op(s) {', '.join(unknown)}")
    tidy(onnx, proto)  # the axis shuffles around 1-D convolutions (onnx_layout)
    _name_batch_dimension(proto, layout.input_name, layout.names)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path
