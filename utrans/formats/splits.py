"""Split files (``.npy`` arrays of trace IDs) read without running code.

String and integer arrays are read directly; object arrays go through an
unpickler that rebuilds nothing but numpy arrays, ``str`` and ``bytes``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from utrans.core.errors import SplitFileError, UnsafeSplitError
from utrans.core.safepickle import AllowListUnpickler

__all__ = ["load_split"]


# --------------------------------------------------------------------------
# split files
# --------------------------------------------------------------------------


def _reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"only numpy.ndarray may be rebuilt. Received: {subtype!r}")
    if isinstance(dtype, bytes):
        dtype = dtype.decode("ascii")
    return np.ndarray.__new__(np.ndarray, shape, np.dtype(dtype))


def _string_scalar(dtype, data=b""):
    dtype = np.dtype(dtype)
    if dtype.kind not in "US":
        raise pickle.UnpicklingError(f"only string scalars are allowed. Received: dtype={dtype}")
    return np.frombuffer(bytes(data), dtype=dtype, count=1)[0]


def _latin1_encode(text, encoding="latin1"):
    # Protocol-2 pickles (Python 2, or bytes written with protocol 2) spell
    # bytes as _codecs.encode(text, 'latin1').
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"unexpected bytes encoding. Received: {encoding!r}")
    return text.encode("latin1")


class _SplitUnpickler(AllowListUnpickler):
    """Unpickler of object arrays of strings: numpy array rebuilding, str and bytes, nothing else."""

    allowed = {
        **{(module, "_reconstruct"): _reconstruct
           for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
        **{(module, "scalar"): _string_scalar
           for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    purpose = "a split file holds only an array of trace IDs (strings or integers)"

    def refuse(self, reason):
        return UnsafeSplitError(self.path, reason)


def _read_npy_header(fh, path):
    try:
        version = np.lib.format.read_magic(fh)
    except ValueError:
        raise SplitFileError(path, "not a .npy file (no NumPy magic string); a split file is a "
                                   ".npy array of trace IDs written by numpy.save") from None
    try:
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(fh)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(fh)
    except (ValueError, SyntaxError, TypeError) as exc:
        raise SplitFileError(path, f"corrupt .npy header ({exc})") from None
    raise SplitFileError(path, f"unsupported .npy format version. Received: version={version}")


def _split_values(path):
    """The array stored in a split ``.npy`` file, read without running code."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        shape, fortran, dtype = _read_npy_header(fh, path)
        if len(shape) != 1:
            raise SplitFileError(path, "a split file must hold a 1-D array of trace IDs. "
                                       f"Received: shape={shape}")
        if dtype.hasobject:
            if dtype.kind != "O":
                raise SplitFileError(path, f"unsupported dtype. Received: dtype={dtype}")
            try:
                arr = _SplitUnpickler(fh, path).load()
            except UnsafeSplitError:
                raise
            except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                    IndexError, KeyError, OverflowError, MemoryError, RecursionError) as exc:
                raise SplitFileError(path, f"corrupt or truncated object array "
                                           f"({type(exc).__name__}: {exc})") from None
            if not isinstance(arr, np.ndarray) or arr.dtype.kind != "O" or arr.shape != shape:
                raise SplitFileError(path, "the pickle does not hold the object array its header "
                                           f"announces. Received: {type(arr).__name__} "
                                           f"shape={getattr(arr, 'shape', None)}")
            return arr
        if dtype.kind not in "USiu":
            raise SplitFileError(path, "trace IDs must be strings or integers. "
                                       f"Received: dtype={dtype}")
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = count * dtype.itemsize
        if nbytes > size - fh.tell():
            raise SplitFileError(path, f"truncated: the header announces {count} IDs "
                                       f"({nbytes} bytes), the file holds {size - fh.tell()} bytes")
        return np.frombuffer(fh.read(nbytes), dtype=dtype, count=count)


def load_split(path):
    """Load a split file (``.npy`` array of trace IDs) as a list of ``str``, running no code.

    String (``U``/``S``) and integer arrays are read directly. Object arrays
    (``np.save`` of a list of ``str``/``bytes`` with ``allow_pickle=True``) are
    unpickled by an unpickler that rebuilds only numpy arrays, ``str`` and
    ``bytes``; any other pickled object is refused before it runs.

    Args:
        path: path of the ``.npy`` file.

    Returns:
        list of trace IDs (``str``), in file order (duplicates kept).

    Raises:
        FileNotFoundError: the file does not exist.
        UnsafeSplitError: the pickle of an object array names a global other
            than numpy array rebuilding.
        SplitFileError: not a ``.npy`` file, truncated, not 1-D, empty, an
            unsupported dtype, or an element that is not a non-empty string or
            integer (naming the file and the position).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Split file not found: {path}")
    if not path.is_file():
        raise SplitFileError(path, "a split file must be a .npy file, not a folder")
    try:
        arr = _split_values(path)
    except OSError as exc:
        raise SplitFileError(path, f"cannot read the file ({exc})") from None
    if arr.size == 0:
        raise SplitFileError(path, f"the file holds no trace IDs. Received: shape={arr.shape}")
    ids = []
    for pos, value in enumerate(arr):
        if arr.dtype.kind in "iu":
            ids.append(str(int(value)))
            continue
        if isinstance(value, (bytes, np.bytes_)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise SplitFileError(path, f"trace ID at position {pos} is not UTF-8. "
                                           f"Received: {bytes(value)[:40]!r}") from None
        if not isinstance(value, str):
            raise SplitFileError(path, f"trace ID at position {pos} is not a string. "
                                       f"Received: {type(value).__name__} {value!r:.60}")
        if not value.strip():
            raise SplitFileError(path, f"trace ID at position {pos} is empty. Received: {value!r}")
        ids.append(str(value))
    return ids


