"""Joining GPU work to the host API call that launched it (on process + correlation id).

``correlation`` is unique only within a process (methodology §1), so every join uses the pair. One
``cudaGraphLaunch`` correlates to many kernels; everything here aggregates per launch first.

Joins run on one int64 key per row (:func:`~infersight.model.arrays.join_keys`) with a hash
factorisation, a sort and ``searchsorted`` (:func:`first_match`): a pandas merge on the two
columns costs ~0.4 s per million kernels, this ~0.1 s, and each analysis joins several times.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pandas as pd

from infersight.model import Trace
from infersight.model.arrays import join_keys

# Host calls whose CPU time is kernel-launch overhead (methodology §3 η_launch). Names are the stems
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
    return api[is_launch_call(api)]


def is_launch_call(api: pd.DataFrame) -> np.ndarray:
    """Per row of an API table (or a subset of one): is it a kernel-launch call."""
    return api["name"].isin(LAUNCH_API_NAMES).to_numpy()


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
    api = api[api["correlation"].to_numpy() >= 0]
    call = first_match(k["process"], k["correlation"], api["process"], api["correlation"])
    found = call >= 0
    out["launch_thread"] = np.where(found, api["thread"].to_numpy(np.int64)[call], -1)
    out["launch_start"] = np.where(found, api["start"].to_numpy(np.int64)[call], -1)
    return out


def launch_call_devices(trace: Trace, calls: pd.DataFrame) -> np.ndarray:
    """Device of each launch call (via its kernels' correlation); -1 when it matches none."""
    k = trace.kernels
    if calls.empty:
        return np.empty(0, dtype=np.int64)
    kernel = first_match(calls["process"], calls["correlation"], k["process"], k["correlation"])
    return np.where(kernel >= 0, k["device"].to_numpy(np.int64)[kernel], -1)


@dataclass(frozen=True)
class LaunchCalls:
    """A trace's kernel-launch calls joined once to the device of the kernels they launched."""

    start: np.ndarray
    end: np.ndarray
    device: np.ndarray  # -1: the call's (process, correlation) matches no kernel
    single_device: bool  # all kernels ran on one device (a call matching none is charged to it)


_LAUNCH_CACHE_SIZE = 4
_CacheEntry: TypeAlias = "tuple[weakref.ref[pd.DataFrame], weakref.ref[pd.DataFrame], LaunchCalls]"
_launch_cache: OrderedDict[tuple[int, int], _CacheEntry] = OrderedDict()
_launch_cache_lock = threading.Lock()


def trace_launch_calls(trace: Trace) -> LaunchCalls:
    """:func:`launch_calls` with :func:`launch_call_devices`, computed once per trace.

    Per-device analyses (timelines, host scopes) ask for every device and window in turn; the
    join of calls to kernels sorts the kernels' keys, so its result is kept for the last few
    traces, keyed by the identity of their ``api`` and ``kernels`` tables (weak references: a
    table replaced on the trace is never matched, and an entry goes with its tables). Tables are
    not modified in place after ingest (analyses are pure), so identity is enough.
    """
    api, kernels = trace.api, trace.kernels
    key = (id(api), id(kernels))
    with _launch_cache_lock:  # the analyses of one profile run on two threads
        hit = _launch_cache.get(key)
        if hit is not None and hit[0]() is api and hit[1]() is kernels:
            _launch_cache.move_to_end(key)
            return hit[2]
    calls = launch_calls(trace)
    result = LaunchCalls(
        start=calls["start"].to_numpy(np.int64),
        end=calls["end"].to_numpy(np.int64),
        device=launch_call_devices(trace, calls),
        single_device=kernels["device"].nunique() == 1,
    )
    forget = _forget(key)  # drop the entry as soon as either table is gone
    with _launch_cache_lock:
        _launch_cache[key] = (weakref.ref(api, forget), weakref.ref(kernels, forget), result)
        while len(_launch_cache) > _LAUNCH_CACHE_SIZE:
            _launch_cache.popitem(last=False)
    return result


def _forget(key: tuple[int, int]) -> Callable[[object], None]:
    def forget(_gone: object) -> None:
        _launch_cache.pop(key, None)

    return forget


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
    return direct | (first_match(k["process"], k["correlation"], keys["process"], keys["correlation"]) >= 0)


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
    api = trace.api
    if not (first_match(k["process"], k["correlation"], api["process"], api["correlation"]) >= 0).any():
        return (
            f"none of the {len(k)} kernels correlates with one of the trace's {len(trace.api)} API "
            "calls: graph-replayed kernels cannot be told from eager ones"
        )
    return None


def first_match(
    process: pd.Series, correlation: pd.Series, other_process: pd.Series, other_correlation: pd.Series
) -> np.ndarray:
    """Per row of the first table: the position of the first row of the other table with the same
    (process, correlation) pair, or -1 (a left join on the pair, keeping the other's first row).

    Values are compared as they are (-1 matches -1), as a pandas merge on the two columns does.
    """
    other_key, key = join_keys(
        other_process.to_numpy(np.int64),
        other_correlation.to_numpy(np.int64),
        process.to_numpy(np.int64),
        correlation.to_numpy(np.int64),
    )
    if not len(other_key) or not len(key):
        return np.full(len(key), -1, dtype=np.int64)
    order = np.argsort(other_key, kind="stable")  # equal keys keep row order: leftmost = first row
    sorted_keys = other_key[order]
    at = np.searchsorted(sorted_keys, key).clip(0, len(sorted_keys) - 1)
    return np.where(sorted_keys[at] == key, order[at], -1).astype(np.int64)
