"""One table: task -> script number, data labeller, default model, loss, evaluation kind, demo.

Every numbered script (``01_train/trainerN.py``, ``02_test/testerN.py``,
``03_read/readerN.py``) looks its task up here; tasks differ only in this row,
never in a copy of the training loop, the data generator or the evaluation.
Evaluation is written once per *kind* (:mod:`utrans.evaluate`):

=====  ==============  ==============  ==============  =========================
N      task            labels          kind            default model
=====  ==============  ==============  ==============  =========================
0      reconstruction  reconstruction  reconstruction  utrans_foundation
1      location        location        location        utrans_convmixer_location
2      magnitude       magnitude       regression      utrans_vit_magnitude
3      polarity        polarity        classification  utrans_cct_polarity
4      p_pick          p_pick          picking         utrans_eqcct_p
5      s_pick          s_pick          picking         utrans_eqcct_s
6      dpk             dpk             dpk             seist_s_dpk
7      pmp             polarity        classification  seist_s_pmp
8      emg             magnitude       regression      seist_s_emg
9      baz             baz             backazimuth     seist_s_baz
10     dis             distance        regression      seist_s_dis
=====  ==============  ==============  ==============  =========================

``labels`` is the ``task=`` of :class:`utrans.data.DataGenerator` (SeisT's
task names pmp/emg/dis map onto the polarity, magnitude and distance
labellers). Which model fits which task comes from the registry
(``register_model(name, task=...)``); how each model's inputs, targets, loss
and outputs are conformed to the task is in :mod:`utrans.adapters`.
Reconstruction pretraining (script 0) is a row too: the model is the
backbone itself (``utrans_foundation``), trained on its ``reconstruction``
output (:class:`utrans.adapters.ReconstructionAdapter`) to restore clean
traces from the masked ones :class:`utrans.labels.ReconstructionLabeller`
makes; its ``models/best.keras`` is what ``--foundation_weights`` of scripts
1-5 takes.
"""

import dataclasses

__all__ = ["Task", "TASKS", "get_task", "task_by_number"]


@dataclasses.dataclass(frozen=True)
class Task:
    """Static description of one task.

    Attributes:
        name: task name (script names use ``number``); also the registry task
            of the models that fit it.
        number: script number (``trainer{number}.py``).
        default_model: registry name of the model trained by default.
        loss: Keras loss identifier of models without an adapter-specific loss
            (the U-Trans models).
        output_name: default ``--output_name`` (outputs go to ``<output_name>_outputs/``).
        description: one line for ``--help``.
        demo: keyword overrides of the embedded demo run (small, CPU, minutes):
            ``n_events``, ``n_noise``, ``batch_size``, ``epochs``, ``patience``,
            ``layout`` (synthetic file layout), ``with_noise`` (use the splits
            including noise traces), ``in_samples``, ``p_position_ratio``,
            ``learning_rate``.
        model_kwargs_demo: constructor overrides of the default model for the demo.
        labels: labeller name of :func:`utrans.labels.get_labeller` (default ``name``).
        kind: evaluation kind: ``location``, ``regression``, ``backazimuth``,
            ``classification``, ``picking`` (U-Trans rule), ``dpk`` (SeisT rule) or
            ``reconstruction`` (per-trace MAE and correlation).
        quantity: name of the predicted quantity (regression/picking columns).
        unit: its unit.
        models: other registered models offered for the task (``--help``).
    """

    name: str
    number: int
    default_model: str
    loss: str
    output_name: str
    description: str
    demo: dict = dataclasses.field(default_factory=dict)
    model_kwargs_demo: dict = dataclasses.field(default_factory=dict)
    labels: str = None
    kind: str = "location"
    quantity: str = ""
    unit: str = ""
    models: tuple = ()

    @property
    def labeller_name(self):
        """The DataGenerator ``task=`` (labeller) of this task."""
        return self.labels or self.name


_SMALL_BACKBONE_NOTE = "U-Trans backbone as in task 1 (preset weights when available)."
_UTRANS_DEMO = dict(n_events=320, n_noise=0, batch_size=16, epochs=10, patience=10,
                    learning_rate=5e-4)
_SEIST_DEMO = dict(n_events=240, n_noise=0, batch_size=16, epochs=10, patience=10,
                   in_samples=4096, p_position_ratio=0.1, learning_rate=1e-3)

TASKS = {
    "reconstruction": Task(
        name="reconstruction", number=0, default_model="utrans_foundation", loss="mae",
        output_name="pretrain_demo", kind="reconstruction",
        description=("Self-supervised pretraining of the U-Trans foundation model: reconstruct "
                     "clean traces from frequency- and time-masked ones (MAE). Starts from "
                     "random initialisation unless --foundation_weights is given."),
        demo=dict(n_events=240, n_noise=60, with_noise=True, batch_size=16, epochs=8, patience=8,
                  learning_rate=1e-3),
    ),
    "location": Task(
        name="location", number=1, default_model="utrans_convmixer_location", loss="mse",
        output_name="location_demo",
        description=("Single-station earthquake location (station-event offset and normalised "
                     "depth) with U-Trans features and a ConvMixer head."),
        demo=dict(n_events=2000, n_noise=0, batch_size=16, epochs=5, patience=5,
                  learning_rate=1e-3, augmentation=False),
        model_kwargs_demo=dict(filters=64, depth=3),
    ),
    "magnitude": Task(
        name="magnitude", number=2, default_model="utrans_vit_magnitude", loss="mse",
        output_name="magnitude_demo", kind="regression", quantity="magnitude",
        description="Magnitude regression with U-Trans features and a ViT head. "
                    + _SMALL_BACKBONE_NOTE,
        demo=_UTRANS_DEMO,
        model_kwargs_demo=dict(conv_filters=(16, 16, 8, 8, 8), projection_dim=32, num_heads=2,
                               num_layers=1, mlp_units=(64, 32), head_units=(64, 32)),
    ),
    "polarity": Task(
        name="polarity", number=3, default_model="utrans_cct_polarity",
        loss="binary_crossentropy", output_name="polarity_demo", kind="classification",
        quantity="polarity",
        description="P first-motion polarity (up/down) with U-Trans features and a CCT head. "
                    + _SMALL_BACKBONE_NOTE,
        demo=_UTRANS_DEMO,
        model_kwargs_demo=dict(tokenizer_filters=(32, 32), num_heads=2, num_layers=1),
    ),
    "p_pick": Task(
        name="p_pick", number=4, default_model="utrans_eqcct_p", loss="binary_crossentropy",
        output_name="p_pick_demo", kind="picking", quantity="P",
        description="P-wave picking with U-Trans features and an EQCCT head. "
                    + _SMALL_BACKBONE_NOTE,
        demo=_UTRANS_DEMO,
        model_kwargs_demo=dict(num_heads=2, num_layers=1),
    ),
    "s_pick": Task(
        name="s_pick", number=5, default_model="utrans_eqcct_s", loss="binary_crossentropy",
        output_name="s_pick_demo", kind="picking", quantity="S",
        description="S-wave picking with U-Trans features and an EQCCT head. "
                    + _SMALL_BACKBONE_NOTE,
        demo=_UTRANS_DEMO,
        model_kwargs_demo=dict(num_heads=2, num_layers=1),
    ),
    "dpk": Task(
        name="dpk", number=6, default_model="seist_s_dpk", loss="binary_crossentropy",
        output_name="dpk_demo", kind="dpk",
        description="Earthquake detection and P/S picking (SeisT dpk, PhaseNet, EQTransformer).",
        demo=dict(_SEIST_DEMO, n_noise=40, with_noise=True, in_samples=6144,
                  p_position_ratio=None, learning_rate=1e-4),
        models=("seist_m_dpk", "seist_l_dpk", "phasenet", "eqtransformer"),
    ),
    "pmp": Task(
        name="pmp", number=7, default_model="seist_s_pmp", loss="categorical_crossentropy",
        output_name="pmp_demo", kind="classification", labels="polarity", quantity="polarity",
        description="P first-motion polarity (SeisT pmp, DiTingMotion).",
        demo=dict(_SEIST_DEMO, in_samples=1024, p_position_ratio=0.5),
        models=("seist_m_pmp", "seist_l_pmp", "ditingmotion"),
    ),
    "emg": Task(
        name="emg", number=8, default_model="seist_s_emg", loss="huber",
        output_name="emg_demo", kind="regression", labels="magnitude", quantity="magnitude",
        description="Event magnitude (SeisT emg, MagNet).",
        demo=dict(_SEIST_DEMO),
        models=("seist_m_emg", "seist_l_emg", "magnet"),
    ),
    "baz": Task(
        name="baz", number=9, default_model="seist_s_baz", loss="huber",
        output_name="baz_demo", kind="backazimuth", quantity="back-azimuth", unit="deg",
        description="Back-azimuth (SeisT baz, BAZ-Network).",
        demo=dict(_SEIST_DEMO),
        models=("seist_m_baz", "seist_l_baz", "baz_network"),
    ),
    "dis": Task(
        name="dis", number=10, default_model="seist_s_dis", loss="huber",
        output_name="dis_demo", kind="regression", labels="distance",
        quantity="epicentral distance", unit="km",
        description="Epicentral distance (SeisT dis, dist-PT Network with P travel time).",
        demo=dict(_SEIST_DEMO, layout="stead"),
        models=("seist_m_dis", "seist_l_dis", "distpt_network"),
    ),
}


def get_task(name):
    """The :class:`Task` called ``name``; a clear error lists the known tasks."""
    if name not in TASKS:
        raise KeyError(f"Unknown task {name!r}. Known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def task_by_number(number):
    """The :class:`Task` of script number ``number``."""
    for task in TASKS.values():
        if task.number == int(number):
            return task
    raise KeyError(f"No task has script number {number}. Known: "
                   f"{sorted(t.number for t in TASKS.values())}")
