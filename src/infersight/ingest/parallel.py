"""Read the per-rank files of a directory in worker processes, one file per task.

Parsing a Kineto trace is pure-Python/orjson work that holds the GIL, so ranks only read in
parallel in separate processes. Each worker returns its :class:`Trace` (columnar pandas tables
pickle as a few large buffers, cheap next to the parse). Workers are forked when this process
runs a single thread (no re-import of pandas per worker), else started by a fork server.

``INFERSIGHT_WORKERS`` sets the number of processes (``1``: read in this process, one file
after the other); the default is one per CPU core, at most one per file.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from infersight.errors import InputError
from infersight.model import Trace

WORKERS_ENV = "INFERSIGHT_WORKERS"
# An InputError travels back as (source, problem): its constructor does not take the pickled args.
_Outcome = tuple[Trace | None, tuple[str | None, str] | None]


def worker_count(n_files: int) -> int:
    """Processes to use for ``n_files`` files (1 means: no pool)."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    try:
        wanted = int(raw) if raw else (os.cpu_count() or 1)
    except ValueError:
        raise InputError(None, f"{WORKERS_ENV}={raw!r} is not a number of processes") from None
    return max(1, min(wanted, n_files))


def load_files(files: list[Path], load_one: Callable[[Path], Trace]) -> list[Trace]:
    """``load_one`` on every file, in file order; in a process pool when more than one worker.

    The first failing file (in file order) raises its :class:`InputError`, as a serial read would.
    """
    workers = worker_count(len(files))
    if workers == 1:
        return [load_one(f) for f in files]
    with ProcessPoolExecutor(max_workers=workers, mp_context=_context()) as pool:
        outcomes = list(pool.map(_guarded, [load_one] * len(files), files))
    traces: list[Trace] = []
    for trace, error in outcomes:
        if error is not None:
            raise InputError(error[0], error[1])
        assert trace is not None
        traces.append(trace)
    return traces


def _context() -> multiprocessing.context.BaseContext:
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


def _guarded(load_one: Callable[[Path], Trace], path: Path) -> _Outcome:
    try:
        return load_one(path), None
    except InputError as exc:
        return None, (exc.source, exc.problem)
