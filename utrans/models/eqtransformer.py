"""EQTransformer: joint earthquake detection and P/S picking.

Keras 3 port of the EQTransformer variant in the SeisT model zoo: a
convolutional + residual + bidirectional-LSTM + additive-attention encoder
shared by three decoders (detection, P, S). Its PyTorch state_dicts load
through :func:`utrans.convert.load_torch_checkpoint`.
"""

import math

import keras
from keras import ops

from utrans.convert.pytorch import TorchMapping
from utrans.core.conventions import Conventions
from utrans.core.registry import register_model
from utrans.models.torch_port import TorchNames, TorchPortModel

__all__ = ["AdditiveSelfAttention", "EQTransformer"]


@keras.saving.register_keras_serializable(package="utrans")
class AdditiveSelfAttention(keras.layers.Layer):
    """Single-head additive (Bahdanau-style) self-attention of EQTransformer.

    For a sequence ``x`` of shape ``(batch, length, channels)``:
    ``e[i, j] = tanh(x_i Wt + x_j Wx + bh) Wa + ba``; the scores are
    exponentiated after subtracting each row's maximum (over all ``j``),
    optionally restricted to keys ``i + (-width // 2) <= j <= i + width // 2 - 1``
    (for width 3: the query and the two samples before it), and normalised
    by their sum plus ``epsilon``. The output is the weighted sum of the
    input vectors.

    Args:
        units: size of the hidden scoring space (``d_model``).
        attention_width: ``None`` for global attention, else the local
            window width described above.
        epsilon: added to the normaliser.
        **kwargs: passed to ``keras.layers.Layer``.

    Returns:
        The attended sequence, same shape as the input.
    """

    def __init__(self, units, attention_width=None, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.attention_width = attention_width
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = input_shape[-1]
        self.Wx = self.add_weight(name="Wx", shape=(channels, self.units),
                                  initializer="glorot_uniform")
        self.Wt = self.add_weight(name="Wt", shape=(channels, self.units),
                                  initializer="glorot_uniform")
        self.bh = self.add_weight(name="bh", shape=(self.units,), initializer="zeros")
        self.Wa = self.add_weight(name="Wa", shape=(self.units, 1), initializer="glorot_uniform")
        self.ba = self.add_weight(name="ba", shape=(1,), initializer="zeros")

    def call(self, x):
        q = ops.expand_dims(ops.matmul(x, self.Wt), 2)  # (B, L, 1, d)
        k = ops.expand_dims(ops.matmul(x, self.Wx), 1)  # (B, 1, L, d)
        h = ops.tanh(q + k + self.bh)
        e = ops.squeeze(ops.matmul(h, self.Wa), -1) + self.ba  # (B, L, L)
        e = ops.exp(e - ops.max(e, axis=-1, keepdims=True))
        if self.attention_width is not None:
            idx = ops.arange(ops.shape(x)[1])
            offset = ops.expand_dims(idx, 0) - ops.expand_dims(idx, 1)  # j - i
            w = self.attention_width
            mask = ops.logical_and(offset <= w // 2 - 1, offset >= (-w) // 2)
            e = ops.where(mask, e, ops.zeros_like(e))
        a = e / (ops.sum(e, axis=-1, keepdims=True) + self.epsilon)
        return ops.matmul(a, x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, attention_width=self.attention_width,
                      epsilon=self.epsilon)
        return config


@keras.saving.register_keras_serializable(package="utrans")
@register_model("eqtransformer", quantity="picking")
class EQTransformer(TorchPortModel):
    """EQTransformer detector and phase picker (Mousavi et al., 2020).

    Encoder: one convolution + max-pool stage per ``conv_channels`` entry,
    one pre-activation residual block per ``resconv_kernels`` entry, ``num_lstm_blocks`` bidirectional-LSTM blocks and
    ``num_transformer_layers`` global additive-attention transformer
    layers. Three decoders (detection, P, S) each optionally start with an
    LSTM and a local-attention transformer layer
    (``decoder_with_attn_lstm``), then upsample back to ``in_samples`` with
    nearest-neighbour upsampling + convolution, ending in a sigmoid.

    Reference:
        Mousavi, S. M., Ellsworth, W. L., Zhu, W., Chuang, L. Y., & Beroza,
        G. C. (2020). Earthquake transformer - an attentive deep-learning
        model for simultaneous earthquake detection and phase picking.
        Nature Communications, 11, 3952. doi:10.1038/s41467-020-17591-w

    Args:
        in_channels: number of input components.
        in_samples: window length in samples.
        conv_channels: channels of the encoder convolution stages.
        conv_kernels: kernel sizes of the encoder convolution stages.
        resconv_kernels: kernel sizes of the residual blocks (one per block).
        num_lstm_blocks: bidirectional-LSTM blocks in the encoder.
        num_transformer_layers: global-attention layers in the encoder.
        transformer_io_channels: feature size of the LSTM/attention stage.
        transformer_d_model: hidden size of the attention scores.
        feedforward_dim: hidden size of the transformer feed-forward network.
        local_attention_width: window of the decoders' local attention.
        drop_rate: dropout rate.
        decoder_with_attn_lstm: for each of the (det, P, S) decoders, whether
            it has its own LSTM + local attention.
        conv_kernel_l1_regularization: L1 factor on the kernels of the
            encoder/decoder convolution stages (0 disables).
        conv_bias_l1_regularization: L1 factor on their biases.
        name: model name.
        **kwargs: passed to ``keras.Model``.

    Returns:
        A model mapping ``(batch, in_samples, in_channels)`` to
        ``(batch, in_samples, 3)`` sigmoid probabilities ordered
        (detection, P, S).
    """

    #: Z, N, E at the data's rate (no published weights: random initialisation).
    default_conventions = Conventions(
        sampling_rate=100.0, component_order="ZNE", in_samples=8192, normalization="std",
        labels=("det", "P", "S"), thresholds={"det": 0.5, "P": 0.3, "S": 0.3},
        min_peak_distance_s=1.0, head="detection_picking")

    def __init__(
        self,
        in_channels=3,
        in_samples=8192,
        conv_channels=(8, 16, 16, 32, 32, 64, 64),
        conv_kernels=(11, 9, 7, 7, 5, 5, 3),
        resconv_kernels=(3, 3, 3, 2, 2),
        num_lstm_blocks=3,
        num_transformer_layers=2,
        transformer_io_channels=16,
        transformer_d_model=32,
        feedforward_dim=128,
        local_attention_width=3,
        drop_rate=0.1,
        decoder_with_attn_lstm=(False, True, True),
        conv_kernel_l1_regularization=0.0,
        conv_bias_l1_regularization=0.0,
        name="eqtransformer",
        **kwargs,
    ):
        conv_channels = [int(c) for c in conv_channels]
        if not isinstance(in_samples, int) or in_samples < 1:
            raise ValueError(
                f"{type(self).__name__} needs a fixed positive window length. "
                f"Received: in_samples={in_samples!r}"
            )
        conv_kernels = [int(k) for k in conv_kernels]
        resconv_kernels = [int(k) for k in resconv_kernels]
        decoder_with_attn_lstm = [bool(b) for b in decoder_with_attn_lstm]
        if len(conv_channels) != len(conv_kernels):
            raise ValueError(
                "EQTransformer needs one kernel size per convolution stage. Received: "
                f"conv_channels={conv_channels}, conv_kernels={conv_kernels}"
            )
        if conv_kernel_l1_regularization < 0 or conv_bias_l1_regularization < 0:
            raise ValueError(
                "L1 factors must be >= 0. Received: conv_kernel_l1_regularization="
                f"{conv_kernel_l1_regularization}, conv_bias_l1_regularization="
                f"{conv_bias_l1_regularization}"
            )
        layers = keras.layers
        named = TorchNames()

        def lname(prefix):
            return prefix.replace(".", "_")

        def conv(filters, kernel_size, prefix, l1=False, **kw):
            reg = {}
            if l1 and conv_kernel_l1_regularization > 0:
                reg["kernel_regularizer"] = keras.regularizers.L1(conv_kernel_l1_regularization)
            if l1 and conv_bias_l1_regularization > 0:
                reg["bias_regularizer"] = keras.regularizers.L1(conv_bias_l1_regularization)
            return named(layers.Conv1D(filters, kernel_size, name=lname(prefix), **reg, **kw),
                         prefix)

        def pad_same(x, kernel_size):
            left = (kernel_size - 1) // 2
            return layers.ZeroPadding1D((left, kernel_size - 1 - left))(x)

        def batchnorm(prefix):
            return named(layers.BatchNormalization(epsilon=1e-5, momentum=0.9,
                                                   name=lname(prefix)), prefix)

        def transformer_layer(x, prefix, width):
            x1 = named(AdditiveSelfAttention(transformer_d_model, attention_width=width,
                                             name=lname(prefix + ".attn")), prefix + ".attn")(x)
            x2 = layers.Add()([x1, x])
            x2 = named(layers.LayerNormalization(epsilon=1e-5, name=lname(prefix + ".ln0")),
                       prefix + ".ln0")(x2)
            x3 = named(layers.Dense(feedforward_dim, activation="relu",
                                    name=lname(prefix + ".ff.lin0")), prefix + ".ff.lin0")(x2)
            x3 = layers.Dropout(drop_rate)(x3)
            x3 = named(layers.Dense(transformer_io_channels, name=lname(prefix + ".ff.lin1")),
                       prefix + ".ff.lin1")(x3)
            x4 = layers.Add()([x3, x2])
            return named(layers.LayerNormalization(epsilon=1e-5, name=lname(prefix + ".ln1")),
                         prefix + ".ln1")(x4)

        inputs = keras.Input((in_samples, in_channels), name="waveform")

        # Encoder: convolution + max-pool stages (odd lengths keep their last sample).
        x = inputs
        for i, (filters, ks) in enumerate(zip(conv_channels, conv_kernels)):
            x = pad_same(x, ks)
            x = conv(filters, ks, f"encoder.convs.{i}.conv", l1=True, activation="relu")(x)
            x = layers.MaxPooling1D(2, padding="same")(x)
        # Pre-activation residual blocks.
        for i, ks in enumerate(resconv_kernels):
            p = f"encoder.res_convs.{i}"
            y = batchnorm(p + ".bn0")(x)
            y = layers.ReLU()(y)
            y = layers.SpatialDropout1D(drop_rate)(y)
            y = conv(conv_channels[-1], ks, p + ".conv0")(pad_same(y, ks))
            y = batchnorm(p + ".bn1")(y)
            y = layers.ReLU()(y)
            y = layers.SpatialDropout1D(drop_rate)(y)
            y = conv(conv_channels[-1], ks, p + ".conv1")(pad_same(y, ks))
            x = layers.Add()([x, y])
        # Bidirectional LSTM blocks.
        for i in range(num_lstm_blocks):
            p = f"encoder.bilstms.{i}"
            # The backward LSTM is passed explicitly: Keras would otherwise clone
            # the forward one through serialisation, which can hand back the
            # forward object itself while a model is being deserialised.
            x = named(layers.Bidirectional(
                layers.LSTM(transformer_io_channels, return_sequences=True),
                backward_layer=layers.LSTM(transformer_io_channels, return_sequences=True,
                                           go_backwards=True),
                name=lname(p + ".bilstm")), p + ".bilstm")(x)
            x = layers.Dropout(drop_rate)(x)
            x = conv(transformer_io_channels, 1, p + ".conv")(x)
            x = batchnorm(p + ".bn")(x)
        for i in range(num_transformer_layers):
            x = transformer_layer(x, f"encoder.transformers.{i}", None)
        features = x

        crop_sizes = [in_samples]
        for _ in range(len(conv_kernels) - 1):
            crop_sizes.insert(0, math.ceil(crop_sizes[0] / 2))
        dec_channels = conv_channels[::-1]
        dec_kernels = conv_kernels[::-1]

        outputs = []
        for d, (has_attn, head) in enumerate(zip(decoder_with_attn_lstm,
                                                 ("detection", "p_pick", "s_pick"))):
            p = f"decoders.{d}"
            x = features
            if has_attn:
                x = named(layers.LSTM(transformer_io_channels, return_sequences=True,
                                      name=lname(p + ".lstm")), p + ".lstm")(x)
                x = layers.Dropout(drop_rate)(x)
                x = transformer_layer(x, p + ".transformer", local_attention_width)
            for k, (filters, ks, crop) in enumerate(zip(dec_channels, dec_kernels, crop_sizes)):
                x = layers.UpSampling1D(2)(x)
                x = layers.Cropping1D((0, x.shape[1] - crop))(x)
                x = conv(filters, ks, f"{p}.upsamplings.{k}.conv", l1=True,
                         activation="relu")(pad_same(x, ks))
            x = conv(1, 11, p + ".conv_out")(pad_same(x, 11))
            outputs.append(layers.Activation("sigmoid", name=head)(x))
        if len(outputs) > 1:
            out = layers.Concatenate(axis=-1, name="probabilities")(outputs)
        else:
            out = outputs[0]
        super().__init__(inputs=inputs, outputs=out, name=name, **kwargs)

        self.in_channels = in_channels
        self.in_samples = in_samples
        self.conv_channels = conv_channels
        self.conv_kernels = conv_kernels
        self.resconv_kernels = resconv_kernels
        self.num_lstm_blocks = num_lstm_blocks
        self.num_transformer_layers = num_transformer_layers
        self.transformer_io_channels = transformer_io_channels
        self.transformer_d_model = transformer_d_model
        self.feedforward_dim = feedforward_dim
        self.local_attention_width = local_attention_width
        self.drop_rate = drop_rate
        self.decoder_with_attn_lstm = decoder_with_attn_lstm
        self.conv_kernel_l1_regularization = conv_kernel_l1_regularization
        self.conv_bias_l1_regularization = conv_bias_l1_regularization
        self._torch_names = named.names

    def layer_torch_mappings(self, layer, prefix):
        """Torch tensors of one layer; the additive attention's are plain parameters."""
        if isinstance(layer, AdditiveSelfAttention):
            return [TorchMapping(getattr(layer, w), [f"{prefix}.{w}"])
                    for w in ("Wx", "Wt", "bh", "Wa", "ba")]
        return super().layer_torch_mappings(layer, prefix)
