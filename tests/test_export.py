"""Export to SavedModel, ONNX and LiteRT, and the TensorFlow-free runtime.

Round trips on tiny configurations: a picker (SeisT dpk), a window model
(SeisT emg), multi-output models (distPT-Network, DiTingMotion), a LiteRT
picker (PhaseNet) and an LSTM model in a fixed-batch LiteRT graph (MagNet).
The exported graph, run through :func:`utrans.runtime.load_runner`, must give
``model.predict``'s outputs within 1e-5 * max(1, max|keras|) (SavedModel,
ONNX) or 1e-4 * max(1, max|keras|) (LiteRT), in the same structure.
"""

import importlib
import json
import os
import subprocess
import sys
import textwrap
import threading

import keras
import numpy as np
import obspy
import pytest

import utrans

from utrans.core.conventions import Conventions
from utrans.core.errors import ExportError, ManifestError, MissingExtraError
from utrans.core.machine import set_default_threads
from utrans.cli import console
from utrans.export import export, output_layout
from utrans.models import get_model
from utrans.models.utrans import UTransBackbone
from utrans.pipeline import Pipeline
from utrans.runtime import conventions_of, load_exported, load_runner
from utrans.runtime.exported import ONNX_PIECE
from utrans.runtime.manifest import Manifest, manifest_path

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_SEIST = dict(in_samples=256, layer_blocks=[1, 1, 1, 1])
TOLERANCE = {"savedmodel": 1e-5, "onnx": 1e-5, "litert": 1e-4}


def _require(module):
    """Import an optional export/runtime package; skip without it, fail under CI=true."""
    try:
        return importlib.import_module(module)
    except ImportError:
        message = f"{module} is not installed (pip install '.[export]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true requires it")
        pytest.skip(message)


def _build(name, **kwargs):
    keras.utils.set_random_seed(0)
    return get_model(name, **kwargs)


MODELS = {
    "seist_s_dpk": lambda: _build("seist_s_dpk", **TINY_SEIST),
    "seist_s_emg": lambda: _build("seist_s_emg", sampling_rate=50.0, **TINY_SEIST),
    "distpt_network": lambda: _build("distpt_network", in_samples=150, dilations=[1, 2, 4]),
    "ditingmotion": lambda: _build("ditingmotion"),
}


def _batch(model, n, seed=0):
    shape = tuple(model.input_shape[1:])
    return np.random.default_rng(seed).standard_normal((n,) + shape).astype(np.float32)


def _as_list(out):
    if isinstance(out, dict):
        return [out[k] for k in sorted(out)]
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _check_parity(model, runner, fmt, n):
    x = _batch(model, n, seed=n)
    expected, got = model.predict(x, verbose=0), runner(x)
    assert type(got) is type(expected) or (isinstance(expected, np.ndarray)
                                           and isinstance(got, np.ndarray))
    for want, have in zip(_as_list(expected), _as_list(got), strict=True):
        assert have.shape == want.shape and have.dtype == np.float32
        tol = TOLERANCE[fmt] * max(1.0, float(np.abs(want).max()))
        assert float(np.abs(have - want).max()) <= tol
    return x, got


@pytest.fixture(scope="module")
def models():
    """The tiny models, each built on first use."""
    built = {}

    def get(name):
        if name not in built:
            built[name] = MODELS[name]()
        return built[name]

    return get


@pytest.fixture(scope="module")
def exports(models, tmp_path_factory):
    """``exports(name, format) -> path``: a tiny model's export, written on first use."""
    root = tmp_path_factory.mktemp("exports")
    done = {}

    def get(name, fmt):
        if (name, fmt) not in done:
            _require({"onnx": "tf2onnx", "litert": "ai_edge_litert"}.get(fmt, "keras"))
            done[name, fmt] = export(models(name), fmt, root / f"{name}_{fmt}")
        return done[name, fmt]

    return get


# --------------------------------------------------------------------------- round trips
# One fast model per format in the default suite; SeisT's and DiTingMotion's larger graphs
# take 20-90 s to export on a loaded two-core machine: slow.
SLOW = pytest.mark.slow
ROUND_TRIPS = [
    ("distpt_network", "savedmodel"), ("distpt_network", "onnx"), ("distpt_network", "litert"),
    ("ditingmotion", "onnx"),
    pytest.param("ditingmotion", "savedmodel", marks=SLOW),
    pytest.param("seist_s_dpk", "onnx", marks=SLOW),
    pytest.param("seist_s_dpk", "savedmodel", marks=SLOW),
    pytest.param("seist_s_dpk", "litert", marks=SLOW),
    pytest.param("seist_s_emg", "onnx", marks=SLOW),
    pytest.param("seist_s_emg", "savedmodel", marks=SLOW),
]


@pytest.mark.parametrize(("name", "fmt"), ROUND_TRIPS)
def test_round_trip_matches_keras(models, exports, name, fmt):
    _require({"onnx": "onnxruntime", "litert": "ai_edge_litert"}.get(fmt, "keras"))
    model = models(name)
    runner = load_runner(exports(name, fmt))
    # Any batch size: one window, then three.
    _check_parity(model, runner, fmt, 1)
    _check_parity(model, runner, fmt, 3)
    assert runner.conventions == model.conventions
    assert runner.output_names == tuple(model.output_names)
    # The runner protocol of the package: name, batch_size, resized().
    assert runner.name == f"{name}_{fmt}" and runner.batch_size == 64
    assert runner.manifest.model_name == model.name
    smaller = runner.resized(2)
    assert smaller.batch_size == 2 and runner.batch_size == 64


@pytest.mark.parametrize("threads, n, sizes", [
    (1, 2 * ONNX_PIECE + ONNX_PIECE // 2, [ONNX_PIECE, ONNX_PIECE, ONNX_PIECE // 2]),
    (2, 2 * ONNX_PIECE + ONNX_PIECE // 2, [ONNX_PIECE, ONNX_PIECE, ONNX_PIECE // 2]),
    (3, 20, [7, 7, 6]),   # at least one piece per thread
    (2, 5, [3, 2]),
    (4, 1, [1]),
])
def test_onnx_runner_runs_a_batch_in_pieces_over_its_threads(models, exports, threads, n, sizes):
    # A batch runs in pieces of at most ONNX_PIECE windows, at least one per thread, on
    # the runner's threads: the Keras outputs in order, and each window's outputs alone.
    _require("onnxruntime")
    model = models("distpt_network")
    runner = load_exported(exports("distpt_network", "onnx"), num_threads=threads)
    assert runner.num_threads == threads
    x, got = _check_parity(model, runner, "onnx", n)
    assert got[0].shape[0] == n
    calls, lock = [], threading.Lock()
    session_run = runner._session.run

    def counted(names, feed):
        with lock:
            calls.append(len(next(iter(feed.values()))))
        return session_run(names, feed)

    runner._session.run = counted
    again = runner(x)
    assert sorted(calls, reverse=True) == sizes
    picks = sorted({0, min(ONNX_PIECE, n - 1), n - 1})
    alone = [runner(x[i:i + 1]) for i in picks]
    for out, want in zip(again, got, strict=True):
        np.testing.assert_array_equal(out, want)
    for k, i in enumerate(picks):
        for out, one in zip(got, alone[k], strict=True):
            np.testing.assert_allclose(out[i:i + 1], one, rtol=1e-6, atol=1e-6)


def test_runner_threads_follow_the_process_default(exports, monkeypatch):
    # --threads (set_default_threads) and OMP_NUM_THREADS reach the ONNX runner.
    _require("onnxruntime")
    path = exports("distpt_network", "onnx")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert load_exported(path).num_threads == 3
    set_default_threads(1)
    try:
        assert load_exported(path).num_threads == 1
    finally:
        set_default_threads(None)
    with pytest.raises(ValueError, match="num_threads must be a positive integer"):
        load_exported(path, num_threads=0)
    # LiteRT too: the bad number is named, not blamed on the file.
    _require("ai_edge_litert")
    with pytest.raises(ValueError, match="^num_threads must be a positive integer"):
        load_exported(exports("distpt_network", "litert"), num_threads=0)


def test_manifest_describes_outputs_in_order(models, exports):
    path = exports("distpt_network", "onnx")
    config = json.loads(manifest_path(path).read_text())
    assert config["file"] == "model.onnx" and config["format"] == "onnx"
    assert config["input"] == {"name": "waveform", "shape": [None, 150, 3], "dtype": "float32",
                               "normalized": True}
    assert config["output_structure"] == "list"
    assert [o["name"] for o in config["outputs"]] == ["distance", "p_travel_time"]
    assert [o["shape"] for o in config["outputs"]] == [[None, 2], [None, 2]]
    assert Conventions.from_config(config["conventions"]) == models("distpt_network").conventions
    # A SavedModel's manifest lives inside its directory.
    sm = exports("distpt_network", "savedmodel")
    manifest = Manifest.read(sm / "conventions.json")
    assert manifest.file == "." and manifest.conventions == models("distpt_network").conventions


def test_multi_output_model_returns_a_list_in_keras_order(models, exports):
    _require("onnxruntime")
    runner = load_runner(exports("ditingmotion", "onnx"))
    out = runner(_batch(models("ditingmotion"), 2))
    assert isinstance(out, list) and [o.shape for o in out] == [(2, 2), (2, 2)]
    assert runner.output_names == ("clarity", "polarity")


def test_dict_output_model_returns_a_dict(tmp_path):
    _require("onnxruntime")
    keras.utils.set_random_seed(0)
    backbone = UTransBackbone(input_length=400, base_filters=2, num_layers=1, num_heads=2,
                              projection_dim=8)
    layout = output_layout(backbone)
    assert layout.structure == "dict" and layout.names == ("latent", "reconstruction")
    runner = load_runner(export(backbone, "onnx", tmp_path / "foundation.onnx"))
    x = _batch(backbone, 2)
    got, want = runner(x), backbone.predict(x, verbose=0)
    assert sorted(got) == ["latent", "reconstruction"]
    for key in want:
        # The backbone's GELU is TensorFlow's erfc form, converted as 1 - erf.
        assert np.abs(got[key] - want[key]).max() <= 1e-5 * max(1.0, np.abs(want[key]).max())


@pytest.mark.slow
def test_litert_picker_round_trip(tmp_path):
    _require("ai_edge_litert")
    model = _build("phasenet", in_samples=200)
    path = export(model, "litert", tmp_path / "phasenet")
    assert path.name == "model.tflite"
    runner = load_runner(path.parent)  # the folder: its manifest names the file
    _check_parity(model, runner, "litert", 1)
    _check_parity(model, runner, "litert", 4)


def test_litert_lstm_model_needs_and_uses_a_fixed_batch(tmp_path):
    _require("ai_edge_litert")
    model = _build("magnet", in_samples=64)
    with pytest.raises(ExportError, match="batch_size=N"):
        export(model, "litert", tmp_path / "dynamic.tflite")
    path = export(model, "litert", tmp_path / "fixed" / "magnet.tflite", batch_size=2)
    runner = load_exported(path)
    assert runner.manifest.batch_size == 2 and runner.input_shape == (2, 64, 3)
    assert runner.batch_size == 2 and runner.name == "magnet"
    # annotate's batches of 64 reach the graph in pieces of two; five windows: two full
    # pieces and one padded one.
    runner = load_runner(path, batch_size=64)
    assert runner.batch_size == 64
    _check_parity(model, runner, "litert", 5)


# --------------------------------------------------------------------------- TensorFlow-free runtime
def test_runtime_runs_without_tensorflow(models, exports, tmp_path):
    _require("onnxruntime")
    _require("ai_edge_litert")
    model = models("distpt_network")
    litert = exports("distpt_network", "litert")
    x = _batch(model, 3)
    np.save(tmp_path / "x.npy", x)
    expected = model.predict(x, verbose=0)
    script = textwrap.dedent(f"""
        import importlib.abc, sys

        class Blocked(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "keras", "tf_keras", "jax", "torch"):
                    raise ImportError(f"{{name}} is blocked in this test")
                return None

        sys.meta_path.insert(0, Blocked())
        import numpy as np
        import utrans.runtime as rt

        x = np.load({str(tmp_path / "x.npy")!r})
        onnx = rt.load_runner({str(exports("distpt_network", "onnx"))!r})
        lite = rt.load_runner({str(litert)!r})
        a, b = onnx(x), lite(x)
        np.savez({str(tmp_path / "out.npz")!r}, a0=a[0], a1=a[1], b0=b[0], b1=b[1])
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
        print("conventions", onnx.conventions.sampling_rate, "heavy", heavy)
    """)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "conventions 100.0 heavy []" in done.stdout
    out = np.load(tmp_path / "out.npz")
    for i, want in enumerate(expected):
        assert np.abs(out[f"a{i}"] - want).max() <= 1e-5 * max(1.0, np.abs(want).max())
        assert np.abs(out[f"b{i}"] - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


def test_pipeline_makes_the_exported_graphs_inputs(models, exports):
    """DiTingMotion's [z, dz] inputs come from the pipeline of the runner's conventions."""
    _require("onnxruntime")
    model = models("ditingmotion")
    runner = load_runner(exports("ditingmotion", "onnx"))
    assert conventions_of(exports("ditingmotion", "onnx")) == model.conventions
    pipeline = Pipeline.of(runner)
    windows = np.random.default_rng(5).standard_normal((3, 128, 1)) * 40 + 3
    x = pipeline.window_inputs(windows)
    np.testing.assert_array_equal(x, Pipeline.of(model).window_inputs(windows))
    assert x.shape == (3, 128, 2) and runner.input_shape == (None, 128, 2)
    np.testing.assert_allclose(x[:, 1:, 1], np.diff(x[:, :, 0], axis=1), atol=1e-6)
    got, want = runner(x), model.predict(x, verbose=0)
    for have, expected in zip(got, want, strict=True):
        assert np.abs(have - expected).max() <= 1e-5


# --------------------------------------------------------------------------- bad input
def test_onnx_model_without_its_conventions_file(exports, tmp_path):
    _require("onnxruntime")
    lonely = tmp_path / "lonely.onnx"
    lonely.write_bytes(exports("distpt_network", "onnx").read_bytes())
    with pytest.raises(ManifestError) as err:
        load_runner(lonely)
    message = str(err.value)
    assert str(tmp_path / "conventions.json") in message and "\n" not in message


def test_conventions_file_of_another_model_is_refused(exports, tmp_path):
    _require("onnxruntime")
    folder = exports("distpt_network", "onnx").parent
    other = folder / "renamed.onnx"
    other.write_bytes((folder / "model.onnx").read_bytes())
    with pytest.raises(ManifestError, match="describes model.onnx, not renamed.onnx"):
        load_runner(other)
    other.unlink()



@pytest.mark.parametrize("fmt, suffix, runtime", [("onnx", ".onnx", "onnxruntime"),
                                                   ("litert", ".tflite", "ai_edge_litert")])
def test_a_corrupt_exported_file_is_named_in_one_line(exports, tmp_path, fmt, suffix, runtime):
    _require(runtime)
    source = exports("distpt_network", "onnx").parent / "conventions.json"
    manifest = json.loads(source.read_text())
    manifest["format"], manifest["file"] = fmt, f"model{suffix}"
    (tmp_path / "conventions.json").write_text(json.dumps(manifest))
    broken = tmp_path / f"model{suffix}"
    broken.write_bytes(b"not a model\n")
    with pytest.raises(ExportError) as err:
        load_runner(broken)
    message = str(err.value)
    assert str(broken) in message and "\n" not in message

def test_export_refuses_a_folder_of_another_export(models, exports):
    folder = exports("distpt_network", "onnx").parent
    with pytest.raises(ExportError, match="belongs to another export"):
        export(models("distpt_network"), "litert", folder)


def test_runner_rejects_bad_batches(models, exports):
    _require("onnxruntime")
    runner = load_runner(exports("distpt_network", "onnx"))
    with pytest.raises(ValueError, match=r"x\[None\].*Received: shape=\(150, 3\)"):
        runner(np.zeros((150, 3), np.float32))
    with pytest.raises(ValueError, match="channels-first"):
        runner(np.zeros((2, 3, 150), np.float32))
    with pytest.raises(ValueError, match="no window"):
        runner(np.zeros((0, 150, 3), np.float32))
    # float64 and integer windows are cast, not refused.
    out = runner(np.zeros((1, 150, 3), np.int16))
    assert [o.shape for o in out] == [(1, 2), (1, 2)] and out[0].dtype == np.float32


def test_unknown_format_and_options(models, tmp_path):
    model = models("distpt_network")
    with pytest.raises(ValueError, match="format must be one of savedmodel, onnx, litert"):
        export(model, "tflite", tmp_path / "x")
    with pytest.raises(ValueError, match="takes the options opset. Received: quantize"):
        export(model, "onnx", tmp_path / "x", quantize="int8")
    with pytest.raises(ValueError, match="representative_data"):
        export(model, "litert", tmp_path / "q", quantize="int8")
    with pytest.raises(ValueError, match="quantize must be one of"):
        export(model, "litert", tmp_path / "q", quantize="int4")


def test_missing_converter_says_what_to_install(models, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import tf2onnx raises ImportError
    with pytest.raises(MissingExtraError) as err:
        export(models("distpt_network"), "onnx", tmp_path / "m.onnx")
    assert str(err.value).endswith("pip install 'utrans[export]'")
    assert "\n" not in str(err.value) and not (tmp_path / "conventions.json").exists()


def test_missing_runtime_says_what_to_install(exports, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r"needs onnxruntime.*pip install 'utrans\[runtime\]'"):
        load_runner(exports("distpt_network", "onnx"))


def test_ops_without_an_equivalent_are_named(tmp_path):
    _require("tf2onnx")
    model = _build("baz_network", in_samples=64)  # eigendecomposition of the covariance
    with pytest.raises(ExportError, match="SelfAdjointEigV2"):
        export(model, "onnx", tmp_path / "baz.onnx")
    assert not (tmp_path / "baz.onnx").exists()


def test_a_model_without_conventions_is_refused(tmp_path):
    inputs = keras.Input((32, 3), name="waveform")
    plain = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ExportError, match="has none"):
        export(plain, "savedmodel", tmp_path / "plain")


# --------------------------------------------------------------------------- entry points
def test_load_runner_takes_the_export_folder(models, exports):
    _require("ai_edge_litert")
    path = exports("distpt_network", "litert")
    assert path.name == "model.tflite"
    runner = load_runner(path.parent)  # the folder: its manifest names the file
    assert type(runner).__name__ == "LiteRTRunner" and runner.name == "distpt_network_litert"
    assert conventions_of(path.parent) == models("distpt_network").conventions


def test_utrans_export_is_the_function_and_import_utrans_stays_light(models, tmp_path):
    _require("tf2onnx")
    # Imported by name above, the package is still callable as utrans.export(...).
    path = utrans.export(models("distpt_network"), "onnx", tmp_path / "callable")
    assert path == tmp_path / "callable" / "model.onnx" and path.is_file()
    done = subprocess.run(
        [sys.executable, "-c", "import sys, utrans; print(sorted(m for m in sys.modules if "
                               "m.startswith(('utrans.export', 'tensorflow', 'keras'))))"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO_ROOT), timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-2000:]


def test_export_command(models, tmp_path, capsys):
    _require("tf2onnx")
    _require("onnxruntime")
    model = models("distpt_network")
    model.save(tmp_path / "distpt.keras")
    out = tmp_path / "exports" / "distpt"
    assert console(["export", str(tmp_path / "distpt.keras"), "--format", "onnx",
                    "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"Wrote {out / 'model.onnx'} and {out / 'conventions.json'}" in printed
    assert sorted(p.name for p in out.iterdir()) == ["conventions.json", "model.onnx"]
    runner = load_runner(out)
    assert runner.conventions == model.conventions and runner.name == "distpt"
    _check_parity(model, runner, "onnx", 2)


@pytest.mark.parametrize(("argv", "message"), [
    (["no_such_model", "--format", "onnx"], "Unknown model 'no_such_model'"),
    (["phasenet", "--format", "onnx"], "has no trained weights"),
    (["phasenet", "--format", "onnx", "--batch_size", "4"], "--format onnx takes none of "
                                                             "--batch_size"),
    (["phasenet", "--format", "litert", "--quantize", "int8"], "give --calibration FILE.npy"),
])
def test_export_command_bad_input(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        console(["export", *argv, "--output", str(tmp_path / "out")])
    assert exit_.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "out").exists()


def test_export_command_without_the_converter(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import tf2onnx raises ImportError
    with pytest.raises(SystemExit) as exit_:
        console(["export", "distpt_network", "--random_weights", "--format", "onnx",
                 "--output", str(tmp_path / "out")])
    assert exit_.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].endswith("pip install 'utrans[export]'")


def test_annotate_command_refuses_an_onnx_model_without_conventions(exports, tmp_path, capsys):
    _require("onnxruntime")
    lonely = tmp_path / "lonely.onnx"
    lonely.write_bytes(exports("distpt_network", "onnx").read_bytes())
    record = tmp_path / "rec.mseed"
    obspy.read().write(str(record), format="MSEED")
    code = console(["annotate", str(record), "--model", str(lonely), "--output",
                    str(tmp_path / "out"), "--no_plots", "--no_progress"])
    assert code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and str(tmp_path / "conventions.json") in lines[0]
