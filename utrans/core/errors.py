"""The package's errors: one base class, one line each, naming the file, trace or value.

Every error a user can cause derives from :class:`UtransError` (and from the
builtin class it refines, ``ValueError`` or ``OSError``, so existing
``except ValueError`` clauses keep working). The command line prints such an
error as one line and exits 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import pickle

__all__ = [
    "AnnotateWarning",
    "BackupUnusableError",
    "BadTraceError",
    "CatalogError",
    "CatalogWarning",
    "CheckpointMismatchError",
    "ChecksumError",
    "DataError",
    "DataFileError",
    "EvaluationInputError",
    "ExportError",
    "ManifestError",
    "MissingExtraError",
    "ModelInputError",
    "OutputPathError",
    "PresetUnavailableError",
    "SplitCheckError",
    "SplitFileError",
    "StationError",
    "UnsafeCheckpointError",
    "UnsafeSplitError",
    "UtransError",
    "one_line",
]


def one_line(text):
    """Collapse whitespace (newlines of nested errors included) to single spaces."""
    return " ".join(str(text).split())


class UtransError(Exception):
    """Base class of the errors bad input causes; the message says what and how to fix it."""


class AnnotateWarning(UserWarning):
    """A data problem that was worked around (skipped station, filled component, joined traces)."""


# --------------------------------------------------------------------------- data
class DataError(UtransError, ValueError):
    """Base class of the data layer's errors; every one names the file it concerns."""


class BadTraceError(DataError):
    """A trace cannot be used: missing, wrong shape, non-finite or incomplete metadata.

    The message is one line: ``<file>: trace '<id>': <reason>``.

    Args:
        file: path of the file holding the trace.
        trace_id: the trace ID.
        reason: what is wrong, echoing the received value.
    """

    def __init__(self, file, trace_id, reason):
        self.file = str(file)
        self.trace_id = str(trace_id)
        self.reason = one_line(reason)
        super().__init__(f"{self.file}: trace '{self.trace_id}': {self.reason}")

    def __reduce__(self):
        return (type(self), (self.file, self.trace_id, self.reason))


class DataFileError(DataError):
    """A dataset file (HDF5, CSV, split) cannot be read or has the wrong structure.

    The message is one line: ``<file>: <reason>``.

    Args:
        file: path of the file.
        reason: what is wrong, echoing the received value.
    """

    def __init__(self, file, reason):
        self.file = str(file)
        self.reason = one_line(reason)
        super().__init__(f"{self.file}: {self.reason}")

    def __reduce__(self):
        return (type(self), (self.file, self.reason))


class SplitFileError(DataFileError):
    """A split file (``.npy`` of trace IDs) is unreadable, empty or of the wrong type."""


class UnsafeSplitError(SplitFileError):
    """A split file's pickle asks for something other than an array of strings."""


class SplitCheckError(DataError):
    """A split has trace IDs absent from the dataset or traces with unusable metadata.

    Args:
        message: the one-line summary (names the split file and the dataset).
        check: the split check with every problem found.
    """

    def __init__(self, message, check=None):
        super().__init__(message)
        self.check = check


class StationError(UtransError, ValueError):
    """An instrument of a record that cannot be used; the message names the trace(s)."""


class CatalogWarning(UserWarning):
    """Input the event catalogue leaves out (a station without coordinates, ...), named."""


class CatalogError(UtransError, ValueError):
    """Bad input of the event catalogue: a station file, velocity model, setting or time range.

    The message is one line naming the file, station or value.
    """


# --------------------------------------------------------------------------- models and weights
class ModelInputError(UtransError, ValueError):
    """A model, checkpoint or convention option does not fit; the message says how."""


class UnsafeCheckpointError(UtransError, pickle.UnpicklingError):
    """A checkpoint's pickle asks for something other than tensors and plain containers."""


class CheckpointMismatchError(UtransError, ValueError):
    """A checkpoint does not fit the model; ``problems`` lists every mismatch.

    Args:
        message: one-line summary naming the file.
        problems: the individual mismatches.
    """

    def __init__(self, message, problems=()):
        super().__init__(message)
        self.problems = list(problems)


class ChecksumError(UtransError, OSError):
    """A weights file's SHA-256 differs from the preset table."""


class PresetUnavailableError(UtransError, OSError):
    """A preset's weights file is neither cached nor downloadable."""


# --------------------------------------------------------------------------- runs
class OutputPathError(UtransError, ValueError):
    """An output folder or file cannot be created or written; the message names it."""


class BackupUnusableError(UtransError, OSError):
    """No state of a run's backup loads completely; the message says how to start over."""


class EvaluationInputError(UtransError, ValueError):
    """A tester or reader input (model, split, option) does not fit; the message says how."""


# --------------------------------------------------------------------------- export
class ExportError(UtransError, ValueError):
    """A model cannot be exported to a format; the message says why (the op, what to change)."""


class ManifestError(UtransError, ValueError):
    """An exported model's ``conventions.json`` is missing, unreadable or describes another model."""


class MissingExtraError(UtransError, ImportError):
    """An optional dependency (an extra of the package) is not installed.

    The message names the package and the ``pip install`` that brings it.
    """
