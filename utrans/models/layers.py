"""Shared Keras layers of the U-Trans family.

Building blocks reused by :class:`utrans.models.UTransBackbone` and by the
downstream models (ConvMixer, ViT, CCT, EQCCT):

* :class:`StochasticDepth`: seeded drop-path on a residual branch.
* :class:`CCTTokenizer`: the convolutional tokenizer of the Compact
  Convolutional Transformer (Hassani et al. 2021, "Escaping the Big Data
  Paradigm with Compact Transformers", arXiv:2104.05704).
* :class:`TransformerMLP` and :class:`TransformerBlock`: a pre-norm
  transformer encoder block (LayerNorm -> multi-head self-attention ->
  drop-path -> residual add -> LayerNorm -> MLP -> drop-path -> residual add).
* :class:`ResidualConvBlock`: the U-Trans residual convolution block
  (two same-width Conv1D+BatchNorm+activation with a skip connection, then a
  Conv1D+BatchNorm+activation to ``filters`` channels and dropout).
* :class:`PatchExtractor` and :class:`PatchEncoder`: non-overlapping 1-D
  patches and their linear projection plus learned position embedding, the
  Vision Transformer input stage (Dosovitskiy et al. 2021, "An Image is Worth
  16x16 Words", ICLR, arXiv:2010.11929) used by the ViT magnitude head and the
  EQCCT pickers.
* :func:`decoder_feature_stream`: three residual blocks on the latent tokens,
  flattened to one time-aligned feature channel (Saad et al. 2026).

Every layer is registered with ``keras.saving.register_keras_serializable``
(package ``utrans``) and returns its full constructor configuration from
``get_config``, so models built from them round-trip through ``.keras`` files.
"""

import keras
from keras import layers, ops

__all__ = [
    "CCTTokenizer",
    "PatchEncoder",
    "PatchExtractor",
    "ResidualConvBlock",
    "StochasticDepth",
    "TransformerBlock",
    "TransformerMLP",
    "decoder_feature_stream",
    "stochastic_depth_rates",
]


def offset_seed(seed, offset):
    """``seed + offset``, or ``None`` when ``seed`` is ``None`` (unseeded layers stay unseeded).

    Args:
        seed: a model's integer seed, or ``None``.
        offset: distinct offset of one sub-layer.

    Returns:
        The sub-layer's seed, or ``None``.
    """
    return None if seed is None else seed + offset


def stochastic_depth_rates(max_rate, num_layers):
    """Drop-path rates rising linearly from 0 to ``max_rate`` over ``num_layers`` blocks.

    Args:
        max_rate: rate of the last block.
        num_layers: number of transformer blocks.

    Returns:
        A list of ``num_layers`` Python floats (``[0.0]`` for one block).
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1. Received: num_layers={num_layers}")
    if num_layers == 1:
        return [0.0]
    step = float(max_rate) / (num_layers - 1)
    return [i * step for i in range(num_layers)]


@keras.saving.register_keras_serializable(package="utrans")
class StochasticDepth(layers.Layer):
    """Drop a residual branch per sample with probability ``rate`` (drop-path).

    In training, each sample's branch is zeroed with probability ``rate`` and
    the kept samples are scaled by ``1 / (1 - rate)``; at inference the input
    passes unchanged (Huang et al. 2016, "Deep Networks with Stochastic
    Depth", arXiv:1603.09382).

    Args:
        rate: drop probability in [0, 1).
        seed: optional integer seed of the layer's ``keras.random.SeedGenerator``.
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ``dtype``).

    Returns:
        Calling the layer returns a tensor of the input's shape.
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1). Received: rate={rate}")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        batch = ops.shape(inputs)[0]
        mask_shape = (batch,) + (1,) * (len(inputs.shape) - 1)
        noise = keras.random.uniform(
            mask_shape, dtype=inputs.dtype, seed=self.seed_generator
        )
        mask = ops.floor(keep + noise)
        return inputs / keep * mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="utrans")
class CCTTokenizer(layers.Layer):
    """Convolutional tokenizer of a Compact Convolutional Transformer (1-D).

    A stack of ``Conv1D`` layers (one per entry of ``filters``), each
    optionally followed by ``MaxPooling1D``; the output time steps are the
    tokens. U-Trans uses one 80-filter convolution (kernel 3, no bias, ReLU)
    and no pooling; the U-Trans polarity head uses two 200-filter convolutions
    (kernel 4) each followed by max pooling (size 3, stride 2).
    Reference: Hassani et al. 2021, arXiv:2104.05704.

    Args:
        filters: sequence of output channels, one per convolution.
        kernel_size: convolution kernel size.
        strides: convolution stride.
        activation: convolution activation.
        use_bias: whether the convolutions have a bias.
        pool_size: max-pooling window after each convolution (``None``: no pooling).
        pool_strides: max-pooling stride (default ``pool_size``).
        pool_padding: max-pooling padding, ``"same"`` or ``"valid"``.
        kernel_initializer: convolution kernel initializer.
        **kwargs: ``keras.layers.Layer`` arguments.

    Returns:
        Calling the layer on (B, T, C) returns tokens (B, T', filters[-1]).
    """

    def __init__(
        self,
        filters=(80,),
        kernel_size=3,
        strides=1,
        activation="relu",
        use_bias=False,
        pool_size=None,
        pool_strides=None,
        pool_padding="same",
        kernel_initializer="he_normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(filters, int):
            filters = (filters,)
        self.filters = [int(f) for f in filters]
        if not self.filters:
            raise ValueError(f"filters must name at least one convolution. Received: filters={filters}")
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.activation = activation
        self.use_bias = bool(use_bias)
        self.pool_size = None if pool_size is None else int(pool_size)
        self.pool_strides = None if pool_strides is None else int(pool_strides)
        self.pool_padding = pool_padding
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        init_config = keras.initializers.serialize(self.kernel_initializer)
        self.convs = []
        self.pools = []
        for i, f in enumerate(self.filters):
            self.convs.append(
                layers.Conv1D(
                    f,
                    self.kernel_size,
                    strides=self.strides,
                    padding="same",
                    activation=activation,
                    use_bias=self.use_bias,
                    kernel_initializer=keras.initializers.deserialize(init_config),
                    name=f"conv_{i}",
                )
            )
            if self.pool_size is not None:
                self.pools.append(
                    layers.MaxPooling1D(
                        self.pool_size,
                        strides=self.pool_strides,
                        padding=self.pool_padding,
                        name=f"pool_{i}",
                    )
                )

    def build(self, input_shape):
        shape = tuple(input_shape)
        for i, conv in enumerate(self.convs):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            if self.pools:
                shape = self.pools[i].compute_output_shape(shape)

    def call(self, inputs):
        x = inputs
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if self.pools:
                x = self.pools[i](x)
        return x

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for i, conv in enumerate(self.convs):
            shape = conv.compute_output_shape(shape)
            if self.pools:
                shape = self.pools[i].compute_output_shape(shape)
        return shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": list(self.filters),
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "activation": self.activation,
                "use_bias": self.use_bias,
                "pool_size": self.pool_size,
                "pool_strides": self.pool_strides,
                "pool_padding": self.pool_padding,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="utrans")
class TransformerMLP(layers.Layer):
    """Feed-forward part of a transformer block: ``Dense(units) -> Dropout`` per entry.

    Args:
        hidden_units: sequence of Dense widths; the last one is the output width.
        dropout: dropout rate after every Dense layer.
        activation: Dense activation (exact GELU by default).
        seed: optional integer seed of the dropout layers.
        **kwargs: ``keras.layers.Layer`` arguments.

    Returns:
        Calling the layer on (..., C) returns (..., hidden_units[-1]).
    """

    def __init__(self, hidden_units=(80, 80), dropout=0.1, activation="gelu", seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(hidden_units, int):
            hidden_units = (hidden_units,)
        self.hidden_units = [int(u) for u in hidden_units]
        if not self.hidden_units:
            raise ValueError(f"hidden_units must not be empty. Received: hidden_units={hidden_units}")
        self.dropout = float(dropout)
        self.activation = activation
        self.seed = seed
        self.dense_layers = []
        self.dropout_layers = []
        for i, units in enumerate(self.hidden_units):
            self.dense_layers.append(layers.Dense(units, activation=activation, name=f"dense_{i}"))
            self.dropout_layers.append(
                layers.Dropout(
                    self.dropout, seed=offset_seed(seed, i), name=f"dropout_{i}"
                )
            )

    def build(self, input_shape):
        shape = tuple(input_shape)
        for dense in self.dense_layers:
            dense.build(shape)
            shape = dense.compute_output_shape(shape)

    def call(self, inputs, training=None):
        x = inputs
        for dense, drop in zip(self.dense_layers, self.dropout_layers):
            x = drop(dense(x), training=training)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.hidden_units[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_units": list(self.hidden_units),
                "dropout": self.dropout,
                "activation": self.activation,
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="utrans")
class TransformerBlock(layers.Layer):
    """Pre-norm transformer encoder block with drop-path.

    ``x2 = x + DropPath(MHA(LN(x), LN(x)))``; ``out = x2 + DropPath(MLP(LN(x2)))``.
    The output width of the MLP must equal the input width (residual add).
    Weights are created in the order LayerNorm, attention (query, key, value,
    output), LayerNorm, MLP Dense layers, the order of the U-Trans reference
    graph (Saad et al. 2026; CCT: Hassani et al. 2021, arXiv:2104.05704).

    Args:
        num_heads: attention heads.
        key_dim: size of each attention head (U-Trans: the projection width, 80).
        mlp_units: MLP widths; the last must equal the token width.
        dropout: dropout rate of the MLP.
        attention_dropout: dropout rate on the attention scores.
        drop_path: stochastic-depth rate of both residual branches.
        epsilon: LayerNormalization epsilon (U-Trans/CCT 1e-5, ViT/EQCCT 1e-6).
        mlp_activation: MLP activation.
        seed: optional integer seed of the dropout and drop-path randomness.
        **kwargs: ``keras.layers.Layer`` arguments.

    Returns:
        Calling the layer on tokens (B, T, C) returns (B, T, C).
    """

    def __init__(
        self,
        num_heads=4,
        key_dim=80,
        mlp_units=(80, 80),
        dropout=0.1,
        attention_dropout=0.1,
        drop_path=0.0,
        epsilon=1e-5,
        mlp_activation="gelu",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(mlp_units, int):
            mlp_units = (mlp_units,)
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.mlp_units = [int(u) for u in mlp_units]
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.drop_path = float(drop_path)
        self.epsilon = float(epsilon)
        self.mlp_activation = mlp_activation
        self.seed = seed

        self.norm1 = layers.LayerNormalization(epsilon=self.epsilon, name="norm1")
        self.attention = layers.MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=self.key_dim,
            dropout=self.attention_dropout,
            seed=offset_seed(seed, 0),
            name="attention",
        )
        self.drop_path1 = StochasticDepth(
            self.drop_path, seed=offset_seed(seed, 1), name="drop_path1"
        )
        self.norm2 = layers.LayerNormalization(epsilon=self.epsilon, name="norm2")
        self.mlp = TransformerMLP(
            self.mlp_units,
            dropout=self.dropout,
            activation=mlp_activation,
            seed=offset_seed(seed, 2),
            name="mlp",
        )
        self.drop_path2 = StochasticDepth(
            self.drop_path, seed=offset_seed(seed, 10), name="drop_path2"
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        if shape[-1] is not None and self.mlp_units[-1] != shape[-1]:
            raise ValueError(
                "The last MLP width must equal the token width for the residual add. "
                f"Received: mlp_units={self.mlp_units}, token width={shape[-1]}"
            )
        self.norm1.build(shape)
        self.attention.build(shape, shape)
        self.norm2.build(shape)
        self.mlp.build(shape)

    def call(self, inputs, training=None):
        x1 = self.norm1(inputs)
        attended = self.attention(x1, x1, training=training)
        x2 = inputs + self.drop_path1(attended, training=training)
        x3 = self.mlp(self.norm2(x2), training=training)
        return x2 + self.drop_path2(x3, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "mlp_units": list(self.mlp_units),
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "drop_path": self.drop_path,
                "epsilon": self.epsilon,
                "mlp_activation": self.mlp_activation,
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="utrans")
class ResidualConvBlock(layers.Layer):
    """U-Trans residual convolution block.

    ``h = act(BN(Conv1D_C(x)))``; ``h = act(BN(Conv1D_C(h))) + x``;
    ``out = Dropout(act(BN(Conv1D_filters(h))))`` where ``C`` is the input
    width. The foundation's decoder feature stream and the EQCCT pickers use
    GELU activations and ordinary dropout; the location, magnitude and
    polarity models use linear activations and never apply the dropout
    (``train_dropout=False``). Reference: Saad et al. 2026, U-Trans,
    Scientific Reports, doi:10.1038/s41598-026-41454-x.

    Args:
        filters: output channels of the last convolution.
        kernel_size: kernel size of all three convolutions.
        dropout: rate of the final dropout.
        activation: ``"gelu"`` (exact GELU) or ``"linear"``, or any Keras activation name.
        train_dropout: if False the dropout is inactive in training too.
        kernel_initializer: convolution kernel initializer.
        seed: optional integer seed of the dropout.
        **kwargs: ``keras.layers.Layer`` arguments.

    Returns:
        Calling the layer on (B, T, C) returns (B, T, filters).
    """

    def __init__(
        self,
        filters=80,
        kernel_size=13,
        dropout=0.1,
        activation="gelu",
        train_dropout=True,
        kernel_initializer="he_normal",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.dropout = float(dropout)
        self.activation = activation
        self.train_dropout = bool(train_dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed = seed
        self.conv_layers = []
        self.norm_layers = []
        self.act_layers = []
        self.final_dropout = layers.Dropout(self.dropout, seed=seed, name="dropout")

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                f"ResidualConvBlock needs a known channel dimension. Received: input_shape={input_shape}"
            )
        widths = (int(channels), int(channels), self.filters)
        init_config = keras.initializers.serialize(self.kernel_initializer)
        shape = tuple(input_shape)
        for i, width in enumerate(widths):
            conv = layers.Conv1D(
                width,
                self.kernel_size,
                padding="same",
                kernel_initializer=keras.initializers.deserialize(init_config),
                name=f"conv_{i}",
            )
            norm = layers.BatchNormalization(name=f"norm_{i}")
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            norm.build(shape)
            self.conv_layers.append(conv)
            self.norm_layers.append(norm)
            self.act_layers.append(layers.Activation(self.activation, name=f"act_{i}"))

    def call(self, inputs, training=None):
        h = self.act_layers[0](self.norm_layers[0](self.conv_layers[0](inputs), training=training))
        h = self.act_layers[1](self.norm_layers[1](self.conv_layers[1](h), training=training))
        h = h + inputs
        h = self.act_layers[2](self.norm_layers[2](self.conv_layers[2](h), training=training))
        return self.final_dropout(h, training=bool(training) and self.train_dropout)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "dropout": self.dropout,
                "activation": self.activation,
                "train_dropout": self.train_dropout,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "seed": self.seed,
            }
        )
        return config


def decoder_feature_stream(
    latent,
    activation="gelu",
    filters=80,
    kernel_size=13,
    dropout=0.1,
    name="decoder_features",
    train_dropout=True,
    num_blocks=3,
):
    """U-Trans decoder feature stream: residual blocks on the latent, flattened to one channel.

    Three :class:`ResidualConvBlock` (``filters``, ``kernel_size``, ``dropout``)
    on the latent tokens (B, 75, 80), flattened and reshaped to a
    time-aligned (B, 75 * filters, 1) = (B, 6000, 1) feature that downstream
    models concatenate with the waveform. Reference: Saad et al. 2026.

    Args:
        latent: symbolic latent tensor (B, T, C), e.g. ``backbone.get_layer("latent").output``.
        activation: block activation, ``"gelu"`` (foundation helper, EQCCT
            pickers) or ``"linear"`` (location, magnitude, polarity models).
        filters: output channels of every block.
        kernel_size: kernel size of every block.
        dropout: dropout rate of every block.
        name: name of the final Reshape layer; blocks are ``{name}_block{i}``
            and the flatten layer ``{name}_flatten``.
        train_dropout: False reproduces the blocks whose dropout is never
            applied (location, magnitude, polarity models).
        num_blocks: number of residual blocks.

    Returns:
        The symbolic (B, T * filters, 1) feature tensor (output of layer ``name``).
    """
    x = latent
    for i in range(num_blocks):
        x = ResidualConvBlock(
            filters=filters,
            kernel_size=kernel_size,
            dropout=dropout,
            activation=activation,
            train_dropout=train_dropout,
            name=f"{name}_block{i}",
        )(x)
    steps = x.shape[1]
    if steps is None:
        raise ValueError(
            f"decoder_feature_stream needs a known number of latent tokens. Received: shape={latent.shape}"
        )
    x = layers.Flatten(name=f"{name}_flatten")(x)
    return layers.Reshape((steps * filters, 1), name=name)(x)


@keras.saving.register_keras_serializable(package="utrans")
class PatchExtractor(layers.Layer):
    """Cut a sequence into non-overlapping patches of ``patch_size`` time steps.

    (B, T, C) becomes (B, T / patch_size, patch_size * C); each patch is
    flattened time-major (step 0 channels, step 1 channels, ...), the order of
    ``tf.image.extract_patches`` on a (B, T, 1, C) image with a
    ``(patch_size, 1)`` window. Vision Transformer patching (Dosovitskiy et
    al. 2021, arXiv:2010.11929) in one dimension.

    Args:
        patch_size: time steps per patch; must divide the sequence length.
        **kwargs: ``keras.layers.Layer`` arguments.

    Returns:
        Calling the layer on (B, T, C) returns (B, T // patch_size, patch_size * C).
    """

    def __init__(self, patch_size, **kwargs):
        super().__init__(**kwargs)
        patch_size = int(patch_size)
        if patch_size < 1:
            raise ValueError(f"patch_size must be >= 1. Received: patch_size={patch_size}")
        self.patch_size = patch_size

    def _check(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError(
                "PatchExtractor needs (batch, steps, channels) inputs with known steps and "
                f"channels. Received: input_shape={tuple(input_shape)}"
            )
        if input_shape[1] % self.patch_size:
            raise ValueError(
                f"The sequence length must be a multiple of patch_size={self.patch_size}. "
                f"Received: input_shape={tuple(input_shape)}"
            )

    def build(self, input_shape):
        self._check(input_shape)

    def call(self, inputs):
        steps, channels = inputs.shape[1], inputs.shape[2]
        return ops.reshape(
            inputs, (-1, steps // self.patch_size, self.patch_size * channels)
        )

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        return (
            input_shape[0],
            input_shape[1] // self.patch_size,
            self.patch_size * input_shape[2],
        )

    def get_config(self):
        config = super().get_config()
        config.update({"patch_size": self.patch_size})
        return config


@keras.saving.register_keras_serializable(package="utrans")
class PatchEncoder(layers.Layer):
    """Project patches linearly and add a learned position embedding.

    ``out[:, i] = Dense(projection_dim)(patches[:, i]) + Embedding(i)`` for
    ``i < num_patches`` (Vision Transformer input stage, Dosovitskiy et al.
    2021, arXiv:2010.11929). Weights are created in the order projection
    kernel, projection bias, position table.

    Args:
        num_patches: number of patches (rows of the position table); the
            input must have exactly this many.
        projection_dim: output width of each encoded patch.
        **kwargs: ``keras.layers.Layer`` arguments.

    Returns:
        Calling the layer on (B, num_patches, D) returns (B, num_patches, projection_dim).
    """

    def __init__(self, num_patches, projection_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_patches = int(num_patches)
        self.projection_dim = int(projection_dim)
        if self.num_patches < 1 or self.projection_dim < 1:
            raise ValueError(
                "num_patches and projection_dim must be >= 1. "
                f"Received: num_patches={num_patches}, projection_dim={projection_dim}"
            )
        self.projection = layers.Dense(self.projection_dim, name="projection")
        self.position_embedding = layers.Embedding(
            self.num_patches, self.projection_dim, name="position_embedding"
        )

    def build(self, input_shape):
        if input_shape[1] is not None and input_shape[1] != self.num_patches:
            raise ValueError(
                f"PatchEncoder expects {self.num_patches} patches. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.projection.build(input_shape)
        self.position_embedding.build((self.num_patches,))

    def call(self, inputs):
        positions = ops.arange(self.num_patches, dtype="int32")
        return self.projection(inputs) + self.position_embedding(positions)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.projection_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_patches": self.num_patches, "projection_dim": self.projection_dim}
        )
        return config
