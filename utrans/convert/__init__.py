"""Other tools' weight files as utrans models.

* PyTorch ``state_dict`` files of SeisT and the baselines, legacy Keras 2
  ``.h5`` files of U-Trans and Keras 3 weight files: the readers of
  :mod:`utrans.weights`, re-exported here;
* SeisBench's weight files (``NAME.json.vN`` + ``NAME.pt.vN``, or a name such
  as ``"phasenet:stead"`` in SeisBench's cache): :func:`load_seisbench`
  (:mod:`utrans.convert.seisbench`), a Keras model with SeisBench's
  conventions.
"""

from utrans.convert.seisbench import (
    SUPPORTED_CLASSES,
    SeisBenchWeightsError,
    find_seisbench_weights,
    load_seisbench,
    seisbench_cache_root,
    seisbench_conventions,
)
from utrans.core.errors import CheckpointMismatchError, UnsafeCheckpointError
from utrans.weights import (
    TorchMapping,
    assign_legacy_weights,
    assign_torch_state_dict,
    check_keras_file,
    describe_keras_file,
    load_keras_weights,
    load_legacy_h5,
    load_torch_checkpoint,
    read_legacy_h5_weights,
    read_torch_state_dict,
)

__all__ = [
    "SUPPORTED_CLASSES",
    "CheckpointMismatchError",
    "SeisBenchWeightsError",
    "TorchMapping",
    "UnsafeCheckpointError",
    "assign_legacy_weights",
    "assign_torch_state_dict",
    "check_keras_file",
    "describe_keras_file",
    "find_seisbench_weights",
    "load_keras_weights",
    "load_legacy_h5",
    "load_seisbench",
    "load_torch_checkpoint",
    "read_legacy_h5_weights",
    "read_torch_state_dict",
    "seisbench_cache_root",
    "seisbench_conventions",
]
