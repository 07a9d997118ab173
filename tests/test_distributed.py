"""trainer1 under tf.distribute on CPU: mirrored replicas, two local workers, resume, determinism.

Logical CPU devices and the strategy must be set up before TensorFlow runs
its first op, so every run is a separate ``python 01_train/trainer1.py``
process. The runs share one tiny dataset and are started two at a time.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import REPO_ROOT
from utrans import synthetic
from utrans.formats import load_split

TRAINER = str(REPO_ROOT / "01_train" / "trainer1.py")
TINY = [
    "--batch_size", "8", "--max_traces", "16", "--verbose", "0", "--deterministic",
    "--foundation_weights", "random",
    "--backbone_kwargs", '{"base_filters": 2, "num_layers": 1, "num_heads": 1}',
    "--model_kwargs", '{"filters": 8, "depth": 1}',
]
TIMEOUT = 240  # seconds per process (TF import and graph tracing dominate)
# Loss of epoch 1 on two replicas vs one device with the same global batch: the
# batches are identical; BatchNormalization statistics are per replica (half
# batches) and gradients are summed in another order. Measured: 0.9e-3 to 2.2e-3
# relative on a loaded 2-core machine.
MIRRORED_RTOL = 1e-2

# trainer1 with two test hooks: the weights at the end of training go to
# $FINAL_WEIGHTS, and with $KILL_AFTER=N the process ends (os._exit, as a crash
# would) right after the callbacks of epoch N wrote their checkpoints.
DRIVER = textwrap.dedent("""
    import os, sys
    import keras
    from utrans.cli.scripts import trainer_main

    class Hooks(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == int(os.environ.get("KILL_AFTER", "0")):
                os._exit(17)

        def on_train_end(self, logs=None):
            self.model.save_weights(os.environ["FINAL_WEIGHTS"])

    trainer_main("location", sys.argv[1:], callbacks=[Hooks()])
""")

# trainer1 with the shard of each worker's generator logged (trace IDs).
SHARD_LOGGER = textwrap.dedent("""
    import logging, sys
    from utrans.cli.scripts import trainer_main

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("utrans.train.distribute").setLevel(logging.DEBUG)
    trainer_main("location", sys.argv[1:])
""")


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONHASHSEED="0")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _start(argv, log, script=None, **env):
    cmd = [sys.executable, TRAINER] if script is None else [sys.executable, "-c", script]
    return subprocess.Popen(cmd + [str(a) for a in argv], stdout=log, stderr=subprocess.STDOUT,
                            env=_env(**env), cwd=str(log.name).rsplit("/", 1)[0])


def _run_all(jobs, tmp, parallel=2):
    """Run ``{name: (argv, script, env[, after])}`` at most ``parallel`` at a time.

    A job with ``after`` starts once the job of that name has ended.

    Returns:
        ``{name: (return code, log text, seconds)}``.
    """
    pending, running, done = list(jobs.items()), {}, {}
    deadline = time.time() + TIMEOUT * (len(jobs) + 1) / parallel
    try:
        while pending or running:
            ready = [j for j in pending if len(j[1]) < 4 or j[1][3] in done]
            while ready and len(running) < parallel:
                name, (argv, script, env, *_) = ready.pop(0)
                pending = [j for j in pending if j[0] != name]
                log = open(tmp / f"{name}.log", "w")
                running[name] = (_start(argv, log, script, **env), log, time.time())
            for name, (proc, log, t0) in list(running.items()):
                if proc.poll() is not None:
                    log.close()
                    done[name] = (proc.returncode, (tmp / f"{name}.log").read_text(),
                                  time.time() - t0)
                    del running[name]
                elif time.time() - t0 > TIMEOUT or time.time() > deadline:
                    raise TimeoutError(f"{name} did not finish in {TIMEOUT} s")
            time.sleep(0.2)
    finally:
        for proc, log, _ in running.values():
            proc.kill()
            proc.wait()
            log.close()
    return done


def _weights(tmp, name):
    """All arrays of the final weights of run ``name`` by their path in the file."""
    arrays = {}
    with h5py.File(tmp / f"{name}_final.weights.h5", "r") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    assert arrays
    return arrays


def _outputs(tmp, name):
    return tmp / f"{name}_outputs"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The tiny trainer1 runs every test below compares (started together)."""
    tmp = tmp_path_factory.mktemp("dist")
    files = synthetic.write_synthetic_dataset(tmp / "data", n_events=60, n_noise=0, seed=3,
                                              layouts=("datacollected",))
    data = ["--input_hdf5", files["datacollected"], "--input_trainset", files["train"],
            "--input_validset", files["valid"]]

    def job(name, *argv, script=DRIVER, output=None, **env):
        output = output or name
        return name, ([*data, *TINY, "--output_name", tmp / output, *argv], script,
                      dict(env, FINAL_WEIGHTS=str(tmp / f"{output}_final.weights.h5")))

    name, restart = job("restart", "--epochs", "3", "--seed", "0", output="resumed")
    jobs = dict([
        job("resumed", "--epochs", "3", "--seed", "0", KILL_AFTER="1"),
        job("single", "--epochs", "3", "--seed", "0"),
        job("mirrored", "--epochs", "1", "--seed", "0", "--strategy", "mirrored",
            "--cpu_replicas", "2", "--batch_size", "4", script=None),  # the script itself
        job("again", "--epochs", "3", "--seed", "0"),
        job("seed1", "--epochs", "1", "--seed", "1"),
    ])
    # Rerun the crashed command line once it ended: it resumes from its backup.
    jobs["restart"] = (*restart, "resumed")
    start = time.time()
    done = _run_all(jobs, tmp)
    print(f"\ndistributed fixture: {len(done)} runs in {time.time() - start:.0f} s: "
          + ", ".join(f"{k} {v[2]:.0f} s" for k, v in done.items()))
    return tmp, done


def _history(tmp, name):
    return pd.read_csv(_outputs(tmp, name) / "history.csv")


def test_mirrored_two_cpu_replicas_matches_single_device(runs):
    tmp, done = runs
    for name in ("single", "mirrored"):
        assert done[name][0] == 0, done[name][1][-3000:]
    log = done["mirrored"][1]
    assert "MirroredStrategy with 2 replica(s); batch size 4 per replica, 8 global" in log
    assert "default with 1 replica(s); batch size 8 per replica, 8 global" in done["single"][1]
    config = json.loads((_outputs(tmp, "mirrored") / "training_config.json").read_text())
    assert config["global_batch_size"] == 8 and config["replicas"] == 2
    single, mirrored = _history(tmp, "single").loss[0], _history(tmp, "mirrored").loss[0]
    print(f"epoch-1 loss: single {single:.7f}, mirrored {mirrored:.7f}, "
          f"relative difference {abs(mirrored - single) / single:.2e}")
    assert mirrored == pytest.approx(single, rel=MIRRORED_RTOL)


def test_same_seed_identical_weights_other_seed_differs(runs):
    tmp, done = runs
    for name in ("single", "again", "seed1"):
        assert done[name][0] == 0, done[name][1][-3000:]
    a, b = _weights(tmp, "single"), _weights(tmp, "again")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    pd.testing.assert_frame_equal(_history(tmp, "single"), _history(tmp, "again"))
    c = _weights(tmp, "seed1")
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    assert _history(tmp, "seed1").loss[0] != _history(tmp, "single").loss[0]


def test_killed_run_resumes_to_identical_weights(runs):
    tmp, done = runs
    assert done["resumed"][0] == 17  # ended after epoch 1, as a crash would
    assert done["restart"][0] == 0, done["restart"][1][-3000:]
    assert "Resuming from the backup" in done["restart"][1]
    assert not (_outputs(tmp, "resumed") / "backup").exists()
    resumed, single = _history(tmp, "resumed"), _history(tmp, "single")
    assert list(resumed.epoch) == [1, 2, 3]  # epoch 1 from the first process, 2-3 resumed
    pd.testing.assert_frame_equal(resumed, single)
    a, b = _weights(tmp, "single"), _weights(tmp, "resumed")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def test_two_local_workers_train_disjoint_shards(tmp_path):
    files = synthetic.write_synthetic_dataset(tmp_path / "data", n_events=60, n_noise=0, seed=3,
                                              layouts=("datacollected",))
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    argv = ["--input_hdf5", files["datacollected"], "--input_trainset", files["train"],
            "--input_validset", files["valid"], *TINY, "--max_traces", "17", "--epochs", "1",
            "--batch_size", "4", "--strategy", "multiworker", "--output_name", tmp_path / "mw"]
    jobs = {f"worker{i}": (argv, SHARD_LOGGER, {"TF_CONFIG": json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": i}})}) for i in range(2)}
    done = _run_all(jobs, tmp_path, parallel=2)
    for name, (code, log, seconds) in done.items():
        assert code == 0, f"{name} after {seconds:.0f} s:\n{log[-3000:]}"
        assert "MultiWorkerMirroredStrategy with 2 replica(s); batch size 4 per replica, " \
               "8 global" in log
    shards = []
    for i in range(2):
        lines = [ln for ln in done[f"worker{i}"][1].splitlines()
                 if ln.startswith("Training shard trace IDs:")]
        assert len(lines) == 1
        shards.append(set(json.loads(lines[0].split(":", 1)[1])))
    assert shards[0] and len(shards[0]) == len(shards[1])
    assert not shards[0] & shards[1]  # no trace is trained on by both workers
    train = load_split(files["train"])[:17]
    assert shards[0] | shards[1] == set(train[:16])  # 17 cut to a multiple of 2 workers
    folder = tmp_path / "mw_outputs"
    assert len(pd.read_csv(folder / "history.csv")) == 1  # written by the chief only
    assert (folder / "models" / "best.keras").stat().st_size > 0
    assert not any(p.name.startswith("backup") for p in folder.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("option", ["--mixed_precision", "--jit_compile"])
def test_mixed_precision_and_jit_compile_run(tmp_path, option):
    files = synthetic.write_synthetic_dataset(tmp_path / "data", n_events=40, n_noise=0, seed=3,
                                              layouts=("datacollected",))
    argv = ["--input_hdf5", files["datacollected"], "--input_trainset", files["train"],
            "--input_validset", files["valid"], *TINY, "--epochs", "1", "--max_traces", "8",
            option, "--output_name", tmp_path / "run"]
    code, log, seconds = _run_all({"run": (argv, None, {})}, tmp_path)["run"]
    assert code == 0, log[-3000:]
    loss = _history(tmp_path, "run").loss[0]
    assert np.isfinite(loss)
    print(f"{option}: loss {loss:.5f}, {seconds:.0f} s")
    if option == "--mixed_precision":
        assert "mixed_float16" in log
