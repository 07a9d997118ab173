"""``utrans annotate --sds``: a network archive to a pick catalogue from the command line.

::

    utrans annotate --sds /data/sds --start 2024-01-01 --end 2024-02-01 --network XX \\
        --model seist_m_dpk_diting --characterize seist_m_pmp_diting,seist_m_emg_diting \\
        --workers 8 --output xx_january
    utrans annotate --sds /data/sds --start 2024-01-01 --end 2024-02-01 \\
        --model seist_m_dpk_diting --scheduler tcp://head:8786 --output /shared/xx_january

The options of this group are in ``utrans annotate``'s parser
(:mod:`utrans.cli.annotate`); the run itself is
:func:`utrans.annotate.network.run_network`. The same command run
again resumes: finished station-days are skipped.
"""

from __future__ import annotations

import sys

from distributed.diagnostics.plugin import WorkerPlugin

from utrans.annotate.archive import plan_units
from utrans.annotate.network import run_network, usable_cores
from utrans.cli import InputError, overlap_option, quiet_framework
from utrans.core.errors import UtransError
from utrans.runtime import conventions_of

__all__ = ["QuietWorkers", "report_failed", "run", "where"]


class QuietWorkers(WorkerPlugin):
    """Silence TensorFlow's start-up chatter in each Dask worker (before it imports TensorFlow)."""

    name = "utrans-quiet-framework"

    def setup(self, worker):
        quiet_framework()


def where(args):
    """Where the station-days run (``--workers``, ``--scheduler``), in words."""
    if args.scheduler:
        return f"Dask scheduler {args.scheduler}"
    if args.workers == 0:
        return "this process"
    return f"{args.workers or usable_cores()} local worker process(es)"


def report_failed(failed, done):
    """Name the station-days that failed on stderr; returns the exit code 1.

    Args:
        failed: ``(unit_id, message)`` pairs.
        done: what happens to the catalogue once all are done (``"written"``).
    """
    for unit_id, message in failed:
        print(f"  {unit_id}: {message}", file=sys.stderr)
    print("Run the same command again to process the station-days that failed; the "
          f"catalogue is {done} when all are done.", file=sys.stderr)
    return 1


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
    try:
        conventions = conventions_of(args.model)
    except (UtransError, KeyError, OSError, ValueError) as err:
        raise InputError(f"model {args.model!r}: {err.args[0] if err.args else err}") from err
    print(f"Model {args.model}: {conventions.describe()}")
    print(f"Archive {args.sds}: {len(stations)} station(s) ({', '.join(stations[:8])}"
          f"{', ...' if len(stations) > 8 else ''}), {len(units)} station-day(s) from "
          f"{args.start} to {args.end}, on {where(args)}")
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
        return report_failed(result.failed, "written")
    frame = result.catalogue
    counts = frame.phase.value_counts().to_dict() if len(frame) else {}
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no picks"
    print(f"Wrote {result.files[0]} ({summary} on {frame.trace_id.nunique() if len(frame) else 0}"
          f" station(s)); per station-day tables in {result.folder / 'units'}")
    for path in result.files[1:]:
        print(f"Wrote {path}")
    return 0
