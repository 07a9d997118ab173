"""Run an exported model without TensorFlow: one call, numpy in, numpy out.

:func:`load_exported` opens a model written by :func:`utrans.export.export`
together with its ``conventions.json`` (:mod:`utrans.runtime.manifest`) and
returns a runner; :func:`utrans.runtime.load_runner` sends ``.onnx`` and
``.tflite`` files and export folders here::

    from utrans.pipeline import Pipeline
    from utrans.runtime import load_runner

    runner = load_runner("export/seist_m_dpk/model.onnx")
    pipeline = Pipeline.of(runner)                 # the model's conventions
    curves = pipeline.curves(runner(pipeline.window_inputs(windows)))

A runner takes a float32 batch ``(batch, samples, channels)`` of model
inputs, as :meth:`utrans.pipeline.Pipeline.window_inputs` makes them
(normalised; DiTingMotion's first differences appended), and returns what the
Keras model returns on it: one array, a list in the manifest's output order,
or a dict keyed by output name. Like :class:`utrans.runtime.keras.KerasRunner`
it carries ``conventions``, ``name`` and ``batch_size`` (the number of
windows a caller should pass per call; any number is accepted) and
``resized(batch_size)``.

* :class:`OnnxRunner`: ``.onnx`` through ONNX Runtime.
* :class:`LiteRTRunner`: ``.tflite`` through LiteRT's interpreter
  (``ai-edge-litert``); the input is resized to each batch, or, for a graph
  exported with a fixed batch size, the batch is cut into pieces of that size
  (the last one zero padded).
* :class:`SavedModelRunner`: a SavedModel directory; this one needs
  TensorFlow, imported when the model is loaded.

The runtime libraries are imported when a model of their format is loaded,
so importing this module needs only NumPy.
"""

from __future__ import annotations

import concurrent.futures
import copy
import logging
import pathlib

import numpy as np

from utrans.core.errors import ExportError, ManifestError, MissingExtraError
from utrans.core.machine import default_threads
from utrans.runtime.manifest import MANIFEST_NAME, Manifest, manifest_path

__all__ = ["EXPORTED_SUFFIXES", "LiteRTRunner", "OnnxRunner", "Runner", "SavedModelRunner", "is_exported",
           "load_exported"]

logger = logging.getLogger(__name__)

#: Windows per call a runner suggests when neither the caller nor the graph fixes it.
DEFAULT_BATCH_SIZE = 64
#: Windows per ONNX Runtime session call: a caller's batch runs in pieces of at most this
#: size. Its convolutions keep a few windows' activations in the CPU's caches; on 2 threads,
#: 64 EQTransformer windows ran 2-2.5x faster in pieces of 8 than in one call, PhaseNet alike
#: or slightly faster.
ONNX_PIECE = 8
#: File suffixes of exported models and their formats.
EXPORTED_SUFFIXES = {".onnx": "onnx", ".tflite": "litert"}
_INSTALL = "pip install 'utrans[runtime]'"


def _positive(value, name="batch_size"):
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
    return int(value)


def _threads(num_threads):
    """``num_threads`` checked, or :func:`utrans.core.machine.default_threads` for ``None``."""
    return _positive(default_threads() if num_threads is None else num_threads, "num_threads")


def _missing(package, what):
    return MissingExtraError(f"{what} needs {package}, which is not installed: {_INSTALL}")


def _display_name(path):
    """A model's name in pick tables: the file's stem, or its folder's for ``model.*`` and SavedModels."""
    path = path.resolve()
    if path.is_dir():
        return path.name
    return path.parent.name if path.stem == "model" else path.stem


class Runner:
    """Base class: checks the batch, runs the graph, arranges the outputs.

    Args:
        path: the model file (or SavedModel directory).
        manifest: its :class:`~utrans.runtime.manifest.Manifest` (default:
            read from the ``conventions.json`` beside ``path``).
        batch_size: the number of windows callers should pass per call
            (default: the graph's fixed batch size, else 64). A call takes
            any number of windows; a graph of fixed batch size gets them in
            pieces of its size whatever this says.

    Returns:
        Calling the runner on a batch returns the model's outputs (see the
        module doc).
    """

    #: The manifest ``format`` this runner opens.
    format = ""

    def __init__(self, path, manifest=None, batch_size=None):
        self.path = pathlib.Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"Exported model not found: {self.path}")
        if manifest is None:
            manifest = _read_manifest(self.path)
        if manifest.format != self.format:
            raise ManifestError(f"{manifest_path(self.path)} describes a {manifest.format} "
                                f"export, not {self.format}. Received: {self.path}")
        self.manifest = manifest
        self.name = _display_name(self.path)
        self.batch_size = _positive(batch_size or manifest.batch_size or DEFAULT_BATCH_SIZE)

    def resized(self, batch_size):
        """The same runner with another ``batch_size`` (the graph is shared, not reloaded)."""
        other = copy.copy(self)
        other.batch_size = _positive(batch_size)
        return other

    # ------------------------------------------------------------------ facts
    @property
    def conventions(self):
        """The model's :class:`~utrans.core.conventions.Conventions`."""
        return self.manifest.conventions

    @property
    def input_shape(self):
        """Input shape, ``None`` for the batch dimension."""
        return self.manifest.input_shape

    @property
    def output_names(self):
        """Output names in order."""
        return self.manifest.output_names

    def __repr__(self):
        return (f"{type(self).__name__}({str(self.path)!r}, model={self.manifest.model_name!r}, "
                f"input={list(self.input_shape)}, outputs={list(self.output_names)})")

    # ------------------------------------------------------------------ call
    def __call__(self, batch):
        """Run the graph on a batch of model inputs.

        Args:
            batch: float32 array ``(batch, samples, channels)`` made by
                :meth:`utrans.pipeline.Pipeline.window_inputs`.

        Returns:
            One array, a list of arrays or a dict of arrays, as the Keras
            model returns them.
        """
        x = self._check(batch)
        fixed = self.manifest.batch_size
        if fixed is None or x.shape[0] == fixed:
            flat = self._run(x)
        else:
            pieces = []
            for start in range(0, x.shape[0], fixed):
                chunk = x[start:start + fixed]
                n = chunk.shape[0]
                if n < fixed:
                    chunk = np.concatenate(
                        [chunk, np.zeros((fixed - n,) + chunk.shape[1:], np.float32)])
                pieces.append([o[:n] for o in self._run(chunk)])
            flat = [np.concatenate(parts) for parts in zip(*pieces, strict=True)]
        return self._arrange(flat)

    def _check(self, batch):
        x = np.asarray(batch)
        expected = tuple(self.input_shape[1:])
        shown = f"(batch, {expected[0]}, {expected[1]})"
        if x.ndim != 3:
            hint = " Add a batch axis for a single window: x[None]." if x.ndim == 2 else ""
            raise ValueError(f"{self.manifest.model_name or self.path.name} takes windows of "
                             f"shape {shown}.{hint} Received: shape={x.shape}")
        wrong = any(e is not None and e != r for e, r in zip(expected, x.shape[1:], strict=True))
        if wrong:
            hint = (" The batch looks channels-first; transpose it with x.transpose(0, 2, 1)."
                    if tuple(x.shape[1:]) == expected[::-1] else "")
            raise ValueError(f"{self.manifest.model_name or self.path.name} takes windows of "
                             f"shape {shown}.{hint} Received: shape={x.shape}")
        if x.shape[0] == 0:
            raise ValueError(f"The batch holds no window. Received: shape={x.shape}")
        if not np.issubdtype(x.dtype, np.number):
            raise ValueError(f"Windows must be numbers. Received: dtype={x.dtype}")
        return np.ascontiguousarray(x, dtype=np.float32)

    def _arrange(self, flat):
        structure = self.manifest.output_structure
        if structure == "single":
            return flat[0]
        if structure == "list":
            return list(flat)
        return dict(zip(self.output_names, flat, strict=True))

    def _run(self, x):
        """The graph's outputs on ``x`` as a list in manifest order."""
        raise NotImplementedError


def _first_line(err):
    """The first line of an error's message (or its type when it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class OnnxRunner(Runner):
    """An ``.onnx`` model through ONNX Runtime (CPU).

    A batch runs in pieces of at most :data:`ONNX_PIECE` windows, spread over
    ``num_threads`` threads that each run one piece on one core (ONNX Runtime
    releases the GIL; one session runs calls from several threads at once).
    Windows are independent, so this needs no synchronisation inside a
    forward pass, where ONNX Runtime's own intra-op threads meet at every
    operator: EQTransformer ran about 1.4x faster this way on 2 cores.

    Args:
        path: the ``.onnx`` file (its ``conventions.json`` beside it).
        num_threads: threads (default :func:`utrans.core.machine.default_threads`:
            ``OMP_NUM_THREADS``, else the usable cores).
        manifest: the manifest (default: read from beside ``path``).
        batch_size: windows per call suggested to callers (see :class:`Runner`).
    """

    format = "onnx"

    def __init__(self, path, num_threads=None, manifest=None, batch_size=None):
        super().__init__(path, manifest, batch_size)
        try:
            import onnxruntime  # noqa: PLC0415 (optional dependency: the runtime extra)
        except ImportError as err:
            raise _missing("onnxruntime", "Running an ONNX model") from err
        self.num_threads = _threads(num_threads)
        options = onnxruntime.SessionOptions()
        # One core per call: the threads of this runner run pieces side by side.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(str(self.path), sess_options=options,
                                                         providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - ONNX Runtime's errors derive from Exception only
            raise ExportError(f"{self.path} is not an ONNX model ONNX Runtime can load: "
                              f"{_first_line(err)}") from err
        inputs = [i.name for i in self._session.get_inputs()]
        outputs = {o.name for o in self._session.get_outputs()}
        if inputs != [self.manifest.input_name] or not set(self.output_names) <= outputs:
            raise ManifestError(
                f"{manifest_path(self.path)} does not describe {self.path}: the graph has inputs "
                f"{inputs} and outputs {sorted(outputs)}, the manifest input "
                f"{self.manifest.input_name!r} and outputs {list(self.output_names)}")
        self._pool = (concurrent.futures.ThreadPoolExecutor(
            self.num_threads, thread_name_prefix="utrans-onnx") if self.num_threads > 1 else None)

    def _piece(self, x):
        return self._session.run(list(self.output_names), {self.manifest.input_name: x})

    def _run(self, x):
        n = x.shape[0]
        # Pieces of at most ONNX_PIECE windows, at least one per thread when the batch allows.
        size = max(1, min(ONNX_PIECE, -(-n // self.num_threads)))
        if size >= n:
            return self._piece(x)
        chunks = [x[i:i + size] for i in range(0, n, size)]
        pieces = (list(self._pool.map(self._piece, chunks)) if self._pool is not None
                  else [self._piece(c) for c in chunks])
        return [np.concatenate(parts) for parts in zip(*pieces, strict=True)]


class LiteRTRunner(Runner):
    """A ``.tflite`` model through LiteRT's interpreter (``ai-edge-litert``).

    Args:
        path: the ``.tflite`` file (its ``conventions.json`` beside it).
        num_threads: interpreter threads (default
            :func:`utrans.core.machine.default_threads`).
        manifest: the manifest (default: read from beside ``path``).
        batch_size: windows per call suggested to callers (see :class:`Runner`).
    """

    format = "litert"

    def __init__(self, path, num_threads=None, manifest=None, batch_size=None):
        super().__init__(path, manifest, batch_size)
        try:
            from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415 (optional: runtime extra)
        except ImportError as err:
            raise _missing("ai-edge-litert", "Running a LiteRT model") from err
        threads = _threads(num_threads)
        try:
            self._interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
        except ValueError as err:
            raise ExportError(f"{self.path} is not a LiteRT model the interpreter can load: "
                              f"{_first_line(err)}") from err
        signatures = self._interpreter.get_signature_list()
        if len(signatures) != 1:
            raise ManifestError(f"{self.path} has {len(signatures)} signatures "
                                f"({', '.join(signatures)}); an exported utrans model has one.")
        (key, spec), = signatures.items()
        if spec["inputs"] != [self.manifest.input_name] or \
                not set(self.output_names) <= set(spec["outputs"]):
            raise ManifestError(
                f"{manifest_path(self.path)} does not describe {self.path}: the graph has inputs "
                f"{spec['inputs']} and outputs {spec['outputs']}, the manifest input "
                f"{self.manifest.input_name!r} and outputs {list(self.output_names)}")
        self._signature = self._interpreter.get_signature_runner(key)

    def _run(self, x):
        out = self._signature(**{self.manifest.input_name: x})
        return [out[name] for name in self.output_names]


class SavedModelRunner(Runner):
    """A SavedModel directory through TensorFlow (imported when loaded).

    Args:
        path: the SavedModel directory (holding ``conventions.json``).
        manifest: the manifest (default: read from the directory).
        batch_size: windows per call suggested to callers (see :class:`Runner`).
    """

    format = "savedmodel"

    def __init__(self, path, manifest=None, batch_size=None):
        super().__init__(path, manifest, batch_size)
        try:
            import tensorflow as tf  # noqa: PLC0415 (heavy, optional here: only this runner needs it)
        except ImportError as err:
            raise MissingExtraError("Running a SavedModel needs TensorFlow (pip install "
                                    "tensorflow); export the model to ONNX or LiteRT to run it "
                                    "without TensorFlow.") from err
        self._tf = tf
        self._loaded = tf.saved_model.load(str(self.path))
        self._fn = self._loaded.signatures["serving_default"]

    def _run(self, x):
        out = self._fn(**{self.manifest.input_name: self._tf.constant(x)})
        return [out[name].numpy() for name in self.output_names]


_RUNNERS = {r.format: r for r in (OnnxRunner, LiteRTRunner, SavedModelRunner)}


def _read_manifest(path):
    where = manifest_path(path)
    if not where.is_file():
        raise ManifestError(f"{path} has no {MANIFEST_NAME} beside it: expected {where}, "
                            "written by utrans.export.export with the model.")
    manifest = Manifest.read(where)
    expected = "." if path.is_dir() else path.name
    if manifest.file != expected:
        raise ManifestError(f"{where} describes {manifest.file}, not {path.name}: export each "
                            "model into its own folder.")
    return manifest


def is_exported(spec):
    """Whether a model given by a user is an exported one (decided from the path alone).

    Args:
        spec: anything a user names a model with.

    Returns:
        True for a path (``str`` or ``pathlib.Path``) ending in ``.onnx`` or
        ``.tflite``, or naming a folder that holds a ``conventions.json``
        (an export folder or a SavedModel written by :func:`utrans.export.export`).
    """
    if not isinstance(spec, (str, pathlib.Path)):
        return False
    path = pathlib.Path(spec)
    return path.suffix.lower() in EXPORTED_SUFFIXES or (path / MANIFEST_NAME).is_file()


def load_exported(path, batch_size=None, num_threads=None):
    """Open an exported model and its ``conventions.json``.

    Args:
        path: a ``.onnx`` or ``.tflite`` file, a SavedModel directory, or a
            folder written by :func:`utrans.export.export` (its
            ``conventions.json`` names the model file).
        batch_size: windows per call suggested to callers (default: the
            graph's fixed batch size, else 64).
        num_threads: threads of ONNX Runtime or LiteRT (default
            :func:`utrans.core.machine.default_threads`).

    Returns:
        A :class:`Runner`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ManifestError: the ``conventions.json`` is missing or does not
            describe the model; the message names the file.
        MissingExtraError: the format's runtime library is not installed;
            the message says what to install.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Exported model not found: {path}")
    if path.is_dir() and not (path / "saved_model.pb").is_file():
        # A folder written by export(): its manifest names the model file.
        manifest = Manifest.read(path / MANIFEST_NAME)
        if manifest.file in ("", ".") or not (path / manifest.file).is_file():
            raise ManifestError(f"{path / MANIFEST_NAME} names the model file "
                                f"{manifest.file!r}, which is not in {path}.")
        path = path / manifest.file
    if path.is_dir():
        return SavedModelRunner(path, batch_size=batch_size)
    fmt = EXPORTED_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"An exported model is a .onnx file, a .tflite file or a folder "
                         f"written by utrans export. Received: {path}")
    return _RUNNERS[fmt](path, num_threads=num_threads, batch_size=batch_size)
