"""SavedModel export through Keras's ``ExportArchive``."""

from __future__ import annotations

import keras

from utrans.export.graph import serving_function

__all__ = ["write_savedmodel"]


def write_savedmodel(model, layout, path, batch_size=None):
    """Write the model's serving function as a SavedModel directory.

    The SavedModel has one endpoint, ``serve`` (also its
    ``serving_default`` signature), taking the input by name and returning
    the outputs by name.

    Args:
        model: the ``keras.Model``.
        layout: its :class:`utrans.export.graph.OutputLayout`.
        path: the directory to write.
        batch_size: ``None`` (any batch size) or a fixed batch size.

    Returns:
        ``path``.
    """
    fn, _ = serving_function(model, layout, batch_size=batch_size)
    fn.get_concrete_function()  # traced once here: the archive then reuses this trace
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", fn)
    archive.write_out(str(path), verbose=False)
    return path
