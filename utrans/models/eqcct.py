"""EQCCT P-wave and S-wave pickers on U-Trans features.

Saad et al., "U-Trans: a foundation model for seismic waveform representation",
Scientific Reports (2026), doi:10.1038/s41598-026-41454-x; EQCCT of Saad et
al., "EQCCT: A Production-Ready Earthquake Detection and Phase-Picking Method
Using the Compact Convolutional Transformer", IEEE Transactions on Geoscience
and Remote Sensing 61 (2023), doi:10.1109/TGRS.2023.3319440; Vision
Transformer patching of Dosovitskiy et al., ICLR (2021), arXiv:2010.11929.
"""

import keras
from keras import layers

from utrans.models.layers import (
    PatchEncoder,
    PatchExtractor,
    ResidualConvBlock,
    StochasticDepth,
    TransformerBlock,
    TransformerMLP,
    decoder_feature_stream,
    offset_seed,
    stochastic_depth_rates,
)
from utrans.models.downstream import DownstreamModel, register_downstream

__all__ = ["UTransEQCCTPicker"]

# Per-phase defaults of the two published pickers: the S picker wraps its
# attention in residual conv blocks and uses a larger LayerNorm epsilon.
_PHASE_DEFAULTS = {
    "P": {"layer_norm_epsilon": 1e-6, "attention_conv_blocks": False},
    "S": {"layer_norm_epsilon": 1e-5, "attention_conv_blocks": True},
}


def _conv_transformer_block(
    x, *, num_heads, key_dim, mlp_units, dropout, attention_dropout, drop_path,
    epsilon, conv_kernel_size, seed, name,
):
    """EQCCT S-picker transformer block: residual conv blocks around the attention.

    ``t = Conv(x)``; ``x2 = t + DropPath(Conv(MHA(LN(t))))``;
    ``out = x2 + DropPath(MLP(LN(x2)))`` where ``Conv`` is a GELU
    :class:`ResidualConvBlock` keeping the token width.
    """
    width = x.shape[-1]

    def conv_block(t, suffix, offset):
        return ResidualConvBlock(
            filters=width,
            kernel_size=conv_kernel_size,
            dropout=dropout,
            activation="gelu",
            train_dropout=True,
            seed=offset_seed(seed, offset),
            name=f"{name}_{suffix}",
        )(t)

    tokens = conv_block(x, "conv_in", 0)
    h = layers.LayerNormalization(epsilon=epsilon, name=f"{name}_norm1")(tokens)
    h = layers.MultiHeadAttention(
        num_heads=num_heads,
        key_dim=key_dim,
        dropout=attention_dropout,
        seed=offset_seed(seed, 1),
        name=f"{name}_attention",
    )(h, h)
    h = conv_block(h, "conv_attention", 2)
    h = StochasticDepth(drop_path, seed=offset_seed(seed, 3), name=f"{name}_drop_path1")(h)
    x2 = layers.Add(name=f"{name}_add1")([h, tokens])
    h = layers.LayerNormalization(epsilon=epsilon, name=f"{name}_norm2")(x2)
    h = TransformerMLP(
        mlp_units,
        dropout=dropout,
        activation="gelu",
        seed=offset_seed(seed, 4),
        name=f"{name}_mlp",
    )(h)
    h = StochasticDepth(drop_path, seed=offset_seed(seed, 10), name=f"{name}_drop_path2")(h)
    return layers.Add(name=f"{name}_add2")([h, x2])


@keras.saving.register_keras_serializable(package="utrans")
class UTransEQCCTPicker(DownstreamModel):
    """P- or S-wave arrival probability per sample from U-Trans features with an EQCCT head.

    The waveform (B, 6000, 3) goes through the backbone up to its ``latent``
    tokens (B, 75, 80); three residual conv blocks with GELU activations and
    ordinary dropout (as in the U-Trans EQCCT examples) give the decoder
    feature stream (B, 6000, 1), concatenated before the waveform into
    (B, 6000, 4). Three GELU residual conv blocks (10, 20, 40 channels, kernel
    11) follow; the result is cut into 150 patches of 40 steps, projected to 40
    with a learned position embedding and passed through 4 transformer blocks
    (4 heads, key size 40, GELU MLP [40, 40], dropout 0.1, drop-path rising
    linearly to 0.1) and a LayerNorm. The (150, 40) representation is
    reshaped back to (6000, 1) and a sigmoid ``Conv1D(1, 3)`` gives the
    per-sample probability (layer ``"p_pick"`` or ``"s_pick"``).

    ``phase="P"`` (``utrans_eqcct_p``) uses pre-norm blocks with LayerNorm
    epsilon 1e-6; ``phase="S"`` (``utrans_eqcct_s``) additionally applies a
    residual conv block (width 40, kernel 11) to the tokens before the first
    LayerNorm and to the attention output, with epsilon 1e-5. Only the
    backbone's input-to-latent path is part of this model (see
    :class:`utrans.models.downstream.DownstreamModel`). With the default arguments the
    P picker has 1,527,726 parameters (1,716 BatchNorm statistics) and the S
    picker 1,954,926 (3,636), as the reference notebooks.

    References: Saad et al. (2026), Scientific Reports,
    doi:10.1038/s41598-026-41454-x; Saad et al. (2023), IEEE TGRS 61,
    doi:10.1109/TGRS.2023.3319440.

    Args:
        backbone: a :class:`utrans.models.UTransBackbone` (load pretrained
            weights into it first).
        freeze_backbone: if True, the backbone's weights are not trained.
        phase: ``"P"`` or ``"S"``; names the output layer and sets the
            defaults of ``layer_norm_epsilon`` and ``attention_conv_blocks``.
        conv_filters: widths of the residual conv blocks before patching.
        conv_kernel_size: kernel size of those blocks (and of the S picker's
            blocks inside the transformer).
        patch_size: time steps per patch.
        projection_dim: width of the encoded patches (also the attention key
            size); ``num_patches * projection_dim`` must equal the input length.
        num_heads: attention heads.
        num_layers: transformer blocks.
        mlp_units: transformer MLP widths (default: two of ``projection_dim``).
        dropout: dropout rate of the conv blocks and transformer MLPs.
        attention_dropout: dropout rate on the attention scores.
        stochastic_depth_rate: drop-path rate of the last block (rising
            linearly from 0).
        layer_norm_epsilon: LayerNormalization epsilon (default by phase).
        attention_conv_blocks: wrap the attention in residual conv blocks
            (default by phase: True for S).
        output_kernel_size: kernel size of the sigmoid output convolution.
        decoder_kernel_size: kernel size of the decoder feature stream.
        decoder_dropout: dropout rate of the decoder feature stream.
        seed: optional integer seed of the dropout and drop-path randomness.
        **kwargs: ``keras.Model`` arguments (``name``, ``trainable``, ``dtype``).

    Returns:
        A ``keras.Model`` mapping waveforms (B, L, C) to probabilities (B, L, 1).
    """

    def __init__(
        self,
        backbone,
        freeze_backbone=False,
        phase="P",
        conv_filters=(10, 20, 40),
        conv_kernel_size=11,
        patch_size=40,
        projection_dim=40,
        num_heads=4,
        num_layers=4,
        mlp_units=None,
        dropout=0.1,
        attention_dropout=0.1,
        stochastic_depth_rate=0.1,
        layer_norm_epsilon=None,
        attention_conv_blocks=None,
        output_kernel_size=3,
        decoder_kernel_size=13,
        decoder_dropout=0.1,
        seed=None,
        **kwargs,
    ):
        phase = str(phase).upper()
        if phase not in _PHASE_DEFAULTS:
            raise ValueError(f'phase must be "P" or "S". Received: phase={phase!r}')
        defaults = _PHASE_DEFAULTS[phase]
        if layer_norm_epsilon is None:
            layer_norm_epsilon = defaults["layer_norm_epsilon"]
        if attention_conv_blocks is None:
            attention_conv_blocks = defaults["attention_conv_blocks"]
        conv_filters = [int(f) for f in conv_filters]
        projection_dim = int(projection_dim)
        mlp_units = (
            [projection_dim, projection_dim] if mlp_units is None else [int(u) for u in mlp_units]
        )
        output_name = f"{phase.lower()}_pick"

        waveform = backbone.input
        latent = backbone.get_layer("latent").output
        features = decoder_feature_stream(
            latent,
            activation="gelu",
            kernel_size=decoder_kernel_size,
            dropout=decoder_dropout,
            train_dropout=True,
            name="decoder_features",
        )
        length = waveform.shape[1]
        if features.shape[1] != length:
            raise ValueError(
                "The decoder feature stream (80 channels per latent token) must have the "
                f"waveform's length. Received: features shape={features.shape}, "
                f"waveform shape={waveform.shape}"
            )
        if length % patch_size or (length // patch_size) * projection_dim != length:
            raise ValueError(
                "The picker maps its (num_patches, projection_dim) representation back to "
                "one value per sample, so patch_size must divide the input length and "
                "num_patches * projection_dim must equal it. Received: "
                f"input length={length}, patch_size={patch_size}, projection_dim={projection_dim}"
            )
        x = layers.Concatenate(axis=-1, name="features_and_waveform")([features, waveform])

        for i, width in enumerate(conv_filters):
            x = ResidualConvBlock(
                filters=width,
                kernel_size=conv_kernel_size,
                dropout=dropout,
                activation="gelu",
                train_dropout=True,
                seed=offset_seed(seed, 10 + i),
                name=f"picker_conv{i}",
            )(x)

        patches = PatchExtractor(patch_size, name="patches")(x)
        x = PatchEncoder(patches.shape[1], projection_dim, name="patch_encoder")(patches)
        for i, rate in enumerate(stochastic_depth_rates(stochastic_depth_rate, num_layers)):
            block_args = dict(
                num_heads=num_heads,
                key_dim=projection_dim,
                mlp_units=mlp_units,
                dropout=dropout,
                attention_dropout=attention_dropout,
                drop_path=rate,
                epsilon=layer_norm_epsilon,
                seed=offset_seed(seed, 100 * (i + 1)),
                name=f"picker_block{i}",
            )
            if attention_conv_blocks:
                x = _conv_transformer_block(x, conv_kernel_size=conv_kernel_size, **block_args)
            else:
                x = TransformerBlock(**block_args)(x)
        x = layers.LayerNormalization(epsilon=layer_norm_epsilon, name="representation")(x)
        x = layers.Reshape((length, 1), name="representation_per_sample")(x)
        outputs = layers.Conv1D(
            1,
            output_kernel_size,
            padding="same",
            activation="sigmoid",
            kernel_initializer="he_normal",
            name=output_name,
            dtype="float32",
        )(x)

        kwargs.setdefault("name", f"utrans_eqcct_{phase.lower()}")
        super().__init__(backbone, freeze_backbone, inputs=waveform, outputs=outputs,
                         conventions=_conventions(phase), **kwargs)
        self.phase = phase
        self.conv_filters = conv_filters
        self.conv_kernel_size = int(conv_kernel_size)
        self.patch_size = int(patch_size)
        self.projection_dim = projection_dim
        self.num_heads = int(num_heads)
        self.num_layers = int(num_layers)
        self.mlp_units = mlp_units
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.stochastic_depth_rate = float(stochastic_depth_rate)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.attention_conv_blocks = bool(attention_conv_blocks)
        self.output_kernel_size = int(output_kernel_size)
        self.decoder_kernel_size = int(decoder_kernel_size)
        self.decoder_dropout = float(decoder_dropout)
        self.seed = seed


def _conventions(phase):
    # The U-Trans picking rule: the highest peak of the window above 0.1.
    return DownstreamModel.default_conventions.replace(labels=(phase,), thresholds={phase: 0.1},
                                                    pick_rule="highest", head="curve_picking")


utrans_eqcct_p = register_downstream("utrans_eqcct_p", UTransEQCCTPicker, "picking",
                                     conventions=_conventions("P"), phase="P")
utrans_eqcct_s = register_downstream("utrans_eqcct_s", UTransEQCCTPicker, "picking",
                                     conventions=_conventions("S"), phase="S")
