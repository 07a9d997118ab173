"""What the tester and the readers share: the training run's config and data, small helpers."""

import json
import logging
import pathlib

import numpy as np

from utrans.core.errors import BadTraceError, EvaluationInputError
from utrans.formats import load_split, open_dataset

logger = logging.getLogger(__name__)

__all__ = [
    "markdown_table",
    "mean_or_nan",
    "read_training_config",
    "training_metadata",
]


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


def training_metadata(config):
    """Metadata dicts of the training split a run recorded (for the trivial baselines), or ``[]``.

    Traces whose metadata cannot be read are left out.
    """
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
