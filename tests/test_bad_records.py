"""Bad records that still compute, and small lies in the output: each is named, none gives output.

* a record sampled far below the model's rate (0.5 Hz) is refused, not upsampled;
* a record too short to annotate (one sample) is named, and ``--mseed`` writes no empty file;
* a dead (flat) or absent vertical gives no polarity;
* a metadata CSV cut off part way through is refused, naming the file and the line;
* ``--skip_bad`` counts and names every skipped trace in ``skipped_traces.csv``;
* a log line is not glued to the tester's progress bar.
"""

import logging
import re
import warnings

import h5py
import keras
import numpy as np
import obspy
import pandas as pd
import pytest
from mock_h5 import event_rows, make_seisbench, make_stead

from utrans.annotate import Characterizer, classify
from utrans import synthetic
from utrans.annotate.characterization import NOTE_COLUMN
from utrans.cli.annotate import main as annotate_main
from utrans.cli import scripts
from utrans.core.errors import AnnotateWarning, BadTraceError, DataFileError, StationError
from utrans.formats import load_split, open_dataset
from utrans.models import UTransBackbone, get_model
from utrans.train import DataFiles, fit

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

T0 = obspy.UTCDateTime(2022, 7, 1, 12)
TINY_EQT = dict(in_samples=400, conv_channels=(4, 8), conv_kernels=(5, 3), resconv_kernels=(3,),
                num_lstm_blocks=1, num_transformer_layers=1, feedforward_dim=16)
TINY_MAGNET = dict(in_samples=256, conv_channels=[4, 4], lstm_dim=4)


def _record(rate, n, station="SLOW", seed=0):
    rng = np.random.default_rng(seed)
    return obspy.Stream([obspy.Trace(rng.standard_normal(n).astype(np.float32), header={
        "network": "XX", "station": station, "channel": f"HH{c}", "sampling_rate": rate,
        "starttime": T0}) for c in "ZNE"])


@pytest.fixture(scope="module")
def picker(tmp_path_factory):
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("model") / "tinyeqt.keras"
    get_model("eqtransformer", **TINY_EQT).save(path)
    return path


# --------------------------------------------------------------------------- sparse and short records

def test_a_half_hertz_record_is_refused_not_upsampled(picker):
    stream = _record(0.5, 40) + _record(100.0, 4000, station="GOOD")
    with pytest.warns(AnnotateWarning, match=r"XX\.SLOW\.\.HHE, XX\.SLOW\.\.HHN, XX\.SLOW\.\.HHZ: "
                                             r"sampled at 0\.5 Hz, 200 times below the 100 Hz"):
        out = classify(picker, stream, thresholds={"P": 0.01, "S": 0.01})
    # no pick from the interpolated 0.5 Hz record; the good station is annotated
    assert "XX.SLOW." not in set(out.picks.trace_id) and (out.picks.trace_id == "XX.GOOD.").any()
    with pytest.raises(StationError, match="sampled at 0.5 Hz"):
        classify(picker, _record(0.5, 40), errors="raise")


def test_a_one_sample_record_is_named_and_writes_no_empty_miniseed(picker, tmp_path, capsys):
    wav = tmp_path / "one.mseed"
    _record(100.0, 1).write(wav, format="MSEED")
    out_dir = tmp_path / "out"
    code = annotate_main([str(wav), "--model", str(picker), "--output", str(out_dir),
                          "--mseed", "--no_plots", "--no_progress"])
    out, err = capsys.readouterr()
    assert code == 1  # the failed instrument shows in the exit code
    assert re.search(r"XX\.SLOW\.\.HHZ: too short to annotate: its longest gap-free span holds "
                     r"1 sample\(s\) at 100 Hz, fewer than 100 \(1 s\)", err)
    assert "1 instrument(s) failed: XX.SLOW..HH" in out
    assert not (out_dir / "tinyeqt_probabilities.mseed").exists()  # no empty, unreadable file
    assert "tinyeqt_probabilities.mseed not written" in out


# --------------------------------------------------------------------------- dead vertical

def test_a_dead_vertical_gives_no_polarity():
    keras.utils.set_random_seed(0)
    backbone = UTransBackbone(input_length=400, base_filters=2, num_layers=1, num_heads=2,
                              projection_dim=8)
    cct = get_model("utrans_cct_polarity", backbone=backbone, tokenizer_filters=(8,),
                    num_heads=2, num_layers=2, seed=2)
    ch = Characterizer([get_model("ditingmotion"), get_model("magnet", in_samples=400), cct],
                       p_position_ratio=0.25, min_span_s=(0.5, 1.0))
    picks = pd.DataFrame([("BW.RJOB.", "P", "2009-08-24T00:20:07.70Z", "EH")],
                         columns=["trace_id", "phase", "peak_time", "instrument"])
    live = ch.characterize(obspy.read(), picks).iloc[0]
    assert live["polarity__ditingmotion"] in ("U", "D")
    assert live["polarity__utrans_cct_polarity"] in ("U", "D")
    dead = obspy.read()
    dead.select(component="Z")[0].data[:] = 0
    with pytest.warns(AnnotateWarning, match=r"BW\.RJOB\.\.EHZ holds one value \(0\) over the "
                                             r"(128|400) samples of the window: no polarity"):
        row = ch.characterize(dead, picks).iloc[0]
    # no first motion read from a dead channel
    assert pd.isna(row["polarity__ditingmotion"]) and pd.isna(row["polarity__utrans_cct_polarity"])
    assert pd.isna(row["polarity_prob__ditingmotion"])
    assert "ditingmotion: dead vertical component: BW.RJOB..EHZ" in row[NOTE_COLUMN]
    assert np.isfinite(row["magnitude__magnet"])  # other quantities are still estimated
    absent = obspy.Stream([tr for tr in obspy.read() if tr.stats.channel != "EHZ"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        row = ch.characterize(absent, picks).iloc[0]
    # DiTingMotion takes Z alone and refuses the station; the ENZ model would read zeros
    assert pd.isna(row["polarity__ditingmotion"])
    assert "no usable component for a Z model" in row[NOTE_COLUMN]
    assert pd.isna(row["polarity__utrans_cct_polarity"])  # none read from zeros either
    assert ("utrans_cct_polarity: no vertical component (BW.RJOB..EHZ absent): no polarity"
            in row[NOTE_COLUMN])
    assert np.isfinite(row["magnitude__magnet"])
    assert any("no vertical component" in str(w.message) for w in caught)


# --------------------------------------------------------------------------- truncated catalogue

@pytest.mark.parametrize("layout", ["stead", "seisbench"])
def test_a_cut_off_metadata_csv_is_refused_naming_the_line(tmp_path, layout):
    rows = event_rows()
    if layout == "stead":
        path = make_stead(tmp_path, rows)
        csv = path.with_suffix(".csv")
    else:
        path = make_seisbench(tmp_path, rows)
        csv = path / "metadata.csv"
    text = csv.read_text()
    lines = text.splitlines()
    csv.write_text(text[:len(text) - len(lines[-1]) // 2 - 1])  # a copy stopped mid-row
    with pytest.raises(DataFileError, match=rf"{re.escape(str(csv))}: line {len(lines)} holds "
                                            r"\d+ of the \d+ fields of the header"):
        open_dataset(path).trace_ids()  # not read as a last trace with missing fields


def test_a_complete_csv_without_a_final_line_break_is_read(tmp_path, caplog):
    path = make_stead(tmp_path, event_rows())
    csv = path.with_suffix(".csv")
    csv.write_text(csv.read_text().rstrip("\n"))
    with caplog.at_level(logging.WARNING):
        assert len(open_dataset(path).trace_ids()) == 8
    assert "does not end with a line break" in caplog.text


# --------------------------------------------------------------------------- --skip_bad

@pytest.fixture(scope="module")
def data(tmp_path_factory):
    work = tmp_path_factory.mktemp("skip")
    files = synthetic.write_synthetic_dataset(work / "data", n_events=20, n_noise=0, seed=4,
                                              layouts=("datacollected",))
    return DataFiles(hdf5=str(files["datacollected"]), train=str(files["train"]),
                     valid=str(files["valid"]), test=str(files["test"]))


def _copy(data, tmp_path):
    hdf5 = tmp_path / "copy.hdf5"
    hdf5.write_bytes(open(data.hdf5, "rb").read())
    return DataFiles(hdf5=str(hdf5), train=data.train, valid=data.valid, test=data.test)


def _fit(files, out, **kw):
    return fit("magnitude", model="magnet", data=files, output_name=str(out), epochs=1,
               in_samples=256, model_kwargs={"conv_channels": [4, 4], "lstm_dim": 4},
               batch_size=4, augmentation=False, verbose=0, run_eagerly=True, skip_bad=True, **kw)


def test_skip_bad_counts_and_lists_every_trace_when_all_are_bad(data, tmp_path):
    files = _copy(data, tmp_path)
    train = list(load_split(files.train))
    with h5py.File(files.hdf5, "r+") as f:
        for trace in train:
            f[trace]["data"][10, 1] = np.nan
    with pytest.raises(BadTraceError) as err:
        _fit(files, tmp_path / "all")
    n = len(train)
    listed = tmp_path / "all_outputs" / "skipped_traces.csv"
    # the exact count, the first names, and the file listing them all
    assert f"{n} of the {n} traces are unusable" in str(err.value)
    assert "0 usable, fewer than the 4 of a batch" in str(err.value)
    assert str(listed) in str(err.value) and f"and {n - 3} more" in str(err.value)
    assert sum(trace in str(err.value) for trace in train) == 3  # the first three by name
    frame = pd.read_csv(listed)
    assert sorted(frame.trace_name) == sorted(train)
    assert set(frame.split) == {"training"}
    assert frame.reason.eq("non-finite samples (NaN or inf)").all()
    assert not list((tmp_path / "all_outputs").glob(".skipped_*"))


def test_skip_bad_lists_traces_found_bad_while_training(data, tmp_path):
    files = _copy(data, tmp_path)
    train, valid = list(load_split(files.train)), list(load_split(files.valid))
    with h5py.File(files.hdf5, "r+") as f:
        f[train[2]]["data"][50, 1] = np.inf
        f[valid[0]]["data"][:] = 0.0
        f[train[5]].attrs["magnitude"] = 42.0  # found from the metadata, before training
    result = _fit(files, tmp_path / "some")
    frame = pd.read_csv(tmp_path / "some_outputs" / "skipped_traces.csv")
    # every skipped trace, found from the metadata or while reading, as --help says
    assert sorted(zip(frame.split, frame.trace_name)) == sorted(
        [("training", train[2]), ("training", train[5]), ("validation", valid[0])])
    reasons = dict(zip(frame.trace_name, frame.reason))
    assert reasons[train[2]] == "non-finite samples (NaN or inf)"
    assert reasons[valid[0]] == "all samples are zero"
    assert "source_magnitude" in reasons[train[5]]
    assert result.history.skipped_traces.tolist() == [1]  # the training split's


# --------------------------------------------------------------------------- progress bar

def test_tester_log_lines_are_not_glued_to_the_progress_bar(data, tmp_path, capsys, monkeypatch):
    files = _copy(data, tmp_path)
    test = list(load_split(files.test))
    with h5py.File(files.hdf5, "r+") as f:
        f[test[1]]["data"][10, 2] = np.nan
    keras.utils.set_random_seed(0)
    model = tmp_path / "magnet.keras"
    get_model("magnet", **TINY_MAGNET).save(model)
    # the script configures logging as on a command line (pytest's capture handlers removed)
    monkeypatch.setattr(logging.root, "handlers", [])
    monkeypatch.setattr(logging.root, "level", logging.WARNING)
    scripts.tester_main("magnitude", ["--model", "magnet", "--input_model", str(model),
                                      "--input_hdf5", files.hdf5, "--input_testset", files.test,
                                      "--skip_bad", "--batch_size", "2", "--run_eagerly",
                                      "--output_name", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert f"Skipping bad trace: {files.hdf5}: trace '{test[1]}'" in err
    assert "Testing magnet.keras:" in err
    # each log line starts a line of its own, not "... ?batch/s]Skipping bad trace"
    assert not re.search(r"[^\r\n]Skipping bad trace", err)
