"""The U-Trans "DataCollected" layout: one HDF5 group per trace, metadata as group attributes."""

from __future__ import annotations

import h5py
import numpy as np

from utrans.core.errors import DataError, DataFileError
from utrans.formats.base import BaseReader, _contiguous_location, _safe_getter
from utrans.formats.metadata import (
    _category,
    _finish,
    _polarity,
    _to_float,
    _to_float3,
    _to_str,
    decode_id,
)

__all__ = ["DataCollectedReader"]


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
        key = decode_id(trace_id)
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

    def trace_samples(self, trace_id):
        return int(self._data(trace_id).shape[0])

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
            "trace_name": decode_id(trace_id),
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


