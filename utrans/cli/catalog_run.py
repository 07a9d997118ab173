"""``utrans catalog``'s run: check the inputs, run the chain, say what was written.

Imported once :func:`utrans.cli.catalog.main` has parsed the arguments.
"""

from __future__ import annotations

from utrans.catalog.chain import check_inputs, run_catalog
from utrans.cli import InputError
from utrans.cli.association import association_settings, velocity_of
from utrans.cli.network import QuietWorkers, report_failed, where
from utrans.core.errors import UtransError
from utrans.runtime import conventions_of

__all__ = ["run"]


def run(args):
    """Run ``utrans catalog`` with parsed arguments.

    Args:
        args: the parsed arguments.

    Returns:
        Exit code: 0 when the catalogue was written, 1 when station-days failed.

    Raises:
        utrans.cli.InputError: bad input (one line).
    """
    characterize = [m.strip() for m in (args.characterize or "").split(",") if m.strip()]
    thresholds = {k: getattr(args, f"{k}_threshold") for k in ("P", "S")
                  if getattr(args, f"{k}_threshold") is not None}
    try:
        inputs = check_inputs(
            args.archive, args.inventory, args.start, args.end, args.model, output=args.output,
            velocity=velocity_of(args), settings=association_settings(args),
            characterize=characterize, network=args.network,
            station=args.station, location=args.location, channel=args.channel,
            workers=args.workers, scheduler=args.scheduler)
        print(f"Model {args.model}: {conventions_of(args.model).describe()}")
        stations = inputs.picked
        print(f"Archive {args.archive}: {len(stations)} station(s) with coordinates in "
              f"{args.inventory} ({', '.join(stations[:8])}{', ...' if len(stations) > 8 else ''})"
              f", {len(inputs.units)} station-day(s) from {inputs.start} to {inputs.end}, on "
              f"{where(args)}")
        result = run_catalog(
            inputs, thresholds=thresholds, min_peak_distance_s=args.min_peak_distance_s,
            plots=not args.no_plots, progress=not args.no_progress, batch_size=args.batch_size,
            worker_plugin=None if args.verbose else QuietWorkers())
    except (UtransError, KeyError, OSError, TypeError, ValueError) as err:
        raise InputError(err.args[0] if isinstance(err, KeyError) and err.args else
                         str(err)) from err
    picking = result.picking
    print(f"Station-days: {picking.count('done')} processed, {picking.count('skipped')} already "
          f"done, {len(result.failed)} failed")
    if result.failed:
        return report_failed(result.failed, "made")
    events, picks = result.events, result.picks
    associated = int((picks["event_id"] != "").sum()) if len(picks) else 0
    if not len(picks):
        print(f"No picks between {inputs.start} and {inputs.end}: wrote empty tables with their "
              f"headers to {result.folder}")
    elif not len(events):
        print(f"No events from {len(picks)} pick(s): wrote empty events and arrivals tables "
              f"with their headers to {result.folder}")
    else:
        print(f"Located {len(events)} event(s) from {associated} of {len(picks)} pick(s)")
    for name in ("events", "arrivals", "picks", "catalog", "settings", "map"):
        if name in result.files:
            print(f"Wrote {result.files[name]}")
    figures = sum(name.startswith("events/") for name in result.files)
    if figures:
        print(f"Wrote {figures} record section(s) in {result.folder / 'events'}")
    return 0
