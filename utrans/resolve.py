"""Which model a run uses, with which weights and which conventions: one place for trainer and tester.

* :func:`check_model_quantity`: the model measures the task's quantity.
* :func:`plan_conventions`: the conventions a run gives a model (registry
  defaults < a previous run < a preset's training data < the demo window <
  the user's options, with a warning when an option contradicts a preset or
  a trained model).
* :func:`build_model`: builds a registered model with those conventions; the
  U-Trans downstream models get their backbone from :func:`load_backbone`.
* :func:`load_checkpoint`: loads a ``.pth``, ``.keras``, ``.weights.h5``,
  legacy ``.h5`` or preset into a built model.
"""

from __future__ import annotations

import inspect
import logging
import pathlib

import keras

logger = logging.getLogger(__name__)

__all__ = [
    "CONVENTION_OPTIONS",
    "ModelInputError",
    "build_model",
    "check_model_quantity",
    "load_backbone",
    "load_checkpoint",
    "plan_conventions",
]

#: The options that change a model's input conventions (see utrans.conventions).
CONVENTION_OPTIONS = ("in_samples", "sampling_rate", "component_order", "p_position_ratio")


class ModelInputError(ValueError):
    """A model, checkpoint or convention option does not fit; the message says how."""


def _accepts(fn, name):
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def check_model_quantity(model_name, task):
    """Raise :class:`ModelInputError` unless ``model_name`` measures the task's quantity."""
    from utrans.models import registry

    known = registry.list_models(task.quantity)
    if model_name not in registry.list_models():
        raise ModelInputError(f"Unknown model {model_name!r}. Models for the {task.name} task "
                              f"({task.quantity}): {', '.join(known)}")
    fits = registry.model_task(model_name)
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
    """Build a registered model; U-Trans downstream models get their backbone here.

    The backbone itself (``utrans_foundation``, pretraining) is built by
    :func:`load_backbone` from ``foundation_weights`` (default: random
    initialisation with ``backbone_kwargs`` and ``kwargs``).

    Args:
        model_name: registered model name.
        foundation_weights, freeze_backbone, backbone_kwargs: U-Trans backbone options.
        **kwargs: constructor arguments, including conventions (``sampling_rate``, ...).

    Returns:
        ``(model, description)`` where description says where the weights came from.
    """
    from utrans.conventions import CONVENTION_KEYS
    from utrans.models import registry

    fn = registry.get_model_builder(model_name)
    if registry.model_task(model_name) == "reconstruction":
        # Pretraining trains the backbone itself: random initialisation unless
        # --foundation_weights names weights to continue from.
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
            raise ModelInputError(f"--checkpoint {path}: {model.name} has no PyTorch counterpart; "
                                  "use a .keras or .weights.h5 file.")
        load_torch_checkpoint(model, path)
    elif path.name.endswith((".keras", ".weights.h5")):
        from utrans.convert import load_keras_weights

        load_keras_weights(model, path)
    elif path.suffix == ".h5" and hasattr(model, "from_legacy_h5"):
        from utrans.convert.keras_h5 import load_legacy_h5

        load_legacy_h5(model, path)  # a Keras 2 U-Trans backbone file (utrans_foundation preset)
    else:
        raise ModelInputError(f"--checkpoint must be a .pth, .keras or .weights.h5 file or a "
                              f"preset name. Received: {checkpoint}")
    return f"weights from {path}"
