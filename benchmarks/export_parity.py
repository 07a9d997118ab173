"""Export status of every registered model: SavedModel, ONNX and LiteRT, parity and speed.

For each model, each format: is it exported (yes / no and why not), the
largest absolute difference between the exported graph, run through
:func:`utrans.runtime.load_exported` (ONNX Runtime, LiteRT's interpreter,
TensorFlow for the SavedModel), and ``model.predict`` on

* a batch of standard-normal windows (``--batch_size``, seed 0), and
* real records (models whose input is the components of their conventions):
  ObsPy's ``obspy.read()`` example (BW.RJOB, 100 Hz, 30 s), and, where
  ObsPy's installed test data has them, the BW.UH3 record of 2010-05-27
  (50 Hz, 230 s) and the RJOB record of 2005-08-01 (200 Hz, 60 s, ObsPy's
  ``ar_pick`` example), each resampled to the model's rate
  (:func:`utrans.processing.resample.resample`, the package's one
  resampler), put in the model's component order, cut or zero padded to its
  window at three offsets (record start at -5 s, 0 s, +5 s of the window, at
  most a quarter of the window) and made into model inputs by the model's
  pipeline (:meth:`utrans.pipeline.Pipeline.window_inputs`: normalised over
  the record samples, DiTingMotion's first differences appended),

and the time per batch (median of ``--repeats`` calls after one warm-up; the
Keras column is the model's compiled serving function under TensorFlow).
Targets: SavedModel and ONNX ``<= 1e-5 * max(1, max|keras|)``, LiteRT float32
``<= 1e-4 * max(1, max|keras|)``. ``--quantized`` also writes LiteRT
``dynamic_range`` and full ``int8`` graphs (calibrated on the record windows
and 16 random windows) and, for pickers, counts how many picks of the float32
Keras model on the record windows the quantised graph finds within
``--pick_tolerance_s`` (same labels, thresholds and minimum distance from the
model's conventions, through the pipeline's decoder
(:meth:`utrans.pipeline.Pipeline.picks`)).

Models (``--size``):

* ``tiny`` (default): small configurations of every registered model (the
  registry's architectures at a fraction of their size; SeisBench's classes
  at their defaults, which are small), fast on 2 cores;
* ``full``: every registered model at its registry defaults (random weights);
* ``--presets``: the published presets at real size with their weights
  (``all`` or a comma list), read from ``--weights_dir`` folders (default
  ``$UTRANS_REFERENCE/seist`` and ``$UTRANS_REFERENCE/utrans``) or else the
  preset cache (``$UTRANS_HOME``); nothing is downloaded;
* ``--seisbench``: SeisBench weight files (``all``: the PhaseNet,
  EQTransformer and PhaseNetLight (ETHZ) files of
  ``$UTRANS_REFERENCE/seisbench``, or a comma list of files / cache names).

LiteRT graphs of models with LSTM layers need a fixed batch size: they are
exported with ``batch_size=--batch_size`` (the table says so).

Usage::

    python benchmarks/export_parity.py [--size tiny|full] [--models a,b]
        [--presets all|a,b] [--seisbench all|a,b] [--formats savedmodel,onnx,litert] [--quantized]
        [--batch_size 4] [--repeats 3] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import obspy  # noqa: E402

from utrans.core import presets  # noqa: E402
from utrans.core.errors import ExportError  # noqa: E402
from utrans.export import export, output_layout, serving_function  # noqa: E402
from utrans.loading import load_model, load_weights  # noqa: E402
from utrans.models import get_model, list_models  # noqa: E402
from utrans.models.utrans import UTransBackbone  # noqa: E402
from utrans.pipeline import Pipeline  # noqa: E402
from utrans.processing.resample import resample  # noqa: E402
from utrans.runtime import load_exported  # noqa: E402

FORMATS = ("savedmodel", "onnx", "litert")
TOLERANCE = {"savedmodel": 1e-5, "onnx": 1e-5, "litert": 1e-4}
TINY_BACKBONE = dict(input_length=400, base_filters=2, num_layers=1, num_heads=2, projection_dim=8)
TINY_SEIST = dict(in_samples=512, layer_blocks=[1, 1, 1, 1])
TINY = {
    "phasenet": dict(in_samples=400),
    "eqtransformer": dict(in_samples=400, conv_channels=(4, 8), conv_kernels=(5, 3),
                          resconv_kernels=(3,), num_lstm_blocks=1, num_transformer_layers=1,
                          feedforward_dim=16),
    "magnet": dict(in_samples=400),
    "baz_network": dict(in_samples=400),
    "distpt_network": dict(in_samples=400, dilations=[1, 2, 4]),
    "ditingmotion": dict(),
    "utrans_vit_magnitude": dict(conv_filters=(4, 4), pool_sizes=(2, 2), patch_size=5,
                                 projection_dim=8, num_heads=2, num_layers=1, mlp_units=(16, 8),
                                 head_units=(16,)),
    "utrans_cct_polarity": dict(tokenizer_filters=(8,), num_heads=2, num_layers=2),
    "utrans_eqcct_p": dict(conv_filters=(4,), patch_size=8, projection_dim=8, num_heads=2,
                           num_layers=2),
    "utrans_eqcct_s": dict(conv_filters=(4,), patch_size=8, projection_dim=8, num_heads=2,
                           num_layers=2),
    "utrans_convmixer_location": dict(filters=8, depth=1),
}
OBSPY_DATA = Path(obspy.__file__).parent / "signal" / "tests" / "data"


# --------------------------------------------------------------------------- models
def build_tiny(name):
    """A small configuration of the registered model ``name`` (seeded)."""
    keras.utils.set_random_seed(0)
    if name == "utrans_foundation":
        return get_model(name, **TINY_BACKBONE)
    if name.startswith("utrans_"):
        return get_model(name, backbone=UTransBackbone(**TINY_BACKBONE), **TINY[name])
    if name.startswith("seist_"):
        return get_model(name, **TINY_SEIST)
    return get_model(name, **TINY.get(name, {}))


def build_full(name):
    """The registered model ``name`` at its defaults (seeded random weights)."""
    keras.utils.set_random_seed(0)
    return get_model(name)


def reference_root():
    return Path(os.environ.get("UTRANS_REFERENCE",
                               Path(__file__).resolve().parents[2] / "shared" / "reference"))


def weights_dirs(given):
    if given:
        return [Path(d) for d in given]
    ref = reference_root()
    return [ref / "seist", ref / "utrans"]


SEISBENCH_FILES = ("phasenet.json.v1", "eqtransformer.json.v1", "phasenetlight_ethz.json.v2")


def seisbench_specs(given):
    """The SeisBench weight files (or cache names) of ``--seisbench``."""
    if given == "all":
        return [str(reference_root() / "seisbench" / f) for f in SEISBENCH_FILES]
    return [s for s in given.split(",") if s]


def build_preset(name, dirs):
    """A published preset at real size with its weights (never downloaded)."""
    preset = presets.get_preset(name)
    found = [d / preset.filename for d in dirs if (d / preset.filename).is_file()]
    path = found[0] if found else presets.preset_path(name, download=False)
    model = get_model(preset.model, **preset.conventions)
    load_weights(model, str(path))
    return model


# --------------------------------------------------------------------------- records
def _rjob_2005():
    files = {c: OBSPY_DATA / f"loc_RJOB20050801145719850.{c.lower()}" for c in "ZNE"}
    if not all(f.is_file() for f in files.values()):
        return None
    start = obspy.UTCDateTime("2005-08-01T14:57:19.85")
    traces = [obspy.Trace(np.loadtxt(f, dtype=np.float64),
                          header=dict(network="BW", station="RJOB", channel=f"EH{c}",
                                      sampling_rate=200.0, starttime=start))
              for c, f in files.items()]
    return obspy.Stream(traces)


def _uh3_2010():
    files = sorted(glob.glob(str(OBSPY_DATA / "BW.UH3._.SH?.D.2010.147.cut.slist.gz")))
    return obspy.read(files[0]) + obspy.read(files[1]) + obspy.read(files[2]) \
        if len(files) == 3 else None


def records():
    """The real records: ``[(label, Stream)]`` (those ObsPy's install has)."""
    out = [("obspy example BW.RJOB 2009-08-24", obspy.read())]
    for label, make in (("BW.UH3 2010-05-27", _uh3_2010), ("BW.RJOB 2005-08-01", _rjob_2005)):
        stream = make()
        if stream is None:
            print(f"note: ObsPy's test data has no {label} record; using the others")
        else:
            out.append((label, stream))
    return out


def record_windows(model, in_samples, streams, offsets_s=(-5.0, 0.0, 5.0)):
    """Model inputs ``(n, in_samples, channels)`` of the records, or ``None``.

    The record starts ``offsets_s`` into the window (negative: before it),
    each offset at most a quarter of the window; the model's pipeline makes
    the inputs (normalised over the record samples, padding left 0). ``None``
    for a model without a fixed window.
    """
    pipeline = Pipeline.of(model)
    conventions = pipeline.conventions
    if in_samples is None:
        return None
    rate = conventions.sampling_rate
    quarter = in_samples / rate / 4
    offsets_s = [float(np.clip(o, -quarter, quarter)) for o in offsets_s]
    windows, valid = [], []
    for _, stream in streams:
        data = np.stack([stream.select(component=c)[0].data.astype(np.float64)
                         for c in conventions.component_order], axis=-1)
        data = resample(data, stream[0].stats.sampling_rate, rate, axis=0)
        for offset in offsets_s:
            shift = int(round(offset * rate))  # record start's sample in the window
            window = np.zeros((in_samples, data.shape[1]), np.float64)
            first = min(max(0, shift), in_samples)
            src = data[max(0, -shift):max(0, -shift) + in_samples - first]
            window[first:first + len(src)] = src
            windows.append(window)
            valid.append((first, first + len(src)))
    return pipeline.window_inputs(np.stack(windows), np.asarray(valid)).astype(np.float32)


# --------------------------------------------------------------------------- measures
def flat(outputs, names):
    if isinstance(outputs, dict):
        return [np.asarray(outputs[n]) for n in names]
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(o) for o in outputs]
    return [np.asarray(outputs)]


def max_error(reference, got, names):
    ref, out = flat(reference, names), flat(got, names)
    error = max(float(np.max(np.abs(a.astype(np.float64) - b))) for a, b in zip(ref, out, strict=True))
    scale = max(float(np.max(np.abs(a))) for a in ref)
    return error, scale


def time_per_batch(fn, x, repeats):
    fn(x)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def picks(outputs, model):
    """``{(window, label): [samples]}`` of a picker's outputs (the pipeline's decoder)."""
    pipeline = Pipeline.of(model)
    try:
        curves = pipeline.curves(outputs)
    except ValueError:
        return None
    found = {}
    for i in range(curves.shape[0]):
        for j, label in enumerate(pipeline.conventions.labels):
            if label in pipeline.phases:
                found[(i, label)] = pipeline.picks(curves[i, :, j], label)
    return found


def pick_agreement(reference, got, tolerance):
    """``(matched, total, extra)``: reference picks found within ``tolerance`` samples."""
    matched = total = extra = 0
    for key, ref in reference.items():
        other = np.asarray(got.get(key, []))
        total += len(ref)
        hits = [p for p in ref if other.size and np.min(np.abs(other - p)) <= tolerance]
        matched += len(hits)
        extra += max(0, len(other) - len(hits))
    return matched, total, extra


# --------------------------------------------------------------------------- one model
def run_model(label, model, formats, args, streams):
    rows = []
    layout = output_layout(model)
    names = layout.names
    conv = model.conventions
    in_samples = layout.input_shape[1]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch_size,) + tuple(layout.input_shape[1:])).astype(np.float32)
    real = record_windows(model, in_samples, streams)
    # One batch each, as the runners get them: BAZ-Network scales its features
    # over the batch (as its reference does), so its outputs depend on the batch.
    ref_x = model.predict(x, verbose=0, batch_size=len(x))
    ref_real = None if real is None else model.predict(real, verbose=0, batch_size=len(real))
    fn, _ = serving_function(model, layout)
    keras_time = time_per_batch(lambda v: fn(v), x, args.repeats)
    rows.append(dict(model=label, format="keras", status="reference", error=None, tol=None,
                     record_error=None, time_s=keras_time, note=conv.describe()))
    variants = [(f, None) for f in formats]
    if args.quantized and "litert" in formats:
        variants += [("litert", "dynamic_range"), ("litert", "int8")]
    ref_picks = picks(ref_real, model) if ref_real is not None else None
    picker = bool(ref_picks)
    with tempfile.TemporaryDirectory(prefix="utrans_export_") as tmp:
        for fmt, quant in variants:
            name = fmt if quant is None else f"litert-{quant}"
            row = dict(model=label, format=name, status="", error=None, tol=None,
                       record_error=None, time_s=None, note="")
            rows.append(row)
            options = {}
            if quant:
                options["quantize"] = quant
            if quant == "int8":
                calib = rng.standard_normal((16,) + tuple(layout.input_shape[1:]))
                options["representative_data"] = calib if real is None else \
                    np.concatenate([real, calib.astype(np.float32)])
            target = Path(tmp) / name
            start = time.perf_counter()
            try:
                try:
                    path = export(model, fmt, target, **options)
                except ExportError as err:
                    if fmt != "litert" or "batch_size=N" not in str(err):
                        raise
                    shutil.rmtree(target, ignore_errors=True)
                    options["batch_size"] = args.batch_size
                    path = export(model, fmt, target, **options)
                    row["note"] = f"fixed batch {args.batch_size} (LSTM); "
            except ExportError as err:
                row.update(status="not exported", note=str(err))
                continue
            export_s = time.perf_counter() - start
            threads = {} if fmt == "savedmodel" else {"num_threads": args.threads}
            runner = load_exported(path, **threads)
            out = runner(x)
            row["error"], scale = max_error(ref_x, out, names)
            if real is not None:
                out_real = runner(real)
                row["record_error"], scale_real = max_error(ref_real, out_real, names)
                scale = max(scale, scale_real)
            row["time_s"] = time_per_batch(runner, x, args.repeats)
            if quant is None:
                row["tol"] = TOLERANCE[fmt] * max(1.0, scale)
                worst = max(row["error"], row["record_error"] or 0.0)
                row["status"] = "ok" if worst <= row["tol"] else "PARITY FAIL"
            else:
                row["status"] = "quantised"
            if quant and picker:
                tol = int(round(args.pick_tolerance_s * conv.sampling_rate))
                m, t, e = pick_agreement(ref_picks, picks(out_real, model), tol)
                row["note"] += f"picks {m}/{t} of fp32 within {args.pick_tolerance_s:g} s, {e} extra; "
            row["note"] += f"export {export_s:.0f} s"
    return rows


def fmt_num(v, spec=".1e"):
    return "-" if v is None else format(v, spec)


def print_header():
    header = (f"{'model':<28} {'format':<20} {'status':<13} {'max err':>9} {'target':>9} "
              f"{'rec err':>9} {'ms/batch':>9}  note")
    print(header)
    print("-" * len(header))


def print_row(r):
    ms = "-" if r["time_s"] is None else f"{r['time_s'] * 1e3:.1f}"
    print(f"{r['model']:<28} {r['format']:<20} {r['status']:<13} {fmt_num(r['error']):>9} "
          f"{fmt_num(r['tol']):>9} {fmt_num(r['record_error']):>9} {ms:>9}  {r['note']}",
          flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "full", "none"), default="tiny",
                        help="registered models: small configurations, registry defaults, "
                             "or none (presets only)")
    parser.add_argument("--models", default="all", help="'all' or a comma list of registered names")
    parser.add_argument("--presets", default="", help="'all' or a comma list of preset names")
    parser.add_argument("--seisbench", default="",
                        help="'all' (the reference folder's SeisBench files) or a comma list of "
                             "SeisBench weight files / cache names")
    parser.add_argument("--weights_dir", action="append", help="folder of preset weight files")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--quantized", action="store_true",
                        help="also LiteRT dynamic-range and int8 graphs, with pick agreement")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime / LiteRT threads")
    parser.add_argument("--pick_tolerance_s", type=float, default=0.1)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    formats = [f for f in args.formats.split(",") if f]
    names = list_models() if args.models == "all" else args.models.split(",")
    jobs = []
    if args.size != "none":
        build = build_tiny if args.size == "tiny" else build_full
        jobs += [(f"{n} ({args.size})", lambda n=n: build(n)) for n in names]
    if args.presets:
        chosen = presets.list_presets() if args.presets == "all" else args.presets.split(",")
        dirs = weights_dirs(args.weights_dir)
        jobs += [(p, lambda p=p: build_preset(p, dirs)) for p in chosen]
    if args.seisbench:
        jobs += [(Path(s).name, lambda s=s: load_model(s)) for s in seisbench_specs(args.seisbench)]
    streams = records()
    print(f"records: {', '.join(label for label, _ in streams)}; batch {args.batch_size}; "
          f"{args.threads} runtime threads; times on a shared machine under load")
    print_header()
    all_rows = []
    for label, make in jobs:
        rows = run_model(label, make(), formats, args, streams)
        for row in rows:
            print_row(row)
        all_rows += rows
        keras.backend.clear_session()
    if args.json:
        Path(args.json).write_text(json.dumps(all_rows, indent=1))
    failed = [r for r in all_rows if r["status"] == "PARITY FAIL"]
    print(f"\n{len(failed)} parity failure(s); "
          f"{sum(r['status'] == 'not exported' for r in all_rows)} export(s) refused")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
