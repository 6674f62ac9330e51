"""Hand-built traces whose host-overhead answer is known by construction (times in µs)."""

from __future__ import annotations

from infersight.model import Trace
from infersight.model.trace import API_COLUMNS, KERNEL_COLUMNS, RANGE_COLUMNS, make_table

US = 1_000


def build_trace(
    kernels: list[tuple[float, float, str]],
    ranges: list[tuple[float, float, str]] = (),  # type: ignore[assignment]
    with_api: bool = True,
) -> Trace:
    """Kernels (start, end, name) on device 0, each launched 1 µs earlier by a 0.5 µs call."""
    n = len(kernels)
    corr = list(range(1, n + 1))
    trace = Trace(source="built.json", format="kineto")
    trace.kernels = make_table(
        KERNEL_COLUMNS,
        {
            "device": [0] * n,
            "stream": [7] * n,
            "start": [int(s * US) for s, _, _ in kernels],
            "end": [int(e * US) for _, e, _ in kernels],
            "name": [name for _, _, name in kernels],
            "correlation": corr,
            "process": [0] * n,
        },
    )
    if with_api:
        trace.api = make_table(
            API_COLUMNS,
            {
                "process": [0] * n,
                "thread": [1] * n,
                "start": [int((s - 1.0) * US) for s, _, _ in kernels],
                "end": [int((s - 0.5) * US) for s, _, _ in kernels],
                "name": ["cudaLaunchKernel"] * n,
                "correlation": corr,
                "source": ["runtime"] * n,
            },
        )
    m = len(ranges)
    trace.ranges = make_table(
        RANGE_COLUMNS,
        {
            "process": [0] * m,
            "thread": [1] * m,
            "start": [int(s * US) for s, _, _ in ranges],
            "end": [int(e * US) for _, e, _ in ranges],
            "name": [name for _, _, name in ranges],
            "domain": [""] * m,
            "source": ["user_annotation"] * m,
            "device": [-1] * m,
        },
    )
    trace.check_schema()
    return trace
