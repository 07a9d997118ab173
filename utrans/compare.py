"""Compare models of one quantity on the same data: one table, one figure.

:func:`compare` trains, tests and reads each model on the same splits with
the same seed, through :func:`utrans.train.fit`, :func:`utrans.evaluate.test`
and :func:`utrans.evaluate.read`, and writes into one folder::

    <output_name>_outputs/
        data/                   the synthetic dataset (no data given)
        <model>_outputs/        each model's run (models/, history.csv, test/)
        comparison.csv          one row per model
        comparison.md
        comparison.png

Per model the table holds the task's headline metric with its 95% bootstrap
interval (traces resampled with replacement, 1000 times), the trivial
baseline's value, the parameter count, the training time per epoch and the
end-to-end inference throughput of the tester (traces/s, data reading
included), all measured in the same run. The command line is
``utrans compare --task magnitude --models utrans_vit_magnitude,seist_s_emg,magnet``.

With no data, the models train on the embedded synthetic dataset (written
once, the same for every model) with the small demo settings of each model's
own script (its epochs, learning rate, window and demo size); with data, they
train with the options given (the same for every model).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import pathlib
import time

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["bootstrap_interval", "compare", "main"]


def bootstrap_interval(frame, score, n_boot=1000, seed=0, level=0.95):
    """Percentile bootstrap interval of ``score(frame)`` over the frame's rows.

    Args:
        frame: the predictions DataFrame (one row per trace).
        score: ``score(frame) -> float``.
        n_boot: resamples.
        seed: random seed.
        level: interval coverage.

    Returns:
        ``(low, high)`` (NaN when the frame is empty).
    """
    if not len(frame):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(frame), len(frame))
        values.append(score(frame.iloc[idx].reset_index(drop=True)))
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not values.size:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0 * 100.0
    return float(np.percentile(values, tail)), float(np.percentile(values, 100.0 - tail))


def _home_task(model, quantity, default):
    """The task whose script trains ``model`` by default (its demo settings), else ``default``."""
    from utrans.tasks import tasks_of

    for task in tasks_of(quantity):
        if task.default_model == model:
            return task
    return default


def _demo_options(model, task, home):
    """fit() options reproducing the demo settings of ``model``'s own script."""
    from utrans.resolve import plan_conventions

    demo = home.demo
    opts = {k: demo[k] for k in ("epochs", "batch_size", "learning_rate", "patience")
            if k in demo}
    conv = plan_conventions(model, home, demo=True)
    defaults = plan_conventions(model, home)
    for key in ("in_samples", "sampling_rate", "p_position_ratio"):
        if getattr(conv, key) != getattr(defaults, key):
            opts[key] = getattr(conv, key)
    if model == home.default_model:
        opts["demo_size"] = True
        if demo.get("adapter_options"):
            opts["adapter_options"] = dict(demo["adapter_options"])
    if demo.get("augmentation") is False:
        opts["augmentation"] = False
    return opts


def _normalise_models(models):
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    if isinstance(models, dict):
        return list(models.items())
    out = []
    for m in models:
        out.append(m if isinstance(m, tuple) else (m, {}))
    if not out:
        raise ValueError("compare needs at least one model. Received: models=[]")
    names = [m for m, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"compare: each model once. Received: models={names}")
    return out


def compare(task, models, data=None, *, output_name="compare", seed=0, n_boot=1000,
            **options):
    """Train, test and read several models of one quantity on the same data; returns the table.

    Args:
        task: a task (name, number or :class:`utrans.tasks.Task`) or a quantity
            name (``"magnitude"``: its first script's task).
        models: model names (``["utrans_vit_magnitude", "seist_s_emg", "magnet"]``,
            or a comma-separated string), or ``{name: {fit options}}`` /
            ``[(name, {fit options})]`` for per-model options (tiny configs).
        data: :class:`utrans.train.DataFiles` or dict with ``hdf5``, ``train``,
            ``valid``, ``test``; ``None``: the synthetic demo dataset, written once.
        output_name: outputs go to ``<output_name>_outputs/``.
        seed: the seed of every run.
        n_boot: bootstrap resamples of the metric interval.
        **options: :func:`utrans.train.fit` options applied to every model.

    Returns:
        A pandas DataFrame, one row per model (also ``comparison.csv``).
    """
    import pandas as pd

    from utrans import evaluate
    from utrans.evaluate import kinds
    from utrans.tasks import QUANTITIES, get_task, tasks_of
    from utrans.train import DataFiles, fit, output_dir, write_demo_data

    task = tasks_of(task)[0] if task in QUANTITIES else get_task(task)
    kind = kinds.module(task.kind)
    metric, baseline_key, better = kind.headline(task)
    out = output_dir(output_name)
    out.mkdir(parents=True, exist_ok=True)
    demo = data is None
    # compare sets each model's demo options itself (_demo_options), so the
    # runs see the synthetic files as plain data
    files = (dataclasses.replace(write_demo_data(task, out, seed), demo=False) if demo
             else DataFiles.coerce(data))
    if files.test is None:
        raise ValueError("compare needs a test split: data['test'] is missing.")
    rows = []
    for name, own in _normalise_models(models):
        home = _home_task(name, task.quantity, task)
        fit_opts = dict(_demo_options(name, task, home) if demo else {})
        fit_opts.update(options)
        fit_opts.update(own)
        run = str(out / name)
        logger.info("== %s (%s): training", name, home.name)
        result = fit(home, model=name, data=files, output_name=run, seed=seed, **fit_opts)
        test_opts = {k: fit_opts[k] for k in ("run_eagerly",) if k in fit_opts}
        start = time.perf_counter()
        frame = evaluate.test(home, output_name=run, **test_opts)
        seconds = time.perf_counter() - start
        metrics = evaluate.read(home, output_name=run)
        low, high = bootstrap_interval(frame, lambda f: kind.score(f, task), n_boot, seed)
        rows.append({
            "model": name, "task": task.name, "metric": metric, "value": metrics.get(metric),
            "ci_low": low, "ci_high": high, "baseline": metrics.get(baseline_key),
            "better": better, "n_test_traces": len(frame),
            "parameters": result.config.get("n_parameters"),
            "epochs": len(result.history), "seconds_per_epoch": result.seconds_per_epoch,
            "inference_traces_per_s": len(frame) / seconds if seconds > 0 else float("nan"),
            "run": str(output_dir(run)),
        })
    table = pd.DataFrame(rows)
    _write(table, out, task, metric, better, demo)
    return table


def _fmt(v, digits=4):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    return f"{v:.{digits}g}"


def _write(table, out, task, metric, better, demo):
    from utrans import plots
    from utrans.evaluate import write_csv_atomic

    write_csv_atomic(table, out / "comparison.csv")
    lines = [f"# {task.quantity}: {metric} ({better} is better)", "",
             "Synthetic demo data; numbers show that the pipeline works, not how the models "
             "compare on real records." if demo else "", "",
             "| model | " + metric + " | 95% CI | baseline | parameters | s/epoch | traces/s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in table.itertuples():
        lines.append(f"| {r.model} | {_fmt(r.value)} | [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}] | "
                     f"{_fmt(r.baseline)} | {_fmt(r.parameters)} | {_fmt(r.seconds_per_epoch, 3)}"
                     f" | {_fmt(r.inference_traces_per_s, 3)} |")
    (out / "comparison.md").write_text("\n".join(lines) + "\n")
    plots.plot_comparison(table, out / "comparison.png", title=f"{task.quantity}: {metric}")
    logger.info("\n%s", "\n".join(lines))
    logger.info("Comparison written to %s", out)


def main(argv=None):
    """``utrans compare``: the command line of :func:`compare`."""
    import argparse

    from utrans.convert import CheckpointMismatchError
    from utrans.formats import DataError
    from utrans.options import OPTIONS, add_options
    from utrans.presets import PresetUnavailableError
    from utrans.resolve import ModelInputError
    from utrans.tasks import QUANTITIES, TASKS
    from utrans.train import DataFiles

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
    parser.add_argument("--n_boot", type=int, default=1000,
                        help="Bootstrap resamples of the metric interval (default: %(default)s).")
    names = ("input_hdf5", "input_trainset", "input_validset", "input_testset", "output_name",
             "epochs", "batch_size", "learning_rate", "patience", "seed", "max_traces",
             "skip_bad", "no_augmentation", "run_eagerly", "verbose")
    add_options(parser, [n for n in names if n in OPTIONS and n != "no_augmentation"] +
                ["augmentation"], defaults={"output_name": "compare", "verbose": 0})
    args = {k: v for k, v in vars(parser.parse_args(argv)).items()}
    files = {k: args.pop(f"input_{k}" if k == "hdf5" else f"input_{k}set")
             for k in ("hdf5", "train", "valid", "test")}
    data = DataFiles(**files) if files["hdf5"] else None
    task, models = args.pop("task"), args.pop("models")
    given = {k: v for k, v in args.items() if v is not None and v != OPTIONS.get(
        k, None) and (k not in OPTIONS or v != OPTIONS[k].default)}
    given.setdefault("verbose", args["verbose"])
    try:
        table = compare(task, models, data, **given)
    except (DataError, PresetUnavailableError, FileNotFoundError, ModelInputError,
            CheckpointMismatchError, KeyError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        parser.exit(2, f"{parser.prog}: error: {message}\n")
    print(json.dumps(table.drop(columns=["run"]).to_dict(orient="records"), indent=1,
                     default=float))
    return table
