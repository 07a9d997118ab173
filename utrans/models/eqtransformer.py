"""EQTransformer: joint earthquake detection and P/S picking.

Keras 3 port of the EQTransformer variant in the SeisT model zoo: a
convolutional + residual + bidirectional-LSTM + additive-attention encoder
shared by three decoders (detection, P, S). Its PyTorch state_dicts load
through :func:`utrans.convert.load_torch_checkpoint`. SeisBench's
``EQTransformer`` is the same network with a few options set (see
:func:`seisbench_eqtransformer`); its weight files load through
:func:`utrans.convert.seisbench.load_seisbench`.
"""

import math
import re

import keras
from keras import ops

from utrans.weights.pytorch import TorchMapping
from utrans.core.conventions import Conventions
from utrans.core.registry import register_model
from utrans.models.normalization import BatchNormalization
from utrans.models.torch_port import TorchNames, TorchPortModel

__all__ = ["SEISBENCH_EQTRANSFORMER_CONVENTIONS", "AdditiveSelfAttention", "EQTransformer",
           "seisbench_eqtransformer"]

_WINDOWS = ("trailing", "centered")
_DECODER_ATTENTIONS = ("transformer", "attention")
_TORCH_LAYOUTS = ("seist", "seisbench")


@keras.saving.register_keras_serializable(package="utrans")
class AdditiveSelfAttention(keras.layers.Layer):
    """Single-head additive (Bahdanau-style) self-attention of EQTransformer.

    For a sequence ``x`` of shape ``(batch, length, channels)``:
    ``e[i, j] = tanh(x_i Wt + x_j Wx + bh) Wa + ba``; the scores are
    exponentiated after subtracting each row's maximum (over all ``j``),
    optionally restricted to a local window of keys, and normalised by their
    sum plus ``epsilon``. The output is the weighted sum of the input
    vectors. The local window of width ``w`` is
    ``i + (-w) // 2 <= j <= i + w // 2 - 1`` for ``window="trailing"`` (SeisT;
    for width 3: the query and the two samples before it) or
    ``i - w // 2 <= j < i - w // 2 + w`` for ``window="centered"``
    (SeisBench, keras-self-attention; width 3: the query and its neighbours).

    Args:
        units: size of the hidden scoring space (``d_model``).
        attention_width: ``None`` for global attention, else the local
            window width described above.
        epsilon: added to the normaliser.
        window: placement of the local window, ``"trailing"`` or ``"centered"``.
        **kwargs: passed to ``keras.layers.Layer``.

    Returns:
        The attended sequence, same shape as the input.
    """

    def __init__(self, units, attention_width=None, epsilon=1e-6, window="trailing", **kwargs):
        super().__init__(**kwargs)
        if window not in _WINDOWS:
            raise ValueError(f"window must be one of {_WINDOWS}. Received: window={window!r}")
        self.units = units
        self.attention_width = attention_width
        self.epsilon = epsilon
        self.window = window

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
            if self.window == "trailing":
                lo, hi = (-w) // 2, w // 2 - 1
            else:
                lo, hi = -(w // 2), w - w // 2 - 1
            mask = ops.logical_and(offset <= hi, offset >= lo)
            e = ops.where(mask, e, ops.zeros_like(e))
        a = e / (ops.sum(e, axis=-1, keepdims=True) + self.epsilon)
        return ops.matmul(a, x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, attention_width=self.attention_width,
                      epsilon=self.epsilon, window=self.window)
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
        batchnorm_epsilon: epsilon of the batch normalisations (SeisT 1e-5,
            SeisBench 1e-3).
        layer_norm_epsilon: epsilon of the transformer layer normalisations
            (SeisT 1e-5, SeisBench 1e-14).
        attention_epsilon: epsilon of the attention normaliser (SeisT 1e-6,
            SeisBench 1e-5).
        local_attention_window: placement of the decoders' local attention
            window, ``"trailing"`` (SeisT) or ``"centered"`` (SeisBench), see
            :class:`AdditiveSelfAttention`.
        decoder_attention: what follows a decoder's LSTM: ``"transformer"``
            (SeisT: a full transformer layer with local attention) or
            ``"attention"`` (SeisBench: the local attention alone, no residual,
            normalisation or feed-forward).
        torch_layout: which PyTorch implementation's ``state_dict`` names the
            weights map to: ``"seist"`` or ``"seisbench"`` (``encoder.convs``,
            ``res_cnn_stack``, ``bi_lstm_stack``, ``transformer_d0``,
            ``transformer_d``, ``decoder_d``, ``pick_lstms``, ...; two encoder
            transformer layers).
        name: model name.
        **kwargs: passed to ``keras.Model``.

    Returns:
        A model mapping ``(batch, in_samples, in_channels)`` to
        ``(batch, in_samples, len(decoder_with_attn_lstm))`` sigmoid
        probabilities ordered (detection, P, S, further picks).
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
        batchnorm_epsilon=1e-5,
        layer_norm_epsilon=1e-5,
        attention_epsilon=1e-6,
        local_attention_window="trailing",
        decoder_attention="transformer",
        torch_layout="seist",
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
        if local_attention_window not in _WINDOWS:
            raise ValueError(f"local_attention_window must be one of {_WINDOWS}. "
                             f"Received: local_attention_window={local_attention_window!r}")
        if decoder_attention not in _DECODER_ATTENTIONS:
            raise ValueError(f"decoder_attention must be one of {_DECODER_ATTENTIONS}. "
                             f"Received: decoder_attention={decoder_attention!r}")
        if torch_layout not in _TORCH_LAYOUTS:
            raise ValueError(f"torch_layout must be one of {_TORCH_LAYOUTS}. "
                             f"Received: torch_layout={torch_layout!r}")
        if torch_layout == "seisbench" and (num_transformer_layers != 2
                                            or decoder_with_attn_lstm[0]
                                            or not all(decoder_with_attn_lstm[1:])):
            raise ValueError(
                "The seisbench torch_layout has two encoder transformer layers, a detection "
                "decoder without LSTM and pick decoders with one. Received: "
                f"num_transformer_layers={num_transformer_layers}, "
                f"decoder_with_attn_lstm={decoder_with_attn_lstm}")
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
            return named(BatchNormalization(epsilon=batchnorm_epsilon, momentum=0.9,
                                            name=lname(prefix)), prefix)

        def attention(x, prefix, width):
            return named(AdditiveSelfAttention(transformer_d_model, attention_width=width,
                                               epsilon=attention_epsilon,
                                               window=local_attention_window,
                                               name=lname(prefix)), prefix)(x)

        def transformer_layer(x, prefix, width):
            x1 = attention(x, prefix + ".attn", width)
            x2 = layers.Add()([x1, x])
            x2 = named(layers.LayerNormalization(epsilon=layer_norm_epsilon,
                                                 name=lname(prefix + ".ln0")),
                       prefix + ".ln0")(x2)
            x3 = named(layers.Dense(feedforward_dim, activation="relu",
                                    name=lname(prefix + ".ff.lin0")), prefix + ".ff.lin0")(x2)
            x3 = layers.Dropout(drop_rate)(x3)
            x3 = named(layers.Dense(transformer_io_channels, name=lname(prefix + ".ff.lin1")),
                       prefix + ".ff.lin1")(x3)
            x4 = layers.Add()([x3, x2])
            return named(layers.LayerNormalization(epsilon=layer_norm_epsilon,
                                                   name=lname(prefix + ".ln1")),
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
        heads = ["detection", "p_pick", "s_pick"]
        heads += [f"pick_{d}" for d in range(len(heads), len(decoder_with_attn_lstm))]
        for d, (has_attn, head) in enumerate(zip(decoder_with_attn_lstm, heads)):
            p = f"decoders.{d}"
            x = features
            if has_attn:
                x = named(layers.LSTM(transformer_io_channels, return_sequences=True,
                                      name=lname(p + ".lstm")), p + ".lstm")(x)
                x = layers.Dropout(drop_rate)(x)
                if decoder_attention == "transformer":
                    x = transformer_layer(x, p + ".transformer", local_attention_width)
                else:
                    x = attention(x, p + ".attn", local_attention_width)
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
        self.batchnorm_epsilon = batchnorm_epsilon
        self.layer_norm_epsilon = layer_norm_epsilon
        self.attention_epsilon = attention_epsilon
        self.local_attention_window = local_attention_window
        self.decoder_attention = decoder_attention
        self.torch_layout = torch_layout
        names = named.names
        if torch_layout == "seisbench":
            names = {k: _seisbench_module(v) for k, v in names.items()}
        self._torch_names = names

    def layer_torch_mappings(self, layer, prefix):
        """Torch tensors of one layer; the additive attention's are plain parameters.

        SeisBench's layer normalisation stores ``gamma``/``beta`` as
        ``(channels, 1)`` parameters; they are flattened here.
        """
        if isinstance(layer, AdditiveSelfAttention):
            return [TorchMapping(getattr(layer, w), [f"{prefix}.{w}"])
                    for w in ("Wx", "Wt", "bh", "Wa", "ba")]
        if self.torch_layout == "seisbench" and isinstance(layer,
                                                           keras.layers.LayerNormalization):
            return [TorchMapping(layer.gamma, [f"{prefix}.gamma"], _flatten),
                    TorchMapping(layer.beta, [f"{prefix}.beta"], _flatten)]
        return super().layer_torch_mappings(layer, prefix)


def _flatten(array):
    """A ``(channels, 1)`` torch parameter as ``(channels,)``."""
    return array.reshape(-1)


# SeisT-layout module paths -> SeisBench's, as (pattern, replacement) pairs.
_SEISBENCH_MODULES = (
    (r"encoder\.convs\.(\d+)\.conv", r"encoder.convs.\1"),
    (r"encoder\.res_convs\.(\d+)\.bn0", r"res_cnn_stack.members.\1.norm1"),
    (r"encoder\.res_convs\.(\d+)\.conv0", r"res_cnn_stack.members.\1.conv1"),
    (r"encoder\.res_convs\.(\d+)\.bn1", r"res_cnn_stack.members.\1.norm2"),
    (r"encoder\.res_convs\.(\d+)\.conv1", r"res_cnn_stack.members.\1.conv2"),
    (r"encoder\.bilstms\.(\d+)\.bilstm", r"bi_lstm_stack.members.\1.lstm"),
    (r"encoder\.bilstms\.(\d+)\.conv", r"bi_lstm_stack.members.\1.conv"),
    (r"encoder\.bilstms\.(\d+)\.bn", r"bi_lstm_stack.members.\1.norm"),
    (r"encoder\.transformers\.0\.(.+)", r"transformer_d0.\1"),
    (r"encoder\.transformers\.1\.(.+)", r"transformer_d.\1"),
    (r"decoders\.0\.upsamplings\.(\d+)\.conv", r"decoder_d.convs.\1"),
    (r"decoders\.0\.conv_out", r"conv_d"),
    (r"decoders\.(\d+)\.lstm", lambda m: f"pick_lstms.{int(m[1]) - 1}"),
    (r"decoders\.(\d+)\.attn", lambda m: f"pick_attentions.{int(m[1]) - 1}"),
    (r"decoders\.(\d+)\.upsamplings\.(\d+)\.conv",
     lambda m: f"pick_decoders.{int(m[1]) - 1}.convs.{m[2]}"),
    (r"decoders\.(\d+)\.conv_out", lambda m: f"pick_convs.{int(m[1]) - 1}"),
)
# Inside a SeisBench transformer layer.
_SEISBENCH_TRANSFORMER = {"attn": "attention", "ln0": "norm1", "ff.lin0": "ff.lin1",
                          "ff.lin1": "ff.lin2", "ln1": "norm2"}


def _seisbench_module(name):
    """SeisBench's module path for the SeisT-layout module ``name``."""
    for pattern, replacement in _SEISBENCH_MODULES:
        match = re.fullmatch(pattern, name)
        if match:
            out = match.expand(replacement) if isinstance(replacement, str) else \
                replacement(match)
            head, _, tail = out.partition(".")
            if head in ("transformer_d0", "transformer_d"):
                out = f"{head}.{_SEISBENCH_TRANSFORMER[tail]}"
            return out
    raise ValueError(f"No SeisBench module for EQTransformer layer {name!r}.")


#: SeisBench's ``EQTransformer`` defaults: its class defaults and annotate arguments.
SEISBENCH_EQTRANSFORMER_CONVENTIONS = Conventions(
    sampling_rate=100.0, component_order="ZNE", in_samples=6000,
    normalization="seisbench_std_all", taper_samples=6, labels=("det", "P", "S"),
    thresholds={"det": 0.3, "P": 0.1, "S": 0.1}, pick_rule="regions",
    head="detection_picking", overlap=3000, stacking="max", blinding=(500, 500))


@register_model("seisbench_eqtransformer", quantity="picking",
                conventions=SEISBENCH_EQTRANSFORMER_CONVENTIONS)
def seisbench_eqtransformer(in_channels=3, in_samples=6000, classes=2, lstm_blocks=3,
                            drop_rate=0.1, name="seisbench_eqtransformer", **kwargs):
    """EQTransformer as SeisBench builds it (``seisbench.models.EQTransformer``), for its weights.

    The :class:`EQTransformer` network with SeisBench's seven residual blocks
    (kernels 3, 3, 3, 3, 2, 3, 2), batch normalisation epsilon 1e-3, layer
    normalisation epsilon 1e-14, attention epsilon 1e-5, centred local
    attention alone after each pick decoder's LSTM, SeisBench's tensor
    names and conventions (6000 samples at 100 Hz, ZNE, ``seisbench_std_all``
    normalisation and a 6-sample taper, labels det/P/S, thresholds 0.3 / 0.1
    / 0.1, pick rule ``regions``, annotate overlap 3000 with ``max`` stacking
    and 500 samples blinded at each window end). SeisBench's
    ``original_compatible`` variants (custom LSTM cells) are not built here.

    Parameter count: each torch ``nn.LSTM`` direction holds two bias vectors
    (``bias_ih``, ``bias_hh``, 4 * 16 each) where Keras holds one (their sum),
    so the Keras model has ``4 * 16`` fewer weights per LSTM direction
    (``2 * lstm_blocks + classes`` directions: 512 by default); Keras adds the batch normalisations' moving statistics
    (torch buffers) as non-trainable weights.

    Args:
        in_channels: input components.
        in_samples: window length.
        classes: pick outputs besides detection (SeisBench's ``classes``).
        lstm_blocks: bidirectional LSTM blocks in the encoder.
        drop_rate: dropout rate.
        name: model name.
        **kwargs: conventions (``labels``, ``normalization``, ...) and
            ``keras.Model`` arguments.

    Returns:
        An :class:`EQTransformer`.
    """
    kwargs.setdefault("conventions", SEISBENCH_EQTRANSFORMER_CONVENTIONS)
    return EQTransformer(
        in_channels=in_channels, in_samples=in_samples, resconv_kernels=(3, 3, 3, 3, 2, 3, 2),
        num_lstm_blocks=lstm_blocks, drop_rate=drop_rate,
        decoder_with_attn_lstm=[False] + [True] * int(classes), batchnorm_epsilon=1e-3,
        layer_norm_epsilon=1e-14, attention_epsilon=1e-5, local_attention_window="centered",
        decoder_attention="attention", torch_layout="seisbench", name=name, **kwargs)
