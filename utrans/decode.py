"""The one decoder of model outputs into picks and detections.

Testers, readers, training-parity checks and :mod:`utrans.annotate` all turn
probability curves into picks and detection windows through these functions,
so a pick means the same thing everywhere:

* :func:`find_peaks`: every local maximum above a threshold, lower peaks
  within ``min_distance`` samples of a higher one removed (SeisT rule);
* :func:`highest_peak`: the single highest peak above a threshold (U-Trans rule);
* :func:`detect_events`: runs of samples above a threshold (detection windows).
* :func:`peak_extents`: the run above the threshold around each peak (pick start/end).

Plain numpy: no deep-learning framework is imported.
"""

from __future__ import annotations

import numpy as np

from utrans.metrics import intervals_to_mask

__all__ = [
    "detect_events",
    "detection_mask",
    "find_peaks",
    "highest_peak",
    "peak_extents",
    "pick_traces",
]


def find_peaks(prob, threshold: float = 0.3, min_distance: int = 1, max_peaks: int | None = None) -> np.ndarray:
    """Find the peaks of a 1-D probability curve (SeisT picking rule).

    A peak is a local maximum at least ``threshold`` high; on a flat top the first
    sample of the plateau is taken. The first and last samples are never peaks,
    nor are NaN samples or their direct neighbours. When ``min_distance > 1`` the
    peaks are visited from highest to lowest (the later sample first on ties, as
    in the reference's reversed sort) and every
    lower peak at ``|i - j| <= min_distance`` samples from a kept one is removed.
    SeisT uses ``threshold=0.3`` for P/S with ``min_distance`` = 1 s of samples.
    The result equals the reference's peak detector except for exactly equal
    peak heights, whose order the reference leaves to ``np.argsort``.

    Args:
        prob: 1-D array, the probability curve of one trace.
        threshold: minimum peak height (inclusive).
        min_distance: minimum peak separation in samples (see above).
        max_peaks: keep only the ``max_peaks`` highest peaks (after the distance
            suppression); ``None`` keeps all.

    Returns:
        Sorted int64 array of peak sample indices (possibly empty).
    """
    x = np.asarray(prob, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"`prob` must be a 1-D probability curve. Received: prob.shape={x.shape}")
    if min_distance < 0:
        raise ValueError(f"`min_distance` must be >= 0. Received: min_distance={min_distance}")
    if max_peaks is not None and max_peaks < 1:
        raise ValueError(f"`max_peaks` must be >= 1 or None. Received: max_peaks={max_peaks}")
    n = x.size
    if n < 3:
        return np.zeros(0, dtype=np.int64)
    nan = np.isnan(x)
    xf = np.where(nan, np.inf, x)
    dx = np.diff(xf)
    dx[np.isnan(dx)] = np.inf  # inf - inf
    rising_into = np.concatenate(([0.0], dx)) > 0
    not_rising_after = np.concatenate((dx, [0.0])) <= 0
    is_peak = rising_into & not_rising_after
    is_peak[0] = is_peak[-1] = False
    if nan.any():
        bad = nan.copy()
        bad[1:] |= nan[:-1]
        bad[:-1] |= nan[1:]
        is_peak &= ~bad
    is_peak &= xf >= threshold
    ind = np.flatnonzero(is_peak)
    if ind.size and min_distance > 1:
        order = np.lexsort((-ind, -x[ind]))  # highest first, later sample first on ties
        ind = ind[order]
        removed = np.zeros(ind.size, dtype=bool)
        for i in range(ind.size):
            if removed[i]:
                continue
            close = np.abs(ind - ind[i]) <= min_distance
            close[i] = False
            removed |= close
        ind = ind[~removed]
    if max_peaks is not None and ind.size > max_peaks:
        order = np.lexsort((-ind, -x[ind]))
        ind = ind[order[:max_peaks]]
    return np.sort(ind).astype(np.int64)


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


def pick_traces(
    probs,
    threshold: float,
    min_distance: int = 1,
    rule: str = "all",
    max_peaks: int | None = None,
) -> np.ndarray:
    """Pick every trace of a batch of probability curves.

    Args:
        probs: array (N, L) of probability curves.
        threshold: minimum peak height.
        min_distance: minimum peak distance in samples (``rule="all"`` only).
        rule: ``"all"`` (``find_peaks``, SeisT) or ``"highest"`` (``highest_peak``, U-Trans).
        max_peaks: passed to ``find_peaks``.

    Returns:
        Float array (N, K) of pick samples, NaN padded (K >= 1), ready for ``pick_metrics``.
    """
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"`probs` must have shape (N, L). Received: probs.shape={p.shape}")
    if rule not in ("all", "highest"):
        raise ValueError(f"`rule` must be 'all' or 'highest'. Received: rule={rule!r}")
    picks: list[np.ndarray] = []
    for row in p:
        if rule == "highest":
            h = highest_peak(row, threshold)
            picks.append(np.array([] if h is None else [h], dtype=float))
        else:
            picks.append(find_peaks(row, threshold, min_distance, max_peaks).astype(float))
    k = max([1] + [len(q) for q in picks])
    out = np.full((p.shape[0], k), np.nan)
    for i, q in enumerate(picks):
        out[i, : len(q)] = q
    return out


def detect_events(prob, threshold: float = 0.5, max_events: int | None = None) -> np.ndarray:
    """Detection windows of a 1-D probability curve (SeisT detection rule).

    A window is a maximal run of samples with ``prob >= threshold``
    (``obspy.signal.trigger.trigger_onset`` with equal on/off thresholds).
    NaN samples never exceed the threshold. SeisT keeps the longest window
    only (``max_events=1``).

    Args:
        prob: 1-D probability curve.
        threshold: trigger threshold (inclusive); SeisT uses 0.5.
        max_events: keep the ``max_events`` longest windows (earliest on ties); None keeps all.

    Returns:
        int64 array (n, 2) of inclusive ``[start, end]`` samples, sorted by start.
    """
    x = np.asarray(prob, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"`prob` must be a 1-D probability curve. Received: prob.shape={x.shape}")
    on = np.zeros(x.size + 2, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        on[1:-1] = x >= threshold
    edges = np.diff(on)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    win = np.stack([starts, ends], axis=1).astype(np.int64) if starts.size else np.zeros((0, 2), np.int64)
    if max_events is not None and win.shape[0] > max_events:
        order = np.lexsort((win[:, 0], -(win[:, 1] - win[:, 0])))
        win = win[np.sort(order[:max_events])]
    return win


def detection_mask(probs, threshold: float = 0.5, max_events: int | None = 1) -> np.ndarray:
    """Boolean detection masks of a batch of detection curves (SeisT rule).

    Args:
        probs: array (N, L) of detection probabilities.
        threshold: trigger threshold; SeisT uses 0.5.
        max_events: windows kept per trace (SeisT default 1, the longest).

    Returns:
        Boolean array (N, L).
    """
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"`probs` must have shape (N, L). Received: probs.shape={p.shape}")
    return np.stack(
        [intervals_to_mask(detect_events(row, threshold, max_events), p.shape[1]) for row in p]
    ) if p.shape[0] else np.zeros(p.shape, dtype=bool)




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
