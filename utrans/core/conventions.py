"""What a model expects of its input and what its outputs mean.

Every utrans model carries a :class:`Conventions` record: the sampling rate
and component order of the data it was trained on, its window length, the
input normalisation, the names of its outputs and, for pickers and detectors,
its default thresholds. The record lives in the model's config (so it
round-trips through ``.keras`` files) and is what the model's
:class:`utrans.pipeline.Pipeline` applies, for training, testing, annotate,
characterise and export alike: nothing re-derives it from a registry name.

Each model class states the conventions of a freshly built model
(``default_conventions``); a preset (:mod:`utrans.core.presets`) states those of
its training data (the DiTing checkpoints of SeisT: 50 Hz), and any of them
can be overridden as constructor keywords::

    model = get_model("seist_m_dpk", sampling_rate=50.0)
    model.conventions.sampling_rate          # 50.0
    model.get_config()["sampling_rate"]      # 50.0

Fields:

* ``sampling_rate``: Hz.
* ``component_order``: the input channels in order, e.g. ``"ENZ"`` (U-Trans)
  or ``"ZNE"`` (SeisT and the baselines); ``"Z"`` for a vertical-only model.
* ``in_samples``: window length in samples.
* ``normalization``: ``"std"`` (per window and channel: subtract the mean,
  divide by the population standard deviation; a flat channel stays 0),
  ``"max"`` (divide by the maximum absolute value after demeaning),
  ``"none"``, or SeisBench's own rules for its weight files
  (``"seisbench_std"``, ``"seisbench_std_all"``, ``"seisbench_peak"``, see
  :mod:`utrans.processing.normalize`).
* ``taper_samples``: after normalisation, the first and last
  ``taper_samples`` samples of a window are multiplied by a cosine ramp
  (0: none; SeisBench's EQTransformer: 6).
* ``labels``: names of the output channels or values, e.g.
  ``("det", "P", "S")``, ``("N", "P", "S")``, ``("U", "D")``.
* ``thresholds``: default decision thresholds per label (pickers and
  detectors), e.g. ``{"det": 0.5, "P": 0.3, "S": 0.3}``.
* ``min_peak_distance_s``: minimum time between two picks of one phase.
* ``pick_rule``: ``"peaks"`` (every peak above the threshold, SeisT),
  ``"highest"`` (the single highest peak of a window, U-Trans) or
  ``"regions"`` (SeisBench's ``classify``: a trigger turns on where the curve
  reaches the threshold and off after the last sample at or above half of
  it; one pick per triggered region, at its maximum).
* ``p_position_ratio``: for models that take a window around the P arrival
  (polarity, magnitude, ...), where P sits as a fraction of the window;
  ``None`` for models that scan the whole window.
* ``head``: the kind of output the model has (``"utrans"``,
  ``"detection_picking"``, ``"phasenet"``, ``"magnet"``, ...): how the
  pipeline reads its outputs (:mod:`utrans.pipeline.heads`) and how it is
  trained (:mod:`utrans.objectives`). Configs written before it was named
  ``head`` say ``adapter``; both are read.
* ``overlap``, ``stacking``, ``blinding``: how the model's own tool annotates
  a continuous record, for models that come with such defaults (SeisBench's;
  ``None`` elsewhere: the annotator's defaults apply). ``overlap``: a
  fraction of the window in ``[0, 1)`` or a number of samples; ``stacking``:
  ``"avg"`` or ``"max"``; ``blinding``: ``(start, end)`` samples of every
  window's output that are discarded (SeisBench PhaseNet: 1500, ``"avg"``,
  ``(0, 0)``; EQTransformer: 3000, ``"max"``, ``(500, 500)``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers

__all__ = ["CONVENTION_KEYS", "Conventions", "LEGACY_KEYS", "pop_conventions"]

_NORMALIZATIONS = ("std", "max", "none", "seisbench_std", "seisbench_std_all", "seisbench_peak")
_PICK_RULES = ("peaks", "highest", "regions")
_STACKINGS = ("avg", "max")


def _whole(value):
    """Whether ``value`` is a finite real number without a fractional part."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value) and int(value) == value)


@dataclasses.dataclass(frozen=True)
class Conventions:
    """The input conventions and output meaning of a model (see the module doc).

    Args:
        sampling_rate: Hz.
        component_order: channels in input order (``"ZNE"``, ``"ENZ"``, ``"Z"``).
        in_samples: window length in samples (``None``: any length).
        normalization: one of the normalisations of the module doc.
        labels: output names.
        thresholds: label -> default threshold.
        min_peak_distance_s: minimum pick separation in seconds (pickers).
        pick_rule: ``"peaks"``, ``"highest"`` or ``"regions"`` (pickers).
        p_position_ratio: P position in the window as a fraction, or ``None``.
        head: the kind of output head (module doc).
        taper_samples: cosine taper length at each window end (0: none).
        overlap: annotate overlap (fraction in ``[0, 1)`` or samples), or ``None``.
        stacking: annotate stacking (``"avg"``, ``"max"``), or ``None``.
        blinding: ``(start, end)`` samples discarded of every window's output
            when annotating, or ``None``.
    """

    sampling_rate: float = 100.0
    component_order: str = "ZNE"
    in_samples: int | None = None
    normalization: str = "std"
    labels: tuple = ()
    thresholds: tuple = ()
    min_peak_distance_s: float | None = None
    pick_rule: str = "peaks"
    p_position_ratio: float | None = None
    head: str = "utrans"
    taper_samples: int = 0
    overlap: float | int | None = None
    stacking: str | None = None
    blinding: tuple | None = None

    def __post_init__(self):
        # Normalise types so configs read back from JSON compare equal.
        set_ = object.__setattr__
        set_(self, "sampling_rate", float(self.sampling_rate))
        if not (math.isfinite(self.sampling_rate) and self.sampling_rate > 0):
            raise ValueError(f"sampling_rate must be a positive number of Hz. "
                             f"Received: sampling_rate={self.sampling_rate}")
        order = str(self.component_order).upper()
        if not order or len(set(order)) != len(order):
            raise ValueError("component_order must name each component once, e.g. 'ZNE'. "
                             f"Received: component_order={self.component_order!r}")
        set_(self, "component_order", order)
        if self.in_samples is not None:
            if int(self.in_samples) != self.in_samples or int(self.in_samples) < 1:
                raise ValueError(f"in_samples must be a positive integer or None. "
                                 f"Received: in_samples={self.in_samples!r}")
            set_(self, "in_samples", int(self.in_samples))
        if self.normalization not in _NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {_NORMALIZATIONS}. "
                             f"Received: normalization={self.normalization!r}")
        set_(self, "labels", tuple(str(v) for v in self.labels))
        items = self.thresholds.items() if isinstance(self.thresholds, dict) else self.thresholds
        thresholds = tuple(sorted((str(k), float(v)) for k, v in items))
        for k, v in thresholds:
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"thresholds must lie in [0, 1]. Received: {k}={v}")
        set_(self, "thresholds", thresholds)
        if self.min_peak_distance_s is not None:
            set_(self, "min_peak_distance_s", float(self.min_peak_distance_s))
        if self.pick_rule not in _PICK_RULES:
            raise ValueError(f"pick_rule must be one of {_PICK_RULES}. "
                             f"Received: pick_rule={self.pick_rule!r}")
        if self.p_position_ratio is not None:
            ratio = float(self.p_position_ratio)
            if not 0.0 <= ratio <= 1.0:
                raise ValueError(f"p_position_ratio must lie in [0, 1] or be None. "
                                 f"Received: p_position_ratio={self.p_position_ratio}")
            set_(self, "p_position_ratio", ratio)
        if not _whole(self.taper_samples) or self.taper_samples < 0:
            raise ValueError(f"taper_samples must be a non-negative integer. "
                             f"Received: taper_samples={self.taper_samples!r}")
        set_(self, "taper_samples", int(self.taper_samples))
        if self.overlap is not None:
            overlap = float(self.overlap) if isinstance(self.overlap, numbers.Real) else -1.0
            if not (0.0 <= overlap < 1.0 or (overlap >= 1.0 and _whole(overlap))):
                raise ValueError(f"overlap must be a fraction in [0, 1) or a whole number of "
                                 f"samples. Received: overlap={self.overlap!r}")
            set_(self, "overlap", overlap if overlap < 1.0 else int(overlap))
        if self.stacking is not None and self.stacking not in _STACKINGS:
            raise ValueError(f"stacking must be one of {_STACKINGS} or None. "
                             f"Received: stacking={self.stacking!r}")
        if self.blinding is not None:
            pair = tuple(self.blinding) if isinstance(self.blinding, (list, tuple)) else ()
            if len(pair) != 2 or not all(_whole(v) and v >= 0 for v in pair):
                raise ValueError(f"blinding must be two non-negative sample counts (start, end) "
                                 f"or None. Received: blinding={self.blinding!r}")
            set_(self, "blinding", tuple(int(v) for v in pair))

    # ------------------------------------------------------------------ access
    @property
    def threshold(self):
        """The thresholds as a dict ``label -> value``."""
        return dict(self.thresholds)

    @property
    def window_seconds(self):
        """Window length in seconds (``None`` when the window is free)."""
        return None if self.in_samples is None else self.in_samples / self.sampling_rate

    def replace(self, **changes):
        """A copy with ``changes`` applied (``None`` values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = sorted(set(changes) - set(CONVENTION_KEYS))
        if unknown:
            raise TypeError(f"Unknown convention(s) {unknown}. Known: {', '.join(CONVENTION_KEYS)}")
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ config
    def to_config(self):
        """JSON-serialisable dict (the keys a model's ``get_config`` carries)."""
        return {
            "sampling_rate": self.sampling_rate,
            "component_order": self.component_order,
            "in_samples": self.in_samples,
            "normalization": self.normalization,
            "labels": list(self.labels),
            "thresholds": dict(self.thresholds),
            "min_peak_distance_s": self.min_peak_distance_s,
            "pick_rule": self.pick_rule,
            "p_position_ratio": self.p_position_ratio,
            "head": self.head,
            "taper_samples": self.taper_samples,
            "overlap": self.overlap,
            "stacking": self.stacking,
            "blinding": None if self.blinding is None else list(self.blinding),
        }

    @classmethod
    def from_config(cls, config):
        """Inverse of :meth:`to_config` (unknown keys raise ``TypeError``)."""
        return cls(**_renamed(dict(config)))

    def describe(self):
        """One line for logs: ``100 Hz, ZNE, 8192 samples, std, labels det/P/S``."""
        window = f"{self.in_samples} samples" if self.in_samples else "any length"
        out = (f"{self.sampling_rate:g} Hz, {self.component_order}, {window}, "
               f"{self.normalization} normalisation")
        if self.labels:
            out += f", outputs {'/'.join(self.labels)}"
        if self.thresholds:
            out += ", thresholds " + ", ".join(f"{k} {v:g}" for k, v in self.thresholds)
        return out

    def __repr__(self):
        return f"Conventions({json.dumps(self.to_config())})"


CONVENTION_KEYS = tuple(f.name for f in dataclasses.fields(Conventions))
#: Keys of configs written by earlier versions, and their names now.
LEGACY_KEYS = {"adapter": "head"}


def _renamed(config):
    """``config`` with legacy keys (:data:`LEGACY_KEYS`) renamed, in place."""
    for old, new in LEGACY_KEYS.items():
        if old in config:
            value = config.pop(old)
            config.setdefault(new, value)
    return config


def pop_conventions(kwargs, defaults, **fixed):
    """Take the convention keywords out of ``kwargs``; returns the model's conventions.

    Used by model constructors before they call ``keras.Model.__init__``:
    convention keys found in ``kwargs`` (as written by ``get_config``) override
    ``defaults``; ``fixed`` values (the model's own arguments, such as its real
    ``in_samples``) override both.

    Args:
        kwargs: the constructor's ``**kwargs`` (modified in place).
        defaults: the class's :class:`Conventions`.
        **fixed: conventions decided by the model itself.

    Returns:
        A :class:`Conventions`.
    """
    _renamed(kwargs)
    given = {k: kwargs.pop(k) for k in CONVENTION_KEYS if k in kwargs}
    given.update({k: v for k, v in fixed.items() if v is not None})
    return dataclasses.replace(defaults, **given)
