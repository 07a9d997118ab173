"""Apply models to continuous records (ObsPy Streams, files, SDS archives).

::

    import obspy
    from utrans.annotate import annotate, classify, characterize

    st = obspy.read("day.mseed")
    probs = annotate("seist_m_dpk_diting", st)          # obspy.Stream of probabilities
    out = classify("seist_m_dpk_diting", st)            # picks and detections
    out.picks                                            # pandas DataFrame

Every convention (sampling rate, component order, window length,
normalisation, labels, thresholds, pick rule) is read from the model and
applied by its pipeline (:class:`utrans.pipeline.Pipeline`); the model runs
through a runner (:mod:`utrans.runtime`: Keras, or an exported model without
TensorFlow). One job per submodule:

* :mod:`~utrans.annotate.batching`: the batch loop over stations and segments;
* :mod:`~utrans.annotate.picks`: picks and detections of stacked curves;
* :mod:`~utrans.annotate.core`: :func:`annotate`, :func:`classify`, :class:`Annotator`;
* :mod:`~utrans.annotate.characterization`: polarity, magnitude, back-azimuth and
  distance of every P pick from window models (:func:`characterize`);
* :mod:`~utrans.annotate.archive`, :mod:`~utrans.annotate.network`,
  :mod:`~utrans.annotate.catalogue`: an SDS archive in station-days over
  worker processes or a Dask cluster, merged into one catalogue
  (:func:`utrans.annotate.network.run_network`);
* :mod:`~utrans.annotate.output`, :mod:`~utrans.annotate.plot`: files and figures.

The record side (grouping, joining, resampling, windows, stacking) is in
:mod:`utrans.processing`.
"""

from utrans.annotate.characterization import Characterizer, characterize
from utrans.annotate.core import Annotator, annotate, classify
from utrans.annotate.picks import ClassifyOutput

__all__ = ["Annotator", "Characterizer", "ClassifyOutput", "annotate", "characterize",
           "classify"]
