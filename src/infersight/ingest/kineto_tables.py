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
from itertools import compress
from typing import Any

import numpy as np
import pandas as pd

from infersight.ingest.kineto_args import (
    Columns,
    input_dims_column,
    kernel_comm_columns,
    model_column,
    operator_comm_columns,
    spread,
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


def batch_devices(batch: EventBatch, args: list[dict[str, Any]]) -> np.ndarray:
    """Device per GPU event: ``args.device`` else ``pid`` (checked by the reader when it can)."""
    return batch.device if batch.device is not None else arg_ints(args, "device", batch.field("pid"))


def kernels_table(batch: EventBatch, operator_ids: np.ndarray | None = None) -> pd.DataFrame:
    """GPU kernel rows from ``cat == "kernel"`` events.

    ``operator_ids``: the ``External id`` of the trace's ``record_param_comms`` operators, so
    kernels launched by one keep the link (optional ``external_id`` column).
    """
    if not len(batch):
        return empty_table(KERNEL_COLUMNS)
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
    frame = make_table(KERNEL_COLUMNS, data, "kernels")
    empty_ids = np.empty(0, dtype=np.int64)
    optional = kernel_comm_columns(args, operator_ids if operator_ids is not None else empty_ids)
    return _sorted(frame, optional, KERNEL_OPTIONAL_COLUMNS)


def cpu_ops_as_kernels_table(batch: EventBatch) -> pd.DataFrame:
    """Dominant ``cpu_op`` events as kernel rows of a pseudo device 0 (stream = host thread).

    Used for CPU-only captures: the dominant operators (see :func:`dominant_mask`: outermost ops
    whose self time is at least half their duration) are the units of work, the way kernels are
    on a GPU, so the same timeline analyses (busy/idle, ranking) apply. Leaves would not do:
    ``aten::mm``'s tiny ``aten::resolve_conj`` children would push the GEMM itself out.
    """
    if not len(batch):
        return empty_table(KERNEL_COLUMNS)
    thread = int_column(batch.field("tid"))
    keep = dominant_mask(thread, batch.start, batch.end)
    kept = EventBatch(list(compress(batch.events, keep.tolist())), batch.start[keep], batch.end[keep])
    n = len(kept)
    data = {
        "device": np.zeros(n, dtype=np.int32),
        "stream": thread[keep],
        "start": kept.start,
        "end": kept.end,
        "name": names(kept),
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


def memcpy_table(batch: EventBatch) -> pd.DataFrame:
    """Copy rows from ``gpu_memcpy`` events."""
    if not len(batch):
        return empty_table(MEMCPY_COLUMNS)
    args = batch.args()
    data = {
        "device": batch_devices(batch, args),
        "stream": arg_ints(args, "stream", batch.field("tid")),
        "start": batch.start,
        "end": batch.end,
        "bytes": arg_ints(args, "bytes", 0),
        **_copy_kinds(names(batch), values(args, "kind")),
        "correlation": arg_ints(args, "correlation", -1),
        "process": np.zeros(len(batch), dtype=np.int64),
    }
    return _sorted(make_table(MEMCPY_COLUMNS, data, "memcpy"))


def memset_table(batch: EventBatch) -> pd.DataFrame:
    """Memset rows from ``gpu_memset`` events."""
    if not len(batch):
        return empty_table(MEMSET_COLUMNS)
    args = batch.args()
    data = {
        "device": batch_devices(batch, args),
        "stream": arg_ints(args, "stream", batch.field("tid")),
        "start": batch.start,
        "end": batch.end,
        "bytes": arg_ints(args, "bytes", 0),
        "correlation": arg_ints(args, "correlation", -1),
        "process": np.zeros(len(batch), dtype=np.int64),
    }
    return _sorted(make_table(MEMSET_COLUMNS, data, "memset"))


def api_table(batches: dict[str, EventBatch]) -> pd.DataFrame:
    """Runtime/driver API rows (``cuda_runtime``/``cuda_driver``; HIP calls on ROCm too)."""
    parts = []
    for cat, source in API_SOURCES.items():
        batch = batches[cat]
        if not len(batch):
            continue
        call_names = names(batch)
        stems = {str(c): _VERSION_SUFFIX.sub("", str(c)) for c in call_names.categories}
        data = {
            "process": np.zeros(len(batch), dtype=np.int64),
            "thread": int_column(batch.field("tid")),
            "start": batch.start,
            "end": batch.end,
            "name": map_categories(call_names, stems),
            "correlation": arg_ints(batch.args(), "correlation", -1),
            "source": pd.Categorical([source] * len(batch)),
        }
        parts.append(make_table(API_COLUMNS, data, "api"))
    return _concat(parts, API_COLUMNS)


def ranges_table(batches: dict[str, EventBatch]) -> pd.DataFrame:
    """Annotation and operator ranges (host ranges: device -1; GPU annotations: their device).

    ``cpu_op`` rows may bring optional columns (collective args, input shapes); rows of the
    other sources hold the unknown value there.
    """
    parts: list[pd.DataFrame] = []
    operator_columns: Columns = {}  # of the cpu_op part, which starts at row operator_offset
    operator_offset = 0
    for source in RANGE_SOURCES:
        batch = batches[source]
        if not len(batch):
            continue
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
        if source == "cpu_op":
            args = batch.args()
            operator_columns = {**operator_comm_columns(args, range_names), **input_dims_column(args)}
            operator_offset = sum(len(part) for part in parts)
        parts.append(make_table(RANGE_COLUMNS, data, "ranges"))
    total = sum(len(part) for part in parts)
    optional = {name: spread(column, operator_offset, total) for name, column in operator_columns.items()}
    return _concat(parts, RANGE_COLUMNS, optional, RANGE_OPTIONAL_COLUMNS)


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
