"""Apply pickers and detectors to continuous records (ObsPy Streams).

::

    import obspy
    from utrans.annotate import annotate, classify

    st = obspy.read("day.mseed")
    probs = annotate("seist_m_dpk_diting", st)          # obspy.Stream of probabilities
    out = classify("seist_m_dpk_diting", st)            # picks and detections
    out.picks                                            # pandas DataFrame

Every convention (sampling rate, component order, window length,
normalisation, labels, thresholds, pick rule) is read from the model.
One job per submodule:

* :mod:`~utrans.annotate.streams`: grouping per instrument, component
  mapping, resampling, gap-free segments;
* :mod:`~utrans.annotate.windows`: where windows go, blinding;
* :mod:`~utrans.annotate.predict`: the compiled forward pass;
* :mod:`~utrans.annotate.stacking`: overlapping windows into one curve;
* :mod:`~utrans.annotate.batching`: the batch loop over stations and segments;
* :mod:`~utrans.annotate.picks`: picks and detections through :mod:`utrans.decode`;
* :mod:`~utrans.annotate.core`: :func:`annotate`, :func:`classify`, :class:`Annotator`;
* :mod:`~utrans.annotate.fast`: inference-only graphs (BatchNorm folded);
* :mod:`~utrans.annotate.output`, :mod:`~utrans.annotate.plot`,
  :mod:`~utrans.annotate.cli`: files, figures and the ``utrans-annotate`` command.
"""

from utrans.annotate.batching import SegmentResult, predict_segments
from utrans.annotate.core import Annotator, annotate, classify, resolve_model
from utrans.annotate.picks import ClassifyOutput, DecodeRules, decode_rules, decode_segment
from utrans.annotate.predict import Predictor, normalize_windows
from utrans.annotate.stacking import Accumulator
from utrans.annotate.streams import (
    AnnotateWarning,
    InstrumentGroup,
    Segment,
    StationError,
    group_stream,
    map_components,
    resample_trace,
)
from utrans.annotate.windows import WindowPlan, make_plan

__all__ = [
    "Accumulator",
    "AnnotateWarning",
    "Annotator",
    "ClassifyOutput",
    "DecodeRules",
    "InstrumentGroup",
    "Predictor",
    "Segment",
    "SegmentResult",
    "StationError",
    "WindowPlan",
    "annotate",
    "classify",
    "decode_rules",
    "decode_segment",
    "group_stream",
    "make_plan",
    "map_components",
    "normalize_windows",
    "predict_segments",
    "resample_trace",
    "resolve_model",
]
