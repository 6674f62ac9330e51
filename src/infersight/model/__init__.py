"""The one trace model every reader produces and every analysis consumes."""

from infersight.model.trace import (
    API_COLUMNS,
    KERNEL_COLUMNS,
    MEMCPY_COLUMNS,
    MEMSET_COLUMNS,
    RANGE_COLUMNS,
    GpuInfo,
    Trace,
    empty_table,
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
    "empty_table",
    "make_table",
    "union_names",
]
