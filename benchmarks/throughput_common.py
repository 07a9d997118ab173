"""Shared parts of the annotate benchmarks: the synthetic record, timed runners, SeisBench.

* :func:`synthetic_day`: a 3-component 100 Hz record of coloured noise with
  an event-like burst every ten minutes (the same record, to the sample, in
  every benchmark and in the SeisBench process);
* :class:`TimedRunner`: a runner (:mod:`utrans.runtime`) that adds up the
  wall time of its forward passes;
* :class:`SeisBenchProcess`: SeisBench's own ``annotate`` timed in a child
  process run by the Python that has ``seisbench`` and ``torch``
  (:func:`seisbench_python`: ``--seisbench_python``, else the environment
  variable ``UTRANS_SEISBENCH_PYTHON``, else this interpreter if it has both),
  so that SeisBench and torch need not be installed beside TensorFlow; e.g.
  ``python -m venv sbvenv && sbvenv/bin/pip install torch==2.13.0 seisbench``
  (a CPU torch) and ``--seisbench_python sbvenv/bin/python``.

Run as a script, this module is that child process: it reads one JSON line
(record length, threads, models) on stdin, answers ``{"ready": ...}``, then
times ``annotate`` of the model named on each following line; an empty line
ends it. It imports only numpy, scipy, ObsPy, seisbench and torch.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ENV_PYTHON = "UTRANS_SEISBENCH_PYTHON"


def reference_root():
    """The reference folder (``$UTRANS_REFERENCE``, default ``../shared/reference``)."""
    return Path(os.environ.get("UTRANS_REFERENCE",
                               Path(__file__).resolve().parents[2] / "shared" / "reference"))


def synthetic_day(hours=24.0, sampling_rate=100.0, seed=0):
    """A 3-component 100 Hz record: coloured noise and an event-like burst every 10 min.

    Args:
        hours: record length.
        sampling_rate: Hz.
        seed: random seed.

    Returns:
        An ``obspy.Stream`` (XX.BENCH..HH{Z,N,E}, float32).
    """
    import obspy  # lazily, like every import of the benchmark helpers
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


def warm_up_part(stream, seconds=3600.0):
    """The first ``seconds`` of ``stream``, to warm a model up on.

    An hour holds a full batch of windows of every model here, so the timed
    runs reuse the graphs the warm-up compiled (a run with fewer windows than
    a batch would compile a smaller batch).
    """
    start = stream[0].stats.starttime
    return stream.slice(start, start + seconds)


class TimedRunner:
    """A runner that adds up the wall time of its calls (the model's forward passes)."""

    def __init__(self, inner):
        self.inner = inner
        self.batch_size = inner.batch_size
        self.conventions = inner.conventions
        self.name = inner.name
        self.clock = [0.0]  # shared with resized copies

    @property
    def seconds(self):
        return self.clock[0]

    def reset(self):
        self.clock[0] = 0.0

    def resized(self, batch_size):
        other = copy.copy(self)
        other.inner = self.inner.resized(batch_size)
        other.batch_size = other.inner.batch_size
        return other

    def __call__(self, x):
        start = time.perf_counter()
        out = self.inner(x)
        self.clock[0] += time.perf_counter() - start
        return out


# --------------------------------------------------------------------------- SeisBench
def add_seisbench_arguments(parser):
    """``--seisbench_python`` and ``--no_seisbench`` on an argparse parser."""
    parser.add_argument("--seisbench_python",
                        help=f"Python with seisbench and torch for the SeisBench runs (default: "
                             f"${ENV_PYTHON}, else this Python if it has them)")
    parser.add_argument("--no_seisbench", action="store_true", help="skip the SeisBench runs")


def seisbench_python(args):
    """The Python that runs SeisBench, or ``None`` (with the reason) when there is none.

    Args:
        args: parsed arguments of :func:`add_seisbench_arguments`.

    Returns:
        ``(python, reason)``: a path and ``""``, or ``None`` and why.
    """
    if args.no_seisbench:
        return None, "skipped (--no_seisbench)"
    given = args.seisbench_python or os.environ.get(ENV_PYTHON)
    if given:
        if not Path(given).is_file():
            raise SystemExit(f"--seisbench_python / ${ENV_PYTHON} is not a file. "
                             f"Received: {given}")
        return given, ""
    if all(importlib.util.find_spec(m) for m in ("seisbench", "torch")):
        return sys.executable, ""
    return None, (f"not installed here (seisbench and torch); give --seisbench_python or "
                  f"${ENV_PYTHON}")


class SeisBenchProcess:
    """SeisBench's ``annotate`` timed in a child process.

    Args:
        python: the Python that has ``seisbench`` and ``torch``.
        hours: length of the :func:`synthetic_day` record.
        threads: torch threads.
        models: ``{name: (class, weights)}``: a ``seisbench.models`` class name
            and a SeisBench weight file (``NAME.json.vN``; ``None``: the class
            at its defaults with random weights, torch seed 0).

    Returns:
        A started process, warmed up on :func:`warm_up_part` of the record; see
        :meth:`time`, :meth:`close`.
    """

    def __init__(self, python, hours, threads, models):
        self.proc = subprocess.Popen(
            [python, str(Path(__file__).resolve())], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        self.proc.stdin.write(json.dumps({"hours": hours, "threads": threads,
                                          "models": {k: list(v) for k, v in models.items()}})
                              + "\n")
        self.proc.stdin.flush()
        info = self._reply()
        self.versions = info["ready"]

    def _reply(self):
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise RuntimeError(f"The SeisBench process ended (exit code {code}); its error is "
                               "printed above.")
        return json.loads(line)

    def time(self, name):
        """Wall time (s) of SeisBench's ``annotate`` of the record with model ``name``."""
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()
        return self._reply()["seconds"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            self.proc.wait()


def _load_seisbench(sbm, cls, weights):
    import torch  # the child process's framework

    if weights is None:
        torch.manual_seed(0)
        return getattr(sbm, cls)()
    prefix, version = str(weights).split(".json.v")
    return getattr(sbm, cls).load(prefix, version_str=version)


def _worker():
    """The child process of :class:`SeisBenchProcess` (module doc)."""
    answer = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr  # anything SeisBench prints stays off the answer channel
    import seisbench
    import seisbench.models as sbm
    import torch

    config = json.loads(sys.stdin.readline())
    torch.set_num_threads(config["threads"])
    stream = synthetic_day(config["hours"])
    warm = warm_up_part(stream)
    models = {}
    for name, (cls, weights) in config["models"].items():
        models[name] = _load_seisbench(sbm, cls, weights)
        models[name].eval()
        models[name].annotate(warm)
    answer.write(json.dumps({"ready": f"SeisBench {seisbench.__version__}, torch "
                                      f"{torch.__version__}, {torch.get_num_threads()} threads"})
                 + "\n")
    answer.flush()
    for line in sys.stdin:
        name = line.strip()
        if not name:
            break
        start = time.perf_counter()
        models[name].annotate(stream)
        answer.write(json.dumps({"seconds": time.perf_counter() - start}) + "\n")
        answer.flush()


if __name__ == "__main__":
    _worker()
