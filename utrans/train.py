"""The training engine behind every ``01_train/trainerN.py``.

One function, :func:`run_training`, takes parsed command-line arguments and a
:class:`utrans.tasks.Task`: it sets up the runtime (seed, determinism, logical
CPU replicas, mixed precision), picks a ``tf.distribute`` strategy, builds the
model inside ``strategy.scope()``, feeds :class:`utrans.data.DataGenerator`
to ``model.fit`` and writes everything under ``<output_name>_outputs/``::

    <output_name>_outputs/
        data/                 the synthetic demo dataset (demo runs only)
        models/best.keras     best model (by val_loss), written atomically
        models/best.weights.h5
        backup/               BackupAndRestore state (removed after a finished run;
                              worker k > 0 of a multi-worker run: backup_worker<k>/)
        training_config.json  task, model, data files, max_d/min_d, seed, ...
        history.csv           one row per epoch (CSVLogger, appended on resume)
        loss_curves.png

Distribution (``--strategy``): the model, optimizer and metrics are built
inside ``strategy.scope()``; ``--batch_size`` is per replica and the global
batch is ``batch_size x replicas``. How the data reaches the replicas (the
PyDataset split by Keras on one machine, explicit per-worker shards with
``AutoShardPolicy.OFF`` across machines) is explained in
:mod:`utrans.distribute`. With MultiWorkerMirroredStrategy only the chief
(worker 0) writes the outputs above; the other workers write into a temporary
folder and keep their BackupAndRestore state in ``backup_worker<k>/``.

Fault tolerance: ``BackupAndRestore`` saves weights, optimizer state and the
epoch after every epoch; rerunning the same command resumes there (the data
generators are set to the resumed epoch, so with ``--deterministic`` the
result equals an uninterrupted run); ``--no_resume`` starts over. The best
model is written atomically (temporary file + rename).
"""

import argparse
import inspect
import json
import logging
import os
import pathlib
import shutil
import tempfile
import time

import keras
import numpy as np

from utrans import distribute

logger = logging.getLogger(__name__)

__all__ = [
    "AtomicBestCheckpoint",
    "add_training_arguments",
    "build_task_model",
    "check_model_task",
    "load_checkpoint",
    "make_adapter",
    "resolve_model_kwargs",
    "make_strategy",
    "output_dir",
    "run_training",
    "setup_runtime",
]

STRATEGIES = ("auto", "default", "mirrored", "multiworker")


class TrainingInputError(ValueError):
    """A trainer option does not fit (checkpoint, channel order, ...); the message says how."""


def output_dir(output_name):
    """``<output_name>_outputs`` as a Path (the folder every script writes to)."""
    return pathlib.Path(f"{output_name}_outputs")


def add_training_arguments(parser, task):
    """Add the arguments shared by every trainer to ``parser``.

    Args:
        parser: an ``argparse.ArgumentParser``.
        task: the :class:`utrans.tasks.Task` whose defaults to show.

    Returns:
        The parser.
    """
    data = parser.add_argument_group("data")
    data.add_argument("--input_hdf5", default=None,
                      help="HDF5 file with the traces (STEAD merged, U-Trans DataCollected or a "
                           "SeisBench waveforms.hdf5). Default: write and use the synthetic demo "
                           "dataset in the output folder.")
    data.add_argument("--input_trainset", default=None, help=".npy file of training trace IDs.")
    data.add_argument("--input_validset", default=None, help=".npy file of validation trace IDs.")
    data.add_argument("--input_testset", default=None,
                      help=".npy file of test trace IDs (recorded for the tester).")
    data.add_argument("--normalization_mode", default="std", choices=("std", "max"),
                      help="Per-trace normalisation (default: %(default)s).")
    data.add_argument("--max_d", type=float, default=114.5,
                      help="Depth normalisation maximum in km (default: %(default)s).")
    data.add_argument("--min_d", type=float, default=1e-5,
                      help="Depth normalisation minimum in km (default: %(default)s).")
    data.add_argument("--workers", type=int, default=1,
                      help="Data-loading workers of the PyDataset (default: %(default)s).")
    data.add_argument("--use_multiprocessing", action="store_true",
                      help="Load data in worker processes instead of threads.")

    aug = parser.add_argument_group("augmentation (rates are probabilities per trace)")
    aug.add_argument("--no_augmentation", dest="augmentation", action="store_false",
                     help="Train on clean traces only.")
    aug.add_argument("--add_event_r", type=float, default=0.6, help="(default: %(default)s)")
    aug.add_argument("--shift_event_r", type=float, default=0.99, help="(default: %(default)s)")
    aug.add_argument("--add_noise_r", type=float, default=0.3, help="(default: %(default)s)")
    aug.add_argument("--drop_channel_r", type=float, default=0.5, help="(default: %(default)s)")
    aug.add_argument("--add_gap_r", type=float, default=0.2, help="(default: %(default)s)")
    aug.add_argument("--scale_amplitude_r", type=float, default=None, help="(default: off)")
    aug.add_argument("--pre_emphasis", action="store_true", help="Pre-emphasise waveforms.")

    model = parser.add_argument_group("model")
    others = f" Other models for this task: {', '.join(task.models)}." if task.models else ""
    model.add_argument("--model", default=task.default_model,
                       help="Registered model name (default: %(default)s)." + others
                            + " See utrans.models.list_models().")
    model.add_argument("--checkpoint", default=None,
                       help="Weights to start from: a PyTorch state_dict .pth (SeisT and "
                            "baselines), a .keras or .weights.h5 file of the same model, or a "
                            "preset name such as seist_s_dpk_diting (see utrans.presets).")
    model.add_argument("--in_samples", type=int, default=None,
                       help="Window length of SeisT/baseline models in samples (default 8192, "
                            "DiTingMotion 128): the data's 6000 samples are zero padded at the "
                            "end or cropped. U-Trans models always take 6000.")
    model.add_argument("--sampling_rate", type=float, default=None,
                       help="Sampling rate the model expects, in Hz (default: the model's "
                            "convention, that of a preset --checkpoint: 50 for the DiTing "
                            "checkpoints; otherwise 100, the data's).")
    model.add_argument("--component_order", "--channel_order", dest="component_order",
                       default=None,
                       help="Component order the model expects, a permutation of ENZ (default: "
                            "the model's convention; ZNE for SeisT and the baselines).")
    model.add_argument("--p_position_ratio", type=float, default=None,
                       help="Scalar tasks of SeisT/baseline models: cut the --in_samples window "
                            "so the P pick sits at this fraction of it (default: the window "
                            "starts with the trace; demo runs set it per task).")
    model.add_argument("--foundation_weights", default=None,
                       help="U-Trans foundation weights for U-Trans downstream models: a legacy "
                            ".h5, a .weights.h5/.keras of UTransBackbone (e.g. trainer0's "
                            "models/best.keras), 'preset' (the utrans_foundation preset) or "
                            "'random'. Default: the preset when its file is available, otherwise "
                            "random initialisation; for pretraining (trainer0) the weights to "
                            "continue from, default random initialisation.")
    model.add_argument("--freeze_backbone", action="store_true",
                       help="Keep the U-Trans backbone frozen (default: fine-tune it).")
    model.add_argument("--demo_size", action="store_true",
                       help="Use the small demo configuration of the model.")
    model.add_argument("--model_kwargs", type=json.loads, default=None, metavar="JSON",
                       help="Model constructor overrides as JSON, e.g. '{\"depth\": 4}'.")
    model.add_argument("--backbone_kwargs", type=json.loads, default=None, metavar="JSON",
                       help="UTransBackbone constructor arguments for a randomly initialised "
                            "backbone (with --foundation_weights random).")

    train = parser.add_argument_group("training")
    train.add_argument("--output_name", default=task.output_name,
                       help="Outputs go to <output_name>_outputs/ (default: %(default)s).")
    train.add_argument("--batch_size", type=int, default=None,
                       help="Per-replica batch size (default: 200, demo: smaller).")
    train.add_argument("--epochs", type=int, default=None, help="(default: 200, demo: a few)")
    train.add_argument("--patience", type=int, default=None,
                       help="Early-stopping patience in epochs (default: 12).")
    train.add_argument("--learning_rate", type=float, default=None,
                       help="Initial learning rate of the step schedule (default: 1e-4; demo "
                            "runs of the SeisT tasks: 1e-3, the reference's maximum rate).")
    train.add_argument("--max_traces", type=int, default=None,
                       help="Use at most this many training/validation traces (quick checks).")
    train.add_argument("--seed", type=int, default=0, help="Global random seed (default: 0).")
    train.add_argument("--deterministic", action="store_true",
                       help="Enable TensorFlow op determinism (identical weights on reruns).")
    train.add_argument("--no_resume", dest="resume", action="store_false",
                       help="Discard a backup left by an interrupted run in the output folder "
                            "and start over. By default a rerun of an interrupted command "
                            "resumes at its last completed epoch, with the optimizer state "
                            "(BackupAndRestore); with --deterministic the result equals an "
                            "uninterrupted run.")
    train.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2),
                       help="Keras progress output (default: %(default)s).")

    dist = parser.add_argument_group("hardware")
    dist.add_argument("--strategy", default="auto", choices=STRATEGIES,
                      help="auto: MirroredStrategy if more than one GPU is visible, else the "
                           "default strategy; mirrored: all local GPUs (or CPU replicas); "
                           "multiworker: MultiWorkerMirroredStrategy from TF_CONFIG.")
    dist.add_argument("--cpu_replicas", type=int, default=0,
                      help="Split the CPU into N logical devices before the strategy is made "
                           "(testing distribution without GPUs).")
    dist.add_argument("--mixed_precision", action="store_true",
                      help="mixed_float16 compute with a loss-scaled optimizer (GPU; on CPU "
                           "it runs, slower than float32, with a warning).")
    dist.add_argument("--jit_compile", action="store_true", help="Compile the train step with XLA.")
    dist.add_argument("--run_eagerly", action="store_true",
                      help="Run the train step eagerly instead of tracing a graph (debugging, or "
                           "tiny runs where tracing would dominate).")
    return parser


def setup_runtime(args):
    """Seed, determinism, logical CPU devices and precision; returns the strategy.

    Must run before any TensorFlow op executes (logical devices cannot be
    changed afterwards).
    """
    import tensorflow as tf

    if args.cpu_replicas and args.cpu_replicas > 1:
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * args.cpu_replicas
        )
    # The strategy comes before anything that starts the TF runtime (seeding does):
    # MultiWorkerMirroredStrategy configures collective ops, possible at startup only.
    strategy = make_strategy(args.strategy)
    keras.utils.set_random_seed(args.seed)
    if args.deterministic:
        tf.config.experimental.enable_op_determinism()
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
        if not tf.config.list_physical_devices("GPU"):
            logger.warning("--mixed_precision without a GPU: Keras computes in float16 on the "
                           "CPU, which is slower than float32 there (use it on GPUs).")
        logger.info("Precision policy: %s", keras.mixed_precision.global_policy().name)
    return strategy


def make_strategy(name="auto"):
    """Build the ``tf.distribute`` strategy called ``name`` (see ``--strategy``)."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy. Expected one of {STRATEGIES}. Received: {name!r}")
    if name == "multiworker":  # before listing devices, which starts the TF runtime
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy multiworker needs TF_CONFIG describing the cluster and "
                             "this worker's task; see README, 'Training on several GPUs or "
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


def _accepts(fn, name):
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def load_backbone(foundation_weights=None, backbone_kwargs=None):
    """The U-Trans backbone for a downstream model, and a sentence saying where it came from.

    Args:
        foundation_weights: ``None`` (the preset when its file is cached or
            can be downloaded, else random), ``"preset"``, ``"random"``, or a path to a legacy ``.h5``,
            a ``.weights.h5`` or a ``.keras`` file of a ``UTransBackbone``.
        backbone_kwargs: constructor arguments of a randomly initialised backbone.

    Returns:
        ``(backbone, description)``.
    """
    from utrans import presets
    from utrans.models.utrans import UTransBackbone

    if foundation_weights in (None, "preset"):
        try:
            path = presets.preset_path("utrans_foundation", timeout=15.0)
        except presets.PresetUnavailableError as err:
            if foundation_weights == "preset":
                raise
            return UTransBackbone(), (
                f"U-Trans backbone: random initialisation, because the utrans_foundation preset "
                f"is not available. {err}"
            )
        return UTransBackbone.from_legacy_h5(path), f"U-Trans backbone: preset weights {path}"
    if foundation_weights == "random":
        return (UTransBackbone(**(backbone_kwargs or {})),
                "U-Trans backbone: random initialisation (requested)")
    if backbone_kwargs:
        raise ValueError("--backbone_kwargs applies to a randomly initialised backbone only "
                         f"(--foundation_weights random). Received: --foundation_weights "
                         f"{foundation_weights}")
    path = pathlib.Path(foundation_weights)
    if not path.exists():
        raise FileNotFoundError(f"--foundation_weights file not found: {path}")
    if path.name.endswith(".keras"):
        backbone = keras.saving.load_model(path, compile=False)
        if not isinstance(backbone, UTransBackbone):
            raise ValueError(f"{path} holds a {type(backbone).__name__}, not a UTransBackbone.")
    elif path.name.endswith(".weights.h5"):
        backbone = UTransBackbone()
        backbone.load_weights(path)
    else:
        backbone = UTransBackbone.from_legacy_h5(path)
    return backbone, f"U-Trans backbone: weights from {path}"


def build_task_model(model_name, *, foundation_weights=None, freeze_backbone=False,
                     backbone_kwargs=None, **kwargs):
    """Build a registered model; U-Trans downstream models get their backbone here.

    The backbone itself (``utrans_foundation``, task 0) is built by
    :func:`load_backbone` from ``foundation_weights`` (default: random
    initialisation with ``backbone_kwargs`` and ``kwargs``).

    Returns:
        ``(model, description)`` where description says where weights came from.
    """
    from utrans.models import registry

    fn = registry.get_model_builder(model_name)
    if registry.model_task(model_name) == "reconstruction":
        # Pretraining trains the backbone itself: random initialisation unless
        # --foundation_weights names weights to continue from.
        from utrans.conventions import CONVENTION_KEYS

        arch = {k: v for k, v in kwargs.items() if k not in CONVENTION_KEYS}
        return load_backbone(foundation_weights or "random",
                             dict(backbone_kwargs or {}, **arch) or None)
    if _accepts(fn, "backbone"):
        backbone, note = load_backbone(foundation_weights, backbone_kwargs)
        model = registry.get_model(
            model_name, backbone=backbone, freeze_backbone=freeze_backbone, **kwargs
        )
        return model, note
    return registry.get_model(model_name, **kwargs), "random initialisation"


class AtomicBestCheckpoint(keras.callbacks.Callback):
    """Save the best model as ``best.keras`` and ``best.weights.h5``, atomically.

    Each file is written under a temporary name in the same folder and then
    renamed, so a run killed mid-write never leaves a truncated model behind.

    Args:
        models_dir: folder of the two files.
        monitor: the logged quantity to minimise (default ``val_loss``).
        best: the best value so far (a resumed run passes the one of its
            ``history.csv``, so a worse epoch does not overwrite the best model).
    """

    def __init__(self, models_dir, monitor="val_loss", best=np.inf):
        super().__init__()
        self.models_dir = pathlib.Path(models_dir)
        self.monitor = monitor
        self.best = float(best)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not np.isfinite(value) or value >= self.best:
            return
        previous, self.best = self.best, float(value)
        self.models_dir.mkdir(parents=True, exist_ok=True)
        for name, save in (("best.keras", self.model.save),
                           ("best.weights.h5", self.model.save_weights)):
            fd, tmp = tempfile.mkstemp(dir=self.models_dir, suffix="." + name)
            os.close(fd)
            tmp = pathlib.Path(tmp)
            try:
                save(tmp)
                os.replace(tmp, self.models_dir / name)
            finally:
                tmp.unlink(missing_ok=True)
        logger.info("Epoch %d: %s improved from %.5g to %.5g; saved %s", epoch + 1,
                    self.monitor, previous, self.best, self.models_dir / "best.keras")


def _prepare_data(args, task, out):
    """Resolve the data files: the user's, or the synthetic demo written into ``out/data``."""
    from utrans import synthetic

    if args.input_hdf5 is None:
        data_dir = out / "data"
        demo = task.demo
        layout = demo.get("layout", "datacollected")
        logger.info(f"No --input_hdf5 given: writing the synthetic California demo dataset to {data_dir}")
        files = synthetic.write_synthetic_dataset(
            data_dir, n_events=demo.get("n_events", 400), n_noise=demo.get("n_noise", 0),
            seed=args.seed, layouts=(layout,),
        )
        suffix = "_all" if demo.get("with_noise") else ""
        return dict(hdf5=str(files[layout]), train=str(files["train" + suffix]),
                    valid=str(files["valid" + suffix]), test=str(files["test" + suffix]),
                    demo=True)
    missing = [n for n in ("input_trainset", "input_validset") if getattr(args, n) is None]
    if missing:
        raise FileNotFoundError(f"--input_hdf5 needs {' and '.join('--' + m for m in missing)} too.")
    for name in ("input_hdf5", "input_trainset", "input_validset"):
        if not pathlib.Path(getattr(args, name)).exists():
            raise FileNotFoundError(f"--{name}: file not found: {getattr(args, name)}")
    return dict(hdf5=args.input_hdf5, train=args.input_trainset, valid=args.input_validset,
                test=args.input_testset, demo=False)


def _generator_kwargs(args, training):
    common = dict(
        dim=6000, n_channels=3, norm_mode=args.normalization_mode, max_d=args.max_d,
        min_d=args.min_d, seed=args.seed, workers=args.workers,
        use_multiprocessing=args.use_multiprocessing,
    )
    if not training:
        return dict(common, shuffle=False, augmentation=False, drop_remainder=False)
    return dict(
        common, shuffle=True, augmentation=args.augmentation, add_event_r=args.add_event_r,
        shift_event_r=args.shift_event_r, add_noise_r=args.add_noise_r,
        drop_channe_r=args.drop_channel_r, add_gap_r=args.add_gap_r,
        scale_amplitude_r=args.scale_amplitude_r, pre_emphasis=args.pre_emphasis,
    )


def check_model_task(model_name, task):
    """Raise :class:`TrainingInputError` unless ``model_name`` is registered for ``task``."""
    import utrans.models  # noqa: F401  (registers every model)
    from utrans.models import registry

    if model_name not in registry.list_models():
        raise TrainingInputError(f"Unknown model {model_name!r}. Models for the {task.name} task: "
                                 f"{', '.join(registry.list_models(task.name))}")
    fits = registry.model_task(model_name)
    if fits not in (None, task.name):
        raise TrainingInputError(
            f"Model {model_name} is registered for the {fits} task, not {task.name}. Models for the "
            f"{task.name} task: {', '.join(registry.list_models(task.name))}")


def load_checkpoint(model, checkpoint):
    """Load ``checkpoint`` into ``model``; returns a sentence saying what was loaded.

    Args:
        model: the built Keras model.
        checkpoint: a ``.pth`` PyTorch state_dict (read without PyTorch, see
            :func:`utrans.convert.load_torch_checkpoint`), a ``.keras`` or
            ``.weights.h5`` file of the same architecture, a legacy Keras 2
            ``.h5`` file of the U-Trans backbone, or a preset name
            (:mod:`utrans.presets`; downloaded to the cache when missing).

    Returns:
        A description for the log.
    """
    from utrans import presets

    path = pathlib.Path(checkpoint)
    if not path.exists() and checkpoint in presets.PRESETS:
        preset = presets.get_preset(checkpoint)
        path = presets.preset_path(checkpoint)
        from utrans.models import registry

        cls = registry.get_model_builder(preset.model)
        if preset.model != model.name and not (isinstance(cls, type) and isinstance(model, cls)):
            logger.warning("Preset %s was published for %s; loading it into %s.", checkpoint,
                           preset.model, model.name)
    if not path.exists():
        raise FileNotFoundError(f"--checkpoint: no such file or preset: {checkpoint}. Presets: "
                                f"{', '.join(presets.list_presets())}")
    if path.suffix == ".pth":
        from utrans.convert import load_torch_checkpoint

        if not hasattr(model, "torch_weight_map"):
            raise TrainingInputError(f"--checkpoint {path}: {model.name} has no PyTorch counterpart; "
                             "use a .keras or .weights.h5 file.")
        load_torch_checkpoint(model, path)
    elif path.name.endswith((".keras", ".weights.h5")):
        model.load_weights(path)
    elif path.suffix == ".h5" and hasattr(model, "from_legacy_h5"):
        from utrans.convert.keras_h5 import load_legacy_h5

        load_legacy_h5(model, path)  # a Keras 2 U-Trans backbone file (utrans_foundation preset)
    else:
        raise TrainingInputError(f"--checkpoint must be a .pth, .keras or .weights.h5 file or a preset "
                         f"name. Received: {checkpoint}")
    return f"weights from {path}"


#: The options that change a model's input conventions (see utrans.conventions).
CONVENTION_OPTIONS = ("in_samples", "sampling_rate", "component_order", "p_position_ratio")


def plan_conventions(model_name, task, *, given=None, checkpoint=None, stored=None, demo=False):
    """The conventions a run gives ``model_name``, before the model is built.

    Precedence, lowest first: the registered model's defaults; ``stored``
    (the conventions a previous run of the same model recorded); the
    conventions of a preset ``checkpoint`` (its training data); the task's
    demo window (demo runs of whole-window models); ``given`` (the user's
    options). A given value that contradicts a stored or preset convention
    is used, with a warning naming both values.

    Args:
        model_name: registered model name.
        task: the :class:`utrans.tasks.Task`.
        given: dict of user options (keys of :data:`CONVENTION_OPTIONS`; ``None`` = not given).
        checkpoint: a ``--checkpoint`` value (a preset name contributes its conventions).
        stored: conventions dict recorded by a previous run.
        demo: whether this is the embedded demo run.

    Returns:
        A :class:`utrans.conventions.Conventions`.
    """
    from utrans import presets
    from utrans.models import registry

    conv = registry.model_conventions(model_name)
    source = {}
    if stored:
        keep = {k: stored[k] for k in CONVENTION_OPTIONS if stored.get(k) is not None}
        conv = conv.replace(**keep)
        source.update({k: "the trained model" for k in keep})
    preset = presets.PRESETS.get(str(checkpoint)) if checkpoint else None
    if preset is not None:
        conv = conv.replace(**preset.conventions)
        source.update({k: f"preset {preset.name}" for k in preset.conventions})
    builder = registry.get_model_builder(model_name)
    if demo and _accepts(builder, "in_samples") and conv.p_position_ratio is None:
        conv = conv.replace(**{k: task.demo.get(k) for k in ("in_samples", "p_position_ratio")
                               if task.demo.get(k) is not None and k not in source})
    for key, value in (given or {}).items():
        if value is None:
            continue
        current = getattr(conv, key)
        if key in source and current is not None and value != current:
            logger.warning("--%s %s contradicts the %s convention of %s (%s); using %s as asked.",
                           key, value, key, source[key], current, value)
        conv = conv.replace(**{key: value})
    return conv


def make_adapter(args, task, demo, stored=None):
    """The model adapter of ``args.model`` with the conventions of :func:`plan_conventions`."""
    from utrans.adapters import get_adapter

    given = {k: getattr(args, k, None) for k in CONVENTION_OPTIONS}
    try:
        conv = plan_conventions(args.model, task, given=given, checkpoint=args.checkpoint,
                                stored=stored, demo=demo)
        return get_adapter(task, conv)
    except ValueError as err:
        raise TrainingInputError(str(err)) from err


def resolve_model_kwargs(args, task, adapter, demo):
    """Constructor arguments: demo size (default model), the conventions, then ``--model_kwargs``."""
    kwargs = dict(task.model_kwargs_demo) if (
        (demo or getattr(args, "demo_size", False)) and args.model == task.default_model) else {}
    kwargs.update(adapter.conventions.to_config())
    kwargs.update(args.model_kwargs or {})
    return kwargs


def _best_so_far(history, monitor):
    """Smallest finite ``monitor`` in a CSVLogger file (``inf`` when absent)."""
    import pandas as pd

    if not history.exists():
        return np.inf
    try:
        values = pd.read_csv(history)[monitor].to_numpy(dtype=float)
    except (KeyError, ValueError, pd.errors.EmptyDataError):
        return np.inf
    values = values[np.isfinite(values)]
    return float(values.min()) if values.size else np.inf


def run_training(args, task, callbacks=()):
    """Train ``args.model`` on ``task``; returns the output folder.

    Args:
        args: parsed arguments from a parser built with :func:`add_training_arguments`.
        task: the :class:`utrans.tasks.Task`.
        callbacks: extra Keras callbacks, run after the engine's own (backup,
            best checkpoint, CSV log, early stopping, learning-rate schedule).

    Returns:
        ``pathlib.Path`` of ``<output_name>_outputs``.
    """
    strategy = setup_runtime(args)

    from utrans import data as data_mod
    from utrans import plots

    role = distribute.worker_role(strategy)
    out = output_dir(args.output_name)
    backup_dir = out / "backup"
    if not role.is_chief:
        # Standard MultiWorkerMirroredStrategy practice: only the chief writes the
        # outputs; this worker keeps its own backup (to resume) and a scratch folder.
        backup_dir = out / f"backup_worker{role.index}"
        out = pathlib.Path(tempfile.mkdtemp(prefix=f"utrans_worker{role.index}_"))
        logger.info(f"Worker {role.index} of {role.count}: outputs go to the chief; "
                    f"scratch folder {out}")
    models_dir = out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    if backup_dir.exists() and not args.resume:
        shutil.rmtree(backup_dir)
    resuming = backup_dir.exists()

    files = _prepare_data(args, task, out)
    demo = files["demo"]
    batch_size = args.batch_size or (task.demo.get("batch_size", 16) if demo else 200)
    epochs = args.epochs or (task.demo.get("epochs", 3) if demo else 200)
    learning_rate = args.learning_rate or (task.demo.get("learning_rate", 1e-4) if demo else 1e-4)
    patience = args.patience or (task.demo.get("patience", epochs) if demo else 12)
    if demo and args.augmentation and not task.demo.get("augmentation", True):
        args.augmentation = False
        logger.info("Demo run: augmentation off (the short demo learns faster on clean traces; "
                    "real runs use the reference rates)")
    replicas = strategy.num_replicas_in_sync
    global_batch = batch_size * replicas

    from utrans.formats import load_split

    train_ids, valid_ids = load_split(files["train"]), load_split(files["valid"])
    if args.max_traces:
        train_ids, valid_ids = train_ids[: args.max_traces], valid_ids[: args.max_traces]

    logger.info(f"Strategy: {distribute.strategy_name(strategy)} with {replicas} replica(s); "
          f"batch size {batch_size} per replica, {global_batch} global"
          + (f"; {role.count} workers" if role.count > 1 else ""))
    from utrans.adapters import AdaptedDataset
    from utrans.labels import get_labeller

    check_model_task(args.model, task)
    adapter = make_adapter(args, task, demo)
    model_kwargs = resolve_model_kwargs(args, task, adapter, demo)
    labeller = adapter.labeller(get_labeller(task.labeller_name, max_d=args.max_d,
                                             min_d=args.min_d))
    # Under several replicas a short last validation batch would leave some
    # replicas an empty slice (which CPU convolutions reject): drop it.
    valid_kwargs = dict(_generator_kwargs(args, False), drop_remainder=replicas > 1)

    def make_data(ids, shard, size, training):
        kwargs = _generator_kwargs(args, True) if training else valid_kwargs
        return AdaptedDataset(data_mod.DataGenerator(
            ids, files["hdf5"], batch_size=size, labeller=labeller, shard=shard, **kwargs),
            adapter)

    generators, validation = [], []
    if role.count > 1:  # explicit per-worker shards, see utrans.distribute
        train_gen = distribute.distributed_dataset(
            strategy, lambda ids, shard, size: make_data(ids, shard, size, True), train_ids,
            global_batch, made=generators, name="training")
        valid_gen = distribute.distributed_dataset(
            strategy, lambda ids, shard, size: make_data(ids, shard, size, False), valid_ids,
            global_batch, made=validation, name="validation")
    else:  # Keras splits each global batch across the local replicas
        train_gen = make_data(train_ids, None, global_batch, True)
        valid_gen = make_data(valid_ids, None, global_batch, False)
        generators.append(train_gen)
        validation.append(valid_gen)

    with strategy.scope():
        model, weights_note = build_task_model(
            args.model, foundation_weights=args.foundation_weights,
            freeze_backbone=args.freeze_backbone, backbone_kwargs=args.backbone_kwargs,
            **model_kwargs,
        )
        if args.checkpoint:
            weights_note = load_checkpoint(model, args.checkpoint)
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        if args.mixed_precision:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        loss, loss_weights = adapter.loss()
        model.compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights,
                      jit_compile=args.jit_compile, run_eagerly=args.run_eagerly)
    logger.info(weights_note)
    logger.info(f"Model {args.model}: {model.count_params():,} parameters")

    config = dict(
        task=task.name, model=args.model, model_kwargs=model_kwargs,
        backbone_kwargs=args.backbone_kwargs, input_hdf5=files["hdf5"],
        input_trainset=files["train"], input_validset=files["valid"],
        input_testset=files["test"], max_d=args.max_d, min_d=args.min_d,
        normalization_mode=args.normalization_mode, seed=args.seed,
        batch_size=batch_size, global_batch_size=global_batch, replicas=replicas,
        strategy=distribute.strategy_name(strategy), workers=role.count, epochs=epochs,
        learning_rate=learning_rate,
        weights=weights_note, demo=demo, adapter=adapter.settings(),
        checkpoint=args.checkpoint,
    )
    (out / "training_config.json").write_text(json.dumps(config, indent=2))

    schedule = data_mod.make_lr_schedule(base_lr=learning_rate)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(backup_dir)),
        distribute.EpochSync(generators, validation),
        AtomicBestCheckpoint(models_dir, monitor="val_loss",
                             best=_best_so_far(out / "history.csv", "val_loss")
                             if resuming else np.inf),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=resuming),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience),
        keras.callbacks.LearningRateScheduler(schedule, verbose=0),
        *callbacks,
    ]
    if resuming:
        logger.info(f"Resuming from the backup in {backup_dir} (use --no_resume to start over)")
    start = time.time()
    # shuffle=False: the DataGenerator shuffles its traces from (seed, epoch);
    # Keras's own shuffling of the batch order would draw from the global random
    # state, which a resumed run does not share with the interrupted one.
    history = model.fit(train_gen, validation_data=valid_gen, epochs=epochs,
                        callbacks=callbacks, verbose=args.verbose, shuffle=False)
    elapsed = time.time() - start
    if not role.is_chief:
        shutil.rmtree(out, ignore_errors=True)
        logger.info(f"Worker {role.index}: training finished in {elapsed:.1f} s")
        return output_dir(args.output_name)
    plots.plot_loss_curves(out / "history.csv", out / "loss_curves.png")
    for key in ("loss", "val_loss"):
        values = history.history.get(key, [])
        if values:
            logger.info(f"{key} per epoch: " + ", ".join(f"{v:.4g}" for v in values))
    logger.info(f"Training finished in {elapsed:.1f} s. Best model: {models_dir / 'best.keras'}; "
          f"log: {out / 'history.csv'}; curves: {out / 'loss_curves.png'}")
    return out


def trainer_main(task_name, argv=None, callbacks=()):
    """Entry point of ``01_train/trainerN.py``: parse ``argv`` and train.

    Args:
        task_name: a task of :mod:`utrans.tasks`.
        argv: command-line arguments (default ``sys.argv[1:]``).
        callbacks: extra Keras callbacks for :func:`run_training`.

    Returns:
        The output folder.
    """
    from utrans.tasks import get_task

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    task = get_task(task_name)
    parser = argparse.ArgumentParser(
        prog=f"trainer{task.number}.py",
        description=task.description + " With no arguments: a short demo run on a synthetic "
                    "dataset written into the output folder.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_training_arguments(parser, task)
    args = parser.parse_args(argv)
    from utrans.convert import CheckpointMismatchError
    from utrans.formats import BadTraceError
    from utrans.presets import PresetUnavailableError

    try:
        return run_training(args, task, callbacks=callbacks)
    except (BadTraceError, PresetUnavailableError, FileNotFoundError, TrainingInputError,
            CheckpointMismatchError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
