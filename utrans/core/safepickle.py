"""One allow-list unpickler: pickles that name any global outside a fixed table are refused.

Split files (object arrays of trace IDs) and PyTorch ``.pth`` checkpoints are
pickles. Both are read through :class:`AllowListUnpickler`, so a pickled
``os.system`` (or any other callable) raises before anything runs.
"""

from __future__ import annotations

import pickle

__all__ = ["AllowListUnpickler"]


class AllowListUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds only the globals of ``allowed``.

    Subclasses set ``allowed`` ((module, name) -> object) and ``purpose``
    (what the file holds, said in the message) and override :meth:`refuse`
    to raise their own error; they may override :meth:`find_extra` for
    globals that are looked up by rule rather than by table, and
    :meth:`persistent_load`.

    Args:
        file: the binary file object.
        path: the file's path, named in every error.
    """

    allowed: dict = {}
    purpose = "this file"

    def __init__(self, file, path):
        super().__init__(file)
        self.path = path

    def refuse(self, reason):
        """The error raised for a refused pickle (``reason`` names what was found)."""
        return pickle.UnpicklingError(f"{self.path}: {reason}")

    def find_extra(self, module, name):
        """A global outside the table that is still allowed, or ``None``."""
        return None

    def find_class(self, module, name):
        found = self.allowed.get((module, name)) or self.find_extra(module, name)
        if found is None:
            raise self.refuse(f"refusing to load global {module}.{name}; {self.purpose}")
        return found

    def persistent_load(self, pid):
        raise self.refuse(f"unexpected persistent id in pickle. Received: {pid!r}")
