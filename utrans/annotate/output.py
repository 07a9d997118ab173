"""Files of an annotate run: picks CSV, QuakeML picks, probability traces as miniSEED.

* **CSV**: one row per pick (:data:`utrans.annotate.picks.PICK_COLUMNS`),
  detections in their own CSV.
* **QuakeML**: :func:`utrans.quakeml.build_catalog`, the package's one
  QuakeML writer, given the picks only: one ``Event`` of type ``"not
  reported"`` (the picks are not associated into events) with one ``Pick``
  per row (peak time, phase, extent, the instrument's waveform id
  ``NET.STA.LOC.<band><instrument>?``, the probability and every
  characterisation estimate; see :mod:`utrans.quakeml`).
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

from utrans.core.io import atomic_write, write_csv
from utrans.quakeml import build_catalog, estimate_columns

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


def picks_to_catalog(picks, model=""):
    """An ObsPy ``Catalog`` of the picks, made by :func:`utrans.quakeml.build_catalog`.

    Args:
        picks: DataFrame with :data:`utrans.annotate.picks.PICK_COLUMNS` and
            any characterisation columns.
        model: model name for ``method_id`` (default: the ``model`` column).

    Returns:
        ``obspy.core.event.Catalog`` with one ``Event`` holding every pick.
    """
    if model:
        picks = picks.assign(model=model)
    return build_catalog(picks.reset_index(drop=True), author="utrans.annotate")


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
