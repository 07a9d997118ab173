"""The ``utrans`` console command: one entry per job, each a thin argparse skin over the library.

::

    utrans train N [options]     same as python 01_train/trainerN.py
    utrans test N [options]      same as python 02_test/testerN.py
    utrans read N [options]      same as python 03_read/readerN.py
    utrans compare --task magnitude --models utrans_vit_magnitude,seist_s_emg,magnet
    utrans annotate FILES --model seist_m_dpk_diting
    utrans export MODEL --format savedmodel|onnx|litert --output DIR
    utrans stream --seedlink HOST:PORT --select "XX.*.*.HH?" --model seist_m_dpk_diting
    utrans stream --sds ROOT --follow --network XX --model seist_m_dpk_diting
    utrans stream-demo           a replay server on a synthetic network, picked live
    utrans catalog SDS_ROOT --inventory stations.xml --start DAY --end DAY --model seist_m_dpk_diting
    utrans list                  tasks, models by quantity, presets and their conventions

``utrans COMMAND --help`` shows each command's options.

The command line is the top layer of the package: nothing below imports it.
Each command's module is imported only when the command runs, and holds
little more than its parser; what the run needs (the engines, ObsPy, Dask,
the deep learning framework) is imported once the arguments are parsed (the
``*_run`` modules through :func:`run_job`), so ``utrans --help`` and
``utrans COMMAND --help`` answer at once.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import sys
import tempfile
import warnings

__all__ = ["InputError", "console", "main", "overlap_option", "quiet_framework", "run_job",
           "script"]

_USAGE = __doc__.split("::", 1)[1].split("``utrans COMMAND", 1)[0].rstrip()

#: Command -> "module:function" run with the remaining arguments.
COMMANDS = {
    "train": "utrans.cli.scripts:train",
    "test": "utrans.cli.scripts:test",
    "read": "utrans.cli.scripts:read",
    "compare": "utrans.cli.compare:main",
    "annotate": "utrans.cli.annotate:utrans_annotate",
    "export": "utrans.cli.export:main",
    "stream": "utrans.cli.stream:utrans_stream",
    "stream-demo": "utrans.cli.stream:utrans_stream_demo",
    "catalog": "utrans.cli.catalog:main",
    "list": "utrans.cli.listing:main",
}


class InputError(Exception):
    """Bad command-line input: reported in one line, exit code 2."""


def overlap_option(value):
    """``--overlap``: the command line reads a float; whole numbers >= 1 are sample counts."""
    if value is None or value < 1 or not float(value).is_integer():
        return value
    return int(value)


def verbose_requested(argv):
    """Whether framework logs are wanted: ``--verbose 2`` (scripts) or ``--verbose`` (annotate, stream)."""
    for i, arg in enumerate(argv):
        if arg == "--verbose":
            return i + 1 >= len(argv) or argv[i + 1] in ("2",) or argv[i + 1].startswith("-")
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
    """Silence TensorFlow/absl start-up chatter; call before TensorFlow is imported.

    Unless ``verbose``: TensorFlow's C++ log level is set to errors only, the
    lines absl writes to stderr while TensorFlow loads are dropped (they are
    shown if the import fails), and TensorFlow's Python logger is kept to
    warnings and not propagated to the root logger (whose handler the command
    sets up), so nothing is printed twice. Called by the command line only,
    never by library modules.

    Nothing is done where TensorFlow is not installed (exported models run
    without it).

    Args:
        verbose: keep the framework's messages.
    """
    if verbose or "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "import.log")
        try:
            with _stderr_to(log):
                tf = importlib.import_module("tensorflow")
        except ImportError:
            with open(log, encoding="utf-8", errors="replace") as fh:
                sys.stderr.write(fh.read())
            raise
    tf.get_logger().setLevel(logging.WARNING)
    tf.get_logger().propagate = False
    try:
        absl_logging = importlib.import_module("absl.logging")
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
    if not _asks_help(argv):
        quiet_framework(verbose_requested(argv))
    return run_command(COMMANDS[kind], [task_name, *argv])


def _asks_help(argv):
    """Whether the arguments ask for ``--help`` (answered without loading the framework)."""
    return any(a in ("-h", "--help") for a in argv)


def run_command(target, argv):
    """Import ``"module:function"`` and call it with ``argv`` (commands load what they need)."""
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)(argv)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def run_job(prog, job, args, interrupted=None):
    """Run a command's job on its parsed arguments, its failures reported in one line each.

    Python warnings are printed as ``warning: ...`` lines while it runs; an
    :class:`InputError` ends it with ``PROG: error: ...`` and exit code 2, and
    Ctrl-C with ``PROG: interrupted; ...`` and exit code 130.

    Args:
        prog: the command's name, which starts its error lines.
        job: ``"module:function"`` called with ``args``; the module (with the
            libraries the job needs) is imported only now, so that the
            command's parser and ``--help`` do without them.
        args: the parsed arguments.
        interrupted: what the Ctrl-C line says after ``interrupted;`` (``None``:
            Ctrl-C is not caught).

    Returns:
        The job's exit code, or 2 or 130.
    """
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return run_command(job, args)
    except InputError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        print(f"{prog}: interrupted; {interrupted}", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = previous


def main(argv=None):
    """Dispatch ``utrans COMMAND ...``; returns what the command returns."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print("usage: utrans COMMAND [options]\n" + _USAGE)
        return None
    if argv[0] in ("-V", "--version"):
        print(f"utrans {importlib.import_module('utrans').__version__}")
        return None
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        raise SystemExit(f"utrans: unknown command {command!r}.\nusage: utrans COMMAND "
                         f"[options]\n{_USAGE}")
    # annotate quiets the framework itself, once it knows whether its models need one
    if not _asks_help(rest) and command not in ("list", "annotate"):
        quiet_framework(verbose_requested(rest))
    return run_command(COMMANDS[command], rest)


def console(argv=None):
    """The ``utrans`` console command: :func:`main` with its result turned into an exit code.

    Returns:
        The command's exit code when it returns one (``utrans annotate``), else 0
        (errors exit through ``SystemExit`` with their own code); 130 after Ctrl-C
        that the command did not handle itself (one line, no traceback).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        result = main(argv)
    except KeyboardInterrupt:
        name = f"utrans {argv[0]}" if argv else "utrans"
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    return result if isinstance(result, int) and not isinstance(result, bool) else 0
