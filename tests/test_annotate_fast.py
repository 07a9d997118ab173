"""The inference-only graphs of utrans.runtime.fast equal the models they come from.

Checked against the reference PyTorch outputs (golden files of the
baselines, as in test_baselines.py) and against the Keras model itself with
batch-normalisation statistics and affine parameters far from their defaults
(the seeded reference checkpoints keep PyTorch's default statistics, so they
alone would not catch a wrongly folded kernel).
"""

import keras
import numpy as np
import pytest

from utrans.convert import load_torch_checkpoint
from utrans.models import get_model
from utrans.runtime.fast import inference_function
from utrans.runtime.keras import KerasRunner


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("name", ["phasenet", "eqtransformer"])
def test_inference_graph_matches_the_reference_outputs(name, reference):
    golden = np.load(reference(f"baselines/{name}_golden.npz"))
    x = golden["x"].transpose(0, 2, 1)
    model = get_model(name, in_samples=x.shape[1])
    load_torch_checkpoint(model, reference(f"baselines/{name}.pth"))
    fast = inference_function(model)
    assert fast is not None
    want = golden["out0"].transpose(0, 2, 1)
    got = _np(fast(keras.ops.convert_to_tensor(x)))
    assert np.abs(got - want).max() <= 1e-4
    assert np.abs(got - _np(model(x, training=False))).max() <= 1e-5


def _randomise_batchnorm(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 2.0, n).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.5, n).astype("float32"))
            layer.moving_mean.assign(rng.normal(0, 0.5, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, n).astype("float32"))


@pytest.mark.parametrize("name,kwargs", [
    ("phasenet", dict(in_samples=203)),  # odd length: padding and cropping on every level
    ("phasenet", dict(in_samples=256, kernel_size=5, conv_channels=(4, 8, 8))),
    ("eqtransformer", dict(in_samples=301, conv_channels=(4, 8), conv_kernels=(5, 3),
                           resconv_kernels=(3,), num_lstm_blocks=1, num_transformer_layers=1,
                           feedforward_dim=16)),
])
def test_folded_batchnorm_equals_the_model(name, kwargs):
    keras.utils.set_random_seed(1)
    model = get_model(name, **kwargs)
    _randomise_batchnorm(model)
    x = np.random.default_rng(2).standard_normal((3, kwargs["in_samples"], 3)).astype("float32")
    fast = inference_function(model)
    want = _np(model(x, training=False))
    np.testing.assert_allclose(_np(fast(keras.ops.convert_to_tensor(x))), want, atol=2e-6)
    # The function reads the current weights: new weights, new outputs, no rebuild.
    _randomise_batchnorm(model, seed=5)
    assert inference_function(model) is fast
    np.testing.assert_allclose(_np(fast(keras.ops.convert_to_tensor(x))),
                               _np(model(x, training=False)), atol=2e-6)


def test_models_with_nested_models_are_left_to_keras():
    model = get_model("seist_s_dpk", in_samples=512, layer_blocks=[1, 1, 1, 1])
    assert inference_function(model) is None
    inputs = keras.Input((50, 3))
    plain = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert inference_function(plain) is None  # nothing to gain


def test_keras_runner_is_the_model_on_raw_windows():
    keras.utils.set_random_seed(3)
    model = get_model("phasenet", in_samples=203)
    _randomise_batchnorm(model, seed=3)
    # Far from normalised: a runner that normalised inside its graph would differ.
    x = 500.0 + 1000.0 * np.random.default_rng(4).standard_normal((3, 203, 3)).astype("float32")
    want = _np(model(x, training=False))
    fast = KerasRunner(model, batch_size=8)
    slow = KerasRunner(model, batch_size=8, fast=False)
    assert fast.conventions is model.conventions and (fast.in_samples, fast.in_channels) == (203, 3)
    got = fast(x)  # 3 windows in a batch of 8: padded, 3 rows back
    assert isinstance(got, np.ndarray) and got.shape == (3, 203, 3)
    np.testing.assert_allclose(got, want, atol=2e-5)
    np.testing.assert_allclose(slow(x), want, atol=2e-5)
    # Another batch size gives the same rows; a batch beyond it is refused.
    np.testing.assert_allclose(fast.resized(2)(x[:2]), want[:2], atol=2e-5)
    assert fast.resized(8) is fast
    with pytest.raises(ValueError, match="At most 2 windows per call. Received: 3 windows"):
        fast.resized(2)(x)
