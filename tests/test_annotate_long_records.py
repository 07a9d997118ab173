"""Long and broken records: bounded memory, the unchunked picks, no picks made by edges."""

import numpy as np
import obspy
from hypothesis import example, given, settings
from hypothesis import strategies as st

from utrans.annotate.picks import iso_times
from utrans.processing.normalize import normalize
from utrans.processing.resample import resample
from utrans.processing.samples import JoinedSamples, ResampledSamples


@settings(max_examples=300, deadline=None)
@given(ns=st.integers(-2 * 10**18, 4 * 10**18), rate=st.sampled_from([100.0, 50.0, 40.0, 75.0,
                                                                        0.5, 200.0, 33.3]),
       indices=st.lists(st.integers(0, 10**9), max_size=20))
@example(ns=1_000_000_500, rate=100.0, indices=[0, 1])  # half a microsecond: to even
@example(ns=1_000_001_500, rate=100.0, indices=[0, 1])
@example(ns=-1_000_001_500, rate=3.0, indices=[0, 1, 2])
def test_iso_times_are_obspy_strings(ns, rate, indices):
    start = obspy.UTCDateTime(ns=ns)
    expected = [str(start + float(i) / rate) for i in indices]
    assert iso_times(start, rate, np.array(indices, dtype=np.int64)) == expected


@settings(max_examples=60, deadline=None)
@given(rates=st.sampled_from([(100.0, 50.0), (100.0, 40.0), (200.0, 75.0), (40.0, 100.0),
                              (100.0, 100.0 * 999 / 1000), (250.0, 100.0)]),
       n=st.integers(1, 5000), chunk=st.integers(1, 700), seed=st.integers(0, 100),
       reads=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=8))
def test_resampled_samples_equal_the_record_resampled_whole(rates, n, chunk, seed, reads):
    x = np.random.default_rng(seed).standard_normal(n).astype(np.float32)
    whole = resample(x, *rates)
    lazy = ResampledSamples(JoinedSamples([x[:n // 3], x[n // 3:]]), *rates, chunk=chunk)
    assert len(lazy) == len(whole)
    for u, v in reads:
        a, b = sorted((int(u * len(whole)), int(v * len(whole))))
        np.testing.assert_array_equal(lazy[a:b], whole[a:b])  # bit for bit
    np.testing.assert_array_equal(np.asarray(lazy.view(1, len(whole))), whole[1:])


def test_a_mask_normalises_as_the_ranges_it_spells():
    rng = np.random.default_rng(0)
    windows = rng.standard_normal((4, 50, 3))
    ranges = np.array([[0, 50], [10, 50], [0, 17], [5, 6]])
    mask = (np.arange(50) >= ranges[:, :1]) & (np.arange(50) < ranges[:, 1:])
    for mode in ("std", "max", "seisbench_std"):
        np.testing.assert_array_equal(normalize(windows, mode, mask), normalize(windows, mode,
                                                                                 ranges))
    # A window with a hole: statistics over both parts, the hole left at zero.
    holed = np.ones((1, 50), dtype=bool)
    holed[0, 20:30] = False
    out = normalize(windows[:1], "std", holed)[0]
    data = np.concatenate([windows[0, :20], windows[0, 30:]])
    np.testing.assert_allclose(out[:20], ((windows[0, :20] - data.mean(0)) / data.std(0)),
                               rtol=1e-5)
    assert not out[20:30].any()
