"""Shared by the catalogue tests: the optional ``catalog`` extra must be there under CI."""

import importlib
import os

import pytest


def require(module):
    """Import ``module`` (pyocto, pyrocko); skip without it, fail under ``CI=true``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        message = f"{module} is not installed (pip install '.[catalog]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true requires the catalog extra")
        pytest.skip(message, allow_module_level=True)
