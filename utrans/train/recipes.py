"""Published training recipes of the U-Trans models, one per registry name.

The U-Trans foundation model and its five downstream models were trained by
the notebooks of the reference repository
(``omarmohamed15/U-Trans-Foundation-For-Seismic-Waveform-Representation``,
commit :data:`REFERENCE_COMMIT`): ``train/U-Trans_Train.ipynb`` for the
foundation (task 0) and ``examples/downstream/<name>/01_train.ipynb`` for the
downstream models, each with a helper module holding its data generator and
its ``_lr_schedule``. :data:`RECIPES` records, for every model, the values those
notebooks pass (their final ``trainer1(...)`` call cell), not the defaults in
the signature of ``trainer1``. Every entry says where each value comes from.
Cells are counted from 0 in the notebook's ``cells`` list, markdown cells
included; helper line numbers refer to the same commit.

Settings shared by all six notebooks (TensorFlow 2.9.1 / Keras 2.9.0, from
``Foundation.yml``):

* Callbacks, in this order: ``ModelCheckpoint(monitor='val_loss',
  save_best_only=True, save_weights_only=True)``,
  ``ReduceLROnPlateau(factor=sqrt(0.1), cooldown=0, patience=patience - 2,
  min_lr=0.5e-6)`` (monitor: Keras default ``val_loss``),
  ``LearningRateScheduler(_lr_schedule)`` and ``EarlyStopping(monitor='val_loss',
  patience=patience)`` (Keras defaults: ``min_delta=0``,
  ``restore_best_weights=False``).
* The ``LearningRateScheduler`` sets the rate at the start of every epoch,
  so the optimizer's own rate (``'adam'`` = Keras default 1e-3, or
  ``Adam(lr=1e-4)``) is replaced before the first step, and a reduction made by
  ``ReduceLROnPlateau`` at the end of an epoch is overwritten at the start of
  the next: the effective rate is the step schedule alone
  (:attr:`Recipe.learning_rate` and :attr:`Recipe.lr_breakpoints`).
* Adam with Keras defaults besides the rate (``beta_1=0.9``, ``beta_2=0.999``,
  ``epsilon=1e-7``, no AMSGrad); no class weights, no loss weights, one output.
* ``augmentation=True``: a batch of ``batch_size`` holds ``batch_size // 2``
  traces twice; the generator sends rows ``i <= batch_size // 2`` (that is
  ``batch_size // 2 + 1`` rows) through the clean pipeline (shift at
  ``shift_event_r / 2``, then normalisation) and the others through the
  augmented one. The validation generator gets neither augmentation nor shift.
* Normalisation ``'std'``: per trace and channel, subtract the mean and divide
  by the (population) standard deviation over the 6000 samples.
* No random seed is set anywhere.
* The fixed split files of each example are used; there is no random
  validation split.

:meth:`Recipe.lr_at` evaluates the step schedule of :mod:`utrans.data`.
"""

from __future__ import annotations

import dataclasses
import math

from utrans import data

__all__ = [
    "NO_TRAINER_OPTION",
    "PlateauSettings",
    "REFERENCE_COMMIT",
    "REFERENCE_REPOSITORY",
    "RECIPES",
    "Recipe",
    "TRAINER_OPTIONS",
    "get_recipe",
]

#: Repository whose notebooks the recipes are read from.
REFERENCE_REPOSITORY = "omarmohamed15/U-Trans-Foundation-For-Seismic-Waveform-Representation"
#: Commit of :data:`REFERENCE_REPOSITORY` the values and cell numbers refer to.
REFERENCE_COMMIT = "b034afd88dd36bd344a6749a73b6cdcb34a28dbf"

#: Breakpoints of ``_lr_schedule`` in the foundation, location, magnitude and
#: polarity helpers: factor 1e-1 after epoch 20, 1e-2 after 40, 1e-3 after 60,
#: 5e-4 after 90 (the default of :func:`utrans.data.lr_schedule`).
_BREAKPOINTS_20 = ((20, 1e-1), (40, 1e-2), (60, 1e-3), (90, 0.5e-3))

#: Recipe field -> destination of the option of
#: the trainer (``01_train/trainerN.py``, :mod:`utrans.core.options`) that carries it.
TRAINER_OPTIONS = {
    "batch_size": "batch_size",
    "epochs": "epochs",
    "patience": "patience",
    "learning_rate": "learning_rate",
    "augmentation": "augmentation",
    "add_event_r": "add_event_r",
    "shift_event_r": "shift_event_r",
    "add_noise_r": "add_noise_r",
    "drop_channel_r": "drop_channel_r",
    "add_gap_r": "add_gap_r",
    "scale_amplitude_r": "scale_amplitude_r",
    "pre_emphasis": "pre_emphasis",
    "normalization_mode": "normalization",
    "freeze_backbone": "freeze_backbone",
    "foundation_weights": "foundation_weights",
    "max_d": "max_d",
    "min_d": "min_d",
}

#: Recipe fields that change training but have no trainer option yet (the
#: trainer hard-codes them or does not have the feature).
NO_TRAINER_OPTION = (
    "loss",
    "optimizer",
    "lr_breakpoints",
    "monitor",
    "reduce_lr_on_plateau",
    "label_type",
    "phase_window",
    "train_fraction",
    "metrics",
    "corruptions",
)


@dataclasses.dataclass(frozen=True)
class PlateauSettings:
    """A ``ReduceLROnPlateau`` callback as the notebooks create it.

    Attributes:
        factor: multiplier of the rate on a plateau.
        patience: epochs without improvement before reducing.
        min_lr: lower bound of the rate.
        cooldown: epochs to wait after a reduction.
        monitor: logged quantity watched.
        effective: whether it changes the rate used for training; ``False``
            in every notebook, because the ``LearningRateScheduler`` sets the
            rate again at the start of the next epoch.
    """

    factor: float
    patience: int
    min_lr: float
    cooldown: int = 0
    monitor: str = "val_loss"
    effective: bool = False


def _plateau(patience):
    return PlateauSettings(factor=math.sqrt(0.1), patience=patience - 2, min_lr=0.5e-6)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one U-Trans model was trained by its published notebook.

    Attributes:
        model: registry name (:func:`utrans.models.list_models`).
        task: :mod:`utrans.core.tasks` name the model is trained on.
        source: notebook path and cells of :data:`REFERENCE_REPOSITORY` the
            values come from.
        helper: helper module of the notebook (data generator, ``_lr_schedule``).
        loss: Keras loss identifier passed to ``compile``.
        optimizer: optimizer (``"adam"``).
        optimizer_learning_rate: rate given to the optimizer in the notebook
            (``Adam(lr=...)``, Keras 2 spelling); ``None`` when the notebook
            passes the string ``'adam'`` (Keras default 1e-3). Replaced by the
            schedule before the first step (see the module docstring).
        learning_rate: the rate actually used in epoch 0, the base rate of the
            helper's ``_lr_schedule``.
        lr_schedule: name of the schedule function in :mod:`utrans.data`.
        lr_breakpoints: ``((epoch, factor), ...)``: the rate is
            ``learning_rate * factor`` once the 0-based epoch index exceeds
            ``epoch`` (the ``breakpoints`` argument of
            :func:`utrans.data.lr_schedule`).
        batch_size: traces per batch (with augmentation: half of them
            augmented copies of the other half).
        epochs: maximum number of epochs.
        patience: ``EarlyStopping`` patience in epochs.
        monitor: quantity watched by early stopping and the best checkpoint.
        reduce_lr_on_plateau: the ``ReduceLROnPlateau`` callback, or ``None``.
        augmentation: whether the augmented half-batches are made.
        add_event_r: rate of adding a second event (``None``: off).
        shift_event_r: rate of shifting the event in time (``None``: off).
        add_noise_r: rate of adding noise (``None``: off).
        drop_channel_r: rate of dropping channels (``None``: off).
        add_gap_r: rate of inserting a gap (``None``: off).
        scale_amplitude_r: rate of scaling the amplitude (``None``: off).
        pre_emphasis: pre-emphasis of augmented earthquake traces.
        normalization_mode: per-trace normalisation (``"std"`` or ``"max"``).
        label_type: pick label shape (pickers only; ``None`` where no pick
            label is made).
        phase_window: pick label width in samples (pickers only).
        freeze_backbone: whether the U-Trans backbone is frozen.
        foundation_weights: backbone weights the model starts from
            (``"preset"``: the published ``UTrans_Foundation.h5``;
            ``"random"``: random initialisation), as ``--foundation_weights``.
        max_d, min_d: depth normalisation of the location target in km.
        train_fraction: fraction of the training split used (leading part).
        split_files: trace-ID files of the training and validation splits.
        metrics: metrics compiled with the model (logged, not optimised).
        class_weight: class weights passed to ``fit`` (``None``: none).
        corruptions: input corruptions of reconstruction pretraining,
            ``((name, maximum), ...)``.
        notes: contradictions, bugs and details, each citing its cell or line.
    """

    model: str
    task: str
    source: str
    helper: str
    loss: str
    optimizer: str
    optimizer_learning_rate: float | None
    learning_rate: float
    lr_schedule: str
    lr_breakpoints: tuple
    batch_size: int
    epochs: int
    patience: int
    monitor: str
    reduce_lr_on_plateau: PlateauSettings | None
    augmentation: bool
    add_event_r: float | None
    shift_event_r: float | None
    add_noise_r: float | None
    drop_channel_r: float | None
    add_gap_r: float | None
    scale_amplitude_r: float | None
    pre_emphasis: bool
    normalization_mode: str
    label_type: str | None
    phase_window: int | None
    freeze_backbone: bool
    foundation_weights: str
    max_d: float | None
    min_d: float | None
    train_fraction: float
    split_files: tuple
    metrics: tuple
    class_weight: tuple | None
    corruptions: tuple
    notes: tuple

    def lr_at(self, epoch):
        """The learning rate of 0-based ``epoch`` under this recipe's step schedule.

        Args:
            epoch: epoch index as Keras passes it (0 for the first epoch).

        Returns:
            The rate (float).
        """
        schedule = getattr(data, self.lr_schedule)
        return schedule(int(epoch), base_lr=self.learning_rate, breakpoints=self.lr_breakpoints)

    def trainer_options(self):
        """The recipe as trainer option values, keyed by argparse destination.

        Only fields that a trainer option carries (:data:`TRAINER_OPTIONS`)
        appear; ``max_d``/``min_d`` only where they are set. A rate of ``None``
        means the augmentation is off (the data generator skips falsy rates).

        Returns:
            ``dict`` usable as ``parser.set_defaults(**options)``.
        """
        options = {}
        for field, dest in TRAINER_OPTIONS.items():
            value = getattr(self, field)
            if field in ("max_d", "min_d") and value is None:
                continue
            options[dest] = value
        return options


_NOTEBOOK = "examples/downstream/{}/01_train.ipynb"

_HALF_BATCH_NOTE = (
    "Half-batch split: rows i <= batch_size // 2 take the clean pipeline ({helper} line {line}), "
    "so a batch of 40 has 21 clean and 19 augmented rows, not 20 and 20."
)
_SCHEDULE_NOTE = (
    "The docstring of _lr_schedule says 'reduced after 40, 60, 80, 90 epochs'; the code "
    "reduces after epochs {bps} ({helper} line {line})."
)


def _downstream(**kw):
    common = dict(
        optimizer="adam", lr_schedule="lr_schedule", batch_size=40, monitor="val_loss",
        augmentation=True, shift_event_r=0.99, add_noise_r=0.5, add_gap_r=None,
        scale_amplitude_r=None, pre_emphasis=False, normalization_mode="std",
        freeze_backbone=False, foundation_weights="preset", max_d=None, min_d=None,
        train_fraction=1.0, class_weight=None, corruptions=(), label_type=None,
        phase_window=None,
    )
    common.update(kw)
    common.setdefault("reduce_lr_on_plateau", _plateau(common["patience"]))
    return Recipe(**common)


RECIPES = {
    "utrans_foundation": Recipe(
        model="utrans_foundation",
        task="reconstruction",
        source=("train/U-Trans_Train.ipynb cell 5 (trainer1, _build_model, _split, "
                "_make_callback) and cell 6 (trainer1 call)"),
        helper="train/EqT_utils_Recon.py",
        loss="mae",
        optimizer="adam",
        optimizer_learning_rate=None,
        learning_rate=1e-4,
        lr_schedule="lr_schedule",
        lr_breakpoints=_BREAKPOINTS_20,
        batch_size=40,
        epochs=50,
        patience=10,
        monitor="val_loss",
        reduce_lr_on_plateau=_plateau(10),
        augmentation=True,
        add_event_r=0.5,
        shift_event_r=0.99,
        add_noise_r=0.5,
        drop_channel_r=None,
        add_gap_r=None,
        scale_amplitude_r=None,
        pre_emphasis=False,
        normalization_mode="std",
        label_type=None,
        phase_window=None,
        freeze_backbone=False,
        foundation_weights="random",
        max_d=None,
        min_d=None,
        train_fraction=1.0,
        split_files=("IDS_Collected_Data_train.npy", "IDS_Collected_Data_valid.npy"),
        metrics=("mae",),
        class_weight=None,
        corruptions=(("FrequencyMask", 300), ("TimeMask", 600)),
        notes=(
            "Cell 5 _build_model: compile(optimizer='adam', loss='mae', metrics=['mae']); the "
            "loss_types='mae' argument of the cell-6 call is stored but never read.",
            "Cell 6 passes drop_channel_r=False (off), add_event_r=0.5, add_noise_r=0.5, "
            "add_gap_r=None, batch_size=40, epochs=50, patience=10.",
            "The model is built fresh (no load_weights): pretraining starts from random "
            "initialisation.",
            "Corruption (train/EqT_utils_Recon.py lines 331-367), applied to training and "
            "validation batches: per channel FFT, m = randint(1, 300) of the first 3000 bins "
            "zeroed at random positions (the mask mirrored with np.flip onto bins 3000-5999), "
            "real part of the inverse FFT; then m = randint(1, 600) random samples zeroed. The "
            "target is the uncorrupted (augmented, normalised) trace.",
            "Bug, not reproduced: in the augmented half the noise branch repeats the test "
            "data_category != 'noise' (train/EqT_utils_Recon.py line 315), so noise traces there "
            "are neither gap-augmented nor normalised.",
            "trainer1's train_valid_test_split=(0.85, 0.05, 0.10) is never used: _split (cell 5) "
            "loads IDS_Collected_Data_{train,valid,test}.npy.",
            _HALF_BATCH_NOTE.format(helper="train/EqT_utils_Recon.py", line=285),
            _SCHEDULE_NOTE.format(bps="20, 40, 60, 90", helper="train/EqT_utils_Recon.py",
                                  line=641),
        ),
    ),
    "utrans_convmixer_location": _downstream(
        model="utrans_convmixer_location",
        task="location",
        source=(_NOTEBOOK.format("location_ConvMixer")
                + " cell 8 (trainer1, model compile, _split, _make_callback) and cell 9 "
                  "(trainer1 call)"),
        helper="examples/downstream/location_ConvMixer/EqT_utils_Loc_California.py",
        loss="mse",
        optimizer_learning_rate=None,
        learning_rate=1e-4,
        lr_breakpoints=_BREAKPOINTS_20,
        epochs=50,
        patience=10,
        add_event_r=None,
        drop_channel_r=0.1,
        max_d=114.5,
        min_d=1e-5,
        split_files=("train_Events.npy", "valid_Events.npy"),
        metrics=("mse",),
        notes=(
            "Cell 8: model.compile(optimizer='adam', loss='mse', metrics=['mse']); the line "
            "'Adm = tensorflow.optimizers.Adam(lr=1e-4)' is commented out, so the optimizer starts "
            "at the Keras default 1e-3 until the schedule sets 1e-4 at epoch 0.",
            "Cell 9 passes label_type='triangle', which this generator never reads.",
            "Target (EqT_utils_Loc_California.py lines 344-353): [station_lat - event_lat, "
            "station_long - event_long, (max(depth, 0) - min_d) / (max_d - min_d)], degrees, "
            "degrees and normalised depth, one MSE over the three with equal weights; cell 9 sets "
            "max_d=114.5, min_d=1e-5 for both generators.",
            "Any exception during augmentation falls back to the normalised, un-augmented trace "
            "(bare except, EqT_utils_Loc_California.py line 411).",
            _HALF_BATCH_NOTE.format(helper="EqT_utils_Loc_California.py", line=358),
            _SCHEDULE_NOTE.format(bps="20, 40, 60, 90", helper="EqT_utils_Loc_California.py",
                                  line=665),
        ),
    ),
    "utrans_vit_magnitude": _downstream(
        model="utrans_vit_magnitude",
        task="magnitude",
        source=(_NOTEBOOK.format("magnitude_ViT")
                + " cell 8 (trainer1, model compile, _split, _make_callback) and cell 9 "
                  "(trainer1 call)"),
        helper="examples/downstream/magnitude_ViT/EqT_utils_Mag.py",
        loss="mse",
        optimizer_learning_rate=1e-4,
        learning_rate=1e-4,
        lr_breakpoints=_BREAKPOINTS_20,
        epochs=50,
        patience=10,
        add_event_r=None,
        drop_channel_r=0.1,
        split_files=("train_Events.npy", "valid_Events.npy"),
        metrics=("mse",),
        notes=(
            "Cell 8: Adm = tensorflow.optimizers.Adam(lr=1e-4); model.compile(optimizer=Adm, "
            "loss='mse', metrics=['mse']); the schedule also starts at 1e-4.",
            "Cell 9 passes label_type='triangle', which this generator never reads.",
            "Target: the catalogue magnitude as stored, float(attrs['magnitude']) "
            "(EqT_utils_Mag.py line 340), no scaling.",
            "Any exception during augmentation falls back to the normalised, un-augmented trace "
            "(bare except, EqT_utils_Mag.py line 397).",
            _HALF_BATCH_NOTE.format(helper="EqT_utils_Mag.py", line=346),
            _SCHEDULE_NOTE.format(bps="20, 40, 60, 90", helper="EqT_utils_Mag.py", line=651),
        ),
    ),
    "utrans_cct_polarity": _downstream(
        model="utrans_cct_polarity",
        task="polarity",
        source=(_NOTEBOOK.format("polarity_CCT")
                + " cell 8 (trainer1, model compile, _split, _make_callback) and cell 9 "
                  "(trainer1 call)"),
        helper="examples/downstream/polarity_CCT/EqT_utils_Pol.py",
        loss="binary_crossentropy",
        optimizer_learning_rate=1e-4,
        learning_rate=1e-3,
        lr_breakpoints=_BREAKPOINTS_20,
        epochs=50,
        patience=10,
        add_event_r=None,
        drop_channel_r=None,
        split_files=("train_Events_Pol.npy", "valid_Events_Pol.npy"),
        metrics=("acc",),
        notes=(
            "Contradiction: cell 8 builds Adam(lr=1e-4), but EqT_utils_Pol.py _lr_schedule starts "
            "at lr = 1e-3 (line 657), which the LearningRateScheduler applies from epoch 0: the "
            "rates used are 1e-3 (epochs 0-20), 1e-4 (21-40), 1e-5 (41-49).",
            "Cell 8: output Dense(1, activation='sigmoid'); compile(loss='binary_crossentropy', "
            "metrics=['acc']).",
            "Cell 9 passes drop_channel_r=None and add_event_r=None; label_type='triangle' is "
            "never read by this generator.",
            "Target: 1 for P_polarity 'U', 0 for 'D' (EqT_utils_Pol.py lines 340-344); other "
            "values are not handled, so the split files hold U/D traces only.",
            "Any exception during augmentation falls back to the normalised, un-augmented trace "
            "(bare except, EqT_utils_Pol.py line 401).",
            _HALF_BATCH_NOTE.format(helper="EqT_utils_Pol.py", line=350),
            _SCHEDULE_NOTE.format(bps="20, 40, 60, 90", helper="EqT_utils_Pol.py", line=654),
        ),
    ),
    "utrans_eqcct_p": _downstream(
        model="utrans_eqcct_p",
        task="p_pick",
        source=(_NOTEBOOK.format("pwave_eqcct")
                + " cell 8 (trainer1, model compile, _split, _make_callback) and cell 10 "
                  "(trainer1 call)"),
        helper="examples/downstream/pwave_eqcct/EQCCT_P_utils.py",
        loss="binary_crossentropy",
        optimizer_learning_rate=1e-4,
        learning_rate=1e-3,
        lr_breakpoints=((40, 1e-1), (60, 1e-2), (80, 1e-3), (110, 0.5e-3)),
        epochs=100,
        patience=40,
        add_event_r=0.5,
        drop_channel_r=0.1,
        label_type="triangle",
        phase_window=40,
        train_fraction=0.01,
        split_files=("train_Events.npy", "valid_Events.npy"),
        metrics=("acc", "f1", "precision", "recall"),
        notes=(
            "Contradiction: cell 8 builds Adam(lr=1e-4), but EQCCT_P_utils.py _lr_schedule starts "
            "at lr = 1e-3 (line 1249): the rates used are 1e-3 (epochs 0-40), 1e-4 (41-60), 1e-5 "
            "(61-80), 1e-6 (81-99); the 110 breakpoint is never reached in 100 epochs.",
            "Cell 8 _split trains on training[0:int(0.01 * len(training))], the first 1% of "
            "train_Events.npy (which the example folder does not ship); validation uses all of "
            "valid_Events.npy.",
            "Bug, not reproduced: the validation generator of cell 8 gets no label_type, so it "
            "uses the generator default 'gaussian', for which no label is written (only "
            "'triangle' is, EQCCT_P_utils.py line 450): every validation target is 0, and the "
            "val_loss watched by EarlyStopping and ModelCheckpoint is measured against zeros.",
            "Label (EQCCT_P_utils.py lines 299-310, 450-461): a 41-sample triangle from P-20 to "
            "P+20 peaking at 1 on P (other shapes within 20 samples of the trace ends); "
            "the phase_window argument is never read, the width is fixed. A second event added "
            "by add_event gets its own triangle.",
            "Cell 8: output Conv1D(1, 3, activation='sigmoid', name='picker_P'); "
            "compile(loss='binary_crossentropy', metrics=['acc', f1, precision, recall]).",
            "Any exception during augmentation falls back to the normalised, un-augmented trace "
            "(bare except, EQCCT_P_utils.py line 479).",
            _HALF_BATCH_NOTE.format(helper="EQCCT_P_utils.py", line=401),
            _SCHEDULE_NOTE.format(bps="40, 60, 80, 110", helper="EQCCT_P_utils.py", line=1246),
        ),
    ),
    "utrans_eqcct_s": _downstream(
        model="utrans_eqcct_s",
        task="s_pick",
        source=(_NOTEBOOK.format("swave_eqcct")
                + " cell 8 (trainer1, model compile, _split, _make_callback) and cell 9 "
                  "(trainer1 call)"),
        helper="examples/downstream/swave_eqcct/EQCCT_S_utils.py",
        loss="binary_crossentropy",
        optimizer_learning_rate=1e-4,
        learning_rate=1e-3,
        lr_breakpoints=((40, 1e-1), (60, 1e-2), (80, 1e-3), (100, 0.5e-3)),
        epochs=100,
        patience=40,
        add_event_r=0.5,
        drop_channel_r=0.1,
        label_type="triangle",
        phase_window=40,
        train_fraction=0.01,
        split_files=("train_Events.npy", "valid_Events.npy"),
        metrics=("acc", "f1", "precision", "recall"),
        notes=(
            "Contradiction: cell 8 builds Adam(lr=1e-4), but EQCCT_S_utils.py _lr_schedule starts "
            "at lr = 1e-3: the rates used are 1e-3 (epochs 0-40), 1e-4 (41-60), 1e-5 (61-80), "
            "1e-6 (81-99); the 100 breakpoint is never reached in 100 epochs (indices 0-99).",
            "Cell 8 _split trains on training[0:int(0.01*len(training))], the first 1% of "
            "train_Events.npy (which the example folder does not ship); validation uses all of "
            "valid_Events.npy.",
            "Bug, not reproduced: the validation generator of cell 8 gets no label_type, so it "
            "uses the generator default 'gaussian', for which no label is written (only "
            "'triangle' is, EQCCT_S_utils.py line 449): every validation target is 0, and the "
            "val_loss watched by EarlyStopping and ModelCheckpoint is measured against zeros.",
            "Label (EQCCT_S_utils.py lines 300-311, 449-460): a 41-sample triangle from S-20 to "
            "S+20 peaking at 1 on S (other shapes within 20 samples of the trace ends); "
            "the phase_window argument is never read, the width is fixed. A second event added "
            "by add_event gets its own triangle.",
            "Cell 8: output Conv1D(1, 3, activation='sigmoid', name='picker_S'); "
            "compile(loss='binary_crossentropy', metrics=['acc', f1, precision, recall]).",
            "Any exception during augmentation falls back to the normalised, un-augmented trace "
            "(bare except, EQCCT_S_utils.py line 478).",
            _HALF_BATCH_NOTE.format(helper="EQCCT_S_utils.py", line=400),
            _SCHEDULE_NOTE.format(bps="40, 60, 80, 100", helper="EQCCT_S_utils.py", line=1252),
        ),
    ),
}


def get_recipe(model_name):
    """The published training recipe of ``model_name``.

    Args:
        model_name: registry name, e.g. ``"utrans_eqcct_p"``.

    Returns:
        The :class:`Recipe`, or ``None`` for a model without a published
        U-Trans recipe (SeisT, baselines, unknown names).
    """
    return RECIPES.get(model_name)
