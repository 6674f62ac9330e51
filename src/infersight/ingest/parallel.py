"""Read the per-rank files of a directory through an executor, one file per task.

Each task returns its :class:`Trace` (columnar pandas tables pickle as a few large buffers, cheap
next to the parse). Where tasks run is the executor's business (:mod:`infersight.executors`):
this process, local worker processes (the default, ``INFERSIGHT_WORKERS``), a Dask or a Ray cluster.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from infersight.errors import InputError
from infersight.executors import Executor
from infersight.executors.processes import WORKERS_ENV, ProcessExecutor, worker_count
from infersight.model import Trace

__all__ = ["WORKERS_ENV", "load_files", "worker_count"]

# An InputError travels back as (source, problem): its constructor does not take the pickled args.
_Outcome = tuple[Trace | None, tuple[str | None, str] | None]


def load_files(
    files: list[Path], load_one: Callable[[Path], Trace], executor: Executor | None = None
) -> list[Trace]:
    """``load_one`` on every file, in file order, on ``executor`` (None: local processes).

    The first failing file (in file order) raises its :class:`InputError`, as a serial read would.
    """
    runner = executor if executor is not None else ProcessExecutor()
    outcomes = runner.map(functools.partial(_guarded, load_one), files)
    traces: list[Trace] = []
    for trace, error in outcomes:
        if error is not None:
            raise InputError(error[0], error[1])
        assert trace is not None
        traces.append(trace)
    return traces


def _guarded(load_one: Callable[[Path], Trace], path: Path) -> _Outcome:
    try:
        return load_one(path), None
    except InputError as exc:
        return None, (exc.source, exc.problem)
