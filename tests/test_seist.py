"""SeisT port: parity with the published checkpoints, conversion, config, errors."""

import json

import keras
import numpy as np
import pytest

from utrans.convert import load_torch_checkpoint, read_torch_state_dict
from utrans.core.errors import CheckpointMismatchError
from utrans.models import get_model, list_models, model_quantity
from utrans.models.seist import (
    SeisTBackbone,
    SeisTGELU,
    SeisTGroupConv1D,
    SeisTLinearResize1D,
    SeisTLocalPool1D,
    SeisTPicker,
    SeisTRegressor,
)

SIZES = ("s", "m", "l")
TASKS = ("dpk", "pmp", "emg", "baz", "dis")
CHECKPOINTS = [f"seist_{s}_{t}_diting" for s in SIZES for t in TASKS] + [
    f"seist_{s}_emg_pnw" for s in SIZES
]
GOLDENS = [
    "seist_m_dpk_diting",
    "seist_s_pmp_diting",
    "seist_l_emg_diting",
    "seist_m_baz_diting",
    "seist_s_dis_diting",
    "seist_l_emg_pnw",
]
# One checkpoint per size not already covered by a golden, and every head kind.


def _constructor(stem):
    return stem.rsplit("_", 1)[0]


def _params(reference, stem):
    table = json.loads(reference("params.json").read_text())["seist"]
    return table[stem]


def _convert(reference, stem):
    model = get_model(_constructor(stem), in_samples=8192)
    info = load_torch_checkpoint(model, reference(f"seist/{stem}.pth"))
    return model, info


def _check_conversion(reference, stem):
    model, info = _convert(reference, stem)
    sd = read_torch_state_dict(reference(f"seist/{stem}.pth"))
    real = [k for k in sd if not k.endswith("num_batches_tracked")]
    # Every Keras weight filled, every checkpoint tensor used once.
    assert info["assigned"] == len(model.weights)
    assert sum(len(m.torch_keys) for m in model.torch_weight_map()) == len(real)
    p = _params(reference, stem)
    assert model.count_params() == p["keras_equivalent_total_if_bn_stats_counted"]
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == p["total_params"] == p["trainable_params"]
    return model


def test_registry_names_and_tasks():
    names = [n for n in list_models() if n.startswith("seist_")]
    assert sorted(names) == sorted(f"seist_{s}_{t}" for s in SIZES for t in TASKS)
    quantity = {"dpk": "picking", "pmp": "polarity", "emg": "magnitude", "baz": "backazimuth",
                "dis": "distance"}
    for t in TASKS:
        assert {f"seist_{s}_{t}" for s in SIZES} <= set(list_models(quantity=quantity[t]))
        assert model_quantity(f"seist_m_{t}") == quantity[t]


@pytest.mark.parametrize("stem", GOLDENS)
def test_golden_parity(reference, stem):
    golden = np.load(reference(f"seist/{stem}_golden.npz"))
    model = _check_conversion(reference, stem)
    x = golden["x"].transpose(0, 2, 1)  # (N, C, L) -> (N, L, C)
    out = np.asarray(model(x, training=False))
    ref = golden["out0"]
    if ref.ndim == 3:
        assert out.shape == (3, 8192, 3)
        out = out.transpose(0, 2, 1)
    assert out.shape == ref.shape
    diff = np.abs(out - ref).max()
    assert diff <= 1e-4 * max(1.0, np.abs(ref).max()), diff
    if stem.split("_")[2] == "dpk":
        # P and S peaks on the real ObsPy window: the exact sample.
        assert out[0, 1].argmax() == ref[0, 1].argmax()
        assert out[0, 2].argmax() == ref[0, 2].argmax()
        assert abs(out[0, 0].max() - ref[0, 0].max()) <= 1e-4
    if stem.split("_")[2] == "pmp":
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("stem", CHECKPOINTS)
def test_all_checkpoints_convert(reference, stem):
    _check_conversion(reference, stem)


def test_mis_shaped_checkpoint_is_refused_and_changes_nothing(reference):
    model = get_model("seist_m_dis", in_samples=512)
    before = [keras.ops.convert_to_numpy(w) for w in model.weights]
    with pytest.raises(CheckpointMismatchError) as err:
        load_torch_checkpoint(model, reference("seist/seist_s_dis_diting.pth"))
    msg = str(err.value)
    assert "seist_s_dis_diting.pth" in msg and "seist_m_dis" in msg
    assert len(msg) < 1500 and msg.count("\n") == 5  # a summary and the first five differences
    assert "looks like a seist_s_{emg,baz,dis} checkpoint" in msg
    details = [d for _, d in err.value.problems]
    assert not any(d.startswith("stem-0-convs-0-pconv") for d in details)  # equal in S and M
    assert any(d.startswith("encoder_layers-0-0-proj/kernel") for d in details)
    # M has a 3rd block in stage 1
    assert any(k == "missing in the file" and d.startswith("encoder_layers.1.3.")
               for k, d in err.value.problems)
    for b, w in zip(before, model.weights):
        np.testing.assert_array_equal(b, keras.ops.convert_to_numpy(w))


def test_wrong_head_checkpoint_is_refused(reference):
    model = get_model("seist_s_emg", in_samples=512)
    with pytest.raises(CheckpointMismatchError, match="looks like a seist_s_dpk") as err:
        load_torch_checkpoint(model, reference("seist/seist_s_dpk_diting.pth"))
    assert ("unexpected in the file", "out_head.up_layers.0.conv.weight") in err.value.problems


@pytest.mark.parametrize("bad", [0, -8, None, 100.5, "8192", True])
def test_bad_in_samples(bad):
    with pytest.raises(ValueError, match=r"Received: in_samples="):
        get_model("seist_m_dpk", in_samples=bad)


def test_bad_size_arguments():
    with pytest.raises(ValueError, match="same length"):
        get_model("seist_s_baz", in_samples=256, layer_blocks=[2, 2, 3])
    with pytest.raises(TypeError, match=r"Received: scale=3"):
        get_model("seist_s_dpk", in_samples=256, scale=3)  # a regression-head argument


@pytest.mark.parametrize("name,in_samples,out_shape", [
    ("seist_s_dpk", 300, (2, 300, 3)),
    ("seist_s_baz", 301, (2, 1)),
])
def test_keras_round_trip(tmp_path, name, in_samples, out_shape):
    model = get_model(name, in_samples=in_samples, seed=3)
    rng = np.random.default_rng(0)
    for w in model.weights:  # move BN statistics away from their defaults
        if w.path.endswith(("moving_mean", "beta")):
            w.assign(rng.normal(0.0, 0.1, w.shape).astype("float32"))
        elif w.path.endswith(("moving_variance", "gamma")):
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
    x = rng.standard_normal((2, in_samples, 3)).astype("float32")
    y = np.asarray(model(x, training=False))
    assert y.shape == out_shape and np.isfinite(y).all()
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model) and loaded.name == name
    assert loaded.backbone.get_config() == model.backbone.get_config()
    assert loaded.get_config()["backbone"]["config"]["in_samples"] == in_samples
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), y, rtol=1e-5, atol=1e-6)


def test_config_stores_constructor_args():
    model = get_model("seist_l_dis", in_samples=512)
    assert isinstance(model, SeisTRegressor) and model.get_config()["scale"] == 500.0
    cfg = model.backbone.get_config()
    assert cfg["in_samples"] == 512
    assert cfg["layer_channels"] == [32, 32, 64, 128]
    assert cfg["msmc_kernel_sizes"] == [3, 5, 7, 11]
    assert cfg["mlp_ratio"] == 3
    assert SeisTBackbone.from_config(cfg).count_params() == model.backbone.count_params()
    # Features by name: stage outputs at 1/4 .. 1/64 of the window.
    lengths = [model.backbone.get_layer(f"stage_{i}").output.shape[1] for i in range(4)]
    assert lengths == [64, 32, 16, 8]

    picker = get_model("seist_s_dpk", in_samples=500)
    assert isinstance(picker, SeisTPicker) and picker.output.shape == (None, 500, 3)
    # Feature length 8 (500 -> 250 -> 125 -> 63 -> 32 -> 16 -> 8), then six geometric
    # upsampling steps truncated to integers, ending at the window length.
    sizes = [picker.get_layer(f"out_head-up_layers-{i}-resize").output.shape[1] for i in range(6)]
    assert sizes == [15, 31, 62, 125, 250, 500]


def test_dropout_only_in_training():
    model = get_model("seist_s_emg", in_samples=256, seed=1)
    x = np.random.default_rng(1).standard_normal((4, 256, 3)).astype("float32")
    a = np.asarray(model(x, training=False))
    b = np.asarray(model(x, training=False))
    np.testing.assert_array_equal(a, b)
    c = np.asarray(model(x, training=True))
    assert np.abs(c - a).max() > 1e-4


def test_group_conv_equals_keras_grouped_conv():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 40, 12)).astype("float32")
    ours = SeisTGroupConv1D(12, 5, groups=3, padding="same", use_bias=False)
    theirs = keras.layers.Conv1D(12, 5, groups=3, padding="same", use_bias=False)
    ours.build(x.shape)
    theirs.build(x.shape)
    assert tuple(ours.kernel.shape) == tuple(theirs.kernel.shape) == (5, 4, 12)
    kernel = rng.standard_normal((5, 4, 12)).astype("float32")
    ours.kernel.assign(kernel)
    theirs.kernel.assign(kernel)
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), atol=1e-5)


def test_gelu_is_the_exact_gelu():
    x = np.linspace(-8, 8, 1001).astype("float32")
    ours = np.asarray(SeisTGELU()(x))
    exact = np.asarray(keras.activations.gelu(x, approximate=False))
    # 1 + erf cancels in float32 for x < -4: absolute error stays below 1e-6.
    np.testing.assert_allclose(ours, exact, atol=1e-6)
    np.testing.assert_allclose(ours[x > -3], exact[x > -3], atol=1e-7, rtol=1e-5)
    assert np.abs(ours - np.asarray(keras.activations.gelu(x, approximate=True))).max() > 1e-4


def test_local_pool_ceil_mode_by_hand():
    x = np.arange(7, dtype="float32").reshape(1, 7, 1)  # windows [0..2], [3..5], [6]
    y = np.asarray(SeisTLocalPool1D(3)(x))[0, :, 0]
    np.testing.assert_allclose(y, [1 + 2, 4 + 5, 6 + 6])


def test_linear_resize_by_hand():
    x = np.array([0.0, 10.0, 20.0], dtype="float32").reshape(1, 3, 1)
    y = np.asarray(SeisTLinearResize1D(6)(x))[0, :, 0]
    # half-pixel centres: src = (i + 0.5) / 2 - 0.5 -> 0, 0.25, 0.75, 1.25, 1.75, 2.25 (edge)
    np.testing.assert_allclose(y, [0.0, 2.5, 7.5, 12.5, 17.5, 20.0], atol=1e-6)


def test_pool_and_resize_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    for length, k in [(37, 8), (40, 4), (9, 2), (5, 8)]:
        x = rng.standard_normal((2, 4, length)).astype("float32")
        t = torch.from_numpy(x)
        ref = (torch.nn.functional.avg_pool1d(t, k, ceil_mode=True)
               + torch.nn.functional.max_pool1d(t, k, ceil_mode=True)).numpy()
        out = np.asarray(SeisTLocalPool1D(k)(x.transpose(0, 2, 1))).transpose(0, 2, 1)
        np.testing.assert_allclose(out, ref, atol=1e-6)
    for length, size in [(8, 37), (128, 215), (37, 8), (10, 10)]:
        x = rng.standard_normal((2, 3, length)).astype("float32")
        ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode="linear").numpy()
        out = np.asarray(SeisTLinearResize1D(size)(x.transpose(0, 2, 1))).transpose(0, 2, 1)
        np.testing.assert_allclose(out, ref, atol=1e-5)


def test_reader_matches_torch_load(reference):
    torch = pytest.importorskip("torch")
    path = reference("seist/seist_l_dpk_diting.pth")
    ours = read_torch_state_dict(path)
    theirs = torch.load(path, map_location="cpu", weights_only=True)
    assert list(ours) == list(theirs)
    for k, v in theirs.items():
        assert ours[k].dtype == v.numpy().dtype
        np.testing.assert_array_equal(ours[k], v.numpy())


_BACKEND_SCRIPT = """
import sys, numpy as np, keras
from utrans.models import get_model
from utrans.convert import load_torch_checkpoint
pth, npz = sys.argv[1], sys.argv[2]
model = get_model("seist_s_pmp", in_samples=8192)
load_torch_checkpoint(model, pth)
golden = np.load(npz)
out = keras.ops.convert_to_numpy(model(golden["x"].transpose(0, 2, 1), training=False))
print(keras.backend.backend(), float(np.abs(out - golden["out0"]).max()))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_golden_on_other_backends(reference, backend):
    import importlib.util
    import os
    import pathlib
    import subprocess
    import sys

    repo_root = pathlib.Path(__file__).resolve().parents[1]
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(repo_root))
    result = subprocess.run(
        [sys.executable, "-c", _BACKEND_SCRIPT, str(reference("seist/seist_s_pmp_diting.pth")),
         str(reference("seist/seist_s_pmp_diting_golden.npz"))],
        env=env, cwd=repo_root, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    used, diff = result.stdout.strip().splitlines()[-1].split()
    assert used == backend
    assert float(diff) <= 1e-4


def test_fit_one_step_updates_weights_and_bn_statistics():
    model = get_model("seist_s_dpk", in_samples=128, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 128, 3)).astype("float32")
    y = (rng.uniform(size=(4, 128, 3)) > 0.9).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy",
                  run_eagerly=True)  # eager: no minutes-long graph trace in a unit test
    conv = model.backbone.get_layer("encoder_layers-0-1-convs-0-conv")
    assert isinstance(conv, SeisTGroupConv1D)
    kernel0 = keras.ops.convert_to_numpy(conv.kernel).copy()
    stats0 = keras.ops.convert_to_numpy(model.backbone.get_layer("stem-0-norm").moving_mean).copy()
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert np.abs(keras.ops.convert_to_numpy(conv.kernel) - kernel0).max() > 0
    stats1 = keras.ops.convert_to_numpy(model.backbone.get_layer("stem-0-norm").moving_mean)
    assert np.abs(stats1 - stats0).max() > 0
