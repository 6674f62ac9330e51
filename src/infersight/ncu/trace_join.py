"""Launch configurations of the trace's kernels, so an ncu kernel is matched by name AND grid/block.

Both profilers agree on the simplified kernel name (ncu and Kineto demangle template literals
differently); one name often runs with several launch configurations (a decode GEMM per batch
size, attention per sequence bucket), and ncu profiled one of them. nsys and Kineto record the
grid and block of every launch, so the trace's time of the profiled configuration is known.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from infersight.analyses.kernel_names import simplify_kernel_name
from infersight.model.trace import Trace
from infersight.ncu.results import LaunchConfig

DIMS = ("grid_x", "grid_y", "grid_z", "block_x", "block_y", "block_z")


def launch_configs(traces: Sequence[Trace]) -> dict[str, list[LaunchConfig]]:
    """Per simplified kernel name: each (grid, block) the trace launched it with, count and time.

    A trace without launch dimensions (all 0: Kineto without ``args.grid``) gives no entry.
    """
    frames = [t.kernels[["name", "start", "end", *DIMS]] for t in traces if not t.kernels.empty]
    if not frames:
        return {}
    kernels = pd.concat(frames, ignore_index=True)
    kernels = kernels[(kernels[list(DIMS)] > 0).all(axis=1)]
    if kernels.empty:
        return {}
    kernels = kernels.assign(
        short=kernels["name"].astype(str).map(simplify_kernel_name),
        duration=kernels["end"] - kernels["start"],
    )
    grouped = kernels.groupby(["short", *DIMS], observed=True)["duration"].agg(["count", "sum"])
    out: dict[str, list[LaunchConfig]] = {}
    for key, row in grouped.iterrows():
        parts: tuple[object, ...] = tuple(key)  # type: ignore[arg-type]
        dims = [int(str(d)) for d in parts[1:]]
        out.setdefault(str(parts[0]), []).append(
            LaunchConfig(
                grid=(dims[0], dims[1], dims[2]),
                block=(dims[3], dims[4], dims[5]),
                count=int(row["count"]),
                total_ns=int(row["sum"]),
            )
        )
    return out
