"""Every command-line option of the numbered scripts and of ``utrans``, defined once.

The engines are plain functions (:func:`utrans.train.fit`,
:func:`utrans.evaluate.test`, :func:`utrans.evaluate.read`) whose keyword
arguments carry the names of these options; the scripts build their parsers
from this table (:func:`add_options`) and pass the parsed values on. Values
are checked at parse time: an out-of-range value is an argparse error (exit
code 2) naming the option and the value.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

__all__ = ["CONVENTION_OPTIONS", "DATA_OPTIONS", "OPTIONS", "Option", "TEST_OPTIONS",
           "TRAIN_OPTIONS", "add_options", "defaults", "fraction", "json_object",
           "non_negative_int", "positive_float", "positive_int"]


# --------------------------------------------------------------------------- value types
def _number(kind, text, check, what):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {what}. Received: {text!r}") from None
    if not check(value):
        raise argparse.ArgumentTypeError(f"expected {what}. Received: {text}")
    return value


def positive_int(text):
    """argparse type: an integer >= 1."""
    return _number(int, text, lambda v: v >= 1, "an integer >= 1")


def non_negative_int(text):
    """argparse type: an integer >= 0."""
    return _number(int, text, lambda v: v >= 0, "an integer >= 0")


def positive_float(text):
    """argparse type: a finite number > 0."""
    return _number(float, text, lambda v: 0 < v < float("inf"), "a number > 0")


def fraction(text):
    """argparse type: a number in [0, 1] (rates, thresholds, ratios)."""
    return _number(float, text, lambda v: 0.0 <= v <= 1.0, "a number between 0 and 1")


def json_object(text):
    """argparse type: a JSON object (constructor keyword arguments)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"expected a JSON object ({err}). Received: {text!r}") \
            from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"depth\": 4}}'. "
                                         f"Received: {text!r}")
    return value


def component_order(text):
    """argparse type: a permutation of ``ENZ``."""
    order = str(text).upper()
    if sorted(order) != ["E", "N", "Z"]:
        raise argparse.ArgumentTypeError(f"expected a permutation of ENZ such as ZNE. "
                                         f"Received: {text!r}")
    return order


# --------------------------------------------------------------------------- the table
@dataclasses.dataclass(frozen=True)
class Option:
    """One command-line option.

    Attributes:
        flags: option strings (the first names the keyword argument of the engines).
        help: help text (``%(default)s`` is filled in by argparse).
        group: help section.
        kwargs: further ``add_argument`` arguments (type, default, action, choices).
    """

    flags: tuple
    help: str
    group: str
    kwargs: dict = dataclasses.field(default_factory=dict)

    @property
    def dest(self):
        """The keyword name of the option."""
        return self.kwargs.get("dest", self.flags[0].lstrip("-"))

    @property
    def default(self):
        """The value the option has when it is not given."""
        action = self.kwargs.get("action")
        return self.kwargs.get("default", {"store_true": False, "store_false": True}.get(action))


def _opt(*flags, help, group, **kwargs):
    return Option(tuple(flags), help, group, kwargs)


_DATA, _AUG, _MODEL, _RUN, _HW, _PICKS = (
    "data", "augmentation (rates are probabilities per trace)", "model", "run", "hardware",
    "picking and detection")

OPTIONS = {o.dest: o for o in [
    # data ------------------------------------------------------------------
    _opt("--input_hdf5", group=_DATA, default=None,
         help="HDF5 file with the traces (STEAD merged, U-Trans DataCollected or a SeisBench "
              "waveforms.hdf5 / folder). Default: the synthetic demo dataset (trainer) or the "
              "training run's file (tester)."),
    _opt("--input_trainset", group=_DATA, default=None, help=".npy file of training trace IDs."),
    _opt("--input_validset", group=_DATA, default=None, help=".npy file of validation trace IDs."),
    _opt("--input_testset", group=_DATA, default=None,
         help=".npy file of test trace IDs (default for the tester: the one recorded at training)."),
    _opt("--normalization", "--normalization_mode", group=_MODEL, dest="normalization",
         default=None, choices=("std", "max", "none"),
         help="Normalisation of every model window, per channel: std (demean, divide by the "
              "standard deviation), max (demean, divide by the largest absolute value) or none. "
              "A convention of the model: it is saved with it and applied wherever the model is "
              "used (default: the model's, std; tester: the trained model's)."),
    _opt("--max_d", group=_DATA, type=positive_float, default=None,
         help="Location: depth normalisation maximum in km (default: 114.5, California; tester: "
              "the value stored at training)."),
    _opt("--min_d", group=_DATA, type=float, default=None,
         help="Location: depth normalisation minimum in km (default: 1e-5; tester: as trained)."),
    _opt("--workers", group=_DATA, type=positive_int, default=1,
         help="Data-loading workers of the PyDataset (default: %(default)s)."),
    _opt("--use_multiprocessing", group=_DATA, action="store_true",
         help="Load data in worker processes instead of threads."),
    _opt("--max_traces", group=_DATA, type=positive_int, default=None,
         help="Use at most this many training/validation traces (quick checks)."),
    _opt("--skip_bad", group=_DATA, action="store_true",
         help="Skip unusable traces instead of stopping at the first one; each is named with "
              "its reason in skipped_traces.csv in the output folder."),
    # augmentation ----------------------------------------------------------
    _opt("--no_augmentation", group=_AUG, dest="augmentation", action="store_false",
         help="Train on clean traces only."),
    _opt("--add_event_r", group=_AUG, type=fraction, default=None,
         help="(default: the model's published recipe with --input_hdf5, else 0.6; 0 turns it off)"),
    _opt("--shift_event_r", group=_AUG, type=fraction, default=None,
         help="(default: the model's published recipe with --input_hdf5, else 0.99; 0 turns it off)"),
    _opt("--add_noise_r", group=_AUG, type=fraction, default=None,
         help="(default: the model's published recipe with --input_hdf5, else 0.3; 0 turns it off)"),
    _opt("--drop_channel_r", group=_AUG, type=fraction, default=None,
         help="(default: the model's published recipe with --input_hdf5, else 0.5; 0 turns it off)"),
    _opt("--add_gap_r", group=_AUG, type=fraction, default=None,
         help="(default: the model's published recipe with --input_hdf5, else 0.2; 0 turns it off)"),
    _opt("--scale_amplitude_r", group=_AUG, type=fraction, default=None,
         help="(default: the model's recipe, else off)"),
    _opt("--pre_emphasis", group=_AUG, action="store_true", help="Pre-emphasise waveforms."),
    # model -----------------------------------------------------------------
    _opt("--model", group=_MODEL, default=None,
         help="Registered model name; every model of the task's quantity is accepted (default: "
              "the task's model; tester: the trained one). See utrans.models.list_models()."),
    _opt("--checkpoint", group=_MODEL, default=None,
         help="Weights: a PyTorch state_dict .pth (SeisT and baselines), a .keras or "
              ".weights.h5 file of the same model, or a preset name such as seist_s_dpk_diting "
              "(utrans.core.presets; its conventions, e.g. 50 Hz, come with it). Trainer: the weights "
              "to start from; tester: the weights to evaluate instead of the trained model."),
    _opt("--input_model", group=_MODEL, default=None,
         help="Tester: the trained model file (.keras or .weights.h5). Default: "
              "<output_name>_outputs/models/best.keras."),
    _opt("--in_samples", group=_MODEL, type=positive_int, default=None,
         help="Model window in samples (default: the model's convention: 8192 for SeisT and the "
              "baselines, 128 DiTingMotion; U-Trans models always take 6000)."),
    _opt("--sampling_rate", group=_MODEL, type=positive_float, default=None,
         help="Sampling rate the model expects, in Hz (default: the model's convention; a "
              "preset's is that of its training data, 50 for the DiTing checkpoints)."),
    _opt("--component_order", "--channel_order", group=_MODEL, dest="component_order",
         type=component_order, default=None,
         help="Component order the model expects, a permutation of ENZ (default: the model's "
              "convention; ZNE for SeisT and the baselines, ENZ for U-Trans)."),
    _opt("--p_position_ratio", group=_MODEL, type=fraction, default=None,
         help="Scalar quantities: cut the model window so the P pick sits at this fraction of "
              "it (default: the model's convention; demo runs set it per task)."),
    _opt("--foundation_weights", group=_MODEL, default=None,
         help="U-Trans foundation weights for U-Trans downstream models: a legacy .h5, a "
              ".weights.h5/.keras of UTransBackbone (e.g. trainer0's models/best.keras), "
              "'preset' (the utrans_foundation preset) or 'random'. Default: the preset when "
              "its file is available, otherwise random initialisation; for pretraining "
              "(trainer0) the weights to continue from, default random initialisation."),
    _opt("--freeze_backbone", group=_MODEL, action="store_true",
         help="Keep the U-Trans backbone frozen (default: fine-tune it)."),
    _opt("--no_center_outputs", group=_MODEL, dest="center_outputs", action="store_false",
         help="Training from random initialisation, the output layer's bias is set so that "
              "the first predictions average the training targets (regression values, pick and "
              "detection curves); this keeps the bias of the random initialisation instead."),
    _opt("--demo_size", group=_MODEL, action="store_true",
         help="Use the small demo configuration of the model."),
    _opt("--model_kwargs", group=_MODEL, type=json_object, default=None, metavar="JSON",
         help="Model constructor overrides as JSON, e.g. '{\"depth\": 4}'."),
    _opt("--objective_options", "--adapter_options", group=_MODEL, dest="objective_options",
         type=json_object, default=None, metavar="JSON",
         help="Loss and label options of the model's objective as JSON, e.g. '{\"delta\": 5}' "
              "(utrans.objectives lists each objective's options). Default: the reference "
              "settings; the demo's own where it has them."),
    _opt("--backbone_kwargs", group=_MODEL, type=json_object, default=None, metavar="JSON",
         help="UTransBackbone constructor arguments for a randomly initialised backbone (with "
              "--foundation_weights random)."),
    # run -------------------------------------------------------------------
    _opt("--output_name", group=_RUN, default=None,
         help="Outputs go to <output_name>_outputs/ (default: the task's demo name); the tester "
              "and reader read the trainer's run there."),
    _opt("--output_dir", group=_RUN, default=None,
         help="Tester: where to write predictions.csv (default: <output_name>_outputs/test, or "
              "<output_name>_outputs/test_<checkpoint> when --checkpoint is given)."),
    _opt("--input_dir", group=_RUN, default=None,
         help="Reader: folder holding the tester's predictions.csv (default: "
              "<output_name>_outputs/test). Metrics and figures go there too."),
    _opt("--batch_size", group=_RUN, type=positive_int, default=None,
         help="Batch size, per replica when training (default: the model's published recipe "
              "with --input_hdf5, e.g. 40 for U-Trans, else 200; demo: smaller; tester 32)."),
    _opt("--epochs", group=_RUN, type=positive_int, default=None,
         help="(default: the model's recipe, else 200; demo: a few)"),
    _opt("--patience", group=_RUN, type=positive_int, default=None,
         help="Early-stopping patience in epochs (default: the model's recipe, else 12)."),
    _opt("--learning_rate", group=_RUN, type=positive_float, default=None,
         help="Initial learning rate of the step schedule (default: the model's recipe, else "
              "1e-4; demo runs: per task)."),
    _opt("--seed", group=_RUN, type=int, default=0,
         help="Random seed of shuffling, augmentation, initialisation and MC dropout "
              "(default: %(default)s)."),
    _opt("--deterministic", group=_RUN, action="store_true",
         help="Enable TensorFlow op determinism (identical weights on reruns)."),
    _opt("--no_resume", group=_RUN, dest="resume", action="store_false",
         help="Discard a backup left by an interrupted run in the output folder and start over. "
              "By default a rerun of an interrupted command resumes at its last completed "
              "epoch, with the optimizer state (BackupAndRestore)."),
    _opt("--number_of_sampling", group=_RUN, type=non_negative_int, default=0,
         help="Tester: Monte-Carlo dropout passes per trace (adds mean and std columns; "
              "default: 0 = one deterministic pass)."),
    _opt("--verbose", group=_RUN, type=int, default=1, choices=(0, 1, 2),
         help="Keras progress output (default: %(default)s); 2 also shows framework logs."),
    # hardware --------------------------------------------------------------
    _opt("--strategy", group=_HW, default="auto",
         choices=("auto", "default", "mirrored", "multiworker"),
         help="auto: MirroredStrategy if more than one GPU is visible, else the default "
              "strategy; mirrored: all local GPUs (or CPU replicas); multiworker: "
              "MultiWorkerMirroredStrategy from TF_CONFIG."),
    _opt("--cpu_replicas", group=_HW, type=non_negative_int, default=0,
         help="Split the CPU into N logical devices before the strategy is made (testing "
              "distribution without GPUs)."),
    _opt("--mixed_precision", group=_HW, action="store_true",
         help="mixed_float16 compute with a loss-scaled optimizer (GPU; on CPU it runs, slower "
              "than float32, with a warning)."),
    _opt("--jit_compile", group=_HW, action="store_true", help="Compile the train step with XLA."),
    _opt("--run_eagerly", group=_HW, action="store_true",
         help="Run the model eagerly instead of tracing a graph (debugging, or tiny runs where "
              "tracing would dominate)."),
    # picking ---------------------------------------------------------------
    _opt("--threshold", group=_PICKS, type=fraction, default=None,
         help="Peak threshold of the P and S curves (default: the model's convention: 0.3 for "
              "SeisT, PhaseNet and EQTransformer, 0.1 for the U-Trans pickers)."),
    _opt("--det_threshold", group=_PICKS, type=fraction, default=None,
         help="Detection threshold (default: the model's convention, 0.5)."),
    _opt("--max_picks", group=_PICKS, type=positive_int, default=1,
         help="Picks kept per phase and test window, the highest first (the SeisT reference's "
              "max_detect_event_num; default: %(default)s)."),
    _opt("--min_peak_distance_s", group=_PICKS, type=positive_float, default=None,
         help="Minimum time between two picks of one phase in seconds (default: the model's "
              "convention, 1.0 s)."),
]}


# --------------------------------------------------------------------------- the commands' options
# Which options each engine takes: the scripts build their parsers from these
# names without loading the engines (or the deep learning framework).

#: The run options that change a model's conventions (they reach the saved model).
CONVENTION_OPTIONS = ("in_samples", "sampling_rate", "component_order", "p_position_ratio",
                      "normalization")

#: The keyword options of :func:`utrans.train.fit` (and of ``trainerN.py``).
TRAIN_OPTIONS = (
    "max_d", "min_d", "workers", "use_multiprocessing", "max_traces",
    "skip_bad", "augmentation", "add_event_r", "shift_event_r", "add_noise_r", "drop_channel_r",
    "add_gap_r", "scale_amplitude_r", "pre_emphasis", "checkpoint", *CONVENTION_OPTIONS,
    "foundation_weights", "freeze_backbone", "center_outputs", "demo_size", "model_kwargs",
    "objective_options", "backbone_kwargs", "output_name", "batch_size", "epochs", "patience",
    "learning_rate", "seed",
    "deterministic", "resume", "verbose", "strategy", "cpu_replicas", "mixed_precision",
    "jit_compile", "run_eagerly",
)

#: The data options of ``trainerN.py`` (:func:`utrans.train.fit` takes them as ``data=``).
DATA_OPTIONS = ("input_hdf5", "input_trainset", "input_validset", "input_testset")

#: The keyword options of :func:`utrans.evaluate.test` (and of ``testerN.py``).
TEST_OPTIONS = (
    "input_hdf5", "input_testset", "input_model", "checkpoint", "model_kwargs",
    *CONVENTION_OPTIONS, "output_name", "output_dir", "batch_size", "max_d",
    "min_d", "number_of_sampling", "skip_bad", "seed", "run_eagerly", "threshold",
    "det_threshold", "max_picks", "min_peak_distance_s",
)


def add_options(parser, names, defaults=None):
    """Add the options ``names`` of :data:`OPTIONS` to ``parser``, grouped as in the table.

    Args:
        parser: an ``argparse.ArgumentParser``.
        names: option names (keyword names, e.g. ``"batch_size"``).
        defaults: per-command default overrides ``{name: value}``.

    Returns:
        The parser.
    """
    groups = {}
    for name in names:
        option = OPTIONS[name]
        kwargs = dict(option.kwargs)
        if defaults and name in defaults:
            kwargs["default"] = defaults[name]
        group = groups.get(option.group)
        if group is None:
            group = groups[option.group] = parser.add_argument_group(option.group)
        group.add_argument(*option.flags, help=option.help, **kwargs)
    return parser


def defaults(names, given, what):
    """``given`` keyword options completed with the defaults of ``names``; unknown names raise.

    Args:
        names: the option names a function accepts.
        given: the keyword arguments received.
        what: the function's name for the error message.

    Returns:
        A dict with every name of ``names``.

    Raises:
        TypeError: a keyword is not among ``names``; the message lists the accepted ones.
    """
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise TypeError(f"{what}() got unknown option(s) {unknown}. Accepted: "
                        f"{', '.join(sorted(names))}")
    return {name: given.get(name, OPTIONS[name].default) for name in names}
