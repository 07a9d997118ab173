"""ConvMixer location model: reference parameter count, backbone handling, .keras round trip."""

import keras
import numpy as np

from utrans.models import UTransBackbone, get_model, list_models


def _weight_count(weights):
    return int(sum(np.prod(w.shape) for w in weights))


def test_reference_parameter_count():
    model = get_model("utrans_convmixer_location", backbone=UTransBackbone())
    # downstream_models.json, location_ConvMixer: 563,480 backbone (input -> latent) + head
    assert model.count_params() == 4_079_659
    assert _weight_count(model.trainable_weights) == 4_056_715
    assert _weight_count(model.non_trainable_weights) == 22_944
    assert model.output_shape == (None, 3)
    assert "utrans_convmixer_location" in list_models(quantity="location")


def test_uses_backbone_layers_and_freezes_them():
    backbone = UTransBackbone(base_filters=2, num_layers=1, num_heads=1)
    latent_layer = backbone.get_layer("latent")
    model = get_model("utrans_convmixer_location", backbone=backbone, filters=8, depth=1,
                      freeze_backbone=True)
    assert model.get_layer("latent") is latent_layer  # shared, not copied
    trainable = {id(w) for w in model.trainable_weights}
    assert not any(id(w) in trainable for w in latent_layer.weights)
    # Only the path to the latent is part of the model: the reconstruction head is not.
    assert "reconstruction" not in [layer.name for layer in model.layers]


def test_keras_round_trip(tmp_path):
    backbone = UTransBackbone(base_filters=2, num_layers=1, num_heads=1)
    model = get_model("utrans_convmixer_location", backbone=backbone, filters=8, depth=2)
    x = np.random.default_rng(0).standard_normal((2, 6000, 3)).astype("float32")
    expected = np.asarray(model(x, training=False))
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert type(restored).__name__ == "UTransConvMixerLocation"
    assert restored.count_params() == model.count_params()
    np.testing.assert_array_equal(np.asarray(restored(x, training=False)), expected)
    assert restored.get_config()["depth"] == 2
