"""``utrans compare``: train, test and read several models of one quantity on the same data."""

from __future__ import annotations

import argparse
import json
import logging

from utrans.core.errors import UtransError
from utrans.core.options import OPTIONS, add_options, positive_int
from utrans.core.tasks import QUANTITIES, TASKS

__all__ = ["main"]


def main(argv=None):
    """``utrans compare``: the command line of :func:`utrans.compare.compare`."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(
        prog="utrans compare",
        description="Train, test and read several models of one quantity on the same data with "
                    "the same seed; write comparison.csv/.md/.png. With no data options: the "
                    "synthetic demo dataset (a few minutes).")
    parser.add_argument("--task", required=True,
                        help=f"Quantity ({', '.join(QUANTITIES)}) or task name/number "
                             f"({', '.join(TASKS)}).")
    parser.add_argument("--models", required=True,
                        help="Comma-separated registered models of the quantity.")
    parser.add_argument("--n_boot", type=positive_int, default=1000,
                        help="Bootstrap resamples of the metric interval (default: %(default)s).")
    names = ("input_hdf5", "input_trainset", "input_validset", "input_testset", "output_name",
             "epochs", "batch_size", "learning_rate", "patience", "seed", "max_traces",
             "skip_bad", "no_augmentation", "run_eagerly", "verbose")
    add_options(parser, [n for n in names if n in OPTIONS and n != "no_augmentation"] +
                ["augmentation"], defaults={"output_name": "compare", "verbose": 0})
    args = {k: v for k, v in vars(parser.parse_args(argv)).items()}
    # The framework and the engines: lazy for start-up time (``--help`` needs neither).
    from utrans.compare import compare  # noqa: PLC0415 - the framework: lazy for start-up time
    from utrans.train import DataFiles  # noqa: PLC0415 - the framework: lazy for start-up time

    files = {k: args.pop(f"input_{k}" if k == "hdf5" else f"input_{k}set")
             for k in ("hdf5", "train", "valid", "test")}
    data = DataFiles(**files) if files["hdf5"] else None
    task, models = args.pop("task"), args.pop("models")
    given = {k: v for k, v in args.items() if v is not None and v != OPTIONS.get(
        k, None) and (k not in OPTIONS or v != OPTIONS[k].default)}
    given.setdefault("verbose", args["verbose"])
    try:
        table = compare(task, models, data, **given)
    except (UtransError, FileNotFoundError, KeyError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        parser.exit(2, f"{parser.prog}: error: {message}\n")
    print(json.dumps(table.drop(columns=["run"]).to_dict(orient="records"), indent=1,
                     default=float))
    return table
