"""Base class of the models that consume a :class:`UTransBackbone`'s features, and their registration."""

import keras

from utrans.core.conventions import Conventions, pop_conventions
from utrans.core.registry import register_model
from utrans.models.base import constructor_config
from utrans.models.utrans import UTransBackbone

__all__ = ["DownstreamModel", "register_downstream"]


@keras.saving.register_keras_serializable(package="utrans")
class DownstreamModel(keras.Model):
    """A functional model built on the input -> ``latent`` path of a U-Trans backbone.

    Subclasses build their graph from ``backbone.input`` and
    ``backbone.get_layer("latent").output`` and pass ``inputs``/``outputs``
    here. Only the layers on that path become part of the model (they are
    shared with the backbone, so fine-tuning updates them); the backbone
    object itself is not tracked, so its U-Net decoder and reconstruction head
    are neither counted nor saved. The backbone's configuration is kept for
    :meth:`get_config`, and :meth:`from_config` rebuilds it, so ``.keras``
    files round-trip.

    Args:
        backbone: the :class:`utrans.models.UTransBackbone` whose features are used.
        freeze_backbone: if True, the backbone's layers are not trained.
        inputs: the backbone's input (``backbone.input``).
        outputs: the model's output tensor(s).
        conventions: the subclass's :class:`utrans.core.conventions.Conventions`
            for this instance (default :attr:`default_conventions`); the
            convention keywords in ``kwargs`` (``sampling_rate``, ...) override it.
        **kwargs: ``keras.Model`` arguments (``name``, ``trainable``, ``dtype``)
            and convention keywords.
    """

    #: U-Trans models take the backbone's input: E, N, Z at 100 Hz, 6000 samples, z-scored.
    default_conventions = Conventions(sampling_rate=100.0, component_order="ENZ",
                                      in_samples=6000, normalization="std", head="utrans")

    def __init__(self, backbone, freeze_backbone=False, *, inputs, outputs, conventions=None,
                 **kwargs):
        conv = pop_conventions(kwargs, conventions or self.default_conventions,
                               in_samples=keras.tree.flatten(inputs)[0].shape[1])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.conventions = conv
        self._backbone_config = keras.saving.serialize_keras_object(backbone)
        self.freeze_backbone = bool(freeze_backbone)
        if freeze_backbone:
            backbone.trainable = False

    def get_config(self):
        """Constructor arguments (the subclass's, read from its signature) and conventions."""
        return {
            **constructor_config(self, skip=("backbone", "freeze_backbone")),
            "backbone": self._backbone_config,
            "freeze_backbone": self.freeze_backbone,
            **self.conventions.to_config(),
        }

    @classmethod
    def from_backbone(cls, backbone=None, **kwargs):
        """Build the model on ``backbone``, or on a randomly initialised default backbone.

        Args:
            backbone: a :class:`utrans.models.UTransBackbone` or ``None``.
            **kwargs: the subclass's constructor arguments.

        Returns:
            The model.
        """
        return cls(UTransBackbone() if backbone is None else backbone, **kwargs)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)


def register_downstream(name, cls, quantity, conventions=None, **fixed):
    """Register ``cls.from_backbone`` (with ``fixed`` arguments) as the model ``name``.

    Args:
        name: registry name.
        cls: a :class:`DownstreamModel` subclass.
        quantity: what it measures.
        conventions: its conventions as built by default (default: the class's).
        **fixed: constructor arguments the registered name fixes (``phase="P"``).

    Returns:
        The builder ``builder(backbone=None, **kwargs)``.
    """
    def builder(backbone=None, **kwargs):
        for key, value in fixed.items():
            if key in kwargs and str(kwargs[key]).upper() != str(value).upper():
                raise ValueError(f"{name} builds the model with {key}={value!r}. "
                                 f"Received: {key}={kwargs[key]!r}")
        return cls.from_backbone(backbone, **{**kwargs, **fixed})

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"Build {name}: :class:`{cls.__name__}` on ``backbone`` (random when None)."
    register_model(name, quantity=quantity,
                   conventions=conventions or cls.default_conventions)(builder)
    return builder
