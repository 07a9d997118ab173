"""The ``utrans`` console command.

::

    utrans train N [options]     same as python 01_train/trainerN.py
    utrans test N [options]      same as python 02_test/testerN.py
    utrans read N [options]      same as python 03_read/readerN.py
    utrans compare --task magnitude --models utrans_vit_magnitude,seist_s_emg,magnet
    utrans annotate FILES --model seist_m_dpk_diting
    utrans list                  tasks, models by quantity, presets and their conventions

``utrans COMMAND --help`` shows each command's options.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile

__all__ = ["main", "quiet_framework", "script"]

_USAGE = __doc__.split("::", 1)[1].split("``utrans COMMAND", 1)[0].rstrip()


def _verbose(argv):
    """Whether ``--verbose 2`` (framework logs wanted) is among ``argv``."""
    for i, arg in enumerate(argv):
        if arg == "--verbose" and i + 1 < len(argv):
            return argv[i + 1] == "2"
        if arg.startswith("--verbose="):
            return arg.split("=", 1)[1] == "2"
    return False


@contextlib.contextmanager
def _stderr_to(path):
    """Send the process's file descriptor 2 (C++ logging included) to ``path`` for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "wb") as sink:
        os.dup2(sink.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def quiet_framework(verbose=False):
    """Silence TensorFlow/absl start-up chatter at a command's entry point.

    Call before TensorFlow is imported. Unless ``verbose``: TensorFlow's C++
    log level is set to errors only, the lines absl writes to stderr while
    TensorFlow loads are dropped (they are shown if the import fails), and
    TensorFlow's Python logger is kept to warnings and not propagated to the
    root logger (whose handler the command sets up), so nothing is printed
    twice. Called by the ``utrans`` command and the numbered scripts only,
    never by library modules.

    Args:
        verbose: keep the framework's messages.
    """
    if verbose or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "import.log")
        try:
            with _stderr_to(log):
                import keras  # noqa: F401
                import tensorflow as tf
        except ImportError:
            with open(log, encoding="utf-8", errors="replace") as fh:
                sys.stderr.write(fh.read())
            raise
    tf.get_logger().setLevel(logging.WARNING)
    tf.get_logger().propagate = False
    try:
        from absl import logging as absl_logging
    except ImportError:
        return
    absl_logging.set_verbosity(absl_logging.WARNING)


def script(kind, task_name, argv=None):
    """Entry point of the numbered scripts: ``script("train", "dpk")`` in ``01_train/trainer6.py``.

    Args:
        kind: ``"train"``, ``"test"`` or ``"read"``.
        task_name: the script's task.
        argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
        What the engine returns.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_framework(_verbose(argv))
    return _task_command(kind, [task_name, *argv])


def _task_command(kind, argv):
    from utrans.tasks import get_task

    if not argv or argv[0].startswith("-"):
        raise SystemExit(f"utrans {kind}: give the task number or name first, e.g. "
                         f"'utrans {kind} 1'. Tasks: 0-10 (utrans list).")
    try:
        task = get_task(argv[0])
    except KeyError as err:
        raise SystemExit(f"utrans {kind}: {err.args[0]}") from None
    if kind == "train":
        from utrans.train import trainer_main

        return trainer_main(task.name, argv[1:])
    from utrans.evaluate import reader_main, tester_main

    return (tester_main if kind == "test" else reader_main)(task.name, argv[1:])


def _list():
    from utrans import presets
    from utrans.models import list_models, model_conventions
    from utrans.tasks import QUANTITIES, TASKS

    print("Tasks (utrans train|test|read N):")
    for task in sorted(TASKS.values(), key=lambda t: t.number):
        print(f"  {task.number:>2}  {task.name:<15} {task.quantity:<15} default model "
              f"{task.default_model}")
    print("\nModels by quantity:")
    for quantity in QUANTITIES:
        print(f"  {quantity}:")
        for name in list_models(quantity):
            print(f"    {name:<28} {model_conventions(name).describe()}")
    print("\nPresets (published weights; utrans.presets.load_model(name)):")
    for name in presets.list_presets():
        p = presets.get_preset(name)
        conv = p.conventions
        print(f"  {name:<24} {p.model:<20} {p.dataset:<7} "
              f"{conv.get('sampling_rate', '')!s:>5} Hz")


def main(argv=None):
    """Dispatch ``utrans COMMAND ...``; returns what the command returns."""
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_framework(_verbose(argv))
    if not argv or argv[0] in ("-h", "--help", "help"):
        print("usage: utrans COMMAND [options]\n" + _USAGE)
        return None
    command, rest = argv[0], argv[1:]
    if command in ("train", "test", "read"):
        return _task_command(command, rest)
    if command == "compare":
        from utrans.compare import main as compare_main

        return compare_main(rest)
    if command == "annotate":
        from utrans.annotate import cli as annotate_cli

        return annotate_cli.main(rest, prog="utrans annotate")
    if command == "list":
        return _list()
    raise SystemExit(f"utrans: unknown command {command!r}.\nusage: utrans COMMAND [options]\n"
                     + _USAGE)


def console(argv=None):
    """The ``utrans`` console command: :func:`main` with its result turned into an exit code.

    Returns:
        The command's exit code when it returns one (``utrans annotate``), else 0
        (errors exit through ``SystemExit`` with their own code).
    """
    result = main(argv)
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


if __name__ == "__main__":
    sys.exit(console())
