"""Weight import: PyTorch state_dicts (SeisT, baselines), legacy Keras 2 ``.h5`` files, and
checked loading of Keras 3 ``.keras``/``.weights.h5`` files."""

from utrans.convert.keras_file import check_keras_file, describe_keras_file, load_keras_weights
from utrans.convert.keras_h5 import (
    assign_legacy_weights,
    load_legacy_h5,
    read_legacy_h5_weights,
)
from utrans.convert.pytorch import (
    CheckpointMismatchError,
    TorchMapping,
    UnsafeCheckpointError,
    assign_torch_state_dict,
    load_torch_checkpoint,
    read_torch_state_dict,
)

__all__ = [
    "CheckpointMismatchError",
    "TorchMapping",
    "UnsafeCheckpointError",
    "assign_legacy_weights",
    "assign_torch_state_dict",
    "check_keras_file",
    "describe_keras_file",
    "load_keras_weights",
    "load_legacy_h5",
    "load_torch_checkpoint",
    "read_legacy_h5_weights",
    "read_torch_state_dict",
]
