"""The normalised trace model: columnar tables of one profiled process group (one rank).

Every reader (nsys SQLite, Kineto JSON, ...) returns :class:`Trace` objects whose tables have
exactly the columns and dtypes declared below, so analyses never look at the source format.

Conventions (the contract between ingest and analyses):

* Timestamps ``start``/``end`` are **int64 nanoseconds** on the trace's own clock (nsys: native
  ns; Kineto: ``round(ts_us * 1000)`` and ``end = start + round(dur_us * 1000)``, so durations
  keep their sub-µs precision). ``end >= start`` always holds (readers drop or repair rows that
  break it and say so in ``Trace.notes``).
* ``process`` is the id of the host process that issued the work; it is what makes a
  ``correlation`` id unique (nsys: ``globalPid``, i.e. ``globalTid`` with the low 24 bits
  cleared; Kineto: 0 because one file is one CUPTI session). Join kernels/copies to their
  launching API call on ``(process, correlation)``.
* ``device`` is the GPU index as the profiler reports it (nsys ``deviceId``, Kineto
  ``args.device``/``pid``).
* String columns (``name``, ``domain``, ``kind``, ``source``, ...) are pandas ``category`` so a
  million kernels with a few hundred distinct names cost a few bytes each.
* Unknown integers are ``-1`` (``graph_id``, ``correlation``, ``stream`` ...), unknown sizes 0.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

# column name -> dtype. Order is the column order of every table.
KERNEL_COLUMNS: dict[str, str] = {
    "device": "int32",
    "stream": "int64",
    "start": "int64",
    "end": "int64",
    "name": "category",  # full (demangled) kernel name as the profiler gives it
    "correlation": "int64",
    "process": "int64",
    "graph_id": "int64",  # CUDA graph id (-1: launched eagerly or unknown)
    "grid_x": "int32",
    "grid_y": "int32",
    "grid_z": "int32",
    "block_x": "int32",
    "block_y": "int32",
    "block_z": "int32",
    "registers": "int32",  # registers per thread (0 unknown)
    "shared_mem": "int64",  # static + dynamic shared memory bytes per block (0 unknown)
}

MEMCPY_COLUMNS: dict[str, str] = {
    "device": "int32",
    "stream": "int64",
    "start": "int64",
    "end": "int64",
    "bytes": "int64",
    "kind": "category",  # HtoD, DtoH, DtoD, HtoH, PtoP, other
    "src_kind": "category",  # pageable, pinned, device, managed, array, unknown
    "dst_kind": "category",
    "correlation": "int64",
    "process": "int64",
}

MEMSET_COLUMNS: dict[str, str] = {
    "device": "int32",
    "stream": "int64",
    "start": "int64",
    "end": "int64",
    "bytes": "int64",
    "correlation": "int64",
    "process": "int64",
}

API_COLUMNS: dict[str, str] = {
    "process": "int64",
    "thread": "int64",
    "start": "int64",
    "end": "int64",
    "name": "category",  # version suffix stripped: cudaLaunchKernel_v7000 -> cudaLaunchKernel
    "correlation": "int64",
    "source": "category",  # runtime | driver
}

RANGE_COLUMNS: dict[str, str] = {
    "process": "int64",
    "thread": "int64",
    "start": "int64",
    "end": "int64",
    "name": "category",  # NVTX text / record_function name / operator name
    "domain": "category",  # NVTX domain name ("" for the default domain / Kineto)
    "source": "category",  # nvtx | user_annotation | gpu_user_annotation | cpu_op
    "device": "int32",  # -1 for host ranges; the GPU for gpu_user_annotation
}

# A range table read with compact names (``analyze`` of an nsys export: emit_nvtx gives every
# range its own name) holds each name as its emit_nvtx form plus two numbers instead of one
# string per distinct name (see infersight.model.emit_nvtx). It has no ``name`` column, so code
# that reads ``name`` fails loudly on it instead of taking forms for names; code that groups or
# shows range names reads them through infersight.analyses.range_names.
RANGE_FORM_COLUMN = "name_form"
RANGE_NUMBER_COLUMNS = ("name_seq", "name_op_id")  # one per emit_nvtx field; -1: none
COMPACT_RANGE_COLUMNS: dict[str, str] = {
    **{key: dtype for key, dtype in RANGE_COLUMNS.items() if key != "name"},
    RANGE_FORM_COLUMN: "category",
    **dict.fromkeys(RANGE_NUMBER_COLUMNS, "int64"),
}

TABLE_COLUMNS: dict[str, dict[str, str]] = {
    "kernels": KERNEL_COLUMNS,
    "memcpy": MEMCPY_COLUMNS,
    "memset": MEMSET_COLUMNS,
    "api": API_COLUMNS,
    "ranges": RANGE_COLUMNS,
}

# Optional columns: appended after a table's declared columns, only when the trace records them
# (today: a few Kineto event ``args``), so traces without them pay nothing. Rows that do not carry
# a value hold the "unknown" value: "" for strings, -1 for numbers. Numbers are sparse arrays
# (``Sparse[int64, -1]``): memory grows with the few rows that carry them, not with the table.
SPARSE_INT = "Sparse[int64, -1]"
COMM_ARG_COLUMNS: dict[str, str] = {
    # What PyTorch records about a collective ("Collective name", "dtype", "In msg nelems",
    # "Out msg nelems", "Group size" else the length of "Process Group Ranks"), on NCCL kernels
    # (PyTorch 2.1+) and on ``record_param_comms`` CPU operators; read by infersight.overlap.
    "comm_collective": "category",  # as written, e.g. "allreduce", "_allgather_base"
    "comm_dtype": "category",  # as written, e.g. "BFloat16", "Float"
    "comm_in_nelems": SPARSE_INT,
    "comm_out_nelems": SPARSE_INT,
    "comm_group_size": SPARSE_INT,
    # "External id" of record_param_comms operators, and of kernels sharing one with such an
    # operator (the link from a kernel to its operator's args); -1 elsewhere.
    "external_id": SPARSE_INT,
}
KERNEL_OPTIONAL_COLUMNS: dict[str, str] = dict(COMM_ARG_COLUMNS)
RANGE_OPTIONAL_COLUMNS: dict[str, str] = {
    **COMM_ARG_COLUMNS,
    # record_param_comms operators of older PyTorch record only their inputs: the element count
    # of the first input ("Input Dims"[0] multiplied out) and its type ("Input type"[0]).
    "comm_input_nelems": SPARSE_INT,
    "comm_input_type": "category",
    # cpu_op ranges recorded with record_shapes=True: "Input Dims" as text, "[32x4096, -, 4096]"
    # ("-": a scalar or empty input), cut to 80 characters; read by infersight.layers.
    "input_dims": "category",
}
OPTIONAL_COLUMNS: dict[str, dict[str, str]] = {
    "kernels": KERNEL_OPTIONAL_COLUMNS,
    "ranges": RANGE_OPTIONAL_COLUMNS,
}

TraceFormat = Literal["nsys-sqlite", "kineto"]
DeviceKind = Literal["gpu", "cpu"]


def empty_table(columns: Mapping[str, str]) -> pd.DataFrame:
    """A zero-row table with the declared columns and dtypes.

    A copy of a template built once per schema: building one costs 3-4 ms of pandas dtype
    work, a copy 0.05 ms, and every :class:`Trace` starts with five (the readers fill them in).
    """
    return _empty_template(tuple(columns.items())).copy()


@functools.cache
def _empty_template(columns: tuple[tuple[str, str], ...]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in columns})


def factorize_names(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(int64 code of each name, the distinct names in order of first appearance), as ``pd.factorize``.

    Readers and analyses code millions of range names (several NVTX ranges per kernel; with
    ``emit_nvtx`` nearly every one distinct). A dict does it ~2x faster than ``pd.factorize``
    on an object array of freshly built strings (0.25 vs 0.54 s per million NVTX texts), and
    far faster than sorting them (4.3 s for 4.7M emit_nvtx names).
    """
    first_code: dict[str, int] = {}
    codes = code_names(first_code, names)
    return codes, names_by_code(first_code)


def code_names(code_of_name: dict[str, int], names: Sequence[str]) -> np.ndarray:
    """The int64 code of each name in ``code_of_name``; a name not in it gets the next code.

    The dict keeps its insertion order, so its keys are the names by code
    (:func:`names_by_code`). Used to code names that arrive in pieces (the rowid slices of a
    table) into one numbering.
    """
    code_of = code_of_name.setdefault
    return np.fromiter((code_of(name, len(code_of_name)) for name in names), dtype=np.int64, count=len(names))


def names_by_code(code_of_name: dict[str, int]) -> np.ndarray:
    """The names of a :func:`code_names` dict as an object array, indexed by their code.

    (``np.array`` of the list would try to make a fixed-width string array of them.)
    """
    names = np.empty(len(code_of_name), dtype=object)
    names[:] = list(code_of_name)
    return names


def union_names(parts: list[pd.Categorical]) -> pd.Categorical:
    """One Categorical of several traces' name columns (categories in order of first appearance).

    Readers build name categories of different dtypes (pandas' ``str`` from Kineto JSON,
    ``object`` from SQLite), which ``union_categoricals`` refuses to mix; mixed parts are moved
    to ``object`` categories first (only the categories are copied, never the row codes).
    """
    if len(parts) == 1:
        return parts[0]
    if len({part.categories.dtype for part in parts}) > 1:
        parts = [
            pd.Categorical.from_codes(part.codes, categories=pd.Index(part.categories, dtype=object))
            for part in parts
        ]
    return union_categoricals(parts)


def make_table(columns: Mapping[str, str], data: Mapping[str, Any], table: str = "") -> pd.DataFrame:
    """Build a table from column arrays, casting to the declared dtypes.

    Missing columns are filled with the "unknown" value (-1 for ids, 0 for sizes, "" for
    strings) so readers only pass what their format has. Extra keys are an error: the schema is
    the contract.
    """
    extra = set(data) - set(columns)
    if extra:
        raise ValueError(f"{table or 'table'}: columns not in the model schema: {sorted(extra)}")
    lengths = {len(v) for v in data.values()}
    if len(lengths) > 1:
        raise ValueError(f"{table or 'table'}: columns of different lengths {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    out: dict[str, pd.Series] = {}
    for name, dtype in columns.items():
        if name in data:
            values = data[name]
            if dtype == "category":
                out[name] = (
                    pd.Series(values, dtype="category")
                    if not isinstance(values, pd.Categorical)
                    else pd.Series(values)
                )
            else:
                # no copy here (pandas 3 copies an array into a Series by default): the frame
                # below copies the columns into its blocks anyway
                out[name] = pd.Series(np.asarray(values).astype(dtype, copy=False), copy=False)
        elif dtype == "category":
            out[name] = pd.Series(pd.Categorical([""] * n))
        else:
            fill = 0 if name in _ZERO_DEFAULT else -1
            out[name] = pd.Series(np.full(n, fill, dtype=dtype))
    return pd.DataFrame(out)


_ZERO_DEFAULT = {
    "grid_x",
    "grid_y",
    "grid_z",
    "block_x",
    "block_y",
    "block_z",
    "registers",
    "shared_mem",
    "bytes",
}


@dataclass
class GpuInfo:
    """What the trace says about one device (fields the trace lacks are None)."""

    device: int
    name: str | None = None
    sm_count: int | None = None
    memory_bytes: int | None = None
    compute_capability: str | None = None  # "9.0"
    clock_khz: int | None = None
    memory_bandwidth_bytes_per_s: float | None = None  # as reported by the trace, if at all
    kind: DeviceKind = "gpu"


@dataclass
class Trace:
    """One profiled rank (one Kineto file, or one nsys export) as columnar tables.

    ``notes`` collects what the reader had to repair or could not read (e.g. "no NVTX_EVENTS
    table: NVTX ranges not recorded"), so reports can say why a metric is not applicable.
    """

    source: str
    format: TraceFormat
    kernels: pd.DataFrame = field(default_factory=lambda: empty_table(KERNEL_COLUMNS))
    memcpy: pd.DataFrame = field(default_factory=lambda: empty_table(MEMCPY_COLUMNS))
    memset: pd.DataFrame = field(default_factory=lambda: empty_table(MEMSET_COLUMNS))
    api: pd.DataFrame = field(default_factory=lambda: empty_table(API_COLUMNS))
    ranges: pd.DataFrame = field(default_factory=lambda: empty_table(RANGE_COLUMNS))
    gpus: dict[int, GpuInfo] = field(default_factory=dict)
    rank: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    device_kind: DeviceKind = "gpu"  # "cpu": a CPU-only capture whose dominant operators stand in for kernels
    # Kineto: the smallest ``ts`` of the file's timed events (ns, on the tables' clock), which is
    # where Perfetto puts time zero; it is often an event the tables do not keep (the "PyTorch
    # Profiler" span). None: not recorded (nsys, hand-built traces): use the tables' first start.
    first_event_ns: int | None = None

    def table(self, name: str) -> pd.DataFrame:
        """A table by name (``kernels``, ``memcpy``, ``memset``, ``api``, ``ranges``)."""
        if name not in TABLE_COLUMNS:
            raise KeyError(name)
        frame: pd.DataFrame = getattr(self, name)
        return frame

    def label(self) -> str:
        """Short human label: the rank when known, else the file name."""
        from pathlib import Path

        return f"rank {self.rank}" if self.rank is not None else Path(self.source).name

    def check_schema(self) -> None:
        """Raise ValueError if a table deviates from the declared columns/dtypes (reader bug).

        Optional columns (:data:`OPTIONAL_COLUMNS`) may follow the declared ones, with their dtypes.
        """
        for name, declared in TABLE_COLUMNS.items():
            frame = self.table(name)
            if name == "ranges" and RANGE_FORM_COLUMN in frame.columns:
                declared = COMPACT_RANGE_COLUMNS
            extra = [str(c) for c in frame.columns[len(declared) :]]
            optional = OPTIONAL_COLUMNS.get(name, {})
            columns = {**declared, **{c: optional[c] for c in extra if c in optional}}
            if list(frame.columns) != list(columns):
                raise ValueError(f"{name}: columns {list(frame.columns)} != {list(declared)} (+ optional)")
            for col, dtype in columns.items():
                actual = str(frame[col].dtype)
                if actual != dtype:
                    raise ValueError(f"{name}.{col}: dtype {actual} != {dtype}")
            if len(frame) and bool((frame["end"] < frame["start"]).any()):
                raise ValueError(f"{name}: rows with end < start")
