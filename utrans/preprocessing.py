"""Input convention of the U-Trans models: shape checks and per-trace standardisation.

The U-Trans backbone takes windows of shape (batch, 6000, 3) (60 s at 100 Hz,
three components), each trace and channel demeaned and divided by its
standard deviation over the window (:func:`normalize_std`).
"""

import numpy as np

__all__ = ["check_input_shape", "normalize_std"]


def check_input_shape(x, length=6000, channels=3):
    """Check that ``x`` is a batch of windows (batch, length, channels).

    Args:
        x: array-like waveforms.
        length: expected samples per window (``None``: any).
        channels: expected channels (``None``: any).

    Returns:
        ``x`` as a NumPy array (not copied when it already is one).

    Raises:
        ValueError: the rank or shape differs; the message names the expected
            and the received shape.
    """
    x = np.asarray(x)
    expected = f"(batch, {length if length is not None else 'length'}, " \
               f"{channels if channels is not None else 'channels'})"
    if x.ndim != 3:
        hint = " Add a batch axis for a single window: x[None]." if x.ndim == 2 else ""
        raise ValueError(
            f"Expected waveforms of shape {expected}.{hint} Received: shape={x.shape}"
        )
    wrong_length = length is not None and x.shape[1] != length
    wrong_channels = channels is not None and x.shape[2] != channels
    if wrong_length or wrong_channels:
        hint = ""
        if x.shape[1] == channels and x.shape[2] == length:
            hint = " The input looks channels-first; transpose it with x.transpose(0, 2, 1)."
        raise ValueError(f"Expected waveforms of shape {expected}.{hint} Received: shape={x.shape}")
    return x


def normalize_std(x, eps=1e-8, axis=-2):
    """Demean each trace and channel and divide by its standard deviation.

    ``(x - mean) / (std + eps)`` over the time axis, the population standard
    deviation (ddof 0), independently for every trace and channel: the U-Trans
    input convention. A channel with zero spread (constant or all zero) maps
    to zeros, so the result never holds NaN or inf.

    Args:
        x: waveforms (batch, length, channels) or one window (length, channels).
        eps: added to the standard deviation.
        axis: the time axis.

    Returns:
        A floating-point array of the input's shape (float32 for integer input,
        otherwise the input's float dtype).

    Raises:
        ValueError: ``x`` holds NaN or inf; the message lists the affected
            traces (batch indices) and channels.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.argwhere(~finite.all(axis=axis))
        raise ValueError(
            "normalize_std received non-finite values (NaN or inf) at "
            f"(trace, channel) indices {bad[:10].tolist()}{' ...' if len(bad) > 10 else ''}. "
            f"Received: shape={x.shape}"
        )
    mean = x.mean(axis=axis, keepdims=True)
    std = x.std(axis=axis, keepdims=True)
    out = (x - mean) / (std + np.asarray(eps, dtype=x.dtype))
    # Constant channels: rounding of the mean must not turn into O(1) noise.
    constant = x.max(axis=axis, keepdims=True) == x.min(axis=axis, keepdims=True)
    if constant.any():
        out = np.where(constant, np.zeros((), dtype=out.dtype), out)
    return out
