"""The evaluation kinds: one module of :mod:`utrans.evaluate` per kind.

Each kind module holds ``LAYOUT`` (the shape of one prediction in the task
layout), ``rows(...)`` (the tester's CSV columns), ``read(...)`` (the
reader's metrics and figures), ``headline(task)`` (the metric, its
baseline and whether lower or higher is better) and ``score(frame, task)``
(the headline metric recomputed from a predictions frame, for bootstrap
intervals).
"""

import importlib

__all__ = ["KINDS", "module"]

KINDS = ("location", "regression", "backazimuth", "classification", "picking", "reconstruction")


def module(kind):
    """The module of evaluation kind ``kind``."""
    if kind not in KINDS:
        raise KeyError(f"Unknown evaluation kind {kind!r}. Known: {', '.join(KINDS)}")
    return importlib.import_module(f"utrans.evaluate.{kind}")
