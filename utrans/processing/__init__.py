"""Signal processing on plain arrays and ObsPy traces: no deep-learning framework.

* :mod:`~utrans.processing.normalize`: the one per-window normaliser;
* :mod:`~utrans.processing.resample`: the one resampler (records, traces, curves);
* :mod:`~utrans.processing.windows`: window cutting (at P, from a start) and the
  absolute window grid of continuous records;
* :mod:`~utrans.processing.decode`: the one decoder of curves into picks and detections;
* :mod:`~utrans.processing.stacking`: overlapping window outputs into one curve;
* :mod:`~utrans.processing.streams`: ObsPy Streams into checked, joined, gap-free segments;
* :mod:`~utrans.processing.geodesy`: distances and azimuths on the WGS84 ellipsoid.
"""
