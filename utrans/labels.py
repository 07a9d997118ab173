"""Labellers: turn a trace's metadata (and picks moved by augmentation) into targets.

A labeller has two faces:

* ``labeller(meta)`` for one trace, ``meta`` a metadata dict as returned by
  :mod:`utrans.formats` (keys ``trace_p_arrival_sample``, ``source_depth_km``,
  ...), returning a numpy array;
* ``labeller.label_batch(batch, rng=None)`` for a :class:`utrans.augment.Batch`
  (used by the data generator), vectorised over the batch and using the picks
  *after* augmentation (``batch.p``, ``batch.s``, second-event ``batch.p2``...).

``required`` lists the metadata keys every trace must have (finite numbers or
non-empty strings) and ``required_earthquake`` those needed for earthquake
traces only; the generator reports a trace lacking them as bad, naming file
and trace, instead of writing a wrong label.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BackAzimuthLabeller",
    "DetectionPickLabeller",
    "DistanceLabeller",
    "Labeller",
    "LocationLabeller",
    "MagnitudeLabeller",
    "PickLabeller",
    "PolarityLabeller",
    "ReconstructionLabeller",
    "get_labeller",
    "pick_curve",
]


class Labeller:
    """Base class. Subclasses implement ``__call__`` and/or ``label_batch``.

    Attributes:
        required: metadata keys every trace needs.
        required_earthquake: metadata keys earthquake traces need.
        output_shape: shape of one target, ``None`` entries meaning ``samples``.
    """

    required = ()
    required_earthquake = ()
    output_shape = ()

    def __call__(self, meta):
        raise NotImplementedError

    def label_batch(self, batch, rng=None):
        """Targets for a batch (default: stack ``__call__`` over per-trace dicts).

        Args:
            batch: :class:`utrans.augment.Batch`.
            rng: numpy Generator (used by labellers that corrupt inputs).

        Returns:
            float32 array, first axis the batch.
        """
        rows = []
        for i in range(len(batch)):
            meta = {k: v[i] for k, v in batch.meta.items()}
            meta.update(trace_p_arrival_sample=batch.p[i], trace_s_arrival_sample=batch.s[i],
                        trace_coda_end_sample=batch.coda[i])
            rows.append(self(meta))
        return np.stack(rows).astype(np.float32)

    def get_config(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class LocationLabeller(Labeller):
    """Location target of the U-Trans ConvMixer example.

    ``(station_lat - event_lat, station_lon - event_lon, (depth - min_d) / (max_d - min_d))``
    with negative depths clipped to 0 first.

    Args:
        max_d: depth (km) mapped to 1 (California: 114.5).
        min_d: depth (km) mapped to 0 (California: 1e-5).
    """

    required = ("station_latitude_deg", "station_longitude_deg", "source_latitude_deg",
                "source_longitude_deg", "source_depth_km")
    output_shape = (3,)

    def __init__(self, max_d=114.5, min_d=1e-5):
        if not max_d > min_d:
            raise ValueError(f"LocationLabeller: max_d must exceed min_d. Received: max_d={max_d}, min_d={min_d}")
        self.max_d = float(max_d)
        self.min_d = float(min_d)

    def _target(self, st_lat, st_lon, ev_lat, ev_lon, depth):
        depth = np.maximum(np.asarray(depth, dtype=np.float64), 0.0)
        return np.stack([np.asarray(st_lat, dtype=np.float64) - ev_lat,
                         np.asarray(st_lon, dtype=np.float64) - ev_lon,
                         (depth - self.min_d) / (self.max_d - self.min_d)], axis=-1)

    def __call__(self, meta):
        """Target ``(dlat, dlon, depth_norm)`` for one trace's metadata dict."""
        return self._target(meta["station_latitude_deg"], meta["station_longitude_deg"],
                            meta["source_latitude_deg"], meta["source_longitude_deg"],
                            meta["source_depth_km"]).astype(np.float32)

    def label_batch(self, batch, rng=None):
        m = batch.meta
        return self._target(m["station_latitude_deg"], m["station_longitude_deg"],
                            m["source_latitude_deg"], m["source_longitude_deg"],
                            m["source_depth_km"]).astype(np.float32)

    def normalize_depth(self, depth_km):
        """``(max(depth, 0) - min_d) / (max_d - min_d)``."""
        return (np.maximum(np.asarray(depth_km, dtype=np.float64), 0.0) - self.min_d) / (self.max_d - self.min_d)

    def denormalize_depth(self, depth_norm):
        """Inverse of :meth:`normalize_depth` (for non-negative depths)."""
        return np.asarray(depth_norm, dtype=np.float64) * (self.max_d - self.min_d) + self.min_d

    def inverse(self, pred, station_lat, station_lon):
        """Turn predictions back into event coordinates.

        Args:
            pred: ``(..., 3)`` array of ``(dlat, dlon, depth_norm)``.
            station_lat: station latitude(s), broadcastable to ``pred[..., 0]``.
            station_lon: station longitude(s).

        Returns:
            ``(event_lat, event_lon, depth_km)`` arrays.
        """
        pred = np.asarray(pred, dtype=np.float64)
        if pred.shape[-1] != 3:
            raise ValueError(f"LocationLabeller.inverse: pred must end with 3 values. Received: shape={pred.shape}")
        ev_lat = np.asarray(station_lat, dtype=np.float64) - pred[..., 0]
        ev_lon = np.asarray(station_lon, dtype=np.float64) - pred[..., 1]
        return ev_lat, ev_lon, self.denormalize_depth(pred[..., 2])

    def get_config(self):
        return {"max_d": self.max_d, "min_d": self.min_d}


class _ScalarLabeller(Labeller):
    key = None
    output_shape = (1,)

    def __call__(self, meta):
        return np.array([meta[self.key]], dtype=np.float32)

    def label_batch(self, batch, rng=None):
        return np.asarray(batch.meta[self.key], dtype=np.float32)[:, None]


class MagnitudeLabeller(_ScalarLabeller):
    """Magnitude target ``(1,)`` from ``source_magnitude``."""

    key = "source_magnitude"
    required = ("source_magnitude",)


class DistanceLabeller(_ScalarLabeller):
    """Epicentral distance target ``(1,)`` in km divided by ``scale``.

    Args:
        scale: divide the distance (km) by this (1 keeps km).
    """

    key = "path_ep_distance_km"
    required = ("path_ep_distance_km",)

    def __init__(self, scale=1.0):
        self.scale = float(scale)

    def __call__(self, meta):
        return np.array([meta[self.key] / self.scale], dtype=np.float32)

    def label_batch(self, batch, rng=None):
        return (np.asarray(batch.meta[self.key], dtype=np.float64) / self.scale).astype(np.float32)[:, None]

    def get_config(self):
        return {"scale": self.scale}


class BackAzimuthLabeller(Labeller):
    """Back-azimuth target ``(cos, sin)`` of ``path_back_azimuth_deg``; :meth:`inverse` gives degrees."""

    required = ("path_back_azimuth_deg",)
    output_shape = (2,)

    def __call__(self, meta):
        a = np.radians(float(meta["path_back_azimuth_deg"]))
        return np.array([np.cos(a), np.sin(a)], dtype=np.float32)

    def label_batch(self, batch, rng=None):
        a = np.radians(np.asarray(batch.meta["path_back_azimuth_deg"], dtype=np.float64))
        return np.stack([np.cos(a), np.sin(a)], axis=-1).astype(np.float32)

    @staticmethod
    def inverse(pred):
        """Degrees in [0, 360) from ``(..., 2)`` (cos, sin) predictions."""
        pred = np.asarray(pred, dtype=np.float64)
        return np.degrees(np.arctan2(pred[..., 1], pred[..., 0])) % 360.0


class PolarityLabeller(Labeller):
    """P first-motion polarity: 1 for ``'positive'`` (U), 0 for ``'negative'`` (D), shape ``(1,)``."""

    required = ("trace_p_polarity",)
    output_shape = (1,)

    def __call__(self, meta):
        pol = meta["trace_p_polarity"]
        if pol not in ("positive", "negative"):
            raise ValueError(f"PolarityLabeller: polarity must be 'positive' or 'negative'. Received: {pol!r}")
        return np.array([1.0 if pol == "positive" else 0.0], dtype=np.float32)

    def label_batch(self, batch, rng=None):
        pol = np.asarray(batch.meta["trace_p_polarity"], dtype=object)
        return (pol == "positive").astype(np.float32)[:, None]


def pick_curve(samples, pick, label_type="gaussian", width=40, out=None):
    """A pick probability curve of ``samples`` values peaking at 1 on ``pick``.

    Args:
        samples: length of the curve.
        pick: sample index (float; NaN or outside ``[0, samples)`` gives zeros).
        label_type: ``'gaussian'`` (sigma ``width/4``, cut at ``width/2``),
            ``'triangle'`` (0 at ``pick +- width/2``) or ``'box'`` (1 within
            ``pick +- width/2``).
        width: full window in samples (the reference ``phase_window`` = 40).
        out: optional float array to write into (maximum with what is there).

    Returns:
        the curve (``out`` when given).
    """
    if out is None:
        out = np.zeros(samples, dtype=np.float32)
    if pick is None or not np.isfinite(pick) or not 0 <= pick < samples:
        return out
    half = width // 2
    c = int(round(float(pick)))
    lo, hi = max(c - half, 0), min(c + half + 1, samples)
    d = np.arange(lo, hi) - c
    if label_type == "gaussian":
        v = np.exp(-(d.astype(np.float64) ** 2) / (2.0 * (width / 4.0) ** 2))
    elif label_type == "triangle":
        v = 1.0 - np.abs(d) / float(half)
    elif label_type == "box":
        v = np.ones(len(d))
    else:
        raise ValueError(f"label_type must be 'gaussian', 'triangle' or 'box'. Received: {label_type!r}")
    np.maximum(out[lo:hi], v.astype(out.dtype), out=out[lo:hi])
    return out


class PickLabeller(Labeller):
    """A phase pick curve ``(samples, 1)`` for P or S, including an added second event.

    Args:
        phase: ``'P'`` or ``'S'``.
        label_type: ``'gaussian'``, ``'triangle'`` or ``'box'``.
        width: window in samples (reference ``phase_window`` 40).
        samples: curve length for ``__call__`` (the generator uses its ``dim``).
    """

    output_shape = (None, 1)

    def __init__(self, phase="P", label_type="gaussian", width=40, samples=6000):
        phase = phase.upper()
        if phase not in ("P", "S"):
            raise ValueError(f"PickLabeller: phase must be 'P' or 'S'. Received: phase={phase!r}")
        self.phase = phase
        self.label_type = label_type
        self.width = int(width)
        self.samples = int(samples)
        key = "trace_p_arrival_sample" if phase == "P" else "trace_s_arrival_sample"
        self.required_earthquake = (key,)
        self._key = key

    def __call__(self, meta):
        y = pick_curve(self.samples, meta.get(self._key), self.label_type, self.width)
        return y[:, None]

    def label_batch(self, batch, rng=None):
        T = batch.samples
        y = np.zeros((len(batch), T, 1), dtype=np.float32)
        first, second = (batch.p, batch.p2) if self.phase == "P" else (batch.s, batch.s2)
        for i in range(len(batch)):
            if batch.noise[i]:
                continue
            pick_curve(T, first[i], self.label_type, self.width, out=y[i, :, 0])
            pick_curve(T, second[i], self.label_type, self.width, out=y[i, :, 0])
        return y

    def get_config(self):
        return {"phase": self.phase, "label_type": self.label_type, "width": self.width,
                "samples": self.samples}


class DetectionPickLabeller(Labeller):
    """Detection + P + S targets ``(samples, 3)`` (channels: detection, P, S).

    The detection window runs from P to ``S + coda_ratio * (S - P)`` (EQTransformer),
    for the event and an added second event.

    Args:
        label_type: pick curve type.
        width: pick window in samples.
        coda_ratio: fraction of S-P added after S.
        samples: length for ``__call__``.
    """

    required_earthquake = ("trace_p_arrival_sample", "trace_s_arrival_sample")
    output_shape = (None, 3)

    def __init__(self, label_type="gaussian", width=40, coda_ratio=0.4, samples=6000):
        self.label_type = label_type
        self.width = int(width)
        self.coda_ratio = float(coda_ratio)
        self.samples = int(samples)

    def _fill(self, y, p, s, p2=np.nan, s2=np.nan):
        T = y.shape[0]
        for pp, ss in ((p, s), (p2, s2)):
            if np.isfinite(pp) and np.isfinite(ss):
                end = int(ss + self.coda_ratio * (ss - pp))
                y[max(int(pp), 0):min(max(end, 0), T), 0] = 1.0
            pick_curve(T, pp, self.label_type, self.width, out=y[:, 1])
            pick_curve(T, ss, self.label_type, self.width, out=y[:, 2])

    def __call__(self, meta):
        y = np.zeros((self.samples, 3), dtype=np.float32)
        if meta.get("trace_category") != "noise":
            self._fill(y, meta["trace_p_arrival_sample"], meta["trace_s_arrival_sample"])
        return y

    def label_batch(self, batch, rng=None):
        y = np.zeros((len(batch), batch.samples, 3), dtype=np.float32)
        for i in range(len(batch)):
            if not batch.noise[i]:
                self._fill(y[i], batch.p[i], batch.s[i], batch.p2[i], batch.s2[i])
        return y

    def get_config(self):
        return {"label_type": self.label_type, "width": self.width, "coda_ratio": self.coda_ratio,
                "samples": self.samples}


class ReconstructionLabeller(Labeller):
    """Self-supervised target: the clean trace; the input is corrupted by ``corruptions``.

    ``label_batch`` returns the clean waveforms ``(batch, samples, 3)`` and then
    applies the corruptions (by default the U-Trans pretraining masks) to
    ``batch.x`` in place.

    Args:
        corruptions: list of steps; default ``[FrequencyMask(300), TimeMask(600)]``.
    """

    output_shape = (None, 3)
    uses_waveform = True

    def __init__(self, corruptions=None):
        from utrans.augment import FrequencyMask, TimeMask

        self.corruptions = list(corruptions) if corruptions is not None else [FrequencyMask(300), TimeMask(600)]

    def __call__(self, meta):
        raise TypeError("ReconstructionLabeller needs the waveform: use label_batch(batch, rng)")

    def label_batch(self, batch, rng=None):
        from utrans.augment import channels_last

        y = channels_last(batch.x)
        rng = np.random.default_rng() if rng is None else rng
        for step in self.corruptions:
            step(batch, rng)
        return y

    def get_config(self):
        return {"corruptions": [repr(c) for c in self.corruptions]}


def get_labeller(task, *, max_d=114.5, min_d=1e-5, label_type="gaussian", phase_window=40,
                 coda_ratio=0.4, dim=6000):
    """The labeller of a task name.

    Args:
        task: ``'location'``, ``'magnitude'``, ``'polarity'``, ``'p_pick'``,
            ``'s_pick'``, ``'dpk'``, ``'baz'``, ``'distance'`` or ``'reconstruction'``.
        max_d, min_d: depth normalisation of the location target.
        label_type, phase_window, coda_ratio: pick and detection curves.
        dim: samples per trace.

    Returns:
        a :class:`Labeller`.
    """
    if task == "location":
        return LocationLabeller(max_d=max_d, min_d=min_d)
    if task == "magnitude":
        return MagnitudeLabeller()
    if task == "polarity":
        return PolarityLabeller()
    if task == "p_pick":
        return PickLabeller("P", label_type, phase_window, dim)
    if task == "s_pick":
        return PickLabeller("S", label_type, phase_window, dim)
    if task == "dpk":
        return DetectionPickLabeller(label_type, phase_window, coda_ratio, dim)
    if task == "baz":
        return BackAzimuthLabeller()
    if task == "distance":
        return DistanceLabeller()
    if task == "reconstruction":
        return ReconstructionLabeller()
    raise ValueError("Unknown task; expected one of 'location', 'magnitude', 'polarity', 'p_pick', "
                     f"'s_pick', 'dpk', 'baz', 'distance', 'reconstruction'. Received: task={task!r}")
