"""The STEAD merged file: ``data/<trace_name>`` datasets with attributes, and a CSV beside them."""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import h5py

import numpy as np
import pandas as pd

from utrans.core.errors import DataFileError
from utrans.formats.base import BaseReader, _contiguous_location, _safe_getter
from utrans.formats.metadata import _category, _finish, _to_float, _to_float3, _to_str, decode_id

__all__ = ["SteadReader"]

logger = logging.getLogger(__name__)


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
    """Read a metadata CSV; parse errors and a truncated file name the file (and the line)."""

    try:
        frame = pd.read_csv(path, low_memory=False, dtype={"trace_name": str})
    except (ValueError, OSError) as exc:  # pandas ParserError / EmptyDataError / UnicodeDecodeError
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataFileError(path, f"cannot parse the metadata CSV ({type(exc).__name__}: {exc})") from None
    _check_complete(path, len(frame.columns))
    return frame


# Bytes read from the end of a CSV to find its last row.
_TAIL_BYTES = 1 << 16


def _check_complete(path, columns):
    """Refuse a CSV whose last row holds fewer fields than its header (a cut-off file).

    pandas reads a short last row as missing values; a copy or download
    stopped part way through ends that way. The last row is read from the
    end of the file; when it looks short, every row is counted with the
    ``csv`` module so that the message names the first short line (a quoted
    field holding a line break cannot mislead the check).

    Raises:
        DataFileError: naming the file, the line and the fields found.
    """
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - _TAIL_BYTES))
        tail = fh.read()
    lines = tail.rstrip(b"\r\n").splitlines()
    if not lines or size <= len(tail) and len(lines) < 2:
        return
    last = next(csv.reader([lines[-1].decode("utf-8", errors="replace")]), [])
    if len(last) >= columns:
        if not tail.endswith(b"\n"):
            logger.warning("%s: the last line does not end with a line break; check that the "
                           "file is complete", path)
        return
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for row in reader:
            if row and len(row) < columns:
                raise DataFileError(path, f"line {reader.line_num} holds {len(row)} of the "
                                          f"{columns} fields of the header: the file looks cut "
                                          "off (an interrupted download or copy?); read it again "
                                          "from its source")


def _stead_meta(trace_id, get):
    meta = {"trace_name": decode_id(trace_id)}
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
        key = decode_id(trace_id)
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
        key = decode_id(trace_id)
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

    def trace_samples(self, trace_id):
        return int(self._check_dataset(trace_id, self._dataset(trace_id)).shape[0])

    def locate(self, trace_id):
        ds = self._check_dataset(trace_id, self._dataset(trace_id))
        off = _contiguous_location(ds)
        if off is None or ds.ndim != 2 or ds.shape[1] != 3:
            return None
        return (str(self.path), off, tuple(ds.shape), np.dtype(ds.dtype))

    def read_metadata(self, trace_id):
        key = decode_id(trace_id)
        get = self._rows.getter(key) if self._csv_table() is not None else None
        if get is not None:
            return _stead_meta(key, get)
        return _stead_meta(key, _safe_getter(self._dataset(key).attrs))


