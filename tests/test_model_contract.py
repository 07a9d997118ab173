"""One contract for every registered model (as KerasHub's ``run_backbone_test``).

For each model of :func:`utrans.models.list_models`, built small:

* its config and its ``.keras`` file round-trip (same class, parameters,
  outputs and conventions), and plain ``keras.saving.load_model`` loads the
  file in a fresh process after ``import utrans``;
* the same record gives the same model input windows through the training /
  testing path (:class:`utrans.data.DataGenerator` over an HDF5 file) and the
  applying path (an ObsPy Stream through :mod:`utrans.processing.streams`,
  cut as ``annotate`` cuts whole windows and ``characterize`` cuts windows
  around P), at the model's rate, from another rate, and for records shorter
  than one window;
* pickers: the tester's decoding and ``classify``'s decoding give the same
  picks on the same curve;
* models with published weights load from their presets with the presets'
  conventions (slow: real-size models).
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import keras
import numpy as np
import obspy
import pytest

from mock_h5 import event_rows, make_datacollected
from utrans.annotate.batching import SegmentResult, cut_window
from utrans.annotate.picks import decode_segment
from utrans.core import presets
from utrans.core.tasks import QUANTITIES
from utrans.data import DataGenerator
from utrans.evaluate import picking
from utrans.loading import load_model
from utrans.models import UTransBackbone, get_model, list_models, model_quantity
from utrans.pipeline import Frame, Pipeline
from utrans.processing.streams import group_stream
from utrans.processing.windows import cut, nearest_sample

T0 = obspy.UTCDateTime(2021, 3, 4, 5, 6, 7)
DATA_RATE = 100.0
DIM = 6000

_TINY_BACKBONE = dict(input_length=400, base_filters=2, num_layers=1, num_heads=2,
                      projection_dim=8)
_TINY_HEADS = {
    "utrans_vit_magnitude": dict(conv_filters=(4, 4), pool_sizes=(2, 2), patch_size=5,
                                 projection_dim=8, num_heads=2, num_layers=1, mlp_units=(16, 8),
                                 head_units=(16,)),
    "utrans_cct_polarity": dict(tokenizer_filters=(8,), num_heads=2, num_layers=1),
    "utrans_convmixer_location": dict(filters=8, depth=1),
    "utrans_eqcct_p": dict(conv_filters=(4,), patch_size=8, projection_dim=8, num_heads=2,
                           num_layers=1),
    "utrans_eqcct_s": dict(conv_filters=(4,), patch_size=8, projection_dim=8, num_heads=2,
                           num_layers=1),
}
_TINY_BASELINES = {
    "phasenet": dict(in_samples=512), "eqtransformer": dict(in_samples=512),
    "magnet": dict(in_samples=512), "baz_network": dict(in_samples=512),
    "distpt_network": dict(in_samples=512, dilations=(1, 2, 4)),
    "ditingmotion": {},
}


def tiny(name, **conventions):
    """A small random-weight model of ``name`` (conventions may be overridden)."""
    keras.utils.set_random_seed(0)
    if name == "utrans_foundation":
        return UTransBackbone(**_TINY_BACKBONE, **conventions)
    if name in _TINY_HEADS:
        return get_model(name, backbone=UTransBackbone(**_TINY_BACKBONE), **_TINY_HEADS[name],
                         **conventions)
    kwargs = dict(_TINY_BASELINES.get(name, dict(in_samples=512)))
    kwargs.update(conventions)
    return get_model(name, **kwargs)


MODELS = list_models()


def _inputs_like(model, seed=0):
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    rng = np.random.default_rng(seed)
    x = [rng.standard_normal((2,) + tuple(s[1:])).astype(np.float32) for s in shapes]
    return x if len(x) > 1 else x[0]


def _flat(outputs):
    return [np.asarray(o) for o in keras.tree.flatten(outputs)]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Every model built small, saved as .keras, with its outputs on a fixed input."""
    folder = tmp_path_factory.mktemp("contract")
    out = {}
    for name in MODELS:
        model = tiny(name)
        x = _inputs_like(model)
        path = folder / f"{name}.keras"
        model.save(path)
        np.savez(folder / f"{name}.npz", x=x, **{f"y{i}": y for i, y in
                                                 enumerate(_flat(model.predict_on_batch(x)))})
        out[name] = (model, path)
    return folder, out


@pytest.mark.parametrize("name", MODELS)
def test_config_and_keras_file_round_trip(saved, name):
    folder, built = saved
    model, path = built[name]
    again = type(model).from_config(model.get_config())
    assert type(again) is type(model)
    assert again.count_params() == model.count_params()
    assert again.conventions == model.conventions
    loaded = keras.saving.load_model(path, compile=False)
    assert type(loaded) is type(model)
    assert loaded.conventions == model.conventions
    with np.load(folder / f"{name}.npz") as ref:
        for got, want in zip(_flat(loaded.predict_on_batch(ref["x"])),
                             [ref[f"y{i}"] for i in range(len(ref.files) - 1)]):
            np.testing.assert_allclose(got, want, atol=1e-5 * max(1.0, np.abs(want).max()))
    assert load_model(path).conventions == model.conventions


def test_plain_keras_loads_every_model_after_import_utrans(saved):
    """A fresh interpreter: ``import utrans`` then only Keras's own loader (no utrans module named)."""
    folder, built = saved
    script = (
        "import json, sys, numpy as np, utrans, keras\n"
        "out = {}\n"
        f"for name in {json.dumps(sorted(built))}:\n"
        f"    m = keras.saving.load_model({str(folder)!r} + '/' + name + '.keras')\n"
        f"    ref = np.load({str(folder)!r} + '/' + name + '.npz')\n"
        "    ys = [np.asarray(y) for y in keras.tree.flatten(m.predict_on_batch(ref['x']))]\n"
        "    out[name] = max(float(np.abs(y - ref[f'y{i}']).max()) for i, y in enumerate(ys))\n"
        "print(json.dumps(out))\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    errors = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(errors) == sorted(built)
    assert max(errors.values()) < 1e-4, errors


# --------------------------------------------------------------------------- same windows
def _record(seed=1):
    """A 60 s, 100 Hz three-component record (E, N, Z) with an event in coloured noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(DIM) / DATA_RATE
    noise = np.cumsum(rng.standard_normal((DIM, 3)), axis=0)
    noise -= np.linspace(noise[0], noise[-1], DIM)
    wave = 40.0 * noise + 3000.0  # a DC offset as raw counts have
    p, s = 1234.0, 2345.0
    for onset, amp in ((p, 4000.0), (s, 9000.0)):
        k = int(onset)
        env = np.exp(-(t[k:] - t[k]) / 3.0) * np.sin(2 * np.pi * 4.0 * (t[k:] - t[k]))
        wave[k:] += amp * env[:, None] * np.array([0.6, 0.8, 1.0])
    return wave.astype(np.float32), p, s


@pytest.fixture(scope="module")
def record_files(tmp_path_factory):
    """The record as a DataCollected HDF5 trace and as an ObsPy stream starting at ``T0``."""
    folder = tmp_path_factory.mktemp("record")
    wave, p, s = _record()
    row = dict(event_rows(1, 0)[0], p=p, s=s, coda=s + 500.0)
    path = make_datacollected(folder, [row], {row["name"]: wave})
    stream = obspy.Stream([obspy.Trace(wave[:, k], header=dict(
        network="XX", station="ST00", channel=f"HH{c}", sampling_rate=DATA_RATE,
        starttime=T0)) for k, c in enumerate("ENZ")])
    return path, row, stream


def _labeller(name):
    quantity = model_quantity(name)
    # the reconstruction labeller masks the inputs it is given: compare unmasked windows
    return QUANTITIES["magnitude" if quantity == "reconstruction" else quantity].labeller


def _generator_window(model, name, path, row):
    gen = DataGenerator([row["name"]], path, model, _labeller(name), batch_size=1,
                        shuffle=False, drop_remainder=False)
    x, _ = gen.get_batch(0)
    frame = gen.frames
    gen.close()
    return x[0], frame


def _stream_window(pipeline, stream, pick_time=None):
    """The first annotate window of the stream, or the characterize window around a pick."""
    conv = pipeline.conventions
    groups, problems = group_stream(stream, conv.component_order)
    assert not problems
    segment = groups[0].segments(conv.sampling_rate, "zeros", 0.0)[0]
    length = conv.in_samples
    if pick_time is None:
        buffer = np.zeros((1, length, len(conv.component_order)))
        valid = [[0, cut_window(segment, 0, buffer[0])]]
        return pipeline.window_inputs(buffer, valid)[0]
    p = int(nearest_sample((pick_time - segment.start) * conv.sampling_rate))
    record = np.stack([np.zeros(segment.length) if c is None else c
                       for c in segment.components], axis=-1)[None]
    start = p - int(length * conv.p_position_ratio)
    windows, valid = cut(record, [start], length)
    return pipeline.window_inputs(windows, valid)[0]


_CASES = {  # case -> convention overrides for whole-window models
    "at the model's rate": {},
    "from another rate": {"sampling_rate": 40.0},
}


def _whole_window(name):
    return tiny(name).conventions.p_position_ratio is None


@pytest.mark.parametrize("case", sorted(_CASES))
@pytest.mark.parametrize("name", MODELS)
def test_training_and_applying_paths_cut_the_same_windows(record_files, name, case):
    path, row, stream = record_files
    model = tiny(name, **_CASES[case])
    pipeline = Pipeline.of(model)
    ours, frame = _generator_window(model, name, path, row)
    if _whole_window(name):
        theirs = _stream_window(pipeline, stream)
    else:
        theirs = _stream_window(pipeline, stream, T0 + row["p"] / DATA_RATE)
        # the P pick sits at its place in the window
        assert frame.to_model([row["p"]])[0] == int(model.conventions.in_samples
                                                    * model.conventions.p_position_ratio)
    assert ours.shape == theirs.shape == (model.conventions.in_samples, pipeline.in_channels)
    np.testing.assert_allclose(ours, theirs, atol=2e-5)
    assert np.abs(ours).max() > 0.5  # normalised data, not an empty window


@pytest.mark.parametrize("name", ["seist_s_dpk", "phasenet", "seist_s_emg", "ditingmotion"])
def test_a_record_shorter_than_the_window_is_normalised_over_its_data(record_files, name):
    """50 Hz windows of 4096 samples: the 60 s record fills 3000 of them, the rest is zero."""
    path, row, stream = record_files
    length = 4096 if name != "ditingmotion" else 128
    model = tiny(name, sampling_rate=50.0, in_samples=length) if name != "ditingmotion" else \
        tiny(name, sampling_rate=2.0)  # 120 s at 2 Hz in 128 samples: P at 64, record 0..120
    pipeline = Pipeline.of(model)
    ours, frame = _generator_window(model, name, path, row)
    whole = _whole_window(name)
    theirs = _stream_window(pipeline, stream, None if whole else T0 + row["p"] / DATA_RATE)
    np.testing.assert_allclose(ours, theirs, atol=2e-5)
    lo, hi = frame.valid[0]
    assert hi - lo < length  # the record is shorter than the window
    assert not ours[:lo].any() and not ours[hi:].any()  # padding stays zero
    data = ours[lo:hi, :len(model.conventions.component_order)]
    np.testing.assert_allclose(data.mean(axis=0), 0.0, atol=1e-4)  # normalised over its data
    np.testing.assert_allclose(data.std(axis=0), 1.0, rtol=1e-3)


# --------------------------------------------------------------------------- same picks
PICKERS = [n for n in MODELS if model_quantity(n) == "picking"]


def _curves(labels, length, seed=0):
    rng = np.random.default_rng(seed)
    x = np.arange(length)
    curves = np.zeros((length, len(labels)), dtype=np.float32)
    for k in range(len(labels)):
        for centre, height in zip(rng.uniform(20, length - 20, 5), rng.uniform(0.2, 0.95, 5)):
            curves[:, k] = np.maximum(curves[:, k],
                                      height * np.exp(-0.5 * ((x - centre) / 4.0) ** 2))
    return curves


@pytest.mark.parametrize("name", PICKERS)
def test_tester_and_classify_pick_the_same_curve_alike(name):
    model = tiny(name)
    pipeline = Pipeline.of(model)
    conv = pipeline.conventions
    length = conv.in_samples
    curves = _curves(conv.labels, length)
    frame = Frame(start=np.zeros(1, np.int64), ratio=1.0, length=length,
                  valid=np.array([[0, length]]))
    ctx = dict(pipeline=pipeline, frame=frame, thresholds=pipeline.thresholds(),
               min_peak_distance_s=None, max_picks=None, covered=length,
               sampling_rate=conv.sampling_rate)
    metas = [{"trace_category": "noise"}]
    tester = picking.rows(["trace"], metas, None, curves[None], None, {}, ctx)
    segment = group_stream(obspy.Stream([obspy.Trace(
        np.zeros(length, np.float32), header=dict(station="ST", channel=f"HH{c}",
                                                  sampling_rate=conv.sampling_rate,
                                                  starttime=T0))
        for c in conv.component_order]), conv.component_order)[0][0].segments(
            conv.sampling_rate, "zeros", 0.0)[0]
    result = SegmentResult(segment, curves.T.copy(), np.array([0]))
    picks, _ = decode_segment(result, pipeline, pipeline.thresholds(), None, name, length)
    for phase in pipeline.phases:
        classify = sorted(round((obspy.UTCDateTime(r["peak_time"]) - T0) * conv.sampling_rate)
                          for r in picks if r["phase"] == phase)
        cell = tester[f"pred_{phase.lower()}_samples"].iloc[0]
        tested = sorted(round(float(v)) for v in cell.split(";")) if cell else []
        assert tested == classify, (phase, tested, classify)
        assert classify  # the curves have picks to agree on


# --------------------------------------------------------------------------- presets
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(p for p in presets.PRESETS
                                        if presets.get_preset(p).format == "torch"))
def test_presets_load_with_their_conventions(reference, utrans_home, name):
    shutil.copy(reference(f"seist/{name}.pth"), pathlib.Path(utrans_home) / f"{name}.pth")
    model = load_model(name)
    assert model.conventions == presets.preset_conventions(name)
    assert model.name == presets.get_preset(name).model
