"""``utrans annotate`` (also ``utrans-annotate``): pick phases on continuous records.

::

    utrans annotate 'day/*.mseed' --model seist_m_dpk_diting --output picks_out --quakeml --mseed

Reads every file ObsPy can read (miniSEED, SAC, GSE2, ...; globs allowed),
applies one model with :class:`utrans.annotate.Annotator` and writes into the
output folder:

* ``picks.csv`` (and ``detections.csv`` for models with a detection output);
* ``picks.xml`` with ``--quakeml``: the picks as QuakeML;
* ``<model>_probabilities.mseed`` with ``--mseed``: the probability traces
  (channel codes in :mod:`utrans.annotate.output`);
* ``plots/<NET.STA.LOC.BI>.png``: waveforms, probabilities and picks per
  instrument (``--no_plots`` skips them).

Bad input (a missing or unreadable file, an unknown model, nothing to
annotate, an output folder that cannot be written) stops with one line on
stderr and exit code 2, before any work; a bad station is skipped with a
warning naming it, the others are annotated, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import sys

from utrans.cli import InputError, quiet_framework, run_job
from utrans.core.errors import UtransError
from utrans.core.io import check_output_dir
from utrans.core.machine import set_default_threads
from utrans.core.options import positive_int
from utrans.runtime import is_exported

__all__ = ["add_model_options", "build_parser", "main", "output_folder", "set_threads",
           "utrans_annotate"]


def build_parser(prog="utrans-annotate"):
    """The argparse parser of ``utrans-annotate``.

    Args:
        prog: the command's name in usage and error lines (``utrans annotate``
            when run through ``utrans``).

    Returns:
        ``argparse.ArgumentParser``.
    """
    p = argparse.ArgumentParser(
        prog=prog,
        description="Apply a phase picker to continuous records (any format ObsPy reads) and "
                    "write picks (CSV, QuakeML), probability traces (miniSEED) and one figure "
                    "per station. Sampling rate, component order, window, normalisation and "
                    "thresholds come from the model.",
        epilog="Examples:\n"
               f"  {prog} 'data/*.mseed' --model seist_m_dpk_diting --quakeml --mseed\n"
               f"  {prog} rec.sac --model my_picker.keras --P_threshold 0.5\n"
               f"  {prog} --sds /data/sds --start 2024-01-01 --end 2024-01-08 "
               "--model seist_m_dpk_diting --workers 4\n"
               "Models: a preset (seist_{s,m,l}_dpk_diting: published weights, downloaded once "
               "to $UTRANS_HOME), a trained .keras file, a SeisBench weight file, or a model "
               "written by utrans export (.onnx, .tflite: no TensorFlow needed); a registered "
               "architecture "
               "(phasenet, eqtransformer, seist_m_dpk, ...) only with --random_weights.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="waveform files or glob patterns (quote globs for the shell); or --sds")
    p.add_argument("--output", default="annotate_outputs", type=pathlib.Path,
                   help="output folder (default: %(default)s)")
    add_model_options(p)
    p.add_argument("--window_grid", choices=("absolute", "record"), default="absolute",
                   help="absolute: windows on a time grid, so pieces of a record give the "
                        "whole record's picks (default); record: windows from each record's "
                        "start with its edges blinded, as SeisBench places them")
    p.add_argument("--quakeml", action="store_true", help="also write picks.xml (QuakeML)")
    p.add_argument("--mseed", action="store_true",
                   help="also write the probability traces as miniSEED")
    p.add_argument("--no_plots", action="store_true", help="skip the per-station figures")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    _add_archive_options(p)
    return p


def add_model_options(p, model=None):
    """The options of applying a picker, shared by ``utrans annotate`` and ``utrans stream``.

    Args:
        p: the parser.
        model: default of ``--model`` (``None``: the option is required).
    """
    p.add_argument("--model", required=model is None, default=model,
                   help="preset name, trained .keras file, SeisBench weight file, or exported "
                        ".onnx / .tflite model or folder (utrans export; runs without "
                        "TensorFlow); a registered architecture with --random_weights"
                        + (" (default: %(default)s)" if model else ""))
    p.add_argument("--random_weights", action="store_true",
                   help="allow a registered architecture without trained weights (its picks "
                        "mean nothing: for testing the pipeline only)")
    p.add_argument("--batch_size", type=positive_int, default=64,
                   help="windows per model call (default: %(default)s)")
    p.add_argument("--overlap", type=float, default=None,
                   help="window overlap: a fraction < 1 of the window or a number of samples "
                        "(default: half a window)")
    p.add_argument("--blinding", type=int, default=None,
                   help="samples dropped at window edges (default: the model's, else 5%% of the window)")
    p.add_argument("--stacking", choices=("avg", "max"), default=None,
                   help="combining overlapping windows (default: the model's, else avg)")
    for label in ("P", "S", "det"):
        p.add_argument(f"--{label}_threshold", type=float, default=None, metavar="T",
                       help=f"{label} threshold in [0, 1] (default: the model's)")
    p.add_argument("--min_peak_distance_s", type=float, default=None, metavar="S",
                   help="minimum time between two picks of one phase (default: the model's)")
    p.add_argument("--missing_components", choices=("zeros", "copy", "skip"), default="zeros",
                   help="absent components of a station: fed as zeros, as copies of the "
                        "vertical, or the span skipped (default: %(default)s)")
    p.add_argument("--characterize", default=None, metavar="MODELS",
                   help="comma-separated window models (e.g. seist_m_pmp_diting,"
                        "seist_m_emg_diting,seist_m_baz_diting,seist_m_dis_diting): each P pick "
                        "gets their polarity, magnitude, back-azimuth and distance columns")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads for the model (default: all)")
    p.add_argument("--verbose", action="store_true", help="show framework messages")
    return p


def _add_archive_options(parser):
    """The options of ``--sds`` (the run is :func:`utrans.cli.network.run`)."""
    g = parser.add_argument_group(
        "network archive",
        "Read an SDS archive instead of files: one picks table per station-day, written by "
        "worker processes (or a Dask cluster), then merged into <output>/picks.csv. Run the "
        "same command again to resume after an interruption.")
    g.add_argument("--sds", type=pathlib.Path, default=None, metavar="ROOT",
                   help="SDS archive root folder (YEAR/NET/STA/CHAN.D/...)")
    g.add_argument("--start", default=None, help="first day or time (2024-01-31[T06:00:00])")
    g.add_argument("--end", default=None, help="end of the range, excluded")
    for name in ("network", "station", "location", "channel"):
        g.add_argument(f"--{name}", default="*",
                       help=f"{name} code or pattern (fnmatch: '*', 'ST?'; default: all)")
    g.add_argument("--chunk_s", type=float, default=86400.0, metavar="S",
                   help="length of a work unit in seconds (default: one day)")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes on this machine (default: the CPU cores; 0: run "
                        "in this process)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on an existing Dask cluster (tcp://host:8786); its workers must "
                        "see the archive and the output folder at the same paths")
    g.add_argument("--format", choices=("csv", "parquet"), default="csv",
                   help="format of the per-station-day tables (parquet needs pyarrow; "
                        "default: %(default)s)")


def output_folder(path):
    """The output folder, checked writable before any work (one line naming it otherwise)."""
    try:
        return check_output_dir(path)
    except UtransError as err:
        raise InputError(str(err)) from None


def set_threads(threads):
    """``--threads``: threads of exported models' runtimes and of TensorFlow.

    Call it before any model is opened: TensorFlow refuses a new thread count
    once it has run anything.
    """
    set_default_threads(threads)  # ONNX Runtime and LiteRT (utrans.runtime.exported) read it
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    else:  # read by TensorFlow when it starts (with --verbose it is not loaded yet)
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)


def main(argv=None, prog="utrans-annotate"):
    """Entry point of ``utrans-annotate`` (and ``utrans annotate``).

    The run (:func:`utrans.cli.annotate_run.run` on files,
    :func:`utrans.cli.network.run` on an archive) and the libraries it needs
    load once the arguments are parsed: ``--help`` answers at once.

    Args:
        argv: arguments (default ``sys.argv[1:]``).
        prog: the command's name in usage and error lines.

    Returns:
        Exit code: 0 on success, 2 on bad input, 1 when instruments (files)
        or station-days (archive) failed while the others finished, 130 on
        Ctrl-C.
    """
    args = build_parser(prog).parse_args(argv)
    models = [args.model, *(args.characterize or "").split(",")]
    if not all(is_exported(m.strip()) for m in models if m.strip()):
        quiet_framework(args.verbose)  # Keras models: TensorFlow loads next, quietly
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    archive = args.sds is not None
    return run_job(prog, "utrans.cli.network:run" if archive else "utrans.cli.annotate_run:run",
                   args, "nothing of this run was written for files" + (
                       " (station-days already done are kept: the same command resumes)"
                       if archive else "") + ".")


def utrans_annotate(argv):
    """``utrans annotate ...`` (the ``utrans`` command's entry)."""
    return main(argv, prog="utrans annotate")
