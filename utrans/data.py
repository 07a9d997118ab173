"""One data generator for every task, and the learning-rate schedule.

:class:`DataGenerator` is a ``keras.utils.PyDataset``: format reader ->
augmentation steps -> labeller -> ``(x, y)`` batches, ``x`` float32
``(batch, dim, 3)`` (E, N, Z).

Two ways to build it:

* **reference keywords** (scripts written for the U-Trans generators port by
  changing one import)::

      gen = DataGenerator(list_IDs, "DataCollected.hdf5", dim=6000, batch_size=32,
                          norm_mode="std", augmentation=True, add_event_r=0.6,
                          shift_event_r=0.99, add_noise_r=0.3, drop_channe_r=0.5,
                          add_gap_r=0.2, task="location", seed=0)

* **native form**: trace IDs, a file (or reader), a labeller and a list of steps::

      gen = DataGenerator(ids, path, LocationLabeller(), [ShiftEvent(0.5), Normalize("std")],
                          batch_size=32)

Batch semantics follow the reference: without augmentation a batch holds
``batch_size`` traces and there are ``floor(n / batch_size)`` batches (set
``drop_remainder=False`` to keep a last, smaller batch); with
``augmentation=True`` a batch holds ``batch_size // 2`` traces twice, the first
half through the clean pipeline and the second half through the augmented
one, and there are ``2 * floor(n / batch_size)`` batches.

Randomness: batch ``i`` of epoch ``e`` uses
``numpy.random.default_rng((seed, e, i))``, and the trace order of epoch ``e``
is a permutation drawn from ``(seed, e)``; :meth:`DataGenerator.on_epoch_end`
advances ``e``. The same seed gives identical batches whatever the number of
workers.

Sharding (distributed training): ``shard=(index, count)`` keeps the trace IDs
at positions ``index, index + count, ...`` of ``list_IDs``, so ``count``
replicas or input pipelines see disjoint trace sets (give every replica the same
``list_IDs`` and seed). Under ``tf.distribute`` use
``shard=(input_context.input_pipeline_id, input_context.num_input_pipelines)``.

Performance: the reader's HDF5 handle and a raw file descriptor are opened once
per process; each trace's byte offset and the metadata the steps and the
labeller need are cached in flat numpy columns the first time the trace is
read (about 100 bytes per trace, ~100 MB per million traces, whatever the
waveform size); later reads are one ``os.preadv`` per trace into the batch
buffer, in file order. Waveform memory is one batch per worker. With
``use_multiprocessing=True`` Keras forks new workers every epoch, so call
:meth:`DataGenerator.cache_metadata` (or pass ``cache_metadata=True``) first
to fill the cache in the parent process once (done by default when
``use_multiprocessing=True``).

Bad traces (missing ID, wrong shape, non-finite or all-zero samples, missing
required metadata) raise :class:`utrans.formats.BadTraceError` naming file and
trace; with ``skip_bad=True`` they are logged (and appended to ``bad_log``)
and replaced by the next good trace of the epoch order, so batches stay full.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from pathlib import Path

import keras
import numpy as np

from utrans.augment import Batch, Step, channels_last, reference_steps
from utrans.formats import BadTraceError, BaseReader, load_split, open_dataset
from utrans.labels import Labeller, get_labeller

logger = logging.getLogger(__name__)

__all__ = ["DataGenerator", "lr_schedule", "make_lr_schedule"]

def lr_schedule(epoch, lr=None, *, base_lr=1e-4,
                breakpoints=((20, 1e-1), (40, 1e-2), (60, 1e-3), (90, 0.5e-3))):
    """The U-Trans learning-rate schedule, for ``keras.callbacks.LearningRateScheduler``.

    ``base_lr`` times the factor of the last breakpoint strictly exceeded by
    ``epoch`` (the reference uses ``epoch > 20`` etc.): 1e-4 up to epoch 20,
    1e-5 for 21-40, 1e-6 for 41-60, 1e-7 for 61-90, 5e-8 after 90.

    Args:
        epoch: epoch index (0-based, as Keras passes it).
        lr: current learning rate (ignored; accepted for the Keras signature).
        base_lr: initial learning rate.
        breakpoints: ``((epoch, factor), ...)``; factor applies when ``epoch > bp``.

    Returns:
        the learning rate (float).
    """
    factor = 1.0
    for bp, f in sorted(breakpoints):
        if epoch > bp:
            factor = f
    return float(base_lr * factor)


def make_lr_schedule(base_lr=1e-4, 
                     breakpoints=((20, 1e-1), (40, 1e-2), (60, 1e-3), (90, 0.5e-3))):
    """A one-argument-compatible schedule with fixed ``base_lr`` and ``breakpoints``.

    Args:
        base_lr: initial learning rate.
        breakpoints: ``((epoch, factor), ...)``.

    Returns:
        ``schedule(epoch, lr=None) -> float``.
    """

    def schedule(epoch, lr=None):
        return lr_schedule(epoch, lr, base_lr=base_lr, breakpoints=breakpoints)

    return schedule


# Cached per-trace numeric columns (the rest of a labeller's keys go to extra columns).
_CORE = ("trace_p_arrival_sample", "trace_s_arrival_sample", "trace_coda_end_sample")
_UNKNOWN, _INDIRECT = -2, -1


def _is_missing(value):
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return not math.isfinite(value)
    if isinstance(value, str):
        return value == ""
    return False


class DataGenerator(keras.utils.PyDataset):
    """Batches ``(x, y)`` for any task from STEAD, DataCollected or SeisBench files.

    Positional arguments after ``file_name`` follow the reference order
    (``dim, batch_size, n_channels, phase_window, shuffle, norm_mode, ...``)
    unless the third one is a labeller: then they are ``(labeller, steps)``.

    Args:
        list_IDs: trace IDs (list/array of str or bytes) or a split ``.npy`` path.
        file_name: dataset path (HDF5 file or SeisBench folder) or an open reader.
        dim: samples per trace (6000).
        batch_size: traces per batch (32).
        n_channels: must be 3.
        phase_window: pick label window in samples (40).
        shuffle: reshuffle the trace order every epoch.
        norm_mode: ``'std'``, ``'max'`` or ``None``.
        label_type: pick curve ``'gaussian'``, ``'triangle'`` or ``'box'``.
        augmentation: half of each batch is an augmented copy of the other half.
        add_event_r, add_gap_r, shift_event_r, add_noise_r, drop_channe_r,
            scale_amplitude_r: augmentation rates (``None`` disables).
        coda_ratio: detection window extension after S, as a fraction of S-P.
        pre_emphasis: pre-emphasise augmented earthquakes.
        max_d, min_d: depth normalisation of the location target.
        task: labeller name when ``labeller`` is not given: ``'location'``,
            ``'magnitude'``, ``'polarity'``, ``'p_pick'``, ``'s_pick'``, ``'dpk'``,
            ``'baz'``, ``'distance'``, ``'reconstruction'``.
        labeller: a :class:`utrans.labels.Labeller` (native form).
        steps: steps of the clean pipeline (native form; replaces the reference
            keywords).
        augment_steps: steps of the augmented half (default: ``steps``).
        seed: random seed of shuffling and augmentation.
        skip_bad: skip bad traces (logged) instead of raising.
        bad_log: file to which skipped traces are appended (``id<TAB>reason``).
        shard: ``(index, count)`` to keep a disjoint subset (see module doc).
        drop_remainder: drop the last incomplete batch (reference behaviour).
        cache_metadata: fill the metadata cache at construction; ``None`` (default)
            does so when ``use_multiprocessing=True`` (Keras forks new workers
            every epoch, which would otherwise lose the cache).
        input_name, output_name: when given, batches are
            ``({input_name: x}, {output_name: y})`` as in the reference.
        workers, use_multiprocessing, max_queue_size: passed to ``PyDataset``.
    """

    _REFERENCE_POSITIONAL = ("dim", "batch_size", "n_channels", "phase_window", "shuffle", "norm_mode",
                             "label_type", "augmentation", "add_event_r", "add_gap_r", "coda_ratio",
                             "shift_event_r", "add_noise_r", "drop_channe_r", "scale_amplitude_r",
                             "pre_emphasis", "max_d", "min_d")

    def __init__(self, list_IDs, file_name, *args, **kwargs):
        # Positional arguments after the file follow either the reference order
        # (dim, batch_size, n_channels, ...) or the native one (labeller, steps).
        names = ("labeller", "steps") if args and isinstance(args[0], Labeller) \
            else self._REFERENCE_POSITIONAL
        if len(args) > len(names):
            raise TypeError(f"DataGenerator takes at most {len(names) + 2} positional arguments. "
                            f"Received: {len(args) + 2}")
        for name, value in zip(names, args):
            if name in kwargs:
                raise TypeError(f"DataGenerator got multiple values for argument '{name}'")
            kwargs[name] = value
        self._setup(list_IDs, file_name, **kwargs)

    def _setup(self, list_IDs, file_name, dim=6000, batch_size=32, n_channels=3, phase_window=40,
                 shuffle=True, norm_mode="std", label_type="gaussian", augmentation=False,
                 add_event_r=None, add_gap_r=None, coda_ratio=0.4, shift_event_r=None,
                 add_noise_r=None, drop_channe_r=None, scale_amplitude_r=None, pre_emphasis=False,
                 max_d=114.5, min_d=1e-5, *, task="location", labeller=None, steps=None,
                 augment_steps=None, seed=0, skip_bad=False, bad_log=None, shard=None,
                 drop_remainder=True, cache_metadata=None, input_name=None, output_name=None,
                 workers=1, use_multiprocessing=False, max_queue_size=10, **kwargs):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        if kwargs:
            logger.debug("DataGenerator ignores reference-only arguments: %s", sorted(kwargs))
        if isinstance(dim, (tuple, list)):
            dim = int(dim[0])
        if not isinstance(dim, (int, np.integer)) or dim <= 0:
            raise ValueError(f"DataGenerator: dim must be a positive int. Received: dim={dim!r}")
        if n_channels != 3:
            raise ValueError(f"DataGenerator: only 3-component data is supported. Received: n_channels={n_channels}")
        if int(batch_size) < 1 or (augmentation and int(batch_size) < 2):
            raise ValueError(f"DataGenerator: batch_size too small. Received: batch_size={batch_size}")
        self.dim = int(dim)
        self.batch_size = int(batch_size)
        self.n_channels = 3
        self.shuffle = bool(shuffle)
        self.augmentation = bool(augmentation)
        self.seed = int(seed)
        self.skip_bad = bool(skip_bad)
        self.bad_log = Path(bad_log) if bad_log is not None else None
        self.drop_remainder = bool(drop_remainder)
        self.input_name, self.output_name = input_name, output_name
        self.norm_mode = norm_mode

        # reader -------------------------------------------------------------
        self.reader = file_name if isinstance(file_name, BaseReader) else open_dataset(file_name)
        self.file_name = str(self.reader.path)

        # IDs ----------------------------------------------------------------
        if isinstance(list_IDs, (str, os.PathLike)):
            ids = load_split(list_IDs)
        else:
            ids = [v.decode("utf-8") if isinstance(v, (bytes, np.bytes_)) else str(v)
                   for v in np.asarray(list_IDs, dtype=object).reshape(-1)]
        if shard is not None:
            index, count = int(shard[0]), int(shard[1])
            if not 0 <= index < count:
                raise ValueError(f"DataGenerator: shard must be (index, count) with 0 <= index < count. "
                                 f"Received: shard={shard}")
            ids = ids[index::count]
        if not ids:
            raise ValueError(f"DataGenerator: no trace IDs for {self.file_name}. Received: {len(ids)} IDs"
                             + (f" after shard={shard}" if shard is not None else ""))
        self.shard = shard
        self.list_IDs = ids
        n = len(ids)

        # labeller and steps -------------------------------------------------------
        self.task = task if labeller is None else None
        self.labeller = labeller if labeller is not None else get_labeller(
            task, max_d=max_d, min_d=min_d, label_type=label_type, phase_window=phase_window,
            coda_ratio=coda_ratio, dim=self.dim)
        if steps is not None:
            self.steps = list(steps)
            self.augment_steps = list(augment_steps) if augment_steps is not None else list(steps)
        else:
            self.steps, ref_aug = reference_steps(
                norm_mode=norm_mode, add_event_r=add_event_r, add_gap_r=add_gap_r,
                shift_event_r=shift_event_r, add_noise_r=add_noise_r, drop_channe_r=drop_channe_r,
                scale_amplitude_r=scale_amplitude_r, pre_emphasis=pre_emphasis)
            self.augment_steps = list(augment_steps) if augment_steps is not None else ref_aug
        for s in self.steps + self.augment_steps:
            if not isinstance(s, Step):
                raise TypeError(f"DataGenerator: steps must be utrans.augment.Step objects. Received: {s!r}")

        # per-trace cache (flat columns, ~100 bytes per trace) ---------------------
        self._offset = np.full(n, _UNKNOWN, dtype=np.int64)
        self._dtype_idx = np.zeros(n, dtype=np.int8)
        self._dtypes = []
        self._p = np.full(n, np.nan)
        self._s = np.full(n, np.nan)
        self._coda = np.full(n, np.nan)
        self._snr_min = np.full(n, np.nan, dtype=np.float32)
        self._noise = np.zeros(n, dtype=bool)
        self._bad = np.zeros(n, dtype=bool)
        self._filled = np.zeros(n, dtype=bool)
        req = tuple(self.labeller.required) + tuple(self.labeller.required_earthquake)
        self._extra_keys = tuple(k for k in dict.fromkeys(req) if k not in _CORE)
        self._extra = {}
        for k in self._extra_keys:
            self._extra[k] = np.full(n, None, dtype=object) if k == "trace_p_polarity" \
                else np.full(n, np.nan)
        self._lock = threading.Lock()
        self._local = None
        self._fds = {}
        self._fd_pid = None
        self._resolved = {}

        self.epoch = 0
        self._set_order()
        if cache_metadata or (cache_metadata is None and use_multiprocessing):
            self.cache_metadata()

    # ------------------------------------------------------------------ order
    def _set_order(self):
        n = len(self.list_IDs)
        if self.shuffle:
            self.indexes = np.random.default_rng((self.seed, self.epoch)).permutation(n)
        else:
            self.indexes = np.arange(n)

    def on_epoch_end(self):
        """Advance the epoch counter and reshuffle deterministically from ``(seed, epoch)``."""
        self.epoch += 1
        self._set_order()

    def set_epoch(self, epoch):
        """Jump to ``epoch`` (e.g. when resuming); the order becomes that of ``(seed, epoch)``."""
        self.epoch = int(epoch)
        self._set_order()

    @property
    def _per_batch(self):
        return self.batch_size // 2 if self.augmentation else self.batch_size

    def __len__(self):
        n = len(self.list_IDs)
        if self.drop_remainder:
            full = n // self.batch_size
            return 2 * full if self.augmentation else full
        return int(math.ceil(n / self._per_batch))

    @property
    def num_batches(self):
        return len(self)

    def _nominal(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"DataGenerator: batch index out of range [0, {len(self)}). Received: {index}")
        k = self._per_batch
        return self.indexes[index * k:(index + 1) * k]

    # ------------------------------------------------------------------ file access
    def _fd(self, path):
        pid = os.getpid()
        if self._fd_pid != pid:
            self._fds = {}
            self._fd_pid = pid
        fd = self._fds.get(path)
        if fd is None:
            fd = os.open(path, os.O_RDONLY)
            self._fds[path] = fd
        return fd

    def close(self):
        """Close the file descriptors and the reader of this process."""
        if self._fd_pid == os.getpid():
            for fd in self._fds.values():
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._fds = {}
        self.reader.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_fds"] = {}
        state["_fd_pid"] = None
        state["_lock"] = None
        state["_local"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __del__(self):
        try:
            if self._fd_pid == os.getpid():
                for fd in self._fds.values():
                    os.close(fd)
                self._fds = {}
        except (AttributeError, OSError, TypeError):
            pass

    # ------------------------------------------------------------------ metadata cache
    def _fill(self, i):
        """Read and cache the metadata of trace ``i``; raise BadTraceError if unusable."""
        tid = self.list_IDs[i]
        meta = self.reader.read_metadata(tid)
        noise = meta.get("trace_category") == "noise"
        missing = [k for k in self.labeller.required if _is_missing(meta.get(k))]
        if not noise:
            missing += [k for k in self.labeller.required_earthquake if _is_missing(meta.get(k))]
        if missing:
            raise BadTraceError(self.file_name, tid, "missing required metadata for "
                                f"{type(self.labeller).__name__}: "
                                + ", ".join(f"{k} (Received: {meta.get(k)!r})" for k in missing))
        loc = self.reader.locate(tid)
        if loc is not None and loc[2] == (self.dim, 3) and loc[0] == self.file_name:
            dt = np.dtype(loc[3])
            if dt not in self._dtypes:
                self._dtypes.append(dt)
            self._dtype_idx[i] = self._dtypes.index(dt)
            offset = loc[1]
        else:
            offset = _INDIRECT
        self._p[i] = meta.get("trace_p_arrival_sample", np.nan)
        self._s[i] = meta.get("trace_s_arrival_sample", np.nan)
        self._coda[i] = meta.get("trace_coda_end_sample", np.nan)
        snr = np.asarray(meta.get("trace_snr_db", np.nan), dtype=np.float64)
        self._snr_min[i] = np.min(snr) if snr.size else np.nan
        self._noise[i] = noise
        for k in self._extra_keys:
            v = meta.get(k)
            self._extra[k][i] = v if self._extra[k].dtype == object else \
                (np.nan if v is None else float(v))
        self._offset[i] = offset
        self._filled[i] = True

    def cache_metadata(self, verbose=False):
        """Read every trace's metadata once (call before multiprocessing fits).

        Args:
            verbose: show a progress bar.

        Returns:
            number of bad traces found (raises instead when ``skip_bad=False``).
        """
        todo = np.flatnonzero(~self._filled & ~self._bad)
        it = todo
        if verbose:
            from tqdm.auto import tqdm

            it = tqdm(todo, desc="metadata")
        for i in it:
            try:
                self._fill(int(i))
            except BadTraceError as err:
                self._mark_bad(int(i), err)
        return int(self._bad.sum())

    def _mark_bad(self, i, err):
        if not self.skip_bad:
            raise err
        if not self._bad[i]:
            self._bad[i] = True
            logger.warning("Skipping bad trace: %s", err)
            if self.bad_log is not None:
                with self._lock or threading.Lock():
                    with open(self.bad_log, "a", encoding="utf-8") as fh:
                        fh.write(f"{err.trace_id}\t{err.reason}\n")

    def metadata(self, trace_id):
        """Full metadata dict of a trace (read from the file, not cached)."""
        return self.reader.read_metadata(trace_id)

    # ------------------------------------------------------------------ batch assembly
    def _read_into(self, i, buf):
        """Read trace ``i`` into ``buf`` ((dim, 3) float32); raise BadTraceError if unusable."""
        tid = self.list_IDs[i]
        off = self._offset[i]
        if off >= 0:
            dt = self._dtypes[self._dtype_idx[i]]
            if dt == np.float32:
                got = os.preadv(self._fd(self.file_name), [buf], int(off))
                if got != buf.nbytes:
                    raise BadTraceError(self.file_name, tid, f"short read of {got} bytes")
            else:
                raw = np.empty((self.dim, 3), dtype=dt)
                os.preadv(self._fd(self.file_name), [raw], int(off))
                buf[...] = raw
        else:
            w = self.reader.read_waveform(tid)
            if w.shape != (self.dim, 3):
                raise BadTraceError(self.file_name, tid,
                                    f"expected waveform shape ({self.dim}, 3). Received: shape={w.shape}")
            buf[...] = w

    def _resolve(self, index):
        """Trace indices of batch ``index`` (unique part), bad traces replaced, metadata cached."""
        nominal = list(self._nominal(index))
        chosen = []
        cursor = (index + 1) * self._per_batch
        order = self.indexes
        n = len(order)
        tried = 0
        for i in nominal:
            while True:
                if not self._bad[i]:
                    if not self._filled[i]:
                        try:
                            self._fill(int(i))
                        except BadTraceError as err:
                            self._mark_bad(int(i), err)
                    if not self._bad[i] and i not in chosen:
                        chosen.append(int(i))
                        break
                # replacement: next trace of the epoch order
                i = order[cursor % n]
                cursor += 1
                tried += 1
                if tried > n:
                    raise BadTraceError(self.file_name, "*", "no usable trace left to fill the batch")
        return chosen

    def _buffer(self, name, shape):
        """A float32 scratch array reused by this thread (avoids page faults of fresh arrays)."""
        local = self._local
        if local is None:
            local = self._local = threading.local()
        buf = getattr(local, name, None)
        if buf is None or buf.shape != shape:
            buf = np.empty(shape, dtype=np.float32)
            setattr(local, name, buf)
        return buf

    def _load(self, index):
        """Read the unique traces of batch ``index`` into (k, dim, 3), replacing bad ones.

        Traces are read in file order (byte offset) straight into their slot of
        the batch; a trace failing its checks is replaced in the same slot.
        """
        chosen = self._resolve(index)
        raw = self._buffer("raw", (len(chosen), self.dim, 3))
        order = sorted(range(len(chosen)), key=lambda j: (self._offset[chosen[j]], chosen[j]))
        used = set(chosen)
        for j in order:
            i = chosen[j]
            while True:
                try:
                    self._read_into(i, raw[j])
                    self._check(i, raw[j])
                    break
                except BadTraceError as err:
                    self._mark_bad(i, err)
                    i = self._replacement(index, used)
                    used.add(i)
            chosen[j] = i
        return np.asarray(chosen, dtype=np.intp), raw

    def _replacement(self, index, used):
        order = self.indexes
        n = len(order)
        cursor = (index + 1) * self._per_batch
        for t in range(n):
            i = int(order[(cursor + t) % n])
            if self._bad[i] or i in used:
                continue
            if not self._filled[i]:
                try:
                    self._fill(i)
                except BadTraceError as err:
                    self._mark_bad(i, err)
                    continue
            return i
        raise BadTraceError(self.file_name, "*", "no usable trace left to fill the batch")

    def _check(self, i, w):
        """Validate samples of one (dim, 3) trace; raise BadTraceError when unusable."""
        flat = w.reshape(-1)
        energy = float(np.dot(flat, flat))
        if not math.isfinite(energy):
            raise BadTraceError(self.file_name, self.list_IDs[i], "non-finite samples (NaN or inf)")
        if energy == 0.0:
            raise BadTraceError(self.file_name, self.list_IDs[i], "all samples are zero")
        return True

    def batch_ids(self, index):
        """Trace IDs of batch ``index`` in batch order (augmented batches list each ID twice).

        After the batch was produced this reflects replaced bad traces.
        """
        if index in self._resolved:
            rows = self._resolved[index]
        else:
            rows = [int(i) for i in self._nominal(index)]
            if self.augmentation:
                rows = rows + rows
        return [self.list_IDs[i] for i in rows]

    def batch_metadata(self, index):
        """Metadata dicts (full, read from the file) of the traces of batch ``index``."""
        return [self.metadata(t) for t in self.batch_ids(index)]

    def __getitem__(self, index):
        if index < 0:
            index += len(self)
        x, y = self.get_batch(index)
        if self.input_name is not None or self.output_name is not None:
            return ({self.input_name or "input": x}, {self.output_name or "output_layer": y})
        return x, y

    def get_batch(self, index):
        """Batch ``index`` as ``(x, y)`` numpy arrays (``x`` float32 ``(batch, dim, 3)``)."""
        ids, raw = self._load(index)
        k = len(ids)
        rows = np.concatenate([ids, ids]) if self.augmentation else ids
        b = len(rows)
        x = self._buffer("work", (b, 3, self.dim))
        x[:k] = raw.transpose(0, 2, 1)
        if self.augmentation:
            x[k:] = x[:k]
        meta = {key: col[rows] for key, col in self._extra.items()}
        meta["trace_category"] = np.where(self._noise[rows], "noise", "earthquake")
        batch = Batch(x, p=self._p[rows], s=self._s[rows], coda=self._coda[rows],
                      snr_min=self._snr_min[rows], noise=self._noise[rows], meta=meta)
        rng = np.random.default_rng((self.seed, self.epoch, index))
        clean = np.arange(k)
        for step in self.steps:
            step(batch, rng, clean)
        if self.augmentation:
            aug = np.arange(k, b)
            for step in self.augment_steps:
                step(batch, rng, aug)
        y = self.labeller.label_batch(batch, rng)
        self._resolved[index] = [int(i) for i in rows]
        if len(self._resolved) > 4 * max(len(self), 1):
            self._resolved.clear()
        return channels_last(batch.x), y

    def __repr__(self):
        return (f"DataGenerator(file='{self.file_name}', traces={len(self.list_IDs)}, "
                f"batch_size={self.batch_size}, labeller={self.labeller!r}, "
                f"augmentation={self.augmentation}, seed={self.seed})")
