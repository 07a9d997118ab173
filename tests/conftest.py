"""Shared pytest fixtures.

Reference files (published weights and outputs of the original
implementations) are found through ``UTRANS_REFERENCE``, by default
``../shared/reference`` beside the checkout. Where they are absent the tests
that need them are skipped, except under ``CI=true``, where a missing
reference file fails the run: a parity test must never pass by skipping.
"""

import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def reference_root():
    """The reference folder: ``$UTRANS_REFERENCE`` or ``../shared/reference``."""
    env = os.environ.get("UTRANS_REFERENCE")
    if env:
        return pathlib.Path(env)
    return REPO_ROOT.parent / "shared" / "reference"


def require_reference(relpath):
    """Path of a reference file; skip (or fail under CI=true) when it is absent."""
    path = reference_root() / relpath
    if not path.exists():
        message = (
            f"reference file {path} not found (set UTRANS_REFERENCE to the folder "
            "holding MANIFEST.md)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true requires it")
        pytest.skip(message)
    return path


@pytest.fixture
def reference():
    """Function ``reference(relpath) -> Path`` that skips/fails on absent files."""
    return require_reference


@pytest.fixture
def utrans_home(tmp_path, monkeypatch):
    """A preset cache folder (``UTRANS_HOME``) in tmp_path, initially empty."""
    home = tmp_path / "utrans_home"
    home.mkdir()
    monkeypatch.setenv("UTRANS_HOME", str(home))
    return home
