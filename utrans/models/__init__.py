"""Keras 3 models of utrans, and the registry through which they are found.

Every module of this package registers its models on import
(:func:`utrans.core.registry.register_model`); importing ``utrans.models``
imports them all, so ``get_model``/``list_models`` here see every model and
``keras.saving.load_model`` finds every custom class (``import utrans`` does
this as soon as Keras is imported, see :mod:`utrans`).
"""

import importlib
import pkgutil

from utrans.core.registry import (
    get_model,
    get_model_builder,
    list_models,
    model_conventions,
    model_quantity,
    register_model,
)

for _info in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
    importlib.import_module(_info.name)


def __getattr__(name):
    # Public classes are defined in the submodules; expose them here
    # (``utrans.models.UTransBackbone``) without a hand-kept import list.
    for _info in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        module = importlib.import_module(_info.name)
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["get_model", "get_model_builder", "list_models", "model_conventions", "model_quantity",
           "register_model"]
