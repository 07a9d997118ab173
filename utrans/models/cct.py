"""Compact Convolutional Transformer first-motion polarity classifier on U-Trans features.

Saad et al., "U-Trans: a foundation model for seismic waveform representation",
Scientific Reports (2026), doi:10.1038/s41598-026-41454-x; the Compact
Convolutional Transformer of Hassani et al., "Escaping the Big Data Paradigm
with Compact Transformers", arXiv:2104.05704 (2021).
"""

import keras
from keras import layers

from utrans.models.layers import (
    CCTTokenizer,
    TransformerBlock,
    decoder_feature_stream,
    offset_seed,
    stochastic_depth_rates,
)
from utrans.models.downstream import DownstreamModel, register_downstream

__all__ = ["UTransCCTPolarity"]


@keras.saving.register_keras_serializable(package="utrans")
class UTransCCTPolarity(DownstreamModel):
    """P-wave first-motion polarity from U-Trans features with a CCT head.

    The waveform (B, 6000, 3) goes through the backbone up to its ``latent``
    tokens (B, 75, 80); three residual conv blocks with linear activations
    whose dropout is never applied (as in the U-Trans polarity example) give
    the decoder feature stream (B, 6000, 1), concatenated before the waveform
    into (B, 6000, 4). A convolutional tokenizer (two bias-free ReLU
    ``Conv1D`` of 200 filters, kernel 4, each followed by max pooling of size
    3 and stride 2) makes 1500 tokens of width 200, which pass through 4
    pre-norm transformer blocks (4 heads, key size 200, GELU MLP [200, 200],
    dropout 0.2, drop-path rising linearly to 0.1, LayerNorm epsilon 1e-5),
    a LayerNorm, Flatten, Dropout(0.2) and a sigmoid Dense(1) (layer
    ``"polarity"``): the probability of an upward first motion as labelled
    by :mod:`utrans.labels`.

    Only the backbone's input-to-latent path is part of this model (see
    :class:`utrans.models.downstream.DownstreamModel`). With the default arguments the
    model has 4,674,681 parameters (1,440 BatchNorm statistics), as the
    reference notebook.

    References: Saad et al. (2026), Scientific Reports,
    doi:10.1038/s41598-026-41454-x; Hassani et al. (2021), arXiv:2104.05704.

    Args:
        backbone: a :class:`utrans.models.UTransBackbone` (load pretrained
            weights into it first).
        freeze_backbone: if True, the backbone's weights are not trained.
        tokenizer_filters: widths of the tokenizer convolutions; the last is
            the token width (and the attention key size).
        tokenizer_kernel_size: tokenizer convolution kernel size.
        pool_size: tokenizer max-pooling window.
        pool_strides: tokenizer max-pooling stride.
        num_heads: attention heads.
        num_layers: transformer blocks.
        mlp_units: transformer MLP widths (default: two of the token width);
            the last must equal the token width.
        dropout: dropout rate of the transformer MLPs.
        attention_dropout: dropout rate on the attention scores.
        stochastic_depth_rate: drop-path rate of the last block (rising
            linearly from 0).
        layer_norm_epsilon: LayerNormalization epsilon.
        head_dropout: dropout rate before the output layer.
        decoder_kernel_size: kernel size of the decoder feature stream.
        decoder_dropout: dropout rate of the decoder feature stream (never applied).
        seed: optional integer seed of the dropout and drop-path randomness.
        **kwargs: ``keras.Model`` arguments (``name``, ``trainable``, ``dtype``).

    Returns:
        A ``keras.Model`` mapping waveforms (B, L, C) to probabilities (B, 1).
    """

    #: The backbone's input conventions; output (probability of an upward first motion).
    default_conventions = DownstreamModel.default_conventions.replace(labels=("U",))

    def __init__(
        self,
        backbone,
        freeze_backbone=False,
        tokenizer_filters=(200, 200),
        tokenizer_kernel_size=4,
        pool_size=3,
        pool_strides=2,
        num_heads=4,
        num_layers=4,
        mlp_units=None,
        dropout=0.2,
        attention_dropout=0.2,
        stochastic_depth_rate=0.1,
        layer_norm_epsilon=1e-5,
        head_dropout=0.2,
        decoder_kernel_size=13,
        decoder_dropout=0.1,
        seed=None,
        **kwargs,
    ):
        tokenizer_filters = [int(f) for f in tokenizer_filters]
        if not tokenizer_filters:
            raise ValueError(
                "tokenizer_filters must not be empty. "
                f"Received: tokenizer_filters={tokenizer_filters}"
            )
        width = tokenizer_filters[-1]
        mlp_units = [width, width] if mlp_units is None else [int(u) for u in mlp_units]

        waveform = backbone.input
        latent = backbone.get_layer("latent").output
        features = decoder_feature_stream(
            latent,
            activation="linear",
            kernel_size=decoder_kernel_size,
            dropout=decoder_dropout,
            train_dropout=False,
            name="decoder_features",
        )
        if features.shape[1] != waveform.shape[1]:
            raise ValueError(
                "The decoder feature stream (80 channels per latent token) must have the "
                f"waveform's length. Received: features shape={features.shape}, "
                f"waveform shape={waveform.shape}"
            )
        x = layers.Concatenate(axis=-1, name="features_and_waveform")([features, waveform])

        x = CCTTokenizer(
            filters=tokenizer_filters,
            kernel_size=tokenizer_kernel_size,
            strides=1,
            activation="relu",
            use_bias=False,
            pool_size=pool_size,
            pool_strides=pool_strides,
            pool_padding="same",
            name="polarity_tokenizer",
        )(x)
        for i, rate in enumerate(stochastic_depth_rates(stochastic_depth_rate, num_layers)):
            x = TransformerBlock(
                num_heads=num_heads,
                key_dim=width,
                mlp_units=mlp_units,
                dropout=dropout,
                attention_dropout=attention_dropout,
                drop_path=rate,
                epsilon=layer_norm_epsilon,
                seed=offset_seed(seed, 100 * i),
                name=f"polarity_block{i}",
            )(x)
        x = layers.LayerNormalization(epsilon=layer_norm_epsilon, name="representation")(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dropout(head_dropout, seed=offset_seed(seed, 1000), name="head_dropout")(x)
        outputs = layers.Dense(1, activation="sigmoid", name="polarity", dtype="float32")(x)

        kwargs.setdefault("name", "utrans_cct_polarity")
        super().__init__(backbone, freeze_backbone, inputs=waveform, outputs=outputs, **kwargs)
        self.tokenizer_filters = tokenizer_filters
        self.tokenizer_kernel_size = int(tokenizer_kernel_size)
        self.pool_size = int(pool_size)
        self.pool_strides = int(pool_strides)
        self.num_heads = int(num_heads)
        self.num_layers = int(num_layers)
        self.mlp_units = mlp_units
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.stochastic_depth_rate = float(stochastic_depth_rate)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.head_dropout = float(head_dropout)
        self.decoder_kernel_size = int(decoder_kernel_size)
        self.decoder_dropout = float(decoder_dropout)
        self.seed = seed


utrans_cct_polarity = register_downstream("utrans_cct_polarity", UTransCCTPolarity, "polarity")
