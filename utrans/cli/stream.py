"""``utrans stream``: pick phases on live data; ``utrans stream-demo``: see it work in one command.

::

    utrans stream --seedlink HOST:PORT --select "XX.*.*.HH?" --model seist_m_dpk_diting \\
        --output live --state live/state
    utrans stream --sds /data/sds --follow --network XX --model seist_m_dpk_diting --output live
    utrans stream-demo

``utrans stream`` reads a SeedLink server (reconnecting with back-off,
resuming where it stopped) or follows an SDS archive that is being written,
applies one picker with :class:`utrans.stream.StreamPicker` and writes into
the output folder, as each pick becomes final:

* ``picks.csv``: annotate's columns plus ``latency_s`` (and the
  characterisation columns with ``--characterize``), appended atomically;
* ``quakeml/picks_<YYYY-MM-DDTHH>.xml``: the picks of each hour as QuakeML.

``-v`` logs a line per pick. With ``--state DIR`` a restart carries on
without losing or repeating a pick. Ctrl-C stops after the batch in hand
with one line (and the state saved). Bad input (an unknown model, an output
folder that cannot be written, a selection that matches nothing on the
server) stops with one line and exit code 2; an unreachable server is
retried with a message at every attempt; a station the model cannot use is
named and the others go on.

With ``--catalog`` (and ``--inventory``, the station coordinates) the final
picks are also associated into located events as the stream goes
(:class:`utrans.stream.catalog.StreamCatalog`: ``utrans catalog``'s
association and options), each event written once, as soon as no later
pick can change it, to ``events.csv``, ``arrivals.csv`` and
``quakeml/event_<event_id>.xml``.

``utrans stream-demo`` starts the package's SeedLink replay server
(:mod:`utrans.stream.server`) on a synthetic network with events at known
times (:func:`utrans.stream.demo.demo_network`; with ``--catalog``,
:func:`utrans.stream.demo.demo_catalog_network`, whose station coordinates
it writes to ``stations.csv``), streams from it and compares the picks
(and the events) with the truth.
"""

from __future__ import annotations

import argparse
import logging
import pathlib

from utrans.cli import quiet_framework, run_job
from utrans.cli.annotate import add_model_options
from utrans.cli.association import add_association_options

__all__ = ["build_demo_parser", "build_parser", "utrans_stream", "utrans_stream_demo"]


def _common(p, model=None):
    add_model_options(p, model)
    p.add_argument("--state", type=pathlib.Path, default=None, metavar="DIR",
                   help="folder of the run's state: a restart with the same folder loses and "
                        "repeats no pick")
    p.add_argument("--no_quakeml", action="store_true", help="no hourly QuakeML files")
    p.add_argument("--max_late_s", type=float, default=30.0, metavar="S",
                   help="how long a gap waits for late packets before it is final "
                        "(default: %(default)s)")
    p.add_argument("-v", dest="log_picks", action="store_true",
                   help="log a line per pick (and the connections, gaps, stations)")
    p.add_argument("--catalog", action="store_true",
                   help="also associate the final picks into located events as the stream goes "
                        "(utrans catalog's association): events.csv, arrivals.csv, "
                        "quakeml/event_<event_id>.xml, each event written once, when no later "
                        "pick can change it" + ("; needs --inventory" if model is None else ""))
    add_association_options(p, "With --catalog: the options of utrans catalog.")


def build_parser(prog="utrans stream"):
    """The argparse parser of ``utrans stream``."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Pick phases on live data, a SeedLink server or a growing SDS archive, and "
                    "write each pick as soon as it is final: the picks annotate gives on the "
                    "whole record, with their latency.",
        epilog="Examples:\n"
               f"  {prog} --seedlink 127.0.0.1:18000 --select 'XX.*.*.HH?' "
               "--model seist_m_dpk_diting --output live --state live/state\n"
               f"  {prog} --sds /data/sds --follow --network XX --model seist_m_dpk_diting "
               "--output live\n"
               "  utrans stream-demo      (a replay server on a synthetic network, streamed)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--seedlink", metavar="HOST:PORT", help="SeedLink server to read")
    source.add_argument("--sds", type=pathlib.Path, metavar="ROOT",
                        help="SDS archive to read (YEAR/NET/STA/CHAN.D/...)")
    p.add_argument("--select", default=None, metavar="PATTERNS",
                   help="NET.STA.LOC.CHA fnmatch patterns, comma-separated (default: built "
                        "from --network, --station, --location, --channel: all)")
    for name in ("network", "station", "location", "channel"):
        p.add_argument(f"--{name}", default="*", help=f"{name} code or pattern (default: all)")
    p.add_argument("--follow", action="store_true",
                   help="--sds: keep reading the records written from now on (without it the "
                        "archive is read once, from --start, and the run ends)")
    p.add_argument("--start", default=None,
                   help="--seedlink: first time to ask for (default: what the server holds); "
                        "--sds: 'begin', 'end' or a time (default: 'end' with --follow, else "
                        "'begin')")
    p.add_argument("--output", default="stream_outputs", type=pathlib.Path,
                   help="output folder (default: %(default)s)")
    p.add_argument("--inventory", default=None, metavar="STATIONS",
                   help="with --catalog: station coordinates, StationXML or a CSV with network, "
                        "station, latitude, longitude, elevation_m")
    _common(p)
    return p


def _configure_logging(log_picks):
    logging.basicConfig(level=logging.INFO if log_picks else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")



# --------------------------------------------------------------------------- demo


def build_demo_parser(prog="utrans stream-demo"):
    """The argparse parser of ``utrans stream-demo``."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Start a SeedLink replay server on a synthetic network with events at "
                    "known times, pick its stream live and compare the picks with the true "
                    "arrivals; with --catalog, also locate the events as they are confirmed "
                    "and compare them with the true ones (here an event needs 6 picks, 3 of "
                    "them P, unless --min_picks, --min_p_picks say otherwise).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stations", type=int, default=6, help="stations (default: %(default)s)")
    p.add_argument("--minutes", type=float, default=10.0,
                   help="length of the replayed records (default: %(default)s)")
    p.add_argument("--speed", type=float, default=20.0,
                   help="replay speed, a multiple of real time (0: as fast as the picker reads; "
                        "default: %(default)s)")
    p.add_argument("--faults", action="store_true",
                   help="drop the connection once, reorder and duplicate records of some "
                        "stations")
    p.add_argument("--seed", type=int, default=0, help="seed of the network (default: 0)")
    p.add_argument("--output", default="stream_demo_outputs", type=pathlib.Path,
                   help="output folder (default: %(default)s)")
    _common(p, model="seist_m_dpk_diting")
    # six stations, the far ones missing the smaller events: 6 picks (3 P) make an event here
    p.set_defaults(association_min_picks=6, association_min_p_picks=3)
    return p


# --------------------------------------------------------------------------- entry points


def _main(build, job, argv, prog):
    args = build(prog).parse_args(argv)
    quiet_framework(args.verbose)
    _configure_logging(args.log_picks)
    # The run (utrans.cli.stream_run) and its libraries load only now: --help answers at once.
    return run_job(prog, job, args)


def utrans_stream(argv):
    """``utrans stream ...``."""
    return _main(build_parser, "utrans.cli.stream_run:run", argv, "utrans stream")


def utrans_stream_demo(argv):
    """``utrans stream-demo ...``."""
    return _main(build_demo_parser, "utrans.cli.stream_run:demo", argv, "utrans stream-demo")
