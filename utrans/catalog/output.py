"""The files of a catalogue, written atomically into one folder.

* ``events.csv``: :data:`~utrans.catalog.values.EVENT_COLUMNS`;
* ``arrivals.csv``: one row per associated pick (event, residual, located
  distance and azimuths, the pick's estimates and their residuals);
* ``picks.csv``: every pick, with ``event_id`` where associated;
* ``catalog.xml``: QuakeML (:func:`utrans.quakeml.build_catalog`);
* ``settings.json``: the association settings and the values resolved for
  the run (overlap, search zone, velocity model);
* ``map.png``: stations and epicentres (with a station table);
* ``events/<event_id>.png``: the record section of each event (with
  waveforms); the figures of events a previous run into the same folder
  found and this one did not are removed.

An empty period still writes every table with its header, and says so in
the log.
"""

from __future__ import annotations

import logging
import pathlib

import obspy
import pandas as pd
from tqdm.auto import tqdm

from utrans.catalog.plots import plot_map, plot_record_section
from utrans.catalog.settings import AssociationSettings
from utrans.catalog.values import ARRIVAL_COLUMNS, EVENT_COLUMNS, station_magnitudes
from utrans.core.io import atomic_write, write_csv, write_json
from utrans.quakeml import build_catalog

__all__ = ["write_catalog"]

logger = logging.getLogger(__name__)


def _with_columns(frame, columns):
    if frame is None:
        return pd.DataFrame(columns=columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing and len(frame):
        raise ValueError(f"The table lacks the column(s) {', '.join(missing)}. "
                         f"Received columns: {', '.join(map(str, frame.columns))}")
    if missing:
        frame = frame.reindex(columns=[*columns, *[c for c in frame.columns if c not in columns]])
    return frame


def _event_stream(waveforms, event, arrivals, before_s=10.0, after_s=60.0):
    origin = obspy.UTCDateTime(event["time"])
    rows = arrivals[arrivals["event_id"] == event["event_id"]]
    latest = max([obspy.UTCDateTime(t) - origin for t in rows["time"]], default=0.0)
    start, end = origin - before_s, origin + max(after_s, latest + 20.0)
    if callable(waveforms):
        return waveforms(start, end, sorted(set(rows["trace_id"])))
    return waveforms.slice(start, end)


def _remove_stale_figures(folder, events):
    folder = pathlib.Path(folder)
    keep = {f"{e}.png" for e in events["event_id"]}
    for path in folder.glob("*.png") if folder.is_dir() else ():
        if path.name not in keep:
            path.unlink(missing_ok=True)


def write_catalog(folder, events, arrivals, picks, stations=None, velocity=None, settings=None,
                  waveforms=None, magnitudes=None, magnitude_column=None, progress=False):
    """Write a catalogue's tables, QuakeML and figures into ``folder`` (module doc).

    Args:
        folder: output folder (created).
        events: events table (may be empty).
        arrivals: arrivals table (may be empty).
        picks: every pick, with ``event_id`` where associated.
        stations: station table, for ``map.png`` (``None``: no map).
        velocity: velocity model, for the record sections' predicted curves.
        settings: :class:`~utrans.catalog.settings.AssociationSettings` or the
            ``settings`` dict of :func:`~utrans.catalog.associate.associate_picks`
            (``None``: no ``settings.json``).
        waveforms: ``obspy.Stream`` or callable ``(starttime, endtime,
            trace_ids) -> Stream`` (the records of the event's picked
            stations) for ``events/<event_id>.png`` (``None``: no record
            sections; needs ``stations`` and ``velocity``).
        magnitudes: station magnitude table for the QuakeML
            (``None``: computed from the arrivals with ``magnitude_column``).
        magnitude_column: the magnitude column of the station magnitudes.
        progress: show a progress bar over the record sections.

    Returns:
        Dict ``name -> path`` of the files written.
    """
    folder = pathlib.Path(folder)
    events = _with_columns(events, EVENT_COLUMNS)
    arrivals = _with_columns(arrivals, ARRIVAL_COLUMNS)
    if "event_id" not in picks.columns:
        picks = picks.assign(event_id="")
    written = {
        "events": write_csv(events, folder / "events.csv"),
        "arrivals": write_csv(arrivals, folder / "arrivals.csv"),
        "picks": write_csv(picks, folder / "picks.csv"),
    }
    if magnitudes is None:
        magnitudes = station_magnitudes(arrivals, magnitude_column)
    catalog = build_catalog(picks, events, arrivals, magnitudes, magnitude_column)
    written["catalog"] = folder / "catalog.xml"
    with atomic_write(written["catalog"]) as tmp:
        catalog.write(str(tmp), format="QUAKEML")
    if isinstance(settings, AssociationSettings):
        written["settings"] = settings.write(folder / "settings.json")
    elif settings is not None:
        written["settings"] = write_json(settings, folder / "settings.json")
    if stations is not None:
        written["map"] = plot_map(events, stations, folder / "map.png")
    if waveforms is not None:
        _remove_stale_figures(folder / "events", events)
    if waveforms is not None and len(events):
        if stations is None or velocity is None:
            raise ValueError("Record sections need the stations and the velocity model. "
                             f"Received: stations={'given' if stations is not None else None}, "
                             f"velocity={velocity!r}")
        for event in tqdm(events.to_dict("records"), desc="record sections", unit="event",
                          disable=not progress):
            stream = _event_stream(waveforms, event, arrivals)
            written[f"events/{event['event_id']}"] = plot_record_section(
                stream, event, arrivals, stations, velocity,
                folder / "events" / f"{event['event_id']}.png")
    if not len(events):
        logger.warning("No events in this period (%d picks); wrote empty events and arrivals "
                       "tables with their headers to %s", len(picks), folder)
    else:
        logger.info("Wrote %d events, %d arrivals, %d picks to %s", len(events), len(arrivals),
                    len(picks), folder)
    return written
