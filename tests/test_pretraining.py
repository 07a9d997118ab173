"""Task 0, foundation pretraining: trainer0 -> tester0 -> reader0, and its checkpoint in trainer1.

A tiny backbone is pretrained for two epochs on a small synthetic dataset
(events and noise); the checkpoint it writes is a ``UTransBackbone`` that the
downstream trainers take as ``--foundation_weights``.
"""

import json

import keras
import numpy as np
import pandas as pd
import pytest

from script_runner import run_script
from utrans import synthetic
from utrans.core.tasks import get_task
from utrans.evaluate import reconstruction
from utrans.formats import load_split
from utrans.loading import build_model
from utrans.models import UTransBackbone

TINY_BACKBONE = '{"base_filters": 2, "num_layers": 1, "num_heads": 1}'


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny backbone pretrained for 2 epochs (returns work dir, output folder, files)."""
    work = tmp_path_factory.mktemp("pretrain")
    files = synthetic.write_synthetic_dataset(work / "data", n_events=20, n_noise=6, seed=7,
                                              layouts=("datacollected",))
    out = work / "pre"
    run_script("01_train/trainer0.py", "--input_hdf5", files["datacollected"],
               "--input_trainset", files["train_all"], "--input_validset", files["valid_all"],
               "--input_testset", files["test_all"], "--output_name", out,
               "--backbone_kwargs", TINY_BACKBONE, "--epochs", 2, "--batch_size", 4,
               "--max_traces", 12, "--learning_rate", 3e-3, "--no_augmentation",
               "--verbose", 0, "--run_eagerly", "--deterministic")
    return work, work / "pre_outputs", files


def test_trainer0_writes_a_backbone_and_the_loss_falls(pretrained):
    work, folder, files = pretrained
    config = json.loads((folder / "training_config.json").read_text())
    assert config["task"] == "reconstruction" and config["model"] == "utrans_foundation"
    assert "random initialisation" in config["weights"]
    history = pd.read_csv(folder / "history.csv")
    assert len(history) == 2
    assert history.loss[1] < history.loss[0], history  # MAE of the reconstruction output
    assert history.val_loss.min() < 1.0
    backbone = keras.saving.load_model(folder / "models" / "best.keras", compile=False)
    assert isinstance(backbone, UTransBackbone) and backbone.base_filters == 2
    x = np.random.default_rng(0).standard_normal((2, 6000, 3)).astype("float32")
    out = backbone(x, training=False)
    assert out["reconstruction"].shape == (2, 6000, 3) and out["latent"].shape == (2, 75, 80)


def test_tester0_and_reader0(pretrained):
    work, folder, files = pretrained
    run_script("02_test/tester0.py", "--output_name", work / "pre", "--run_eagerly")
    frame = pd.read_csv(folder / "test" / "predictions.csv")
    n_test = len(load_split(files["test_all"]))
    assert len(frame) == n_test
    assert list(frame.columns[:6]) == ["trace_name", "mae", "corr_E", "corr_N", "corr_Z",
                                       "masked_input_mae"]
    assert (frame.mae > 0).all() and (frame.masked_input_mae > 0).all()
    assert frame[["corr_E", "corr_N", "corr_Z"]].abs().max().max() <= 1.0
    run_script("03_read/reader0.py", "--output_name", work / "pre")
    metrics = json.loads((folder / "test" / "metrics.json").read_text())
    assert metrics["n_traces"] == n_test
    assert metrics["mae"] == pytest.approx(frame.mae.mean(), rel=1e-9)
    assert metrics["masked_input_mae"] == pytest.approx(frame.masked_input_mae.mean(), rel=1e-9)
    assert metrics["corr_Z"] == pytest.approx(np.nanmean(frame.corr_Z), rel=1e-9)
    for png in ("mae_hist.png", "example_0.png"):
        assert (folder / "test" / png).stat().st_size > 1000, png


def test_reconstruction_rows_by_hand():
    """A reconstruction equal to twice the clean trace: MAE = mean |clean|, correlation 1."""
    rng = np.random.default_rng(1)
    clean = rng.standard_normal((2, 100, 3))
    clean[1, :, 0] = 0.0  # a dead channel: correlation undefined
    frame = reconstruction.rows(["a", "b"], [{}, {}], clean, 2 * clean, None,
                                           {"masked_input_mae": np.array([0.5, 0.25])},
                                           dict(task=get_task("reconstruction")))
    np.testing.assert_allclose(frame.mae, np.abs(clean).mean(axis=(1, 2)))
    np.testing.assert_allclose(frame.corr_Z, 1.0)
    assert np.isnan(frame.corr_E[1]) and frame.corr_E[0] == pytest.approx(1.0)
    np.testing.assert_allclose(frame.masked_input_mae, [0.5, 0.25])


def test_trainer1_accepts_the_pretrained_backbone(pretrained):
    work, folder, files = pretrained
    best = folder / "models" / "best.keras"
    model, note = build_model("utrans_convmixer_location", foundation_weights=str(best),
                                   filters=8, depth=1)
    assert str(best) in note
    backbone = keras.saving.load_model(best, compile=False)
    for name in ("latent",):
        for ours, theirs in zip(model.get_layer(name).weights, backbone.get_layer(name).weights):
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    encoder = [w for w in backbone.weights if "kernel" in w.path][0]
    match = [w for w in model.weights if w.path == encoder.path]
    assert match, encoder.path
    np.testing.assert_array_equal(np.asarray(match[0]), np.asarray(encoder))

    out = work / "loc"
    run_script("01_train/trainer1.py", "--input_hdf5", files["datacollected"],
               "--input_trainset", files["train"], "--input_validset", files["valid"],
               "--input_testset", files["test"], "--output_name", out,
               "--foundation_weights", best, "--model_kwargs", '{"filters": 8, "depth": 1}',
               "--epochs", 1, "--batch_size", 4, "--max_traces", 4, "--no_augmentation",
               "--verbose", 0, "--run_eagerly")
    config = json.loads((work / "loc_outputs" / "training_config.json").read_text())
    assert config["weights"] == f"U-Trans backbone: weights from {best}"
    assert (work / "loc_outputs" / "models" / "best.keras").stat().st_size > 0


def test_pretraining_from_published_weights_starts_lower(pretrained, reference, capsys):
    """Full-size backbone, one step: from the published weights the masked-trace MAE is far lower."""
    h5 = reference("utrans/UTrans_Foundation.h5")
    work, folder, files = pretrained
    losses = {}
    for name, weights in (("published", str(h5)), ("random", "random")):
        run_script("01_train/trainer0.py", "--input_hdf5", files["datacollected"],
                   "--input_trainset", files["train_all"], "--input_validset", files["valid_all"],
                   "--output_name", work / f"full_{name}", "--foundation_weights", weights,
                   "--epochs", 1, "--batch_size", 4, "--max_traces", 4, "--no_augmentation",
                   "--verbose", 0, "--run_eagerly")
        history = pd.read_csv(work / f"full_{name}_outputs" / "history.csv")
        losses[name] = float(history.val_loss[0])
    with capsys.disabled():
        print(f"\nreconstruction MAE on masked synthetic traces after one step: published weights "
              f"{losses['published']:.4f}, random initialisation {losses['random']:.4f}")
    assert losses["published"] < 0.5 * losses["random"]  # measured 0.22 vs 0.62
