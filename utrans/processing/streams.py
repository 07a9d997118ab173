"""From an ObsPy Stream to continuous, model-ready segments.

A stream is cut into *instrument groups*, one per ``NET.STA.LOC`` and
band/instrument code (``HH``, ``EH``, ...): the traces of one seismometer.
Each group is checked, its component codes are mapped onto the model's
(``component_order``), it is resampled to the model's rate and split into
*segments*: the spans in which the same components are recorded without a
gap. Segments are what the window planner (:mod:`utrans.processing.windows`)
cuts; a window spans a gap only between records shorter than a window, which
annotate lays windows over together, the gap left out of the normalisation
(:mod:`utrans.annotate.tracks`).

Rules (documented for users in ``docs/applying.md``):

* **Component codes.** The last letter of the channel code names the
  component. ``Z`` is vertical; horizontals may be ``N``/``E``, ``1``/``2``
  (``1`` -> ``N``, ``2`` -> ``E``) or ``2``/``3`` (``2`` -> ``N``,
  ``3`` -> ``E``). A group that mixes these conventions (``N`` and ``1``) is
  refused; other codes (``R``, ``T``, ``U``, ...) are ignored with a warning.
  Picking models are trained on arbitrary horizontal orientations, so the
  mapping only fixes the channel order.
* **Resampling**: each joined record is resampled to the model's rate by the
  package's one resampler (:func:`utrans.processing.resample.resample`), the
  same that resamples training and testing windows. Nothing is copied or
  resampled when a group is cut into segments: a segment's components are
  records read piece by piece (:mod:`utrans.processing.samples`) as the
  windows of annotate reach them, each piece equal to the record resampled
  whole, so a record of any length takes little more memory than itself.
* **Alignment.** Traces of a group are placed on one sample grid that starts
  at the group's earliest sample; a component starting a fraction of a sample
  later is rounded to the nearest sample (at most half a sample).
* **One channel in several traces.** The traces of one component are joined
  at their own rate before anything else: traces that abut (the next starts
  within half a sample of where the previous ends) or overlap with identical
  samples become one record; an overlap with different samples is reported
  with an :class:`AnnotateWarning` naming both traces, and the earlier samples
  are kept; a gap of at most two samples at the model's rate is filled by
  linear interpolation and reported (the segment lists it in ``patched``).
  Resampling then runs over each joined record, so a record cut into pieces
  gives the windows, and the picks, of the whole record.
* **Gaps.** A segment ends wherever any component starts, stops or has a
  longer gap. Spans shorter than ``min_length_s`` are dropped (logged); a
  record with no longer span is refused (a :class:`StationError`).
* **Sparse records.** A record sampled more than
  :data:`~utrans.processing.resample.MAX_UPSAMPLING` times below the model's
  rate (a 0.5 Hz or 1 Hz channel for a 100 Hz picker) is refused with a
  :class:`StationError` instead of being interpolated into plausible input.
* **Missing components** (a station with one or two components, or a span in
  which one component has a gap): ``"zeros"`` (default) feeds zeros in their
  place, as SeisBench does and as the channel-dropout augmentations of the
  training recipes do; ``"copy"`` copies the vertical (or, without a vertical,
  the first recorded component) into them; ``"skip"`` drops the span. Each
  case is reported with a warning.
* **Bad data** (non-finite samples, mixed sampling rates within one group,
  conflicting component conventions, no usable component) make a
  :class:`StationError` naming the trace; :func:`group_stream` either raises
  it or skips that group with a warning, so one bad station never stops the
  others.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import logging
import warnings
from collections import defaultdict

import numpy as np
import obspy

from utrans.core.errors import AnnotateWarning, StationError
from utrans.processing.resample import upsampling_problem
from utrans.processing.samples import JoinedSamples, ResampledSamples, concatenate, view

__all__ = [
    "MISSING_POLICIES",
    "InstrumentGroup",
    "Segment",
    "group_stream",
    "join_traces",
    "map_components",
    "sample_dtype",
]

logger = logging.getLogger(__name__)

_HORIZONTAL_CONVENTIONS = ({"N": "N", "E": "E"}, {"1": "N", "2": "E"}, {"2": "N", "3": "E"})
MISSING_POLICIES = ("zeros", "copy", "skip")


@dataclasses.dataclass
class Segment:
    """A continuous, gap-free span of one instrument at the model's sampling rate.

    Args:
        station: ``NET.STA.LOC``.
        instrument: band and instrument code (``"HH"``).
        start: time of sample 0.
        sampling_rate: Hz (the model's).
        length: number of samples.
        components: one 1-D record per model component (in the model's
            ``component_order``), ``length`` samples each: a numpy array or a
            :class:`~utrans.processing.samples.Samples` read piece by piece
            (``x[a:b]`` gives float64 samples); ``None`` for a component that
            is fed as zeros.
        channels: model component -> source channel code (``{"N": "HH1"}``).
        filled: model components that were missing (zero-filled or copied).
        patched: ``(time, samples)`` of the short gaps filled by interpolation
            (module doc).
        grid_index: the absolute sample index of sample 0,
            ``round(start.timestamp * sampling_rate)``; windows are laid on
            a grid of this index so that any cut of a record gives the same
            windows away from its edges.
        holes: ``(start, stop)`` sample ranges that hold no record (zeros,
            left out of the normalisation): a span across short gaps, made by
            annotate for windows shared by short records (``()`` for a
            gap-free segment).
    """

    station: str
    instrument: str
    start: obspy.UTCDateTime
    sampling_rate: float
    length: int
    components: list
    channels: dict
    filled: str = ""
    grid_index: int = 0
    patched: list = dataclasses.field(default_factory=list)
    holes: tuple = ()

    @property
    def group_id(self):
        """``NET.STA.LOC.BI``: the instrument group."""
        return f"{self.station}.{self.instrument}"

    @property
    def end(self):
        """Time of the last sample."""
        return self.start + (self.length - 1) / self.sampling_rate


def sample_dtype(arrays, at_least=np.float32):
    """The float dtype that holds every sample of ``arrays`` exactly (at least ``at_least``).

    float32 for float32 (and int16, ...) records, float64 for float64 or int32 ones.

    Args:
        arrays: sample arrays (``None`` entries, absent components, are skipped).
        at_least: the narrowest dtype returned.

    Returns:
        A numpy dtype.
    """
    return np.result_type(at_least, *(a.dtype for a in arrays if a is not None))


def map_components(codes, component_order):
    """Map the component letters of one instrument onto the model's components.

    Args:
        codes: iterable of component letters present (``{"Z", "1", "2"}``).
        component_order: the model's components (``"ZNE"``, ``"ENZ"``, ``"Z"``).

    Returns:
        ``(mapping, ignored)``: dict source letter -> model component, and the
        sorted letters that are no component code at all (``R``, ``T``, ...);
        known letters the model does not take (horizontals for a ``"Z"``
        model) are left out silently.

    Raises:
        StationError: the horizontals mix conventions (``N`` with ``1``).
    """
    codes = set(codes)
    horizontals = codes - {"Z"}
    candidates = [conv for conv in _HORIZONTAL_CONVENTIONS if horizontals & set(conv)]
    if len(candidates) > 1:
        # {"2"} alone fits both 1/2 and 2/3; prefer 1/2 (2 -> E) unless 3 is present.
        exact = [conv for conv in candidates if horizontals <= set(conv)]
        if horizontals == {"2"}:
            exact = [_HORIZONTAL_CONVENTIONS[1]]
        if len(exact) != 1:
            raise StationError(
                "horizontal components mix naming conventions (N/E, 1/2, 2/3). "
                f"Received: components={''.join(sorted(codes))}")
        candidates = exact
    mapping = {"Z": "Z"} if "Z" in codes else {}
    if candidates:
        mapping.update({k: v for k, v in candidates[0].items() if k in codes})
    mapping = {k: v for k, v in mapping.items() if v in component_order}
    ignored = sorted(codes - set(mapping) - {"Z", "N", "E", "1", "2", "3"})
    return mapping, ignored


@dataclasses.dataclass
class InstrumentGroup:
    """The traces of one instrument, checked, before resampling.

    Args:
        station: ``NET.STA.LOC``.
        instrument: band and instrument code.
        traces: model component -> list of ``obspy.Trace`` (time order).
        channels: model component -> source channel code.
        component_order: the model's components.
    """

    station: str
    instrument: str
    traces: dict
    channels: dict
    component_order: str

    @property
    def group_id(self):
        """``NET.STA.LOC.BI``."""
        return f"{self.station}.{self.instrument}"

    @property
    def trace_ids(self):
        """The SEED ids of the group's channels, ``", "``-joined (for messages)."""
        return ", ".join(sorted({tr.id for trs in self.traces.values() for tr in trs}))

    def duration_samples(self, sampling_rate):
        """Approximate number of samples at ``sampling_rate`` (for planning)."""
        t0 = min(tr.stats.starttime for trs in self.traces.values() for tr in trs)
        t1 = max(tr.stats.endtime for trs in self.traces.values() for tr in trs)
        return int(round((t1 - t0) * sampling_rate)) + 1

    def segments(self, sampling_rate, missing_components="zeros", min_length_s=1.0):
        """Resample and cut into gap-free :class:`Segment` s.

        Args:
            sampling_rate: the model's rate in Hz.
            missing_components: ``"zeros"``, ``"copy"`` or ``"skip"`` (module doc).
            min_length_s: shorter spans are dropped.

        Returns:
            A list of :class:`Segment`, in time order.

        Raises:
            StationError: the record is sampled more than
                :data:`~utrans.processing.resample.MAX_UPSAMPLING` times below
                ``sampling_rate``, or no span of it lasts ``min_length_s`` (the
                message names its traces).
        """
        rate = float(next(iter(self.traces.values()))[0].stats.sampling_rate)
        problem = upsampling_problem(rate, sampling_rate)
        if problem:
            raise StationError(f"{self.trace_ids}: {problem}")
        max_gap_s = _MAX_FILLED_GAP / sampling_rate
        records, patched = {}, []
        for comp, trs in self.traces.items():
            records[comp] = []
            for first, samples, filled in _join(trs, max_gap_s):
                rate = float(first.stats.sampling_rate)
                if not np.isclose(rate, sampling_rate, rtol=1e-9, atol=0.0):
                    # computed window by window when annotated, as if resampled whole
                    samples = ResampledSamples(samples, rate, sampling_rate)
                records[comp].append((first.stats.starttime, samples))
                patched += filled
        origin = min(t for recs in records.values() for t, _ in recs)
        # Integer sample intervals of every record on the group's grid.
        placed = {}
        for comp, recs in records.items():
            items = []
            for t, samples in recs:
                i0 = int(round((t - origin) * sampling_rate))
                items.append((i0, i0 + len(samples), samples))
            items.sort(key=lambda item: item[0])
            placed[comp] = _resolve_overlaps(items, f"{self.group_id}{comp}")
        cuts = sorted({i for items in placed.values() for i0, i1, _ in items for i in (i0, i1)})
        min_len = max(2, int(round(min_length_s * sampling_rate)))
        # Spans between consecutive cut points with a constant set of components: one sweep
        # over the cut points and each component's (disjoint, sorted) records.
        spans = []
        at = dict.fromkeys(placed, 0)
        for a, b in itertools.pairwise(cuts):
            present = []
            for c, items in placed.items():
                k = at[c]
                while k < len(items) and items[k][1] <= a:
                    k += 1
                at[c] = k
                if k < len(items) and items[k][0] <= a and b <= items[k][1]:
                    present.append(c)
            if not present:
                continue
            present = frozenset(present)
            if spans and spans[-1][1] == a and spans[-1][2] == present:
                spans[-1] = (spans[-1][0], b, present)
            else:
                spans.append((a, b, present))
        starts = {c: [i0 for i0, _, _ in items] for c, items in placed.items()}
        patched.sort(key=lambda item: item[0])
        patch_times = [t for t, _ in patched]
        out = []
        order = self.component_order
        longest = max((b - a for a, b, _ in spans), default=0)
        if longest < min_len:
            raise StationError(f"{self.trace_ids}: too short to annotate: its longest gap-free "
                               f"span holds {longest} sample(s) at {sampling_rate:g} Hz, fewer "
                               f"than {min_len} ({min_len / sampling_rate:g} s).")
        for a, b, present in spans:
            if b - a < min_len:
                logger.info("%s: span of %d samples at %s shorter than %g s, not annotated",
                            self.group_id, b - a, origin + a / sampling_rate, min_length_s)
                continue
            missing = "".join(c for c in order if c not in present)
            start = origin + a / sampling_rate
            if missing:
                if missing_components == "skip":
                    warnings.warn(f"{self.group_id}: component(s) {missing} missing from "
                                  f"{start} for {(b - a) / sampling_rate:g} s; span skipped "
                                  "(missing_components='skip').", AnnotateWarning, stacklevel=4)
                    continue
                how = "zeros" if missing_components == "zeros" else "copies of another component"
                warnings.warn(f"{self.group_id}: component(s) {missing} missing from {start} "
                              f"for {(b - a) / sampling_rate:g} s; fed as {how} "
                              f"(missing_components={missing_components!r}).",
                              AnnotateWarning, stacklevel=4)
            arrays = {c: _slice(placed[c], starts[c], a, b, f"{self.group_id}{c}")
                      for c in present}
            if missing and missing_components == "copy":
                source = "Z" if "Z" in arrays else next(c for c in order if c in arrays)
                arrays.update({c: arrays[source] for c in missing})
            end = origin + b / sampling_rate
            first, stop = bisect.bisect_left(patch_times, start), bisect.bisect_left(patch_times,
                                                                                     end)
            out.append(Segment(
                station=self.station,
                instrument=self.instrument,
                start=start,
                sampling_rate=float(sampling_rate),
                length=b - a,
                components=[arrays.get(c) for c in order],
                channels=dict(self.channels),
                filled=missing,
                grid_index=int(round(start.timestamp * sampling_rate)),
                patched=patched[first:stop],
            ))
        return out


#: Longest gap, in samples at the model's rate, that is filled instead of ending a segment.
_MAX_FILLED_GAP = 2


def join_traces(traces, max_gap_s=0.0):
    """Join the traces of one channel at their own rate (module doc, "One channel in several traces").

    Args:
        traces: ``obspy.Trace`` s of one channel and one sampling rate.
        max_gap_s: gaps up to this long are filled by linear interpolation.

    Returns:
        A list of ``(trace, patched)`` in time order: each trace a continuous
        record (float64 samples; a trace given alone is returned unchanged),
        ``patched`` the ``(time, samples)`` of the gaps filled in it.
    """
    out = []
    for first, samples, patched in _join(traces, max_gap_s):
        if samples is not first.data:
            first = first.copy()
            first.data = np.asarray(samples)
        out.append((first, patched))
    return out


def _join(traces, max_gap_s):
    """The records of :func:`join_traces` without copying them.

    Returns:
        A list of ``(first trace, samples, patched)``: the samples are the
        first trace's own array when the record is one trace, else a
        :class:`~utrans.processing.samples.JoinedSamples` of the traces'
        arrays and the fills (read as float64).
    """
    traces = sorted(traces, key=lambda tr: tr.stats.starttime)
    out = []
    run, parts, length, patched = None, [], 0, []

    def close():
        if run is not None:
            out.append((run, parts[0] if len(parts) == 1 else JoinedSamples(parts), patched))

    for tr in traces:
        rate = float(tr.stats.sampling_rate)
        data = tr.data
        if run is not None:
            ahead = (tr.stats.starttime - run.stats.starttime) * rate - length
            if ahead < -0.5:  # overlap
                n = int(round(-ahead))
                k = min(n, len(data))
                tail = JoinedSamples(parts).read(length - n, length - n + k)
                if not np.array_equal(tail, np.asarray(data[:k], dtype=np.float64)):
                    warnings.warn(f"{tr.id}: the trace starting {tr.stats.starttime} overlaps the "
                                  f"one before it by {n} sample(s) with different samples; the "
                                  "earlier samples are kept.", AnnotateWarning, stacklevel=6)
                data = data[n:]
                if not len(data):
                    continue
            elif ahead > 0.5:  # gap
                n = int(round(ahead))
                if n / rate > max_gap_s + 0.5 / rate:
                    close()
                    run = None
                else:
                    last, following = float(parts[-1][-1]), float(data[0])
                    fill = last + (following - last) * np.arange(1, n + 1) / (n + 1)
                    at = run.stats.starttime + length / rate
                    warnings.warn(f"{tr.id}: gap of {n} sample(s) at {at} filled by linear "
                                  "interpolation.", AnnotateWarning, stacklevel=6)
                    patched.append((at, n))
                    parts.append(fill)
                    length += n
        if run is None:
            run, parts, length, patched = tr, [], 0, []
        parts.append(data)
        length += len(data)
    close()
    return out


def _resolve_overlaps(items, label):
    """Trim overlapping pieces of one component (the earlier piece wins)."""
    out = []
    for i0, i1, data in items:
        if out and i0 < out[-1][1]:
            prev_end = out[-1][1]
            overlap = min(prev_end, i1) - i0
            prev = out[-1]
            same = np.array_equal(np.asarray(prev[2][i0 - prev[0]:i0 - prev[0] + overlap],
                                             dtype=np.float64),
                                  np.asarray(data[:overlap], dtype=np.float64))
            if not same:
                warnings.warn(f"{label}: overlapping traces with different data; the earlier "
                              f"trace is kept for {overlap} samples.", AnnotateWarning,
                              stacklevel=5)
            if i1 <= prev_end:
                continue
            data = view(data, prev_end - i0, len(data))
            i0 = prev_end
        out.append((i0, i1, data))
    return out


def _slice(items, starts, a, b, label):
    """Samples [a, b) of one component: a view when one piece covers them, else joined pieces.

    Args:
        items: the component's ``(i0, i1, samples)``, sorted and disjoint.
        starts: their ``i0``.
        a, b: the span.
        label: names the component in errors.

    Raises:
        StationError: a sample of the span is in no piece.
    """
    parts, at = [], a
    k = bisect.bisect_right(starts, a) - 1
    while at < b:
        if k < 0 or k >= len(items) or not items[k][0] <= at < items[k][1]:
            raise StationError(f"{label}: no sample between grid samples {at} and {b}.")
        i0, i1, data = items[k]
        stop = min(b, i1)
        parts.append(view(data, at - i0, stop - i0))
        at = stop
        k += 1
    return concatenate(parts)


def _split_masked(stream):
    """Traces with masked gaps (``merge(fill_value=None)``) become contiguous pieces."""
    out = []
    for tr in stream:
        if np.ma.isMaskedArray(tr.data):
            out.extend(tr.split())
        else:
            out.append(tr)
    return out


def _check_group(key, traces, component_order):
    """Validate one instrument group; returns (traces by model component, channels)."""
    net, sta, loc, bi = key
    group_id = f"{net}.{sta}.{loc}.{bi}"
    rates = sorted({float(tr.stats.sampling_rate) for tr in traces})
    if len(rates) > 1:
        detail = ", ".join(f"{tr.id} {tr.stats.sampling_rate:g} Hz" for tr in traces)
        raise StationError(f"{group_id}: mixed sampling rates within one instrument ({detail}).")
    if not rates[0] > 0:
        raise StationError(f"{group_id}: sampling rate must be positive. "
                           f"Received: sampling_rate={rates[0]}")
    for tr in traces:
        data = np.asarray(tr.data)
        if data.dtype.kind not in "iuf":
            raise StationError(f"{tr.id}: samples must be numbers. Received: dtype={data.dtype}")
        if data.dtype.kind == "f" and not np.isfinite(data).all():
            bad = int((~np.isfinite(data)).sum())
            raise StationError(f"{tr.id}: {bad} non-finite sample(s) (NaN or inf) in the trace "
                               f"starting {tr.stats.starttime}. Remove or fill them first.")
    codes = {tr.stats.channel[-1:].upper() for tr in traces}
    mapping, ignored = map_components(codes, component_order)
    if ignored:
        warnings.warn(f"{group_id}: component(s) {', '.join(ignored)} not used "
                      f"(model components {component_order}).", AnnotateWarning, stacklevel=4)
    if not mapping:
        raise StationError(f"{group_id}: no usable component for a {component_order} model. "
                           f"Received: channels={sorted({tr.stats.channel for tr in traces})}")
    by_comp = defaultdict(list)
    channels = {}
    for tr in traces:
        comp = mapping.get(tr.stats.channel[-1:].upper())
        if comp is not None and tr.stats.npts > 0:
            by_comp[comp].append(tr)
            channels[comp] = tr.stats.channel
    if not by_comp:
        raise StationError(f"{group_id}: every usable trace is empty.")
    for trs in by_comp.values():
        trs.sort(key=lambda tr: tr.stats.starttime)
    return dict(by_comp), channels


def group_stream(stream, component_order, errors="warn"):
    """Split a stream into checked :class:`InstrumentGroup` s.

    Args:
        stream: an ``obspy.Stream`` (or ``Trace``); not modified.
        component_order: the model's components (``"ZNE"``).
        errors: ``"warn"``: a bad group is skipped with an
            :class:`AnnotateWarning` naming the trace; ``"raise"``: raise its
            :class:`StationError`.

    Returns:
        ``(groups, problems)``: the groups sorted by id, and a list of
        ``(group_id, message)`` for the skipped ones.

    Raises:
        ValueError: ``stream`` is empty or not a stream.
        StationError: a bad group with ``errors="raise"``.
    """
    if isinstance(stream, obspy.Trace):
        stream = obspy.Stream([stream])
    if not isinstance(stream, obspy.Stream):
        raise TypeError(f"annotate needs an obspy Stream. Received: {type(stream).__name__}")
    if errors not in ("warn", "raise"):
        raise ValueError(f"errors must be 'warn' or 'raise'. Received: errors={errors!r}")
    traces = [tr for tr in _split_masked(stream) if tr.stats.npts > 0]
    if not traces:
        raise ValueError("The stream holds no samples (no traces, or only empty ones).")
    keyed = defaultdict(list)
    for tr in traces:
        s = tr.stats
        keyed[(s.network, s.station, s.location, s.channel[:-1])].append(tr)
    groups, problems = [], []
    for key in sorted(keyed):
        net, sta, loc, bi = key
        try:
            by_comp, channels = _check_group(key, keyed[key], component_order)
        except StationError as err:
            if errors == "raise":
                raise
            warnings.warn(f"Skipping {net}.{sta}.{loc}.{bi}: {err}", AnnotateWarning, stacklevel=3)
            problems.append((f"{net}.{sta}.{loc}.{bi}", str(err)))
            continue
        groups.append(InstrumentGroup(station=f"{net}.{sta}.{loc}", instrument=bi,
                                      traces=by_comp, channels=channels,
                                      component_order=component_order))
    return groups, problems
