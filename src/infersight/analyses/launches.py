"""Joining GPU work to the host API call that launched it (on process + correlation id).

``correlation`` is unique only within a process (SPEC §1), so every join uses the pair. One
``cudaGraphLaunch`` correlates to many kernels; everything here aggregates per launch first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from infersight.model import Trace

# Host calls whose CPU time is kernel-launch overhead (SPEC §3 η_launch). Names are the stems
# readers keep after stripping version suffixes (cudaLaunchKernel_v7000 -> cudaLaunchKernel);
# matched case-sensitively. HIP equivalents cover ROCm traces.
LAUNCH_API_NAMES: tuple[str, ...] = (
    "cudaLaunchKernel",
    "cudaLaunchKernelExC",
    "cuLaunchKernel",
    "cuLaunchKernelEx",
    "cudaGraphLaunch",
    "cuGraphLaunch",
    "cudaLaunchCooperativeKernel",
    "hipLaunchKernel",
    "hipExtLaunchKernel",
    "hipModuleLaunchKernel",
    "hipExtModuleLaunchKernel",
    "hipGraphLaunch",
)


def launch_calls(trace: Trace) -> pd.DataFrame:
    """API rows that are kernel-launch calls."""
    api = trace.api
    return api[api["name"].isin(LAUNCH_API_NAMES).to_numpy()]


def kernel_launch_info(trace: Trace) -> pd.DataFrame:
    """Per kernel (same row order as ``trace.kernels``): the launching API call's thread/start.

    Columns ``launch_thread`` and ``launch_start`` (int64, -1 when no API row correlates).
    """
    k = trace.kernels
    out = pd.DataFrame(
        {
            "launch_thread": np.full(len(k), -1, dtype=np.int64),
            "launch_start": np.full(len(k), -1, dtype=np.int64),
        }
    )
    api = trace.api
    if api.empty or k.empty:
        return out
    api_keys = api[["process", "correlation", "thread", "start"]]
    api_keys = api_keys[api_keys["correlation"].to_numpy() >= 0].drop_duplicates(["process", "correlation"])
    left = pd.DataFrame({"process": k["process"].to_numpy(), "correlation": k["correlation"].to_numpy()})
    joined = left.merge(api_keys, on=["process", "correlation"], how="left", sort=False)
    out["launch_thread"] = joined["thread"].fillna(-1).to_numpy(np.int64)
    out["launch_start"] = joined["start"].fillna(-1).to_numpy(np.int64)
    return out


def launch_call_devices(trace: Trace, calls: pd.DataFrame) -> np.ndarray:
    """Device of each launch call (via its kernels' correlation); -1 when it matches none."""
    k = trace.kernels
    if calls.empty:
        return np.empty(0, dtype=np.int64)
    per_launch = k[["process", "correlation", "device"]].drop_duplicates(["process", "correlation"])
    joined = calls[["process", "correlation"]].merge(
        per_launch, on=["process", "correlation"], how="left", sort=False
    )
    return joined["device"].fillna(-1).to_numpy(np.int64)
