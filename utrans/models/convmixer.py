"""ConvMixer earthquake-location head on U-Trans features.

Saad et al., "U-Trans: a foundation model for seismic waveform representation",
Scientific Reports (2026), doi:10.1038/s41598-026-41454-x; the ConvMixer block of
Trockman & Kolter, "Patches are all you need?", TMLR (2023).
"""

import keras
from keras import layers

from utrans.models.layers import decoder_feature_stream
from utrans.models.downstream import DownstreamModel, register_downstream

__all__ = ["UTransConvMixerLocation"]


def _activation_block(x, dropout, name):
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


@keras.saving.register_keras_serializable(package="utrans")
class UTransConvMixerLocation(DownstreamModel):
    """Single-station location from U-Trans features with a ConvMixer head.

    The waveform goes through the backbone up to its ``latent`` tokens
    (B, 75, 80); three residual conv blocks (linear activations, as in the
    U-Trans location example) turn them into the decoder feature stream
    (B, 6000, 1), which is concatenated with the waveform (B, 6000, 3). A patch
    stem (Conv1D, kernel = stride = ``patch_size``) and ``depth`` ConvMixer
    blocks (depthwise conv with residual, pointwise conv, each followed by
    BatchNorm, ReLU and dropout) are pooled over time into a Dense(3) linear
    output: (station_lat - event_lat, station_lon - event_lon, normalised depth),
    see :class:`utrans.labels.LocationLabeller`.

    Only the backbone's input-to-latent path is part of this model; its U-Net
    decoder and reconstruction head are not. With the default arguments the
    model has 4,079,659 parameters (22,944 of them BatchNorm statistics), as
    the reference.

    Args:
        backbone: a :class:`utrans.models.UTransBackbone` (load pretrained
            weights into it first).
        freeze_backbone: if True, the backbone's weights are not trained.
        filters: ConvMixer width.
        depth: number of ConvMixer blocks.
        kernel_size: depthwise kernel size.
        patch_size: stem kernel size and stride.
        dropout: dropout rate after every activation block.
        num_outputs: size of the linear output.
    """

    #: The backbone's input conventions; output (station - event latitude and longitude, normalised depth).
    default_conventions = DownstreamModel.default_conventions.replace(labels=("dlat_deg", "dlon_deg", "depth_norm"))

    def __init__(self, backbone, freeze_backbone=False, filters=512, depth=10, kernel_size=13,
                 patch_size=10, dropout=0.1, num_outputs=3, **kwargs):
        waveform = backbone.input
        latent = backbone.get_layer("latent").output
        features = decoder_feature_stream(latent, activation="linear", train_dropout=False,
                                          name="decoder_features")
        x = layers.Concatenate(axis=-1, name="features_and_waveform")([features, waveform])
        x = layers.Conv1D(filters, patch_size, strides=patch_size, name="stem_conv")(x)
        x = _activation_block(x, dropout, "stem")
        for i in range(depth):
            residual = x
            x = layers.DepthwiseConv1D(kernel_size, padding="same", name=f"mixer{i}_depthwise")(x)
            x = layers.Add(name=f"mixer{i}_residual")([_activation_block(x, dropout, f"mixer{i}_dw"),
                                                       residual])
            x = layers.Conv1D(filters, 1, name=f"mixer{i}_pointwise")(x)
            x = _activation_block(x, dropout, f"mixer{i}_pw")
        x = layers.GlobalAveragePooling1D(name="pool")(x)
        outputs = layers.Dense(num_outputs, activation="linear", name="output_layer",
                               dtype="float32")(x)
        kwargs.setdefault("name", "utrans_convmixer_location")
        super().__init__(backbone, freeze_backbone, inputs=waveform, outputs=outputs, **kwargs)
        self.filters = filters
        self.depth = depth
        self.kernel_size = kernel_size
        self.patch_size = patch_size
        self.dropout = dropout
        self.num_outputs = num_outputs


utrans_convmixer_location = register_downstream("utrans_convmixer_location", UTransConvMixerLocation, "location")
