"""``utrans list``: the tasks, the models by quantity and the presets, with their conventions."""

from __future__ import annotations

import argparse

from utrans.core import presets
from utrans.core.tasks import QUANTITIES, TASKS

__all__ = ["main"]


def main(argv=None):
    """Print the tasks, the registered models by quantity and the presets."""
    argparse.ArgumentParser(
        prog="utrans list",
        description="Print the tasks, the registered models by quantity with their "
                    "conventions, and the presets.").parse_args(argv)
    # The models (and the framework they are built with): lazy for start-up time.
    from utrans.models import list_models, model_conventions  # noqa: PLC0415 - Keras: lazy for start-up time

    print("Tasks (utrans train|test|read N):")
    for task in sorted(TASKS.values(), key=lambda t: t.number):
        print(f"  {task.number:>2}  {task.name:<15} {task.quantity:<15} default model "
              f"{task.default_model}")
    print("\nModels by quantity:")
    for quantity in QUANTITIES:
        print(f"  {quantity}:")
        for name in list_models(quantity):
            print(f"    {name:<28} {model_conventions(name).describe()}")
    print("\nPresets (published weights; utrans.load_model(name)):")
    for name in presets.list_presets():
        p = presets.get_preset(name)
        rate = p.conventions.get("sampling_rate", "")
        print(f"  {name:<24} {p.model:<20} {p.dataset:<7} {rate!s:>5} Hz")
