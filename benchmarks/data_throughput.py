"""Data-layer throughput: traces/s of DataGenerator against the raw HDF5 read floor.

Writes (or reuses) a synthetic DataCollected file of ``--traces`` traces,
warms the page cache, then measures in one run:

* raw floor: ``f[trace_id]["data"][()]`` for every trace with the file kept open;
* a per-trace loop in the style of the research generators (file reopened per
  batch, attributes read for every trace, normalisation over (6000, 3));
* DataGenerator, location task, no augmentation (1 worker);
* DataGenerator, location task, full augmentation at the reference trainer's
  rates (add_event 0.6, shift_event 0.99, add_noise 0.3, drop_channel 0.5,
  add_gap 0.2; 1 worker);
* the same with 2 worker threads and with 2 worker processes (forked after the
  metadata cache was filled).

Generators are measured in steady state: one warm-up epoch (the per-trace
metadata cache fills there), then ``--repeats`` epochs are timed and the best
is kept (the floor likewise), which damps noise from other load on the machine. Traces/s counts
the traces delivered in batches (an augmented batch of 32 holds 16 traces read
from disk, each twice). Prints a markdown table.

Usage: ``python benchmarks/data_throughput.py [--traces 2000] [--batch-size 32] [--out DIR]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utrans.augment import reference_steps  # noqa: E402
from utrans.data import DataGenerator  # noqa: E402
from utrans.synthetic import write_synthetic_dataset  # noqa: E402

_CLEAN, _AUGMENTED = reference_steps(add_event_r=0.6, shift_event_r=0.99, add_noise_r=0.3,
                                     drop_channel_r=0.5, add_gap_r=0.2)
FULL_AUG = dict(augmentation=True, steps=_CLEAN, augment_steps=_AUGMENTED)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def warm_page_cache(path):
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


def raw_floor(path, ids, repeats=3):
    best = 0.0
    with h5py.File(path, "r") as f:
        for _ in range(repeats):
            t0 = time.perf_counter()
            for tid in ids:
                f[tid]["data"][()]
            best = max(best, len(ids) / (time.perf_counter() - t0))
    return best


def naive_loop(path, ids, batch_size):
    """Per-trace loop like the research generators (for context)."""
    t0 = time.perf_counter()
    n = 0
    for b in range(len(ids) // batch_size):
        with h5py.File(path, "r") as f:
            X = np.zeros((batch_size, 6000, 3))
            y = np.zeros((batch_size, 3))
            for i, tid in enumerate(ids[b * batch_size:(b + 1) * batch_size]):
                g = f.get(str(tid))
                data = np.array(g["data"])
                a = g.attrs
                _ = (a["data_category"], a["p_arrival_sample"], a["s_arrival_sample"],
                     a["coda_end_sample"], a["snr_db"], a["magnitude"])
                y[i] = (a["station_lat"] - a["event_lat"], a["station_long"] - a["event_long"],
                        float(a["depth"]) / 114.5)
                data = data - data.mean(axis=0, keepdims=True)
                sd = data.std(axis=0, keepdims=True)
                sd[sd == 0] = 1
                X[i] = data / sd
                n += 1
    return n / (time.perf_counter() - t0)


def steady_epoch(gen, run, repeats=3):
    """Warm-up epoch, then time the following epochs; returns the best traces/s."""
    run(gen)
    gen.on_epoch_end()
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = run(gen)
        best = max(best, n / (time.perf_counter() - t0))
        gen.on_epoch_end()
    return best


def run_serial(gen):
    n = 0
    for i in range(len(gen)):
        x, _ = gen[i]
        n += x.shape[0]
    return n


def run_threads(gen, workers=2):
    with ThreadPoolExecutor(workers) as ex:
        return sum(x.shape[0] for x, _ in ex.map(gen.__getitem__, range(len(gen))))


_SHARED = {}


def _proc_item(i):
    x, _ = _SHARED["gen"][i]
    return x.shape[0]


def run_processes(gen, workers=2):
    _SHARED["gen"] = gen
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        return sum(pool.imap(_proc_item, range(len(gen)), chunksize=1))


def cache_bytes_per_trace(gen):
    cols = [gen._offset, gen._dtype_idx, gen._p, gen._s, gen._coda, gen._snr_min, gen._noise,
            gen._bad, gen._filled] + list(gen._extra.values())
    return sum(c.itemsize for c in cols)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "utrans_bench_data"))
    args = ap.parse_args(argv)

    out = Path(args.out)
    path = out / "DataCollected.hdf5"
    marker = out / f"n{args.traces}.done"
    if not marker.exists():
        t0 = time.perf_counter()
        write_synthetic_dataset(out, n_events=args.traces, n_noise=0, seed=0, layouts=("datacollected",))
        marker.touch()
        print(f"wrote {args.traces} traces in {time.perf_counter() - t0:.1f} s to {path}")
    with h5py.File(path, "r") as f:
        ids = list(f.keys())
    warm_page_cache(path)
    bs = args.batch_size

    rows = []
    floor = raw_floor(path, ids, args.repeats)
    rows.append(("raw floor `f[id]['data'][()]`, file kept open", floor))
    rows.append(("per-trace loop, research style (reopen per batch, attrs per trace)",
                 naive_loop(path, ids, bs)))

    gen = DataGenerator(ids, path, batch_size=bs, labeller="location", seed=0)
    rows.append(("DataGenerator location, no augmentation, 1 worker", steady_epoch(gen, run_serial, args.repeats)))
    per_trace = cache_bytes_per_trace(gen)

    gen_aug = DataGenerator(ids, path, batch_size=bs, labeller="location", seed=0, **FULL_AUG)
    rows.append(("DataGenerator location, full augmentation, 1 worker", steady_epoch(gen_aug, run_serial, args.repeats)))
    rows.append(("DataGenerator location, no augmentation, 2 worker threads",
                 steady_epoch(gen, run_threads, args.repeats)))
    rows.append(("DataGenerator location, full augmentation, 2 worker threads",
                 steady_epoch(gen_aug, run_threads, args.repeats)))
    gen_p = DataGenerator(ids, path, batch_size=bs, labeller="location", seed=0,
                          cache_metadata=True, **FULL_AUG)
    rows.append(("DataGenerator location, full augmentation, 2 worker processes",
                 steady_epoch(gen_p, run_processes, args.repeats)))

    # measure the floor again at the end and keep the best, so that the ratios
    # are not inflated by a floor measured during a burst of load
    floor = max(floor, raw_floor(path, ids, args.repeats))
    rows[0] = (rows[0][0], floor)
    load = os.getloadavg()[0]
    print(f"\n{len(ids)} traces (6000 x 3 float32, DataCollected layout), batch size {bs}, "
          f"page cache warm, {os.cpu_count()} CPUs, load average {load:.1f}, best of {args.repeats}\n")
    print("| reader | traces/s | ratio to floor |")
    print("|---|---:|---:|")
    for name, tps in rows:
        print(f"| {name} | {tps:,.0f} | {tps / floor:.2f} |")
    print(f"\npeak RSS of the benchmark process: {peak_rss_mb():.0f} MB (includes TensorFlow/Keras import)")
    print(f"metadata cache: {per_trace} bytes per trace "
          f"(~{per_trace:.0f} MB per million traces); waveform memory: one batch "
          f"({bs * 6000 * 3 * 4 / 2**20:.1f} MB float32) per worker, independent of the file size")


if __name__ == "__main__":
    main()
