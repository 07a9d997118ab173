"""Readers for the seismic waveform layouts users already have on disk.

Three layouts are understood (see ``docs/data.md``):

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

from pathlib import Path

import h5py

from utrans.core.errors import (
    BadTraceError,
    DataError,
    DataFileError,
    SplitFileError,
    UnsafeSplitError,
)
from utrans.formats.base import BaseReader
from utrans.formats.datacollected import DataCollectedReader
from utrans.formats.metadata import (
    CHANNEL_ORDER,
    METADATA_RANGES,
    METADATA_VALUES,
    is_missing,
    metadata_problems,
)
from utrans.formats.seisbench import SeisBenchReader
from utrans.formats.splits import load_split
from utrans.formats.stead import SteadReader

__all__ = [
    "CHANNEL_ORDER",
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
    "is_missing",
    "load_split",
    "metadata_problems",
    "open_dataset",
]


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

