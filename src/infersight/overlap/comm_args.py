"""Collective type, message size and group size of NCCL kernels, from what the trace carries.

The trace model keeps no event ``args``, so this module re-reads a Kineto file for the few
fields PyTorch records about collectives (checked on the real traces in ../shared/data):

* recent PyTorch (2.1+) puts ``Collective name``, ``In msg nelems``, ``Out msg nelems``,
  ``Group size``, ``dtype`` and ``Process Group Ranks`` on the NCCL **kernel** event itself
  (hta_nccl_a100, tracelens_vllm_eager_b200);
* else the ``record_param_comms`` CPU op with the kernel's ``External id`` carries them;
* else (older PyTorch, e.g. the HTA 128-rank job) the ``record_param_comms`` op on the thread
  that launched the kernel (its launch call lies inside the op) has ``Input Dims`` and
  ``Input type``: size = product of the first input's dims × element size, and the enclosing
  ``nccl:<op>`` annotation names the collective (all_to_all runs as SendRecv kernels).

Only NCCL kernels are looked up, so the Python loop is over a few hundred events at most.
nsys exports carry no message sizes (NCCL's NVTX payloads are not decoded): sizes are N/A there.
"""

from __future__ import annotations

import ast
import functools
import gzip
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from infersight.analyses.kernel_names import kernel_name_head
from infersight.ingest.kineto_text import LAYOUTS
from infersight.model import Trace

PROBE_BYTES = 1 << 20  # where the writer's event layout is recognised

# bytes per element of the dtype names PyTorch writes ("dtype" arg; "Input type" C++ names)
DTYPE_BYTES: dict[str, float] = {
    "float": 4,
    "float32": 4,
    "double": 8,
    "float64": 8,
    "half": 2,
    "float16": 2,
    "c10::half": 2,
    "bfloat16": 2,
    "c10::bfloat16": 2,
    "int": 4,
    "int32": 4,
    "long": 8,
    "long int": 8,
    "int64": 8,
    "short": 2,
    "int16": 2,
    "byte": 1,
    "char": 1,
    "unsigned char": 1,
    "signed char": 1,
    "uint8": 1,
    "int8": 1,
    "bool": 1,
    "float8_e4m3fn": 1,
    "c10::float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "c10::float8_e5m2": 1,
    "complexfloat": 8,
    "c10::complex<float>": 8,
}

_CANONICAL: tuple[tuple[str, str], ...] = (
    (r"all_?reduce|cross_device_reduce|one_?shot|two_?shot", "AllReduce"),
    (r"reduce_?scatter", "ReduceScatter"),
    (r"all_?gather", "AllGather"),
    (r"all_?to_?all", "AllToAll"),
    (r"broadcast", "Broadcast"),
    (r"send_?recv|\bsend\b|\brecv\b|^send|^recv|_send|_recv", "SendRecv"),
    (r"reduce", "Reduce"),
)
_NCCL_NAME = re.compile(r"nccl(?:Dev)?Kernel_([A-Za-z]+)(?:_([A-Za-z0-9]+))?(?:_([A-Za-z0-9]+))?")
_ALGORITHMS = ("RING", "TREE", "NVLS", "NVLSTREE", "COLLNET", "COLLNETDIRECT", "COLLNETCHAIN", "PAT")
_PROTOCOLS = ("LL", "LL128", "SIMPLE")


def canonical_collective(name: str) -> str | None:
    """AllReduce / AllGather / ... for a PyTorch collective name or a kernel name."""
    lowered = name.lower()
    for pattern, canonical in _CANONICAL:
        if re.search(pattern, lowered):
            return canonical
    return None


def parse_kernel_name(name: str) -> tuple[str | None, str | None, str | None]:
    """(collective, algorithm, protocol) from an NCCL kernel name, e.g.
    ``ncclDevKernel_AllReduce_Sum_bf16_RING_LL`` -> (AllReduce, RING, LL)."""
    head = kernel_name_head(name)
    match = _NCCL_NAME.search(head)
    parts = re.split(r"[_(]", head)
    algorithm = next((p for p in parts if p.upper() in _ALGORITHMS), None)
    protocol = next((p for p in parts if p.upper() in _PROTOCOLS), None)
    collective = canonical_collective(match.group(1)) if match else canonical_collective(head)
    if match is None and algorithm is None:
        return collective, "custom", None  # not NCCL: vLLM / symmetric-memory / TRT-LLM all-reduce
    return collective, algorithm.upper() if algorithm else None, protocol.upper() if protocol else None


@dataclass(frozen=True)
class CommArgs:
    """Per NCCL kernel correlation id: what the trace says about its collective."""

    collective: str | None
    in_bytes: int | None
    out_bytes: int | None
    group_size: int | None
    source: str  # "kernel args", "record_param_comms", "record_param_comms input dims"


def comm_args(trace: Trace, correlations: Iterable[int]) -> tuple[dict[int, CommArgs], str | None]:
    """Args of the NCCL kernels with these correlation ids, and a reason when none can be read."""
    if trace.format != "kineto":
        return {}, "nsys exports carry no NCCL message sizes (NCCL NVTX payloads are not decoded)"
    wanted = frozenset(int(c) for c in correlations if int(c) >= 0)
    if not wanted:
        return {}, "the communication kernels carry no correlation id"
    path = Path(trace.source)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as exc:
        return {}, f"cannot re-read the trace for collective args: {exc.strerror or exc}"
    found, reason = _read_comm_args(str(path), stamp, wanted)
    return dict(found), reason


@functools.lru_cache(maxsize=32)
def _read_comm_args(
    path: str, _mtime_ns: int, wanted: frozenset[int]
) -> tuple[tuple[tuple[int, CommArgs], ...], str | None]:
    """The args read from the file once per (file version, kernel set): the overlap and
    multi-rank analyses both need them."""
    try:
        events = _events(Path(path))
    except (OSError, ValueError, EOFError) as exc:
        return (), f"cannot re-read the trace for collective args: {exc}"
    found = _lookup(events, set(wanted))
    if not found:
        return (
            (),
            "the trace records no collective sizes (no 'In msg nelems' / record_param_comms input dims)",
        )
    return tuple(found.items()), None


def _events(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    slim = _slim(raw)
    try:
        data = orjson.loads(slim if slim is not None else raw)
    except orjson.JSONDecodeError:
        if slim is None:
            raise
        data = orjson.loads(raw)
    events = data.get("traceEvents", []) if isinstance(data, dict) else data
    return [e for e in events if isinstance(e, dict)]


def _slim(raw: bytes) -> bytes | None:
    """The text with only the events this module reads (kernels, runtime calls, comm ops).

    Python frames and ordinary CPU ops are most of a trace; dropping them before parsing (the
    same event splitting the Kineto reader uses) halves the re-read. None: layout not recognised.
    """
    for layout in LAYOUTS:
        if layout.event_start not in raw[:PROBE_BYTES]:
            continue
        parts = raw.split(layout.event_start)
        middle = parts[1:-1]
        if not all(part.endswith(layout.event_end) for part in middle):
            return None
        always = layout.headers(("X", "kernel"), ("X", "cuda_runtime"), ("X", "cuda_driver"))
        kept = [
            part
            for part in middle
            if part.startswith(always) or b"record_param_comms" in part or b'"nccl:' in part
        ]
        return layout.event_start.join([parts[0], *kept, parts[-1]])
    return None


def _lookup(events: list[dict[str, Any]], wanted: set[int]) -> dict[int, CommArgs]:
    kernels: dict[int, dict[str, Any]] = {}
    launches: dict[int, tuple[Any, float]] = {}
    by_external: dict[Any, dict[str, Any]] = {}
    host_ops: list[tuple[Any, float, float, dict[str, Any], str]] = []  # tid, start, end, args, name
    for event in events:
        cat, args = event.get("cat"), event.get("args")
        if not isinstance(args, dict):
            continue
        name = str(event.get("name", ""))
        if cat == "kernel" and args.get("correlation") in wanted:
            kernels.setdefault(int(args["correlation"]), args)
        elif cat in ("cuda_runtime", "cuda_driver") and args.get("correlation") in wanted:
            launches[int(args["correlation"])] = (event.get("tid"), float(event.get("ts", 0.0)))
        elif name == "record_param_comms" or (cat == "user_annotation" and name.startswith("nccl:")):
            start = float(event.get("ts", 0.0))
            host_ops.append((event.get("tid"), start, start + float(event.get("dur", 0.0)), args, name))
            if name == "record_param_comms" and "External id" in args:
                by_external[args["External id"]] = args
    out: dict[int, CommArgs] = {}
    for correlation, args in kernels.items():
        if "In msg nelems" in args:
            out[correlation] = _from_msg_args(args, "kernel args")
            continue
        op = by_external.get(args.get("External id"))
        if op is not None and "In msg nelems" in op:
            out[correlation] = _from_msg_args(op, "record_param_comms")
            continue
        launch = launches.get(correlation)
        if launch is not None:
            found = _from_enclosing(launch, host_ops)
            if found is not None:
                out[correlation] = found
    return out


def _from_msg_args(args: dict[str, Any], source: str) -> CommArgs:
    size = DTYPE_BYTES.get(str(args.get("dtype", "")).lower())
    in_n, out_n = _int(args.get("In msg nelems")), _int(args.get("Out msg nelems"))
    name = args.get("Collective name")
    return CommArgs(
        collective=canonical_collective(str(name)) if name else None,
        in_bytes=int(in_n * size) if in_n is not None and size else None,
        out_bytes=int(out_n * size) if out_n is not None and size else None,
        group_size=_group_size(args),
        source=source,
    )


def _from_enclosing(
    launch: tuple[Any, float], host_ops: list[tuple[Any, float, float, dict[str, Any], str]]
) -> CommArgs | None:
    """The innermost record_param_comms / nccl:<op> annotation around the launch call."""
    tid, ts = launch
    around = [op for op in host_ops if op[0] == tid and op[1] <= ts <= op[2]]
    if not around:
        return None
    collective = None
    in_bytes = group = None
    for _tid, _start, _end, args, name in sorted(around, key=lambda op: op[1]):
        if name.startswith("nccl:"):
            collective = canonical_collective(name[5:]) or collective
        if name == "record_param_comms":
            if "In msg nelems" in args:
                found = _from_msg_args(args, "record_param_comms")
                return CommArgs(
                    found.collective or collective,
                    found.in_bytes,
                    found.out_bytes,
                    found.group_size,
                    found.source,
                )
            in_bytes = _input_bytes(args) or in_bytes
            group = _group_size(args) or group
    if collective is None and in_bytes is None:
        return None
    return CommArgs(collective, in_bytes, None, group, "record_param_comms input dims")


def _input_bytes(args: dict[str, Any]) -> int | None:
    dims, types = args.get("Input Dims"), args.get("Input type")
    if not isinstance(dims, list) or not dims or not isinstance(dims[0], list) or not dims[0]:
        return None
    if not isinstance(types, list) or not types:
        return None
    size = DTYPE_BYTES.get(str(types[0]).lower())
    if size is None or not all(isinstance(d, int) for d in dims[0]):
        return None
    return int(math.prod(dims[0]) * size)


def _group_size(args: dict[str, Any]) -> int | None:
    size = _int(args.get("Group size"))
    if size:
        return size
    ranks = args.get("Process Group Ranks")
    if isinstance(ranks, str):
        try:
            parsed = ast.literal_eval(ranks)
        except (ValueError, SyntaxError):
            return None
        return len(parsed) if isinstance(parsed, list | tuple) and parsed else None
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and np.isfinite(value):
        return int(value)
    return None
