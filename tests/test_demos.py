"""The demos learn: trained on the embedded synthetic data, they beat their trivial baselines.

The default suite runs shortened demos in-process (fewer traces, shorter
windows, fewer epochs) of one picking (PhaseNet), one classification
(DiTingMotion) and one regression (BAZ-Network back-azimuth) task and asserts each beats
its baseline by a clear margin. The ``slow`` tests
run the real numbered scripts (``01_train/trainerN.py``, ``02_test/testerN.py``,
``03_read/readerN.py``) with no arguments and no presets, and assert the bars
the demos are tuned for:

* picking: F1 at 0.5 s >= 0.8 (P and S); detection (task 6) F1 >= 0.9;
* polarity: accuracy >= 0.9;
* magnitude, distance, back-azimuth, location: MAE <= 0.6 x the baseline
  (training mean, circular mean for back-azimuth, mean offset for location);
* pretraining: masked-trace MAE below the masked-input baseline.
"""

import dataclasses
import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

from utrans import evaluate
from utrans.core.tasks import task_by_number
from utrans.train import fit

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

#: Metric bars of the full demos: (metric, bar, kind of bar); ``"ratio"`` bars
#: multiply the metric's baseline.
BARS = {
    0: [("mae", 1.0, "ratio")],
    1: [("epicentral_mae_km", 0.6, "ratio")],
    2: [("mae", 0.6, "ratio")],
    3: [("accuracy", 0.9, "min")],
    4: [("p_f1_0.5s", 0.8, "min")],
    5: [("s_f1_0.5s", 0.8, "min")],
    6: [("p_f1_0.5s", 0.8, "min"), ("s_f1_0.5s", 0.8, "min"), ("det_f1", 0.9, "min")],
    7: [("accuracy", 0.9, "min")],
    8: [("mae", 0.6, "ratio")],
    9: [("mae_deg", 0.6, "ratio")],
    10: [("mae", 0.6, "ratio")],
}
_BASELINES = {"mae": "baseline_mae", "epicentral_mae_km": "baseline_epicentral_mae_km",
              "mae_deg": "baseline_mae_deg"}


def _failures(number, metrics):
    """The bars of task ``number`` that ``metrics`` misses, as readable strings."""
    missed = []
    for key, bar, kind in BARS[number]:
        value = metrics.get(key)
        if kind == "ratio":
            base_key = "masked_input_mae" if number == 0 else _BASELINES[key]
            limit = bar * metrics[base_key]
            ok = value is not None and math.isfinite(value) and (
                value < limit if number == 0 else value <= limit)
            missed += [] if ok else [f"{key} {value} > {bar} x {base_key} {metrics[base_key]}"]
        else:
            ok = value is not None and math.isfinite(value) and value >= bar
            missed += [] if ok else [f"{key} {value} < {bar}"]
    return missed


@pytest.fixture
def demo_dir(tmp_path, monkeypatch, utrans_home):
    """A working folder for the demo outputs, with an empty preset cache (``utrans_home``)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _short_demo(number, model=None, **demo):
    """Train, test and read task ``number`` (``model``, default the task's) in-process with
    demo overrides ``demo``."""
    task = task_by_number(number)
    task = dataclasses.replace(task, demo=dict(task.demo, **demo))
    fit(task, model=model, output_name="short", verbose=0)
    evaluate.test(task, output_name="short")
    return evaluate.read(task, output_name="short")


def test_short_picking_demo_beats_baseline(demo_dir):
    """PhaseNet on 240 synthetic events in windows of 3072 samples (10 short epochs): P and S
    picks within 0.5 s far above the mean-arrival baseline."""
    metrics = _short_demo(4, model="phasenet", n_events=240, in_samples=3072, epochs=10,
                          patience=10, batch_size=8, learning_rate=3e-3)
    assert metrics["baseline_p_f1_0.5s"] < 0.3, metrics
    for phase in ("p", "s"):
        assert metrics[f"{phase}_f1_0.5s"] >= 0.75, metrics
        assert metrics[f"{phase}_f1_0.5s"] > metrics[f"baseline_{phase}_f1_0.5s"] + 0.5, metrics


def test_short_classification_demo_beats_baseline(demo_dir):
    """DiTingMotion on 160 synthetic events (4 epochs): first-motion accuracy far above
    the majority class."""
    metrics = _short_demo(7, model="ditingmotion", n_events=160, epochs=4, patience=4,
                          batch_size=8)
    assert metrics["baseline_accuracy"] < 0.7, metrics
    assert metrics["accuracy"] >= 0.9, metrics


def test_short_regression_demo_beats_baseline(demo_dir):
    """BAZ-Network on 240 synthetic events (10 epochs): back-azimuth MAE well below the
    circular-mean baseline."""
    metrics = _short_demo(9, model="baz_network", n_events=240, epochs=10, patience=10,
                          in_samples=4096, learning_rate=1e-3, augmentation=True)
    assert metrics["baseline_mae_deg"] > 60.0, metrics
    assert metrics["mae_deg"] <= 0.7 * metrics["baseline_mae_deg"], metrics


def _run_script(folder, number, env):
    for stage, script in (("train", "01_train/trainer"), ("test", "02_test/tester"),
                          ("read", "03_read/reader")):
        done = subprocess.run([sys.executable, str(REPO_ROOT / f"{script}{number}.py")],
                              cwd=folder, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{stage} of demo {number} failed:\n{done.stderr[-3000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("number", sorted(BARS))
def test_full_demo_meets_its_bar(number, demo_dir):
    """``trainerN.py``, ``testerN.py``, ``readerN.py`` with no arguments meet the task's bar."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p))
    _run_script(demo_dir, number, env)
    task = task_by_number(number)
    metrics = json.loads((demo_dir / f"{task.output_name}_outputs" / "test" / "metrics.json")
                         .read_text())
    assert not _failures(number, metrics), _failures(number, metrics)
