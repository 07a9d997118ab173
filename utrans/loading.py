"""The one model loader: a name, a preset, a file or a model in, a Keras model with conventions out.

* :func:`load_model`: every way a user names a model with weights: a preset
  (``"seist_m_dpk_diting"``: published weights, downloaded and cached), a
  trained ``.keras`` file, a ``.weights.h5`` file of a training run (its
  ``training_config.json`` rebuilds the architecture), a registered name with
  ``weights=`` (a ``.pth`` state_dict, a ``.keras``/``.weights.h5`` file, a
  legacy Keras 2 ``.h5`` of the U-Trans backbone, or a preset), a SeisBench
  weight-file pair (``NAME.json.v1`` / ``NAME.pt.v1`` or their prefix) or a
  name in SeisBench's cache (``"phasenet:stead"``,
  :func:`utrans.convert.load_seisbench`), or a model object. A registered
  name without weights is refused unless random weights are asked for
  (``allow_random=True``): a picker with random weights writes
  plausible-looking nonsense.
* :func:`build_model` and :func:`load_weights`: what a training run does
  (random initialisation with the run's conventions, then its ``--checkpoint``).
* :func:`get_conventions`: the conventions of any of these without building
  the model when it can (a ``.keras`` file is read as a zip archive).
* :func:`plan_conventions`: the conventions a training or test run gives a
  model, from the registry, a preset, a previous run and the user's options.

``keras.saving.load_model`` also loads utrans ``.keras`` files after
``import utrans``; this module adds the other sources, the checks and the
messages.
"""

from __future__ import annotations

import glob
import inspect
import json
import logging
import pathlib
import re
import zipfile

import keras

from utrans import models
from utrans.convert import load_seisbench
from utrans.weights import check_keras_file, load_keras_weights, load_legacy_h5, load_torch_checkpoint
from utrans.core import presets
from utrans.core.conventions import CONVENTION_KEYS, LEGACY_KEYS, Conventions
from utrans.core.errors import CheckpointMismatchError, ModelInputError, PresetUnavailableError
from utrans.core.options import CONVENTION_OPTIONS
from utrans.models.utrans import UTransBackbone

logger = logging.getLogger(__name__)

__all__ = [
    "CONVENTION_OPTIONS",
    "build_model",
    "check_model_quantity",
    "get_conventions",
    "is_seisbench_spec",
    "load_backbone",
    "load_model",
    "load_weights",
    "plan_conventions",
]

_RANDOM_HINT = ("give trained weights: a trained .keras file, a preset ({presets}), a SeisBench "
                "weight file, or weights for it in Python (utrans.load_model(name, "
                "weights=FILE)); random weights only when asked for (allow_random=True; "
                "--random_weights on the command line)")


def _accepts(fn, name):
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- conventions
def _conventions_of_config(config):
    """Conventions stored in a model's config (the keys of :data:`CONVENTION_KEYS`)."""
    found = {k: config[k] for k in (*CONVENTION_KEYS, *LEGACY_KEYS) if k in config}
    return Conventions.from_config(found) if found else None


def _keras_file_conventions(path):
    """The conventions recorded in a ``.keras`` file, read from its ``config.json``."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError) as err:
        raise ModelInputError(f"{path} is not a readable .keras file ({err}).") from None
    conv = _conventions_of_config(config.get("config", {}))
    if conv is None:
        raise ModelInputError(f"{path} holds a {config.get('class_name', 'model')} that carries "
                              "no utrans conventions.")
    return conv


def get_conventions(model):
    """The :class:`~utrans.core.conventions.Conventions` of a model, however it is named.

    Args:
        model: a utrans model object, a registered model name (its defaults),
            a preset name (its training data's), or a ``.keras`` file (read
            without building the model).

    Returns:
        A :class:`~utrans.core.conventions.Conventions`.

    Raises:
        KeyError: an unknown name; ModelInputError: a file without conventions.
    """
    conv = getattr(model, "conventions", None)
    if isinstance(conv, Conventions):
        return conv
    if isinstance(model, (str, pathlib.Path)):
        spec = str(model)
        if spec in presets.PRESETS:
            return presets.preset_conventions(spec)
        if spec in models.list_models():
            return models.model_conventions(spec)
        if spec.endswith(".keras") and pathlib.Path(spec).is_file():
            return _keras_file_conventions(spec)
        raise KeyError(f"Unknown model {spec!r}: not a preset ({', '.join(presets.list_presets())}),"
                       f" a registered model ({', '.join(models.list_models())}) or a .keras file.")
    raise TypeError(f"get_conventions needs a utrans model, a registered model or preset name, or "
                    f"a .keras file. Received: {type(model).__name__}")


def check_model_quantity(model_name, task):
    """Raise :class:`ModelInputError` unless ``model_name`` measures the task's quantity."""
    known = models.list_models(task.quantity)
    if model_name not in models.list_models():
        raise ModelInputError(f"Unknown model {model_name!r}. Models for the {task.name} task "
                              f"({task.quantity}): {', '.join(known)}")
    fits = models.model_quantity(model_name)
    if fits not in (None, task.quantity):
        raise ModelInputError(
            f"Model {model_name} measures {fits}, not {task.quantity} (the {task.name} task). "
            f"Models for the {task.name} task: {', '.join(known)}")


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
        task: the :class:`utrans.core.tasks.Task`.
        given: dict of user options (keys of :data:`CONVENTION_OPTIONS`; ``None`` = not given).
        checkpoint: a ``--checkpoint`` value (a preset name contributes its conventions).
        stored: conventions dict recorded by a previous run.
        demo: whether this is the embedded demo run.

    Returns:
        A :class:`~utrans.core.conventions.Conventions`.
    """
    conv = models.model_conventions(model_name)
    source = {}
    if stored:
        keep = {k: stored[k] for k in CONVENTION_OPTIONS if stored.get(k) is not None}
        conv = conv.replace(**keep)
        source.update({k: "the trained model" for k in keep})
    preset = presets.PRESETS.get(str(checkpoint)) if checkpoint else None
    if preset is not None:
        conv = conv.replace(**preset.conventions)
        source.update({k: f"preset {preset.name}" for k in preset.conventions})
    builder = models.get_model_builder(model_name)
    if demo and _accepts(builder, "in_samples") and conv.p_position_ratio is None:
        conv = conv.replace(**{k: task.demo.get(k)
                               for k in ("in_samples", "sampling_rate", "p_position_ratio")
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


# --------------------------------------------------------------------------- building
def load_backbone(foundation_weights=None, backbone_kwargs=None):
    """The U-Trans backbone for a downstream model, and a sentence saying where it came from.

    Args:
        foundation_weights: ``None`` (the preset when its file is cached or
            can be downloaded, else random), ``"preset"``, ``"random"``, or a
            path to a legacy ``.h5``, a ``.weights.h5`` or a ``.keras`` file of
            a ``UTransBackbone``.
        backbone_kwargs: constructor arguments of a randomly initialised backbone.

    Returns:
        ``(backbone, description)``.
    """
    if foundation_weights in (None, "preset"):
        try:
            path = presets.preset_path("utrans_foundation", timeout=15.0)
        except PresetUnavailableError as err:
            if foundation_weights == "preset":
                raise
            logger.debug("utrans_foundation preset unavailable: %s", err)
            return UTransBackbone(), (
                "U-Trans backbone: random initialisation (the utrans_foundation preset is neither "
                f"in {presets.cache_dir()} nor downloadable; --foundation_weights preset says why)"
            )
        return UTransBackbone.from_legacy_h5(path), f"U-Trans backbone: preset weights {path}"
    if foundation_weights == "random":
        return (UTransBackbone(**(backbone_kwargs or {})),
                "U-Trans backbone: random initialisation (requested)")
    if backbone_kwargs:
        raise ModelInputError("--backbone_kwargs applies to a randomly initialised backbone only "
                              f"(--foundation_weights random). Received: --foundation_weights "
                              f"{foundation_weights}")
    path = pathlib.Path(foundation_weights)
    if not path.exists():
        raise FileNotFoundError(f"--foundation_weights file not found: {path}")
    if path.name.endswith(".keras"):
        backbone = keras.saving.load_model(path, compile=False)
        if not isinstance(backbone, UTransBackbone):
            raise ModelInputError(f"{path} holds a {type(backbone).__name__}, not a "
                                  "UTransBackbone.")
    elif path.name.endswith(".weights.h5"):
        backbone = UTransBackbone()
        backbone.load_weights(path)
    else:
        backbone = UTransBackbone.from_legacy_h5(path)
    return backbone, f"U-Trans backbone: weights from {path}"


def build_model(model_name, *, foundation_weights=None, freeze_backbone=False,
                backbone_kwargs=None, **kwargs):
    """Build a registered model with random weights; U-Trans downstream models get their backbone.

    The backbone itself (``utrans_foundation``, pretraining) is built by
    :func:`load_backbone` from ``foundation_weights`` (default: random
    initialisation with ``backbone_kwargs`` and ``kwargs``).

    Args:
        model_name: registered model name.
        foundation_weights: U-Trans backbone weights (:func:`load_backbone`).
        freeze_backbone: keep the U-Trans backbone frozen.
        backbone_kwargs: constructor arguments of a randomly initialised backbone.
        **kwargs: constructor arguments, including conventions (``sampling_rate``, ...).

    Returns:
        ``(model, description)`` where description says where the weights came from.
    """
    fn = models.get_model_builder(model_name)
    if models.model_quantity(model_name) == "reconstruction":
        # Pretraining trains the backbone itself: random initialisation unless
        # --foundation_weights names weights to continue from.
        arch = {k: v for k, v in kwargs.items() if k not in CONVENTION_KEYS}
        return load_backbone(foundation_weights or "random",
                             dict(backbone_kwargs or {}, **arch) or None)
    if _accepts(fn, "backbone"):
        backbone, note = load_backbone(foundation_weights, backbone_kwargs)
        model = models.get_model(model_name, backbone=backbone, freeze_backbone=freeze_backbone,
                                 **kwargs)
        return model, note
    return models.get_model(model_name, **kwargs), "random initialisation"


def load_weights(model, checkpoint):
    """Load ``checkpoint`` into a built ``model``; returns a sentence saying what was loaded.

    Args:
        model: the built Keras model.
        checkpoint: a ``.pth`` PyTorch state_dict (read without PyTorch), a
            ``.keras`` or ``.weights.h5`` file of the same architecture, a
            legacy Keras 2 ``.h5`` file of the U-Trans backbone, or a preset
            name (downloaded to the cache when missing).

    Returns:
        A description for the log.
    """
    path = pathlib.Path(checkpoint)
    if not path.exists() and str(checkpoint) in presets.PRESETS:
        preset = presets.get_preset(str(checkpoint))
        path = presets.preset_path(str(checkpoint))
        cls = models.get_model_builder(preset.model)
        if preset.model != model.name and not (isinstance(cls, type) and isinstance(model, cls)):
            logger.warning("Preset %s was published for %s; loading it into %s.", checkpoint,
                           preset.model, model.name)
    if not path.exists():
        raise FileNotFoundError(f"Weights: no such file or preset: {checkpoint}. Presets: "
                                f"{', '.join(presets.list_presets())}")
    if path.suffix == ".pth":
        if not hasattr(model, "torch_weight_map"):
            raise ModelInputError(f"{path}: {model.name} has no PyTorch counterpart; use a "
                                  ".keras or .weights.h5 file.")
        load_torch_checkpoint(model, path)
    elif path.name.endswith((".keras", ".weights.h5")):
        load_keras_weights(model, path)
    elif path.suffix == ".h5" and isinstance(model, UTransBackbone):
        load_legacy_h5(model, path)  # a Keras 2 U-Trans backbone file (utrans_foundation preset)
    else:
        raise ModelInputError(f"Weights must be a .pth, .keras or .weights.h5 file or a preset "
                              f"name. Received: {checkpoint}")
    return f"weights from {path}"


# --------------------------------------------------------------------------- loading
def _load_keras_file(path):
    try:
        check_keras_file(path)
    except CheckpointMismatchError as err:
        raise ModelInputError(str(err)) from None
    try:
        return keras.saving.load_model(path, compile=False)
    except (ValueError, TypeError, OSError, KeyError) as err:
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else repr(err)
        raise ModelInputError(f"Could not load {path} as a Keras model: {first}") from None


def _training_config(path, config):
    """The training config beside a run's ``models/best.weights.h5`` (or ``config`` itself)."""
    if config:
        return config
    found = pathlib.Path(path).resolve().parent.parent / "training_config.json"
    if found.is_file():
        return json.loads(found.read_text())
    return None


def _load_weights_file(path, config):
    config = _training_config(path, config)
    if not config or "model" not in config:
        raise ModelInputError(
            f"{path} holds weights only; the training_config.json of its run (model name and "
            "constructor arguments) is needed to rebuild the architecture.")
    model, _ = build_model(config["model"], foundation_weights="random",
                           backbone_kwargs=config.get("backbone_kwargs"),
                           **config.get("model_kwargs", {}))
    try:
        load_keras_weights(model, path)
    except CheckpointMismatchError as err:
        raise ModelInputError(str(err)) from None
    return model


def load_model(spec, *, weights=None, allow_random=False, config=None, **overrides):
    """A Keras model with its weights and conventions, however it is named (module doc).

    Args:
        spec: a ``keras.Model`` (returned as is), a preset name, a registered
            model name, or a path to a ``.keras`` or ``.weights.h5`` file.
        weights: for a registered name: the weights to load
            (:func:`load_weights`).
        allow_random: a registered name without ``weights`` gets random
            weights instead of an error.
        config: the training config of a ``.weights.h5`` file (default: the
            ``training_config.json`` of its run folder).
        **overrides: constructor arguments of a preset or registered name
            (conventions such as ``sampling_rate`` included).

    Returns:
        The ``keras.Model``.

    Raises:
        KeyError: ``spec`` is none of these; the message lists the names.
        ModelInputError: a registered name without weights, or a file that
            does not load; FileNotFoundError: a missing file.
    """
    if isinstance(spec, keras.Model):
        return spec
    spec = str(spec)
    if spec in presets.PRESETS:
        preset = presets.get_preset(spec)
        model = models.get_model(preset.model, **{**preset.conventions, **overrides})
        if preset.format == "keras_h5":
            load_legacy_h5(model, presets.preset_path(spec))
        else:
            load_torch_checkpoint(model, presets.preset_path(spec))
        return model
    if spec in models.list_models():
        if weights is None and not allow_random:
            raise ModelInputError(f"Model {spec!r} has no trained weights: "
                                  + _RANDOM_HINT.format(presets=", ".join(
                                      presets.list_presets(spec)) or "none published"))
        model, _ = build_model(spec, foundation_weights="random" if weights is None else None,
                               **overrides)
        if weights is not None:
            load_weights(model, weights)
        return model
    path = pathlib.Path(spec)
    if path.name.endswith((".keras", ".weights.h5")):
        if not path.is_file():
            raise FileNotFoundError(f"Model file not found: {path}")
        if path.name.endswith(".keras"):
            return _load_keras_file(path)
        return _load_weights_file(path, config)
    if is_seisbench_spec(spec):
        return load_seisbench(spec)
    raise KeyError(f"Unknown model {spec!r}: not a preset ({', '.join(presets.list_presets())}), "
                   f"a registered model ({', '.join(models.list_models())}), a .keras file, a "
                   ".weights.h5 file of a training run, or SeisBench weights (NAME.json.v1 / "
                   "NAME.pt.v1, or a cache name such as phasenet:stead).")


_SEISBENCH_FILE = re.compile(r"\.(json|pt)(\.v[^/\\]+)?$")
_SEISBENCH_NAME = re.compile(r"[A-Za-z0-9_]+:[^/\\:]+")


def is_seisbench_spec(spec):
    """Whether ``spec`` names SeisBench weights: one of a pair's files, their prefix, or a cache name."""
    spec = str(spec)
    path = pathlib.Path(spec).expanduser()
    if _SEISBENCH_FILE.search(path.name) or _SEISBENCH_NAME.fullmatch(spec):
        return True
    return any(path.parent.glob(glob.escape(path.name) + ".json*")) if path.parent.is_dir() \
        else False
