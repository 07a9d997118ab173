"""Keras 3 ``.keras`` and ``.weights.h5`` files: checked before loading, short errors after.

:func:`check_keras_file` says what is wrong with a file that is not what its
name promises (a ``.keras`` file is a zip archive holding ``config.json`` and
``model.weights.h5``; a ``.weights.h5`` file is HDF5). :func:`load_keras_weights`
loads such a file into a model all or nothing: on a mismatch the model keeps
its weights and the error says, in a few lines, how many layers did not fit,
the first of them, and what model the file holds.
"""

from __future__ import annotations

import json
import pathlib
import re
import warnings
import zipfile

import h5py

from utrans.core.errors import CheckpointMismatchError

__all__ = ["check_keras_file", "describe_keras_file", "load_keras_weights"]


def _size(path):
    return f"{path.stat().st_size:,} bytes"


def check_keras_file(path):
    """Raise :class:`CheckpointMismatchError` unless ``path`` is a readable ``.keras``/``.weights.h5``.

    Args:
        path: the file.

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointMismatchError: the file is not what its name says; the
            message names the file and what is wrong.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {path}")
    if path.name.endswith(".keras"):
        if not zipfile.is_zipfile(path):
            raise CheckpointMismatchError(
                f"{path} is not a .keras file: a .keras file is a zip archive holding "
                f"config.json and model.weights.h5; this file ({_size(path)}) is not a zip "
                "archive (truncated or another format?).")
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError) as err:
            raise CheckpointMismatchError(f"{path} is a damaged .keras archive ({err}).") from None
        missing = sorted({"config.json", "model.weights.h5"} - names)
        if missing:
            raise CheckpointMismatchError(f"{path} is not a .keras file: the archive lacks "
                                          f"{', '.join(missing)}.")
        if bad is not None:
            raise CheckpointMismatchError(f"{path} is a damaged .keras archive: {bad} fails its "
                                          "checksum.")
    elif path.name.endswith(".weights.h5"):
        if not h5py.is_hdf5(path):
            raise CheckpointMismatchError(
                f"{path} is not a .weights.h5 file: it is not HDF5 ({_size(path)}; truncated or "
                "another format?).")


def _count_arrays(group):
    count = 0

    def visit(name, obj):
        nonlocal count
        if isinstance(obj, h5py.Dataset):
            count += 1

    group.visititems(visit)
    return count


def describe_keras_file(path):
    """One phrase saying what a ``.keras``/``.weights.h5`` file holds (model class, name, arrays)."""
    path = pathlib.Path(path)
    try:
        if path.name.endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
                with archive.open("model.weights.h5") as fh, h5py.File(fh, "r") as h5:
                    arrays = _count_arrays(h5)
            inner = config.get("config", {})
            return (f"a {config.get('class_name', 'model')} named "
                    f"{inner.get('name', '?')!r} with {arrays} weight arrays")
        with h5py.File(path, "r") as h5:
            arrays = _count_arrays(h5)
            layers = list(h5["layers"].keys())[:3] if "layers" in h5 else list(h5.keys())[:3]
        return f"{arrays} weight arrays (first layers: {', '.join(layers)})"
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        return f"an unreadable file ({err})"


def load_keras_weights(model, path):
    """Load a ``.keras`` or ``.weights.h5`` file into ``model``, all or nothing.

    Args:
        model: the built Keras model.
        path: the file.

    Raises:
        CheckpointMismatchError: the file is damaged or holds another model;
            the model's weights are left unchanged.
    """
    path = pathlib.Path(path)
    check_keras_file(path)
    before = [w.numpy() for w in model.weights]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(path)
            error = None
        except (ValueError, KeyError, OSError) as err:
            error = err
    skipped = [str(w.message) for w in caught if "skipping" in str(w.message).lower()]
    if error is None and not skipped:
        return
    for weight, value in zip(model.weights, before):
        weight.assign(value)
    if error is not None:
        text = str(error)
        total = re.search(r"A total of (\d+) objects could not be loaded", text)
        first = re.search(r"Layer '([^']+)' expected[^\n]*", text)
        detail = (f"{total.group(1)} of its layers could not be loaded"
                  + (f" (first: {first.group(0)})" if first else "")) if total else \
            text.strip().splitlines()[0][:300]
    else:
        detail = (f"{len(skipped)} parts of the model found nothing to load "
                  f"(first: {skipped[0].splitlines()[0][:200]})")
    raise CheckpointMismatchError(
        f"{path} does not fit {model.name}: {detail}. The file holds "
        f"{describe_keras_file(path)}; {model.name} has {len(model.weights)} weight arrays. "
        "Its weights were left unchanged.")
