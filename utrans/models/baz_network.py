"""BAZ-Network: single-station back-azimuth as (cos, sin).

Keras 3 port of the BAZ network in the SeisT model zoo: a convolutional
branch over the waveform plus a branch over the window's covariance matrix
and its eigen-decomposition (polarisation features), joined by two dense
layers. Its PyTorch state_dicts load through
:func:`utrans.convert.load_torch_checkpoint`.
"""

import keras
from keras import ops

from utrans.models.magnet import CeilMaxPooling1D
from utrans.core.conventions import Conventions
from utrans.core.registry import register_model
from utrans.models.torch_port import TorchNames, TorchPortModel

__all__ = ["BAZNetwork", "CovarianceEigenFeatures"]

_SCALINGS = ("batch", "sample")


@keras.saving.register_keras_serializable(package="utrans")
class CovarianceEigenFeatures(keras.layers.Layer):
    """Covariance matrix of a window and its eigen-decomposition, as one feature block.

    For a window ``x`` of shape ``(batch, length, C)`` the layer computes the
    ``C x C`` sample covariance (mean removed, divided by ``length - 1``) and
    its eigenvalues and eigenvectors, and returns ``(batch, C, 2C + 1)``:
    columns ``0..C-1`` the covariance divided by its largest absolute value,
    column ``C`` the eigenvalues divided by the largest eigenvalue, columns
    ``C+1..2C`` the unit eigenvectors (eigenvector ``k`` in column ``C+1+k``,
    paired with the eigenvalue in row ``k``). No gradient flows through it.

    Ordering and sign convention (the reference uses a general eigen-solver
    whose order and signs are arbitrary; this layer makes them canonical):
    the symmetric solver ``keras.ops.eigh`` is used, eigenpairs are sorted
    by **descending** eigenvalue (principal polarisation direction first),
    and each eigenvector is multiplied by -1 if needed so that its
    **largest-magnitude component is positive**.

    Args:
        scaling: ``"batch"`` divides by the largest value over the whole
            batch, as the reference does (a sample's features then depend on
            the other samples in its batch); ``"sample"`` divides per sample.
        block_size: samples summed together before the partial sums are
            added (keeps the float32 covariance accurate for long windows).
        **kwargs: passed to ``keras.layers.Layer``.

    Returns:
        ``(batch, C, 2C + 1)`` float tensor.
    """

    def __init__(self, scaling="batch", block_size=64, **kwargs):
        super().__init__(**kwargs)
        if scaling not in _SCALINGS:
            raise ValueError(f"scaling must be one of {_SCALINGS}. Received: scaling={scaling!r}")
        self.scaling = scaling
        self.block_size = int(block_size)

    def call(self, x):
        x = ops.stop_gradient(x)
        length, channels = x.shape[1], x.shape[2]
        if length is None or channels is None:
            raise ValueError(
                f"{self.name} needs a static window shape. Received: shape={x.shape}"
            )
        centered = x - ops.mean(x, axis=1, keepdims=True)
        # Sum the outer products block by block, then the blocks: float32 error
        # grows with the block size plus the block count, not the window length.
        block = self.block_size
        extra = (-length) % block
        if extra:
            centered = ops.pad(centered, [[0, 0], [0, extra], [0, 0]])
        blocks = ops.reshape(centered, (-1, (length + extra) // block, block, channels))
        cov = ops.sum(ops.einsum("bmkc,bmkd->bmcd", blocks, blocks), axis=1) / (length - 1.0)
        values, vectors = ops.eigh(cov)  # ascending eigenvalues, vectors in columns
        values = ops.flip(values, axis=-1)
        vectors = ops.flip(vectors, axis=-1)
        biggest = ops.argmax(ops.abs(vectors), axis=1)  # (batch, C): row of the largest entry
        picked = ops.take_along_axis(vectors, ops.expand_dims(biggest, 1), axis=1)
        vectors = vectors * ops.where(picked < 0, -1.0, 1.0)
        values = ops.expand_dims(values, -1)
        if self.scaling == "batch":
            values = values / ops.max(values)
            cov = cov / ops.max(ops.abs(cov))
        else:
            values = values / ops.max(values, axis=(1, 2), keepdims=True)
            cov = cov / ops.max(ops.abs(cov), axis=(1, 2), keepdims=True)
        return ops.stop_gradient(ops.concatenate([cov, values, vectors], axis=-1))

    def compute_output_shape(self, input_shape):
        c = input_shape[-1]
        return (input_shape[0], c, 2 * c + 1)

    def get_config(self):
        config = super().get_config()
        config.update(scaling=self.scaling, block_size=self.block_size)
        return config


@keras.saving.register_keras_serializable(package="utrans")
@register_model("baz_network", quantity="backazimuth")
class BAZNetwork(TorchPortModel):
    """BAZ-Network back-azimuth estimator (Mousavi & Beroza, 2020).

    Waveform branch: ``len(conv_channels)`` stages of "same" convolution,
    ReLU, dropout and ceil-mode max pooling, flattened channel-major.
    Polarisation branch: the :class:`CovarianceEigenFeatures` block
    ``(C, 2C + 1)``, read as ``C`` channels of length ``2C + 1``, through a
    1x1 convolution with ReLU, flattened channel-major. Both are
    concatenated and go through ``Dense(lin_hidden_dim, relu)``, dropout and
    ``Dense(2)``, whose two columns are returned separately.

    See :class:`CovarianceEigenFeatures` for the eigenvector order and sign
    convention. Because the reference's general eigen-solver returns an
    arbitrary order and sign, outputs match the reference exactly only when
    the reference's own feature block is given: build the model with
    ``precomputed_features=True`` to feed it as a second input.

    Reference:
        Mousavi, S. M., & Beroza, G. C. (2020). Bayesian-deep-learning
        estimation of earthquake location from single-station observations.
        IEEE Transactions on Geoscience and Remote Sensing, 58(11),
        8211-8224. doi:10.1109/TGRS.2020.2988770

    Args:
        in_channels: number of input components.
        in_samples: window length in samples.
        in_matrix_dim: columns of the feature block (``2 * in_channels + 1``).
        conv_channels: channels of the waveform-branch convolutions; the
            last one is also the polarisation branch's width.
        kernel_size: kernel size of the waveform-branch convolutions.
        pool_size: max-pool size.
        lin_hidden_dim: hidden size of the dense layer.
        drop_rate: dropout rate.
        feature_scaling: ``"batch"`` (reference behaviour) or ``"sample"``;
            see :class:`CovarianceEigenFeatures`.
        precomputed_features: if True the model takes
            ``[waveform, features (batch, in_channels, in_matrix_dim)]`` and
            skips the covariance/eigen step.
        name: model name.
        **kwargs: passed to ``keras.Model``.

    Returns:
        A model mapping ``(batch, in_samples, in_channels)`` (plus the
        feature block when ``precomputed_features``) to the list
        ``[cos (batch, 1), sin (batch, 1)]`` of the back-azimuth; recover
        the angle with ``atan2(sin, cos)``.
    """

    #: Z, N, E at the data's rate (no published weights: random initialisation).
    default_conventions = Conventions(
        sampling_rate=100.0, component_order="ZNE", in_samples=8192, normalization="std",
        labels=("cos", "sin"), head="baz_network")

    def __init__(
        self,
        in_channels=3,
        in_samples=8192,
        in_matrix_dim=7,
        conv_channels=(20, 32, 64, 20),
        kernel_size=3,
        pool_size=2,
        lin_hidden_dim=100,
        drop_rate=0.3,
        feature_scaling="batch",
        precomputed_features=False,
        name="baz_network",
        **kwargs,
    ):
        conv_channels = [int(c) for c in conv_channels]
        if not isinstance(in_samples, int) or in_samples < 1:
            raise ValueError(
                f"{type(self).__name__} needs a fixed positive window length. "
                f"Received: in_samples={in_samples!r}"
            )
        if in_matrix_dim != 2 * in_channels + 1:
            raise ValueError(
                "The covariance/eigen feature block has 2 * in_channels + 1 columns. "
                f"Received: in_channels={in_channels}, in_matrix_dim={in_matrix_dim}"
            )
        layers = keras.layers
        named = TorchNames()

        waveform = keras.Input((in_samples, in_channels), name="waveform")
        if precomputed_features:
            features = keras.Input((in_channels, in_matrix_dim), name="cov_eig_features")
            inputs = [waveform, features]
        else:
            features = CovarianceEigenFeatures(scaling=feature_scaling,
                                               name="cov_eig_features")(waveform)
            inputs = waveform

        x = waveform
        pad = (kernel_size - 1) // 2
        for i, filters in enumerate(conv_channels):
            x = layers.ZeroPadding1D((pad, pad))(x)
            x = named(layers.Conv1D(filters, kernel_size, activation="relu",
                                    name=f"layers_{i}_0"), f"layers.{i}.0")(x)
            x = layers.Dropout(drop_rate)(x)
            x = CeilMaxPooling1D(pool_size)(x)
        x = layers.Flatten(name="flatten0")(layers.Permute((2, 1))(x))

        y = layers.Permute((2, 1))(features)  # rows of the block are the channels
        y = named(layers.Conv1D(conv_channels[-1], 1, activation="relu", name="conv1"),
                  "conv1")(y)
        y = layers.Flatten(name="flatten1")(layers.Permute((2, 1))(y))

        x = layers.Concatenate(axis=-1)([x, y])
        x = named(layers.Dense(lin_hidden_dim, activation="relu", name="lin0"), "lin0")(x)
        x = layers.Dropout(drop_rate)(x)
        x = named(layers.Dense(2, name="lin1"), "lin1")(x)
        x = layers.Reshape((2, 1))(x)
        cos = layers.Reshape((1,), name="cos")(layers.Cropping1D((0, 1))(x))
        sin = layers.Reshape((1,), name="sin")(layers.Cropping1D((1, 0))(x))
        super().__init__(inputs=inputs, outputs=[cos, sin], name=name, **kwargs)

        self.in_channels = in_channels
        self.in_samples = in_samples
        self.in_matrix_dim = in_matrix_dim
        self.conv_channels = conv_channels
        self.kernel_size = kernel_size
        self.pool_size = pool_size
        self.lin_hidden_dim = lin_hidden_dim
        self.drop_rate = drop_rate
        self.feature_scaling = feature_scaling
        self.precomputed_features = precomputed_features
        self._torch_names = named.names

