"""Keras 3 models of utrans and their registry.

Every module in this package registers its models on import
(:func:`register_model`); importing ``utrans.models`` imports them all, so
``get_model``/``list_models`` see every model and ``keras.saving.load_model``
finds every custom class.
"""

import importlib
import pkgutil

from utrans.models.registry import (
    get_model,
    get_model_builder,
    list_models,
    model_conventions,
    model_task,
    register_model,
)

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "registry":
        importlib.import_module(f"{__name__}.{_info.name}")


def __getattr__(name):
    # Public classes are defined in the submodules; expose them lazily here
    # (``utrans.models.UTransBackbone``) without a hand-kept import list.
    for _mod_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{_mod_info.name}")
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["get_model", "get_model_builder", "list_models", "model_conventions", "model_task",
           "register_model"]
