"""Tasks 2-10 end to end (trainerN -> testerN -> readerN) on tiny configurations.

One synthetic dataset is shared by the module; each case trains one epoch on
eight traces with a tiny model (eager steps: tracing a graph would cost more
than the training), tests and reads. Every baseline model runs through its
task's scripts too.
"""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from script_runner import run_script
from utrans import synthetic
from utrans.convert import load_torch_checkpoint
from utrans.formats import CHANNEL_ORDER, load_split, open_dataset
from utrans.models import get_model
from utrans.pipeline import Pipeline

UTRANS_BACKBONE = '{"base_filters": 2, "num_layers": 1, "num_heads": 1}'
SEIST_TINY = '{"layer_blocks": [1, 1, 1, 1], "layer_channels": [8, 8, 16, 16], "head_dims": [4, 4, 8, 8]}'

# (case id, script number, model, extra trainer arguments)
CASES = [
    ("magnitude_vit", 2, None, ["--model_kwargs", '{"conv_filters": [4, 4, 4, 4, 4], "projection_dim": 8, '
                                '"num_heads": 1, "num_layers": 1, "mlp_units": [8, 8], "head_units": [8, 8]}']),
    ("polarity_cct", 3, None, ["--model_kwargs", '{"tokenizer_filters": [8, 8], "num_heads": 1, "num_layers": 1}']),
    ("p_pick_eqcct", 4, None, ["--model_kwargs", '{"conv_filters": [4, 4, 4], "num_heads": 1, "num_layers": 1}']),
    ("s_pick_eqcct", 5, None, ["--model_kwargs", '{"conv_filters": [4, 4, 4], "num_heads": 1, "num_layers": 1}']),
    ("dpk_seist", 6, None, ["--in_samples", "2048", "--model_kwargs", SEIST_TINY]),
    ("dpk_phasenet", 6, "phasenet", ["--in_samples", "2048", "--model_kwargs", '{"conv_channels": [4, 4, 8]}']),
    ("dpk_eqtransformer", 6, "eqtransformer", [
        "--in_samples", "2048", "--model_kwargs",
        '{"conv_channels": [4, 4, 4, 4, 4, 4, 4], "num_lstm_blocks": 1, "num_transformer_layers": 1, '
        '"transformer_io_channels": 4, "transformer_d_model": 4, "feedforward_dim": 8}']),
    ("pmp_seist", 7, None, ["--in_samples", "512", "--model_kwargs", SEIST_TINY]),
    ("pmp_ditingmotion", 7, "ditingmotion", []),
    # Every script of a quantity accepts every model of the quantity.
    ("magnitude_magnet", 2, "magnet", ["--in_samples", "512", "--model_kwargs",
                                       '{"conv_channels": [8, 8], "lstm_dim": 8}']),
    ("polarity_ditingmotion", 3, "ditingmotion", []),
    ("p_pick_phasenet", 4, "phasenet", ["--in_samples", "2048", "--model_kwargs",
                                        '{"conv_channels": [4, 4, 8]}']),
    ("dpk_eqcct_s", 6, "utrans_eqcct_s", ["--model_kwargs",
                                          '{"conv_filters": [4, 4, 4], "num_heads": 1, "num_layers": 1}']),
    ("emg_seist", 8, None, ["--in_samples", "512", "--model_kwargs", SEIST_TINY]),
    ("emg_magnet", 8, "magnet", ["--in_samples", "512", "--model_kwargs", '{"conv_channels": [8, 8], "lstm_dim": 8}']),
    ("baz_seist", 9, None, ["--in_samples", "512", "--p_position_ratio", "0.2",
                            "--model_kwargs", SEIST_TINY]),
    ("baz_network", 9, "baz_network", ["--in_samples", "512", "--model_kwargs",
                                        '{"conv_channels": [4, 4, 4, 4], "lin_hidden_dim": 8}']),
    ("dis_seist", 10, None, ["--in_samples", "512", "--model_kwargs", SEIST_TINY]),
    ("dis_distpt", 10, "distpt_network", ["--in_samples", "512", "--p_position_ratio", "0.1",
                                          "--model_kwargs",
                                          '{"tcn_channels": 4, "dilations": [1, 2, 4]}']),
]

PICK_COLUMNS = ["trace_name", "true_p_sample", "pred_p_samples", "pred_p_probs", "true_s_sample",
                "pred_s_samples", "pred_s_probs", "true_det_start", "true_det_end",
                "pred_det_start", "pred_det_end", "n_samples", "sampling_rate", "outputs"]
COLUMNS = {
    2: ["trace_name", "true_magnitude", "pred_magnitude", "error_magnitude"],
    3: ["trace_name", "true_polarity", "pred_polarity", "prob_up"],
    4: PICK_COLUMNS, 5: PICK_COLUMNS, 6: PICK_COLUMNS,
    7: ["trace_name", "true_polarity", "pred_polarity", "prob_up"],
    8: ["trace_name", "true_magnitude", "pred_magnitude", "error_magnitude"],
    9: ["trace_name", "true_baz_deg", "pred_baz_deg", "error_baz_deg", "pred_cos", "pred_sin"],
    10: ["trace_name", "true_epicentral_distance_km", "pred_epicentral_distance_km",
         "error_epicentral_distance_km"],
}

REGRESSION_KEYS = {"n_traces", "mae", "std", "rmse", "r2", "mean_error", "baseline_mae"}
CLASS_KEYS = {"n_traces", "accuracy", "precision", "recall", "f1", "confusion_matrix",
              "baseline_accuracy"}


def _pick_keys(ph):
    return {f"{ph}_precision_0.1s", f"{ph}_recall_0.1s", f"{ph}_f1_0.1s", f"{ph}_f1_0.5s",
            f"{ph}_mean_s_0.5s", f"{ph}_mae_s_0.5s", f"{ph}_rmse_s_0.5s", f"baseline_{ph}_f1_0.5s"}


METRIC_KEYS = {
    2: REGRESSION_KEYS, 3: CLASS_KEYS, 4: {"n_traces"} | _pick_keys("p"),
    5: {"n_traces"} | _pick_keys("s"),
    6: {"n_traces", "det_precision", "det_recall", "det_f1"} | _pick_keys("p") | _pick_keys("s"),
    7: CLASS_KEYS, 8: REGRESSION_KEYS,
    9: {"n_traces", "mae_deg", "std_deg", "rmse_deg", "mean_deg", "r2", "baseline_mae_deg"},
    10: REGRESSION_KEYS,
}
PNGS = {2: ["pred_vs_true.png", "residual_hist.png"], 3: ["confusion_matrix.png"],
        4: ["p_residual_hist.png", "example_0.png"], 5: ["s_residual_hist.png", "example_0.png"],
        6: ["p_residual_hist.png", "s_residual_hist.png", "example_0.png"], 7: ["confusion_matrix.png"],
        8: ["pred_vs_true.png", "residual_hist.png"], 9: ["pred_vs_true.png", "residual_hist.png"],
        10: ["pred_vs_true.png", "residual_hist.png"]}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """24 earthquakes and 6 noise traces in the DataCollected and STEAD layouts."""
    work = tmp_path_factory.mktemp("tasks")
    files = synthetic.write_synthetic_dataset(work / "data", n_events=24, n_noise=6, seed=5,
                                              layouts=("datacollected", "stead"))
    return work, files


def _data_args(files, number):
    layout = "stead" if number == 10 else "datacollected"
    suffix = "_all" if number == 6 else ""
    return ["--input_hdf5", files[layout], "--input_trainset", files["train" + suffix],
            "--input_validset", files["valid" + suffix], "--input_testset", files["test" + suffix]]


def run_task(work, files, case, number, model, extra):
    out = work / case
    args = [*_data_args(files, number), "--output_name", out, "--epochs", 1, "--batch_size", 4,
            "--max_traces", 8, "--no_augmentation", "--verbose", 0, "--run_eagerly", *extra]
    if (model or "utrans_" if number <= 5 else model or "").startswith("utrans_"):
        args += ["--foundation_weights", "random", "--backbone_kwargs", UTRANS_BACKBONE]
    if model:
        args += ["--model", model]
    run_script(f"01_train/trainer{number}.py", *args)
    run_script(f"02_test/tester{number}.py", "--output_name", out, "--run_eagerly")
    run_script(f"03_read/reader{number}.py", "--output_name", out)
    return out.parent / f"{out.name}_outputs"


@pytest.mark.parametrize("case,number,model,extra", CASES, ids=[c[0] for c in CASES])
def test_task_end_to_end(dataset, case, number, model, extra):
    work, files = dataset
    folder = run_task(work, files, case, number, model, extra)
    config = json.loads((folder / "training_config.json").read_text())
    assert config["model"] == (model or config["model"]) and config["epochs"] == 1
    assert (folder / "models" / "best.keras").stat().st_size > 0
    frame = pd.read_csv(folder / "test" / "predictions.csv")
    suffix = "_all" if number == 6 else ""
    n_test = len(load_split(files["test" + suffix]))
    assert len(frame) == n_test
    assert list(frame.columns[: len(COLUMNS[number])]) == COLUMNS[number]
    metrics = json.loads((folder / "test" / "metrics.json").read_text())
    expected = METRIC_KEYS[number]
    if model == "utrans_eqcct_s":  # an S picker in the detection + P/S task: S metrics only
        expected = {"n_traces"} | _pick_keys("s")
        assert "p_f1_0.5s" not in metrics and metrics["outputs"] == ["S"]
    assert expected <= set(metrics), expected - set(metrics)
    assert metrics["n_traces"] == n_test
    pngs = ["s_residual_hist.png", "example_0.png"] if model == "utrans_eqcct_s" else PNGS[number]
    for png in pngs:
        assert (folder / "test" / png).stat().st_size > 1000, png
    if number in (2, 8, 10):
        slug = COLUMNS[number][1][len("true_"):]
        err = frame[f"pred_{slug}"] - frame[f"true_{slug}"]
        assert metrics["mae"] == pytest.approx(np.abs(err).mean(), rel=1e-9)
    if number == 9:
        assert frame.error_baz_deg.abs().max() <= 180.0
        np.testing.assert_allclose(np.hypot(frame.pred_cos, frame.pred_sin) > 0, True)
    if number in (3, 7):
        assert set(frame.true_polarity) <= {"U", "D"}
        assert metrics["accuracy"] == pytest.approx((frame.true_polarity == frame.pred_polarity).mean())
    if model == "magnet":
        assert (frame.pred_magnitude_std > 0).all()  # aleatoric sigma from the log variance
    if model == "distpt_network":
        assert config["conventions"]["p_position_ratio"] == 0.1
        assert {"pred_p_travel_s", "true_p_travel_s"} <= set(frame.columns)
        assert (frame.true_p_travel_s > 0).all()
        assert "p_travel_mae_s" in metrics
    if model == "phasenet":
        assert metrics["det_f1"] is None and frame.pred_det_start.isna().all()
    if number == 6 and model != "phasenet":
        assert frame.true_det_start.notna().sum() == frame.true_p_sample.notna().sum()


def _emg_run(dataset):
    work, files = dataset
    case = next(c for c in CASES if c[0] == "emg_seist")
    folder = work / "emg_seist_outputs"
    if not (folder / "test" / "predictions.csv").exists():
        run_task(work, files, *case)
    return work, files, folder


def test_checkpoint_weights_h5_and_keras(dataset):
    work, files, folder = _emg_run(dataset)
    target = work / "from_weights"
    run_script("02_test/tester8.py", "--output_name", work / "emg_seist", "--run_eagerly",
               "--checkpoint", folder / "models" / "best.weights.h5", "--output_dir", target)
    ours = pd.read_csv(target / "predictions.csv")
    trained = pd.read_csv(folder / "test" / "predictions.csv")
    np.testing.assert_allclose(ours.pred_magnitude, trained.pred_magnitude, rtol=1e-5)

    out = work / "restart"
    run_script("01_train/trainer8.py", *_data_args(files, 8), "--output_name", out,
               "--epochs", 1, "--batch_size", 4, "--max_traces", 4, "--no_augmentation",
               "--verbose", 0, "--run_eagerly", "--in_samples", 512, "--model_kwargs", SEIST_TINY,
               "--checkpoint", folder / "models" / "best.keras")
    config = json.loads((work / "restart_outputs" / "training_config.json").read_text())
    assert config["weights"].endswith("best.keras") and config["checkpoint"].endswith("best.keras")


def test_checkpoint_pth_through_tester(dataset, reference, tmp_path):
    """A PyTorch state_dict (the seeded reference MagNet) evaluated by tester8 without training."""
    pth = reference("baselines/magnet.pth")
    work, files = dataset
    run_script("02_test/tester8.py", "--output_name", tmp_path / "none", "--model", "magnet",
               "--checkpoint", pth, "--in_samples", 512, "--input_hdf5", files["datacollected"],
               "--input_testset", files["test"], "--output_dir", tmp_path / "t", "--run_eagerly")
    frame = pd.read_csv(tmp_path / "t" / "predictions.csv")
    model = get_model("magnet", in_samples=512)
    load_torch_checkpoint(model, pth)
    with open_dataset(files["datacollected"]) as ds:
        raw = np.stack([ds.read_waveform(tid) for tid in load_split(files["test"])])
    inputs, _ = Pipeline.of(model).record_inputs(raw, 100.0, CHANNEL_ORDER)  # the traces as stored
    assert inputs.shape == (len(raw), 512, 3)
    expected = np.asarray(model(inputs, training=False))
    np.testing.assert_allclose(frame.pred_magnitude, expected[:, 0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(frame.pred_magnitude_std, np.exp(0.5 * expected[:, 1]), rtol=1e-4)


def test_wrong_model_or_checkpoint_is_a_clear_error(dataset, tmp_path, capsys):
    work, files = dataset
    with pytest.raises(SystemExit) as exc:
        run_script("01_train/trainer8.py", *_data_args(files, 8), "--output_name", tmp_path / "w",
                   "--model", "phasenet")
    assert exc.value.code == 2
    assert "Model phasenet measures picking, not magnitude" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_script("02_test/tester8.py", "--output_name", tmp_path / "none", "--model", "magnet",
                   "--checkpoint", tmp_path / "missing.pth", "--input_hdf5", files["datacollected"],
                   "--input_testset", files["test"])
    assert "missing.pth" in capsys.readouterr().err


def test_published_seist_dpk_on_real_waveform(reference, tmp_path, utrans_home):
    """The seist_m_dpk_diting preset through tester6 on ObsPy's example event (100 Hz, E/N/Z, 30 s).

    No --sampling_rate: the preset carries its training data's 50 Hz, so the
    pipeline resamples to 50 Hz, reorders to Z, N, E and pads to 8192 samples;
    the picks must land on the reference's peaks (P at 50 Hz sample 235, S at
    281, MANIFEST) within 2 samples at 50 Hz, i.e. 4 samples at 100 Hz.
    """
    obspy = pytest.importorskip("obspy")
    shutil.copy(reference("seist/seist_m_dpk_diting.pth"), utrans_home)
    st = obspy.read()
    wave = np.zeros((6000, 3), dtype=np.float32)
    for c, comp in enumerate("ENZ"):
        wave[:3000, c] = st.select(component=comp)[0].data.astype(np.float32)
    record = dict(trace_name="RJOB.BW_20090824002003_EV", category="earthquake_local",
                  waveform=wave, p_arrival_sample=470.0, s_arrival_sample=562.0,
                  coda_end_sample=1200.0, snr_db=np.array([20.0, 20.0, 20.0]), depth_km=10.0,
                  magnitude=2.0, magnitude_type="ml", event_lat=47.8, event_lon=12.8,
                  station_lat=47.74, station_lon=12.80, polarity="U")
    hdf5 = synthetic.write_datacollected(tmp_path / "rjob.hdf5", [record])
    np.save(tmp_path / "test.npy", np.array([record["trace_name"]]))
    run_script("02_test/tester6.py", "--output_name", tmp_path / "none",
               "--checkpoint", "seist_m_dpk_diting",
               "--input_hdf5", hdf5, "--input_testset", tmp_path / "test.npy",
               "--output_dir", tmp_path / "t", "--run_eagerly")
    config = json.loads((tmp_path / "t" / "test_config.json").read_text())
    assert config["conventions"]["sampling_rate"] == 50.0
    row = pd.read_csv(tmp_path / "t" / "predictions.csv").iloc[0]
    p = [int(v) for v in str(row.pred_p_samples).split(";")]
    s = [int(v) for v in str(row.pred_s_samples).split(";")]
    assert len(p) == 1 and abs(p[0] - 2 * 235) <= 4, p
    assert len(s) == 1 and abs(s[0] - 2 * 281) <= 4, s
    assert row.pred_det_start <= p[0] <= row.pred_det_end  # the event is detected
