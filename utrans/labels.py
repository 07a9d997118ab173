"""Labellers: turn a trace's metadata (and picks moved by augmentation) into targets.

A labeller has two faces:

* ``labeller(meta)`` for one trace, ``meta`` a metadata dict as returned by
  :mod:`utrans.formats` (keys ``trace_p_arrival_sample``, ``source_depth_km``,
  ...), returning a numpy array;
* ``labeller.label_batch(batch, rng=None, frame=None, inputs=None)`` for a
  :class:`utrans.augment.Batch` (used by the data generator), vectorised over
  the batch and using the picks *after* augmentation (``batch.p``,
  ``batch.s``, second-event ``batch.p2``...). ``frame`` says where the model's
  windows lie in the records (:class:`utrans.pipeline.Frame`): targets tied
  to samples are built in the model's window; ``inputs`` are the model inputs
  the pipeline made (the reconstruction labeller masks them).

Pick and detection curves come in two recipes: the U-Trans one
(:func:`pick_curve`, :class:`PickLabeller`, :class:`DetectionPickLabeller`:
the data layer's labels at 100 Hz, used as they are by the U-Trans pickers)
and SeisT's (:class:`SeisTLabeller`: soft labels built at a model's own rate
and window from the pick positions, as the SeisT reference trains SeisT,
PhaseNet and EQTransformer; the objectives of :mod:`utrans.objectives` use it).

``required`` lists the metadata keys every trace must have (finite numbers or
non-empty strings) and ``required_earthquake`` those needed for earthquake
traces only; the generator reports a trace lacking them as bad, naming file
and trace, instead of writing a wrong label.
"""

from __future__ import annotations

import numpy as np

from utrans.augment import Batch, FrequencyMask, TimeMask

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
    "SeisTLabeller",
    "get_labeller",
    "pair_phases",
    "pick_curve",
    "soft_label_window",
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

    def label_batch(self, batch, rng=None, frame=None, inputs=None):
        """Targets for a batch (default: stack ``__call__`` over per-trace dicts).

        Args:
            batch: :class:`utrans.augment.Batch`.
            rng: numpy Generator (used by labellers that corrupt inputs).
            frame: where the model's windows lie in the records (module doc).
            inputs: the model inputs of the batch (module doc).

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

    def label_batch(self, batch, rng=None, frame=None, inputs=None):
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

    def label_batch(self, batch, rng=None, frame=None, inputs=None):
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

    def label_batch(self, batch, rng=None, frame=None, inputs=None):
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

    def label_batch(self, batch, rng=None, frame=None, inputs=None):
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

    def label_batch(self, batch, rng=None, frame=None, inputs=None):
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

    def label_batch(self, batch, rng=None, frame=None, inputs=None):
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

    def label_batch(self, batch, rng=None, frame=None, inputs=None):
        y = np.zeros((len(batch), batch.samples, 3), dtype=np.float32)
        for i in range(len(batch)):
            if not batch.noise[i]:
                self._fill(y[i], batch.p[i], batch.s[i], batch.p2[i], batch.s2[i])
        return y

    def get_config(self):
        return {"label_type": self.label_type, "width": self.width, "coda_ratio": self.coda_ratio,
                "samples": self.samples}


#: Soft labels :class:`SeisTLabeller` knows, with SeisT's names.
SEIST_LABELS = ("det", "ppk", "spk", "non")
_SOFT_SHAPES = ("gaussian", "triangle", "box", "sigmoid")


def soft_label_window(width, shape="gaussian", sigma=10.0):
    """One SeisT soft label: its sample offsets around the pick and its values.

    The label spans ``width + 1`` samples, from ``-left`` to ``+right``
    around the pick with ``left = width // 2`` and ``right = width - left``
    (25 samples wide: offsets -12 ... +13). Shapes:

    * ``"gaussian"``: ``exp(-k^2 / (2 sigma^2))``; ``sigma`` is in samples and
      does not follow ``width`` (SeisT uses 10 whatever the width);
    * ``"triangle"``: ``1 - |2 k / width|`` (slightly negative at ``+right``
      for an odd width, as in SeisT);
    * ``"box"``: 1 on every offset;
    * ``"sigmoid"``: a logistic rise over the left offsets, 1 at the pick,
      a logistic fall over the right offsets (arguments from -5 to 5).

    Args:
        width: label width in samples (SeisT: ``int(0.5 s * sampling_rate)``).
        shape: one of the shapes above.
        sigma: Gaussian standard deviation in samples.

    Returns:
        ``(offsets, values)``: int64 and float64 arrays of ``width + 1`` entries.
    """
    width = int(width)
    if width < 0:
        raise ValueError(f"soft_label_window: width must be >= 0 samples. Received: width={width}")
    left = width // 2
    right = width - left
    k = np.arange(-left, right + 1)
    if shape == "gaussian":
        if not sigma > 0:
            raise ValueError(f"soft_label_window: sigma must be > 0 samples. Received: sigma={sigma}")
        values = np.exp(-(k.astype(np.float64) ** 2) / (2.0 * float(sigma) ** 2))
    elif shape == "triangle":
        values = 1.0 - np.abs(2.0 / max(width, 1) * k)
    elif shape == "box":
        values = np.ones(k.size)
    elif shape == "sigmoid":
        if left < 1:
            raise ValueError(f"soft_label_window: a sigmoid label needs width >= 2. Received: width={width}")
        rise = np.arange(-(left // 2), left - left // 2) * (-10.0 / left)
        fall = np.arange(-(right // 2), right - right // 2) * (10.0 / right)
        values = np.concatenate([1.0 / (1.0 + np.exp(rise)), [1.0], 1.0 / (1.0 + np.exp(fall))])
    else:
        raise ValueError(f"label_shape must be one of {_SOFT_SHAPES}. Received: {shape!r}")
    return k.astype(np.int64), values


def _add_soft_labels(curve, picks, window):
    """Add one soft label per integer pick to ``curve`` (in place), cut at the curve's edges.

    A pick outside ``[0, len(curve))`` adds nothing, even when part of its
    label would fall inside; the others keep their alignment (not re-centred).
    """
    offsets, values = window
    n = curve.shape[0]
    for idx in picks:
        if not 0 <= idx < n:
            continue
        pos = idx + offsets
        keep = (pos >= 0) & (pos < n)
        curve[pos[keep]] += values[keep]
    return curve


def pair_phases(p_picks, s_picks, pad, length):
    """Pair P and S picks of a window into events, padding the unmatched ones (SeisT rule).

    The picks are sorted; the largest ``n`` is found such that the first ``n``
    P picks each precede the matching one of the last ``n`` S picks. S picks
    left without a P (their P lies before the window) get ``P = -pad``; P picks
    left without an S (beyond the window) get ``S = length + pad``.

    Args:
        p_picks, s_picks: sample indices inside the window.
        pad: padding distance in samples (SeisT: the label width).
        length: window length in samples.

    Returns:
        list of ``(P, S)`` integer pairs.
    """
    p, s = sorted(int(v) for v in p_picks), sorted(int(v) for v in s_picks)
    n = 0
    while n < min(len(p), len(s)) and all(p[i] < s[len(s) - n - 1 + i] for i in range(n + 1)):
        n += 1
    ps = [-abs(pad)] * (len(s) - n) + p
    ss = s + [length + abs(pad)] * (len(p) - n)
    return list(zip(ps, ss))


class SeisTLabeller(Labeller):
    """SeisT's soft labels (detection, P, S, noise) at a model's sampling rate and window.

    The targets the SeisT reference trains its pickers on (SeisT ``dpk``,
    EQTransformer, PhaseNet), built from the pick positions at the *model's*
    sampling rate, so that the labels are the reference's sample for sample
    whatever the data's rate:

    * picks arrive in data samples (``data_rate``) and are scaled to
      ``sampling_rate`` and rounded to the nearest sample (halves up); a pick
      outside ``[0, samples)`` is absent. A trace whose P does not precede
      its S has no label (SeisT treats it as noise); so do noise traces.
    * ``ppk`` / ``spk``: one soft label (:func:`soft_label_window`) per P / S
      pick of the window (first event and an added second one), **summed**
      where they overlap; ``non`` = ``max(1 - ppk - spk, 0)`` (PhaseNet).
    * ``det``: the picks are paired into events (:func:`pair_phases`, padding
      with the label width); per event the coda end is
      ``D = int(S + coda_ratio * (S - P))``, soft labels are put at ``P`` and
      ``D`` (one at or beyond the window end is dropped), the samples
      ``[P, D)`` (clipped to the window) are set to 1, and the sum over
      events is clipped at 1. So ``det`` rises as the left half of the label
      before ``P``, is 1 on ``[P, D]`` and falls as its right half after ``D``.

    Computed in float64, returned as float32 ``(batch, samples, len(labels))``.

    Args:
        labels: channels in order, from ``"det"``, ``"ppk"``, ``"spk"``,
            ``"non"`` (SeisT dpk and EQTransformer: ``("det", "ppk", "spk")``;
            PhaseNet: ``("non", "ppk", "spk")``).
        sampling_rate: Hz of the labels (the model's rate).
        samples: label length (the model's ``in_samples``); ``None``: the
            batch's length scaled to ``sampling_rate``.
        data_rate: Hz of the picks :meth:`label_batch` and ``__call__`` receive
            (the data layer's 100 Hz); ``None``: ``sampling_rate``.
        label_width_s: label width in seconds; ``int(label_width_s *
            sampling_rate)`` samples (SeisT ``--label-width`` 0.5: 25 samples
            at 50 Hz, a label of 26 samples).
        label_shape: ``"gaussian"`` (SeisT default), ``"triangle"``, ``"box"``
            or ``"sigmoid"``.
        sigma: standard deviation of the Gaussian in samples (SeisT: 10,
            independent of the width).
        coda_ratio: coda end as a multiple of ``S - P`` after S (SeisT
            ``--coda-ratio`` 2.0).
    """

    required_earthquake = ("trace_p_arrival_sample", "trace_s_arrival_sample")

    def __init__(self, labels=("det", "ppk", "spk"), sampling_rate=100.0, samples=None,
                 data_rate=None, label_width_s=0.5, label_shape="gaussian", sigma=10.0,
                 coda_ratio=2.0):
        labels = tuple(labels)
        unknown = [n for n in labels if n not in SEIST_LABELS]
        if unknown or not labels:
            raise ValueError(f"SeisTLabeller: labels must be taken from {SEIST_LABELS}. "
                             f"Received: labels={labels}")
        if not float(sampling_rate) > 0:
            raise ValueError(f"SeisTLabeller: sampling_rate must be > 0 Hz. "
                             f"Received: sampling_rate={sampling_rate}")
        if samples is not None and int(samples) < 1:
            raise ValueError(f"SeisTLabeller: samples must be >= 1 or None. Received: samples={samples}")
        if not float(label_width_s) >= 0:
            raise ValueError(f"SeisTLabeller: label_width_s must be >= 0. "
                             f"Received: label_width_s={label_width_s}")
        self.labels = labels
        self.sampling_rate = float(sampling_rate)
        self.samples = None if samples is None else int(samples)
        self.data_rate = self.sampling_rate if data_rate is None else float(data_rate)
        self.label_width_s = float(label_width_s)
        self.label_shape = label_shape
        self.sigma = float(sigma)
        self.coda_ratio = float(coda_ratio)
        self.output_shape = (self.samples, len(labels))
        self._window = soft_label_window(self.width, label_shape, self.sigma)

    @property
    def width(self):
        """Label width in samples: ``int(label_width_s * sampling_rate)``."""
        return int(self.label_width_s * self.sampling_rate)

    @property
    def ratio(self):
        """Label samples per data sample (``sampling_rate / data_rate``)."""
        return self.sampling_rate / self.data_rate

    def to_samples(self, picks):
        """Data-frame picks -> integer label samples (NaN stays NaN), halves rounded up."""
        scaled = np.asarray(picks, dtype=np.float64) * self.ratio
        return np.floor(scaled + 0.5)

    def _row(self, out, p, s):
        n = out.shape[0]
        for pp, ss in zip(p, s):
            if np.isfinite(pp) and np.isfinite(ss) and pp >= ss:
                return  # SeisT: a P that does not precede its S makes the trace noise
        p_in = [int(v) for v in p if np.isfinite(v) and 0 <= v < n]
        s_in = [int(v) for v in s if np.isfinite(v) and 0 <= v < n]
        cache = {}

        def bumps(picks, key):
            if key not in cache:
                cache[key] = _add_soft_labels(np.zeros(n), picks, self._window)
            return cache[key]

        for c, name in enumerate(self.labels):
            if name == "ppk":
                out[:, c] = bumps(p_in, "p")
            elif name == "spk":
                out[:, c] = bumps(s_in, "s")
            elif name == "non":
                out[:, c] = np.maximum(1.0 - bumps(p_in, "p") - bumps(s_in, "s"), 0.0)
            else:  # det
                det = np.zeros(n)
                for pp, ss in pair_phases(p_in, s_in, self.width, n):
                    end = int(ss + self.coda_ratio * (ss - pp))
                    one = _add_soft_labels(np.zeros(n), [pp, end], self._window)
                    one[min(max(pp, 0), n):min(max(end, 0), n)] = 1.0
                    det += one
                out[:, c] = np.minimum(det, 1.0)

    def from_picks(self, p, s, p2=None, s2=None, samples=None):
        """Labels from picks already in label samples.

        Args:
            p, s: ``(batch,)`` P and S samples at ``sampling_rate`` (NaN: none).
            p2, s2: picks of an added second event (NaN or ``None``: none).
            samples: label length; default :attr:`samples`.

        Returns:
            float32 ``(batch, samples, len(labels))``.
        """
        samples = self.samples if samples is None else int(samples)
        if samples is None:
            raise ValueError("SeisTLabeller.from_picks: give samples (the labeller has none). "
                             "Received: samples=None")
        p = np.atleast_1d(np.asarray(p, dtype=np.float64))
        nan = np.full(p.shape, np.nan)
        s = np.atleast_1d(np.asarray(s, dtype=np.float64))
        p2 = nan if p2 is None else np.atleast_1d(np.asarray(p2, dtype=np.float64))
        s2 = nan if s2 is None else np.atleast_1d(np.asarray(s2, dtype=np.float64))
        out = np.zeros((p.shape[0], samples, len(self.labels)), dtype=np.float64)
        for i in range(p.shape[0]):
            self._row(out[i], (p[i], p2[i]), (s[i], s2[i]))
        return out.astype(np.float32)

    def label_batch(self, batch, rng=None, frame=None, inputs=None):
        """Labels of a :class:`utrans.augment.Batch` whose picks are in record samples.

        With a ``frame`` the picks are placed in its windows (its rate and
        start, :meth:`utrans.pipeline.Frame.to_model`) and the labels have the
        frame's length; without, the picks are scaled from ``data_rate``.
        """
        noise = np.asarray(batch.noise, dtype=bool)
        to_samples = self.to_samples if frame is None else frame.to_model

        def picks(v):
            return np.where(noise, np.nan, to_samples(v))

        if frame is not None:
            samples = frame.length
        elif self.samples is not None:
            samples = self.samples
        else:
            samples = int(round(batch.samples * self.ratio))
        return self.from_picks(picks(batch.p), picks(batch.s), picks(batch.p2), picks(batch.s2),
                               samples=samples)

    def __call__(self, meta):
        if self.samples is None:
            raise ValueError("SeisTLabeller: a single trace needs samples. Received: samples=None")
        if meta.get("trace_category") == "noise":
            return self.from_picks([np.nan], [np.nan])[0]
        p, s = (self.to_samples(np.nan if meta.get(k) is None else meta[k])
                for k in ("trace_p_arrival_sample", "trace_s_arrival_sample"))
        return self.from_picks([p], [s])[0]

    def get_config(self):
        return {"labels": list(self.labels), "sampling_rate": self.sampling_rate,
                "samples": self.samples, "data_rate": self.data_rate,
                "label_width_s": self.label_width_s, "label_shape": self.label_shape,
                "sigma": self.sigma, "coda_ratio": self.coda_ratio}


class ReconstructionLabeller(Labeller):
    """Self-supervised target: the clean model inputs; the inputs are corrupted by ``corruptions``.

    ``label_batch`` returns a copy of the model inputs ``(batch, samples, 3)``
    (normalised by the pipeline) and then applies the corruptions (by default
    the U-Trans pretraining masks) to the inputs in place.

    Args:
        corruptions: list of steps; default ``[FrequencyMask(300), TimeMask(600)]``.
    """

    output_shape = (None, 3)
    uses_inputs = True

    def __init__(self, corruptions=None):
        self.corruptions = list(corruptions) if corruptions is not None else [FrequencyMask(300),
                                                                              TimeMask(600)]

    def __call__(self, meta):
        raise TypeError("ReconstructionLabeller needs the waveform: use label_batch(batch, rng, "
                        "inputs=...)")

    def label_batch(self, batch, rng=None, frame=None, inputs=None):
        if inputs is None:
            raise ValueError("ReconstructionLabeller.label_batch needs the model inputs "
                             "(inputs=...).")
        y = np.array(inputs, dtype=np.float32)
        rng = np.random.default_rng() if rng is None else rng
        masked = Batch(np.moveaxis(inputs, 1, 2), noise=batch.noise)  # a view: masks in place
        for step in self.corruptions:
            step(masked, rng)
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
