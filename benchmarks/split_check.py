"""Cost of :func:`utrans.data.check_split` per trace, against reading the metadata alone.

Writes (or reuses) a STEAD file with its CSV and a DataCollected file of
``--traces`` traces (tiny waveforms: the check reads none), then measures in
one run, best of ``--repeats``:

* ``reader.read_metadata`` for every trace (the floor: what any check must read);
* ``check_split`` for the location task (metadata read, ranges checked,
  geodesic computed) and for the magnitude task.

Prints a markdown table with microseconds per trace and the ratio to the floor.

Usage: ``python benchmarks/split_check.py [--traces 20000] [--repeats 3] [--out DIR]``
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from mock_h5 import make_datacollected, make_stead  # noqa: E402
from utrans.data import check_split  # noqa: E402
from utrans.formats import open_dataset  # noqa: E402


def _rows(n):
    rng = np.random.default_rng(0)
    return [{"name": f"S{i:07d}.XX_2019_EV", "eq": True, "p": 700.0, "s": 1500.0, "coda": 3000.0,
             "snr": np.array([30.0, 25.0, 20.0]), "mag": float(rng.uniform(0, 5)),
             "depth": float(rng.uniform(0, 30)), "ev_lat": 35.0 + rng.uniform(-1, 1),
             "ev_lon": -118.0 + rng.uniform(-1, 1), "st_lat": 35.3, "st_lon": -117.8, "pol": "U",
             "baz_reported": 10.0} for i in range(n)]


def _best(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="folder for the files (default: a temp folder)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out or tempfile.mkdtemp(prefix="split_check_"))
    out.mkdir(parents=True, exist_ok=True)
    rows = _rows(args.traces)
    waves = {r["name"]: np.ones((10, 3), np.float32) for r in rows}
    files = {"STEAD + CSV": out / "merge.hdf5", "DataCollected": out / "DataCollected.hdf5"}
    if not files["STEAD + CSV"].exists():
        make_stead(out, rows, waves=waves)
    if not files["DataCollected"].exists():
        make_datacollected(out, rows, waves=waves)
    ids = [r["name"] for r in rows]
    print("| layout | what | us/trace | x floor |\n|---|---|---:|---:|")
    for layout, path in files.items():
        reader = open_dataset(path)
        reader.trace_ids()
        floor = _best(lambda: [reader.read_metadata(t) for t in ids], args.repeats) / len(ids)
        print(f"| {layout} | read_metadata (floor) | {floor * 1e6:.0f} | 1.00 |")
        for task in ("location", "magnitude"):
            t = _best(lambda: check_split(ids, reader, labeller=task), args.repeats) / len(ids)
            print(f"| {layout} | check_split {task} | {t * 1e6:.0f} | {t / floor:.2f} |")
        reader.close()


if __name__ == "__main__":
    main()
