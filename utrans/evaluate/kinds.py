"""The evaluation kinds: one module of :mod:`utrans.evaluate` per kind, and the task layout.

Each kind module holds ``LAYOUT`` (the shape of one prediction in the task
layout), ``rows(...)`` (the tester's CSV columns), ``read(...)`` (the
reader's metrics and figures), ``headline(task)`` (the metric, its
baseline and whether lower or higher is better) and ``score(frame, task)``
(the headline metric recomputed from a predictions frame, for bootstrap
intervals).

:func:`task_layout` turns a model's raw outputs into the task layout through
its pipeline, so every model of a quantity is scored by the same code:
magnitude and distance ``(batch, 1)``, polarity ``(batch, 1)`` = probability
of an upward first motion, back-azimuth ``(batch, 2)`` = (cos, sin),
location ``(batch, 3)``, reconstruction ``(batch, samples, 3)`` and, for
pickers, the model's curves ``(batch, samples, labels)`` at its own rate.
"""

import importlib

import numpy as np

from utrans.core.errors import EvaluationInputError

__all__ = ["KINDS", "check_layout", "input_extras", "module", "task_layout"]

KINDS = ("location", "regression", "backazimuth", "classification", "picking", "reconstruction")

# Extra columns of the tester's rows, by estimate.
_EXTRAS = {"magnitude_std": "pred_std", "distance_km_std": "pred_std",
           "p_travel_s": "pred_p_travel_s", "p_travel_s_std": "pred_p_travel_s_std"}


def module(kind):
    """The module of evaluation kind ``kind``."""
    if kind not in KINDS:
        raise KeyError(f"Unknown evaluation kind {kind!r}. Known: {', '.join(KINDS)}")
    return importlib.import_module(f"utrans.evaluate.{kind}")


def task_layout(kind, pipeline, outputs):
    """A batch's raw outputs in the task layout: ``(pred, extras)`` (module doc).

    Args:
        kind: the task's evaluation kind.
        pipeline: the model's :class:`~utrans.pipeline.Pipeline`.
        outputs: the model's raw outputs for the batch.

    Returns:
        ``pred`` (numpy) and ``extras``, a dict of additional per-trace columns.
    """
    if kind == "picking":
        return pipeline.curves(outputs), {}
    est = pipeline.estimates(outputs)
    extras = {_EXTRAS[k]: v for k, v in est.items() if k in _EXTRAS}

    def need(*names):
        missing = [n for n in names if n not in est]
        if missing:
            raise ValueError(f"the model estimates {', '.join(sorted(est))}, not "
                             f"{', '.join(missing)}")
        return [np.asarray(est[n], dtype=np.float64) for n in names]

    if kind == "regression":
        name = next((n for n in ("magnitude", "distance_km") if n in est), "magnitude")
        return need(name)[0][:, None].astype(np.float32), extras
    if kind == "classification":
        return need("polarity_up")[0][:, None].astype(np.float32), extras
    if kind == "backazimuth":
        a = np.radians(need("back_azimuth_deg")[0])
        return np.stack([np.cos(a), np.sin(a)], axis=-1).astype(np.float32), extras
    if kind == "location":
        return np.stack(need("dlat_deg", "dlon_deg", "depth_norm"), axis=-1).astype(
            np.float32), extras
    return np.asarray(need("reconstruction")[0], dtype=np.float32), extras


def input_extras(kind, inputs, targets):
    """Columns that compare the model's inputs with its targets (reconstruction: the masked input's MAE)."""
    if kind == "reconstruction" and np.shape(inputs) == np.shape(targets):
        diff = np.asarray(inputs, np.float64) - np.asarray(targets, np.float64)
        return {"masked_input_mae": np.mean(np.abs(diff), axis=(1, 2))}
    return {}


def check_layout(task, pred, source):
    """Raise :class:`EvaluationInputError` unless ``pred`` has the task's layout."""
    got = tuple(np.shape(pred)[1:])
    if task.kind == "picking":
        ok, want = len(got) == 2, "(None, T, labels)"
    else:
        expected = module(task.kind).LAYOUT
        ok = len(got) == len(expected) and all(e is None or e == g for e, g in zip(expected, got))
        want = f"(None, {', '.join('T' if e is None else str(e) for e in expected)})"
    if not ok:
        raise EvaluationInputError(
            f"{source} does not look like a {task.name} model: its predictions have shape "
            f"(None, {', '.join(map(str, got))}), the {task.name} task needs {want}.")
