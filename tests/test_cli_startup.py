"""``--help`` of every command answers without loading the deep learning framework."""

import json
import os
import pathlib
import subprocess
import sys

from utrans.cli import COMMANDS

REPO = pathlib.Path(__file__).resolve().parents[1]

# In a fresh interpreter: each command's --help in turn, and the framework modules
# loaded so far after each (the first command that loads one is the one named).
_CODE = """
import contextlib, io, json, runpy, sys
from utrans.cli import main

def framework():
    return sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))

found = {}
for argv in json.loads(sys.argv[1]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            if argv[0].endswith(".py"):
                sys.argv = [argv[0], "--help"]
                runpy.run_path(argv[0], run_name="__main__")
            else:
                main([*argv, "--help"])
        except SystemExit as exit:
            assert exit.code in (0, None), (argv, exit.code)
    assert "usage:" in out.getvalue(), (argv, out.getvalue())
    found[" ".join(argv)] = framework()
print(json.dumps(found))
"""


def _helps(commands):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", _CODE, json.dumps(commands)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_command_help_leaves_the_framework_unloaded():
    commands = [[name, "1"] if name in ("train", "test", "read") else [name]
                for name in COMMANDS]
    commands += [["01_train/trainer1.py"], ["02_test/tester6.py"], ["03_read/reader3.py"]]
    found = _helps(commands)
    assert sorted(found) == sorted(" ".join(c) for c in commands)
    assert {c: m for c, m in found.items() if m} == {}
