"""Export to SavedModel, ONNX and LiteRT, and the TensorFlow-free runtime.

Round trips on tiny configurations: a picker (SeisT dpk), a window model
(SeisT emg), multi-output models (distPT-Network, DiTingMotion), a LiteRT
picker (PhaseNet) and an LSTM model in a fixed-batch LiteRT graph (MagNet).
The exported graph, run through :func:`utrans.runtime.load`, must give
``model.predict``'s outputs within 1e-5 * max(1, max|keras|) (SavedModel,
ONNX) or 1e-4 * max(1, max|keras|) (LiteRT), in the same structure.
"""

import importlib
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from utrans.annotate.predict import normalize_windows as annotate_normalize
from utrans.conventions import Conventions
from utrans.export import ExportError, export, output_layout
from utrans.models import get_model
from utrans.models.utrans import UTransBackbone
from utrans.runtime import ManifestError, load, manifest_path, normalize_windows
from utrans.runtime.manifest import Manifest

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
    return {name: make() for name, make in MODELS.items()}


@pytest.fixture(scope="module")
def exports(models, tmp_path_factory):
    """``(name, format) -> path`` of each tiny model's SavedModel and ONNX export."""
    _require("tf2onnx")
    root = tmp_path_factory.mktemp("exports")
    out = {}
    for name, model in models.items():
        for fmt in ("savedmodel", "onnx"):
            out[name, fmt] = export(model, fmt, root / f"{name}_{fmt}")
    return out


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("fmt", ["savedmodel", "onnx"])
@pytest.mark.parametrize("name", list(MODELS))
def test_round_trip_matches_keras(models, exports, name, fmt):
    if fmt == "onnx":
        _require("onnxruntime")
    model = models[name]
    runner = load(exports[name, fmt])
    # Any batch size: one window, then three.
    _check_parity(model, runner, fmt, 1)
    _check_parity(model, runner, fmt, 3)
    assert runner.conventions == model.conventions
    assert runner.output_names == tuple(model.output_names)
    # The runner protocol of the package: name, batch_size, resized().
    assert runner.name == model.name and runner.batch_size == 64
    smaller = runner.resized(2)
    assert smaller.batch_size == 2 and runner.batch_size == 64


def test_manifest_describes_outputs_in_order(models, exports):
    path = exports["distpt_network", "onnx"]
    config = json.loads(manifest_path(path).read_text())
    assert config["file"] == "model.onnx" and config["format"] == "onnx"
    assert config["input"] == {"name": "waveform", "shape": [None, 150, 3], "dtype": "float32",
                               "normalized": True}
    assert config["output_structure"] == "list"
    assert [o["name"] for o in config["outputs"]] == ["distance", "p_travel_time"]
    assert [o["shape"] for o in config["outputs"]] == [[None, 2], [None, 2]]
    assert Conventions.from_config(config["conventions"]) == models["distpt_network"].conventions
    # A SavedModel's manifest lives inside its directory.
    sm = exports["seist_s_emg", "savedmodel"]
    manifest = Manifest.read(sm / "conventions.json")
    assert manifest.file == "." and manifest.conventions.sampling_rate == 50.0


def test_multi_output_model_returns_a_list_in_keras_order(models, exports):
    _require("onnxruntime")
    runner = load(exports["ditingmotion", "onnx"])
    out = runner(_batch(models["ditingmotion"], 2))
    assert isinstance(out, list) and [o.shape for o in out] == [(2, 2), (2, 2)]
    assert runner.output_names == ("clarity", "polarity")


def test_dict_output_model_returns_a_dict(tmp_path):
    _require("onnxruntime")
    keras.utils.set_random_seed(0)
    backbone = UTransBackbone(input_length=400, base_filters=2, num_layers=1, num_heads=2,
                              projection_dim=8)
    layout = output_layout(backbone)
    assert layout.structure == "dict" and layout.names == ("latent", "reconstruction")
    runner = load(export(backbone, "onnx", tmp_path / "foundation.onnx"))
    x = _batch(backbone, 2)
    got, want = runner(x), backbone.predict(x, verbose=0)
    assert sorted(got) == ["latent", "reconstruction"]
    for key in want:
        # The backbone's GELU is TensorFlow's erfc form, converted as 1 - erf.
        assert np.abs(got[key] - want[key]).max() <= 1e-5 * max(1.0, np.abs(want[key]).max())


def test_litert_picker_round_trip(tmp_path):
    _require("ai_edge_litert")
    model = _build("phasenet", in_samples=200)
    path = export(model, "litert", tmp_path / "phasenet")
    assert path.name == "model.tflite"
    runner = load(path.parent)  # the folder: its manifest names the file
    _check_parity(model, runner, "litert", 1)
    _check_parity(model, runner, "litert", 4)


def test_litert_lstm_model_needs_and_uses_a_fixed_batch(tmp_path):
    _require("ai_edge_litert")
    model = _build("magnet", in_samples=64)
    with pytest.raises(ExportError, match="batch_size=N"):
        export(model, "litert", tmp_path / "dynamic.tflite")
    path = export(model, "litert", tmp_path / "fixed" / "magnet.tflite", batch_size=2)
    runner = load(path)
    assert runner.manifest.batch_size == 2 and runner.input_shape == (2, 64, 3)
    assert runner.batch_size == 2
    # Five windows: two full batches and one padded one.
    _check_parity(model, runner, "litert", 5)


# --------------------------------------------------------------------------- TensorFlow-free runtime
def test_runtime_runs_without_tensorflow(models, exports, tmp_path):
    _require("onnxruntime")
    _require("ai_edge_litert")
    model = models["distpt_network"]
    litert = export(model, "litert", tmp_path / "distpt.tflite")
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
        onnx = rt.load({str(exports["distpt_network", "onnx"])!r})
        lite = rt.load({str(litert)!r})
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


def test_runtime_normalisation_is_the_annotate_loops():
    x = np.random.default_rng(3).standard_normal((4, 300, 3)).astype(np.float32) * 50 + 7
    x[1, :, 2] = 3.0  # a flat channel stays zero
    for mode in ("std", "max", "none"):
        got = normalize_windows(x, mode)
        np.testing.assert_allclose(got, annotate_normalize(x, mode), rtol=0, atol=1e-6)
    assert np.all(normalize_windows(x, "std")[1, :, 2] == 0)
    np.testing.assert_allclose(normalize_windows(x, "std")[0].std(axis=0), 1.0, atol=1e-5)


# --------------------------------------------------------------------------- bad input
def test_onnx_model_without_its_conventions_file(exports, tmp_path):
    _require("onnxruntime")
    lonely = tmp_path / "lonely.onnx"
    lonely.write_bytes(exports["distpt_network", "onnx"].read_bytes())
    with pytest.raises(ManifestError) as err:
        load(lonely)
    message = str(err.value)
    assert str(tmp_path / "conventions.json") in message and "\n" not in message


def test_conventions_file_of_another_model_is_refused(exports, tmp_path):
    _require("onnxruntime")
    folder = exports["distpt_network", "onnx"].parent
    other = folder / "renamed.onnx"
    other.write_bytes((folder / "model.onnx").read_bytes())
    with pytest.raises(ManifestError, match="describes model.onnx, not renamed.onnx"):
        load(other)
    other.unlink()


def test_export_refuses_a_folder_of_another_export(models, exports):
    folder = exports["distpt_network", "onnx"].parent
    with pytest.raises(ExportError, match="belongs to another export"):
        export(models["distpt_network"], "litert", folder)


def test_runner_rejects_bad_batches(models, exports):
    _require("onnxruntime")
    runner = load(exports["seist_s_dpk", "onnx"])
    with pytest.raises(ValueError, match=r"x\[None\].*Received: shape=\(256, 3\)"):
        runner(np.zeros((256, 3), np.float32))
    with pytest.raises(ValueError, match="channels-first"):
        runner(np.zeros((2, 3, 256), np.float32))
    with pytest.raises(ValueError, match="no window"):
        runner(np.zeros((0, 256, 3), np.float32))
    # float64 and integer windows are cast, not refused.
    out = runner(np.zeros((1, 256, 3), np.int16))
    assert out.shape == (1, 256, 3) and out.dtype == np.float32


def test_unknown_format_and_options(models, tmp_path):
    model = models["distpt_network"]
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
    with pytest.raises(ImportError) as err:
        export(models["distpt_network"], "onnx", tmp_path / "m.onnx")
    assert str(err.value).endswith("pip install 'utrans[export]'")
    assert "\n" not in str(err.value) and not (tmp_path / "conventions.json").exists()


def test_missing_runtime_says_what_to_install(exports, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"needs onnxruntime.*pip install 'utrans\[runtime\]'"):
        load(exports["distpt_network", "onnx"])


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
