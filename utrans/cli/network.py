"""``utrans annotate --sds``: a network archive to a pick catalogue from the command line.

::

    utrans annotate --sds /data/sds --start 2024-01-01 --end 2024-02-01 --network XX \\
        --model seist_m_dpk_diting --characterize seist_m_pmp_diting,seist_m_emg_diting \\
        --workers 8 --output xx_january
    utrans annotate --sds /data/sds --start 2024-01-01 --end 2024-02-01 \\
        --model seist_m_dpk_diting --scheduler tcp://head:8786 --output /shared/xx_january

The options of this group are added to ``utrans annotate``'s parser; the run
itself is :func:`utrans.annotate.network.run_network`. The same command run
again resumes: finished station-days are skipped.
"""

from __future__ import annotations

import pathlib
import sys

from distributed.diagnostics.plugin import WorkerPlugin

from utrans.annotate.archive import plan_units
from utrans.annotate.network import run_network, usable_cores
from utrans.cli import InputError, overlap_option, quiet_framework
from utrans.core.errors import UtransError
from utrans.runtime import conventions_of

__all__ = ["QuietWorkers", "add_arguments", "run"]


class QuietWorkers(WorkerPlugin):
    """Silence TensorFlow's start-up chatter in each Dask worker (before it imports TensorFlow)."""

    name = "utrans-quiet-framework"

    def setup(self, worker):
        quiet_framework()


def add_arguments(parser):
    """Add the network-archive options to ``utrans-annotate``'s parser."""
    g = parser.add_argument_group(
        "network archive",
        "Read an SDS archive instead of files: one picks table per station-day, written by "
        "worker processes (or a Dask cluster), then merged into <output>/picks.csv. Run the "
        "same command again to resume after an interruption.")
    g.add_argument("--sds", type=pathlib.Path, default=None, metavar="ROOT",
                   help="SDS archive root folder (YEAR/NET/STA/CHAN.D/...)")
    g.add_argument("--start", default=None, help="first day or time (2024-01-31[T06:00:00])")
    g.add_argument("--end", default=None, help="end of the range, excluded")
    for name in ("network", "station", "location", "channel"):
        g.add_argument(f"--{name}", default="*",
                       help=f"{name} code or pattern (fnmatch: '*', 'ST?'; default: all)")
    g.add_argument("--chunk_s", type=float, default=86400.0, metavar="S",
                   help="length of a work unit in seconds (default: one day)")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes on this machine (default: the CPU cores; 0: run "
                        "in this process)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on an existing Dask cluster (tcp://host:8786); its workers must "
                        "see the archive and the output folder at the same paths")
    g.add_argument("--format", choices=("csv", "parquet"), default="csv",
                   help="format of the per-station-day tables (parquet needs pyarrow; "
                        "default: %(default)s)")


def run(args):
    """Run ``utrans-annotate --sds ...``.

    Args:
        args: the parsed arguments of ``utrans-annotate``.

    Returns:
        Exit code: 0 when the catalogue was written, 1 when station-days failed.

    Raises:
        utrans.cli.InputError: bad options or archive.
    """
    if args.inputs:
        raise InputError("give either input files or --sds, not both")
    if not args.start or not args.end:
        raise InputError("--sds needs --start and --end")
    if args.mseed:
        raise InputError("--mseed (probability traces) is not written for archives")
    if args.threads:
        raise InputError("--threads does not apply to archives; use --workers")
    selection = {"network": args.network, "station": args.station,
                 "location": args.location, "channel": args.channel}
    try:
        units = plan_units(args.sds, args.start, args.end, chunk_s=args.chunk_s, **selection)
    except (FileNotFoundError, ValueError) as err:
        raise InputError(str(err)) from err
    stations = sorted({u.station_id for u in units})
    where = (f"Dask scheduler {args.scheduler}" if args.scheduler else
             "this process" if args.workers == 0 else
             f"{args.workers or usable_cores()} local worker process(es)")
    try:
        conventions = conventions_of(args.model)
    except (UtransError, KeyError, OSError, ValueError) as err:
        raise InputError(f"model {args.model!r}: {err.args[0] if err.args else err}") from err
    print(f"Model {args.model}: {conventions.describe()}")
    print(f"Archive {args.sds}: {len(stations)} station(s) ({', '.join(stations[:8])}"
          f"{', ...' if len(stations) > 8 else ''}), {len(units)} station-day(s) from "
          f"{args.start} to {args.end}, on {where}")
    thresholds = {k: getattr(args, f"{k}_threshold") for k in ("P", "S", "det")
                  if getattr(args, f"{k}_threshold") is not None}
    options = {"batch_size": args.batch_size, "overlap": overlap_option(args.overlap),
               "blinding": args.blinding, "stacking": args.stacking,
               "window_grid": args.window_grid,
               "missing_components": args.missing_components}
    characterize = [m.strip() for m in (args.characterize or "").split(",") if m.strip()]
    try:
        result = run_network(
            args.sds, args.start, args.end, args.model, output=args.output,
            characterize=characterize, thresholds=thresholds,
            min_peak_distance_s=args.min_peak_distance_s, chunk_s=args.chunk_s,
            fmt=args.format, workers=args.workers, scheduler=args.scheduler,
            quakeml=args.quakeml, plot=not args.no_plots, progress=not args.no_progress,
            worker_plugin=None if args.verbose else QuietWorkers(), **selection, **options)
    except (UtransError, KeyError, OSError, TypeError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise InputError(message) from err
    print(f"Station-days: {result.count('done')} processed, {result.count('skipped')} "
          f"already done, {len(result.failed)} failed")
    if result.failed:
        for unit_id, message in result.failed:
            print(f"  {unit_id}: {message}", file=sys.stderr)
        print("Run the same command again to process the station-days that failed; the "
              "catalogue is written when all are done.", file=sys.stderr)
        return 1
    frame = result.catalogue
    counts = frame.phase.value_counts().to_dict() if len(frame) else {}
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no picks"
    print(f"Wrote {result.files[0]} ({summary} on {frame.trace_id.nunique() if len(frame) else 0}"
          f" station(s)); per station-day tables in {result.folder / 'units'}")
    for path in result.files[1:]:
        print(f"Wrote {path}")
    return 0
