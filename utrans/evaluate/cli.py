"""``02_test/testerN.py`` and ``03_read/readerN.py``: argparse over :func:`test` and :func:`read`."""

import argparse
import logging

from utrans.options import add_options

__all__ = ["reader_main", "tester_main"]


def _main(task_name, argv, prog, description, names, call):
    from utrans.evaluate.common import EvaluationInputError
    from utrans.formats import BadTraceError
    from utrans.presets import PresetUnavailableError
    from utrans.tasks import get_task

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    task = get_task(task_name)
    parser = argparse.ArgumentParser(prog=prog.format(n=task.number), description=description)
    add_options(parser, names, defaults={"output_name": task.output_name})
    args = vars(parser.parse_args(argv))
    try:
        return call(task, args)
    except (EvaluationInputError, BadTraceError, PresetUnavailableError,
            FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog}: interrupted; nothing was written (outputs are written "
                         "at the end). Run the same command again.\n")


def tester_main(task_name, argv=None):
    """Entry point of ``02_test/testerN.py``; returns the predictions DataFrame."""
    from utrans.evaluate.tester import TEST_OPTIONS, test

    def call(task, args):
        model = args.pop("model")
        return test(task, model=model, **args)

    return _main(task_name, argv, "tester{n}.py",
                 "Run a trained model (or a checkpoint / preset) over the test traces and write "
                 "predictions.csv, one row per trace.", ("model", *TEST_OPTIONS), call)


def reader_main(task_name, argv=None):
    """Entry point of ``03_read/readerN.py``; returns the metrics dict."""
    from utrans.evaluate.reader import read

    return _main(task_name, argv, "reader{n}.py",
                 "Compute metrics (beside their trivial baselines) and figures from a tester's "
                 "predictions.csv.", ("output_name", "input_dir"),
                 lambda task, args: read(task, **args))
