"""Data feeding, worker roles and epoch bookkeeping under ``tf.distribute``.

How batches reach the replicas (the choice made by :func:`utrans.train.fit`):

* **default strategy / MirroredStrategy (one machine)**: the
  :class:`utrans.data.DataGenerator` (a ``keras.utils.PyDataset``) is given to
  ``model.fit`` as it is, with ``batch_size`` = the *global* batch (per-replica
  batch x replicas). Keras 3 turns it into a ``tf.data`` dataset and calls
  ``strategy.experimental_distribute_dataset``, which splits every global
  batch into one slice per replica. All replicas together see each trace of
  the epoch exactly once, and a run on N replicas sees the same batches as a
  single-device run with the same global batch (the loss differs only through
  per-replica BatchNormalization statistics and summation order).
* **MultiWorkerMirroredStrategy**: Keras's automatic sharding of a
  generator-backed dataset falls back to ``AutoShardPolicy.DATA``: every
  worker would run the generator over the *whole* epoch (reading every trace
  from disk) and throw away the slices of the other workers. Instead
  :func:`distributed_dataset` builds the input with
  ``strategy.distribute_datasets_from_function``: worker ``i`` of ``n`` gets
  its own ``DataGenerator(..., shard=(i, n))`` (trace IDs ``i, i + n, ...``,
  disjoint across workers) with the per-replica batch size, and TF's
  auto-sharding is switched off (``AutoShardPolicy.OFF``) since the data is
  already sharded. The ID list is first cut to a multiple of ``n`` so every
  worker has the same number of batches (workers step in lock-step; an
  uneven shard would stall the collective ops at the end of an epoch).
  Keras does not know the length of such an input and ends each epoch when
  it runs out (logging "Your input ran out of data"; expected here).
* With more than one replica, validation drops its last, incomplete global
  batch: a short batch would leave some replicas an empty slice, which CPU
  convolutions reject.

Every batch depends only on ``(seed, epoch, batch index)`` of the generator,
and ``model.fit`` runs with ``shuffle=False`` (the generator shuffles its
traces itself; Keras's shuffling of the batch order would use the global
random state). :class:`EpochSync` sets the generators' epoch and the model's
seed generators at the start of each epoch, so a run resumed by
``keras.callbacks.BackupAndRestore`` at epoch ``e`` shuffles, augments and
drops out exactly as the uninterrupted run did in epoch ``e``.

Only the chief (worker 0) writes the final outputs; the other workers write
into a temporary folder (:func:`worker_role`), as is usual for
MultiWorkerMirroredStrategy.
"""

import json
import logging

import keras
import numpy as np
import tensorflow as tf

logger = logging.getLogger(__name__)

__all__ = ["EpochSync", "WorkerRole", "distributed_dataset", "is_multi_worker",
           "multi_worker_strategy", "set_epoch", "strategy_name", "worker_role"]


def multi_worker_strategy():
    """A MultiWorkerMirroredStrategy (configured from ``TF_CONFIG``) that ``model.fit`` accepts.

    Keras 3.15 meets two limits of ``MultiWorkerMirroredStrategy.reduce``: it
    reduces a whole ``(x, y)`` batch structure at once (``_maybe_symbolic_build``),
    which the strategy supports for a single value only (MirroredStrategy maps
    over the structure), and it averages the scalar losses and metrics of the
    step with ``axis=0``, which a scalar does not have. This subclass reduces
    each element of a structure in turn and a scalar with ``axis=None`` (the
    mean over replicas), through the public ``reduce``.

    Returns:
        The strategy; must be made before the TF runtime starts (no TF op or
        device listing before it).
    """

    class StructuredReduceMultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """MultiWorkerMirroredStrategy whose ``reduce`` maps over nested values."""

        def reduce(self, reduce_op, value, axis):
            if tf.nest.is_nested(value):
                parent = super()
                return tf.nest.map_structure(
                    lambda v: parent.reduce(reduce_op, v, axis), value)
            if axis is not None:
                local = (self.experimental_local_results(value)[0]
                         if isinstance(value, tf.distribute.DistributedValues) else value)
                if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                    axis = None
            return super().reduce(reduce_op, value, axis)

    return StructuredReduceMultiWorkerStrategy()


def strategy_name(strategy):
    """The public class name of ``strategy`` (for the log and ``training_config.json``)."""

    # (tf.distribute.MultiWorkerMirroredStrategy's own class name is CollectiveAllReduceStrategy.)
    for cls, name in ((tf.distribute.MultiWorkerMirroredStrategy, "MultiWorkerMirroredStrategy"),
                      (tf.distribute.MirroredStrategy, "MirroredStrategy")):
        if isinstance(strategy, cls):
            return name
    return "default" if type(strategy).__name__.startswith("_Default") else type(strategy).__name__


def is_multi_worker(strategy):
    """True for a ``MultiWorkerMirroredStrategy`` (a cluster of worker processes)."""

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


class WorkerRole:
    """This process's place in the cluster.

    Attributes:
        task_type: ``"worker"``/``"chief"`` (``None`` on a single machine).
        task_id: index of the task within its type (0 on a single machine).
        index: position among all input pipelines (0 .. ``count - 1``).
        count: number of worker processes (1 on a single machine).
        is_chief: whether this process writes the final outputs.
    """

    def __init__(self, task_type=None, task_id=0, index=0, count=1, is_chief=True):
        self.task_type, self.task_id = task_type, int(task_id)
        self.index, self.count, self.is_chief = int(index), int(count), bool(is_chief)

    def __repr__(self):
        return (f"WorkerRole(task_type={self.task_type!r}, task_id={self.task_id}, "
                f"index={self.index}, count={self.count}, is_chief={self.is_chief})")


def worker_role(strategy):
    """The :class:`WorkerRole` of this process under ``strategy``.

    Args:
        strategy: a ``tf.distribute`` strategy.

    Returns:
        A :class:`WorkerRole`; the chief is the ``chief`` task if the cluster
        has one, else worker 0.
    """
    if not is_multi_worker(strategy):
        return WorkerRole()
    resolver = strategy.cluster_resolver
    cluster = resolver.cluster_spec().as_dict()
    chiefs = len(cluster.get("chief", []))
    count = chiefs + len(cluster.get("worker", []))
    task_type, task_id = resolver.task_type, resolver.task_id
    index = task_id if task_type == "chief" else chiefs + task_id
    is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and not chiefs)
    return WorkerRole(task_type, task_id, index, count, is_chief)


def set_epoch(dataset, epoch):
    """Set the epoch of a DataGenerator, or of the generator inside a wrapper (AdaptedDataset)."""
    target = dataset
    while not hasattr(target, "set_epoch") and hasattr(target, "generator"):
        target = target.generator
    if not hasattr(target, "set_epoch"):
        raise TypeError(f"set_epoch: {type(dataset).__name__} has no DataGenerator inside. "
                        f"Received: {dataset!r}")
    target.set_epoch(epoch)


class EpochSync(keras.callbacks.Callback):
    """Make epoch ``e`` of a run the same whether or not the run was interrupted.

    Keras advances a ``PyDataset``'s epoch through ``on_epoch_end`` only, and
    ``BackupAndRestore`` restores weights and optimizer state but not the
    models' random-number state (``keras.random.SeedGenerator``, used by
    dropout and drop-path). A run resumed at epoch ``e`` would replay the
    shuffling, augmentation and dropout masks of epoch 0. When each epoch
    begins this callback sets the generators' epoch and puts every seed
    generator of the model at ``[its seed, e * 2**32]``, so the random
    streams of epoch ``e`` depend only on the seed and ``e``.

    Args:
        datasets: list of training DataGenerators (or wrappers holding one in
            ``.generator``); the list may grow after construction (generators
            made per worker by :func:`distributed_dataset`).
        fixed: list of validation generators, kept at epoch 0 (the same
            validation batches every epoch).
    """

    def __init__(self, datasets, fixed=()):
        super().__init__()
        self.datasets = datasets
        self.fixed = fixed

    def _seed_states(self):
        weights = {id(v) for v in self.model.weights}
        return [v for v in self.model.variables if id(v) not in weights]

    def on_epoch_begin(self, epoch, logs=None):

        for dataset in self.datasets:
            set_epoch(dataset, epoch)
        for dataset in self.fixed:
            set_epoch(dataset, 0)
        for state in self._seed_states():
            value = np.asarray(keras.ops.convert_to_numpy(state.value))
            if value.shape == (2,):
                shift = 32 if value.dtype.itemsize >= 8 else 16
                state.assign(np.asarray([value[0], int(epoch) << shift], dtype=value.dtype))


def _to_tf_dataset(dataset):
    """A ``tf.data.Dataset`` yielding the batches of the PyDataset ``dataset`` in index order."""

    first = dataset[0]

    def spec(a):
        a = np.asarray(a)
        return tf.TensorSpec((None,) + a.shape[1:], tf.as_dtype(a.dtype))

    signature = tf.nest.map_structure(spec, first)

    def batches():
        for i in range(len(dataset)):
            yield dataset[i]

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return (tf.data.Dataset.from_generator(batches, output_signature=signature)
            .prefetch(1).with_options(options))


def distributed_dataset(strategy, make_dataset, trace_ids, global_batch_size, made=None,
                        name="training"):
    """Per-worker sharded input for ``model.fit`` under MultiWorkerMirroredStrategy.

    Args:
        strategy: the strategy (``distribute_datasets_from_function`` is called on it).
        make_dataset: ``make_dataset(trace_ids, shard, batch_size)`` returning a
            PyDataset (a DataGenerator or a wrapper of one) over ``trace_ids``
            restricted to ``shard=(index, count)`` with ``batch_size`` traces
            per batch.
        trace_ids: the full ID list (same on every worker); cut to a multiple
            of the number of input pipelines so every shard has the same size.
        global_batch_size: per-replica batch x replicas in sync.
        made: optional list to which the per-worker PyDatasets are appended
            (for :class:`EpochSync` and inspection).
        name: what the data is for, in the log (``"training"``, ``"validation"``);
            the shard's trace IDs are logged at DEBUG level as
            ``"<Name> shard trace IDs: <JSON list>"``.

    Returns:
        A ``tf.distribute.DistributedDataset``.
    """
    made = [] if made is None else made

    def dataset_fn(context):
        count, index = context.num_input_pipelines, context.input_pipeline_id
        ids = list(trace_ids)[: len(trace_ids) - len(trace_ids) % count]
        per_replica = context.get_per_replica_batch_size(global_batch_size)
        dataset = make_dataset(ids, (index, count), per_replica)
        made.append(dataset)
        logger.debug("%s shard trace IDs: %s", name.capitalize(), json.dumps(ids[index::count]))
        logger.info("%s input pipeline %d of %d: %d traces (shard=(%d, %d)), %d batches of %d",
                    name.capitalize(), index + 1, count, len(ids) // count, index, count,
                    len(dataset), per_replica)
        return _to_tf_dataset(dataset)

    return strategy.distribute_datasets_from_function(dataset_fn)
