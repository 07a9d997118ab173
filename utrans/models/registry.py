"""Model registry: one name -> one constructor, shared by every model family."""

_REGISTRY = {}


def register_model(name, task=None, conventions=None):
    """Register a model constructor under ``name``.

    Args:
        name: registry name, e.g. ``"utrans_foundation"`` or ``"seist_m_dpk"``.
        task: the quantity the model measures (``"picking"``, ``"magnitude"``,
            ... see :data:`utrans.tasks.QUANTITIES`): every numbered script of
            that quantity accepts the model.
        conventions: the :class:`utrans.conventions.Conventions` of a model
            built with default arguments (default: the constructor's
            ``default_conventions`` attribute). A user's model declares its
            own adapter here (``Conventions(adapter="my_adapter")``, see
            :func:`utrans.adapters.register_adapter`).

    Returns:
        A decorator that stores the constructor and returns it unchanged.
    """

    def decorator(fn):
        if name in _REGISTRY and _REGISTRY[name]["fn"] is not fn:
            raise ValueError(f"A model is already registered as {name!r}.")
        _REGISTRY[name] = {"fn": fn, "task": task, "conventions": conventions}
        return fn

    return decorator


def model_conventions(name):
    """The :class:`utrans.conventions.Conventions` of the registered model ``name`` as built by default.

    Raises:
        KeyError: ``name`` is not registered.
    """
    from utrans.conventions import Conventions

    fn = get_model_builder(name)
    conv = _REGISTRY[name]["conventions"] or getattr(fn, "default_conventions", None)
    return conv if isinstance(conv, Conventions) else Conventions()


def get_model_builder(name):
    """The constructor registered as ``name`` (a class or a function).

    Raises:
        KeyError: ``name`` is not registered; the message lists the registered names.
    """
    if name not in _REGISTRY:
        raise KeyError(
            f"Unknown model {name!r}. Registered models: {', '.join(list_models())}"
        )
    return _REGISTRY[name]["fn"]


def get_model(name, **kwargs):
    """Build the registered model ``name`` with constructor ``kwargs``.

    Args:
        name: a name from :func:`list_models`.
        **kwargs: passed to the model constructor.

    Returns:
        A ``keras.Model``.
    """
    return get_model_builder(name)(**kwargs)


def list_models(task=None):
    """Sorted names of the registered models, optionally only those measuring quantity ``task``."""
    return sorted(n for n, v in _REGISTRY.items() if task is None or v["task"] == task)


def model_task(name):
    """The quantity a registered model measures (or ``None``)."""
    if name not in _REGISTRY:
        raise KeyError(f"Unknown model {name!r}.")
    return _REGISTRY[name]["task"]
