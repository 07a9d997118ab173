"""Atomic file writing for the catalogue outputs.

Every file is written to a temporary file in its destination folder, flushed
to disk (``fsync``), then renamed over the destination, so that a reader
sees either the old file or the new one, never half of one. The temporary
file is created with mode ``0o666`` filtered by the process umask, as a plain
``open(path, "w")`` would (``tempfile.mkstemp`` would make it ``0o600``).
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets

__all__ = ["atomic_write", "write_csv", "write_json"]


def _fsync_folder(folder):
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, write):
    """Write ``path`` through a flushed temporary file in its folder, then rename it.

    Args:
        path: destination file; its folder is created if needed.
        write: callable taking the temporary file's path (a ``str``) and
            writing the whole content there.

    Returns:
        The destination as a ``pathlib.Path``.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.part"
    # O_EXCL: never reuse a file someone else made; mode 0o666 & ~umask.
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        write(str(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_folder(path.parent)
    return path


def write_csv(frame, path):
    """Write a DataFrame as CSV (no index), atomically.

    Args:
        frame: ``pandas.DataFrame``; an empty frame still writes its header.
        path: destination file.

    Returns:
        The path.
    """
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def write_json(data, path):
    """Write JSON-serialisable ``data`` (indented, sorted keys), atomically.

    Args:
        data: dict or list.
        path: destination file.

    Returns:
        The path.
    """
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)

    return atomic_write(path, write)
