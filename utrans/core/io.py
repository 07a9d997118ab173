"""Files written so that nothing is ever half-written, and output folders checked before work.

* :func:`atomic_write`: the one way the package writes a file: under a
  temporary name in the same folder, flushed to disk (``fsync``), given the
  permissions ``open`` would give it (``0666 & ~umask``) and renamed over the
  destination. A crash, a full disk or Ctrl-C leaves the old file (or none),
  never a truncated one.
* :func:`write_csv`, :func:`write_json`, :func:`write_text`: the usual
  payloads through :func:`atomic_write`.
* :func:`check_output_dir`: an output folder is a folder (or can be made
  one) and is writable, checked before any computation starts.
* :func:`remove_stale_temporaries`: the debris of a process killed mid-write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pathlib
import tempfile

from utrans.core.errors import OutputPathError

__all__ = [
    "atomic_write",
    "check_output_dir",
    "file_mode",
    "output_dir",
    "remove_stale_temporaries",
    "write_csv",
    "write_json",
    "write_text",
]

logger = logging.getLogger(__name__)

#: Prefix of the temporary files :func:`atomic_write` creates.
TMP_PREFIX = ".tmp-"


def output_dir(output_name):
    """``<output_name>_outputs`` as a Path: the folder a numbered script's run writes to."""
    return pathlib.Path(f"{output_name}_outputs")


def file_mode():
    """The permissions a new file gets from ``open``: ``0o666`` without the process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path):
    """Yield a temporary path beside ``path``; on success it becomes ``path``, atomically.

    The caller writes the temporary file with any writer that takes a path;
    the file is then flushed to disk, given the usual permissions and renamed
    over ``path``. On any error the temporary file is removed and ``path`` is
    left as it was.

    Args:
        path: the final file.

    Yields:
        The temporary ``pathlib.Path`` to write.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix="." + path.name, dir=path.parent)
    os.close(fd)
    tmp = pathlib.Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(text, path):
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return pathlib.Path(path)


def write_json(value, path):
    """Write ``value`` as indented JSON to ``path`` atomically; returns the path."""
    return write_text(json.dumps(value, indent=2) + "\n", path)


def write_csv(frame, path):
    """Write a pandas DataFrame as CSV (no index) to ``path`` atomically; returns the path."""
    with atomic_write(path) as tmp:
        frame.to_csv(tmp, index=False)
    return pathlib.Path(path)


def check_output_dir(path, what="--output"):
    """Make sure ``path`` is (or can become) a writable folder, before any work is done.

    Args:
        path: the output folder.
        what: how the user named it, for the message (an option or a role).

    Returns:
        The folder as a ``pathlib.Path`` (created if missing).

    Raises:
        OutputPathError: ``path`` is a file, cannot be created, or is not writable.
    """
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{what} {path} is a file; give a folder for the outputs.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputPathError(f"{what} {path}: cannot create the folder "
                              f"({err.strerror or err}).") from None
    try:
        with tempfile.NamedTemporaryFile(prefix=TMP_PREFIX, dir=path):
            pass
    except OSError as err:
        raise OutputPathError(f"{what} {path}: the folder is not writable "
                              f"({err.strerror or err}); nothing was computed.") from None
    return path


def remove_stale_temporaries(*folders):
    """Delete the temporary files a killed process left in ``folders``; returns their names."""
    removed = []
    for folder in folders:
        folder = pathlib.Path(folder)
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.is_file() and path.name.startswith(TMP_PREFIX):
                path.unlink(missing_ok=True)
                removed.append(path.name)
    if removed:
        logger.info("Removed %d temporary file(s) left by an interrupted run: %s", len(removed),
                    ", ".join(sorted(removed)))
    return removed
