"""SeisBench WaveformDatasets: ``metadata.csv`` and ``waveforms.hdf5``, plain or bucketed, chunked."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from utrans.core.errors import DataFileError
from utrans.formats.base import _MAX_SAMPLES, BaseReader
from utrans.formats.metadata import (
    CHANNEL_ORDER,
    _category,
    _finish,
    _polarity,
    _to_float,
    _to_float3,
    _to_str,
    decode_id,
)
from utrans.formats.stead import _read_csv, _TableRows

__all__ = ["SeisBenchReader"]

logger = logging.getLogger(__name__)


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
        key = decode_id(trace_id)
        get = self._rows.getter(key)
        if get is None:
            raise self._bad(key, "trace ID not found in metadata")
        return get

    def read_waveform(self, trace_id):
        key = decode_id(trace_id)
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
        key = decode_id(trace_id)
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


