"""Vision Transformer magnitude regressor on U-Trans features.

Saad et al., "U-Trans: a foundation model for seismic waveform representation",
Scientific Reports (2026), doi:10.1038/s41598-026-41454-x; the Vision
Transformer of Dosovitskiy et al., "An Image is Worth 16x16 Words:
Transformers for Image Recognition at Scale", ICLR (2021), arXiv:2010.11929.
"""

import keras
from keras import layers

from utrans.models.layers import (
    PatchEncoder,
    PatchExtractor,
    TransformerBlock,
    decoder_feature_stream,
    offset_seed,
)
from utrans.models.downstream import DownstreamModel, register_downstream

__all__ = ["UTransViTMagnitude"]


@keras.saving.register_keras_serializable(package="utrans")
class UTransViTMagnitude(DownstreamModel):
    """Earthquake magnitude from U-Trans features with a Vision Transformer head.

    The waveform (B, 6000, 3) goes through the backbone up to its ``latent``
    tokens (B, 75, 80); three residual conv blocks with linear activations
    whose dropout is never applied (as in the U-Trans magnitude example) give
    the decoder feature stream (B, 6000, 1), concatenated before the waveform
    into (B, 6000, 4). Five linear ``Conv1D`` + ``MaxPooling1D`` stages reduce
    it to (B, 75, 32) (the reference's dropout after each convolution is
    called with ``training=False`` and so never acts; it is left out), cut into
    15 patches of 5 steps, projected to 100 with a learned position embedding
    and passed through 4 pre-norm transformer blocks (4 heads, key size 100,
    GELU MLP [200, 100], no drop-path, LayerNorm epsilon 1e-6). A final
    LayerNorm, Flatten, Dropout(0.5), GELU MLP [1000, 500] with Dropout(0.5)
    and a linear Dense(1) give the magnitude (layer ``"magnitude"``).

    Only the backbone's input-to-latent path is part of this model (see
    :class:`utrans.models.downstream.DownstreamModel`). With the default arguments the
    model has 4,169,249 parameters (1,440 BatchNorm statistics), as the
    reference notebook.

    References: Saad et al. (2026), Scientific Reports,
    doi:10.1038/s41598-026-41454-x; Dosovitskiy et al. (2021), ICLR,
    arXiv:2010.11929.

    Args:
        backbone: a :class:`utrans.models.UTransBackbone` (load pretrained
            weights into it first).
        freeze_backbone: if True, the backbone's weights are not trained.
        conv_filters: widths of the downsampling convolutions, one per stage.
        conv_kernel_size: kernel size of the downsampling convolutions.
        pool_sizes: max-pooling factor after each convolution (same length
            as ``conv_filters``).
        patch_size: time steps per patch.
        projection_dim: width of the encoded patches (also the attention key size).
        num_heads: attention heads.
        num_layers: transformer blocks.
        mlp_units: transformer MLP widths; the last must equal ``projection_dim``.
        dropout: dropout rate of the transformer MLPs.
        attention_dropout: dropout rate on the attention scores.
        layer_norm_epsilon: LayerNormalization epsilon.
        head_units: widths of the GELU MLP after the transformer.
        head_dropout: dropout rate before and inside that MLP.
        decoder_kernel_size: kernel size of the decoder feature stream.
        decoder_dropout: dropout rate of the decoder feature stream (never applied).
        seed: optional integer seed of the dropout randomness.
        **kwargs: ``keras.Model`` arguments (``name``, ``trainable``, ``dtype``).

    Returns:
        A ``keras.Model`` mapping waveforms (B, L, C) to magnitudes (B, 1).
    """

    #: The backbone's input conventions; output (magnitude).
    default_conventions = DownstreamModel.default_conventions.replace(labels=("magnitude",))

    def __init__(
        self,
        backbone,
        freeze_backbone=False,
        conv_filters=(64, 64, 32, 32, 32),
        conv_kernel_size=3,
        pool_sizes=(2, 2, 2, 2, 5),
        patch_size=5,
        projection_dim=100,
        num_heads=4,
        num_layers=4,
        mlp_units=(200, 100),
        dropout=0.1,
        attention_dropout=0.1,
        layer_norm_epsilon=1e-6,
        head_units=(1000, 500),
        head_dropout=0.5,
        decoder_kernel_size=13,
        decoder_dropout=0.1,
        seed=None,
        **kwargs,
    ):
        conv_filters = [int(f) for f in conv_filters]
        pool_sizes = [int(p) for p in pool_sizes]
        if len(conv_filters) != len(pool_sizes):
            raise ValueError(
                "conv_filters and pool_sizes need one entry per stage. "
                f"Received: conv_filters={conv_filters}, pool_sizes={pool_sizes}"
            )
        mlp_units = [int(u) for u in mlp_units]
        head_units = [int(u) for u in head_units]

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

        for i, (width, pool) in enumerate(zip(conv_filters, pool_sizes)):
            x = layers.Conv1D(width, conv_kernel_size, padding="same", name=f"stage{i}_conv")(x)
            x = layers.MaxPooling1D(pool, padding="same", name=f"stage{i}_pool")(x)

        patches = PatchExtractor(patch_size, name="patches")(x)
        x = PatchEncoder(patches.shape[1], projection_dim, name="patch_encoder")(patches)
        for i in range(num_layers):
            x = TransformerBlock(
                num_heads=num_heads,
                key_dim=projection_dim,
                mlp_units=mlp_units,
                dropout=dropout,
                attention_dropout=attention_dropout,
                drop_path=0.0,
                epsilon=layer_norm_epsilon,
                seed=offset_seed(seed, 100 * i),
                name=f"vit_block{i}",
            )(x)
        x = layers.LayerNormalization(epsilon=layer_norm_epsilon, name="representation")(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dropout(head_dropout, seed=offset_seed(seed, 1000), name="head_dropout")(x)
        for i, units in enumerate(head_units):
            x = layers.Dense(units, activation="gelu", name=f"head_dense{i}")(x)
            x = layers.Dropout(
                head_dropout, seed=offset_seed(seed, 1001 + i), name=f"head_dropout{i}"
            )(x)
        outputs = layers.Dense(1, activation="linear", name="magnitude", dtype="float32")(x)

        kwargs.setdefault("name", "utrans_vit_magnitude")
        super().__init__(backbone, freeze_backbone, inputs=waveform, outputs=outputs, **kwargs)
        self.conv_filters = conv_filters
        self.conv_kernel_size = int(conv_kernel_size)
        self.pool_sizes = pool_sizes
        self.patch_size = int(patch_size)
        self.projection_dim = int(projection_dim)
        self.num_heads = int(num_heads)
        self.num_layers = int(num_layers)
        self.mlp_units = mlp_units
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.head_units = head_units
        self.head_dropout = float(head_dropout)
        self.decoder_kernel_size = int(decoder_kernel_size)
        self.decoder_dropout = float(decoder_dropout)
        self.seed = seed


utrans_vit_magnitude = register_downstream("utrans_vit_magnitude", UTransViTMagnitude, "magnitude")
