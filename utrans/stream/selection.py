"""Channel selections (``NET.STA.LOC.CHA`` patterns) and SDS file names."""

from __future__ import annotations

import fnmatch
import os
import re

import obspy

__all__ = ["matches", "parse_sds_name", "parse_select"]


def parse_select(select):
    """``"XX.*.*.HH?,YY.A..BHZ"`` -> ``[("XX", "*", "*", "HH?"), ("YY", "A", "", "BHZ")]``.

    Args:
        select: comma-separated ``NET.STA.LOC.CHA`` patterns (``fnmatch``
            wildcards; an empty location field is the empty code).

    Returns:
        A list of 4-tuples of patterns.

    Raises:
        ValueError: a pattern does not have four dot-separated fields.
    """
    patterns = []
    for part in str(select).split(","):
        part = part.strip()
        if not part:
            continue
        fields = part.split(".")
        if len(fields) != 4:
            raise ValueError("a selection is NET.STA.LOC.CHA with fnmatch wildcards, e.g. "
                             f"'XX.*.*.HH?'. Received: {part!r}")
        patterns.append(tuple(fields))
    if not patterns:
        raise ValueError(f"empty selection. Received: select={select!r}")
    return patterns


def matches(patterns, trace_id):
    """Whether ``NET.STA.LOC.CHA`` matches any of ``parse_select``'s patterns."""
    fields = trace_id.split(".")
    if len(fields) != 4:
        return False
    return any(all(fnmatch.fnmatchcase(f, p) for f, p in zip(fields, pattern, strict=True))
               for pattern in patterns)


_SDS_NAME = re.compile(r"^([^.]*)\.([^.]*)\.([^.]*)\.([^.]*)\.([A-Z])\.(\d{4})\.(\d{3})$")


def parse_sds_name(path):
    """``(channel id, UTCDateTime of the day)`` from an SDS file name, or None."""
    found = _SDS_NAME.match(os.path.basename(path))
    if not found:
        return None
    net, sta, loc, cha, _, year, doy = found.groups()
    try:
        day = obspy.UTCDateTime(year=int(year), julday=int(doy))
    except ValueError:
        return None
    return f"{net}.{sta}.{loc}.{cha}", day
