"""Station coordinates: read from StationXML or CSV into one table, matched to the picks.

The station table has one row per station and the columns
:data:`STATION_COLUMNS`: ``network``, ``station`` (text), ``latitude``,
``longitude`` (degrees, WGS84), ``elevation_m`` (metres above sea level).

* :func:`read_stations` reads a StationXML file (any format
  ``obspy.read_inventory`` reads), an ``obspy.Inventory``, a CSV file with
  those columns, or a DataFrame, and validates it (:func:`validate_stations`).
* :func:`match_stations` pairs the picks (``trace_id`` ``NET.STA.LOC``) with
  the stations by ``NET.STA``: a picked station missing from the table is
  named in a :class:`CatalogWarning` and its picks are set aside.

Coordinates are those of the station (``<Station>`` in StationXML); channel
coordinates, where they differ, are not used.
"""

from __future__ import annotations

import logging
import pathlib
import warnings
from xml.etree import ElementTree

import numpy as np
import obspy
import pandas as pd

from utrans.core.errors import CatalogError, CatalogWarning

__all__ = ["STATION_COLUMNS", "CatalogWarning", "match_stations", "read_stations",
           "station_key", "stations_from_inventory", "validate_stations"]

logger = logging.getLogger(__name__)

STATION_COLUMNS = ["network", "station", "latitude", "longitude", "elevation_m"]


def station_key(trace_id):
    """``NET.STA`` of a ``NET.STA.LOC`` (or ``NET.STA.LOC.CHA``) trace id.

    Args:
        trace_id: the id.

    Returns:
        ``"NET.STA"``.

    Raises:
        CatalogError: the id has fewer than two dot-separated parts.
    """
    parts = str(trace_id).split(".")
    if len(parts) < 2 or not parts[1]:
        raise CatalogError(f"A trace id reads NET.STA.LOC. Received: trace_id={trace_id!r}")
    return f"{parts[0]}.{parts[1]}"


def stations_from_inventory(inventory, source="inventory"):
    """The station table of an ``obspy.Inventory``.

    Args:
        inventory: ``obspy.core.inventory.Inventory``.
        source: name of the inventory in error messages (its file).

    Returns:
        A validated station table (:data:`STATION_COLUMNS`).

    Raises:
        CatalogError: the inventory holds no station (ObsPy itself refuses a
            station without latitude or longitude, see :func:`read_stations`).
    """
    rows = []
    for network in inventory:
        for station in network:
            rows.append({"network": network.code, "station": station.code,
                         "latitude": float(station.latitude),
                         "longitude": float(station.longitude),
                         "elevation_m": float(station.elevation or 0.0)})
    if not rows:
        raise CatalogError(f"{source} holds no station coordinates (only network-level "
                           f"metadata?); the catalogue needs station latitude, longitude and "
                           f"elevation. Received: {len(inventory.networks)} network(s), 0 stations")
    frame = pd.DataFrame(rows, columns=STATION_COLUMNS)
    # The same station in several epochs: one row if the coordinates agree.
    frame = frame.drop_duplicates().reset_index(drop=True)
    return validate_stations(frame, source)


def _read_csv(path):
    frame = pd.read_csv(path, dtype={"network": str, "station": str}, keep_default_na=False,
                        na_values={"latitude": [""], "longitude": [""], "elevation_m": [""]})
    missing = [c for c in STATION_COLUMNS if c not in frame.columns]
    if missing:
        raise CatalogError(f"Station file {path} lacks the column(s) {', '.join(missing)}; it "
                           f"needs {', '.join(STATION_COLUMNS)}. Received columns: "
                           f"{', '.join(map(str, frame.columns))}")
    for column in ("latitude", "longitude", "elevation_m"):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[column][values.isna()]
        if len(bad):
            row = bad.index[0]
            raise CatalogError(f"Station file {path}, station {frame.network[row]}."
                               f"{frame.station[row]}: {column} must be a number. "
                               f"Received: {column}={bad.iloc[0]!r}")
        frame[column] = values.astype(float)
    return frame[STATION_COLUMNS]


def read_stations(source):
    """Read and validate station coordinates (module doc).

    Args:
        source: path of a StationXML file (or any ``obspy.read_inventory``
            format), path of a ``.csv`` file with :data:`STATION_COLUMNS`,
            an ``obspy.Inventory`` or a DataFrame with those columns.

    Returns:
        The station table, one row per ``NET.STA``.

    Raises:
        FileNotFoundError: the file does not exist.
        CatalogError: unreadable file, missing column or coordinate, a value
            out of range, a station listed twice with different coordinates.
    """
    if isinstance(source, obspy.Inventory):
        return stations_from_inventory(source)
    if isinstance(source, pd.DataFrame):
        missing = [c for c in STATION_COLUMNS if c not in source.columns]
        if missing:
            raise CatalogError(f"The station table lacks the column(s) {', '.join(missing)}. "
                               f"Received columns: {', '.join(map(str, source.columns))}")
        return validate_stations(source[STATION_COLUMNS].copy(), "the station table")
    path = pathlib.Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"No station file at {path}. Received: stations={source!r}")
    if path.suffix.lower() == ".csv":
        return validate_stations(_read_csv(path), str(path))
    try:
        inventory = obspy.read_inventory(str(path))
    except (TypeError, ValueError, SyntaxError) as error:
        # ObsPy raises TypeError for unknown formats and for a StationXML
        # station without latitude/longitude (without naming it), SyntaxError
        # (lxml) for bad XML.
        lacking = _station_without_coordinates(path)
        if lacking is not None:
            name, element = lacking
            raise CatalogError(f"Station {name} in {path} has no {element}; the catalogue "
                               f"needs the latitude, longitude and elevation of every "
                               f"station.") from None
        raise CatalogError(f"Could not read station coordinates from {path} (StationXML, or a "
                           f"CSV with columns {', '.join(STATION_COLUMNS)}): {error}") from error
    return stations_from_inventory(inventory, str(path))


def _station_without_coordinates(path):
    """``("NET.STA", "Latitude")`` of the first StationXML station lacking a coordinate, or None."""
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError):
        return None

    def local(element):
        return element.tag.rpartition("}")[2]

    for network in (e for e in root if local(e) == "Network"):
        for station in (e for e in network if local(e) == "Station"):
            values = {local(e): (e.text or "").strip() for e in station}
            for element in ("Latitude", "Longitude"):
                if not values.get(element):
                    return f"{network.get('code')}.{station.get('code')}", element
    return None


def validate_stations(frame, source="the station table"):
    """Check a station table: codes, coordinate ranges, duplicates.

    Args:
        frame: DataFrame with :data:`STATION_COLUMNS`.
        source: its name in error messages.

    Returns:
        The table with ``network``/``station`` as text and numbers as floats,
        one row per station.

    Raises:
        CatalogError: as :func:`read_stations`.
    """
    frame = frame.reset_index(drop=True).copy()
    for column in ("network", "station"):
        frame[column] = frame[column].astype(str).str.strip()
    for column in ("latitude", "longitude", "elevation_m"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for row in frame.itertuples():
        name = f"{row.network}.{row.station}"
        if not row.station or "." in row.station or "." in row.network:
            raise CatalogError(f"Station codes in {source} must be non-empty and hold no '.'. "
                               f"Received: network={row.network!r}, station={row.station!r}")
        for column, low, high in (("latitude", -90.0, 90.0), ("longitude", -180.0, 360.0),
                                  ("elevation_m", -12000.0, 9000.0)):
            value = getattr(row, column)
            if not np.isfinite(value) or not low <= value <= high:
                raise CatalogError(f"Station {name} in {source}: {column} must lie in "
                                   f"[{low:g}, {high:g}]. Received: {column}={value}")
    frame["longitude"] = (frame["longitude"] + 180.0) % 360.0 - 180.0
    frame = frame.drop_duplicates().reset_index(drop=True)
    keys = frame["network"] + "." + frame["station"]
    doubled = keys[keys.duplicated()]
    if len(doubled):
        name = doubled.iloc[0]
        rows = frame.loc[keys == name, ["latitude", "longitude", "elevation_m"]]
        raise CatalogError(f"Station {name} is listed in {source} with different coordinates. "
                           f"Received: {rows.to_dict('records')}")
    return frame


def match_stations(picks, stations):
    """Pair picks with station coordinates; set aside picks of unknown stations.

    Args:
        picks: DataFrame with a ``trace_id`` column (``NET.STA.LOC``).
        stations: station table (:func:`read_stations`).

    Returns:
        ``(picks, sites)``: the picks whose station has coordinates (index
        kept), and one row per picked ``trace_id`` with the columns ``id``
        (the trace id), ``latitude``, ``longitude``, ``elevation_m``.

    Warns:
        CatalogWarning: naming every picked station absent from ``stations``.
    """
    if "trace_id" not in picks.columns:
        raise CatalogError(f"The picks need a trace_id column. Received columns: "
                           f"{', '.join(map(str, picks.columns))}")
    table = stations.assign(key=stations["network"] + "." + stations["station"]).set_index("key")
    keys = picks["trace_id"].map(station_key)
    known = keys.isin(table.index)
    if not known.all():
        missing = sorted(set(keys[~known]))
        warnings.warn(f"{len(missing)} picked station(s) have no coordinates in the station "
                      f"table; their {int((~known).sum())} pick(s) are left out: "
                      f"{', '.join(missing)}", CatalogWarning, stacklevel=2)
    kept = picks[known]
    ids = sorted(set(kept["trace_id"]))
    sites = pd.DataFrame({"id": ids})
    coordinates = table.loc[[station_key(i) for i in ids], ["latitude", "longitude", "elevation_m"]]
    for column in coordinates.columns:
        sites[column] = coordinates[column].to_numpy()
    return kept, sites
