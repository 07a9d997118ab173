"""The decoder's peak selection against the former quadratic rule (the oracle), on random curves."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utrans.processing import decode as D


def oracle_find_peaks(prob, threshold=0.3, min_distance=1, max_peaks=None):
    """The former ``find_peaks``: a Python loop over peaks times an array operation over all of them."""
    x = np.array(prob, dtype=np.float32)
    n = x.size
    if n < 3:
        return np.zeros(0, dtype=np.int64)
    nan = np.isnan(x)
    xf = np.where(nan, np.float32(np.inf), x)
    with np.errstate(invalid="ignore"):
        dx = np.diff(xf)
    dx[np.isnan(dx)] = np.inf
    rising_into = np.concatenate(([0.0], dx)) > 0
    not_rising_after = np.concatenate((dx, [0.0])) <= 0
    is_peak = rising_into & not_rising_after
    is_peak[0] = is_peak[-1] = False
    if nan.any():
        bad = nan.copy()
        bad[1:] |= nan[:-1]
        bad[:-1] |= nan[1:]
        is_peak &= ~bad
    is_peak &= xf >= np.float32(threshold)
    ind = np.flatnonzero(is_peak)
    order = np.lexsort((-ind, -xf[ind]))
    ind = ind[order]
    if max_peaks is not None:
        ind = ind[:max_peaks]
    if ind.size and min_distance > 1:
        removed = np.zeros(ind.size, dtype=bool)
        for i in range(ind.size):
            if removed[i]:
                continue
            close = np.abs(ind - ind[i]) <= min_distance
            close[i] = False
            removed |= close
        ind = ind[~removed]
    return np.sort(ind).astype(np.int64)


# Few distinct levels make plateaus and equal peak heights common; NaN samples too.
LEVELS = [0.0, 0.1, 0.29, 0.3, 0.5, 0.5, 0.7, 0.9, 1.0, np.nan]


@st.composite
def curves(draw):
    n = draw(st.integers(0, 300))
    kind = draw(st.sampled_from(["levels", "uniform", "staircase"]))
    if kind == "levels":
        values = draw(st.lists(st.sampled_from(LEVELS), min_size=n, max_size=n))
        return np.array(values, dtype=np.float64)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.uniform(0, 1, n).round(draw(st.integers(1, 6)))
    # Peaks every other sample rising (or falling) slowly: long chains of the distance rule.
    x = np.zeros(n)
    x[1::2] = np.linspace(0.3, 1.0, x[1::2].size)[::draw(st.sampled_from([1, -1]))]
    return x


@settings(max_examples=400, deadline=None)
@given(x=curves(), threshold=st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.95]),
       min_distance=st.integers(0, 25), max_peaks=st.one_of(st.none(), st.integers(1, 6)))
def test_find_peaks_equals_the_former_rule(x, threshold, min_distance, max_peaks):
    expected = oracle_find_peaks(x, threshold, min_distance, max_peaks)
    found = D.find_peaks(x, threshold, min_distance, max_peaks)
    assert found.dtype == np.int64
    np.testing.assert_array_equal(found, expected)


@pytest.mark.parametrize("min_distance", [2, 3, 50, 100, 10_000])
def test_find_peaks_equals_the_former_rule_on_a_long_noisy_curve(min_distance):
    rng = np.random.default_rng(min_distance)
    x = np.convolve(rng.uniform(0, 1, 60_000), np.ones(5) / 5, mode="same").round(3)
    expected = oracle_find_peaks(x, 0.5, min_distance)
    assert expected.size > 3  # the rule has work to do
    assert expected.size < oracle_find_peaks(x, 0.5, 1).size
    np.testing.assert_array_equal(D.find_peaks(x, 0.5, min_distance), expected)


def test_distance_rule_keeps_the_later_of_equal_peaks_and_follows_chains():
    # Equal heights: the later sample wins (the reference's reversed sort).
    x = np.zeros(40)
    x[[10, 14]] = 0.8
    assert D.find_peaks(x, 0.3, 5).tolist() == [14]
    # A rising staircase 2 samples apart: only every other survives from the top down.
    y = np.zeros(21)
    y[1::2] = np.linspace(0.4, 0.9, 10)
    assert D.find_peaks(y, 0.3, 2).tolist() == [3, 7, 11, 15, 19]
    assert D.find_peaks(y, 0.3, 3).tolist() == [3, 7, 11, 15, 19]
    assert D.find_peaks(y, 0.3, 4).tolist() == [1, 7, 13, 19]
    assert oracle_find_peaks(y, 0.3, 4).tolist() == [1, 7, 13, 19]


def oracle_region_picks(x, threshold, max_peaks=None):
    """The former region rule: a Python loop over regions."""
    regions = D.trigger_regions(x, threshold)
    peaks = np.array([a + int(np.argmax(x[a:b + 1])) for a, b in regions], dtype=np.int64)
    if max_peaks is not None and peaks.size > max_peaks:
        peaks = np.sort(peaks[np.argsort(-x[peaks], kind="stable")[:max_peaks]])
    return peaks


@settings(max_examples=300, deadline=None)
@given(x=curves(), threshold=st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.95]),
       max_peaks=st.one_of(st.none(), st.integers(1, 6)))
def test_region_picks_equal_the_former_loop(x, threshold, max_peaks):
    found = D.pick(x, "regions", threshold, max_peaks=max_peaks)
    np.testing.assert_array_equal(found, oracle_region_picks(x, threshold, max_peaks))
