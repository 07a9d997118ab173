"""Import PyTorch ``state_dict`` checkpoints (``.pth``) into Keras models.

A ``.pth`` file written by ``torch.save`` is a zip archive holding a pickle
(``<name>/data.pkl``) that refers to raw tensor storages (``<name>/data/<key>``).
:func:`read_torch_state_dict` parses it without PyTorch, with an unpickler that
accepts only the handful of globals a state_dict needs (ordered dicts, storage
types and tensor rebuilding); any other global, such as ``os.system``, raises
:class:`UnsafeCheckpointError` before anything runs.

Keras models that can take PyTorch weights implement ``torch_weight_map()``,
returning a list of :class:`TorchMapping` (:class:`utrans.models.torch_port.TorchPortModel`
builds it); :func:`load_torch_checkpoint` checks every tensor against that map
(missing, unexpected, mis-shaped) and assigns nothing unless everything
matches. No framework is imported here.
"""

import collections
import dataclasses
import io
import os
import zipfile
from typing import Callable, Sequence

import numpy as np

from utrans.core.errors import CheckpointMismatchError, UnsafeCheckpointError
from utrans.core.safepickle import AllowListUnpickler

__all__ = [
    "TorchMapping",
    "assign_torch_state_dict",
    "conv_kernel",
    "conv_transpose_kernel",
    "guess_torch_model",
    "identity",
    "linear_kernel",
    "load_torch_checkpoint",
    "lstm_bias",
    "read_torch_state_dict",
]

# Storage class name -> numpy dtype. BFloat16 has no numpy dtype; it is read
# as raw uint16 and widened to float32 below.
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}

# Tensors that carry no model parameter (BatchNorm's step counter).
IGNORED_SUFFIXES = ("num_batches_tracked",)


@dataclasses.dataclass(frozen=True)
class _StorageType:
    name: str


@dataclasses.dataclass
class _Storage:
    dtype: object
    key: str


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return ("tensor", storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


class _RestrictedUnpickler(AllowListUnpickler):
    """Unpickler that only rebuilds tensors, storages and ordered dicts."""

    allowed = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }
    purpose = "a state_dict checkpoint only needs tensors and ordered dicts."

    def refuse(self, reason):
        return UnsafeCheckpointError(f"{self.path}: {reason}")

    def find_extra(self, module, name):
        return _StorageType(name) if module == "torch" and name in _STORAGE_DTYPES else None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise self.refuse(f"unexpected persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        if isinstance(storage_type, _StorageType):
            dtype = _STORAGE_DTYPES[storage_type.name]
        else:
            raise self.refuse(f"unsupported storage type {storage_type!r}")
        return _Storage(dtype=dtype, key=key)


def read_torch_state_dict(path):
    """Read a PyTorch ``state_dict`` checkpoint without PyTorch.

    Args:
        path: a ``.pth`` file written by ``torch.save(model.state_dict(), path)``
            (zip format, the default since PyTorch 1.6).

    Returns:
        ``collections.OrderedDict`` mapping parameter names to numpy arrays.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a zip-format torch checkpoint.
        UnsafeCheckpointError: the pickle refers to a global other than tensor
            rebuilding, storages and ``OrderedDict``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Checkpoint not found: {path}")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise ValueError(
            f"{path} is not a zip-format PyTorch checkpoint (truncated, or saved with "
            "_use_new_zipfile_serialization=False)."
        ) from err
    with archive:
        names = archive.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise ValueError(f"{path}: expected one data.pkl in the archive, found {pkl}")
        prefix = pkl[0][: -len("data.pkl")]
        byteorder = "little"
        if f"{prefix}byteorder" in names:
            byteorder = archive.read(f"{prefix}byteorder").decode().strip()
        with archive.open(pkl[0]) as fh:
            obj = _RestrictedUnpickler(io.BytesIO(fh.read()), path).load()
        if not isinstance(obj, dict):
            raise ValueError(f"{path}: the checkpoint holds a {type(obj).__name__}, not a state_dict")
        if "state_dict" in obj and isinstance(obj["state_dict"], dict):
            obj = obj["state_dict"]
        buffers = {}
        out = collections.OrderedDict()
        for name, value in obj.items():
            if not (isinstance(value, tuple) and value and value[0] == "tensor"):
                raise ValueError(f"{path}: entry {name!r} is not a tensor")
            _, storage, offset, size, stride = value
            if storage.key not in buffers:
                raw = archive.read(f"{prefix}data/{storage.key}")
                if storage.dtype == "bfloat16":
                    arr = np.frombuffer(raw, dtype="<u2" if byteorder == "little" else ">u2")
                    arr = (arr.astype(np.uint32) << 16).view(np.float32)
                else:
                    dt = np.dtype(storage.dtype).newbyteorder("<" if byteorder == "little" else ">")
                    arr = np.frombuffer(raw, dtype=dt)
                buffers[storage.key] = arr
            flat = buffers[storage.key]
            itemsize = flat.dtype.itemsize
            if size:
                tensor = np.lib.stride_tricks.as_strided(
                    flat[offset:], shape=size, strides=[s * itemsize for s in stride]
                )
            else:
                tensor = flat[offset:offset + 1].reshape(())
            out[name] = np.array(tensor, dtype=tensor.dtype.newbyteorder("="), copy=True)
    return out


# --- mapping ---------------------------------------------------------------


def identity(*arrays):
    """Use the torch tensor as it is."""
    (a,) = arrays
    return a


def conv_kernel(*arrays):
    """Torch Conv1d/Conv2d weight (O, I, *K) -> Keras kernel (*K, I, O)."""
    (w,) = arrays
    return np.transpose(w, tuple(range(2, w.ndim)) + (1, 0))


def conv_transpose_kernel(*arrays):
    """Torch ConvTranspose1d weight (I, O, K) -> Keras Conv1DTranspose kernel (K, O, I)."""
    (w,) = arrays
    return np.transpose(w, tuple(range(2, w.ndim)) + (1, 0))


def linear_kernel(*arrays):
    """Torch Linear weight (out, in) -> Keras Dense kernel (in, out)."""
    (w,) = arrays
    return w.T


def lstm_bias(*arrays):
    """Torch LSTM ``bias_ih + bias_hh`` -> the single Keras LSTM bias (same i, f, g, o gate order)."""
    b_ih, b_hh = arrays
    return b_ih + b_hh


@dataclasses.dataclass
class TorchMapping:
    """One Keras weight filled from one or more torch tensors.

    Attributes:
        keras_weight: the ``keras.Variable`` to assign.
        torch_keys: names of the torch tensors it is computed from.
        transform: function of those tensors (in order) returning the Keras value.
    """

    keras_weight: object
    torch_keys: Sequence[str]
    transform: Callable = identity


def assign_torch_state_dict(model, state_dict, source="<state_dict>", mapping=None):
    """Assign a torch state_dict to ``model`` through its ``torch_weight_map()``.

    Every torch tensor (except ``num_batches_tracked``) must be used, every
    Keras weight of the model must be filled, and every shape must match;
    otherwise :class:`CheckpointMismatchError` lists all problems and no weight
    is changed.

    Args:
        model: a Keras model that implements ``torch_weight_map()`` (or pass
            ``mapping``).
        state_dict: mapping of torch names to numpy arrays.
        source: file name used in error messages.
        mapping: optional list of :class:`TorchMapping` overriding the model's.

    Returns:
        dict with ``assigned`` (number of Keras weights) and ``ignored`` (torch
        keys skipped, e.g. ``num_batches_tracked``).
    """
    if mapping is None:
        if not hasattr(model, "torch_weight_map"):
            raise TypeError(
                f"{type(model).__name__} has no torch_weight_map(); it cannot take PyTorch weights."
            )
        mapping = model.torch_weight_map()
    problems = []  # (kind, detail)
    used = set()
    values = []
    for m in mapping:
        missing = [k for k in m.torch_keys if k not in state_dict]
        if missing:
            problems += [("missing in the file", f"{k} (for {m.keras_weight.path})")
                         for k in missing]
            continue
        used.update(m.torch_keys)
        value = np.asarray(m.transform(*[state_dict[k] for k in m.torch_keys]))
        target = tuple(m.keras_weight.shape)
        if value.shape != target:
            problems.append(("shape mismatches",
                             f"{m.keras_weight.path}: model {target}, file "
                             f"{'+'.join(m.torch_keys)} gives {value.shape}"))
            continue
        values.append((m.keras_weight, value))
    ignored = [k for k in state_dict if k.endswith(IGNORED_SUFFIXES)]
    problems += [("unexpected in the file", k) for k in state_dict
                 if k not in used and k not in ignored]
    mapped_ids = {id(m.keras_weight) for m in mapping}
    problems += [("model weights with no tensor", w.path) for w in model.weights
                 if id(w) not in mapped_ids]
    if len(mapped_ids) != len(mapping):
        problems.append(("weight map errors", "some Keras weight is assigned more than once"))
    if problems:
        raise CheckpointMismatchError(_mismatch_summary(model, state_dict, source, mapping,
                                                        problems), problems)
    for weight, value in values:
        weight.assign(value.astype(weight.dtype))
    return {"assigned": len(values), "ignored": ignored}


def _mismatch_summary(model, state_dict, source, mapping, problems):
    """A short message: the counts, the first five problems and what the file looks like."""
    counts = {}
    for kind, _ in problems:
        counts[kind] = counts.get(kind, 0) + 1
    guess = guess_torch_model(state_dict)
    looks = (f" The file looks like a {guess} checkpoint." if guess and guess != model.name
             else "")
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    return (f"{source} does not match {model.name} ({len(mapping)} model weights, "
            f"{len(state_dict)} tensors in the file): {summary}.{looks} First differences:\n  "
            + "\n  ".join(f"{_TAGS.get(kind, kind)}: {detail}" for kind, detail in problems[:5]))


_TAGS = {"missing in the file": "missing", "shape mismatches": "shape",
         "unexpected in the file": "unexpected", "model weights with no tensor": "unfilled"}


# Distinctive tensor names of the reference models (for a mismatch message).
_SIGNATURES = (
    ("phasenet", ("conv_in.weight", "down_convs.0.conv1.weight", "conv_out.weight")),
    ("eqtransformer", ("encoder.convs.0.conv.weight", "decoders.2.conv_out.weight")),
    ("magnet", ("conv_layers.0.conv.weight", "lstm.weight_ih_l0", "lin.weight")),
    ("distpt_network", ("tcn.conv_in.weight", "lin_ptrvl.weight")),
    ("ditingmotion", ("fuse_polarity.1.weight", "fuse_clarity.1.weight")),
    ("baz_network", ("layers.0.0.weight", "lin1.weight")),
)
# SeisT backbone tensors (out_head excluded) per size.
_SEIST_SIZES = {580: "s", 798: "m", 1250: "l"}


def guess_torch_model(state_dict):
    """The registered model a reference state_dict looks like (``"seist_s_dpk"``), or ``None``.

    Args:
        state_dict: mapping of torch tensor names to arrays.

    Returns:
        A registry name, a pattern such as ``"seist_m_{emg,baz,dis}"`` where the
        tensors cannot tell the heads apart, or ``None``.
    """
    keys = set(state_dict)
    if "stem.0.convs.0.in_proj.weight" in keys:
        body = sum(1 for k in keys if not k.startswith("out_head."))
        size = _SEIST_SIZES.get(body, "?")
        if "out_head.out_conv.weight" in keys:
            head = "dpk"
        elif "out_head.lin.weight" in keys:
            head = "pmp" if np.shape(state_dict["out_head.lin.weight"])[0] == 2 else                 "{emg,baz,dis}"
        else:
            head = "?"
        return f"seist_{size}_{head}"
    for name, needed in _SIGNATURES:
        if all(k in keys for k in needed):
            return name
    return None


def load_torch_checkpoint(model, path):
    """Load a PyTorch ``.pth`` state_dict into a Keras model, strictly.

    Args:
        model: a Keras model implementing ``torch_weight_map()`` (SeisT and the
            baselines in :mod:`utrans.models`).
        path: the ``.pth`` file.

    Returns:
        The same dict as :func:`assign_torch_state_dict`.
    """
    state_dict = read_torch_state_dict(path)
    return assign_torch_state_dict(model, state_dict, source=os.fspath(path))
