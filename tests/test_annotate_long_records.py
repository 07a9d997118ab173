"""Long and broken records: bounded memory, the unchunked picks, no picks made by edges."""

import numpy as np
import obspy
from hypothesis import example, given, settings
from hypothesis import strategies as st

from utrans.annotate.picks import iso_times


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
