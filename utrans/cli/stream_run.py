"""``utrans stream`` and ``utrans stream-demo``: the runs, on parsed arguments.

Imported once :mod:`utrans.cli.stream` has parsed the arguments.
"""

from __future__ import annotations

import time

import numpy as np
import obspy

from utrans.cli import InputError, overlap_option
from utrans.cli.annotate import output_folder, set_threads
from utrans.cli.annotate_run import load_characterizer
from utrans.cli.association import association_settings, velocity_of
from utrans.core.errors import UtransError
from utrans.core.io import write_csv
from utrans.processing.geodesy import epicentral_distance_km
from utrans.stream import StreamCatalog, StreamPicker
from utrans.stream.demo import demo_catalog_network, demo_network
from utrans.stream.output import EventWriter, PickWriter
from utrans.stream.run import StreamRunner, resume_from
from utrans.stream.server import Faults, ReplayServer, StreamSource
from utrans.stream.sources import SDSFollower, SeedLinkSource, SelectionError

__all__ = ["demo", "run"]


def _select(args):
    if args.select:
        return args.select
    return f"{args.network}.{args.station}.{args.location}.{args.channel}"


def _picker(args, characterizer=None, on_pick=None):
    thresholds = {k: getattr(args, f"{k}_threshold") for k in ("P", "S", "det")
                  if getattr(args, f"{k}_threshold") is not None}
    try:
        picker = StreamPicker(args.model, batch_size=args.batch_size,
                              overlap=overlap_option(args.overlap), blinding=args.blinding,
                              stacking=args.stacking, thresholds=thresholds or None,
                              min_peak_distance_s=args.min_peak_distance_s,
                              missing_components=args.missing_components,
                              characterizer=characterizer, allow_random=args.random_weights,
                              max_late_s=args.max_late_s, on_pick=on_pick)
    except (UtransError, KeyError, OSError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise InputError(f"model {args.model!r}: {message}") from err
    print(f"Model {picker.name}: {picker.conventions.describe()}; windows every "
          f"{picker.plan.step / picker.rate:g} s", flush=True)
    seconds = picker.warm_up()
    print(f"Compiled for batches of {', '.join(map(str, picker.batch_sizes))} windows "
          f"({seconds:.0f} s)", flush=True)
    return picker


def _writer(out_dir, picker, args):
    try:
        return PickWriter(out_dir, picker.columns(), picker.name, quakeml=not args.no_quakeml)
    except UtransError as err:
        raise InputError(str(err)) from None


def _catalog(args, stations, out_dir, on_event=None):
    """The streaming catalogue of ``--catalog`` (its inputs checked before the model loads)."""
    try:
        writer = EventWriter(out_dir, quakeml=not args.no_quakeml)
        catalog = StreamCatalog(stations, velocity_of(args), association_settings(args),
                                writer=writer, on_event=on_event)
        catalog.settings.write(out_dir / "settings.json", velocity=catalog.velocity.to_dict(),
                               inventory=str(args.inventory) if getattr(args, "inventory", None)
                               else "stations.csv (the demo network)")
        return catalog
    except ImportError as err:
        raise InputError(f"--catalog needs PyOcto: pip install 'utrans[catalog]' ({err})") \
            from None
    except (UtransError, OSError, KeyError, TypeError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise InputError(message) from None


def _print_event(event):
    print(f"  Event {event['event_id']} at {event['time'][11:22]}: {event['latitude']:.3f} "
          f"{event['longitude']:.3f}, {event['depth_km']:.1f} km deep, {event['n_picks']} "
          f"picks" + (f", M {event['magnitude']:.1f}" if event.get("magnitude") is not None
                      and np.isfinite(event["magnitude"]) else ""), flush=True)


def _source(args, resume):
    select = _select(args)
    try:
        if args.seedlink is not None:
            return SeedLinkSource(args.seedlink, select, start=args.start, resume_from=resume)
        start = args.start or ("end" if args.follow else "begin")
        return SDSFollower(args.sds, select, start=start, resume_from=resume)
    except (OSError, ValueError) as err:
        raise InputError(str(err)) from None


def _run(runner, out_dir, state_dir):
    """Run and print the closing line; returns the exit code."""
    try:
        result = runner.run()
    except SelectionError as err:
        raise InputError(str(err)) from None
    where = f"{result.picks} pick(s) written to {out_dir / 'picks.csv'}"
    if runner.catalog is not None:
        where += f", {result.events} event(s) to {out_dir / 'events.csv'}"
    saved = f"; state saved in {state_dir}" if state_dir is not None else ""
    if result.interrupted:
        print(f"Stopped: {where}{saved}.", flush=True)
        return 130
    print(f"The stream ended: {where}{saved}.", flush=True)
    return 0


def run(args):
    """``utrans stream`` with parsed arguments; returns the exit code."""
    if args.catalog and args.inventory is None:
        raise InputError("--catalog needs --inventory stations.xml|stations.csv: the station "
                         "coordinates")
    if args.inventory is not None and not args.catalog:
        raise InputError("--inventory is read with --catalog only; add --catalog to associate "
                         "the picks into events")
    out_dir = output_folder(args.output)
    if args.sds is not None and not args.sds.is_dir():
        raise InputError(f"--sds {args.sds}: no such folder")
    catalog = _catalog(args, args.inventory, out_dir, _print_event) if args.catalog else None
    if args.threads:
        set_threads(args.threads)  # before any model (picker or characteriser) opens
    characterizer = load_characterizer(args.characterize, batch_size=8) \
        if args.characterize else None
    picker = _picker(args, characterizer)
    writer = _writer(out_dir, picker, args)
    source = _source(args, resume_from(args.state))
    runner = StreamRunner(source, picker, writer, state_dir=args.state,
                          follow=args.seedlink is not None or args.follow, catalog=catalog)
    try:
        runner.restore()
    except ValueError as err:
        raise InputError(f"--state {args.state}: {err}") from None
    print(f"Streaming {_select(args)} from {source}; picks go to {out_dir / 'picks.csv'} "
          "(Ctrl-C stops)", flush=True)
    return _run(runner, out_dir, args.state)


def _print_pick(row):
    print(f"  {row['phase']} {row['trace_id']}.{row['instrument']} {row['peak_time'][11:23]} "
          f"p={row['peak_value']:.2f} latency {row['latency_s']:.2f} s", flush=True)


def _compare(picks, truth, tolerance=0.5):
    """How many true P were picked within ``tolerance`` s, and the extra P picks."""
    found = 0
    used = set()
    for row in truth[truth.phase == "P"].itertuples():
        mine = [(abs(obspy.UTCDateTime(p["peak_time"]) - row.time), i)
                for i, p in enumerate(picks)
                if p["phase"] == "P" and p["trace_id"].split(".")[1] == row.station]
        best = min(mine, default=(np.inf, None))
        if best[0] <= tolerance:
            found += 1
            used.add(best[1])
    extra = sum(1 for i, p in enumerate(picks) if p["phase"] == "P" and i not in used)
    return found, extra


def demo(args):
    """``utrans stream-demo`` with parsed arguments; returns the exit code."""
    if args.stations < 1 or args.minutes <= 0 or args.speed < 0:
        raise InputError("--stations must be >= 1, --minutes > 0 and --speed >= 0. Received: "
                         f"{args.stations}, {args.minutes:g}, {args.speed:g}")
    if args.catalog and args.minutes <= 2:
        raise InputError(f"--catalog needs --minutes > 2 (events at least 45 s apart, and time "
                         f"for their waves to cross the network). Received: {args.minutes:g}")
    out_dir = output_folder(args.output)
    picks, events = [], []

    def on_pick(row):
        picks.append(row)
        _print_pick(row)

    def on_event(event):
        events.append(event)
        _print_event(event)

    catalog = made = None
    if args.catalog:
        made = demo_catalog_network(args.stations, 60.0 * args.minutes, seed=args.seed)
        network, truth = made.stream, made.truth
        print(f"Station coordinates written to {write_csv(made.stations, out_dir / 'stations.csv')}"
              f"; {len(made.events)} true events", flush=True)
        catalog = _catalog(args, made.stations, out_dir, on_event)
    else:
        network, truth = demo_network(args.stations, 60.0 * args.minutes, seed=args.seed)
    if args.threads:
        set_threads(args.threads)  # before any model (picker or characteriser) opens
    picker = _picker(args, load_characterizer(args.characterize, batch_size=8)
                     if args.characterize else None, on_pick)
    writer = _writer(out_dir, picker, args)
    faults = {}
    if args.faults:
        faults = {"*.S01": Faults(drop_after=40, max_drops=1),
                  "*.S02": Faults(reorder_every=5, duplicate_every=7)}
    server = ReplayServer(StreamSource(network), speed=args.speed or None, faults=faults,
                          hangup_at_end=True)
    with server:
        print(f"Replaying {args.stations} stations x {args.minutes:g} min "
              f"({int((truth.phase == 'P').sum())} P arrivals) on SeedLink {server.address}, "
              + (f"{args.speed:g}x real time" if args.speed else "as fast as read")
              + (", with faults" if faults else ""), flush=True)
        source = SeedLinkSource(server.address, "*.*.*.HH?", backoff=0.2, max_backoff=2.0)
        runner = StreamRunner(source, picker, writer, state_dir=args.state, catalog=catalog)
        runner.restore()
        started = time.time()
        code = _run(runner, out_dir, args.state)
    found, extra = _compare(picks, truth)
    latency = [p["latency_s"] for p in picks if p["phase"] == "P"]
    n_true = int((truth.phase == "P").sum())
    print(f"{found} of {n_true} true P arrivals picked within 0.5 s ({extra} other P picks); "
          + (f"P latency median {np.median(latency):.2f} s, 95th percentile "
             f"{np.percentile(latency, 95):.2f} s; " if latency else "")
          + f"{time.time() - started:.0f} s of wall time.")
    if made is not None:
        print(_compare_events(events, made.events), flush=True)
    return code


def _compare_events(found, true, tolerance_s=3.0):
    """A line comparing the events found with the true ones (nearest origin within ``tolerance_s``)."""
    if not len(true):
        return f"{len(found)} event(s) found; the records hold no true event."
    times = np.array([obspy.UTCDateTime(e["time"]).timestamp for e in found], dtype=float)
    dt, dx, used = [], [], set()
    for event in true.itertuples():
        if not len(times):
            break
        k = int(np.argmin(np.abs(times - obspy.UTCDateTime(event.time).timestamp)))
        error = times[k] - obspy.UTCDateTime(event.time).timestamp
        if abs(error) > tolerance_s or k in used:
            continue
        used.add(k)
        dt.append(abs(error))
        dx.append(float(epicentral_distance_km(event.latitude, event.longitude,
                                               found[k]["latitude"], found[k]["longitude"])))
    line = (f"{len(dt)} of {len(true)} true events found within {tolerance_s:g} s "
            f"({len(found) - len(dt)} other event(s))")
    if dt:
        line += (f"; origin time error median {np.median(dt):.2f} s, max {max(dt):.2f} s; "
                 f"epicentre error median {np.median(dx):.1f} km, max {max(dx):.1f} km")
    return line + "."
