"""A network archive to a characterised pick catalogue, over worker processes or a Dask cluster.

::

    from utrans.annotate.network import run_network

    result = run_network("/data/sds", "2024-01-01", "2024-02-01", "seist_m_dpk_diting",
                         network="XX", output="xx_january", workers=8,
                         characterize=["seist_m_pmp_diting", "seist_m_emg_diting",
                                       "seist_m_baz_diting", "seist_m_dis_diting"])
    result.catalogue              # the merged picks, also in xx_january/picks.csv

The work is a list of station-days (:mod:`utrans.annotate.archive`). Each one
is processed by :func:`process_unit`: read the station's channels for the
day plus ``pad_s`` of the neighbouring days, pick with
:class:`~utrans.annotate.Annotator` (``classify``), keep the picks whose peak
time falls in the day, characterise them
(:class:`~utrans.annotate.characterization.Characterizer`) and write the
day's table and done marker. A process loads its models once and keeps them
for every station-day sent to it (a per-process cache keyed by the run
settings).

Where the station-days run:

* ``workers=0``: in this process, one after the other;
* ``workers=N`` (default: the usable CPU cores): a ``dask.distributed``
  ``LocalCluster`` of N worker processes with one task thread each
  (TensorFlow gets ``cores // N`` threads per process);
* ``scheduler="tcp://host:8786"``: an existing Dask cluster. Its workers
  need utrans and the models (presets in their ``UTRANS_HOME``), and must see
  the archive and the output folder at the same paths (a shared file system).

Workers write the tables into the output folder; when every station-day is
done, the tables are merged into the catalogue (:mod:`utrans.annotate.catalogue`).
A station-day that fails (a worker lost too often, unreadable data) is
reported and not marked done, and the catalogue is not written: run the same
command again, and only the missing station-days are processed. Killing the
run (or a worker) at any moment loses at most the station-days in flight.

The settings of a run are kept in ``<output>/run.json``; a rerun with other
settings into the same folder is refused, so one catalogue never mixes two
configurations.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import pathlib
import socket
import time
import uuid
import warnings

import numpy as np
import obspy
import pandas as pd
from distributed import Client, LocalCluster, as_completed
from tqdm.auto import tqdm

from utrans.annotate import catalogue as _catalogue
from utrans.annotate.archive import DAY, UnitStore, plan_units, read_unit
from utrans.annotate.characterization import Characterizer
from utrans.annotate.core import Annotator
from utrans.annotate.picks import PICK_COLUMNS, ClassifyOutput
from utrans.core.io import write_json
from utrans.core.machine import usable_cores
from utrans.runtime import conventions_of

__all__ = ["NetworkResult", "RunSettings", "load_models", "local_cluster", "plan_pad",
           "process_unit", "run_network", "usable_cores"]

logger = logging.getLogger(__name__)

# Extra seconds read around a unit beyond the model's window: the resampling
# filter's edge transients and the minimum pick distance.
_PAD_MARGIN_S = 10.0


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Everything a worker needs to process a station-day (picklable, JSON-able).

    Args:
        model: picker spec (preset, registered name or ``.keras`` path).
        annotate: :class:`~utrans.annotate.Annotator` options as sorted ``(key, value)`` pairs.
        thresholds: ``(label, threshold)`` overrides.
        min_peak_distance_s: override of the model's minimum pick distance.
        characterize: window model specs.
        characterize_options: :class:`~utrans.annotate.characterization.Characterizer`
            options as sorted pairs.
        location: location code selection pattern.
        channel: channel code selection pattern.
        chunk_s: unit length in seconds.
        pad_s: ``(before, after)`` seconds read around a unit.
        fmt: table format, ``"csv"`` or ``"parquet"``.
    """

    model: str
    annotate: tuple = ()
    thresholds: tuple = ()
    min_peak_distance_s: float | None = None
    characterize: tuple = ()
    characterize_options: tuple = ()
    location: str = "*"
    channel: str = "*"
    chunk_s: float = DAY
    pad_s: tuple = (0.0, 0.0)
    fmt: str = "csv"

    def to_json(self):
        """A JSON-serialisable dict (written to ``run.json``)."""
        out = dataclasses.asdict(self)
        out["annotate"] = dict(self.annotate)
        out["thresholds"] = dict(self.thresholds)
        out["characterize"] = list(self.characterize)
        out["characterize_options"] = dict(self.characterize_options)
        out["pad_s"] = list(self.pad_s)
        return json.loads(json.dumps(out))

    @property
    def models_key(self):
        """Cache key of the models a worker builds for these settings."""
        return json.dumps([self.model, self.annotate, self.characterize,
                           self.characterize_options], default=str)


def plan_pad(model, characterize=(), p_position_ratio=0.1):
    """Seconds to read around a unit so that its picks and windows see continuous data.

    Args:
        model: the picker (spec or model).
        characterize: window model specs.
        p_position_ratio: the characterize fallback P position.

    Returns:
        ``(before, after)`` in whole seconds: one picker window plus a margin,
        and at least the part of each characterize window before and after P.
    """
    conv = conventions_of(model)
    window = conv.in_samples / conv.sampling_rate
    margin = _PAD_MARGIN_S + (conv.min_peak_distance_s or 0.0)
    before = after = window + margin
    for spec in characterize:
        c = conventions_of(spec[0] if isinstance(spec, tuple) else spec)
        ratio = c.p_position_ratio if c.p_position_ratio is not None else p_position_ratio
        w = c.in_samples / c.sampling_rate
        before = max(before, ratio * w + margin)
        after = max(after, (1 - ratio) * w + margin)
    # Whole seconds: reads of every unit then start on the same sample phase of the
    # data, so decimation keeps the same samples in neighbouring units.
    return float(math.ceil(before)), float(math.ceil(after))


# Models of this process, by RunSettings.models_key: loaded once per worker.
_MODELS = {}


def load_models(settings):
    """The picker, its thresholds and the characterizer of a run, cached in this process.

    Args:
        settings: the :class:`RunSettings`.

    Returns:
        ``(annotator, thresholds, characterizer or None)``; built on the first
        call for these settings and returned from the cache afterwards.
    """
    key = settings.models_key
    if key not in _MODELS:
        annotator = Annotator(settings.model, **dict(settings.annotate))
        thresholds = annotator.thresholds(dict(settings.thresholds))
        characterizer = (Characterizer(list(settings.characterize),
                                       **dict(settings.characterize_options))
                         if settings.characterize else None)
        _MODELS.clear()  # one configuration per process at a time
        _MODELS[key] = (annotator, thresholds, characterizer)
    return _MODELS[key]


def _worker_name():
    return f"{socket.gethostname()}:{os.getpid()}"


def process_unit(root, folder, unit, settings):
    """Pick and characterise one station-day and write its table (skipped when done).

    Args:
        root: SDS root folder.
        folder: output folder.
        unit: the :class:`~utrans.annotate.archive.StationDay`.
        settings: the :class:`RunSettings`.

    Returns:
        A summary dict: ``unit``, ``status`` (``"done"`` or ``"skipped"``),
        ``rows``, ``seconds``, ``worker``.
    """
    store = UnitStore(folder, settings.fmt)
    marker = store.marker(unit)
    if marker is not None:
        return {"unit": unit.unit_id, "status": "skipped", "rows": marker["rows"],
                "seconds": 0.0, "worker": _worker_name()}
    began = time.perf_counter()
    annotator, thresholds, characterizer = load_models(settings)
    loaded = time.perf_counter()
    stream = read_unit(root, unit, settings.pad_s, settings.location, settings.channel)
    note = ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        picks = pd.DataFrame(columns=PICK_COLUMNS)
        if len(stream):
            try:
                groups, _ = annotator.groups(stream)
            except ValueError as err:  # nothing of the day can be annotated
                note = str(err)
            else:
                rows = []
                decoder = annotator.decoder(thresholds, settings.min_peak_distance_s)
                for part in annotator.pieces(groups):
                    rows += decoder.add(part)[0]
                picks = ClassifyOutput.from_rows(annotator.name, rows).picks
        else:
            note = "no data"
        keep = np.array([unit.contains(obspy.UTCDateTime(t)) for t in picks["peak_time"]],
                        dtype=bool)
        picks = picks.loc[keep].reset_index(drop=True)
        if characterizer is not None:
            picks = characterizer.characterize(stream, picks)
    samples = int(sum(tr.stats.npts for tr in stream))
    marker = store.write(
        unit, picks, seconds=round(time.perf_counter() - loaded, 3),
        load_seconds=round(loaded - began, 3), worker=_worker_name(), samples=samples,
        note=note, warnings=sorted({str(w.message) for w in caught}))
    return {"unit": unit.unit_id, "status": "done", "rows": marker["rows"],
            "seconds": marker["seconds"], "worker": marker["worker"]}


@dataclasses.dataclass
class NetworkResult:
    """What :func:`run_network` did.

    Args:
        folder: the output folder.
        units: the planned :class:`~utrans.annotate.archive.StationDay` s.
        summaries: one :func:`process_unit` summary per finished unit.
        failed: ``(unit_id, message)`` of units that did not finish.
        catalogue: the merged picks (``None`` when a unit failed).
        files: the catalogue files written.
    """

    folder: pathlib.Path
    units: list
    summaries: list
    failed: list
    catalogue: pd.DataFrame | None
    files: list = dataclasses.field(default_factory=list)

    def count(self, status):
        """Number of units with summary ``status`` (``"done"``, ``"skipped"``)."""
        return sum(s["status"] == status for s in self.summaries)


def _check_run_file(folder, settings):
    path = pathlib.Path(folder) / "run.json"
    wanted = settings.to_json()
    if path.is_file():
        try:
            found = json.loads(path.read_text())
        except ValueError as err:
            raise ValueError(f"{path} is not readable JSON ({err}); remove it or use another "
                             "output folder.") from err
        if found != wanted:
            keys = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
            raise ValueError(
                f"{folder} holds a run with other settings ({', '.join(keys)} differ: "
                + "; ".join(f"{k} was {found.get(k)!r}, now {wanted.get(k)!r}" for k in keys)
                + "). Use another output folder, or the same settings to resume.")
        return
    write_json(wanted, path)


def local_cluster(workers):
    """The ``LocalCluster`` of ``workers`` processes that ``run_network(workers=N)`` starts.

    One task thread per worker; TensorFlow gets ``cores // workers`` threads
    in each (``TF_NUM_INTRAOP_THREADS``); no dashboard.

    Args:
        workers: number of worker processes.

    Returns:
        A started ``distributed.LocalCluster`` (close it when done).
    """
    threads = max(1, usable_cores() // workers)
    env = {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
           "TF_NUM_INTRAOP_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    # No dashboard; the scheduler's small HTTP server takes a free port, so that two
    # runs on one machine do not warn about port 8787.
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                        dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                        silence_logs=logging.ERROR, env=env)


def _dispatch(client, root, folder, units, settings, progress):
    """Submit every unit to a Dask client; yields ``(unit, summary or None, error or None)``."""
    tag = uuid.uuid4().hex[:8]  # keys unique to this run, whoever else uses the cluster
    futures = {client.submit(process_unit, str(root), str(folder), unit, settings, pure=False,
                             key=f"utrans-{tag}-{unit.unit_id}"): unit for unit in units}
    for future in as_completed(futures):
        unit = futures[future]
        try:
            yield unit, future.result(), None
        except Exception as err:  # noqa: BLE001 - any task error is reported, the run goes on
            yield unit, None, f"{type(err).__name__}: {err}"
        progress(1)


def run_network(root, start, end, model, *, network="*", station="*", location="*",
                channel="*", stations=None, output="network_outputs", characterize=(),
                characterize_options=None, thresholds=None, min_peak_distance_s=None,
                chunk_s=DAY, fmt="csv", workers=None, scheduler=None, quakeml=False,
                plot=False, progress=False, worker_plugin=None, **annotate_options):
    """Pick (and characterise) every station-day of an SDS archive; merge the catalogue.

    Args:
        root: SDS root folder.
        start: start of the time range.
        end: end of the time range (excluded).
        model: the picker: preset name, registered name or ``.keras`` path.
        network: ``fnmatch`` selection pattern of network codes.
        station: ``fnmatch`` selection pattern of station codes.
        location: ``fnmatch`` selection pattern of location codes.
        channel: ``fnmatch`` selection pattern of channel codes.
        stations: ``NET.STA`` codes to keep of the selected stations
            (``None``: all of them).
        output: output folder (module doc).
        characterize: window model specs (:mod:`utrans.annotate.characterization`).
        characterize_options: :class:`~utrans.annotate.characterization.Characterizer` options.
        thresholds: dict label -> threshold overriding the model's.
        min_peak_distance_s: overrides the model's minimum pick distance.
        chunk_s: unit length in seconds (default one day).
        fmt: per-unit table format, ``"csv"`` or ``"parquet"`` (needs pyarrow).
        workers: ``0``: in this process; ``N``: a local cluster of N worker
            processes (default: the usable cores).
        scheduler: address of an existing Dask scheduler (``tcp://host:8786``);
            overrides ``workers``.
        quakeml: also write the catalogue as QuakeML.
        plot: also write the catalogue overview figure.
        progress: show a progress bar over station-days.
        worker_plugin: a ``distributed`` ``WorkerPlugin`` registered on the
            workers before they start (the command line silences the
            framework's start-up messages in them with one).
        **annotate_options: :class:`~utrans.annotate.Annotator` options
            (``batch_size``, ``overlap``, ``blinding``, ``stacking``,
            ``missing_components``, ``min_length_s``, ``fast``).

    Returns:
        A :class:`NetworkResult`.

    Raises:
        ValueError: bad options, no matching station, or a folder holding a
        run with other settings; FileNotFoundError: no archive at ``root``.
    """
    if not isinstance(model, (str, pathlib.Path)):
        raise TypeError("run_network needs the picker as a name or .keras path (workers build "
                        f"their own copy). Received: {type(model).__name__}")
    unknown = sorted(set(annotate_options) - {"batch_size", "overlap", "blinding", "stacking",
                                              "missing_components", "min_length_s", "fast",
                                              "window_grid"})
    if unknown:
        raise TypeError(f"Unknown option(s) {unknown}.")
    if workers is not None and int(workers) < 0:
        raise ValueError(f"workers must be >= 0. Received: workers={workers}")
    units = plan_units(root, start, end, network, station, location, channel, chunk_s)
    if stations is not None:
        keep = set(stations)
        units = [u for u in units if u.station_id in keep]
    char_options = dict(characterize_options or {})
    characterize = tuple(str(c) for c in characterize)
    settings = RunSettings(
        model=str(model),
        annotate=tuple(sorted(annotate_options.items())),
        thresholds=tuple(sorted((thresholds or {}).items())),
        min_peak_distance_s=min_peak_distance_s,
        characterize=characterize,
        characterize_options=tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                                          for k, v in char_options.items())),
        location=location, channel=channel, chunk_s=float(chunk_s),
        pad_s=plan_pad(str(model), characterize, char_options.get("p_position_ratio", 0.1)),
        fmt=fmt)
    folder = pathlib.Path(output)
    store = UnitStore(folder, fmt)
    folder.mkdir(parents=True, exist_ok=True)
    _check_run_file(folder, settings)
    todo = [u for u in units if not store.is_done(u)]
    summaries = [{"unit": u.unit_id, "status": "skipped", "rows": None, "seconds": 0.0,
                  "worker": ""} for u in units if u not in todo]
    logger.info("%d station-day(s), %d already done", len(units), len(units) - len(todo))
    bar = None
    if progress and todo:
        bar = tqdm(total=len(todo), unit="station-day", desc="station-days")
    step = bar.update if bar is not None else (lambda n: None)
    failed = []
    try:
        if todo and scheduler is None and workers == 0:
            for unit in todo:
                summaries.append(process_unit(root, folder, unit, settings))
                step(1)
        elif todo:
            cluster = None
            if scheduler is None:
                cluster = local_cluster(int(workers or usable_cores()))
            try:
                with Client(scheduler or cluster) as client:
                    if worker_plugin is not None:
                        client.register_plugin(worker_plugin)
                    for unit, summary, error in _dispatch(client, root, folder, todo, settings,
                                                          step):
                        if error is None:
                            summaries.append(summary)
                        else:
                            logger.error("%s failed: %s", unit.unit_id, error)
                            failed.append((unit.unit_id, error))
            finally:
                if cluster is not None:
                    cluster.close()
    finally:
        if bar is not None:
            bar.close()
    store.clean()
    if failed:
        return NetworkResult(folder, units, summaries, failed, None)
    frame = _catalogue.merge_units(store, units)
    files = _catalogue.write_catalogue(frame, folder, quakeml=quakeml, plot=plot)
    return NetworkResult(folder, units, summaries, failed, frame, files)
