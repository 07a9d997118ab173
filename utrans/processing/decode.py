"""The one decoder of model outputs into picks and detections.

Testers, readers, training-parity checks and :mod:`utrans.annotate` all turn
probability curves into picks and detection windows through these functions
(through :meth:`utrans.pipeline.Pipeline.picks`), so a pick means the same
thing everywhere:

* :func:`pick`: the picks of one curve by a model's pick rule, with the
  minimum distance in samples from :func:`min_distance_samples`;
* :func:`find_peaks`: every local maximum above a threshold, lower peaks
  within ``min_distance`` samples of a higher one removed (SeisT rule);
* :func:`highest_peak`: the single highest peak above a threshold (U-Trans rule);
* :func:`trigger_regions`: SeisBench's rule: a trigger turns on where the curve
  reaches the threshold and off after the last sample at or above half of
  it (ObsPy's ``trigger_onset``); one pick per region, at its maximum;
* :func:`detect_events`: runs of samples above a threshold (detection windows);
* :func:`peak_extents`: the run above the threshold around each peak (pick start/end);
* :func:`decode_outputs`: a batch of SeisT-style outputs (det/P/S curves) to
  fixed-size arrays of detections and picks, laid out as SeisT's
  ``training/postprocess.py process_outputs`` returns them (the reference's
  training, validation and test loops decode this way).

As in SeisT, curves are compared with thresholds in float32 (a float64
curve is rounded to float32 first), so a value equal to the float32 threshold
counts as above it.

Plain numpy and scipy: no deep-learning framework is imported.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

#: Pick value meaning "no pick" in :func:`decode_outputs` (SeisT's ``int(-1e7)``).
PICK_PADDING = -10_000_000
#: Detection ``[on, off]`` meaning "no detection" in :func:`decode_outputs` (SeisT's ``[1, 0]``).
NO_DETECTION = (1, 0)


def _as_float32_curve(prob):
    x = np.array(prob, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"`prob` must be a 1-D probability curve. Received: prob.shape={x.shape}")
    return x

__all__ = [
    "NO_DETECTION",
    "PICK_PADDING",
    "PICK_RULES",
    "decode_outputs",
    "detect_events",
    "extents",
    "find_peaks",
    "highest_peak",
    "min_distance_samples",
    "peak_extents",
    "pick",
    "trigger_regions",
]

#: The pick rules a model's conventions may name (see :func:`pick`).
PICK_RULES = ("peaks", "highest", "regions")


def find_peaks(prob, threshold: float = 0.3, min_distance: int = 1, max_peaks: int | None = None) -> np.ndarray:
    """Find the peaks of a 1-D probability curve (SeisT picking rule).

    A peak is a local maximum at least ``threshold`` high (compared in
    float32); on a flat top the first sample of the plateau is taken. The
    first and last samples are never peaks, nor are NaN samples or their
    direct neighbours. With ``max_peaks`` only the ``max_peaks`` highest peaks
    are considered further. When ``min_distance > 1`` the remaining peaks are
    visited from highest to lowest (the later sample first on ties, as in the
    reference's reversed sort) and every lower peak at ``|i - j| <=
    min_distance`` samples from a kept one is removed. SeisT uses
    ``threshold=0.3`` for P/S, ``min_distance`` = ``int(1 s * rate)`` and
    ``max_peaks`` = 1 (``--max-detect-event-num``). The result equals the
    reference's peak detector except for exactly equal peak heights, whose
    order the reference leaves to ``np.argsort``, and for ``max_peaks`` with
    ``min_distance <= 1``, which the reference ignores.

    Args:
        prob: 1-D array, the probability curve of one trace.
        threshold: minimum peak height (inclusive).
        min_distance: minimum peak separation in samples (see above).
        max_peaks: consider only the ``max_peaks`` highest peaks (before the
            distance rule, as SeisT's ``topk``); ``None`` keeps all.

    Returns:
        Sorted int64 array of peak sample indices (possibly empty).
    """
    x = _as_float32_curve(prob)
    if min_distance < 0:
        raise ValueError(f"`min_distance` must be >= 0. Received: min_distance={min_distance}")
    if max_peaks is not None and max_peaks < 1:
        raise ValueError(f"`max_peaks` must be >= 1 or None. Received: max_peaks={max_peaks}")
    n = x.size
    if n < 3:
        return np.zeros(0, dtype=np.int64)
    nan = np.isnan(x)
    any_nan = nan.any()
    if any_nan:
        x[nan] = np.inf  # x is a copy
    with np.errstate(invalid="ignore"):
        dx = np.diff(x)
    dx[np.isnan(dx)] = np.inf  # inf - inf
    is_peak = np.zeros(n, dtype=bool)  # the first and last samples are never peaks
    np.greater(dx[:-1], 0, out=is_peak[1:-1])  # rising into the sample
    is_peak[1:-1] &= dx[1:] <= 0  # not rising after it
    is_peak &= x >= np.float32(threshold)
    if any_nan:
        bad = nan.copy()
        bad[1:] |= nan[:-1]
        bad[:-1] |= nan[1:]
        is_peak &= ~bad
    ind = np.flatnonzero(is_peak)
    order = np.lexsort((-ind, -x[ind]))  # highest first, later sample first on ties
    ind = ind[order]
    if max_peaks is not None:
        ind = ind[:max_peaks]
    if ind.size > 1 and min_distance > 1:
        return _select_by_distance(ind, min_distance)
    return np.sort(ind).astype(np.int64)


def _select_by_distance(ind, min_distance):
    """The peaks ``ind`` (highest priority first) that survive the distance rule, sorted.

    The rule of :func:`find_peaks`: visited from the highest priority down, a
    peak is kept unless a kept peak lies within ``min_distance`` samples.
    This is the rule of ``scipy.signal.find_peaks(..., distance=min_distance
    + 1)`` ("smaller peaks are removed first"), applied here to a proxy curve
    with one spike per peak whose height is its priority (unique, so SciPy's
    order is ours), on coordinates in which gaps longer than the distance are
    shortened to ``min_distance + 1`` (peaks that far apart never interact).
    O(n log n) in the number of peaks (was a Python loop over peaks times an
    array operation over all peaks).
    """
    by_position = np.argsort(ind, kind="stable")
    position = ind[by_position]
    priority = (ind.size - by_position).astype(np.float64)  # the first of ``ind`` the highest
    # peaks are >= 2 samples apart (a peak's right neighbour is not higher), so spikes never touch
    gaps = np.minimum(np.diff(position), min_distance + 1)
    coords = np.concatenate(([1], 1 + np.cumsum(gaps)))
    proxy = np.zeros(int(coords[-1]) + 2)
    proxy[coords] = priority
    kept, _ = scipy.signal.find_peaks(proxy, distance=min_distance + 1)
    return position[np.searchsorted(coords, kept)].astype(np.int64)


def highest_peak(prob, threshold: float = 0.1) -> int | None:
    """Return the single highest peak of a probability curve (U-Trans picking rule).

    All local maxima at least ``threshold`` high are found (no distance
    suppression, as ``find_peaks(prob, threshold, 1)``) and the highest one is
    returned (earliest on ties). The U-Trans notebooks compare peak heights
    rounded to 3 decimals; here the unrounded heights are compared.

    Args:
        prob: 1-D array, the probability curve of one trace.
        threshold: minimum peak height (inclusive); U-Trans uses 0.1.

    Returns:
        The sample index as an ``int``, or ``None`` when no peak reaches ``threshold``.
    """
    ind = find_peaks(prob, threshold=threshold, min_distance=1)
    if ind.size == 0:
        return None
    x = np.asarray(prob, dtype=float)
    return int(ind[np.argmax(x[ind])])


def detect_events(prob, threshold: float = 0.5, max_events: int | None = None) -> np.ndarray:
    """Detection windows of a 1-D probability curve (SeisT detection rule).

    A window is a maximal run of samples with ``prob >= threshold`` (compared
    in float32; the windows of ``obspy.signal.trigger.trigger_onset`` with
    equal on/off thresholds). NaN samples never exceed the threshold. SeisT
    keeps the longest window only (``max_events=1``).

    Args:
        prob: 1-D probability curve.
        threshold: trigger threshold (inclusive); SeisT uses 0.5.
        max_events: keep the ``max_events`` longest windows (earliest on ties); None keeps all.

    Returns:
        int64 array (n, 2) of inclusive ``[start, end]`` samples, sorted by start.
    """
    x = _as_float32_curve(prob)
    on = np.zeros(x.size + 2, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        on[1:-1] = x >= np.float32(threshold)
    edges = np.diff(on)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    win = np.stack([starts, ends], axis=1).astype(np.int64) if starts.size else np.zeros((0, 2), np.int64)
    if max_events is not None and win.shape[0] > max_events:
        order = np.lexsort((win[:, 0], -(win[:, 1] - win[:, 0])))
        win = win[np.sort(order[:max_events])]
    return win


_PICK_NAMES = {"ppk": "ppk", "P": "ppk", "spk": "spk", "S": "spk"}


def decode_outputs(curves, labels, sampling_rate, thresholds=None, min_peak_distance_s=1.0,
                   max_events=1):
    """Decode a batch of detection and picking curves as SeisT does (``process_outputs``).

    Per trace and channel:

    * ``det``: the ``max_events`` longest detection windows
      (:func:`detect_events`), longest first (earliest on ties), flattened to
      ``[on0, off0, on1, off1, ...]`` and padded with ``[1, 0]``
      (:data:`NO_DETECTION`);
    * ``ppk`` / ``spk`` (or ``P`` / ``S``): the picks of :func:`find_peaks` with
      ``min_distance = int(min_peak_distance_s * sampling_rate)`` and
      ``max_peaks = max_events``, in sample order, padded with
      :data:`PICK_PADDING`.

    Other channels (PhaseNet's noise ``non`` / ``N``) are not decoded.

    Args:
        curves: ``(N, L, C)`` probabilities, channels last.
        labels: the ``C`` channel names, e.g. ``("det", "ppk", "spk")`` or a
            model's ``conventions.labels`` (``("det", "P", "S")``, ``("N", "P", "S")``).
        sampling_rate: Hz of the curves.
        thresholds: dict name -> threshold (either naming); defaults SeisT's
            ``det`` 0.5, ``ppk``/``spk`` 0.3.
        min_peak_distance_s: minimum time between two picks of one phase (SeisT: 1.0 s).
        max_events: detections and picks kept per trace (SeisT ``--max-detect-event-num`` 1).

    Returns:
        dict ``{"det": int64 (N, 2 * max_events), "ppk": int64 (N, max_events),
        "spk": ...}`` with the decoded channels only.
    """
    c = np.asarray(curves)
    labels = tuple(labels)
    if c.ndim != 3 or c.shape[-1] != len(labels):
        raise ValueError(f"`curves` must have shape (N, L, {len(labels)}) for labels {labels}. "
                         f"Received: curves.shape={c.shape}")
    if int(max_events) < 1:
        raise ValueError(f"`max_events` must be >= 1. Received: max_events={max_events}")
    k = int(max_events)
    given = {_PICK_NAMES.get(n, n): float(v) for n, v in (thresholds or {}).items()}
    thr = {"det": 0.5, "ppk": 0.3, "spk": 0.3, **given}
    min_dist = min_distance_samples(min_peak_distance_s, sampling_rate)
    out = {}
    for ch, name in enumerate(labels):
        key = _PICK_NAMES.get(name, name)
        if key == "det":
            det = np.tile(np.asarray(NO_DETECTION, dtype=np.int64), (c.shape[0], k))
            for i in range(c.shape[0]):
                win = detect_events(c[i, :, ch], thr["det"])
                order = np.lexsort((win[:, 0], -(win[:, 1] - win[:, 0])))[:k]
                det[i, :2 * order.size] = win[order].reshape(-1)
            out["det"] = det
        elif key in ("ppk", "spk"):
            picks = np.full((c.shape[0], k), PICK_PADDING, dtype=np.int64)
            for i in range(c.shape[0]):
                found = find_peaks(c[i, :, ch], thr[key], min_dist, max_peaks=k)
                picks[i, :found.size] = found
            out[key] = picks
    return out


def peak_extents(prob, peaks, threshold: float) -> np.ndarray:
    """The run of samples at or above ``threshold`` around each peak.

    Gives picks a start and an end (the trigger window of the peak), as
    :func:`detect_events` gives detections theirs.

    Args:
        prob: 1-D probability curve.
        peaks: sample indices of peaks, each at or above ``threshold``
            (as returned by :func:`find_peaks` with the same threshold).
        threshold: the peaks' threshold.

    Returns:
        int64 array (len(peaks), 2) of inclusive ``[start, end]`` samples.
    """
    peaks = np.asarray(peaks, dtype=np.int64)
    runs = detect_events(prob, threshold)
    if peaks.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    idx = np.searchsorted(runs[:, 0], peaks, side="right") - 1
    if (idx < 0).any() or (runs[np.maximum(idx, 0), 1] < peaks).any():
        raise ValueError(f"Every peak must be at or above the threshold {threshold}. "
                         f"Received: peaks={peaks.tolist()}")
    return runs[idx]


def min_distance_samples(seconds, sampling_rate):
    """A minimum pick distance in seconds as whole samples, as the SeisT reference counts it.

    ``int(seconds * rate)`` (truncated; a product within 1e-9 of a whole number
    counts as that number), at least 1.

    Args:
        seconds: minimum distance in seconds (``None`` or 0: 1 sample).
        sampling_rate: Hz of the curve.

    Returns:
        An int >= 1.
    """
    if not seconds:
        return 1
    return max(1, int(np.floor(float(seconds) * float(sampling_rate) + 1e-9)))


def pick(curve, rule, threshold, min_distance=1, max_peaks=None, windows=None):
    """The picks of one probability curve by a pick rule: sorted int64 sample indices.

    Args:
        curve: 1-D probabilities.
        rule: ``"peaks"`` (:func:`find_peaks`: every peak at or above
            ``threshold``, the highest ``max_peaks`` of them, lower peaks
            within ``min_distance`` samples of a higher one removed),
            ``"highest"`` (:func:`highest_peak` in each of ``windows``; a peak
            chosen by overlapping windows is one pick) or ``"regions"`` (the
            maximum of each region of :func:`trigger_regions`, the first
            sample of a plateau; the highest ``max_peaks`` of them).
        threshold: minimum peak height (inclusive).
        min_distance: minimum distance in samples (``"peaks"``).
        max_peaks: peaks considered (``"peaks"``; ``None``: all).
        windows: ``(starts, length)`` of the windows the curve was made of
            (``"highest"``; default: the whole curve is one window).

    Returns:
        Sorted int64 array of sample indices.
    """
    if rule == "peaks":
        return find_peaks(curve, threshold, min_distance, max_peaks=max_peaks)
    if rule == "regions":
        x = np.asarray(curve)
        peaks = _region_maxima(x, trigger_regions(x, threshold))
        if max_peaks is not None and peaks.size > max_peaks:
            peaks = np.sort(peaks[np.argsort(-x[peaks], kind="stable")[:max_peaks]])
        return peaks
    if rule != "highest":
        raise ValueError(f"pick rule must be one of {PICK_RULES}. Received: rule={rule!r}")
    n = np.shape(curve)[0]
    starts, length = windows if windows is not None else ((0,), n)
    found = set()
    for s in starts:
        a, b = max(int(s), 0), min(int(s) + length, n)  # a window may reach past the curve
        h = highest_peak(curve[a:b], threshold) if b > a else None
        if h is not None:
            found.add(a + h)
    return np.array(sorted(found), dtype=np.int64)


def _region_maxima(x, regions):
    """The first sample of each region's maximum (regions sorted, disjoint, free of NaN)."""
    if not len(regions):
        return np.zeros(0, dtype=np.int64)
    starts, ends = regions[:, 0], regions[:, 1] + 1
    bounds = np.stack([starts, ends], axis=1).ravel()
    padded = np.append(x, x[-1:])  # reduceat needs every bound inside the array
    maxima = np.maximum.reduceat(padded, bounds)[::2]
    edges = np.zeros(x.size + 1, dtype=np.int8)
    edges[starts] += 1
    edges[ends] -= 1
    inside = np.cumsum(edges[:-1], dtype=np.int8) > 0
    region = np.cumsum(edges[:-1] > 0) - 1  # the region a sample inside one belongs to
    at_max = np.flatnonzero(inside & (x == maxima[np.maximum(region, 0)]))
    _, first = np.unique(region[at_max], return_index=True)
    return at_max[first].astype(np.int64)


def trigger_regions(curve, on_threshold, off_threshold=None):
    """First and last sample of every triggered region of ``curve`` (SeisBench's rule).

    Equals ObsPy's ``trigger_onset(curve, on_threshold, off_threshold)`` for
    ``off_threshold <= on_threshold``: a region is a maximal run of samples
    ``>= off_threshold`` that holds a sample ``>= on_threshold``; it starts at
    the first such sample and ends at the run's last sample. NaN samples
    count as below any threshold.

    Args:
        curve: 1-D array.
        on_threshold: the trigger-on level.
        off_threshold: the trigger-off level (default ``on_threshold / 2``, SeisBench's).

    Returns:
        int64 array ``(regions, 2)`` of inclusive ``(start, end)`` sample indices.

    Raises:
        ValueError: ``curve`` is not 1-D, or ``off_threshold > on_threshold``.
    """
    x = np.asarray(curve)
    if x.ndim != 1:
        raise ValueError(f"trigger_regions needs a 1-D curve. Received: shape {x.shape}")
    if off_threshold is None:
        off_threshold = on_threshold / 2
    if off_threshold > on_threshold:
        raise ValueError("off_threshold must not exceed on_threshold. Received: "
                         f"on_threshold={on_threshold}, off_threshold={off_threshold}")
    with np.errstate(invalid="ignore"):
        held = x >= off_threshold
        on = np.flatnonzero(x >= on_threshold)
    edges = np.diff(held.astype(np.int8), prepend=0, append=0)
    run_starts = np.flatnonzero(edges == 1)
    run_ends = np.flatnonzero(edges == -1) - 1
    first_on = np.searchsorted(on, run_starts)
    valid = first_on < on.size
    valid[valid] = on[first_on[valid]] <= run_ends[valid]
    return np.stack([on[first_on[valid]], run_ends[valid]], axis=1).astype(np.int64)


def extents(curve, peaks, threshold, rule="peaks"):
    """The start and end samples of each pick under a pick rule.

    ``"regions"``: the pick's triggered region (:func:`trigger_regions`);
    other rules: the run at or above the threshold that holds the peak
    (:func:`peak_extents`).

    Returns:
        int64 array ``(len(peaks), 2)`` of inclusive ``[start, end]`` samples.
    """
    if rule != "regions":
        return peak_extents(curve, peaks, threshold)
    regions = trigger_regions(np.asarray(curve), threshold)
    peaks = np.asarray(peaks, dtype=np.int64)
    idx = np.searchsorted(regions[:, 1], peaks, side="left")
    return regions[idx] if peaks.size else np.zeros((0, 2), dtype=np.int64)
