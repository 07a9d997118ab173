"""Association and location of picks with PyOcto, in independent time chunks.

::

    from utrans.catalog import AssociationSettings, associate_picks, parse_velocity, read_stations

    result = associate_picks(picks, read_stations("stations.xml"), parse_velocity("vp=6.0,vs=3.5"),
                             AssociationSettings())
    result.events, result.arrivals, result.picks

**Geometry.** Stations are projected to a local transverse Mercator grid in
km centred on the network (pyproj; PyOcto's own convention: ``x`` east,
``y`` north, ``z`` km below sea level, a station at ``-elevation``). The
search zone is the stations' box widened by ``margin_km`` (or the
``area`` of the settings) and ``depth_range_km`` deep.

**Chunks.** Time is cut into chunks of ``chunk_s`` seconds on a grid
aligned to multiples of ``chunk_s`` since 1970 (so the cut does not depend
on the first pick). Chunk ``k``'s *core* is ``[k * chunk_s, (k + 1) * chunk_s)``;
it is given the picks of its core widened by ``overlap_s`` on both sides,
``overlap_s`` being at least the longest S travel time across the zone, so
an event whose origin lies in the core has all its picks in the chunk.
:func:`associate_chunk` is a pure function of its :class:`ChunkJob` (picks,
stations, model, settings, zone), so chunks can run in any order, in
worker processes or on Dask workers, and be merged by :func:`merge_chunks`.

**Edge rule** (no event lost, none doubled):

1. a chunk keeps the events whose origin time lies in its core widened by
   ``min_interevent_time_s`` on each side (an event whose origin time the
   two neighbours place on opposite sides of the boundary is still kept);
2. two kept events of different chunks are one event when their origin
   times differ by less than ``min_interevent_time_s`` or they share at least
   half of the picks of the smaller one; of such a group the event with most
   picks stays (ties: the one whose origin lies in its own chunk's core, then
   the earlier chunk);
3. a pick still claimed by two events (PyOcto lets events share up to
   ``max_pick_overlap`` picks) stays with the event where its travel-time
   residual is smallest; an event left with fewer picks than the settings
   require is dropped and its picks are unassociated.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyocto
import pyproj

from utrans.catalog.settings import AssociationSettings
from utrans.catalog.stations import match_stations
from utrans.catalog.values import EVENT_COLUMNS, event_id_of, event_values
from utrans.catalog.velocity import parse_velocity
from utrans.core.errors import CatalogError

__all__ = ["CatalogResult", "Chunk", "ChunkJob", "ChunkResult", "Zone", "associate_chunk",
           "associate_picks", "longest_s_travel_s", "merge_chunks", "plan_chunks", "prepare_jobs",
           "search_zone"]

logger = logging.getLogger(__name__)

_WGS84 = pyproj.CRS.from_epsg(4326)


@dataclasses.dataclass(frozen=True)
class Zone:
    """The local projection and the search zone.

    Args:
        crs: PROJ string of the local transverse Mercator projection (km).
        xlim: ``(west, east)`` km.
        ylim: ``(south, north)`` km.
        zlim: ``(top, bottom)`` km below sea level.
    """

    crs: str
    xlim: tuple
    ylim: tuple
    zlim: tuple

    def _transformer(self):
        return pyproj.Transformer.from_crs(_WGS84, pyproj.CRS(self.crs), always_xy=True)

    def to_local(self, latitude, longitude):
        """``(x, y)`` km of geographic coordinates (arrays)."""
        return self._transformer().transform(np.asarray(longitude, dtype=float),
                                             np.asarray(latitude, dtype=float))

    def to_geographic(self, x, y):
        """``(latitude, longitude)`` of local ``x, y`` km (arrays)."""
        lon, lat = self._transformer().transform(np.asarray(x, dtype=float),
                                                 np.asarray(y, dtype=float), direction="INVERSE")
        return lat, lon

    def to_dict(self):
        """JSON-serialisable dict."""
        return {"crs": self.crs, "xlim_km": list(self.xlim), "ylim_km": list(self.ylim),
                "zlim_km": list(self.zlim)}


def search_zone(sites, settings):
    """The local projection centred on the stations and the search zone (module doc).

    Args:
        sites: DataFrame with ``latitude``, ``longitude``.
        settings: :class:`AssociationSettings`.

    Returns:
        A :class:`Zone`.
    """
    if settings.area is not None:
        lat_min, lat_max, lon_min, lon_max = settings.area
        lats, lons = np.array([lat_min, lat_max]), np.array([lon_min, lon_max])
    else:
        lats, lons = sites["latitude"].to_numpy(), sites["longitude"].to_numpy()
    lat0 = (lats.min() + lats.max()) / 2
    lon0 = (lons.min() + lons.max()) / 2
    crs = f"+proj=tmerc +lat_0={lat0:.6f} +lon_0={lon0:.6f} +units=km +ellps=WGS84"
    zone = Zone(crs=crs, xlim=(0.0, 0.0), ylim=(0.0, 0.0), zlim=settings.depth_range_km)
    if settings.area is not None:
        corners_lat = np.array([lat_min, lat_min, lat_max, lat_max])
        corners_lon = np.array([lon_min, lon_max, lon_min, lon_max])
        x, y = zone.to_local(corners_lat, corners_lon)
        margin = 0.0
    else:
        x, y = zone.to_local(lats, lons)
        margin = settings.margin_km
    return dataclasses.replace(zone, xlim=(float(x.min() - margin), float(x.max() + margin)),
                               ylim=(float(y.min() - margin), float(y.max() + margin)))


def _longest_travel_s(zone, sites, velocity, grid_km):
    corners = np.array([(x, y) for x in zone.xlim for y in zone.ylim])
    distance = np.hypot(corners[:, None, 0] - sites["x"].to_numpy()[None, :],
                        corners[:, None, 1] - sites["y"].to_numpy()[None, :]).max()
    return float(np.max(velocity.travel_time("S", distance, zone.zlim[1],
                                             sites["elevation_m"].max(), grid_km)))


def longest_s_travel_s(stations, velocity, settings=None):
    """The longest S travel time from the search zone of ``stations`` to any of them.

    It bounds how long after its origin an event's last pick can come: the
    overlap of the chunks (module doc) and the wait of a streaming catalogue
    (:class:`utrans.stream.catalog.StreamCatalog`) are made of it.

    Args:
        stations: station table (:func:`~utrans.catalog.stations.read_stations`),
            or any DataFrame with ``latitude``, ``longitude``, ``elevation_m``.
        velocity: :class:`~utrans.catalog.velocity.VelocityModel` or its text.
        settings: :class:`AssociationSettings` (``None``: defaults).

    Returns:
        Seconds (float).

    Raises:
        CatalogError: an empty station table.
    """
    settings = settings or AssociationSettings()
    if not len(stations):
        raise CatalogError("The longest travel time needs at least one station. Received: an "
                           "empty station table")
    sites = stations[["latitude", "longitude", "elevation_m"]].reset_index(drop=True)
    zone = search_zone(sites, settings)
    x, y = zone.to_local(sites["latitude"], sites["longitude"])
    sites = sites.assign(x=x, y=y)
    return _longest_travel_s(zone, sites, parse_velocity(velocity), settings.grid_km)


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One time chunk (module doc); times are POSIX seconds.

    Args:
        index: ``floor(start / chunk_s)``.
        start: start of the core.
        end: end of the core (excluded).
        read_start: first pick time given to the chunk.
        read_end: last pick time given to the chunk (excluded).
    """

    index: int
    start: float
    end: float
    read_start: float
    read_end: float


def plan_chunks(times, chunk_s, overlap_s):
    """The chunks whose cores cover every possible origin time of the picks.

    Args:
        times: pick times, POSIX seconds.
        chunk_s: core length.
        overlap_s: how far picks are read beyond the core on each side.

    Returns:
        List of :class:`Chunk`, in time order, holding at least one pick.
    """
    times = np.sort(np.asarray(times, dtype=float))
    if not len(times):
        return []
    first = math.floor((times[0] - overlap_s) / chunk_s)
    last = math.floor(times[-1] / chunk_s)
    chunks = []
    for k in range(first, last + 1):
        start, end = k * chunk_s, (k + 1) * chunk_s
        read_start, read_end = start - overlap_s, end + overlap_s
        a, b = np.searchsorted(times, [read_start, read_end])
        if b > a:
            chunks.append(Chunk(k, float(start), float(end), float(read_start), float(read_end)))
    return chunks


@dataclasses.dataclass(frozen=True)
class ChunkJob:
    """Everything :func:`associate_chunk` needs (picklable).

    Args:
        chunk: the :class:`Chunk`.
        picks: DataFrame ``pick_index, station, time, phase`` (POSIX s) of the
            chunk's read window.
        sites: DataFrame ``id, x, y, z`` (km) of the stations.
        velocity: :class:`~utrans.catalog.velocity.VelocityModel`.
        settings: :class:`AssociationSettings`.
        zone: :class:`Zone`.
        overlap_s: the overlap in use.
    """

    chunk: Chunk
    picks: pd.DataFrame
    sites: pd.DataFrame
    velocity: object
    settings: AssociationSettings
    zone: Zone
    overlap_s: float


class ChunkResult(NamedTuple):
    """Output of :func:`associate_chunk`.

    Attributes:
        chunk: the :class:`Chunk`.
        events: DataFrame ``chunk, event, time, x, y, z, n_picks`` of the kept events.
        assignments: DataFrame ``chunk, event, pick_index, residual_s``.
    """

    chunk: Chunk
    events: pd.DataFrame
    assignments: pd.DataFrame


_EVENT_FRAME = ["chunk", "event", "time", "x", "y", "z", "n_picks"]
_ASSIGNMENT_FRAME = ["chunk", "event", "pick_index", "residual_s"]


def _pyocto_velocity(velocity, settings, zone, folder):
    if velocity.is_homogeneous:
        return pyocto.VelocityModel0D(p_velocity=velocity.vp[0], s_velocity=velocity.vs[0],
                                      tolerance=settings.tolerance_s)
    if zone.zlim[0] < 0:
        raise CatalogError(f"A layered model allows no search above sea level (PyOcto's 1-D "
                           f"tables start at depth 0). Received: depth_range_km={zone.zlim}")
    delta = settings.grid_km
    xdist = math.hypot(zone.xlim[1] - zone.xlim[0], zone.ylim[1] - zone.ylim[0]) + 4 * delta
    zdist = zone.zlim[1] + 4 * delta
    path = f"{folder}/velocity_1d.bin"
    pyocto.VelocityModel1D.create_model(velocity.pyocto_nodes(delta), delta, xdist, zdist, path)
    return pyocto.VelocityModel1D(path, tolerance=settings.tolerance_s,
                                  surface_p_velocity=velocity.vp[0],
                                  surface_s_velocity=velocity.vs[0])


def associate_chunk(job):
    """Associate and locate the picks of one chunk with PyOcto (module doc).

    Args:
        job: a :class:`ChunkJob`.

    Returns:
        A :class:`ChunkResult` with the events kept by the edge rule (1).
    """
    settings, zone, chunk = job.settings, job.zone, job.chunk
    empty = ChunkResult(chunk, pd.DataFrame(columns=_EVENT_FRAME),
                        pd.DataFrame(columns=_ASSIGNMENT_FRAME))
    picks = job.picks.sort_values(["time", "pick_index"]).reset_index(drop=True)
    if len(picks) < settings.min_picks:
        return empty
    with tempfile.TemporaryDirectory(prefix="utrans-pyocto-") as folder:
        model = _pyocto_velocity(job.velocity, settings, zone, folder)
        associator = pyocto.OctoAssociator(
            xlim=zone.xlim, ylim=zone.ylim, zlim=zone.zlim, velocity_model=model,
            time_before=job.overlap_s, n_picks=settings.min_picks,
            n_p_picks=settings.min_p_picks, n_s_picks=settings.min_s_picks,
            n_p_and_s_picks=settings.min_p_and_s_stations,
            pick_match_tolerance=settings.pick_match_tolerance_s,
            min_interevent_time=settings.min_interevent_time_s, n_threads=settings.n_threads)
        with warnings.catch_warnings():
            # PyOcto 0.2.2 calls DataFrame methods with inplace=True, which pandas 3.1
            # deprecates: its concern, not the user's.
            warnings.filterwarnings("ignore", message="The inplace keyword")
            events, assignments = associator.associate(
                picks[["station", "time", "phase"]], job.sites[["id", "x", "y", "z"]])
    if not len(events):
        return empty
    guard = settings.min_interevent_time_s
    keep = (events["time"] >= chunk.start - guard) & (events["time"] < chunk.end + guard)
    events = events[keep]
    out_events = pd.DataFrame({
        "chunk": chunk.index, "event": events["idx"].to_numpy(), "time": events["time"].to_numpy(),
        "x": events["x"].to_numpy(), "y": events["y"].to_numpy(), "z": events["z"].to_numpy(),
        "n_picks": events["picks"].to_numpy()}, columns=_EVENT_FRAME)
    assignments = assignments[assignments["event_idx"].isin(events["idx"])]
    out_assignments = pd.DataFrame({
        "chunk": chunk.index, "event": assignments["event_idx"].to_numpy(),
        "pick_index": picks["pick_index"].to_numpy()[assignments["pick_idx"].to_numpy()],
        "residual_s": assignments["residual"].to_numpy()}, columns=_ASSIGNMENT_FRAME)
    return ChunkResult(chunk, out_events.reset_index(drop=True),
                       out_assignments.reset_index(drop=True))


def _enough(phases, settings):
    n_p = int(np.sum(phases == "P"))
    n_s = int(np.sum(phases == "S"))
    return len(phases) >= settings.min_picks and n_p >= settings.min_p_picks and \
        n_s >= settings.min_s_picks


def _keys(frame):
    return frame["chunk"].astype(int).astype(str) + ":" + frame["event"].astype(int).astype(str)


def merge_chunks(results, settings, phases):
    """Merge chunk results by the edge rule (module doc, rules 2 and 3).

    Args:
        results: iterable of :class:`ChunkResult`.
        settings: :class:`AssociationSettings`.
        phases: ``pick_index -> phase`` (a Series) to recount P and S.

    Returns:
        ``(events, assignments)``: events ``key, time, x, y, z`` sorted by time
        (``key`` is ``"<chunk>:<event>"``) and assignments
        ``key, pick_index, residual_s``, one row per pick.
    """
    results = list(results)
    empty = (pd.DataFrame(columns=["key", "time", "x", "y", "z"]),
             pd.DataFrame(columns=["key", "pick_index", "residual_s"]))
    events = [r.events for r in results if len(r.events)]
    if not events:
        return empty
    events = pd.concat(events, ignore_index=True)
    assignments = pd.concat([r.assignments for r in results if len(r.assignments)],
                            ignore_index=True)
    events["key"], assignments["key"] = _keys(events), _keys(assignments)
    picks_of = {key: set(group) for key, group in assignments.groupby("key")["pick_index"]}
    events["n_picks"] = [len(picks_of.get(key, ())) for key in events["key"]]
    cores = {r.chunk.index: (r.chunk.start, r.chunk.end) for r in results}
    events["in_core"] = [cores[c][0] <= t < cores[c][1]
                         for c, t in zip(events["chunk"], events["time"])]
    # Rule 2: best event first; it removes its duplicates of other chunks.
    # Copies share picks, so their origins differ by less than the overlap:
    # only kept events in the neighbouring time buckets are compared.
    window = max([r.chunk.read_end - r.chunk.end for r in results] +
                 [settings.min_interevent_time_s, 1.0])
    events = events.sort_values(["n_picks", "in_core", "chunk", "time"],
                                ascending=[False, False, True, True])
    kept, buckets = [], {}
    for row in events.itertuples():
        bucket = math.floor(row.time / window)
        neighbours = [other for b in (bucket - 1, bucket, bucket + 1)
                      for other in buckets.get(b, ())]
        duplicate = False
        for other in neighbours:
            if other.chunk == row.chunk:
                continue
            shared = len(picks_of.get(row.key, set()) & picks_of.get(other.key, set()))
            if abs(other.time - row.time) < settings.min_interevent_time_s or \
                    (row.n_picks and shared >= min(row.n_picks, other.n_picks) / 2):
                duplicate = True
                break
        if not duplicate:
            kept.append(row)
            buckets.setdefault(bucket, []).append(row)
    events = events[events["key"].isin([row.key for row in kept])]
    assignments = assignments[assignments["key"].isin(events["key"])]
    # Rule 3: one event per pick, the smallest |residual| wins; recount.
    while True:
        best = assignments.assign(_abs=assignments["residual_s"].abs()) \
            .sort_values(["pick_index", "_abs", "key"]).drop_duplicates("pick_index")
        enough = best.groupby("key")["pick_index"].apply(
            lambda index: _enough(phases.loc[index.to_numpy()].to_numpy(), settings))
        failing = set(events["key"]) - set(enough[enough].index)
        if not failing:
            break
        events = events[~events["key"].isin(failing)]
        assignments = assignments[~assignments["key"].isin(failing)]
    events = events.sort_values("time").reset_index(drop=True)[["key", "time", "x", "y", "z"]]
    best = best.sort_values(["key", "pick_index"]).reset_index(drop=True)
    return events, best[["key", "pick_index", "residual_s"]]


class CatalogResult(NamedTuple):
    """Output of :func:`associate_picks`.

    Attributes:
        events: one row per event (:data:`utrans.catalog.values.EVENT_COLUMNS`).
        arrivals: one row per associated pick
            (:data:`utrans.catalog.values.ARRIVAL_COLUMNS` + estimates and residuals).
        picks: every input pick with an ``event_id`` column (empty when not associated).
        settings: the settings used, as a dict, with the resolved ``overlap_s``
            and the search zone under ``"resolved"``.
    """

    events: pd.DataFrame
    arrivals: pd.DataFrame
    picks: pd.DataFrame
    settings: dict


def _pick_seconds(picks):
    try:
        times = pd.to_datetime(picks["peak_time"].astype(str), utc=True, format="ISO8601")
    except ValueError as error:
        raise CatalogError(f"Pick times are ISO-8601 UTC text ('2024-03-01T00:10:01.230000Z'): "
                           f"{error}") from None
    return ((times - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(dtype=float)


def prepare_jobs(picks, stations, velocity, settings=None):
    """Everything before PyOcto: stations matched, projected, chunks planned.

    Args:
        picks: the picks table (``trace_id``, ``phase``, ``peak_time``, ...).
        stations: station table (:func:`~utrans.catalog.stations.read_stations`).
        velocity: :class:`~utrans.catalog.velocity.VelocityModel` or its text.
        settings: :class:`AssociationSettings` (``None``: defaults).

    Returns:
        ``(jobs, sites, zone, resolved)``: the :class:`ChunkJob` list, the
        picked stations with local coordinates, the :class:`Zone` and a dict
        of resolved values.

    Warns:
        CatalogWarning: picked stations without coordinates (their picks are
            left out).
    """
    settings = settings or AssociationSettings()
    velocity = parse_velocity(velocity)
    missing = [c for c in ("trace_id", "phase", "peak_time") if c not in picks.columns]
    if missing:
        raise CatalogError(f"The picks lack the column(s) {', '.join(missing)}. "
                           f"Received columns: {', '.join(map(str, picks.columns))}")
    usable = picks[picks["phase"].isin(["P", "S"])]
    kept, sites = match_stations(usable, stations)
    if not len(sites):
        return [], sites, None, {"overlap_s": settings.overlap_s}
    zone = search_zone(sites, settings)
    sites["x"], sites["y"] = zone.to_local(sites["latitude"], sites["longitude"])
    sites["z"] = -sites["elevation_m"] / 1000.0
    longest = _longest_travel_s(zone, sites, velocity, settings.grid_km)
    if settings.overlap_s is None:
        overlap = float(math.ceil(longest + settings.tolerance_s))
    else:
        overlap = float(settings.overlap_s)
        if overlap < longest:
            raise CatalogError(f"overlap_s must cover the longest S travel time across the search "
                               f"zone ({longest:.1f} s), or events at chunk edges lose picks. "
                               f"Received: overlap_s={overlap}")
    table = pd.DataFrame({"pick_index": kept.index.to_numpy(),
                          "station": kept["trace_id"].to_numpy(),
                          "time": _pick_seconds(kept), "phase": kept["phase"].to_numpy()})
    table = table.sort_values(["time", "pick_index"]).reset_index(drop=True)
    jobs = []
    for chunk in plan_chunks(table["time"], settings.chunk_s, overlap):
        a, b = np.searchsorted(table["time"].to_numpy(), [chunk.read_start, chunk.read_end])
        jobs.append(ChunkJob(chunk=chunk, picks=table.iloc[a:b].reset_index(drop=True),
                             sites=sites[["id", "x", "y", "z"]].copy(), velocity=velocity,
                             settings=settings, zone=zone, overlap_s=overlap))
    resolved = {"overlap_s": overlap, "longest_s_travel_s": round(longest, 3),
                "zone": zone.to_dict(), "velocity": velocity.to_dict(), "n_chunks": len(jobs)}
    return jobs, sites, zone, resolved


def associate_picks(picks, stations, velocity, settings=None, map_function=map):
    """Associate picks into located events with magnitudes (module doc).

    Args:
        picks: the picks table of ``utrans annotate`` (``trace_id``, ``phase``,
            ``peak_time``, ... and any ``<quantity>__<model>`` columns).
        stations: station table (:func:`~utrans.catalog.stations.read_stations`).
        velocity: :class:`~utrans.catalog.velocity.VelocityModel` or its text
            (``"vp=6.0,vs=3.5"`` or a CSV path).
        settings: :class:`AssociationSettings` (``None``: defaults).
        map_function: how chunks are run: ``map`` (default, in turn), or any
            ``map``-like callable (``executor.map``, a Dask client's
            ``lambda f, jobs: client.gather(client.map(f, jobs))``).

    Returns:
        A :class:`CatalogResult` ``(events, arrivals, picks, settings)``.

    Warns:
        CatalogWarning: picked stations without coordinates.
    """
    settings = settings or AssociationSettings()
    velocity = parse_velocity(velocity)
    picks = picks.reset_index(drop=True)
    jobs, sites, zone, resolved = prepare_jobs(picks, stations, velocity, settings)
    results = list(map_function(associate_chunk, jobs))
    events, assignments = merge_chunks(results, settings, picks["phase"])
    if zone is not None and len(events):
        events["latitude"], events["longitude"] = zone.to_geographic(events["x"], events["y"])
        events["depth_km"] = events["z"].astype(float)
        events["event_id"] = event_id_of(events["time"])
        assignments = assignments.merge(events[["key", "event_id"]], on="key")
    else:
        events = pd.DataFrame(columns=["event_id", "time", "latitude", "longitude", "depth_km"])
        assignments = pd.DataFrame(columns=["event_id", "pick_index", "residual_s"])
    logger.info("Associated %d event(s) from %d pick(s) in %d chunk(s)", len(events), len(picks),
                len(jobs))
    table, arrivals, picks_out = event_values(events, assignments, picks, sites,
                                              settings.magnitude_column)
    settings_dict = {"settings": settings.to_dict(), "resolved": resolved}
    return CatalogResult(table[EVENT_COLUMNS], arrivals, picks_out, settings_dict)
