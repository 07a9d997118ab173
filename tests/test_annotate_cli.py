"""The ``utrans-annotate`` command end to end on files written in tmp_path."""

import configparser
import os
import subprocess
import sys

import keras
import numpy as np
import obspy
import pandas as pd
import pytest
from conftest import REPO_ROOT

from utrans import cli as main_cli
from utrans.annotate import annotate, classify
from utrans.cli.annotate import main
from utrans.annotate.output import label_code
from utrans.models import get_model

# Loading a .keras file makes Keras convert variables through a numpy API it flags.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

T0 = obspy.UTCDateTime(2022, 7, 1, 12)
TINY_EQT = dict(in_samples=400, conv_channels=(4, 8), conv_kernels=(5, 3), resconv_kernels=(3,),
                num_lstm_blocks=1, num_transformer_layers=1, feedforward_dim=16)


def _record(station="CLI", seconds=40.0, rate=100.0, seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    traces = []
    for comp in "ZNE":
        data = rng.standard_normal(n) * 10
        data += 400 * np.exp(-np.clip(t - 15, 0, None) / 3) * np.sin(2 * np.pi * 5 * t) * (t > 15)
        traces.append(obspy.Trace(data.astype(np.float32), header={
            "network": "XX", "station": station, "channel": f"HH{comp}",
            "sampling_rate": rate, "starttime": T0}))
    return obspy.Stream(traces)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = get_model("eqtransformer", **TINY_EQT)
    path = tmp_path_factory.mktemp("model") / "tinyeqt.keras"
    model.save(path)
    return path


def _run(args, capsys):
    try:
        code = main([str(a) for a in args] + ["--no_progress"])
    except SystemExit as stop:  # argparse's own errors (exit status 2)
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_outputs_agree_with_classify(tmp_path, model_file, capsys):
    st = _record()
    wav = tmp_path / "rec.mseed"
    st.write(wav, format="MSEED")
    out_dir = tmp_path / "out"
    code, out, err = _run([wav, "--model", model_file, "--output", out_dir, "--quakeml",
                           "--mseed", "--P_threshold", "0.05", "--S_threshold", "0.05",
                           "--det_threshold", "0.05"], capsys)
    assert code == 0, err
    assert "Read 3 trace(s) from 1 file(s)" in out and "Model tinyeqt" in out

    model = keras.saving.load_model(model_file)
    reread = obspy.read(wav)
    thresholds = {"P": 0.05, "S": 0.05, "det": 0.05}
    expected = classify(model, reread, thresholds=thresholds, name="tinyeqt")
    picks = pd.read_csv(out_dir / "picks.csv", keep_default_na=False)
    assert len(picks) > 0
    assert list(picks.columns) == list(expected.picks.columns)
    assert picks.peak_time.tolist() == expected.picks.peak_time.tolist()
    assert picks.phase.tolist() == expected.picks.phase.tolist()
    np.testing.assert_allclose(picks.peak_value, expected.picks.peak_value, rtol=1e-6)
    dets = pd.read_csv(out_dir / "detections.csv", keep_default_na=False)
    assert dets.start_time.tolist() == expected.detections.start_time.tolist()

    catalog = obspy.read_events(out_dir / "picks.xml")
    qpicks = sorted(catalog[0].picks, key=lambda p: (p.time, p.phase_hint))
    assert [str(p.time) for p in qpicks] == sorted(picks.peak_time)
    first = qpicks[0]
    # The waveform id names the instrument (the phase is picked on all its components).
    assert {p.waveform_id.get_seed_string() for p in qpicks} == {"XX.CLI..HH?"}
    assert first.evaluation_mode == "automatic" and "probability=" in first.comments[0].text

    traces = obspy.read(out_dir / "tinyeqt_probabilities.mseed")
    reference = annotate(model, reread, name="tinyeqt")
    assert len(traces) == len(reference) == 3
    for label in ("det", "P", "S"):
        got = traces.select(channel=f"HH{label_code(label, ('det', 'P', 'S'))}")[0]
        want = reference.select(channel=f"tinyeqt_{label}")[0]
        assert got.stats.starttime == want.stats.starttime
        np.testing.assert_array_equal(got.data, want.data)

    png = out_dir / "plots" / "XX.CLI..HH.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_cli_many_files_glob_and_a_bad_station(tmp_path, model_file, capsys):
    for k, name in enumerate(("AAA", "BBB")):
        _record(name, seed=k).write(tmp_path / f"{name}.mseed", format="MSEED")
    bad = _record("NAN")
    for tr in bad:
        tr.data = tr.data.astype(np.float64)
    bad[0].data[10] = np.nan
    bad.write(tmp_path / "NAN.mseed", format="MSEED")
    out_dir = tmp_path / "out"
    code, out, err = _run([tmp_path / "*.mseed", "--model", model_file, "--output", out_dir,
                           "--no_plots", "--P_threshold", "0.05"], capsys)
    # A failed instrument is named and skipped, the others are written, and the exit code is 1.
    assert code == 1, err
    assert "warning: Skipping XX.NAN..HH: XX.NAN..HHZ: 1 non-finite sample" in err
    assert "1 instrument(s) failed: XX.NAN..HH (reasons above); the others were annotated." in out
    picks = pd.read_csv(out_dir / "picks.csv", keep_default_na=False)
    assert set(picks.trace_id) == {"XX.AAA.", "XX.BBB."}
    assert not (out_dir / "plots").exists()


def test_cli_random_weights_only_when_asked(tmp_path, capsys):
    wav = tmp_path / "rec.mseed"
    _record().write(wav, format="MSEED")
    out_dir = tmp_path / "out"
    keras.utils.set_random_seed(0)
    code, out, err = _run([wav, "--model", "phasenet", "--random_weights", "--output", out_dir,
                           "--mseed", "--no_plots"], capsys)
    assert code == 0, err
    assert "Model phasenet: " in out
    picks = pd.read_csv(out_dir / "picks.csv", keep_default_na=False)
    assert list(picks.columns) == ["trace_id", "phase", "peak_time", "peak_value", "start_time",
                                   "end_time", "instrument", "model"]
    traces = obspy.read(out_dir / "phasenet_probabilities.mseed")
    assert sorted(tr.stats.channel for tr in traces) == ["HHP", "HHS", "HHX"]
    assert all(tr.stats.npts == 4000 and tr.stats.starttime == T0 for tr in traces)
    # A softmax over noise, P and S, averaged over windows: one at every sample.
    np.testing.assert_allclose(sum(tr.data for tr in traces), 1.0, atol=1e-5)


@pytest.mark.parametrize("case", ["missing", "unreadable", "glob", "model", "random", "threshold",
                                  "nothing", "threads", "batch"])
def test_cli_bad_input_exits_2_with_one_clear_line(tmp_path, model_file, capsys, case):
    good = tmp_path / "good.mseed"
    _record().write(good, format="MSEED")
    args = [good, "--model", model_file, "--output", tmp_path / "out"]
    expect = ""
    if case == "missing":
        args[0] = tmp_path / "absent.mseed"
        expect = "file not found: " + str(args[0])
    elif case == "unreadable":
        args[0] = tmp_path / "junk.mseed"
        args[0].write_text("these are not samples\n")
        expect = f"cannot read {args[0]}"
    elif case == "glob":
        args[0] = tmp_path / "nothing_*.sac"
        expect = "no file matches"
    elif case == "model":
        args[2] = "no_such_model"
        expect = "model 'no_such_model': Unknown model"
    elif case == "random":  # a registered architecture without weights: random picks refused
        args[2] = "eqtransformer"
        expect = ("model 'eqtransformer': Model 'eqtransformer' has no trained weights: give "
                  "trained weights: a trained .keras file")
    elif case == "threshold":
        args += ["--P_threshold", "1.5"]
        expect = "Received: P=1.5"
    elif case == "threads":
        args += ["--threads", "-3"]
        expect = "argument --threads: expected an integer >= 1. Received: -3"
    elif case == "batch":
        args += ["--batch_size", "0"]
        expect = "argument --batch_size: expected an integer >= 1. Received: 0"
    else:
        odd = _record()
        for tr in odd:
            tr.stats.channel = "HHR"
        odd.write(args[0], format="MSEED")
        expect = "No station of the stream can be annotated"
    code, out, err = _run(args, capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("utrans-annotate: error:")]
    assert len(lines) == 1 and expect in lines[0], err
    assert "Traceback" not in err


def test_console_script_help_is_quick_and_clear():
    # The utrans-annotate console script, as setup.cfg declares it, in a fresh interpreter.
    setup = configparser.ConfigParser()
    setup.read(REPO_ROOT / "setup.cfg")
    scripts = dict(line.split(" = ") for line in
                   setup["options.entry_points"]["console_scripts"].strip().splitlines())
    assert scripts["utrans-annotate"] == "utrans.cli.annotate:main"
    module, function = scripts["utrans-annotate"].split(":")
    command = [sys.executable, "-c",
               f"import sys; from {module} import {function}; sys.exit({function}())"]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(command + ["--help"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0
    for option in ("--model", "--output", "--batch_size", "--stacking", "--overlap",
                   "--P_threshold", "--S_threshold", "--det_threshold", "--quakeml", "--mseed",
                   "--random_weights"):
        assert option in done.stdout
    assert "tensorflow" not in done.stderr.lower()
    done = subprocess.run(command + ["x.mseed"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2 and "--model" in done.stderr
    # Help answers without loading the deep learning framework.
    done = subprocess.run([sys.executable, "-c", f"import sys, {module}; "
                           "print(sorted({'tensorflow', 'keras'} & set(sys.modules)))"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


def test_utrans_annotate_names_itself_in_errors(tmp_path, capsys):
    code = main_cli.console(["annotate", str(tmp_path / "absent_*.mseed"), "--model",
                             "seist_s_dpk_diting"])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("utrans annotate: error:")]
    assert len(lines) == 1 and "no file matches" in lines[0], err
