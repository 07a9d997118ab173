"""Network throughput: station-days per hour with 1 and 2 local Dask worker processes.

Writes a synthetic SDS archive (``--stations`` stations x ``--days`` days,
``--hours`` hours of 100 Hz three-component data per day: coloured noise with
ObsPy's example event added every ten minutes) and runs
:func:`utrans.annotate.network.run_network` over it with a local cluster of
1 and of 2 worker processes (configured as ``utrans-annotate --sds --workers
N`` does it: one task thread per worker, TensorFlow given ``cores // N``
threads). For each cluster the models are loaded in every worker first
(start-up is reported apart), then the whole archive is processed into a
fresh output folder and timed. Reported, in one run:

* wall time, station-days per hour and data-hours per hour for each worker
  count, and the speed-up of 2 workers over 1;
* the start-up (cluster and model loading) of each;
* the load average before and after, since the machine may be shared.

Rounds alternate the order (1 then 2, 2 then 1) and the table shows the
median per worker count.

Usage::

    python benchmarks/network_throughput.py [--stations 4] [--days 2] [--hours 6]
        [--model seist_s_dpk_diting] [--rounds 1]

The preset's weights must be in ``$UTRANS_HOME`` (or downloadable).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def write_archive(root, stations, days, hours, seed=0):
    """A synthetic SDS archive; returns the first day (``obspy.UTCDateTime``).

    Args:
        root: SDS root folder.
        stations: number of stations.
        days: number of days.
        hours: hours of data per day (from 00:00).
        seed: random seed.
    """
    import obspy
    from scipy.signal import butter, sosfiltfilt

    st = obspy.read()
    st.detrend("demean")
    template = np.stack([st.select(component=c)[0].data for c in "ZNE"]).astype(np.float64)
    template *= np.hanning(template.shape[1])[None] ** 0.25
    noise_std = template[:, :400].std(axis=1)
    fs = 100.0
    sos = butter(4, [1.0, 20.0], btype="band", fs=fs, output="sos")
    first = obspy.UTCDateTime(2024, 1, 1)
    rng = np.random.default_rng(seed)
    n = int(hours * 3600 * fs)
    for d in range(days):
        day = first + 86400 * d
        for s in range(stations):
            data = sosfiltfilt(sos, rng.standard_normal((3, n)), axis=1)
            data *= (0.3 * noise_std / data.std(axis=1))[:, None]
            for start in range(int(30 * fs), n - template.shape[1], int(600 * fs)):
                data[:, start:start + template.shape[1]] += rng.uniform(0.7, 2.0) * template
            sta = f"B{s:03d}"
            for c, comp in enumerate("ZNE"):
                tr = obspy.Trace(np.round(data[c]).astype(np.int32), header={
                    "network": "XX", "station": sta, "channel": f"HH{comp}",
                    "sampling_rate": fs, "starttime": day})
                path = (pathlib.Path(root) / f"{day.year}" / "XX" / sta / f"HH{comp}.D" /
                        f"XX.{sta}..HH{comp}.D.{day.year}.{day.julday:03d}")
                path.parent.mkdir(parents=True, exist_ok=True)
                tr.write(str(path), format="MSEED", encoding="STEIM2")
    return first


def _warm(model):
    """Load the run's models in this worker (the cache run_network's tasks use)."""
    from utrans.annotate.network import RunSettings, load_models

    load_models(RunSettings(model=model))
    return os.getpid()


def measure(workers, root, first, days, model, folder):
    """``(startup seconds, run seconds, result)`` for a local cluster of ``workers``."""
    from distributed import Client

    from utrans.annotate.network import local_cluster, run_network
    from utrans.cli.network import QuietWorkers

    began = time.perf_counter()
    cluster = local_cluster(workers)
    try:
        with Client(cluster) as client:
            client.register_plugin(QuietWorkers())
            client.run(_warm, model)
            startup = time.perf_counter() - began
            began = time.perf_counter()
            result = run_network(root, first, first + 86400 * days, model, output=folder,
                                 scheduler=cluster.scheduler_address)
            elapsed = time.perf_counter() - began
    finally:
        cluster.close()
    if result.failed:
        raise RuntimeError(f"station-days failed: {result.failed}")
    return startup, elapsed, result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stations", type=int, default=4)
    p.add_argument("--days", type=int, default=2)
    p.add_argument("--hours", type=float, default=6.0, help="hours of data per day")
    p.add_argument("--model", default="seist_s_dpk_diting")
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args(argv)

    from utrans.cli import quiet_framework

    quiet_framework()
    from utrans.annotate.network import usable_cores

    cores = usable_cores()
    load_before = os.getloadavg()
    units = args.stations * args.days
    print(f"{units} station-days ({args.stations} stations x {args.days} days, "
          f"{args.hours:g} h of 100 Hz data each), model {args.model}; {cores} usable cores, "
          f"load average {load_before[0]:.1f}", flush=True)
    times = {1: [], 2: []}
    startups = {1: [], 2: []}
    catalogues = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp) / "sds"
        first = write_archive(root, args.stations, args.days, args.hours)
        for r in range(args.rounds):
            for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
                out = pathlib.Path(tmp) / f"out_{workers}_{r}"
                startup, elapsed, result = measure(workers, root, first, args.days, args.model,
                                                   out)
                times[workers].append(elapsed)
                startups[workers].append(startup)
                catalogues[workers] = result.catalogue
                print(f"round {r + 1}: {workers} worker(s) {elapsed:.1f} s "
                      f"(start-up {startup:.1f} s), {len(result.catalogue)} picks; "
                      f"load average {os.getloadavg()[0]:.1f}", flush=True)
    load_after = os.getloadavg()
    same = catalogues[1][["trace_id", "phase", "peak_time"]].equals(
        catalogues[2][["trace_id", "phase", "peak_time"]])
    print("\n| workers | wall s | station-days/h | data-h/h | start-up s | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|")
    base = statistics.median(times[1])
    for workers in (1, 2):
        wall = statistics.median(times[workers])
        print(f"| {workers} | {wall:.1f} | {units * 3600 / wall:.1f} | "
              f"{units * args.hours * 3600 / wall:.0f} | "
              f"{statistics.median(startups[workers]):.1f} | {base / wall:.2f} |")
    print(f"\nLoad average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f} on "
          f"{cores} cores; catalogues of 1 and 2 workers identical: {same}. Station-days "
          f"hold {args.hours:g} h of data: for full days divide station-days/h by "
          f"{24 / args.hours:g}.")


if __name__ == "__main__":
    main()
