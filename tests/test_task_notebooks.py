"""Evaluation notebooks of tasks 2-5, executed on tiny trainer -> tester -> reader runs.

One synthetic dataset is shared by the module; each task trains its tiny
configuration of ``tests/test_task_scripts.py`` for one epoch, tests and reads,
then its notebook runs with ``UTRANS_OUTPUT_NAME`` pointing at that run. The
notebook recomputes the metrics with :mod:`utrans.metrics` (and asserts that
``metrics.json`` agrees); the test compares the printed values with the
reader's ``metrics.json``.
"""

import json
import re

import numpy as np
import pandas as pd
import pytest

from conftest import REPO_ROOT
from script_runner import run_script
from test_task_scripts import CASES, run_task
from utrans import synthetic

# (script number, notebook, regex of the printed summary, metrics.json keys of its groups)
NOTEBOOKS = {
    2: ("magnitude_evaluation.ipynb",
        r"magnitude over (\d+) traces: MAE (\S+), std (\S+), mean error \S+, RMSE (\S+), R2 (\S+)",
        ("n_traces", "mae", "std", "rmse", "r2")),
    3: ("polarity_evaluation.ipynb",
        r"polarity over (\d+) traces: accuracy (\S+), precision (\S+), recall (\S+), F1 (\S+?) ",
        ("n_traces", "accuracy", "precision", "recall", "f1")),
    4: ("p_pick_evaluation.ipynb",
        r"P picking within 0.5 s: precision (\S+), recall (\S+), F1 (\S+), MAE (\S+) s, std (\S+) s",
        ("p_precision_0.5s", "p_recall_0.5s", "p_f1_0.5s", "p_mae_s_0.5s", "p_std_s_0.5s")),
    5: ("s_pick_evaluation.ipynb",
        r"S picking within 0.5 s: precision (\S+), recall (\S+), F1 (\S+), MAE (\S+) s, std (\S+) s",
        ("s_precision_0.5s", "s_recall_0.5s", "s_f1_0.5s", "s_mae_s_0.5s", "s_std_s_0.5s")),
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """24 earthquakes and 6 noise traces (DataCollected layout)."""
    work = tmp_path_factory.mktemp("task_notebooks")
    files = synthetic.write_synthetic_dataset(work / "data", n_events=24, n_noise=6, seed=5,
                                              layouts=("datacollected",))
    return work, files


def execute_notebook(name, work, output_name, monkeypatch):
    """Run ``notebooks/<name>`` in ``work`` with ``UTRANS_OUTPUT_NAME``; returns (text, images)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("UTRANS_OUTPUT_NAME", str(output_name))
    nb = nbformat.read(REPO_ROOT / "notebooks" / name, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(work)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs)
    images = sum(1 for o in outputs if "image/png" in o.get("data", {}))
    return text, images


@pytest.mark.parametrize("number", sorted(NOTEBOOKS))
def test_task_notebook(dataset, number, monkeypatch):
    pytest.importorskip("nbclient")
    work, files = dataset
    case = next(c for c in CASES if c[1] == number and c[2] is None)
    folder = run_task(work, files, *case)
    stored = json.loads((folder / "test" / "metrics.json").read_text())
    name, pattern, keys = NOTEBOOKS[number]
    text, images = execute_notebook(name, work, work / case[0], monkeypatch)
    match = re.search(pattern, text)
    assert match, f"summary line not printed; notebook output:\n{text}"
    printed = np.array([float(v) for v in match.groups()])
    expected = np.array([np.nan if stored[k] is None else float(stored[k]) for k in keys])
    np.testing.assert_allclose(printed, expected, atol=1e-4)  # printed with 4 decimals
    assert "metrics.json agrees" in text
    assert images >= 1
    if number in (4, 5):
        assert "same picks as the CSV" in text  # the model's rule re-picked the example curves


@pytest.mark.parametrize("number,phase", [(4, "P"), (5, "S")])
def test_picking_notebook_by_hand(tmp_path, number, phase, monkeypatch):
    """Known picks at 100 Hz: 0.1 s and 0.4 s off (TP at 0.5 s), 2 s off (FP and FN), one on noise (FP).

    At 0.5 s: TP 2, FP 2, FN 1 -> precision 1/2, recall 2/3, F1 4/7, residual MAE 0.25 s,
    std 0.15 s; at 0.1 s only the 0.1 s pick is a TP (precision 1/4, recall 1/3, F1 2/7).
    """
    ph = phase.lower()
    results = tmp_path / "hand_outputs" / "test"
    results.mkdir(parents=True)
    true = np.array([500.0, 500.0, 500.0, np.nan])
    pd.DataFrame({"trace_name": [f"T{i}" for i in range(4)], f"true_{ph}_sample": true,
                  f"pred_{ph}_samples": ["510", "540", "700", "300"],
                  f"pred_{ph}_probs": ["0.9", "0.5", "0.3", "0.2"], "sampling_rate": 100.0,
                  "outputs": phase}).to_csv(results / "predictions.csv", index=False)
    (results / "test_config.json").write_text(json.dumps(
        {"thresholds": {phase: 0.1}, "pick_rule": "highest"}))
    run_script(f"03_read/reader{number}.py", "--output_name", tmp_path / "hand")
    stored = json.loads((results / "metrics.json").read_text())
    assert stored[f"{ph}_f1_0.5s"] == pytest.approx(4 / 7) and stored[f"{ph}_tp_0.1s"] == 1
    text, images = execute_notebook(NOTEBOOKS[number][0], tmp_path, tmp_path / "hand", monkeypatch)
    match = re.search(NOTEBOOKS[number][1], text)
    assert match, text
    np.testing.assert_allclose([float(v) for v in match.groups()],
                               [1 / 2, 2 / 3, 4 / 7, 0.25, 0.15], atol=1e-4)
    assert "metrics.json agrees: F1 0.5714 at 0.5 s, 0.2857 at 0.1 s" in text
    assert images >= 1
