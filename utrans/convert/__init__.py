"""Weight files read without the frameworks that wrote them, and assigned all-or-nothing.

* :mod:`~utrans.convert.pytorch`: PyTorch ``state_dict`` files (SeisT, the
  baselines) read by a restricted unpickler, mapped onto Keras weights;
* :mod:`~utrans.convert.keras_h5`: legacy Keras 2 ``.h5`` files (U-Trans);
* :mod:`~utrans.convert.keras_file`: checks of Keras 3 ``.keras`` /
  ``.weights.h5`` files before they are loaded.

No deep-learning framework is imported here; models use these readers, and
:mod:`utrans.loading` chooses the right one for a file.
"""

from utrans.convert.keras_file import check_keras_file, describe_keras_file, load_keras_weights
from utrans.convert.keras_h5 import (
    assign_legacy_weights,
    load_legacy_h5,
    read_legacy_h5_weights,
)
from utrans.convert.pytorch import (
    TorchMapping,
    assign_torch_state_dict,
    load_torch_checkpoint,
    read_torch_state_dict,
)

__all__ = [
    "TorchMapping",
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
