"""Batch normalisation whose training step is one fused TensorFlow kernel.

:class:`BatchNormalization` is ``keras.layers.BatchNormalization`` (same
arguments, weights, configuration and results) for the models ported from
PyTorch (SeisT, PhaseNet, EQTransformer). Keras 3 writes batch normalisation
in training as separate operations (two reductions for the moments, the
normalisation, and the same again backwards), each a pass over the
activations; PyTorch and Keras 2 run one fused kernel each way. On the
TensorFlow backend this layer runs TensorFlow's ``FusedBatchNormV3`` (and its
gradient) in training, which makes the training graph smaller (faster first
step) and each step faster: SeisT normalises 84 times per step, at full
resolution in its stem.

The moving statistics follow Keras' rule exactly: ``moving = moving *
momentum + batch * (1 - momentum)`` with the batch variance over the samples
(the kernel's Bessel-corrected variance is scaled back by ``(n - 1) / n``).
Inference, other backends, masks, renormalisation, synchronised statistics,
an axis other than the last, and computation in float64 run Keras' own code.
"""

import keras
from keras import ops

__all__ = ["BatchNormalization"]

#: The smallest epsilon cuDNN's fused batch normalisation accepts.
_MIN_FUSED_EPSILON = 1e-5


@keras.saving.register_keras_serializable(package="utrans")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` with a fused training kernel on TensorFlow.

    Its arguments and outputs are those of ``keras.layers.BatchNormalization``.
    """

    def _fused(self, inputs, training, mask):
        rank = len(inputs.shape)
        return (bool(training) and self.trainable and mask is None and not self.renorm
                and not self.synchronized and keras.backend.backend() == "tensorflow"
                and 2 <= rank <= 4 and self.axis in (-1, rank - 1)
                and self.epsilon >= _MIN_FUSED_EPSILON
                and keras.backend.result_type(inputs.dtype, "float32") == "float32")

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf  # noqa: PLC0415 - heavy, needed by this backend only (loaded by it)

        x = ops.cast(inputs, "float32")
        rank, channels = len(x.shape), x.shape[-1]
        x4 = x if rank == 4 else ops.reshape(x, (-1, 1 if rank == 2 else ops.shape(x)[1], 1,
                                                 channels))
        gamma = ops.cast(self.gamma, "float32") if self.scale else ops.ones((channels,))
        beta = ops.cast(self.beta, "float32") if self.center else ops.zeros((channels,))
        empty = ops.zeros((0,), "float32")
        y, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x4, scale=gamma, offset=beta, mean=empty, variance=empty, epsilon=self.epsilon,
            exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
        count = ops.cast(ops.size(x) // channels, "float32")
        variance = variance * ((count - 1.0) / ops.maximum(count, 1.0))
        moving_mean = ops.cast(self.moving_mean, "float32")
        moving_variance = ops.cast(self.moving_variance, "float32")
        self.moving_mean.assign(moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            moving_variance * self.momentum + variance * (1.0 - self.momentum))
        if rank != 4:
            y = ops.reshape(y, ops.shape(x))
        return ops.cast(y, self.compute_dtype)
