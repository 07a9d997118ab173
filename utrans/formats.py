"""Readers for the seismic waveform layouts users already have on disk.

Three layouts are understood (see ``docs/DATA_FORMATS.md``):

* the STEAD merged file (``data/<trace_name>`` datasets carrying attributes,
  optionally a CSV with the same columns beside it);
* the U-Trans "DataCollected" file (one group per trace at the root holding a
  ``data`` dataset, metadata as group attributes);
* SeisBench WaveformDatasets (a folder with ``metadata.csv`` and
  ``waveforms.hdf5``, plain or bucketed traces, optional chunks).

:func:`open_dataset` detects the layout and returns a reader. Every reader
returns the same record for a trace: the waveform as a float32 array of shape
``(samples, 3)`` with columns **E, N, Z** (the STEAD order; sources stored in
another order are reordered), and a metadata dict whose keys carry entity and
unit, SeisBench style:

========================== ===================================================
key                        meaning
========================== ===================================================
``trace_name``             the trace ID used by the reader
``trace_category``         ``'earthquake'`` or ``'noise'``
``trace_category_raw``     category as stored (``'earthquake_local'``, ...)
``trace_p_arrival_sample`` P pick (float sample index, NaN when absent)
``trace_s_arrival_sample`` S pick (float sample index, NaN when absent)
``trace_coda_end_sample``  coda end (float sample index, NaN when absent)
``trace_snr_db``           float64 array of 3 values (NaN when absent)
``trace_sampling_rate_hz`` sampling rate (100.0 unless the source says otherwise)
``trace_p_polarity``       ``'positive'``, ``'negative'`` or ``None``
``trace_start_time``       string or ``None``
``source_latitude_deg``    event latitude (NaN when absent)
``source_longitude_deg``   event longitude
``source_depth_km``        event depth as stored (may be negative; NaN when absent)
``source_magnitude``       magnitude (NaN when absent)
``source_magnitude_type``  string or ``None``
``source_id``              string or ``None``
``station_latitude_deg``   station latitude
``station_longitude_deg``  station longitude
``station_elevation_m``    station elevation (NaN when absent)
``station_code``           string or ``None``
``station_network_code``   string or ``None``
``path_ep_distance_km``    epicentral distance, WGS84 geodesic from coordinates
``path_back_azimuth_deg``  back-azimuth at the station towards the event,
                           recomputed from coordinates (WGS84 geodesic)
``path_back_azimuth_deg_reported``  the back-azimuth stored in the file, if any
========================== ===================================================

Missing numbers are ``NaN`` (the strings ``'None'``, ``''`` and ``'nan'`` are
read as missing); missing strings are ``None``. Array-valued quirks
(``snr_db`` as three values, ``coda_end_sample`` as ``[[2896.]]``) are
flattened. Depths are returned as stored; clipping negative depths to 0 is
the location labeller's job.

Errors name the file (and the trace): :class:`BadTraceError` for one unusable
trace, :class:`DataFileError` for a file that cannot be read or has the wrong
structure (truncated HDF5, unparsable CSV, unknown layout), and
:class:`SplitFileError` for a split file; all are :class:`DataError`, a
``ValueError``, with a one-line message. Readers return metadata as stored;
:func:`metadata_problems` checks the values a task uses against
:data:`METADATA_RANGES` (coordinates, depth, magnitude, back-azimuth,
distance, pick samples within the trace, S after P, polarity values).

Split files are read by :func:`load_split` without running code: string and
integer ``.npy`` arrays directly, object arrays through an unpickler that
rebuilds nothing but numpy arrays, ``str`` and ``bytes``.

Readers keep one HDF5 handle open (opened lazily, once per process, so they
survive ``fork`` in multiprocessing workers) and expose, besides
:meth:`~BaseReader.read`, the cheaper :meth:`~BaseReader.read_waveform`,
:meth:`~BaseReader.read_metadata` and :meth:`~BaseReader.locate` (byte offset
of an uncompressed contiguous waveform, which the data generator uses to read
samples with a single ``pread``).
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import re
from pathlib import Path

import h5py
import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "METADATA_RANGES",
    "METADATA_VALUES",
    "BadTraceError",
    "BaseReader",
    "DataCollectedReader",
    "DataError",
    "DataFileError",
    "SeisBenchReader",
    "SplitFileError",
    "SteadReader",
    "UnsafeSplitError",
    "detect_layout",
    "geodesic_distance_azimuth",
    "load_split",
    "is_missing",
    "metadata_problems",
    "open_dataset",
]

CHANNEL_ORDER = "ENZ"

_MISSING_STRINGS = {"", "none", "nan", "null", "n/a", "na"}


def _one_line(text):
    """Collapse whitespace (newlines of nested errors included) to single spaces."""
    return " ".join(str(text).split())


class DataError(ValueError):
    """Base class of the data layer's errors; every one names the file it concerns."""


class BadTraceError(DataError):
    """A trace cannot be used: missing, wrong shape, non-finite or incomplete metadata.

    The message is one line: ``<file>: trace '<id>': <reason>``.

    Args:
        file: path of the file holding the trace.
        trace_id: the trace ID.
        reason: what is wrong, echoing the received value.
    """

    def __init__(self, file, trace_id, reason):
        self.file = str(file)
        self.trace_id = str(trace_id)
        self.reason = _one_line(reason)
        super().__init__(f"{self.file}: trace '{self.trace_id}': {self.reason}")

    def __reduce__(self):
        return (type(self), (self.file, self.trace_id, self.reason))


class DataFileError(DataError):
    """A dataset file (HDF5, CSV, split) cannot be read or has the wrong structure.

    The message is one line: ``<file>: <reason>``.

    Args:
        file: path of the file.
        reason: what is wrong, echoing the received value.
    """

    def __init__(self, file, reason):
        self.file = str(file)
        self.reason = _one_line(reason)
        super().__init__(f"{self.file}: {self.reason}")

    def __reduce__(self):
        return (type(self), (self.file, self.reason))


class SplitFileError(DataFileError):
    """A split file (``.npy`` of trace IDs) is unreadable, empty or of the wrong type."""


class UnsafeSplitError(SplitFileError):
    """A split file's pickle asks for something other than an array of strings."""


# --------------------------------------------------------------------------
# value coercion helpers
# --------------------------------------------------------------------------


def _to_str(value):
    """Decode bytes / numpy scalars / 1-element arrays to ``str`` or ``None``."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return None
        value = value.reshape(-1)[0]
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, float) and math.isnan(value):
        return None
    value = str(value).strip()
    if value.lower() in _MISSING_STRINGS:
        return None
    return value


def _to_float(value):
    """Read a scalar that may be a float, a 1-element (nested) array, a string or 'None'.

    Anything that is not a number (compound or opaque HDF5 types, complex
    values, text that does not parse) reads as NaN, i.e. missing.
    """
    if value is None:
        return math.nan
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return math.nan
        value = value.reshape(-1)[0]
    if isinstance(value, (bytes, np.bytes_, str)):
        text = _to_str(value)
        if text is None:
            return math.nan
        text = text.strip("[]() ")
        if not text:
            return math.nan
        value = text.replace("|", " ").split()[0].rstrip(",")
    if isinstance(value, (complex, np.complexfloating, np.void)):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _to_float3(value):
    """Read a 3-vector (``snr_db``) from an array, a string ``'[a b c]'``/``'a|b|c'`` or a scalar."""
    out = np.full(3, np.nan)
    if value is None:
        return out
    if isinstance(value, (bytes, np.bytes_, str)) or (
        isinstance(value, np.ndarray) and value.dtype.kind in "SUO"
    ):
        text = _to_str(value)
        if text is None:
            return out
        parts = [p for p in re.split(r"[\s,|\[\]()]+", text) if p]
        value = [_to_float(p) for p in parts]
    if np.iscomplexobj(value):
        return out
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        return out
    if arr.size == 1:
        out[:] = arr[0]
    elif arr.size >= 3:
        out[:] = arr[:3]
    elif arr.size == 2:
        out[:2] = arr
    return out


def _polarity(value):
    text = _to_str(value)
    if text is None:
        return None
    t = text.lower()
    if t in ("u", "up", "positive", "+", "c", "compression", "1"):
        return "positive"
    if t in ("d", "down", "negative", "-", "dilatation", "0", "-1"):
        return "negative"
    return None


def _category(raw, p_sample=math.nan):
    text = _to_str(raw)
    if text is None:
        return ("earthquake" if np.isfinite(p_sample) else "noise"), None
    if "noise" in text.lower():
        return "noise", text
    return "earthquake", text


def _coordinate_problem(name, value, lo, hi, hi_open=False):
    """A description of an out-of-range coordinate, or ``None`` when it is valid."""
    ok = lo <= value < hi if hi_open else lo <= value <= hi
    if ok:
        return None
    bracket = ")" if hi_open else "]"
    return f"{name} must be in [{lo:g}, {hi:g}{bracket}. Received: {name}={value!r}"


def geodesic_distance_azimuth(event_lat, event_lon, station_lat, station_lon):
    """WGS84 geodesic epicentral distance and back-azimuth.

    Args:
        event_lat: event latitude (deg, in [-90, 90]).
        event_lon: event longitude (deg, in [-180, 360)).
        station_lat: station latitude (deg).
        station_lon: station longitude (deg).

    Returns:
        ``(distance_km, back_azimuth_deg)``; the back-azimuth is measured at
        the station, clockwise from north, pointing towards the event. NaN when
        any coordinate is missing (NaN).

    Raises:
        ValueError: a coordinate is infinite or out of range (echoing it).
    """
    vals = {"event_lat": event_lat, "event_lon": event_lon,
            "station_lat": station_lat, "station_lon": station_lon}
    vals = {k: float(v) for k, v in vals.items()}
    if any(math.isnan(v) for v in vals.values()):
        return math.nan, math.nan
    for name, value in vals.items():
        problem = (_coordinate_problem(name, value, -90.0, 90.0) if name.endswith("lat")
                   else _coordinate_problem(name, value, -180.0, 360.0, hi_open=True))
        if problem:
            raise ValueError(f"geodesic_distance_azimuth: {problem}")
    from obspy.geodetics import gps2dist_azimuth

    dist_m, _az, baz = gps2dist_azimuth(vals["event_lat"], vals["event_lon"],
                                        vals["station_lat"], vals["station_lon"])
    return dist_m / 1000.0, float(baz)


def _finish(meta):
    """Fill derived path fields and defaults in a metadata dict (in place).

    Coordinates out of range leave the derived path fields NaN (missing);
    :func:`metadata_problems` then names the coordinate at fault.
    """
    try:
        dist, baz = geodesic_distance_azimuth(
            meta.get("source_latitude_deg", math.nan), meta.get("source_longitude_deg", math.nan),
            meta.get("station_latitude_deg", math.nan), meta.get("station_longitude_deg", math.nan))
    except ValueError:
        dist, baz = math.nan, math.nan
    if np.isfinite(dist) or not np.isfinite(meta.get("path_ep_distance_km", math.nan)):
        meta["path_ep_distance_km"] = dist
    meta["path_back_azimuth_deg"] = baz
    meta.setdefault("path_back_azimuth_deg_reported", math.nan)
    meta.setdefault("trace_sampling_rate_hz", 100.0)
    meta.setdefault("trace_p_polarity", None)
    meta.setdefault("trace_start_time", None)
    meta.setdefault("source_id", None)
    meta.setdefault("source_magnitude_type", None)
    meta.setdefault("station_code", None)
    meta.setdefault("station_network_code", None)
    meta.setdefault("station_elevation_m", math.nan)
    for key in ("source_latitude_deg", "source_longitude_deg", "source_depth_km",
                "source_magnitude", "station_latitude_deg", "station_longitude_deg",
                "trace_p_arrival_sample", "trace_s_arrival_sample", "trace_coda_end_sample"):
        meta.setdefault(key, math.nan)
    meta.setdefault("trace_snr_db", np.full(3, np.nan))
    return meta


# --------------------------------------------------------------------------
# metadata validation
# --------------------------------------------------------------------------

#: Valid ranges of the metadata that labellers and augmentation steps use,
#: keyed by metadata name: ``(low, high, brackets)``, ``brackets`` one of
#: ``'[]'``, ``'[)'``, ``'(]'``, ``'()'``; ``None`` leaves a side open and
#: ``'samples'`` stands for the trace length. Depths between -10 and 0 km
#: (stations above sea level, as in the DataCollected files) are valid; the
#: location labeller clips them to 0.
METADATA_RANGES = {
    "source_latitude_deg": (-90.0, 90.0, "[]"),
    "source_longitude_deg": (-180.0, 360.0, "[)"),
    "station_latitude_deg": (-90.0, 90.0, "[]"),
    "station_longitude_deg": (-180.0, 360.0, "[)"),
    "source_depth_km": (-10.0, 800.0, "[]"),
    "source_magnitude": (-3.0, 10.0, "[]"),
    "path_back_azimuth_deg": (0.0, 360.0, "[]"),
    "path_ep_distance_km": (0.0, 20040.0, "[]"),
    "trace_sampling_rate_hz": (0.0, None, "()"),
    "trace_p_arrival_sample": (0.0, "samples", "[)"),
    "trace_s_arrival_sample": (0.0, "samples", "[)"),
    "trace_coda_end_sample": (0.0, None, "[)"),
}

#: Allowed values of text metadata, keyed by metadata name.
METADATA_VALUES = {
    "trace_p_polarity": ("positive", "negative"),
    "trace_category": ("earthquake", "noise"),
}

# Derived fields and the stored fields they are computed from.
_DERIVED_FROM = {
    "path_back_azimuth_deg": ("source_latitude_deg", "source_longitude_deg",
                              "station_latitude_deg", "station_longitude_deg"),
    "path_ep_distance_km": ("source_latitude_deg", "source_longitude_deg",
                            "station_latitude_deg", "station_longitude_deg"),
}


def is_missing(value):
    """True for ``None``, NaN / inf numbers and empty strings (a missing metadata value).

    Args:
        value: a metadata value.

    Returns:
        bool.
    """
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return not math.isfinite(value)
    if isinstance(value, str):
        return value == ""
    return False


def _range_problem(key, value, samples):
    low, high, brackets = METADATA_RANGES[key]
    if high == "samples":
        high = samples
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        return f"{key} is not a number. Received: {key}={value!r}"
    ok = True
    if low is not None:
        ok &= v > low if brackets[0] == "(" else v >= low
    if high is not None:
        ok &= v < high if brackets[1] == ")" else v <= high
    if ok:
        return None
    lo_txt = "-inf" if low is None else f"{low:g}"
    hi_txt = "inf" if high is None else f"{high:g}"
    return f"{key} must be in {brackets[0]}{lo_txt}, {hi_txt}{brackets[1]}. Received: {key}={value!r}"


def metadata_problems(meta, required=(), optional=(), *, samples=None):
    """Check the metadata a task uses against :data:`METADATA_RANGES` / :data:`METADATA_VALUES`.

    Args:
        meta: a metadata dict as returned by a reader.
        required: keys that must be present and valid.
        optional: keys that must be valid when present (e.g. picks that an
            augmentation step moves).
        samples: trace length in samples, the bound of pick samples (``None``
            checks only that picks are not negative).

    Returns:
        list of one-line problem descriptions (empty when the metadata is usable),
        each echoing the received value.
    """
    problems = []
    missing = []
    checked = {}
    for key, needed in [(k, True) for k in required] + [(k, False) for k in optional]:
        if key in checked:
            continue
        value = meta.get(key)
        checked[key] = value
        if is_missing(value):
            if not needed:
                continue
            causes = [p for src in _DERIVED_FROM.get(key, ())
                      if src in METADATA_RANGES and not is_missing(meta.get(src))
                      for p in [_range_problem(src, meta.get(src), samples)] if p]
            if causes:
                problems.append(f"{key} cannot be computed: " + "; ".join(causes))
            elif key in METADATA_VALUES and meta.get(key + "_raw") is not None:
                problems.append(f"{key} must be one of {', '.join(METADATA_VALUES[key])}. "
                                f"Received: {key}={meta.get(key + '_raw')!r}")
            else:
                missing.append(f"{key} (Received: {value!r})")
            continue
        if key in METADATA_VALUES:
            if value not in METADATA_VALUES[key]:
                problems.append(f"{key} must be one of {', '.join(METADATA_VALUES[key])}. "
                                f"Received: {key}={value!r}")
        elif key in METADATA_RANGES:
            problem = _range_problem(key, value, samples)
            if problem:
                problems.append(problem)
    p, s = checked.get("trace_p_arrival_sample"), checked.get("trace_s_arrival_sample")
    if not is_missing(p) and not is_missing(s):
        try:
            if not float(s) > float(p):
                problems.append("S must come after P. Received: trace_p_arrival_sample="
                                f"{p!r}, trace_s_arrival_sample={s!r}")
        except (TypeError, ValueError):
            pass
    if missing:
        problems.insert(0, "missing " + ", ".join(missing))
    return problems


# --------------------------------------------------------------------------
# split files
# --------------------------------------------------------------------------


def _decode_id(value):
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


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


class _SplitUnpickler(pickle.Unpickler):
    """Unpickler of object arrays of strings: numpy array rebuilding, str and bytes, nothing else.

    The same approach as the ``.pth`` reader of :mod:`utrans.convert.pytorch`:
    every global the pickle names is looked up in an allow-list, so a pickled
    ``os.system`` (or any other callable) is refused before anything runs.
    """

    _ALLOWED = {}
    for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        _ALLOWED[(_mod, "_reconstruct")] = _reconstruct
        _ALLOWED[(_mod, "scalar")] = _string_scalar
    _ALLOWED[("numpy", "ndarray")] = np.ndarray
    _ALLOWED[("numpy", "dtype")] = np.dtype
    _ALLOWED[("_codecs", "encode")] = _latin1_encode
    del _mod

    def __init__(self, file, path):
        super().__init__(file)
        self._path = path

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        raise UnsafeSplitError(self._path, f"refusing to load global {module}.{name}; a split file "
                                           "holds only an array of trace IDs (strings or integers)")

    def persistent_load(self, pid):
        raise UnsafeSplitError(self._path, f"unexpected persistent id in pickle. Received: {pid!r}")


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
        return _decode_id(trace_id) in self._id_set

    def read_waveform(self, trace_id):
        """Waveform of one trace, float32 ``(samples, 3)`` in E, N, Z order."""
        raise NotImplementedError

    def read_metadata(self, trace_id):
        """Metadata dict of one trace (unit-bearing keys, see module docstring)."""
        raise NotImplementedError

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
        return BadTraceError(self.path, _decode_id(trace_id), reason)

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


class DataCollectedReader(BaseReader):
    """Reader for the U-Trans "DataCollected" layout (one group per trace).

    Args:
        path: path of the HDF5 file.
    """

    layout = "datacollected"

    def __init__(self, path):
        super().__init__(path)
        self._ids = None

    def trace_ids(self):
        if self._ids is None:
            f = self._file()
            try:
                self._ids = [k for k in f.keys() if f.get(k, getclass=True) is h5py.Group]
            except (OSError, RuntimeError, KeyError) as exc:
                raise DataFileError(self.path, f"cannot list the trace groups ({exc})") from None
        return list(self._ids)

    def _group(self, trace_id):
        key = _decode_id(trace_id)
        if not key or key == "." or "/" in key:
            raise self._bad(key, "trace ID not found in file")
        try:
            obj = self._file().get(key)
            if obj is None:
                raise self._bad(key, "trace ID not found in file")
            if not isinstance(obj, h5py.Group) or "data" not in obj:
                raise self._bad(key, "expected a group holding a 'data' dataset. "
                                     f"Received: {type(obj).__name__}")
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            if isinstance(exc, (DataError, FileNotFoundError)):
                raise
            raise self._bad(key, f"cannot read the trace's group ({exc})") from None
        return obj

    def _data(self, trace_id):
        grp = self._group(trace_id)
        try:
            ds = grp["data"]
        except (OSError, RuntimeError, KeyError) as exc:
            raise self._bad(trace_id, f"cannot open the 'data' dataset ({exc})") from None
        return self._check_dataset(trace_id, ds)

    def read_waveform(self, trace_id):
        ds = self._data(trace_id)
        return self._check_waveform(trace_id, self._read_dataset(trace_id, ds))

    def locate(self, trace_id):
        ds = self._data(trace_id)
        off = _contiguous_location(ds)
        if off is None or ds.ndim != 2 or ds.shape[1] != 3:
            return None
        return (str(self.path), off, tuple(ds.shape), np.dtype(ds.dtype))

    def read_metadata(self, trace_id):
        grp = self._group(trace_id)
        g = _safe_getter(grp.attrs)
        p = _to_float(g("p_arrival_sample"))
        category, raw = _category(g("data_category"), p)
        meta = {
            "trace_name": _decode_id(trace_id),
            "trace_category": category,
            "trace_category_raw": raw,
            "trace_p_arrival_sample": p,
            "trace_s_arrival_sample": _to_float(g("s_arrival_sample")),
            "trace_coda_end_sample": _to_float(g("coda_end_sample")),
            "trace_snr_db": _to_float3(g("snr_db")),
            "trace_p_polarity": _polarity(g("P_polarity")),
            "trace_p_polarity_raw": _to_str(g("P_polarity")),
            "source_magnitude": _to_float(g("magnitude")),
            "source_magnitude_type": _to_str(g("magnitude_type")),
            "source_depth_km": _to_float(g("depth")),
            "source_latitude_deg": _to_float(g("event_lat")),
            "source_longitude_deg": _to_float(g("event_long")),
            "station_latitude_deg": _to_float(g("station_lat")),
            "station_longitude_deg": _to_float(g("station_long")),
            "dataset_name": _to_str(g("AI_Set")),
        }
        return _finish(meta)


_STEAD_MAP = {
    "receiver_latitude": ("station_latitude_deg", _to_float),
    "receiver_longitude": ("station_longitude_deg", _to_float),
    "receiver_elevation_m": ("station_elevation_m", _to_float),
    "receiver_code": ("station_code", _to_str),
    "network_code": ("station_network_code", _to_str),
    "receiver_type": ("station_channel_type", _to_str),
    "p_arrival_sample": ("trace_p_arrival_sample", _to_float),
    "p_status": ("trace_p_status", _to_str),
    "p_weight": ("trace_p_weight", _to_float),
    "p_travel_sec": ("path_p_travel_sec", _to_float),
    "s_arrival_sample": ("trace_s_arrival_sample", _to_float),
    "s_status": ("trace_s_status", _to_str),
    "s_weight": ("trace_s_weight", _to_float),
    "source_id": ("source_id", _to_str),
    "source_origin_time": ("source_origin_time", _to_str),
    "source_origin_uncertainty_sec": ("source_origin_uncertainty_sec", _to_float),
    "source_latitude": ("source_latitude_deg", _to_float),
    "source_longitude": ("source_longitude_deg", _to_float),
    "source_error_sec": ("source_error_sec", _to_float),
    "source_gap_deg": ("source_gap_deg", _to_float),
    "source_horizontal_uncertainty_km": ("source_horizontal_uncertainty_km", _to_float),
    "source_depth_km": ("source_depth_km", _to_float),
    "source_depth_uncertainty_km": ("source_depth_uncertainty_km", _to_float),
    "source_magnitude": ("source_magnitude", _to_float),
    "source_magnitude_type": ("source_magnitude_type", _to_str),
    "source_magnitude_author": ("source_magnitude_author", _to_str),
    "source_mechanism_strike_dip_rake": ("source_mechanism_strike_dip_rake", _to_str),
    "source_distance_deg": ("path_ep_distance_deg", _to_float),
    "source_distance_km": ("path_ep_distance_km_reported", _to_float),
    "back_azimuth_deg": ("path_back_azimuth_deg_reported", _to_float),
    "snr_db": ("trace_snr_db", _to_float3),
    "coda_end_sample": ("trace_coda_end_sample", _to_float),
    "trace_start_time": ("trace_start_time", _to_str),
}


class _TableRows:
    """Per-row access to a metadata table without pandas' per-row cost.

    One numpy array per column and a ``trace ID -> row`` dict; a row is read
    through ``getter(trace_id)(column)``.
    """

    def __init__(self, table):
        self.index = {str(k): i for i, k in enumerate(table.index)}
        self.columns = {str(c): table[c].to_numpy() for c in table.columns}

    def getter(self, key):
        """``get(column)`` for the row of ``key`` (``None`` when absent), or ``None``."""
        pos = self.index.get(key)
        if pos is None:
            return None
        columns = self.columns

        def get(column):
            col = columns.get(column)
            return None if col is None else col[pos]

        return get


def _read_csv(path):
    """Read a metadata CSV; parse errors name the file."""
    import pandas as pd

    try:
        return pd.read_csv(path, low_memory=False, dtype={"trace_name": str})
    except (ValueError, OSError) as exc:  # pandas ParserError / EmptyDataError / UnicodeDecodeError
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataFileError(path, f"cannot parse the metadata CSV ({type(exc).__name__}: {exc})") from None


def _stead_meta(trace_id, get):
    meta = {"trace_name": _decode_id(trace_id)}
    for src, (dst, conv) in _STEAD_MAP.items():
        meta[dst] = conv(get(src))
    meta["trace_category"], meta["trace_category_raw"] = _category(
        get("trace_category"), meta["trace_p_arrival_sample"])
    meta["path_ep_distance_km"] = meta["path_ep_distance_km_reported"]
    return _finish(meta)


class SteadReader(BaseReader):
    """Reader for the STEAD merged layout (``data/<trace_name>`` datasets with attributes).

    Args:
        path: path of the HDF5 file.
        csv: optional CSV with the same columns. When given (or found beside the
            HDF5 file with the same stem) trace IDs and metadata are read from it,
            which is much faster than reading HDF5 attributes.
    """

    layout = "stead"

    def __init__(self, path, csv=None):
        super().__init__(path)
        if csv is None:
            cand = Path(path).with_suffix(".csv")
            csv = cand if cand.exists() else None
        self.csv = Path(csv) if csv is not None else None
        self._table = None
        self._rows = None
        self._ids = None

    def _csv_table(self):
        if self._table is None and self.csv is not None:
            import pandas as pd

            df = _read_csv(self.csv)
            if "trace_name" not in df.columns:
                raise DataFileError(self.csv, "no 'trace_name' column. "
                                              f"Received: columns={list(df.columns)[:10]}")
            table = df.set_index("trace_name", drop=False)
            dup = table.index.duplicated()
            if dup.any():
                logger.warning("%s: %d repeated trace_name rows; the first of each is used",
                               self.csv, int(dup.sum()))
            self._table = table[~dup]
            self._rows = _TableRows(self._table)
        return self._table

    def _data_group(self):
        f = self._file()
        try:
            grp = f["data"] if "data" in f else None
        except (OSError, RuntimeError, KeyError) as exc:
            raise DataFileError(self.path, f"cannot open the 'data' group ({exc})") from None
        if not isinstance(grp, h5py.Group):
            raise DataFileError(self.path, "no 'data' group: not a STEAD file")
        return grp

    def trace_ids(self):
        if self._ids is None:
            table = self._csv_table()
            if table is not None:
                self._ids = [str(v) for v in table.index]
            else:
                try:
                    self._ids = list(self._data_group().keys())
                except (OSError, RuntimeError) as exc:
                    raise DataFileError(self.path, f"cannot list the traces ({exc})") from None
        return list(self._ids)

    def has_trace(self, trace_id):
        key = _decode_id(trace_id)
        if BaseReader.has_trace(self, key):
            return True
        if self.csv is None or not key or key == "." or "/" in key:
            return False
        # listed in the HDF5 file but not in the CSV: read_metadata uses the attributes
        try:
            return isinstance(self._data_group().get(key), h5py.Dataset)
        except (OSError, RuntimeError, KeyError, ValueError):
            return False

    def _dataset(self, trace_id):
        key = _decode_id(trace_id)
        if not key or key == "." or "/" in key:
            raise self._bad(key, "trace ID not found in file")
        grp = self._data_group()
        try:
            obj = grp.get(key)
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            raise self._bad(key, f"cannot open the trace's dataset ({exc})") from None
        if obj is None:
            raise self._bad(key, "trace ID not found in file")
        if not isinstance(obj, h5py.Dataset):
            raise self._bad(key, f"expected a dataset. Received: {type(obj).__name__}")
        return obj

    def read_waveform(self, trace_id):
        ds = self._check_dataset(trace_id, self._dataset(trace_id))
        return self._check_waveform(trace_id, self._read_dataset(trace_id, ds))

    def locate(self, trace_id):
        ds = self._check_dataset(trace_id, self._dataset(trace_id))
        off = _contiguous_location(ds)
        if off is None or ds.ndim != 2 or ds.shape[1] != 3:
            return None
        return (str(self.path), off, tuple(ds.shape), np.dtype(ds.dtype))

    def read_metadata(self, trace_id):
        key = _decode_id(trace_id)
        get = self._rows.getter(key) if self._csv_table() is not None else None
        if get is not None:
            return _stead_meta(key, get)
        return _stead_meta(key, _safe_getter(self._dataset(key).attrs))


_BUCKET_RE = re.compile(r"^(?P<bucket>[^$]+)\$(?P<index>\d+)(?P<rest>(,.*)?)$")


def _parse_slice(text):
    text = text.strip()
    if text == ":" or text == "":
        return slice(None)
    if ":" in text:
        a, b = text.split(":", 1)
        return slice(int(a) if a.strip() else None, int(b) if b.strip() else None)
    return int(text)


class SeisBenchReader(BaseReader):
    """Reader for SeisBench WaveformDatasets (``metadata.csv`` + ``waveforms.hdf5``).

    Handles chunked datasets (``chunks`` file, ``metadata{chunk}.csv``,
    ``waveforms{chunk}.hdf5``), bucketed traces (``bucketN$i,:C,:W``), the
    ``data_format`` group (``dimension_order``, ``component_order``) and reorders
    components to E, N, Z. Waveforms are not resampled: check
    ``trace_sampling_rate_hz``.

    Args:
        path: the dataset folder (or its ``metadata.csv`` / ``waveforms.hdf5``).
        component_order: override the component order stored in the file.
        dimension_order: override the dimension order stored in the file.
    """

    layout = "seisbench"

    def __init__(self, path, component_order=None, dimension_order=None):
        path = Path(path)
        if path.is_file():
            path = path.parent
        super().__init__(path)
        if not path.exists():
            raise FileNotFoundError(f"SeisBench dataset folder not found: {path}")
        chunks_file = path / "chunks"
        if chunks_file.exists():
            try:
                text = chunks_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise DataFileError(chunks_file, f"cannot read the chunks file ({exc})") from None
            chunks = [c.strip() for c in text.splitlines() if c.strip()]
        else:
            chunks = [""]
        if not chunks:
            raise DataFileError(chunks_file, "the chunks file lists no chunk")
        self.chunks = chunks
        self._component_order = component_order
        self._dimension_order = dimension_order
        self._formats = {}
        import pandas as pd

        frames = []
        for chunk in chunks:
            mfile = path / f"metadata{chunk}.csv"
            if not mfile.exists():
                raise FileNotFoundError(f"SeisBench metadata file not found: {mfile}")
            df = _read_csv(mfile)
            if "trace_name" not in df.columns:
                raise DataFileError(mfile, "no 'trace_name' column. "
                                           f"Received: columns={list(df.columns)[:10]}")
            df["_chunk"] = chunk
            frames.append(df)
        table = pd.concat(frames, ignore_index=True)
        # Unique key: trace_name, or trace_name plus chunk when names repeat.
        names = table["trace_name"].astype(str)
        if names.duplicated().any():
            names = names.where(~names.duplicated(keep=False), names + "@" + table["_chunk"].astype(str))
        dup = names.duplicated(keep="first")
        if dup.any():
            logger.warning("%s: %d repeated trace_name rows within a chunk; the first of each is used",
                           path, int(dup.sum()))
            table, names = table[~dup], names[~dup]
        table.index = names
        self._table = table
        self._rows = _TableRows(table)

    def _h5_path(self, name):
        return self.path / f"waveforms{name or ''}.hdf5"

    def trace_ids(self):
        return [str(v) for v in self._table.index]

    def split_ids(self, split):
        """Trace IDs whose ``split`` column equals ``split`` (``'train'``, ``'dev'``, ``'test'``)."""
        if "split" not in self._table.columns:
            raise ValueError(f"{self.path}: metadata has no 'split' column")
        return [str(v) for v in self._table.index[self._table["split"] == split]]

    def _format(self, chunk):
        fmt = self._formats.get(chunk)
        if fmt is None:
            f = self._file(chunk)
            dim = self._dimension_order
            comp = self._component_order
            try:
                if "data_format" in f:
                    g = f["data_format"]
                    if dim is None and "dimension_order" in g:
                        dim = _to_str(g["dimension_order"][()])
                    if comp is None and "component_order" in g:
                        comp = _to_str(g["component_order"][()])
            except (OSError, RuntimeError, KeyError, TypeError) as exc:
                raise DataFileError(self._h5_path(chunk), f"cannot read the data_format group ({exc})") from None
            dim = (dim or "CW").upper()
            comp = (comp or "ZNE").upper()
            if sorted(dim) != ["C", "W"]:
                raise DataFileError(self._h5_path(chunk), f"unsupported dimension_order. Received: {dim!r}")
            if sorted(comp) != ["E", "N", "Z"]:
                raise DataFileError(
                    self._h5_path(chunk), "component_order must be a permutation of 'ENZ' "
                    f"(pass component_order= to override). Received: {comp!r}")
            perm = np.array([comp.index(c) for c in CHANNEL_ORDER])
            fmt = (dim, comp, perm)
            self._formats[chunk] = fmt
        return fmt

    def _row(self, trace_id):
        """``get(column)`` for a trace's metadata row."""
        key = _decode_id(trace_id)
        get = self._rows.getter(key)
        if get is None:
            raise self._bad(key, "trace ID not found in metadata")
        return get

    def read_waveform(self, trace_id):
        key = _decode_id(trace_id)
        row = self._row(key)
        chunk = row("_chunk")
        f = self._file(chunk)
        dim, _comp, perm = self._format(chunk)
        name = str(row("trace_name"))
        m = _BUCKET_RE.match(name)
        try:
            if m:
                ds = f["data"][m.group("bucket")]
                idx = [int(m.group("index"))]
                rest = m.group("rest")
                if rest:
                    idx += [_parse_slice(s) for s in rest.lstrip(",").split(",")]
            else:
                ds = f["data"][name]
                idx = []
        except KeyError:
            raise self._bad(key, f"waveform '{name}' not found in {self._h5_path(chunk)}") from None
        except ValueError:
            raise self._bad(key, f"cannot parse the bucket index of trace_name. Received: {name!r}") from None
        except (OSError, RuntimeError) as exc:
            raise self._bad(key, f"cannot open the waveform '{name}' ({exc})") from None
        if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "fiu":
            raise self._bad(key, f"waveform '{name}' is not a numeric dataset. "
                                 f"Received: {getattr(ds, 'dtype', type(ds).__name__)}")
        per_trace = ds.size // max(ds.shape[0], 1) if idx and ds.ndim else ds.size
        if len(idx) > ds.ndim or per_trace > _MAX_SAMPLES * 3:
            raise self._bad(key, f"trace_name {name!r} does not fit the stored shape. Received: "
                                 f"shape={ds.shape}")
        try:
            arr = ds[tuple(idx)] if idx else ds[()]
        except (IndexError, ValueError, TypeError) as exc:
            raise self._bad(key, f"trace_name {name!r} does not fit the stored shape {ds.shape} "
                                 f"({exc})") from None
        except (OSError, RuntimeError) as exc:
            raise self._bad(key, f"cannot read the waveform samples ({exc})") from None
        arr = np.asarray(arr, dtype=np.float32)
        if arr.ndim != 2:
            raise self._bad(key, f"waveform must be 2-D. Received: shape={arr.shape}")
        if dim == "CW":
            arr = arr.T
        if arr.shape[1] != 3:
            raise self._bad(key, f"waveform must have 3 components. Received: shape={arr.shape}")
        return np.ascontiguousarray(arr[:, perm])

    def read_metadata(self, trace_id):
        key = _decode_id(trace_id)
        g = self._row(key)
        p = _to_float(g("trace_p_arrival_sample"))
        category, raw = _category(g("trace_category"), p)
        polarity = g("trace_polarity") if g("trace_polarity") is not None else g("trace_P_polarity")
        meta = {
            "trace_name": key,
            "trace_category": category,
            "trace_category_raw": raw,
            "trace_p_arrival_sample": p,
            "trace_s_arrival_sample": _to_float(g("trace_s_arrival_sample")),
            "trace_coda_end_sample": _to_float(g("trace_coda_end_sample")),
            "trace_snr_db": _to_float3(g("trace_snr_db")),
            "trace_p_polarity": _polarity(polarity),
            "trace_p_polarity_raw": _to_str(polarity),
            "trace_start_time": _to_str(g("trace_start_time")),
            "source_id": _to_str(g("source_id")),
            "source_latitude_deg": _to_float(g("source_latitude_deg")),
            "source_longitude_deg": _to_float(g("source_longitude_deg")),
            "source_depth_km": _to_float(g("source_depth_km")),
            "source_magnitude": _to_float(g("source_magnitude")),
            "source_magnitude_type": _to_str(g("source_magnitude_type")),
            "station_latitude_deg": _to_float(g("station_latitude_deg")),
            "station_longitude_deg": _to_float(g("station_longitude_deg")),
            "station_elevation_m": _to_float(g("station_elevation_m")),
            "station_code": _to_str(g("station_code")),
            "station_network_code": _to_str(g("station_network_code")),
            "path_ep_distance_km": _to_float(g("path_ep_distance_km")),
            "path_back_azimuth_deg_reported": _to_float(g("path_back_azimuth_deg")),
            "split": _to_str(g("split")),
        }
        sr = _to_float(g("trace_sampling_rate_hz"))
        meta["trace_sampling_rate_hz"] = sr if np.isfinite(sr) else 100.0
        return _finish(meta)


def detect_layout(path):
    """Detect the layout of a dataset.

    Args:
        path: HDF5 file or SeisBench folder.

    Returns:
        ``'stead'``, ``'datacollected'`` or ``'seisbench'``.

    Raises:
        FileNotFoundError: the path does not exist.
        DataFileError: the file is unreadable or its layout is not recognised
            (a ``ValueError``).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Dataset not found: {path}")
    if path.is_dir():
        if (path / "metadata.csv").exists() or (path / "chunks").exists():
            return "seisbench"
        raise DataFileError(path, "a folder must be a SeisBench dataset (metadata.csv + waveforms.hdf5)")
    if path.name.startswith("waveforms") and (path.parent / path.name.replace("waveforms", "metadata")
                                              .replace(".hdf5", ".csv")).exists():
        return "seisbench"
    try:
        with h5py.File(path, "r") as f:
            if "data_format" in f:
                return "seisbench"
            if "data" in f and isinstance(f["data"], h5py.Group):
                return "stead"
            for key in f.keys():
                obj = f.get(key)
                if isinstance(obj, h5py.Group) and "data" in obj:
                    return "datacollected"
                break
            empty = not len(f.keys())
    except (OSError, RuntimeError, KeyError) as exc:
        raise DataFileError(path, f"not a readable HDF5 file ({exc})") from None
    if empty:
        raise DataFileError(path, "the HDF5 file is empty")
    raise DataFileError(path, "unrecognised layout (expected STEAD, DataCollected or SeisBench)")


def open_dataset(path, layout=None, **kwargs):
    """Open a waveform dataset, detecting its layout.

    Args:
        path: STEAD/DataCollected HDF5 file, or SeisBench folder.
        layout: force ``'stead'``, ``'datacollected'`` or ``'seisbench'``.
        **kwargs: passed to the reader (``csv=`` for STEAD, ``component_order=``
            for SeisBench).

    Returns:
        A reader (:class:`SteadReader`, :class:`DataCollectedReader` or
        :class:`SeisBenchReader`) with ``trace_ids()``, ``read(trace_id)``,
        ``path`` and ``close()``; usable as a context manager.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: unknown layout.
    """
    if isinstance(path, BaseReader):
        return path
    path = Path(path)
    layout = (layout or detect_layout(path)).lower()
    if layout == "stead":
        return SteadReader(path, **kwargs)
    if layout == "datacollected":
        return DataCollectedReader(path, **kwargs)
    if layout == "seisbench":
        return SeisBenchReader(path, **kwargs)
    raise ValueError(f"Unknown layout. Received: layout={layout!r}")
