"""A live source, a streaming picker and its output files, run together.

::

    from utrans.stream import StreamPicker
    from utrans.stream.output import PickWriter
    from utrans.stream.run import StreamRunner
    from utrans.stream.sources import SeedLinkSource

    picker = StreamPicker("seist_m_dpk_diting")
    writer = PickWriter("out", picker.columns(), picker.name)
    runner = StreamRunner(SeedLinkSource("host:18000", "XX.*.*.HH?"), picker, writer,
                          state_dir="state")
    result = runner.run()            # until the server ends the stream, stop() or Ctrl-C

The source runs in its own thread, which stamps each packet with its
arrival time (the latency clock starts there, not when the picker gets to
it) and keeps reading while the model runs. The calling thread feeds every
packet that has arrived to the picker, runs its ready windows in shared
batches, appends the picks to the files and saves the state every
``save_every_s`` seconds and at the end.

* When the source ends (a server's ``END``, the end of an archive read
  without following), the picker is closed: the last picks are settled.
* On Ctrl-C (or :meth:`StreamRunner.stop`) the run stops after the batch
  in hand (a second Ctrl-C stops at once), the picks settled so far are
  written, the picker is not closed: its unsettled picks are rebuilt after a
  restart from the saved state (the sources resume each channel where the
  state says).
* A source that fails (a selection that matches nothing) raises its error
  in the calling thread.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import signal
import threading
import time

import obspy

from utrans.stream.output import load_state, save_state

__all__ = ["RunResult", "StreamRunner", "resume_from"]

logger = logging.getLogger(__name__)

_END = object()


@dataclasses.dataclass
class RunResult:
    """What a run did.

    Args:
        picks: picks emitted by this run.
        interrupted: stopped by Ctrl-C or :meth:`StreamRunner.stop` (the
            picker was not closed; its state was saved).
        stats: the source's :class:`~utrans.stream.tracker.SourceStats`.
        state: the state saved last (``None`` without a state folder).
        events: events confirmed by this run (with a catalogue).
    """

    picks: int
    interrupted: bool
    stats: object
    state: dict | None = None
    events: int = 0


def resume_from(state_dir):
    """``{channel id: time}`` at which a restarted source starts (``{}`` without a state)."""
    state = load_state(state_dir) if state_dir is not None else None
    return dict(state.get("resume", {})) if state else {}


class StreamRunner:
    """Run a source into a picker and a writer (module doc).

    Args:
        source: a :class:`~utrans.stream.sources.SeedLinkSource` or
            :class:`~utrans.stream.sources.SDSFollower` (started with the
            state's :func:`resume_from`).
        picker: a :class:`~utrans.stream.picker.StreamPicker` (restored from
            the state by :meth:`restore`).
        writer: an optional :class:`~utrans.stream.output.PickWriter`.
        catalog: an optional :class:`~utrans.stream.catalog.StreamCatalog`:
            given every pick written and the picker's settled time, it
            confirms events as the stream goes (its state is saved with the
            picker's; it restores the picks of its window from the writer's
            folder).
        state_dir: folder of ``state.json`` (``None``: no state is kept).
        follow: False: an SDS follower is read until nothing new is found,
            then the run ends (the archive read once).
        poll_s: longest wait for packets before the picker looks at its clocks.
        save_every_s: least time between two state saves.
        clock: wall-clock function.
    """

    def __init__(self, source, picker, writer=None, state_dir=None, follow=True, poll_s=0.2,
                 save_every_s=2.0, clock=time.time, catalog=None):
        self.source = source
        self.picker = picker
        self.writer = writer
        self.catalog = catalog
        self.events = 0
        self.state_dir = state_dir
        self.follow = follow
        self.poll_s = float(poll_s)
        self.save_every_s = float(save_every_s)
        self.clock = clock
        self.picks = 0
        self._queue = queue.Queue()
        self._stop = threading.Event()
        self._saved = 0.0
        self.state = None

    def restore(self):
        """Restore the picker from the state folder (nothing without one); returns the state."""
        state = load_state(self.state_dir) if self.state_dir is not None else None
        if state:
            written = None
            if self.writer is not None and state.get("resume"):
                # the picks a restart can give again lie after the earliest resume point
                since = min(obspy.UTCDateTime(t) for t in state["resume"].values())
                written = self.writer.existing(since=since - 3600.0)
            self.picker.restore(state, written)
            if self.catalog is not None and self.writer is not None:
                self.catalog.restore(state.get("catalog"), self.writer.folder)
            logger.info("Resuming %d channel(s) from %s", len(state.get("resume", {})),
                        self.state_dir)
        return state

    def stop(self):
        """Make :meth:`run` return (thread-safe); the state is saved, the picker not closed."""
        self._stop.set()
        self.source.stop()

    def run(self):
        """Run until the source ends, :meth:`stop` or Ctrl-C (module doc).

        Returns:
            A :class:`RunResult`.
        """
        interrupted = hard = False
        thread = None
        previous = self._catch_interrupt()
        try:
            if not self.follow and hasattr(self.source, "poll"):
                ended = self._read_once()
            else:
                thread = threading.Thread(target=self._pump, name="utrans-stream-source",
                                          daemon=True)
                thread.start()
                ended = self._loop()
            interrupted = self._stop.is_set() or not ended  # stop() ends the source too
        except KeyboardInterrupt:  # a second Ctrl-C: the last state saved stays (it is safe)
            interrupted = hard = True
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            self.source.stop()
            if thread is not None:
                thread.join(timeout=10)
        self._drain_into_picker()
        if not interrupted:
            self._write(self.picker.close())
            if self.catalog is not None:
                self.events += len(self.catalog.close())
        if self.writer is not None:
            self.writer.flush()
        if not hard:
            self._save(force=True)
        return RunResult(self.picks, interrupted, self.source.stats, self.state, self.events)

    # ------------------------------------------------------------------ internals
    def _catch_interrupt(self):
        """Ctrl-C asks the loop to stop between batches (a second one interrupts)."""
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            if self._stop.is_set():
                raise KeyboardInterrupt
            logger.info("Ctrl-C: stopping after the batch in hand")
            self.stop()

        return signal.signal(signal.SIGINT, handler)

    def _pump(self):
        try:
            for packet in self.source.packets():
                self._queue.put((self.clock(), packet))
        except BaseException as err:  # noqa: BLE001 - handed to the calling thread as it is
            self._queue.put((None, err))
        finally:
            self._queue.put((None, _END))

    def _loop(self):
        """Feed, process, write, save until the source ends (True) or stop() (False)."""
        while not self._stop.is_set():
            try:
                items = [self._queue.get(timeout=self.poll_s)]
            except queue.Empty:
                items = []
            while len(items) < 20000:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            ended = self._feed(items)
            self._write(self.picker.process())
            self._confirm()
            self._save()
            if ended:
                return True
        return False

    def _read_once(self):
        """An archive read once: poll until nothing new is found."""
        while not self._stop.is_set():
            packets = self.source.poll()
            if not packets:
                return True
            arrival = self.clock()
            for packet in packets:
                self.picker.feed(packet.trace, arrival)
            self._write(self.picker.process())
            self._confirm()
            self._save()
        return False

    def _feed(self, items):
        ended = False
        for arrival, item in items:
            if arrival is None:
                if item is _END:
                    ended = True
                    continue
                raise item
            self.picker.feed(item.trace, arrival)
        return ended

    def _drain_into_picker(self):
        """Packets received but not yet fed go to the picker (its state then covers them)."""
        while True:
            try:
                arrival, item = self._queue.get_nowait()
            except queue.Empty:
                return
            if arrival is not None:
                self.picker.feed(item.trace, arrival)

    def _write(self, rows):
        if rows and self.writer is not None:
            self.writer.write(rows)
        if self.catalog is not None:
            self.catalog.add(rows)
        self.picks += len(rows)

    def _confirm(self):
        if self.catalog is not None:
            self.events += len(self.catalog.advance(self.picker.settled_time()))

    def _save(self, force=False):
        if self.state_dir is None:
            return
        now = self.clock()
        if not force and now - self._saved < self.save_every_s:
            return
        state = self.picker.state()
        resume = {cid: str(t) for cid, t in self.source.state().items()}
        resume.update(state["resume"])
        state["resume"] = resume
        if self.catalog is not None:
            state["catalog"] = self.catalog.state()
        save_state(self.state_dir, state)
        self.state = state
        self._saved = now
