"""Metadata of the readers: values as stored read into one vocabulary, and checked against ranges.

The keys carry entity and unit, SeisBench style (the table in :mod:`utrans.formats`);
:func:`metadata_problems` checks the values a labeller uses against
:data:`METADATA_RANGES`; derived path fields (distance, back-azimuth) come from
the coordinates through :mod:`utrans.processing.geodesy`.
"""

from __future__ import annotations

import math
import re

import numpy as np

from utrans.processing.geodesy import distance_azimuth

__all__ = ["CHANNEL_ORDER", "METADATA_RANGES", "METADATA_VALUES", "is_missing",
           "metadata_problems"]

#: Component order of every waveform a reader returns.
CHANNEL_ORDER = "ENZ"

_MISSING_STRINGS = {"", "none", "nan", "null", "n/a", "na"}


# --------------------------------------------------------------------------
# value coercion helpers
# --------------------------------------------------------------------------


def _to_str(value):
    """Decode bytes / numpy scalars / 1-element arrays to ``str`` or ``None``."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return None
        value = value.reshape(-1)[0]
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, float) and math.isnan(value):
        return None
    value = str(value).strip()
    if value.lower() in _MISSING_STRINGS:
        return None
    return value


def _to_float(value):
    """Read a scalar that may be a float, a 1-element (nested) array, a string or 'None'.

    Anything that is not a number (compound or opaque HDF5 types, complex
    values, text that does not parse) reads as NaN, i.e. missing.
    """
    if value is None:
        return math.nan
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return math.nan
        value = value.reshape(-1)[0]
    if isinstance(value, (bytes, np.bytes_, str)):
        text = _to_str(value)
        if text is None:
            return math.nan
        text = text.strip("[]() ")
        if not text:
            return math.nan
        value = text.replace("|", " ").split()[0].rstrip(",")
    if isinstance(value, (complex, np.complexfloating, np.void)):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _to_float3(value):
    """Read a 3-vector (``snr_db``) from an array, a string ``'[a b c]'``/``'a|b|c'`` or a scalar."""
    out = np.full(3, np.nan)
    if value is None:
        return out
    if isinstance(value, (bytes, np.bytes_, str)) or (
        isinstance(value, np.ndarray) and value.dtype.kind in "SUO"
    ):
        text = _to_str(value)
        if text is None:
            return out
        parts = [p for p in re.split(r"[\s,|\[\]()]+", text) if p]
        value = [_to_float(p) for p in parts]
    if np.iscomplexobj(value):
        return out
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        return out
    if arr.size == 1:
        out[:] = arr[0]
    elif arr.size >= 3:
        out[:] = arr[:3]
    elif arr.size == 2:
        out[:2] = arr
    return out


def _polarity(value):
    text = _to_str(value)
    if text is None:
        return None
    t = text.lower()
    if t in ("u", "up", "positive", "+", "c", "compression", "1"):
        return "positive"
    if t in ("d", "down", "negative", "-", "dilatation", "0", "-1"):
        return "negative"
    return None


def _category(raw, p_sample=math.nan):
    text = _to_str(raw)
    if text is None:
        return ("earthquake" if np.isfinite(p_sample) else "noise"), None
    if "noise" in text.lower():
        return "noise", text
    return "earthquake", text


def decode_id(value):
    """A trace ID as ``str`` (bytes decoded as UTF-8)."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _finish(meta):
    """Fill derived path fields and defaults in a metadata dict (in place).

    Coordinates out of range leave the derived path fields NaN (missing);
    :func:`metadata_problems` then names the coordinate at fault.
    """
    try:
        dist, _, baz = distance_azimuth(
            meta.get("source_latitude_deg", math.nan), meta.get("source_longitude_deg", math.nan),
            meta.get("station_latitude_deg", math.nan), meta.get("station_longitude_deg", math.nan))
    except ValueError:
        dist, baz = math.nan, math.nan
    if np.isfinite(dist) or not np.isfinite(meta.get("path_ep_distance_km", math.nan)):
        meta["path_ep_distance_km"] = dist
    meta["path_back_azimuth_deg"] = baz
    meta.setdefault("path_back_azimuth_deg_reported", math.nan)
    meta.setdefault("trace_sampling_rate_hz", 100.0)
    meta.setdefault("trace_p_polarity", None)
    meta.setdefault("trace_start_time", None)
    meta.setdefault("source_id", None)
    meta.setdefault("source_magnitude_type", None)
    meta.setdefault("station_code", None)
    meta.setdefault("station_network_code", None)
    meta.setdefault("station_elevation_m", math.nan)
    for key in ("source_latitude_deg", "source_longitude_deg", "source_depth_km",
                "source_magnitude", "station_latitude_deg", "station_longitude_deg",
                "trace_p_arrival_sample", "trace_s_arrival_sample", "trace_coda_end_sample"):
        meta.setdefault(key, math.nan)
    meta.setdefault("trace_snr_db", np.full(3, np.nan))
    return meta


# --------------------------------------------------------------------------
# metadata validation
# --------------------------------------------------------------------------

#: Valid ranges of the metadata that labellers and augmentation steps use,
#: keyed by metadata name: ``(low, high, brackets)``, ``brackets`` one of
#: ``'[]'``, ``'[)'``, ``'(]'``, ``'()'``; ``None`` leaves a side open and
#: ``'samples'`` stands for the trace length. Depths between -10 and 0 km
#: (stations above sea level, as in the DataCollected files) are valid; the
#: location labeller clips them to 0.
METADATA_RANGES = {
    "source_latitude_deg": (-90.0, 90.0, "[]"),
    "source_longitude_deg": (-180.0, 360.0, "[)"),
    "station_latitude_deg": (-90.0, 90.0, "[]"),
    "station_longitude_deg": (-180.0, 360.0, "[)"),
    "source_depth_km": (-10.0, 800.0, "[]"),
    "source_magnitude": (-3.0, 10.0, "[]"),
    "path_back_azimuth_deg": (0.0, 360.0, "[]"),
    "path_ep_distance_km": (0.0, 20040.0, "[]"),
    "trace_sampling_rate_hz": (0.0, None, "()"),
    "trace_p_arrival_sample": (0.0, "samples", "[)"),
    "trace_s_arrival_sample": (0.0, "samples", "[)"),
    "trace_coda_end_sample": (0.0, None, "[)"),
}

#: Allowed values of text metadata, keyed by metadata name.
METADATA_VALUES = {
    "trace_p_polarity": ("positive", "negative"),
    "trace_category": ("earthquake", "noise"),
}

# Derived fields and the stored fields they are computed from.
_DERIVED_FROM = {
    "path_back_azimuth_deg": ("source_latitude_deg", "source_longitude_deg",
                              "station_latitude_deg", "station_longitude_deg"),
    "path_ep_distance_km": ("source_latitude_deg", "source_longitude_deg",
                            "station_latitude_deg", "station_longitude_deg"),
}


def is_missing(value):
    """True for ``None``, NaN / inf numbers and empty strings (a missing metadata value).

    Args:
        value: a metadata value.

    Returns:
        bool.
    """
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return not math.isfinite(value)
    if isinstance(value, str):
        return value == ""
    return False


def _range_problem(key, value, samples):
    low, high, brackets = METADATA_RANGES[key]
    if high == "samples":
        high = samples
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        return f"{key} is not a number. Received: {key}={value!r}"
    ok = True
    if low is not None:
        ok &= v > low if brackets[0] == "(" else v >= low
    if high is not None:
        ok &= v < high if brackets[1] == ")" else v <= high
    if ok:
        return None
    lo_txt = "-inf" if low is None else f"{low:g}"
    hi_txt = "inf" if high is None else f"{high:g}"
    return f"{key} must be in {brackets[0]}{lo_txt}, {hi_txt}{brackets[1]}. Received: {key}={value!r}"


def metadata_problems(meta, required=(), optional=(), *, samples=None):
    """Check the metadata a task uses against :data:`METADATA_RANGES` / :data:`METADATA_VALUES`.

    Args:
        meta: a metadata dict as returned by a reader.
        required: keys that must be present and valid.
        optional: keys that must be valid when present (e.g. picks that an
            augmentation step moves).
        samples: trace length in samples, the bound of pick samples (``None``
            checks only that picks are not negative).

    Returns:
        list of one-line problem descriptions (empty when the metadata is usable),
        each echoing the received value.
    """
    problems = []
    missing = []
    checked = {}
    for key, needed in [(k, True) for k in required] + [(k, False) for k in optional]:
        if key in checked:
            continue
        value = meta.get(key)
        checked[key] = value
        if is_missing(value):
            if not needed:
                continue
            causes = [p for src in _DERIVED_FROM.get(key, ())
                      if src in METADATA_RANGES and not is_missing(meta.get(src))
                      for p in [_range_problem(src, meta.get(src), samples)] if p]
            if causes:
                problems.append(f"{key} cannot be computed: " + "; ".join(causes))
            elif key in METADATA_VALUES and meta.get(key + "_raw") is not None:
                problems.append(f"{key} must be one of {', '.join(METADATA_VALUES[key])}. "
                                f"Received: {key}={meta.get(key + '_raw')!r}")
            else:
                missing.append(f"{key} (Received: {value!r})")
            continue
        if key in METADATA_VALUES:
            if value not in METADATA_VALUES[key]:
                problems.append(f"{key} must be one of {', '.join(METADATA_VALUES[key])}. "
                                f"Received: {key}={value!r}")
        elif key in METADATA_RANGES:
            problem = _range_problem(key, value, samples)
            if problem:
                problems.append(problem)
    p, s = checked.get("trace_p_arrival_sample"), checked.get("trace_s_arrival_sample")
    if not is_missing(p) and not is_missing(s):
        try:
            if not float(s) > float(p):
                problems.append("S must come after P. Received: trace_p_arrival_sample="
                                f"{p!r}, trace_s_arrival_sample={s!r}")
        except (TypeError, ValueError):
            pass
    if missing:
        problems.insert(0, "missing " + ", ".join(missing))
    return problems


