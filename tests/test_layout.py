"""The package's layout: no import cycle, no library module importing the command line.

The layers themselves are import-linter contracts (``lint-imports``, setup.cfg)
and imports at the top of modules are a ruff rule; both run in CI before the
tests. This test runs the shared cycle finder, which also sees cycles inside
one layer.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
TOOL = REPO.parent / "shared" / "tools" / "import_cycles.py"


def test_no_import_cycle_and_no_library_import_of_the_command_line():
    if not TOOL.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{TOOL} not found; CI=true requires it")
        pytest.skip(f"{TOOL} not found (it sits in ../shared/tools beside the checkout)")
    out = subprocess.run([sys.executable, str(TOOL), "utrans"], cwd=REPO, capture_output=True,
                         text=True, timeout=300, check=True).stdout
    found = re.search(r"(\d+) cycle\(s\), (\d+) library->command-line import\(s\), "
                      r"(\d+) import\(s\) inside functions", out)
    assert found, out
    cycles, to_cli, _ = map(int, found.groups())
    # Imports inside functions (optional dependencies, imported lazily) are ruff's PLC0415
    # rule, each allowed one with a noqa that says why.
    assert (cycles, to_cli) == (0, 0), out
