"""``utrans export``: write a model as SavedModel, ONNX or LiteRT with its ``conventions.json``.

::

    utrans export phasenet:stead --format onnx --output exports/phasenet_stead
    utrans annotate day.mseed --model exports/phasenet_stead     # ONNX Runtime, no TensorFlow

``MODEL`` is anything ``--model`` takes elsewhere: a preset, a ``.keras``
file, a SeisBench weight file or ``name:dataset`` from SeisBench's cache (a
registered architecture only with ``--random_weights``). The exported graph
takes the model's inputs (:meth:`utrans.pipeline.Pipeline.window_inputs`);
``conventions.json`` beside it lets ``annotate``, ``classify`` and
:func:`utrans.runtime.load_runner` pre- and post-process. Bad input (an
unknown model, a converter that is not installed, a model the format cannot
express) stops with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from utrans.core.errors import UtransError
from utrans.runtime.manifest import FORMATS

__all__ = ["build_parser", "main"]


def build_parser():
    """The argparse parser of ``utrans export``."""
    p = argparse.ArgumentParser(
        prog="utrans export",
        description="Export a model to SavedModel, ONNX or LiteRT with its conventions.json "
                    "(sampling rate, components, window, normalisation, labels, thresholds), "
                    "so that annotate and classify run it: ONNX and LiteRT without TensorFlow.",
        epilog="Examples:\n"
               "  utrans export seist_m_dpk_diting --format onnx --output exports/seist_m_dpk\n"
               "  utrans export phasenet:stead --format litert --output exports/pn_lite "
               "--quantize dynamic_range\n"
               "  utrans export eqtransformer.json.v1 --format litert --output exports/eqt "
               "--batch_size 64   (LSTM models: a fixed batch in LiteRT)\n"
               "Then: utrans annotate FILES --model exports/seist_m_dpk",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL",
                   help="preset name, .keras file, SeisBench weight file or name:dataset")
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="savedmodel (TensorFlow), onnx (ONNX Runtime) or litert (.tflite)")
    p.add_argument("--output", required=True,
                   help="folder to write (the graph and conventions.json), or a .onnx / "
                        ".tflite file name")
    p.add_argument("--random_weights", action="store_true",
                   help="allow a registered architecture without trained weights (for testing "
                        "a deployment only: its outputs mean nothing)")
    p.add_argument("--opset", type=int, default=None, help="onnx: the ONNX opset (default: 18)")
    p.add_argument("--batch_size", type=int, default=None,
                   help="litert: a fixed batch size (needed by LSTM models such as "
                        "EQTransformer; default: any batch size)")
    p.add_argument("--quantize", choices=("dynamic_range", "int8"), default=None,
                   help="litert: int8 weights (dynamic_range), or int8 weights and activations "
                        "(int8, calibrated on --calibration)")
    p.add_argument("--calibration", default=None, metavar="NPY",
                   help="litert int8: a .npy of model inputs (n, samples, channels), windows "
                        "made by the model's pipeline (Pipeline.window_inputs)")
    p.add_argument("--verbose", action="store_true", help="show the converters' messages")
    return p


#: The options of each format (the others are refused before the model loads).
_FORMAT_OPTIONS = {"savedmodel": (), "onnx": ("opset",),
                   "litert": ("batch_size", "quantize", "calibration")}


def _options(args, parser):
    """The format options given on the command line (refused for another format)."""
    given = {"opset": args.opset, "batch_size": args.batch_size, "quantize": args.quantize,
             "calibration": args.calibration}
    wrong = [f"--{k}" for k, v in given.items()
             if v is not None and k not in _FORMAT_OPTIONS[args.format]]
    if wrong:
        parser.error(f"--format {args.format} takes none of {', '.join(wrong)}")
    if args.quantize == "int8" and args.calibration is None:
        parser.error("--quantize int8 calibrates on model inputs: give --calibration FILE.npy")
    options = {k: v for k, v in given.items() if v is not None and k != "calibration"}
    if args.calibration is not None:
        try:
            options["representative_data"] = np.load(args.calibration, allow_pickle=False)
        except (OSError, ValueError) as err:
            parser.error(f"--calibration {args.calibration}: {err}")
    return options


def main(argv=None):
    """``utrans export``: the command line of :func:`utrans.export.export`.

    Returns:
        The path of the written graph.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    options = _options(args, parser)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        # Heavy: TensorFlow and the models load only when a model is exported (not for --help).
        from utrans.export import export  # noqa: PLC0415 - TensorFlow: lazy for start-up time
        from utrans.loading import load_model  # noqa: PLC0415 - Keras: lazy for start-up time
    except ImportError as err:
        parser.exit(2, f"{parser.prog}: error: exporting needs TensorFlow and Keras ({err}); "
                       "install the package with them: pip install utrans\n")

    try:
        model = load_model(args.model, allow_random=args.random_weights)
        conventions = getattr(model, "conventions", None)
        print(f"Model {args.model}: {conventions.describe() if conventions else model.name}")
        path = export(model, args.format, args.output, **options)
    except (UtransError, KeyError, OSError, ValueError) as err:
        # MissingExtraError (an ImportError) is a UtransError: it names the pip install.
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        parser.exit(2, f"{parser.prog}: error: {message}\n")
    folder = path if path.is_dir() else path.parent
    print(f"Wrote {path} and {folder / 'conventions.json'}")
    print(f"Run it with: utrans annotate FILES --model {path}")
    return path
