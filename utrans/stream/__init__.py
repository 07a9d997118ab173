"""Live data for real-time picking: SeedLink and SDS sources, and a replay server.

* :mod:`utrans.stream.sources`: :class:`~utrans.stream.sources.SeedLinkSource`
  (a reconnecting, resuming SeedLink v3 client) and
  :class:`~utrans.stream.sources.SDSFollower` (new records of a growing SDS
  archive). Both hand over :class:`~utrans.stream.tracker.Packet` objects,
  each sample once per channel, through ``packets()`` / ``run(on_packet)``,
  and resume from ``state()``.
* :mod:`utrans.stream.server`: :class:`~utrans.stream.server.ReplayServer`, a
  SeedLink v3 server replaying an ObsPy Stream or an SDS archive, with
  injected faults, for tests and demos (``python -m utrans.stream.server``).
* :mod:`utrans.stream.tracker`: per-channel duplicate / gap / late-packet
  bookkeeping; :mod:`utrans.stream.mseed`: miniSEED record headers.

The package needs ObsPy and NumPy only (no Keras or TensorFlow).
"""
