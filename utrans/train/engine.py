"""The training engine: :func:`fit` (``01_train/trainerN.py`` is a command line over it).

:func:`fit` trains one model on one task and returns a :class:`FitResult`
(history, output folder, best checkpoint); it prints nothing a caller did
not ask for. It sets up the runtime (seed, determinism, logical CPU
replicas, mixed precision), picks a ``tf.distribute`` strategy, builds the
model inside ``strategy.scope()`` with the conventions of
:func:`utrans.loading.plan_conventions` (every option that changes them, the
normalisation included, reaches the saved model), feeds
:class:`utrans.data.DataGenerator` through the model's pipeline and its
objective's labeller (:mod:`utrans.objectives`) to ``model.fit`` and writes
everything under ``<output_name>_outputs/``::

    <output_name>_outputs/
        data/                 the synthetic demo dataset (demo runs only)
        models/best.keras     best model (by val_loss), written atomically
        models/best.weights.h5
        backup/               verified training states of the last two epochs (removed
                              after a finished run; worker k > 0 of a multi-worker run:
                              backup_worker<k>/), see utrans.train.callbacks
        training_config.json  task, model, conventions, data files (absolute), seed, ...
        skipped_traces.csv    traces left out as unusable (--skip_bad), with the reason
        history.csv           one row per completed epoch (epoch counted from 1), rebuilt
                              from the backup on resume
        loss_curves.png

From Python::

    from utrans.train import fit
    result = fit("magnitude", model="magnet", data=dict(hdf5="merged.hdf5",
                 train="train.npy", valid="valid.npy", test="test.npy"), epochs=20)
    result.history            # pandas DataFrame, one row per epoch
    result.best_checkpoint    # .../models/best.keras

Distribution (``strategy=``): the model, optimizer and metrics are built
inside ``strategy.scope()``; ``batch_size`` is per replica and the global
batch is ``batch_size x replicas``. How the data reaches the replicas (the
PyDataset split by Keras on one machine, explicit per-worker shards with
``AutoShardPolicy.OFF`` across machines) is explained in
:mod:`utrans.train.distribute`. With MultiWorkerMirroredStrategy only the chief
(worker 0) writes the outputs above; the other workers write into a temporary
folder and keep their BackupAndRestore state in ``backup_worker<k>/``.

Fault tolerance: ``BackupAndRestore`` saves weights, optimizer state and the
epoch after every epoch; rerunning the same command resumes there (the data
generators are set to the resumed epoch, so with ``deterministic=True`` the
result equals an uninterrupted run); ``resume=False`` starts over. The best
model is written atomically (temporary file + rename).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import shutil
import tempfile
import time

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from utrans import plots, synthetic
from utrans.augment import reference_steps
from utrans.core import presets
from utrans.core.errors import BadTraceError, ModelInputError, OutputPathError
from utrans.core.io import output_dir, remove_stale_temporaries, write_csv, write_json
from utrans.core.options import CONVENTION_OPTIONS, DATA_OPTIONS, TRAIN_OPTIONS, defaults
from utrans.core.tasks import get_task
from utrans.data import DataGenerator, bad_trace_error, check_split, make_lr_schedule
from utrans.loading import (
    build_model,
    check_model_quantity,
    get_conventions,
    load_weights,
    plan_conventions,
)
from utrans.models import list_models
from utrans.models.optimizers import FusedAdam
from utrans.objectives import get_objective, task_labeller
from utrans.train import distribute
from utrans.train.callbacks import (
    AtomicBestCheckpoint,
    HistoryCSV,
    VerifiedBackupAndRestore,
    write_history,
)
from utrans.train.centering import center_outputs
from utrans.train.recipes import get_recipe

logger = logging.getLogger(__name__)

__all__ = [
    "DATA_OPTIONS",
    "DataFiles",
    "FitResult",
    "TRAIN_OPTIONS",
    "fit",
    "make_strategy",
    "setup_runtime",
    "write_demo_data",
]

STRATEGIES = ("auto", "default", "mirrored", "multiworker")

_REAL_DEFAULTS = dict(batch_size=200, epochs=200, learning_rate=1e-4, patience=12,
                      max_d=114.5, min_d=1e-5)


@dataclasses.dataclass(frozen=True)
class DataFiles:
    """The data of a run: an HDF5 file (or SeisBench folder) and split files of trace IDs.

    Attributes:
        hdf5: the dataset file or folder.
        train: ``.npy`` of training trace IDs.
        valid: ``.npy`` of validation trace IDs.
        test: ``.npy`` of test trace IDs (recorded for the tester; optional).
        demo: whether this is the synthetic demo dataset.
    """

    hdf5: str
    train: str
    valid: str
    test: str | None = None
    demo: bool = False

    @classmethod
    def coerce(cls, data):
        """A :class:`DataFiles` from itself, a mapping with the same keys, or ``None`` (demo)."""
        if data is None or isinstance(data, cls):
            return data
        if isinstance(data, dict):
            unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
            if unknown:
                raise TypeError(f"data: unknown key(s) {unknown}; expected hdf5, train, valid, "
                                "test")
            return cls(**data)
        raise TypeError(f"data must be None (the demo dataset), a dict or a DataFiles. "
                        f"Received: {type(data).__name__}")


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        output_dir: the run's ``<output_name>_outputs`` folder.
        best_checkpoint: ``models/best.keras`` (``None`` when no epoch improved).
        history: one row per completed epoch (``epoch``, ``loss``, ``val_loss``, ...).
        config: the run's ``training_config.json`` as a dict.
        seconds_per_epoch: mean wall time of the epochs run by this call.
    """

    output_dir: pathlib.Path
    best_checkpoint: pathlib.Path | None
    history: object
    config: dict
    seconds_per_epoch: float


def setup_runtime(opts):
    """Seed, determinism, logical CPU devices and precision; returns the strategy.

    Must run before any TensorFlow op executes (logical devices cannot be
    changed afterwards).

    Args:
        opts: the run's options (``cpu_replicas``, ``strategy``, ``seed``,
            ``deterministic``, ``mixed_precision``).

    Returns:
        The ``tf.distribute`` strategy.
    """
    if opts["cpu_replicas"] and opts["cpu_replicas"] > 1:
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * opts["cpu_replicas"]
        )
    # The strategy comes before anything that starts the TF runtime (seeding does):
    # MultiWorkerMirroredStrategy configures collective ops, possible at startup only.
    strategy = make_strategy(opts["strategy"])
    keras.utils.set_random_seed(opts["seed"])
    if opts["deterministic"]:
        tf.config.experimental.enable_op_determinism()
    if opts["mixed_precision"]:
        keras.mixed_precision.set_global_policy("mixed_float16")
        if not tf.config.list_physical_devices("GPU"):
            logger.warning("--mixed_precision without a GPU: Keras computes in float16 on the "
                           "CPU, which is slower than float32 there (use it on GPUs).")
        logger.info("Precision policy: %s", keras.mixed_precision.global_policy().name)
    return strategy


def make_strategy(name="auto"):
    """Build the ``tf.distribute`` strategy called ``name`` (see ``--strategy``)."""
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy. Expected one of {STRATEGIES}. Received: {name!r}")
    if name == "multiworker":  # before listing devices, which starts the TF runtime
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy multiworker needs TF_CONFIG describing the cluster and "
                             "this worker's task; see docs/training.md, 'Several GPUs or "
                             "machines'.")
        return distribute.multi_worker_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if gpus:
            return tf.distribute.MirroredStrategy([d.name for d in gpus])
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(
            cpus, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )


def write_demo_data(task, out, seed):
    """Write ``task``'s synthetic demo dataset under ``out/data``; its :class:`DataFiles`."""
    data_dir = pathlib.Path(out) / "data"
    demo = task.demo
    layout = demo.get("layout", "datacollected")
    logger.info("No data given: writing the synthetic California demo dataset to %s", data_dir)
    files = synthetic.write_synthetic_dataset(
        data_dir, n_events=demo.get("n_events", 400), n_noise=demo.get("n_noise", 0),
        seed=seed, layouts=(layout,),
    )
    suffix = "_all" if demo.get("with_noise") else ""
    return DataFiles(hdf5=str(files[layout].resolve()),
                     train=str(files["train" + suffix].resolve()),
                     valid=str(files["valid" + suffix].resolve()),
                     test=str(files["test" + suffix].resolve()), demo=True)


def _prepare_data(data, task, out, seed):
    """The run's :class:`DataFiles`: the user's (checked, absolute) or the synthetic demo."""
    if data is None:
        return write_demo_data(task, out, seed)
    missing = [n for n in ("train", "valid") if getattr(data, n) is None]
    if missing:
        raise FileNotFoundError("--input_hdf5 needs " + " and ".join(
            f"--input_{m}set" for m in missing) + " too.")
    paths = {}
    for key in ("hdf5", "train", "valid", "test"):
        value = getattr(data, key)
        if value is None:
            paths[key] = None
            continue
        path = pathlib.Path(value).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"--input_{key if key == 'hdf5' else key + 'set'}: file not "
                                    f"found: {value}")
        paths[key] = str(path.resolve())
    return DataFiles(**paths)


#: Quantities whose randomly initialised output bias ``fit`` centres on the training
#: targets (:mod:`utrans.train.centering`); back-azimuth is circular, classes and
#: reconstructions start near their targets already.
_CENTERED_KINDS = ("regression", "location", "picking")
#: The rates of the reference U-Trans data generator, used when nothing else sets them.
_REFERENCE_RATES = dict(add_event_r=0.6, shift_event_r=0.99, add_noise_r=0.3, drop_channel_r=0.5,
                        add_gap_r=0.2, scale_amplitude_r=None)
_RECIPE_KEYS = ("batch_size", "epochs", "learning_rate", "patience", "max_d", "min_d",
                *_REFERENCE_RATES)


def _run_settings(opts, task, model_name, demo):
    """Fill the run's unset options: the demo's, the model's published recipe, or the defaults.

    With real data a U-Trans model trains by its published recipe
    (:mod:`utrans.train.recipes`) unless an option says otherwise; the demo uses
    its own small configuration. ``opts`` is completed in place.

    Returns:
        ``(settings, description)``: settings holds ``batch_size``, ``epochs``,
        ``learning_rate``, ``patience``, ``lr_breakpoints`` and ``label_type``.
    """
    recipe = None if demo else get_recipe(model_name)
    if demo:
        source = {**{k: _REAL_DEFAULTS[k] for k in ("max_d", "min_d")},
                  **_REFERENCE_RATES, **task.demo}
        source.setdefault("patience", source.get("epochs", 3))
        what = f"demo configuration of task {task.number} (small, CPU, minutes)"
    elif recipe is not None:
        source = dict(_REAL_DEFAULTS, **{k: v for k, v in recipe.trainer_options().items()})
        for key in _REFERENCE_RATES:
            source[key] = getattr(recipe, key)
        what = f"published training recipe of {model_name} ({recipe.source.split(' (')[0]})"
    else:
        source = dict(_REAL_DEFAULTS, **_REFERENCE_RATES)
        what = "default configuration"
    for key in _RECIPE_KEYS:
        if opts[key] is None:
            opts[key] = source.get(key, dict(batch_size=16, epochs=3, learning_rate=1e-4).get(key))
    if recipe is not None and not recipe.augmentation and opts["augmentation"]:
        opts["augmentation"] = False
    settings = {k: opts[k] for k in ("batch_size", "epochs", "learning_rate", "patience")}
    settings["lr_breakpoints"] = recipe.lr_breakpoints if recipe else None
    settings["label_type"] = recipe.label_type if recipe else None
    description = (f"{what}: batch {settings['batch_size']}, {settings['epochs']} epochs, "
                   f"learning rate {settings['learning_rate']:g}, patience "
                   f"{settings['patience']}, augmentation "
                   + (", ".join(f"{k[:-2]} {opts[k]:g}" for k in _REFERENCE_RATES if opts[k])
                      if opts["augmentation"] else "off"))
    return settings, description


def _steps(opts):
    """``(clean, augmented)`` augmentation steps of the run's rates."""
    return reference_steps(
        add_event_r=opts["add_event_r"] or None, shift_event_r=opts["shift_event_r"] or None,
        add_noise_r=opts["add_noise_r"] or None, drop_channel_r=opts["drop_channel_r"] or None,
        add_gap_r=opts["add_gap_r"] or None, scale_amplitude_r=opts["scale_amplitude_r"] or None,
        pre_emphasis=opts["pre_emphasis"])


def _generator_kwargs(opts, training, skipped=None):
    common = dict(seed=opts["seed"], workers=opts["workers"],
                  use_multiprocessing=opts["use_multiprocessing"], skip_bad=opts["skip_bad"])
    if skipped is not None and opts["skip_bad"]:
        common["bad_log"] = skipped.logs["training" if training else "validation"]
    if not training:
        return dict(common, shuffle=False, augmentation=False, drop_remainder=False)
    clean, augmented = _steps(opts)
    return dict(common, shuffle=True, augmentation=opts["augmentation"], steps=clean,
                augment_steps=augmented)


def _model_kwargs(opts, task, model_name, conventions, demo):
    """Constructor arguments: demo size (default model), the conventions, then ``model_kwargs``."""
    kwargs = dict(task.model_kwargs_demo) if (
        (demo or opts["demo_size"]) and model_name == task.default_model) else {}
    kwargs.update(conventions.to_config())
    kwargs.update(opts["model_kwargs"] or {})
    return kwargs


def _labeller(opts, task, objective, label_type=None):
    """The training labeller: the task's targets through the model's objective."""
    return objective.labeller(task_labeller(task, max_d=opts["max_d"], min_d=opts["min_d"],
                                            label_type=label_type or "gaussian"))


class _Skipped:
    """The traces a run leaves out as unusable (``skip_bad``), all in ``skipped_traces.csv``.

    Traces whose metadata is unusable are found before training
    (:func:`_checked_splits`); those whose samples are unusable are found while
    reading, possibly in worker processes, which append them to one log per
    split (the generators' ``bad_log``, ``.skipped_<split>.tsv``). :meth:`write`
    merges both into ``skipped_traces.csv`` (columns ``split``, ``trace_name``,
    ``reason``; each trace once), written before training and again at its end.
    """

    def __init__(self, out, rows):
        self.path = out / "skipped_traces.csv"
        self.rows = list(rows)
        self.logs = {name: out / f".skipped_{name}.tsv" for name in ("training", "validation")}
        for stale in (self.path, *self.logs.values()):
            stale.unlink(missing_ok=True)
        self.write()

    def write(self):
        """Write ``skipped_traces.csv`` (when a trace was skipped); its path or ``None``."""
        if not self.rows:
            return None
        frame = pd.DataFrame(self.rows, columns=["split", "trace_name", "reason"])
        write_csv(frame.drop_duplicates(["split", "trace_name"]), self.path)
        return self.path

    def close(self):
        """Merge the generators' logs into the CSV (and remove them); its path or ``None``."""
        for name, log in self.logs.items():
            if log.exists():
                for line in log.read_text(encoding="utf-8").splitlines():
                    trace, _, reason = line.partition("\t")
                    self.rows.append((name, trace, reason))
                log.unlink()
        return self.write()


def _checked_splits(opts, files, labeller, out):
    """Training and validation IDs after checking both splits from their metadata alone.

    Missing IDs, empty splits and metadata out of range stop the run before
    any training (with ``skip_bad``: the unusable traces are left out, logged
    and listed in ``skipped_traces.csv``, see :class:`_Skipped`); duplicates are
    counted and warned about.

    Returns:
        ``(training IDs, validation IDs, skipped)``, ``skipped`` a :class:`_Skipped`.
    """
    ids, skipped = {}, []
    for name, split in (("training", files.train), ("validation", files.valid)):
        check = check_split(split, files.hdf5, labeller=labeller, skip_bad=opts["skip_bad"],
                            name=split)
        ids[name] = check.ids[: opts["max_traces"]] if opts["max_traces"] else check.ids
        skipped += [(name, i, reason) for i, reason in check.skipped]
        if check.skipped or check.duplicates:
            logger.warning("%s split: %s", name.capitalize(), check.summary())
    return ids["training"], ids["validation"], _Skipped(out, skipped)


def _datasets(opts, files, objective, labeller, strategy, role, global_batch, train_ids,
              valid_ids, skipped=None):
    """Training and validation inputs, and the generators EpochSync keeps in step."""
    replicas = strategy.num_replicas_in_sync
    # Under several replicas a short last validation batch would leave some
    # replicas an empty slice (which CPU convolutions reject): drop it.
    valid_kwargs = dict(_generator_kwargs(opts, False, skipped), drop_remainder=replicas > 1)

    def make(ids, shard, size, training):
        kwargs = _generator_kwargs(opts, True, skipped) if training else valid_kwargs
        return DataGenerator(ids, files.hdf5, objective.pipeline, labeller, batch_size=size,
                             shard=shard, **kwargs)

    generators, validation = [], []
    if role.count > 1:  # explicit per-worker shards, see utrans.train.distribute
        train = distribute.distributed_dataset(
            strategy, lambda ids, shard, size: make(ids, shard, size, True), train_ids,
            global_batch, made=generators, name="training")
        valid = distribute.distributed_dataset(
            strategy, lambda ids, shard, size: make(ids, shard, size, False), valid_ids,
            global_batch, made=validation, name="validation")
    else:  # Keras splits each global batch across the local replicas
        train = make(train_ids, None, global_batch, True)
        valid = make(valid_ids, None, global_batch, False)
        generators.append(train)
        validation.append(valid)
    return train, valid, generators, validation


def _center(model, opts, files, objective, labeller, train_ids, batch_size, skipped=None):
    """Centre the output biases on the first four training batches (utrans.train.centering).

    The batches come from the whole training split, not this worker's shard, so
    every worker of a multi-worker run sets the same biases.
    """
    generator = DataGenerator(train_ids, files.hdf5, objective.pipeline, labeller,
                              batch_size=batch_size, **_generator_kwargs(opts, True, skipped))
    try:
        return center_outputs(model, [generator[i] for i in range(min(4, len(generator)))])
    finally:
        generator.close()


def _compile(opts, model_name, model_kwargs, objective, learning_rate, given_model=None):
    """Build (or take) the model, load the checkpoint and compile; returns (model, weights note)."""
    if given_model is not None:
        model, note = given_model, "the model object given to fit()"
    else:
        model, note = build_model(
            model_name, foundation_weights=opts["foundation_weights"],
            freeze_backbone=opts["freeze_backbone"], backbone_kwargs=opts["backbone_kwargs"],
            **model_kwargs)
    if opts["checkpoint"]:
        note = load_weights(model, opts["checkpoint"])
    optimizer = FusedAdam(learning_rate=learning_rate)
    if opts["mixed_precision"]:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    loss, loss_weights = objective.loss()
    model.compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights,
                  jit_compile=opts["jit_compile"], run_eagerly=opts["run_eagerly"])
    # Create the optimizer's slots now, eagerly: left to the first train step, Keras
    # traces that step twice (once to create them), which doubles its start-up time.
    model.optimizer.build(model.trainable_variables)
    return model, note


def _model_name(model, checkpoint, task):
    """Registry name of the model to train from ``model=`` (a name, a preset or a model)."""
    if isinstance(model, keras.Model):
        return model.name if model.name in list_models() else task.default_model
    if model in presets.PRESETS and model not in list_models():
        return presets.get_preset(model).model
    if model is None and checkpoint in presets.PRESETS:
        return presets.get_preset(checkpoint).model
    return model or task.default_model


@dataclasses.dataclass
class _Outputs:
    """Where a run writes: its folder, models, backup, and whether it resumes."""

    root: pathlib.Path
    models: pathlib.Path
    backup: pathlib.Path
    resuming: bool


def _outputs(opts, task, role):
    out = output_dir(opts["output_name"] or task.output_name)
    backup = out / "backup"
    if not role.is_chief:
        # Standard MultiWorkerMirroredStrategy practice: only the chief writes the
        # outputs; this worker keeps its own backup (to resume) and a scratch folder.
        backup = out / f"backup_worker{role.index}"
        out = pathlib.Path(tempfile.mkdtemp(prefix=f"utrans_worker{role.index}_"))
        logger.info("Worker %d of %d: outputs go to the chief; scratch folder %s", role.index,
                    role.count, out)
    try:
        (out / "models").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputPathError(f"--output_name {opts['output_name'] or task.output_name}: cannot "
                              f"create {out / 'models'} ({err.strerror or err}).") from None
    if backup.exists() and not opts["resume"]:
        shutil.rmtree(backup)
    remove_stale_temporaries(out, out / "models", backup)
    return _Outputs(out, out / "models", backup, backup.exists())


def _objective(model, model_name, opts, task, files):
    """The objective of the model to train, from the conventions the run gives it."""
    if isinstance(model, keras.Model):
        conventions = get_conventions(model)
    else:
        conventions = plan_conventions(model_name, task,
                                       given={k: opts[k] for k in CONVENTION_OPTIONS},
                                       checkpoint=opts["checkpoint"], demo=files.demo)
    options = opts["objective_options"]
    if options is None:
        options = (task.demo.get("objective_options", {})
                   if files.demo and model_name == task.default_model else {})
    try:
        return get_objective(task, conventions, **options)
    except (TypeError, ValueError) as err:
        raise ModelInputError(f"--objective_options: {err}" if opts["objective_options"] else
                              str(err)) from err


def _config(task, model_name, model_kwargs, opts, files, settings, strategy, role, note,
            objective, n_parameters):
    """The run's ``training_config.json`` (data paths absolute)."""
    return dict(
        task=task.name, quantity=task.quantity, model=model_name, model_kwargs=model_kwargs,
        backbone_kwargs=opts["backbone_kwargs"], input_hdf5=files.hdf5,
        input_trainset=files.train, input_validset=files.valid, input_testset=files.test,
        max_d=opts["max_d"], min_d=opts["min_d"],
        normalization=objective.conventions.normalization, seed=opts["seed"],
        batch_size=settings["batch_size"], replicas=strategy.num_replicas_in_sync,
        global_batch_size=settings["batch_size"] * strategy.num_replicas_in_sync,
        strategy=distribute.strategy_name(strategy), workers=role.count,
        epochs=settings["epochs"], patience=settings["patience"],
        learning_rate=settings["learning_rate"], lr_breakpoints=settings["lr_breakpoints"],
        label_type=settings["label_type"], augmentation=opts["augmentation"],
        rates={k: opts[k] for k in _REFERENCE_RATES}, weights=note, demo=files.demo,
        conventions=objective.settings(), checkpoint=opts["checkpoint"],
        n_parameters=n_parameters,
    )


def _callbacks(outs, settings, generators, validation, timer, extra):
    history = HistoryCSV(outs.root / "history.csv", extra=_skip_counter(generators))
    best = AtomicBestCheckpoint(outs.models, monitor="val_loss")

    def restored(rows):
        history.rows = [dict(r) for r in rows]
        write_history(history.path, history.rows)
        best.restore(rows)

    return [
        # history first: an epoch's row is on disk before its checkpoints are written
        history,
        VerifiedBackupAndRestore(outs.backup, history=restored, rows=lambda: history.rows),
        distribute.EpochSync(generators, validation),
        best,
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings["patience"]),
        keras.callbacks.LearningRateScheduler(make_lr_schedule(
            base_lr=settings["learning_rate"],
            **({"breakpoints": settings["lr_breakpoints"]} if settings["lr_breakpoints"] else {})),
            verbose=0),
        timer,
        *extra,
    ]


def _skip_counter(generators):
    """``extra()`` for the history: traces left out of the epoch as bad (``--skip_bad``).

    A trace found bad is left out of its epoch and of every later one, so each
    epoch counts the bad traces found so far (in it or before).
    """

    def extra():
        counts = [len(g.skipped) if hasattr(g, "skipped") else None for g in generators]
        counts = [c for c in counts if c is not None]
        return {"skipped_traces": int(sum(counts))} if counts else {}

    return extra


def fit(task, model=None, data=None, *, callbacks=(), **options):
    """Train a model on a task; returns a :class:`FitResult`.

    Args:
        task: a :class:`utrans.core.tasks.Task`, its name (``"magnitude"``) or number.
        model: a registered model of the task's quantity (``"magnet"``), a preset
            name (its model, fine-tuned from its weights with its conventions),
            a built utrans ``keras.Model``, or ``None`` (the task's default model).
        data: a :class:`DataFiles` or a dict with ``hdf5``, ``train``, ``valid``
            and optionally ``test``; ``None`` writes and uses the synthetic demo
            dataset in the output folder.
        callbacks: extra Keras callbacks, run after the engine's own (backup,
            best checkpoint, CSV log, early stopping, learning-rate schedule).
        **options: any of :data:`TRAIN_OPTIONS` (see ``trainerN.py --help``;
            e.g. ``epochs=5``, ``batch_size=32``, ``sampling_rate=50``).

    Returns:
        :class:`FitResult`.

    Raises:
        TypeError: an unknown option.
        ModelInputError: the model does not measure the task's quantity, or its
            options do not fit.
        FileNotFoundError: a data file is missing.
        utrans.formats.BadTraceError: an unusable trace (``skip_bad=False``).
    """
    task = get_task(task)
    opts = defaults(TRAIN_OPTIONS, options, "fit")
    if (isinstance(model, str) and model in presets.PRESETS and opts["checkpoint"] is None
            and model not in list_models()):
        opts["checkpoint"] = model  # a preset (not also a registry name): fine-tune its weights
    model_name = _model_name(model, opts["checkpoint"], task)
    check_model_quantity(model_name, task)
    strategy = setup_runtime(opts)
    role = distribute.worker_role(strategy)
    outs = _outputs(opts, task, role)
    files = _prepare_data(DataFiles.coerce(data), task, outs.root, opts["seed"])
    demo_clean = files.demo and opts["augmentation"] and not task.demo.get("augmentation", True)
    if demo_clean:
        opts["augmentation"] = False
    settings, description = _run_settings(opts, task, model_name, files.demo)
    if demo_clean:
        description += " (the short demo learns faster on clean traces)"
    logger.info("Training with the %s", description)
    global_batch = settings["batch_size"] * strategy.num_replicas_in_sync
    objective = _objective(model, model_name, opts, task, files)
    labeller = _labeller(opts, task, objective, settings["label_type"])
    train_ids, valid_ids, skipped = _checked_splits(opts, files, labeller, outs.root)
    for name, ids, needed in (("training", train_ids, global_batch),
                              ("validation", valid_ids, strategy.num_replicas_in_sync)):
        if len(ids) < needed:
            raise ModelInputError(
                f"The {name} split has {len(ids)} traces, fewer than one "
                + ("global batch" if name == "training" else "trace per replica")
                + f" ({needed}: --batch_size {settings['batch_size']} x "
                f"{strategy.num_replicas_in_sync} replica(s)). Lower --batch_size. Split: "
                + (files.train if name == "training" else files.valid))
    model_kwargs = _model_kwargs(opts, task, model_name, objective.conventions, files.demo)
    logger.info("Strategy: %s with %d replica(s); batch size %d per replica, %d global%s",
                distribute.strategy_name(strategy), strategy.num_replicas_in_sync,
                settings["batch_size"], global_batch,
                f"; {role.count} workers" if role.count > 1 else "")
    train_gen, valid_gen, generators, validation = _datasets(
        opts, files, objective, labeller, strategy, role, global_batch, train_ids, valid_ids,
        skipped)
    with strategy.scope():
        built, note = _compile(opts, model_name, model_kwargs, objective, settings["learning_rate"],
                               model if isinstance(model, keras.Model) else None)
    logger.info("Weights: %s", note)
    centred = {}
    if (opts["center_outputs"] and opts["checkpoint"] is None and not isinstance(model, keras.Model)
            and not outs.resuming and task.kind in _CENTERED_KINDS):
        try:
            centred = _center(built, opts, files, objective, labeller, train_ids, global_batch,
                              skipped)
        except BadTraceError as bad:
            raise _listed(bad, skipped) from None
    logger.info("Model %s: %s parameters; %s", model_name, f"{built.count_params():,}",
                objective.conventions.describe())
    config = _config(task, model_name, model_kwargs, opts, files, settings, strategy, role, note,
                     objective, int(built.count_params()))
    config["centred_outputs"] = {name: [float(v) for v in goal]
                                 for name, (goal, _, _) in centred.items()}
    previous = outs.root / "training_config.json"
    if outs.resuming and previous.exists():  # centred when the interrupted run started
        config["centred_outputs"] = json.loads(previous.read_text()).get("centred_outputs", {})
    write_json(config, outs.root / "training_config.json")
    timer = _EpochTimer()
    if outs.resuming:
        logger.info("Resuming from the backup in %s (resume=False / --no_resume starts over)",
                    outs.backup)
    start = time.time()
    # shuffle=False: the DataGenerator shuffles its traces from (seed, epoch);
    # Keras's own shuffling of the batch order would draw from the global random
    # state, which a resumed run does not share with the interrupted one.
    try:
        history = built.fit(train_gen, validation_data=valid_gen, epochs=settings["epochs"],
                            callbacks=_callbacks(outs, settings, generators, validation, timer,
                                                 callbacks),
                            verbose=opts["verbose"], shuffle=False)
    except Exception as exc:  # noqa: BLE001 - re-raised unless it is a bad trace TF wrapped
        bad = bad_trace_error(exc, generators + validation)
        if bad is None:
            raise
        raise _listed(bad, skipped) from None
    finally:
        for dataset in generators + validation:  # release the data files
            getattr(dataset, "close", lambda: None)()
        skipped.close()
    elapsed = time.time() - start
    if not role.is_chief:
        shutil.rmtree(outs.root, ignore_errors=True)
        logger.info("Worker %d: training finished in %.1f s", role.index, elapsed)
        return FitResult(output_dir(opts["output_name"] or task.output_name), None,
                         history.history, config, timer.mean())
    return _finish(outs.root, outs.models, history, config, elapsed, timer)


def _listed(bad, skipped):
    """A bad-trace error that says where the skipped traces are listed (with ``skip_bad``)."""
    path = skipped.close()
    if path is None:
        return bad
    return BadTraceError(bad.file, bad.trace_id, f"{bad.reason}. Every skipped trace is listed "
                                                 f"with its reason in {path}")


class _EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch run (for ``seconds_per_epoch``)."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)

    def mean(self):
        return float(np.mean(self.seconds)) if self.seconds else float("nan")


def _finish(out, models_dir, history, config, elapsed, timer):
    history_csv = out / "history.csv"
    plots.plot_loss_curves(history_csv, out / "loss_curves.png")
    for key in ("loss", "val_loss"):
        values = history.history.get(key, [])
        if values:
            logger.info("%s per epoch: %s", key, ", ".join(f"{v:.4g}" for v in values))
    best = models_dir / "best.keras"
    logger.info("Training finished in %.1f s. Best model: %s; log: %s; curves: %s", elapsed,
                best, history_csv, out / "loss_curves.png")
    frame = pd.read_csv(history_csv) if history_csv.exists() else pd.DataFrame(history.history)
    return FitResult(out, best if best.exists() else None, frame, config, timer.mean())
