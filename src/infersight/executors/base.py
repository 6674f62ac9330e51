"""The executor contract: ``map(fn, items)`` -> results in item order, plus ``close()``.

Why a protocol of our own rather than ``concurrent.futures.Executor``: a distributed engine
(Dask) has its own futures and lifecycle (a cluster to start or join); the ingest layer needs only
"run this picklable function on every item and give me the results in order", so every engine is
wrapped to exactly that. Functions must be picklable by reference (module-level functions or
``functools.partial`` of them) and must not raise for bad input: they return their error as data
(see :mod:`infersight.ingest.parallel`), because an exception's pickled form loses its arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Protocol, Self, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Executor(Protocol):
    """Runs one function over many items; where it runs (this process, a pool, a cluster) varies."""

    name: str

    def map(self, fn: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
        """``[fn(item) for item in items]``, possibly concurrently, always in item order."""
        ...

    def close(self) -> None:
        """Release what the executor started (processes, a local cluster); idempotent."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class ClosingContext:
    """``with executor:`` closes it on exit; shared by every implementation."""

    def close(self) -> None:
        """Nothing to release by default."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SerialExecutor(ClosingContext):
    """Every item in this process, one after the other (``--executor local``)."""

    name = "local"

    def map(self, fn: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
        """Plain list comprehension: the reference every other executor must agree with."""
        return [fn(item) for item in items]
