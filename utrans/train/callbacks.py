"""The callbacks a training run adds to survive faults: a verified backup, the history, the best model.

Every file is written atomically (:func:`utrans.core.io.atomic_write`: a
temporary name in its folder, flushed to disk, the usual permissions, then a
rename), so a crash or a full disk never leaves a half-written file.

* :class:`AtomicBestCheckpoint`: ``best.keras`` and ``best.weights.h5``.
* :class:`VerifiedBackupAndRestore`: Keras's ``BackupAndRestore`` with
  atomic states (weights, optimizer state, epoch and the history so far),
  the previous state kept until the new one is complete, and a resume that
  checks that a state loads completely: a damaged newest state falls back to
  the previous one (saying so); if none loads, the run stops and says how to
  start over instead of resuming from a partial state.
* :class:`HistoryCSV`: ``history.csv``, one row per completed epoch, epochs
  counted from 1 as the progress log prints them, rewritten atomically every
  epoch (a killed run never loses or half-writes a row; a resumed run gets
  the rows of its backup back).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import pathlib
import warnings

import keras
import numpy as np

from utrans.core.errors import BackupUnusableError
from utrans.core.io import atomic_write

logger = logging.getLogger(__name__)

__all__ = [
    "AtomicBestCheckpoint",
    "HistoryCSV",
    "VerifiedBackupAndRestore",
    "read_history",
    "write_history",
]

# --------------------------------------------------------------------------- history
def _row(epoch, logs):
    row = {"epoch": int(epoch)}
    for key, value in (logs or {}).items():
        try:
            row[key] = float(np.asarray(value))
        except (TypeError, ValueError):
            continue
    return row


def write_history(path, rows):
    """Write ``rows`` (dicts, one per epoch) to the CSV ``path`` atomically."""
    keys = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys or ["epoch"], restval="")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(path) as tmp:
        tmp.write_text(buf.getvalue())


def read_history(path):
    """The rows of a history CSV (``[]`` when absent or empty)."""
    path = pathlib.Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return [{k: (int(v) if k == "epoch" else float(v) if v not in ("", None) else np.nan)
                 for k, v in row.items()} for row in csv.DictReader(fh)]


class HistoryCSV(keras.callbacks.Callback):
    """``history.csv``: one row per completed epoch (``epoch`` from 1), rewritten atomically.

    Args:
        path: the CSV.
        rows: rows of the epochs already done (a resumed run passes its backup's).
        extra: ``extra() -> dict`` of further columns for the epoch's row
            (e.g. the traces skipped as bad).
    """

    def __init__(self, path, rows=(), extra=None):
        super().__init__()
        self.path = pathlib.Path(path)
        self.rows = [dict(r) for r in rows]
        self.extra = extra
        if self.rows:
            write_history(self.path, self.rows)
        elif self.path.exists():
            self.path.unlink()

    def on_epoch_end(self, epoch, logs=None):
        row = _row(epoch + 1, logs)
        if self.extra is not None:
            row.update(self.extra())
        self.rows = [r for r in self.rows if r["epoch"] < epoch + 1] + [row]
        write_history(self.path, self.rows)


# --------------------------------------------------------------------------- backup
class VerifiedBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Atomic, verified backups of the training state, kept two deep.

    After every epoch the state (weights with the optimizer state, and a
    JSON record of the epoch and the history so far) is written to
    ``state-<epoch>.weights.h5`` / ``state-<epoch>.json`` through temporary
    files; the JSON, written last, marks the state complete. The newest two
    complete states are kept. On resume the newest state is loaded and
    checked (every variable and the optimizer state restored, no warning
    about skipped variables); if it is damaged the previous one is used and
    the log says which; if neither loads, :class:`BackupUnusableError` is
    raised, naming the folder and the way to start over.

    Args:
        backup_dir: the backup folder.
        history: ``history -> None`` called with the restored history rows
            (to rebuild ``history.csv``).
        rows: ``rows() -> list of dict``, the history rows to store with each
            state (e.g. a :class:`HistoryCSV`'s, with its extra columns); by
            default the rows are built from the epoch logs.
        delete_checkpoint: remove the folder when training finishes.
    """

    def __init__(self, backup_dir, history=None, rows=None, delete_checkpoint=True):
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=delete_checkpoint)
        self.folder = pathlib.Path(backup_dir)
        self.on_restore = history
        self.history_rows = []
        self.rows = rows
        self.restored_epoch = 0

    # -- states
    def states(self):
        """Complete states in the folder, newest first: ``[(epoch, json path, weights path)]``."""
        out = []
        if not self.folder.is_dir():
            return out
        for meta in self.folder.glob("state-*.json"):
            try:
                epoch = int(meta.name[len("state-"):-len(".json")])
            except ValueError:
                continue
            weights = self.folder / f"state-{epoch}.weights.h5"
            if weights.is_file():
                out.append((epoch, meta, weights))
        return sorted(out, reverse=True)

    def _save_model(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        epoch = self._current_epoch
        with atomic_write(self.folder / f"state-{epoch}.weights.h5") as tmp:
            self.model.save_weights(tmp)
        record = {"epoch": epoch, "history": self.history_rows}
        with atomic_write(self.folder / f"state-{epoch}.json") as tmp:
            tmp.write_text(json.dumps(record))
        for old_epoch, meta, weights in self.states()[2:]:
            meta.unlink(missing_ok=True)
            weights.unlink(missing_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        if self.rows is not None:
            self.history_rows = [dict(r) for r in self.rows()]
        else:
            self.history_rows = [r for r in self.history_rows if r["epoch"] < epoch + 1]
            self.history_rows.append(_row(epoch + 1, logs))
        super().on_epoch_end(epoch, logs)

    # -- restore
    def _load_state(self, meta, weights):
        record = json.loads(meta.read_text())
        epoch = int(record["epoch"])
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.model.load_weights(weights)
        skipped = [str(w.message) for w in caught if "skip" in str(w.message).lower()
                   or "mismatch" in str(w.message).lower()]
        if skipped:
            raise ValueError("incomplete: " + skipped[0].splitlines()[0])
        return epoch, record.get("history", [])

    def on_train_begin(self, logs=None):
        states = self.states()
        if not states:
            return
        failures = []
        for epoch, meta, weights in states:
            try:
                epoch, history = self._load_state(meta, weights)
            except (OSError, ValueError, KeyError, json.JSONDecodeError) as err:
                failures.append(f"state of epoch {epoch} ({weights.name}): {err}")
                continue
            if failures:
                logger.warning("The newest backup is damaged (%s); resuming from the previous "
                               "one, epoch %d.", "; ".join(failures), epoch)
            self.model._initial_epoch = epoch
            self._current_epoch = epoch
            self.restored_epoch = epoch
            self.history_rows = [r for r in history if r.get("epoch", 0) <= epoch]
            if self.on_restore is not None:
                self.on_restore(self.history_rows)
            logger.info("Resumed from the backup of epoch %d in %s", epoch, self.folder)
            return
        raise BackupUnusableError(
            f"No backup state in {self.folder} loads completely ({'; '.join(failures)}). "
            "Rerun with --no_resume (resume=False) to start over, or remove that folder.")


class AtomicBestCheckpoint(keras.callbacks.Callback):
    """Save the best model as ``best.keras`` and ``best.weights.h5``, atomically.

    Args:
        models_dir: folder of the two files.
        monitor: the logged quantity to minimise (default ``val_loss``).
        best: the best value so far (a resumed run takes the one of its
            restored history, :meth:`restore`).
    """

    def __init__(self, models_dir, monitor="val_loss", best=np.inf):
        super().__init__()
        self.models_dir = pathlib.Path(models_dir)
        self.monitor = monitor
        self.best = float(best)

    def restore(self, rows):
        """Take the best value of the restored history ``rows``."""
        values = [r.get(self.monitor, np.nan) for r in rows]
        values = [v for v in values if np.isfinite(v)]
        if values:
            self.best = min(self.best, float(min(values)))

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not np.isfinite(value) or value >= self.best:
            return
        previous, self.best = self.best, float(value)
        for name, save in (("best.keras", self.model.save),
                           ("best.weights.h5", self.model.save_weights)):
            with atomic_write(self.models_dir / name) as tmp:
                save(tmp)
        logger.info("Epoch %d: %s improved from %.5g to %.5g; saved %s", epoch + 1,
                    self.monitor, previous, self.best, self.models_dir / "best.keras")
