"""The Keras side of the TensorFlow-free tests: a picker exported, and its Keras picks.

``write(weights, out)`` loads a trained picker (SeisBench's PhaseNetLight
trained on ETHZ, from the reference folder), exports it to ONNX
(``out/onnx``) and LiteRT (``out/litert``), writes ObsPy's example record to
``out/example.mseed`` and the picks the Keras model makes on it with
:func:`utrans.classify` to ``out/keras_picks.json``.

``tests/test_runtime_tf_free.py`` calls it in-process where TensorFlow is
installed; in an environment without it, it runs this file with the Python
of a full environment (``UTRANS_KERAS_PYTHON``)::

    python tests/export_reference.py WEIGHTS OUT
"""

import json
import pathlib
import sys

import obspy

import utrans


def picks_rows(picks):
    """``[(phase, peak_time, peak_value)]`` of a pick table, in time order."""
    rows = [(str(p.phase), str(p.peak_time), float(p.peak_value)) for p in picks.itertuples()]
    return sorted(rows, key=lambda r: (r[1], r[0]))


def write(weights, out):
    """Export the picker of ``weights`` and record its Keras picks (module doc).

    Args:
        weights: a weight file ``utrans.load_model`` takes.
        out: the folder to write.

    Returns:
        ``out`` as a ``pathlib.Path``.
    """
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = utrans.load_model(str(weights))
    utrans.export(model, "onnx", out / "onnx")
    utrans.export(model, "litert", out / "litert")
    stream = obspy.read()
    stream.write(str(out / "example.mseed"), format="MSEED")
    rows = picks_rows(utrans.classify(model, stream).picks)
    (out / "keras_picks.json").write_text(json.dumps(rows))
    return out


if __name__ == "__main__":
    write(sys.argv[1], sys.argv[2])
