"""Kineto event buckets -> the model's tables (kernels, memcpy, memset, api, ranges).

Field mapping (what Kineto writes -> model column):

* ``kernel``: device = ``args.device`` else ``pid``; stream = ``args.stream`` else ``tid``;
  correlation = ``args.correlation``; grid/block from ``args.grid``/``args.block``;
  ``registers per thread``; ``shared memory``. Kineto records no CUDA graph id, so graph_id is -1
  (graph-launched kernels carry the correlation id of their ``cudaGraphLaunch``).
* ``gpu_memcpy``/``gpu_memset``: direction and memory kinds come from the event name
  ("Memcpy HtoD (Pageable -> Device)"), falling back to ``args.kind`` (ROCm); bytes = ``args.bytes``.
* ``cuda_runtime``/``cuda_driver`` (also HIP calls on ROCm): name without a ``_vNNNN`` suffix.
* ``user_annotation``/``gpu_user_annotation``/``cpu_op``: ranges; GPU annotations keep their
  device (``pid``) and stream (``tid``).
* Optional columns (:mod:`infersight.ingest.kineto_args`): collective args on NCCL kernels and
  ``record_param_comms`` operators, ``Input Dims`` of operators, present only when recorded.

``process`` is 0 everywhere: one Kineto file is one CUPTI session, so correlation ids are unique.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from infersight.ingest.kineto_args import (
    Columns,
    input_dims_part,
    kernel_comm_columns,
    kernel_comm_part,
    known_columns,
    model_column,
    operator_comm_columns,
    spread,
    unknown_column,
)
from infersight.ingest.kineto_columns import (
    EventBatch,
    arg_ints,
    dims,
    dominant_mask,
    int_column,
    map_categories,
    names,
    values,
)
from infersight.model.trace import (
    API_COLUMNS,
    KERNEL_COLUMNS,
    KERNEL_OPTIONAL_COLUMNS,
    MEMCPY_COLUMNS,
    MEMSET_COLUMNS,
    RANGE_COLUMNS,
    RANGE_OPTIONAL_COLUMNS,
    empty_table,
    make_table,
)

RANGE_SOURCES = ("user_annotation", "gpu_user_annotation", "cpu_op")
API_SOURCES = {"cuda_runtime": "runtime", "cuda_driver": "driver"}

_VERSION_SUFFIX = re.compile(r"_v\d{4,}$")  # cudaLaunchKernel_v7000; keeps real names like ..._v2
_MEMCPY_NAME = re.compile(r"Memcpy\s+(\w+)\s*\(\s*(\w+)\s*->\s*(\w+)\s*\)")
_COPY_KINDS = {"HtoD", "DtoH", "DtoD", "HtoH", "PtoP"}
_MEMORY_KINDS = {
    "pageable": "pageable",
    "pinned": "pinned",
    "device": "device",
    "managed": "managed",
    "unified": "managed",
    "array": "array",
}


def _sorted(
    frame: pd.DataFrame, optional: Columns | None = None, declared: dict[str, str] | None = None
) -> pd.DataFrame:
    """Rows in time order (stable), so every consumer sees the same deterministic table.

    ``optional`` columns (as built, same rows as ``frame``) are sorted along and appended in the
    ``declared`` order, in their model dtypes (sorting sparse columns would cost more).
    """
    order = None
    if len(frame) >= 2:
        order = np.argsort(frame["start"].to_numpy(), kind="stable")
        frame = frame.iloc[order].reset_index(drop=True)
    if not optional or declared is None:
        return frame
    extra = {name: model_column(optional[name], order) for name in declared if name in optional}
    return pd.concat([frame, pd.DataFrame(extra, index=frame.index)], axis=1)


def batch_devices(batch: EventBatch, args: list[Any]) -> np.ndarray:
    """Device per GPU event: ``args.device`` else ``pid`` (checked by the reader when it can)."""
    return batch.device if batch.device is not None else arg_ints(args, "device", batch.field("pid"))


@dataclass
class Part:
    """One chunk's rows of one table, before concatenation and sorting (see :mod:`kineto_stream`).

    ``columns``: the declared columns in file order; ``optional``: optional columns as built
    (full length, unknown where a row has none; columns no row of the chunk holds may be absent).
    """

    columns: dict[str, Any]
    optional: Columns = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.columns["start"])


def concat_columns(columns: list[dict[str, Any]]) -> dict[str, Any]:
    """Column-wise concatenation of same-keyed column dicts (categoricals re-unified, sorted).

    ``union_categoricals`` with sorted categories gives what ``pd.Categorical`` of all the values
    at once gives, so a table built from chunks equals the one built from the whole file.
    """
    if len(columns) == 1:
        return columns[0]
    out: dict[str, Any] = {}
    for name in columns[0]:
        parts = [c[name] for c in columns]
        if isinstance(parts[0], pd.Categorical):
            out[name] = union_categoricals(parts, sort_categories=True)
        else:
            out[name] = np.concatenate(parts)
    return out


def concat_optional(parts: list[Part]) -> Columns:
    """The optional columns of ``parts`` end to end; a part lacking one holds the unknown value."""
    templates: Columns = {}
    for part in parts:
        for name, column in part.optional.items():
            templates.setdefault(name, column)
    if not templates:
        return {}
    filled = [
        {
            name: part.optional.get(name, unknown_column(template, len(part)))
            for name, template in templates.items()
        }
        for part in parts
    ]
    return concat_columns(filled)


def kernel_part(batch: EventBatch) -> Part:
    """One chunk's kernel rows (``cat == "kernel"`` events), unsorted; see :func:`kernels_table`."""
    args = batch.args()
    grid, block = dims(args, "grid"), dims(args, "block")
    data = {
        "device": batch_devices(batch, args),
        "stream": arg_ints(args, "stream", batch.field("tid")),
        "start": batch.start,
        "end": batch.end,
        "name": names(batch),
        "correlation": arg_ints(args, "correlation", -1),
        "process": np.zeros(len(batch), dtype=np.int64),
        "grid_x": grid[:, 0],
        "grid_y": grid[:, 1],
        "grid_z": grid[:, 2],
        "block_x": block[:, 0],
        "block_y": block[:, 1],
        "block_z": block[:, 2],
        "registers": arg_ints(args, "registers per thread", 0),
        "shared_mem": arg_ints(args, "shared memory", 0),
    }
    return Part(data, kernel_comm_part(args))


def kernels_table(parts: list[Part], operator_ids: np.ndarray | None = None) -> pd.DataFrame:
    """GPU kernel rows from the kernel parts of every chunk, in time order.

    ``operator_ids``: the ``External id`` of the trace's ``record_param_comms`` operators, so
    kernels launched by one keep the link (optional ``external_id`` column).
    """
    parts = [part for part in parts if len(part)]
    if not parts:
        return empty_table(KERNEL_COLUMNS)
    frame = make_table(KERNEL_COLUMNS, concat_columns([p.columns for p in parts]), "kernels")
    empty_ids = np.empty(0, dtype=np.int64)
    optional = kernel_comm_columns(
        concat_optional(parts), operator_ids if operator_ids is not None else empty_ids
    )
    return _sorted(frame, optional, KERNEL_OPTIONAL_COLUMNS)


def cpu_ops_as_kernels_table(operators: Part) -> pd.DataFrame:
    """Dominant ``cpu_op`` ranges (all chunks' ``cpu_op`` range rows, in file order) as kernel
    rows of a pseudo device 0 (stream = host thread).

    Used for CPU-only captures: the dominant operators (see :func:`dominant_mask`: outermost ops
    whose self time is at least half their duration) are the units of work, the way kernels are
    on a GPU, so the same timeline analyses (busy/idle, ranking) apply. Leaves would not do:
    ``aten::mm``'s tiny ``aten::resolve_conj`` children would push the GEMM itself out.
    """
    if not len(operators):
        return empty_table(KERNEL_COLUMNS)
    ops = operators.columns
    thread, start, end = ops["thread"], ops["start"], ops["end"]
    keep = dominant_mask(thread, start, end)
    n = int(keep.sum())
    data = {
        "device": np.zeros(n, dtype=np.int32),
        "stream": thread[keep],
        "start": start[keep],
        "end": end[keep],
        "name": ops["name"][keep].remove_unused_categories(),
        "process": np.zeros(n, dtype=np.int64),
    }
    return _sorted(make_table(KERNEL_COLUMNS, data, "kernels"))


def _copy_kinds(copy_names: pd.Categorical[str], args_kind: list[object]) -> dict[str, pd.Categorical[str]]:
    """kind / src_kind / dst_kind from memcpy names, parsed once per distinct name.

    ROCm also writes the direction in ``args.kind``; it is used where the name gives none.
    """
    kind: dict[str, str] = {}
    src: dict[str, str] = {}
    dst: dict[str, str] = {}
    for name in map(str, copy_names.categories):
        match = _MEMCPY_NAME.search(name)
        if match:
            direction, from_kind, to_kind = match.groups()
            kind[name] = direction if direction in _COPY_KINDS else "other"
            src[name] = _MEMORY_KINDS.get(from_kind.lower(), "unknown")
            dst[name] = _MEMORY_KINDS.get(to_kind.lower(), "unknown")
        else:
            kind[name], src[name], dst[name] = "other", "unknown", "unknown"
    kinds = map_categories(copy_names, kind)
    if "other" in kinds.categories:
        from_name = np.asarray(kinds, dtype=object)
        from_args = np.array(
            [k if isinstance(k, str) and k in _COPY_KINDS else "other" for k in args_kind], dtype=object
        )
        kinds = pd.Categorical([str(k) for k in np.where(from_name == "other", from_args, from_name)])
    return {
        "kind": kinds,
        "src_kind": map_categories(copy_names, src),
        "dst_kind": map_categories(copy_names, dst),
    }


def memcpy_part(batch: EventBatch) -> Part:
    """One chunk's copy rows from ``gpu_memcpy`` events, unsorted."""
    args = batch.args()
    return Part(_transfer_columns(batch, args, _copy_kinds(names(batch), values(args, "kind"))))


def memset_part(batch: EventBatch) -> Part:
    """One chunk's memset rows from ``gpu_memset`` events, unsorted."""
    return Part(_transfer_columns(batch, batch.args(), {}))


def _transfer_columns(batch: EventBatch, args: list[Any], kinds: dict[str, Any]) -> dict[str, Any]:
    """The columns copies and memsets share, with a copy's kind columns after ``bytes``."""
    return {
        "device": batch_devices(batch, args),
        "stream": arg_ints(args, "stream", batch.field("tid")),
        "start": batch.start,
        "end": batch.end,
        "bytes": arg_ints(args, "bytes", 0),
        **kinds,
        "correlation": arg_ints(args, "correlation", -1),
        "process": np.zeros(len(batch), dtype=np.int64),
    }


def memcpy_table(parts: list[Part]) -> pd.DataFrame:
    """Copy rows of every chunk, in time order."""
    return _table(parts, MEMCPY_COLUMNS, "memcpy")


def memset_table(parts: list[Part]) -> pd.DataFrame:
    """Memset rows of every chunk, in time order."""
    return _table(parts, MEMSET_COLUMNS, "memset")


def _table(parts: list[Part], columns: dict[str, str], label: str) -> pd.DataFrame:
    parts = [part for part in parts if len(part)]
    if not parts:
        return empty_table(columns)
    return _sorted(make_table(columns, concat_columns([p.columns for p in parts]), label))


def api_part(batch: EventBatch, cat: str) -> Part:
    """One chunk's runtime/driver API rows of category ``cat``, unsorted."""
    call_names = names(batch)
    stems = {str(c): _VERSION_SUFFIX.sub("", str(c)) for c in call_names.categories}
    return Part(
        {
            "process": np.zeros(len(batch), dtype=np.int64),
            "thread": int_column(batch.field("tid")),
            "start": batch.start,
            "end": batch.end,
            "name": map_categories(call_names, stems),
            "correlation": arg_ints(batch.args(), "correlation", -1),
            "source": pd.Categorical([API_SOURCES[cat]] * len(batch)),
        }
    )


def api_table(parts: dict[str, list[Part]]) -> pd.DataFrame:
    """Runtime/driver API rows (``cuda_runtime``/``cuda_driver``; HIP calls on ROCm too)."""
    tables = []
    for cat in API_SOURCES:
        kept = [part for part in parts[cat] if len(part)]
        if kept:
            tables.append(make_table(API_COLUMNS, concat_columns([p.columns for p in kept]), "api"))
    return _concat(tables, API_COLUMNS)


def range_part(batch: EventBatch, source: str) -> Part:
    """One chunk's ranges of one source, unsorted (``cpu_op``: with its optional columns)."""
    on_gpu = source == "gpu_user_annotation"
    range_names = names(batch)
    data = {
        "process": np.zeros(len(batch), dtype=np.int64),
        "thread": int_column(batch.field("tid")),
        "start": batch.start,
        "end": batch.end,
        "name": range_names,
        "source": pd.Categorical([source] * len(batch)),
        "device": _annotation_devices(batch) if on_gpu else np.full(len(batch), -1, dtype=np.int32),
    }
    optional: Columns = {}
    if source == "cpu_op":
        args = batch.args()
        optional = {**operator_comm_columns(args, range_names), **input_dims_part(args, range_names)}
    return Part(data, optional)


def source_part(parts: list[Part]) -> Part:
    """The parts of one source (all chunks, file order) as one part."""
    kept = [part for part in parts if len(part)]
    if not kept:
        return Part({"start": np.empty(0, dtype=np.int64)})
    if len(kept) == 1:
        return kept[0]
    return Part(concat_columns([p.columns for p in kept]), concat_optional(kept))


def ranges_table(parts: dict[str, Part]) -> pd.DataFrame:
    """Annotation and operator ranges (host ranges: device -1; GPU annotations: their device).

    ``parts``: per range source, its rows of the whole file (:func:`source_part`). ``cpu_op``
    rows may bring optional columns (collective args, input shapes); rows of the other sources
    hold the unknown value there.
    """
    tables: list[pd.DataFrame] = []
    operator_columns: Columns = {}  # of the cpu_op part, which starts at row operator_offset
    operator_offset = 0
    for source in RANGE_SOURCES:
        part = parts[source]
        if not len(part):
            continue
        if source == "cpu_op":
            operator_columns = known_columns(part.optional)
            operator_offset = sum(len(table) for table in tables)
        tables.append(make_table(RANGE_COLUMNS, part.columns, "ranges"))
    total = sum(len(table) for table in tables)
    optional = {name: spread(column, operator_offset, total) for name, column in operator_columns.items()}
    return _concat(tables, RANGE_COLUMNS, optional, RANGE_OPTIONAL_COLUMNS)


def _annotation_devices(batch: EventBatch) -> np.ndarray:
    """Device of ``gpu_user_annotation`` ranges: their ``pid`` (checked by the reader)."""
    return batch.device if batch.device is not None else int_column(batch.field("pid"))


def _concat(
    parts: list[pd.DataFrame],
    columns: dict[str, str],
    optional: Columns | None = None,
    declared: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Concatenate same-schema parts, re-unifying categoricals, in time order (``optional``
    columns span all parts, see :func:`_sorted`)."""
    if not parts:
        return empty_table(columns)
    if len(parts) == 1:
        return _sorted(parts[0], optional, declared)
    frame = pd.concat(parts, ignore_index=True)
    for col, dtype in columns.items():
        if dtype == "category" and str(frame[col].dtype) != "category":
            frame[col] = frame[col].astype("category")
    return _sorted(frame, optional, declared)
