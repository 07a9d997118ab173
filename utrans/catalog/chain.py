"""An SDS archive and a station file to an event catalogue: picking, association, outputs.

::

    import utrans

    run = utrans.catalog("/data/sds", "stations.xml", "2025-03-05", "2025-03-06",
                         "seist_m_dpk_diting", characterize=["seist_m_emg_diting"],
                         velocity="vp=6.0,vs=3.5", output="march5", workers=2)
    run.events, run.arrivals, run.picks         # also in march5/*.csv, catalog.xml, ...

:func:`catalog` runs three stages:

1. **Picking** (and characterisation): the archive's station-days through
   :func:`utrans.annotate.network.run_network` into ``<output>/picking/``
   (one table and done marker per station-day, ``run.json``, the merged
   ``picks.csv``), on worker processes or a Dask cluster;
2. **Association and location**: the picks in time chunks with PyOcto
   (:func:`utrans.catalog.associate.associate_picks`), the chunks on the same
   workers;
3. **Outputs**: event values and every file of
   :func:`utrans.catalog.output.write_catalog` in ``<output>``, the settings
   of the run (association settings, resolved values, the picking options)
   in ``settings.json``.

Before any work, every input is checked (times, velocity model, settings,
station file, archive, models, output folder): bad input stops with one
line naming the value, and nothing is written. A station of the archive
missing from the station file is named in a :class:`CatalogWarning` and not
picked. A period without picks or events gives empty tables with their
headers.

A killed run resumes with the same command: finished station-days are kept
(their markers) and skipped; association and outputs, seconds to minutes,
are made again from the picks. A run with other picking options into the
same folder is refused (``picking/run.json``); other association settings
only remake the catalogue.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import time
import uuid
import warnings

import obspy
import pandas as pd
from distributed import Client, as_completed
from obspy.clients.filesystem.sds import Client as SDSClient
from tqdm.auto import tqdm

from utrans.annotate.archive import DAY, plan_units
from utrans.annotate.network import local_cluster, plan_pad, run_network, usable_cores
from utrans.catalog.output import write_catalog
from utrans.catalog.settings import AssociationSettings
from utrans.catalog.stations import read_stations
from utrans.catalog.velocity import parse_velocity
from utrans.core.errors import CatalogError, CatalogWarning
from utrans.core.io import check_output_dir

__all__ = ["CatalogRun", "Inputs", "catalog", "check_inputs", "run_catalog"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class CatalogRun:
    """What :func:`catalog` did.

    Args:
        folder: the output folder.
        events: the events table (``None`` when station-days failed).
        arrivals: the arrivals table.
        picks: every pick, with ``event_id`` where associated.
        settings: the settings written to ``settings.json``.
        picking: the :class:`~utrans.annotate.network.NetworkResult` of the
            picking stage.
        skipped_stations: ``NET.STA`` of the archive left out for want of
            coordinates.
        files: name -> path of the files written.
        seconds: wall seconds per stage (``picking``, ``association``,
            ``outputs``).
    """

    folder: pathlib.Path
    events: pd.DataFrame | None
    arrivals: pd.DataFrame | None
    picks: pd.DataFrame | None
    settings: dict
    picking: object
    skipped_stations: list
    files: dict = dataclasses.field(default_factory=dict)
    seconds: dict = dataclasses.field(default_factory=dict)

    @property
    def failed(self):
        """``(unit_id, message)`` of the station-days that did not finish."""
        return self.picking.failed


@dataclasses.dataclass(frozen=True)
class Inputs:
    """The checked inputs of a run (:func:`check_inputs`): what to do, and where.

    The fields ``archive``, ``start``, ``end``, ``model``, ``characterize``,
    ``network``, ``station``, ``location``, ``channel``, ``chunk_s``,
    ``workers`` and ``scheduler`` are as given to :func:`catalog` (times as
    ``obspy.UTCDateTime``).

    Attributes:
        inventory: the station file's path, or ``"the station table"``.
        stations: station table of the archive stations to pick.
        skipped: ``NET.STA`` of the archive stations without coordinates.
        units: the planned station-days of the stations to pick.
        velocity: the :class:`~utrans.catalog.velocity.VelocityModel`.
        settings: the :class:`~utrans.catalog.settings.AssociationSettings`.
        folder: the output folder (it exists and is writable).
    """

    archive: pathlib.Path
    inventory: str
    start: obspy.UTCDateTime
    end: obspy.UTCDateTime
    model: str
    characterize: tuple
    network: str
    station: str
    location: str
    channel: str
    chunk_s: float
    workers: int | None
    scheduler: str | None
    stations: pd.DataFrame
    skipped: tuple
    units: tuple
    velocity: object
    settings: AssociationSettings
    folder: pathlib.Path

    @property
    def picked(self):
        """``NET.STA`` of the stations to pick, sorted."""
        return sorted(set(self.stations["network"] + "." + self.stations["station"]))

    def describe(self):
        """A dict of the run's inputs for ``settings.json``."""
        return {"archive": str(self.archive), "inventory": self.inventory,
                "start": str(self.start), "end": str(self.end), "model": self.model,
                "characterize": list(self.characterize), "stations": self.picked,
                "skipped_stations": list(self.skipped)}


def check_inputs(archive, inventory, start, end, model, *, output="catalog_outputs",
                 velocity="vp=6.0,vs=3.5", settings=None, characterize=(), network="*",
                 station="*", location="*", channel="*", chunk_s=DAY, workers=None,
                 scheduler=None):
    """Check every input of :func:`catalog` before any work (module doc).

    Every argument is as in :func:`catalog`.

    Returns:
        The :class:`Inputs`; the output folder exists.

    Raises:
        CatalogError: a bad time range, velocity model, setting, station
            file or selection, or no archive station with coordinates.
        FileNotFoundError: no archive or station file.
        utrans.core.errors.UtransError: an unknown model, an output folder
            that cannot be written.

    Warns:
        CatalogWarning: archive stations without coordinates (not picked).
    """
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool)
                                or workers < 0):
        raise CatalogError(f"workers must be a whole number >= 0. Received: workers={workers!r}")
    settings = settings if settings is not None else AssociationSettings()
    if not isinstance(settings, AssociationSettings):
        settings = AssociationSettings.from_dict(dict(settings))
    velocity = parse_velocity(velocity)
    try:
        units = plan_units(archive, start, end, network, station, location, channel, chunk_s)
    except ValueError as error:
        raise CatalogError(str(error)) from None
    table = read_stations(inventory)
    source = str(inventory) if isinstance(inventory, (str, pathlib.Path)) else "the station table"
    known = set(table["network"] + "." + table["station"])
    in_archive = sorted({u.station_id for u in units})
    skipped = [s for s in in_archive if s not in known]
    if len(skipped) == len(in_archive):
        raise CatalogError(f"None of the {len(in_archive)} archive station(s) has coordinates in "
                           f"{source}. Received: archive stations {', '.join(in_archive[:8])}"
                           f"{', ...' if len(in_archive) > 8 else ''}")
    if skipped:
        warnings.warn(f"{len(skipped)} station(s) of the archive have no coordinates in "
                      f"{source} and are skipped: {', '.join(skipped)}", CatalogWarning,
                      stacklevel=3)
    picked = [s for s in in_archive if s in known]
    stations = table[(table["network"] + "." + table["station"]).isin(picked)]
    characterize = tuple(str(c) for c in characterize)
    plan_pad(str(model), characterize)   # unknown models fail here, before any file
    folder = check_output_dir(output)
    return Inputs(archive=pathlib.Path(archive), inventory=source, start=units[0].start,
                  end=max(u.end for u in units), model=str(model), characterize=characterize,
                  network=network, station=station, location=location, channel=channel,
                  chunk_s=float(chunk_s), workers=workers, scheduler=scheduler,
                  stations=stations.reset_index(drop=True), skipped=tuple(skipped),
                  units=tuple(u for u in units if u.station_id in set(picked)),
                  velocity=velocity, settings=settings, folder=folder)


def _chunk_runner(client, progress):
    """A ``map`` for :func:`~utrans.catalog.associate.associate_picks`: here, or on ``client``."""

    def run(function, jobs):
        jobs = list(jobs)
        bar = tqdm(total=len(jobs), desc="association", unit="chunk", disable=not progress)
        try:
            if client is None or len(jobs) < 2:
                results = []
                for job in jobs:
                    results.append(function(job))
                    bar.update(1)
                return results
            tag = uuid.uuid4().hex[:8]
            futures = client.map(function, jobs, pure=False,
                                 key=[f"utrans-chunk-{tag}-{k}" for k in range(len(jobs))])
            for _ in as_completed(futures):
                bar.update(1)
            return client.gather(futures)
        finally:
            bar.close()

    return run


def _waveform_reader(archive, location, channel):
    """``(starttime, endtime, trace_ids) -> Stream`` from the archive, for record sections."""
    client = SDSClient(str(archive))

    def read(start, end, trace_ids):
        stream = obspy.Stream()
        for trace_id in trace_ids:
            net, sta = trace_id.split(".")[:2]
            stream += client.get_waveforms(net, sta, location, channel, start, end)
        return stream.merge(method=1, fill_value=0) if len(stream) else stream

    return read


def catalog(archive, inventory, start, end, model, *, output="catalog_outputs",
            velocity="vp=6.0,vs=3.5", settings=None, characterize=(), network="*", station="*",
            location="*", channel="*", chunk_s=DAY, workers=None, scheduler=None, **options):
    """Pick, associate, locate and size the earthquakes of an archive (module doc).

    Args:
        archive: SDS root folder.
        inventory: station coordinates: StationXML, a CSV (``network,
            station, latitude, longitude, elevation_m``), an
            ``obspy.Inventory`` or a DataFrame.
        start: start of the time range.
        end: end of the time range (excluded).
        model: the picker (preset, registered name or ``.keras`` path).
        output: output folder.
        velocity: ``"vp=6.0,vs=3.5"``, a CSV of layers (``depth,vp,vs``) or a
            :class:`~utrans.catalog.velocity.VelocityModel`.
        settings: :class:`~utrans.catalog.settings.AssociationSettings` or
            its dict (``None``: defaults).
        characterize: window models run on every P pick (magnitude,
            back-azimuth, distance, polarity); the event magnitude needs a
            magnitude model.
        network: ``fnmatch`` selection pattern of network codes.
        station: ``fnmatch`` selection pattern of station codes.
        location: ``fnmatch`` selection pattern of location codes.
        channel: ``fnmatch`` selection pattern of channel codes.
        chunk_s: length of a picking unit, s (default one day).
        workers: ``0``: everything in this process; ``N``: N local worker
            processes (default: the usable cores), for picking and association.
        scheduler: address of an existing Dask scheduler; overrides ``workers``.
        **options: :func:`run_catalog` options (``plots``, ``progress``,
            ``thresholds``, ``min_peak_distance_s``, ``characterize_options``,
            ``worker_plugin``, and :class:`~utrans.annotate.Annotator` options).

    Returns:
        A :class:`CatalogRun` (``events``, ``arrivals``, ``picks``; ``None``
        with ``failed`` station-days, in which case no catalogue is written:
        run again to process them).

    Raises:
        CatalogError, FileNotFoundError, utrans.core.errors.UtransError: bad
        input (:func:`check_inputs`), before anything is written.
    """
    inputs = check_inputs(archive, inventory, start, end, model, output=output,
                          velocity=velocity, settings=settings, characterize=characterize,
                          network=network, station=station, location=location,
                          channel=channel, chunk_s=chunk_s, workers=workers,
                          scheduler=scheduler)
    return run_catalog(inputs, **options)


def run_catalog(inputs, *, characterize_options=None, thresholds=None, min_peak_distance_s=None,
                plots=True, progress=False, worker_plugin=None, **annotate_options):
    """The three stages of :func:`catalog` on checked inputs (module doc).

    Args:
        inputs: :class:`Inputs` from :func:`check_inputs`.
        characterize_options: options of the characterisation.
        thresholds: dict label -> threshold overriding the picker's.
        min_peak_distance_s: overrides the picker's minimum pick distance.
        plots: write ``map.png`` and ``events/<event_id>.png``.
        progress: progress bars per stage.
        worker_plugin: a ``distributed`` ``WorkerPlugin`` for the workers.
        **annotate_options: options of :class:`~utrans.annotate.Annotator`.

    Returns:
        A :class:`CatalogRun`.
    """
    folder, seconds, run_info = inputs.folder, {}, inputs.describe()
    workers, scheduler = inputs.workers, inputs.scheduler
    cluster = client = None
    try:
        if scheduler is None and workers != 0:
            cluster = local_cluster(int(workers or usable_cores()))
        address = scheduler or (cluster.scheduler_address if cluster is not None else None)
        began = time.perf_counter()
        picking = run_network(
            inputs.archive, inputs.start, inputs.end, inputs.model, network=inputs.network,
            station=inputs.station, location=inputs.location, channel=inputs.channel,
            stations=inputs.picked, output=folder / "picking", characterize=inputs.characterize,
            characterize_options=characterize_options, thresholds=thresholds,
            min_peak_distance_s=min_peak_distance_s, chunk_s=inputs.chunk_s,
            workers=0 if address is None else None, scheduler=address, progress=progress,
            worker_plugin=worker_plugin, **annotate_options)
        seconds["picking"] = time.perf_counter() - began
        if picking.failed:
            return CatalogRun(folder, None, None, None, {"run": run_info}, picking,
                              list(inputs.skipped), seconds=seconds)
        picks = picking.catalogue
        # Imported here: PyOcto is an optional dependency (the catalog extra).
        from utrans.catalog.associate import associate_picks  # noqa: PLC0415

        began = time.perf_counter()
        if address is not None:
            client = Client(address)
        result = associate_picks(picks, inputs.stations, inputs.velocity, inputs.settings,
                                 map_function=_chunk_runner(client, progress))
        seconds["association"] = time.perf_counter() - began
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    began = time.perf_counter()
    used = {**result.settings, "run": run_info}
    reader = _waveform_reader(inputs.archive, inputs.location, inputs.channel) if plots else None
    files = write_catalog(folder, result.events, result.arrivals, result.picks,
                          stations=inputs.stations if plots else None, velocity=inputs.velocity,
                          settings=used, waveforms=reader,
                          magnitude_column=inputs.settings.magnitude_column, progress=progress)
    seconds["outputs"] = time.perf_counter() - began
    if not len(picks):
        logger.info("No picks between %s and %s: wrote empty tables with their headers to %s",
                       inputs.start, inputs.end, folder)
    return CatalogRun(folder, result.events, result.arrivals, result.picks, used, picking,
                      list(inputs.skipped), files, seconds)
