"""What this process may use of the machine."""

from __future__ import annotations

import os

__all__ = ["default_threads", "set_default_threads", "usable_cores"]

_CHOSEN = [None]  # set_default_threads


def usable_cores():
    """CPU cores this process may use (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_default_threads(threads):
    """Make ``threads`` the answer of :func:`default_threads` in this process (``None``: unset).

    The command line's ``--threads`` sets it before it opens a model.
    """
    if threads is not None and (isinstance(threads, bool) or int(threads) != threads
                                or threads < 1):
        raise ValueError(f"threads must be a positive integer. Received: {threads!r}")
    _CHOSEN[0] = None if threads is None else int(threads)


def default_threads():
    """Threads a runtime should use when not told.

    :func:`set_default_threads` if it was called, else ``OMP_NUM_THREADS`` if
    set, else the usable cores.

    The parallel annotate workers (:mod:`utrans.annotate.network`) set
    ``OMP_NUM_THREADS`` to their share of the cores.
    """
    if _CHOSEN[0] is not None:
        return _CHOSEN[0]
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return usable_cores()
