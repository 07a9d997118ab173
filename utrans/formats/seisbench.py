"""SeisBench WaveformDatasets: ``metadata.csv`` and ``waveforms.hdf5``, plain or bucketed, chunked.

Everything SeisBench's data format defines is read (its documentation, "The
SeisBench Data Format", and ``seisbench.data.WaveformDataset``):

* the ``data_format`` group (:attr:`SeisBenchReader.data_format`):
  ``dimension_order`` and ``component_order`` (required), ``sampling_rate``,
  ``measurement``, ``unit``, ``instrument_response`` and any other key, as
  datasets or attributes of the group; every chunk must hold the same;
* the sampling rate of each trace: ``trace_sampling_rate_hz``, else
  ``1 / trace_dt_s``, else the ``data_format`` ``sampling_rate`` (SeisBench's
  precedence; disagreements are logged once); a dataset that states none is
  read as 100 Hz with a warning;
* the component order of each trace: ``trace_component_order``, else the
  ``data_format``'s (``component_order=`` overrides both). Components are
  returned as E, N, Z; one the dataset lacks (a vertical-only ``"Z"``
  dataset) is zeros, as SeisBench pads it, and is reported once; letters
  other than E, N, Z are not used (reported once), except the horizontal
  codes ``1``, ``2``, ``3`` whose orientation is unknown: they are refused
  unless ``component_order=`` names them;
* traces of any length (bucketed traces are cut by their ``trace_name``
  slice, ``bucket0$3,:3,:1200``);
* arrivals under any phase name: the P arrival is the earliest of the
  ``trace_<phase>_arrival_sample`` columns of P phases (``p``, ``P``, ``P1``,
  ``Pg``, ``Pn``, ``PmP``, ... and the depth phases ``pP``, ``pwP``), the S
  arrival the earliest of the S phases (``s``, ``S``, ``S1``, ``Sg``,
  ``Sn``, ``SmS``, ...), as SeisBench's training examples map them;
* ``trace_category`` when the column holds a value; otherwise a trace is an
  event when it has a P or S arrival or a source (``source_id``, origin
  time, coordinates, depth or magnitude; SeisBench leaves the source columns
  of noise traces empty), and noise otherwise;
* every other column of the row, under its own name (SeisBench's names
  already carry entity and unit).

Waveforms are returned as stored: not resampled, any length. The data
generator brings each trace to the model (:mod:`utrans.records`).
"""

from __future__ import annotations

import logging
import math
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
    is_missing,
)
from utrans.formats.stead import _read_csv, _TableRows

__all__ = ["SeisBenchReader", "arrival_phase"]

logger = logging.getLogger(__name__)


_BUCKET_RE = re.compile(r"^(?P<bucket>[^$]+)\$(?P<index>\d+)(?P<rest>(,.*)?)$")
_ARRIVAL_RE = re.compile(r"^trace_(?P<phase>[A-Za-z][A-Za-z0-9]*)_arrival_sample$")
# Depth phases SeisBench's training examples count as P.
_DEPTH_P = ("pP", "pwP", "pwPm")
# Horizontal component codes without a known orientation.
_NUMBERED = set("123")
# A trace is an event when one of these holds a value (and it has no trace_category).
_SOURCE_COLUMNS = ("source_id", "source_origin_time", "source_latitude_deg",
                   "source_longitude_deg", "source_depth_km", "source_magnitude")
# Columns read into the metadata under another name, or computed.
_MAPPED = {"trace_name", "trace_category", "trace_polarity", "trace_P_polarity",
           "trace_sampling_rate_hz", "trace_dt_s", "path_back_azimuth_deg"}
_DEFAULT_RATE = 100.0


def arrival_phase(column):
    """``"P"``, ``"S"`` or ``None``: the phase an arrival column of SeisBench names.

    Args:
        column: a metadata column name (``"trace_Pg_arrival_sample"``).

    Returns:
        ``"P"`` for P phases (``p``, ``P``, ``P1``, ``Pg``, ``Pn``, ``PmP``, the
        depth phases ``pP``/``pwP``), ``"S"`` for S phases, ``None`` otherwise.
    """
    m = _ARRIVAL_RE.match(str(column))
    if not m:
        return None
    phase = m["phase"]
    if phase in ("p", "P") or phase.startswith("P") or phase in _DEPTH_P:
        return "P"
    if phase in ("s", "S") or phase.startswith("S"):
        return "S"
    return None


def _parse_slice(text):
    text = text.strip()
    if text == ":" or text == "":
        return slice(None)
    if ":" in text:
        a, b = text.split(":", 1)
        return slice(int(a) if a.strip() else None, int(b) if b.strip() else None)
    return int(text)


def _selected_shape(shape, index):
    """Shape of ``array[index]`` for an array of ``shape`` (ints drop an axis)."""
    out = []
    for axis, size in enumerate(shape):
        if axis >= len(index):
            out.append(size)
        elif isinstance(index[axis], slice):
            out.append(len(range(*index[axis].indices(size))))
        elif not -size <= index[axis] < size:
            raise IndexError(f"index {index[axis]} is out of bounds for axis {axis} with size {size}")
    return tuple(out)


def _numbers(column):
    """A metadata column as float64 (values that are no number read as NaN)."""
    values = column.to_numpy()
    if values.dtype.kind in "fiub":
        return values.astype(np.float64)
    return np.array([_to_float(v) for v in values], dtype=np.float64)


def _format_value(value):
    """A ``data_format`` entry as Python: text as ``str``, lists as tuples, numbers as numbers."""
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            value = value[()]
        else:
            return tuple(_format_value(v) for v in value.tolist())
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _order_text(value):
    """A component or dimension order (string or list of letters) as one upper-case string."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return "".join(str(v) for v in value).upper()
    return str(value).strip().upper()


class SeisBenchReader(BaseReader):
    """Reader for SeisBench WaveformDatasets (``metadata.csv`` + ``waveforms.hdf5``).

    Handles chunked datasets (``chunks`` file, ``metadata{chunk}.csv``,
    ``waveforms{chunk}.hdf5``), bucketed traces (``bucketN$i,:C,:W``), the
    ``data_format`` group, per-trace sampling rates and component orders,
    and arrivals under any phase name (module doc). Waveforms are returned
    as stored, in E, N, Z order; ``trace_sampling_rate_hz`` gives each trace's rate.

    Args:
        path: the dataset folder (or its ``metadata.csv`` / ``waveforms.hdf5``).
        component_order: override the component order stored in the file.
        dimension_order: override the dimension order stored in the file.
    """

    layout = "seisbench"
    variable_length = True

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
        self._component_order = _order_text(component_order)
        self._dimension_order = _order_text(dimension_order)
        self._formats = {}
        self._data_format = None
        self._layouts = {}
        self._reported = set()

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
        table = table.copy()
        table.index = names
        self._arrival_columns(table)
        self._table = table
        self._rows = _TableRows(table)
        passed = [c for c in table.columns
                  if not str(c).startswith("_") and str(c) not in _MAPPED
                  and arrival_phase(c) is None]
        # The other columns, converted once: numbers as float, text as str (None when missing).
        self._passed = _TableRows(pd.DataFrame(
            {str(c): (_numbers(table[c]) if table[c].dtype.kind in "fiub" else
                      np.array([_to_str(v) if isinstance(v, (str, bytes)) else _to_float(v)
                                for v in table[c].to_numpy()], dtype=object))
             for c in passed}, index=table.index))

    # ------------------------------------------------------------------ set-up
    def _arrival_columns(self, table):
        """Earliest P and S arrival of each row over every phase column (``_p``, ``_s``)."""
        for kind in ("P", "S"):
            columns = [c for c in table.columns if arrival_phase(c) == kind]
            values = np.full(len(table), np.nan)
            if columns:
                stacked = np.stack([_numbers(table[c]) for c in columns])
                stacked = np.where(np.isfinite(stacked), stacked, np.inf)
                values = stacked.min(axis=0)
                values[~np.isfinite(values)] = np.nan
            table[f"_{kind.lower()}"] = values
        self.arrival_columns = {kind: [c for c in table.columns if arrival_phase(c) == kind]
                                for kind in ("P", "S")}
        source = np.zeros(len(table), dtype=bool)
        for column in _SOURCE_COLUMNS:
            if column in table.columns:
                source |= ~np.array([is_missing(_to_str(v)) for v in table[column].to_numpy()])
        table["_source"] = source

    def _h5_path(self, name):
        return self.path / f"waveforms{name or ''}.hdf5"

    def trace_ids(self):
        return [str(v) for v in self._table.index]

    def split_ids(self, split):
        """Trace IDs whose ``split`` column equals ``split`` (``'train'``, ``'dev'``, ``'test'``)."""
        if "split" not in self._table.columns:
            raise ValueError(f"{self.path}: metadata has no 'split' column")
        return [str(v) for v in self._table.index[self._table["split"] == split]]

    # ------------------------------------------------------------------ data_format
    def _read_format(self, chunk):
        """The ``data_format`` entries of one chunk's waveform file, decoded."""
        f = self._file(chunk)
        entries = {}
        try:
            if "data_format" in f:
                group = f["data_format"]
                entries.update({str(k): _format_value(v) for k, v in group.attrs.items()})
                for key in group.keys():
                    item = group[key]
                    if isinstance(item, h5py.Dataset):
                        entries[str(key)] = _format_value(item[()])
        except (OSError, RuntimeError, KeyError, TypeError, ValueError) as exc:
            raise DataFileError(self._h5_path(chunk), f"cannot read the data_format group ({exc})") from None
        return entries

    @property
    def data_format(self):
        """The dataset's ``data_format`` group as a dict (the same in every chunk).

        Keys as SeisBench writes them: ``dimension_order``, ``component_order``,
        ``sampling_rate``, ``measurement``, ``unit``, ``instrument_response``
        and any other key the writer added.

        Raises:
            DataFileError: the chunks disagree.
        """
        if self._data_format is None:
            first = self._read_format(self.chunks[0])
            for chunk in self.chunks[1:]:
                other = self._read_format(chunk)
                if other != first:
                    raise DataFileError(self._h5_path(chunk), "its data_format differs from that of "
                                        f"{self._h5_path(self.chunks[0])}. Received: {other} and {first}")
            self._data_format = first
            self._check_rates(first)
        return dict(self._data_format)

    def _check_rates(self, fmt):
        """Log once where the trace rates disagree with each other or with ``data_format``."""
        table = self._table
        rate = _numbers(table["trace_sampling_rate_hz"]) if "trace_sampling_rate_hz" in table \
            else np.full(len(table), np.nan)
        if "trace_dt_s" in table:
            dt = _numbers(table["trace_dt_s"])
            both = np.isfinite(rate) & np.isfinite(dt)
            if np.any(np.abs(rate[both] * dt[both] - 1.0) > 1e-4):
                logger.warning("%s: trace_sampling_rate_hz and trace_dt_s disagree for %d traces; "
                               "trace_sampling_rate_hz is used", self.path,
                               int(np.sum(np.abs(rate[both] * dt[both] - 1.0) > 1e-4)))
            rate = np.where(np.isfinite(rate), rate, 1.0 / dt)
        stated = _to_float(fmt.get("sampling_rate"))
        if np.isfinite(stated):
            off = np.isfinite(rate) & (np.abs(rate / stated - 1.0) > 1e-4)
            if off.any():
                logger.warning("%s: %d traces state a sampling rate other than the data_format's "
                               "%g Hz; their own is used", self.path, int(off.sum()), stated)
        elif not np.isfinite(rate).all():
            logger.warning("%s: no sampling rate for %d traces (no data_format sampling_rate, "
                           "trace_sampling_rate_hz or trace_dt_s); they are read as %g Hz",
                           self.path, int((~np.isfinite(rate)).sum()), _DEFAULT_RATE)

    def _format(self, chunk):
        """``(dimension_order, component_order)`` of a chunk (overrides applied)."""
        fmt = self._formats.get(chunk)
        if fmt is None:
            entries = self.data_format
            dim = self._dimension_order or _order_text(entries.get("dimension_order")) or "CW"
            comp = self._component_order or _order_text(entries.get("component_order")) or "ZNE"
            if sorted(dim) != ["C", "W"]:
                raise DataFileError(self._h5_path(chunk), f"unsupported dimension_order. Received: {dim!r}")
            fmt = (dim, comp)
            self._formats[chunk] = fmt
        return fmt

    def _layout(self, order, trace_id):
        """Column of each of E, N, Z in a trace stored in ``order`` (-1: absent)."""
        layout = self._layouts.get(order)
        if layout is not None:
            return layout
        numbered = sorted(set(order) & _NUMBERED)
        if numbered or len(set(order)) != len(order):
            raise self._bad(trace_id, "component_order must name each component once with the "
                            "letters E, N and Z (horizontals 1, 2, 3 have no known orientation: "
                            "pass component_order= to say which is north and east). "
                            f"Received: component_order={order!r}")
        present = [c for c in CHANNEL_ORDER if c in order]
        if not present:
            raise self._bad(trace_id, "no E, N or Z component in the component order. "
                                      f"Received: component_order={order!r}")
        missing = [c for c in CHANNEL_ORDER if c not in order]
        unused = [c for c in order if c not in CHANNEL_ORDER]
        if missing:
            logger.warning("%s: traces stored with components %r have no %s; %s read as zeros",
                           self.path, order, "/".join(missing),
                           "it is" if len(missing) == 1 else "they are")
        if unused:
            logger.warning("%s: component(s) %s of the order %r are not used (E, N, Z are)",
                           self.path, ", ".join(unused), order)
        layout = np.array([order.index(c) if c in order else -1 for c in CHANNEL_ORDER])
        self._layouts[order] = layout
        return layout

    # ------------------------------------------------------------------ rows
    def _row(self, trace_id):
        """``get(column)`` for a trace's metadata row."""
        key = decode_id(trace_id)
        get = self._rows.getter(key)
        if get is None:
            raise self._bad(key, "trace ID not found in metadata")
        return get

    def _order_of(self, row, chunk):
        """The component order of one trace (override, ``trace_component_order``, data_format)."""
        _dim, comp = self._format(chunk)
        if self._component_order is None:
            own = _order_text(_to_str(row("trace_component_order")))
            if own:
                return own
        return comp

    def _dataset(self, key, row):
        """``(dataset, index)`` of a trace's samples in its waveform file."""
        chunk = row("_chunk")
        f = self._file(chunk)
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
        if len(idx) > ds.ndim:
            raise self._bad(key, f"trace_name {name!r} does not fit the stored shape. Received: "
                                 f"shape={ds.shape}")
        try:
            shape = _selected_shape(ds.shape, idx)
        except IndexError as exc:
            raise self._bad(key, f"trace_name {name!r} does not fit the stored shape {ds.shape} "
                                 f"({exc})") from None
        if len(shape) != 2:
            raise self._bad(key, f"waveform must be 2-D. Received: shape={shape}")
        if int(np.prod(shape)) > _MAX_SAMPLES * 3:
            raise self._bad(key, f"trace_name {name!r} does not fit the stored shape. Received: "
                                 f"shape={ds.shape}")
        return ds, tuple(idx), shape

    def trace_samples(self, trace_id):
        """Samples per component of a trace, from its stored shape (no sample is read)."""
        key = decode_id(trace_id)
        row = self._row(key)
        dim, _comp = self._format(row("_chunk"))
        _ds, _idx, shape = self._dataset(key, row)
        return int(shape[dim.index("W")])

    def read_waveform(self, trace_id):
        key = decode_id(trace_id)
        row = self._row(key)
        chunk = row("_chunk")
        dim, _comp = self._format(chunk)
        order = self._order_of(row, chunk)
        ds, idx, shape = self._dataset(key, row)
        channels = shape[dim.index("C")]
        if channels != len(order):
            raise self._bad(key, f"{channels} components stored, but the component order "
                                 f"{order!r} names {len(order)}. Received: shape={shape}")
        layout = self._layout(order, key)
        try:
            arr = ds[idx] if idx else ds[()]
        except (IndexError, ValueError, TypeError) as exc:
            raise self._bad(key, f"trace_name {str(row('trace_name'))!r} does not fit the stored "
                                 f"shape {ds.shape} ({exc})") from None
        except (OSError, RuntimeError) as exc:
            raise self._bad(key, f"cannot read the waveform samples ({exc})") from None
        arr = np.asarray(arr, dtype=np.float32)
        if dim == "CW":
            arr = arr.T
        out = np.zeros((arr.shape[0], len(CHANNEL_ORDER)), dtype=np.float32)
        for k, column in enumerate(layout):
            if column >= 0:
                out[:, k] = arr[:, column]
        return out

    def _rate(self, g, chunk):
        """A trace's sampling rate: its own, from its sample interval, or the dataset's."""
        rate = _to_float(g("trace_sampling_rate_hz"))
        if not (np.isfinite(rate) and rate > 0):
            dt = _to_float(g("trace_dt_s"))
            rate = 1.0 / dt if np.isfinite(dt) and dt > 0 else math.nan
        if not np.isfinite(rate):
            rate = _to_float(self.data_format.get("sampling_rate"))
        if not (np.isfinite(rate) and rate > 0):
            rate = _DEFAULT_RATE
        return float(rate)

    def read_metadata(self, trace_id):
        key = decode_id(trace_id)
        g = self._row(key)
        chunk = g("_chunk")
        p, s = float(g("_p")), float(g("_s"))
        raw = _to_str(g("trace_category"))
        if raw is None:
            event = np.isfinite(p) or np.isfinite(s) or bool(g("_source"))
            category, raw = ("earthquake" if event else "noise"), None
        else:
            category, raw = _category(raw, p)
        polarity = g("trace_polarity") if g("trace_polarity") is not None else g("trace_P_polarity")
        passed = self._passed.getter(key)
        meta = {column: passed(column) for column in self._passed.columns}
        meta.update({
            "trace_name": key,
            "trace_category": category,
            "trace_category_raw": raw,
            "trace_p_arrival_sample": p,
            "trace_s_arrival_sample": s,
            "trace_coda_end_sample": _to_float(g("trace_coda_end_sample")),
            "trace_snr_db": _to_float3(g("trace_snr_db")),
            "trace_p_polarity": _polarity(polarity),
            "trace_p_polarity_raw": _to_str(polarity),
            "trace_start_time": _to_str(g("trace_start_time")),
            "trace_component_order": self._order_of(g, chunk),
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
            "trace_sampling_rate_hz": self._rate(g, chunk),
        })
        return _finish(meta)
