"""Run a numbered script (``01_train/trainerN.py`` ...) in this process, as ``python script argv``."""

import runpy
import sys

from conftest import REPO_ROOT


def run_script(relpath, *argv):
    """Run ``REPO_ROOT / relpath`` as ``__main__`` with ``sys.argv = [relpath, *argv]``."""
    old = sys.argv
    sys.argv = [relpath, *map(str, argv)]
    try:
        runpy.run_path(str(REPO_ROOT / relpath), run_name="__main__")
    finally:
        sys.argv = old
