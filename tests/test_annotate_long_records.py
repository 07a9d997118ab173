"""Long and broken records: bounded memory, the unchunked picks, no picks made by edges."""

import shutil

import keras
import numpy as np
import obspy
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_annotate_presets import continuous_record

from utrans.annotate import Annotator
from utrans.annotate.batching import SegmentResult
from utrans.annotate.picks import SegmentDecoder, decode_segment, iso_times
from utrans.core.conventions import Conventions
from utrans.pipeline import Pipeline
from utrans.processing.normalize import normalize
from utrans.processing.resample import resample
from utrans.processing.samples import JoinedSamples, ResampledSamples
from utrans.processing.streams import Segment


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


# --------------------------------------------------------------------------- decoding in parts
def _curves(rng, n, smooth):
    """Three noisy curves in [0, 1] (det, P, S) with plateaus, crossing 0.3 often."""
    x = rng.standard_normal((3, n + smooth))
    kernel = np.ones(smooth) / smooth
    c = np.stack([np.convolve(row, kernel, mode="valid")[:n] for row in x])
    c = 1 / (1 + np.exp(-(c / c.std() * 1.5 - 1.0)))
    return c.round(3).astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(50, 4000), smooth=st.integers(1, 40),
       rule=st.sampled_from(["peaks", "regions", "highest"]), distance_s=st.sampled_from(
           [0.0, 0.05, 0.3, 1.0]), cuts=st.lists(st.floats(0, 1), max_size=12),
       edges=st.sampled_from([(), (0,), ("end",), (0, "end")]))
def test_a_segment_decoded_in_parts_gives_the_rows_of_the_whole(seed, n, smooth, rule,
                                                                 distance_s, cuts, edges):
    rng = np.random.default_rng(seed)
    curves = _curves(rng, n, smooth)
    conv = Conventions(sampling_rate=100.0, in_samples=64, labels=("det", "P", "S"),
                       thresholds={"det": 0.5, "P": 0.3, "S": 0.4},
                       min_peak_distance_s=distance_s, pick_rule=rule)
    pipeline = Pipeline(conv)
    seg = Segment(station="XX.A.", instrument="HH", start=obspy.UTCDateTime(2024, 1, 1, 0, 0, 0.013),
                  sampling_rate=100.0, length=n, components=[None] * 3, channels={})
    offsets = np.arange(0, max(n - 64, 0) + 1, 32)
    edges = tuple(n if e == "end" else e for e in edges)
    whole = SegmentResult(seg, curves, offsets, edges=edges)
    options = dict(min_peak_distance_s=None, model="m", in_samples=64, edge_guard=5)
    expected = decode_segment(whole, pipeline, pipeline.thresholds(), **options)
    decoder = SegmentDecoder(pipeline, pipeline.thresholds(), **options)
    bounds = sorted({0, n, *(int(c * n) for c in cuts)})
    picks, detections = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        part = SegmentResult(seg, curves[:, a:b], offsets[(offsets < b) & (offsets + 64 > a)],
                             first=a, final=b == n, edges=edges)
        p, d = decoder.add(part)
        picks += p
        detections += d
    key = lambda row: (row.get("phase", ""), row["start_time"])  # noqa: E731 - rows come per part
    assert sorted(picks, key=key) == sorted(expected[0], key=key)
    assert sorted(detections, key=key) == sorted(expected[1], key=key)


# --------------------------------------------------------------------------- chunks and fragments
W = 400  # window of the context model, at its 40 Hz


def context_model(seed=0, rule="peaks"):
    """A small convolutional picker (random weights): outputs see ~1 s of context."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((W, 3))
    x = keras.layers.Conv1D(8, 21, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv1D(3, 21, padding="same")(x)
    out = keras.layers.Activation("sigmoid")(x)
    model = keras.Model(inputs, out, name="context")
    model.conventions = Conventions(
        sampling_rate=40.0, component_order="ZNE", in_samples=W, labels=("det", "P", "S"),
        thresholds={"det": 0.6, "P": 0.55, "S": 0.55}, min_peak_distance_s=0.5, pick_rule=rule)
    return model


def noise_stream(seconds, seed=0, t0=obspy.UTCDateTime(2021, 5, 3, 10, 0, 0.37), rate=100.0):
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    return obspy.Stream([obspy.Trace(
        (rng.standard_normal(n) * np.exp(rng.standard_normal(n).cumsum() / n ** 0.5)).astype(
            np.float32), header={"network": "XX", "station": "A", "channel": f"HH{c}",
                                 "sampling_rate": rate, "starttime": t0}) for c in "ZNE"])


def fragments(stream, count, seed=1):
    """The record cut at random places with gaps of 0.1-10 s; returns (stream, gaps)."""
    rng = np.random.default_rng(seed)
    tr0 = stream[0]
    n, rate, t0 = tr0.stats.npts, tr0.stats.sampling_rate, tr0.stats.starttime
    cuts = np.sort(rng.choice(np.arange(1, n - 1), count - 1, replace=False))
    gaps = np.round(10 ** rng.uniform(-1, 1, count - 1) * rate).astype(int)
    starts, stops = np.concatenate([[0], cuts + gaps]), np.concatenate([cuts, [n]])
    keep = stops > starts
    starts, stops = starts[keep], stops[keep]
    out = obspy.Stream()
    for tr in stream:
        for a, b in zip(starts, stops):
            piece = tr.copy()
            piece.data = tr.data[a:b].copy()
            piece.stats.starttime = t0 + a / rate
            out += piece
    return out, [(t0 + b / rate, t0 + a / rate) for b, a in zip(stops[:-1], starts[1:])]


class CountingRunner:
    """A runner that counts the windows it is called on (resized copies share the count)."""

    def __init__(self, inner, count=None):
        self.inner, self.count = inner, count if count is not None else [0]
        self.batch_size, self.conventions = inner.batch_size, inner.conventions

    def resized(self, batch_size):
        return CountingRunner(self.inner.resized(batch_size), self.count)

    def __call__(self, x):
        self.count[0] += len(x)
        return self.inner(x)


@pytest.mark.parametrize("rule", ["peaks", "regions", "highest"])
@pytest.mark.parametrize("broken,grid", [(False, "absolute"), (True, "absolute"),
                                         (False, "record")])
def test_a_record_in_chunks_gives_the_picks_and_curves_of_the_whole(rule, broken, grid):
    stream = noise_stream(600)
    if broken:
        stream, _ = fragments(stream, 40)
    options = dict(batch_size=8, window_grid=grid, blinding=(30, 50) if grid == "record" else None)
    whole = Annotator(context_model(rule=rule), chunk_s=1e9, **options)
    chunked = Annotator(context_model(rule=rule), chunk_s=12.0, **options)
    assert chunked.chunk_samples == 480 and chunked.plan.in_samples == W
    expected, found = whole.classify(stream), chunked.classify(stream)
    assert len(expected.picks) > 20 and len(expected.detections) > 5
    pd.testing.assert_frame_equal(found.picks, expected.picks)
    pd.testing.assert_frame_equal(found.detections, expected.detections)
    # The stacked curves too, part by part, equal the whole segments' (to float32 rounding).
    groups, _ = chunked.groups(stream)
    parts = list(chunked.pieces(groups))
    assert len(parts) > len(list(whole.results(groups)))
    curves = {}
    for part in parts:
        curves.setdefault(str(part.segment.start), []).append(part.probabilities)
    for result in whole.results(groups):
        joined = np.concatenate(curves[str(result.segment.start)], axis=1)
        np.testing.assert_allclose(joined, result.probabilities, atol=1e-6, rtol=0)


def test_a_record_in_fragments_shares_windows():
    stream = noise_stream(3600, seed=3)
    broken, gaps = fragments(stream, 400)
    counts = {}
    for name, record in (("clean", stream), ("broken", broken)):
        ann = Annotator(context_model(), batch_size=16)
        ann.runner = CountingRunner(ann.runner)
        ann.classify(record)
        counts[name] = ann.runner.count[0]
    # An hour at 40 Hz: 720 windows of 400 samples every 200; a window per fragment: 400 more.
    assert counts["clean"] == 720
    assert counts["broken"] <= 1.05 * counts["clean"], counts


# --------------------------------------------------------------------------- edges of fragments
@pytest.fixture
def seist_home(reference, utrans_home):
    shutil.copy(reference("seist/seist_m_dpk_diting.pth"), utrans_home / "seist_m_dpk_diting.pth")
    return utrans_home


def _seconds(picks, phase):
    return np.sort([obspy.UTCDateTime(t).timestamp for t in picks[picks.phase == phase].peak_time])


def _distance(times, to):
    """Distance from each of ``times`` to the nearest of the sorted ``to``."""
    if not len(to):
        return np.full(len(times), np.inf)
    k = np.clip(np.searchsorted(to, times), 1, len(to) - 1)
    return np.minimum(np.abs(to[k - 1] - times), np.abs(to[k] - times))


def test_fragment_edges_make_no_picks_and_the_clean_picks_stay(seist_home):
    """Three hours of real local events in noise, cut into 600 fragments by gaps of 0.1-10 s.

    Each fragment annotated alone (one window per fragment, zero padding after
    it) gave false S picks a third of a second into fragments and just before
    their ends (three here; 30 in a day in 5,000 fragments). Fragments now share
    windows and picks next to a gap are dropped: no pick that the unbroken record
    does not have lies near an edge, and every pick of the unbroken record
    farther from the gaps is found.
    """
    stream, truth = continuous_record(3.0, seed=5, every_s=240.0)
    broken, gaps = fragments(stream, 600, seed=6)
    ann = Annotator("seist_m_dpk_diting", batch_size=16)
    clean, found = ann.classify(stream).picks, ann.classify(broken).picks
    assert len(truth) >= 40 and len(clean) >= 2 * len(truth) - 2
    edges = np.sort([t.timestamp for gap in gaps for t in gap])
    guard_s = ann.edge_guard / ann.conventions.sampling_rate
    for phase in ("P", "S"):
        c, b = _seconds(clean, phase), _seconds(found, phase)
        false = b[_distance(b, c) > 0.5]
        assert not np.any(_distance(false, edges) <= 2.0), (phase, false - false.astype(int))
        starts = np.array([t.timestamp for _, t in gaps])
        ends = np.array([t.timestamp for t, _ in gaps])
        k = np.clip(np.searchsorted(ends, c) - 1, 0, len(ends) - 1)
        in_gap = (ends[k] <= c) & (c <= starts[k])
        away = c[~in_gap & (_distance(c, edges) > guard_s + 1.0)]
        assert len(away) > 10
        assert np.all(_distance(away, b) <= 0.25), phase


def test_large_miniseed_read_in_pieces_gives_the_whole_record(tmp_path, monkeypatch):
    from utrans.cli import annotate_run as cli_annotate

    stream = obspy.read()
    for trace in stream:
        trace.data = trace.data.astype("int32")
    path = tmp_path / "rec.mseed"
    stream.write(str(path), format="MSEED", reclen=512)
    monkeypatch.setattr(cli_annotate, "_PIECE_BYTES", 4096)
    pieces = cli_annotate._mseed_pieces(str(path))
    assert len(pieces) == 3 and all(offset % 512 == 0 for offset, _ in pieces)
    read = cli_annotate.read_inputs([str(path)])
    assert len(read) > len(stream)  # read piece by piece
    read.merge()
    for trace in stream:
        np.testing.assert_array_equal(read.select(id=trace.id)[0].data, trace.data)
    text = tmp_path / "rec.txt"
    text.write_text("not miniSEED\n")
    assert cli_annotate._mseed_pieces(str(text)) is None
