"""The package's QuakeML: one ObsPy ``Catalog`` from picks, events, arrivals and station magnitudes.

:func:`build_catalog` makes every QuakeML the package writes: the picks-only
``picks.xml`` of ``utrans annotate`` (given only picks: one event of type
``"not reported"`` holding every pick) and the ``catalog.xml`` of
``utrans catalog`` (given events and arrivals: each event with its origin,
magnitude, station magnitudes, picks and arrivals; the picks no event took
stay in that one ``"not reported"`` event). :func:`read_catalog_values`
reads such a file back into the tables.

The tables (their columns: :data:`EVENT_COLUMNS`, :data:`ARRIVAL_COLUMNS`,
:data:`STATION_MAGNITUDE_COLUMNS`; a picks table has ``trace_id, phase,
peak_time`` and optionally ``peak_value, start_time, end_time, instrument,
model``, ``<quantity>__<model>`` estimate columns, ``characterize_note`` and
``event_id``) map onto QuakeML as follows.

**Picks** (one per row of the picks table): ``time`` = ``peak_time``;
``time_errors`` from the pick's extent (``lower_uncertainty = peak - start``,
``upper_uncertainty = end - peak``); ``phase_hint``; the waveform id of the
instrument, ``NET.STA.LOC.<band><instrument>?`` (the phase is picked on all
its components); ``method_id`` ``smi:local/utrans/<model>``;
``evaluation_mode="automatic"``; ``polarity`` from the first ``polarity__``
column (``U`` -> ``positive``, ``D`` -> ``negative``); ``backazimuth`` from
the first ``back_azimuth_deg__`` column; comments ``probability=<peak_value>``,
one ``<column>=<value>`` per filled estimate and ``characterize_note=...``
when there is one. Numbers are written in full (``repr``), so they read back
exactly.

**Events**: ``resource_id`` ``smi:local/utrans/event/<event_id>``, type
``earthquake``. **Origin**: time, latitude, longitude, ``depth`` in metres
below sea level (``depth_km * 1000``), ``quality``: ``used_phase_count`` =
``n_picks``, ``used_station_count``, ``standard_error`` = ``rms_s``.
**Magnitude** (when the event has one): ``mag``, ``mag_errors.uncertainty``
= ``magnitude_spread``, ``station_count`` = ``magnitude_n_stations``, type
``M``, ``method_id`` ``smi:local/utrans/median_station_magnitude``, and one
contribution per **station magnitude** (``mag``, waveform id, comment
``n_picks=<n>``). **Arrivals**: ``pick_id``, ``phase``, ``time_residual``
(s), ``azimuth`` (event to station, degrees), ``distance`` (degrees),
``backazimuth_residual`` from the first ``back_azimuth_residual_deg__``
column, and comments ``distance_km=``, ``back_azimuth_deg=`` and one per
residual column.
"""

from __future__ import annotations

import numpy as np
import obspy
import pandas as pd
from obspy.core.event import (
    Arrival,
    Catalog,
    Comment,
    CreationInfo,
    Event,
    Magnitude,
    Origin,
    OriginQuality,
    Pick,
    QuantityError,
    ResourceIdentifier,
    StationMagnitude,
    StationMagnitudeContribution,
    WaveformStreamID,
)
from obspy.geodetics import degrees2kilometers, kilometers2degrees

__all__ = ["ARRIVAL_COLUMNS", "EVENT_COLUMNS", "PREFIX", "STATION_MAGNITUDE_COLUMNS",
           "build_catalog", "estimate_columns", "read_catalog_values"]

#: Columns of an events table.
EVENT_COLUMNS = ["event_id", "time", "latitude", "longitude", "depth_km", "n_picks", "n_p", "n_s",
                 "rms_s", "magnitude", "magnitude_n_stations", "magnitude_spread"]
#: First columns of an arrivals table (the pick's estimates and their residuals follow).
ARRIVAL_COLUMNS = ["event_id", "pick_index", "trace_id", "phase", "time", "residual_s",
                   "distance_km", "azimuth_deg", "back_azimuth_deg"]
#: Columns of a station magnitudes table.
STATION_MAGNITUDE_COLUMNS = ["event_id", "trace_id", "magnitude", "n_picks"]

PREFIX = "smi:local/utrans"
UNASSOCIATED = "unassociated"
_POLARITY = {"U": "positive", "D": "negative"}
_POLARITY_BACK = {v: k for k, v in _POLARITY.items()}
_PICK_COLUMNS = ["trace_id", "phase", "peak_time", "peak_value", "start_time", "end_time",
                 "instrument", "model"]


def estimate_columns(frame):
    """The ``<quantity>__<model>`` estimate columns of a picks table, in order."""
    return [c for c in frame.columns if "__" in str(c)]


def _rid(*parts):
    return ResourceIdentifier("/".join([PREFIX, *map(str, parts)]))


def _filled(value):
    if value is None:
        return False
    if isinstance(value, str):
        return value != ""
    return not pd.isna(value)


def _text(value):
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def _value(text):
    try:
        number = float(text)
    except ValueError:
        return text
    return number


def _first(columns, prefix):
    return next((c for c in columns if str(c).startswith(prefix)), None)


def _make_pick(index, row, estimates, author):
    net, sta, loc = (str(row["trace_id"]).split(".") + ["", "", ""])[:3]
    peak = obspy.UTCDateTime(row["peak_time"])
    errors = QuantityError()
    if _filled(row.get("start_time")):
        errors.lower_uncertainty = float(peak - obspy.UTCDateTime(row["start_time"]))
    if _filled(row.get("end_time")):
        errors.upper_uncertainty = float(obspy.UTCDateTime(row["end_time"]) - peak)
    comments = []
    if _filled(row.get("peak_value")):
        comments.append(Comment(text=f"probability={_text(float(row['peak_value']))}"))
    for column in estimates:
        if _filled(row[column]):
            comments.append(Comment(text=f"{column}={_text(row[column])}"))
    if _filled(row.get("characterize_note")):
        comments.append(Comment(text=f"characterize_note={row['characterize_note']}"))
    pick = Pick(resource_id=_rid("pick", index), time=peak, time_errors=errors,
                waveform_id=WaveformStreamID(network_code=net, station_code=sta,
                                             location_code=loc,
                                             channel_code=f"{row.get('instrument', '') or ''}?"),
                phase_hint=row["phase"], evaluation_mode="automatic",
                method_id=_rid(row.get("model", "") or "unknown"), comments=comments,
                creation_info=CreationInfo(author=author))
    polarity = _first(estimates, "polarity__")
    if polarity is not None and row[polarity] in _POLARITY:
        pick.polarity = _POLARITY[row[polarity]]
    back_azimuth = _first(estimates, "back_azimuth_deg__")
    if back_azimuth is not None and _filled(row[back_azimuth]):
        pick.backazimuth = float(row[back_azimuth])
    return pick


def _make_arrival(event_id, row, pick_id, residual_columns):
    comments = [Comment(text=f"{name}={_text(row[name])}")
                for name in ["distance_km", "back_azimuth_deg", *residual_columns]
                if name in row and _filled(row[name])]
    arrival = Arrival(resource_id=_rid("arrival", event_id, int(row["pick_index"])),
                      pick_id=pick_id, phase=row["phase"],
                      time_residual=float(row["residual_s"]), comments=comments)
    if _filled(row.get("azimuth_deg")):
        arrival.azimuth = float(row["azimuth_deg"])
    if _filled(row.get("distance_km")):
        arrival.distance = kilometers2degrees(float(row["distance_km"]))
    baz = _first(residual_columns, "back_azimuth_residual_deg__")
    if baz is not None and _filled(row[baz]):
        arrival.backazimuth_residual = float(row[baz])
    return arrival


def build_catalog(picks, events=None, arrivals=None, station_magnitudes=None,
                  magnitude_column=None, author="utrans"):
    """The ObsPy ``Catalog`` of picks, and of events when given (module doc).

    Args:
        picks: picks table (``trace_id, phase, peak_time``, optionally
            ``peak_value, start_time, end_time, instrument, model``, estimate
            columns and ``event_id``). Its index is the pick's number in the
            resource ids; arrivals refer to it by ``pick_index``.
        events: events table (:data:`EVENT_COLUMNS`) or ``None`` for a
            picks-only catalogue.
        arrivals: arrivals table (needed with ``events``).
        station_magnitudes: station magnitude table
            (:data:`STATION_MAGNITUDE_COLUMNS`); ``None``: none written.
        magnitude_column: the pick column the magnitudes come from, named in
            their ``method_id`` (``None``: the first ``magnitude__`` column).
        author: ``creation_info.author``.

    Returns:
        ``obspy.core.event.Catalog``.

    Raises:
        ValueError: events without arrivals, or an arrival naming a pick
            that is not in the picks table.
    """
    estimates = estimate_columns(picks)
    made = {index: _make_pick(index, row, estimates, author) for index, row in picks.iterrows()}
    catalog = Catalog(creation_info=CreationInfo(author=author),
                      resource_id=_rid("catalog"))
    used = set()
    if events is not None and len(events):
        if arrivals is None:
            raise ValueError("A catalogue of events needs their arrivals. Received: arrivals=None")
        missing = set(arrivals["pick_index"].astype(int)) - set(made)
        if missing:
            raise ValueError(f"Arrivals name picks absent from the picks table. Received: "
                             f"pick_index={sorted(missing)[:5]}")
        if station_magnitudes is None:
            station_magnitudes = pd.DataFrame(columns=STATION_MAGNITUDE_COLUMNS)
        column = magnitude_column or _first(arrivals.columns, "magnitude__")
        residual_columns = [c for c in arrivals.columns
                            if str(c).startswith(("back_azimuth_residual_deg__",
                                                  "distance_residual_km__"))]
        by_event = dict(tuple(arrivals.groupby("event_id", sort=False)))
        by_station = dict(tuple(station_magnitudes.groupby("event_id", sort=False)))
        for row in events.to_dict("records"):
            event_id = row["event_id"]
            rows = by_event.get(event_id, pd.DataFrame(columns=arrivals.columns))
            event = Event(resource_id=_rid("event", event_id), event_type="earthquake",
                          creation_info=CreationInfo(author=author))
            origin = Origin(resource_id=_rid("origin", event_id),
                            time=obspy.UTCDateTime(row["time"]), latitude=float(row["latitude"]),
                            longitude=float(row["longitude"]),
                            depth=float(row["depth_km"]) * 1000.0, depth_type="from location",
                            method_id=_rid("pyocto"), evaluation_mode="automatic",
                            quality=OriginQuality(
                                used_phase_count=int(row["n_picks"]),
                                associated_phase_count=int(row["n_picks"]),
                                used_station_count=int(rows["trace_id"].nunique()),
                                standard_error=float(row["rms_s"])),
                            creation_info=CreationInfo(author=author))
            for arrival in rows.to_dict("records"):
                index = int(arrival["pick_index"])
                used.add(index)
                event.picks.append(made[index])
                origin.arrivals.append(_make_arrival(event_id, arrival, made[index].resource_id,
                                                     residual_columns))
            event.origins.append(origin)
            event.preferred_origin_id = origin.resource_id
            stations = by_station.get(event_id)
            if stations is not None:
                for st in stations.to_dict("records"):
                    net, sta, loc = (str(st["trace_id"]).split(".") + ["", "", ""])[:3]
                    event.station_magnitudes.append(StationMagnitude(
                        resource_id=_rid("station_magnitude", event_id, st["trace_id"]),
                        origin_id=origin.resource_id, mag=float(st["magnitude"]),
                        station_magnitude_type="M", method_id=_rid("magnitude", column),
                        waveform_id=WaveformStreamID(network_code=net, station_code=sta,
                                                     location_code=loc),
                        comments=[Comment(text=f"n_picks={int(st['n_picks'])}")]))
            if _filled(row.get("magnitude")):
                magnitude = Magnitude(
                    resource_id=_rid("magnitude", event_id), mag=float(row["magnitude"]),
                    magnitude_type="M", origin_id=origin.resource_id,
                    method_id=_rid("median_station_magnitude"),
                    station_count=int(row["magnitude_n_stations"]),
                    evaluation_mode="automatic",
                    comments=[Comment(text=f"magnitude_column={column}")],
                    creation_info=CreationInfo(author=author))
                if _filled(row.get("magnitude_spread")):
                    magnitude.mag_errors = QuantityError(uncertainty=float(row["magnitude_spread"]))
                magnitude.station_magnitude_contributions = [
                    StationMagnitudeContribution(station_magnitude_id=sm.resource_id, weight=1.0)
                    for sm in event.station_magnitudes]
                event.magnitudes.append(magnitude)
                event.preferred_magnitude_id = magnitude.resource_id
            catalog.events.append(event)
    rest = [made[i] for i in made if i not in used]
    if rest or not catalog.events:
        catalog.events.append(Event(
            resource_id=_rid("event", UNASSOCIATED), picks=rest, event_type="not reported",
            comments=[Comment(text="picks not associated with an event")],
            creation_info=CreationInfo(author=author)))
    return catalog


def _suffix(resource_id, kind=""):
    text = str(resource_id)
    head = f"{PREFIX}/{kind}/" if kind else f"{PREFIX}/"
    return text[len(head):] if text.startswith(head) else text


def _comment_values(comments):
    out = {}
    for comment in comments:
        name, sep, text = comment.text.partition("=")
        if sep:
            out[name] = text if name == "characterize_note" else _value(text)
    return out


def read_catalog_values(catalog):
    """Events, arrivals and picks tables of a catalogue written by :func:`build_catalog`.

    Args:
        catalog: ``obspy.core.event.Catalog`` (``obspy.read_events(...)``).

    Returns:
        ``(events, arrivals, picks, station_magnitudes)`` DataFrames in the
        column names of :data:`EVENT_COLUMNS`, :data:`ARRIVAL_COLUMNS` and
        :data:`STATION_MAGNITUDE_COLUMNS`; ``picks`` is indexed by
        the pick number of its resource id and has an ``event_id`` column.
    """
    event_rows, arrival_rows, pick_rows, station_rows = [], [], [], []
    for event in catalog.events:
        event_id = _suffix(event.resource_id, "event")
        associated = event_id != UNASSOCIATED
        for pick in event.picks:
            values = _comment_values(pick.comments)
            wid = pick.waveform_id
            row = {"pick_index": int(_suffix(pick.resource_id, "pick")),
                   "trace_id": f"{wid.network_code}.{wid.station_code}.{wid.location_code or ''}",
                   "phase": pick.phase_hint, "peak_time": str(pick.time),
                   "peak_value": values.pop("probability", np.nan),
                   "start_time": str(pick.time - pick.time_errors.lower_uncertainty)
                   if pick.time_errors.lower_uncertainty is not None else "",
                   "end_time": str(pick.time + pick.time_errors.upper_uncertainty)
                   if pick.time_errors.upper_uncertainty is not None else "",
                   "instrument": (wid.channel_code or "")[:-1],
                   "model": _suffix(pick.method_id),
                   "polarity": _POLARITY_BACK.get(pick.polarity, ""),
                   "backazimuth": pick.backazimuth,
                   "event_id": event_id if associated else ""}
            row.update(values)
            pick_rows.append(row)
        if not associated:
            continue
        origin = event.preferred_origin() or event.origins[0]
        magnitude = event.preferred_magnitude()
        phases = [a.phase for a in origin.arrivals]
        event_rows.append({
            "event_id": event_id, "time": str(origin.time), "latitude": origin.latitude,
            "longitude": origin.longitude, "depth_km": origin.depth / 1000.0,
            "n_picks": origin.quality.used_phase_count, "n_p": phases.count("P"),
            "n_s": phases.count("S"), "rms_s": origin.quality.standard_error,
            "magnitude": magnitude.mag if magnitude else np.nan,
            "magnitude_n_stations": magnitude.station_count if magnitude else 0,
            "magnitude_spread": magnitude.mag_errors.uncertainty
            if magnitude and magnitude.mag_errors.uncertainty is not None else np.nan})
        picks_by_id = {str(p.resource_id): p for p in event.picks}
        for arrival in origin.arrivals:
            pick = picks_by_id[str(arrival.pick_id)]
            wid = pick.waveform_id
            row = {"event_id": event_id, "pick_index": int(_suffix(pick.resource_id, "pick")),
                   "trace_id": f"{wid.network_code}.{wid.station_code}.{wid.location_code or ''}",
                   "phase": arrival.phase, "time": str(pick.time),
                   "residual_s": arrival.time_residual, "azimuth_deg": arrival.azimuth,
                   "distance_deg": arrival.distance,
                   "backazimuth_residual": arrival.backazimuth_residual}
            estimates = _comment_values(pick.comments)
            estimates.pop("probability", None)
            estimates.pop("characterize_note", None)
            row.update(estimates)
            row.update(_comment_values(arrival.comments))
            if "distance_km" not in row and arrival.distance is not None:
                row["distance_km"] = degrees2kilometers(arrival.distance)
            arrival_rows.append(row)
        for sm in event.station_magnitudes:
            wid = sm.waveform_id
            station_rows.append({
                "event_id": event_id,
                "trace_id": f"{wid.network_code}.{wid.station_code}.{wid.location_code or ''}",
                "magnitude": sm.mag,
                "n_picks": int(_comment_values(sm.comments).get("n_picks", 0))})
    picks = pd.DataFrame(pick_rows)
    if len(picks):
        picks = picks.set_index("pick_index").sort_index()
        picks.index.name = None
    else:
        picks = pd.DataFrame(columns=[*_PICK_COLUMNS, "event_id"])
    arrivals = pd.DataFrame(arrival_rows)
    if not len(arrivals):
        arrivals = pd.DataFrame(columns=ARRIVAL_COLUMNS)
    events = pd.DataFrame(event_rows, columns=EVENT_COLUMNS)
    stations = pd.DataFrame(station_rows, columns=STATION_MAGNITUDE_COLUMNS)
    return events, arrivals, picks, stations

