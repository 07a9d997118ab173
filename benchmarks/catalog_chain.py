"""The event catalogue chain on a synthetic network: what it finds, and how fast.

Writes the synthetic network of :func:`utrans.catalog.write_synthetic_network`
(by default 10 stations over 50 km, 20 events in 3 hours, seed 2025, which no
test uses) as an SDS archive with StationXML, runs
:func:`utrans.catalog.catalog` on it (picking with ``--model``,
characterisation with ``--characterize``, association with the default
settings, every output) and prints, measured in that one run:

* event recall and precision (a found event matches a true one within 2 s
  and 10 km, one to one: :func:`utrans.catalog.scoring.score_catalogue`);
* the median epicentral, depth and magnitude error of the matched events;
* station-days per hour of the whole chain (picking, association, outputs)
  and of the picking stage alone, with the seconds of each stage;
* the load average before and after (the machine may be shared).

Usage::

    python benchmarks/catalog_chain.py [--model seist_m_dpk_diting]
        [--characterize seist_m_emg_diting] [--workers 2] [--seed 2025]
        [--stations 10] [--events 20] [--hours 3] [--keep DIR]

The presets' weights must be in ``$UTRANS_HOME`` (or downloadable); needs
the catalog extra.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="seist_m_dpk_diting")
    parser.add_argument("--characterize", default="seist_m_emg_diting",
                        help="comma-separated window models ('' for none)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--stations", type=int, default=10)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--aperture_km", type=float, default=50.0)
    parser.add_argument("--keep", type=pathlib.Path, default=None,
                        help="write the network and the catalogue here (default: a temporary "
                             "folder, removed)")
    args = parser.parse_args(argv)

    from utrans.catalog import catalog, write_synthetic_network
    from utrans.catalog.scoring import score_catalogue
    from utrans.cli import quiet_framework
    from utrans.cli.network import QuietWorkers

    quiet_framework()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or pathlib.Path(tmp)
        began = time.perf_counter()
        net = write_synthetic_network(folder / "network", n_stations=args.stations,
                                      aperture_km=args.aperture_km, n_events=args.events,
                                      duration_s=args.hours * 3600.0, seed=args.seed)
        written = time.perf_counter() - began
        load_before = os.getloadavg()[0]
        began = time.perf_counter()
        run = catalog(net.sds, net.stationxml, net.start, net.start + net.duration_s, args.model,
                      characterize=[m for m in args.characterize.split(",") if m],
                      output=folder / "catalog", workers=args.workers, progress=False,
                      worker_plugin=QuietWorkers())
        wall = time.perf_counter() - began
        load_after = os.getloadavg()[0]
    score = score_catalogue(net.events, run.events)
    station_days = args.stations * args.hours / 24.0
    picking = run.seconds["picking"]
    print(f"Synthetic network: {args.stations} stations over {args.aperture_km:g} km, "
          f"{args.events} events in {args.hours:g} h (seed {args.seed}; written in "
          f"{written:.1f} s); picker {args.model}, characterisation "
          f"{args.characterize or 'none'}, {args.workers} worker(s); load average "
          f"{load_before:.1f} before, {load_after:.1f} after")
    print(f"Stages: picking {picking:.1f} s, association {run.seconds['association']:.1f} s, "
          f"outputs {run.seconds['outputs']:.1f} s; whole chain {wall:.1f} s")
    print()
    print("| events (true / found / matched) | recall | precision | median epicentral error "
          "| median depth error | median magnitude error | station-days/h, chain "
          "| station-days/h, picking alone |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {score['n_true']} / {score['n_found']} / {score['n_matched']} "
          f"| {score['recall']:.2f} | {score['precision']:.2f} "
          f"| {score['median_epicentral_km']:.2f} km | {score['median_depth_error_km']:.2f} km "
          f"| {score['median_magnitude_error']:.2f} | {station_days / wall * 3600:.1f} "
          f"| {station_days / picking * 3600:.1f} |")
    return score


if __name__ == "__main__":
    main()
