"""Annotate throughput of SeisBench weights: utrans with Keras, ONNX Runtime and LiteRT.

The same weights, the same record, the same windows, the same threads, one run:

* weights: SeisBench's PhaseNet and EQTransformer weight files
  (``$UTRANS_REFERENCE/seisbench``: SeisBench's own classes at their
  defaults, seeded random weights: the work per window is a trained model's),
  loaded with :func:`utrans.loading.load_model`, so the conventions (window,
  overlap, stacking, blinding, normalisation) are SeisBench's;
* record: the synthetic station-day of ``throughput_common.py`` (3
  components at 100 Hz, coloured noise and an event-like burst every ten
  minutes), ``--hours`` long;
* runners: :class:`utrans.annotate.Annotator` with the Keras model (its
  compiled inference graph), and with the model exported by
  :func:`utrans.export.export` to ONNX (ONNX Runtime) and to LiteRT (LiteRT's
  interpreter; EQTransformer's LSTMs need a fixed batch in LiteRT: exported
  with ``batch_size=--batch_size``); TensorFlow, ONNX Runtime and LiteRT each
  get ``--threads`` threads;
* SeisBench's own ``annotate`` of the same weights on the same record, in a
  child process with the same threads
  (:class:`throughput_common.SeisBenchProcess`), run by the Python that has
  ``seisbench`` and ``torch``: ``--seisbench_python``, else
  ``$UTRANS_SEISBENCH_PYTHON``, else this Python if it has them; otherwise
  its columns say n/a.

Every round runs every system once, in an order rotated from round to round;
the table gives medians over rounds of the times and of the per-round ratios
(``Keras / ONNX``: > 1 means ONNX Runtime is faster), and the time spent in
the runners' forward passes (the rest is the pipeline's: resampling,
windows, normalisation, stacking, the same code for every runner). The
machine's load average is printed before and after: on a shared machine the
numbers are indicative only.

Usage::

    python benchmarks/export_throughput.py [--hours 24] [--rounds 3] [--threads 2]
        [--models phasenet,eqtransformer] [--batch_size 64]
        [--seisbench_python PATH] [--no_seisbench]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tensorflow as tf  # noqa: E402

from throughput_common import (  # noqa: E402
    SeisBenchProcess,
    TimedRunner,
    add_seisbench_arguments,
    reference_root,
    seisbench_python,
    synthetic_day,
    warm_up_part,
)
from utrans.annotate import Annotator  # noqa: E402
from utrans.export import export  # noqa: E402
from utrans.loading import load_model  # noqa: E402
from utrans.runtime import load_exported  # noqa: E402

# model -> (SeisBench weight file in the reference folder, SeisBench class)
WEIGHTS = {"phasenet": ("phasenet.json.v1", "PhaseNet"),
           "eqtransformer": ("eqtransformer.json.v1", "EQTransformer")}
SYSTEMS = ("keras", "onnx", "litert")


def build_annotators(name, args, folder):
    """``{system: Annotator}`` of one model, each runner timed."""
    weights = reference_root() / "seisbench" / WEIGHTS[name][0]
    model = load_model(str(weights))
    out = {"keras": Annotator(model, batch_size=args.batch_size)}
    start = time.perf_counter()
    onnx = export(model, "onnx", folder / f"{name}_onnx")
    onnx_s = time.perf_counter() - start
    options = {"batch_size": args.batch_size} if name == "eqtransformer" else {}
    start = time.perf_counter()
    litert = export(model, "litert", folder / f"{name}_litert", **options)
    litert_s = time.perf_counter() - start
    print(f"{name}: exported to ONNX in {onnx_s:.0f} s, LiteRT in {litert_s:.0f} s"
          + (f" (fixed batch {args.batch_size})" if options else ""), flush=True)
    for system, path in (("onnx", onnx), ("litert", litert)):
        runner = load_exported(path, batch_size=args.batch_size, num_threads=args.threads)
        out[system] = Annotator(runner, batch_size=args.batch_size)
    for ann in out.values():
        ann.runner = TimedRunner(ann.runner)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0, help="record length (default 24)")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="threads per runtime (default 2)")
    parser.add_argument("--models", default="phasenet,eqtransformer",
                        help="comma list of phasenet, eqtransformer")
    parser.add_argument("--batch_size", type=int, default=64, help="windows per call (default 64)")
    add_seisbench_arguments(parser)
    args = parser.parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(WEIGHTS))
    if unknown:
        parser.error(f"--models takes {', '.join(WEIGHTS)}. Received: {', '.join(unknown)}")

    load_before = os.getloadavg()
    stream = synthetic_day(args.hours)
    duration = args.hours * 3600
    print(f"Synthetic record: {args.hours:g} h, 3 x {stream[0].stats.npts} samples at 100 Hz; "
          f"{args.threads} threads per runtime; batch {args.batch_size}; load average "
          f"{load_before[0]:.1f} on {os.cpu_count()} CPUs", flush=True)

    python, reason = seisbench_python(args)
    seisbench, sb_names = None, []
    if python is None:
        print(f"SeisBench: {reason}; its columns say n/a")
    else:
        sb_files = {n: (WEIGHTS[n][1], str(reference_root() / "seisbench" / WEIGHTS[n][0]))
                    for n in names}
        seisbench = SeisBenchProcess(python, args.hours, args.threads, sb_files)
        print(f"SeisBench: {seisbench.versions} ({python})", flush=True)
        sb_names = names

    annotators, n_windows = {}, {}
    warm = warm_up_part(stream)
    with tempfile.TemporaryDirectory(prefix="utrans_throughput_") as tmp:
        for name in names:
            annotators[name] = build_annotators(name, args, Path(tmp))
            for ann in annotators[name].values():
                ann.annotate(warm)
            keras_ann = annotators[name]["keras"]
            groups, _ = keras_ann.groups(stream)
            rate = keras_ann.conventions.sampling_rate
            n_windows[name] = sum(keras_ann.plan.count(g.duration_samples(rate)) for g in groups)

        jobs = [(s, n) for n in names for s in SYSTEMS] + [("seisbench", n) for n in sb_names]
        times = {job: [] for job in jobs}
        forward = {job: [] for job in jobs}
        for r in range(args.rounds):
            shift = r % len(jobs)
            for system, name in jobs[shift:] + jobs[:shift]:
                if system == "seisbench":
                    times[(system, name)].append(seisbench.time(name))
                    continue
                ann = annotators[name][system]
                ann.runner.reset()
                start = time.perf_counter()
                ann.annotate(stream)
                times[(system, name)].append(time.perf_counter() - start)
                forward[(system, name)].append(ann.runner.seconds)
            print(f"round {r + 1}/{args.rounds} done; load average {os.getloadavg()[0]:.1f}",
                  flush=True)
    if seisbench is not None:
        seisbench.close()
    load_after = os.getloadavg()

    med = statistics.median

    def ratio(a, b):
        return med([x / y for x, y in zip(times[a], times[b], strict=True)])

    print()
    print("| model | windows | system | annotate (s) | real-time factor | forward passes (s) | "
          "Keras / this | SeisBench / this |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for name in names:
        for system in (*SYSTEMS, "seisbench"):
            label = {"keras": "utrans Keras", "onnx": "utrans ONNX Runtime",
                     "litert": "utrans LiteRT", "seisbench": "SeisBench"}[system]
            if (system, name) not in times:
                print(f"| {name} | {n_windows[name]} | {label} | n/a | n/a | n/a | n/a | n/a |")
                continue
            t = times[(system, name)]
            fwd = f"{med(forward[(system, name)]):.1f}" if forward[(system, name)] else "n/a"
            sb = (f"{ratio(('seisbench', name), (system, name)):.2f}"
                  if ("seisbench", name) in times else "n/a")
            print(f"| {name} | {n_windows[name]} | {label} | {med(t):.1f} | "
                  f"{duration / med(t):,.0f} | {fwd} | {ratio(('keras', name), (system, name)):.2f} "
                  f"| {sb} |")
    print(f"\nLoad average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f} on "
          f"{os.cpu_count()} CPUs (a shared, loaded machine: indicative numbers); medians over "
          f"{args.rounds} rounds; ratios are medians of per-round ratios (> 1: this system is "
          "faster than Keras / SeisBench).")
    return times


if __name__ == "__main__":
    main()
