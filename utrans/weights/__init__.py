"""Weight files read without the frameworks that wrote them, and assigned all-or-nothing.

* :mod:`~utrans.weights.pytorch`: PyTorch ``state_dict`` files (SeisT, the
  baselines, SeisBench's ``.pt``) read by a restricted unpickler and mapped
  onto Keras weights through a model's ``torch_weight_map()``;
* :mod:`~utrans.weights.keras_h5`: legacy Keras 2 ``.h5`` files (U-Trans);
* :mod:`~utrans.weights.keras_file`: checks of Keras 3 ``.keras`` /
  ``.weights.h5`` files before they are loaded.

No deep-learning framework and no model is imported here (models are used
through their methods); the models use these readers for ``from_preset``,
and :mod:`utrans.convert` turns other tools' files into utrans models.
"""

from utrans.weights.keras_file import check_keras_file, describe_keras_file, load_keras_weights
from utrans.weights.keras_h5 import assign_legacy_weights, load_legacy_h5, read_legacy_h5_weights
from utrans.weights.pytorch import (
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
