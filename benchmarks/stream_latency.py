"""Real-time picking: P latency, real-time factor and stations kept up with, per model.

A synthetic network (:func:`utrans.stream.demo.demo_network`: 3-component
100 Hz stations, real local-event waveforms at known P times) is replayed by
the SeedLink replay server and picked by :class:`utrans.stream.StreamPicker`
through :class:`utrans.stream.run.StreamRunner`, end to end (SeedLink
decoding in the source thread, batching, the model, stacking, decoding).
For each model:

* **capacity**: ``--capacity_stations`` stations replayed as fast as the
  picker reads; the real-time factor is wall time / data duration, and the
  number of 3-component 100 Hz stations kept in real time is
  ``stations / real-time factor``;
* **latency**: ``--stations`` stations (50) replayed ``--speed`` times faster
  than real time (a load ``speed`` times higher than the same network live,
  so the latencies are an upper bound for it while the picker keeps up). The
  latency of a P pick is its emission time minus the arrival of the last
  sample it needed (``latency_s`` of ``picks.csv``), over the P picks settled
  live (the run is stopped, as a live stream never ends: the picks of the
  last window are not flushed). The true P arrivals picked within 0.5 s are
  counted up to two windows before the end. The wait for that last sample (the rest of the windows
  that cover the P: up to one window) is a property of the model's window,
  not of the machine; the table gives the window length.

Where the time goes is split into the model's forward passes, moving samples
(ordering, resampling, ring buffers, cutting windows) and stacking/decoding;
the SeedLink decoding runs in the source thread.

The machine is shared: numbers measured under load are a lower bound of
what an idle machine does.

Usage::

    python benchmarks/stream_latency.py [--models seist_m_dpk_diting,PATH/phasenet.pt.v1]
        [--stations 50] [--speed 5] [--minutes 10] [--capacity_stations 20]
"""

import argparse
import os
import pathlib
import threading
import time

import numpy as np
import obspy

from utrans.loading import load_model
from utrans.stream import StreamPicker
from utrans.stream.demo import demo_network
from utrans.stream.run import StreamRunner
from utrans.stream.server import ReplayServer, StreamSource
from utrans.stream.sources import SeedLinkSource

REPO = pathlib.Path(__file__).resolve().parents[1]


def default_models():
    reference = pathlib.Path(os.environ.get("UTRANS_REFERENCE", REPO.parent / "shared" / "reference"))
    files = [reference / "seisbench" / name for name in ("phasenet.pt.v1",
                                                          "phasenetlight_ethz.pt.v2")]
    return ["seist_m_dpk_diting"] + [str(f) for f in files if f.exists()]


def open_model(spec, random_threshold):
    """``(model, thresholds, label)`` to time.

    The reference's SeisBench PhaseNet file holds random weights: its curves stay near 1/3,
    so SeisBench's trigger regions (off at half the threshold) never close; it is decoded
    with the peaks rule at ``random_threshold`` to have picks to time (the computation is
    the same).
    """
    if "seisbench" not in spec:
        return spec, None, spec
    model = load_model(spec)
    label = pathlib.Path(spec).name.split(".")[0]
    if "random initialisation" not in model.seisbench_metadata.get("docstring", "").lower():
        return model, None, f"{label} (SeisBench, trained)"
    model.conventions = model.conventions.replace(pick_rule="peaks")
    return model, {"P": random_threshold, "S": random_threshold}, \
        f"{label} (SeisBench, random weights)"


def replay(model, stations, minutes, speed, batch_size, thresholds=None, seed=0):
    """Replay a network into a picker; returns the measurements."""
    stream, truth = demo_network(stations, 60.0 * minutes, seed=seed)
    picks = []
    picker = StreamPicker(model, batch_size=batch_size, on_pick=picks.append,
                          thresholds=thresholds)
    warm = picker.warm_up()
    total = sum(tr.stats.npts for tr in stream)
    server = ReplayServer(StreamSource(stream), speed=speed, ring_size=100000)
    with server:
        started = time.time()
        source = SeedLinkSource(server.address, "*.*.*.HH?", timeout=600)
        runner = StreamRunner(source, picker, poll_s=0.02)

        def stop_when_all_picked():  # live operation: the stream does not end, nothing is flushed
            while picker.counts["samples"] < total or picker.jobs:
                time.sleep(0.02)
            runner.stop()

        threading.Thread(target=stop_when_all_picked, daemon=True).start()
        result = runner.run()
        wall = time.time() - started
    latency = [row["latency_s"] for row in picks if row["phase"] == "P"]
    end = min(tr.stats.endtime for tr in stream) - 2 * picker.plan.in_samples / picker.rate
    true_p = [row for row in truth[truth.phase == "P"].itertuples() if row.time < end]
    found = 0
    for row in true_p:
        mine = [obspy.UTCDateTime(p["peak_time"]) for p in picks
                if p["phase"] == "P" and p["trace_id"].split(".")[1] == row.station]
        found += bool(mine) and min(abs(t - row.time) for t in mine) <= 0.5
    return {
        "model": picker.name, "window_s": picker.plan.in_samples / picker.rate,
        "step_s": picker.plan.step / picker.rate, "stations": stations, "speed": speed,
        "data_s": 60.0 * minutes, "wall_s": wall, "warm_up_s": warm,
        "rtf": wall / (60.0 * minutes), "windows": picker.counts["windows"],
        "batches": picker.counts["batches"], "seconds": dict(picker.seconds),
        "latency": np.array(latency), "found": found, "true_p": len(true_p),
        "records": result.stats.records,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(default_models()))
    parser.add_argument("--stations", type=int, default=50)
    parser.add_argument("--speed", type=float, default=5.0)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--capacity_stations", type=int, default=20)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--random_threshold", type=float, default=0.32,
                        help="P and S thresholds of a SeisBench file of random weights (its "
                             "curves stay near 1/3)")
    args = parser.parse_args()
    rows = []
    for spec in args.models.split(","):
        model, thresholds, label = open_model(spec, args.random_threshold)
        cap = replay(model, args.capacity_stations, args.minutes, None, args.batch_size,
                     thresholds)
        lat = replay(model, args.stations, args.minutes, args.speed, args.batch_size,
                     thresholds)
        capacity = cap["stations"] / cap["rtf"]
        print(f"\n{label}: window {cap['window_s']:g} s, a window every {cap['step_s']:g} s; "
              f"compiled in {cap['warm_up_s']:.0f} s")
        for name, run in (("capacity", cap), ("latency", lat)):
            sec = run["seconds"]
            busy = sum(sec.values())
            pace = "full speed" if run["speed"] is None else f"{run['speed']:g}x"
            print(f"  {name}: {run['stations']} stations x {run['data_s']:.0f} s at {pace}: "
                  f"{run['wall_s']:.1f} s wall, {run['records']} records, {run['windows']} "
                  f"windows in {run['batches']} batches; picker busy {busy:.1f} s = model "
                  f"{sec.get('model', 0):.1f} s + samples {sec.get('samples', 0):.1f} s + "
                  f"stacking/decoding {sec.get('picks', 0):.1f} s (the rest of the wall time: "
                  f"SeedLink decoding in the source thread, waiting for data)")
        lat_ms = lat["latency"]
        rows.append((label, capacity, lat["stations"] * lat["speed"] / capacity
                     if capacity else np.inf,
                     np.median(lat_ms) if len(lat_ms) else np.nan,
                     np.percentile(lat_ms, 95) if len(lat_ms) else np.nan,
                     f"{lat['found']}/{lat['true_p']}", cap["window_s"]))
    print("\nMeasured on a shared 2-core machine under load (numbers are a lower bound):\n")
    print(f"| model | window | stations kept in real time | load at {args.stations} stations "
          f"x{args.speed:g} (RTF) | median P latency | p95 P latency | true P picked |")
    print("|---|---|---|---|---|---|---|")
    for model, capacity, rtf, median, p95, found, window in rows:
        print(f"| {model} | {window:g} s | {capacity:.0f} | {rtf:.2f} | {median:.2f} s | "
              f"{p95:.2f} s | {found} |")


if __name__ == "__main__":
    main()
