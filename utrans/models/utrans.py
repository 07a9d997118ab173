"""U-Trans foundation backbone (1-D U-Net with a compact convolutional transformer bottleneck)."""

import keras
from keras import layers

from utrans.models.layers import (
    CCTTokenizer,
    TransformerBlock,
    decoder_feature_stream,
    offset_seed,
    stochastic_depth_rates,
)
from utrans.weights.keras_h5 import load_legacy_h5
from utrans.core.conventions import Conventions, pop_conventions
from utrans.core.presets import get_preset, preset_path
from utrans.core.registry import register_model

__all__ = ["UTransBackbone"]


@keras.saving.register_keras_serializable(package="utrans")
@register_model("utrans_foundation", quantity="reconstruction")
class UTransBackbone(keras.Model):
    """U-Trans foundation backbone: 1-D U-Net encoder/decoder with a CCT bottleneck.

    Five encoder stages (two ReLU ``Conv1D`` of width ``base_filters * 2**k``
    then ``MaxPooling1D``; pool sizes ``pool_sizes``, 6000 samples -> 75
    tokens), two bottleneck convolutions, a Compact Convolutional Transformer
    (tokenizer convolution + ``num_layers`` pre-norm transformer blocks +
    LayerNorm), then a U-Net decoder with skip connections and a linear
    reconstruction head. Built as a functional model in ``__init__``.

    Reference: Saad, O. M. et al. (2026), "U-Trans: a foundation model for
    seismic waveform representation", Scientific Reports,
    doi:10.1038/s41598-026-41454-x.

    Calling the model on waveforms (B, 6000, 3) returns a dict:

    * ``"latent"``: (B, 75, 80), the bottleneck's final LayerNormalization
      output (layer ``"latent"``), the feature the downstream models use;
    * ``"reconstruction"``: (B, 6000, 3), the pretraining head (layer
      ``"reconstruction"``).

    Inputs follow the U-Trans convention: each trace and channel demeaned and
    divided by its standard deviation over the record samples of the window
    (the model's :class:`utrans.pipeline.Pipeline` does this with
    :func:`utrans.processing.normalize.normalize`).

    Downstream models take the input -> latent path::

        backbone = UTransBackbone.from_preset("utrans_foundation")
        encoder = backbone.latent_model()            # (B, 6000, 3) -> (B, 75, 80)
        # or, equivalently, inside a functional model:
        waveform = backbone.input
        latent = backbone.get_layer("latent").output
        features = decoder_feature_stream(latent)    # (B, 6000, 1), utrans.models.layers
        x = keras.layers.Concatenate()([waveform, features])
        ...
        model = keras.Model(waveform, head_output)

    The latent path holds 563,480 parameters (the full backbone 662,098); its
    layers are shared with the backbone (fine-tuned, not copied).
    ``backbone.decoder_feature_model()`` is the input -> decoder-feature model
    (1,315,880 parameters, 1,440 of them BatchNorm statistics).

    Args:
        input_length: samples per window (divisible by the product of ``pool_sizes``).
        input_channels: waveform channels.
        base_filters: width of the first encoder stage (doubled per stage).
        pool_sizes: pooling factor of each of the five encoder stages.
        num_layers: transformer blocks in the bottleneck.
        num_heads: attention heads.
        projection_dim: token width (tokenizer filters, attention key size,
            MLP widths); the latent is (B, T, projection_dim).
        stochastic_depth_rate: drop-path rate of the last block (rising
            linearly from 0 over the blocks).
        dropout: MLP and attention dropout rate.
        layer_norm_epsilon: LayerNormalization epsilon.
        seed: optional integer seed of the dropout/drop-path randomness.
        **kwargs: ``keras.Model`` arguments (``name``, ``trainable``, ``dtype``).

    Returns:
        A ``keras.Model``; ``model(x)`` returns ``{"latent", "reconstruction"}``.
    """

    #: E, N, Z at 100 Hz, 6000 samples, each window and channel z-scored.
    default_conventions = Conventions(sampling_rate=100.0, component_order="ENZ", in_samples=6000,
                                      normalization="std", labels=("E", "N", "Z"),
                                      head="reconstruction")

    def __init__(
        self,
        input_length=6000,
        input_channels=3,
        base_filters=5,
        pool_sizes=(2, 2, 2, 2, 5),
        num_layers=4,
        num_heads=4,
        projection_dim=80,
        stochastic_depth_rate=0.1,
        dropout=0.1,
        layer_norm_epsilon=1e-5,
        seed=None,
        **kwargs,
    ):
        pool_sizes = tuple(int(p) for p in pool_sizes)
        if len(pool_sizes) != 5:
            raise ValueError(f"pool_sizes must have 5 entries. Received: pool_sizes={pool_sizes}")
        total_pool = 1
        for p in pool_sizes:
            total_pool *= p
        if input_length % total_pool:
            raise ValueError(
                f"input_length must be divisible by the product of pool_sizes ({total_pool}). "
                f"Received: input_length={input_length}"
            )

        def conv(filters, kernel, name, activation="relu"):
            return layers.Conv1D(
                filters,
                kernel,
                padding="same",
                activation=activation,
                kernel_initializer="he_normal",
                name=name,
            )

        widths = [base_filters * 2**k for k in range(5)]

        # Encoder.
        waveform = keras.Input(shape=(input_length, input_channels), name="waveform")
        x = waveform
        skips = []
        for k, (width, pool) in enumerate(zip(widths, pool_sizes), start=1):
            stage_input = x
            x = conv(width, 3, f"encoder{k}_conv1")(x)
            x = conv(width, 3, f"encoder{k}_conv2")(x)
            # The deepest skip connection taps the stage input (the previous
            # stage's pooled features), the others the stage's convolutions.
            skips.append(stage_input if k == 5 else x)
            x = layers.MaxPooling1D(pool, name=f"encoder{k}_pool")(x)

        # Bottleneck: two convolutions, then the compact convolutional transformer.
        x = conv(widths[4], 3, "bottleneck_conv1")(x)
        x = conv(widths[4], 3, "bottleneck_conv2")(x)
        x = CCTTokenizer(
            filters=(projection_dim,),
            kernel_size=3,
            activation="relu",
            use_bias=False,
            name="cct_tokenizer",
        )(x)
        rates = stochastic_depth_rates(stochastic_depth_rate, num_layers)
        for i, rate in enumerate(rates):
            x = TransformerBlock(
                num_heads=num_heads,
                key_dim=projection_dim,
                mlp_units=(projection_dim, projection_dim),
                dropout=dropout,
                attention_dropout=dropout,
                drop_path=rate,
                epsilon=layer_norm_epsilon,
                seed=offset_seed(seed, 100 * i),
                name=f"transformer_block{i}",
            )(x)
        latent = layers.LayerNormalization(epsilon=layer_norm_epsilon, name="latent")(x)

        # Decoder: upsample, convolve, concatenate the skip, two convolutions.
        up_kernels = (2, 2, 2, 3, 3)
        x = latent
        for k in range(5, 0, -1):
            x = layers.UpSampling1D(pool_sizes[k - 1], name=f"decoder{k}_upsample")(x)
            x = conv(widths[k - 1], up_kernels[k - 1], f"decoder{k}_upconv")(x)
            x = layers.Concatenate(axis=-1, name=f"decoder{k}_concat")([skips[k - 1], x])
            x = conv(widths[k - 1], 3, f"decoder{k}_conv1")(x)
            x = conv(widths[k - 1], 3, f"decoder{k}_conv2")(x)
        x = conv(base_filters, 3, "head_conv", activation=None)(x)
        reconstruction = conv(input_channels, 3, "reconstruction", activation=None)(x)

        kwargs.setdefault("name", "utrans_backbone")
        conventions = pop_conventions(kwargs, self.default_conventions, in_samples=input_length)
        super().__init__(
            inputs=waveform,
            outputs={"latent": latent, "reconstruction": reconstruction},
            **kwargs,
        )
        self.conventions = conventions

        self.input_length = int(input_length)
        self.input_channels = int(input_channels)
        self.base_filters = int(base_filters)
        self.pool_sizes = pool_sizes
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.projection_dim = int(projection_dim)
        self.stochastic_depth_rate = float(stochastic_depth_rate)
        self.dropout = float(dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.seed = seed

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_length": self.input_length,
            "input_channels": self.input_channels,
            "base_filters": self.base_filters,
            "pool_sizes": list(self.pool_sizes),
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "projection_dim": self.projection_dim,
            "stochastic_depth_rate": self.stochastic_depth_rate,
            "dropout": self.dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "seed": self.seed,
            **self.conventions.to_config(),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def latent_model(self, name="utrans_latent"):
        """The input -> latent path as a model sharing this backbone's layers.

        Args:
            name: name of the returned model.

        Returns:
            A ``keras.Model`` mapping (B, L, C) waveforms to the latent (B, T, projection_dim).
        """
        return keras.Model(self.input, self.get_layer("latent").output, name=name)

    def decoder_feature_model(self, name="utrans_decoder_features", **kwargs):
        """The input -> decoder feature stream (B, 6000, 1) as a model sharing the encoder.

        The three residual blocks are freshly initialised (they are not part of
        the published checkpoint), as in the reference's decoder helper.

        Args:
            name: name of the returned model.
            **kwargs: arguments of :func:`utrans.models.layers.decoder_feature_stream`
                (``activation``, ``filters``, ``kernel_size``, ``dropout``,
                ``train_dropout``, ``num_blocks``).

        Returns:
            A ``keras.Model`` mapping waveforms to the (B, T * filters, 1) features
            (output layer ``"decoder_features"``).
        """
        features = decoder_feature_stream(self.get_layer("latent").output, **kwargs)
        return keras.Model(self.input, features, name=name)

    @classmethod
    def from_legacy_h5(cls, path, **kwargs):
        """Build a backbone and load a Keras 2 ``.h5`` checkpoint of U-Trans into it.

        Layers are matched by graph order and weight shapes, not by the layer
        names stored in the file; nothing is assigned unless every weight
        matches (see :func:`utrans.convert.load_legacy_h5`).

        Args:
            path: the ``.h5`` file (e.g. the published ``UTrans_Foundation.h5``).
            **kwargs: constructor arguments (defaults: the published architecture).

        Returns:
            A ``UTransBackbone`` holding the checkpoint's weights.

        Raises:
            FileNotFoundError: the file does not exist.
            utrans.convert.CheckpointMismatchError: the file is not a readable
                Keras ``.h5`` weights file, or its weights do not fit the architecture.
        """
        model = cls(**kwargs)
        load_legacy_h5(model, path)
        return model

    @classmethod
    def from_preset(cls, name="utrans_foundation", **kwargs):
        """Build a backbone with published weights, downloading them into the cache if needed.

        Args:
            name: a U-Trans preset name from :func:`utrans.core.presets.list_presets`.
            **kwargs: constructor arguments.

        Returns:
            A ``UTransBackbone`` holding the preset's weights.
        """
        preset = get_preset(name)
        if preset.model != "utrans_foundation":
            raise ValueError(
                f"Preset {name!r} builds {preset.model!r}, not a UTransBackbone; "
                f"use utrans.load_model({name!r}). Received: name={name!r}"
            )
        return cls.from_legacy_h5(preset_path(name), **kwargs)
