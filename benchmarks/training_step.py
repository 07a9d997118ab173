"""Training step speed: bare Keras ``train_on_batch``, the utrans trainer, and the original PyTorch step.

For each model and batch size, in one run, side by side:

* **bare**: ``model.train_on_batch(x, y)`` of the model compiled as
  :func:`utrans.train.fit` compiles it (its objective's loss, the trainer's
  Adam, learning rate 1e-3), on one fixed random batch;
* **trainer**: the same step through :func:`utrans.train.fit` itself, as
  ``01_train/trainerN.py`` runs it: :class:`utrans.data.DataGenerator` reading
  a synthetic HDF5 file with the reference augmentations (half of each batch
  augmented), the model's pipeline (resampling, window, normalisation), the
  objective's labeller, and the trainer's callbacks (backup, history, best
  checkpoint, early stopping, learning-rate schedule). Its step is the time
  between two consecutive batch ends inside an epoch (data waits included);
* **PyTorch**: the original code's step (forward, loss, ``zero_grad``,
  ``backward``, ``optimizer.step()``, ``loss.item()``) on the same random
  batch, run by ``benchmarks/torch_training_step.py`` in an interpreter with
  torch (``--torch_python``) and a checkout of the original SeisT code
  (``--seist_repo``; its ``models`` package holds SeisT and the PhaseNet and
  EQTransformer baselines). Without torch the column reads
  ``n/a (torch not installed)``.

Rounds alternate: round r runs the bare steps, then the PyTorch steps, then
epoch r of the trainer, so load from other processes falls on all three
alike. Each figure is the median over all steps of all rounds; the spread is
the range of the per-round medians. Wall seconds are what a user waits; CPU
seconds (this process's, or the torch worker's, all threads) are printed too
because they move far less when other processes share the cores.

First step: bare = ``build_model`` + ``compile`` + the first
``train_on_batch`` (tracing and graph optimisation); trainer = from the
start of training (``on_train_begin``) to the end of the first batch, and
in brackets from the call of ``fit`` (split checks, model building, output
centring); PyTorch = model creation + the first step.

Usage::

    python benchmarks/training_step.py                       # all six models, batch 16 and 64
    python benchmarks/training_step.py --quick               # two models, batch 16, one round
    python benchmarks/training_step.py --models seist_s_dpk --batch_sizes 16 \\
        --torch_python ../torch-venv/bin/python --seist_repo ../SeisT
    # on a GPU: mixed precision and XLA, larger batches
    python benchmarks/training_step.py --mixed_precision --jit_compile --batch_sizes 64 256
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from utrans.core.tasks import get_task  # noqa: E402
from utrans.formats.splits import load_split  # noqa: E402
from utrans.loading import build_model, get_conventions  # noqa: E402
try:  # the trainer's optimizer; older versions of utrans trained with Keras' Adam
    from utrans.models.optimizers import FusedAdam as TrainerAdam  # noqa: E402
except ImportError:
    TrainerAdam = keras.optimizers.Adam
from utrans.objectives import get_objective  # noqa: E402
from utrans.synthetic import write_synthetic_dataset  # noqa: E402
from utrans.train import DataFiles, fit  # noqa: E402

#: Benchmarked models and the task (numbered script) that trains each.
MODELS = {"seist_s_dpk": "dpk", "seist_m_dpk": "dpk", "seist_s_emg": "emg",
          "seist_m_emg": "emg", "phasenet": "dpk", "eqtransformer": "dpk"}
QUICK_MODELS = ("seist_s_dpk", "phasenet")
LEARNING_RATE = 1e-3
TORCH_WORKER = pathlib.Path(__file__).resolve().with_name("torch_training_step.py")


def clock():
    return time.perf_counter(), time.process_time()


def since(start):
    now = clock()
    return now[0] - start[0], now[1] - start[1]


# --------------------------------------------------------------------------- batches
def random_batch(batch, in_samples, out_shape, seed):
    """The random batch of the PyTorch worker (channels first), for the Keras side (channels last)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 3, in_samples)).astype(np.float32)
    y = rng.random((batch,) + tuple(out_shape)).astype(np.float32)
    if y.ndim == 3:
        y = y.transpose(0, 2, 1)
    return np.ascontiguousarray(x.transpose(0, 2, 1)), np.ascontiguousarray(y)


def torch_out_shape(keras_shape):
    """Channels-first shape of one output sample given its Keras (channels-last) shape."""
    return tuple(keras_shape[::-1]) if len(keras_shape) == 2 else tuple(keras_shape)


# --------------------------------------------------------------------------- bare Keras
class BareStep:
    """``train_on_batch`` of a model compiled as the trainer compiles it."""

    def __init__(self, name, batch, seed, jit_compile=False, mixed_precision=False):
        start = clock()
        model, _ = build_model(name)
        objective = get_objective(get_task(MODELS[name]), get_conventions(model))
        loss, loss_weights = objective.loss()
        optimizer = TrainerAdam(learning_rate=LEARNING_RATE)
        if mixed_precision:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        model.compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights,
                      jit_compile=jit_compile)
        model.optimizer.build(model.trainable_variables)
        out_shape = tuple(model.outputs[0].shape[1:])
        self.in_samples = int(model.input_shape[1])
        self.x, self.y = random_batch(batch, self.in_samples, torch_out_shape(out_shape), seed)
        self.model = model
        self.parameters = int(model.count_params())
        self.timed()
        self.first = since(start)

    def timed(self):
        start = clock()
        self.model.train_on_batch(self.x, self.y)
        return since(start)

    def round(self, steps):
        return [self.timed() for _ in range(steps)]


# --------------------------------------------------------------------------- PyTorch
class TorchWorker:
    """The PyTorch worker process (benchmarks/torch_training_step.py --serve)."""

    def __init__(self, python, seist_repo, threads):
        self.proc = subprocess.Popen(
            [python, str(TORCH_WORKER), "--serve", "--seist_repo", str(seist_repo),
             "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def ask(self, **request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the PyTorch worker stopped (run benchmarks/torch_training_step.py "
                               "by hand to see why)")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def torch_status(python, seist_repo):
    """``None`` when the PyTorch step can run, else why not (the column's text)."""
    if python is None:
        return "n/a (torch not installed)"
    probe = subprocess.run([python, "-c", "import torch, timm"], capture_output=True)
    if probe.returncode != 0:
        return "n/a (torch not installed)"
    if seist_repo is None or not (pathlib.Path(seist_repo) / "models" / "seist.py").exists():
        return "n/a (no SeisT checkout: --seist_repo)"
    return None


def find_torch_python():
    """An interpreter that imports torch: $UTRANS_TORCH_PYTHON, this one, or none."""
    candidates = [os.environ.get("UTRANS_TORCH_PYTHON"), sys.executable]
    for python in candidates:
        if python and subprocess.run([python, "-c", "import torch"],
                                     capture_output=True).returncode == 0:
            return python
    return None


# --------------------------------------------------------------------------- trainer
class RoundTimer(keras.callbacks.Callback):
    """Batch-end times of each epoch; runs ``between(epoch)`` before every epoch but the first."""

    def __init__(self, between):
        super().__init__()
        self.between = between
        self.epochs = []
        self.train_begin = None

    def on_train_begin(self, logs=None):
        self.train_begin = clock()

    def on_epoch_begin(self, epoch, logs=None):
        if epoch > 0:
            self.between(epoch)
        self.epochs.append([clock()])

    def on_train_batch_end(self, batch, logs=None):
        self.epochs[-1].append(clock())

    def steps(self):
        """Per epoch: (wall, cpu) of each step after the first of the epoch."""
        return [[(b[0] - a[0], b[1] - a[1]) for a, b in zip(marks[1:-1], marks[2:])]
                for marks in self.epochs]

    def first(self):
        first_end = self.epochs[0][1]
        return first_end[0] - self.train_begin[0], first_end[1] - self.train_begin[1]


_DATASETS = {}


def write_data(out, task, batch, steps, seed):
    """Synthetic HDF5 and splits: ``steps + 1`` augmented batches to train, one to validate."""
    folder = out / "data"
    if folder not in _DATASETS:
        _DATASETS[folder] = write_synthetic_dataset(
            folder, n_events=600, n_noise=60, seed=seed, layouts=("datacollected",),
            fractions=(0.8, 0.2, 0.0))
    written = _DATASETS[folder]
    # noise traces have no magnitude: the regression tasks train on earthquakes only
    suffix = "_all" if get_task(task).quantity == "picking" else ""
    ids = {split: load_split(written[split + suffix]) for split in ("train", "valid")}
    n_train = (steps + 1) * (batch // 2)
    if len(ids["train"]) < n_train or len(ids["valid"]) < batch:
        raise ValueError(f"batch {batch} x {steps + 1} steps needs more synthetic traces than "
                         f"written. Received: --batch_sizes {batch}, --steps {steps}")
    files = {}
    for split, n in (("train", n_train), ("valid", batch)):
        path = out / f"{task}_{split}_{batch}.npy"
        np.save(path, np.asarray(ids[split][:n]))
        files[split] = str(path)
    return DataFiles(hdf5=str(written["datacollected"]), train=files["train"],
                     valid=files["valid"])


# --------------------------------------------------------------------------- one case
def run_case(name, batch, args, worker, out):
    """Bare, PyTorch and trainer rounds of one model and batch size; returns the results."""
    task = MODELS[name]
    result = {"model": name, "batch": batch}
    print(f"[{name} b{batch}] bare model: build and first step ...", flush=True)
    bare = BareStep(name, batch, args.seed, args.jit_compile, args.mixed_precision)
    result.update(parameters=bare.parameters, bare_first=bare.first, bare=[], torch=[],
                  torch_first=None)
    key = f"{name}/{batch}"
    if worker is not None:
        print(f"[{name} b{batch}] PyTorch model: build and first step ...", flush=True)
        answer = worker.ask(op="build", key=key, model=name, batch=batch,
                            in_samples=bare.in_samples, seed=args.seed)
        result["torch_first"] = tuple(answer["first"])
        result["torch_parameters"] = answer["parameters"]

    def other_rounds(r):
        print(f"[{name} b{batch}] round {r + 1}/{args.rounds}", flush=True)
        result["bare"].append(bare.round(args.steps))
        if worker is not None:
            answer = worker.ask(op="round", key=key, steps=args.steps)
            result["torch"].append(list(zip(answer["wall"], answer["cpu"])))

    other_rounds(0)
    timer = RoundTimer(other_rounds)
    data = write_data(out, task, batch, args.steps, args.seed)
    print(f"[{name} b{batch}] trainer: fit ...", flush=True)
    start = clock()
    fit(task, model=name, data=data, callbacks=[timer], epochs=args.rounds, batch_size=batch,
        learning_rate=LEARNING_RATE, patience=args.rounds + 1, verbose=0, seed=args.seed,
        output_name=str(out / f"fit_{name}_{batch}"), resume=False,
        jit_compile=args.jit_compile, mixed_precision=args.mixed_precision)
    result["trainer"] = timer.steps()
    result["trainer_first"] = timer.first()
    result["trainer_startup"] = (timer.epochs[0][1][0] - start[0], timer.epochs[0][1][1] - start[1])
    keras.backend.clear_session()
    return result


# --------------------------------------------------------------------------- report
def summary(rounds, k):
    """Median of column ``k`` (0 wall, 1 cpu) over all steps, and (low, high) of round medians."""
    rounds = [r for r in rounds if r]
    if not rounds:
        return None, None
    values = [t[k] for r in rounds for t in r]
    per_round = [float(np.median([t[k] for t in r])) for r in rounds]
    return float(np.median(values)), (min(per_round), max(per_round))


def fmt(value, spread=None):
    if value is None:
        return "-"
    text = f"{value:.3f}"
    if spread is not None and spread[1] - spread[0] > 0.0005:
        text += f" ({spread[0]:.3f}-{spread[1]:.3f})"
    return text


def table(results, torch_note):
    lines = [
        "| model | batch | PyTorch s/step | bare s/step | trainer s/step | bare samples/s | "
        "trainer samples/s | trainer / bare time | bare speed / PyTorch | first step s: "
        "PyTorch / bare / trainer (from fit call) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    cpu = [
        "| model | batch | PyTorch CPU s/step | bare CPU s/step | trainer CPU s/step | "
        "trainer / bare CPU | bare CPU speed / PyTorch | first step CPU s: PyTorch / bare / "
        "trainer (from fit call) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        b = r["batch"]
        bare, bare_sp = summary(r["bare"], 0)
        trainer, trainer_sp = summary(r["trainer"], 0)
        torch_t, torch_sp = summary(r["torch"], 0)
        first = " / ".join([
            f"{r['torch_first'][0]:.1f}" if r["torch_first"] else "n/a",
            f"{r['bare_first'][0]:.1f}",
            f"{r['trainer_first'][0]:.1f} ({r['trainer_startup'][0]:.1f})"])
        lines.append(
            f"| {r['model']} | {b} | {fmt(torch_t, torch_sp) if torch_t else torch_note} | "
            f"{fmt(bare, bare_sp)} | {fmt(trainer, trainer_sp)} | {b / bare:.1f} | "
            f"{b / trainer:.1f} | {trainer / bare:.2f} | "
            f"{f'{torch_t / bare:.2f}x' if torch_t else 'n/a'} | {first} |")
        bare_c, _ = summary(r["bare"], 1)
        trainer_c, _ = summary(r["trainer"], 1)
        torch_c, _ = summary(r["torch"], 1)
        first_c = " / ".join([
            f"{r['torch_first'][1]:.1f}" if r["torch_first"] else "n/a",
            f"{r['bare_first'][1]:.1f}",
            f"{r['trainer_first'][1]:.1f} ({r['trainer_startup'][1]:.1f})"])
        cpu.append(
            f"| {r['model']} | {b} | {fmt(torch_c) if torch_c else torch_note} | {fmt(bare_c)} | "
            f"{fmt(trainer_c)} | {trainer_c / bare_c:.2f} | "
            f"{f'{torch_c / bare_c:.2f}x' if torch_c else 'n/a'} | {first_c} |")
    return "\n".join(lines) + "\n\nCPU seconds per step (all threads of the process):\n\n" \
        + "\n".join(cpu)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--batch_sizes", nargs="+", type=int, default=[16, 64])
    ap.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per round (default 3)")
    ap.add_argument("--quick", action="store_true",
                    help=f"{', '.join(QUICK_MODELS)} at batch 16, one round of 2 steps")
    ap.add_argument("--torch_python", default=None,
                    help="interpreter with torch and timm (default: $UTRANS_TORCH_PYTHON, "
                         "or this one if it has torch)")
    ap.add_argument("--seist_repo", default=os.environ.get("SEIST_REPO"),
                    help="checkout of github.com/senli1073/SeisT (default: $SEIST_REPO)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="threads of each framework: TensorFlow's intra- and inter-op pools, "
                         "torch.set_num_threads (default: all cores)")
    ap.add_argument("--jit_compile", action="store_true", help="XLA (GPU)")
    ap.add_argument("--mixed_precision", action="store_true", help="mixed_float16 (GPU)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="working folder (default: a temporary one)")
    args = ap.parse_args(argv)
    if args.quick:
        args.models = [m for m in args.models if m in QUICK_MODELS] or list(QUICK_MODELS)
        args.batch_sizes, args.rounds, args.steps = [16], 1, 2
    logging.basicConfig(level=logging.WARNING)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    python = args.torch_python or find_torch_python()
    torch_note = torch_status(python, args.seist_repo)
    worker = None if torch_note else TorchWorker(python, args.seist_repo, args.threads)
    out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="utrans_training_step_"))
    out.mkdir(parents=True, exist_ok=True)
    results = []
    start = time.perf_counter()
    try:
        for name in args.models:
            for batch in args.batch_sizes:
                results.append(run_case(name, batch, args, worker, out))
                print(table(results[-1:], torch_note or "n/a").splitlines()[2], flush=True)
    finally:
        if worker is not None:
            worker.close()
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    print()
    print(f"Training step, {args.rounds} alternated round(s) of {args.steps} steps, "
          f"{os.cpu_count()} cores, {args.threads} thread(s) per framework, TensorFlow "
          f"{tf.__version__} / Keras {keras.__version__}"
          + (", XLA" if args.jit_compile else "")
          + (", mixed_float16" if args.mixed_precision else "")
          + f", optimizer {TrainerAdam.__name__}"
          + f"; run took {time.perf_counter() - start:.0f} s")
    print()
    print(table(results, torch_note or "n/a"))


if __name__ == "__main__":
    main()
