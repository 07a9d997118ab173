"""Memory and time of ``utrans annotate`` on long and broken records, and of the decoder.

In one run, each annotate case in its own child process (peak RSS is the
child's ``ru_maxrss``, read with ``os.wait4``; time is the child's
``utrans.cli.annotate_run.run``, model loading included):

* **baseline**: ten minutes of record: what the model and the runtime take;
* **duration**: 1 and 7 days (``--days``; 30 days with ``--days 1,7,30``) of
  synthetic 3-component 100 Hz float32 miniSEED: peak RSS against the record
  (``3 x samples x 4`` bytes) and against the goal ``2 x record + baseline``;
* **fragments**: one clean day, and the same day cut into ``--fragments``
  pieces at random places with gaps of random length (log-uniform 0.1-10 s,
  as telemetered data has): time and peak RSS of both and their ratios, and
  the picks of the broken day against the clean day's: *false* picks (no
  clean pick of the phase within 0.5 s), how many of them lie within 2 s of a
  fragment edge, and the clean picks farther than 2 s from every gap that the
  broken day misses;
* **decode**: 24 hours of noisy 100 Hz P, S and detection curves (tens of
  thousands of candidate peaks) through the decoder: ``find_peaks`` with the
  model's one-second distance rule, pick extents, and the pick rows of
  :func:`utrans.annotate.picks.decode_segment`; ``--old_decoder`` also times
  the former quadratic distance rule once (it takes many minutes).

The synthetic record is coloured noise with a real local event (ObsPy's
example record BW.RJOB, rotated, scaled and its sign flipped at random)
every ten minutes, so a published picker finds real arrivals in it. The
default model is the preset ``seist_s_dpk_diting``; its weights are taken
from ``$UTRANS_HOME`` or, when absent there, from the reference folder
(``--reference``, as the tests do) into a temporary cache.

The machine may be shared: the table gives the load average before and after.

Usage::

    python benchmarks/annotate_memory.py [--days 1,7] [--fragments 5000]
        [--model seist_s_dpk_diting] [--cases baseline,duration,fragments,decode]
        [--workdir DIR] [--old_decoder]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FS = 100.0
T0 = "2024-03-01T00:00:00"
CASES = ("baseline", "duration", "fragments", "decode")


# --------------------------------------------------------------------------- synthetic records
def _template():
    """The RJOB event (Z, N, E), demeaned and tapered, and its pre-event noise level."""
    import obspy

    st = obspy.read()
    st.detrend("demean")
    data = np.stack([st.select(component=c)[0].data for c in "ZNE"]).astype(np.float64)
    taper = np.ones(data.shape[1])
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(200) / 200)
    taper[:100] = ramp[::2]
    taper[-200:] = ramp[::-1]
    return data * taper, data[:, :400].std(axis=1)


def _hour(rng, template, noise_std, every_s=600.0):
    """One hour (3, 360000) of coloured noise with events; returns data and event offsets (s)."""
    from scipy.signal import lfilter

    n = int(3600 * FS)
    noise = lfilter([1.0], [1.0, -0.8], rng.standard_normal((3, n)), axis=1)
    data = noise / noise.std(axis=1, keepdims=True) * noise_std[:, None] * 0.3
    events = []
    for start_s in np.arange(30.0, 3600.0 - 60.0, every_s):
        start_s += rng.uniform(0, 20)
        i = int(start_s * FS)
        angle = rng.uniform(0, 2 * np.pi)
        z, nn, e = template
        rotated = np.stack([z, np.cos(angle) * nn - np.sin(angle) * e,
                            np.sin(angle) * nn + np.cos(angle) * e])
        scale = rng.choice([-1, 1]) * 10 ** rng.uniform(-0.15, 0.3)
        data[:, i:i + template.shape[1]] += scale * rotated
        events.append(start_s)
    return data.astype(np.float32), events


def write_record(path, hours, seed=0):
    """Write a synthetic record hour by hour into one miniSEED file (bounded memory).

    Returns:
        The record's size in memory, ``3 x samples x 4`` bytes.
    """
    import obspy

    template, noise_std = _template()
    rng = np.random.default_rng(seed)
    t0 = obspy.UTCDateTime(T0)
    with open(path, "wb") as fh:
        for h in range(int(hours)):
            data, _ = _hour(rng, template, noise_std)
            st = obspy.Stream([obspy.Trace(data[k], header={
                "network": "SY", "station": "LONG", "channel": f"HH{c}", "sampling_rate": FS,
                "starttime": t0 + 3600 * h}) for k, c in enumerate("ZNE")])
            st.write(fh, format="MSEED", encoding="FLOAT32", reclen=4096)
    return int(3 * hours * 3600 * FS * 4)


def write_fragments(src, dst, fragments, seed=1):
    """The record of ``src`` cut into ``fragments`` pieces with random gaps; returns the gaps."""
    import obspy

    st = obspy.read(str(src))
    st.merge()
    t0, npts = st[0].stats.starttime, st[0].stats.npts
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, npts - 1000), fragments - 1, replace=False))
    gap_samples = np.round(10 ** rng.uniform(-1, 1, fragments - 1) * FS).astype(int)
    starts = np.concatenate([[0], cuts + gap_samples])
    stops = np.concatenate([cuts, [npts]])
    keep = stops > starts
    starts, stops = starts[keep], stops[keep]
    out = obspy.Stream()
    for tr in st:
        header = {k: tr.stats[k] for k in ("network", "station", "location", "channel",
                                           "sampling_rate")}
        out.extend([obspy.Trace(tr.data[a:b].copy(), header={**header, "starttime": t0 + a / FS})
                    for a, b in zip(starts, stops)])
    out.write(str(dst), format="MSEED", encoding="FLOAT32")
    gaps = [(t0 + b / FS, t0 + a / FS) for b, a in zip(stops[:-1], starts[1:])]
    return gaps, len(starts)


# --------------------------------------------------------------------------- child process
def _child(argv):
    """Run ``utrans annotate`` with ``argv``; print its time as one JSON line."""
    from utrans.cli.annotate import build_parser
    from utrans.cli.annotate_run import run

    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    code = run(args)
    print("RESULT " + json.dumps({"seconds": time.perf_counter() - start, "code": code}),
          flush=True)


def _measured(inputs, out_dir, model, extra=()):
    """``utrans annotate`` in a child process: ``{"seconds", "peak_rss", "code"}``.

    The child is reaped with ``os.wait4``, which gives its own peak RSS.
    """
    argv = [str(i) for i in inputs] + ["--model", model, "--output", str(out_dir),
                                        "--no_progress", *extra]
    log = pathlib.Path(out_dir).with_suffix(".log")
    pathlib.Path(out_dir).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, __file__, "--_child", json.dumps(argv)],
                                stdout=fh, stderr=subprocess.STDOUT,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    lines = [ln for ln in text.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"annotate failed (exit {proc.returncode}), log {log}:\n{text[-3000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    result["peak_rss"] = usage.ru_maxrss * 1024
    return result


# --------------------------------------------------------------------------- picks
def _pick_times(path):
    import obspy
    import pandas as pd

    picks = pd.read_csv(path)
    return {phase: np.sort(np.array([obspy.UTCDateTime(t).timestamp for t in
                                     picks[picks.phase == phase].peak_time]))
            for phase in ("P", "S")}


def _nearest(sorted_times, t):
    if not len(sorted_times):
        return np.full(len(t), np.inf)
    i = np.clip(np.searchsorted(sorted_times, t), 1, len(sorted_times) - 1)
    return np.minimum(np.abs(sorted_times[i - 1] - t), np.abs(sorted_times[i] - t))


def compare_picks(clean_csv, broken_csv, gaps, tolerance_s=0.5, edge_s=2.0):
    """False picks of the broken record (at edges) and clean picks it misses away from gaps."""
    clean, broken = _pick_times(clean_csv), _pick_times(broken_csv)
    edges = np.sort(np.array([t.timestamp for gap in gaps for t in gap]))
    gap_a = np.array([a.timestamp for a, _ in gaps])
    gap_b = np.array([b.timestamp for _, b in gaps])
    out = {}
    for phase in ("P", "S"):
        b = broken[phase]
        false = _nearest(clean[phase], b) > tolerance_s
        at_edge = _nearest(edges, b) <= edge_s
        c = clean[phase]
        k = np.clip(np.searchsorted(gap_a, c) - 1, 0, max(len(gap_a) - 1, 0))
        in_gap = (gap_a[k] <= c) & (c <= gap_b[k]) if len(gap_a) else np.zeros(len(c), bool)
        away = ~in_gap & (_nearest(edges, c) > edge_s)
        missed = away & (_nearest(b, c) > tolerance_s)
        out[phase] = {"broken": int(len(b)), "clean": int(len(c)), "false": int(false.sum()),
                      "false_at_edges": int((false & at_edge).sum()),
                      "clean_away": int(away.sum()), "missed_away": int(missed.sum())}
    return out


# --------------------------------------------------------------------------- decode
def noisy_curves(hours=24.0, seed=0):
    """(3, n) float32 curves in [0, 1]: smooth noise crossing 0.3 tens of thousands of times."""
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(seed)
    n = int(hours * 3600 * FS)
    sos = butter(2, 0.012, output="sos")
    curves = np.empty((3, n), dtype=np.float32)
    for k in range(3):
        x = sosfilt(sos, rng.standard_normal(n))
        curves[k] = 1 / (1 + np.exp(-(x / x.std() * 1.5 - 1.5)))
    return curves


def decode_case(old_decoder=False):
    import obspy

    from utrans.annotate.batching import SegmentResult
    from utrans.annotate.picks import decode_segment
    from utrans.core.conventions import Conventions
    from utrans.pipeline import Pipeline
    from utrans.processing import decode
    from utrans.processing.streams import Segment

    curves = noisy_curves()
    n = curves.shape[1]
    conv = Conventions(sampling_rate=FS, in_samples=6000, labels=("det", "P", "S"),
                       thresholds=(("det", 0.5), ("P", 0.3), ("S", 0.3)), min_peak_distance_s=1.0,
                       pick_rule="peaks")
    pipeline = Pipeline(conv)
    d = pipeline.min_distance()
    rows = {}
    candidates = decode.find_peaks(curves[1], 0.3, 1).size
    start = time.perf_counter()
    kept = decode.find_peaks(curves[1], 0.3, d)
    rows["find_peaks (one curve)"] = time.perf_counter() - start
    start = time.perf_counter()
    decode.peak_extents(curves[1], kept, 0.3)
    rows["pick extents (one curve)"] = time.perf_counter() - start
    seg = Segment(station="SY.LONG.", instrument="HH", start=obspy.UTCDateTime(T0),
                  sampling_rate=FS, length=n, components=[None] * 3, channels={})
    result = SegmentResult(seg, curves, np.arange(0, n - 6000, 3000))
    start = time.perf_counter()
    picks, detections = decode_segment(result, pipeline, pipeline.thresholds())
    rows["decode_segment: P, S, det rows"] = time.perf_counter() - start
    info = {"samples": n, "candidates": int(candidates), "kept": int(kept.size),
            "pick_rows": len(picks), "detection_rows": len(detections)}
    if old_decoder:
        sys.path.insert(0, str(ROOT / "tests"))
        from test_decode import oracle_find_peaks

        start = time.perf_counter()
        old = oracle_find_peaks(curves[1], 0.3, d)
        rows["former find_peaks (one curve)"] = time.perf_counter() - start
        info["former_equal"] = bool(np.array_equal(old, kept))
    return rows, info


# --------------------------------------------------------------------------- main
def _home(models, reference):
    """A UTRANS_HOME holding the models' weights (temporary copies from the reference folder)."""
    from utrans.core import presets

    missing = []
    for model in models:
        if model not in presets.PRESETS:
            continue
        try:
            presets.preset_path(model, download=False)
        except Exception:  # noqa: BLE001 - not cached: copied from the reference folder below
            missing.append(model)
    if not missing:
        return None
    home = pathlib.Path(tempfile.mkdtemp(prefix="utrans_home_"))
    for model in models:
        name = presets.get_preset(model).filename
        src = pathlib.Path(reference) / "seist" / name
        if not src.is_file():
            raise SystemExit(f"weights of {model} not cached and not found at {src}")
        shutil.copy(src, home / name)
    return home


def _gb(x):
    return f"{x / 1e9:.2f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="seist_s_dpk_diting",
                        help="model of the baseline and duration cases")
    parser.add_argument("--fragments_model", default="seist_m_dpk_diting",
                        help="model of the fragments case")
    parser.add_argument("--days", default="1,7", help="record lengths in days (default 1,7)")
    parser.add_argument("--fragments", type=int, default=5000)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--workdir", default=None, help="where records are written (kept)")
    parser.add_argument("--reference", default=str(ROOT.parent / "shared" / "reference"))
    parser.add_argument("--old_decoder", action="store_true",
                        help="also time the former quadratic distance rule (slow)")
    args = parser.parse_args(argv)
    if args._child:
        return _child(json.loads(args._child))
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    work = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="annotate_memory_"))
    work.mkdir(parents=True, exist_ok=True)
    home = _home([args.model, args.fragments_model], args.reference) \
        if set(cases) - {"decode"} else None
    if home is not None:
        os.environ["UTRANS_HOME"] = str(home)
    load_before = os.getloadavg()[0]
    print(f"model {args.model} (fragments: {args.fragments_model}); records in {work}; "
          f"{os.cpu_count()} CPUs; "
          f"load average {load_before:.1f}", flush=True)

    baseline = None
    if "baseline" in cases or "duration" in cases:
        path = work / "record_10min.mseed"
        if not path.exists():
            import obspy

            write_record(work / "record_1h.mseed", 1)
            st = obspy.read(str(work / "record_1h.mseed"))
            st.trim(st[0].stats.starttime, st[0].stats.starttime + 600 - 0.01)
            st.write(str(path), format="MSEED", encoding="FLOAT32")
        baseline = _measured([path], work / "out_baseline", args.model, ["--no_plots"])
        print(f"baseline (10 min): {baseline['seconds']:.1f} s, peak RSS "
              f"{_gb(baseline['peak_rss'])} GB", flush=True)

    if "duration" in cases:
        print("\n| record | record in memory (GB) | time (s) | peak RSS (GB) | RSS / record | "
              "goal 2 x record + baseline (GB) | met |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for days in [float(d) for d in args.days.split(",") if d.strip()]:
            path = work / f"record_{days:g}d.mseed"
            size = int(3 * days * 86400 * FS * 4)
            if not path.exists():
                write_record(path, days * 24)
            res = _measured([path], work / f"out_{days:g}d", args.model)
            goal = 2 * size + baseline["peak_rss"]
            print(f"| {days:g} day(s) | {_gb(size)} | {res['seconds']:.0f} | "
                  f"{_gb(res['peak_rss'])} | {res['peak_rss'] / size:.2f} | {_gb(goal)} | "
                  f"{'yes' if res['peak_rss'] < goal else 'no'} |", flush=True)

    if "fragments" in cases:
        clean = work / "record_1d.mseed"
        if not clean.exists():
            write_record(clean, 24)
        broken = work / f"record_1d_{args.fragments}_fragments.mseed"
        gaps_file = broken.with_suffix(".gaps.json")
        if not broken.exists() or not gaps_file.exists():
            gaps, count = write_fragments(clean, broken, args.fragments)
            gaps_file.write_text(json.dumps([[str(a), str(b)] for a, b in gaps]))
        import obspy

        gaps = [(obspy.UTCDateTime(a), obspy.UTCDateTime(b))
                for a, b in json.loads(gaps_file.read_text())]
        runs = {}
        for name, path in (("clean day", clean), (f"day in {args.fragments} fragments", broken)):
            runs[name] = _measured([path], work / f"out_{path.stem}", args.fragments_model,
                                   ["--no_plots"])
        (c_name, c), (b_name, b) = runs.items()
        print("\n| record | time (s) | peak RSS (GB) | time / clean | RSS / clean |")
        print("|---|---:|---:|---:|---:|")
        for name, res in runs.items():
            print(f"| {name} | {res['seconds']:.0f} | {_gb(res['peak_rss'])} | "
                  f"{res['seconds'] / c['seconds']:.2f} | {res['peak_rss'] / c['peak_rss']:.2f} |")
        cmp = compare_picks(work / f"out_{clean.stem}" / "picks.csv",
                            work / f"out_{broken.stem}" / "picks.csv", gaps)
        print("\n| phase | clean picks | broken-day picks | false (no clean pick within 0.5 s) | "
              "false within 2 s of an edge | clean picks > 2 s from gaps | of these missed |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for phase, r in cmp.items():
            print(f"| {phase} | {r['clean']} | {r['broken']} | {r['false']} | "
                  f"{r['false_at_edges']} | {r['clean_away']} | {r['missed_away']} |")

    if "decode" in cases:
        rows, info = decode_case(args.old_decoder)
        print(f"\nDecoding 24 h of noisy 100 Hz curves: {info['samples']} samples per curve, "
              f"{info['candidates']} candidate P peaks, {info['kept']} after the 1 s distance "
              f"rule; {info['pick_rows']} pick rows, {info['detection_rows']} detection rows"
              + (f"; former rule gives the same peaks: {info['former_equal']}"
                 if "former_equal" in info else ""))
        print("\n| step | seconds |")
        print("|---|---:|")
        for name, seconds in rows.items():
            print(f"| {name} | {seconds:.2f} |")
    print(f"\nLoad average (1 min) before {load_before:.1f}, after {os.getloadavg()[0]:.1f}.")
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
