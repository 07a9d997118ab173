"""Model registry: one name -> one constructor, the quantity it measures and its conventions.

Model modules register their constructors when they are imported
(:func:`register_model`); :mod:`utrans.models` imports every one of them, so
query the registry through ``utrans.models`` (``utrans.models.list_models()``),
which guarantees it is filled.
"""

from __future__ import annotations

from utrans.core.conventions import Conventions

__all__ = ["get_model", "get_model_builder", "list_models", "model_conventions", "model_quantity",
           "register_model"]

_REGISTRY = {}


def register_model(name, quantity=None, conventions=None):
    """Register a model constructor under ``name``.

    Args:
        name: registry name, e.g. ``"utrans_foundation"`` or ``"seist_m_dpk"``.
        quantity: what the model measures (``"picking"``, ``"magnitude"``,
            ... see :data:`utrans.core.tasks.QUANTITIES`): every numbered
            script of that quantity accepts the model.
        conventions: the :class:`~utrans.core.conventions.Conventions` of a
            model built with default arguments (default: the constructor's
            ``default_conventions`` attribute). A user's model names its own
            head here (``Conventions(head="my_head")``).

    Returns:
        A decorator that stores the constructor and returns it unchanged.
    """

    def decorator(fn):
        if name in _REGISTRY and _REGISTRY[name]["fn"] is not fn:
            raise ValueError(f"A model is already registered as {name!r}.")
        _REGISTRY[name] = {"fn": fn, "quantity": quantity, "conventions": conventions}
        return fn

    return decorator


def model_conventions(name):
    """The :class:`~utrans.core.conventions.Conventions` of the registered model ``name``.

    Raises:
        KeyError: ``name`` is not registered.
    """
    fn = get_model_builder(name)
    conv = _REGISTRY[name]["conventions"] or getattr(fn, "default_conventions", None)
    return conv if isinstance(conv, Conventions) else Conventions()


def get_model_builder(name):
    """The constructor registered as ``name`` (a class or a function).

    Raises:
        KeyError: ``name`` is not registered; the message lists the registered names.
    """
    if name not in _REGISTRY:
        raise KeyError(f"Unknown model {name!r}. Registered models: {', '.join(list_models())}")
    return _REGISTRY[name]["fn"]


def get_model(name, **kwargs):
    """Build the registered model ``name`` with constructor ``kwargs`` (random weights).

    Args:
        name: a name from :func:`list_models`.
        **kwargs: passed to the model constructor.

    Returns:
        A ``keras.Model``.
    """
    return get_model_builder(name)(**kwargs)


def list_models(quantity=None):
    """Sorted names of the registered models, optionally only those measuring ``quantity``."""
    return sorted(n for n, v in _REGISTRY.items() if quantity is None or v["quantity"] == quantity)


def model_quantity(name):
    """The quantity a registered model measures (or ``None``).

    Raises:
        KeyError: ``name`` is not registered.
    """
    if name not in _REGISTRY:
        raise KeyError(f"Unknown model {name!r}. Registered models: {', '.join(list_models())}")
    return _REGISTRY[name]["quantity"]
