"""Where per-rank work runs: this process, local worker processes, or a Dask cluster.

``open_executor(name, address)`` turns the CLI/API choice into an :class:`Executor`; the ingest
layer only calls ``executor.map(fn, items)``. Engines: ``local`` (serial, in this process),
``process`` (one process per rank on this machine, the default), ``dask`` (a local Dask cluster,
or an existing one with ``address``).
"""

from __future__ import annotations

from infersight.errors import InputError
from infersight.executors.base import Executor, SerialExecutor
from infersight.executors.processes import ProcessExecutor

__all__ = ["DEFAULT_EXECUTOR", "EXECUTOR_NAMES", "Executor", "open_executor"]

EXECUTOR_NAMES = ("local", "process", "dask")
DEFAULT_EXECUTOR = "process"


def open_executor(name: str | None = None, address: str | None = None) -> Executor:
    """The executor called ``name`` (None: the default); ``address`` joins an existing cluster.

    Raises InputError for an unknown engine, for Ray (named in the roadmap, not implemented:
    Dask covers multi-machine runs with a far smaller install), for an address given to an engine
    that runs on this machine only, and when the engine's package is missing.
    """
    chosen = (name or DEFAULT_EXECUTOR).strip().lower()
    engines = ", ".join(EXECUTOR_NAMES)
    if chosen == "ray":
        raise InputError(
            None, f"--executor ray is not implemented; engines: {engines} (use dask for a cluster)"
        )
    if chosen not in EXECUTOR_NAMES:
        raise InputError(None, f"--executor {name!r} is unknown; engines: {engines}")
    if address is not None and chosen != "dask":
        raise InputError(None, f"--executor-address needs --executor dask (got --executor {chosen})")
    if chosen == "local":
        return SerialExecutor()
    if chosen == "process":
        return ProcessExecutor()
    from infersight.executors.dask_cluster import DaskExecutor

    return DaskExecutor(address)
