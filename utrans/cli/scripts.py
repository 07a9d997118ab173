"""The numbered scripts and ``utrans train|test|read N``: argparse over fit, test and read.

``01_train/trainerN.py``, ``02_test/testerN.py`` and ``03_read/readerN.py``
call :func:`utrans.cli.script`, which loads this module when a script runs;
every option is defined once in :mod:`utrans.core.options`, so the parsers
(and ``--help``) need neither the engines nor the deep learning framework,
which load once the arguments are parsed. Bad input ends with one line naming it and exit
code 2; Ctrl-C with one line saying what was done and that the same command
resumes (exit code 130).
"""

from __future__ import annotations

import argparse
import errno
import logging

from tqdm.auto import tqdm

from utrans.core.errors import UtransError
from utrans.core.io import output_dir
from utrans.core.options import DATA_OPTIONS, OPTIONS, TEST_OPTIONS, TRAIN_OPTIONS, add_options
from utrans.core.tasks import get_task

__all__ = ["ConsoleHandler", "read", "reader_main", "test", "tester_main", "train",
           "trainer_main"]


class ConsoleHandler(logging.StreamHandler):
    """Log lines on stderr that are not glued to a progress bar.

    Each line goes through ``tqdm.write``, which clears the open tqdm bars
    (the tester's), writes the line and draws them again; on a terminal the
    line also starts with a carriage return and erase-line, so that a Keras
    progress bar (redrawn in place on its line) is not left in front of it.
    """

    def emit(self, record):
        try:
            text = self.format(record)
            if getattr(self.stream, "isatty", lambda: False)():
                text = "\r\x1b[K" + text
            tqdm.write(text, file=self.stream)
            self.flush()
        except (OSError, ValueError, TypeError):
            self.handleError(record)


def _log_to_console():
    """INFO lines, message only, through :class:`ConsoleHandler` (unless logging is configured)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = ConsoleHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _task_and_rest(kind, argv):
    """``(task name, remaining arguments)`` of ``utrans KIND N ...``."""
    if not argv or argv[0].startswith("-"):
        raise SystemExit(f"utrans {kind}: give the task number or name first, e.g. "
                         f"'utrans {kind} 1'. Tasks: 0-10 (utrans list).")
    try:
        return get_task(argv[0]).name, argv[1:]
    except KeyError as err:
        raise SystemExit(f"utrans {kind}: {err.args[0]}") from None


def train(argv):
    """``utrans train N ...``."""
    return trainer_main(*_task_and_rest("train", argv))


def test(argv):
    """``utrans test N ...``."""
    return tester_main(*_task_and_rest("test", argv))


def read(argv):
    """``utrans read N ...``."""
    return reader_main(*_task_and_rest("read", argv))


def _train_parser(task):
    parser = argparse.ArgumentParser(
        prog=f"trainer{task.number}.py",
        description=task.description + " With no data options: a short demo run on a synthetic "
                    f"dataset written into the output folder. Accepted models: every model "
                    f"measuring {task.quantity} (default {task.default_model}; 'utrans list' "
                    "names them).",
    )
    add_options(parser, DATA_OPTIONS + TRAIN_OPTIONS,
                defaults={"model": task.default_model, "output_name": task.output_name})
    parser.add_argument("--model", default=task.default_model, help=OPTIONS["model"].help)
    return parser


def _resume_hint(args, task):
    from utrans.train.callbacks import VerifiedBackupAndRestore  # noqa: PLC0415 - Keras, lazy for start-up time

    backup = output_dir(args["output_name"] or task.output_name) / "backup"
    states = VerifiedBackupAndRestore(backup).states()
    done = states[0][0] if states else 0
    return (f"{done} epoch(s) completed" + (f" and saved in {backup}" if done else "")
            + f". Run the same command again to resume from epoch {done + 1}.")


def trainer_main(task_name, argv=None, callbacks=()):
    """Entry point of ``01_train/trainerN.py``: parse ``argv`` and :func:`utrans.train.fit`.

    Args:
        task_name: a task of :mod:`utrans.core.tasks`.
        argv: command-line arguments (default ``sys.argv[1:]``).
        callbacks: extra Keras callbacks for ``fit``.

    Returns:
        The :class:`utrans.train.FitResult`.
    """

    _log_to_console()
    task = get_task(task_name)
    parser = _train_parser(task)
    args = vars(parser.parse_args(argv))
    from utrans.train import DataFiles, fit  # noqa: PLC0415 - the framework: lazy for start-up time

    files = {k: args.pop(f"input_{k}" if k == "hdf5" else f"input_{k}set")
             for k in ("hdf5", "train", "valid", "test")}
    data = DataFiles(**files) if files["hdf5"] is not None else None
    if data is None and any(v is not None for v in files.values()):
        parser.exit(2, f"{parser.prog}: error: --input_trainset/--input_validset need "
                       "--input_hdf5 too.\n")
    model = args.pop("model")
    try:
        return fit(task, model=model, data=data, callbacks=callbacks, **args)
    except (UtransError, FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog}: interrupted. {_resume_hint(args, task)}\n")
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        parser.exit(2, f"{parser.prog}: error: no space left on the device while writing "
                       f"({err.filename or 'a checkpoint'}); nothing was left half-written. "
                       f"{_resume_hint(args, task)}\n")


def _main(task_name, argv, prog, description, names, call):
    _log_to_console()
    task = get_task(task_name)
    parser = argparse.ArgumentParser(prog=prog.format(n=task.number), description=description)
    add_options(parser, names, defaults={"output_name": task.output_name})
    args = vars(parser.parse_args(argv))
    try:
        return call(task, args)
    except (UtransError, FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog}: interrupted; nothing was written (outputs are written "
                         "at the end). Run the same command again.\n")


def tester_main(task_name, argv=None):
    """Entry point of ``02_test/testerN.py``; returns the predictions DataFrame."""

    def call(task, args):
        from utrans.evaluate import test  # noqa: PLC0415 - the framework: lazy for start-up time

        model = args.pop("model")
        return test(task, model=model, **args)

    return _main(task_name, argv, "tester{n}.py",
                 "Run a trained model (or a checkpoint / preset) over the test traces and write "
                 "predictions.csv, one row per trace.", ("model", *TEST_OPTIONS), call)


def reader_main(task_name, argv=None):
    """Entry point of ``03_read/readerN.py``; returns the metrics dict."""

    def call(task, args):
        from utrans.evaluate import read  # noqa: PLC0415 - the framework: lazy for start-up time

        return read(task, **args)

    return _main(task_name, argv, "reader{n}.py",
                 "Compute metrics (beside their trivial baselines) and figures from a tester's "
                 "predictions.csv.", ("output_name", "input_dir"), call)
