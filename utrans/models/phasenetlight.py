"""PhaseNetLight: SeisBench's reduced PhaseNet (four strided stages, narrow layers).

Keras 3 port of ``seisbench.models.PhaseNetLight``, the PhaseNet variant
SeisBench shipped before v0.3 and still publishes weights for. Its weight
files load through :func:`utrans.convert.seisbench.load_seisbench`.
"""

import keras

from utrans.core.conventions import Conventions
from utrans.core.registry import register_model
from utrans.models.torch_port import TorchNames, TorchPortModel

__all__ = ["PhaseNetLight"]

#: Channels of the input stage and of the four strided encoder stages.
_FILTERS = (8, 11, 16, 22, 32)
_KERNEL = 7
_STRIDE = 4
# Torch padding of each transposed convolution (deepest first): the samples its
# output loses at the start. The first three reuse the encoder convolutions'
# padding attribute (2), the last is set to 3.
_UP_PADDING = (2, 2, 2, 3)


@keras.saving.register_keras_serializable(package="utrans")
@register_model("seisbench_phasenetlight", quantity="picking")
class PhaseNetLight(TorchPortModel):
    """PhaseNetLight phase picker (SeisBench's reduced PhaseNet, Zhu & Beroza, 2019).

    A pointwise input convolution (8 channels), then four encoder stages,
    each a convolution of kernel 7 and stride 4 with 3 zero samples on each
    side (11, 16, 22, 32 channels). The decoder mirrors them with transposed
    convolutions of kernel 7 and stride 4, each cut to the length of the
    encoder output it is concatenated with (upsampled features first, skip
    second), dropping 2, 2, 2 and 3 leading samples as SeisBench's torch
    padding does. Every convolution has a bias and is followed by batch
    normalisation (epsilon 1e-5) and ReLU; a pointwise transposed
    convolution and a softmax give the class probabilities. No dropout.

    Reference:
        Zhu, W., & Beroza, G. C. (2019). PhaseNet: a deep-neural-network-based
        seismic arrival-time picking method. Geophysical Journal
        International, 216(1), 261-273. doi:10.1093/gji/ggy423
        (SeisBench implementation: Woollam et al., 2022, Seismological
        Research Letters, 93(3), 1695-1709.)

    Args:
        in_channels: number of input components.
        in_samples: window length in samples (SeisBench: 3001; any length works).
        classes: output classes (softmax channels).
        name: model name.
        **kwargs: conventions (:mod:`utrans.core.conventions`) and ``keras.Model`` arguments.

    Returns:
        A model mapping ``(batch, in_samples, in_channels)`` to class
        probabilities ``(batch, in_samples, classes)`` in the order of the
        conventions' ``labels``.
    """

    #: SeisBench's PhaseNetLight defaults (class defaults and annotate arguments).
    default_conventions = Conventions(
        sampling_rate=100.0, component_order="ZNE", in_samples=3001,
        normalization="seisbench_std", labels=("N", "P", "S"), thresholds={"P": 0.3, "S": 0.3},
        pick_rule="regions", head="phasenet", overlap=1500, stacking="avg", blinding=(0, 0))

    def __init__(self, in_channels=3, in_samples=3001, classes=3,
                 name="seisbench_phasenetlight", **kwargs):
        if not isinstance(in_samples, int) or in_samples < 1:
            raise ValueError(f"{type(self).__name__} needs a fixed positive window length. "
                             f"Received: in_samples={in_samples!r}")
        layers = keras.layers
        named = TorchNames()

        def bn_relu(x, prefix):
            x = named(layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=prefix),
                      prefix)(x)
            return layers.ReLU()(x)

        inputs = keras.Input((in_samples, in_channels), name="waveform")
        x = named(layers.Conv1D(_FILTERS[0], 1, name="inc"), "inc")(inputs)
        skips = [bn_relu(x, "in_bn")]
        pad = (_KERNEL - 1) // 2
        for i, filters in enumerate(_FILTERS[1:], start=1):
            x = layers.ZeroPadding1D((pad, pad))(skips[-1])
            x = named(layers.Conv1D(filters, _KERNEL, strides=_STRIDE, name=f"conv{i}"),
                      f"conv{i}.conv")(x)
            skips.append(bn_relu(x, f"bnd{i}"))

        x = skips.pop()
        for i, start in enumerate(_UP_PADDING, start=1):
            skip = skips.pop()
            x = named(layers.Conv1DTranspose(skip.shape[-1], _KERNEL, strides=_STRIDE,
                                             name=f"up{i}"), f"up{i}")(x)
            x = layers.Cropping1D((start, x.shape[1] - start - skip.shape[1]))(x)
            x = bn_relu(x, f"bnu{i}")
            x = layers.Concatenate(axis=-1, name=f"skip_concat_{i}")([x, skip])
        x = named(layers.Conv1DTranspose(classes, 1, name="out"), "out")(x)
        outputs = layers.Softmax(axis=-1, name="probabilities")(x)
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)

        self.in_channels = in_channels
        self.in_samples = in_samples
        self.classes = classes
        self._torch_names = named.names
