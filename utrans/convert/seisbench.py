"""Load SeisBench weight files (``NAME.json.vN`` + ``NAME.pt.vN``) into Keras models, without torch.

SeisBench's ``WaveformModel.save(path, version_str=N)`` writes two files:
``path.json.vN`` (``model_args`` for the class constructor, ``default_args``
for ``annotate``/``classify``, ``docstring``, ``seisbench_requirement``,
``version``) and ``path.pt.vN`` (the ``state_dict``, ``torch.save`` zip
format); without a version both files lack the ``.vN`` suffix. Its
``from_pretrained(name)`` keeps downloads in
``$SEISBENCH_CACHE_ROOT/models/v3/<class name in lower case>/`` (default
``~/.seisbench``), one pair per version.

:func:`load_seisbench` takes either file of a pair, their common prefix (the
highest version present) or a cache name such as ``"phasenet:stead"``,
reads the ``.pt`` with :func:`utrans.convert.read_torch_state_dict` (no
pickle code runs), builds the matching Keras model (PhaseNet, PhaseNetLight
or EQTransformer, as SeisBench builds them), loads every tensor or none
(:func:`utrans.convert.assign_torch_state_dict`) and fills the model's
:class:`utrans.core.conventions.Conventions` from the JSON and SeisBench's class
defaults. Not supported yet: other SeisBench classes,
``VariableLengthPhaseNet``, EQTransformer's ``original_compatible`` variants
(the "original" weights, OBSTransformer), ``norm_detrend`` (PickBlue), stream
filters (``filter_args``) and groupings other than ``"instrument"``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import pickle
import re
import zipfile

from packaging.version import InvalidVersion, Version

from utrans.weights.pytorch import assign_torch_state_dict, read_torch_state_dict
from utrans.core.errors import ModelInputError, UnsafeCheckpointError
from utrans.models.eqtransformer import SEISBENCH_EQTRANSFORMER_CONVENTIONS, seisbench_eqtransformer
from utrans.models.phasenet import SEISBENCH_PHASENET_CONVENTIONS, seisbench_phasenet
from utrans.models.phasenetlight import PhaseNetLight

__all__ = ["SUPPORTED_CLASSES", "SeisBenchWeights", "SeisBenchWeightsError",
           "find_seisbench_weights", "load_seisbench", "seisbench_cache_root",
           "seisbench_conventions"]

logger = logging.getLogger(__name__)


class SeisBenchWeightsError(ModelInputError):
    """A SeisBench weight file that cannot be read, or asks for something not supported."""


# SeisBench's waveform model classes (seisbench.models), to tell an
# unsupported class from a misspelt one.
_KNOWN_CLASSES = (
    "BasicPhaseAE", "CRED", "DeepDenoiser", "DeepPhasePick", "DeepSubDAS", "DepthFinder",
    "DepthPhaseNet", "DepthPhaseTEAM", "DKPN", "DPPDetector", "DPPPicker", "EQCCTP", "EQCCTS",
    "EQTP", "EQTransformer", "GPD", "LFEDetect", "OBSTransformer", "PhaseNet", "PhaseNetLight",
    "PhaseTEAM", "SeisDAE", "Skynet", "VariableLengthPhaseNet",
)
#: SeisBench classes this module loads.
SUPPORTED_CLASSES = ("PhaseNet", "PhaseNetLight", "EQTransformer")
# Tensors that only each supported class has (to recognise a .pt file).
_SIGNATURES = {
    "PhaseNet": ("inc.weight", "down_branch.0.0.weight", "up_branch.0.0.weight", "out.weight"),
    "PhaseNetLight": ("inc.weight", "conv1.conv.weight", "up1.weight", "bnu4.weight"),
    "EQTransformer": ("encoder.convs.0.weight", "res_cnn_stack.members.0.conv1.weight",
                      "decoder_d.convs.0.weight"),
}
# model_args each class takes (its own and WaveformModel's that it passes on).
_WAVEFORM_ARGS = {"component_order", "default_args", "filter_args", "filter_kwargs", "grouping",
                  "allow_padding"}
_MODEL_ARGS = {
    "PhaseNet": {"in_channels", "classes", "phases", "sampling_rate", "norm", "filter_factor",
                 "norm_amp_per_comp", "norm_detrend"} | _WAVEFORM_ARGS,
    "PhaseNetLight": {"in_channels", "classes", "phases", "sampling_rate", "norm",
                      "norm_amp_per_comp", "norm_detrend"} | _WAVEFORM_ARGS,
    "EQTransformer": {"in_channels", "in_samples", "classes", "phases", "lstm_blocks",
                      "drop_rate", "original_compatible", "sampling_rate", "norm",
                      "norm_amp_per_comp", "norm_detrend"} | _WAVEFORM_ARGS,
}
# default_args that only steer SeisBench's annotate loop (no convention).
_RUNTIME_ARGS = {"batch_size", "stride", "strict", "flexible_horizontal_components",
                 "zerophase_resample"}
_FILE_RE = re.compile(r"^(?P<name>.+?)\.(?P<kind>json|pt)(?:\.v(?P<version>.+))?$")


@dataclasses.dataclass(frozen=True)
class SeisBenchWeights:
    """A located SeisBench weight-file pair.

    Attributes:
        json_path, pt_path: the two files.
        version: the version suffix (``"3"``), or ``None`` for an unversioned pair.
        model_class: the SeisBench class named by the cache folder or the
            caller, or ``None`` (then recognised from the tensors).
    """

    json_path: pathlib.Path
    pt_path: pathlib.Path
    version: str | None
    model_class: str | None = None


def seisbench_cache_root():
    """SeisBench's cache folder: ``$SEISBENCH_CACHE_ROOT``, else ``~/.seisbench``."""
    return pathlib.Path(os.environ.get("SEISBENCH_CACHE_ROOT")
                        or pathlib.Path.home() / ".seisbench")


def _class_name(name, source):
    """SeisBench's spelling of class ``name`` (any case); raises if unknown or unsupported."""
    by_lower = {c.lower(): c for c in _KNOWN_CLASSES}
    cls = by_lower.get(str(name).lower())
    if cls is None:
        raise SeisBenchWeightsError(
            f"{source}: {name!r} is not a SeisBench model class. Supported: "
            f"{', '.join(SUPPORTED_CLASSES)}.")
    if cls not in SUPPORTED_CLASSES:
        raise SeisBenchWeightsError(
            f"{source}: SeisBench's {cls} is not supported yet. Supported: "
            f"{', '.join(SUPPORTED_CLASSES)}.")
    return cls


def _version_key(version, where):
    try:
        return Version(version)
    except InvalidVersion as err:
        raise SeisBenchWeightsError(f"{where}: version suffix {version!r} is not a version "
                                    "number.") from err


def _pair(folder, name, version):
    suffix = "" if version is None else f".v{version}"
    return folder / f"{name}.json{suffix}", folder / f"{name}.pt{suffix}"


def _versions(folder, name):
    """Versions of ``name`` in ``folder``, from its ``.json`` files (``None``: unversioned)."""
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        match = _FILE_RE.match(entry.name)
        if match and match["kind"] == "json" and match["name"] == name:
            found.append(match["version"])
    return found


def _latest(versions, where):
    """The highest version (SeisBench's "latest"); an unversioned pair only when it is alone."""
    numbered = [v for v in versions if v is not None]
    if not numbered:
        return None
    return max(numbered, key=lambda v: _version_key(v, where))


def _checked_pair(json_path, pt_path, version, model_class=None):
    missing = [p for p in (json_path, pt_path) if not p.is_file()]
    if missing:
        have = json_path if json_path.is_file() else pt_path
        raise FileNotFoundError(
            f"SeisBench weights come as a pair: {missing[0]} is missing beside {have}.")
    return SeisBenchWeights(json_path, pt_path, version, model_class)


def find_seisbench_weights(path_or_name, version=None):
    """Locate a SeisBench weight-file pair.

    Args:
        path_or_name: one file of a pair (``X.json.v1`` or ``X.pt.v1``), their
            common prefix ``X`` (the highest version present), or a cache name
            ``"<class>:<weights>"`` such as ``"phasenet:stead"`` (looked up in
            :func:`seisbench_cache_root` ``/models/v3/<class>/``).
        version: a version to use instead of the highest (prefix and cache
            names only).

    Returns:
        A :class:`SeisBenchWeights`.

    Raises:
        FileNotFoundError: nothing found; the message says where it looked.
        SeisBenchWeightsError: an unknown or unsupported class in a cache name.
    """
    text = os.fspath(path_or_name)
    path = pathlib.Path(text).expanduser()
    version = None if version is None else str(version)
    if path.is_file():
        match = _FILE_RE.match(path.name)
        if not match:
            raise SeisBenchWeightsError(
                f"{path} is not a SeisBench weight file: expected NAME.json.vN or NAME.pt.vN "
                "(or NAME.json / NAME.pt).")
        if version is not None and match["version"] != version:
            raise SeisBenchWeightsError(
                f"{path} is version {match['version']}, not the version={version} asked for.")
        return _checked_pair(*_pair(path.parent, match["name"], match["version"]),
                             match["version"])
    found = _versions(path.parent, path.name)
    if found:
        chosen = _choose(found, version, path)
        return _checked_pair(*_pair(path.parent, path.name, chosen), chosen)
    cache_name = re.fullmatch(r"(?P<cls>[A-Za-z0-9_]+):(?P<weights>[^/\\:]+)", text)
    if cache_name is None:
        raise FileNotFoundError(
            f"No SeisBench weights at {path}: expected a file {path.name}.json.vN / "
            f"{path.name}.pt.vN there, or a cache name such as 'phasenet:stead'.")
    cls = _class_name(cache_name["cls"], f"SeisBench weights {text!r}")
    weights = cache_name["weights"]
    root = seisbench_cache_root()
    folder = root / "models" / "v3" / cls.lower()
    found = _versions(folder, weights)
    if not found:
        legacy = root / "models" / cls.lower()
        hint = (f" An older SeisBench cache layout is in {legacy}: run SeisBench once to "
                "migrate it." if _versions(legacy, weights) else "")
        raise FileNotFoundError(
            f"SeisBench weights {text!r} are not in the cache: no {weights}.json.vN in {folder} "
            "(SeisBench's cache, $SEISBENCH_CACHE_ROOT or ~/.seisbench). Download them with "
            f"SeisBench: seisbench.models.{cls}.from_pretrained({weights!r}), or pass the "
            f".json/.pt files.{hint}")
    chosen = _choose(found, version, folder / weights)
    return _checked_pair(*_pair(folder, weights, chosen), chosen, cls)


def _choose(found, version, where):
    """The version to load among ``found`` (``None``: an unversioned pair)."""
    chosen = version if version is not None else _latest(found, where)
    if chosen not in found:
        listed = ", ".join(sorted("unversioned" if v is None else v for v in found))
        raise FileNotFoundError(f"{where}: no version {chosen} (found: {listed}).")
    return chosen


def _read_metadata(path):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SeisBenchWeightsError(f"{path} is not a text JSON file ({err.reason}).") from err
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as err:
        raise SeisBenchWeightsError(
            f"{path} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
            "truncated?") from err
    if not isinstance(meta, dict):
        raise SeisBenchWeightsError(f"{path} holds a JSON {type(meta).__name__}, not the object "
                                    "SeisBench writes.")
    for key in ("model_args", "default_args"):
        value = meta.get(key) or {}
        if not isinstance(value, dict):
            raise SeisBenchWeightsError(f"{path}: {key} must be an object. Received: {value!r}")
        meta[key] = value
    return meta


def _read_tensors(path):
    try:
        return read_torch_state_dict(path)
    except (UnsafeCheckpointError, FileNotFoundError):
        raise
    except (ValueError, zipfile.BadZipFile, EOFError, KeyError, pickle.UnpicklingError,
            OSError) as err:
        raise SeisBenchWeightsError(f"{path} is not a readable PyTorch state_dict: "
                                    f"{str(err).splitlines()[0]}") from err


def _recognise(state_dict):
    """The supported SeisBench class whose distinctive tensors ``state_dict`` holds, or ``None``."""
    for cls, keys in _SIGNATURES.items():
        if all(k in state_dict for k in keys):
            return cls
    return None


def _labels(phases, where):
    if isinstance(phases, str):
        return tuple(phases)
    if isinstance(phases, (list, tuple)) and all(isinstance(p, str) for p in phases):
        return tuple(phases)
    raise SeisBenchWeightsError(f"{where}: phases must be a string or a list of names. "
                                f"Received: phases={phases!r}")


def _default_component_order():
    """SeisBench's ``config["component_order"]`` (its ``config.json``), else ``"ZNE"``."""
    config = seisbench_cache_root() / "config.json"
    if config.is_file():
        try:
            order = json.loads(config.read_text()).get("component_order")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            order = None
        if isinstance(order, str) and order:
            return order
    return "ZNE"


def seisbench_conventions(model_class, model_args, default_args, where="<model_args>"):
    """The :class:`utrans.core.conventions.Conventions` of a SeisBench model.

    From the class defaults of SeisBench's ``model_class`` (as in
    :func:`utrans.models.phasenet.seisbench_phasenet` etc.), overridden by
    the weight file's ``model_args`` (sampling rate, component order, phases,
    normalisation, window length) and ``default_args`` (``<phase>_threshold``,
    ``detection_threshold``, ``overlap``, ``stacking``, ``blinding``), as
    SeisBench's ``annotate``/``classify`` read them.

    Args:
        model_class: ``"PhaseNet"``, ``"PhaseNetLight"`` or ``"EQTransformer"``.
        model_args: the JSON's ``model_args``.
        default_args: the JSON's ``default_args`` (superseding any
            ``default_args`` inside ``model_args``).
        where: file name for error messages.

    Returns:
        A :class:`utrans.core.conventions.Conventions`.

    Raises:
        SeisBenchWeightsError: an option that is not supported yet.
    """
    args = dict(model_args)
    defaults = {**(args.get("default_args") or {}), **default_args}
    eqt = model_class == "EQTransformer"
    base = SEISBENCH_EQTRANSFORMER_CONVENTIONS if eqt else SEISBENCH_PHASENET_CONVENTIONS
    if args.get("norm_detrend"):
        raise SeisBenchWeightsError(f"{where}: norm_detrend=True (linear detrending of each "
                                    "window, PickBlue) is not supported yet.")
    for key in ("filter_args", "filter_kwargs"):
        if args.get(key):
            raise SeisBenchWeightsError(
                f"{where}: {key}={args[key]!r}: SeisBench filters the stream before annotating; "
                "stream filters of weight files are not supported yet.")
    if args.get("grouping", "instrument") != "instrument":
        raise SeisBenchWeightsError(f"{where}: grouping={args['grouping']!r} is not supported yet "
                                    "(only 'instrument').")
    norm = args.get("norm", "std")
    if args.get("norm_amp_per_comp"):
        normalization = "seisbench_peak"
    elif norm == "std":
        normalization = "seisbench_std_all" if eqt else "seisbench_std"
    elif norm == "peak":
        normalization = "seisbench_peak"
    else:
        raise SeisBenchWeightsError(f"{where}: norm={norm!r} is not supported (SeisBench's "
                                    "'std' and 'peak' are).")
    phases = _labels(args.get("phases", "PS" if eqt else "NPS"), where)
    if eqt:
        labels = ("det",) + phases
        star = 0.1
        thresholds = {"det": defaults.get("detection_threshold", 0.3)}
    else:
        labels = phases
        star = 0.3
        thresholds = {}
    thresholds.update({p: defaults.get(f"{p}_threshold", star) for p in phases if p != "N"})
    unknown = sorted(k for k in defaults if k not in _RUNTIME_ARGS
                     and k not in ("overlap", "stacking", "blinding", "detection_threshold")
                     and not k.endswith("_threshold"))
    if unknown:
        logger.warning("%s: default_args %s have no meaning here; ignored.", where, unknown)
    stacking = defaults.get("stacking", base.stacking)
    blinding = defaults.get("blinding", base.blinding)
    order = args.get("component_order") or _default_component_order()
    if isinstance(order, (list, tuple)):
        order = "".join(str(c) for c in order)
    try:
        return base.replace(
            sampling_rate=args.get("sampling_rate", 100),
            component_order=order,
            in_samples=args.get("in_samples", 6000) if eqt else 3001,
            normalization=normalization, labels=labels, thresholds=thresholds,
            overlap=defaults.get("overlap", base.overlap),
            stacking=stacking.lower() if isinstance(stacking, str) else stacking,
            blinding=tuple(blinding) if isinstance(blinding, list) else blinding)
    except (TypeError, ValueError) as err:
        raise SeisBenchWeightsError(f"{where}: {err}") from err


def _check_model_args(model_class, args, where):
    """Refuse ``model_args`` that SeisBench's ``model_class`` does not take."""
    unknown = sorted(set(args) - _MODEL_ARGS[model_class])
    if unknown:
        extra = (" (VariableLengthPhaseNet weights are not supported yet)"
                 if {"norm_axis", "output_activation"} & set(unknown) else "")
        raise SeisBenchWeightsError(
            f"{where}: model_args {unknown} are not arguments of SeisBench's {model_class}"
            f"{extra}; is the .json from another model?")


def _model_kwargs(model_class, args, conventions, where):
    """Keras constructor arguments for SeisBench's ``model_class`` and its ``model_args``."""
    n_labels = len(conventions.labels)
    if model_class == "EQTransformer":
        if args.get("original_compatible", False):
            raise SeisBenchWeightsError(
                f"{where}: original_compatible={args['original_compatible']!r} (EQTransformer's "
                "custom LSTM cells for the original weights, OBSTransformer) is not supported "
                "yet.")
        classes = int(args.get("classes", 2))
        if classes != n_labels - 1:
            raise SeisBenchWeightsError(
                f"{where}: classes={classes} but {n_labels - 1} phases "
                f"{list(conventions.labels[1:])}.")
        return dict(in_channels=int(args.get("in_channels", 3)),
                    in_samples=conventions.in_samples, classes=classes,
                    lstm_blocks=int(args.get("lstm_blocks", 3)),
                    drop_rate=float(args.get("drop_rate", 0.1)))
    classes = int(args.get("classes", 3))
    if classes != n_labels:
        raise SeisBenchWeightsError(f"{where}: classes={classes} but {n_labels} phases "
                                    f"{list(conventions.labels)}.")
    kwargs = dict(in_channels=int(args.get("in_channels", 3)), classes=classes)
    if model_class == "PhaseNet":
        kwargs["filter_factor"] = int(args.get("filter_factor", 1))
    return kwargs


_BUILDERS = {"PhaseNet": seisbench_phasenet, "PhaseNetLight": PhaseNetLight,
             "EQTransformer": seisbench_eqtransformer}


def load_seisbench(path_or_name, *, version=None, model_class=None):
    """A Keras model with the weights of a SeisBench weight-file pair, giving SeisBench's outputs.

    Args:
        path_or_name: one file of a pair (``X.json.v1`` or ``X.pt.v1``), their
            common prefix ``X`` (the highest version present), or a cache name
            such as ``"phasenet:stead"`` or ``"eqtransformer:original"`` (see
            :func:`find_seisbench_weights`).
        version: a version instead of the highest (prefix and cache names).
        model_class: SeisBench's class of the weights (``"PhaseNet"``,
            ``"PhaseNetLight"``, ``"EQTransformer"``, any case); by default the
            cache folder's, else recognised from the tensor names.

    Returns:
        A Keras model (:class:`utrans.models.phasenet.PhaseNet`,
        :class:`utrans.models.phasenetlight.PhaseNetLight` or
        :class:`utrans.models.eqtransformer.EQTransformer`, channels last:
        ``(batch, in_samples, channels)`` -> ``(batch, in_samples, labels)``)
        whose ``conventions`` carry SeisBench's component order, labels (in
        the order of ``phases``; EQTransformer's ``Detection`` is ``det``),
        normalisation, sampling rate, window length, thresholds, pick rule
        ``"regions"`` and annotate defaults. ``model.seisbench_metadata``
        holds the class, files, version, docstring and the JSON's arguments.

    Raises:
        FileNotFoundError: no such weights (the message says where it looked).
        SeisBenchWeightsError: a truncated or malformed file, an unsupported
            class or option, or JSON arguments that contradict each other.
        utrans.convert.UnsafeCheckpointError: the ``.pt`` asks to run code.
        utrans.convert.CheckpointMismatchError: the tensors do not fit the
            model the JSON describes (nothing is loaded).
    """
    found = find_seisbench_weights(path_or_name, version=version)
    meta = _read_metadata(found.json_path)
    state_dict = _read_tensors(found.pt_path)
    recognised = _recognise(state_dict)
    if model_class is not None:
        cls = _class_name(model_class, "model_class")
    else:
        cls = found.model_class or recognised
    if recognised is not None and recognised != cls:
        raise SeisBenchWeightsError(
            f"{found.pt_path} holds SeisBench {recognised} tensors, not the {cls} "
            f"{'asked for' if model_class is not None else 'its cache folder names'}.")
    if recognised is None and cls is None:
        raise SeisBenchWeightsError(
            f"{found.pt_path} holds none of the supported SeisBench models "
            f"({', '.join(SUPPORTED_CLASSES)}): first tensors "
            f"{', '.join(list(state_dict)[:3])}. If it is one of them, say which with "
            "model_class=.")
    where = str(found.json_path)
    _check_model_args(cls, meta["model_args"], where)
    conventions = seisbench_conventions(cls, meta["model_args"], meta["default_args"], where)
    kwargs = _model_kwargs(cls, meta["model_args"], conventions, where)
    model = _BUILDERS[cls](conventions=conventions, **kwargs)
    assign_torch_state_dict(model, state_dict,
                            source=f"{found.pt_path} (with {found.json_path.name})")
    model.seisbench_metadata = {
        "class": cls, "json": str(found.json_path), "pt": str(found.pt_path),
        "version": meta.get("version", found.version), "docstring": meta.get("docstring", ""),
        "seisbench_requirement": meta.get("seisbench_requirement"),
        "model_args": meta["model_args"], "default_args": meta["default_args"],
    }
    logger.info("Loaded SeisBench %s weights %s (%s).", cls, found.pt_path,
                conventions.describe())
    return model
