"""Velocity models for association and location: homogeneous or 1-D layered.

A :class:`VelocityModel` is a stack of layers, each with constant P and S
velocity (km/s) from its top depth (km below sea level) down to the next
layer's top; the last layer is a half-space. A homogeneous model is one
layer. :func:`parse_velocity` reads either

* ``"vp=6.0,vs=3.5"``: homogeneous;
* a CSV file with the columns ``depth``, ``vp``, ``vs`` (km, km/s), one row
  per layer top, the first at depth 0, depths strictly increasing.

Travel times (:meth:`VelocityModel.travel_time`) are straight rays in a
homogeneous model, and first arrivals on a 2-D grid through the layers
(pyrocko's fast-marching eikonal solver, the one PyOcto builds its tables
with) in a layered one, with a vertical elevation correction at the surface
velocity for stations above sea level, as PyOcto applies it.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib

import numpy as np
import pandas as pd

from utrans.core.errors import CatalogError

__all__ = ["VelocityModel", "parse_velocity", "read_velocity_csv"]

PHASES = ("P", "S")


@dataclasses.dataclass(frozen=True)
class VelocityModel:
    """A homogeneous or 1-D layered velocity model (module doc).

    Args:
        depth_km: top of each layer, km below sea level, first 0, increasing.
        vp: P velocity of each layer, km/s.
        vs: S velocity of each layer, km/s, below ``vp``.

    Raises:
        CatalogError: lengths differ, a value is not a positive finite number,
            ``vs >= vp``, the first depth is not 0 or depths do not increase.
    """

    depth_km: tuple
    vp: tuple
    vs: tuple

    def __post_init__(self):
        for name in ("depth_km", "vp", "vs"):
            values = np.atleast_1d(getattr(self, name))
            try:
                object.__setattr__(self, name, tuple(float(v) for v in values))
            except (TypeError, ValueError):
                raise CatalogError(f"{name} must hold numbers. Received: {name}={values.tolist()}") \
                    from None
        if not len(self.depth_km) == len(self.vp) == len(self.vs) or not self.depth_km:
            raise CatalogError(f"A velocity model needs as many depths as vp and vs values (at "
                               f"least one). Received: depth_km={self.depth_km}, vp={self.vp}, "
                               f"vs={self.vs}")
        for k, (depth, vp, vs) in enumerate(zip(self.depth_km, self.vp, self.vs)):
            where = f" (layer {k + 1}, depth {depth:g} km)" if len(self.vp) > 1 else ""
            for name, value in (("vp", vp), ("vs", vs)):
                if not np.isfinite(value) or value <= 0:
                    raise CatalogError(f"Velocities must be positive numbers{where}. "
                                       f"Received: {name}={value}")
            if vs >= vp:
                raise CatalogError(f"S must be slower than P{where}. Received: vp={vp}, vs={vs}")
            if not np.isfinite(depth) or depth < 0:
                raise CatalogError(f"Layer depths are km below sea level, 0 or more. "
                                   f"Received: depth={depth}")
        if self.depth_km[0] != 0.0:
            raise CatalogError(f"The first layer starts at the surface: its depth must be 0 km. "
                               f"Received: depth={self.depth_km[0]}")
        steps = np.diff(self.depth_km)
        if np.any(steps <= 0):
            k = int(np.argmax(steps <= 0))
            raise CatalogError(f"Layer depths must increase from row to row. Received: "
                               f"depth={self.depth_km[k + 1]} after depth={self.depth_km[k]}")

    @classmethod
    def homogeneous(cls, vp, vs):
        """A one-layer model.

        Args:
            vp: P velocity, km/s.
            vs: S velocity, km/s.

        Returns:
            A :class:`VelocityModel`.
        """
        return cls(depth_km=(0.0,), vp=(vp,), vs=(vs,))

    @property
    def is_homogeneous(self):
        """True for a one-layer model."""
        return len(self.vp) == 1

    def velocity(self, phase):
        """The layer velocities of ``"P"`` or ``"S"`` as an array."""
        if phase not in PHASES:
            raise CatalogError(f"Phases are 'P' or 'S'. Received: phase={phase!r}")
        return np.asarray(self.vp if phase == "P" else self.vs)

    def to_dict(self):
        """The model as a JSON-serialisable dict."""
        return {"depth_km": list(self.depth_km), "vp": list(self.vp), "vs": list(self.vs)}

    def pyocto_nodes(self, delta_km):
        """The model as PyOcto's ``depth, vp, vs`` table for ``VelocityModel1D.create_model``.

        PyOcto interpolates linearly between rows and starts a row's values
        at grid cell ``int(depth / delta)``; each layer is given as its top
        row and a row half a cell above the next top, so that every grid
        cell from ``int(top / delta)`` to the next layer's holds the layer's
        constant velocity (the grid of :meth:`travel_time`).

        Args:
            delta_km: the table's grid spacing.

        Returns:
            DataFrame with columns ``depth``, ``vp``, ``vs``.
        """
        rows = []
        for k, (depth, vp, vs) in enumerate(zip(self.depth_km, self.vp, self.vs)):
            rows.append((depth, vp, vs))
            if k + 1 < len(self.depth_km):
                bottom = max(depth, self.depth_km[k + 1] - delta_km / 2)
                if bottom > depth:
                    rows.append((bottom, vp, vs))
        return pd.DataFrame(rows, columns=["depth", "vp", "vs"])

    def travel_time(self, phase, distance_km, depth_km, elevation_m=0.0, delta_km=0.25):
        """First-arrival travel time from a hypocentre to a station (module doc).

        Args:
            phase: ``"P"`` or ``"S"``.
            distance_km: epicentral distance(s), km.
            depth_km: source depth(s), km below sea level.
            elevation_m: station elevation(s), m above sea level.
            delta_km: grid spacing of a layered model's table.

        Returns:
            Travel times in seconds (an array broadcast over the inputs).
        """
        velocity = self.velocity(phase)
        distance = np.asarray(distance_km, dtype=float)
        depth = np.asarray(depth_km, dtype=float)
        elevation_km = np.asarray(elevation_m, dtype=float) / 1000.0
        if self.is_homogeneous:
            return np.hypot(distance, depth + elevation_km) / velocity[0]
        grid = _travel_time_grid(self, phase, float(delta_km),
                                 float(np.max(distance, initial=0.0)),
                                 float(np.max(depth, initial=0.0)))
        x = np.clip(distance / delta_km, 0, grid.shape[0] - 1)
        z = np.clip(np.maximum(depth, 0.0) / delta_km, 0, grid.shape[1] - 1)
        i0, k0 = np.floor(x).astype(int), np.floor(z).astype(int)
        i1, k1 = np.minimum(i0 + 1, grid.shape[0] - 1), np.minimum(k0 + 1, grid.shape[1] - 1)
        fx, fz = x - i0, z - k0
        times = ((1 - fx) * (1 - fz) * grid[i0, k0] + fx * (1 - fz) * grid[i1, k0]
                 + (1 - fx) * fz * grid[i0, k1] + fx * fz * grid[i1, k1])
        return times + np.maximum(elevation_km, 0.0) / velocity[0]


def _bucket(value, delta):
    # Round grid extents up to a power of two of cells so nearby requests
    # share one cached table.
    cells = max(int(np.ceil(value / delta)) + 2, 64)
    return int(2 ** np.ceil(np.log2(cells)))


def _travel_time_grid(model, phase, delta_km, distance_km, depth_km):
    return _cached_grid(model, phase, delta_km, _bucket(distance_km, delta_km),
                        _bucket(depth_km, delta_km))


@functools.lru_cache(maxsize=16)
def _cached_grid(model, phase, delta_km, nx, nz):
    from pyrocko.modelling import eikonal  # noqa: PLC0415 - optional (catalog extra), layered models only

    speeds = np.empty((nx, nz))
    for depth, v in zip(model.depth_km, model.velocity(phase)):
        speeds[:, int(depth / delta_km):] = v
    times = -np.ones_like(speeds)
    times[0, 0] = 0.0
    eikonal.eikonal_solver_fmm_cartesian(speeds, times, delta_km)
    times.flags.writeable = False
    return times


_HOMOGENEOUS_KEYS = {"vp", "vs"}


def _parse_pairs(text):
    values = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in _HOMOGENEOUS_KEYS or key in values:
            raise CatalogError(f"A homogeneous model reads 'vp=6.0,vs=3.5' (km/s). "
                               f"Received: {text!r}")
        try:
            values[key] = float(value)
        except ValueError:
            raise CatalogError(f"{key} must be a number (km/s). Received: {key}={value.strip()!r}") \
                from None
    if set(values) != _HOMOGENEOUS_KEYS:
        raise CatalogError(f"A homogeneous model needs both vp and vs ('vp=6.0,vs=3.5'). "
                           f"Received: {text!r}")
    return VelocityModel.homogeneous(values["vp"], values["vs"])


def read_velocity_csv(path):
    """Read a layered model from a CSV file with columns ``depth``, ``vp``, ``vs``.

    Args:
        path: the file.

    Returns:
        A :class:`VelocityModel`.

    Raises:
        CatalogError: a missing column, a non-numeric or invalid value (the
            message names the file and the value).
    """
    path = pathlib.Path(path)
    frame = pd.read_csv(path)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in ("depth", "vp", "vs") if c not in frame.columns]
    if missing:
        raise CatalogError(f"Velocity file {path} lacks the column(s) {', '.join(missing)}; it "
                           f"needs depth, vp, vs (km, km/s). Received columns: "
                           f"{', '.join(frame.columns)}")
    if frame.empty:
        raise CatalogError(f"Velocity file {path} holds no layer. Received: 0 rows")
    for column in ("depth", "vp", "vs"):
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().any():
            bad = frame[column][values.isna()].iloc[0]
            raise CatalogError(f"Velocity file {path}: {column} must be a number. "
                               f"Received: {column}={bad!r}")
        frame[column] = values
    try:
        return VelocityModel(depth_km=frame["depth"], vp=frame["vp"], vs=frame["vs"])
    except ValueError as error:
        raise CatalogError(f"Velocity file {path}: {error}") from None


def parse_velocity(spec):
    """A :class:`VelocityModel` from ``"vp=6.0,vs=3.5"``, a CSV path, or a model.

    Args:
        spec: the text, a path (``str`` or ``pathlib.Path``) or a
            :class:`VelocityModel` (returned as is).

    Returns:
        A :class:`VelocityModel`.

    Raises:
        CatalogError: unreadable text, invalid values (module doc).
        FileNotFoundError: a path that does not exist.
    """
    if isinstance(spec, VelocityModel):
        return spec
    text = str(spec).strip()
    if "=" in text and not pathlib.Path(text).exists():
        return _parse_pairs(text)
    path = pathlib.Path(text)
    if not path.is_file():
        raise FileNotFoundError(f"A velocity model is 'vp=6.0,vs=3.5' or a CSV file (depth, vp, "
                                f"vs); no file at {path}. Received: velocity={spec!r}")
    return read_velocity_csv(path)
