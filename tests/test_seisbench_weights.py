"""SeisBench weight files: torch-free loading, SeisBench's outputs, conventions and pick rule.

The reference folder's ``seisbench/`` holds weight files written by SeisBench
0.12.6 (PhaseNet and EQTransformer with random weights, PhaseNetLight trained
on ETHZ), SeisBench's forward outputs on a fixed batch, its ``annotate``
curves of a 120 s record and its ``classify`` picks of them.
"""

import json
import os

import keras
import numpy as np
import obspy
import pytest
from obspy.signal.trigger import trigger_onset

from utrans.annotate import Annotator
from utrans.convert import CheckpointMismatchError, read_torch_state_dict
from utrans.convert.seisbench import SeisBenchWeightsError, find_seisbench_weights, load_seisbench
from utrans.core.conventions import Conventions
from utrans.loading import load_model
from utrans.models import get_model, list_models, model_conventions
from utrans.pipeline import Pipeline
from utrans.processing.decode import trigger_regions
from utrans.processing.normalize import normalize, taper


def seisbench_normalize(windows, normalization, taper_samples=0):
    """The package's normaliser (and taper) with SeisBench's rules."""
    x = normalize(windows, normalization)
    return taper(x, taper_samples) if taper_samples else x

# name -> (weight-file prefix, version, SeisBench's labels in the golden files)
FILES = {
    "phasenet": ("phasenet", "1", ["N", "P", "S"]),
    "phasenetlight_ethz": ("phasenetlight_ethz", "2", ["P", "S", "N"]),
    "eqtransformer": ("eqtransformer", "1", ["Detection", "P", "S"]),
}
# SeisBench's sum(p.numel() for p in model.parameters()) of the three classes
# (PhaseNet, EQTransformer: default arguments).
TORCH_PARAMETERS = {"phasenet": 268_443, "phasenetlight_ethz": 23_305,
                    "eqtransformer": 376_935}
_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _files(reference, name):
    prefix, version, _ = FILES[name]
    return (reference(f"seisbench/{prefix}.json.v{version}"),
            reference(f"seisbench/{prefix}.pt.v{version}"))


def _outputs(model, x_channels_first):
    out = model(x_channels_first.transpose(0, 2, 1), training=False)
    return keras.ops.convert_to_numpy(out)  # (B, N, labels)


def _one_line(err):
    return "\n" not in str(err.value)


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    """An empty SeisBench cache (``SEISBENCH_CACHE_ROOT``) in tmp_path."""
    root = tmp_path / "seisbench_cache"
    root.mkdir()
    monkeypatch.setenv("SEISBENCH_CACHE_ROOT", str(root))
    return root


# --------------------------------------------------------------- forward parity
@pytest.mark.parametrize("name", list(FILES))
def test_forward_outputs_equal_seisbench(name, reference):
    json_path, _ = _files(reference, name)
    golden = np.load(reference(f"seisbench/{name}_golden.npz"))
    model = load_seisbench(json_path)
    out = _outputs(model, golden["x"])
    if "y" in golden.files:
        refs = [golden["y"].transpose(0, 2, 1)]
        outs = [out]
    else:
        refs = [golden[f"y_{i}"] for i in range(3)]
        outs = [out[..., i] for i in range(3)]
    for o, ref in zip(outs, refs):
        assert o.shape == ref.shape
        err = np.abs(o - ref).max()
        assert err <= 1e-5 * max(1.0, float(np.abs(ref).max())), (name, err)


@pytest.mark.parametrize("name", list(FILES))
def test_parameter_counts_equal_seisbench(name, reference):
    _, pt_path = _files(reference, name)
    state = read_torch_state_dict(pt_path)
    torch_params = sum(v.size for k, v in state.items() if not k.endswith(_BUFFERS))
    bn_stats = sum(v.size for k, v in state.items() if k.endswith(_BUFFERS[:2]))
    # torch.nn.LSTM keeps bias_ih and bias_hh per direction; Keras keeps their sum.
    lstm_bias_hh = sum(v.size for k, v in state.items() if ".bias_hh_" in k)
    assert torch_params == TORCH_PARAMETERS[name]
    model = load_seisbench(pt_path)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == torch_params - lstm_bias_hh
    assert model.count_params() == torch_params + bn_stats - lstm_bias_hh
    assert lstm_bias_hh == (512 if name == "eqtransformer" else 0)


# ----------------------------------------------- annotate and classify, as SeisBench
def _rjob_record(golden):
    """SeisBench's 120 s record (ObsPy's example in seeded noise) as an ObsPy stream."""
    start = obspy.UTCDateTime(float(golden["rec_t0"]))
    return obspy.Stream([obspy.Trace(golden["rec"][k].astype(np.float64), header=dict(
        network="BW", station="RJOB", channel=f"EH{c}", sampling_rate=float(golden["ann_fs"]),
        starttime=start)) for k, c in enumerate("ZNE")])


@pytest.fixture(scope="module")
def annotators():
    return {}


def _annotator(cache, reference, name):
    """The annotator of SeisBench's windows (``window_grid="record"``) for a weight file."""
    if name not in cache:
        cache[name] = Annotator(load_model(_files(reference, name)[0]), window_grid="record",
                                batch_size=8)
    return cache[name]


@pytest.mark.parametrize("name", list(FILES))
def test_annotate_curves_equal_seisbench(name, reference, annotators):
    # The conventions read from the weight files (window, normalisation and
    # taper, overlap, blinding at every window edge, stacking) and SeisBench's
    # window placement reproduce SeisBench's annotate curves, sample for sample.
    golden = np.load(reference(f"seisbench/{name}_golden.npz"))
    out = _annotator(annotators, reference, name).annotate(_rjob_record(golden))
    labels = FILES[name][2]
    assert len(out) == len(labels)
    for tr in out:
        label = tr.stats.channel.rsplit("_", 1)[1]
        ref = golden[f"ann_{'Detection' if label == 'det' else label}"]
        assert tr.stats.starttime.timestamp == pytest.approx(float(golden["ann_t0"]))
        assert tr.stats.npts == ref.shape[0]
        # Measured: <= 9.5e-7 (the float32 rounding of the two frameworks).
        assert np.abs(tr.data - ref).max() <= 1e-5, (name, label)


@pytest.mark.parametrize("name", list(FILES))
def test_classify_picks_equal_seisbench(name, reference, annotators):
    golden = np.load(reference(f"seisbench/{name}_golden.npz"))
    expected = json.loads(reference(f"seisbench/{name}_picks.json").read_text())
    picks = _annotator(annotators, reference, name).classify(_rjob_record(golden)).picks
    ref = sorted(expected["classify_picks"], key=lambda r: r["peak_time"])
    assert list(picks.phase) == [r["phase"] for r in ref]  # the same picks, none extra
    rate = float(golden["ann_fs"])
    for (_, pick), r in zip(picks.iterrows(), ref):
        assert pick.trace_id == r["trace_id"]
        assert abs(obspy.UTCDateTime(pick.peak_time) - obspy.UTCDateTime(r["peak_time"])) \
            <= 1 / rate
        assert pick.peak_value == pytest.approx(r["peak_value"], abs=1e-5)
        assert pick.start_time <= pick.peak_time <= pick.end_time


@pytest.mark.parametrize("name", list(FILES))
def test_golden_inputs_are_fixed_points_of_the_loaded_normalisation(name, reference):
    # SeisBench's forward inputs are already normalised: normalising them again
    # as the loaded conventions say changes them by rounding only (PhaseNet's
    # population std would change them by 1.7e-4, EQTransformer's per-channel
    # std by 8e-2); EQTransformer's taper leaves the first and last sample 0.
    conv = load_seisbench(_files(reference, name)[0]).conventions
    x = np.load(reference(f"seisbench/{name}_golden.npz"))["x"].transpose(0, 2, 1)
    again = seisbench_normalize(x, conv.normalization, conv.taper_samples)
    change = np.abs(again - x)[:, 6:-6].max() / np.abs(x).max()
    assert change <= (1e-3 if conv.taper_samples else 1e-6), (name, change)
    if conv.taper_samples:
        assert not np.any(x[:, [0, -1]]) and np.all(np.abs(x[:, [1, -2]]) > 0)


# ----------------------------------------------------------------- pick rule
@pytest.mark.parametrize("name", list(FILES))
def test_pick_rule_on_seisbench_curves_gives_seisbench_picks(name, reference):
    # SeisBench's own annotate curves, decoded by the model's pipeline (pick rule
    # "regions", the weight file's thresholds), give SeisBench's classify picks.
    json_path, _ = _files(reference, name)
    golden = np.load(reference(f"seisbench/{name}_golden.npz"))
    expected = json.loads(reference(f"seisbench/{name}_picks.json").read_text())
    pipeline = Pipeline.of(load_seisbench(json_path))
    conv = pipeline.conventions
    assert list(conv.labels) == [lab if lab != "Detection" else "det"
                                 for lab in FILES[name][2]]
    rate, t0 = float(golden["ann_fs"]), float(golden["ann_t0"])
    found = []
    for phase in pipeline.phases:
        curve = golden[f"ann_{phase}"]
        found += [(t0 + i / rate, phase, float(curve[i])) for i in pipeline.picks(curve, phase)]
    ref = expected["classify_picks"]
    assert sorted(p for _, p, _ in found) == sorted(r["phase"] for r in ref)
    for time, phase, value in sorted(found):
        match = [r for r in ref if r["phase"] == phase
                 and abs(obspy.UTCDateTime(r["peak_time"]).timestamp - time) < 1 / rate]
        assert match and match[0]["peak_value"] == pytest.approx(value, abs=1e-6)
    if "det" in conv.labels:
        assert len(pipeline.detections(golden["ann_Detection"])) > 0


def test_trigger_regions_equal_obspy_trigger_onset():
    rng = np.random.default_rng(7)
    for _ in range(500):
        n = int(rng.integers(1, 200))
        x = np.convolve(np.cumsum(rng.standard_normal(n)) * 0.1 + rng.uniform(-1, 1),
                        np.ones(3) / 3, "same")
        if rng.random() < 0.3:
            x[rng.integers(0, n, 3)] = np.nan
        if rng.random() < 0.3:
            x = np.round(x, 1)  # plateaus and exact threshold hits
        on = float(rng.choice([0.1, 0.2, 0.3, 0.5]))
        want = np.asarray(trigger_onset(x, on, on / 2), dtype=np.int64).reshape(-1, 2)
        np.testing.assert_array_equal(trigger_regions(x, on), want)


def test_regions_rule_by_hand():
    x = np.array([0.0, 0.2, 0.31, 0.5, 0.5, 0.16, 0.4, 0.1, np.nan, 0.35, 0.3, 0.2])
    pipeline = Pipeline(Conventions(labels=("P",), thresholds={"P": 0.3}, pick_rule="regions",
                                    head="curve_picking"))
    peaks = pipeline.picks(x, "P")
    # Region 1 starts where 0.3 is reached (sample 2), holds while >= 0.15 (to
    # sample 6), peaks at the first of the two 0.5 (sample 3); NaN cuts region 2.
    assert peaks.tolist() == [3, 9]
    assert pipeline.extents(x, peaks, 0.3).tolist() == [[2, 6], [9, 11]]
    assert pipeline.picks(np.full(5, 0.29), "P").size == 0
    with pytest.raises(ValueError, match="off_threshold"):
        trigger_regions(x, 0.3, 0.4)


# ------------------------------------------------------------ conventions
def test_conventions_come_from_the_json_and_seisbench_defaults(reference):
    pn = load_seisbench(_files(reference, "phasenet")[0]).conventions
    assert (pn.sampling_rate, pn.component_order, pn.in_samples) == (100.0, "ZNE", 3001)
    assert (pn.labels, pn.normalization, pn.pick_rule) == (("N", "P", "S"), "seisbench_std",
                                                           "regions")
    assert pn.threshold == {"P": 0.3, "S": 0.3}
    assert (pn.overlap, pn.stacking, pn.blinding, pn.taper_samples) == (1500, "avg", (0, 0), 0)
    light = load_seisbench(_files(reference, "phasenetlight_ethz")[1]).conventions
    assert (light.labels, light.normalization) == (("P", "S", "N"), "seisbench_peak")
    assert light.threshold == {"P": 0.4439247878516038, "S": 0.4502677090692625}
    eqt = load_seisbench(_files(reference, "eqtransformer")[0]).conventions
    assert (eqt.labels, eqt.in_samples, eqt.normalization, eqt.taper_samples) == (
        ("det", "P", "S"), 6000, "seisbench_std_all", 6)
    assert eqt.threshold == {"det": 0.3, "P": 0.1, "S": 0.1}
    assert (eqt.overlap, eqt.stacking, eqt.blinding) == (3000, "max", (500, 500))


def test_default_args_and_config_override_class_defaults(reference, tmp_path, cache_root):
    meta = json.loads(_files(reference, "eqtransformer")[0].read_text())
    del meta["model_args"]["component_order"]
    meta["default_args"] = {"overlap": 0.25, "stacking": "AVG", "blinding": [100, 0],
                            "P_threshold": 0.2, "detection_threshold": 0.5, "batch_size": 64}
    (cache_root / "config.json").write_text(json.dumps({"component_order": "ZEN"}))
    (tmp_path / "m.json.v1").write_text(json.dumps(meta))
    os.symlink(_files(reference, "eqtransformer")[1], tmp_path / "m.pt.v1")
    conv = load_seisbench(tmp_path / "m").conventions
    assert conv.component_order == "ZEN"
    assert (conv.overlap, conv.stacking, conv.blinding) == (0.25, "avg", (100, 0))
    assert conv.threshold == {"det": 0.5, "P": 0.2, "S": 0.1}


def test_loaded_model_round_trips_through_a_keras_file(reference, tmp_path):
    golden = np.load(reference("seisbench/eqtransformer_golden.npz"))
    model = load_seisbench(_files(reference, "eqtransformer")[0])
    model.save(tmp_path / "eqt.keras")
    loaded = keras.saving.load_model(tmp_path / "eqt.keras")
    assert loaded.conventions == model.conventions
    x = golden["x"][:1]
    np.testing.assert_array_equal(_outputs(loaded, x), _outputs(model, x))


def test_seisbench_models_are_registered_pickers():
    for name, labels in (("seisbench_phasenet", ("N", "P", "S")),
                         ("seisbench_phasenetlight", ("N", "P", "S")),
                         ("seisbench_eqtransformer", ("det", "P", "S"))):
        assert name in list_models("picking")
        conv = model_conventions(name)
        assert conv.labels == labels and conv.pick_rule == "regions"
    model = get_model("seisbench_phasenetlight", in_samples=401)
    assert model.output_shape == (None, 401, 3)
    assert model.conventions == model_conventions("seisbench_phasenetlight").replace(
        in_samples=401)


def test_seisbench_normalisations_by_hand():
    x = np.zeros((1, 8, 2), np.float32)
    x[0, :, 0] = [1, 2, 3, 4, 5, 6, 7, 8]
    x[0, :, 1] = 5.0  # flat: stays 0
    std = seisbench_normalize(x, "seisbench_std")
    centred = np.arange(8) - 3.5
    np.testing.assert_allclose(std[0, :, 0], centred / (np.std(centred, ddof=1) + 1e-10),
                               rtol=1e-6)
    np.testing.assert_array_equal(std[0, :, 1], 0.0)
    peak = seisbench_normalize(x, "seisbench_peak")
    np.testing.assert_allclose(peak[0, :, 0], centred / 3.5, rtol=1e-6)
    joint = seisbench_normalize(x, "seisbench_std_all", taper_samples=3)
    scale = np.std(np.stack([centred, np.zeros(8)]), ddof=1)
    ramp = [0.0, 0.5, 1.0]
    np.testing.assert_allclose(joint[0, :3, 0], centred[:3] / scale * ramp, rtol=1e-6,
                               atol=1e-7)
    np.testing.assert_allclose(joint[0, -3:, 0], centred[-3:] / scale * ramp[::-1],
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(joint[0, 3:5, 0], centred[3:5] / scale, rtol=1e-6)
    with pytest.raises(ValueError, match="normalization"):
        seisbench_normalize(x, "seisbench_mad")


def test_new_conventions_are_checked():
    for bad in ({"overlap": 1.5}, {"overlap": -0.1}, {"stacking": "median"},
                {"blinding": (5,)}, {"blinding": (-1, 0)}, {"taper_samples": 2.5},
                {"pick_rule": "trigger"}, {"normalization": "peak"}):
        with pytest.raises(ValueError, match="Received"):
            Conventions(**bad)
    conv = Conventions(overlap=1500.0, blinding=[500, 500], stacking="max")
    assert (conv.overlap, conv.blinding) == (1500, (500, 500))
    assert Conventions.from_config(json.loads(json.dumps(conv.to_config()))) == conv


# ---------------------------------------------------------- finding the files
def _link_pair(src_json, src_pt, folder, name, version):
    folder.mkdir(parents=True, exist_ok=True)
    suffix = f".v{version}" if version else ""
    os.symlink(src_json, folder / f"{name}.json{suffix}")
    os.symlink(src_pt, folder / f"{name}.pt{suffix}")


def test_prefix_takes_the_highest_version_and_either_file_its_pair(reference, tmp_path):
    _link_pair(*_files(reference, "phasenet"), tmp_path, "w", "2")
    _link_pair(*_files(reference, "phasenetlight_ethz"), tmp_path, "w", "10")
    assert find_seisbench_weights(tmp_path / "w").version == "10"  # numeric, not text order
    assert type(load_seisbench(tmp_path / "w")).__name__ == "PhaseNetLight"
    assert type(load_seisbench(tmp_path / "w", version=2)).__name__ == "PhaseNet"
    found = find_seisbench_weights(tmp_path / "w.pt.v2")
    assert (found.json_path.name, found.pt_path.name) == ("w.json.v2", "w.pt.v2")
    _link_pair(*_files(reference, "phasenet"), tmp_path, "plain", None)
    assert find_seisbench_weights(tmp_path / "plain").version is None


def test_cache_names_are_looked_up_as_seisbench_stores_them(reference, cache_root):
    folder = cache_root / "models" / "v3" / "phasenetlight"
    _link_pair(*_files(reference, "phasenetlight_ethz"), folder, "ethz", "2")
    model = load_seisbench("PhaseNetLight:ethz")
    assert model.seisbench_metadata["class"] == "PhaseNetLight"
    assert model.seisbench_metadata["version"] == "2"
    assert find_seisbench_weights("phasenetlight:ethz").json_path == folder / "ethz.json.v2"


# ------------------------------------------------------------------ bad input
def test_weights_not_in_the_cache_say_where_and_how(cache_root):
    with pytest.raises(FileNotFoundError) as err:
        load_seisbench("phasenet:stead")
    message = str(err.value)
    assert str(cache_root / "models" / "v3" / "phasenet") in message
    assert "from_pretrained('stead')" in message and _one_line(err)


def test_unknown_or_unsupported_classes_are_named(cache_root):
    with pytest.raises(SeisBenchWeightsError, match="GPD is not supported yet") as err:
        load_seisbench("gpd:stead")
    assert "PhaseNet, PhaseNetLight, EQTransformer" in str(err.value) and _one_line(err)
    with pytest.raises(SeisBenchWeightsError, match="not a SeisBench model class"):
        load_seisbench("phasenett:stead")
    with pytest.raises(FileNotFoundError, match="No SeisBench weights"):
        load_seisbench(cache_root / "nothing_here")


def test_truncated_files_are_named(reference, tmp_path):
    json_path, pt_path = _files(reference, "phasenet")
    (tmp_path / "t.json.v1").write_bytes(json_path.read_bytes()[:200])
    os.symlink(pt_path, tmp_path / "t.pt.v1")
    with pytest.raises(SeisBenchWeightsError, match="t.json.v1 is not valid JSON") as err:
        load_seisbench(tmp_path / "t.json.v1")
    assert _one_line(err)
    os.symlink(json_path, tmp_path / "u.json.v1")
    (tmp_path / "u.pt.v1").write_bytes(pt_path.read_bytes()[:50_000])
    with pytest.raises(SeisBenchWeightsError, match="u.pt.v1") as err:
        load_seisbench(tmp_path / "u")
    assert _one_line(err)


def test_half_a_pair_is_refused(reference, tmp_path):
    os.symlink(_files(reference, "phasenet")[0], tmp_path / "h.json.v1")
    with pytest.raises(FileNotFoundError, match="h.pt.v1 is missing beside") as err:
        load_seisbench(tmp_path / "h.json.v1")
    assert _one_line(err)


def test_mismatched_pairs_are_refused(reference, tmp_path):
    pn_json, pn_pt = _files(reference, "phasenet")
    eqt_json, eqt_pt = _files(reference, "eqtransformer")
    # EQTransformer's arguments cannot build SeisBench's PhaseNet.
    _link_pair(eqt_json, pn_pt, tmp_path, "a", "1")
    with pytest.raises(SeisBenchWeightsError, match="a.json.v1.*lstm_blocks.*another model") as e:
        load_seisbench(tmp_path / "a")
    assert _one_line(e)
    # PhaseNet's arguments (3 phases) build an EQTransformer with three pick
    # decoders: the tensors of two do not fill it, and nothing is loaded.
    _link_pair(pn_json, eqt_pt, tmp_path, "b", "1")
    with pytest.raises(CheckpointMismatchError) as e:
        load_seisbench(tmp_path / "b")
    first = str(e.value).splitlines()[0]
    assert "b.pt.v1" in first and "b.json.v1" in first
    assert any("pick_lstms.2" in detail for _, detail in e.value.problems)
    with pytest.raises(SeisBenchWeightsError, match="holds SeisBench PhaseNet tensors"):
        load_seisbench(pn_json, model_class="eqtransformer")


@pytest.mark.parametrize("change, message", [
    ({"original_compatible": "conservative"}, "original_compatible.*not supported yet"),
    ({"norm_detrend": True}, "norm_detrend.*not supported yet"),
    ({"filter_args": ["highpass"], "filter_kwargs": {"freq": 1}}, "filter_args.*not supported"),
    ({"grouping": "channel"}, "grouping.*not supported yet"),
    ({"norm": "minmax"}, "norm='minmax' is not supported"),
    ({"classes": 3}, "classes=3 but 2 phases"),
])
def test_unsupported_options_are_named(change, message, reference, tmp_path):
    json_path, pt_path = _files(reference, "eqtransformer")
    meta = json.loads(json_path.read_text())
    meta["model_args"].update(change)
    (tmp_path / "o.json.v1").write_text(json.dumps(meta))
    os.symlink(pt_path, tmp_path / "o.pt.v1")
    with pytest.raises(SeisBenchWeightsError, match=message) as err:
        load_seisbench(tmp_path / "o")
    assert "o.json.v1" in str(err.value) and _one_line(err)


def test_variable_length_phasenet_is_named(reference, tmp_path):
    json_path, pt_path = _files(reference, "phasenet")
    meta = json.loads(json_path.read_text())
    meta["model_args"].update(in_samples=600, norm_axis=[-1], output_activation="softmax")
    (tmp_path / "v.json.v1").write_text(json.dumps(meta))
    os.symlink(pt_path, tmp_path / "v.pt.v1")
    with pytest.raises(SeisBenchWeightsError, match="VariableLengthPhaseNet"):
        load_seisbench(tmp_path / "v")
