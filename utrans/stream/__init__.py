"""Real-time picking: live SeedLink or SDS data in, annotate's picks out as soon as they are final.

* :class:`~utrans.stream.picker.StreamPicker`: fed ObsPy Traces (or miniSEED
  records), runs the model's windows on the absolute grid as they fill,
  batched over stations, and calls back with each final pick (annotate's
  picks of the whole record, never withdrawn or doubled); restartable from
  its :meth:`~utrans.stream.picker.StreamPicker.state`.
* :class:`~utrans.stream.catalog.StreamCatalog`: ``utrans catalog``'s
  association (PyOcto) on a sliding window of the final picks, each event
  confirmed once no later pick can change it (needs the ``catalog`` extra).
* :mod:`utrans.stream.run`: a source, a picker and the output files wired
  together (:func:`~utrans.stream.run.run_stream`), with reconnection,
  Ctrl-C and ``--state``; :mod:`utrans.stream.output`: ``picks.csv`` appended
  atomically, hourly QuakeML files.
* :mod:`utrans.stream.sources`: :class:`~utrans.stream.sources.SeedLinkSource`
  (a reconnecting, resuming SeedLink v3 client) and
  :class:`~utrans.stream.sources.SDSFollower` (new records of a growing SDS
  archive). Both hand over :class:`~utrans.stream.tracker.Packet` objects,
  each sample once per channel, through ``packets()`` / ``run(on_packet)``,
  and resume from ``state()``.
* :mod:`utrans.stream.server`: :class:`~utrans.stream.server.ReplayServer`, a
  SeedLink v3 server replaying an ObsPy Stream or an SDS archive, with
  injected faults, for tests and demos (``python -m utrans.stream.server``);
  :mod:`utrans.stream.demo`: a synthetic network for it.
* :mod:`utrans.stream.buffers`, :mod:`utrans.stream.decoding`: per-channel
  ordering and resampling, ring buffers, final-pick decoding;
  :mod:`utrans.stream.tracker`: per-channel duplicate / gap / late-packet
  bookkeeping; :mod:`utrans.stream.mseed`: miniSEED record headers.

Nothing here imports Keras or TensorFlow until a Keras model is loaded.
"""

from utrans.stream.catalog import StreamCatalog
from utrans.stream.picker import StreamPicker

__all__ = ["StreamCatalog", "StreamPicker"]
