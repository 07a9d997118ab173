"""One table: task -> script number, data labeller, default model, loss and demo size.

Every numbered script (``01_train/trainerN.py``, ``02_test/testerN.py``,
``03_read/readerN.py``) looks its task up here; tasks differ only in this row,
never in a copy of the training loop or the data generator.
"""

import dataclasses

__all__ = ["Task", "TASKS", "get_task"]


@dataclasses.dataclass(frozen=True)
class Task:
    """Static description of one task.

    Attributes:
        name: task name, also the ``task=`` of :class:`utrans.data.DataGenerator`.
        number: script number (``trainer{number}.py``).
        default_model: registry name of the model trained by default.
        loss: Keras loss identifier.
        output_name: default ``--output_name`` (outputs go to ``<output_name>_outputs/``).
        description: one line for ``--help``.
        demo: keyword overrides of the embedded demo run (small, CPU, minutes).
        model_kwargs_demo: constructor overrides of the demo model (small configuration).
    """

    name: str
    number: int
    default_model: str
    loss: str
    output_name: str
    description: str
    demo: dict = dataclasses.field(default_factory=dict)
    model_kwargs_demo: dict = dataclasses.field(default_factory=dict)


TASKS = {
    "location": Task(
        name="location",
        number=1,
        default_model="utrans_convmixer_location",
        loss="mse",
        output_name="location_demo",
        description=(
            "Single-station earthquake location (station-event offset and normalised "
            "depth) with U-Trans features and a ConvMixer head."
        ),
        demo=dict(n_events=480, n_noise=0, batch_size=16, epochs=6, patience=6),
        model_kwargs_demo=dict(filters=64, depth=3),
    ),
}


def get_task(name):
    """The :class:`Task` called ``name``; a clear error lists the known tasks."""
    if name not in TASKS:
        raise KeyError(f"Unknown task {name!r}. Known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]
