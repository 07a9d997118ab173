"""utrans: seismic deep learning in Keras 3.

U-Trans foundation model and its downstream models, the Seismogram
Transformer (SeisT) and published baselines, applied through one pipeline per
model (:class:`utrans.pipeline.Pipeline`) by training, testing, annotate,
characterise and export alike.

The main entry points are imported on first use::

    import utrans
    model = utrans.load_model("seist_m_dpk_diting")      # preset, name, .keras, ...
    utrans.classify(model, obspy.read()).picks
    utrans.export(model, "onnx", "out/seist_m_dpk")       # + conventions.json; runs without TF
    utrans.catalog("sds", "stations.xml", "2025-03-05", "2025-03-06", "seist_m_dpk_diting")

``import utrans`` itself is light (the command line answers ``--help`` without
loading TensorFlow). It registers every utrans Keras class with Keras as soon
as Keras is imported, before or after ``import utrans``, so that
``keras.saving.load_model("best.keras")`` works after ``import utrans``.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.3.0"

# Public names -> the module that defines them (imported on first access).
_EXPORTS = {
    "Conventions": "utrans.core.conventions",
    "Pipeline": "utrans.pipeline",
    "annotate": "utrans.annotate",
    "catalog": "utrans.catalog",  # the package itself: callable, utrans.catalog(...)
    "characterize": "utrans.annotate",
    "classify": "utrans.annotate",
    "export": "utrans.export",
    "fit": "utrans.train",
    "get_conventions": "utrans.loading",
    "load_model": "utrans.loading",
    "read": "utrans.evaluate",
    "test": "utrans.evaluate",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(_EXPORTS[name])
        value = module if module.__name__ == f"{__name__}.{name}" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


def _register_keras_classes():
    """Import :mod:`utrans.models`, which registers every utrans Keras class with Keras."""
    importlib.import_module("utrans.models")


class _AfterKerasImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Registers the utrans Keras classes right after Keras itself has been imported.

    Found once, for the module ``keras``: it hands the import to the finders
    behind it and, when Keras has loaded, imports :mod:`utrans.models`. The
    layering of the package guarantees this is safe: utrans modules import
    Keras only in the models layer and above, and :mod:`utrans.models`
    imports nothing above itself.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        self._loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _register_keras_classes()

    def __getattr__(self, name):
        # Everything else a loader offers (resources, source) is the real loader's.
        if name == "_loader":
            raise AttributeError(name)
        return getattr(self._loader, name)


if "keras" in sys.modules:
    _register_keras_classes()
elif not any(isinstance(f, _AfterKerasImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _AfterKerasImport())
