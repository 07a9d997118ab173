"""Tasks by measured quantity: one table from script number to data, models and metrics.

A *quantity* is what a model measures: ``picking``, ``polarity``,
``magnitude``, ``backazimuth``, ``distance``, ``location`` or
``reconstruction`` (pretraining). Every model registers the quantity it
predicts (``register_model(name, quantity=...)``), every quantity has one
labeller and one evaluation (:mod:`utrans.evaluate`), so every model of a
quantity is trained on the same targets and scored by the same code.

A *task* is a numbered script (``01_train/trainerN.py``, ``02_test/testerN.py``,
``03_read/readerN.py``): a quantity with a default model, an output folder and
a small demo configuration. Several scripts share a quantity and differ only
in their default model; each accepts every model of its quantity
(``trainer2.py --model magnet``):

=====  ==============  ==============  =========================  =====================================
N      task            quantity        default model              other models of the quantity
=====  ==============  ==============  =========================  =====================================
0      reconstruction  reconstruction  utrans_foundation
1      location        location        utrans_convmixer_location
2      magnitude       magnitude       utrans_vit_magnitude       seist_{s,m,l}_emg, magnet
3      polarity        polarity        utrans_cct_polarity        seist_{s,m,l}_pmp, ditingmotion
4      p_pick          picking (P)     utrans_eqcct_p             seist_*_dpk, phasenet, eqtransformer
5      s_pick          picking (S)     utrans_eqcct_s             seist_*_dpk, phasenet, eqtransformer
6      dpk             picking         seist_s_dpk                utrans_eqcct_{p,s}, phasenet, eqtr.
7      pmp             polarity        seist_s_pmp                utrans_cct_polarity, ditingmotion
8      emg             magnitude       seist_s_emg                utrans_vit_magnitude, magnet
9      baz             backazimuth     seist_s_baz                baz_network
10     dis             distance        seist_s_dis                distpt_network
=====  ==============  ==============  =========================  =====================================

How a model's inputs and outputs are conformed to its quantity is decided by
the model's own conventions, applied by its pipeline (:mod:`utrans.pipeline`);
its targets and loss by its objective (:mod:`utrans.objectives`). Reconstruction pretraining (script 0) trains the
backbone itself (``utrans_foundation``) on its ``reconstruction`` output to
restore clean traces from the masked ones
:class:`utrans.labels.ReconstructionLabeller` makes; its ``models/best.keras``
is what ``--foundation_weights`` of scripts 1-5 takes.
"""

import dataclasses

__all__ = ["QUANTITIES", "Quantity", "TASKS", "Task", "get_quantity", "get_task", "task_by_number",
           "tasks_of"]


@dataclasses.dataclass(frozen=True)
class Quantity:
    """What a family of models measures, and how it is labelled and scored.

    Attributes:
        name: quantity name (the ``quantity=`` of ``register_model``).
        labeller: labeller name of :func:`utrans.labels.get_labeller`.
        kind: evaluation kind (:mod:`utrans.evaluate`).
        description: one line.
        unit: unit of the measured value.
        column: column stem of the value in ``predictions.csv``.
    """

    name: str
    labeller: str
    kind: str
    description: str
    unit: str = ""
    column: str = ""


QUANTITIES = {q.name: q for q in [
    Quantity("reconstruction", "reconstruction", "reconstruction",
             "clean waveform restored from a masked one (self-supervised pretraining)"),
    Quantity("location", "location", "location",
             "event location from one station (offset to the station and depth)"),
    Quantity("magnitude", "magnitude", "regression", "event magnitude", "", "magnitude"),
    Quantity("polarity", "polarity", "classification", "P first-motion polarity (up/down)"),
    Quantity("picking", "dpk", "picking", "P and S arrival times (and event detection)"),
    Quantity("backazimuth", "baz", "backazimuth", "back-azimuth from station to event", "deg",
             "baz_deg"),
    Quantity("distance", "distance", "regression", "epicentral distance", "km",
             "epicentral_distance_km"),
]}


@dataclasses.dataclass(frozen=True)
class Task:
    """One numbered script: a quantity, a default model, an output folder and a demo.

    Attributes:
        name: task name.
        number: script number (``trainer{number}.py``).
        quantity: name of the :class:`Quantity` it measures.
        default_model: registry name of the model trained by default.
        loss: Keras loss of models whose objective uses the task's loss (the
            U-Trans models); other models bring their reference loss.
        output_name: default ``--output_name`` (outputs go to ``<output_name>_outputs/``).
        description: one line for ``--help``.
        phases: picking tasks: the phases the task is about (``("P",)``).
        demo: keyword overrides of the embedded demo run (small, CPU, minutes):
            ``n_events``, ``n_noise``, ``batch_size``, ``epochs``, ``patience``,
            ``layout`` (synthetic file layout), ``with_noise`` (use the splits
            including noise traces), ``in_samples``, ``sampling_rate``,
            ``p_position_ratio``, ``learning_rate``, ``augmentation``,
            ``objective_options`` (loss and label options of the
            default model's objective, :mod:`utrans.objectives`).
        model_kwargs_demo: constructor overrides of the default model for the demo.
    """

    name: str
    number: int
    quantity: str
    default_model: str
    loss: str
    output_name: str
    description: str
    phases: tuple = ()
    demo: dict = dataclasses.field(default_factory=dict)
    model_kwargs_demo: dict = dataclasses.field(default_factory=dict)

    @property
    def measures(self):
        """The :class:`Quantity` of this task."""
        return QUANTITIES[self.quantity]

    @property
    def kind(self):
        """The evaluation kind (:mod:`utrans.evaluate`) of the task's quantity."""
        return self.measures.kind

    @property
    def labeller_name(self):
        """The labeller name (:func:`utrans.labels.get_labeller`) of this task's quantity."""
        return self.measures.labeller

    @property
    def unit(self):
        """Unit of the measured value."""
        return self.measures.unit


_SMALL_BACKBONE_NOTE = "U-Trans backbone as in task 1 (preset weights when available)."
# The demos train from random initialisation (no preset). ``fit`` starts their
# regression and pick outputs at the training targets' mean (utrans.train.centering);
# learning the rest in a few minutes takes many small batches at a large learning rate.
_UTRANS_DEMO = dict(n_events=320, n_noise=0, batch_size=8, epochs=10, patience=10,
                    learning_rate=3e-3)
_SEIST_DEMO = dict(n_events=240, n_noise=0, batch_size=16, epochs=10, patience=10,
                   in_samples=4096, p_position_ratio=0.1, learning_rate=1e-3)

TASKS = {
    "reconstruction": Task(
        name="reconstruction", number=0, quantity="reconstruction",
        default_model="utrans_foundation", loss="mae", output_name="pretrain_demo",
        description=("Self-supervised pretraining of the U-Trans foundation model: reconstruct "
                     "clean traces from frequency- and time-masked ones (MAE). Starts from "
                     "random initialisation unless --foundation_weights is given."),
        demo=dict(n_events=240, n_noise=60, with_noise=True, batch_size=8, epochs=12, patience=12,
                  learning_rate=3e-3),
        # Eight filters in the full-resolution stages: passing a signed three-component
        # trace through the ReLU convolutions of the skip path takes six units (x+ and
        # x- per channel); with the published five the demo does not get below the
        # masked input in its budget.
        model_kwargs_demo=dict(base_filters=8),
    ),
    "location": Task(
        name="location", number=1, quantity="location",
        default_model="utrans_convmixer_location", loss="mse", output_name="location_demo",
        description=("Single-station earthquake location (station-event offset and normalised "
                     "depth) with U-Trans features and a ConvMixer head."),
        # 12 epochs: at 7 the validation loss was still falling steeply and the
        # epicentral error ended between 0.56 and 1.09 of the baseline over data
        # seeds 0-2; at 12 it is below 0.6 for each of them
        demo=dict(n_events=2000, n_noise=0, batch_size=16, epochs=12, patience=12,
                  learning_rate=1e-3, augmentation=False),
        model_kwargs_demo=dict(filters=64, depth=3),
    ),
    "magnitude": Task(
        name="magnitude", number=2, quantity="magnitude", default_model="utrans_vit_magnitude",
        loss="mse", output_name="magnitude_demo",
        description="Magnitude regression with U-Trans features and a ViT head. "
                    + _SMALL_BACKBONE_NOTE,
        # clean traces: an added second event or a dropped channel blurs the magnitude
        # more than the short demo can average out
        demo=dict(_UTRANS_DEMO, augmentation=False, learning_rate=2e-3, epochs=24, patience=24),
        model_kwargs_demo=dict(conv_filters=(16, 16, 8, 8, 8), projection_dim=32, num_heads=2,
                               num_layers=1, mlp_units=(64, 32), head_units=(64, 32)),
    ),
    "polarity": Task(
        name="polarity", number=3, quantity="polarity", default_model="utrans_cct_polarity",
        loss="binary_crossentropy", output_name="polarity_demo",
        description="P first-motion polarity (up/down) with U-Trans features and a CCT head. "
                    + _SMALL_BACKBONE_NOTE,
        # The CCT head flattens every token into its sigmoid unit, so each Adam step
        # moves the logit by about (tokens x width x learning rate): the demo pools
        # the tokenizer output 8-fold (94 tokens of width 16) and keeps the rate small.
        demo=dict(_UTRANS_DEMO, epochs=8, patience=8, learning_rate=3e-4),
        model_kwargs_demo=dict(tokenizer_filters=(32, 16), pool_size=8, pool_strides=8,
                               num_heads=2, num_layers=1),
    ),
    "p_pick": Task(
        name="p_pick", number=4, quantity="picking", default_model="utrans_eqcct_p",
        loss="binary_crossentropy", output_name="p_pick_demo", phases=("P",),
        description="P-wave picking with U-Trans features and an EQCCT head. "
                    + _SMALL_BACKBONE_NOTE,
        demo=_UTRANS_DEMO,
        model_kwargs_demo=dict(num_heads=2, num_layers=1),
    ),
    "s_pick": Task(
        name="s_pick", number=5, quantity="picking", default_model="utrans_eqcct_s",
        loss="binary_crossentropy", output_name="s_pick_demo", phases=("S",),
        description="S-wave picking with U-Trans features and an EQCCT head. "
                    + _SMALL_BACKBONE_NOTE,
        demo=_UTRANS_DEMO,
        model_kwargs_demo=dict(num_heads=2, num_layers=1),
    ),
    "dpk": Task(
        name="dpk", number=6, quantity="picking", default_model="seist_s_dpk",
        loss="binary_crossentropy", output_name="dpk_demo", phases=("P", "S"),
        description="Earthquake detection and P/S picking (SeisT dpk, PhaseNet, EQTransformer).",
        # 16 epochs: the detection curve's width (F1 per sample of P to S + 2 (S - P))
        # is the last thing learnt; at 12 epochs it ended at 0.875-0.93 over data seeds
        demo=dict(_SEIST_DEMO, n_noise=40, with_noise=True, in_samples=3072,
                  p_position_ratio=None, batch_size=8, learning_rate=3e-3, epochs=16,
                  patience=16),
    ),
    "pmp": Task(
        name="pmp", number=7, quantity="polarity", default_model="seist_s_pmp",
        loss="categorical_crossentropy", output_name="pmp_demo",
        description="P first-motion polarity (SeisT pmp, DiTingMotion).",
        # 480 events: with 240 the test split held 36 traces, and one trace more or
        # less moved the accuracy across its bar of 0.9 from one data seed to another
        demo=dict(_SEIST_DEMO, in_samples=1024, p_position_ratio=0.5, n_events=480),
    ),
    "emg": Task(
        name="emg", number=8, quantity="magnitude", default_model="seist_s_emg", loss="huber",
        output_name="emg_demo", description="Event magnitude (SeisT emg, MagNet).",
        demo=dict(_SEIST_DEMO),
    ),
    "baz": Task(
        name="baz", number=9, quantity="backazimuth", default_model="seist_s_baz", loss="huber",
        output_name="baz_demo", description="Back-azimuth (SeisT baz, BAZ-Network).",
        # the P first motion and the transverse S carry the direction: a dropped
        # channel or an added event hides it from the short demo; 2048 samples
        # (P at 10 %) hold the P arrival and most S arrivals. With the reference's
        # 1-degree Huber threshold the loss is the absolute error, whose gradient only
        # says "more" or "less": the model stayed at the circular-mean baseline for
        # some data seeds and left it after 14 epochs for others. A 30-degree
        # threshold weighs large errors by their size (as for distance, task 10).
        demo=dict(_SEIST_DEMO, augmentation=False, n_events=600, in_samples=2048, epochs=22,
                  patience=22, learning_rate=5e-3, objective_options=dict(delta=30.0)),
    ),
    "dis": Task(
        name="dis", number=10, quantity="distance", default_model="seist_s_dis", loss="huber",
        output_name="dis_demo",
        description="Epicentral distance (SeisT dis, dist-PT Network with P travel time).",
        # the cue is the S-P time (up to 18 s), an interval between two arrivals that
        # the regressor's features must span before they are averaged over the
        # window. At 25 Hz a 1024-sample window (41 s) has 16 positions in the last
        # stage and the S-P time spans at most 7 of them; at 100 Hz (3072 samples) it
        # spanned up to 29 of 48 and the demo stayed at 0.75 x its baseline. With
        # the reference's 1 km Huber threshold the loss is the absolute error at the
        # demo's errors (tens of km), whose gradient only says "too far" or "too
        # near": the model then found the interval late and only for some data
        # seeds. A 30 km threshold weighs each error by its size while errors are
        # large, and it learns steadily. Clean traces, as for back-azimuth.
        demo=dict(_SEIST_DEMO, layout="stead", augmentation=False, n_events=600,
                  sampling_rate=25.0, in_samples=1024, epochs=28, patience=28,
                  learning_rate=5e-3, objective_options=dict(delta=30.0)),
    ),
}


def get_task(name):
    """The :class:`Task` called ``name`` (or numbered ``name``); a clear error lists the known ones."""
    if isinstance(name, Task):
        return name
    if str(name).isdigit():
        return task_by_number(int(name))
    if name not in TASKS:
        raise KeyError(f"Unknown task {name!r}. Known tasks: {', '.join(sorted(TASKS))} "
                       f"(or their numbers 0-{len(TASKS) - 1})")
    return TASKS[name]


def get_quantity(name):
    """The :class:`Quantity` called ``name``, or that of the task called or numbered ``name``."""
    if name in QUANTITIES:
        return QUANTITIES[name]
    try:
        return get_task(name).measures
    except KeyError:
        raise KeyError(f"Unknown quantity {name!r}. Quantities: {', '.join(QUANTITIES)}; tasks: "
                       f"{', '.join(TASKS)}") from None


def tasks_of(quantity):
    """The tasks measuring ``quantity``, by script number."""
    return sorted((t for t in TASKS.values() if t.quantity == quantity), key=lambda t: t.number)


def task_by_number(number):
    """The :class:`Task` of script number ``number``."""
    for task in TASKS.values():
        if task.number == int(number):
            return task
    raise KeyError(f"No task has script number {number}. Known: "
                   f"{sorted(t.number for t in TASKS.values())}")
