"""The fused training kernels: FusedAdam and BatchNormalization give Keras' results with fewer ops.

Each test checks the numbers against the Keras layer or optimizer it
replaces, and that the fused TensorFlow kernel is really in the traced
training graph (or, where it must not be used, really absent).
"""

import numpy as np
import pytest
import tensorflow as tf
import keras

from utrans.models import get_model
from utrans.models.normalization import BatchNormalization
from utrans.models.optimizers import FusedAdam


def _op_types(fn, *args):
    return [op.type for op in tf.function(fn).get_concrete_function(*args).graph.get_operations()]


# --------------------------------------------------------------------------- FusedAdam
def _small_model():
    return keras.Sequential([keras.Input((64, 3)), keras.layers.Conv1D(8, 5, activation="relu"),
                             keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])


def _train(optimizer, steps=5):
    keras.utils.set_random_seed(1)
    model = _small_model()
    model.compile(optimizer, loss="mse")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 64, 3)).astype("float32")
    y = rng.standard_normal((16, 2)).astype("float32")
    for _ in range(steps):
        model.train_on_batch(x, y)
    return model


@pytest.mark.parametrize("amsgrad", [False, True])
def test_fused_adam_updates_as_keras_adam(amsgrad):
    ours = _train(FusedAdam(learning_rate=1e-2, amsgrad=amsgrad))
    keras_ = _train(keras.optimizers.Adam(learning_rate=1e-2, amsgrad=amsgrad))
    moved = [float(np.abs(w.numpy() - w0).max()) for w, w0 in
             zip(ours.weights, [w.numpy() for w in _train(FusedAdam(1e-2), steps=0).weights])]
    assert min(moved) > 1e-3  # five steps of 1e-2 moved every weight
    for a, b in zip(ours.weights + ours.optimizer.variables,
                    keras_.weights + keras_.optimizer.variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-7, err_msg=a.path)


def test_fused_adam_is_one_kernel_per_variable():
    model = _small_model()
    variables = model.trainable_variables
    grads = [tf.ones_like(v) for v in variables]
    fused, plain = FusedAdam(1e-3), FusedAdam(1e-3, amsgrad=True)
    fused.build(variables)
    plain.build(variables)
    types = _op_types(lambda: fused.apply(grads, variables))
    assert types.count("ResourceApplyAdam") == len(variables) == 4
    assert types.count("Pow") == 2  # the bias corrections, made once for all variables
    assert "ResourceApplyAdam" not in _op_types(lambda: plain.apply(grads, variables))


def test_fused_adam_round_trips_in_a_compiled_model(tmp_path):
    model = _train(FusedAdam(learning_rate=3e-3, beta_2=0.99), steps=1)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is FusedAdam
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert int(loaded.optimizer.iterations.numpy()) == 1


# --------------------------------------------------------------------------- BatchNormalization
def _pair(shape, **kwargs):
    keras_bn = keras.layers.BatchNormalization(**kwargs)
    ours = BatchNormalization(**kwargs)
    keras_bn.build(shape)
    ours.build(shape)
    rng = np.random.default_rng(3)
    for a, b in zip(keras_bn.weights, ours.weights):
        value = rng.uniform(0.5, 2.0, a.shape).astype("float32")
        a.assign(value)
        b.assign(value)
    return keras_bn, ours


def _step(layer, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * tf.sin(y))
    grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
    return [y] + grads + [layer.moving_mean, layer.moving_variance]


@pytest.mark.parametrize("shape", [(4, 50, 6), (8, 6), (2, 5, 7, 6)])
def test_batch_norm_trains_as_keras(shape):
    x = tf.constant(np.random.default_rng(0).normal(1.0, 3.0, shape).astype("float32"))
    keras_bn, ours = _pair(shape, momentum=0.9, epsilon=1e-5)
    for a, b in zip(_step(keras_bn, x), _step(ours, x)):
        a, b = np.asarray(a), np.asarray(b)
        np.testing.assert_allclose(b, a, atol=2e-5 * max(1.0, np.abs(a).max()))
    assert "FusedBatchNormV3" in _op_types(lambda t: ours(t, training=True), x)
    assert "FusedBatchNormV3" not in _op_types(lambda t: keras_bn(t, training=True), x)


def test_batch_norm_moving_variance_is_the_batch_variance():
    """Keras' rule (variance over the samples), not the kernel's Bessel-corrected one."""
    x = tf.constant(np.arange(8, dtype="float32").reshape(2, 4, 1))
    _, ours = _pair((2, 4, 1), momentum=0.0, epsilon=1e-5)
    ours(x, training=True)
    np.testing.assert_allclose(ours.moving_mean.numpy(), [3.5])
    np.testing.assert_allclose(ours.moving_variance.numpy(), [5.25])  # np.var(range(8))


def test_batch_norm_inference_is_keras():
    x = tf.constant(np.random.default_rng(1).normal(size=(3, 20, 6)).astype("float32"))
    keras_bn, ours = _pair((3, 20, 6), momentum=0.9, epsilon=1e-5)
    np.testing.assert_array_equal(ours(x, training=False).numpy(),
                                  keras_bn(x, training=False).numpy())


@pytest.mark.parametrize("kwargs", [dict(epsilon=1e-6), dict(axis=1, epsilon=1e-3),
                                    dict(renorm=True, epsilon=1e-3)])
def test_batch_norm_keeps_keras_code_where_the_kernel_does_not_apply(kwargs):
    x = tf.constant(np.random.default_rng(2).normal(size=(4, 6, 6)).astype("float32"))
    keras_bn, ours = _pair((4, 6, 6), **kwargs)
    assert "FusedBatchNormV3" not in _op_types(lambda t: ours(t, training=True), x)
    for a, b in zip(_step(keras_bn, x)[:1], _step(ours, x)[:1]):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))


def test_batch_norm_round_trips_in_config():
    layer = BatchNormalization(momentum=0.9, epsilon=1e-5, name="bn")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is BatchNormalization
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("name", ["phasenet", "eqtransformer", "seist_s_dpk"])
def test_ported_pickers_normalise_with_the_fused_layer(name):
    model = get_model(name, in_samples=1024)
    norms = [layer for layer in _all_layers(model)
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(type(layer) is BatchNormalization for layer in norms)


def _all_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer
