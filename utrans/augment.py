"""Small, composable, seeded augmentation steps for batches of waveforms.

Every step does one job on a :class:`Batch` in place. Batches are kept
channels-first, ``x`` of shape ``(batch, 3, samples)`` float32, so reductions
over time run over contiguous memory; the data generator transposes to the
model layout ``(batch, samples, 3)`` once at the end.

A step is called as ``step(batch, rng, rows)`` where ``rng`` is a
``numpy.random.Generator`` (the generator seeds it from seed, epoch and batch
index, so the same seed gives the same batch) and ``rows`` the row indices the
step may touch (for example the augmented half of a batch). Each step has a
``rate`` (probability per trace) and ``on`` (``'earthquake'``, ``'noise'`` or
``'all'``) selecting the traces it applies to. Random draws are made for every
row of ``rows`` whatever the outcome, so results do not depend on which other
rows were eligible.

Steps that move the event (:class:`ShiftEvent`, :class:`AddEvent`) update the
picks stored on the batch, so labels computed afterwards move with the
waveform. The semantics follow the EQTransformer / U-Trans generators:
shifting is a circular rotation by ``U(1, samples - coda_end)``; a second
event, scaled by ``1/randint(1, 10)``, is added after the coda; Gaussian noise
has a per-channel standard deviation ``U(0.01, 0.15)`` times the channel's
peak; channels are dropped at random (at least one kept) and the rest
rescaled by ``3 / channels_left``; gaps are zeroed between
``randint(0, 2/3 T)`` and ``randint(start, 11/12 T)``; the amplitude is
multiplied or divided by ``U(1, 3)``. Steps conditioned on signal quality
(``snr_min``) apply only when every channel's SNR reaches ``snr_min`` dB.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "AddEvent",
    "AddGap",
    "AddNoise",
    "Batch",
    "DropChannel",
    "FrequencyMask",
    "PreEmphasis",
    "ScaleAmplitude",
    "ShiftEvent",
    "Step",
    "TimeMask",
    "channels_last",
    "reference_steps",
]


class Batch:
    """Waveforms and the per-trace fields the steps and labellers read.

    Args:
        x: float32 ``(batch, 3, samples)`` waveforms, channels E, N, Z.
        p: float ``(batch,)`` P sample (NaN when absent).
        s: float ``(batch,)`` S sample (NaN when absent).
        coda: float ``(batch,)`` coda end sample (NaN when absent).
        snr_min: float ``(batch,)`` smallest per-channel SNR in dB (NaN when absent).
        noise: bool ``(batch,)`` True for noise traces.
        meta: dict of per-trace metadata columns (arrays of length batch) for labellers.

    Attributes:
        p2, s2: second-event picks added by :class:`AddEvent` (NaN when none).
    """

    def __init__(self, x, p=None, s=None, coda=None, snr_min=None, noise=None, meta=None):
        self.x = x
        n = x.shape[0]
        nan = np.full(n, np.nan)
        self.p = nan.copy() if p is None else np.asarray(p, dtype=np.float64).copy()
        self.s = nan.copy() if s is None else np.asarray(s, dtype=np.float64).copy()
        self.coda = nan.copy() if coda is None else np.asarray(coda, dtype=np.float64).copy()
        self.snr_min = nan.copy() if snr_min is None else np.asarray(snr_min, dtype=np.float64)
        self.noise = np.zeros(n, bool) if noise is None else np.asarray(noise, dtype=bool)
        self.p2 = nan.copy()
        self.s2 = nan.copy()
        self.meta = {} if meta is None else meta

    def __len__(self):
        return self.x.shape[0]

    @property
    def samples(self):
        return self.x.shape[-1]


def channels_last(x):
    """Copy ``(batch, 3, samples)`` to a new C-contiguous ``(batch, samples, 3)`` array.

    One strided copy per channel: several times faster than a generic
    transpose, whose innermost loop would run over only 3 values.
    """
    out = np.empty((x.shape[0], x.shape[2], x.shape[1]), dtype=x.dtype)
    for c in range(x.shape[1]):
        out[:, :, c] = x[:, c, :]
    return out


def _as_slice(rows):
    """A slice equivalent to ``rows`` when they are consecutive, else None."""
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows) and np.all(np.diff(rows) == 1):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return None


class Step:
    """Base class of a batch step.

    Args:
        rate: probability of applying the step to a trace (``None`` or 1 = always).
        on: which traces: ``'earthquake'``, ``'noise'`` or ``'all'``.
    """

    default_on = "all"

    def __init__(self, rate=1.0, on=None):
        self.rate = 1.0 if rate is None else float(rate)
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"{type(self).__name__}: rate must be in [0, 1]. Received: rate={rate}")
        self.on = on or self.default_on
        if self.on not in ("earthquake", "noise", "all"):
            raise ValueError(f"{type(self).__name__}: on must be 'earthquake', 'noise' or 'all'. "
                             f"Received: on={on!r}")

    def _eligible(self, batch, rows):
        rows = np.arange(len(batch)) if rows is None else np.asarray(rows, dtype=np.intp)
        if self.on == "earthquake":
            return rows[~batch.noise[rows]]
        if self.on == "noise":
            return rows[batch.noise[rows]]
        return rows

    def __call__(self, batch, rng, rows=None):
        self.apply(batch, rng, self._eligible(batch, rows))
        return batch

    def apply(self, batch, rng, rows):
        raise NotImplementedError

    def get_config(self):
        return {"rate": self.rate, "on": self.on}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class ShiftEvent(Step):
    """Rotate the trace circularly so the event moves; picks move with it.

    The shift is ``int(U(1, samples - coda_end))``; it is kept only when P and S
    stay inside the window (as in the reference generators).
    """

    default_on = "earthquake"

    def apply(self, batch, rng, rows):
        T = batch.samples
        u = rng.random(len(rows))
        v = rng.random(len(rows))
        for r, ur, vr in zip(rows, u, v):
            coda, p, s = batch.coda[r], batch.p[r], batch.s[r]
            if ur >= self.rate or not (np.isfinite(coda) and np.isfinite(p) and np.isfinite(s)):
                continue
            if not (0 <= p < T and 0 <= s < T and coda >= 0):
                continue  # picks outside the trace: nothing sensible to shift
            hi = int(T - coda)
            if hi <= 1:
                continue
            n = int(1 + vr * (hi - 1))
            if not (p + n < T and s + n < T):
                continue
            batch.x[r] = np.roll(batch.x[r], n, axis=-1)
            batch.p[r] = p + n
            batch.s[r] = s + n
            batch.coda[r] = min(coda + n, T)


class AddEvent(Step):
    """Add a scaled copy of the event after the coda; records its picks in ``p2``/``s2``.

    Args:
        rate: probability per trace.
        snr_min: apply only when every channel's SNR is at least this (dB).
    """

    default_on = "earthquake"

    def __init__(self, rate=1.0, snr_min=10.0, on=None):
        super().__init__(rate, on)
        self.snr_min = snr_min

    def apply(self, batch, rng, rows):
        T = batch.samples
        u = rng.random(len(rows))
        start_u = rng.random(len(rows))
        scale_i = rng.integers(1, 10, len(rows))
        for r, ur, su, k in zip(rows, u, start_u, scale_i):
            p, s, coda = batch.p[r], batch.s[r], batch.coda[r]
            if ur >= self.rate or not (np.isfinite(p) and np.isfinite(s) and np.isfinite(coda)):
                continue
            if self.snr_min is not None and not batch.snr_min[r] >= self.snr_min:
                continue
            if not (0 <= p < s < T and coda >= 0):
                continue  # picks outside the trace or S before P: no event to copy
            p, s, coda = int(p), int(s), int(coda)
            sp = s - p
            if T - sp - 21 - coda <= 20:
                continue
            start = int(coda + su * (T - sp - 21 - coda))
            space = T - start
            if p + space > T:
                continue  # coda before P: the copy would run past the trace end
            batch.x[r, :, start:] += batch.x[r, :, p:p + space] * np.float32(1.0 / k)
            batch.p2[r] = start
            batch.s2[r] = start + sp

    def get_config(self):
        return {"rate": self.rate, "snr_min": self.snr_min, "on": self.on}


class AddNoise(Step):
    """Add Gaussian noise; per-channel std is ``U(low, high)`` times the channel's peak |x|.

    Args:
        rate: probability per trace.
        snr_min: apply only when every channel's SNR is at least this (dB).
        level: ``(low, high)`` fraction of the channel peak.
    """

    default_on = "earthquake"

    def __init__(self, rate=1.0, snr_min=10.0, level=(0.01, 0.15), on=None):
        super().__init__(rate, on)
        self.snr_min = snr_min
        self.level = tuple(level)

    def apply(self, batch, rng, rows):
        u = rng.random(len(rows))
        lv = rng.uniform(self.level[0], self.level[1], (len(rows), 3))
        ok = u < self.rate
        if self.snr_min is not None:
            ok &= batch.snr_min[rows] >= self.snr_min
        sel = rows[ok]
        if len(sel) == 0:
            return
        noise = rng.standard_normal((len(sel),) + batch.x.shape[1:], dtype=np.float32)
        for j, (r, level) in enumerate(zip(sel, lv[ok])):
            xr = batch.x[r]
            peak = np.maximum(xr.max(axis=-1), -xr.min(axis=-1))
            noise[j] *= (level * peak).astype(np.float32)[:, None]
            xr += noise[j]

    def get_config(self):
        return {"rate": self.rate, "snr_min": self.snr_min, "level": self.level, "on": self.on}


class DropChannel(Step):
    """Zero one or two random channels, then rescale by ``3 / channels_left``.

    Args:
        rate: probability per trace.
        snr_min: for earthquake traces, apply only when every channel's SNR is
            at least this (dB); noise traces are not conditioned.
        adjust_amplitude: rescale the remaining channels (reference behaviour:
            applied to every eligible trace, dropped or not).
    """

    def __init__(self, rate=1.0, snr_min=10.0, adjust_amplitude=True, on=None):
        super().__init__(rate, on)
        self.snr_min = snr_min
        self.adjust_amplitude = adjust_amplitude

    def apply(self, batch, rng, rows):
        u = rng.random(len(rows))
        keep = rng.integers(0, 2, (len(rows), 3)).astype(bool)
        ok = (u < self.rate) & keep.any(axis=1)
        if self.snr_min is not None:
            ok &= batch.noise[rows] | (batch.snr_min[rows] >= self.snr_min)
        for r, k in zip(rows[ok], keep[ok]):
            batch.x[r, ~k, :] = 0.0
        if self.adjust_amplitude:
            adj = rows[~batch.noise[rows]]
            if len(adj):
                view = _as_slice(adj)
                x = batch.x[view] if view is not None else batch.x[adj]
                alive = (x.max(axis=-1) != 0) | (x.min(axis=-1) != 0)
                n_alive = alive.sum(axis=1)
                fac = np.where(n_alive > 0, 3.0 / np.maximum(n_alive, 1), 1.0).astype(np.float32)
                for r, f in zip(adj[fac != 1.0], fac[fac != 1.0]):
                    batch.x[r] *= f

    def get_config(self):
        return {"rate": self.rate, "snr_min": self.snr_min,
                "adjust_amplitude": self.adjust_amplitude, "on": self.on}


class AddGap(Step):
    """Zero an interval ``[randint(0, start_max), randint(start, end_max))`` (fractions of the trace)."""

    default_on = "noise"

    def __init__(self, rate=1.0, start_max=4000 / 6000, end_max=5500 / 6000, on=None):
        super().__init__(rate, on)
        self.start_max = start_max
        self.end_max = end_max

    def apply(self, batch, rng, rows):
        T = batch.samples
        u = rng.random(len(rows))
        a = rng.random(len(rows))
        b = rng.random(len(rows))
        smax, emax = int(self.start_max * T), int(self.end_max * T)
        for r, ur, ar, br in zip(rows, u, a, b):
            if ur >= self.rate:
                continue
            g0 = int(ar * smax)
            g1 = int(g0 + br * max(emax - g0, 0))
            batch.x[r, :, g0:g1] = 0.0

    def get_config(self):
        return {"rate": self.rate, "start_max": self.start_max, "end_max": self.end_max, "on": self.on}


class ScaleAmplitude(Step):
    """Multiply (probability ``rate``) or divide (another ``rate``) by ``U(low, high)``."""

    default_on = "earthquake"

    def __init__(self, rate=1.0, low=1.0, high=3.0, on=None):
        super().__init__(rate, on)
        self.low, self.high = low, high

    def apply(self, batch, rng, rows):
        u = rng.random(len(rows))
        f = rng.uniform(self.low, self.high, len(rows))
        fac = np.ones(len(rows))
        up = u < self.rate
        down = ~up & (u < 2 * self.rate)
        fac[up] = f[up]
        fac[down] = 1.0 / f[down]
        ch = fac != 1.0
        if ch.any():
            sel = rows[ch]
            batch.x[sel] = batch.x[sel] * fac[ch, None, None].astype(np.float32)

    def get_config(self):
        return {"rate": self.rate, "low": self.low, "high": self.high, "on": self.on}


class PreEmphasis(Step):
    """First-order pre-emphasis ``y[t] = x[t] - coef * x[t-1]`` (``y[0] = x[0]``)."""

    default_on = "earthquake"

    def __init__(self, coef=0.97, on=None):
        super().__init__(1.0, on)
        self.coef = coef

    def apply(self, batch, rng, rows):
        if len(rows) == 0:
            return
        view = _as_slice(rows)
        x = batch.x[view] if view is not None else batch.x[rows]
        x[..., 1:] -= np.float32(self.coef) * x[..., :-1]
        if view is None:
            batch.x[rows] = x

    def get_config(self):
        return {"coef": self.coef, "on": self.on}


class FrequencyMask(Step):
    """Zero ``randint(1, max_bins)`` random frequency bins of each trace (all channels).

    The U-Trans pretraining corruption. Bins are drawn among the
    ``samples // 2`` lowest non-negative frequencies; the inverse real FFT keeps
    the trace real.
    """

    def __init__(self, max_bins=300, on=None):
        super().__init__(1.0, on)
        self.max_bins = int(max_bins)

    def apply(self, batch, rng, rows):
        if len(rows) == 0:
            return
        T = batch.samples
        x = batch.x[rows]
        spec = np.fft.rfft(x, axis=-1)
        nb = T // 2
        m = rng.integers(1, self.max_bins, len(rows))
        for i, mi in enumerate(m):
            spec[i, :, rng.choice(nb, size=int(mi), replace=False)] = 0.0
        batch.x[rows] = np.fft.irfft(spec, n=T, axis=-1).astype(np.float32)

    def get_config(self):
        return {"max_bins": self.max_bins, "on": self.on}


class TimeMask(Step):
    """Zero ``randint(1, max_samples)`` random samples of each trace (all channels)."""

    def __init__(self, max_samples=600, on=None):
        super().__init__(1.0, on)
        self.max_samples = int(max_samples)

    def apply(self, batch, rng, rows):
        T = batch.samples
        m = rng.integers(1, self.max_samples, len(rows))
        for r, mi in zip(rows, m):
            batch.x[r, :, rng.choice(T, size=int(mi), replace=False)] = 0.0

    def get_config(self):
        return {"max_samples": self.max_samples, "on": self.on}


def reference_steps(add_event_r=None, add_gap_r=None, shift_event_r=None, add_noise_r=None,
                    drop_channel_r=None, scale_amplitude_r=None, pre_emphasis=False):
    """The two step lists of the U-Trans / EQTransformer generators.

    Normalisation is not a step: the model's pipeline normalises every
    window, augmented or not (:mod:`utrans.processing.normalize`).

    Args:
        add_event_r, add_gap_r, shift_event_r, add_noise_r, drop_channel_r,
            scale_amplitude_r: rates (``None`` or 0 disables the step).
        pre_emphasis: apply pre-emphasis to augmented earthquakes.

    Returns:
        ``(clean_steps, augment_steps)``: the clean steps shift at half the
        rate; the augmented ones shift, add an event, add noise, drop
        channels, scale, pre-emphasise (earthquakes) and add gaps (noise).
    """
    clean, aug = [], []
    if shift_event_r:
        clean.append(ShiftEvent(shift_event_r / 2))
        aug.append(ShiftEvent(shift_event_r))
    if add_event_r:
        aug.append(AddEvent(add_event_r))
    if add_noise_r:
        aug.append(AddNoise(add_noise_r))
    if drop_channel_r:
        aug.append(DropChannel(drop_channel_r, on="all"))
    if scale_amplitude_r:
        aug.append(ScaleAmplitude(scale_amplitude_r))
    if pre_emphasis:
        aug.append(PreEmphasis())
    if add_gap_r:
        aug.append(AddGap(add_gap_r, on="noise"))
    return clean, aug
