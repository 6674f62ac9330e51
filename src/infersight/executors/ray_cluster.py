"""Items as tasks on a Ray cluster (``--executor ray``, optional ``--executor-address``).

Why Ray next to Dask: many GPU fleets already run a Ray cluster (vLLM, Ray Serve, Ray Train), so
reading hundreds of per-rank files there needs no second scheduler. Each item is one Ray task
(``num_cpus=1``) and results are fetched in item order.

Without an address a small local Ray runtime is started for this executor (one CPU slot per item,
at most one per core or ``INFERSIGHT_WORKERS``; no dashboard; a modest object store) and shut down
on ``close``. With an address (``auto``, ``host:6379``, or ``ray://host:10001`` with
``ray[client]``) the existing cluster is joined; its workers must have infersight installed and see
the trace files at the same paths; a cluster with token authentication (Ray's default for clusters
that ``ray.init`` starts) is joined only with ``RAY_AUTH_MODE=token`` and its token in this process.
A process already connected to Ray (the caller ran ``ray.init``) keeps its connection: the
executor uses it and leaves it open.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from infersight.errors import InputError
from infersight.executors.base import ClosingContext, Item, Result
from infersight.executors.processes import worker_count

INSTALL_HINT = "pip install 'infersight[ray]'"
CONNECT_TIMEOUT_S = 10
# Task results (pickled Traces) pass through the object store; past this they spill to disk, slower
# but correct. Ray's default is 30% of RAM; a fixed 1 GiB keeps a local runtime small on a shared machine.
LOCAL_OBJECT_STORE_BYTES = 1 << 30
# Ray (2.60 here) sends its token to an explicit address only with RAY_AUTH_MODE=token; a cluster that
# ray.init started enables token auth by default, its token in the head's ~/.ray/auth_token.
AUTH_HINT = "set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or ~/.ray/auth_token) to the cluster's token"
_MISSING_MODULE = re.compile(r"No module named '([^']+)'")


class RayExecutor(ClosingContext):
    """Runs ``fn`` per item as a Ray task; the connection (and any local runtime) lives until close."""

    name = "ray"

    def __init__(self, address: str | None = None) -> None:
        try:
            import ray  # noqa: F401  (fail now, with the install command, not at first map)
        except ImportError:
            raise InputError(None, f"--executor ray needs Ray: {INSTALL_HINT}") from None
        self.address = address
        self._connected = False
        self._owns_connection = False  # this executor called ray.init, so close() calls ray.shutdown
        self._task: Any = None

    def map(self, fn: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
        """One task per item, fetched in item order; ``fn`` is serialised once and shared by all tasks."""
        if not items:
            return []
        import ray

        self._connect(len(items))
        shared_fn = ray.put(fn)
        refs = [self._task.remote(shared_fn, item) for item in items]
        try:
            results: list[Result] = ray.get(refs)
        except ray.exceptions.RayError as exc:  # a joined cluster whose workers lack a module
            missing = _MISSING_MODULE.search(str(exc))
            if missing is None:
                raise
            where = f"at {self.address}" if self.address is not None else "of the local Ray runtime"
            raise InputError(
                None, f"the Ray workers {where} cannot import {missing.group(1)}: install infersight there"
            ) from None
        return results

    def close(self) -> None:
        """Disconnect, which also stops the local runtime, if this executor opened the connection."""
        if self._owns_connection:
            import ray

            ray.shutdown()
        self._connected = self._owns_connection = False
        self._task = None

    def _connect(self, n_items: int) -> None:
        if self._connected:
            return
        import ray

        if not ray.is_initialized():
            if self.address is None:
                ray.init(
                    num_cpus=worker_count(n_items),
                    include_dashboard=False,
                    log_to_driver=False,  # tasks return errors as data; worker output is noise here
                    logging_level=logging.ERROR,
                    object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                )
            else:
                self._join(self.address)
            self._owns_connection = True
        self._task = ray.remote(num_cpus=1)(_apply)
        self._connected = True

    def _join(self, address: str) -> None:
        """``ray.init(address)``, after a TCP probe: Ray itself retries an unreachable GCS for minutes."""
        import ray

        _probe(address)
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, TimeoutError, ValueError, RuntimeError, ray.exceptions.RayError) as exc:
            problem = f"cannot join the Ray cluster ({_first_line(exc)})"
            if _rejected_token(exc):
                problem += f"; it rejected this process's token: {AUTH_HINT}"
            raise InputError(None, f"--executor-address {address}: {problem}") from None


def _apply(fn: Callable[[Item], Result], item: Item) -> Result:
    """The Ray task body: module level so workers import it by reference (``ray.remote`` needs a function)."""
    return fn(item)


def _probe(address: str) -> None:
    """A TCP connect to ``host:port`` (``ray://host:port``) within CONNECT_TIMEOUT_S; ``auto`` is Ray's."""
    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number
        host = port = None
    if not host or port is None:
        raise InputError(None, f"--executor-address {address}: expected host:port, ray://host:port or auto")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        problem = f"cannot reach the Ray cluster ({_first_line(exc)})"
        raise InputError(None, f"--executor-address {address}: {problem}") from None


def _rejected_token(exc: BaseException) -> bool:
    """Whether Ray's failure (or one it was raised from) is the cluster refusing our auth token."""
    cause: BaseException | None = exc
    while cause is not None:
        if "InvalidAuthToken" in str(cause) or "Unauthenticated" in str(cause):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
