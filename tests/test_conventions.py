"""Models own their conventions: config round trip, presets, heads and objectives chosen from the model."""

import logging
import shutil

import keras
import numpy as np
import pytest

from utrans import objectives
from utrans.core import presets
from utrans.core.conventions import Conventions
from utrans.core.tasks import get_task
from utrans.loading import get_conventions, load_model, plan_conventions
from utrans.models import MagNet, PhaseNet, UTransBackbone, get_model, list_models, model_conventions
from utrans.pipeline import Pipeline
from utrans.pipeline.heads import Head, register_head


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


def test_downstream_model_and_baseline_conventions_round_trip(tmp_path):
    tiny = dict(input_length=400, base_filters=2, num_layers=1, num_heads=2, projection_dim=8)
    picker = get_model("utrans_eqcct_s", backbone=UTransBackbone(**tiny), conv_filters=(4,),
                       patch_size=8, projection_dim=8, num_heads=2, num_layers=1)
    assert picker.conventions.labels == ("S",) and picker.conventions.in_samples == 400
    picker.save(tmp_path / "p.keras")
    assert keras.saving.load_model(tmp_path / "p.keras").conventions == picker.conventions
    baz = get_model("baz_network", in_samples=256, component_order="ENZ")
    baz.save(tmp_path / "b.keras")
    assert keras.saving.load_model(tmp_path / "b.keras").conventions.component_order == "ENZ"


def test_normalization_is_a_convention_that_reaches_the_saved_model(tmp_path):
    model = get_model("phasenet", in_samples=256, normalization="max")
    assert model.conventions.normalization == "max"
    assert model.get_config()["normalization"] == "max"
    model.save(tmp_path / "n.keras")
    assert keras.saving.load_model(tmp_path / "n.keras").conventions.normalization == "max"
    assert get_conventions(str(tmp_path / "n.keras")).normalization == "max"
    # ... and the pipeline of the loaded model normalises by it: max |x| = 1 after demeaning
    x = np.zeros((1, 256, 3))
    x[0, :, 0] = np.arange(256) - 100.0
    inputs = Pipeline.of(keras.saving.load_model(tmp_path / "n.keras")).window_inputs(x)
    assert float(np.abs(inputs[0, :, 0]).max()) == 1.0
    assert np.count_nonzero(inputs[0, :, 1:]) == 0  # absent components stay 0
    with pytest.raises(ValueError, match="normalization='l2'"):
        Conventions(normalization="l2")


def test_configs_written_with_adapter_are_read_as_head():
    conv = Conventions.from_config({"sampling_rate": 100.0, "labels": ["N", "P", "S"],
                                    "adapter": "phasenet"})
    assert conv.head == "phasenet"
    assert "adapter" not in conv.to_config() and conv.to_config()["head"] == "phasenet"
    config = get_model("phasenet", in_samples=256).get_config()
    config["adapter"] = config.pop("head")
    assert PhaseNet.from_config(config).conventions.head == "phasenet"


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
    shutil.copy(reference("seist/seist_s_dpk_diting.pth"), utrans_home)
    model = load_model("seist_s_dpk_diting")
    assert model.conventions.sampling_rate == 50.0
    objective = objectives.get_objective(get_task("dpk"), model)
    assert isinstance(objective, objectives.DetectionPickingObjective)
    assert objective.conventions.sampling_rate == 50.0 and objective.conventions.in_samples == 8192
    labeller = objective.seist_labeller()
    assert labeller.sampling_rate == 50.0 and labeller.samples == 8192


def test_objective_and_head_are_chosen_from_the_model_not_its_name():
    task = get_task("dpk")
    renamed = PhaseNet(in_samples=256, name="my_picker")
    assert isinstance(objectives.get_objective(task, renamed), objectives.PhaseNetObjective)
    assert Pipeline.of(renamed).head.name == "phasenet"
    mag = MagNet(in_samples=256, name="seist_s_dpk")  # a misleading name
    assert isinstance(objectives.get_objective(get_task("emg"), mag),
                      objectives.AleatoricObjective)
    assert Pipeline.of(mag).head.name == "magnet"


def test_user_model_declares_its_own_head_and_objective():
    @register_head("test_double_output")
    class DoubleHead(Head):
        def estimates(self, outputs, labels):
            return {"magnitude": 2.0 * np.asarray(outputs, dtype=np.float64)[:, 0]}

    @objectives.register_objective("test_double_output")
    class DoubleObjective(objectives.Objective):
        pass

    conv = Conventions(component_order="ZNE", in_samples=100, labels=("magnitude",),
                       head="test_double_output")
    pipeline = Pipeline(conv)
    assert isinstance(pipeline.head, DoubleHead)
    np.testing.assert_array_equal(pipeline.estimates(np.array([[1.5], [4.0]]))["magnitude"],
                                  [3.0, 8.0])
    assert isinstance(objectives.get_objective(get_task("emg"), conv), DoubleObjective)
    assert "test_double_output" in objectives.list_objectives()
    with pytest.raises(KeyError, match="No model head 'nobody'"):
        Pipeline(conv.replace(head="nobody"))
    with pytest.raises(KeyError, match="No model head 'nobody'"):
        objectives.get_objective(get_task("emg"), Conventions(head="nobody"))

    @register_head("test_head_without_objective")
    class ReadOnlyHead(Head):
        pass

    # a head that can be applied but not trained: the pipeline works, training is refused
    untrained = conv.replace(head="test_head_without_objective")
    assert isinstance(Pipeline(untrained).head, ReadOnlyHead)
    with pytest.raises(KeyError, match="No objective is registered for the head "
                                       "'test_head_without_objective'"):
        objectives.get_objective(get_task("emg"), untrained)


def test_contradicting_sampling_rate_warns_with_both_values(caplog):
    with caplog.at_level(logging.WARNING, logger="utrans.loading"):
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
def test_objective_options_of_the_wrong_kind_are_named(model, task, key, value, expect):
    conv = model_conventions(model)
    with pytest.raises(ValueError, match=expect) as err:
        objectives.get_objective(get_task(task), conv, **{key: value})
    assert f"Received: {key}=" in str(err.value)
    default = objectives.get_objective(get_task(task), conv).options[key]
    good = objectives.get_objective(get_task(task), conv, **{key: default})
    assert good.options[key] == default
