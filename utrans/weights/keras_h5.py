"""Import legacy Keras 2 ``.h5`` weight files (the published U-Trans checkpoint).

A Keras 2 ``model.save_weights``/``model.save`` HDF5 file lists its layers in
graph order (root attribute ``layer_names``, under ``model_weights`` for full
model files) and, per layer group, the layer's weights in creation order
(attribute ``weight_names``). Layer names in such files depend on how many
layers the writing session had created before (``conv1d_13``, ``dense_7``,
...), so they are not used for matching: :func:`load_legacy_h5` pairs the
file's weights, flattened in that order, with the Keras model's weights
(``model.weights``), checks that the counts and every shape agree, and assigns
nothing unless all of them do.
"""

import logging
import os

import h5py
import numpy as np

from utrans.core.errors import CheckpointMismatchError

__all__ = ["LegacyH5Weight", "load_legacy_h5", "read_legacy_h5_weights", "assign_legacy_weights"]

logger = logging.getLogger(__name__)


class LegacyH5Weight:
    """One weight array of a legacy ``.h5`` file.

    Args:
        layer: the layer group name in the file.
        name: the weight's name in the file (e.g. ``conv1d_13/kernel:0``).
        value: the array.
    """

    __slots__ = ("layer", "name", "value")

    def __init__(self, layer, name, value):
        self.layer = layer
        self.name = name
        self.value = value

    def __repr__(self):
        return f"LegacyH5Weight({self.layer!r}, {self.name!r}, shape={self.value.shape})"


def _as_str(value):
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_legacy_h5_weights(path):
    """Read every weight of a Keras 2 ``.h5`` file in graph order.

    Args:
        path: the ``.h5`` file (weights-only or full-model file).

    Returns:
        A list of :class:`LegacyH5Weight`, layers in the file's ``layer_names``
        order, each layer's weights in its ``weight_names`` order.

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointMismatchError: the file is not HDF5, is truncated, or is not
            a Keras weights file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Weights file not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise CheckpointMismatchError(
            f"{path}: not a readable HDF5 file (truncated or not HDF5): {err}"
        ) from err
    weights = []
    try:
        with handle:
            root = handle["model_weights"] if "model_weights" in handle else handle
            if "layer_names" not in root.attrs:
                raise CheckpointMismatchError(
                    f"{path}: not a Keras .h5 weights file (no 'layer_names' attribute). "
                    f"Received top-level keys: {sorted(handle.keys())[:10]}"
                )
            for layer_name in (_as_str(n) for n in root.attrs["layer_names"]):
                if layer_name not in root:
                    raise CheckpointMismatchError(
                        f"{path}: layer {layer_name!r} is listed in 'layer_names' but has no group"
                    )
                group = root[layer_name]
                for weight_name in (_as_str(n) for n in group.attrs.get("weight_names", [])):
                    if weight_name not in group:
                        raise CheckpointMismatchError(
                            f"{path}: weight {weight_name!r} of layer {layer_name!r} is listed "
                            "but missing"
                        )
                    weights.append(LegacyH5Weight(layer_name, weight_name, np.asarray(group[weight_name])))
    except (OSError, KeyError, ValueError) as err:
        if isinstance(err, CheckpointMismatchError):
            raise
        raise CheckpointMismatchError(f"{path}: cannot read the weights (damaged file?): {err}") from err
    return weights


def assign_legacy_weights(model, weights, source="<weights>"):
    """Assign legacy ``.h5`` weights to ``model`` by order and shape, all or nothing.

    Args:
        model: a built Keras model whose ``model.weights`` follow the same graph
            order as the file (e.g. :class:`utrans.models.UTransBackbone`).
        weights: list of :class:`LegacyH5Weight` from :func:`read_legacy_h5_weights`.
        source: file name used in error messages.

    Returns:
        The model.

    Raises:
        CheckpointMismatchError: the weight counts or any shape differ; the
            message names the file, the first mismatching weight on both sides
            and both shapes. No weight is changed in that case.
    """
    targets = model.weights
    problems = []
    if len(targets) != len(weights):
        problems.append(
            f"the file holds {len(weights)} weight arrays in "
            f"{len({w.layer for w in weights})} layers, the model {model.name!r} "
            f"expects {len(targets)}"
        )
    for i, (var, w) in enumerate(zip(targets, weights)):
        if tuple(var.shape) != tuple(w.value.shape):
            problems.append(
                f"weight #{i}: file {w.layer}/{w.name} has shape {tuple(w.value.shape)}, "
                f"model {var.path} expects {tuple(var.shape)}"
            )
            break
    if problems:
        raise CheckpointMismatchError(
            f"{source}: the weights do not fit the architecture of {model.name!r} "
            f"({type(model).__name__}); nothing was loaded. " + "; ".join(problems)
        )
    for var, w in zip(targets, weights):
        var.assign(w.value.astype(var.dtype, copy=False))
    logger.info("Loaded %d weight arrays from %s into %s", len(weights), source, model.name)
    return model


def load_legacy_h5(model, path):
    """Load a Keras 2 ``.h5`` checkpoint into ``model`` (matching by order and shape).

    Args:
        model: a built Keras model with the checkpoint's architecture.
        path: the ``.h5`` file.

    Returns:
        The model.

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointMismatchError: unreadable file or architecture mismatch
            (the message names the file and what did not match); nothing is assigned.
    """
    weights = read_legacy_h5_weights(path)
    return assign_legacy_weights(model, weights, source=os.fspath(path))
