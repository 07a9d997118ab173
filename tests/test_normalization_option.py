"""A training option that changes a model's conventions reaches the saved model and its users.

``01_train/trainer7.py --normalization_mode max`` used to normalise the data
layer's traces by their maximum while the saved model still said ``std``, so
annotate applied ``std`` to it. The normalisation is now a convention: the
trainer gives it to the model, the ``.keras`` file keeps it, and every
pipeline made from the file applies it.
"""

import json

import keras
import numpy as np
import pytest

from utrans import synthetic
from utrans.cli.scripts import trainer_main
from utrans.loading import get_conventions
from utrans.pipeline import Pipeline

SEIST_TINY = {"layer_blocks": [1, 1, 1, 1], "layer_channels": [8, 8, 16, 16],
              "head_dims": [4, 4, 8, 8]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("normalization")
    files = synthetic.write_synthetic_dataset(work / "data", n_events=16, n_noise=0, seed=5,
                                              layouts=("datacollected",))
    result = trainer_main("pmp", [
        "--input_hdf5", str(files["datacollected"]), "--input_trainset", str(files["train"]),
        "--input_validset", str(files["valid"]), "--input_testset", str(files["test"]),
        "--normalization_mode", "max", "--in_samples", "256", "--epochs", "1",
        "--batch_size", "4", "--no_augmentation", "--verbose", "0", "--run_eagerly",
        "--model_kwargs", json.dumps(SEIST_TINY), "--output_name", str(work / "pmp")])
    return result


def test_the_saved_model_says_max(trained):
    path = trained.best_checkpoint
    assert path is not None
    assert get_conventions(str(path)).normalization == "max"  # read from the file alone
    assert keras.saving.load_model(path, compile=False).conventions.normalization == "max"
    assert trained.config["normalization"] == "max"
    assert json.loads((trained.output_dir / "training_config.json").read_text())[
        "model_kwargs"]["normalization"] == "max"


def test_the_saved_model_is_applied_with_max(trained):
    model = keras.saving.load_model(trained.best_checkpoint, compile=False)
    pipeline = Pipeline.of(model)
    rng = np.random.default_rng(0)
    window = rng.standard_normal((1, 256, 3)) * [1.0, 5.0, 20.0] + 7.0
    inputs = pipeline.window_inputs(window)
    # max: the largest absolute value of every demeaned channel is 1 (std would give ~3)
    np.testing.assert_allclose(np.abs(inputs[0]).max(axis=0), 1.0, rtol=1e-6)
    assert np.abs(inputs[0].std(axis=0) - 1.0).min() > 0.3
