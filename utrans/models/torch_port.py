"""What the Keras ports of PyTorch models share: their base class and the torch-name mapping.

* :class:`TorchPortModel`: the base of the functional ports of the baselines;
* :class:`TorchNames`: records, while a model is built, which torch module each
  Keras layer mirrors;
* :func:`layer_mappings`: the :class:`~utrans.weights.pytorch.TorchMapping` list
  of one Keras layer (convolutions, dense, normalisation, LSTM layers).
"""

import keras

from utrans.weights.pytorch import (
    TorchMapping,
    conv_kernel,
    conv_transpose_kernel,
    linear_kernel,
    lstm_bias,
)
from utrans.core.conventions import Conventions, pop_conventions
from utrans.models.base import constructor_config

__all__ = ["TorchNames", "TorchPortModel", "layer_mappings"]


class TorchNames:
    """Which torch module each Keras layer mirrors, recorded while a model is built.

    ``named = TorchNames()``; ``x = named(layers.Conv1D(...), "encoder.conv0")(x)``
    records the layer's name against the torch prefix and returns the layer;
    the model keeps ``named.names`` as its ``_torch_names``.
    """

    def __init__(self):
        self.names = {}

    def __call__(self, layer, prefix):
        self.names[layer.name] = prefix
        return layer


class TorchPortModel(keras.Model):
    """A functional model whose weighted layers each mirror one PyTorch module.

    Subclasses build their graph in ``__init__``, call ``super().__init__``
    with ``inputs``/``outputs`` (and the convention keywords among their
    ``**kwargs``, see :mod:`utrans.core.conventions`) and set ``self._torch_names``
    (:attr:`TorchNames.names`), a dict from Keras layer name to the torch module
    path (``"encoder.conv0"``); their ``get_config`` returns the constructor
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
        """Constructor arguments, read back from the attributes of the same names."""
        return constructor_config(self)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def torch_weight_map(self):
        """Mapping of the reference PyTorch ``state_dict`` onto this model's weights.

        Returns:
            list of :class:`utrans.weights.pytorch.TorchMapping`, one per Keras
            weight, for :func:`utrans.convert.load_torch_checkpoint`.
        """
        out = []
        for layer_name, prefix in self._torch_names.items():
            out += self.layer_torch_mappings(self.get_layer(layer_name), prefix)
        return out

    def layer_torch_mappings(self, layer, prefix):
        """Mappings of one layer's weights; override for custom layers."""
        return layer_mappings(layer, prefix)


def _lstm_cell_mappings(cell, prefix, suffix):
    # torch packs the gates as (i, f, g, o); Keras LSTM kernels use the same
    # (i, f, c, o) order along the last axis, so a transpose is enough.
    return [
        TorchMapping(cell.kernel, [f"{prefix}.weight_ih_l0{suffix}"], linear_kernel),
        TorchMapping(cell.recurrent_kernel, [f"{prefix}.weight_hh_l0{suffix}"], linear_kernel),
        TorchMapping(cell.bias, [f"{prefix}.bias_ih_l0{suffix}", f"{prefix}.bias_hh_l0{suffix}"],
                     lstm_bias),
    ]


def layer_mappings(layer, prefix):
    """The :class:`TorchMapping` list filling one Keras layer from a torch module.

    Supported pairs: ``Conv1D``/``Conv2D`` <- ``Conv1d``/``Conv2d``,
    ``Conv1DTranspose`` <- ``ConvTranspose1d``, ``Dense`` <- ``Linear``,
    ``BatchNormalization`` <- ``BatchNorm1d`` (affine and running statistics),
    ``LayerNormalization`` <- ``LayerNorm``, ``LSTM`` <- single-layer ``LSTM``
    and ``Bidirectional(LSTM)`` <- single-layer ``LSTM(bidirectional=True)``.

    Args:
        layer: a built Keras layer.
        prefix: the torch module's name in the state_dict, e.g. ``"encoder.convs.0.conv"``.

    Returns:
        list of :class:`TorchMapping`.

    Raises:
        TypeError: for a layer type not listed above.
    """
    p = prefix
    if isinstance(layer, keras.layers.Bidirectional):
        return (_lstm_cell_mappings(layer.forward_layer.cell, p, "")
                + _lstm_cell_mappings(layer.backward_layer.cell, p, "_reverse"))
    if isinstance(layer, keras.layers.LSTM):
        return _lstm_cell_mappings(layer.cell, p, "")
    if isinstance(layer, (keras.layers.BatchNormalization, keras.layers.LayerNormalization)):
        out = []
        if layer.scale:
            out.append(TorchMapping(layer.gamma, [f"{p}.weight"]))
        if layer.center:
            out.append(TorchMapping(layer.beta, [f"{p}.bias"]))
        if isinstance(layer, keras.layers.BatchNormalization):
            out.append(TorchMapping(layer.moving_mean, [f"{p}.running_mean"]))
            out.append(TorchMapping(layer.moving_variance, [f"{p}.running_var"]))
        return out
    if isinstance(layer, keras.layers.Conv1DTranspose):
        kernel_fn = conv_transpose_kernel
    elif isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D)):
        kernel_fn = conv_kernel
    elif isinstance(layer, keras.layers.Dense):
        kernel_fn = linear_kernel
    else:
        raise TypeError(
            f"layer_mappings: no torch equivalent known for {type(layer).__name__} "
            f"(layer {layer.name!r}, torch prefix {prefix!r})."
        )
    out = [TorchMapping(layer.kernel, [f"{p}.weight"], kernel_fn)]
    if layer.use_bias:
        out.append(TorchMapping(layer.bias, [f"{p}.bias"]))
    return out
