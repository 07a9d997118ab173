"""The one resampler: training windows, testing windows and continuous records alike.

:func:`resample` changes the sampling rate of arrays with
``scipy.signal.resample_poly``: the rate ratio as a fraction ``up / down``
(denominator at most 1000), a zero-phase Kaiser-window FIR low-pass at the
lower of the two Nyquist frequencies, and ``ceil(n * up / down)`` output
samples whose first sample sits at the time of the input's first sample.
Why this one (measured, see DESIGN.md "One resampler"): it is linear-phase
(picks do not move), works for any rational ratio (75 Hz, 40 Hz, 200 Hz),
needs no FFT over the whole record (a day of 100 Hz data resamples in a
fraction of a second) and has no wrap-around at the record ends, so a record
resampled in pieces equals the record resampled whole away from the cuts.

:func:`resample_trace` applies it to an ObsPy trace; :func:`interpolate`
maps curves (labels, probabilities) linearly onto another number of samples.
:func:`upsampling_problem` says when a record is too sparsely sampled to be
brought to a rate at all (upsampled more than :data:`MAX_UPSAMPLING` times);
annotate and the data layer then refuse it, naming it.
"""

from __future__ import annotations

import fractions

import numpy as np
import scipy.signal

__all__ = ["MAX_UPSAMPLING", "interpolate", "rate_fraction", "resample", "resample_trace",
           "resampled_length", "upsampling_problem"]

#: Largest factor by which a record is upsampled to a model's rate (or to the data
#: layer's 100 Hz). A record sampled more sparsely (below 10 Hz for a 100 Hz model: a
#: 1 Hz LH or 0.5 Hz channel) holds none of the band the model was trained on;
#: interpolating it would make a plausible-looking input and plausible-looking
#: picks, so it is refused instead, naming the trace.
MAX_UPSAMPLING = 10.0


def rate_fraction(from_rate, to_rate):
    """``(up, down)``: the ratio ``to_rate / from_rate`` as a fraction (denominator <= 1000).

    Raises:
        ValueError: a rate that is not a positive finite number.
    """
    for name, rate in (("from_rate", from_rate), ("to_rate", to_rate)):
        if not (np.isfinite(rate) and rate > 0):
            raise ValueError(f"{name} must be a positive number of Hz. Received: {name}={rate}")
    frac = fractions.Fraction(float(to_rate) / float(from_rate)).limit_denominator(1000)
    return frac.numerator, frac.denominator


def upsampling_problem(from_rate, to_rate):
    """Why a record at ``from_rate`` must not be brought to ``to_rate``, or ``None``.

    Args:
        from_rate: the record's sampling rate in Hz.
        to_rate: the rate it would be resampled to.

    Returns:
        ``None``, or a one-line reason when ``to_rate / from_rate`` exceeds
        :data:`MAX_UPSAMPLING` (the caller names the trace).
    """
    factor = float(to_rate) / float(from_rate)
    if factor <= MAX_UPSAMPLING:
        return None
    return (f"sampled at {float(from_rate):g} Hz, {factor:g} times below the {float(to_rate):g} Hz "
            f"it must be brought to (at most {MAX_UPSAMPLING:g} times, i.e. at least "
            f"{float(to_rate) / MAX_UPSAMPLING:g} Hz): it lacks the frequencies a model at that rate "
            f"uses. Received: sampling_rate={float(from_rate):g}")


def resampled_length(n, from_rate, to_rate):
    """Samples of an ``n``-sample record after :func:`resample`."""
    up, down = rate_fraction(from_rate, to_rate)
    return -(-int(n) * up // down)


def resample(x, from_rate, to_rate, axis=0):
    """``x`` sampled at ``from_rate`` resampled to ``to_rate`` along ``axis`` (module doc).

    Args:
        x: array of samples (any dtype that converts to float).
        from_rate: sampling rate of ``x`` in Hz.
        to_rate: the new rate in Hz.
        axis: the time axis.

    Returns:
        float64 array (``x`` itself as float64 when the rates are equal).
    """
    up, down = rate_fraction(from_rate, to_rate)
    x = np.asarray(x, dtype=np.float64)
    if up == down:
        return x
    return scipy.signal.resample_poly(x, up, down, axis=axis)


def resample_trace(trace, sampling_rate):
    """A copy of an ObsPy trace at ``sampling_rate`` (the original is not modified).

    Args:
        trace: an ``obspy.Trace``.
        sampling_rate: target rate in Hz.

    Returns:
        An ``obspy.Trace`` with float64 samples (``trace`` itself when the
        rate already matches).
    """
    rate = float(trace.stats.sampling_rate)
    if np.isclose(rate, sampling_rate, rtol=1e-9, atol=0.0):
        return trace
    out = trace.copy()
    out.data = resample(trace.data, rate, sampling_rate)
    out.stats.sampling_rate = float(sampling_rate)
    return out


def interpolate(curves, length, axis=1):
    """Curves mapped linearly onto ``length`` equally spaced samples along ``axis``.

    The first and last samples keep their places (``np.interp`` over the
    sample positions), so curves of one window at two rates line up.

    Args:
        curves: array with the time axis ``axis``.
        length: the new number of samples.
        axis: the time axis.

    Returns:
        float32 array.
    """
    a = np.moveaxis(np.asarray(curves, dtype=np.float32), axis, -1)
    t = a.shape[-1]
    if t == length:
        return np.moveaxis(a, -1, axis)
    pos = np.arange(length) * ((t - 1) / max(length - 1, 1))
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, t - 1)
    w = (pos - lo).astype(np.float32)
    out = a[..., lo] * (1 - w) + a[..., hi] * w
    return np.moveaxis(out.astype(np.float32), -1, axis)
