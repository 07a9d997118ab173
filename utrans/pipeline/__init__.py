"""The one way in and out of a model: its conventions applied by a :class:`Pipeline`.

* :mod:`~utrans.pipeline.pipeline`: :class:`Pipeline` (records and windows in,
  curves, estimates, picks and detections out) and :class:`Frame`;
* :mod:`~utrans.pipeline.heads`: how each kind of model output is read.
"""

from utrans.pipeline.heads import ESTIMATES, Head, get_head, list_heads, register_head
from utrans.pipeline.pipeline import DETECTION_LABEL, Frame, Pipeline

__all__ = ["DETECTION_LABEL", "ESTIMATES", "Frame", "Head", "Pipeline", "get_head", "list_heads",
           "register_head"]
