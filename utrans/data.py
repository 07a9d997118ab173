"""One data generator for every task and model, split checks, and the learning-rate schedule.

:class:`DataGenerator` is a ``keras.utils.PyDataset``: format reader ->
augmentation steps -> the model's pipeline -> labeller -> ``(x, y)`` batches::

    gen = DataGenerator(ids, "merged.hdf5", pipeline=model, labeller="magnitude",
                        batch_size=32, steps=clean, augment_steps=augmented,
                        augmentation=True, seed=0)

* the reader returns each trace as stored (float32, E, N, Z); a trace of
  ``dim`` samples at 100 Hz is a *record* as it is, any other (another rate;
  another length where the format allows it: SeisBench datasets) is
  resampled to 100 Hz and cut to ``dim`` samples around its arrivals, its
  picks moved with it (:mod:`utrans.records`);
* the augmentation steps (:mod:`utrans.augment`) move, mix, mask and scale the
  raw traces and the picks with them (:func:`utrans.augment.reference_steps`
  builds the U-Trans / EQTransformer recipe);
* the model's pipeline (:class:`utrans.pipeline.Pipeline`, made from the
  model, its conventions or a pipeline given as ``pipeline=``) turns the
  traces into model inputs: component order, resampling to the model's rate,
  the window (from the start, or around P), normalisation. Without a
  pipeline the inputs are the traces themselves, normalised (``std``), in
  the data's E, N, Z order and rate;
* the labeller (:mod:`utrans.labels`; a name such as ``"magnitude"`` or an
  object, for training the objective's labeller of :mod:`utrans.objectives`)
  makes the targets from the metadata and the picks after augmentation, in
  the model's window.

Batch semantics follow the reference generators: without augmentation a
batch holds ``batch_size`` traces and there are ``floor(n / batch_size)``
batches (set ``drop_remainder=False`` to keep a last, smaller batch); with
``augmentation=True`` a batch holds ``batch_size // 2`` traces twice, the first
half through the clean steps and the second half through the augmented
ones, and there are ``2 * floor(n / batch_size)`` batches.

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

Bad traces: a trace is bad when its ID is missing, its waveform has the wrong
shape, non-finite or all-zero samples, or the metadata its labeller needs is
missing or out of range (:data:`utrans.formats.METADATA_RANGES`; pick samples
must lie in ``[0, dim)`` with S after P). With ``skip_bad=False`` a bad trace
raises one :class:`utrans.core.errors.BadTraceError` whose one-line message
names the file and the trace. With ``skip_bad=True`` it is logged, listed in
:attr:`DataGenerator.skipped` as ``(trace_id, reason)``, counted in
:attr:`DataGenerator.skipped_this_epoch`, appended to ``bad_log``, and then
either replaced by the next good trace of the epoch order (``fill_bad="replace"``,
training: batches stay full) or dropped (``fill_bad="drop"``, testing: each
usable trace appears exactly once and a batch may be shorter).

:func:`check_split` checks a whole split from its IDs and metadata alone
(no waveform is read) before any training starts.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
from pathlib import Path

import keras
import numpy as np

from tqdm.auto import tqdm

from utrans.augment import Batch, Step
from utrans.core.conventions import Conventions
from utrans.core.errors import BadTraceError, SplitCheckError
from utrans.formats import (
    CHANNEL_ORDER,
    BaseReader,
    is_missing,
    load_split,
    metadata_problems,
    open_dataset,
)
from utrans.labels import Labeller, get_labeller
from utrans.pipeline import Pipeline
from utrans.records import DATA_RATE, record_metadata

logger = logging.getLogger(__name__)

__all__ = [
    "DataGenerator",
    "SplitCheck",
    "bad_trace_error",
    "check_split",
    "lr_schedule",
    "make_lr_schedule",
    "trace_problems",
]

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



# --------------------------------------------------------------------------
# trace and split checks
# --------------------------------------------------------------------------

# Metadata validated whenever present, whatever the task: the picks (cached by
# the generator and moved by augmentation) and the sampling rate.
_ALWAYS_CHECKED = ("trace_p_arrival_sample", "trace_s_arrival_sample", "trace_coda_end_sample",
                   "trace_sampling_rate_hz")


def trace_problems(meta, labeller=None, samples=None):
    """What makes a trace's metadata unusable for a labeller (empty list when usable).

    Checks the keys of ``labeller.required`` (and ``required_earthquake`` for
    earthquake traces) for presence and range, and the picks and sampling rate
    whenever present (:func:`utrans.formats.metadata_problems`).

    Args:
        meta: metadata dict as returned by a reader.
        labeller: a :class:`utrans.labels.Labeller` (``None``: only the checks
            made for every task).
        samples: trace length; pick samples must lie in ``[0, samples)``.

    Returns:
        list of one-line problem descriptions.
    """
    required = []
    if labeller is not None:
        required = list(labeller.required)
        if meta.get("trace_category") != "noise":
            required += list(labeller.required_earthquake)
    optional = _ALWAYS_CHECKED if meta.get("trace_category") != "noise" else ("trace_sampling_rate_hz",)
    problems = metadata_problems(meta, required, optional, samples=samples)
    if problems and problems[0].startswith("missing ") and labeller is not None:
        problems[0] = (f"missing required metadata for {type(labeller).__name__}: "
                       + problems[0][len("missing "):])
    return problems


class SplitCheck:
    """The result of :func:`check_split`.

    Attributes:
        name: the split (its file path, or the name given).
        dataset: path of the dataset.
        ids: usable trace IDs, in split order.
        skipped: ``[(trace_id, reason), ...]`` of the unusable entries
            (missing IDs included).
        missing: IDs absent from the dataset.
        duplicates: number of repeated entries in the split.
        total: number of entries in the split.
    """

    def __init__(self, name, dataset, ids, skipped, missing, duplicates, total):
        self.name, self.dataset = str(name), str(dataset)
        self.ids, self.skipped, self.missing = ids, skipped, missing
        self.duplicates, self.total = int(duplicates), int(total)

    def summary(self, max_listed=5):
        """One line: counts and the first problems (``max_listed`` of each kind)."""
        parts = [f"split {self.name}: {len(self.ids)} of {self.total} entries usable in {self.dataset}"]
        if self.missing:
            parts.append(f"{len(self.missing)} trace IDs not in the dataset (first: "
                         + ", ".join(self.missing[:max_listed]) + ")")
        missing = set(self.missing)
        bad = [(t, r) for t, r in self.skipped if t not in missing]
        if bad:
            parts.append(f"{len(bad)} traces with unusable metadata (first: "
                         + "; ".join(f"{t}: {r}" for t, r in bad[:max_listed]) + ")")
        if self.duplicates:
            parts.append(f"{self.duplicates} repeated entries")
        return "; ".join(parts)

    def __repr__(self):
        return f"SplitCheck({self.summary()})"


def check_split(split, dataset, labeller=None, *, samples=6000, skip_bad=False,
                drop_duplicates=False, name=None, max_listed=5):
    """Check a split before training or testing, from trace IDs and metadata alone.

    No waveform is read: IDs are looked up in the dataset's index (STEAD CSV,
    SeisBench ``metadata.csv``, DataCollected group names) and each trace's
    metadata is checked with :func:`trace_problems` rules (the labeller's
    required keys in range, picks in ``[0, samples)`` with S after P).

    Args:
        split: split ``.npy`` path or a list of trace IDs.
        dataset: dataset path or an open reader.
        labeller: the task's :class:`utrans.labels.Labeller`, or a labeller name
            (``'location'``, ...).
        samples: trace length (the model's input length, e.g. 6000).
        skip_bad: return the usable IDs instead of raising when some are not.
        drop_duplicates: keep only the first of repeated IDs (testing: one
            prediction row per trace); otherwise repeats are kept and counted.
        name: name of the split in messages (default: the file path).
        max_listed: how many problems of each kind the summary lists.

    Returns:
        a :class:`SplitCheck` (``ids`` usable IDs, ``skipped`` ``(id, reason)``
        list, ``missing``, ``duplicates``, ``total``).

    Raises:
        SplitCheckError: a problem was found and ``skip_bad=False``, or no usable
            trace is left (the message names the split and the dataset).
        SplitFileError: the split file is unreadable (see :func:`load_split`).
        FileNotFoundError: the split or the dataset does not exist.
    """
    if isinstance(labeller, str):
        labeller = get_labeller(labeller, dim=samples)
    if isinstance(split, (str, os.PathLike)):
        ids = load_split(split)
        name = name or str(split)
    else:
        ids = [_decode(v) for v in np.asarray(split, dtype=object).reshape(-1)]
        name = name or "of trace IDs"
    opened = not isinstance(dataset, BaseReader)
    reader = open_dataset(dataset) if opened else dataset
    try:
        usable, skipped, missing, duplicates = _check_ids(ids, reader, labeller, samples,
                                                          drop_duplicates)
    finally:
        if opened:
            reader.close()
    check = SplitCheck(name, reader.path, usable, skipped, missing, duplicates, len(ids))
    text = check.summary(max_listed)
    if duplicates:
        logger.warning("split %s: %d repeated trace IDs%s", name, duplicates,
                       " (only the first of each is kept)" if drop_duplicates else "")
    if skipped and not skip_bad:
        raise SplitCheckError(text + ". Fix the split or skip these traces (skip_bad=True, "
                                     "--skip_bad).", check)
    if not usable:
        raise SplitCheckError(text + ". No usable trace is left.", check)
    if skipped:
        logger.warning("%s; skipping them", text)
        for tid, reason in skipped:
            logger.debug("skipped %s: %s", tid, reason)
    else:
        logger.info(text)
    return check


def _check_ids(ids, reader, labeller, samples, drop_duplicates):
    """``(usable, skipped, missing, duplicates)`` of :func:`check_split`."""
    results = {}
    usable, skipped, missing = [], [], []
    duplicates = 0
    for tid in ids:
        if tid in results:
            duplicates += 1
            if drop_duplicates or results[tid] is not None:
                continue
            usable.append(tid)
            continue
        reason = None
        if not reader.has_trace(tid):
            reason = "trace ID not found in the dataset"
            missing.append(tid)
        else:
            try:
                meta, _ = record_metadata(reader, tid, samples)
                problems = trace_problems(meta, labeller, samples)
            except BadTraceError as err:
                problems = [err.reason]
            if problems:
                reason = "; ".join(problems)
        results[tid] = reason
        if reason is None:
            usable.append(tid)
        else:
            skipped.append((tid, reason))
    return usable, skipped, missing, duplicates


def _number(value):
    """A metadata value as float, NaN when missing or not a number."""
    if is_missing(value):
        return np.nan
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return np.nan


def _decode(value):
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


_WRAPPED = re.compile(r"BadTraceError: (?P<file>[^\n]+?): trace '(?P<trace>[^\n]*?)': (?P<reason>[^\n]*)")


def bad_trace_error(exc, generators=()):
    """The :class:`BadTraceError` behind an exception raised by ``model.fit``, or ``None``.

    A bad trace in the first batch reaches the caller of ``fit`` as itself;
    later ones are raised inside TensorFlow's input pipeline, which re-raises
    them as ``tf.errors.InvalidArgumentError`` with a traceback in the message.
    This finds the original error: in the exception chain, on the generators
    (their ``failure``; wrappers with a ``generator`` attribute are unwrapped),
    or, for errors raised in worker processes, in the message text.

    Args:
        exc: the exception caught around ``model.fit`` / ``model.evaluate``.
        generators: the :class:`DataGenerator` objects (or wrappers) used.

    Returns:
        the :class:`BadTraceError`, or ``None`` when ``exc`` is not about a bad trace.
    """
    seen = set()
    e = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, BadTraceError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    for gen in generators:
        while not hasattr(gen, "failure") and hasattr(gen, "generator"):
            gen = gen.generator
        if getattr(gen, "failure", None) is not None:
            return gen.failure
    m = _WRAPPED.search(str(exc))
    if m:
        return BadTraceError(m["file"], m["trace"], m["reason"])
    return None


# --------------------------------------------------------------------------
# the generator
# --------------------------------------------------------------------------

# Cached per-trace numeric columns (the rest of a labeller's keys go to extra columns).
_CORE = ("trace_p_arrival_sample", "trace_s_arrival_sample", "trace_coda_end_sample")
_UNKNOWN, _INDIRECT = -2, -1


def data_pipeline(samples, sampling_rate=100.0):
    """The pipeline of the data as stored: E, N, Z at its rate, whole traces, ``std`` normalisation."""
    return Pipeline(Conventions(sampling_rate=sampling_rate, component_order=CHANNEL_ORDER,
                                in_samples=samples, normalization="std", head="utrans"))


class DataGenerator(keras.utils.PyDataset):
    """Batches ``(x, y)`` for any task and model from STEAD, DataCollected or SeisBench files.

    Args:
        list_IDs: trace IDs (list/array of str or bytes) or a split ``.npy`` path.
        file_name: dataset path (HDF5 file or SeisBench folder) or an open reader.
        pipeline: the model's :class:`~utrans.pipeline.Pipeline`, or a model or
            :class:`~utrans.core.conventions.Conventions` to make it from;
            ``None``: the data as stored, normalised (module doc).
        labeller: a :class:`utrans.labels.Labeller` or a labeller name
            (``"location"``, ``"magnitude"``, ``"polarity"``, ``"p_pick"``,
            ``"s_pick"``, ``"dpk"``, ``"baz"``, ``"distance"``, ``"reconstruction"``).
        dim: samples per record (6000, at 100 Hz; see :mod:`utrans.records`).
        batch_size: traces per batch (32).
        steps: augmentation steps of the clean half (or of every trace
            without ``augmentation``).
        augment_steps: steps of the augmented half (default: ``steps``).
        augmentation: half of each batch is an augmented copy of the other half.
        shuffle: reshuffle the trace order every epoch.
        seed: random seed of shuffling and augmentation.
        skip_bad: skip bad traces (logged, listed in :attr:`skipped`) instead of raising.
        fill_bad: what takes a skipped trace's place: ``'replace'`` (the next good
            trace of the epoch order; batches stay full: training), ``'drop'``
            (nothing; each usable trace appears exactly once and batches may be
            shorter, even empty: testing) or ``'auto'`` (``'drop'`` when
            ``shuffle=False`` and ``drop_remainder=False``, else ``'replace'``).
        bad_log: file to which skipped traces are appended (``id<TAB>reason``).
        shard: ``(index, count)`` to keep a disjoint subset (see module doc).
        drop_remainder: drop the last incomplete batch (reference behaviour).
        cache_metadata: fill the metadata cache at construction; ``None`` (default)
            does so when ``use_multiprocessing=True`` (Keras forks new workers
            every epoch, which would otherwise lose the cache) or when bad traces
            are dropped (``fill_bad='drop'`` with ``skip_bad=True``, so the batch
            count excludes traces whose metadata is unusable).
        input_name: when given (with ``output_name``), batches are
            ``({input_name: x}, {output_name: y})`` as in the reference.
        output_name: see ``input_name``.
        workers: passed to ``PyDataset``.
        use_multiprocessing: passed to ``PyDataset``.
        max_queue_size: passed to ``PyDataset``.

    Attributes:
        skipped: ``[(trace_id, reason), ...]`` of every trace skipped so far (a
            bad trace is found once and then left out of later epochs).
        skipped_this_epoch: traces found bad since the last :meth:`on_epoch_begin`;
            Keras calls the dataset's ``on_epoch_begin``/``on_epoch_end`` around
            each epoch, so a callback's ``on_epoch_end`` reads the epoch's count.
            With ``use_multiprocessing=True`` only traces found in this process
            count (metadata checks run here; waveform errors found in worker
            processes are logged there and appended to ``bad_log``).
        skipped_last_epoch: ``skipped_this_epoch`` at the last :meth:`on_epoch_end`.
        failure: the :class:`BadTraceError` raised (``skip_bad=False``), else ``None``;
            see :func:`bad_trace_error`.
        frames: the :class:`~utrans.pipeline.Frame` of the last batch made.

    Raises:
        TypeError: a bad argument (the message echoes it).
    """

    def __init__(self, list_IDs, file_name, pipeline=None, labeller="location", *, dim=6000,
                 batch_size=32, steps=None, augment_steps=None, augmentation=False, shuffle=True,
                 seed=0, skip_bad=False, fill_bad="auto", bad_log=None, shard=None,
                 drop_remainder=True, cache_metadata=None, input_name=None, output_name=None,
                 workers=1, use_multiprocessing=False, max_queue_size=10):
        if isinstance(labeller, str):
            labeller = get_labeller(labeller, dim=int(dim) if dim else 6000)
        if not isinstance(labeller, Labeller):
            raise TypeError(f"DataGenerator: labeller must be a utrans.labels.Labeller or a "
                            f"labeller name. Received: labeller={labeller!r}")
        if fill_bad not in ("auto", "replace", "drop"):
            raise ValueError(f"DataGenerator: fill_bad must be 'auto', 'replace' or 'drop'. "
                             f"Received: fill_bad={fill_bad!r}")
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        if isinstance(dim, (tuple, list)):
            dim = int(dim[0])
        if not isinstance(dim, (int, np.integer)) or dim <= 0:
            raise ValueError(f"DataGenerator: dim must be a positive int. Received: dim={dim!r}")
        if int(batch_size) < 1 or (augmentation and int(batch_size) < 2):
            raise ValueError(f"DataGenerator: batch_size too small. Received: batch_size={batch_size}")
        self.dim = int(dim)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.augmentation = bool(augmentation)
        self.seed = int(seed)
        self.skip_bad = bool(skip_bad)
        self.bad_log = Path(bad_log) if bad_log is not None else None
        self.drop_remainder = bool(drop_remainder)
        if fill_bad == "auto":
            fill_bad = "drop" if not self.shuffle and not self.drop_remainder else "replace"
        self.fill_bad = fill_bad
        self.input_name, self.output_name = input_name, output_name

        # reader -------------------------------------------------------------
        self.reader = file_name if isinstance(file_name, BaseReader) else open_dataset(file_name)
        self.file_name = str(self.reader.path)

        # IDs ----------------------------------------------------------------
        if isinstance(list_IDs, (str, os.PathLike)):
            ids = load_split(list_IDs)
        else:
            ids = [_decode(v) for v in np.asarray(list_IDs, dtype=object).reshape(-1)]
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

        # pipeline, labeller and steps --------------------------------------
        self.pipeline = data_pipeline(self.dim) if pipeline is None else Pipeline.of(pipeline)
        self.labeller = labeller
        self.steps = list(steps or [])
        self.augment_steps = list(augment_steps) if augment_steps is not None else list(self.steps)
        for s in self.steps + self.augment_steps:
            if not isinstance(s, Step):
                raise TypeError(f"DataGenerator: steps must be utrans.augment.Step objects. Received: {s!r}")
        self.frames = None

        # per-trace cache (flat columns, ~100 bytes per trace) ---------------------
        self._offset = np.full(n, _UNKNOWN, dtype=np.int64)
        self._dtype_idx = np.zeros(n, dtype=np.int8)
        self._dtypes = []
        self._p = np.full(n, np.nan)
        self._s = np.full(n, np.nan)
        self._coda = np.full(n, np.nan)
        self._rate = np.full(n, np.nan)
        self._placement = np.full(n, None, dtype=object)
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
        self.skipped = []
        self.skipped_last_epoch = 0
        self._epoch_base = None
        self.failure = None

        self.epoch = 0
        dropping = self.skip_bad and self.fill_bad == "drop"
        if cache_metadata or (cache_metadata is None and (use_multiprocessing or dropping)):
            self.cache_metadata()
        # Traces whose metadata is known to be unusable leave the epoch order
        # when they are dropped; the order is fixed from here on.
        self._pool = np.flatnonzero(~self._bad) if dropping else np.arange(n)
        self._set_order()

    # ------------------------------------------------------------------ order
    def _set_order(self):
        if self.shuffle:
            self.indexes = self._pool[np.random.default_rng((self.seed, self.epoch)).permutation(len(self._pool))]
        else:
            self.indexes = self._pool.copy()

    def on_epoch_begin(self):
        """Start counting :attr:`skipped_this_epoch` afresh (Keras calls this before each epoch).

        Traces found bad before the first epoch (Keras reads a batch to learn the
        input shapes) count for the first epoch.
        """
        self._epoch_base = 0 if self._epoch_base is None else len(self.skipped)

    @property
    def skipped_this_epoch(self):
        """Traces found bad since the last :meth:`on_epoch_begin` (readable in callbacks' ``on_epoch_end``)."""
        return len(self.skipped) - (self._epoch_base or 0)

    def on_epoch_end(self):
        """Advance the epoch counter and reshuffle from ``(seed, epoch)``."""
        self.skipped_last_epoch = self.skipped_this_epoch
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
        n = len(self._pool)
        if self.drop_remainder:
            full = n // self.batch_size
            return 2 * full if self.augmentation else full
        return int(math.ceil(n / self._per_batch))

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
        """Read, check and cache the metadata of trace ``i``; raise BadTraceError if unusable."""
        tid = self.list_IDs[i]
        loc = self.reader.locate(tid)
        meta, placement = record_metadata(self.reader, tid, self.dim, located=loc)
        problems = trace_problems(meta, self.labeller, self.dim)
        if problems:
            raise BadTraceError(self.file_name, tid, "; ".join(problems))
        noise = meta.get("trace_category") == "noise"
        self._placement[i] = placement
        if (placement is None and loc is not None and loc[2] == (self.dim, 3)
                and loc[0] == self.file_name):
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
        self._rate[i] = meta.get("trace_sampling_rate_hz", DATA_RATE)
        snr = np.asarray(meta.get("trace_snr_db", np.nan), dtype=np.float64)
        # clipped: a float32 column, and absurd SNRs (1e300 dB) must not warn on the cast
        self._snr_min[i] = np.clip(np.min(snr), -1e30, 1e30) if snr.size else np.nan
        self._noise[i] = noise
        for k in self._extra_keys:
            self._extra[k][i] = meta.get(k) if self._extra[k].dtype == object else _number(meta.get(k))
        self._offset[i] = offset
        self._filled[i] = True

    def cache_metadata(self, verbose=False):
        """Read and check every trace's metadata once (call before multiprocessing fits).

        Args:
            verbose: show a progress bar.

        Returns:
            number of bad traces found (raises instead when ``skip_bad=False``).
        """
        todo = np.flatnonzero(~self._filled & ~self._bad)
        it = tqdm(todo, desc="metadata") if verbose else todo
        for i in it:
            try:
                self._fill(int(i))
            except BadTraceError as err:
                self._mark_bad(int(i), err)
        return int(self._bad.sum())

    def _mark_bad(self, i, err):
        """Raise ``err`` (``skip_bad=False``) or record trace ``i`` as skipped."""
        if not self.skip_bad:
            self.failure = err
            raise err
        with self._lock:
            if self._bad[i]:
                return
            self._bad[i] = True
            self.skipped.append((self.list_IDs[i], err.reason))
            if self.bad_log is not None:
                with open(self.bad_log, "a", encoding="utf-8") as fh:
                    fh.write(f"{self.list_IDs[i]}\t{err.reason}\n")
        logger.warning("Skipping bad trace: %s", err)

    def metadata(self, trace_id):
        """Full metadata dict of a trace's record (read from the file, not cached).

        Positions are record samples and ``trace_sampling_rate_hz`` the
        record's rate (:mod:`utrans.records`); for a trace stored at 100 Hz
        with its arrivals in its first ``dim`` samples, the trace's own.
        """
        return record_metadata(self.reader, trace_id, self.dim)[0]

    # ------------------------------------------------------------------ batch assembly
    def _read_into(self, i, buf):
        """Read trace ``i`` into ``buf`` ((dim, 3) float32); raise BadTraceError if unusable."""
        tid = self.list_IDs[i]
        off = self._offset[i]
        if off >= 0:
            dt = self._dtypes[self._dtype_idx[i]]
            try:
                if dt == np.float32:
                    got = os.preadv(self._fd(self.file_name), [buf], int(off))
                    want = buf.nbytes
                else:
                    raw = np.empty((self.dim, 3), dtype=dt)
                    got = os.preadv(self._fd(self.file_name), [raw], int(off))
                    want = raw.nbytes
                    buf[...] = raw
            except OSError as exc:
                raise BadTraceError(self.file_name, tid, f"cannot read the samples ({exc})") from None
            if got != want:
                raise BadTraceError(self.file_name, tid,
                                    f"short read: {got} of {want} bytes (truncated file?)")
        else:
            w = self.reader.read_waveform(tid)
            placement = self._placement[i]
            if self.reader.variable_length or w.shape == (self.dim, 3):
                if placement is not None:
                    w = placement.waveform(w)
                elif w.shape[0] != self.dim:  # the record: the trace cut or zero padded at its end
                    record = np.zeros((self.dim,) + w.shape[1:], dtype=np.float32)
                    record[:min(len(w), self.dim)] = w[:self.dim]
                    w = record
            if w.shape != (self.dim, 3):
                raise BadTraceError(self.file_name, tid,
                                    f"expected waveform shape ({self.dim}, 3). Received: shape={w.shape}")
            buf[...] = w

    def _usable(self, i):
        """True when trace ``i`` is not known bad (its metadata read and checked)."""
        if self._bad[i]:
            return False
        if not self._filled[i]:
            try:
                self._fill(int(i))
            except BadTraceError as err:
                self._mark_bad(int(i), err)
                return False
        return True

    def _resolve(self, index):
        """Trace indices of batch ``index`` (unique part) with usable metadata.

        Bad traces are replaced by the next usable trace of the epoch order
        (``fill_bad='replace'``) or left out (``'drop'``).
        """
        nominal = [int(i) for i in self._nominal(index)]
        if self.fill_bad == "drop":
            return [i for i in nominal if self._usable(i)]
        chosen = []
        used = set()
        for i in nominal:
            if i in used or not self._usable(i):
                i = self._replacement(index, used | set(nominal))
            chosen.append(i)
            used.add(i)
        return chosen

    def _replacement(self, index, used):
        """The next usable trace of the epoch order after batch ``index`` not in ``used``."""
        order = self.indexes
        n = len(order)
        cursor = (index + 1) * self._per_batch
        for t in range(n):
            i = int(order[(cursor + t) % n])
            if i not in used and self._usable(i):
                return i
        raise self._exhausted()

    def _exhausted(self, max_listed=3):
        """The error when a batch cannot be filled: every trace checked, the bad ones counted.

        The traces not yet read are read now, so that the numbers are exact and
        every unusable trace is in :attr:`skipped` (and ``bad_log``).
        """
        scratch = np.empty((self.dim, 3), dtype=np.float32)
        for i in self._pool:
            i = int(i)
            if not self._usable(i):
                continue
            try:
                self._read_into(i, scratch)
                self._check(i, scratch)
            except BadTraceError as err:
                self._mark_bad(i, err)
        total = len(self._pool)
        bad = int(self._bad[self._pool].sum())
        first = "; ".join(f"{tid}: {reason}" for tid, reason in self.skipped[:max_listed])
        more = f" and {len(self.skipped) - max_listed} more" if len(self.skipped) > max_listed else ""
        err = BadTraceError(self.file_name, "*", f"{bad} of the {total} traces are unusable "
                            f"({first}{more}): {total - bad} usable, fewer than the "
                            f"{self._per_batch} of a batch")
        self.failure = err
        return err

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
        """Read the unique traces of batch ``index`` into (k, dim, 3).

        Traces are read in file order (byte offset) straight into their slot of
        the batch; a trace failing its checks is replaced in the same slot
        (``fill_bad='replace'``) or its slot removed (``'drop'``).
        """
        chosen = self._resolve(index)
        raw = self._buffer("raw", (len(chosen), self.dim, 3))
        order = sorted(range(len(chosen)), key=lambda j: (self._offset[chosen[j]], chosen[j]))
        used = set(int(i) for i in self._nominal(index)) | set(chosen)
        keep = np.ones(len(chosen), dtype=bool)
        for j in order:
            i = chosen[j]
            while True:
                try:
                    self._read_into(i, raw[j])
                    self._check(i, raw[j])
                    break
                except BadTraceError as err:
                    self._mark_bad(i, err)
                    if self.fill_bad == "drop":
                        keep[j] = False
                        break
                    i = self._replacement(index, used)
                    used.add(i)
            chosen[j] = i
        chosen = np.asarray(chosen, dtype=np.intp)
        if not keep.all():
            chosen, raw = chosen[keep], raw[keep]
        return chosen, raw

    def _check(self, i, w):
        """Validate samples of one (dim, 3) trace; raise BadTraceError when unusable."""
        flat = w.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
            energy = float(np.dot(flat, flat))
        if not math.isfinite(energy):
            bad = "non-finite samples (NaN or inf)" if not np.isfinite(flat).all() else \
                "samples too large (their energy overflows float32)"
            raise BadTraceError(self.file_name, self.list_IDs[i], bad)
        if energy == 0.0:
            raise BadTraceError(self.file_name, self.list_IDs[i], "all samples are zero")
        return True

    def batch_ids(self, index):
        """Trace IDs of the rows of batch ``index``, in batch order.

        After the batch was produced this lists the rows actually returned
        (replacements included, dropped traces left out); augmented batches
        list each ID twice.
        """
        if index in self._resolved:
            rows = self._resolved[index]
        else:
            rows = [int(i) for i in self._nominal(index)]
            if self.fill_bad == "drop":
                rows = [i for i in rows if not self._bad[i]]
            if self.augmentation:
                rows = rows + rows
        return [self.list_IDs[i] for i in rows]

    def __getitem__(self, index):
        if index < 0:
            index += len(self)
        x, y = self.get_batch(index)
        if self.input_name is not None or self.output_name is not None:
            return ({self.input_name or "input": x}, {self.output_name or "output_layer": y})
        return x, y

    def get_batch(self, index):
        """Batch ``index`` as ``(x, y)`` numpy arrays (``x`` float32 model inputs).

        With ``fill_bad='drop'`` the batch may hold fewer rows than
        ``batch_size`` (none when all its traces are bad); :meth:`batch_ids`
        names the rows returned, and :attr:`frames` says where each row's
        window lies in its trace.
        """
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
        inputs, frame = self._inputs(batch, self._rate[rows])
        y = self.labeller.label_batch(batch, rng, frame=frame, inputs=inputs)
        self.frames = frame
        self._resolved[index] = [int(i) for i in rows]
        if len(self._resolved) > 4 * max(len(self), 1):
            self._resolved.clear()
        return inputs, y

    def _inputs(self, batch, rates):
        """Model inputs of a batch through the pipeline (one rate per batch)."""
        rate = rates[0] if len(rates) else DATA_RATE
        rate = DATA_RATE if not np.isfinite(rate) else float(rate)
        if len(rates) and not np.all(rates == rates[0]):
            raise BadTraceError(self.file_name, "*", "traces of one batch have different "
                                f"sampling rates ({sorted(set(rates.tolist()))} Hz)")
        return self.pipeline.record_inputs(np.moveaxis(batch.x, 1, 2), rate, CHANNEL_ORDER,
                                           picks=batch.p)

    def __repr__(self):
        return (f"DataGenerator(file='{self.file_name}', traces={len(self.list_IDs)}, "
                f"batch_size={self.batch_size}, pipeline={self.pipeline!r}, "
                f"labeller={self.labeller!r}, augmentation={self.augmentation}, seed={self.seed})")
