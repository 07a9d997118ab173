"""The tester: run a model over test traces and write one CSV row per trace.

:func:`test` returns the predictions as a pandas DataFrame and writes them
to ``predictions.csv`` (atomically) with ``test_config.json`` beside it; the
columns are those of the task's evaluation kind (:mod:`utrans.evaluate`).
By default it tests what the matching trainer produced
(``<output_name>_outputs/models/best.keras``) on the test split the trainer
recorded, so ``trainerN.py && testerN.py && readerN.py`` works with no
arguments.

The test windows are made by the model's pipeline (:class:`utrans.pipeline.Pipeline`),
the same as in training and annotate, and pickers are decoded by the same
decoder as ``classify`` (:meth:`utrans.pipeline.Pipeline.picks`) on the
model's curves at its own rate; the picks are then placed back on the test
traces' samples.
"""

from __future__ import annotations

import logging
import pathlib
import warnings

import keras
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from utrans.core import presets
from utrans.core.conventions import Conventions
from utrans.core.errors import EvaluationInputError, ModelInputError
from utrans.core.io import check_output_dir, output_dir, write_csv, write_json
from utrans.core.options import CONVENTION_OPTIONS, TEST_OPTIONS, defaults
from utrans.core.tasks import get_task
from utrans.data import DataGenerator, check_split
from utrans.evaluate import kinds
from utrans.evaluate.common import read_training_config
from utrans.loading import (
    build_model,
    check_model_quantity,
    load_model,
    load_weights,
    plan_conventions,
)
from utrans.models import list_models, model_conventions
from utrans.objectives import task_labeller
from utrans.pipeline import Pipeline
from utrans.records import DATA_RATE

logger = logging.getLogger(__name__)

__all__ = ["TEST_OPTIONS", "test"]

def _resolve_depth_range(opts, config):
    values = {}
    for key in ("max_d", "min_d"):
        stored = config.get(key)
        given = opts[key]
        if stored is None:
            values[key] = given if given is not None else {"max_d": 114.5, "min_d": 1e-5}[key]
        else:
            if given is not None and not np.isclose(given, stored):
                message = (f"--{key} {given} differs from the value the model was trained with "
                           f"({stored}); using {stored} so depths are de-normalised as in training.")
                warnings.warn(message, stacklevel=3)
                logger.warning(message)
            values[key] = float(stored)
    return values["max_d"], values["min_d"]


def _mc_predict(model, inputs, n, seed, convert):
    """Mean and std over ``n`` stochastic passes (dropout on, BatchNorm in inference mode).

    ``convert`` maps the model's raw outputs to the task layout (through the
    pipeline); mean and std are taken there, so multi-output models work too.
    """
    stack = [model]
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
        stack.extend(getattr(layer, "layers", []))
    keras.utils.set_random_seed(seed)
    draws = []
    for _ in range(n):
        out = keras.tree.map_structure(keras.ops.convert_to_numpy, model(inputs, training=True))
        draws.append(convert(out))
    draws = np.stack(draws)
    return draws.mean(axis=0), draws.std(axis=0)


def _predict_full_batch(model, inputs, batch_size):
    """``model.predict_on_batch`` with a short last batch zero padded to ``batch_size``.

    Every call then has the same shape, so the prediction graph is traced once.
    """
    n = len(keras.tree.flatten(inputs)[0])
    if n >= batch_size:
        return model.predict_on_batch(inputs)

    def pad(a):
        a = np.asarray(a)
        return np.concatenate([a, np.zeros((batch_size - n,) + a.shape[1:], a.dtype)])

    out = model.predict_on_batch(keras.tree.map_structure(pad, inputs))
    return keras.tree.map_structure(lambda a: np.asarray(a)[:n], out)


def _resolve_model(model, opts, task, config, out):
    """The model to test: ``(model, registry name, source description, checkpoint or None)``."""
    checkpoint = opts["checkpoint"]
    if isinstance(model, keras.Model):
        name = model.name if model.name in list_models() else (
            config.get("model") or task.default_model)
        return model, name, model.name, None
    if (isinstance(model, str) and model in presets.PRESETS and checkpoint is None
            and model not in list_models()):
        checkpoint, model = model, None
    elif isinstance(model, str) and model not in list_models():
        path = pathlib.Path(model)
        if path.suffix == ".pth" and checkpoint is None:
            checkpoint, model = model, None
        elif opts["input_model"] is None:
            opts["input_model"], model = model, None
    preset = presets.PRESETS.get(str(checkpoint)) if checkpoint else None
    name = model or (preset.model if preset else None) or config.get("model") or \
        task.default_model
    if not checkpoint:
        path = pathlib.Path(opts["input_model"] or out / "models" / "best.keras")
        if not path.exists():
            raise EvaluationInputError(f"Model file not found: {path}. Train one first "
                                       "(01_train/trainerN.py) or pass --input_model.")
        try:
            loaded = load_model(path, config=config or None)
        except ModelInputError as err:
            raise EvaluationInputError(str(err)) from None
        if model is None and not config.get("model") and loaded.name in list_models():
            name = loaded.name
        return loaded, name, str(path), None
    try:
        check_model_quantity(name, task)
    except ValueError as err:
        raise EvaluationInputError(str(err)) from err
    same = config.get("model") == name
    try:
        conv = plan_conventions(name, task, given={k: opts[k] for k in CONVENTION_OPTIONS},
                                checkpoint=checkpoint,
                                stored=config.get("conventions") if same else None)
        kwargs = dict(config.get("model_kwargs", {})) if same else {}
        kwargs.update(conv.to_config())
        kwargs.update(opts["model_kwargs"] or {})
        built, _ = build_model(name, foundation_weights="random",
                               backbone_kwargs=config.get("backbone_kwargs"), **kwargs)
        load_weights(built, checkpoint)
    except (ValueError, FileNotFoundError, KeyError, OSError) as err:
        raise EvaluationInputError(f"--checkpoint {checkpoint}: {err}") from err
    return built, name, str(checkpoint), checkpoint


def _pipeline_for(opts, model, model_name, from_checkpoint):
    """The pipeline of the model under test: its own conventions, changed only when asked.

    A model without conventions (saved by another program) gets those of the
    registered ``model_name``.
    """
    conv = getattr(model, "conventions", None)
    if not isinstance(conv, Conventions):
        conv = model_conventions(model_name)
    given = {k: opts[k] for k in CONVENTION_OPTIONS if opts[k] is not None}
    if given.get("in_samples") not in (None, conv.in_samples) and conv.in_samples is not None:
        raise EvaluationInputError(f"The model takes {conv.in_samples} samples. Received: "
                                   f"--in_samples {given['in_samples']}")
    if not from_checkpoint:  # a checkpoint's conventions already include the options
        for key, value in given.items():
            if getattr(conv, key) != value:
                logger.warning("--%s %s contradicts the model's %s convention (%s); using %s "
                               "as asked.", key, value, key, getattr(conv, key), value)
    try:
        return Pipeline(conv.replace(**given))
    except (ValueError, KeyError) as err:
        raise EvaluationInputError(str(err)) from err


def _results_dir(opts, out, checkpoint):
    if opts["output_dir"]:
        return pathlib.Path(opts["output_dir"])
    if checkpoint:
        stem = pathlib.Path(str(checkpoint)).name.split(".")[0]
        return out / f"test_{stem}"
    return out / "test"


def _context(opts, task, pipeline, labeller, dim):
    """What the row builders need: the pipeline, threshold overrides, the decoding options."""
    overrides = {}
    if opts["threshold"] is not None:
        overrides.update({k: opts["threshold"] for k in pipeline.phases})
    if opts["det_threshold"] is not None and "det" in pipeline.conventions.labels:
        overrides["det"] = opts["det_threshold"]
    return dict(task=task, labeller=labeller, pipeline=pipeline, sampling_rate=DATA_RATE,
                covered=pipeline.covered(dim, DATA_RATE), thresholds=pipeline.thresholds(overrides),
                min_peak_distance_s=opts["min_peak_distance_s"], max_picks=opts["max_picks"])


def _predict(model, pipeline, kind, inputs, opts, index):
    """One batch's predictions: ``(raw outputs or None, pred, pred_std, extras)``.

    ``pred`` is in the task layout (:func:`utrans.evaluate.kinds.task_layout`);
    for pickers it is the model's curves.
    """
    def convert(out):
        return kinds.task_layout(kind, pipeline, out)[0]

    if opts["number_of_sampling"] and opts["number_of_sampling"] > 1:
        pred, pred_std = _mc_predict(model, inputs, opts["number_of_sampling"],
                                     opts["seed"] + index, convert)
        return pred, pred_std, {}
    if opts["run_eagerly"]:
        raw = keras.tree.map_structure(keras.ops.convert_to_numpy, model(inputs, training=False))
    else:
        raw = _predict_full_batch(model, inputs, opts["batch_size"])
    pred, extras = kinds.task_layout(kind, pipeline, raw)
    return pred, None, extras


def test(task, model=None, **options):
    """Predict every test trace; write and return ``predictions.csv`` as a DataFrame.

    Args:
        task: a :class:`utrans.core.tasks.Task`, its name or its number.
        model: what to test: ``None`` (the trained model of the run
            ``output_name``, or ``input_model``), a ``keras.Model``, a preset
            name (published weights with their conventions), a registered
            model name (with ``checkpoint=``), or a model file path.
        **options: any of :data:`TEST_OPTIONS` (see ``testerN.py --help``).

    Returns:
        The predictions DataFrame (``frame.attrs["path"]`` is the CSV written).

    Raises:
        EvaluationInputError: missing test data, a model that does not fit the task.
        utrans.core.errors.BadTraceError: an unusable trace (``skip_bad=False``).
    """
    task = get_task(task)
    opts = defaults(TEST_OPTIONS, options, "test")
    opts["batch_size"] = opts["batch_size"] or 32
    out = output_dir(opts["output_name"] or task.output_name)
    config = read_training_config(out)
    hdf5 = opts["input_hdf5"] or config.get("input_hdf5")
    testset = opts["input_testset"] or config.get("input_testset")
    if not hdf5 or not testset:
        raise EvaluationInputError(
            f"No test data: pass --input_hdf5 and --input_testset, or run the trainer first "
            f"so {out / 'training_config.json'} records them.")
    if config.get("task") not in (None, task.name) and config.get("quantity") != task.quantity:
        raise EvaluationInputError(
            f"{out / 'training_config.json'} is a {config['task']} run, not {task.name}.")
    max_d, min_d = _resolve_depth_range(opts, config)
    built, model_name, source, checkpoint = _resolve_model(model, opts, task, config, out)
    results = check_output_dir(_results_dir(opts, out, checkpoint), "--output_dir")
    pipeline = _pipeline_for(opts, built, model_name, checkpoint is not None)
    labeller = task_labeller(task, max_d=max_d, min_d=min_d)
    check = check_split(testset, hdf5, labeller=labeller, skip_bad=opts["skip_bad"],
                        drop_duplicates=True, name=str(testset))
    if check.skipped or check.duplicates:
        logger.warning("Test split: %s", check.summary())
    gen = DataGenerator(check.ids, hdf5, pipeline, labeller, batch_size=opts["batch_size"],
                        shuffle=False, augmentation=False, drop_remainder=False,
                        skip_bad=opts["skip_bad"], seed=opts["seed"])
    ctx = _context(opts, task, pipeline, labeller, gen.dim)
    module = kinds.module(task.kind)
    logger.info("Testing %s (%s) on %s: %s", source, model_name, testset,
                pipeline.conventions.describe())
    frames = []
    for i in tqdm(range(len(gen)), desc=f"Testing {pathlib.Path(source).name}", unit="batch"):
        x, y = gen.get_batch(i)
        ids = gen.batch_ids(i)
        if not len(ids):  # every trace of the batch was skipped as bad
            continue
        metas = [gen.metadata(t) for t in ids]
        try:
            pred, pred_std, extras = _predict(built, pipeline, task.kind, x, opts, i)
        except (ValueError, TypeError, IndexError) as err:
            raise EvaluationInputError(
                f"{source} does not look like a {task.name} model for {model_name}: {err}") from err
        if i == 0:
            kinds.check_layout(task, pred, source)
            _save_examples(results, task, ids, x, y, pred, pipeline)
        extras = dict(extras, **kinds.input_extras(task.kind, x, y))
        frames.append(module.rows(ids, metas, y, pred, pred_std, extras, dict(ctx, frame=gen.frames)))
    gen.close()
    skipped = list(check.skipped) + list(gen.skipped)
    if skipped:
        write_csv(pd.DataFrame(skipped, columns=["trace_name", "reason"]),
                  results / "skipped_traces.csv")
        logger.warning("%d test trace(s) skipped as unusable; listed in %s", len(skipped),
                       results / "skipped_traces.csv")
    if not frames:
        raise EvaluationInputError(f"No usable test trace in {testset} (see "
                                   f"{results / 'skipped_traces.csv'}).")
    frame = pd.concat(frames, ignore_index=True)
    path = write_csv(frame, results / "predictions.csv")
    meta = dict(model=source, model_name=model_name, input_hdf5=str(hdf5),
                input_testset=str(testset), max_d=max_d, min_d=min_d,
                number_of_sampling=opts["number_of_sampling"], n_traces=len(frame),
                n_skipped=len(skipped), conventions=pipeline.conventions.to_config(),
                thresholds=ctx["thresholds"], pick_rule=pipeline.conventions.pick_rule,
                min_peak_distance_s=(opts["min_peak_distance_s"]
                                     if opts["min_peak_distance_s"] is not None
                                     else pipeline.conventions.min_peak_distance_s),
                max_picks=opts["max_picks"], n_parameters=int(built.count_params()))
    write_json(meta, results / "test_config.json")
    logger.info("Wrote %d rows to %s", len(frame), path)
    frame.attrs["path"] = str(path)
    return frame


def _save_examples(results, task, ids, x, y, pred, pipeline):
    """The first traces' model inputs and curves, for the reader's example figures."""
    if task.kind not in ("picking", "reconstruction"):
        return
    k = min(3, len(ids))
    target = dict(target=np.asarray(y[:k], np.float32)) if task.kind == "reconstruction" else {}
    np.savez_compressed(results / "examples.npz", trace_name=np.array(ids[:k]), waveform=x[:k],
                        curves=np.asarray(pred[:k], np.float32),
                        labels=np.array(pipeline.conventions.labels),
                        sampling_rate=pipeline.conventions.sampling_rate, **target)
