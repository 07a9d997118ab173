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
import re
from pathlib import Path

import h5py
import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "BadTraceError",
    "BaseReader",
    "DataCollectedReader",
    "SeisBenchReader",
    "SteadReader",
    "detect_layout",
    "geodesic_distance_azimuth",
    "load_split",
    "open_dataset",
]

CHANNEL_ORDER = "ENZ"

_MISSING_STRINGS = {"", "none", "nan", "null", "n/a", "na"}


class BadTraceError(ValueError):
    """A trace cannot be used: missing, wrong shape, non-finite or incomplete metadata.

    Args:
        file: path of the file holding the trace.
        trace_id: the trace ID.
        reason: what is wrong, echoing the received value.
    """

    def __init__(self, file, trace_id, reason):
        self.file = str(file)
        self.trace_id = str(trace_id)
        self.reason = str(reason)
        super().__init__(f"{self.file}: trace '{self.trace_id}': {self.reason}")

    def __reduce__(self):
        return (type(self), (self.file, self.trace_id, self.reason))


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
    """Read a scalar that may be a float, a 1-element (nested) array, a string or 'None'."""
    if value is None:
        return math.nan
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return math.nan
        if value.dtype.kind in "SUO":
            return _to_float(value.reshape(-1)[0])
        return float(value.reshape(-1)[0])
    if isinstance(value, (bytes, np.bytes_, str)):
        text = _to_str(value)
        if text is None:
            return math.nan
        text = text.strip("[]() ")
        if not text:
            return math.nan
        try:
            return float(text.replace("|", " ").split()[0].rstrip(","))
        except ValueError:
            return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
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
        vals = []
        for p in parts:
            try:
                vals.append(float(p))
            except ValueError:
                vals.append(math.nan)
        value = np.asarray(vals, dtype=np.float64)
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
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


def geodesic_distance_azimuth(event_lat, event_lon, station_lat, station_lon):
    """WGS84 geodesic epicentral distance and back-azimuth.

    Args:
        event_lat: event latitude (deg).
        event_lon: event longitude (deg).
        station_lat: station latitude (deg).
        station_lon: station longitude (deg).

    Returns:
        ``(distance_km, back_azimuth_deg)``; the back-azimuth is measured at
        the station, clockwise from north, pointing towards the event. NaN when
        any coordinate is missing.
    """
    vals = (event_lat, event_lon, station_lat, station_lon)
    if not all(np.isfinite(v) for v in vals):
        return math.nan, math.nan
    from obspy.geodetics import gps2dist_azimuth

    dist_m, _az, baz = gps2dist_azimuth(float(event_lat), float(event_lon),
                                        float(station_lat), float(station_lon))
    return dist_m / 1000.0, float(baz)


def _finish(meta, *, distance_key=None):
    """Fill derived path fields and defaults in a metadata dict (in place)."""
    dist, baz = geodesic_distance_azimuth(
        meta.get("source_latitude_deg", math.nan), meta.get("source_longitude_deg", math.nan),
        meta.get("station_latitude_deg", math.nan), meta.get("station_longitude_deg", math.nan))
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


def load_split(path):
    """Load a split file (``.npy`` array of trace IDs) as a list of ``str``.

    IDs stored as ``str``, ``bytes`` or object arrays are all decoded.

    Args:
        path: path of the ``.npy`` file.

    Returns:
        list of trace IDs (``str``).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file holds no IDs.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Split file not found: {path}")
    arr = np.load(path, allow_pickle=True)
    ids = [_decode_id(v) for v in np.asarray(arr).reshape(-1)]
    if not ids:
        raise ValueError(f"Split file {path} holds no trace IDs. Received: shape={np.shape(arr)}")
    return ids


def _decode_id(value):
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8")
    return str(value)


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
                raise OSError(f"Cannot open HDF5 file {fname}: {exc}") from exc
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
        return BadTraceError(self.path, trace_id, reason)

    def _check_waveform(self, trace_id, arr):
        if arr.ndim != 2 or 3 not in arr.shape:
            raise self._bad(trace_id, f"waveform must be 2-D with 3 components. Received: shape={arr.shape}")
        return arr


def _contiguous_location(ds):
    """Byte offset of an uncompressed contiguous dataset, else None."""
    try:
        if ds.chunks is not None or ds.compression is not None:
            return None
        offset = ds.id.get_offset()
    except (AttributeError, OSError, ValueError, TypeError):
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
            self._ids = [k for k in f.keys() if f.get(k, getclass=True) is h5py.Group]
        return list(self._ids)

    def _group(self, trace_id):
        key = _decode_id(trace_id)
        obj = self._file().get(key)
        if obj is None:
            raise self._bad(key, "trace ID not found in file")
        if not isinstance(obj, h5py.Group) or "data" not in obj:
            raise self._bad(key, f"expected a group holding a 'data' dataset. Received: {type(obj).__name__}")
        return obj

    def read_waveform(self, trace_id):
        grp = self._group(trace_id)
        arr = np.asarray(grp["data"][()], dtype=np.float32)
        return self._check_waveform(trace_id, arr)

    def locate(self, trace_id):
        grp = self._group(trace_id)
        ds = grp["data"]
        off = _contiguous_location(ds)
        if off is None or ds.ndim != 2 or ds.shape[1] != 3:
            return None
        return (str(self.path), off, tuple(ds.shape), np.dtype(ds.dtype))

    def read_metadata(self, trace_id):
        grp = self._group(trace_id)
        a = dict(grp.attrs)
        g = a.get
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
        self._ids = None

    def _csv_table(self):
        if self._table is None and self.csv is not None:
            import pandas as pd

            df = pd.read_csv(self.csv, low_memory=False, dtype={"trace_name": str})
            if "trace_name" not in df.columns:
                raise ValueError(f"{self.csv}: no 'trace_name' column. Received: columns={list(df.columns)[:10]}")
            self._table = df.set_index("trace_name", drop=False)
            self._table = self._table[~self._table.index.duplicated()]
        return self._table

    def trace_ids(self):
        if self._ids is None:
            table = self._csv_table()
            if table is not None:
                self._ids = [str(v) for v in table.index]
            else:
                self._ids = list(self._file()["data"].keys())
        return list(self._ids)

    def _dataset(self, trace_id):
        key = _decode_id(trace_id)
        f = self._file()
        if "data" not in f:
            raise self._bad(key, "no 'data' group: not a STEAD file")
        obj = f["data"].get(key)
        if obj is None:
            raise self._bad(key, "trace ID not found in file")
        if not isinstance(obj, h5py.Dataset):
            raise self._bad(key, f"expected a dataset. Received: {type(obj).__name__}")
        return obj

    def read_waveform(self, trace_id):
        arr = np.asarray(self._dataset(trace_id)[()], dtype=np.float32)
        return self._check_waveform(trace_id, arr)

    def locate(self, trace_id):
        ds = self._dataset(trace_id)
        off = _contiguous_location(ds)
        if off is None or ds.ndim != 2 or ds.shape[1] != 3:
            return None
        return (str(self.path), off, tuple(ds.shape), np.dtype(ds.dtype))

    def read_metadata(self, trace_id):
        key = _decode_id(trace_id)
        table = self._csv_table()
        if table is not None and key in table.index:
            row = table.loc[key]
            return _stead_meta(key, lambda k: row.get(k) if k in row.index else None)
        attrs = dict(self._dataset(key).attrs)
        return _stead_meta(key, attrs.get)


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
            chunks = [c.strip() for c in chunks_file.read_text().splitlines() if c.strip()]
        else:
            chunks = [""]
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
            df = pd.read_csv(mfile, low_memory=False, dtype={"trace_name": str})
            if "trace_name" not in df.columns:
                raise ValueError(f"{mfile}: no 'trace_name' column. Received: columns={list(df.columns)[:10]}")
            df["_chunk"] = chunk
            frames.append(df)
        table = pd.concat(frames, ignore_index=True)
        # Unique key: trace_name, or trace_name plus chunk when names repeat.
        names = table["trace_name"].astype(str)
        if names.duplicated().any():
            names = names.where(~names.duplicated(keep=False), names + "@" + table["_chunk"].astype(str))
        table.index = names
        self._table = table

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
            if "data_format" in f:
                g = f["data_format"]
                if dim is None and "dimension_order" in g:
                    dim = _to_str(g["dimension_order"][()])
                if comp is None and "component_order" in g:
                    comp = _to_str(g["component_order"][()])
            dim = (dim or "CW").upper()
            comp = (comp or "ZNE").upper()
            if sorted(dim) != ["C", "W"]:
                raise ValueError(f"{self._h5_path(chunk)}: unsupported dimension_order. Received: {dim!r}")
            if sorted(comp) != ["E", "N", "Z"]:
                raise ValueError(
                    f"{self._h5_path(chunk)}: component_order must be a permutation of 'ENZ' "
                    f"(pass component_order= to override). Received: {comp!r}")
            perm = np.array([comp.index(c) for c in CHANNEL_ORDER])
            fmt = (dim, comp, perm)
            self._formats[chunk] = fmt
        return fmt

    def _row(self, trace_id):
        key = _decode_id(trace_id)
        try:
            return self._table.loc[key]
        except KeyError:
            raise self._bad(key, "trace ID not found in metadata") from None

    def read_waveform(self, trace_id):
        key = _decode_id(trace_id)
        row = self._row(key)
        chunk = row["_chunk"]
        f = self._file(chunk)
        dim, _comp, perm = self._format(chunk)
        name = str(row["trace_name"])
        m = _BUCKET_RE.match(name)
        try:
            if m:
                ds = f["data"][m.group("bucket")]
                idx = [int(m.group("index"))]
                rest = m.group("rest")
                if rest:
                    idx += [_parse_slice(s) for s in rest.lstrip(",").split(",")]
                arr = ds[tuple(idx)]
            else:
                arr = f["data"][name][()]
        except KeyError:
            raise self._bad(key, f"waveform '{name}' not found in {self._h5_path(chunk)}") from None
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
        row = self._row(key)

        def g(k):
            return row[k] if k in row.index else None

        p = _to_float(g("trace_p_arrival_sample"))
        category, raw = _category(g("trace_category"), p)
        meta = {
            "trace_name": key,
            "trace_category": category,
            "trace_category_raw": raw,
            "trace_p_arrival_sample": p,
            "trace_s_arrival_sample": _to_float(g("trace_s_arrival_sample")),
            "trace_coda_end_sample": _to_float(g("trace_coda_end_sample")),
            "trace_snr_db": _to_float3(g("trace_snr_db")),
            "trace_p_polarity": _polarity(g("trace_polarity") if g("trace_polarity") is not None
                                          else g("trace_P_polarity")),
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
        ValueError: the layout is not recognised.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Dataset not found: {path}")
    if path.is_dir():
        if (path / "metadata.csv").exists() or (path / "chunks").exists():
            return "seisbench"
        raise ValueError(f"{path}: a folder must be a SeisBench dataset (metadata.csv + waveforms.hdf5)")
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
            if not len(f.keys()):
                raise ValueError(f"{path}: the HDF5 file is empty")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from exc
    raise ValueError(f"{path}: unrecognised layout (expected STEAD, DataCollected or SeisBench)")


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
