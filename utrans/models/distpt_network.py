"""dist-PT Network: epicentral distance and P travel time from one station.

Keras 3 port of the dist-PT network in the SeisT model zoo: a temporal
convolutional network (causal dilated residual blocks with skip
connections) whose last time step feeds two linear heads. Its PyTorch
state_dicts load through :func:`utrans.convert.load_torch_checkpoint`.
"""

import keras

from utrans.models.torch_port import layer_mappings
from utrans.core.conventions import Conventions
from utrans.core.registry import register_model
from utrans.models.torch_port import TorchNames, TorchPortModel

__all__ = ["DistPTNetwork", "TCNResidualBlock"]


@keras.saving.register_keras_serializable(package="utrans")
class TCNResidualBlock(keras.layers.Layer):
    """Causal dilated residual block of a temporal convolutional network.

    Two causal dilated convolutions, each followed by batch normalisation
    (epsilon 1e-5), ReLU and spatial (channel) dropout, give the skip
    output ``s``; the residual output is ``s + conv1x1(s)``.

    Args:
        filters: channels in and out.
        kernel_size: kernel size of the causal convolutions.
        dilation_rate: their dilation.
        drop_rate: spatial dropout rate.
        **kwargs: passed to ``keras.layers.Layer``.

    Returns:
        The pair ``(residual, skip)``, each ``(batch, length, filters)``.
    """

    def __init__(self, filters, kernel_size, dilation_rate, drop_rate=0.0, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.dilation_rate = dilation_rate
        self.drop_rate = drop_rate
        layers = keras.layers
        self.conv0 = layers.Conv1D(filters, kernel_size, dilation_rate=dilation_rate,
                                   padding="causal", name="conv0")
        self.bn0 = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name="bn0")
        self.dropout0 = layers.SpatialDropout1D(drop_rate, name="dropout0")
        self.conv1 = layers.Conv1D(filters, kernel_size, dilation_rate=dilation_rate,
                                   padding="causal", name="conv1")
        self.bn1 = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name="bn1")
        self.dropout1 = layers.SpatialDropout1D(drop_rate, name="dropout1")
        self.conv_out = layers.Conv1D(filters, 1, name="conv_out")

    def build(self, input_shape):
        out_shape = tuple(input_shape[:-1]) + (self.filters,)
        self.conv0.build(input_shape)
        self.bn0.build(out_shape)
        self.conv1.build(out_shape)
        self.bn1.build(out_shape)
        self.conv_out.build(out_shape)

    def call(self, x, training=None):
        x = self.conv0(x)
        x = self.bn0(x, training=training)
        x = self.dropout0(keras.ops.relu(x), training=training)
        x = self.conv1(x)
        x = self.bn1(x, training=training)
        skip = self.dropout1(keras.ops.relu(x), training=training)
        return skip + self.conv_out(skip), skip

    def compute_output_shape(self, input_shape):
        out_shape = tuple(input_shape[:-1]) + (self.filters,)
        return out_shape, out_shape

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size,
                      dilation_rate=self.dilation_rate, drop_rate=self.drop_rate)
        return config


@keras.saving.register_keras_serializable(package="utrans")
@register_model("distpt_network", quantity="distance")
class DistPTNetwork(TorchPortModel):
    """dist-PT Network for distance and P travel time (Mousavi & Beroza, 2020).

    A 1x1 input convolution, then one causal dilated residual block per
    entry of ``dilations * num_conv_blocks``; the blocks' skip outputs are
    summed and the last time step feeds two linear heads with two outputs
    each (value and log-variance, for the aleatoric-uncertainty loss).

    Reference:
        Mousavi, S. M., & Beroza, G. C. (2020). Bayesian-deep-learning
        estimation of earthquake location from single-station observations.
        IEEE Transactions on Geoscience and Remote Sensing, 58(11),
        8211-8224. doi:10.1109/TGRS.2020.2988770

    Args:
        in_channels: number of input components.
        in_samples: window length in samples.
        tcn_channels: channels of the temporal convolutional network.
        kernel_size: kernel size of the causal convolutions.
        num_conv_blocks: repetitions of the ``dilations`` stack.
        dilations: dilation of each residual block.
        drop_rate: spatial dropout rate.
        name: model name.
        **kwargs: passed to ``keras.Model``.

    Returns:
        A model mapping ``(batch, in_samples, in_channels)`` to the list
        ``[distance (batch, 2), p_travel_time (batch, 2)]`` (column 0 the
        value, column 1 its log-variance).
    """

    #: Z, N, E at the data's rate (no published weights: random initialisation).
    default_conventions = Conventions(
        sampling_rate=100.0, component_order="ZNE", in_samples=8192, normalization="std",
        labels=("distance_km", "distance_log_variance", "p_travel_s", "p_travel_log_variance"),
        head="distpt_network")

    def __init__(
        self,
        in_channels=3,
        in_samples=8192,
        tcn_channels=20,
        kernel_size=6,
        num_conv_blocks=1,
        dilations=tuple(2**i for i in range(11)),
        drop_rate=0.1,
        name="distpt_network",
        **kwargs,
    ):
        dilations = [int(d) for d in dilations]
        if not isinstance(in_samples, int) or in_samples < 1:
            raise ValueError(
                f"{type(self).__name__} needs a fixed positive window length. "
                f"Received: in_samples={in_samples!r}"
            )
        if not dilations or num_conv_blocks < 1:
            raise ValueError(
                "DistPTNetwork needs at least one residual block. Received: "
                f"dilations={dilations}, num_conv_blocks={num_conv_blocks}"
            )
        layers = keras.layers
        named = TorchNames()

        inputs = keras.Input((in_samples, in_channels), name="waveform")
        x = named(layers.Conv1D(tcn_channels, 1, name="tcn_conv_in"), "tcn.conv_in")(inputs)
        skips = []
        for i, dilation in enumerate(dilations * num_conv_blocks):
            block = named(TCNResidualBlock(tcn_channels, kernel_size, dilation, drop_rate,
                                           name=f"tcn_conv_blocks_{i}"), f"tcn.conv_blocks.{i}")
            x, skip = block(x)
            skips.append(skip)
        x = layers.Add(name="tcn_skip_sum")(skips) if len(skips) > 1 else skips[0]
        x = layers.Cropping1D((x.shape[1] - 1, 0))(x)
        x = layers.Flatten(name="last_step")(x)
        distance = named(layers.Dense(2, name="distance"), "lin_dist")(x)
        travel_time = named(layers.Dense(2, name="p_travel_time"), "lin_ptrvl")(x)
        super().__init__(inputs=inputs, outputs=[distance, travel_time], name=name, **kwargs)

        self.in_channels = in_channels
        self.in_samples = in_samples
        self.tcn_channels = tcn_channels
        self.kernel_size = kernel_size
        self.num_conv_blocks = num_conv_blocks
        self.dilations = dilations
        self.drop_rate = drop_rate
        self._torch_names = named.names

    def layer_torch_mappings(self, layer, prefix):
        """Torch tensors of one layer; a TCN block maps its sub-layers one by one."""
        if isinstance(layer, TCNResidualBlock):
            out = []
            for sub in ("conv0", "bn0", "conv1", "bn1", "conv_out"):
                out += layer_mappings(getattr(layer, sub), f"{prefix}.{sub}")
            return out
        return super().layer_torch_mappings(layer, prefix)
