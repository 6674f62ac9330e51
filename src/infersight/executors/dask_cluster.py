"""Items as tasks on a Dask cluster (``--executor dask``, optional ``--executor-address``).

Why Dask: for hundreds of ranks or a fleet of runs, one machine's cores are not enough; a Dask
cluster spreads the per-rank reads over many machines behind the same ``map`` call, and
``dask[distributed]`` installs in seconds (pure Python, ~2.5 MB) where Ray is hundreds of MB.

Without an address a :class:`distributed.LocalCluster` is started (one single-threaded worker
process per item, at most one per core or ``INFERSIGHT_WORKERS``) and shut down on ``close``.
With an address (``tcp://host:8786``) the existing scheduler is joined; its workers must have
infersight installed and see the trace files at the same paths (a shared filesystem).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from infersight.errors import InputError
from infersight.executors.base import ClosingContext, Item, Result
from infersight.executors.processes import worker_count

if TYPE_CHECKING:
    from distributed import Client

INSTALL_HINT = "pip install 'infersight[dask]'"
CONNECT_TIMEOUT_S = 10


class DaskExecutor(ClosingContext):
    """Submits ``fn`` per item to a Dask scheduler; the client and any local cluster live until close."""

    name = "dask"

    def __init__(self, address: str | None = None) -> None:
        try:
            import distributed  # noqa: F401  (fail now, with the install command, not at first map)
        except ImportError:
            raise InputError(None, f"--executor dask needs Dask distributed: {INSTALL_HINT}") from None
        self.address = address
        self._client: Client | None = None
        self._cluster: Any = None

    def map(self, fn: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
        """One task per item (``pure=False``: never deduplicated), gathered in item order."""
        if not items:
            return []
        client = self._connect(len(items))
        futures = client.map(fn, list(items), pure=False)
        try:
            results: list[Result] = client.gather(futures)
        except ModuleNotFoundError as exc:  # a joined cluster whose workers lack infersight
            raise InputError(
                None, f"the Dask workers at {self.address} cannot import {exc.name}: install infersight there"
            ) from None
        return results

    def close(self) -> None:
        """Disconnect, and shut down the local cluster if this executor started one."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def _connect(self, n_items: int) -> Client:
        if self._client is not None:
            return self._client
        from distributed import Client, LocalCluster

        if self.address is None:
            self._cluster = LocalCluster(
                n_workers=worker_count(n_items),
                threads_per_worker=1,  # the parse holds the GIL: processes, not threads
                processes=True,
                dashboard_address=":0",  # any free port: never collide with another cluster
                silence_logs=logging.ERROR,
            )
            self._client = Client(self._cluster)
            return self._client
        try:
            self._client = Client(self.address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(
                None, f"--executor-address {self.address}: cannot reach the Dask scheduler ({reason})"
            ) from None
        return self._client
