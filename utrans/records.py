"""Stored traces as the data layer's records: one rate, one length, the arrivals inside.

Training and testing batches hold *records* of ``dim`` samples (6000) at
:data:`DATA_RATE` (100 Hz, the rate of STEAD and of the U-Trans files): the
augmentation steps and the labellers work on them, and the model's pipeline
(:class:`utrans.pipeline.Pipeline`) takes them to the model's rate and
window. A stored trace at that rate and of that length is a record as it
is. Any other trace (a SeisBench dataset of 20 Hz traces of 1200 samples, 40 Hz
traces of 3001 samples, traces of a minute and a half) is placed in a record
(:func:`place`, :class:`Placement`); in the formats whose traces all have one
length (STEAD, DataCollected) a trace of another length is corrupt and is
reported as a bad trace instead:

1. it is resampled to :data:`DATA_RATE` by the package's one resampler
   (:func:`utrans.processing.resample.resample`); a trace that would be
   upsampled more than :data:`~utrans.processing.resample.MAX_UPSAMPLING`
   times (below 10 Hz) is refused, naming it;
2. it is cut to ``dim`` samples around its arrivals: from its first sample
   when its P and S arrivals (or none) lie within the first ``dim``
   samples, as a trace of the right length is used; otherwise starting
   :data:`LEAD` of the record before its first arrival (P, else S), and no
   later than where its last ``dim`` samples start. A shorter trace is zero
   padded after its end;
3. its arrival and coda samples move with it (``sample * ratio - start``;
   an arrival that falls outside the record then fails the range check of
   the metadata, naming the trace).

Metadata given to the labellers and written by the tester (picks in
samples, ``trace_sampling_rate_hz``) are those of the record, so picks in
``predictions.csv`` are samples at 100 Hz whatever the stored rate;
:meth:`Placement.to_stored` maps them back.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from utrans.core.errors import BadTraceError
from utrans.processing.resample import (
    rate_fraction,
    resample,
    resampled_length,
    upsampling_problem,
)

__all__ = ["DATA_RATE", "LEAD", "Placement", "place", "placed_metadata", "record_metadata"]

#: Sampling rate of the data layer's records, Hz.
DATA_RATE = 100.0
#: Where the first arrival of a trace cut to fit a record sits, as a fraction of the record.
LEAD = 0.1
# Metadata moved with the record (positions in samples).
_SAMPLE_KEYS = ("trace_p_arrival_sample", "trace_s_arrival_sample", "trace_coda_end_sample")


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a stored trace lies in its record (module doc).

    Attributes:
        rate: the stored trace's sampling rate, Hz.
        samples: the stored trace's length.
        up, down: the resampling fraction (record samples per stored sample ``up / down``).
        start: sample of the resampled trace at which the record starts.
        length: the record's length.
    """

    rate: float
    samples: int
    up: int
    down: int
    start: int
    length: int

    @property
    def ratio(self):
        """Record samples per stored sample."""
        return self.up / self.down

    @property
    def identity(self):
        """True when the stored trace is the record as it is."""
        return self.up == self.down and self.start == 0 and self.samples == self.length

    def to_record(self, stored_samples):
        """Stored sample positions -> record sample positions (float; NaN stays NaN)."""
        return np.asarray(stored_samples, dtype=np.float64) * self.ratio - self.start

    def to_stored(self, record_samples):
        """Record sample positions -> stored sample positions (float; NaN stays NaN)."""
        return (np.asarray(record_samples, dtype=np.float64) + self.start) / self.ratio

    def waveform(self, waveform):
        """The record of a stored ``(samples, 3)`` waveform: float32 ``(length, 3)``."""
        x = np.asarray(waveform)
        if self.up != self.down:  # the fraction up / down is the ratio of the two rates
            x = resample(x, self.down, self.up, axis=0)
        out = np.zeros((self.length,) + x.shape[1:], dtype=np.float32)
        part = x[self.start:self.start + self.length]
        out[:len(part)] = part
        return out


def place(meta, samples, length, rate=DATA_RATE):
    """The :class:`Placement` of a stored trace in a record of ``length`` samples at ``rate``.

    Args:
        meta: the trace's metadata (``trace_sampling_rate_hz`` and the arrival
            samples, as a reader returns them).
        samples: the stored trace's length.
        length: the record's length (the generator's ``dim``).
        rate: the record's rate (:data:`DATA_RATE`).

    Returns:
        A :class:`Placement`.

    Raises:
        ValueError: the trace is too sparsely sampled to be brought to ``rate``
            (the message says why; the caller names the trace).
    """
    stored = _stored_rate(meta, rate)
    problem = upsampling_problem(stored, rate)
    if problem:
        raise ValueError(problem)
    up, down = rate_fraction(stored, rate)
    resampled = resampled_length(samples, stored, rate)
    arrivals = np.array([meta.get(k, np.nan) for k in _SAMPLE_KEYS[:2]], dtype=np.float64)
    arrivals = arrivals[np.isfinite(arrivals)] * up / down
    start = 0
    if len(arrivals) and arrivals.max() >= length:
        start = int(np.floor(arrivals.min() - LEAD * length))
        start = max(0, min(start, resampled - length))
    return Placement(rate=stored, samples=int(samples), up=up, down=down, start=start,
                     length=int(length))


def placed_metadata(meta, placement, rate=DATA_RATE):
    """The metadata of a trace's record: positions moved, the record's rate.

    Args:
        meta: the trace's metadata as stored.
        placement: its :class:`Placement`.
        rate: the record's rate.

    Returns:
        A new dict (``meta`` itself when the placement is the identity),
        with ``trace_stored_sampling_rate_hz``, ``trace_stored_samples`` and
        ``trace_record_start_sample`` telling where the record came from.
    """
    if placement.identity:
        return meta
    out = dict(meta)
    for key in _SAMPLE_KEYS:
        value = out.get(key)
        if value is not None and np.isfinite(float(value)):
            out[key] = float(placement.to_record(float(value)))
    out["trace_stored_sampling_rate_hz"] = placement.rate
    out["trace_stored_samples"] = placement.samples
    out["trace_record_start_sample"] = placement.start
    out["trace_sampling_rate_hz"] = float(rate)
    return out


def _stored_rate(meta, rate):
    stored = meta.get("trace_sampling_rate_hz", rate)
    try:
        stored = float(stored)
    except (TypeError, ValueError):
        return float(rate)
    return stored if np.isfinite(stored) and stored > 0 else float(rate)


def record_metadata(reader, trace_id, length, rate=DATA_RATE, located=None):
    """The metadata of a trace's record and its placement, read without its samples.

    The stored length is asked of the reader only when the placement depends
    on it (another rate, or an arrival beyond the record's first ``length``
    samples); otherwise the record is the trace from its first sample, zero
    padded or cut at its end, and its metadata are the trace's.

    Args:
        reader: a dataset reader (:mod:`utrans.formats`).
        trace_id: the trace.
        length: the record's length.
        rate: the record's rate.
        located: the reader's ``locate(trace_id)`` if already known (its shape is used).

    Returns:
        ``(metadata, placement)``: ``placement`` is ``None`` when the record is
        the trace from its first sample at its own rate.

    Raises:
        BadTraceError: the trace cannot be brought to ``rate`` (naming it).
    """
    meta = reader.read_metadata(trace_id)
    stored = _stored_rate(meta, rate)
    samples = located[2][0] if located is not None else None
    beyond = False
    for key in _SAMPLE_KEYS[:2]:
        value = meta.get(key)
        beyond |= value is not None and math.isfinite(value) and value >= length
    if samples is None and (stored != float(rate) or beyond):
        samples = reader.trace_samples(trace_id)
    if samples is None:
        return meta, None
    try:
        placement = place(meta, samples, length, rate)
    except ValueError as err:
        raise BadTraceError(reader.path, trace_id, str(err)) from None
    if placement.up == placement.down and placement.start == 0:
        return meta, None
    return placed_metadata(meta, placement, rate), placement
