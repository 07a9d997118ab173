"""Base class of the functional Keras ports of PyTorch models (the baselines)."""

import inspect

import keras

from utrans.conventions import Conventions, pop_conventions
from utrans.convert.pytorch import layer_mappings

__all__ = ["TorchPortModel"]


def _plain(value):
    """Tuples and tracked lists as plain (nested) lists."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class TorchPortModel(keras.Model):
    """A functional model whose weighted layers each mirror one PyTorch module.

    Subclasses build their graph in ``__init__``, call ``super().__init__``
    with ``inputs``/``outputs`` (and the convention keywords among their
    ``**kwargs``, see :mod:`utrans.conventions`) and set ``self._torch_names``,
    a dict from Keras layer name to the torch module path
    (``"encoder.conv0"``); their ``get_config`` returns the constructor
    arguments, to which :meth:`get_config` here adds the conventions.
    """

    #: The SeisT-repository convention of the baselines: Z, N, E, 8192 samples, std.
    default_conventions = Conventions(sampling_rate=100.0, component_order="ZNE",
                                      in_samples=8192, normalization="std")

    def __init__(self, *, inputs, outputs, conventions=None, **kwargs):
        conv = pop_conventions(kwargs, conventions or self.default_conventions,
                               in_samples=keras.tree.flatten(inputs)[0].shape[1])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.conventions = conv

    def get_config(self):
        """The subclass's constructor arguments plus the conventions."""
        return {**self.constructor_config(), **self.conventions.to_config()}

    def constructor_config(self):
        """Constructor arguments, read back from the attributes of the same names.

        Every subclass stores each constructor argument as an attribute of the
        same name; sequences come back as (nested) lists, JSON-serialisable.
        """
        config = {"name": self.name, "trainable": self.trainable}
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if name in ("self", "name") or param.kind in (param.VAR_KEYWORD,
                                                          param.VAR_POSITIONAL):
                continue
            config[name] = _plain(getattr(self, name))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def torch_weight_map(self):
        """Mapping of the reference PyTorch ``state_dict`` onto this model's weights.

        Returns:
            list of :class:`utrans.convert.pytorch.TorchMapping`, one per Keras
            weight, for :func:`utrans.convert.load_torch_checkpoint`.
        """
        out = []
        for layer_name, prefix in self._torch_names.items():
            out += self.layer_torch_mappings(self.get_layer(layer_name), prefix)
        return out

    def layer_torch_mappings(self, layer, prefix):
        """Mappings of one layer's weights; override for custom layers."""
        return layer_mappings(layer, prefix)
