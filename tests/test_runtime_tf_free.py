"""Exported models annotate without TensorFlow and give the Keras model's picks.

A trained picker (SeisBench's PhaseNetLight trained on ETHZ, from the
reference folder) is exported to ONNX and LiteRT and applied to ObsPy's
example record with Keras (:mod:`export_reference`). Then a Python process in
which TensorFlow, Keras, JAX and torch cannot be imported runs
``utrans.classify`` and the ``utrans annotate`` command with the exports; its
picks must be the Keras picks, and none of those frameworks may have been
imported on the way (``utrans.annotate`` -> ``utrans.runtime.load_runner`` ->
the exported runner).

This file runs in two environments:

* the full one (``pip install '.[dev]'``): everything happens here;
* the TensorFlow-free one (``pip install -r requirements-runtime.txt``,
  ``pip install --no-deps .``): the Keras side runs with the Python of a full
  environment, ``UTRANS_KERAS_PYTHON`` (skipped without it, failed under
  ``CI=true``).
"""

import configparser
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

import export_reference
from conftest import REPO_ROOT, require_reference
from export_reference import picks_rows

WEIGHTS = "seisbench/phasenetlight_ethz.json.v2"
FRAMEWORKS = ("tensorflow", "keras", "tf_keras", "jax", "torch")
# Run first in the child process: importing any framework raises.
BLOCK = textwrap.dedent(f"""
    import importlib.abc, sys

    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {FRAMEWORKS!r}:
                raise ImportError(f"{{name}} is blocked in this test")
            return None

    sys.meta_path.insert(0, Blocked())
""")
# Printed last by the child: the frameworks (and utrans modules that need one) it imported.
REPORT = textwrap.dedent(f"""
    heavy = sorted(m for m in sys.modules
                   if m.split(".")[0] in {FRAMEWORKS!r} or m.startswith(("utrans.models",
                   "utrans.loading", "utrans.export", "utrans.runtime.keras")))
    print("HEAVY", heavy)
""")


def _needs(module, why):
    if importlib.util.find_spec(module) is None:
        message = f"{module} is not installed ({why})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true requires it")
        pytest.skip(message)


@pytest.fixture(scope="module")
def keras_side(tmp_path_factory):
    """The exports and the Keras picks (:mod:`export_reference`), here or in a full environment."""
    weights = require_reference(WEIGHTS)
    out = tmp_path_factory.mktemp("tf_free")
    if importlib.util.find_spec("tensorflow") is not None:
        _needs("tf2onnx", "pip install '.[export]'")
        return export_reference.write(weights, out)  # Keras loads here, not at import
    python = os.environ.get("UTRANS_KERAS_PYTHON")
    if not python:
        message = ("TensorFlow is not installed here: set UTRANS_KERAS_PYTHON to the Python of "
                   "an environment with it (and the export extra) to export the model")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true requires it")
        pytest.skip(message)
    done = subprocess.run([python, str(REPO_ROOT / "tests" / "export_reference.py"),
                           str(weights), str(out)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _run_blocked(code, cwd):
    """Run ``code`` in a child Python where no framework can be imported; its stdout."""
    script = BLOCK + textwrap.dedent(code) + REPORT
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=cwd, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "HEAVY []" in done.stdout, done.stdout[-2000:]
    return done.stdout


def _same_picks(got, want, value_tolerance):
    """Same phases at the same samples (100 Hz), peak values within the tolerance."""
    assert [g[0] for g in got] == [w[0] for w in want] and want
    for (_, t_got, v_got), (_, t_want, v_want) in zip(got, want, strict=True):
        assert t_got == t_want
        assert abs(v_got - v_want) <= value_tolerance


def test_classify_with_exported_models_without_tensorflow(keras_side):
    _needs("onnxruntime", "pip install -r requirements-runtime.txt")
    _needs("ai_edge_litert", "pip install -r requirements-runtime.txt")
    want = json.loads((keras_side / "keras_picks.json").read_text())
    stdout = _run_blocked(f"""
        import json
        import obspy
        import utrans
        from export_reference import picks_rows

        stream = obspy.read()
        for fmt in ("onnx", "litert"):
            picks = utrans.classify({str(keras_side)!r} + "/" + fmt, stream).picks
            print("PICKS", fmt, json.dumps(picks_rows(picks)))
    """, cwd=REPO_ROOT / "tests")
    got = {line.split(" ", 2)[1]: json.loads(line.split(" ", 2)[2])
           for line in stdout.splitlines() if line.startswith("PICKS ")}
    _same_picks(got["onnx"], want, 1e-5)
    _same_picks(got["litert"], want, 1e-4)


def test_annotate_command_with_an_onnx_model_without_tensorflow(keras_side, tmp_path):
    _needs("onnxruntime", "pip install -r requirements-runtime.txt")
    want = json.loads((keras_side / "keras_picks.json").read_text())
    onnx = keras_side / "onnx" / "model.onnx"
    out = tmp_path / "annotated"
    stdout = _run_blocked(f"""
        from utrans.cli import console
        code = console(["annotate", {str(keras_side / "example.mseed")!r}, "--model",
                        {str(onnx)!r}, "--output", {str(out)!r}, "--no_plots", "--no_progress"])
        print("EXIT", code)
    """, cwd=tmp_path)
    assert "EXIT 0" in stdout and "Model onnx: 100 Hz, ZNE, 3001 samples" in stdout
    picks = pd.read_csv(out / "picks.csv")
    assert set(picks.model) == {"onnx"}  # the export folder's name
    _same_picks(picks_rows(picks), want, 1e-5)


def test_runtime_requirements_are_the_packages(tmp_path):
    """requirements-runtime.txt: install_requires and the runtime extra, minus the frameworks."""
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    declared = {}
    for block in (config["options"]["install_requires"],
                  config["options.extras_require"]["runtime"]):
        for line in filter(None, (raw.strip() for raw in block.splitlines())):
            declared[re.split(r"[<>=\[]", line, maxsplit=1)[0].lower()] = line
    lines = [line.strip() for line in (REPO_ROOT / "requirements-runtime.txt").read_text()
             .splitlines() if line.strip() and not line.startswith("#")]
    names = [re.split(r"[<>=\[]", line, maxsplit=1)[0].lower() for line in lines]
    assert not set(names) & {"tensorflow", "keras", "jax", "torch"}
    for name, line in zip(names, lines, strict=True):
        assert declared.get(name) == line, f"{line!r} differs from setup.cfg's {declared.get(name)!r}"
    # Everything declared is there, but the frameworks and what only training uses.
    assert set(declared) - set(names) == {"tensorflow", "keras", "h5py", "scikit-learn"}
