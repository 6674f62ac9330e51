"""Collective type, message size and group size of NCCL kernels, from what the trace carries.

The Kineto reader keeps the few args PyTorch records about collectives as optional columns of
the model (``comm_*``, ``external_id``; see :data:`infersight.model.trace.COMM_ARG_COLUMNS`),
checked on the real traces in ../shared/data:

* recent PyTorch (2.1+) puts ``Collective name``, ``In msg nelems``, ``Out msg nelems``,
  ``Group size``, ``dtype`` and ``Process Group Ranks`` on the NCCL **kernel** event itself
  (hta_nccl_a100, tracelens_vllm_eager_b200);
* else the ``record_param_comms`` CPU op with the kernel's ``External id`` carries them;
* else (older PyTorch, e.g. the HTA 128-rank job) the ``record_param_comms`` op on the thread
  that launched the kernel (its launch call lies inside the op) has ``Input Dims`` and
  ``Input type``: size = product of the first input's dims × element size, and the enclosing
  ``nccl:<op>`` annotation names the collective (all_to_all runs as SendRecv kernels).

Only the given (NCCL) kernels are looked up, so the Python loop is over a few hundred rows at
most. nsys exports carry no message sizes (NCCL's NVTX payloads are not decoded): sizes are N/A
there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from infersight.analyses.kernel_names import kernel_name_head
from infersight.model import Trace

OPERATOR = "record_param_comms"  # the CPU op PyTorch wraps every collective call in
ANNOTATION_PREFIX = "nccl:"  # user annotations naming the collective: nccl:all_reduce
UNKNOWN = -1  # the model's value of an optional number a row does not carry
NO_SIZES = "the trace records no collective sizes (no 'In msg nelems' / record_param_comms input dims)"

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
    """What the trace says about the collective of one NCCL kernel."""

    collective: str | None
    in_bytes: int | None
    out_bytes: int | None
    group_size: int | None
    source: str  # "kernel args", "record_param_comms", "record_param_comms input dims"


@dataclass(frozen=True)
class _ArgRows:
    """The comm columns of some rows of one table, as plain lists (the rows are few)."""

    collective: list[str]
    dtype: list[str]
    in_nelems: list[int]
    out_nelems: list[int]
    group_size: list[int]
    input_nelems: list[int]
    input_type: list[str]

    @classmethod
    def of(cls, table: pd.DataFrame, rows: np.ndarray) -> _ArgRows:
        def text(column: str) -> list[str]:
            if column not in table.columns:
                return [""] * len(rows)
            return [str(v) for v in table[column].to_numpy()[rows]]

        def number(column: str) -> list[int]:
            if column not in table.columns:
                return [UNKNOWN] * len(rows)
            return [int(v) for v in table[column].to_numpy(np.int64)[rows]]

        return cls(
            text("comm_collective"),
            text("comm_dtype"),
            number("comm_in_nelems"),
            number("comm_out_nelems"),
            number("comm_group_size"),
            number("comm_input_nelems"),
            text("comm_input_type"),
        )

    def msg_args(self, i: int, source: str) -> CommArgs | None:
        """Row ``i``'s ``In msg nelems``-style args (None when it has no ``In msg nelems``)."""
        if self.in_nelems[i] == UNKNOWN:
            return None
        size = DTYPE_BYTES.get(self.dtype[i].lower())
        out_n = self.out_nelems[i]
        return CommArgs(
            collective=canonical_collective(self.collective[i]) if self.collective[i] else None,
            in_bytes=int(self.in_nelems[i] * size) if size else None,
            out_bytes=int(out_n * size) if out_n != UNKNOWN and size else None,
            group_size=self.group(i),
            source=source,
        )

    def group(self, i: int) -> int | None:
        return self.group_size[i] if self.group_size[i] != UNKNOWN else None

    def input_bytes(self, i: int) -> int | None:
        """Bytes of the first input (older PyTorch's record_param_comms), None when unknown."""
        size = DTYPE_BYTES.get(self.input_type[i].lower())
        nelems = self.input_nelems[i]
        return int(nelems * size) if nelems != UNKNOWN and size is not None else None


def comm_args(trace: Trace, rows: np.ndarray) -> tuple[dict[int, CommArgs], str | None]:
    """Args of the kernels at these positions of ``trace.kernels`` (keyed by position), and a
    reason when none can be read."""
    if trace.format != "kineto":
        return {}, "nsys exports carry no NCCL message sizes (NCCL NVTX payloads are not decoded)"
    k = trace.kernels
    rows = np.asarray(rows, dtype=np.int64)
    rows = rows[k["correlation"].to_numpy(np.int64)[rows] >= 0]
    if not len(rows):
        return {}, "the communication kernels carry no correlation id"
    found = _lookup(trace, rows)
    if not found:
        return (
            {},
            "the trace records no collective sizes (no 'In msg nelems' / record_param_comms input dims)",
        )
    return found, None


def _lookup(trace: Trace, rows: np.ndarray) -> dict[int, CommArgs]:
    """Kernel args, else its record_param_comms op's (by External id), else the enclosing ops'."""
    k = trace.kernels
    kernel_args = _ArgRows.of(k, rows)
    by_external = _operators_by_external_id(trace)
    external = (
        k["external_id"].to_numpy(np.int64)[rows]
        if "external_id" in k.columns
        else np.full(len(rows), UNKNOWN)
    )
    enclosing = _EnclosingOps(trace)
    correlation = k["correlation"].to_numpy(np.int64)
    out: dict[int, CommArgs] = {}
    for i, row in enumerate(rows.tolist()):
        found = kernel_args.msg_args(i, "kernel args")
        if found is None and int(external[i]) in by_external:
            found = by_external[int(external[i])]
        if found is None:
            found = enclosing.around_launch(int(correlation[row]))
        if found is not None:
            out[row] = found
    return out


def _operators_by_external_id(trace: Trace) -> dict[int, CommArgs]:
    """The msg args of record_param_comms operators, by their External id (the last one wins)."""
    r = trace.ranges
    if "external_id" not in r.columns or "comm_in_nelems" not in r.columns:
        return {}
    ids = r["external_id"].to_numpy(np.int64)
    rows = np.flatnonzero((ids != UNKNOWN) & _named(r, OPERATOR))
    ops = _ArgRows.of(r, rows)
    out: dict[int, CommArgs] = {}
    for i, external_id in enumerate(ids[rows].tolist()):
        found = ops.msg_args(i, "record_param_comms")
        if found is not None:
            out[external_id] = found
        else:
            out.pop(external_id, None)
    return out


class _EnclosingOps:
    """record_param_comms operators and ``nccl:<op>`` annotations, to find those around a launch."""

    def __init__(self, trace: Trace) -> None:
        r = trace.ranges
        is_operator = _named(r, OPERATOR)
        is_annotation = (r["source"] == "user_annotation").to_numpy() & _named(
            r, ANNOTATION_PREFIX, prefix=True
        )
        rows = np.flatnonzero(is_operator | is_annotation)
        self.thread = r["thread"].to_numpy(np.int64)[rows]
        self.start = r["start"].to_numpy(np.int64)[rows]
        self.end = r["end"].to_numpy(np.int64)[rows]
        self.name = [str(n) for n in r["name"].to_numpy()[rows]]
        self.args = _ArgRows.of(r, rows)
        api = trace.api
        self.api_correlation = api["correlation"].to_numpy(np.int64)
        self.api_thread = api["thread"].to_numpy(np.int64)
        self.api_start = api["start"].to_numpy(np.int64)

    def around_launch(self, correlation: int) -> CommArgs | None:
        """From the innermost record_param_comms / nccl:<op> ops around the kernel's launch."""
        if not len(self.start):
            return None
        calls = np.flatnonzero(self.api_correlation == correlation)
        if not len(calls):
            return None
        call = calls[-1]
        thread, at = self.api_thread[call], self.api_start[call]
        around = np.flatnonzero((self.thread == thread) & (self.start <= at) & (at <= self.end))
        collective = None
        in_bytes = group = None
        for i in around[np.argsort(self.start[around], kind="stable")].tolist():
            name = self.name[i]
            if name.startswith(ANNOTATION_PREFIX):
                collective = canonical_collective(name[len(ANNOTATION_PREFIX) :]) or collective
            if name == OPERATOR:
                found = self.args.msg_args(i, "record_param_comms")
                if found is not None:
                    return CommArgs(
                        found.collective or collective,
                        found.in_bytes,
                        found.out_bytes,
                        found.group_size,
                        found.source,
                    )
                in_bytes = self.args.input_bytes(i) or in_bytes
                group = self.args.group(i) or group
        if collective is None and in_bytes is None:
            return None
        return CommArgs(collective, in_bytes, None, group, "record_param_comms input dims")


def _named(table: pd.DataFrame, name: str, *, prefix: bool = False) -> np.ndarray:
    """Rows whose (categorical) name is ``name`` (or starts with it), tested once per category."""
    names = table["name"].cat
    categories = names.categories.astype(str)
    hit = categories.str.startswith(name) if prefix else categories == name
    codes = names.codes.to_numpy()
    return np.asarray(hit, dtype=bool)[codes] & (codes >= 0)
