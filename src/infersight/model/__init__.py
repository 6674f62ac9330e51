"""The one trace model every reader produces and every analysis consumes."""

from infersight.model.trace import (
    API_COLUMNS,
    KERNEL_COLUMNS,
    MEMCPY_COLUMNS,
    MEMSET_COLUMNS,
    RANGE_COLUMNS,
    GpuInfo,
    Trace,
    code_names,
    empty_table,
    factorize_names,
    make_table,
    union_names,
)

__all__ = [
    "API_COLUMNS",
    "KERNEL_COLUMNS",
    "MEMCPY_COLUMNS",
    "MEMSET_COLUMNS",
    "RANGE_COLUMNS",
    "GpuInfo",
    "Trace",
    "code_names",
    "empty_table",
    "factorize_names",
    "make_table",
    "union_names",
]
