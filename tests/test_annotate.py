"""utrans.annotate on synthetic records: windows, grouping, gaps, timing, stacking, pickers.

A toy "spike" model (its P output is high exactly where the normalised
vertical component is large, S likewise on the north component) makes the
absolute timing testable to the sample; tiny configurations of every picker
family check that each runs through annotate and classify.
"""

import warnings

import keras
import numpy as np
import obspy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st_

from utrans.annotate import Annotator, annotate, classify
from utrans.core.conventions import Conventions
from utrans.core.errors import AnnotateWarning, ModelInputError, StationError
from utrans.processing.normalize import normalize
from utrans.processing.stacking import Accumulator
from utrans.processing.streams import group_stream, map_components
from utrans.processing.windows import make_plan
from utrans.models import UTransBackbone, get_model

T0 = obspy.UTCDateTime(2021, 5, 3, 10, 0, 0)
W = 400  # window of the toy and tiny models


def spike_model(in_samples=W, sampling_rate=100.0, order="ZNE"):
    """P = Z spike, S = N spike, det = E spike, after per-window normalisation."""
    inputs = keras.Input((in_samples, 3))
    out = keras.layers.Lambda(lambda x: keras.ops.sigmoid(4.0 * (keras.ops.abs(x) - 5.0)))(inputs)
    model = keras.Model(inputs, out, name="spike")
    model.conventions = Conventions(
        sampling_rate=sampling_rate, component_order=order, in_samples=in_samples,
        labels=("P", "S", "det"), thresholds={"P": 0.5, "S": 0.5, "det": 0.5},
        min_peak_distance_s=1.0)
    return model


def make_stream(seconds=60.0, rate=100.0, station="STA", channels="HHZ,HHN,HHE", t0=T0,
                seed=0, spikes=(), location=""):
    """Gaussian noise traces; ``spikes`` = [(component letter, seconds after t0)]."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    traces = []
    for cha in channels.split(","):
        data = rng.standard_normal(n)
        for comp, when in spikes:
            if cha[-1] == comp:
                data[int(round(when * rate))] += 1000.0
        traces.append(obspy.Trace(data, header={
            "network": "XX", "station": station, "location": location, "channel": cha,
            "sampling_rate": rate, "starttime": t0}))
    return obspy.Stream(traces)


def peak_seconds(picks, phase):
    rows = picks[picks.phase == phase]
    return sorted(round(obspy.UTCDateTime(t) - T0, 4) for t in rows.peak_time)


# --------------------------------------------------------------------------- windows


@settings(max_examples=200, deadline=None)
@given(length=st_.integers(1, 5000), w=st_.integers(8, 600), frac=st_.floats(0.0, 0.9),
       grid=st_.integers(0, 10**9), blind_frac=st_.floats(0.0, 1.0))
def test_windows_cover_every_sample_once_kept(length, w, frac, grid, blind_frac):
    overlap = int(frac * w)
    plan = make_plan(w, overlap, int(blind_frac * (overlap // 2)))
    offsets = plan.offsets(length, grid)
    assert len(offsets) == plan.count(length, grid)
    assert offsets[0] == 0 and np.all(np.diff(offsets) > 0)
    covered = np.zeros(length, dtype=int)
    for o in offsets:
        assert o + w <= max(length, w)
        lo, hi = plan.kept(int(o), length)
        covered[o + lo:o + min(hi, length - o)] += 1
    assert covered.min() >= 1
    # Interior windows sit on the absolute grid.
    interior = offsets[(offsets > 0) & (offsets + w < length)]
    assert np.all((interior + grid) % plan.step == 0)


def test_plan_options_and_errors():
    plan = make_plan(8192)
    assert (plan.step, plan.blinding) == (4096, (410, 410))  # (start, end) of a window
    assert make_plan(3001, 1500).step == 1501
    assert make_plan(100, 0).blinding == (0, 0)
    assert make_plan(100, 50, blinding=(30, 20)).blinding == (30, 20)
    with pytest.raises(ValueError, match="Received: overlap=100"):
        make_plan(100, 100)
    with pytest.raises(ValueError, match="Received: blinding=30"):
        make_plan(100, 50, blinding=30)  # 30 at each end: more than the overlap of 50
    with pytest.raises(ValueError, match=r"Received: blinding=\(30, 21\)"):
        make_plan(100, 50, blinding=(30, 21))
    with pytest.raises(ValueError, match="overlap"):
        make_plan(100, 1.5)


def test_accumulator_avg_and_max():
    acc = Accumulator(1, 6, "avg")
    acc.add(0, np.array([[1, 1, 1, 1]], dtype=np.float32))
    acc.add(2, np.array([[3, 3, 3, 3]], dtype=np.float32))
    np.testing.assert_allclose(acc.result(), [[1, 1, 2, 2, 3, 3]])
    acc = Accumulator(1, 6, "max")
    acc.add(0, np.array([[1, 5, 1, 1]], dtype=np.float32))
    acc.add(2, np.array([[3, 0, 3, 3]], dtype=np.float32))
    np.testing.assert_allclose(acc.result(), [[1, 5, 3, 1, 3, 3]])
    with pytest.raises(ValueError, match="stacking"):
        Accumulator(1, 3, "median")


def test_normalize_flat_channel_stays_zero():
    x = np.zeros((1, 50, 2), dtype=np.float32)
    x[0, :, 1] = np.arange(50)
    out = normalize(x + 7.0, "std")
    assert np.all(out[0, :, 0] == 0)
    np.testing.assert_allclose(out[0, :, 1].std(), 1.0, rtol=1e-5)
    # "max": the largest |x| after removing the mean (arange(50) - 24.5: 24.5 at both ends).
    peak = normalize(x, "max")[0, :, 1]
    assert np.abs(peak).max() == pytest.approx(1.0)
    assert peak[0] == pytest.approx(-1.0) and peak[-1] == pytest.approx(1.0)


# --------------------------------------------------------------------------- grouping


@pytest.mark.parametrize("codes,expected", [
    ("ZNE", {"Z": "Z", "N": "N", "E": "E"}),
    ("Z12", {"Z": "Z", "1": "N", "2": "E"}),
    ("Z23", {"Z": "Z", "2": "N", "3": "E"}),
    ("Z2", {"Z": "Z", "2": "E"}),
    ("Z3", {"Z": "Z", "3": "E"}),
])
def test_component_mapping(codes, expected):
    assert map_components(codes, "ZNE") == (expected, [])


def test_component_mapping_refuses_mixed_conventions_and_reports_unknown():
    with pytest.raises(StationError, match="mix naming conventions"):
        map_components("ZN1", "ZNE")
    assert map_components("ZRT", "ZNE") == ({"Z": "Z"}, ["R", "T"])
    assert map_components("ZNE", "Z") == ({"Z": "Z"}, [])


def test_grouping_by_station_location_and_instrument():
    st = make_stream(station="A") + make_stream(station="B") + \
        make_stream(station="A", location="10") + make_stream(station="A", channels="HNZ,HNN,HNE")
    groups, skipped = group_stream(st, "ZNE")
    assert [g.group_id for g in groups] == ["XX.A..HH", "XX.A..HN", "XX.A.10.HH", "XX.B..HH"]
    assert skipped == []
    ann = Annotator(spike_model())
    names = ann.channel_names(groups)
    assert names["XX.A..HH"]["P"] == "HH_spike_P" and names["XX.B..HH"]["P"] == "spike_P"


def test_empty_stream_is_refused():
    with pytest.raises(ValueError, match="no samples"):
        annotate(spike_model(), obspy.Stream())
    with pytest.raises(TypeError, match="obspy Stream"):
        annotate(spike_model(), np.zeros(10))


def test_nan_single_station_is_an_error_naming_the_trace():
    st = make_stream()
    st[1].data[100] = np.nan
    with pytest.warns(AnnotateWarning):
        with pytest.raises(ValueError, match=r"XX\.STA\.\.HHN: 1 non-finite sample"):
            annotate(spike_model(), st)
    with pytest.raises(StationError, match=r"XX\.STA\.\.HHN"):
        annotate(spike_model(), st, errors="raise")


def test_bad_stations_are_skipped_and_the_others_annotated():
    good = make_stream(station="GOOD", spikes=[("Z", 20.0)])
    nan = make_stream(station="NAN")
    nan[0].data[5] = np.inf
    mixed = make_stream(station="MIX")
    mixed[2].stats.sampling_rate = 50.0
    unusable = make_stream(station="ODD", channels="HHR,HHT")
    with pytest.warns(AnnotateWarning) as record:
        out = classify(spike_model(), good + nan + mixed + unusable)
    messages = " | ".join(str(w.message) for w in record)
    assert "XX.NAN..HHZ" in messages and "non-finite" in messages
    assert "XX.MIX..HH" in messages and "mixed sampling rates" in messages
    assert "XX.ODD..HH" in messages and "no usable component" in messages
    assert set(out.picks.trace_id) == {"XX.GOOD."}
    assert sorted(gid for gid, _ in out.skipped) == ["XX.MIX..HH", "XX.NAN..HH", "XX.ODD..HH"]
    assert peak_seconds(out.picks, "P") == [20.0]


# --------------------------------------------------------------------------- timing


def test_picks_land_on_the_spike_to_the_sample():
    spikes = [("Z", 3.0), ("Z", 17.37), ("N", 17.9), ("Z", 41.01), ("E", 50.0)]
    st = make_stream(seconds=60, spikes=spikes)
    for stacking in ("avg", "max"):
        out = classify(spike_model(), st, stacking=stacking)
        assert peak_seconds(out.picks, "P") == [3.0, 17.37, 41.01]
        assert peak_seconds(out.picks, "S") == [17.9]
        assert len(out.detections) == 1
        assert obspy.UTCDateTime(out.detections.start_time[0]) == T0 + 50.0
        row = out.picks.iloc[0]
        assert row.trace_id == "XX.STA." and row.instrument == "HH" and row.model == "spike"
        assert obspy.UTCDateTime(row.start_time) <= obspy.UTCDateTime(row.peak_time) \
            <= obspy.UTCDateTime(row.end_time)


def test_annotation_traces_have_the_model_rate_names_and_times():
    st = make_stream(seconds=30, rate=200.0, spikes=[("Z", 12.0)])
    ann = annotate(spike_model(), st)
    assert [tr.stats.channel for tr in ann] == ["spike_P", "spike_S", "spike_det"]
    for tr in ann:
        assert tr.stats.sampling_rate == 100.0 and tr.stats.starttime == T0
        assert tr.stats.npts == 3000 and tr.data.dtype == np.float32
    p = ann.select(channel="spike_P")[0]
    assert p.times("utcdatetime")[np.argmax(p.data)] == T0 + 12.0


@pytest.mark.parametrize("rate", [40.0, 75.0, 250.0])
def test_resampled_records_keep_their_timing(rate):
    # A smooth pulse survives resampling; its peak stays within one model sample.
    rng = np.random.default_rng(1)
    n = int(40 * rate)
    t = np.arange(n) / rate
    traces = []
    for comp in "ZNE":
        data = rng.standard_normal(n) * 0.01
        if comp == "Z":
            data += 50 * np.exp(-0.5 * ((t - 21.3) / 0.05) ** 2)
        traces.append(obspy.Trace(data, {"station": "R", "channel": f"HH{comp}",
                                         "sampling_rate": rate, "starttime": T0}))
    ann = annotate(spike_model(sampling_rate=50.0), obspy.Stream(traces))
    p = ann.select(channel="spike_P")[0]
    assert p.stats.sampling_rate == 50.0
    assert abs(p.times("utcdatetime")[np.argmax(p.data)] - (T0 + 21.3)) <= 0.02 + 1e-9


def test_fractional_start_offsets_between_components():
    st = make_stream(seconds=20, spikes=[("Z", 8.0), ("N", 8.0)])
    st[1].stats.starttime += 0.004  # 0.4 samples late: rounded onto the Z grid
    out = classify(spike_model(), st)
    assert peak_seconds(out.picks, "P") == [8.0]
    assert peak_seconds(out.picks, "S") == [8.0]


# --------------------------------------------------------------------------- gaps, short, missing


def test_gaps_split_segments_and_no_window_crosses_them():
    st = make_stream(seconds=120, spikes=[("Z", 10.0), ("Z", 90.0)])
    a = st.copy().trim(T0, T0 + 29.99)
    b = st.copy().trim(T0 + 35.0, T0 + 119.99)
    ann = Annotator(spike_model())
    groups, _ = ann.groups(a + b)
    results = list(ann.results(groups))
    assert [(r.segment.start, r.segment.length) for r in results] == [(T0, 3000), (T0 + 35.0, 8500)]
    for r in results:
        assert np.all(r.offsets + W <= r.segment.length)
    out = ann.classify(a + b)
    assert peak_seconds(out.picks, "P") == [10.0, 90.0]
    traces = ann.annotate(a + b)
    assert len(traces) == 6
    assert sorted({str(tr.stats.starttime) for tr in traces}) == [str(T0), str(T0 + 35.0)]


def test_masked_gaps_from_merge_are_segments():
    st = make_stream(seconds=60, spikes=[("Z", 50.0)])
    parts = st.copy().trim(T0, T0 + 20) + st.copy().trim(T0 + 25, T0 + 59.99)
    parts.merge(fill_value=None)
    assert np.ma.isMaskedArray(parts[0].data)
    ann = annotate(spike_model(), parts)
    assert len(ann) == 6
    assert peak_seconds(classify(spike_model(), parts).picks, "P") == [50.0]


def test_record_shorter_than_one_window_is_padded():
    st = make_stream(seconds=2.5, spikes=[("Z", 1.2)])
    ann = annotate(spike_model(), st)
    assert all(tr.stats.npts == 250 for tr in ann)
    assert peak_seconds(classify(spike_model(), st).picks, "P") == [1.2]


def test_short_record_is_normalised_over_its_samples_not_the_padding():
    st = make_stream(seconds=2.5)
    st.select(channel="HHZ")[0].data[120] += 4.5
    p = annotate(spike_model(), st).select(channel="spike_P")[0].data
    z = st.select(channel="HHZ")[0].data.astype(np.float32)

    def spike_output(x):
        x = (x - x.mean()) / x.std()
        return 1.0 / (1.0 + np.exp(-4.0 * (abs(x[120]) - 5.0)))

    # Over the 250 record samples only (the 150 padding samples of the 400-sample
    # window are left out); normalising over the padding too gives a larger value.
    assert p[120] == pytest.approx(spike_output(z), abs=1e-4)
    padded = np.concatenate([z, np.zeros(W - len(z), np.float32)])
    assert spike_output(padded) - p[120] > 0.3


def test_very_short_spans_are_dropped_with_a_warning():
    st = make_stream(seconds=0.5)
    with pytest.warns(AnnotateWarning, match="No segment was long enough"):
        assert len(annotate(spike_model(), st)) == 0


@pytest.mark.parametrize("policy", ["zeros", "copy"])
def test_missing_components_policy(policy):
    st = make_stream(seconds=20, channels="HHZ", spikes=[("Z", 5.0)])
    with pytest.warns(AnnotateWarning, match=f"component\\(s\\) NE missing.*{policy}"):
        out = classify(spike_model(), st, missing_components=policy)
    assert peak_seconds(out.picks, "P") == [5.0]
    # Copying Z into N makes the Z spike an S pick too; zeros do not.
    assert peak_seconds(out.picks, "S") == ([5.0] if policy == "copy" else [])


def test_missing_components_skip_and_partial_gap():
    st = make_stream(seconds=60, spikes=[("Z", 10.0), ("Z", 45.0)])
    e = st.select(channel="HHE")[0]
    st.remove(e)
    st += e.copy().trim(T0, T0 + 29.99)  # E stops after 30 s
    with pytest.warns(AnnotateWarning, match="component\\(s\\) E missing from"):
        out = classify(spike_model(), st, missing_components="skip")
    assert peak_seconds(out.picks, "P") == [10.0]
    with pytest.warns(AnnotateWarning, match="fed as zeros"):
        out = classify(spike_model(), st)
    assert peak_seconds(out.picks, "P") == [10.0, 45.0]


def test_z12_and_z23_records_give_the_same_picks():
    spikes = [("Z", 7.0), ("N", 9.0)]
    ref = classify(spike_model(), make_stream(seconds=20, spikes=spikes)).picks
    for chans, n in (("HHZ,HH1,HH2", "1"), ("HHZ,HH2,HH3", "2")):
        st = make_stream(seconds=20, channels=chans, spikes=[("Z", 7.0), (n, 9.0)])
        out = classify(spike_model(), st).picks
        assert out[["phase", "peak_time"]].equals(ref[["phase", "peak_time"]])


def test_overlapping_duplicate_traces_are_merged():
    st = make_stream(seconds=30, spikes=[("Z", 12.0)])
    dup = st.copy().trim(T0 + 10, T0 + 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AnnotateWarning)
        out = classify(spike_model(), st + dup)
    assert peak_seconds(out.picks, "P") == [12.0]


# --------------------------------------------------------------------------- thresholds, options


def test_thresholds_and_distance_override_the_model():
    st = make_stream(seconds=30, spikes=[("Z", 10.0), ("Z", 10.5)])
    assert len(peak_seconds(classify(spike_model(), st).picks, "P")) == 1  # 1 s apart at least
    both = classify(spike_model(), st, min_peak_distance_s=0.1).picks
    assert peak_seconds(both, "P") == [10.0, 10.5]
    weak = make_stream(seconds=30)
    weak[0].data[2000] += 8.0  # normalised to about 7: P probability just below 1
    assert peak_seconds(classify(spike_model(), weak).picks, "P") == [20.0]
    assert classify(spike_model(), weak, thresholds={"P": 1.0}).picks.empty
    with pytest.raises(ValueError, match="No output called 'Pg'"):
        classify(spike_model(), st, thresholds={"Pg": 0.2})
    with pytest.raises(TypeError, match="Unknown option"):
        classify(spike_model(), st, treshold=0.2)
    with pytest.raises(TypeError, match="thresholds belong to classify"):
        annotate(spike_model(), st, thresholds={"P": 0.2})


def test_unusable_models_are_refused():
    inputs = keras.Input((W, 3))
    reg = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)))
    reg.conventions = Conventions(in_samples=W, labels=("magnitude",))
    with pytest.raises(ValueError, match="one output value per input sample"):
        Annotator(reg)
    with pytest.raises(KeyError, match="Unknown model"):
        Annotator("no_such_model")


def test_registered_names_without_weights_are_refused_unless_random_is_asked():
    st = make_stream(seconds=40, spikes=[("Z", 12.0)])
    calls = {"phasenet": lambda: Annotator("phasenet"),
             "seist_s_dpk": lambda: classify("seist_s_dpk", st),
             "eqtransformer": lambda: annotate("eqtransformer", st)}
    for name, call in calls.items():
        with pytest.raises(ModelInputError, match=f"Model '{name}' has no trained weights") as info:
            call()
        message = str(info.value)
        assert "\n" not in message
        # How to give weights, and how to ask for random ones.
        assert ".keras file" in message and "weights=FILE" in message
        assert "allow_random=True" in message
    with pytest.raises(ModelInputError, match=r"a preset \(seist_s_dpk_diting\)"):
        Annotator("seist_s_dpk")
    keras.utils.set_random_seed(0)
    traces = annotate("phasenet", st, allow_random=True)
    assert [tr.stats.channel for tr in traces] == ["phasenet_N", "phasenet_P", "phasenet_S"]
    assert all(tr.stats.npts == 4000 and tr.stats.starttime == T0 for tr in traces)
    # A softmax over N, P, S, averaged over windows, still sums to one at every sample.
    np.testing.assert_allclose(sum(tr.data for tr in traces), 1.0, atol=1e-5)


# --------------------------------------------------------------------------- invariance


def _split_check(model, seconds=200.0, **options):
    st = make_stream(seconds=seconds, spikes=[("Z", 33.0), ("N", 120.0)], seed=4)
    ann = Annotator(model, **options)
    w_s = ann.plan.in_samples / ann.conventions.sampling_rate
    full = ann.annotate(st)
    cut = T0 + 97.31  # anywhere, not on the window grid
    first = ann.annotate(st.slice(T0, cut + w_s - 0.001))
    second = ann.annotate(st.slice(cut, st[0].stats.endtime))
    rate = ann.conventions.sampling_rate
    for k, label in enumerate(ann.labels):
        f = full.select(channel=f"*_{label}")[0].data
        a = first.select(channel=f"*_{label}")[0].data
        b = second.select(channel=f"*_{label}")[0].data
        m = int(round((cut - T0) * rate))
        w = ann.plan.in_samples
        # Each half equals the full run farther than one window from its cut.
        np.testing.assert_array_equal(a[:m], f[:m])
        np.testing.assert_array_equal(b[w:], f[m + w:])
        # With two windows of overlap, the halves stitched at the middle give everything.
        a2 = ann.annotate(st.slice(T0, cut + 2 * w_s))
        a2 = a2.select(channel=f"*_{label}")[0].data
        stitched = np.concatenate([a2[:m + w], b[w:]])
        np.testing.assert_array_equal(stitched, f)


def test_one_long_call_equals_two_halves_toy_model():
    _split_check(spike_model(), stacking="avg")


def test_one_long_call_equals_two_halves_tiny_phasenet():
    keras.utils.set_random_seed(0)
    _split_check(get_model("phasenet", in_samples=W), stacking="max", overlap=150)


# --------------------------------------------------------------------------- every picker family


def _tiny(name):
    keras.utils.set_random_seed(0)
    if name.startswith("utrans_eqcct"):
        backbone = UTransBackbone(input_length=W, base_filters=2, num_layers=1, num_heads=2,
                                  projection_dim=8)
        return get_model(name, backbone=backbone, conv_filters=(4,), patch_size=8,
                         projection_dim=8, num_heads=2, num_layers=1)
    if name == "seist_s_dpk":
        return get_model(name, in_samples=512, layer_blocks=[1, 1, 1, 1])
    if name == "eqtransformer":
        return get_model(name, in_samples=W, conv_channels=(4, 8), conv_kernels=(5, 3),
                         resconv_kernels=(3,), num_lstm_blocks=1, num_transformer_layers=1,
                         feedforward_dim=16)
    return get_model(name, in_samples=W)


@pytest.mark.parametrize("name", ["seist_s_dpk", "phasenet", "eqtransformer", "utrans_eqcct_p",
                                  "utrans_eqcct_s"])
def test_every_picker_family_runs(name):
    model = _tiny(name)
    conv = model.conventions
    st = make_stream(seconds=30, rate=100.0, spikes=[("Z", 12.0)])
    ann = Annotator(model, batch_size=4)
    traces = ann.annotate(st)
    assert [tr.stats.channel.split("_")[-1] for tr in traces] == list(conv.labels)
    for tr in traces:
        assert tr.stats.npts == 3000 and np.isfinite(tr.data).all()
        assert tr.data.min() >= 0.0 and tr.data.max() <= 1.0
    # The tiny models are untrained: any threshold that makes picks will do.
    phases = [lab for lab in conv.labels if lab in ("P", "S")]
    out = ann.classify(st, thresholds={p: 0.0 for p in phases})
    assert set(out.picks.phase) <= set(phases)
    assert (out.detections is not None) == ("det" in conv.labels)
    if conv.pick_rule == "highest":
        # At most one pick per phase in any annotation window (U-Trans rule).
        times = np.array([obspy.UTCDateTime(t) - T0 for t in out.picks.peak_time])
        assert len(times) >= 1
        for start in np.arange(0, 30 - W / 100 + 0.01, 0.5):
            inside = ((times >= start + 0.011) & (times < start + W / 100 - 0.011)).sum()
            assert inside <= len(ann.plan.offsets(3000)) or inside <= 3
    # Same output through the training graph and through the inference path.
    slow = Annotator(model, batch_size=4, fast=False).annotate(st)
    for a, b in zip(traces, slow):
        np.testing.assert_allclose(a.data, b.data, atol=1e-5)


def test_phasenet_noise_output_is_annotated_but_not_picked():
    model = _tiny("phasenet")
    st = make_stream(seconds=10)
    assert [tr.stats.channel for tr in annotate(model, st)] == \
        ["phasenet_N", "phasenet_P", "phasenet_S"]
    out = classify(model, st, thresholds={"P": 0.0, "S": 0.0})
    assert set(out.picks.phase) <= {"P", "S"} and out.detections is None


def test_batches_mix_stations_and_keep_them_apart():
    st = make_stream(seconds=15, station="A", spikes=[("Z", 3.0)]) + \
        make_stream(seconds=9, station="B", spikes=[("Z", 6.0)], seed=1) + \
        make_stream(seconds=22, station="C", spikes=[("N", 20.0)], seed=2)
    for batch in (1, 3, 64):
        out = classify(spike_model(), st, batch_size=batch).picks
        got = sorted(zip(out.trace_id, out.phase, (obspy.UTCDateTime(t) - T0 for t in out.peak_time)))
        assert got == [("XX.A.", "P", 3.0), ("XX.B.", "P", 6.0), ("XX.C.", "S", 20.0)]


def test_the_compiled_forward_pass_is_traced_once():
    pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function path only")
    ann = Annotator(spike_model(), batch_size=4)
    ann.annotate(make_stream(seconds=30))  # 15 windows: 3 full batches and a padded one
    ann.annotate(make_stream(seconds=25, seed=1))
    predict = ann.runner._compiled((W, 3))
    assert predict.experimental_get_tracing_count() == 1


def test_input_stream_is_not_modified():
    st = make_stream(seconds=20, rate=200.0)
    before = [tr.copy() for tr in st]
    annotate(spike_model(), st)
    for a, b in zip(st, before):
        assert a.stats == b.stats and np.array_equal(a.data, b.data)


# --------------------------------------------------------------------------- memory


def _peak_beyond_output(hours, in_samples):
    import tracemalloc

    st = make_stream(seconds=hours * 3600, channels="HHZ,HHN,HHE")
    for tr in st:
        tr.data = tr.data.astype(np.float32)
    model = spike_model(in_samples=in_samples)
    ann = Annotator(model, batch_size=32)
    ann.annotate(make_stream(seconds=60))  # trace the graph outside the measurement
    tracemalloc.start()
    out = ann.annotate(st)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    output = sum(tr.data.nbytes for tr in out)
    return peak - output, output


def test_memory_beyond_the_output_does_not_grow_with_the_record():
    small, out_small = _peak_beyond_output(0.5, 2000)
    large, out_large = _peak_beyond_output(2.0, 2000)
    assert out_large == 4 * out_small
    # Windows stream through one batch buffer; only the output grows.
    assert large - small < 0.05 * out_large, (small, large, out_large)


@pytest.mark.slow
def test_station_day_memory():
    beyond, output = _peak_beyond_output(24.0, 6000)
    assert output == 3 * 8_640_000 * 4
    assert beyond < 0.1 * output, (beyond, output)
