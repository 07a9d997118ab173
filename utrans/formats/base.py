"""What the readers share: a lazily opened, per-process HDF5 handle and the record checks."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import h5py
import numpy as np

from utrans.core.errors import BadTraceError, DataFileError
from utrans.formats.metadata import decode_id

logger = logging.getLogger(__name__)

__all__ = ["BaseReader"]


# --------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------


class BaseReader:
    """Common machinery: a lazily opened, per-process HDF5 handle.

    Args:
        path: path of the dataset (file or folder).

    Subclasses implement ``trace_ids``, ``read_waveform``, ``read_metadata`` and
    optionally ``locate``.
    """

    layout = "base"
    #: Whether the format holds traces of any length (SeisBench); in the others
    #: every trace has the same length and one of another length is corrupt.
    variable_length = False

    def __init__(self, path):
        self.path = Path(path)
        self._h5 = {}
        self._pid = None
        self._id_set = None

    # file handles -----------------------------------------------------------
    def _file(self, name=None):
        """Return the open h5py.File for ``name`` (reopened after a fork)."""
        pid = os.getpid()
        if self._pid != pid:
            # handles inherited from a parent process are not used after fork
            self._h5 = {}
            self._pid = pid
        handle = self._h5.get(name)
        if handle is None:
            fname = self._h5_path(name)
            try:
                handle = h5py.File(fname, "r")
            except FileNotFoundError as exc:
                raise FileNotFoundError(f"HDF5 file not found: {fname}") from exc
            except OSError as exc:
                raise DataFileError(fname, f"cannot open as HDF5 (truncated or not an HDF5 "
                                           f"file?): {exc}") from None
            self._h5[name] = handle
        return handle

    def _h5_path(self, name):
        return self.path

    def close(self):
        """Close every open HDF5 handle of this process."""
        if self._pid == os.getpid():
            for handle in self._h5.values():
                try:
                    handle.close()
                except (OSError, ValueError):
                    pass
        self._h5 = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_h5"] = {}
        state["_pid"] = None
        return state

    def __del__(self):
        try:
            self.close()
        except (AttributeError, OSError, TypeError, ValueError):
            pass

    def __len__(self):
        return len(self.trace_ids())

    def __repr__(self):
        return f"{type(self).__name__}('{self.path}')"

    # interface ----------------------------------------------------------------
    def trace_ids(self):
        """All trace IDs of the dataset (list of str)."""
        raise NotImplementedError

    def has_trace(self, trace_id):
        """True when the dataset's index lists ``trace_id`` (no waveform is read).

        Args:
            trace_id: the trace ID (``str`` or ``bytes``).

        Returns:
            bool.
        """
        if self._id_set is None:
            self._id_set = set(self.trace_ids())
        return decode_id(trace_id) in self._id_set

    def read_waveform(self, trace_id):
        """Waveform of one trace, float32 ``(samples, 3)`` in E, N, Z order."""
        raise NotImplementedError

    def read_metadata(self, trace_id):
        """Metadata dict of one trace (unit-bearing keys, see module docstring)."""
        raise NotImplementedError

    def trace_samples(self, trace_id):
        """Samples per component of one trace (readers that can tell it without reading them do).

        Args:
            trace_id: the trace ID (``str`` or ``bytes``).

        Returns:
            int.
        """
        return int(self.read_waveform(trace_id).shape[0])

    def locate(self, trace_id):
        """Byte location of a trace's samples for direct reads, or ``None``.

        Returns:
            ``(file_path, offset, shape, dtype)`` when the samples are stored
            contiguously, uncompressed and already in ``(samples, 3)`` E, N, Z
            order; otherwise ``None`` (use :meth:`read_waveform`).
        """
        return None

    def read(self, trace_id):
        """Read one trace.

        Args:
            trace_id: the trace ID (``str`` or ``bytes``).

        Returns:
            ``(waveform, metadata)``: float32 ``(samples, 3)`` E, N, Z array and dict.

        Raises:
            BadTraceError: the trace is missing or malformed.
        """
        return self.read_waveform(trace_id), self.read_metadata(trace_id)

    def _bad(self, trace_id, reason):
        return BadTraceError(self.path, decode_id(trace_id), reason)

    def _check_dataset(self, trace_id, ds):
        """Check a waveform dataset's dtype and shape before reading its samples."""
        if not isinstance(ds, h5py.Dataset):
            raise self._bad(trace_id, f"expected a waveform dataset. Received: {type(ds).__name__}")
        if ds.dtype.kind not in "fiu":
            raise self._bad(trace_id, f"waveform samples must be numbers. Received: dtype={ds.dtype}")
        if ds.ndim != 2 or ds.shape[1] != 3 or ds.size > _MAX_SAMPLES * 3:
            raise self._bad(trace_id, "waveform must be (samples, 3) with columns E, N, Z. "
                                      f"Received: shape={ds.shape}")
        return ds

    def _read_dataset(self, trace_id, ds, selection=()):
        """Samples of a checked dataset as float32, h5py read errors naming file and trace."""
        try:
            return np.asarray(ds[selection], dtype=np.float32)
        except (OSError, RuntimeError) as exc:
            raise self._bad(trace_id, f"cannot read the waveform samples ({exc})") from None

    def _check_waveform(self, trace_id, arr):
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise self._bad(trace_id, "waveform must be (samples, 3) with columns E, N, Z. "
                                      f"Received: shape={arr.shape}")
        return arr


# Largest number of samples per component accepted for one trace (a corrupt
# shape would otherwise allocate without bound).
_MAX_SAMPLES = 10**8


def _safe_getter(trace_attrs):
    """``get(name)`` over HDF5 attributes: an unreadable attribute reads as missing."""

    def get(name):
        try:
            return trace_attrs[name]
        except (OSError, TypeError, ValueError, KeyError, RuntimeError):  # absent or unreadable
            return None

    return get


def _contiguous_location(ds):
    """Byte offset of an uncompressed contiguous numeric dataset, else None."""
    try:
        if ds.chunks is not None or ds.compression is not None or ds.dtype.kind not in "fiu":
            return None
        offset = ds.id.get_offset()
    except (AttributeError, OSError, ValueError, TypeError, RuntimeError):
        return None
    if offset is None:
        return None
    return int(offset)


