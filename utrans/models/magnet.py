"""MagNet: single-station earthquake magnitude with aleatoric uncertainty.

Keras 3 port of the MagNet variant in the SeisT model zoo: two
convolution + max-pool stages and a bidirectional LSTM whose final states
feed a linear layer with two outputs (magnitude and its log-variance, for
the aleatoric-uncertainty loss). Its PyTorch state_dicts load through
:func:`utrans.convert.load_torch_checkpoint`.
"""

import keras
from keras import ops

from utrans.core.conventions import Conventions
from utrans.core.registry import register_model
from utrans.models.torch_port import TorchNames, TorchPortModel

__all__ = ["CeilMaxPooling1D", "MagNet"]


@keras.saving.register_keras_serializable(package="utrans")
class CeilMaxPooling1D(keras.layers.Layer):
    """Non-overlapping max pooling that keeps a partial last window.

    Equivalent to PyTorch ``MaxPool1d(pool_size, ceil_mode=True)``: the
    sequence is extended on the right (never the left) so that its length
    is a multiple of ``pool_size``; the extension never wins the maximum.

    Args:
        pool_size: window and stride.
        **kwargs: passed to ``keras.layers.Layer``.

    Returns:
        ``(batch, ceil(length / pool_size), channels)``.
    """

    def __init__(self, pool_size, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)

    def call(self, x):
        length = x.shape[1]
        if length is None:
            raise ValueError(
                f"{self.name} needs a static sequence length. Received: shape={x.shape}"
            )
        extra = (-length) % self.pool_size
        if extra:
            x = ops.pad(x, [[0, 0], [0, extra], [0, 0]], constant_values=float("-inf"))
        return ops.max_pool(x, self.pool_size, strides=self.pool_size, padding="valid")

    def compute_output_shape(self, input_shape):
        length = input_shape[1]
        if length is not None:
            length = -(-length // self.pool_size)
        return (input_shape[0], length, input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=self.pool_size)
        return config


@keras.saving.register_keras_serializable(package="utrans")
@register_model("magnet", quantity="magnitude")
class MagNet(TorchPortModel):
    """MagNet magnitude estimator (Mousavi & Beroza, 2020).

    Each convolution stage is a "same" convolution (kernel 3, no
    activation), dropout and ceil-mode max pooling by 4; a bidirectional
    LSTM reads the result and its final forward and backward hidden states
    (concatenated) go through one linear layer.

    Reference:
        Mousavi, S. M., & Beroza, G. C. (2020). A machine-learning approach
        for earthquake magnitude estimation. Geophysical Research Letters,
        47, e2019GL085976. doi:10.1029/2019GL085976

    Args:
        in_channels: number of input components.
        in_samples: window length in samples.
        conv_channels: channels of the convolution stages.
        lstm_dim: hidden size of each LSTM direction.
        drop_rate: dropout rate.
        name: model name.
        **kwargs: passed to ``keras.Model``.

    Returns:
        A model mapping ``(batch, in_samples, in_channels)`` to
        ``(batch, 2)``: column 0 the magnitude, column 1 the log of its
        variance (aleatoric uncertainty).
    """

    #: Z, N, E at the data's rate (no published weights: random initialisation).
    default_conventions = Conventions(
        sampling_rate=100.0, component_order="ZNE", in_samples=8192, normalization="std",
        labels=("magnitude", "log_variance"), head="magnet")

    def __init__(
        self,
        in_channels=3,
        in_samples=8192,
        conv_channels=(64, 32),
        lstm_dim=100,
        drop_rate=0.2,
        name="magnet",
        **kwargs,
    ):
        conv_channels = [int(c) for c in conv_channels]
        if not isinstance(in_samples, int) or in_samples < 1:
            raise ValueError(
                f"{type(self).__name__} needs a fixed positive window length. "
                f"Received: in_samples={in_samples!r}"
            )
        layers = keras.layers
        named = TorchNames()

        inputs = keras.Input((in_samples, in_channels), name="waveform")
        x = inputs
        for i, filters in enumerate(conv_channels):
            x = layers.ZeroPadding1D((1, 1))(x)
            x = named(layers.Conv1D(filters, 3, name=f"conv_layers_{i}_conv"),
                      f"conv_layers.{i}.conv")(x)
            x = layers.Dropout(drop_rate)(x)
            x = CeilMaxPooling1D(4)(x)
        # Explicit backward LSTM: see the note in eqtransformer.py.
        x = named(layers.Bidirectional(layers.LSTM(lstm_dim),
                                       backward_layer=layers.LSTM(lstm_dim, go_backwards=True),
                                       name="lstm"), "lstm")(x)
        outputs = named(layers.Dense(2, name="lin"), "lin")(x)
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)

        self.in_channels = in_channels
        self.in_samples = in_samples
        self.conv_channels = conv_channels
        self.lstm_dim = lstm_dim
        self.drop_rate = drop_rate
        self._torch_names = named.names

