"""One worker process per item on this machine (``--executor process``, the default).

Parsing a Kineto trace is pure-Python/orjson work that holds the GIL, so ranks only read in
parallel in separate processes. Workers are forked when this process runs a single thread (no
re-import of pandas per worker), else started by a fork server.

``INFERSIGHT_WORKERS`` sets the number of processes (``1``: run in this process, one item after
the other); the default is one per CPU core, at most one per item.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

from infersight.errors import InputError
from infersight.executors.base import ClosingContext, Item, Result

WORKERS_ENV = "INFERSIGHT_WORKERS"


def worker_count(n_items: int) -> int:
    """Processes to use for ``n_items`` items (1 means: no pool)."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    try:
        wanted = int(raw) if raw else (os.cpu_count() or 1)
    except ValueError:
        raise InputError(None, f"{WORKERS_ENV}={raw!r} is not a number of processes") from None
    return max(1, min(wanted, n_items))


class ProcessExecutor(ClosingContext):
    """A process pool per ``map`` call, sized by :func:`worker_count`."""

    name = "process"

    def map(self, fn: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
        """In this process when one worker suffices, else in a fresh pool (closed before returning)."""
        workers = worker_count(len(items))
        if workers == 1:
            return [fn(item) for item in items]
        with ProcessPoolExecutor(max_workers=workers, mp_context=process_context()) as pool:
            return list(pool.map(fn, items))


def process_context() -> multiprocessing.context.BaseContext:
    """fork when this process runs one thread (cheap: nothing re-imported), else forkserver.

    Forking while another thread runs (the CLI's spinner on a terminal) could copy a lock that
    thread holds; the fork server is a clean single-threaded process that has imported the
    readers once, so its workers start fast too.
    """
    if sys.platform != "linux":
        return multiprocessing.get_context("spawn")
    if threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["infersight.ingest"])
    return context
