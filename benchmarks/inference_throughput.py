"""Inference throughput of every model family on CPU: traces/s, ratios, parameter counts.

Builds each registered model with its default constructor (random weights: the
weights do not change the cost of a forward pass) at its natural input shape,
feeds a fixed batch of standard-normal traces and times inference in steady
state:

* baselines (PhaseNet, EQTransformer, MagNet, BAZ-Network, distPT-Network) and
  SeisT S/M/L: (batch, 8192, 3); DiTingMotion: (batch, 128, 2);
* the U-Trans backbone and its downstream models: (batch, 6000, 3).

Each model is called ``--warmup`` times first (graph tracing, and XLA
compilation with ``--jit_compile``), then ``--repeats`` timed calls of
``model.predict_on_batch(x)`` (compiled with ``jit_compile`` as requested)
follow. The table reports traces/s from the median call (and the best call,
which is less sensitive to other load on a shared machine), the ratio of the
median to a reference row measured in the same run (``--reference``, PhaseNet
by default, = 1.00), and ``model.count_params()``.

Default selection: the six baselines, the ``dpk`` head of SeisT S/M/L, the
U-Trans backbone (``utrans_foundation``) and its five downstream models;
``--models all`` times every registered model, ``--models a,b`` a subset.

Usage::

    python benchmarks/inference_throughput.py [--batch_size 16] [--repeats 5]
        [--warmup 2] [--models phasenet,seist_m_dpk] [--jit_compile] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from utrans.models import get_model, list_models  # noqa: E402

BASELINES = ["phasenet", "eqtransformer", "ditingmotion", "magnet", "baz_network", "distpt_network"]
SEIST = ["seist_s_dpk", "seist_m_dpk", "seist_l_dpk"]
UTRANS = ["utrans_foundation", "utrans_convmixer_location", "utrans_vit_magnitude",
          "utrans_cct_polarity", "utrans_eqcct_p", "utrans_eqcct_s"]
DEFAULT_MODELS = BASELINES + SEIST + UTRANS


def family(name):
    """Family label of a registered model name (for the table)."""
    if name in BASELINES:
        return "baseline"
    if name.startswith("seist_"):
        return "SeisT-" + name.split("_")[1].upper()
    if name == "utrans_foundation":
        return "U-Trans backbone"
    if name.startswith("utrans_"):
        return "U-Trans downstream"
    return "other"


def select_models(spec):
    """Model names from ``--models``: ``default``, ``all`` or a comma-separated list."""
    registered = list_models()
    if spec in (None, "", "default"):
        names = [n for n in DEFAULT_MODELS if n in registered]
    elif spec == "all":
        ordered = [n for n in DEFAULT_MODELS if n in registered]
        names = ordered + [n for n in registered if n not in ordered]
    else:
        names = [n.strip() for n in spec.split(",") if n.strip()]
        unknown = [n for n in names if n not in registered]
        if unknown:
            raise SystemExit(f"Unknown model(s) {unknown}. Registered models: {', '.join(registered)}")
    return names


def input_batch(model, batch_size, seed=0):
    """Standard-normal float32 inputs matching every input of ``model``."""
    rng = np.random.default_rng(seed)
    xs = []
    for tensor in model.inputs:
        shape = (batch_size,) + tuple(int(d) for d in tensor.shape[1:])
        xs.append(rng.standard_normal(shape, dtype=np.float32))
    return xs[0] if len(xs) == 1 else xs


def time_model(name, batch_size, repeats, warmup, jit_compile):
    """Build ``name``, warm it up and time ``repeats`` predict_on_batch calls.

    Returns:
        dict with ``name``, ``family``, ``input`` (shape string), ``params``,
        ``build_s``, ``first_call_s``, ``median_s`` and ``best_s`` (seconds per batch).
    """
    keras.utils.set_random_seed(0)
    t0 = time.perf_counter()
    model = get_model(name)
    build_s = time.perf_counter() - t0
    model.compile(jit_compile=bool(jit_compile))
    x = input_batch(model, batch_size)
    t0 = time.perf_counter()
    model.predict_on_batch(x)
    first_call_s = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        model.predict_on_batch(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict_on_batch(x)
        times.append(time.perf_counter() - t0)
    shapes = [tuple(int(d) for d in t.shape[1:]) for t in model.inputs]
    result = {
        "name": name,
        "family": family(name),
        "input": " + ".join("(" + ", ".join(str(d) for d in s) + ")" for s in shapes),
        "params": int(model.count_params()),
        "build_s": build_s,
        "first_call_s": first_call_s,
        "median_s": statistics.median(times),
        "best_s": min(times),
    }
    del model
    keras.backend.clear_session()
    gc.collect()
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch_size", type=int, default=16, help="traces per call (default 16)")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per model (default 5)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    ap.add_argument("--models", default="default",
                    help="'default', 'all', or comma-separated registry names")
    ap.add_argument("--reference", default="phasenet",
                    help="row whose traces/s is 1.00 (default phasenet; first row if not timed)")
    ap.add_argument("--jit_compile", action="store_true", help="compile predict with XLA")
    ap.add_argument("--quick", action="store_true",
                    help="fast pass: batch size 4, 2 timed calls, 1 warm-up call")
    args = ap.parse_args(argv)
    if args.quick:
        args.batch_size, args.repeats, args.warmup = 4, 2, 1
    if args.batch_size < 1 or args.repeats < 1 or args.warmup < 1:
        raise SystemExit(f"--batch_size, --repeats and --warmup must be >= 1. Received: "
                         f"batch_size={args.batch_size}, repeats={args.repeats}, warmup={args.warmup}")

    import tensorflow as tf

    # Each model traces its own predict function; TensorFlow would warn about "retracing".
    tf.get_logger().setLevel("ERROR")
    names = select_models(args.models)
    start = time.perf_counter()
    results = []
    for name in names:
        r = time_model(name, args.batch_size, args.repeats, args.warmup, args.jit_compile)
        results.append(r)
        print(f"  {name}: {args.batch_size / r['median_s']:,.1f} traces/s "
              f"(build {r['build_s']:.1f} s, first call {r['first_call_s']:.1f} s)", flush=True)

    ref = next((r for r in results if r["name"] == args.reference), results[0])
    ref_tps = args.batch_size / ref["median_s"]
    load = os.getloadavg()

    print(f"\nCPU inference, batch size {args.batch_size}, {args.warmup} warm-up call(s), "
          f"median and best of {args.repeats} timed `predict_on_batch` calls, "
          f"jit_compile={args.jit_compile}; {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (shared machine: other "
          f"processes compete for the cores, so absolute numbers are noisy; ratios are from "
          f"the same run); TensorFlow {tf.__version__}, Keras {keras.__version__}; "
          f"random weights; total {time.perf_counter() - start:.0f} s\n")
    print(f"| model | family | input | parameters | traces/s (median) | traces/s (best) "
          f"| ms/batch (median) | ratio to {ref['name']} |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        tps = args.batch_size / r["median_s"]
        print(f"| {r['name']} | {r['family']} | {r['input']} | {r['params']:,} | {tps:,.1f} "
              f"| {args.batch_size / r['best_s']:,.1f} | {1000 * r['median_s']:,.0f} "
              f"| {tps / ref_tps:.2f} |")
    return results


if __name__ == "__main__":
    main()
