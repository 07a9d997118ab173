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
``utrans compare --task magnitude --models utrans_vit_magnitude,seist_s_emg,magnet``
(:mod:`utrans.cli.compare`). Every argument is checked before the first
model trains.

With no data, the models train on the embedded synthetic dataset (written
once, the same for every model) with the small demo settings of each model's
own script (its epochs, learning rate, window and demo size); with data, they
train with the options given (the same for every model).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import warnings

import numpy as np
import pandas as pd
import scipy.stats

from utrans import evaluate, plots
from utrans.core.io import output_dir, write_csv, write_text
from utrans.core.tasks import QUANTITIES, get_task, tasks_of
from utrans.evaluate import kinds
from utrans.loading import check_model_quantity, plan_conventions
from utrans.train import DataFiles, fit, write_demo_data

logger = logging.getLogger(__name__)

__all__ = ["bootstrap_interval", "compare"]


def bootstrap_interval(frame, score, n_boot=1000, seed=0, level=0.95):
    """Percentile bootstrap interval of ``score(frame)`` over the frame's rows (scipy.stats.bootstrap).

    Args:
        frame: the predictions DataFrame (one row per trace).
        score: ``score(frame) -> float``.
        n_boot: resamples.
        seed: random seed.
        level: interval coverage.

    Returns:
        ``(low, high)`` (NaN when the frame is empty or the score is undefined).
    """
    if len(frame) < 2:
        return float("nan"), float("nan")
    with warnings.catch_warnings():  # a degenerate score (one class left) gives NaN, said below
        warnings.simplefilter("ignore")
        result = scipy.stats.bootstrap(
            (np.arange(len(frame)),), lambda idx: score(frame.iloc[idx].reset_index(drop=True)),
            vectorized=False, n_resamples=int(n_boot), confidence_level=level,
            method="percentile", random_state=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return float(low), float(high)


def _home_task(model, quantity, default):
    """The task whose script trains ``model`` by default (its demo settings), else ``default``."""
    for task in tasks_of(quantity):
        if task.default_model == model:
            return task
    return default


def _demo_options(model, task, home):
    """fit() options reproducing the demo settings of ``model``'s own script."""
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
        if demo.get("objective_options"):
            opts["objective_options"] = dict(demo["objective_options"])
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
        task: a task (name, number or :class:`utrans.core.tasks.Task`) or a quantity
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
    task = tasks_of(task)[0] if task in QUANTITIES else get_task(task)
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be at least 1. Received: n_boot={n_boot}")
    models = _normalise_models(models)
    for name, _ in models:  # every model checked before the first one trains
        check_model_quantity(name, _home_task(name, task.quantity, task))
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
    for name, own in models:
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
    write_csv(table, out / "comparison.csv")
    lines = [f"# {task.quantity}: {metric} ({better} is better)", "",
             "Synthetic demo data; numbers show that the pipeline works, not how the models "
             "compare on real records." if demo else "", "",
             "| model | " + metric + " | 95% CI | baseline | parameters | s/epoch | traces/s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in table.itertuples():
        lines.append(f"| {r.model} | {_fmt(r.value)} | [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}] | "
                     f"{_fmt(r.baseline)} | {_fmt(r.parameters)} | {_fmt(r.seconds_per_epoch, 3)}"
                     f" | {_fmt(r.inference_traces_per_s, 3)} |")
    write_text("\n".join(lines) + "\n", out / "comparison.md")
    plots.plot_comparison(table, out / "comparison.png", title=f"{task.quantity}: {metric}")
    logger.info("\n%s", "\n".join(lines))
    logger.info("Comparison written to %s", out)
