"""The velocity model and association options of ``utrans catalog`` and ``utrans stream --catalog``.

One definition for both commands: ``--velocity`` / ``--velocity_model`` and
one option per field of :class:`~utrans.catalog.settings.AssociationSettings`
(its name, its default in the help; ``chunk_s`` is ``--association_chunk_s``).
"""

from __future__ import annotations

import argparse
import dataclasses

from utrans.catalog.settings import AssociationSettings

__all__ = ["add_association_options", "association_settings", "velocity_of"]

#: Help of the association options; their names and defaults are the fields of
#: :class:`~utrans.catalog.settings.AssociationSettings` (``chunk_s`` is
#: ``--association_chunk_s``).
_ASSOCIATION_HELP = {
    "min_picks": "least picks of an event",
    "min_p_picks": "least P picks of an event",
    "min_s_picks": "least S picks of an event",
    "min_p_and_s_stations": "least stations with both a P and an S pick",
    "tolerance_s": "travel-time tolerance of the association search, s",
    "pick_match_tolerance_s": "largest residual of a pick attached to a located event, s",
    "min_interevent_time_s": "two events closer in origin time are one, s",
    "margin_km": "the search zone is the stations' box widened by this, km",
    "depth_range_km": "top and bottom of the search zone, km below sea level",
    "area": "the search zone in degrees instead of the stations' box",
    "chunk_s": "length of the time chunks associated independently, s",
    "overlap_s": "picks read beyond each chunk, s (default: the longest S travel time across "
                 "the zone + tolerance)",
    "magnitude_column": "pick column of the station magnitudes (default: the first "
                        "magnitude__<model> column)",
    "grid_km": "grid spacing of a layered model's travel-time tables, km",
    "n_threads": "PyOcto threads per chunk",
}

_METAVARS = {"depth_range_km": "TOP,BOTTOM", "area": "LAT_MIN,LAT_MAX,LON_MIN,LON_MAX",
             "magnitude_column": "COLUMN"}


def _numbers(text):
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers. Received: {text!r}") \
            from None


def add_association_options(parser, description="Written with the values resolved for the "
                                                "run into <output>/settings.json."):
    """Add the velocity model and association options of ``utrans catalog`` to a parser.

    The options are ``--velocity`` / ``--velocity_model`` and one per field
    of :class:`~utrans.catalog.settings.AssociationSettings` (``chunk_s`` is
    ``--association_chunk_s``); read them back with :func:`velocity_of` and
    :func:`association_settings`.

    Args:
        parser: an ``argparse.ArgumentParser``.
        description: the description of the option group.

    Returns:
        The argument group.
    """
    group = parser.add_argument_group("association and location (PyOcto)", description)
    velocity = group.add_mutually_exclusive_group()
    velocity.add_argument("--velocity", default=None, metavar="vp=V,vs=V",
                          help="homogeneous model, km/s (default: vp=6.0,vs=3.5)")
    velocity.add_argument("--velocity_model", default=None, metavar="CSV",
                          help="1-D layered model: a CSV with columns depth, vp, vs (km, km/s), "
                               "first depth 0, depths increasing")
    for field in dataclasses.fields(AssociationSettings):
        flag = "--association_chunk_s" if field.name == "chunk_s" else f"--{field.name}"
        default = field.default
        kind = (_numbers if field.name in ("depth_range_km", "area") else
                str if field.name == "magnitude_column" else
                int if isinstance(default, int) else float)
        shown = ",".join(f"{v:g}" for v in default) if isinstance(default, tuple) else default
        metavar = _METAVARS.get(field.name) or ("N" if kind is int else field.name.rsplit(
            "_", 1)[-1].upper())
        group.add_argument(flag, dest=f"association_{field.name}", type=kind, default=None,
                           metavar=metavar, help=_ASSOCIATION_HELP[field.name] + (
                               f" (default: {shown})" if default is not None else ""))
    return group


def velocity_of(args):
    """The velocity model text of arguments parsed with :func:`add_association_options`."""
    return args.velocity_model or args.velocity or "vp=6.0,vs=3.5"


def association_settings(args):
    """The :class:`~utrans.catalog.settings.AssociationSettings` of parsed arguments.

    Args:
        args: arguments parsed with :func:`add_association_options`.

    Returns:
        The settings (the defaults for the options not given).

    Raises:
        utrans.core.errors.CatalogError: a value out of range.
    """
    values = {name[len("association_"):]: value for name, value in vars(args).items()
              if name.startswith("association_") and value is not None}
    return AssociationSettings(**values)
