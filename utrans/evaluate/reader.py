"""The reader: metrics and figures from a tester's ``predictions.csv``.

:func:`read` computes the task's metrics with the code of its evaluation kind
(:mod:`utrans.evaluate.kinds`), writes ``metrics.json`` and ``metrics.md``
beside the CSV and returns the metrics dict; every metric comes with the
trivial baseline it must beat (``baseline_*``).
"""

import logging
import math
import pathlib

import pandas as pd

from utrans.core.errors import EvaluationInputError
from utrans.core.io import output_dir, write_json, write_text
from utrans.core.tasks import get_task
from utrans.evaluate import kinds
from utrans.evaluate.common import markdown_table, read_training_config

logger = logging.getLogger(__name__)

__all__ = ["read", "summary_line"]


def summary_line(task, metrics):
    """``"p_f1_0.5s 0.912 (baseline 0.103)"``: the task's headline metric beside its baseline."""
    key, base, better = kinds.module(task.kind).headline(task)
    value, reference = metrics.get(key), metrics.get(base)

    def fmt(v):
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"

    return f"{key} {fmt(value)} (baseline {fmt(reference)}, {better} is better)"


def read(task, output_name=None, input_dir=None):
    """Compute metrics from the tester's CSV; write ``metrics.json``/``metrics.md``; return the dict.

    Args:
        task: a :class:`utrans.core.tasks.Task`, its name or its number.
        output_name: the trainer's ``--output_name`` (default: the task's).
        input_dir: folder of ``predictions.csv`` (default: ``<output_name>_outputs/test``).

    Returns:
        The metrics dict.
    """
    task = get_task(task)
    out = output_dir(output_name or task.output_name)
    results = pathlib.Path(input_dir) if input_dir else out / "test"
    csv = results / "predictions.csv"
    if not csv.exists():
        raise EvaluationInputError(f"{csv} not found: run 02_test/tester{task.number}.py first.")
    try:
        frame = pd.read_csv(csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise EvaluationInputError(f"{csv} is not a tester CSV ({err}); rerun "
                                   f"02_test/tester{task.number}.py.") from err
    config = read_training_config(out)
    test_config = results / "test_config.json"
    if test_config.exists() and not config:
        # A checkpoint tested without a training run: the baselines come from nothing.
        config = {}
    try:
        metrics = kinds.module(task.kind).read(frame, results, config, task)
    except KeyError as err:
        raise EvaluationInputError(f"{csv} lacks the column {err} of a {task.name} tester CSV; "
                                   f"rerun 02_test/tester{task.number}.py.") from err
    write_json(metrics, results / "metrics.json")
    table = markdown_table(metrics)
    line = summary_line(task, metrics)
    write_text(f"# {task.name} metrics ({csv})\n\n{line}\n\n" + table, results / "metrics.md")
    logger.info("\n%s", table)
    logger.info("%s", line)
    logger.info("Metrics and figures written to %s", results)
    return metrics
