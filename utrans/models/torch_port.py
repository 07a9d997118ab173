"""Base class of the functional Keras ports of PyTorch models (the baselines)."""

import keras

from utrans.convert.pytorch import layer_mappings

__all__ = ["TorchPortModel"]


class TorchPortModel(keras.Model):
    """A functional model whose weighted layers each mirror one PyTorch module.

    Subclasses build their graph in ``__init__``, call ``super().__init__``
    with ``inputs``/``outputs`` and set ``self._torch_names``, a dict from Keras
    layer name to the torch module path (``"encoder.conv0"``); their
    ``get_config`` returns the constructor arguments.
    """

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
