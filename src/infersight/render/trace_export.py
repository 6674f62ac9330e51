"""Export the normalised trace model as versioned, columnar, agent-friendly JSON.

Why columnar: a trace has up to millions of kernels but only ~16 columns, so ``{col: [values]}``
is several times smaller than a list of row objects and maps 1:1 onto a DataFrame
(``pandas.DataFrame(table["data"])``). Strings are written as plain strings (categoricals
decoded), integers as integers, times in integer nanoseconds. The layout is described field by
field in docs/export-schema.md and validated by :class:`TraceExport` (a pydantic model whose
JSON Schema is :func:`export_json_schema`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
from pydantic import BaseModel, Field

from infersight import __version__
from infersight.model import Trace
from infersight.model.trace import TABLE_COLUMNS

EXPORT_SCHEMA: Literal["infersight.trace"] = "infersight.trace"
EXPORT_SCHEMA_VERSION = "1.0"

ColumnType = Literal["int", "float", "string"]


class ExportGpu(BaseModel):
    """What the trace says about one device (unknown fields are null)."""

    device: int
    name: str | None = None
    sm_count: int | None = None
    memory_bytes: int | None = None
    compute_capability: str | None = None
    clock_khz: int | None = None
    memory_bandwidth_bytes_per_s: float | None = None
    kind: Literal["gpu", "cpu"] = "gpu"


class ExportTable(BaseModel):
    """One table in columnar form: ``data[column][i]`` is row i's value."""

    columns: list[str] = Field(description="column names, in model order")
    types: dict[str, ColumnType] = Field(description="column -> 'int' | 'float' | 'string'")
    rows: int = Field(ge=0, description="number of rows; every data list has this length")
    data: dict[str, list[int] | list[float] | list[str]]


class ExportTrace(BaseModel):
    """One rank / input file."""

    source: str = Field(description="path of the file the trace was read from")
    format: Literal["nsys-sqlite", "kineto"]
    rank: int | None
    device_kind: Literal["gpu", "cpu"] = Field(
        description="'cpu': a CPU-only capture whose dominant operators stand in for kernels"
    )
    gpus: list[ExportGpu]
    metadata: dict[str, str]
    notes: list[str] = Field(description="what the reader repaired or could not read")
    time_unit: Literal["ns"] = "ns"
    tables: dict[str, ExportTable] = Field(description="kernels, memcpy, memset, api, ranges")


class TraceExport(BaseModel):
    """The whole export document."""

    schema_: Literal["infersight.trace"] = Field(EXPORT_SCHEMA, alias="schema")
    schema_version: str = Field(description="major.minor; the major changes on breaking changes")
    tool_version: str
    traces: list[ExportTrace]

    model_config = {"populate_by_name": True}


def export_traces(traces: list[Trace]) -> bytes:
    """Serialise traces to the ``infersight.trace`` JSON document (UTF-8 bytes, trailing newline)."""
    document = {
        "schema": EXPORT_SCHEMA,
        "schema_version": EXPORT_SCHEMA_VERSION,
        "tool_version": __version__,
        "traces": [_trace_dict(trace) for trace in traces],
    }
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)


def load_export(data: bytes | str) -> TraceExport:
    """Parse and validate an export document (raises pydantic.ValidationError if malformed)."""
    return TraceExport.model_validate(orjson.loads(data))


def export_json_schema() -> dict[str, Any]:
    """JSON Schema of the export document (what docs/export-schema.md describes)."""
    schema: dict[str, Any] = TraceExport.model_json_schema(by_alias=True)
    return schema


def _trace_dict(trace: Trace) -> dict[str, Any]:
    return {
        "source": trace.source,
        "format": trace.format,
        "rank": trace.rank,
        "device_kind": trace.device_kind,
        "gpus": [dataclasses.asdict(info) for _, info in sorted(trace.gpus.items())],
        "metadata": {str(k): str(v) for k, v in trace.metadata.items()},
        "notes": list(trace.notes),
        "time_unit": "ns",
        "tables": {
            name: _table_dict(trace.table(name), list(columns)) for name, columns in TABLE_COLUMNS.items()
        },
    }


def _table_dict(frame: pd.DataFrame, columns: list[str]) -> dict[str, Any]:
    """The declared columns only: the model's optional columns (a few Kineto args, present only in
    some traces) are not part of export schema 1.x."""
    types: dict[str, ColumnType] = {}
    data: dict[str, Any] = {}
    for col in columns:
        types[col], data[col] = _column_values(frame[col])
    return {"columns": columns, "types": types, "rows": len(frame), "data": data}


def _column_values(series: pd.Series) -> tuple[ColumnType, Any]:
    """A column as something orjson writes fast: contiguous numpy for numbers, list[str] for text."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = np.asarray(series.cat.categories.astype(str), dtype=object)
        codes = series.cat.codes.to_numpy()
        # code -1 (missing) -> "": the model's "unknown string" value
        decoded = np.where(codes >= 0, categories[np.maximum(codes, 0)] if len(categories) else "", "")
        return "string", decoded.tolist()
    if pd.api.types.is_integer_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return "int", np.ascontiguousarray(series.to_numpy(dtype=np.int64))
    if pd.api.types.is_float_dtype(series.dtype):
        return "float", np.ascontiguousarray(series.to_numpy(dtype=np.float64))
    return "string", series.astype(str).tolist()
