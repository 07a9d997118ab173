"""DiTingMotion: first-motion polarity and clarity classifier.

Keras 3 port of the DiTingMotion variant in the SeisT model zoo: densely
connected multi-kernel convolution blocks with side outputs on the deeper
blocks and a fusion head. Its PyTorch state_dicts load through
:func:`utrans.convert.load_torch_checkpoint`.
"""

import keras
from keras import ops

from utrans.core.conventions import Conventions
from utrans.core.registry import register_model
from utrans.models.torch_port import TorchNames, TorchPortModel

__all__ = ["DiTingMotion", "NearestResize1D"]


@keras.saving.register_keras_serializable(package="utrans")
class NearestResize1D(keras.layers.Layer):
    """Nearest-neighbour resampling of a sequence to a fixed length.

    Output sample ``i`` takes input sample ``floor(i * length_in / size)``,
    the rule of PyTorch's ``F.interpolate(mode="nearest")``.

    Args:
        size: output length.
        **kwargs: passed to ``keras.layers.Layer``.

    Returns:
        ``(batch, size, channels)`` from ``(batch, length_in, channels)``.
    """

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, x):
        length = x.shape[1]
        if length is None:
            raise ValueError(
                f"{self.name} needs a static sequence length. Received: shape={x.shape}"
            )
        index = [min(i * length // self.size, length - 1) for i in range(self.size)]
        return ops.take(x, ops.convert_to_tensor(index, dtype="int32"), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size)
        return config


@keras.saving.register_keras_serializable(package="utrans")
@register_model("ditingmotion", quantity="polarity")
class DiTingMotion(TorchPortModel):
    """DiTingMotion first-motion polarity classifier (Zhao et al., 2023).

    Five blocks of "combined" convolution layers (parallel convolutions of
    several kernel sizes, concatenated with their input, fused by one more
    convolution) with dense connections and max pooling. Blocks that have a
    side-layer size produce clarity and polarity side outputs; fusion heads
    combine the side features. Each final output is the mean of the side
    sigmoids and the fused sigmoid (apply a softmax over the two classes for
    class probabilities, as the reference does at post-processing).

    Reference:
        Zhao, M., Xiao, Z., Zhang, M., Yang, Y., Tang, L., & Chen, S. (2023).
        DiTingMotion: a deep-learning first-motion-polarity classifier and its
        application to focal mechanism inversion. Frontiers in Earth Science,
        11, 1103914. doi:10.3389/feart.2023.1103914

    Args:
        in_channels: input channels (2: Z and its first difference).
        in_samples: window length in samples (128 around the P arrival).
        blocks_layer_channels: per block, the output channels of each
            combined convolution layer.
        side_layer_conv_channels: output channels of the side layers' convolution.
        blocks_sidelayer_linear_in_dims: per block, the flattened side
            feature size (``None``: no side output). A side feature of another
            size is resampled (nearest) to it.
        blocks_sidelayer_linear_hidden_dims: per block, the side hidden size.
        comb_kernel_sizes: kernel sizes of the parallel convolutions.
        comb_out_kernel_size: kernel size of the fusing convolution.
        pool_size: max-pool size after each block.
        drop_rate: dropout rate.
        fuse_hidden_dim: hidden size of the fusion heads.
        num_polarity_classes: number of polarity classes.
        num_clarity_classes: number of clarity classes.
        name: model name.
        **kwargs: passed to ``keras.Model``.

    Returns:
        A model mapping ``(batch, in_samples, in_channels)`` to the list
        ``[clarity (batch, num_clarity_classes), polarity (batch, num_polarity_classes)]``.
    """

    #: The vertical component and its first difference in a 128-sample window around P.
    default_conventions = Conventions(
        sampling_rate=100.0, component_order="Z", in_samples=128, normalization="std",
        labels=("I", "E", "U", "D"), p_position_ratio=0.5, head="ditingmotion")

    def __init__(
        self,
        in_channels=2,
        in_samples=128,
        blocks_layer_channels=((8, 8), (8, 8), (8, 8, 8), (8, 8, 8), (8, 8, 8)),
        side_layer_conv_channels=2,
        blocks_sidelayer_linear_in_dims=(None, None, 32, 16, 16),
        blocks_sidelayer_linear_hidden_dims=(None, None, 8, 8, 8),
        comb_kernel_sizes=(3, 3, 5, 5),
        comb_out_kernel_size=3,
        pool_size=2,
        drop_rate=0.2,
        fuse_hidden_dim=8,
        num_polarity_classes=2,
        num_clarity_classes=2,
        name="ditingmotion",
        **kwargs,
    ):
        blocks_layer_channels = [[int(c) for c in b] for b in blocks_layer_channels]
        blocks_sidelayer_linear_in_dims = [
            None if d is None else int(d) for d in blocks_sidelayer_linear_in_dims]
        blocks_sidelayer_linear_hidden_dims = [
            None if d is None else int(d) for d in blocks_sidelayer_linear_hidden_dims]
        comb_kernel_sizes = [int(k) for k in comb_kernel_sizes]
        if not isinstance(in_samples, int) or in_samples < 1:
            raise ValueError(
                f"{type(self).__name__} needs a fixed positive window length. "
                f"Received: in_samples={in_samples!r}"
            )
        n_blocks = len(blocks_layer_channels)
        if not (len(blocks_sidelayer_linear_in_dims) == len(blocks_sidelayer_linear_hidden_dims)
                == n_blocks):
            raise ValueError(
                "DiTingMotion needs one side-layer size per block. Received: "
                f"blocks_layer_channels={blocks_layer_channels}, blocks_sidelayer_linear_in_dims="
                f"{blocks_sidelayer_linear_in_dims}, blocks_sidelayer_linear_hidden_dims="
                f"{blocks_sidelayer_linear_hidden_dims}"
            )
        if not any(d is not None for d in blocks_sidelayer_linear_in_dims):
            raise ValueError(
                "DiTingMotion needs at least one side layer. Received: "
                f"blocks_sidelayer_linear_in_dims={blocks_sidelayer_linear_in_dims}"
            )
        layers = keras.layers
        named = TorchNames()

        def lname(prefix):
            return prefix.replace(".", "_")

        def pad_same(x, kernel_size):
            total = kernel_size - 1
            return layers.ZeroPadding1D((total // 2, total - total // 2))(x)

        def comb_conv(x, filters, prefix):
            outs = [x]
            for k, ks in enumerate(comb_kernel_sizes):
                p = f"{prefix}.convs.{k}.0"
                outs.append(named(layers.Conv1D(filters, ks, activation="relu", name=lname(p)),
                                  p)(pad_same(x, ks)))
            y = layers.Concatenate(axis=-1)(outs)
            y = layers.Dropout(drop_rate)(y)
            p = f"{prefix}.out_conv"
            return named(layers.Conv1D(filters, comb_out_kernel_size, activation="relu",
                                       name=lname(p)), p)(pad_same(y, comb_out_kernel_size))

        def side_layer(x, prefix, in_dim, hidden_dim, out_dim):
            y = comb_conv(x, side_layer_conv_channels, prefix + ".conv_layer")
            if y.shape[1] * y.shape[2] != in_dim:
                y = NearestResize1D(in_dim // side_layer_conv_channels)(y)
            flat = layers.Flatten()(layers.Permute((2, 1))(y))  # channel-major, as in torch
            hidden = named(layers.Dense(hidden_dim, activation="relu", name=lname(prefix + ".lin0")),
                           prefix + ".lin0")(flat)
            out = named(layers.Dense(out_dim, activation="sigmoid", name=lname(prefix + ".lin1")),
                        prefix + ".lin1")(hidden)
            return flat, hidden, out

        inputs = keras.Input((in_samples, in_channels), name="waveform")
        x = inputs
        clarity_feats, polarity_feats, clarity_outs, polarity_outs = [], [], [], []
        for b, (channels, in_dim, hid_dim) in enumerate(zip(
                blocks_layer_channels, blocks_sidelayer_linear_in_dims,
                blocks_sidelayer_linear_hidden_dims)):
            y = x
            for i, c in enumerate(channels):
                y = comb_conv(y, c, f"blocks.{b}.conv_layers.{i}")
            x = layers.Concatenate(axis=-1)([x, y])
            x = layers.MaxPooling1D(pool_size)(x)
            if in_dim is not None:
                flat, _, c_out = side_layer(x, f"clarity_side_layers.{b}", in_dim, hid_dim,
                                            num_clarity_classes)
                clarity_feats.append(flat)
                clarity_outs.append(c_out)
                _, hidden, p_out = side_layer(x, f"polarity_side_layers.{b}", in_dim, hid_dim,
                                              num_polarity_classes)
                polarity_feats.append(hidden)
                polarity_outs.append(p_out)

        def fuse(feats, prefix, n_classes):
            y = layers.Concatenate(axis=-1)(feats) if len(feats) > 1 else feats[0]
            y = named(layers.Dense(fuse_hidden_dim, name=lname(prefix + ".0")), prefix + ".0")(y)
            return named(layers.Dense(n_classes, activation="sigmoid", name=lname(prefix + ".1")),
                         prefix + ".1")(y)

        clarity_outs.append(fuse(clarity_feats, "fuse_clarity", num_clarity_classes))
        polarity_outs.append(fuse(polarity_feats, "fuse_polarity", num_polarity_classes))
        clarity = layers.Average(name="clarity")(clarity_outs)
        polarity = layers.Average(name="polarity")(polarity_outs)
        super().__init__(inputs=inputs, outputs=[clarity, polarity], name=name, **kwargs)

        self.in_channels = in_channels
        self.in_samples = in_samples
        self.blocks_layer_channels = blocks_layer_channels
        self.side_layer_conv_channels = side_layer_conv_channels
        self.blocks_sidelayer_linear_in_dims = blocks_sidelayer_linear_in_dims
        self.blocks_sidelayer_linear_hidden_dims = blocks_sidelayer_linear_hidden_dims
        self.comb_kernel_sizes = comb_kernel_sizes
        self.comb_out_kernel_size = comb_out_kernel_size
        self.pool_size = pool_size
        self.drop_rate = drop_rate
        self.fuse_hidden_dim = fuse_hidden_dim
        self.num_polarity_classes = num_polarity_classes
        self.num_clarity_classes = num_clarity_classes
        self._torch_names = named.names

