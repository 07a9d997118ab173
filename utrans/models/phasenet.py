"""PhaseNet: a U-Net that turns a 3-component window into noise/P/S probabilities.

Keras 3 port of the PhaseNet variant in the SeisT model zoo (1-D U-Net with
strided convolutions down, transposed convolutions up, skip connections by
concatenation); its PyTorch state_dicts load through
:func:`utrans.convert.load_torch_checkpoint`.
"""

import keras

from utrans.core.conventions import Conventions
from utrans.core.registry import register_model
from utrans.models.torch_port import TorchNames, TorchPortModel

__all__ = ["PhaseNet"]


def _stride_padding(length, kernel_size, stride):
    """Total zero padding that makes a strided convolution return ceil(length / stride)."""
    return (stride - length % stride) % stride + kernel_size - stride


@keras.saving.register_keras_serializable(package="utrans")
@register_model("phasenet", quantity="picking")
class PhaseNet(TorchPortModel):
    """PhaseNet phase picker (Zhu & Beroza, 2019).

    A 1-D U-Net. An input "same" convolution is followed by
    ``len(conv_channels)`` encoder stages; every stage after the first
    downsamples by ``stride`` with a strided convolution. The decoder
    upsamples with transposed convolutions, crops to the skip connection's
    length and concatenates. Every convolution is followed by batch
    normalisation (epsilon 1e-5), ReLU and dropout. The output is a softmax over three classes
    (noise, P, S) at every sample.

    Reference:
        Zhu, W., & Beroza, G. C. (2019). PhaseNet: a deep-neural-network-based
        seismic arrival-time picking method. Geophysical Journal
        International, 216(1), 261-273. doi:10.1093/gji/ggy423

    Args:
        in_channels: number of input components (3: Z, N, E).
        in_samples: window length in samples (any positive length works;
            odd lengths are padded and cropped back as in the reference).
        kernel_size: convolution kernel size.
        stride: downsampling factor of each strided stage.
        conv_channels: channels of the encoder stages, shallow to deep.
        drop_rate: dropout rate after every convolution.
        name: model name.
        **kwargs: passed to ``keras.Model``.

    Returns:
        A model mapping ``(batch, in_samples, in_channels)`` to class
        probabilities ``(batch, in_samples, 3)`` ordered (noise, P, S).
    """

    #: Z, N, E at the data's rate (no published weights: random initialisation).
    default_conventions = Conventions(
        sampling_rate=100.0, component_order="ZNE", in_samples=8192, normalization="std",
        labels=("N", "P", "S"), thresholds={"P": 0.3, "S": 0.3}, min_peak_distance_s=1.0,
        head="phasenet")

    def __init__(
        self,
        in_channels=3,
        in_samples=8192,
        kernel_size=7,
        stride=4,
        conv_channels=(8, 16, 32, 64, 128),
        drop_rate=0.1,
        name="phasenet",
        **kwargs,
    ):
        conv_channels = [int(c) for c in conv_channels]
        if not isinstance(in_samples, int) or in_samples < 1:
            raise ValueError(
                f"{type(self).__name__} needs a fixed positive window length. "
                f"Received: in_samples={in_samples!r}"
            )
        if kernel_size < stride:
            raise ValueError(
                f"PhaseNet needs kernel_size >= stride. Received: kernel_size={kernel_size}, "
                f"stride={stride}"
            )
        layers = keras.layers
        named = TorchNames()

        def conv_bn_relu(x, filters, prefix, conv, bn, strides=1, use_bias=False,
                         padding_same=True):
            if padding_same:
                left = (kernel_size - 1) // 2
                x = layers.ZeroPadding1D((left, kernel_size - 1 - left))(x)
            x = named(layers.Conv1D(filters, kernel_size, strides=strides, use_bias=use_bias,
                                    name=f"{prefix}_{conv}".replace(".", "_")), f"{prefix}.{conv}")(x)
            x = named(layers.BatchNormalization(epsilon=1e-5, momentum=0.9,
                                                name=f"{prefix}_{bn}".replace(".", "_")),
                      f"{prefix}.{bn}")(x)
            x = layers.ReLU()(x)
            return layers.Dropout(drop_rate)(x)

        inputs = keras.Input((in_samples, in_channels), name="waveform")
        depth = len(conv_channels)

        # Input stage: "same" convolution with bias.
        x = layers.ZeroPadding1D(((kernel_size - 1) // 2, kernel_size - 1 - (kernel_size - 1) // 2))(inputs)
        x = named(layers.Conv1D(conv_channels[0], kernel_size, name="conv_in"), "conv_in")(x)
        x = named(layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name="bn_in"), "bn_in")(x)
        x = layers.ReLU()(x)
        x = layers.Dropout(drop_rate)(x)

        # Encoder.
        skips = []
        in_ch = [conv_channels[0]] + conv_channels[:-1]
        for i in range(depth):
            prefix = f"down_convs.{i}"
            if i > 0:
                p = _stride_padding(x.shape[1], kernel_size, stride)
                x = layers.ZeroPadding1D((p // 2, p - p // 2))(x)
                x = conv_bn_relu(x, in_ch[i], prefix, "conv0", "bn0", strides=stride,
                                 padding_same=False)
            x = conv_bn_relu(x, conv_channels[i], prefix, "conv1", "bn1")
            if i < depth - 1:
                skips.append(x)

        # Decoder: stage j works at depth (depth - 1 - j).
        out_ch = conv_channels[-2::-1] + [None]
        for j, level in enumerate(range(depth)[::-1]):
            prefix = f"up_convs.{j}"
            if level < depth - 1:
                x = conv_bn_relu(x, conv_channels[level], prefix, "conv0", "bn0")
            if level > 0:
                x = named(layers.Conv1DTranspose(out_ch[j], kernel_size, strides=stride,
                                                 use_bias=False,
                                                 name=f"up_convs_{j}_convt"), f"{prefix}.convt")(x)
                x = named(layers.BatchNormalization(epsilon=1e-5, momentum=0.9,
                                                    name=f"up_convs_{j}_bn1"), f"{prefix}.bn1")(x)
                x = layers.ReLU()(x)
                if level < depth - 1:
                    x = layers.Dropout(drop_rate)(x)
                skip = skips[level - 1]
                p = _stride_padding(skip.shape[1], kernel_size, stride)
                x = layers.Cropping1D((p // 2, p - p // 2))(x)
                x = layers.Concatenate(axis=-1, name=f"skip_concat_{level}")([skip, x])

        x = named(layers.Conv1D(3, 1, name="conv_out"), "conv_out")(x)
        outputs = layers.Softmax(axis=-1, name="probabilities")(x)
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)

        self.in_channels = in_channels
        self.in_samples = in_samples
        self.kernel_size = kernel_size
        self.stride = stride
        self.conv_channels = conv_channels
        self.drop_rate = drop_rate
        self._torch_names = named.names

