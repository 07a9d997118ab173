"""From an archive, or from picks, to a located, sized event catalogue.

The whole chain, from an SDS archive and a station file (also ``utrans
catalog`` on the command line; the package is callable)::

    import utrans

    run = utrans.catalog("/data/sds", "stations.xml", "2025-03-05", "2025-03-06",
                         "seist_m_dpk_diting", characterize=["seist_m_emg_diting"],
                         output="march5")
    run.events, run.arrivals, run.picks

or its steps, from any picks table::

    from utrans.catalog import (AssociationSettings, associate_picks, parse_velocity,
                                read_stations, write_catalog)

    stations = read_stations("stations.xml")            # or a CSV: network, station, ...
    velocity = parse_velocity("vp=6.0,vs=3.5")         # or a CSV: depth, vp, vs
    settings = AssociationSettings(min_picks=8, chunk_s=3600)
    events, arrivals, picks, used = associate_picks(picks, stations, velocity, settings)
    write_catalog("catalog_out", events, arrivals, picks, stations=stations,
                  velocity=velocity, settings=used, waveforms=stream)

Modules, one job each:

* :mod:`~utrans.catalog.chain`: :func:`catalog`, the three stages (picking
  with :func:`utrans.annotate.network.run_network`, association, outputs);
* :mod:`~utrans.catalog.stations`: station coordinates from StationXML/CSV;
* :mod:`~utrans.catalog.velocity`: homogeneous and layered models, travel times;
* :mod:`~utrans.catalog.settings`: :class:`AssociationSettings`;
* :mod:`~utrans.catalog.associate`: PyOcto association in independent time
  chunks and their merge (needs the ``catalog`` extra: pyocto, pyrocko);
* :mod:`~utrans.catalog.values`: event magnitudes, arrival residuals, polarities;
* :mod:`utrans.quakeml` (below the engines, so that ``annotate`` writes
  its picks through it too): the package's one QuakeML writer;
* :mod:`~utrans.catalog.output`: ``write_catalog`` (tables, QuakeML, figures);
* :mod:`~utrans.catalog.plots`: the network map and event record sections;
* :mod:`~utrans.catalog.synthetic`: a synthetic network with a known catalogue.

Every module is imported on first use of one of its names, so that the rest
(the QuakeML writer, the synthetic network) works without pyocto and
``import utrans.catalog`` (or of one of its modules, such as the settings
read by the command line's parser) stays light.
"""

from __future__ import annotations

import importlib
import sys
import types

from utrans.core.errors import CatalogError, CatalogWarning

#: Module -> the names the package takes from it, imported on first use.
_LAZY = {
    "utrans.catalog.output": ("write_catalog",),
    "utrans.catalog.plots": ("plot_map", "plot_record_section"),
    "utrans.catalog.settings": ("AssociationSettings",),
    "utrans.catalog.stations": ("match_stations", "read_stations"),
    "utrans.catalog.synthetic": ("synthetic_arrivals", "synthetic_events", "synthetic_picks",
                                 "synthetic_stations", "synthetic_waveforms",
                                 "write_synthetic_network"),
    "utrans.catalog.values": ("event_polarities", "station_magnitudes"),
    "utrans.catalog.velocity": ("VelocityModel", "parse_velocity"),
    "utrans.quakeml": ("build_catalog", "read_catalog_values"),
    "utrans.catalog.chain": ("CatalogRun", "Inputs", "catalog", "check_inputs", "run_catalog"),
    "utrans.catalog.associate": ("CatalogResult", "Chunk", "ChunkJob", "ChunkResult", "Zone",
                                 "associate_chunk", "associate_picks", "longest_s_travel_s",
                                 "merge_chunks",
                                 "plan_chunks", "prepare_jobs", "search_zone"),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}

__all__ = ["CatalogError", "CatalogWarning", *sorted(_MODULE_OF)]


def __getattr__(name):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'utrans.catalog' has no attribute {name!r}")
    if module != "utrans.catalog.associate":
        return getattr(importlib.import_module(module), name)
    try:
        found = importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"utrans.catalog.{name} needs PyOcto: pip install "
                          f"'utrans[catalog]' ({error})") from error
    return getattr(found, name)


def __dir__():
    return sorted([*globals(), *_MODULE_OF])


class _CallablePackage(types.ModuleType):
    """The package, callable: ``utrans.catalog(...)`` runs :func:`utrans.catalog.chain.catalog`.

    A package whose name is also its main function: ``import utrans.catalog``
    and ``utrans.catalog`` reached through :mod:`utrans` are this one object,
    whichever comes first, so both ``utrans.catalog(...)`` and
    ``utrans.catalog.read_stations`` work.
    """

    def __call__(self, *args, **kwargs):
        return importlib.import_module("utrans.catalog.chain").catalog(*args, **kwargs)


# The only thing done at import: this module becomes callable (no other state changes).
sys.modules[__name__].__class__ = _CallablePackage
