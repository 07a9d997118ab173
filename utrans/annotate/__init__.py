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
* :mod:`~utrans.annotate.characterization`: polarity, magnitude, back-azimuth and
  distance of every P pick from window models (:func:`characterize`);
* :mod:`~utrans.annotate.archive`, :mod:`~utrans.annotate.network`,
  :mod:`~utrans.annotate.catalogue`: an SDS archive in station-days over
  worker processes or a Dask cluster, merged into one catalogue
  (:func:`run_network`, ``utrans-annotate --sds``);
* :mod:`~utrans.annotate.output`, :mod:`~utrans.annotate.plot`,
  :mod:`~utrans.annotate.cli`: files, figures and the ``utrans-annotate`` command.
"""

import importlib

# Public names -> submodule. Imported on first use, so ``python -m utrans.annotate
# --help`` answers without loading the deep-learning framework.
_EXPORTS = {
    "Accumulator": "stacking",
    "AnnotateWarning": "streams",
    "Annotator": "core",
    "Characterizer": "characterization",
    "ClassifyOutput": "picks",
    "DecodeRules": "picks",
    "InstrumentGroup": "streams",
    "Predictor": "predict",
    "Segment": "streams",
    "SegmentResult": "batching",
    "StationError": "streams",
    "WindowPlan": "windows",
    "annotate": "core",
    "characterize": "characterization",
    "classify": "core",
    "decode_rules": "picks",
    "decode_segment": "picks",
    "group_stream": "streams",
    "make_plan": "windows",
    "map_components": "streams",
    "normalize_windows": "predict",
    "predict_segments": "batching",
    "resample_trace": "streams",
    "resolve_model": "core",
    "run_network": "network",
}

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


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
