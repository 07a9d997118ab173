"""Faults during training and testing: nothing lost, nothing resumed from a partial state."""

import errno
import logging
import os
import shutil
import stat

import h5py
import keras
import numpy as np
import pandas as pd
import pytest

from script_runner import run_script
from utrans import evaluate, synthetic, train
from utrans.core.errors import BackupUnusableError, CheckpointMismatchError
from utrans.core.io import atomic_write
from utrans.formats import load_split
from utrans.loading import load_weights
from utrans.models import get_model
from utrans.train import DataFiles, fit
from utrans.train.callbacks import VerifiedBackupAndRestore

TINY = dict(model="magnet", in_samples=256, model_kwargs={"conv_channels": [4, 4], "lstm_dim": 4},
            batch_size=4, max_traces=8, augmentation=False, verbose=0, run_eagerly=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    work = tmp_path_factory.mktemp("faults")
    files = synthetic.write_synthetic_dataset(work / "data", n_events=20, n_noise=0, seed=4,
                                              layouts=("datacollected",))
    return DataFiles(hdf5=str(files["datacollected"]), train=str(files["train"]),
                     valid=str(files["valid"]), test=str(files["test"]))


class StopAfter(keras.callbacks.Callback):
    """Interrupt training (as Ctrl-C would) once epoch ``n`` is complete."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.n:
            raise KeyboardInterrupt


def _run(data, out, epochs, **kw):
    opts = dict(TINY)
    model = opts.pop("model")
    return fit("magnitude", model=model, data=data, output_name=str(out), epochs=epochs,
               **{**opts, **kw})


def test_interrupted_run_resumes_with_its_history(data, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _run(data, tmp_path / "r", 3, callbacks=[StopAfter(2)])
    out = tmp_path / "r_outputs"
    history = pd.read_csv(out / "history.csv")
    assert history.epoch.tolist() == [1, 2]  # counted from 1, as the progress log
    states = VerifiedBackupAndRestore(out / "backup").states()
    assert [s[0] for s in states] == [2, 1]  # the newest two complete states
    result = _run(data, tmp_path / "r", 3)
    assert result.history.epoch.tolist() == [1, 2, 3]
    np.testing.assert_allclose(result.history.loss[:2], history.loss, rtol=1e-6)
    assert not (out / "backup").exists()  # removed after a finished run


def test_damaged_newest_backup_falls_back_and_says_so(data, tmp_path, caplog):
    with pytest.raises(KeyboardInterrupt):
        _run(data, tmp_path / "d", 3, callbacks=[StopAfter(2)])
    backup = tmp_path / "d_outputs" / "backup"
    newest = backup / "state-2.weights.h5"
    newest.write_bytes(newest.read_bytes()[:2000])  # a full disk cut the write short
    with caplog.at_level(logging.WARNING):
        result = _run(data, tmp_path / "d", 3)
    assert "newest backup is damaged" in caplog.text and "epoch 1" in caplog.text
    assert result.history.epoch.tolist() == [1, 2, 3]


def test_no_loadable_backup_stops_with_a_clear_error(data, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _run(data, tmp_path / "u", 3, callbacks=[StopAfter(2)])
    backup = tmp_path / "u_outputs" / "backup"
    for weights in backup.glob("state-*.weights.h5"):
        weights.write_bytes(b"\x89HDF\r\n")
    with pytest.raises(BackupUnusableError, match="--no_resume"):
        _run(data, tmp_path / "u", 3)
    assert _run(data, tmp_path / "u", 1, resume=False).history.epoch.tolist() == [1]


def test_full_disk_during_backup_keeps_the_previous_state(data, tmp_path, monkeypatch):
    class FullDisk(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                def refuse(*args, **kwargs):
                    raise OSError(errno.ENOSPC, "No space left on device")
                monkeypatch.setattr(self.model, "save_weights", refuse)

    # The engine's callbacks run first: epoch 1's state is complete, epoch 2's write fails.
    with pytest.raises(OSError, match="No space left"):
        _run(data, tmp_path / "f", 3, callbacks=[FullDisk()])
    backup = tmp_path / "f_outputs" / "backup"
    assert [s[0] for s in VerifiedBackupAndRestore(backup).states()] == [1]
    assert not [p for p in backup.iterdir() if p.name.startswith(".tmp-")]
    monkeypatch.undo()
    assert _run(data, tmp_path / "f", 2).history.epoch.tolist() == [1, 2]


def test_stale_temporaries_are_removed(data, tmp_path):
    models = tmp_path / "s_outputs" / "models"
    models.mkdir(parents=True)
    stale = models / ".tmp-abc123.best.keras"
    stale.write_bytes(b"half a model")
    _run(data, tmp_path / "s", 1)
    assert not stale.exists()


def test_outputs_keep_the_usual_permissions(data, tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "p"
        _run(data, out, 1)
        frame = evaluate.test("magnitude", output_name=str(out), run_eagerly=True)
    finally:
        os.umask(old)
    for path in (tmp_path / "p_outputs" / "models" / "best.keras",
                 tmp_path / "p_outputs" / "models" / "best.weights.h5",
                 tmp_path / "p_outputs" / "history.csv", frame.attrs["path"]):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def _tiny_magnet_script_exit(monkeypatch, callback, data, output):
    """Exit code of ``trainer8.py --model magnet`` (tiny, 3 epochs) run with ``callback``
    added to the fit."""
    real_fit = train.fit

    def with_callback(*args, **kwargs):
        kwargs["callbacks"] = [callback]
        return real_fit(*args, **kwargs)

    # the fit the numbered scripts call (imported from utrans.train when a script runs)
    monkeypatch.setattr(train, "fit", with_callback)
    with pytest.raises(SystemExit) as exc:
        run_script("01_train/trainer8.py", "--model", "magnet", "--input_hdf5", data.hdf5,
                   "--input_trainset", data.train, "--input_validset", data.valid,
                   "--output_name", output, "--epochs", 3, "--in_samples", 256,
                   "--batch_size", 4, "--max_traces", 8, "--verbose", 0, "--run_eagerly",
                   "--model_kwargs", '{"conv_channels": [4, 4], "lstm_dim": 4}')
    return exc.value.code


def test_ctrl_c_prints_one_line_with_the_resume_epoch(data, tmp_path, capsys, monkeypatch):
    assert _tiny_magnet_script_exit(monkeypatch, StopAfter(1), data, tmp_path / "c") == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "interrupted" in err[0] and "resume from epoch 2" in err[0]
    assert "Traceback" not in err[0]


def test_impossible_output_path_is_one_line(data, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as exc:
        run_script("01_train/trainer8.py", "--model", "magnet", "--input_hdf5", data.hdf5,
                   "--input_trainset", data.train, "--input_validset", data.valid,
                   "--output_name", blocker / "run")
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot create" in err[0] and str(blocker) in err[0]


def test_fake_and_foreign_weight_files_are_named(tmp_path, reference):
    model = get_model("seist_s_emg", in_samples=256)
    before = [w.numpy() for w in model.weights]
    fake = tmp_path / "fake.keras"
    fake.write_text("hello")
    with pytest.raises(CheckpointMismatchError, match=r"fake.keras is not a .keras file"):
        load_weights(model, fake)
    (tmp_path / "fake.weights.h5").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointMismatchError, match="is not HDF5"):
        load_weights(model, tmp_path / "fake.weights.h5")
    other = get_model("magnet", in_samples=256)
    other.save(tmp_path / "magnet.keras")
    with pytest.raises(CheckpointMismatchError) as err:
        load_weights(model, tmp_path / "magnet.keras")
    msg = str(err.value)
    assert "a MagNet named 'magnet'" in msg and len(msg) < 600 and "left unchanged" in msg
    for b, w in zip(before, model.weights):
        np.testing.assert_array_equal(b, w.numpy())
    with pytest.raises(CheckpointMismatchError) as err:
        load_weights(model, reference("baselines/phasenet.pth"))
    assert "looks like a phasenet checkpoint" in str(err.value)
    assert len(str(err.value).splitlines()) == 6


def test_tester_names_a_fake_model_file(tmp_path, capsys, data):
    fake = tmp_path / "best.keras"
    fake.write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(SystemExit) as exc:
        run_script("02_test/tester8.py", "--output_name", tmp_path / "none", "--input_model",
                   fake, "--input_hdf5", data.hdf5, "--input_testset", data.test)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert str(fake) in err and "not found" not in err.lower()


# --------------------------------------------------------------------------- bad traces
def _copy_dataset(data, tmp_path):
    target = tmp_path / "data"
    shutil.copytree(os.path.dirname(data.hdf5), target)
    return DataFiles(hdf5=str(target / os.path.basename(data.hdf5)),
                     train=str(target / os.path.basename(data.train)),
                     valid=str(target / os.path.basename(data.valid)),
                     test=str(target / os.path.basename(data.test)))


class PoisonAfter(keras.callbacks.Callback):
    """After epoch ``n``, write NaN into the waveform of ``trace`` on disk (as a disk error would).

    The bytes are written straight into the file (the dataset is stored
    contiguously), since the training run holds the HDF5 file open.
    """

    def __init__(self, n, hdf5, trace):
        super().__init__()
        self.n, self.hdf5 = n, hdf5
        with h5py.File(hdf5, "r") as f:
            self.offset = f[trace]["data"].id.get_offset()

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.n:
            fd = os.open(self.hdf5, os.O_WRONLY)
            try:
                os.pwrite(fd, np.array([np.nan], dtype="<f4").tobytes(), self.offset + 4 * 300)
            finally:
                os.close(fd)


def test_bad_trace_mid_run_is_one_line_and_keeps_the_finished_epoch(data, tmp_path, capsys,
                                                                    monkeypatch):
    files = _copy_dataset(data, tmp_path)
    trace = load_split(files.train)[3]
    code = _tiny_magnet_script_exit(monkeypatch, PoisonAfter(1, files.hdf5, trace), files,
                                    tmp_path / "b")
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and trace in err[0] and files.hdf5 in err[0] and "non-finite" in err[0]
    out = tmp_path / "b_outputs"
    assert pd.read_csv(out / "history.csv").epoch.tolist() == [1]
    assert (out / "models" / "best.keras").exists()


def test_skip_bad_training_counts_the_skipped_traces(data, tmp_path):
    files = _copy_dataset(data, tmp_path)
    trace = load_split(files.train)[2]
    with h5py.File(files.hdf5, "r+") as f:
        f[trace]["data"][50, 1] = np.inf
    result = _run(files, tmp_path / "k", 2, skip_bad=True)
    assert result.history.skipped_traces.tolist() == [1, 1]  # left out of both epochs


def test_bad_validation_id_stops_before_training(data, tmp_path, capsys):
    files = _copy_dataset(data, tmp_path)
    ids = list(load_split(files.valid)) + ["NOT.THERE_20200101000000_EV"]
    np.save(files.valid, np.array(ids))
    with pytest.raises(SystemExit) as exc:
        run_script("01_train/trainer8.py", "--model", "magnet", "--input_hdf5", files.hdf5,
                   "--input_trainset", files.train, "--input_validset", files.valid,
                   "--output_name", tmp_path / "v", "--in_samples", 256, "--verbose", 0)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "NOT.THERE_20200101000000_EV" in err and files.valid in err
    assert not (tmp_path / "v_outputs" / "history.csv").exists()


def test_tester_skip_bad_writes_each_usable_trace_once(data, tmp_path):
    files = _copy_dataset(data, tmp_path)
    _run(files, tmp_path / "t", 1)
    test_ids = load_split(files.test)
    with h5py.File(files.hdf5, "r+") as f:
        f[test_ids[1]]["data"][10, 2] = np.nan
        f[test_ids[1]].attrs["magnitude"] = 42.0  # out of range, found from the metadata
        f[test_ids[2]]["data"][10, 2] = np.nan
    frame = evaluate.test("magnitude", output_name=str(tmp_path / "t"), run_eagerly=True,
                          batch_size=4, skip_bad=True)
    assert sorted(frame.trace_name) == sorted(set(test_ids) - {test_ids[1], test_ids[2]})
    assert frame.trace_name.is_unique
    skipped = pd.read_csv(tmp_path / "t_outputs" / "test" / "skipped_traces.csv")
    assert set(skipped.trace_name) == {test_ids[1], test_ids[2]}
    assert skipped.reason.str.contains("magnitude").any()
    assert skipped.reason.str.contains("non-finite").any()
