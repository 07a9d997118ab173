"""Inference throughput of every model family on CPU: traces/s, ratios, parameter counts.

Builds each registered model with its default constructor (random weights: the
weights do not change the cost of a forward pass) at its natural input shape,
feeds a fixed batch of standard-normal traces and times inference in steady
state:

* baselines (PhaseNet, EQTransformer, MagNet, BAZ-Network, distPT-Network) and
  SeisT S/M/L: (batch, 8192, 3); DiTingMotion: (batch, 128, 2);
* the U-Trans backbone and its downstream models: (batch, 6000, 3).

All selected models are built first, each called ``--warmup`` times (graph
tracing, and XLA compilation with ``--jit_compile``); then ``--repeats`` rounds
time one ``model.predict_on_batch(x)`` call of every model in turn, so slow
phases of a shared machine hit all models alike. The table reports traces/s
from each model's median call (and its best call, less sensitive to other
load), the ratio to a reference model (``--reference``, PhaseNet by default,
= 1.00) as the median over rounds of the per-round speed ratio, and
``model.count_params()``.

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


def prepare_model(name, batch_size, warmup, jit_compile):
    """Build ``name`` with random weights, compile it and make ``warmup`` untimed calls.

    Returns:
        dict with ``name``, ``family``, ``input`` (shape string), ``params``,
        ``model``, ``x`` (the input batch), ``build_s`` and ``first_call_s``.
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
    for _ in range(warmup - 1):
        model.predict_on_batch(x)
    shapes = [tuple(int(d) for d in t.shape[1:]) for t in model.inputs]
    return {
        "name": name,
        "family": family(name),
        "input": " + ".join("(" + ", ".join(str(d) for d in s) + ")" for s in shapes),
        "params": int(model.count_params()),
        "model": model,
        "x": x,
        "build_s": build_s,
        "first_call_s": first_call_s,
        "times": [],
    }


def timed_rounds(entries, repeats):
    """``repeats`` rounds, each timing one ``predict_on_batch`` call of every model in turn.

    Interleaving the models spreads slow phases of a shared machine over all
    of them instead of penalising whichever model happened to run then.
    """
    for _ in range(repeats):
        for e in entries:
            t0 = time.perf_counter()
            e["model"].predict_on_batch(e["x"])
            e["times"].append(time.perf_counter() - t0)


def summarise(entries, batch_size, reference):
    """Per-model results: median/best seconds per batch and the ratio to ``reference``.

    The ratio is the median over rounds of ``t_reference / t_model`` measured
    in the same round (relative throughput; the reference row is 1.00).
    """
    ref = next((e for e in entries if e["name"] == reference), entries[0])
    results = []
    for e in entries:
        ratios = [tr / tm for tr, tm in zip(ref["times"], e["times"])]
        results.append({
            **{k: v for k, v in e.items() if k not in ("model", "x")},
            "median_s": statistics.median(e["times"]),
            "best_s": min(e["times"]),
            "traces_per_s": batch_size / statistics.median(e["times"]),
            "ratio": statistics.median(ratios),
            "reference": ref["name"],
        })
    return results


def format_ratio(ratio):
    return f"{ratio:.2f}" if ratio >= 0.095 else f"{ratio:.3f}"


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
    entries = []
    for name in names:
        e = prepare_model(name, args.batch_size, args.warmup, args.jit_compile)
        entries.append(e)
        print(f"  built {name}: {e['params']:,} parameters (build {e['build_s']:.1f} s, "
              f"first call {e['first_call_s']:.1f} s)", flush=True)
    timed_rounds(entries, args.repeats)
    results = summarise(entries, args.batch_size, args.reference)
    del entries
    gc.collect()
    ref_name = results[0]["reference"]
    load = os.getloadavg()

    print(f"\nCPU inference, batch size {args.batch_size}, {args.warmup} warm-up call(s), then "
          f"{args.repeats} rounds timing one `predict_on_batch` call of every model in turn "
          f"(median and best per model; ratio = median over rounds of the per-round speed "
          f"relative to {ref_name}); jit_compile={args.jit_compile}; {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}), load average {load[0]:.1f} / "
          f"{load[1]:.1f} / {load[2]:.1f} (shared machine: other processes compete for the "
          f"cores, so absolute numbers are noisy); TensorFlow {tf.__version__}, Keras "
          f"{keras.__version__}; random weights; total {time.perf_counter() - start:.0f} s\n")
    print(f"| model | family | input | parameters | traces/s (median) | traces/s (best) "
          f"| ms/batch (median) | ratio to {ref_name} |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['name']} | {r['family']} | {r['input']} | {r['params']:,} "
              f"| {r['traces_per_s']:,.1f} | {args.batch_size / r['best_s']:,.1f} "
              f"| {1000 * r['median_s']:,.0f} | {format_ratio(r['ratio'])} |")
    return results


if __name__ == "__main__":
    main()
