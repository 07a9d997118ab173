"""PhaseNet: a U-Net that turns a 3-component window into noise/P/S probabilities.

Keras 3 port of the PhaseNet variant in the SeisT model zoo (1-D U-Net with
strided convolutions down, transposed convolutions up, skip connections by
concatenation); its PyTorch state_dicts load through
:func:`utrans.convert.load_torch_checkpoint`. SeisBench's ``PhaseNet`` is the
same network with three options set (``batchnorm_epsilon=1e-3``,
``decoder_crop="center"``, ``torch_layout="seisbench"``, see
:func:`seisbench_phasenet`); its weight files load through
:func:`utrans.convert.seisbench.load_seisbench`.
"""

import re

import keras

from utrans.core.conventions import Conventions
from utrans.core.registry import register_model
from utrans.models.normalization import BatchNormalization
from utrans.models.torch_port import TorchNames, TorchPortModel

__all__ = ["SEISBENCH_PHASENET_CONVENTIONS", "PhaseNet", "seisbench_phasenet"]

_DECODER_CROPS = ("padding", "center")
_TORCH_LAYOUTS = ("seist", "seisbench")


def _stride_padding(length, kernel_size, stride):
    """Total zero padding that makes a strided convolution return ceil(length / stride)."""
    return (stride - length % stride) % stride + kernel_size - stride


def _seisbench_module(name):
    """SeisBench's module path for the SeisT-layout module ``name``.

    SeisBench groups each encoder stage as ``[conv_same, bn, conv_down, bn]``
    and each decoder stage as ``[conv_up, bn, conv_same, bn]``: the strided
    convolution that opens SeisT stage ``i`` closes SeisBench stage ``i - 1``,
    and likewise for the convolution after each skip concatenation.
    """
    fixed = {"conv_in": "inc", "bn_in": "in_bn", "conv_out": "out"}
    if name in fixed:
        return fixed[name]
    branch, i, part = re.fullmatch(r"(down|up)_convs\.(\d+)\.(\w+)", name).groups()
    i = int(i)
    slot = {"conv1": (i, 0), "convt": (i, 0), "bn1": (i, 1), "conv0": (i - 1, 2),
            "bn0": (i - 1, 3)}[part]
    return f"{branch}_branch.{slot[0]}.{slot[1]}"


@keras.saving.register_keras_serializable(package="utrans")
@register_model("phasenet", quantity="picking")
class PhaseNet(TorchPortModel):
    """PhaseNet phase picker (Zhu & Beroza, 2019).

    A 1-D U-Net. An input "same" convolution is followed by
    ``len(conv_channels)`` encoder stages; every stage after the first
    downsamples by ``stride`` with a strided convolution. The decoder
    upsamples with transposed convolutions, crops to the skip connection's
    length and concatenates. Every convolution is followed by batch
    normalisation, ReLU and dropout. The output is a softmax over ``classes``
    classes (noise, P, S) at every sample.

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
        classes: output classes (softmax channels).
        batchnorm_epsilon: epsilon of every batch normalisation (SeisT 1e-5,
            SeisBench 1e-3).
        decoder_crop: how a transposed convolution's output (``stride * L +
            kernel_size - stride`` samples) is cut to its skip connection's
            length ``S``: ``"padding"`` (SeisT) drops as many leading samples as
            the encoder padded on the left; ``"center"`` (SeisBench) drops
            ``(kernel_size - stride) // 2`` leading and the rest of
            ``kernel_size - stride`` trailing samples, then keeps the ``S``
            samples from ``(stride * L - S) // 2``.
        torch_layout: which PyTorch implementation's ``state_dict`` names the
            weights map to: ``"seist"`` (SeisT's ``PhaseNet``) or
            ``"seisbench"`` (SeisBench's ``PhaseNet``: ``inc``,
            ``down_branch.{i}.{j}``, ``up_branch.{i}.{j}``, ``out``).
        name: model name.
        **kwargs: passed to ``keras.Model``.

    Returns:
        A model mapping ``(batch, in_samples, in_channels)`` to class
        probabilities ``(batch, in_samples, classes)`` in the order of the
        conventions' ``labels`` (by default noise, P, S).
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
        classes=3,
        batchnorm_epsilon=1e-5,
        decoder_crop="padding",
        torch_layout="seist",
        name="phasenet",
        **kwargs,
    ):
        conv_channels = [int(c) for c in conv_channels]
        if decoder_crop not in _DECODER_CROPS:
            raise ValueError(f"decoder_crop must be one of {_DECODER_CROPS}. "
                             f"Received: decoder_crop={decoder_crop!r}")
        if torch_layout not in _TORCH_LAYOUTS:
            raise ValueError(f"torch_layout must be one of {_TORCH_LAYOUTS}. "
                             f"Received: torch_layout={torch_layout!r}")
        if torch_layout == "seisbench" and len(conv_channels) < 2:
            raise ValueError("The seisbench torch_layout needs at least two encoder stages. "
                             f"Received: conv_channels={conv_channels}")
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
            x = named(BatchNormalization(epsilon=batchnorm_epsilon, momentum=0.9,
                                         name=f"{prefix}_{bn}".replace(".", "_")),
                      f"{prefix}.{bn}")(x)
            x = layers.ReLU()(x)
            return layers.Dropout(drop_rate)(x)

        inputs = keras.Input((in_samples, in_channels), name="waveform")
        depth = len(conv_channels)

        # Input stage: "same" convolution with bias.
        x = layers.ZeroPadding1D(((kernel_size - 1) // 2, kernel_size - 1 - (kernel_size - 1) // 2))(inputs)
        x = named(layers.Conv1D(conv_channels[0], kernel_size, name="conv_in"), "conv_in")(x)
        x = named(BatchNormalization(epsilon=batchnorm_epsilon, momentum=0.9, name="bn_in"), "bn_in")(x)
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
                x = named(BatchNormalization(epsilon=batchnorm_epsilon, momentum=0.9,
                                             name=f"up_convs_{j}_bn1"), f"{prefix}.bn1")(x)
                x = layers.ReLU()(x)
                if level < depth - 1:
                    x = layers.Dropout(drop_rate)(x)
                skip = skips[level - 1]
                if decoder_crop == "padding":
                    p = _stride_padding(skip.shape[1], kernel_size, stride)
                    start = p // 2
                else:
                    start = (kernel_size - stride) // 2
                    start += (x.shape[1] - (kernel_size - stride) - skip.shape[1]) // 2
                x = layers.Cropping1D((start, x.shape[1] - start - skip.shape[1]))(x)
                x = layers.Concatenate(axis=-1, name=f"skip_concat_{level}")([skip, x])

        x = named(layers.Conv1D(classes, 1, name="conv_out"), "conv_out")(x)
        outputs = layers.Softmax(axis=-1, name="probabilities")(x)
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)

        self.in_channels = in_channels
        self.in_samples = in_samples
        self.kernel_size = kernel_size
        self.stride = stride
        self.conv_channels = conv_channels
        self.drop_rate = drop_rate
        self.classes = classes
        self.batchnorm_epsilon = batchnorm_epsilon
        self.decoder_crop = decoder_crop
        self.torch_layout = torch_layout
        names = named.names
        if torch_layout == "seisbench":
            names = {k: _seisbench_module(v) for k, v in names.items()}
        self._torch_names = names



#: SeisBench's ``PhaseNet`` defaults: its class defaults and annotate arguments.
SEISBENCH_PHASENET_CONVENTIONS = Conventions(
    sampling_rate=100.0, component_order="ZNE", in_samples=3001,
    normalization="seisbench_std", labels=("N", "P", "S"), thresholds={"P": 0.3, "S": 0.3},
    pick_rule="regions", head="phasenet", overlap=1500, stacking="avg", blinding=(0, 0))


@register_model("seisbench_phasenet", quantity="picking", conventions=SEISBENCH_PHASENET_CONVENTIONS)
def seisbench_phasenet(in_channels=3, classes=3, filter_factor=1, in_samples=3001,
                       name="seisbench_phasenet", **kwargs):
    """PhaseNet as SeisBench builds it (``seisbench.models.PhaseNet``), for its weight files.

    The :class:`PhaseNet` network with kernel 7, stride 4, channels
    ``8 * 2**i * filter_factor`` (i = 0..4), batch normalisation epsilon
    1e-3, no dropout, SeisBench's decoder crop and tensor names, and
    SeisBench's conventions (3001 samples at 100 Hz, ZNE, per-channel
    ``seisbench_std`` normalisation, labels N/P/S, threshold 0.3, pick rule
    ``regions``, annotate overlap 1500 samples with ``avg`` stacking).
    ``torch.nn.Conv1d``/``ConvTranspose1d``/``BatchNorm1d`` parameters count
    the same here; Keras adds the batch normalisations' moving statistics
    (torch buffers) as non-trainable weights.

    Args:
        in_channels: input components.
        classes: output classes.
        filter_factor: SeisBench's ``filter_factor`` (PhaseNetWC: wider layers).
        in_samples: window length (SeisBench: always 3001).
        name: model name.
        **kwargs: conventions (``labels``, ``normalization``, ...) and
            ``keras.Model`` arguments.

    Returns:
        A :class:`PhaseNet`.
    """
    kwargs.setdefault("conventions", SEISBENCH_PHASENET_CONVENTIONS)
    return PhaseNet(in_channels=in_channels, in_samples=in_samples, kernel_size=7, stride=4,
                    conv_channels=[8 * 2**i * int(filter_factor) for i in range(5)],
                    drop_rate=0.0, classes=classes, batchnorm_epsilon=1e-3,
                    decoder_crop="center", torch_layout="seisbench", name=name, **kwargs)
