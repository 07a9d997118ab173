"""``utrans catalog``: an SDS archive and a station file to a located, sized event catalogue.

::

    utrans catalog /data/sds --inventory stations.xml --start 2025-03-05 --end 2025-03-06 \\
        --model seist_m_dpk_diting --characterize seist_m_emg_diting,seist_m_pmp_diting \\
        --velocity vp=6.0,vs=3.5 --workers 2 --output march5

The run is :func:`utrans.catalog.chain.catalog` (its inputs checked by
:func:`~utrans.catalog.chain.check_inputs`, then
:func:`~utrans.catalog.chain.run_catalog`): picking (the station-days
of ``utrans annotate --sds``), association and location with PyOcto in time
chunks on the same workers, event values, and the files ``events.csv``,
``arrivals.csv``, ``picks.csv``, ``catalog.xml``, ``settings.json``,
``map.png`` and ``events/<event_id>.png`` in the output folder. The same
command run again resumes: finished station-days are skipped.

Bad input (a time range, velocity model, setting, station file, archive,
model or output folder) stops with one line on stderr and exit code 2
before anything is written; station-days that failed give exit code 1
(run again to finish them).
"""

from __future__ import annotations

import argparse
import logging
import pathlib

from utrans.cli import quiet_framework, run_job
from utrans.cli.association import add_association_options
from utrans.core.options import non_negative_int

__all__ = ["build_parser", "main"]


def build_parser(prog="utrans catalog"):
    """The argparse parser of ``utrans catalog``.

    Args:
        prog: the command's name in usage and error lines.

    Returns:
        ``argparse.ArgumentParser``.
    """
    p = argparse.ArgumentParser(
        prog=prog,
        description="Pick the station-days of an SDS archive, associate and locate the picks "
                    "with PyOcto in time chunks, size the events from the characterisation "
                    "models' magnitudes, and write events.csv, arrivals.csv, picks.csv, "
                    "catalog.xml (QuakeML), settings.json, map.png and events/<event_id>.png. "
                    "Run the same command again to resume after an interruption.",
        epilog="Example:\n"
               f"  {prog} /data/sds --inventory stations.xml --start 2025-03-05 --end "
               "2025-03-06 \\\n      --model seist_m_dpk_diting --characterize "
               "seist_m_emg_diting,seist_m_pmp_diting --output march5\n"
               "Needs the catalog extra: pip install '.[catalog]'.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("archive", type=pathlib.Path, metavar="SDS_ROOT",
                   help="SDS archive root folder (YEAR/NET/STA/CHAN.D/...)")
    p.add_argument("--inventory", required=True,
                   help="station coordinates: StationXML, or a CSV with network, station, "
                        "latitude, longitude, elevation_m")
    p.add_argument("--start", required=True, help="first day or time (2025-03-05[T06:00:00])")
    p.add_argument("--end", required=True, help="end of the range, excluded")
    p.add_argument("--model", required=True, help="picker: preset name or trained .keras file")
    p.add_argument("--characterize", default=None, metavar="MODELS",
                   help="comma-separated window models run on every P pick (e.g. "
                        "seist_m_emg_diting,seist_m_pmp_diting,seist_m_baz_diting,"
                        "seist_m_dis_diting); a magnitude model gives the event magnitudes")
    p.add_argument("--output", default="catalog_outputs", type=pathlib.Path,
                   help="output folder (default: %(default)s)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=non_negative_int, default=None, metavar="N",
                       help="worker processes on this machine for picking and association "
                            "(default: the CPU cores; 0: run in this process)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on an existing Dask cluster (tcp://host:8786); its workers must "
                            "see the archive and the output folder at the same paths")
    for name in ("network", "station", "location", "channel"):
        p.add_argument(f"--{name}", default="*",
                       help=f"{name} code or pattern (fnmatch; default: all)")
    picking = p.add_argument_group("picking")
    for label in ("P", "S"):
        picking.add_argument(f"--{label}_threshold", type=float, default=None, metavar="T",
                             help=f"{label} threshold in [0, 1] (default: the model's)")
    picking.add_argument("--min_peak_distance_s", type=float, default=None, metavar="S",
                         help="minimum time between two picks of one phase (default: the "
                              "model's)")
    picking.add_argument("--batch_size", type=int, default=64,
                         help="windows per model call (default: %(default)s)")
    add_association_options(p)
    p.add_argument("--no_plots", action="store_true",
                   help="skip map.png and the record sections")
    p.add_argument("--no_progress", action="store_true", help="no progress bars")
    p.add_argument("--verbose", action="store_true", help="show framework messages")
    return p


def main(argv=None, prog="utrans catalog"):
    """Entry point of ``utrans catalog``.

    The run (:func:`utrans.cli.catalog_run.run`) and the libraries it needs
    load once the arguments are parsed: ``--help`` answers at once.

    Args:
        argv: arguments (default ``sys.argv[1:]``).
        prog: the command's name in usage and error lines.

    Returns:
        Exit code: 0 on success, 2 on bad input, 1 when station-days failed,
        130 on Ctrl-C.
    """
    args = build_parser(prog).parse_args(argv)
    quiet_framework(args.verbose)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    elif not any(isinstance(h, logging.NullHandler) for h in logging.getLogger("utrans").handlers):
        # The command prints its own lines (an empty period included); without a handler,
        # Python would print the library's warning records to stderr a second time.
        logging.getLogger("utrans").addHandler(logging.NullHandler())
    return run_job(prog, "utrans.cli.catalog_run:run", args,
                   "finished station-days are kept: the same command resumes.")
