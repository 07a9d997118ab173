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


def _mc_predict(model, x, n, seed):
    """Mean and std over ``n`` stochastic passes (dropout on, BatchNorm in inference mode)."""
    import keras

    stack = [model]
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
        stack.extend(getattr(layer, "layers", []))
    keras.utils.set_random_seed(seed)
    draws = np.stack([keras.ops.convert_to_numpy(model(x, training=True)) for _ in range(n)])
    return draws.mean(axis=0), draws.std(axis=0)


def _location_rows(ids, metas, pred, pred_std, labeller):
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


ROW_BUILDERS = {"location": _location_rows}


def run_tester(args, task):
    """Predict every test trace and write ``predictions.csv``; returns its path."""
    from tqdm.auto import tqdm

    from utrans.data import DataGenerator
    from utrans.train import output_dir

    out = output_dir(args.output_name)
    config = read_training_config(out)
    model_path = pathlib.Path(args.input_model or out / "models" / "best.keras")
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

    gen = DataGenerator(testset, hdf5, batch_size=args.batch_size, shuffle=False,
                        augmentation=False, task=task.name, max_d=max_d, min_d=min_d,
                        norm_mode=args.normalization_mode or config.get("normalization_mode", "std"),
                        drop_remainder=False, skip_bad=args.skip_bad,
                        bad_log=str(results / "bad_traces.log"), seed=args.seed)
    model = load_trained_model(model_path, config)
    _check_model_fits(model, gen.labeller, model_path, task.name)
    frames = []
    for i in tqdm(range(len(gen)), desc=f"Testing {model_path.name}", unit="batch"):
        x, _ = gen.get_batch(i)
        ids = gen.batch_ids(i)
        metas = [gen.metadata(t) for t in ids]
        if args.number_of_sampling and args.number_of_sampling > 1:
            pred, pred_std = _mc_predict(model, x, args.number_of_sampling, args.seed + i)
        else:
            pred, pred_std = np.asarray(model.predict_on_batch(x)), None
        frames.append(ROW_BUILDERS[task.name](ids, metas, pred, pred_std, gen.labeller))
    frame = pd.concat(frames, ignore_index=True)
    path = write_csv_atomic(frame, results / "predictions.csv")
    meta = dict(model=str(model_path), input_hdf5=str(hdf5), input_testset=str(testset),
                max_d=max_d, min_d=min_d, number_of_sampling=args.number_of_sampling,
                n_traces=len(frame))
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


def read_location(frame, results, config):
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


READERS = {"location": read_location}


def run_reader(args, task):
    """Compute metrics from the tester CSV; writes metrics.json/metrics.md; returns the dict."""
    from utrans.train import output_dir

    out = output_dir(args.output_name)
    results = pathlib.Path(args.input_dir) if args.input_dir else out / "test"
    csv = results / "predictions.csv"
    if not csv.exists():
        raise EvaluationInputError(f"{csv} not found: run 02_test/tester{task.number}.py first.")
    frame = pd.read_csv(csv)
    metrics = READERS[task.name](frame, results, read_training_config(out))
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
