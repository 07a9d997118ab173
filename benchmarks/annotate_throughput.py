"""Continuous annotation speed: utrans.annotate against SeisBench on a station-day.

Annotates a synthetic record (:func:`throughput_common.synthetic_day`: 3
components at 100 Hz, coloured noise and an event-like burst every ten
minutes, ``--hours`` long) with :class:`utrans.annotate.Annotator` and
reports, in one run:

* the real-time factor (record duration / wall time) of each model;
* the share of annotate's wall time spent outside the model's forward
  passes (every call of the runner inside the timed run is timed too:
  ``outside forward = 1 - forward passes / annotate``; the rest is the
  pipeline: resampling, windows, normalisation, stacking);
* SeisBench's own ``annotate`` of the same weights on the same record, in a
  child process with the same number of threads
  (:class:`throughput_common.SeisBenchProcess`; its Python is
  ``--seisbench_python`` or ``$UTRANS_SEISBENCH_PYTHON``), and the ratio
  ``SeisBench time / utrans time`` (> 1: utrans is faster).

``--models`` takes, comma separated:

* SeisBench weight files (``phasenet.json.v1``: a file of
  ``$UTRANS_REFERENCE/seisbench``, or any path, or a cache name such as
  ``phasenet:stead``): loaded by :func:`utrans.loading.load_model`, so the
  conventions (window, overlap, blinding, normalisation, stacking) are
  SeisBench's, and SeisBench annotates with the same file;
* preset names (``seist_s_dpk_diting``): trained weights from the preset
  cache; no SeisBench counterpart;
* registered names (``phasenet``, ``seist_m_dpk``): random weights
  (``allow_random=True``, said in the table), the work per window of the
  architecture; ``phasenet`` and ``eqtransformer`` (and the
  ``seisbench_*`` names) are timed against SeisBench's class at its defaults
  with random weights.

The machine may be shared and noisy: every round times every system once, in
an order rotated from round to round, and the table reports the median over
rounds of the per-round times and ratios, with the load average before and
after. SeisBench is an optional extra of this benchmark, not a dependency of
utrans.

Usage::

    python benchmarks/annotate_throughput.py [--hours 24] [--rounds 3] [--threads 2]
        [--models phasenet.json.v1,eqtransformer.json.v1,seist_s_dpk_diting,seist_m_dpk_diting]
        [--batch_size 64] [--no_fast] [--seisbench_python PATH] [--no_seisbench]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
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
from utrans.core import presets  # noqa: E402
from utrans.loading import is_seisbench_spec, load_model  # noqa: E402
from utrans.models import list_models  # noqa: E402

__all__ = ["main", "synthetic_day"]

DEFAULT_MODELS = "phasenet.json.v1,eqtransformer.json.v1,seist_s_dpk_diting,seist_m_dpk_diting"
# registered names timed against a SeisBench class at its defaults (random weights)
SEISBENCH_CLASSES = {"phasenet": "PhaseNet", "eqtransformer": "EQTransformer",
                     "seisbench_phasenet": "PhaseNet", "seisbench_eqtransformer": "EQTransformer",
                     "seisbench_phasenetlight": "PhaseNetLight"}


def resolve(spec):
    """``(keras model, weights label, SeisBench (class, file) or None)`` of one ``--models`` item."""
    local = reference_root() / "seisbench" / spec
    if local.is_file():
        spec = str(local)
    if spec in presets.PRESETS:
        return load_model(spec), "preset", None
    if spec in list_models():
        keras.utils.set_random_seed(0)
        sb = (SEISBENCH_CLASSES[spec], None) if spec in SEISBENCH_CLASSES else None
        return load_model(spec, allow_random=True), "random (allow_random)", sb
    if is_seisbench_spec(spec):
        model = load_model(spec)
        meta = model.seisbench_metadata
        return model, f"SeisBench file {Path(meta['json']).name}", (meta["class"], meta["json"])
    raise SystemExit(f"--models takes SeisBench weight files, preset names or registered names. "
                     f"Received: {spec!r}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0, help="record length (default 24)")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="threads per framework (default 2)")
    parser.add_argument("--models", default=DEFAULT_MODELS,
                        help="comma list of SeisBench weight files, presets or registered names")
    parser.add_argument("--batch_size", type=int, default=64, help="utrans batch size (default 64)")
    parser.add_argument("--no_fast", action="store_true",
                        help="use the training graph instead of the inference-only graph")
    add_seisbench_arguments(parser)
    args = parser.parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(2)

    load_before = os.getloadavg()
    specs = [n.strip() for n in args.models.split(",") if n.strip()]
    stream = synthetic_day(args.hours)
    duration = args.hours * 3600
    print(f"Synthetic record: {args.hours:g} h, 3 x {stream[0].stats.npts} samples at 100 Hz; "
          f"{args.threads} threads; batch {args.batch_size}; load average {load_before[0]:.1f} on "
          f"{os.cpu_count()} CPUs", flush=True)

    warm = warm_up_part(stream)
    annotators, n_windows, weights, sb_models = {}, {}, {}, {}
    for spec in specs:
        model, weights[spec], sb = resolve(spec)
        ann = Annotator(model, batch_size=args.batch_size, fast=not args.no_fast)
        ann.runner = TimedRunner(ann.runner)
        ann.annotate(warm)
        groups, _ = ann.groups(stream)
        rate = ann.conventions.sampling_rate
        n_windows[spec] = sum(ann.plan.count(g.duration_samples(rate)) for g in groups)
        annotators[spec] = ann
        if sb is not None:
            sb_models[spec] = sb

    python, reason = seisbench_python(args)
    seisbench = None
    if python is None or not sb_models:
        print(f"SeisBench: {reason or 'no model with a SeisBench counterpart'}; its columns "
              "say n/a")
    else:
        seisbench = SeisBenchProcess(python, args.hours, args.threads, sb_models)
        print(f"SeisBench: {seisbench.versions} ({python})", flush=True)

    jobs = [("utrans", s) for s in specs]
    if seisbench is not None:
        jobs += [("seisbench", s) for s in sb_models]
    times = {job: [] for job in jobs}
    forward = {s: [] for s in specs}
    for r in range(args.rounds):
        shift = r % len(jobs)
        for kind, spec in jobs[shift:] + jobs[:shift]:
            if kind == "seisbench":
                times[(kind, spec)].append(seisbench.time(spec))
                continue
            ann = annotators[spec]
            ann.runner.reset()
            start = time.perf_counter()
            ann.annotate(stream)
            times[(kind, spec)].append(time.perf_counter() - start)
            forward[spec].append(ann.runner.seconds)
        print(f"round {r + 1}/{args.rounds} done; load average {os.getloadavg()[0]:.1f}",
              flush=True)
    if seisbench is not None:
        seisbench.close()
    load_after = os.getloadavg()

    med = statistics.median
    print()
    print("| model | weights | windows | utrans annotate (s) | real-time factor | "
          "forward passes (s) | outside forward | SeisBench annotate (s) | SeisBench / utrans |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for spec in specs:
        ours = times[("utrans", spec)]
        fwd = forward[spec]
        outside = med([1 - f / o for f, o in zip(fwd, ours, strict=True)])
        row = (f"| {spec} | {weights[spec]} | {n_windows[spec]} | {med(ours):.1f} | "
               f"{duration / med(ours):,.0f} | {med(fwd):.1f} | {outside:.0%} |")
        if ("seisbench", spec) in times:
            sb = times[("seisbench", spec)]
            ratio = med([s / o for s, o in zip(sb, ours, strict=True)])
            row += f" {med(sb):.1f} | {ratio:.2f} |"
        else:
            row += " n/a | n/a |"
        print(row)
    print(f"\nLoad average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f} on "
          f"{os.cpu_count()} CPUs; medians over {args.rounds} rounds; ratios are medians of "
          "per-round ratios (> 1: utrans is faster).")
    return times


if __name__ == "__main__":
    main()
