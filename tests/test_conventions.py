"""Models own their conventions: config round trip, presets, adapters chosen from the model."""

import logging

import keras
import numpy as np
import pytest

from utrans import adapters
from utrans.core import presets
from utrans.core.conventions import Conventions, get_conventions
from utrans.models import get_model, list_models, model_conventions
from utrans.core.tasks import get_task


def test_every_registered_model_states_its_conventions():
    for name in list_models():
        conv = model_conventions(name)
        assert conv.sampling_rate > 0 and conv.component_order, name
        assert conv.labels, name
    assert model_conventions("utrans_eqcct_p").component_order == "ENZ"
    assert model_conventions("utrans_eqcct_p").in_samples == 6000
    assert model_conventions("seist_m_dpk").labels == ("det", "P", "S")
    assert model_conventions("seist_m_dpk").threshold == {"det": 0.5, "P": 0.3, "S": 0.3}
    assert model_conventions("phasenet").labels == ("N", "P", "S")
    assert model_conventions("seist_s_pmp").labels == ("U", "D")
    assert model_conventions("phasenet").component_order == "ZNE"


def test_conventions_round_trip_through_keras_file(tmp_path):
    model = get_model("seist_s_dpk", in_samples=512, sampling_rate=50.0,
                      thresholds={"det": 0.4, "P": 0.2, "S": 0.25})
    config = model.get_config()
    assert config["sampling_rate"] == 50.0 and config["component_order"] == "ZNE"
    assert config["in_samples"] == 512 and config["labels"] == ["det", "P", "S"]
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.conventions == model.conventions
    assert loaded.conventions.threshold["P"] == 0.2
    x = np.random.default_rng(0).standard_normal((1, 512, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.predict_on_batch(x), model.predict_on_batch(x))


def test_backbone_task_and_baseline_conventions_round_trip(tmp_path):
    from utrans.models import UTransBackbone

    tiny = dict(input_length=400, base_filters=2, num_layers=1, num_heads=2, projection_dim=8)
    picker = get_model("utrans_eqcct_s", backbone=UTransBackbone(**tiny), conv_filters=(4,),
                       patch_size=8, projection_dim=8, num_heads=2, num_layers=1)
    assert picker.conventions.labels == ("S",) and picker.conventions.in_samples == 400
    picker.save(tmp_path / "p.keras")
    assert keras.saving.load_model(tmp_path / "p.keras").conventions == picker.conventions
    baz = get_model("baz_network", in_samples=256, component_order="ENZ")
    baz.save(tmp_path / "b.keras")
    assert keras.saving.load_model(tmp_path / "b.keras").conventions.component_order == "ENZ"


def test_bad_conventions_are_refused_with_the_value():
    with pytest.raises(ValueError, match="sampling_rate=-5"):
        Conventions(sampling_rate=-5)
    with pytest.raises(ValueError, match="thresholds"):
        Conventions(thresholds={"P": 1.5})
    with pytest.raises(TypeError, match="Unknown convention"):
        Conventions().replace(rate=50)


def test_presets_state_their_training_data():
    for name in presets.list_presets():
        conv = get_conventions(name)
        if name.endswith("_diting"):
            assert conv.sampling_rate == 50.0 and conv.component_order == "ZNE", name
        elif name.endswith("_pnw"):
            assert conv.sampling_rate == 100.0 and conv.component_order == "ZNE", name
        else:
            assert (conv.sampling_rate, conv.component_order, conv.in_samples) == (
                100.0, "ENZ", 6000)


def test_model_from_preset_carries_its_conventions(reference, utrans_home):
    import shutil

    shutil.copy(reference("seist/seist_s_dpk_diting.pth"), utrans_home)
    model = presets.load_model("seist_s_dpk_diting")
    assert model.conventions.sampling_rate == 50.0
    adapter = adapters.get_adapter(get_task("dpk"), model)
    assert isinstance(adapter, adapters.DetectionPickingAdapter)
    assert adapter.sampling_rate == 50.0 and adapter.in_samples == 8192


def test_adapter_is_chosen_from_the_model_not_its_name():
    task = get_task("dpk")
    from utrans.models import MagNet, PhaseNet

    renamed = PhaseNet(in_samples=256, name="my_picker")
    assert isinstance(adapters.get_adapter(task, renamed), adapters.PhaseNetAdapter)
    mag = MagNet(in_samples=256, name="seist_s_dpk")  # a misleading name
    assert isinstance(adapters.get_adapter(get_task("emg"), mag), adapters.MagNetAdapter)


def test_user_model_declares_its_own_adapter():
    @adapters.register_adapter("test_double_output")
    class DoubleAdapter(adapters.ModelAdapter):
        def predictions(self, outputs, x, y):
            return 2.0 * np.asarray(outputs, dtype=np.float32), {}

    conv = Conventions(component_order="ZNE", in_samples=100, labels=("magnitude",),
                       adapter="test_double_output")
    a = adapters.get_adapter(get_task("emg"), conv)
    assert isinstance(a, DoubleAdapter)
    np.testing.assert_array_equal(a.predictions(np.ones((1, 1)), None, None)[0], [[2.0]])
    with pytest.raises(KeyError, match="No adapter 'nobody'"):
        adapters.get_adapter(get_task("emg"), conv.replace(adapter="nobody"))


def test_contradicting_sampling_rate_warns_with_both_values(caplog):
    from utrans.resolve import plan_conventions

    with caplog.at_level(logging.WARNING, logger="utrans.resolve"):
        conv = plan_conventions("seist_m_dpk", get_task("dpk"), given={"sampling_rate": 100.0},
                                checkpoint="seist_m_dpk_diting")
    assert conv.sampling_rate == 100.0
    assert "--sampling_rate 100.0" in caplog.text and "50.0" in caplog.text
    quiet = plan_conventions("seist_m_dpk", get_task("dpk"), checkpoint="seist_m_dpk_diting")
    assert quiet.sampling_rate == 50.0


@pytest.mark.parametrize("model,task,key,value,expect", [
    ("seist_s_dis", "dis", "delta", "x", "delta must be a finite number"),
    ("seist_s_dis", "dis", "delta", float("nan"), "delta must be a finite number"),
    ("seist_s_dis", "dis", "delta", True, "delta must be a finite number"),
    ("seist_s_dpk", "dpk", "channel_weights", [1.0, 1.0], "channel_weights must be 3 finite"),
    ("seist_s_dpk", "dpk", "label_shape", 3, "label_shape must be text"),
])
def test_adapter_options_of_the_wrong_kind_are_named(model, task, key, value, expect):
    with pytest.raises(ValueError, match=expect) as err:
        adapters.get_adapter(get_task(task), model, **{key: value})
    assert f"Received: {key}=" in str(err.value)
    good = adapters.get_adapter(get_task(task), model, **{key: adapters.get_adapter(
        get_task(task), model).options[key]})
    assert key in good.options
