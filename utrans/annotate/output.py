"""Files of an annotate run: picks CSV, QuakeML picks, probability traces as miniSEED.

* **CSV**: one row per pick (:data:`utrans.annotate.picks.PICK_COLUMNS`),
  detections in their own CSV.
* **QuakeML** (the package's one QuakeML writer of picks): an ObsPy
  ``Catalog`` holding one ``Event`` (the picks are not associated into
  events) with one ``Pick`` per row: ``time`` = peak time, ``phase_hint``,
  ``time_errors`` from the pick's start and end (``lower_uncertainty = peak -
  start``, ``upper_uncertainty = end - peak``), ``evaluation_mode="automatic"``,
  ``method_id = smi:local/utrans/<model>``, the probability in a comment
  ``probability=0.9687``, and the waveform id of the instrument
  (``NET.STA.LOC.<band><instrument>?``: the phase is picked on all its
  components). Characterisation columns (``<quantity>__<model>``) go with
  each pick: the first polarity column as the pick's ``polarity``
  (``U`` -> ``positive``, ``D`` -> ``negative``) and one comment per filled
  estimate (``magnitude__seist_m_emg_diting=2.134``).
* **miniSEED**: SEED channel codes have three characters, so the
  ``<model>_<label>`` names of :func:`~utrans.annotate.annotate` cannot be
  kept; a probability trace is written with the network, station and
  location of its instrument and the channel ``<band><instrument><code>``
  where the code is the label's first letter (``P``, ``S``, ``D`` for
  ``det``) and ``X`` for PhaseNet's noise label ``N`` (not to be read as a
  north component). Samples are float32; the file name carries the model.
"""

from __future__ import annotations

import logging

import numpy as np
import obspy
import pandas as pd
from obspy.core.event import (
    Catalog,
    Comment,
    CreationInfo,
    Event,
    Pick,
    QuantityError,
    ResourceIdentifier,
    WaveformStreamID,
)

from utrans.core.io import atomic_write, write_csv

__all__ = ["estimate_columns", "label_code", "mseed_traces", "picks_to_catalog", "write_csv",
           "write_quakeml"]

logger = logging.getLogger(__name__)

_LABEL_CODES = {"det": "D", "N": "X"}


def label_code(label, labels=()):
    """The one-letter miniSEED channel code of an output label (module doc).

    Args:
        label: the label.
        labels: all labels of the model (a clash of first letters falls back
            to the label's position, ``0``-``9``).

    Returns:
        One character.
    """
    codes = [_LABEL_CODES.get(lab, lab[:1].upper()) for lab in labels] or [None]
    code = _LABEL_CODES.get(label, label[:1].upper())
    if labels and codes.count(code) > 1:
        return str(list(labels).index(label))
    return code


def mseed_traces(result, labels):
    """SEED-named probability traces of one segment result (module doc).

    Args:
        result: a :class:`utrans.annotate.batching.SegmentResult`.
        labels: the model's labels.

    Returns:
        A list of ``obspy.Trace`` (float32).
    """
    seg = result.segment
    net, sta, loc = seg.station.split(".")
    band = (seg.instrument + "XX")[:2]
    return [obspy.Trace(np.ascontiguousarray(result.probabilities[k], dtype=np.float32), header={
        "network": net, "station": sta, "location": loc,
        "channel": band + label_code(label, labels),
        "sampling_rate": seg.sampling_rate, "starttime": result.start,
    }) for k, label in enumerate(labels)]


_POLARITY = {"U": "positive", "D": "negative"}


def estimate_columns(frame):
    """The characterisation columns of a picks table (``<quantity>__<model>``)."""
    return [c for c in frame.columns if "__" in c]


def picks_to_catalog(picks, model=""):
    """An ObsPy ``Catalog`` of the picks (module doc).

    Args:
        picks: DataFrame with :data:`utrans.annotate.picks.PICK_COLUMNS` and
            any characterisation columns.
        model: model name for ``method_id`` (default: the ``model`` column).

    Returns:
        ``obspy.core.event.Catalog`` with one ``Event`` holding every pick.
    """
    out = []
    estimates = estimate_columns(picks)
    polarity = next((c for c in estimates if c.startswith("polarity__")), None)
    for _, row in picks.iterrows():
        net, sta, loc = row.trace_id.split(".")
        peak = obspy.UTCDateTime(row.peak_time)
        name = model or row.model
        pick = Pick(
            time=peak,
            time_errors=QuantityError(
                lower_uncertainty=float(peak - obspy.UTCDateTime(row.start_time)),
                upper_uncertainty=float(obspy.UTCDateTime(row.end_time) - peak)),
            waveform_id=WaveformStreamID(network_code=net, station_code=sta,
                                         location_code=loc, channel_code=f"{row.instrument}?"),
            phase_hint=row.phase,
            evaluation_mode="automatic",
            method_id=ResourceIdentifier(f"smi:local/utrans/{name}"),
            comments=[Comment(text=f"probability={row.peak_value:.4f}")],
            creation_info=CreationInfo(author="utrans.annotate"),
        )
        if polarity is not None and row[polarity] in _POLARITY:
            pick.polarity = _POLARITY[row[polarity]]
        for column in estimates:
            value = row[column]
            if isinstance(value, str) or not pd.isna(value):
                text = value if isinstance(value, str) else f"{float(value):.4g}"
                pick.comments.append(Comment(text=f"{column}={text}"))
        out.append(pick)
    event = Event(picks=out, event_type="not reported",
                  comments=[Comment(text="picks of utrans.annotate, not associated")])
    return Catalog(events=[event], creation_info=CreationInfo(author="utrans.annotate"))


def write_quakeml(picks, path, model=""):
    """Write the picks as QuakeML (atomically).

    Args:
        picks: DataFrame with :data:`utrans.annotate.picks.PICK_COLUMNS`.
        path: output file.
        model: model name for ``method_id``.

    Returns:
        The path.
    """
    catalog = picks_to_catalog(picks, model)
    with atomic_write(path) as tmp:
        catalog.write(str(tmp), format="QUAKEML")
    logger.info("Wrote %s", path)
    return path
