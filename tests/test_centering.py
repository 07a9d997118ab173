"""Output centring of randomly initialised models (utrans.train.centering)."""

import keras
import numpy as np

from utrans.train.centering import center_outputs, output_bias_layer


def _bounded_regressor(seed=0):
    """conv -> BN -> pooled features -> Dense(1) -> 500 * sigmoid, like a SeisT distance head."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((64, 3), name="waveform")
    x = keras.layers.Conv1D(8, 5, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(1, name="lin")(x)
    x = keras.layers.Activation("sigmoid")(x)
    outputs = keras.layers.Rescaling(500.0, name="distance")(x)
    return keras.Model(inputs, outputs)


def _batches(rng, mean, n=3, size=8, shape=(1,)):
    return [(rng.standard_normal((size, 64, 3)).astype("float32") * 5,
             (mean + rng.standard_normal((size, *shape))).astype("float32")) for _ in range(n)]


def _training_mean(model, batches):
    return float(np.mean([keras.ops.convert_to_numpy(model(x, training=True)) for x, _ in batches]))


def test_bounded_head_starts_at_the_target_mean_and_only_its_bias_moves():
    model = _bounded_regressor()
    batches = _batches(np.random.default_rng(0), 60.0)
    kernels = [keras.ops.convert_to_numpy(w) for w in model.weights if "bias" not in w.path]
    moving = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
    before = _training_mean(model, batches)
    for v, value in zip(model.non_trainable_variables, moving):  # undo the call's updates
        v.assign(value)
    done = center_outputs(model, batches)
    goal = np.mean([y for _, y in batches])
    assert abs(before - goal) > 50  # the random head starts far off (about 250 km)
    assert set(done) == {"distance"}
    np.testing.assert_allclose(done["distance"][0], [goal], rtol=1e-6)
    assert abs(done["distance"][2][0] - goal) < 1e-3
    for v, value in zip(model.non_trainable_variables, moving):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(v), value)
    after = [keras.ops.convert_to_numpy(w) for w in model.weights if "bias" not in w.path]
    for a, b in zip(kernels, after):
        np.testing.assert_array_equal(a, b)
    assert abs(_training_mean(model, batches) - goal) < 1e-2


def test_linear_head_far_from_its_targets_is_reached():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((64, 3))
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(4, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, name="magnitude")(x))
    batches = _batches(np.random.default_rng(1), 400.0)  # beyond the first bracket of +-30
    done = center_outputs(model, batches)
    goal = np.mean([y for _, y in batches])
    assert abs(done["magnitude"][1][0] - goal) > 300  # it started near 0
    assert abs(done["magnitude"][2][0] - goal) < 1e-3


def test_curves_are_centred_channel_by_channel():
    keras.utils.set_random_seed(2)
    inputs = keras.Input((64, 3))
    x = keras.layers.Conv1D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv1D(3, 1, name="out_conv")(x)
    model = keras.Model(inputs, keras.layers.Activation("sigmoid", name="curves")(x))
    rng = np.random.default_rng(2)
    batches = []
    for _ in range(2):
        y = np.zeros((8, 64, 3), "float32")
        y[:, 10:40, 0] = 1.0  # detection: about half the window
        y[:, 20, 1] = 1.0  # one P sample
        y[:, 30:32, 2] = 1.0  # two S samples
        batches.append((rng.standard_normal((8, 64, 3)).astype("float32"), y))
    done = center_outputs(model, batches)
    np.testing.assert_allclose(done["curves"][2], [30 / 64, 1 / 64, 2 / 64], atol=1e-4)


def test_softmax_and_multi_input_outputs_are_left_alone():
    inputs = keras.Input((64, 3))
    x = keras.layers.Conv1D(3, 1, name="logits")(inputs)
    soft = keras.layers.Softmax(name="probabilities")(x)
    model = keras.Model(inputs, soft)
    assert output_bias_layer(model) is None
    bias = keras.ops.convert_to_numpy(model.get_layer("logits").bias)
    assert center_outputs(model, [(np.ones((2, 64, 3), "float32"),
                                   np.full((2, 64, 3), 1 / 3, "float32"))]) == {}
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.get_layer("logits").bias), bias)
    a, b = keras.Input((4,)), keras.Input((4,))
    added = keras.layers.Add(name="sum")([keras.layers.Dense(1)(a), keras.layers.Dense(1)(b)])
    assert output_bias_layer(keras.Model([a, b], added)) is None


def test_targets_of_another_shape_are_refused_with_a_note(caplog):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((64, 3))
    x = keras.layers.GlobalAveragePooling1D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="two")(x))
    with caplog.at_level("INFO", logger="utrans.train.centering"):
        done = center_outputs(model, [(np.ones((2, 64, 3), "float32"), np.ones((2, 3), "float32"))])
    assert done == {}
    assert "do not match its 2 channel(s)" in caplog.text


def test_value_and_log_variance_head_centres_the_value_only():
    keras.utils.set_random_seed(4)
    inputs = keras.Input((64, 3))
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(4, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, name="lin")(x))  # (value, log variance)
    bias = keras.ops.convert_to_numpy(model.get_layer("lin").bias).copy()
    batches = _batches(np.random.default_rng(4), 3.0)
    done = center_outputs(model, batches)
    goal = np.mean([y for _, y in batches])
    assert abs(done["lin"][2][0] - goal) < 1e-3 and len(done["lin"][2]) == 1
    after = keras.ops.convert_to_numpy(model.get_layer("lin").bias)
    assert after[1] == bias[1] and after[0] != bias[0]


def test_two_outputs_are_centred_from_one_feature_pass(monkeypatch):
    """dist-PT shape: two (value, log-variance) heads on shared features, targets as a list."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((64, 3))
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(4, 3)(inputs))
    model = keras.Model(inputs, [keras.layers.Dense(2, name="dist")(x),
                                 keras.layers.Dense(2, name="ptravel")(x)])
    rng = np.random.default_rng(5)
    batches = [(rng.standard_normal((8, 64, 3)).astype("float32"),
                [(60 + rng.standard_normal((8, 1))).astype("float32"),
                 (9 + rng.standard_normal((8, 1))).astype("float32")]) for _ in range(3)]
    calls = []
    original = keras.Model.__call__

    def counting(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "__call__", counting)
    done = center_outputs(model, batches)
    monkeypatch.undo()
    assert set(done) == {"dist", "ptravel"}
    for k, name in enumerate(("dist", "ptravel")):
        goal = np.mean([y[k] for _, y in batches])
        assert abs(done[name][2][0] - goal) < 1e-3
    assert len(calls) == len(batches)  # one extractor call per batch for both outputs
