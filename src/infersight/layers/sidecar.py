"""What the layer view needs from a Kineto file beyond the trace model: Perfetto's time zero and
the input shapes of the operators that launched kernels.

* **Time zero.** Perfetto shows time relative to the first event of the file. A Kineto file holds
  events the trace model does not keep (the ``PyTorch Profiler`` span, ``python_function`` events),
  and the earliest is usually one of those, so the file's smallest ``ts`` is used (metadata events,
  ``ph: "M"``, carry no time). nsys exports: the earliest event the model holds.
* **Input dims.** A kernel's launch (``cuda_runtime``/``cuda_driver`` event with the same
  ``correlation``) runs inside the innermost ``cpu_op`` on its thread; with ``record_shapes=True``
  that operator carries ``args["Input Dims"]``. Kernels replayed by a CUDA graph have no such operator.

The file is parsed once per command (the trace model's reader does not keep these fields).
"""

from __future__ import annotations

import gzip
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from infersight.ingest.kineto_columns import us_to_ns
from infersight.model import Trace

MAX_DIMS_TEXT = 80
NO_DIMS_REASON = "the trace has no operator input shapes (profile with record_shapes=True)"
GRAPH_REASON = "kernels replayed from a CUDA graph have no launching operator"


@dataclass
class _ThreadOps:
    """cpu_ops of one thread that carry input dims, sorted by start."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


@dataclass
class Sidecar:
    """Perfetto's time zero and a kernel-correlation -> operator-shape lookup for one trace."""

    first_event_ns: int
    first_event_source: str
    launches: dict[int, tuple[int, int, str]] = field(default_factory=dict)  # correlation -> (tid, ts, api)
    ops: dict[int, _ThreadOps] = field(default_factory=dict)

    @property
    def has_dims(self) -> bool:
        return any(ops.labels for ops in self.ops.values())

    def graph_launched(self, correlation: int) -> bool:
        """Whether the kernel was replayed by a CUDA/HIP graph launch."""
        launch = self.launches.get(correlation)
        return launch is not None and "Graph" in launch[2]

    def input_dims(self, correlation: int) -> str | None:
        """``op [dims]`` of the innermost shaped operator around the kernel's launch, or None."""
        launch = self.launches.get(correlation)
        if launch is None or "Graph" in launch[2]:
            return None
        tid, ts, _ = launch
        ops = self.ops.get(tid)
        if ops is None:
            return None
        index = bisect_right(ops.starts, ts) - 1
        while index >= 0:  # innermost = the latest-starting op that still contains the launch
            if ops.ends[index] >= ts:
                return ops.labels[index]
            index -= 1
        return None


def load_sidecar(trace: Trace) -> Sidecar:
    """Read the extra fields from ``trace.source`` (falls back to the model for non-Kineto traces)."""
    model_first = min(
        int(table["start"].min())
        for table in (trace.kernels, trace.memcpy, trace.memset, trace.api, trace.ranges)
        if len(table)
    )
    if trace.format != "kineto":
        return Sidecar(model_first, "the trace's first event")
    try:
        raw = Path(trace.source).read_bytes()
        document = orjson.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    except (OSError, orjson.JSONDecodeError, gzip.BadGzipFile, EOFError):
        return Sidecar(model_first, "the first event infersight reads (the file could not be re-read)")
    events = document.get("traceEvents", []) if isinstance(document, dict) else document
    events = [e for e in events if isinstance(e, dict)]
    stamps = [e["ts"] for e in events if "ts" in e and e.get("ph") != "M"]
    ns, valid = us_to_ns(stamps)
    first = min(int(ns[valid].min()), model_first) if valid.any() else model_first
    sidecar = Sidecar(first, "the file's first event (as Perfetto shows it)")
    _index_launches(sidecar, events)
    return sidecar


def _index_launches(sidecar: Sidecar, events: list[dict[str, Any]]) -> None:
    shaped: list[tuple[int, int, int, str]] = []
    for event in events:
        category = event.get("cat")
        args = event.get("args")
        if not isinstance(args, dict) or event.get("ph") != "X":
            continue
        if category in ("cuda_runtime", "cuda_driver") and "correlation" in args:
            ns, ok = us_to_ns([event.get("ts")])
            if ok[0]:
                sidecar.launches[int(args["correlation"])] = (
                    _int(event.get("tid")),
                    int(ns[0]),
                    str(event["name"]),
                )
        elif category == "cpu_op" and _has_shapes(args.get("Input Dims")):
            ns, ok = us_to_ns([event.get("ts"), event.get("dur")])
            if ok.all():
                label = f"{event.get('name')} {_dims_text(args['Input Dims'])}"
                shaped.append((_int(event.get("tid")), int(ns[0]), int(ns[0] + ns[1]), label))
    for tid, start, end, label in sorted(shaped, key=lambda item: (item[0], item[1])):
        ops = sidecar.ops.setdefault(tid, _ThreadOps())
        ops.starts.append(start)
        ops.ends.append(end)
        ops.labels.append(label)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _has_shapes(dims: Any) -> bool:
    return isinstance(dims, list) and any(isinstance(d, list) and d for d in dims)


def _dims_text(dims: list[Any]) -> str:
    text = ", ".join("x".join(str(n) for n in d) if isinstance(d, list) and d else "-" for d in dims)
    text = f"[{text}]"
    return text if len(text) <= MAX_DIMS_TEXT else text[: MAX_DIMS_TEXT - 1] + "…"
