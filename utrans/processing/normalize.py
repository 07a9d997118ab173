"""The one normaliser of model windows.

Every window a model sees, whatever entry point cut it (training, testing,
annotate, characterise, streaming, an exported model's runtime), is normalised
here, per window and per channel, over the samples that hold record data:

* ``"std"``: subtract the mean, divide by the population standard deviation;
* ``"max"``: subtract the mean, divide by the largest absolute value;
* ``"none"``: unchanged;
* SeisBench's rules, as its models compute them for their weight files, in
  float32 after subtracting each channel's mean: ``"seisbench_std"`` (each
  channel divided by its sample standard deviation, ``ddof=1``, plus 1e-10:
  PhaseNet ``norm="std"``), ``"seisbench_std_all"`` (the window divided by
  the sample standard deviation of all its channels together, plus 1e-10:
  EQTransformer ``norm="std"``) and ``"seisbench_peak"`` (each channel
  divided by its largest absolute value plus 1e-10: ``norm="peak"``).

:func:`taper` multiplies the ends of normalised windows by a cosine ramp
(a model's ``taper_samples``; SeisBench's EQTransformer: 6).

A flat (or absent, zero-filled) channel becomes zeros, never NaN. Samples of
the window that hold no record data (zero padding after a short record,
before its start or after its end when the window is cut around a pick) are
excluded from the mean and the scale and stay exactly zero: a short record is
normalised over its data, then padded. (The SeisT reference normalises over
the padding too, which scales a short record's amplitudes with the window
length; on ObsPy's CER record it then labels the P as S.)

Computation is in float64 unless asked otherwise, a block of windows at a
time (about 2 MB of float64), written into the float32 result; windows cut around a pick
are normalised in float32 as the SeisT reference does (its ``float32``
allocation for them), see :class:`utrans.pipeline.Pipeline`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NORMALIZATIONS", "normalize", "taper"]

#: The normalisation modes a model's conventions may name.
NORMALIZATIONS = ("std", "max", "none", "seisbench_std", "seisbench_std_all", "seisbench_peak")
_SEISBENCH_EPS = 1e-10
#: Samples (windows x samples x channels) normalised at a time (module doc).
_BLOCK_ELEMENTS = 1 << 18


def _flat(w, mask):
    """(batch, channels) mask of the channels constant over their valid samples."""
    if mask is None:
        return w.max(axis=-1) == w.min(axis=-1)
    m = mask[:, None, :]  # a view: the reductions make no array of the windows' size
    hi = np.max(w, axis=-1, where=m, initial=-np.inf)
    lo = np.min(w, axis=-1, where=m, initial=np.inf)
    return ~(hi > lo)


def _sum_of_squares(w, axis):
    """Sum of ``w * w`` over ``axis``, dimensions kept.

    In float64, ``einsum`` sums without a temporary the size of the batch; in
    float32 (the SeisBench and SeisT rules) numpy's pairwise sum keeps the
    rounding of the reference implementations.
    """
    if w.dtype != np.float64:
        return (w * w).sum(axis=axis, keepdims=True)
    if axis == -1:
        return np.einsum("bcs,bcs->bc", w, w)[..., None]
    return np.einsum("bcs,bcs->b", w, w)[:, None, None]


def normalize(windows, mode, valid=None, dtype=np.float64):
    """Normalise windows per window and channel over their valid samples.

    Args:
        windows: array ``(batch, samples, channels)`` (channels last).
        mode: ``"std"``, ``"max"`` or ``"none"`` (module doc).
        valid: ``None`` (every sample is data), an int array ``(batch, 2)``
            of ``[start, stop)`` sample ranges holding data, or a boolean
            mask ``(batch, samples)`` of the samples holding data (a window
            across short gaps); samples outside are excluded from the
            statistics and returned as 0.
        dtype: precision of the computation (float64, or float32 as the SeisT
            reference for windows cut around a pick).

    Returns:
        float32 array of the same shape.

    Raises:
        ValueError: an unknown mode, or windows that are not 3-D.
    """
    if mode not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}. Received: {mode!r}")
    if mode.startswith("seisbench_"):
        dtype = np.float32  # as SeisBench computes them
    x = np.asarray(windows)
    if x.ndim != 3:
        raise ValueError(f"normalize takes windows (batch, samples, channels). "
                         f"Received: shape={x.shape}")
    mask = _valid_samples(valid, x.shape)
    # The windows are normalised a block at a time into the float32 result, so that
    # the working copy in the computation's precision is that of a block, not the batch.
    out = np.empty(x.shape, dtype=np.float32)
    step = max(1, _BLOCK_ELEMENTS // max(1, x.shape[1] * x.shape[2]))
    for a in range(0, len(x), step):
        block = _normalized(x[a:a + step], mode, None if mask is None else mask[a:a + step],
                            dtype)
        out[a:a + step] = np.moveaxis(block, 1, 2)
    return out


def _valid_samples(valid, shape):
    """The ``(batch, samples)`` mask of the samples holding data, or ``None`` (all of them)."""
    if valid is None:
        return None
    valid = np.asarray(valid)
    if valid.dtype == bool:
        if valid.shape != shape[:2]:
            raise ValueError(f"A valid-sample mask must have shape {shape[:2]}. "
                             f"Received: shape={valid.shape}")
        mask = valid
    else:
        valid = valid.astype(np.int64).reshape(shape[0], 2)
        idx = np.arange(shape[1])
        mask = (idx >= valid[:, :1]) & (idx < valid[:, 1:])  # (batch, samples)
    return None if mask.all() else mask


def _normalized(x, mode, mask, dtype):
    """Windows ``(batch, samples, channels)`` normalised, as ``(batch, channels, samples)``."""
    # (batch, channels, samples): reductions run over contiguous memory
    w = np.array(np.moveaxis(x, 1, 2), dtype=dtype, order="C")
    if mode != "none":
        flat = _flat(w, mask)
        m = np.ones((1, 1, 1), dtype=dtype) if mask is None else mask[:, None, :].astype(dtype)
        count = np.maximum(m.sum(axis=-1, keepdims=True), 1) if mask is not None else \
            np.full((1, 1, 1), w.shape[-1], dtype=dtype)
        if mask is None:
            w -= w.mean(axis=-1, keepdims=True)
        else:
            w *= m
            w -= w.sum(axis=-1, keepdims=True) / count
            w *= m
        if mode in ("std", "seisbench_std"):
            ddof = 1 if mode == "seisbench_std" else 0
            squares = _sum_of_squares(w, axis=-1)
            scale = np.sqrt(squares / np.maximum(count - ddof, 1))
        elif mode == "seisbench_std_all":
            n = count * w.shape[1]  # the valid samples of every channel (one mask for all)
            squares = _sum_of_squares(w, axis=(1, 2))
            scale = np.sqrt(squares / np.maximum(n - 1, 1))
        else:  # the largest |x|, without an array of |x|
            scale = np.maximum(w.max(axis=-1, keepdims=True), -w.min(axis=-1, keepdims=True))
        if mode.startswith("seisbench_"):
            scale = scale + dtype(_SEISBENCH_EPS)
        else:
            scale[~(scale > 0)] = 1
        w /= scale
        w[flat] = 0  # a constant channel: rounding of its mean must not become O(1) noise
    elif mask is not None:
        w *= mask[:, None, :]
    return w


def taper(windows, samples):
    """Windows ``(batch, samples, channels)`` with a cosine ramp on their first and last ``samples``.

    The ramp is ``0.5 * (1 + cos(linspace(pi, 2 pi, samples)))`` at the start
    and the same reversed at the end (SeisBench's ``annotate_batch_pre``).

    Returns:
        float32 array (a new one).

    Raises:
        ValueError: a taper longer than the windows.
    """
    x = np.array(windows, dtype=np.float32)
    n = int(samples)
    if n < 0 or n > x.shape[1]:
        raise ValueError(f"taper_samples must lie in [0, {x.shape[1]}]. Received: {samples!r}")
    if n:
        ramp = (0.5 * (1 + np.cos(np.linspace(np.pi, 2 * np.pi, n)))).astype(np.float32)
        x[:, :n] *= ramp[:, None]
        x[:, -n:] *= ramp[::-1, None]
    return x
