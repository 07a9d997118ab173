"""How a model's outputs are read: one head per kind of output.

A model's conventions name its head (``conventions.head``). The head turns
the raw outputs of a forward pass (numpy arrays, as ``predict_on_batch`` or an
exported model's runtime return them: one array, a list, or a dict of named
outputs) into

* **curves** ``(batch, samples, labels)`` for pickers and detectors, one
  channel per output label in ``conventions.labels`` order; or
* **estimates** for models that give one value per window, a dict of
  ``(batch,)`` arrays with these names (the columns of ``characterize``, the
  tester and the catalogue):

  ========================  ==================================================
  ``polarity_up``           probability of an upward P first motion
  ``magnitude``             magnitude (``magnitude_std`` where the model gives one)
  ``back_azimuth_deg``      degrees clockwise from north in [0, 360)
  ``distance_km``           epicentral distance (``distance_km_std``)
  ``p_travel_s``            P travel time (``p_travel_s_std``)
  ``dlat_deg``, ``dlon_deg``, ``depth_norm``  the U-Trans location target
  ``reconstruction``        the reconstructed window ``(batch, samples, 3)``
  ========================  ==================================================

A user's model with a new kind of output registers its head with
:func:`register_head`. Plain numpy: no framework is imported.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ESTIMATES", "Head", "get_head", "list_heads", "register_head"]

#: Estimate names, and the quantity each belongs to.
ESTIMATES = {
    "polarity_up": "polarity", "magnitude": "magnitude", "magnitude_std": "magnitude",
    "back_azimuth_deg": "backazimuth", "distance_km": "distance", "distance_km_std": "distance",
    "p_travel_s": "distance", "p_travel_s_std": "distance", "dlat_deg": "location",
    "dlon_deg": "location", "depth_norm": "location", "reconstruction": "reconstruction",
}
# Output labels of single-output models that name an estimate directly.
_LABEL_ESTIMATES = {"U": "polarity_up", "magnitude": "magnitude",
                    "back_azimuth_deg": "back_azimuth_deg", "distance_km": "distance_km",
                    "dlat_deg": "dlat_deg", "dlon_deg": "dlon_deg", "depth_norm": "depth_norm"}

_HEADS = {}


def register_head(name):
    """Register a :class:`Head` subclass under ``name`` (the ``head`` of a model's conventions)."""

    def decorator(cls):
        if name in _HEADS and _HEADS[name] is not cls:
            raise ValueError(f"A head is already registered as {name!r}.")
        cls.name = name
        _HEADS[name] = cls
        return cls

    return decorator


def get_head(name):
    """The :class:`Head` registered as ``name``.

    Raises:
        KeyError: no head of that name; the message lists the registered ones.
    """
    if name not in _HEADS:
        raise KeyError(f"No model head {name!r} is registered (utrans.pipeline.heads."
                       f"register_head). Registered: {', '.join(list_heads())}")
    return _HEADS[name]()


def list_heads():
    """Sorted names of the registered heads."""
    return sorted(_HEADS)


def _as_list(outputs):
    """Outputs as a list of numpy arrays (dict outputs in their key order)."""
    if isinstance(outputs, dict):
        return [np.asarray(v) for v in outputs.values()]
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(v) for v in outputs]
    return [np.asarray(outputs)]


def _softmax(a):
    a = np.asarray(a, dtype=np.float64)
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Head:
    """Base class: the outputs of a model whose single output follows its labels.

    An output ``(batch, samples, labels)`` is a set of curves; an output
    ``(batch, labels)`` holds one value per label, each label naming an
    estimate (``"U"`` -> ``polarity_up``, ``"magnitude"``, ``"dlat_deg"``, ...).
    """

    name = ""
    #: Whether the model takes each component followed by its first difference.
    differences = False

    def curves(self, outputs, labels):
        """Curves ``(batch, samples, len(labels))`` float32 of a picker or detector.

        Raises:
            ValueError: the model gives no curves.
        """
        parts = _as_list(outputs)
        if any(p.ndim != 3 for p in parts):
            raise ValueError(f"A model with {self.name!r} outputs gives no curves (one value "
                             f"per sample): its outputs have shapes {[p.shape for p in parts]}.")
        curves = np.concatenate([p.astype(np.float32) for p in parts], axis=-1)
        if curves.shape[-1] != len(labels):
            raise ValueError(f"The model's curves have {curves.shape[-1]} channels for the "
                             f"labels {list(labels)}.")
        return curves

    def estimates(self, outputs, labels):
        """Estimates ``{name: (batch,) array}`` of a model with one value per window (module doc)."""
        (out,) = _as_list(outputs)[:1]
        if out.ndim != 2:
            raise ValueError(f"A model with {self.name!r} outputs gives curves, not one value per "
                             f"window: output shape {out.shape}.")
        unknown = [label for label in labels if label not in _LABEL_ESTIMATES]
        if unknown or out.shape[1] != len(labels):
            raise ValueError(f"Cannot read outputs of shape {out.shape} with labels {list(labels)}: "
                             f"each label must name an estimate ({', '.join(_LABEL_ESTIMATES)}).")
        return {_LABEL_ESTIMATES[label]: out[:, k].astype(np.float64)
                for k, label in enumerate(labels)}


@register_head("utrans")
class DirectHead(Head):
    """U-Trans downstream models: the output is the task's value(s), named by the labels."""


@register_head("curve_picking")
class CurvePickingHead(Head):
    """Pickers with one sigmoid curve per label (the U-Trans EQCCT P and S pickers)."""


@register_head("detection_picking")
class DetectionPickingHead(Head):
    """Sigmoid detection, P and S curves (SeisT ``dpk``, EQTransformer)."""


@register_head("phasenet")
class PhaseNetHead(Head):
    """Softmax over (noise, P, S) per sample (PhaseNet)."""


@register_head("reconstruction")
class ReconstructionHead(Head):
    """The U-Trans backbone: ``{"latent", "reconstruction"}``; the reconstruction is the estimate."""

    def estimates(self, outputs, labels):
        if isinstance(outputs, dict):
            recon = outputs["reconstruction"]
        else:
            recon = _as_list(outputs)[-1]
        return {"reconstruction": np.asarray(recon, dtype=np.float32)}


@register_head("seist_pmp")
class SoftmaxPolarityHead(Head):
    """Softmax over (up, down) (SeisT ``pmp``)."""

    def estimates(self, outputs, labels):
        out = _as_list(outputs)[0]
        return {"polarity_up": out[:, 0].astype(np.float64)}


@register_head("seist_regression")
class ScaledSigmoidHead(Head):
    """``scale * sigmoid``: magnitude or distance in their units (SeisT ``emg``, ``dis``)."""


@register_head("seist_baz")
class DegreesHead(Head):
    """``360 * sigmoid``: back-azimuth in degrees (SeisT ``baz``)."""

    def estimates(self, outputs, labels):
        out = _as_list(outputs)[0]
        return {"back_azimuth_deg": out[:, 0].astype(np.float64) % 360.0}


@register_head("magnet")
class ValueLogVarianceHead(Head):
    """(magnitude, log variance) of the aleatoric-uncertainty models (MagNet)."""

    def estimates(self, outputs, labels):
        out = _as_list(outputs)[0].astype(np.float64)
        return {"magnitude": out[:, 0], "magnitude_std": np.exp(0.5 * out[:, 1])}


@register_head("baz_network")
class CosSinHead(Head):
    """Two outputs, cosine and sine of the back-azimuth (BAZ-Network)."""

    def estimates(self, outputs, labels):
        cos, sin = (p.astype(np.float64).reshape(len(p), -1)[:, 0] for p in _as_list(outputs))
        return {"back_azimuth_deg": np.degrees(np.arctan2(sin, cos)) % 360.0}


@register_head("distpt_network")
class DistanceTravelTimeHead(Head):
    """Distance and P travel time, each (value, log variance) (dist-PT Network)."""

    def estimates(self, outputs, labels):
        dist, ptt = (p.astype(np.float64) for p in _as_list(outputs))
        return {"distance_km": dist[:, 0], "distance_km_std": np.exp(0.5 * dist[:, 1]),
                "p_travel_s": ptt[:, 0], "p_travel_s_std": np.exp(0.5 * ptt[:, 1])}


@register_head("ditingmotion")
class ClarityPolarityHead(Head):
    """Clarity and polarity scores, softmax at read-out (DiTingMotion); Z and its first difference in."""

    differences = True

    def estimates(self, outputs, labels):
        polarity = _as_list(outputs)[1]
        return {"polarity_up": _softmax(polarity)[:, 0]}
