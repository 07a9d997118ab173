"""Tidy the axis shuffles tf2onnx leaves around 1-D convolutions in an ONNX graph.

TensorFlow runs a 1-D convolution as a 2-D one on an expanded axis, in
channels-last layout; ONNX convolutions are channels-first. tf2onnx wraps
every convolution in ``Unsqueeze -> Transpose (NHWC to NCHW) -> Conv ->
Squeeze -> Transpose (back)``, and its own transpose optimiser cannot see
through the Squeeze and Unsqueeze: between two convolutions the data goes to
channels-last and straight back, and skip connections concatenate in
channels-last (a strided copy). On PhaseNet that is a third of ONNX
Runtime's time.

:func:`tidy` rewrites the graph, to the same outputs, until nothing changes:

* a ``Concat`` whose inputs all come out of ``Transpose`` nodes of the same
  permutation becomes the ``Concat`` of their inputs (on the permuted axis)
  followed by that one ``Transpose``;
* a repeat along one axis (Keras's ``UpSampling1D``: ``Unsqueeze``, ``Tile``,
  ``Reshape``) of a tensor that layout nodes made from a convolution output
  becomes a nearest-neighbour ``Resize`` of that output's last axis, then the
  layout nodes (ONNX Runtime runs the ``Resize`` in its convolution layout);
* a ``Slice`` (constant axes) of a ``Transpose`` becomes the ``Slice`` of its
  input (axes permuted), then the ``Transpose``;
* a ``Slice`` (constant axes) or ``Concat`` of ``Squeeze`` outputs (the same
  squeezed axes) becomes the ``Slice`` / ``Concat`` of their inputs, then the
  ``Squeeze``: a decoder's crop and skip concatenation stay 4-D, and the
  ``Squeeze`` meets the ``Unsqueeze`` before the next convolution;
* a ``Slice`` that crops only the spatial axes of ``Relu(ConvTranspose(x))``
  goes into the ``ConvTranspose``'s pads (which crop its output);
* a chain of ``Squeeze`` / ``Unsqueeze`` / ``Transpose`` nodes that keeps the
  order of the axes it does not add or remove (size-1 axes are
  interchangeable) becomes nothing, one ``Squeeze`` and/or one
  ``Unsqueeze``;
* nodes nobody reads any more are removed.

The module needs the ``onnx`` package (passed in) and NumPy only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["tidy"]

_LAYOUT_OPS = ("Squeeze", "Unsqueeze", "Transpose")
_ONE = "1"  # the label of an axis added by an Unsqueeze


def _attributes(node):
    return {a.name: a for a in node.attribute}


def _axes(node, constants):
    """The axes of a Squeeze / Unsqueeze (attribute or constant input), or ``None``."""
    attributes = _attributes(node)
    if "axes" in attributes:
        return list(attributes["axes"].ints)
    if len(node.input) > 1 and node.input[1] in constants:
        return [int(a) for a in np.ravel(constants[node.input[1]])]
    return None


def _perm(node, rank):
    attributes = _attributes(node)
    return list(attributes["perm"].ints) if "perm" in attributes else list(range(rank))[::-1]


def _step(labels, node, constants):
    """Axis labels after one layout node, or ``None`` when its axes are not known."""
    if node.op_type == "Transpose":
        return [labels[p] for p in _perm(node, len(labels))]
    axes = _axes(node, constants)
    if axes is None:
        return None  # Squeeze of every size-1 axis, or axes computed at run time
    if node.op_type == "Squeeze":
        drop = {a % len(labels) for a in axes}
        return [label for i, label in enumerate(labels) if i not in drop]
    rank = len(labels) + len(axes)
    insert = {a % rank for a in axes}
    rest = iter(labels)
    return [_ONE if i in insert else next(rest) for i in range(rank)]


class _Graph:
    """The graph's nodes with their readers, constants and tensor ranks."""

    def __init__(self, onnx, proto):
        self.onnx, self.graph = onnx, proto.graph
        inferred = onnx.shape_inference.infer_shapes(proto)
        self.ranks = {}
        for value in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
            tensor = value.type.tensor_type
            if tensor.HasField("shape"):
                self.ranks[value.name] = len(tensor.shape.dim)
        self.constants = {t.name: onnx.numpy_helper.to_array(t) for t in self.graph.initializer}
        for node in self.graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.constants[node.output[0]] = onnx.numpy_helper.to_array(node.attribute[0].t)
        self.readers = {}
        self.producer = {}
        for node in self.graph.node:
            for name in node.input:
                self.readers.setdefault(name, []).append(node)
            for name in node.output:
                self.producer[name] = node
        self.outputs = {o.name for o in self.graph.output}
        # New names continue after those of earlier passes (``NAME__tidyN``).
        taken = [name for node in self.graph.node for name in (node.name, *node.output)]
        taken += [t.name for t in self.graph.initializer]
        self._count = max((int(n.rsplit("__tidy", 1)[1]) for n in taken
                           if "__tidy" in n and n.rsplit("__tidy", 1)[1].isdigit()), default=0)

    def name(self, base):
        self._count += 1
        return f"{base}__tidy{self._count}"

    def axes_input(self, axes):
        """An int64 initializer holding ``axes`` (opset 13+ takes axes as an input)."""
        name = self.name("axes")
        self.graph.initializer.append(
            self.onnx.numpy_helper.from_array(np.asarray(axes, np.int64), name))
        return name


def _hoist_transposes_over_concat(g):
    """``Concat(Transpose_p(x_i))`` -> ``Transpose_p(Concat(x_i))``; returns the new node list."""
    out, changed = [], False
    for node in g.graph.node:
        sources = [g.producer.get(name) for name in node.input]
        if node.op_type != "Concat" or not sources or any(
                s is None or s.op_type != "Transpose" for s in sources):
            out.append(node)
            continue
        rank = g.ranks.get(node.output[0])
        perms = {tuple(_perm(s, rank)) for s in sources} if rank else set()
        if len(perms) != 1:
            out.append(node)
            continue
        (perm,) = perms
        axis = _attributes(node)["axis"].i % rank
        inner = g.name(node.output[0])
        out.append(g.onnx.helper.make_node("Concat", [s.input[0] for s in sources], [inner],
                                           axis=perm[axis], name=g.name(node.name)))
        out.append(g.onnx.helper.make_node("Transpose", [inner], [node.output[0]],
                                           perm=list(perm), name=g.name(node.name)))
        changed = True
    return out if changed else None


def _collapse_layout_chains(g):
    """Layout chains that keep their kept axes in order -> nothing, Squeeze and/or Unsqueeze."""
    replace, rename, done = {}, {}, set()
    for start in g.graph.node:
        if start.op_type not in _LAYOUT_OPS or id(start) in done or start.input[0] not in g.ranks:
            continue
        first = list(range(g.ranks[start.input[0]]))
        labels, squeezed, node, chain, best = first, set(), start, [], None
        while True:
            after = _step(labels, node, g.constants)
            if after is None:
                break
            if node.op_type == "Squeeze":
                squeezed |= {a for a in labels if a != _ONE} - set(after)
            labels = after
            chain.append(node)
            kept = [a for a in labels if a != _ONE]
            if kept == [a for a in first if a not in squeezed] and chain[-1].output[0] not in g.outputs:
                drop = [i for i, a in enumerate(first) if a in squeezed]
                add = [i for i, a in enumerate(labels) if a == _ONE]
                best = (len(chain), drop, add)
            # Follow the one layout node reading this output (others may read it too).
            nexts = [n for n in g.readers.get(node.output[0], [])
                     if n.op_type in _LAYOUT_OPS and n.input[0] == node.output[0]]
            if len(nexts) != 1:
                break
            node = nexts[0]
        if best is None:
            continue
        length, drop, add = best
        chain = chain[:length]
        needed = 0 if drop == add else (bool(drop) + bool(add))
        if needed >= length and not any(n.op_type == "Transpose" for n in chain):
            continue  # as short already, and no data moved
        source, target = chain[0].input[0], chain[-1].output[0]
        done |= {id(n) for n in chain}
        if drop == add:
            rename[target] = source
            continue
        nodes, current = [], source
        if drop:
            current_out = g.name(target) if add else target
            nodes.append(g.onnx.helper.make_node("Squeeze", [current, g.axes_input(drop)],
                                                 [current_out], name=g.name("squeeze")))
            current = current_out
        if add:
            nodes.append(g.onnx.helper.make_node("Unsqueeze", [current, g.axes_input(add)],
                                                 [target], name=g.name("unsqueeze")))
        replace[id(chain[-1])] = nodes
    if not replace and not rename:
        return None
    out = []
    for node in g.graph.node:
        out.extend(replace.get(id(node), [node]))
    for node in out:
        for i, name in enumerate(node.input):
            while name in rename:
                name = rename[name]
            node.input[i] = name
    return out


def _squeezed_source(g, name):
    """``(input, sorted axes)`` when ``name`` is made by a Squeeze of known axes, else ``None``."""
    node = g.producer.get(name)
    if node is None or node.op_type != "Squeeze" or node.input[0] not in g.ranks:
        return None
    axes = _axes(node, g.constants)
    if axes is None:
        return None
    rank = g.ranks[node.input[0]]
    return node.input[0], sorted({a % rank for a in axes})


def _kept_axes(rank, squeezed):
    return [i for i in range(rank) if i not in squeezed]


def _copy_layout(g, layout, source, target):
    """``layout`` (a Squeeze, Unsqueeze or Transpose) applied to ``source``, written to ``target``."""
    copy = g.onnx.helper.make_node(layout.op_type, [source, *layout.input[1:]], [target],
                                   name=g.name(layout.name))
    copy.attribute.extend(layout.attribute)
    return copy


def _input_axes(g, node):
    """``(x, axes)`` for a Squeeze (known axes) or Transpose ``node`` of ``x``: output axis
    ``k`` is axis ``axes[k]`` of ``x``; ``None`` otherwise."""
    x = node.input[0]
    if x not in g.ranks:
        return None
    if node.op_type == "Transpose":
        return x, _perm(node, g.ranks[x])
    if node.op_type == "Squeeze":
        source = _squeezed_source(g, node.output[0])
        return None if source is None else (x, _kept_axes(g.ranks[x], source[1]))
    return None


def _shape_elements(g, name, depth=0):
    """A 1-D shape tensor as a list of ``("dim", tensor, axis)`` / ``("const", value)``
    items, when it is built from ``Shape``, ``Cast``, ``Slice`` (constant bounds), ``Concat``
    and constants; ``None`` otherwise."""
    if name in g.constants:
        return [("const", int(v)) for v in np.ravel(g.constants[name])]
    node = g.producer.get(name)
    if node is None or depth > 8:
        return None
    if node.op_type == "Shape" and not node.attribute and node.input[0] in g.ranks:
        return [("dim", node.input[0], i) for i in range(g.ranks[node.input[0]])]
    if node.op_type == "Cast":
        return _shape_elements(g, node.input[0], depth + 1)
    if node.op_type == "Concat":
        parts = [_shape_elements(g, i, depth + 1) for i in node.input]
        return None if any(p is None for p in parts) else [e for p in parts for e in p]
    if node.op_type == "Slice" and len(node.input) >= 3 and all(
            i in g.constants for i in node.input[1:]):
        items = _shape_elements(g, node.input[0], depth + 1)
        bounds = [np.ravel(g.constants[i]) for i in node.input[1:]]
        if items is None or any(b.size != 1 for b in bounds):
            return None
        start, end = int(bounds[0][0]), int(bounds[1][0])
        if len(bounds) > 2 and int(bounds[2][0]) != 0 or len(bounds) > 3 and int(bounds[3][0]) != 1:
            return None
        return items[start:end]
    return None


def _layout_source(g, name):
    """``(x, layout nodes from x to name, labels of name's axes in x's axes)`` for the chain
    of layout nodes that makes ``name``; ``(name, [], its own axes)`` when there is none."""
    chain = []
    while (node := g.producer.get(name)) is not None and node.op_type in _LAYOUT_OPS:
        chain.insert(0, node)
        name = node.input[0]
    if name not in g.ranks:
        return None
    labels = list(range(g.ranks[name]))
    for node in chain:
        labels = _step(labels, node, g.constants)
        if labels is None:
            return None
    return name, chain, labels


def _repeat_in_source_layout(g):
    """A repeat along one axis (``Unsqueeze``, ``Tile``, ``Reshape`` merging the two axes:
    Keras's ``UpSampling1D``) of a tensor that layout nodes made from a 4-D convolution
    output, done on that output's last axis before the layout nodes."""
    out, changed = [], False
    for node in g.graph.node:
        out.append(node)
        if node.op_type != "Reshape" or len(node.input) < 2:
            continue
        tile = g.producer.get(node.input[0])
        unsq = g.producer.get(tile.input[0]) if tile is not None and tile.op_type == "Tile" else None
        if unsq is None or unsq.op_type != "Unsqueeze" or tile.input[1] not in g.constants:
            continue
        axes = _axes(unsq, g.constants)
        y = unsq.input[0]
        if axes is None or len(axes) != 1 or y not in g.ranks:
            continue
        rank = g.ranks[y]
        a = axes[0] % (rank + 1)
        reps = [int(r) for r in np.ravel(g.constants[tile.input[1]])]
        if a == 0 or len(reps) != rank + 1 or any(r != 1 for i, r in enumerate(reps) if i != a):
            continue
        shape = _shape_elements(g, node.input[1])
        want_dims = [("dim", y, i) for i in range(rank)]
        if (shape is None or len(shape) != rank or shape[a - 1][0] != "const"
                or shape[:a - 1] != want_dims[:a - 1] or shape[a:] != want_dims[a:]):
            continue  # not the merge of the repeated axis with the one before it
        source = _layout_source(g, y)
        if source is None or not source[1]:
            continue
        x, chain, labels = source
        last = g.ranks[x] - 1
        if labels[a - 1] != last:
            continue  # the repeated axis is not the source's last one
        merged = g.name(y)
        out.pop()
        scales = np.ones(last + 1, np.float32)
        scales[last] = reps[a]
        scales_name = g.name("scales")
        g.graph.initializer.append(g.onnx.numpy_helper.from_array(scales, scales_name))
        # Nearest-neighbour upsampling by an integer factor repeats each sample; ONNX
        # Runtime runs it in its blocked-channel layout, between the convolutions.
        out.append(g.onnx.helper.make_node(
            "Resize", [x, "", scales_name], [merged], name=g.name("repeat"), mode="nearest",
            coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
        current = merged
        for k, layout in enumerate(chain):
            target = node.output[0] if k == len(chain) - 1 else g.name(layout.output[0])
            out.append(_copy_layout(g, layout, current, target))
            current = target
        changed = True
    return out if changed else None


def _sink_layout_below_slices(g):
    """``Slice(L(x))`` (constant axes), ``L`` a ``Transpose`` or a ``Squeeze`` ->
    ``L(Slice(x))`` with the axes mapped to ``x``'s."""
    out, changed = [], False
    for node in g.graph.node:
        layout = g.producer.get(node.input[0]) if node.input else None
        source = _input_axes(g, layout) if (
            layout is not None and node.op_type == "Slice" and len(node.input) >= 4
            and node.input[3] in g.constants) else None
        if source is None:
            out.append(node)
            continue
        x, axes = source
        mapped = [axes[int(a) % len(axes)] for a in np.ravel(g.constants[node.input[3]])]
        inner = g.name(node.output[0])
        inputs = [x, node.input[1], node.input[2], g.axes_input(mapped), *node.input[4:]]
        out.append(g.onnx.helper.make_node("Slice", inputs, [inner], name=g.name(node.name)))
        out.append(_copy_layout(g, layout, inner, node.output[0]))
        changed = True
    return out if changed else None


def _sink_squeezes_below_concat(g):
    """``Concat(Squeeze(x_i))`` (the same squeezed axes) -> ``Squeeze(Concat(x_i))``, so that
    the ``Squeeze`` meets the ``Unsqueeze`` after it and both go
    (:func:`_collapse_layout_chains`)."""
    out, changed = [], False
    for node in g.graph.node:
        sources = [_squeezed_source(g, name) for name in node.input] \
            if node.op_type == "Concat" else [None]
        if not sources or any(s is None for s in sources) or len(
                {(g.ranks[x], tuple(a)) for x, a in sources}) != 1:
            out.append(node)
            continue
        rank, squeezed = g.ranks[sources[0][0]], sources[0][1]
        kept = _kept_axes(rank, squeezed)
        axis = kept[_attributes(node)["axis"].i % len(kept)]
        inner = g.name(node.output[0])
        out.append(g.onnx.helper.make_node("Concat", [x for x, _ in sources], [inner],
                                           axis=axis, name=g.name(node.name)))
        out.append(g.onnx.helper.make_node("Squeeze", [inner, g.axes_input(squeezed)],
                                           [node.output[0]], name=g.name("squeeze")))
        changed = True
    return out if changed else None


_TO_END = 2**30  # a Slice end at or beyond this means "to the end" (tf2onnx writes 2**31 - 1)


def _crop_into_transposed_convolution(g):
    """``Slice(Relu(ConvTranspose(x)))`` cropping the spatial axes -> the crop in the
    ``ConvTranspose``'s pads (which crop its output), ``Relu`` after it."""
    drop, replace, rename = set(), {}, {}
    for node in g.graph.node:
        if node.op_type != "Slice" or len(node.input) < 4 or node.output[0] in g.outputs or any(
                n not in g.constants for n in node.input[1:4]):
            continue
        if len(node.input) > 4 and node.input[4] and (
                node.input[4] not in g.constants or np.any(g.constants[node.input[4]] != 1)):
            continue
        relu = g.producer.get(node.input[0])
        if relu is None or relu.op_type != "Relu" or len(g.readers.get(relu.output[0], [])) != 1:
            continue
        conv = g.producer.get(relu.input[0])
        if conv is None or conv.op_type != "ConvTranspose" or len(
                g.readers.get(conv.output[0], [])) != 1 or relu.output[0] in g.outputs:
            continue
        attributes = _attributes(conv)
        if "output_shape" in attributes or (
                "auto_pad" in attributes and attributes["auto_pad"].s not in (b"", b"NOTSET")):
            continue
        rank = g.ranks.get(conv.output[0])
        if rank is None or rank < 3:
            continue
        spatial = rank - 2
        pads = list(attributes["pads"].ints) if "pads" in attributes else [0] * (2 * spatial)
        starts, ends, axes = (np.ravel(g.constants[n]).astype(np.int64) for n in node.input[1:4])
        ok = True
        for start, end, axis in zip(starts, ends, axes, strict=True):
            axis = int(axis) % rank
            if axis < 2:
                ok = ok and start == 0 and end >= _TO_END
                continue
            if start < 0 or not (end < 0 or end >= _TO_END):
                ok = False
                continue
            pads[axis - 2] += int(start)
            pads[axis - 2 + spatial] += 0 if end > 0 else int(-end)
        if not ok:
            continue
        cropped = g.onnx.helper.make_node(
            "ConvTranspose", list(conv.input), [conv.output[0]], name=conv.name,
            **{a.name: g.onnx.helper.get_attribute_value(a) for a in conv.attribute
               if a.name != "pads"}, pads=pads)
        replace[id(conv)] = cropped
        drop.add(id(node))
        rename[node.output[0]] = relu.output[0]
    if not replace:
        return None
    out = [replace.get(id(n), n) for n in g.graph.node if id(n) not in drop]
    for n in out:
        for i, name in enumerate(n.input):
            n.input[i] = rename.get(name, name)
    return out


def _drop_unread(graph):
    """Remove nodes none of whose outputs is read (or a graph output)."""
    outputs = {o.name for o in graph.output}
    removed = 0
    while True:
        read = {name for node in graph.node for name in node.input} | outputs
        kept = [n for n in graph.node if any(o in read for o in n.output)]
        if len(kept) == len(graph.node):
            break
        removed += len(graph.node) - len(kept)
        del graph.node[:]
        graph.node.extend(kept)
    produced = {o for node in graph.node for o in node.output}
    for value in [v for v in graph.value_info if v.name not in produced]:
        graph.value_info.remove(value)
    used = {name for node in graph.node for name in node.input}
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)
    return removed


def tidy(onnx, proto, max_rounds=10):
    """Rewrite ``proto``'s layout shuffles in place (module doc), to the same outputs.

    Args:
        onnx: the ``onnx`` module.
        proto: an ``onnx.ModelProto`` (changed in place).
        max_rounds: passes over the graph at most.

    Returns:
        The change in the number of nodes (negative: fewer).
    """
    before = len(proto.graph.node)
    for _ in range(max_rounds):
        changed = False
        for rewrite in (_hoist_transposes_over_concat, _repeat_in_source_layout,
                        _sink_layout_below_slices, _sink_squeezes_below_concat,
                        _crop_into_transposed_convolution, _collapse_layout_chains):
            nodes = rewrite(_Graph(onnx, proto))
            if nodes is not None:
                del proto.graph.node[:]
                proto.graph.node.extend(nodes)
                _drop_unread(proto.graph)
                changed = True
        if not changed:
            break
    return len(proto.graph.node) - before
