"""The engines as a library (fit / test / read), compare, options checked at parse time, `utrans`."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from script_runner import run_script
from utrans import cli, evaluate, synthetic
from utrans.cli.compare import main as compare_main
from utrans.compare import bootstrap_interval, compare
from utrans.core.errors import ModelInputError
from utrans.core.options import defaults
from utrans.core.tasks import get_task
from utrans.train import TRAIN_OPTIONS, DataFiles, fit
from utrans.train.engine import _objective

SEIST_TINY = {"layer_blocks": [1, 1, 1, 1], "layer_channels": [8, 8, 16, 16],
              "head_dims": [4, 4, 8, 8]}
QUICK = dict(epochs=1, batch_size=4, augmentation=False, verbose=0, run_eagerly=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    work = tmp_path_factory.mktemp("engines")
    files = synthetic.write_synthetic_dataset(work / "data", n_events=20, n_noise=0, seed=3,
                                              layouts=("datacollected",))
    return work, DataFiles(hdf5=str(files["datacollected"]), train=str(files["train"]),
                           valid=str(files["valid"]), test=str(files["test"]))


def test_fit_test_read_without_argparse(data):
    work, files = data
    result = fit("magnitude", model="magnet", data=files, output_name=str(work / "lib"),
                 in_samples=256, model_kwargs={"conv_channels": [4, 4], "lstm_dim": 4}, **QUICK)
    assert result.best_checkpoint is not None and result.best_checkpoint.exists()
    assert list(result.history.columns[:1]) == ["epoch"] and len(result.history) == 1
    assert result.config["model"] == "magnet" and result.config["conventions"]["in_samples"] == 256
    assert result.seconds_per_epoch > 0
    frame = evaluate.test("magnitude", output_name=str(work / "lib"), run_eagerly=True)
    n_test = len(np.load(files.test))
    assert len(frame) == n_test and {"true_magnitude", "pred_magnitude"} <= set(frame.columns)
    assert pd.read_csv(frame.attrs["path"]).shape[0] == n_test
    metrics = evaluate.read("magnitude", output_name=str(work / "lib"))
    assert metrics["mae"] == pytest.approx(np.abs(frame.pred_magnitude - frame.true_magnitude).mean())
    assert np.isfinite(metrics["baseline_mae"])


@pytest.mark.parametrize("center", [True, False])
def test_fit_centres_a_random_regression_head_unless_asked_not_to(data, caplog, center):
    work, files = data
    with caplog.at_level("INFO", logger="utrans"):
        result = fit("magnitude", model="magnet", data=files, output_name=str(work / f"c{center}"),
            in_samples=256, model_kwargs={"conv_channels": [4, 4], "lstm_dim": 4},
            center_outputs=center, **QUICK)
    centred = [r.getMessage() for r in caplog.records if r.name == "utrans.train.centering"]
    if not center:
        assert centred == [] and result.config["centred_outputs"] == {}
        return
    assert len(centred) == 1 and "bias of lin set" in centred[0], centred
    goal, start = (float(v) for v in re.search(r"targets \(([-0-9.e]+); they averaged "
                                                r"([-0-9.e]+)\)", centred[0]).groups())
    assert 0.5 <= goal <= 4.5 and goal != start  # a mean synthetic magnitude, not the start
    assert result.config["centred_outputs"]["lin"] == pytest.approx([goal], rel=1e-3)


def test_fit_rejects_unknown_options_and_models(data):
    work, files = data
    with pytest.raises(TypeError, match="epoch"):
        fit("magnitude", model="magnet", data=files, epoch=3)
    with pytest.raises(ModelInputError, match="phasenet measures picking, not magnitude"):
        fit("magnitude", model="phasenet", data=files, output_name=str(work / "x"))


def test_compare_two_families_on_the_same_split(data):
    work, files = data
    models = {
        "magnet": dict(in_samples=256, model_kwargs={"conv_channels": [4, 4], "lstm_dim": 4}),
        "seist_s_emg": dict(in_samples=256, model_kwargs=SEIST_TINY),
    }
    table = compare("magnitude", models, files, output_name=str(work / "cmp"), n_boot=200,
                    **QUICK)
    assert list(table.model) == ["magnet", "seist_s_emg"]
    out = work / "cmp_outputs"
    assert (out / "comparison.csv").exists() and (out / "comparison.png").stat().st_size > 1000
    md = (out / "comparison.md").read_text()
    assert "| magnet |" in md and "| seist_s_emg |" in md
    for row in table.itertuples():
        frame = pd.read_csv(f"{row.run}/test/predictions.csv")
        mae = np.abs(frame.pred_magnitude - frame.true_magnitude).mean()
        assert row.value == pytest.approx(mae, rel=1e-9)  # the table recomputes from the CSV
        assert row.ci_low <= row.value <= row.ci_high
        assert row.parameters > 0 and row.seconds_per_epoch > 0 and row.inference_traces_per_s > 0
        assert row.baseline == pytest.approx(json.loads(
            open(f"{row.run}/test/metrics.json").read())["baseline_mae"])
        # same test traces for both models
        assert len(frame) == len(np.load(files.test))
    assert table.parameters[0] != table.parameters[1]


def test_bootstrap_interval_covers_the_mean():
    frame = pd.DataFrame({"e": np.random.default_rng(0).normal(1.0, 0.5, 400)})
    low, high = bootstrap_interval(frame, lambda f: float(f.e.mean()), n_boot=500)
    assert low < 1.0 < high and high - low < 0.2


@pytest.mark.parametrize("flag,value", [("--epochs", "0"), ("--batch_size", "0"),
                                        ("--batch_size", "-1"), ("--learning_rate", "0"),
                                        ("--max_d", "0"), ("--add_noise_r", "1.5"),
                                        ("--model_kwargs", "[1, 2]")])
def test_out_of_range_options_are_argparse_errors(flag, value, capsys):
    with pytest.raises(SystemExit) as exc:
        run_script("01_train/trainer1.py", flag, value)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and value in err


def test_utrans_command_dispatches(capsys):
    cli.main(["list"])
    out = capsys.readouterr().out
    assert "seist_m_dpk_diting" in out and "50.0 Hz" in out and "magnet" in out
    with pytest.raises(SystemExit, match="unknown command"):
        cli.main(["fly"])
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "2", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    # the accepted models are named without loading them (`utrans list` lists them)
    assert "every model measuring magnitude (default" in text and "'utrans list'" in text


def test_utrans_console_exit_codes(monkeypatch):
    """The installed ``utrans`` command exits 0 after a command that returns a result
    (a table, a FitResult), and passes an integer exit code through."""
    monkeypatch.setattr(cli, "main", lambda argv=None: pd.DataFrame({"a": [1.0]}))
    assert cli.console([]) == 0
    monkeypatch.setattr(cli, "main", lambda argv=None: 2)
    assert cli.console([]) == 2
    monkeypatch.setattr(cli, "main", lambda argv=None: None)
    assert cli.console([]) == 0


def test_compare_command_names_an_unknown_task_in_one_plain_line(capsys):
    with pytest.raises(SystemExit) as stop:
        compare_main(["--task", "nosuch", "--models", "magnet"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert ": error: Unknown task 'nosuch'. Known tasks: baz," in err and '"' not in err, err


def test_objective_options_reach_the_loss_and_are_checked(data):
    work, files = data
    result = fit("dis", model="seist_s_dis", data=files, output_name=str(work / "delta"),
                 in_samples=256, model_kwargs=SEIST_TINY, objective_options={"delta": 5.0},
                 **QUICK)
    assert result.config["conventions"]["options"] == {"delta": 5.0}
    with pytest.raises(ModelInputError, match="--objective_options: .*nosuch"):
        fit("dis", model="seist_s_dis", data=files, output_name=str(work / "bad"),
            in_samples=256, model_kwargs=SEIST_TINY, objective_options={"nosuch": 1}, **QUICK)


def test_demo_objective_options_apply_to_the_demo_model_only():
    task = get_task("dis")
    opts = defaults(TRAIN_OPTIONS, {}, "fit")
    demo = DataFiles(hdf5="x.hdf5", train="t.npy", valid="v.npy", demo=True)
    own = _objective("seist_s_dis", "seist_s_dis", opts, task, demo)
    assert own.options["delta"] == task.demo["objective_options"]["delta"] != 1.0
    real = _objective("seist_s_dis", "seist_s_dis", opts, task,
                      DataFiles(hdf5="x.hdf5", train="t.npy", valid="v.npy"))
    assert real.options["delta"] == 1.0  # the reference's torch.nn.HuberLoss()
    other = _objective("distpt_network", "distpt_network", opts, task, demo)
    assert "delta" not in other.options
