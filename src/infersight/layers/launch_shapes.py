"""What the layer view takes from the trace model beyond kernels: Perfetto's time zero and the input
shapes of the operators that launched kernels.

* **Time zero.** Perfetto shows time relative to the first event of the file. A Kineto file holds
  events the tables do not keep (the ``PyTorch Profiler`` span), so the reader records the file's
  first event time (``Trace.first_event_ns``); nsys exports and hand-built traces: the earliest
  event the tables hold.
* **Input dims.** A kernel's launch (the API row with the same ``correlation``) runs inside the
  innermost ``cpu_op`` range on its thread; with ``record_shapes=True`` that operator carries
  ``Input Dims``, which the Kineto reader keeps as the ranges' optional ``input_dims`` column.
  Kernels replayed by a CUDA graph have no such operator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from infersight.model import Trace

NO_DIMS_REASON = "the trace has no operator input shapes (profile with record_shapes=True)"
GRAPH_REASON = "kernels replayed from a CUDA graph have no launching operator"
UNKNOWN_CORRELATION = -1


def perfetto_origin(trace: Trace) -> int:
    """Perfetto's time zero in the tables' ns: the file's first event when the reader recorded it."""
    model_first = min(
        int(table["start"].min())
        for table in (trace.kernels, trace.memcpy, trace.memset, trace.api, trace.ranges)
        if len(table)
    )
    return model_first if trace.first_event_ns is None else min(trace.first_event_ns, model_first)


@dataclass(frozen=True)
class _ShapedOps:
    """``cpu_op`` ranges that carry input dims, sorted by (thread, start), file order on ties."""

    thread: np.ndarray
    start: np.ndarray
    end: np.ndarray
    name_code: np.ndarray  # codes into names / dims: labels are made for the few ops looked up
    dims_code: np.ndarray
    names: list[str]
    dims: list[str]

    def label(self, index: int) -> str:
        """``op [dims]`` of the op at ``index``."""
        return f"{self.names[self.name_code[index]]} {self.dims[self.dims_code[index]]}"


class LaunchShapes:
    """Kernel correlation -> launch call and the shape of the operator around it, for one trace."""

    def __init__(self, trace: Trace) -> None:
        api = trace.api
        correlation = api["correlation"].to_numpy(np.int64)
        self._order = np.argsort(correlation, kind="stable")  # equal ids keep time order: last = latest
        self._correlation = correlation[self._order]
        self._thread = api["thread"].to_numpy(np.int64)[self._order]
        self._start = api["start"].to_numpy(np.int64)[self._order]
        graph_names = api["name"].cat.categories.astype(str).str.contains("Graph", regex=False)
        codes = api["name"].cat.codes.to_numpy()[self._order]
        self._graph = np.asarray(graph_names, dtype=bool)[codes] & (codes >= 0)
        self._ops = _shaped_ops(trace)

    @property
    def has_dims(self) -> bool:
        return len(self._ops.start) > 0

    def _launch(self, correlation: int) -> int | None:
        """Position (in correlation order) of the kernel's launch call: the latest of its id."""
        if correlation == UNKNOWN_CORRELATION:
            return None
        at = int(np.searchsorted(self._correlation, correlation, side="right")) - 1
        return at if at >= 0 and self._correlation[at] == correlation else None

    def graph_launched(self, correlation: int) -> bool:
        """Whether the kernel was replayed by a CUDA/HIP graph launch."""
        launch = self._launch(correlation)
        return launch is not None and bool(self._graph[launch])

    def input_dims(self, correlation: int) -> str | None:
        """``op [dims]`` of the innermost shaped operator around the kernel's launch, or None."""
        launch = self._launch(correlation)
        if launch is None or self._graph[launch]:
            return None
        thread, at = self._thread[launch], self._start[launch]
        ops = self._ops
        first = int(np.searchsorted(ops.thread, thread, side="left"))
        last = int(np.searchsorted(ops.thread, thread, side="right"))
        index = first + int(np.searchsorted(ops.start[first:last], at, side="right")) - 1
        while index >= first:  # innermost = the latest-starting op that still contains the launch
            if ops.end[index] >= at:
                return ops.label(index)
            index -= 1
        return None


def _shaped_ops(trace: Trace) -> _ShapedOps:
    r = trace.ranges
    if "input_dims" not in r.columns:
        empty = np.empty(0, dtype=np.int64)
        return _ShapedOps(empty, empty, empty, empty, empty, [], [])
    dims = r["input_dims"].cat
    dims_codes = dims.codes.to_numpy()
    no_dims = [i for i, text in enumerate(dims.categories.astype(str)) if not text]
    has_dims = (dims_codes >= 0) & ~np.isin(dims_codes, no_dims)
    shaped = np.flatnonzero((r["source"] == "cpu_op").to_numpy() & has_dims)
    thread = r["thread"].to_numpy(np.int64)[shaped]
    start = r["start"].to_numpy(np.int64)[shaped]
    order = np.lexsort((start, thread))  # stable: ties keep the table's (file) order
    rows = shaped[order]
    names = r["name"].cat
    return _ShapedOps(
        thread=thread[order],
        start=start[order],
        end=r["end"].to_numpy(np.int64)[rows],
        name_code=names.codes.to_numpy()[rows],
        dims_code=dims_codes[rows],
        names=[str(n) for n in names.categories],
        dims=[str(d) for d in dims.categories],
    )
