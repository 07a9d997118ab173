"""Distances and azimuths on the WGS84 ellipsoid (pyproj's geodesics), vectorised.

One function serves the whole package: the metadata of the data layer
(epicentral distance and back-azimuth from coordinates), the location metrics
and the event catalogue's residuals.
"""

from __future__ import annotations

import numpy as np
from pyproj import Geod

__all__ = ["distance_azimuth", "epicentral_distance_km"]

_WGS84 = Geod(ellps="WGS84")


def _coordinates(name, values, lo, hi, hi_open=False):
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    bad = finite[(finite < lo) | ((finite >= hi) if hi_open else (finite > hi))]
    if bad.size or np.isinf(v).any():
        shown = float(bad[0] if bad.size else v[np.isinf(v)][0])
        bracket = ")" if hi_open else "]"
        raise ValueError(f"{name} must be in [{lo:g}, {hi:g}{bracket} degrees. "
                         f"Received: {name}={shown!r}")
    return v


def distance_azimuth(event_lat, event_lon, station_lat, station_lon):
    """Epicentral distance, azimuth and back-azimuth between events and stations.

    Args:
        event_lat: event latitude in degrees (arrays broadcast).
        event_lon: event longitude in degrees.
        station_lat: station latitude in degrees.
        station_lon: station longitude in degrees.

    Returns:
        ``(distance_km, azimuth_deg, back_azimuth_deg)``: the azimuth is
        measured at the event towards the station, the back-azimuth at the
        station towards the event, both clockwise from north in ``[0, 360)``.
        NaN where a coordinate is NaN; floats for scalar input.

    Raises:
        ValueError: a latitude outside [-90, 90], a longitude outside
            [-180, 360) or an infinite coordinate (the message echoes it).
    """
    lat1 = _coordinates("event_lat", event_lat, -90.0, 90.0)
    lon1 = _coordinates("event_lon", event_lon, -180.0, 360.0, hi_open=True)
    lat2 = _coordinates("station_lat", station_lat, -90.0, 90.0)
    lon2 = _coordinates("station_lon", station_lon, -180.0, 360.0, hi_open=True)
    lat1, lon1, lat2, lon2 = np.broadcast_arrays(lat1, lon1, lat2, lon2)
    nan = np.isnan(lat1) | np.isnan(lon1) | np.isnan(lat2) | np.isnan(lon2)
    az, baz, dist = _WGS84.inv(np.where(nan, 0.0, lon1), np.where(nan, 0.0, lat1),
                               np.where(nan, 0.0, lon2), np.where(nan, 0.0, lat2))
    out = [np.where(nan, np.nan, np.asarray(dist) / 1000.0),
           np.where(nan, np.nan, np.asarray(az) % 360.0),
           np.where(nan, np.nan, np.asarray(baz) % 360.0)]
    if np.ndim(out[0]) == 0:
        return tuple(float(v) for v in out)
    return tuple(out)


def epicentral_distance_km(lat1, lon1, lat2, lon2):
    """WGS84 geodesic distance between points in km (vectorised; NaN where a coordinate is NaN)."""
    return distance_azimuth(lat1, lon1, lat2, lon2)[0]
