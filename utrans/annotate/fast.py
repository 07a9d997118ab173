"""Inference-only graphs of models whose training graph is slow to evaluate."""

from __future__ import annotations

__all__ = ["inference_function"]


def inference_function(model):
    """An inference-only forward function for ``model``, or ``None`` to use the model itself."""
    return None
