"""Training losses of the ported models, as their reference training code defines them.

Each loss is a registered ``keras.losses.Loss`` (so compiled ``.keras`` files
round-trip) written with ``keras.ops`` (every backend). Channels are last:
sequence targets are ``(batch, samples, channels)``, class targets
``(batch, classes)``. The defaults reproduce SeisT's ``models/loss.py``
(``eps`` = 1e-6 inside every logarithm, the reductions written below); the
training-step goldens of the reference folder (``training/``) check them.

=============================  ===========================  ==================================
loss                           reference                    reduction
=============================  ===========================  ==================================
WeightedBinaryCrossentropy     ``BCELoss(weight)``          mean over batch, samples, channels
WeightedCategoricalCrossentropy ``CELoss(weight)``          sum over classes, mean over the rest
FocalLoss                      ``FocalLoss`` (softmax)      sum over classes, mean over the rest
AleatoricLoss                  ``MousaviLoss``              **sum** over the batch
=============================  ===========================  ==================================

(SeisT's ``HuberLoss`` is ``keras.losses.Huber(delta=1.0)``: mean over the batch.)
"""

import keras
from keras import ops

__all__ = ["AleatoricLoss", "FocalLoss", "WeightedBinaryCrossentropy",
           "WeightedCategoricalCrossentropy"]

_EPS = 1e-6


def _class_weights(weights, dtype):
    return 1.0 if weights is None else ops.convert_to_tensor(weights, dtype=dtype)


@keras.saving.register_keras_serializable(package="utrans")
class WeightedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy of probability curves with one weight per channel.

    ``-(t log(p + eps) + (1 - t) log(1 - p + eps)) * w[c]``, averaged over
    batch, samples and channels (SeisT's ``BCELoss``).

    Args:
        weights: one weight per output channel (SeisT dpk and EQTransformer:
            0.5, 1, 1 for det, P, S).
        eps: added inside the logarithms (reference: 1e-6).
        name: loss name.
        **kwargs: passed to ``keras.losses.Loss`` (``reduction``, ``dtype``).
    """

    def __init__(self, weights=(0.5, 1.0, 1.0), eps=_EPS, name="weighted_bce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weights = [float(w) for w in weights]
        self.eps = float(eps)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        w = ops.convert_to_tensor(self.weights, dtype=y_pred.dtype)
        loss = -(y_true * ops.log(y_pred + self.eps)
                 + (1.0 - y_true) * ops.log(1.0 - y_pred + self.eps))
        return ops.mean(loss * w, axis=-1)

    def get_config(self):
        return {**super().get_config(), "weights": self.weights, "eps": self.eps}


@keras.saving.register_keras_serializable(package="utrans")
class WeightedCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy of class probabilities, one weight per class (SeisT's ``CELoss``).

    ``sum_c -w[c] t_c log(p_c + eps)`` over the last (class) axis, then the
    mean over every other axis: the batch for ``(batch, classes)`` outputs
    (SeisT ``pmp``), batch and samples for ``(batch, samples, classes)``
    (PhaseNet). The predictions are probabilities already (the models end
    in a softmax). Unlike ``keras.losses.CategoricalCrossentropy`` the
    predictions are neither renormalised nor clipped.

    Args:
        weights: one weight per class, or ``None`` for 1 (reference: 1 for
            every class of PhaseNet and SeisT ``pmp``).
        eps: added inside the logarithm (reference: 1e-6).
        name: loss name.
        **kwargs: passed to ``keras.losses.Loss``.
    """

    def __init__(self, weights=None, eps=_EPS, name="weighted_cce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weights = None if weights is None else [float(w) for w in weights]
        self.eps = float(eps)

    def call(self, y_true, y_pred):
        t = ops.cast(y_true, y_pred.dtype)
        loss = -t * ops.log(y_pred + self.eps) * _class_weights(self.weights, y_pred.dtype)
        return ops.sum(loss, axis=-1)

    def get_config(self):
        return {**super().get_config(), "weights": self.weights, "eps": self.eps}


@keras.saving.register_keras_serializable(package="utrans")
class AleatoricLoss(keras.losses.Loss):
    """Regression loss with learned aleatoric uncertainty (Mousavi & Beroza, 2020).

    The prediction's column 0 is the value ``y`` and column 1 is
    ``s = log(sigma^2)``; per trace ``0.5 exp(-s) (t - y)^2 + 0.5 s``. As in
    the reference (SeisT's ``MousaviLoss``, used by MagNet and dist-PT
    Network) the per-trace values are **summed** over the batch, so the
    gradient grows with the batch size. ``reduction="sum_over_batch_size"``
    averages instead (the behaviour of utrans before the reference default;
    same minimiser, gradients scaled by ``1 / batch``).

    Args:
        reduction: ``"sum"`` (reference) or another Keras reduction.
        name: loss name.
        **kwargs: passed to ``keras.losses.Loss``.
    """

    def __init__(self, reduction="sum", name="aleatoric", **kwargs):
        super().__init__(name=name, reduction=reduction, **kwargs)

    def call(self, y_true, y_pred):
        t = ops.reshape(ops.cast(y_true, y_pred.dtype), (-1,))
        y, s = y_pred[:, 0], y_pred[:, 1]
        return 0.5 * ops.exp(-s) * ops.square(t - y) + 0.5 * s


@keras.saving.register_keras_serializable(package="utrans")
class FocalLoss(keras.losses.Loss):
    """Focal loss on class scores, softmax applied first (DiTingMotion, SeisT's ``FocalLoss``).

    ``sum_c -w[c] t_c (1 - q_c)^gamma log(q_c + eps)`` with
    ``q = softmax(scores)`` over the last axis, then the mean over the batch.
    A row whose target is all zeros (an unknown class) contributes 0.

    Args:
        gamma: focusing exponent (reference: 2).
        weights: one weight per class, or ``None`` for 1 (reference: ``None``).
        eps: added inside the logarithm (reference: 1e-6).
        name: loss name.
        **kwargs: passed to ``keras.losses.Loss``.
    """

    def __init__(self, gamma=2.0, weights=None, eps=_EPS, name="focal", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma = float(gamma)
        self.weights = None if weights is None else [float(w) for w in weights]
        self.eps = float(eps)

    def call(self, y_true, y_pred):
        q = ops.softmax(y_pred, axis=-1)
        t = ops.cast(y_true, q.dtype)
        loss = -t * ops.log(q + self.eps) * ops.power(1.0 - q, self.gamma)
        return ops.sum(loss * _class_weights(self.weights, q.dtype), axis=-1)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "weights": self.weights,
                "eps": self.eps}
