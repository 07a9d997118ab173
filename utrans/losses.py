"""Training losses of the ported models, as their reference training code defines them.

Each loss is a registered ``keras.losses.Loss`` (so compiled ``.keras`` files
round-trip) written with ``keras.ops`` (every backend).
"""

import keras
from keras import ops

__all__ = ["AleatoricLoss", "FocalLoss", "WeightedBinaryCrossentropy"]

_EPS = 1e-6


@keras.saving.register_keras_serializable(package="utrans")
class WeightedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy of probability curves with one weight per channel.

    ``-(t log(p + eps) + (1 - t) log(1 - p + eps)) * w[c]``, averaged over
    batch, samples and channels (SeisT's ``BCELoss``; ``eps`` = 1e-6).

    Args:
        weights: one weight per output channel (SeisT dpk: 0.5, 1, 1).
        name: loss name.
    """

    def __init__(self, weights=(0.5, 1.0, 1.0), name="weighted_bce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weights = [float(w) for w in weights]

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        w = ops.convert_to_tensor(self.weights, dtype=y_pred.dtype)
        loss = -(y_true * ops.log(y_pred + _EPS) + (1.0 - y_true) * ops.log(1.0 - y_pred + _EPS))
        return ops.mean(loss * w, axis=-1)

    def get_config(self):
        return {**super().get_config(), "weights": self.weights}


@keras.saving.register_keras_serializable(package="utrans")
class AleatoricLoss(keras.losses.Loss):
    """Regression loss with learned aleatoric uncertainty (Mousavi & Beroza, 2020).

    The prediction's column 0 is the value ``y`` and column 1 is
    ``s = log(sigma^2)``: ``0.5 exp(-s) (t - y)^2 + 0.5 s``. The reference
    sums it over the batch; here it is averaged (same minimiser, gradient
    scaled by ``1 / batch``).

    Args:
        name: loss name.
    """

    def __init__(self, name="aleatoric", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        t = ops.reshape(ops.cast(y_true, y_pred.dtype), (-1,))
        y, s = y_pred[:, 0], y_pred[:, 1]
        return 0.5 * ops.exp(-s) * ops.square(t - y) + 0.5 * s


@keras.saving.register_keras_serializable(package="utrans")
class FocalLoss(keras.losses.Loss):
    """Focal loss on class scores, softmax applied first (DiTingMotion, SeisT's ``FocalLoss``).

    ``sum_c -t_c (1 - p_c)^gamma log(p_c + eps)`` with ``p = softmax(scores)``.

    Args:
        gamma: focusing exponent (2).
        name: loss name.
    """

    def __init__(self, gamma=2.0, name="focal", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        p = ops.softmax(y_pred, axis=-1)
        t = ops.cast(y_true, p.dtype)
        return ops.sum(-t * ops.power(1.0 - p, self.gamma) * ops.log(p + _EPS), axis=-1)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


