"""What the tester and the readers share: errors, atomic CSV, the training run's config and data."""

import json
import logging
import os
import pathlib
import tempfile

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "EvaluationInputError",
    "load_trained_model",
    "markdown_table",
    "read_training_config",
    "training_metadata",
    "write_csv_atomic",
]


class EvaluationInputError(ValueError):
    """A tester/reader input (model, split, option) does not fit; the message says how."""


def write_csv_atomic(frame, path):
    """Write ``frame`` to ``path`` through a temporary file and a rename (usual permissions)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".csv.tmp")
    os.close(fd)
    try:
        frame.to_csv(tmp, index=False)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        pathlib.Path(tmp).unlink(missing_ok=True)
    return path


def read_training_config(output_folder):
    """The ``training_config.json`` a trainer wrote into ``output_folder`` (or ``{}``).

    Relative data paths (written by older versions) are resolved against the
    folder that holds the config, so the tester works from any directory.
    """
    path = pathlib.Path(output_folder) / "training_config.json"
    if not path.exists():
        return {}
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise EvaluationInputError(f"{path} is not valid JSON ({err}); rerun the trainer or "
                                   "pass the data and model options explicitly.") from err
    for key in ("input_hdf5", "input_trainset", "input_validset", "input_testset"):
        value = config.get(key)
        if value and not pathlib.Path(value).is_absolute():
            here = pathlib.Path(value)
            beside = (path.parent.parent / here).resolve()
            config[key] = str(here.resolve() if here.exists() else beside)
    return config


def load_trained_model(path, config=None):
    """Load a trained model from ``.keras`` or ``.weights.h5`` (the latter needs ``config``).

    Args:
        path: model file.
        config: the training config (model name and constructor kwargs) used to
            rebuild the architecture for a ``.weights.h5`` file.

    Returns:
        The Keras model.
    """
    import keras

    import utrans.models  # noqa: F401  (registers the custom classes)

    path = pathlib.Path(path)
    if not path.exists():
        raise EvaluationInputError(f"Model file not found: {path}. Train one first "
                                   "(01_train/trainerN.py) or pass --input_model.")
    from utrans.convert import CheckpointMismatchError, check_keras_file, load_keras_weights

    if path.name.endswith((".keras", ".weights.h5")):
        try:
            check_keras_file(path)
        except CheckpointMismatchError as err:
            raise EvaluationInputError(str(err)) from None
    if path.name.endswith(".keras"):
        try:
            return keras.saving.load_model(path, compile=False)
        except (ValueError, TypeError, OSError, KeyError) as err:
            first = str(err).strip().splitlines()[0][:300] if str(err).strip() else repr(err)
            raise EvaluationInputError(f"Could not load {path} as a Keras model: {first}") \
                from None
    if path.name.endswith(".weights.h5"):
        if not config or "model" not in config:
            raise EvaluationInputError(
                f"{path} holds weights only; its training_config.json (model name) is needed "
                "to rebuild the architecture.")
        from utrans.resolve import build_model

        model, _ = build_model(config["model"], foundation_weights="random",
                               backbone_kwargs=config.get("backbone_kwargs"),
                               **config.get("model_kwargs", {}))
        try:
            load_keras_weights(model, path)
        except CheckpointMismatchError as err:
            raise EvaluationInputError(str(err)) from None
        return model
    raise EvaluationInputError(f"Unsupported model file {path}: expected .keras or .weights.h5.")


def training_metadata(config):
    """Metadata dicts of the training split a run recorded (for the trivial baselines), or ``[]``.

    Traces whose metadata cannot be read are left out.
    """
    from utrans.formats import BadTraceError, load_split, open_dataset

    train, hdf5 = config.get("input_trainset"), config.get("input_hdf5")
    if not train or not hdf5 or not pathlib.Path(hdf5).exists():
        return []
    out = []
    with open_dataset(hdf5) as reader:
        for t in load_split(train):
            try:
                out.append(reader.read_metadata(t))
            except (BadTraceError, KeyError, ValueError) as err:
                logger.debug("baseline: skipping %s (%s)", t, err)
    return out


def markdown_table(metrics, keys=None):
    """``| metric | value |`` rows of the scalar entries of ``metrics``."""
    lines = ["| metric | value |", "|---|---:|"]
    for key in keys or list(metrics):
        value = metrics[key]
        if isinstance(value, (list, dict)):
            continue
        lines.append(f"| {key} | {value:.4f} |" if isinstance(value, float) else
                     f"| {key} | {value} |")
    return "\n".join(lines) + "\n"


def mean_or_nan(values):
    """``nanmean`` of ``values`` as a float, NaN for an empty or all-NaN input."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
