"""Where per-rank work runs: this process, local worker processes, a Dask or a Ray cluster.

``open_executor(name, address)`` turns the CLI/API choice into an :class:`Executor`; the ingest
layer only calls ``executor.map(fn, items)``. Engines: ``local`` (serial, in this process),
``process`` (one process per rank on this machine, the default), ``dask`` (a local Dask cluster,
or an existing one with ``address``), ``ray`` (a local Ray runtime, or an existing Ray cluster with
``address``).
"""

from __future__ import annotations

from infersight.errors import InputError
from infersight.executors.base import Executor, SerialExecutor
from infersight.executors.processes import ProcessExecutor

__all__ = ["DEFAULT_EXECUTOR", "EXECUTOR_NAMES", "Executor", "open_executor"]

EXECUTOR_NAMES = ("local", "process", "dask", "ray")
CLUSTER_EXECUTORS = ("dask", "ray")  # the engines that can join an existing cluster by address
DEFAULT_EXECUTOR = "process"


def open_executor(name: str | None = None, address: str | None = None) -> Executor:
    """The executor called ``name`` (None: the default); ``address`` joins an existing cluster.

    Raises InputError for an unknown engine, for an address given to an engine that runs on this
    machine only, and when the engine's package is missing.
    """
    chosen = (name or DEFAULT_EXECUTOR).strip().lower()
    if chosen not in EXECUTOR_NAMES:
        raise InputError(None, f"--executor {name!r} is unknown; engines: {', '.join(EXECUTOR_NAMES)}")
    if address is not None and chosen not in CLUSTER_EXECUTORS:
        raise InputError(None, f"--executor-address needs --executor dask or ray (got --executor {chosen})")
    if chosen == "local":
        return SerialExecutor()
    if chosen == "process":
        return ProcessExecutor()
    if chosen == "ray":
        from infersight.executors.ray_cluster import RayExecutor

        return RayExecutor(address)
    from infersight.executors.dask_cluster import DaskExecutor

    return DaskExecutor(address)
