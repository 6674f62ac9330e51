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


# Host calls that replay a whole CUDA/HIP graph: every kernel they correlate to ran inside a graph.
GRAPH_LAUNCH_API_NAMES: tuple[str, ...] = ("cudaGraphLaunch", "cuGraphLaunch", "hipGraphLaunch")


def graph_launch_keys(trace: Trace) -> pd.DataFrame:
    """Distinct ``(process, correlation)`` keys of graph replays.

    A key is a graph replay when its API call is a graph launch, or when any kernel carrying it
    has a CUDA graph id (nsys ``graphId``): all kernels of one replay share the launch's
    correlation id, so the key marks them all even where only some rows carry the id.
    """
    api = trace.api
    by_api = api.loc[api["name"].isin(GRAPH_LAUNCH_API_NAMES).to_numpy(), ["process", "correlation"]]
    k = trace.kernels
    by_id = k.loc[k["graph_id"].to_numpy() >= 0, ["process", "correlation"]]
    keys = pd.concat([by_api, by_id], ignore_index=True)
    keys = keys[keys["correlation"].to_numpy() >= 0]
    return keys.drop_duplicates().reset_index(drop=True).astype(np.int64)


def graph_kernel_mask(trace: Trace, kernels: pd.DataFrame | None = None) -> np.ndarray:
    """Per row of ``kernels`` (default ``trace.kernels``): was it replayed from a CUDA graph?

    ``kernels`` needs ``process`` and ``correlation`` columns (a ``graph_id`` column is used
    too when present), so callers may pass any row subset of the trace's kernels, e.g. the
    kernels of one phase.
    """
    k = trace.kernels if kernels is None else kernels
    direct = k["graph_id"].to_numpy() >= 0 if "graph_id" in k.columns else np.zeros(len(k), dtype=bool)
    keys = graph_launch_keys(trace)
    if keys.empty or k.empty:
        return direct
    keys = keys.assign(_graph=True)
    left = pd.DataFrame(
        {
            "process": k["process"].to_numpy(np.int64),
            "correlation": k["correlation"].to_numpy(np.int64),
        }
    )
    joined = left.merge(keys, on=["process", "correlation"], how="left", sort=False)
    return direct | joined["_graph"].notna().to_numpy()


def graph_coverage_na_reason(trace: Trace, kernels: pd.DataFrame | None = None) -> str | None:
    """Why graph vs eager cannot be told for these kernels (None: it can).

    It can when some kernel carries a graph id, or when at least one of the kernels correlates
    with a recorded API call (then a kernel whose call is not a graph launch is eager).
    """
    k = trace.kernels if kernels is None else kernels
    if bool((trace.kernels["graph_id"].to_numpy() >= 0).any()):
        return None
    if trace.api.empty:
        return (
            "the trace has no CUDA/HIP API calls and no CUDA-graph ids: graph-replayed kernels "
            "cannot be told from eager ones"
        )
    api_keys = trace.api[["process", "correlation"]].drop_duplicates()
    matched = k[["process", "correlation"]].merge(api_keys, on=["process", "correlation"], how="inner")
    if matched.empty:
        return (
            f"none of the {len(k)} kernels correlates with one of the trace's {len(trace.api)} API "
            "calls: graph-replayed kernels cannot be told from eager ones"
        )
    return None
