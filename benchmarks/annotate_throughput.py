"""Continuous annotation speed: utrans.annotate against SeisBench on a station-day.

Builds a synthetic station-day (3 components, 100 Hz, coloured noise with
local-event-like bursts every ten minutes) and reports, in one run:

* the real-time factor (record duration / wall time) of
  ``utrans.annotate.annotate`` for ``phasenet``, ``eqtransformer``,
  ``seist_s_dpk`` and ``seist_m_dpk`` (random weights, default options);
* the share of annotate's wall time spent outside the model's forward passes
  on the same windows: every call of the compiled forward pass
  (``Predictor``) inside the timed run is timed too, and
  ``outside forward = 1 - forward passes / annotate``;
* where SeisBench is installed, ``seisbench.models.PhaseNet().annotate`` and
  ``EQTransformer().annotate`` on the same stream (random weights, their
  default window, overlap, blinding and batch size), run in a separate
  process with the same number of threads, and the speed ratio
  ``SeisBench time / utrans time`` (> 1: utrans is faster).

The machine is shared and noisy: every round times every system once, in an
order rotated from round to round, and the table reports the median over
rounds of the per-round times and ratios, with the load average before and
after. SeisBench is an optional extra of this benchmark, not a dependency of
utrans: ``pip install torch==2.13.0 seisbench``.

Usage::

    python benchmarks/annotate_throughput.py [--hours 24] [--rounds 3] [--threads 2]
        [--models phasenet,eqtransformer,seist_s_dpk,seist_m_dpk] [--no_seisbench]
        [--no_fast]
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_MODELS = "phasenet,eqtransformer,seist_s_dpk,seist_m_dpk"
SEISBENCH_MODELS = {"phasenet": "PhaseNet", "eqtransformer": "EQTransformer"}


def synthetic_day(hours=24.0, sampling_rate=100.0, seed=0):
    """A 3-component 100 Hz record: coloured noise and an event-like burst every 10 min.

    Args:
        hours: record length.
        sampling_rate: Hz.
        seed: random seed.

    Returns:
        An ``obspy.Stream`` (XX.BENCH..HH{Z,N,E}, float32).
    """
    import obspy
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(hours * 3600 * sampling_rate)
    traces = []
    t = np.arange(int(40 * sampling_rate)) / sampling_rate
    for comp in "ZNE":
        x = lfilter([1.0], [1.0, -0.9], rng.standard_normal(n)).astype(np.float32)
        for start in range(int(60 * sampling_rate), n - t.size, int(600 * sampling_rate)):
            amp = 10.0 ** rng.uniform(0.5, 2.0)
            burst = amp * np.exp(-t / 5.0) * np.sin(2 * np.pi * rng.uniform(2, 8) * t)
            x[start:start + t.size] += burst.astype(np.float32)
        traces.append(obspy.Trace(x, header={
            "network": "XX", "station": "BENCH", "location": "", "channel": f"HH{comp}",
            "sampling_rate": sampling_rate, "starttime": obspy.UTCDateTime(2024, 1, 1)}))
    return obspy.Stream(traces)


class TimedPredictor:
    """A predictor that adds up the wall time of its compiled forward passes."""

    def __init__(self, inner):
        self.inner = inner
        self.batch_size = inner.batch_size
        self.channels = inner.channels
        self.normalization = inner.normalization
        self.seconds = 0.0

    def __call__(self, windows):
        start = time.perf_counter()
        out = self.inner(windows)
        self.seconds += time.perf_counter() - start
        return out


def _seisbench_worker(conn, hours, threads):
    """Child process: times SeisBench's annotate on request."""
    import seisbench.models as sbm
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    stream = synthetic_day(hours)
    models = {name: getattr(sbm, cls)() for name, cls in SEISBENCH_MODELS.items()}
    for model in models.values():
        model.eval()
        model.annotate(stream.slice(stream[0].stats.starttime,
                                    stream[0].stats.starttime + 600))  # warm-up
    conn.send("ready")
    while True:
        name = conn.recv()
        if name is None:
            break
        start = time.perf_counter()
        models[name].annotate(stream)
        conn.send(time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0, help="record length (default 24)")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="threads per framework (default 2)")
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated registry names")
    parser.add_argument("--batch_size", type=int, default=64, help="utrans batch size (default 64)")
    parser.add_argument("--no_seisbench", action="store_true", help="skip the SeisBench runs")
    parser.add_argument("--no_fast", action="store_true",
                        help="use the training graph instead of the inference-only graph")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    import keras

    from utrans.annotate import Annotator

    load_before = os.getloadavg()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    stream = synthetic_day(args.hours)
    duration = args.hours * 3600
    print(f"Synthetic record: {args.hours:g} h, 3 x {stream[0].stats.npts} samples at 100 Hz; "
          f"{args.threads} threads; load average {load_before[0]:.1f}", flush=True)

    worker, conn = None, None
    sb_names = []
    if not args.no_seisbench:
        if not all(importlib.util.find_spec(m) for m in ("seisbench", "torch")):
            print("SeisBench (or torch) is not installed: SeisBench columns left empty.")
        else:
            ctx = mp.get_context("spawn")
            conn, child = ctx.Pipe()
            worker = ctx.Process(target=_seisbench_worker, args=(child, args.hours, args.threads))
            worker.start()
            conn.recv()
            sb_names = [n for n in names if n in SEISBENCH_MODELS]

    keras.utils.set_random_seed(0)
    annotators, n_windows = {}, {}
    for name in names:
        ann = Annotator(name, batch_size=args.batch_size, fast=not args.no_fast)
        ann.annotate(stream.slice(stream[0].stats.starttime, stream[0].stats.starttime + 600))
        groups, _ = ann.groups(stream)
        n_windows[name] = sum(ann.plan.count(g.duration_samples(100.0)) for g in groups)
        timed = TimedPredictor(ann.predictor(n_windows[name]))
        timed(np.zeros((timed.batch_size, timed.channels, ann.plan.in_samples), np.float32))
        ann.predictor = lambda n, timed=timed: timed  # every run of this annotator is timed
        annotators[name] = ann

    jobs = [("utrans", n) for n in names] + [("seisbench", n) for n in sb_names]
    times = {job: [] for job in jobs}
    forward = {name: [] for name in names}
    for r in range(args.rounds):
        shift = r % len(jobs)
        for kind, name in jobs[shift:] + jobs[:shift]:
            if kind == "utrans":
                ann = annotators[name]
                timed = ann.predictor(0)
                timed.seconds = 0.0
                start = time.perf_counter()
                ann.annotate(stream)
                elapsed = time.perf_counter() - start
                forward[name].append(timed.seconds)
            else:
                conn.send(name)
                elapsed = conn.recv()
            times[(kind, name)].append(elapsed)
        print(f"round {r + 1}/{args.rounds} done; load average {os.getloadavg()[0]:.1f}",
              flush=True)
    if worker is not None:
        conn.send(None)
        worker.join()
    load_after = os.getloadavg()

    med = statistics.median
    print()
    print("| model | windows | utrans annotate (s) | real-time factor | forward passes (s) | "
          "outside forward | SeisBench annotate (s) | SeisBench / utrans |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        ours = times[("utrans", name)]
        fwd = forward[name]
        overhead = med([1 - f / o for f, o in zip(fwd, ours)])
        row = (f"| {name} | {n_windows[name]} | {med(ours):.1f} | {duration / med(ours):,.0f} | "
               f"{med(fwd):.1f} | {overhead:.0%} |")
        if ("seisbench", name) in times:
            sb = times[("seisbench", name)]
            ratio = med([s / o for s, o in zip(sb, ours)])
            row += f" {med(sb):.1f} | {ratio:.2f} |"
        else:
            row += " | |"
        print(row)
    print(f"\nLoad average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f}; "
          f"{os.cpu_count()} CPUs; medians over {args.rounds} rounds; ratios are medians of "
          "per-round ratios.")


if __name__ == "__main__":
    main()
