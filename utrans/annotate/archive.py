"""A network archive as annotate input: station-day work units and their result files.

::

    from utrans.annotate.archive import UnitStore, plan_units, read_unit

    units = plan_units("/data/sds", "2024-01-01", "2024-01-03", network="XX", station="*")
    stream = read_unit("/data/sds", units[0], pad_s=(180.0, 180.0))

**Archive.** An SDS archive (``ROOT/YEAR/NET/STA/CHAN.TYPE/NET.STA.LOC.CHAN.TYPE.YEAR.DAY``),
read through ObsPy's :class:`obspy.clients.filesystem.sds.Client`.
:func:`plan_units` finds the stations matching the selection (``fnmatch``
patterns for network, station, location and channel) that hold data in the
time range.

**Work unit.** A :class:`StationDay`: every selected channel of one station
(``NET.STA``) over one chunk of time, by default a UTC day. Chunks lie on a
fixed grid (multiples of ``chunk_s`` from 1970-01-01, so whole UTC days by
default) clipped to the requested range. A unit reads ``pad_s`` seconds of
the neighbouring chunks on both sides (the SDS client reads across day
files), so that the model sees the same windows near midnight as in one
long record (annotate lays windows on an absolute grid, see
:mod:`utrans.processing.windows`), and keeps the picks whose peak time falls
inside ``[start, end)``: a pick near midnight belongs to exactly one day.

**Results.** :class:`UnitStore` writes one picks table per unit,
``<output>/units/NET.STA/NET.STA.<start>.csv`` (or ``.parquet``; Parquet
needs ``pyarrow``), and after it a small JSON marker ``<table>.done``
(unit, rows, SHA-256 of the table, seconds, worker). Both are written to a
temporary file, flushed to disk and renamed, so a killed run leaves either a
complete table and marker or nothing that counts: a unit is done when its
marker is there and the table it names has the recorded checksum, and a
rerun skips it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import logging
import pathlib

import obspy
import pandas as pd
from obspy.clients.filesystem.sds import Client as SDSClient

from utrans.core.io import atomic_write, remove_stale_temporaries, write_csv, write_json
from utrans.core.presets import sha256sum

__all__ = ["DAY", "FORMATS", "StationDay", "UnitStore", "plan_units", "read_table", "read_unit"]

logger = logging.getLogger(__name__)

DAY = 86400.0
FORMATS = ("csv", "parquet")
# Columns read back as text (an empty location code or network "NA" must not become NaN).
_TEXT_COLUMNS = ("trace_id", "phase", "peak_time", "start_time", "end_time", "instrument",
                 "model", "characterize_note")


@dataclasses.dataclass(frozen=True, order=True)
class StationDay:
    """One work unit: a station over ``[start, end)``.

    Args:
        network: network code.
        station: station code.
        start: first instant (``obspy.UTCDateTime``).
        end: end (excluded).
    """

    network: str
    station: str
    start: obspy.UTCDateTime
    end: obspy.UTCDateTime

    @property
    def station_id(self):
        """``NET.STA``."""
        return f"{self.network}.{self.station}"

    @property
    def unit_id(self):
        """``NET.STA.2024-01-01`` for a whole UTC day, else ``NET.STA.2024-01-01T060000``."""
        t = self.start
        if t == obspy.UTCDateTime(t.date) and self.end - t == DAY:
            stamp = t.strftime("%Y-%m-%d")
        else:
            stamp = t.strftime("%Y-%m-%dT%H%M%S") + (f".{t.microsecond:06d}" if t.microsecond
                                                     else "")
        return f"{self.station_id}.{stamp}"

    def contains(self, time):
        """Whether ``time`` lies in ``[start, end)``."""
        return self.start <= time < self.end

    def __str__(self):
        return self.unit_id


def _as_time(value, name):
    try:
        return obspy.UTCDateTime(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a time ObsPy understands (2024-01-31 or "
                         f"2024-01-31T06:00:00). Received: {name}={value!r}") from err


def _sds_client(root):
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"SDS archive folder not found: {root}")
    return SDSClient(str(root))


def plan_units(root, start, end, network="*", station="*", location="*", channel="*",
               chunk_s=DAY):
    """The station-day work units of an archive, selection and time range.

    Args:
        root: SDS root folder.
        start: first instant of the range (anything ``obspy.UTCDateTime`` reads).
        end: end of the range (excluded).
        network: ``fnmatch`` pattern of network codes (``"XX"``, ``"*"``).
        station: ``fnmatch`` pattern of station codes (``"ST*"``).
        location: ``fnmatch`` pattern of location codes (``""`` is the empty code).
        channel: ``fnmatch`` pattern of channel codes.
        chunk_s: length of a unit in seconds (default one day); units lie on
            a grid of ``chunk_s`` from 1970-01-01, clipped to the range.

    Returns:
        Sorted list of :class:`StationDay` for every selected station that has
        a data file in the range (units of chunks without data are kept: they
        finish with an empty table).

    Raises:
        FileNotFoundError: no archive at ``root``.
        ValueError: a bad range or no station matches.
    """
    start, end = _as_time(start, "start"), _as_time(end, "end")
    if not end > start:
        raise ValueError(f"end must be after start. Received: start={start}, end={end}")
    chunk_s = float(chunk_s)
    if not chunk_s > 0:
        raise ValueError(f"chunk_s must be positive. Received: chunk_s={chunk_s}")
    client = _sds_client(root)
    stations = set()
    day = obspy.UTCDateTime(start.date)
    while day < end:
        for net, sta, loc, cha in client.get_all_nslc(datetime=day):
            if (fnmatch.fnmatchcase(net, network) and fnmatch.fnmatchcase(sta, station)
                    and fnmatch.fnmatchcase(loc, location)
                    and fnmatch.fnmatchcase(cha, channel)):
                stations.add((net, sta))
        day += DAY
    if not stations:
        raise ValueError(f"No station of the archive {root} matches network={network!r}, "
                         f"station={station!r}, location={location!r}, channel={channel!r} "
                         f"between {start} and {end}.")
    first = int(start.timestamp // chunk_s)
    units = []
    k = first
    while k * chunk_s < end.timestamp:
        a = max(obspy.UTCDateTime(k * chunk_s), start)
        b = min(obspy.UTCDateTime((k + 1) * chunk_s), end)
        units.extend(StationDay(net, sta, a, b) for net, sta in stations)
        k += 1
    return sorted(units, key=lambda u: (u.start, u.network, u.station))


def read_unit(root, unit, pad_s=(0.0, 0.0), location="*", channel="*"):
    """The records of one unit with ``pad_s`` seconds of its neighbours.

    Args:
        root: SDS root folder.
        unit: a :class:`StationDay`.
        pad_s: ``(before, after)`` seconds read beyond the unit.
        location: ``fnmatch`` pattern of the location codes to read.
        channel: ``fnmatch`` pattern of the channel codes to read.

    Returns:
        An ``obspy.Stream`` (seamless day files joined; may be empty).
    """
    client = _sds_client(root)
    before, after = pad_s
    stream = client.get_waveforms(unit.network, unit.station, location, channel,
                                  unit.start - before, unit.end + after)
    # get_waveforms matches location/channel with fnmatch too; keep exact selections exact.
    return obspy.Stream([tr for tr in stream
                         if fnmatch.fnmatchcase(tr.stats.location, location)
                         and fnmatch.fnmatchcase(tr.stats.channel, channel)])


def read_table(path):
    """A picks table written by :class:`UnitStore` (CSV or Parquet), text columns as text."""
    path = pathlib.Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    frame = pd.read_csv(path, dtype={c: str for c in _TEXT_COLUMNS}, keep_default_na=False,
                        na_values=[""])
    for column in _TEXT_COLUMNS:
        if column in frame.columns:
            frame[column] = frame[column].fillna("")
    return frame


class UnitStore:
    """The per-unit picks tables and done markers of one output folder.

    Args:
        folder: the run's output folder.
        fmt: ``"csv"`` or ``"parquet"``.
    """

    def __init__(self, folder, fmt="csv"):
        if fmt not in FORMATS:
            raise ValueError(f"fmt must be one of {FORMATS}. Received: fmt={fmt!r}")
        if fmt == "parquet":
            try:
                import pyarrow  # noqa: F401, PLC0415 - optional (the parquet extra), checked when asked for
            except ImportError as err:
                raise ValueError("Parquet tables need pyarrow (pip install pyarrow); or "
                                 "write CSV tables.") from err
        self.folder = pathlib.Path(folder)
        self.fmt = fmt

    def table_path(self, unit):
        """Where the unit's picks table goes."""
        return self.folder / "units" / unit.station_id / f"{unit.unit_id}.{self.fmt}"

    def marker_path(self, unit):
        """The unit's done marker."""
        path = self.table_path(unit)
        return path.with_name(path.name + ".done")

    def marker(self, unit):
        """The unit's marker as a dict when the unit is done, else ``None``."""
        path = self.marker_path(unit)
        try:
            info = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            logger.warning("Unreadable marker %s (%s); the unit is done again", path, err)
            return None
        table = self.table_path(unit)
        if not table.is_file() or sha256sum(table) != info.get("sha256"):
            logger.warning("%s does not match its marker; the unit is done again", table)
            return None
        return info

    def is_done(self, unit):
        """Whether the unit's table and marker are complete (module doc)."""
        return self.marker(unit) is not None

    def write(self, unit, picks, **info):
        """Write the unit's table, then its marker (both atomically).

        Args:
            unit: the :class:`StationDay`.
            picks: its picks DataFrame.
            **info: JSON-serialisable facts for the marker (seconds, worker, ...).

        Returns:
            The marker dict.
        """
        table = self.table_path(unit)
        if self.fmt == "csv":
            write_csv(picks, table)
        else:
            with atomic_write(table) as tmp:
                picks.to_parquet(tmp, index=False)
        marker = {"unit": unit.unit_id, "start": str(unit.start), "end": str(unit.end),
                  "table": table.name, "rows": len(picks), "sha256": sha256sum(table), **info}
        write_json(marker, self.marker_path(unit))
        return marker

    def read(self, unit):
        """The unit's picks table."""
        return read_table(self.table_path(unit))

    def clean(self):
        """Remove temporary files left by killed writers (call when no writer runs).

        Returns:
            Number of files removed.
        """
        units = self.folder / "units"
        folders = [p for p in units.iterdir() if p.is_dir()] if units.is_dir() else []
        return len(remove_stale_temporaries(*folders))
