"""Weight import: PyTorch state_dicts (SeisT, baselines) and legacy Keras 2 ``.h5`` files."""

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
    "assign_torch_state_dict",
    "load_torch_checkpoint",
    "read_torch_state_dict",
]
