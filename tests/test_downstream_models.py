"""U-Trans downstream models: ViT magnitude, CCT polarity, EQCCT P and S pickers.

Full-size parameter counts equal the reference notebooks' models
(``utrans/downstream_models.json``); everything else runs on tiny configurations.
"""

import json

import keras
import numpy as np
import pytest
from conftest import require_reference

from utrans.models import (
    UTransBackbone,
    UTransCCTPolarity,
    UTransEQCCTPicker,
    UTransViTMagnitude,
    get_model,
    list_models,
    model_quantity,
)
from utrans.models.layers import PatchEncoder, PatchExtractor, ResidualConvBlock

# name -> (reference key, total, trainable, non-trainable, output shape)
FULL = {
    "utrans_vit_magnitude": ("magnitude_ViT", 4_169_249, 4_167_809, 1_440, (None, 1)),
    "utrans_cct_polarity": ("polarity_CCT", 4_674_681, 4_673_241, 1_440, (None, 1)),
    "utrans_eqcct_p": ("pwave_eqcct", 1_527_726, 1_526_010, 1_716, (None, 6000, 1)),
    "utrans_eqcct_s": ("swave_eqcct", 1_954_926, 1_951_290, 3_636, (None, 6000, 1)),
}
TASKS = {
    "utrans_vit_magnitude": "magnitude",
    "utrans_cct_polarity": "polarity",
    "utrans_eqcct_p": "picking",
    "utrans_eqcct_s": "picking",
}
LATENT_PATH_PARAMS = 563_480  # backbone input -> latent (full backbone: 662,098)

# 400 samples -> 5 latent tokens -> 5 * 80 = 400 decoder features.
TINY_BACKBONE = dict(input_length=400, base_filters=2, num_layers=1, num_heads=2, projection_dim=8)
TINY_HEADS = {
    "utrans_vit_magnitude": dict(
        conv_filters=(4, 4), pool_sizes=(2, 2), patch_size=5, projection_dim=8, num_heads=2,
        num_layers=1, mlp_units=(16, 8), head_units=(16,), seed=1,
    ),
    "utrans_cct_polarity": dict(
        tokenizer_filters=(8,), num_heads=2, num_layers=2, seed=2,
    ),
    "utrans_eqcct_p": dict(
        conv_filters=(4,), patch_size=8, projection_dim=8, num_heads=2, num_layers=2, seed=3,
    ),
    "utrans_eqcct_s": dict(
        conv_filters=(4,), patch_size=8, projection_dim=8, num_heads=2, num_layers=2, seed=4,
    ),
}
TINY_OUT = {
    "utrans_vit_magnitude": (2, 1),
    "utrans_cct_polarity": (2, 1),
    "utrans_eqcct_p": (2, 400, 1),
    "utrans_eqcct_s": (2, 400, 1),
}


def _count(variables):
    return sum(int(np.prod(v.shape)) for v in variables)


def _tiny(name, freeze_backbone=False, seed=0):
    keras.utils.set_random_seed(seed)
    backbone = UTransBackbone(**TINY_BACKBONE)
    return get_model(name, backbone=backbone, freeze_backbone=freeze_backbone, **TINY_HEADS[name])


def _waveforms(batch=2, length=400, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, length, 3)).astype("float32")


# --- full size: parameter counts and output shapes ------------------------------


@pytest.mark.parametrize("name", sorted(FULL))
def test_full_size_parameter_counts(name):
    ref_key, total, trainable, non_trainable, out_shape = FULL[name]
    keras.utils.set_random_seed(0)
    model = get_model(name)  # default backbone, random weights
    assert model.count_params() == total
    assert _count(model.trainable_weights) == trainable
    assert _count(model.non_trainable_weights) == non_trainable
    assert tuple(model.output.shape) == out_shape
    assert tuple(model.input.shape) == (None, 6000, 3)
    # Only the input -> latent path of the backbone is in the model.
    names = {layer.name for layer in model.layers}
    assert "latent" in names and "reconstruction" not in names and "decoder1_conv2" not in names
    latent_path = [layer for layer in model.layers if layer.name in _backbone_layer_names()]
    assert _count([w for layer in latent_path for w in layer.weights]) == LATENT_PATH_PARAMS
    # A real forward pass on one full-size window.
    y = keras.ops.convert_to_numpy(model(_waveforms(1, 6000), training=False))
    assert y.shape == (1,) + out_shape[1:]
    assert np.isfinite(y).all()
    if name != "utrans_vit_magnitude":
        assert ((y > 0) & (y < 1)).all()  # sigmoid outputs


_BACKBONE_NAMES = []


def _backbone_layer_names():
    if not _BACKBONE_NAMES:
        _BACKBONE_NAMES.extend(layer.name for layer in UTransBackbone().latent_model().layers)
    return set(_BACKBONE_NAMES)


def test_counts_match_reference_file():
    path = require_reference("utrans/downstream_models.json")
    models = json.loads(path.read_text())["models"]
    for ref_key, total, trainable, non_trainable, _ in FULL.values():
        ref = models[ref_key]
        assert (ref["total_params"], ref["trainable_params"], ref["non_trainable_params"]) == (
            total, trainable, non_trainable,
        )
        assert ref["foundation"]["foundation_params_in_downstream_model"] == LATENT_PATH_PARAMS


# --- tiny configurations ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TINY_HEADS))
def test_tiny_output_shapes_and_ranges(name):
    model = _tiny(name)
    y = keras.ops.convert_to_numpy(model(_waveforms(), training=False))
    assert y.shape == TINY_OUT[name]
    assert np.isfinite(y).all()
    if name == "utrans_vit_magnitude":
        # Linear output: not confined to (0, 1) once scaled.
        assert model.get_layer("magnitude").get_config()["activation"] == "linear"
    else:
        assert ((y > 0) & (y < 1)).all()


@pytest.mark.parametrize("name", sorted(TINY_HEADS))
def test_keras_round_trip_identical_outputs(name, tmp_path):
    model = _tiny(name)
    x = _waveforms()
    # One training-mode call moves the BatchNorm statistics away from their
    # initial values, so the round trip must restore non-trainable state too.
    model(x, training=True)
    moving = [w for w in model.non_trainable_weights if "moving_mean" in w.path]
    assert moving and any(np.abs(keras.ops.convert_to_numpy(w)).max() > 0 for w in moving)
    before = keras.ops.convert_to_numpy(model(x, training=False))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.count_params() == model.count_params()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x, training=False)), before)
    assert loaded.get_config() == model.get_config()
    assert loaded.get_config()["backbone"]["class_name"] == "UTransBackbone"


@pytest.mark.parametrize("name", sorted(TINY_HEADS))
def test_freeze_backbone(name):
    frozen = _tiny(name, freeze_backbone=True)
    free = _tiny(name, freeze_backbone=False)
    backbone_names = {layer.name for layer in UTransBackbone(**TINY_BACKBONE).latent_model().layers}
    for model, trainable in ((frozen, False), (free, True)):
        path_weights = [
            w for layer in model.layers if layer.name in backbone_names for w in layer.weights
        ]
        assert path_weights
        trainable_ids = {id(w) for w in model.trainable_weights}
        assert all((id(w) in trainable_ids) == trainable for w in path_weights)
    # Frozen: the head alone is trainable; the backbone path moves to non-trainable.
    latent_params = UTransBackbone(**TINY_BACKBONE).latent_model().count_params()
    assert _count(frozen.trainable_weights) == _count(free.trainable_weights) - latent_params
    assert frozen.count_params() == free.count_params()
    # The flag survives serialisation.
    restored = type(frozen).from_config(frozen.get_config())
    assert restored.freeze_backbone is True
    assert _count(restored.trainable_weights) == _count(frozen.trainable_weights)


def test_frozen_backbone_unchanged_by_training():
    model = _tiny("utrans_eqcct_p", freeze_backbone=True)
    x = _waveforms(4)
    y = (np.random.default_rng(1).random((4, 400, 1)) > 0.5).astype("float32")
    latent_kernel = model.get_layer("cct_tokenizer").weights[0]
    head_kernel = model.get_layer("p_pick").weights[0]
    latent_before = keras.ops.convert_to_numpy(latent_kernel).copy()
    head_before = keras.ops.convert_to_numpy(head_kernel).copy()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", run_eagerly=True
    )
    model.train_on_batch(x, y)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(latent_kernel), latent_before)
    assert np.abs(keras.ops.convert_to_numpy(head_kernel) - head_before).max() > 0


def test_model_shares_backbone_layers():
    keras.utils.set_random_seed(0)
    backbone = UTransBackbone(**TINY_BACKBONE)
    model = UTransViTMagnitude(backbone, **TINY_HEADS["utrans_vit_magnitude"])
    assert model.get_layer("latent") is backbone.get_layer("latent")
    assert model.input is backbone.input
    # Fine-tuning the model's copy is fine-tuning the backbone's weights.
    kernel = backbone.get_layer("encoder1_conv1").kernel
    kernel.assign(kernel + 1.0)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.get_layer("encoder1_conv1").kernel),
        keras.ops.convert_to_numpy(kernel),
    )


# --- the reference's structure -----------------------------------------------------


def _blocks(model, prefix):
    return [
        layer for layer in model.layers
        if isinstance(layer, ResidualConvBlock) and layer.name.startswith(prefix)
    ]


@pytest.mark.parametrize(
    "name, activation, train_dropout",
    [
        ("utrans_vit_magnitude", "linear", False),
        ("utrans_cct_polarity", "linear", False),
        ("utrans_eqcct_p", "gelu", True),
        ("utrans_eqcct_s", "gelu", True),
    ],
)
def test_decoder_stream_activation_and_dropout(name, activation, train_dropout):
    model = _tiny(name)
    blocks = _blocks(model, "decoder_features_block")
    assert len(blocks) == 3
    for block in blocks:
        assert block.activation == activation
        assert block.train_dropout is train_dropout
        assert (block.filters, block.kernel_size, block.dropout) == (80, 13, 0.1)
    # In training mode the EQCCT streams apply their dropout, the others never do.
    rng = np.random.default_rng(0)
    for block in blocks:
        z = rng.standard_normal((2, 5, block.input.shape[-1])).astype("float32")
        a = keras.ops.convert_to_numpy(block(z, training=True))
        b = keras.ops.convert_to_numpy(block(z, training=True))
        if train_dropout:
            assert np.abs(a - b).max() > 0
        else:
            np.testing.assert_array_equal(a, b)


def test_features_concatenated_before_waveform():
    model = _tiny("utrans_cct_polarity")
    concat = model.get_layer("features_and_waveform")
    assert concat.output.shape == (None, 400, 4)
    first_input = concat._inbound_nodes[0].input_tensors[0]
    assert first_input is model.get_layer("decoder_features").output


def test_eqcct_phase_differences():
    p = _tiny("utrans_eqcct_p")
    s = _tiny("utrans_eqcct_s")
    assert (p.phase, s.phase) == ("P", "S")
    assert (p.layer_norm_epsilon, s.layer_norm_epsilon) == (1e-6, 1e-5)
    assert (p.attention_conv_blocks, s.attention_conv_blocks) == (False, True)
    assert p.get_layer("p_pick").activation.__name__ == "sigmoid"
    assert s.get_layer("s_pick").activation.__name__ == "sigmoid"
    # The S picker wraps each of its 2 attention layers in 2 residual conv blocks.
    assert len(_blocks(s, "picker_block")) == 2 * 2
    assert len(_blocks(p, "picker_block")) == 0
    with pytest.raises(ValueError, match="builds the model with phase=.S."):
        get_model("utrans_eqcct_s", backbone=UTransBackbone(**TINY_BACKBONE), phase="P")
    with pytest.raises(ValueError, match="phase="):
        UTransEQCCTPicker(UTransBackbone(**TINY_BACKBONE), phase="Q")


def test_eqcct_rejects_output_length_mismatch():
    with pytest.raises(ValueError, match="projection_dim=16"):
        UTransEQCCTPicker(
            UTransBackbone(**TINY_BACKBONE), conv_filters=(4,), patch_size=8, projection_dim=16
        )


def test_cct_tokens():
    model = _tiny("utrans_cct_polarity")
    # One tokenizer convolution + max pool of stride 2: 400 samples -> 200 tokens.
    assert model.get_layer("polarity_tokenizer").output.shape == (None, 200, 8)
    full = UTransCCTPolarity(UTransBackbone())
    assert full.get_layer("polarity_tokenizer").output.shape == (None, 1500, 200)
    assert full.get_layer("flatten").output.shape == (None, 300_000)


def test_vit_patches():
    full = UTransViTMagnitude(UTransBackbone())
    assert full.get_layer("patches").output.shape == (None, 15, 160)
    assert full.get_layer("patch_encoder").output.shape == (None, 15, 100)


# --- patch layers -------------------------------------------------------------------


def test_patch_extractor_is_time_major():
    x = np.arange(2 * 6 * 3, dtype="float32").reshape(2, 6, 3)
    got = keras.ops.convert_to_numpy(PatchExtractor(2)(x))
    assert got.shape == (2, 3, 6)
    # Patch 1 of sample 0: steps 2 and 3, all channels of step 2 first.
    np.testing.assert_array_equal(got[0, 1], [6, 7, 8, 9, 10, 11])
    with pytest.raises(ValueError, match=r"Received: input_shape=\(None, 7, 3\)"):
        PatchExtractor(2).compute_output_shape((None, 7, 3))


def test_patch_encoder_adds_position_embedding():
    layer = PatchEncoder(3, 4)
    zeros = np.zeros((2, 3, 5), dtype="float32")
    out = keras.ops.convert_to_numpy(layer(zeros))
    table = keras.ops.convert_to_numpy(layer.position_embedding.embeddings)
    bias = keras.ops.convert_to_numpy(layer.projection.bias)
    np.testing.assert_allclose(out[1], table + bias, atol=1e-7)
    assert layer.count_params() == 5 * 4 + 4 + 3 * 4
    with pytest.raises(ValueError, match="expects 3 patches"):
        PatchEncoder(3, 4)(np.zeros((1, 4, 5), dtype="float32"))


# --- registry -------------------------------------------------------------------------


def test_registry_names_and_tasks():
    for name, task in TASKS.items():
        assert name in list_models()
        assert model_quantity(name) == task
        assert name in list_models(quantity=task)


@pytest.mark.parametrize("name", sorted(TINY_HEADS))
def test_get_model_by_name(name):
    model = _tiny(name)
    expected = {
        "utrans_vit_magnitude": UTransViTMagnitude,
        "utrans_cct_polarity": UTransCCTPolarity,
        "utrans_eqcct_p": UTransEQCCTPicker,
        "utrans_eqcct_s": UTransEQCCTPicker,
    }[name]
    assert type(model) is expected
    assert model.name == name
