"""Location task end to end: trainer1 -> tester1 -> reader1 on a tiny configuration."""

import json

import keras
import numpy as np
import pandas as pd
import pytest

from conftest import REPO_ROOT
from script_runner import run_script
from utrans import synthetic
from utrans.formats import load_split

TINY = [
    "--epochs", "1", "--batch_size", "8", "--max_traces", "16", "--verbose", "0",
    "--foundation_weights", "random",
    "--backbone_kwargs", '{"base_filters": 2, "num_layers": 1, "num_heads": 1}',
    "--model_kwargs", '{"filters": 8, "depth": 1}',
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny location model trained on a small synthetic dataset."""
    work = tmp_path_factory.mktemp("loc")
    files = synthetic.write_synthetic_dataset(work / "data", n_events=60, n_noise=0, seed=3,
                                              layouts=("datacollected",))
    out = work / "run"
    run_script("01_train/trainer1.py", "--input_hdf5", str(files["datacollected"]),
               "--input_trainset", str(files["train"]), "--input_validset", str(files["valid"]),
               "--input_testset", str(files["test"]), "--output_name", str(out), *TINY)
    return work, out, files


def test_trainer_outputs(trained):
    work, out, files = trained
    folder = out.parent / f"{out.name}_outputs"
    for name in ("models/best.keras", "models/best.weights.h5", "history.csv",
                 "loss_curves.png", "training_config.json"):
        assert (folder / name).stat().st_size > 0, name
    config = json.loads((folder / "training_config.json").read_text())
    assert config["task"] == "location" and config["max_d"] == 114.5
    assert len(pd.read_csv(folder / "history.csv")) == 1
    assert not (folder / "backup").exists()  # BackupAndRestore cleans up after a finished run


def test_tester_and_reader(trained):
    work, out, files = trained
    folder = out.parent / f"{out.name}_outputs"
    run_script("02_test/tester1.py", "--output_name", str(out), "--max_d", "114.5")
    frame = pd.read_csv(folder / "test" / "predictions.csv")
    n_test = len(load_split(files["test"]))
    assert len(frame) == n_test
    expected = ["trace_name", "station_lat", "station_lon", "true_lat", "true_lon",
                "true_depth_km", "pred_lat", "pred_lon", "pred_depth_km", "lat_error_deg",
                "lon_error_deg", "depth_error_km", "epicentral_error_km"]
    assert list(frame.columns) == expected
    np.testing.assert_allclose(frame.lat_error_deg, frame.pred_lat - frame.true_lat)
    run_script("03_read/reader1.py", "--output_name", str(out))
    metrics = json.loads((folder / "test" / "metrics.json").read_text())
    assert metrics["n_traces"] == n_test
    np.testing.assert_allclose(metrics["epicentral_mae_km"], frame.epicentral_error_km.mean(),
                               rtol=1e-9)
    assert metrics["baseline_epicentral_mae_km"] > 0
    for png in ("epicentral_error_hist.png", "depth_error_hist.png", "pred_vs_true_lat.png",
                "location_map.png"):
        assert (folder / "test" / png).stat().st_size > 1000, png


def test_monte_carlo_dropout_columns(trained):
    work, out, files = trained
    target = work / "mc"
    run_script("02_test/tester1.py", "--output_name", str(out), "--number_of_sampling", "3",
               "--output_dir", str(target))
    frame = pd.read_csv(target / "predictions.csv")
    for col in ("pred_lat_std", "pred_lon_std", "pred_depth_km_std"):
        assert col in frame and (frame[col] >= 0).all()
    assert frame.pred_lat_std.max() > 0  # dropout is active in the sampling passes


def test_reader_metrics_by_hand(tmp_path):
    """A 1 degree latitude error everywhere: 111 km epicentral error, known depth MAE."""
    out = tmp_path / "hand"
    results = tmp_path / "hand_outputs" / "test"
    results.mkdir(parents=True)
    n = 4
    frame = pd.DataFrame({
        "trace_name": [f"T{i}" for i in range(n)],
        "station_lat": [35.0] * n, "station_lon": [-120.0] * n,
        "true_lat": [35.5] * n, "true_lon": [-120.5] * n, "true_depth_km": [10.0] * n,
        "pred_lat": [36.5] * n, "pred_lon": [-120.5] * n, "pred_depth_km": [12.0, 8.0, 10.0, 14.0],
    })
    frame["epicentral_error_km"] = 0.0
    frame["depth_error_km"] = frame.pred_depth_km - frame.true_depth_km
    frame.to_csv(results / "predictions.csv", index=False)
    run_script("03_read/reader1.py", "--output_name", str(out))
    metrics = json.loads((results / "metrics.json").read_text())
    assert metrics["n_traces"] == 4
    assert metrics["lat_mae_deg"] == pytest.approx(1.0)
    assert metrics["lon_mae_deg"] == pytest.approx(0.0)
    assert 110.9 < metrics["epicentral_mae_km"] < 111.2  # one degree of latitude at 36 N
    assert metrics["depth_mae_km"] == pytest.approx(2.0)  # |2|, |-2|, 0, |4| -> 8 / 4


def test_bad_inputs_give_clear_messages(trained, tmp_path, capsys):
    work, out, files = trained
    ids = np.array(["NOT.THERE_20200101000000_EV"])
    bad_split = tmp_path / "bad_test.npy"
    np.save(bad_split, ids)
    with pytest.raises(SystemExit) as exc:
        run_script("02_test/tester1.py", "--output_name", str(out), "--input_testset",
                   str(bad_split), "--output_dir", str(tmp_path / "x"))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "NOT.THERE_20200101000000_EV" in err and str(files["datacollected"]) in err

    other = keras.Sequential([keras.Input((6000, 3)), keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(1)])
    other.save(tmp_path / "magnitude_like.keras")
    with pytest.raises(SystemExit):
        run_script("02_test/tester1.py", "--output_name", str(out), "--input_model",
                   str(tmp_path / "magnitude_like.keras"), "--output_dir", str(tmp_path / "y"))
    assert "does not look like a location model" in capsys.readouterr().err

    with pytest.warns(UserWarning, match="differs from the value the model was trained with"):
        run_script("02_test/tester1.py", "--output_name", str(out), "--max_d", "50",
                   "--output_dir", str(tmp_path / "z"))


def test_location_notebook_runs_on_tester_output(trained, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    work, out, files = trained
    folder = out.parent / f"{out.name}_outputs"
    if not (folder / "test" / "predictions.csv").exists():
        run_script("02_test/tester1.py", "--output_name", str(out))
    monkeypatch.setenv("UTRANS_OUTPUT_NAME", str(out))
    nb = nbformat.read(REPO_ROOT / "notebooks" / "location_evaluation.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(work)}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "test traces" in outputs
