"""What every utrans model class shares: its config read from its constructor's signature."""

from __future__ import annotations

import inspect

__all__ = ["constructor_config", "plain"]


def plain(value):
    """Tuples and tracked lists as plain (nested) lists, for JSON configs."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def constructor_config(model, skip=()):
    """The constructor arguments of ``model``, read back from its attributes of the same names.

    Every utrans model stores each constructor argument as an attribute of
    the same name; sequences come back as (nested) lists, JSON-serialisable.

    Args:
        model: the model (its class's ``__init__`` signature is read).
        skip: argument names left out (handled by the caller).

    Returns:
        A dict with ``name``, ``trainable`` and the constructor arguments.
    """
    config = {"name": model.name, "trainable": model.trainable}
    for name, param in inspect.signature(type(model).__init__).parameters.items():
        if name in ("self", "name", *skip) or param.kind in (param.VAR_KEYWORD,
                                                             param.VAR_POSITIONAL):
            continue
        config[name] = plain(getattr(model, name))
    return config
