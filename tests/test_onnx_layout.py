"""The ONNX graph tidy-up: layout shuffles around 1-D convolutions removed, outputs unchanged."""

import collections
import importlib
import os

import numpy as np
import pytest

from utrans.export.onnx_layout import tidy


def _require(module):
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{module} is not installed; CI=true requires it")
        pytest.skip(f"{module} is not installed (pip install '.[export]')")


def _graph(onnx):
    """tf2onnx's pattern: NCHW convolution outputs, channels-last skip concatenation, back."""
    h, t = onnx.helper, onnx.TensorProto
    const = [onnx.numpy_helper.from_array(np.asarray(v, np.int64), n)
             for n, v in (("ax1", [1]), ("ax2", [2]))]
    nodes = [
        # conv output (N, C, 1, W) -> channels-last (N, W, C) -> back to (N, C, 1, W)
        h.make_node("Squeeze", ["a", "ax2"], ["a3"]),
        h.make_node("Transpose", ["a3"], ["a_nwc"], perm=[0, 2, 1]),
        h.make_node("Unsqueeze", ["a_nwc", "ax1"], ["a_n1wc"]),
        h.make_node("Transpose", ["a_n1wc"], ["a_back"], perm=[0, 3, 1, 2]),
        h.make_node("Relu", ["a_back"], ["y1"]),
        # a skip connection: both branches channels-last, concatenated on channels
        h.make_node("Squeeze", ["b", "ax2"], ["b3"]),
        h.make_node("Transpose", ["b3"], ["b_nwc"], perm=[0, 2, 1]),
        h.make_node("Concat", ["a_nwc", "b_nwc"], ["cat"], axis=2),
        h.make_node("Unsqueeze", ["cat", "ax1"], ["cat4"]),
        h.make_node("Transpose", ["cat4"], ["cat_nchw"], perm=[0, 3, 1, 2]),
        h.make_node("Relu", ["cat_nchw"], ["y2"]),
        # a real transpose stays
        h.make_node("Transpose", ["a3"], ["y3"], perm=[0, 2, 1]),
    ]
    graph = h.make_graph(
        nodes, "layout",
        [h.make_tensor_value_info("a", t.FLOAT, ["batch", 3, 1, 10]),
         h.make_tensor_value_info("b", t.FLOAT, ["batch", 4, 1, 10])],
        [h.make_tensor_value_info(n, t.FLOAT, shape) for n, shape in (
            ("y1", ["batch", 3, 1, 10]), ("y2", ["batch", 7, 1, 10]), ("y3", ["batch", 10, 3]))],
        const)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 18)])


def _run(ort, proto, feeds):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def test_tidy_removes_round_trips_and_keeps_the_outputs():
    onnx = _require("onnx")
    ort = _require("onnxruntime")
    proto = _graph(onnx)
    rng = np.random.default_rng(0)
    feeds = {"a": rng.standard_normal((2, 3, 1, 10)).astype(np.float32),
             "b": rng.standard_normal((2, 4, 1, 10)).astype(np.float32)}
    want = _run(ort, proto, feeds)
    change = tidy(onnx, proto)
    onnx.checker.check_model(proto)
    ops = collections.Counter(n.op_type for n in proto.graph.node)
    # Only the real transpose (output y3) is left; the concatenation is on channels (axis 1).
    assert ops["Transpose"] == 1 and change < 0
    (concat,) = [n for n in proto.graph.node if n.op_type == "Concat"]
    assert concat.attribute[0].i == 1
    got = _run(ort, proto, feeds)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    assert tidy(onnx, proto) == 0  # nothing left to do


def test_tidy_leaves_a_graph_without_shuffles_alone():
    onnx = _require("onnx")
    h, t = onnx.helper, onnx.TensorProto
    graph = h.make_graph([h.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 1])], "plain",
                         [h.make_tensor_value_info("x", t.FLOAT, [1, 2, 3])],
                         [h.make_tensor_value_info("y", t.FLOAT, [1, 3, 2])])
    proto = h.make_model(graph, opset_imports=[h.make_opsetid("", 18)])
    assert tidy(onnx, proto) == 0 and len(proto.graph.node) == 1


def _decoder_graph(onnx, crop_end=-3, slice_batch=False):
    """PhaseNet's decoder step as tf2onnx writes it: a transposed convolution, ReLU, the
    height axis squeezed, a crop, the skip connection concatenated, unsqueezed again."""
    h, t = onnx.helper, onnx.TensorProto
    rng = np.random.default_rng(1)
    const = [onnx.numpy_helper.from_array(np.asarray(v, np.int64), n) for n, v in (
        ("ax2", [2]), ("starts", [1 if slice_batch else 0, 1]),
        ("ends", [2**31 - 1, crop_end]), ("axes", [0, 2]))]
    const.append(onnx.numpy_helper.from_array(
        rng.standard_normal((4, 2, 1, 7)).astype(np.float32), "w"))
    nodes = [
        h.make_node("ConvTranspose", ["x", "w"], ["up"], strides=[1, 4], kernel_shape=[1, 7],
                    pads=[0, 0, 0, 0]),
        h.make_node("Relu", ["up"], ["up_relu"]),
        h.make_node("Squeeze", ["up_relu", "ax2"], ["up3"]),
        h.make_node("Slice", ["up3", "starts", "ends", "axes"], ["crop"]),
        h.make_node("Squeeze", ["skip", "ax2"], ["skip3"]),
        h.make_node("Concat", ["skip3", "crop"], ["cat"], axis=1),
        h.make_node("Unsqueeze", ["cat", "ax2"], ["cat4"]),
        h.make_node("Relu", ["cat4"], ["y"]),  # the next convolution
    ]
    width = 4 * (5 - 1) + 7 - 1 - (-crop_end)
    graph = h.make_graph(
        nodes, "decoder",
        [h.make_tensor_value_info("x", t.FLOAT, ["batch", 4, 1, 5]),
         h.make_tensor_value_info("skip", t.FLOAT,
                                  ["batch" if not slice_batch else "skip_batch", 3, 1, width])],
        [h.make_tensor_value_info("y", t.FLOAT, ["out_batch", 5, 1, width])], const)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 18)])


def test_tidy_keeps_the_decoder_in_four_dimensions_and_crops_in_the_convolution():
    # Squeeze sinks below the crop and the concatenation and meets the Unsqueeze; the crop
    # (1 sample at the start, 3 at the end) becomes the transposed convolution's pads.
    onnx = _require("onnx")
    ort = _require("onnxruntime")
    proto = _decoder_graph(onnx)
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((2, 4, 1, 5)).astype(np.float32),
             "skip": rng.standard_normal((2, 3, 1, 19)).astype(np.float32)}
    want = _run(ort, proto, feeds)
    tidy(onnx, proto)
    onnx.checker.check_model(proto)
    ops = collections.Counter(n.op_type for n in proto.graph.node)
    assert ops == {"ConvTranspose": 1, "Relu": 2, "Concat": 1}, ops
    (conv,) = [n for n in proto.graph.node if n.op_type == "ConvTranspose"]
    pads = [list(a.ints) for a in conv.attribute if a.name == "pads"]
    assert pads == [[0, 1, 0, 3]]
    (concat,) = [n for n in proto.graph.node if n.op_type == "Concat"]
    assert concat.attribute[0].i == 1
    (got,) = _run(ort, proto, feeds)
    assert got.shape == (2, 5, 1, 19)
    np.testing.assert_array_equal(got, want[0])


def test_a_crop_of_the_batch_stays_a_slice():
    # A Slice that also cuts the batch axis cannot go into the convolution's pads.
    onnx = _require("onnx")
    ort = _require("onnxruntime")
    proto = _decoder_graph(onnx, slice_batch=True)
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((3, 4, 1, 5)).astype(np.float32),
             "skip": rng.standard_normal((2, 3, 1, 19)).astype(np.float32)}
    want = _run(ort, proto, feeds)
    tidy(onnx, proto)
    ops = collections.Counter(n.op_type for n in proto.graph.node)
    assert ops["Slice"] == 1, ops
    (conv,) = [n for n in proto.graph.node if n.op_type == "ConvTranspose"]
    assert [list(a.ints) for a in conv.attribute if a.name == "pads"] == [[0, 0, 0, 0]]
    np.testing.assert_array_equal(_run(ort, proto, feeds)[0], want[0])


@pytest.mark.parametrize("name, left, transposed", [
    ("phasenet", {"Tile": 0, "Resize": 0}, 1),
    # EQTransformer: the decoders' 18 upsamplings as Resize on the convolution outputs; the
    # residual blocks' sums and scalings stay channels-last (11 convolutions read them
    # through a Transpose; ONNX Runtime's own optimiser moves those). Without these rules
    # 32 convolutions read a Transpose.
    ("eqtransformer", {"Resize": 18}, 12),
])
def test_exported_decoders_have_no_layout_round_trips(name, left, transposed, tmp_path):
    # The rules above on the graphs tf2onnx writes for two U-Net-like pickers: the
    # decoders' upsampling, crops and skip concatenations stay in the convolutions' layout,
    # and the exported graph gives the Keras model's outputs.
    onnx = _require("onnx")
    ort = _require("onnxruntime")
    keras = pytest.importorskip("keras")
    from utrans.export import export
    from utrans.models import get_model

    keras.utils.set_random_seed(0)
    model = get_model(name, in_samples=512)
    path = export(model, "onnx", tmp_path / f"{name}.onnx")
    proto = onnx.load(str(path))
    ops = collections.Counter(n.op_type for n in proto.graph.node)
    for op, count in left.items():
        assert ops[op] == count, (op, ops)
    # Convolutions that read a Transpose (the first one reads the input's).
    made_by = {out: node for node in proto.graph.node for out in node.output}
    into_conv = [n.name for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose")
                 and made_by.get(n.input[0]) is not None
                 and made_by[n.input[0]].op_type == "Transpose"]
    assert len(into_conv) == transposed, into_conv
    x = np.random.default_rng(0).standard_normal((3, 512, 3)).astype(np.float32)
    want = model.predict(x, verbose=0)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {
        proto.graph.input[0].name: x})
    for have, expected in zip(got, want if isinstance(want, list) else [want], strict=True):
        assert np.abs(have - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())
