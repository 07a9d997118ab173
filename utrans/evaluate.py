"""The engines behind ``02_test/testerN.py`` and ``03_read/readerN.py``.

A tester runs a trained model over the test trace IDs and writes one CSV row
per trace (``<output_name>_outputs/test/predictions.csv``, written atomically);
a reader turns that CSV into metrics (``metrics.json`` and ``metrics.md``) and
figures in the same folder. Both default to what the matching trainer's demo
run produced, so ``trainerN.py && testerN.py && readerN.py`` works with no
arguments.
"""

import argparse
import json
import logging
import os
import pathlib
import tempfile
import warnings

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

__all__ = [
    "load_trained_model",
    "read_training_config",
    "reader_main",
    "run_reader",
    "run_tester",
    "tester_main",
    "write_csv_atomic",
]


class EvaluationInputError(ValueError):
    """A tester/reader input (model, split, option) does not fit; the message says how."""


def write_csv_atomic(frame, path):
    """Write ``frame`` to ``path`` through a temporary file and a rename."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".csv.tmp")
    os.close(fd)
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        pathlib.Path(tmp).unlink(missing_ok=True)
    return path


def read_training_config(output_folder):
    """The ``training_config.json`` a trainer wrote into ``output_folder`` (or ``{}``)."""
    path = pathlib.Path(output_folder) / "training_config.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def load_trained_model(path, config=None):
    """Load a trained model from ``.keras`` or ``.weights.h5`` (the latter needs ``config``).

    Args:
        path: model file.
        config: the training config (model name and constructor kwargs) used to
            rebuild the architecture for a ``.weights.h5`` file.

    Returns:
        The Keras model.
    """
    import keras

    import utrans.models  # noqa: F401  (registers the custom classes)

    path = pathlib.Path(path)
    if not path.exists():
        raise EvaluationInputError(f"Model file not found: {path}. Train one first "
                                   "(01_train/trainerN.py) or pass --input_model.")
    if path.name.endswith(".keras"):
        try:
            return keras.saving.load_model(path, compile=False)
        except (ValueError, TypeError, OSError) as err:
            raise EvaluationInputError(f"Could not load {path} as a Keras model: {err}") from err
    if path.name.endswith(".weights.h5"):
        if not config or "model" not in config:
            raise EvaluationInputError(
                f"{path} holds weights only; its training_config.json (model name) is needed "
                "to rebuild the architecture.")
        from utrans.train import build_task_model

        model, _ = build_task_model(config["model"], foundation_weights="random",
                                    backbone_kwargs=config.get("backbone_kwargs"),
                                    **config.get("model_kwargs", {}))
        model.load_weights(path)
        return model
    raise EvaluationInputError(f"Unsupported model file {path}: expected .keras or .weights.h5.")


def _check_model_fits(model, labeller, model_path, task):
    expected = tuple(labeller.output_shape)
    outputs = model.outputs if hasattr(model, "outputs") and model.outputs else None
    got = tuple(outputs[0].shape[1:]) if outputs else None
    if got is not None and got != expected:
        raise EvaluationInputError(
            f"{model_path} does not look like a {task} model: it outputs shape (None, "
            f"{', '.join(map(str, got))}), the {task} task needs (None, "
            f"{', '.join(map(str, expected))}).")


def add_tester_arguments(parser, task):
    """Arguments shared by every tester."""
    parser.add_argument("--output_name", default=task.output_name,
                        help="The trainer's --output_name (default: %(default)s); the model, "
                             "data files and settings are read from <output_name>_outputs/.")
    parser.add_argument("--input_model", default=None,
                        help="Model file (.keras or .weights.h5). Default: "
                             "<output_name>_outputs/models/best.keras.")
    parser.add_argument("--input_hdf5", default=None,
                        help="HDF5 file with the test traces (default: the training file).")
    parser.add_argument("--input_testset", default=None,
                        help=".npy file of test trace IDs (default: the one recorded at training).")
    parser.add_argument("--output_dir", default=None,
                        help="Where to write predictions.csv (default: <output_name>_outputs/test).")
    parser.add_argument("--batch_size", type=int, default=32, help="(default: %(default)s)")
    parser.add_argument("--normalization_mode", default=None, choices=("std", "max"),
                        help="Per-trace normalisation (default: as in training).")
    parser.add_argument("--max_d", type=float, default=None,
                        help="Depth normalisation maximum in km. Default: the value stored at "
                             "training; a different value is ignored with a warning.")
    parser.add_argument("--min_d", type=float, default=None,
                        help="Depth normalisation minimum in km (default: as in training).")
    parser.add_argument("--number_of_sampling", type=int, default=0,
                        help="Monte-Carlo dropout passes per trace (adds mean and std "
                             "columns; default: 0 = one deterministic pass).")
    parser.add_argument("--skip_bad", action="store_true",
                        help="Skip unreadable traces (logged to bad_traces.log) instead of "
                             "stopping.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of Monte-Carlo dropout.")
    parser.add_argument("--run_eagerly", action="store_true",
                        help="Call the model eagerly instead of tracing a prediction graph "
                             "(faster for a handful of batches).")
    model = parser.add_argument_group("model (defaults: as recorded at training)")
    model.add_argument("--model", default=None,
                       help="Registered model name (default: the trained one, else "
                            f"{task.default_model}).")
    model.add_argument("--checkpoint", default=None,
                       help="Evaluate these weights instead of the trained model: a .pth "
                            "state_dict, a .keras or .weights.h5 file, or a preset name such as "
                            "seist_m_dpk_diting. Needs --input_hdf5/--input_testset when no "
                            "trainer output exists.")
    model.add_argument("--model_kwargs", type=json.loads, default=None, metavar="JSON",
                       help="Constructor overrides when building the model for --checkpoint.")
    model.add_argument("--in_samples", type=int, default=None,
                       help="Window length of SeisT/baseline models (default: as trained, 8192).")
    model.add_argument("--sampling_rate", type=float, default=None,
                       help="Sampling rate the model expects in Hz (default: the model's "
                            "convention, e.g. 50 for the DiTing checkpoints).")
    model.add_argument("--component_order", "--channel_order", dest="component_order",
                       default=None,
                       help="Component order the model expects (default: the model's "
                            "convention, ZNE for SeisT/baselines).")
    model.add_argument("--p_position_ratio", type=float, default=None,
                       help="Scalar tasks: P pick position in the window as a fraction "
                            "(default: as trained).")
    picks = parser.add_argument_group("picking and detection (tasks 4-6)")
    picks.add_argument("--threshold", type=float, default=None,
                       help="Peak threshold of the pick curves (default: 0.1, the U-Trans rule, "
                            "for tasks 4/5; 0.3, the SeisT rule, for task 6).")
    picks.add_argument("--det_threshold", type=float, default=0.5,
                       help="Detection threshold (task 6, default: %(default)s).")
    picks.add_argument("--min_peak_distance_s", type=float, default=1.0,
                       help="Minimum distance between picks in seconds (task 6, default: "
                            "%(default)s).")
    return parser


def _resolve_depth_range(args, config):
    values = {}
    for key in ("max_d", "min_d"):
        stored = config.get(key)
        given = getattr(args, key)
        if stored is None:
            values[key] = given if given is not None else {"max_d": 114.5, "min_d": 1e-5}[key]
        else:
            if given is not None and not np.isclose(given, stored):
                message = (f"--{key} {given} differs from the value the model was trained with "
                           f"({stored}); using {stored} so depths are de-normalised as in training.")
                warnings.warn(message, stacklevel=2)
                logger.warning(message)
            values[key] = float(stored)
    return values["max_d"], values["min_d"]


def _mc_predict(model, inputs, n, seed, convert):
    """Mean and std over ``n`` stochastic passes (dropout on, BatchNorm in inference mode).

    ``convert`` maps the model's raw outputs to the task layout (the adapter);
    mean and std are taken there, so multi-output models work too.
    """
    import keras

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
    import keras

    n = len(keras.tree.flatten(inputs)[0])
    if n >= batch_size:
        return model.predict_on_batch(inputs)

    def pad(a):
        a = np.asarray(a)
        return np.concatenate([a, np.zeros((batch_size - n,) + a.shape[1:], a.dtype)])

    out = model.predict_on_batch(keras.tree.map_structure(pad, inputs))
    return keras.tree.map_structure(lambda a: np.asarray(a)[:n], out)


def _location_rows(ids, metas, y, pred, pred_std, extras, ctx):
    labeller = ctx["labeller"]
    st_lat = np.array([m["station_latitude_deg"] for m in metas], dtype=np.float64)
    st_lon = np.array([m["station_longitude_deg"] for m in metas], dtype=np.float64)
    ev_lat = np.array([m["source_latitude_deg"] for m in metas], dtype=np.float64)
    ev_lon = np.array([m["source_longitude_deg"] for m in metas], dtype=np.float64)
    depth = np.maximum(np.array([m["source_depth_km"] for m in metas], dtype=np.float64), 0.0)
    p_lat, p_lon, p_depth = labeller.inverse(pred, st_lat, st_lon)
    from utrans.metrics import epicentral_distance_km

    frame = pd.DataFrame({
        "trace_name": ids,
        "station_lat": st_lat, "station_lon": st_lon,
        "true_lat": ev_lat, "true_lon": ev_lon, "true_depth_km": depth,
        "pred_lat": p_lat, "pred_lon": p_lon, "pred_depth_km": p_depth,
        "lat_error_deg": p_lat - ev_lat, "lon_error_deg": p_lon - ev_lon,
        "depth_error_km": p_depth - depth,
        "epicentral_error_km": epicentral_distance_km(ev_lat, ev_lon, p_lat, p_lon),
    })
    if pred_std is not None:
        frame["pred_lat_std"] = pred_std[:, 0]
        frame["pred_lon_std"] = pred_std[:, 1]
        frame["pred_depth_km_std"] = pred_std[:, 2] * (labeller.max_d - labeller.min_d)
    return frame


def column_slug(task):
    """Column stem of a task's predicted quantity (``magnitude``, ``epicentral_distance_km``)."""
    slug = task.quantity.lower().replace("-", "_").replace(" ", "_")
    return f"{slug}_{task.unit}" if task.unit else slug


def _extra_columns(frame, extras, pred_std, slug):
    for key, values in extras.items():
        name = f"pred_{slug}_std" if key == "pred_std" else key
        frame[name] = np.asarray(values, dtype=np.float64).reshape(len(frame))
    if pred_std is not None:
        name = f"pred_{slug}_std" if f"pred_{slug}_std" not in frame else f"pred_{slug}_mc_std"
        frame[name] = np.asarray(pred_std, dtype=np.float64)[:, 0]
    return frame


def _regression_rows(ids, metas, y, pred, pred_std, extras, ctx):
    slug = column_slug(ctx["task"])
    true = np.asarray(y, dtype=np.float64)[:, 0]
    p = np.asarray(pred, dtype=np.float64)[:, 0]
    frame = pd.DataFrame({"trace_name": ids, f"true_{slug}": true, f"pred_{slug}": p,
                          f"error_{slug}": p - true})
    return _extra_columns(frame, extras, pred_std, slug)


def _backazimuth_rows(ids, metas, y, pred, pred_std, extras, ctx):
    from utrans.labels import BackAzimuthLabeller
    from utrans.metrics import angle_error_deg

    true = BackAzimuthLabeller.inverse(y)
    p = BackAzimuthLabeller.inverse(pred)
    frame = pd.DataFrame({"trace_name": ids, "true_baz_deg": true, "pred_baz_deg": p,
                          "error_baz_deg": np.asarray(angle_error_deg(p, true)).reshape(-1),
                          "pred_cos": np.asarray(pred)[:, 0], "pred_sin": np.asarray(pred)[:, 1]})
    return _extra_columns(frame, extras, None, "baz_deg")


def _classification_rows(ids, metas, y, pred, pred_std, extras, ctx):
    prob = np.asarray(pred, dtype=np.float64)[:, 0]
    true = np.where(np.asarray(y)[:, 0] >= 0.5, "U", "D")
    frame = pd.DataFrame({"trace_name": ids, "true_polarity": true,
                          "pred_polarity": np.where(prob >= 0.5, "U", "D"), "prob_up": prob})
    if pred_std is not None:
        frame["prob_up_std"] = np.asarray(pred_std, dtype=np.float64)[:, 0]
    return frame


def _true_pick(metas, phase, covered):
    key = "trace_p_arrival_sample" if phase == "P" else "trace_s_arrival_sample"
    out = np.full(len(metas), np.nan)
    for i, m in enumerate(metas):
        v = m.get(key)
        if m.get("trace_category") != "noise" and v is not None and np.isfinite(float(v)):
            out[i] = float(v) if 0 <= float(v) < covered else np.nan
    return out


def _picking_rows(ids, metas, y, pred, pred_std, extras, ctx):
    from utrans.decode import highest_peak

    phase = ctx["task"].quantity
    fs = ctx["sampling_rate"]
    curves = np.asarray(pred, dtype=np.float64)[..., 0]
    true = _true_pick(metas, phase, ctx["covered"])
    picks = np.full(len(ids), np.nan)
    probs = np.full(len(ids), np.nan)
    for i, row in enumerate(curves):
        h = highest_peak(row, ctx["threshold"])
        if h is not None:
            picks[i], probs[i] = h, row[h]
    ph = phase.lower()
    return pd.DataFrame({"trace_name": ids, f"true_{ph}_sample": true, f"pred_{ph}_sample": picks,
                         f"pred_{ph}_prob": probs, f"{ph}_residual_s": (picks - true) / fs,
                         "sampling_rate": fs})


def _join(samples):
    return ";".join(str(int(v)) for v in samples)


def _dpk_rows(ids, metas, y, pred, pred_std, extras, ctx):
    from utrans.decode import detect_events, find_peaks

    fs = ctx["sampling_rate"]
    curves = np.asarray(pred, dtype=np.float64)
    labels = np.asarray(y, dtype=np.float64)
    min_dist = int(round(ctx["min_peak_distance_s"] * fs))
    frame = pd.DataFrame({"trace_name": ids})
    for c, phase in ((1, "P"), (2, "S")):
        ph = phase.lower()
        frame[f"true_{ph}_sample"] = _true_pick(metas, phase, ctx["covered"])
        frame[f"pred_{ph}_samples"] = [_join(find_peaks(row, ctx["threshold"], min_dist))
                                       for row in curves[..., c]]
    spans = {"true": [], "pred": []}
    for i in range(len(ids)):
        for key, row in (("true", labels[i, :, 0]), ("pred", curves[i, :, 0])):
            win = detect_events(row, ctx["det_threshold"], max_events=1) \
                if not np.isnan(row).all() else np.zeros((0, 2))
            spans[key].append(win[0] if len(win) else (np.nan, np.nan))
    for key in ("true", "pred"):
        arr = np.asarray(spans[key], dtype=np.float64).reshape(-1, 2)
        frame[f"{key}_det_start"], frame[f"{key}_det_end"] = arr[:, 0], arr[:, 1]
    frame["n_samples"] = curves.shape[1]
    frame["sampling_rate"] = fs
    return frame


def _channel_correlation(a, b):
    """Pearson correlation of ``a`` and ``b`` (B, T, C) along time: (B, C), NaN for a flat channel."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1.0), np.nan)


def _reconstruction_rows(ids, metas, y, pred, pred_std, extras, ctx):
    clean = np.asarray(y, dtype=np.float64)
    recon = np.asarray(pred, dtype=np.float64)
    corr = _channel_correlation(recon, clean)
    frame = pd.DataFrame({"trace_name": ids, "mae": np.abs(recon - clean).mean(axis=(1, 2))})
    for c, name in enumerate("ENZ"):
        frame[f"corr_{name}"] = corr[:, c]
    for key, values in extras.items():
        frame[key] = np.asarray(values, dtype=np.float64).reshape(len(frame))
    if pred_std is not None:
        frame["recon_std_mean"] = np.asarray(pred_std, dtype=np.float64).mean(axis=(1, 2))
    return frame


ROW_BUILDERS = {
    "location": _location_rows,
    "regression": _regression_rows,
    "backazimuth": _backazimuth_rows,
    "classification": _classification_rows,
    "picking": _picking_rows,
    "dpk": _dpk_rows,
    "reconstruction": _reconstruction_rows,
}

#: Task layout of the predictions of each kind (``None`` = the data's length).
LAYOUTS = {"location": (3,), "regression": (1,), "backazimuth": (2,), "classification": (1,),
           "picking": (None, 1), "dpk": (None, 3), "reconstruction": (None, 3)}


def _check_layout(pred, task, model_name):
    expected = LAYOUTS[task.kind]
    got = tuple(np.shape(pred)[1:])
    if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected, got)):
        raise EvaluationInputError(
            f"{model_name} does not look like a {task.name} model: its predictions have shape "
            f"(None, {', '.join(map(str, got))}), the {task.name} task needs (None, "
            f"{', '.join('T' if e is None else str(e) for e in expected)}).")


def _resolve_model(args, task, config, out):
    """Load the model to test; returns ``(model, model_name, source)``."""
    from utrans import presets
    from utrans.train import CONVENTION_OPTIONS, build_task_model, load_checkpoint, plan_conventions

    preset = presets.PRESETS.get(str(args.checkpoint)) if args.checkpoint else None
    model_name = (args.model or (preset.model if preset else None) or config.get("model")
                  or task.default_model)
    if not args.checkpoint:
        model_path = pathlib.Path(args.input_model or out / "models" / "best.keras")
        return load_trained_model(model_path, config), model_name, model_path
    same = config.get("model") == model_name
    given = {k: getattr(args, k, None) for k in CONVENTION_OPTIONS}
    try:
        conv = plan_conventions(model_name, task, given=given, checkpoint=args.checkpoint,
                                stored=config.get("adapter") if same else None)
        kwargs = dict(config.get("model_kwargs", {})) if same else {}
        kwargs.update(conv.to_config())
        kwargs.update(args.model_kwargs or {})
        model, _ = build_task_model(model_name, foundation_weights="random",
                                    backbone_kwargs=config.get("backbone_kwargs"), **kwargs)
        load_checkpoint(model, args.checkpoint)
    except (ValueError, FileNotFoundError, KeyError, OSError) as err:
        raise EvaluationInputError(f"--checkpoint {args.checkpoint}: {err}") from err
    return model, model_name, args.checkpoint


def _adapter_for(args, task, model, model_name):
    """The adapter of the model under test: its own conventions, changed only when asked.

    A model without conventions (saved by another program) gets those of the
    registered ``model_name``.
    """
    from utrans.adapters import get_adapter
    from utrans.conventions import Conventions
    from utrans.models import registry
    from utrans.train import CONVENTION_OPTIONS

    conv = getattr(model, "conventions", None)
    if not isinstance(conv, Conventions):
        conv = registry.model_conventions(model_name)
    given = {k: getattr(args, k, None) for k in CONVENTION_OPTIONS
             if getattr(args, k, None) is not None}
    if given.get("in_samples") not in (None, conv.in_samples) and conv.in_samples is not None:
        raise EvaluationInputError(f"The model takes {conv.in_samples} samples. Received: "
                                   f"--in_samples {given['in_samples']}")
    for key, value in given.items():
        if getattr(conv, key) != value:
            logger.warning("--%s %s contradicts the model's %s convention (%s); using %s as "
                           "asked.", key, value, key, getattr(conv, key), value)
    try:
        return get_adapter(task, conv, **given)
    except ValueError as err:
        raise EvaluationInputError(str(err)) from err


def run_tester(args, task):
    """Predict every test trace and write ``predictions.csv``; returns its path."""
    from tqdm.auto import tqdm

    from utrans.data import DataGenerator
    from utrans.labels import get_labeller
    from utrans.train import output_dir

    out = output_dir(args.output_name)
    config = read_training_config(out)
    hdf5 = args.input_hdf5 or config.get("input_hdf5")
    testset = args.input_testset or config.get("input_testset")
    if not hdf5 or not testset:
        raise EvaluationInputError(
            f"No test data: pass --input_hdf5 and --input_testset, or run the trainer first "
            f"so {out / 'training_config.json'} records them.")
    if config.get("task") not in (None, task.name):
        raise EvaluationInputError(
            f"{out / 'training_config.json'} is a {config['task']} run, not {task.name}.")
    max_d, min_d = _resolve_depth_range(args, config)
    results = pathlib.Path(args.output_dir) if args.output_dir else out / "test"
    results.mkdir(parents=True, exist_ok=True)

    model, model_name, source = _resolve_model(args, task, config, out)
    if args.model is None and not args.checkpoint and not config.get("model"):
        from utrans.models import registry

        if model.name in registry.list_models():
            model_name = model.name
    adapter = _adapter_for(args, task, model, model_name)
    base = get_labeller(task.labeller_name, max_d=max_d, min_d=min_d)
    gen = DataGenerator(testset, hdf5, batch_size=args.batch_size, shuffle=False,
                        augmentation=False, labeller=adapter.labeller(base),
                        norm_mode=args.normalization_mode or config.get("normalization_mode", "std"),
                        drop_remainder=False, skip_bad=args.skip_bad,
                        bad_log=str(results / "bad_traces.log"), seed=args.seed)
    if task.kind == "location":
        _check_model_fits(model, base, source, task.name)
    threshold = args.threshold if args.threshold is not None else (
        0.3 if task.kind == "dpk" else 0.1)
    ctx = dict(task=task, labeller=base, adapter=adapter, sampling_rate=100.0,
               covered=adapter.covered_samples(gen.dim), threshold=threshold,
               det_threshold=args.det_threshold, min_peak_distance_s=args.min_peak_distance_s)
    n_task = base.output_shape[0] if len(base.output_shape) == 1 else None
    frames = []
    for i in tqdm(range(len(gen)), desc=f"Testing {pathlib.Path(str(source)).name}",
                  unit="batch"):
        x, y = gen.get_batch(i)
        ids = gen.batch_ids(i)
        metas = [gen.metadata(t) for t in ids]
        try:
            inputs = adapter.inputs(x, y)
            if args.number_of_sampling and args.number_of_sampling > 1:
                extras = {}

                def convert(out):
                    return adapter.predictions(out, x, y)[0]

                pred, pred_std = _mc_predict(model, inputs, args.number_of_sampling,
                                             args.seed + i, convert)
            else:
                if args.run_eagerly:
                    import keras

                    raw = keras.tree.map_structure(keras.ops.convert_to_numpy,
                                                   model(inputs, training=False))
                else:
                    raw = _predict_full_batch(model, inputs, args.batch_size)
                pred, extras = adapter.predictions(raw, x, y)
                pred_std = None
        except (ValueError, TypeError, IndexError) as err:
            raise EvaluationInputError(
                f"{source} does not look like a {task.name} model for {model_name}: {err}") from err
        if i == 0:
            _check_layout(pred, task, source)
            if task.kind in ("picking", "dpk", "reconstruction"):
                k = min(3, len(ids))
                target = (dict(target=np.asarray(y[:k], np.float32))
                          if task.kind == "reconstruction" else {})
                np.savez_compressed(results / "examples.npz", trace_name=np.array(ids[:k]),
                                    waveform=x[:k], curves=np.asarray(pred[:k], np.float32),
                                    **target)
        y_task = y[:, :n_task] if n_task is not None else y
        frames.append(ROW_BUILDERS[task.kind](ids, metas, y_task, pred, pred_std, extras, ctx))
    frame = pd.concat(frames, ignore_index=True)
    path = write_csv_atomic(frame, results / "predictions.csv")
    meta = dict(model=str(source), model_name=model_name, input_hdf5=str(hdf5),
                input_testset=str(testset), max_d=max_d, min_d=min_d,
                number_of_sampling=args.number_of_sampling, n_traces=len(frame),
                adapter=adapter.settings(), threshold=threshold,
                det_threshold=args.det_threshold, min_peak_distance_s=args.min_peak_distance_s)
    (results / "test_config.json").write_text(json.dumps(meta, indent=2))
    logger.info("Wrote %d rows to %s", len(frame), path)
    return path


def _training_mean_baseline(config, frame):
    """Epicentral errors of predicting the mean training offset and depth for every trace."""
    from utrans.formats import load_split, open_dataset
    from utrans.metrics import epicentral_distance_km

    train = config.get("input_trainset")
    hdf5 = config.get("input_hdf5")
    if not train or not hdf5:
        return None
    with open_dataset(hdf5) as reader:
        metas = [reader.read_metadata(t) for t in load_split(train)]
    dlat = np.nanmean([m["station_latitude_deg"] - m["source_latitude_deg"] for m in metas])
    dlon = np.nanmean([m["station_longitude_deg"] - m["source_longitude_deg"] for m in metas])
    depth = np.nanmean([max(m["source_depth_km"], 0.0) for m in metas])
    b_lat = frame["station_lat"].to_numpy() - dlat
    b_lon = frame["station_lon"].to_numpy() - dlon
    epi = epicentral_distance_km(frame["true_lat"], frame["true_lon"], b_lat, b_lon)
    return dict(epicentral_mae_km=float(np.nanmean(epi)),
                depth_mae_km=float(np.nanmean(np.abs(depth - frame["true_depth_km"]))))


def _markdown_table(metrics, keys):
    lines = ["| metric | value |", "|---|---:|"]
    for key in keys:
        value = metrics[key]
        lines.append(f"| {key} | {value:.4f} |" if isinstance(value, float) else f"| {key} | {value} |")
    return "\n".join(lines) + "\n"


def read_location(frame, results, config, task=None):
    """Location metrics and figures from a tester CSV; returns the metrics dict."""
    from utrans import plots
    from utrans.metrics import location_metrics

    m = location_metrics(frame["true_lat"], frame["true_lon"], frame["pred_lat"],
                         frame["pred_lon"], frame["true_depth_km"], frame["pred_depth_km"])
    baseline = _training_mean_baseline(config, frame) or {}
    metrics = dict(
        n_traces=int(m["n_traces"]),
        lat_mae_deg=m["lat_mae_deg"], lat_sigma_deg=m["lat_std_deg"],
        lon_mae_deg=m["lon_mae_deg"], lon_sigma_deg=m["lon_std_deg"],
        epicentral_mae_km=m["epicentral_mae_km"], epicentral_median_km=m["epicentral_median_km"],
        epicentral_rmse_km=m["epicentral_rmse_km"],
        depth_mae_km=m["depth_mae_km"], depth_rmse_km=m["depth_rmse_km"],
        baseline_epicentral_mae_km=baseline.get("epicentral_mae_km", float("nan")),
        baseline_depth_mae_km=baseline.get("depth_mae_km", float("nan")),
    )
    plots.plot_residual_histogram(frame["epicentral_error_km"], results / "epicentral_error_hist.png",
                                  label="epicentral error", unit="km")
    plots.plot_residual_histogram(frame["depth_error_km"], results / "depth_error_hist.png",
                                  label="depth error", unit="km")
    for col, unit in (("lat", "deg"), ("lon", "deg"), ("depth_km", "km")):
        plots.plot_pred_vs_true(frame[f"true_{col}"], frame[f"pred_{col}"],
                                results / f"pred_vs_true_{col.split('_')[0]}.png",
                                label=col.split("_")[0], unit=unit)
    plots.plot_location_map(frame[["station_lat", "station_lon"]].to_numpy(),
                            frame[["true_lat", "true_lon"]].to_numpy(),
                            frame[["pred_lat", "pred_lon"]].to_numpy(), results / "location_map.png")
    return metrics


def _training_target_mean(config, task):
    """Mean training target of a scalar task (the predict-the-mean baseline), or None."""
    from utrans.formats import BadTraceError, load_split, open_dataset
    from utrans.labels import get_labeller

    train, hdf5 = config.get("input_trainset"), config.get("input_hdf5")
    if not train or not hdf5 or not pathlib.Path(hdf5).exists():
        return None
    labeller = get_labeller(task.labeller_name)
    values = []
    with open_dataset(hdf5) as reader:
        for t in load_split(train):
            try:
                meta = reader.read_metadata(t)
                values.append(float(labeller(meta)[0]))
            except (BadTraceError, KeyError, TypeError, ValueError):
                continue
    return float(np.nanmean(values)) if values else None


def read_regression(frame, results, config, task):
    """Regression metrics (MAE, std, RMSE, R2), predicted-vs-true plot and residual histogram."""
    from utrans import plots
    from utrans.metrics import regression_metrics

    slug = column_slug(task)
    true, pred = frame[f"true_{slug}"].to_numpy(float), frame[f"pred_{slug}"].to_numpy(float)
    m = regression_metrics(true, pred)
    metrics = dict(n_traces=int(len(frame)), quantity=task.quantity, unit=task.unit,
                   mean_error=m["mean"], std=m["std"], mae=m["mae"], rmse=m["rmse"], r2=m["r2"])
    mean = _training_target_mean(config, task)
    metrics["baseline_mae"] = (float(np.nanmean(np.abs(true - mean))) if mean is not None
                               else float("nan"))
    label = task.quantity
    plots.plot_pred_vs_true(true, pred, results / "pred_vs_true.png", label=label, unit=task.unit)
    plots.plot_residual_histogram(pred - true, results / "residual_hist.png",
                                  label=f"{label} error", unit=task.unit)
    if "pred_p_travel_s" in frame and "true_p_travel_s" in frame:
        t = regression_metrics(frame["true_p_travel_s"], frame["pred_p_travel_s"])
        metrics.update(p_travel_mae_s=t["mae"], p_travel_rmse_s=t["rmse"], p_travel_r2=t["r2"])
        plots.plot_pred_vs_true(frame["true_p_travel_s"], frame["pred_p_travel_s"],
                                results / "pred_vs_true_p_travel.png", label="P travel time",
                                unit="s")
    return metrics


def read_backazimuth(frame, results, config, task):
    """Back-azimuth metrics with errors wrapped to +-180 degrees, and figures."""
    from utrans import plots
    from utrans.metrics import backazimuth_metrics

    m = backazimuth_metrics(frame["true_baz_deg"], frame["pred_baz_deg"])
    metrics = dict(n_traces=int(len(frame)), mean_deg=m["mean"], std_deg=m["std"],
                   mae_deg=m["mae"], rmse_deg=m["rmse"], r2=m["r2"])
    plots.plot_pred_vs_true(frame["true_baz_deg"], frame["pred_baz_deg"],
                            results / "pred_vs_true.png", label="back-azimuth", unit="deg")
    plots.plot_residual_histogram(frame["error_baz_deg"], results / "residual_hist.png",
                                  label="back-azimuth error", unit="deg", xlim=(-180, 180))
    return metrics


def read_classification(frame, results, config, task):
    """Polarity accuracy, precision/recall/F1 (positive class U) and the confusion matrix."""
    from utrans import plots
    from utrans.metrics import classification_metrics

    m = classification_metrics(frame["true_polarity"].astype(str).to_numpy(),
                               frame["pred_polarity"].astype(str).to_numpy(),
                               labels=["D", "U"], pos_label="U")
    metrics = dict(n_traces=int(len(frame)), accuracy=m["accuracy"], precision=m["precision"],
                   recall=m["recall"], f1=m["f1"], precision_macro=m["precision_macro"],
                   recall_macro=m["recall_macro"], f1_macro=m["f1_macro"],
                   f1_U=m["f1_U"], f1_D=m["f1_D"], labels=m["labels"],
                   confusion_matrix=m["confusion_matrix"])
    plots.plot_confusion_matrix(m["confusion_matrix"], ["D (down)", "U (up)"],
                                results / "confusion_matrix.png", title=f"{task.name} polarity")
    return metrics


def _matched_residuals(pred, true, tolerance, fs):
    from utrans.metrics import match_picks

    out = []
    for p, t in zip(pred, true):
        p, t = np.asarray(p, float), np.asarray(t, float)
        p, t = p[~np.isnan(p)], t[~np.isnan(t)]
        out += [(p[i] - t[j]) / fs for i, j in match_picks(p, t, tolerance)]
    return np.asarray(out)


def _pick_block(prefix, pred, true, fs, suffix_default, **kwargs):
    """pick_metrics at 0.1 s and 0.5 s as flat keys ``<prefix><name>_<tol>s``."""
    from utrans.metrics import pick_metrics

    out = {}
    for tol in (0.1, 0.5):
        m = pick_metrics(pred, true, tol * fs, fs, **kwargs)
        for key in ("precision", "recall", "f1", "mean_s", "std_s", "mae_s", "rmse_s", "tp",
                    "fp", "fn"):
            out[f"{prefix}{key}_{tol}s"] = m[key]
            if tol == suffix_default:
                out[f"{prefix}{key}"] = m[key]
    return out


def read_picking(frame, results, config, task):
    """U-Trans picking metrics: highest peak >= threshold, TP within 0.5 s (also 0.1 s).

    A pick farther than the tolerance from the true arrival counts as a missed
    pick (FN) only, as in the U-Trans notebooks; a pick on a trace without an
    arrival is a false positive.
    """
    from utrans import plots

    ph = task.quantity.lower()
    fs = float(frame["sampling_rate"].iloc[0]) if len(frame) else 100.0
    pred = frame[f"pred_{ph}_sample"].to_numpy(float)
    true = frame[f"true_{ph}_sample"].to_numpy(float)
    metrics = dict(n_traces=int(len(frame)), phase=task.quantity)
    metrics.update(_pick_block("", pred, true, fs, 0.5, far_pick_counts_as_fp=False))
    res = _matched_residuals(pred[:, None], true[:, None], 0.5 * fs, fs)
    plots.plot_residual_histogram(res, results / "residual_hist.png",
                                  label=f"{task.quantity} pick residual", unit="s",
                                  xlim=(-0.5, 0.5))
    _plot_examples(results, frame, [(0, task.quantity)], fs)
    return metrics


def _plot_examples(results, frame, channels, sampling_rate):
    """Waveform + probability figures of the first test traces (``examples.npz`` of the tester)."""
    from utrans import plots

    path = results / "examples.npz"
    if not path.exists():
        return
    with np.load(path) as ex:
        names, waves, curves = ex["trace_name"], ex["waveform"], ex["curves"]
    rows = frame.set_index("trace_name")
    for j, (name, wave, curve) in enumerate(zip(names, waves, curves)):
        probs, picks = {}, {}
        for c, label in channels:
            if not np.isnan(curve[:, c]).all():
                probs[label] = curve[:, c]
        if name in rows.index:
            row = rows.loc[name]
            row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
            for key in row.index:
                if key.startswith("true_") and key.endswith("_sample"):
                    picks[key[5:-7].upper() + " true"] = row[key]
        plots.plot_waveform_with_probs(wave, probs, results / f"example_{j}.png", picks=picks,
                                       sampling_rate=sampling_rate)


def _split_picks(column):
    out = []
    for v in column:
        if isinstance(v, str) and v:
            out.append(np.array([float(t) for t in v.split(";")]))
        elif isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v):
            out.append(np.array([float(v)]))
        else:
            out.append(np.zeros(0))
    return out


def read_dpk(frame, results, config, task):
    """SeisT detection and picking metrics (one-to-one matching, 0.1 s and 0.5 s)."""
    from utrans import plots
    from utrans.metrics import detection_metrics, intervals_to_mask

    fs = float(frame["sampling_rate"].iloc[0]) if len(frame) else 100.0
    metrics = dict(n_traces=int(len(frame)))
    for ph in ("p", "s"):
        pred = _split_picks(frame[f"pred_{ph}_samples"])
        true = [np.array([t]) if np.isfinite(t) else np.zeros(0)
                for t in frame[f"true_{ph}_sample"].to_numpy(float)]
        metrics.update(_pick_block(f"{ph}_", pred, true, fs, None))
        res = _matched_residuals(pred, true, 0.5 * fs, fs)
        plots.plot_residual_histogram(res, results / f"{ph}_residual_hist.png",
                                      label=f"{ph.upper()} pick residual", unit="s",
                                      xlim=(-0.5, 0.5))
    has_det = len(frame) and not frame["pred_det_start"].isna().all() \
        if "pred_det_start" in frame else False
    keys = ("precision", "recall", "f1", "trace_precision", "trace_recall", "trace_f1")
    if has_det:
        n = int(frame["n_samples"].iloc[0])
        true_mask = np.stack([intervals_to_mask([[a, b]], n) for a, b in
                              frame[["true_det_start", "true_det_end"]].to_numpy(float)])
        pred_mask = np.stack([intervals_to_mask([[a, b]], n) for a, b in
                              frame[["pred_det_start", "pred_det_end"]].to_numpy(float)])
        d = detection_metrics(true_mask, pred_mask)
        metrics.update({f"det_{k}": d[k] for k in keys})
    else:
        metrics.update({f"det_{k}": None for k in keys})
    _plot_examples(results, frame, [(0, "detection"), (1, "P"), (2, "S")], fs)
    return metrics


def read_reconstruction(frame, results, config, task):
    """Reconstruction MAE, the masked input's own MAE, per-channel correlation, and figures.

    Figures: the histogram of the per-trace MAE and, for the first test traces
    (``examples.npz`` of the tester), clean input / masked input / reconstruction.
    """
    from utrans import plots

    corr = {c: float(np.nanmean(frame[f"corr_{c}"])) if frame[f"corr_{c}"].notna().any()
            else float("nan") for c in "ENZ"}
    masked = (float(frame["masked_input_mae"].mean()) if "masked_input_mae" in frame
              else float("nan"))
    metrics = dict(n_traces=int(len(frame)), mae=float(frame["mae"].mean()),
                   mae_median=float(frame["mae"].median()),
                   mae_std=float(frame["mae"].std(ddof=0)), masked_input_mae=masked,
                   corr_E=corr["E"], corr_N=corr["N"], corr_Z=corr["Z"],
                   corr_mean=float(np.nanmean(list(corr.values()))) if any(
                       np.isfinite(v) for v in corr.values()) else float("nan"))
    plots.plot_residual_histogram(frame["mae"], results / "mae_hist.png",
                                  label="reconstruction MAE per trace", unit="normalised")
    path = results / "examples.npz"
    if path.exists():
        with np.load(path) as ex:
            if "target" in ex:
                for j, (clean, wave, recon) in enumerate(zip(ex["target"], ex["waveform"],
                                                             ex["curves"])):
                    plots.plot_reconstruction(clean, wave, recon, results / f"example_{j}.png",
                                              sampling_rate=100.0)
    return metrics


READERS = {
    "location": read_location,
    "regression": read_regression,
    "backazimuth": read_backazimuth,
    "classification": read_classification,
    "picking": read_picking,
    "dpk": read_dpk,
    "reconstruction": read_reconstruction,
}


def run_reader(args, task):
    """Compute metrics from the tester CSV; writes metrics.json/metrics.md; returns the dict."""
    from utrans.train import output_dir

    out = output_dir(args.output_name)
    results = pathlib.Path(args.input_dir) if args.input_dir else out / "test"
    csv = results / "predictions.csv"
    if not csv.exists():
        raise EvaluationInputError(f"{csv} not found: run 02_test/tester{task.number}.py first.")
    frame = pd.read_csv(csv)
    metrics = READERS[task.kind](frame, results, read_training_config(out), task)
    (results / "metrics.json").write_text(json.dumps(metrics, indent=2))
    table = _markdown_table(metrics, list(metrics))
    (results / "metrics.md").write_text(f"# {task.name} metrics ({csv})\n\n" + table)
    logger.info("\n%s", table)
    logger.info("Metrics and figures written to %s", results)
    return metrics


def _run_cli(fn, task_name, argv, prog, add_args, description):
    from utrans.tasks import get_task

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    task = get_task(task_name)
    parser = argparse.ArgumentParser(prog=prog.format(n=task.number), description=description)
    add_args(parser, task)
    args = parser.parse_args(argv)
    from utrans.formats import BadTraceError

    try:
        return fn(args, task)
    except (EvaluationInputError, BadTraceError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")


def tester_main(task_name, argv=None):
    """Entry point of ``02_test/testerN.py``."""
    return _run_cli(run_tester, task_name, argv, "tester{n}.py", add_tester_arguments,
                    "Run a trained model over the test traces and write predictions.csv.")


def add_reader_arguments(parser, task):
    """Arguments of every reader."""
    parser.add_argument("--output_name", default=task.output_name,
                        help="The trainer's --output_name (default: %(default)s).")
    parser.add_argument("--input_dir", default=None,
                        help="Folder holding the tester's predictions.csv (default: "
                             "<output_name>_outputs/test). Metrics and figures go there too.")
    return parser


def reader_main(task_name, argv=None):
    """Entry point of ``03_read/readerN.py``."""
    return _run_cli(run_reader, task_name, argv, "reader{n}.py", add_reader_arguments,
                    "Compute metrics and figures from a tester's predictions.csv.")
