"""Association settings: one frozen dataclass, written beside the catalogue as JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

from utrans.core.errors import CatalogError
from utrans.core.io import write_json

__all__ = ["AssociationSettings"]


def _number(name, value, low=None, integer=False, allow_none=False):
    if value is None and allow_none:
        return
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if integer:
        ok = ok and float(value).is_integer()
    if not ok or (low is not None and value < low):
        bound = "" if low is None else f" >= {low:g}"
        raise CatalogError(f"{name} must be {kind}{bound}. Received: {name}={value!r}")


def _numbers(name, value, length, what):
    """``value`` as a tuple of ``length`` numbers (``what`` says which, for the error)."""
    values = tuple(value)
    if len(values) != length:
        raise CatalogError(f"{name} is {what}. Received: {name}={value!r}")
    for item in values:
        _number(name, item)
    return values


@dataclasses.dataclass(frozen=True)
class AssociationSettings:
    """How picks become events (PyOcto's parameters in the package's words).

    Args:
        min_picks: least picks of an event (PyOcto ``n_picks``).
        min_p_picks: least P picks (``n_p_picks``).
        min_s_picks: least S picks (``n_s_picks``).
        min_p_and_s_stations: least stations with both a P and an S pick
            (``n_p_and_s_picks``).
        tolerance_s: travel-time tolerance of the association search (the
            velocity model's ``tolerance``), s.
        pick_match_tolerance_s: largest travel-time residual of a pick
            attached to a located event (``pick_match_tolerance``), s.
        min_interevent_time_s: two events closer in origin time are one
            (``min_interevent_time``), s.
        margin_km: the search zone is the stations' bounding box (in the
            local projection) widened by this much on every side, km.
        depth_range_km: ``(top, bottom)`` of the search zone, km below sea level.
        area: ``(lat_min, lat_max, lon_min, lon_max)`` of the search zone,
            instead of the stations' box and ``margin_km``; ``None``: stations.
        chunk_s: length of the time chunks associated independently, s.
        overlap_s: picks this long before and after a chunk are given to it,
            so that an event near a chunk edge sees all its picks; at least
            the longest S travel time across the zone. ``None``: that travel
            time plus ``tolerance_s``, rounded up to a second.
        magnitude_column: the pick column whose values make the event
            magnitude; ``None``: the first ``magnitude__<model>`` column.
        grid_km: grid spacing of a layered model's travel-time tables, km.
        n_threads: PyOcto threads per chunk (1 keeps results reproducible and
            lets chunks run side by side in worker processes).
    """

    min_picks: int = 8
    min_p_picks: int = 4
    min_s_picks: int = 2
    min_p_and_s_stations: int = 2
    tolerance_s: float = 1.0
    pick_match_tolerance_s: float = 1.5
    min_interevent_time_s: float = 3.0
    margin_km: float = 20.0
    depth_range_km: tuple = (0.0, 30.0)
    area: tuple | None = None
    chunk_s: float = 3600.0
    overlap_s: float | None = None
    magnitude_column: str | None = None
    grid_km: float = 0.5
    n_threads: int = 1

    def __post_init__(self):
        for name in ("min_picks", "min_p_picks", "min_s_picks", "min_p_and_s_stations"):
            _number(name, getattr(self, name), 0, integer=True)
        _number("min_picks", self.min_picks, 1, integer=True)
        _number("n_threads", self.n_threads, 1, integer=True)
        for name in ("tolerance_s", "pick_match_tolerance_s", "min_interevent_time_s",
                     "margin_km"):
            _number(name, getattr(self, name), 0)
        _number("chunk_s", self.chunk_s, 1)
        _number("grid_km", self.grid_km, 0.01)
        _number("overlap_s", self.overlap_s, 0, allow_none=True)
        if self.min_picks < self.min_p_picks + self.min_s_picks:
            raise CatalogError(f"min_picks must be at least min_p_picks + min_s_picks. Received: "
                               f"min_picks={self.min_picks}, min_p_picks={self.min_p_picks}, "
                               f"min_s_picks={self.min_s_picks}")
        if self.min_p_and_s_stations > min(self.min_p_picks, self.min_s_picks):
            raise CatalogError(f"min_p_and_s_stations cannot exceed min_p_picks or min_s_picks. "
                               f"Received: min_p_and_s_stations={self.min_p_and_s_stations}, "
                               f"min_p_picks={self.min_p_picks}, min_s_picks={self.min_s_picks}")
        depth = _numbers("depth_range_km", self.depth_range_km, 2, "(top, bottom) in km")
        if not depth[0] < depth[1]:
            raise CatalogError(f"depth_range_km is (top, bottom) with top above bottom. "
                               f"Received: depth_range_km={depth}")
        object.__setattr__(self, "depth_range_km", tuple(float(v) for v in depth))
        if self.area is not None:
            area = _numbers("area", self.area, 4, "(lat_min, lat_max, lon_min, lon_max)")
            lat_min, lat_max, lon_min, lon_max = area
            if not (-90 <= lat_min < lat_max <= 90 and -180 <= lon_min < lon_max <= 360):
                raise CatalogError(f"area is (lat_min, lat_max, lon_min, lon_max) with each "
                                   f"minimum below its maximum. Received: area={area}")
            object.__setattr__(self, "area", tuple(float(v) for v in area))
        if self.magnitude_column is not None and not str(self.magnitude_column):
            raise CatalogError("magnitude_column is a column name or None. Received: ''")

    def to_dict(self):
        """The settings as a JSON-serialisable dict."""
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data):
        """Settings from :meth:`to_dict`'s output.

        Args:
            data: dict; unknown keys are an error.

        Returns:
            :class:`AssociationSettings`.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise CatalogError(f"Unknown association setting(s) {', '.join(unknown)}; known: "
                               f"{', '.join(sorted(names))}")
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**data)

    def write(self, path, **resolved):
        """Write the settings as JSON (atomically), with values resolved for a run.

        Args:
            path: the JSON file.
            **resolved: extra JSON-serialisable entries stored under
                ``"resolved"`` (the overlap used, the search zone, ...).

        Returns:
            The path.
        """
        data = {"settings": self.to_dict()}
        if resolved:
            data["resolved"] = resolved
        return write_json(data, path)

    @classmethod
    def read(cls, path):
        """Settings from a file written by :meth:`write`.

        Args:
            path: the JSON file.

        Returns:
            :class:`AssociationSettings`.
        """
        data = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
        return cls.from_dict(data["settings"])
