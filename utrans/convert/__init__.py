"""Weight import: PyTorch state_dicts (SeisT, baselines) and legacy Keras 2 ``.h5`` files."""

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
    "load_legacy_h5",
    "load_torch_checkpoint",
    "read_legacy_h5_weights",
    "read_torch_state_dict",
]
