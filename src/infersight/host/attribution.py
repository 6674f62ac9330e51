"""What fills a device's window when no compute kernel runs (methodology §4, gap attribution).

M1 counts idle between *kernels*, so it cannot tell a GPU waiting on the host from a GPU busy
copying weights or waiting inside a collective. This module splits every instant of a window into
exactly one bucket, with precedence gpu > communication > copy > host:

* ``gpu``: a non-collective kernel runs;
* ``communication``: only collective kernels run (category NCCL of ``data/kernel_categories.toml``:
  NCCL/RCCL, vLLM/SGLang/TRT-LLM custom all-reduce, all-to-all, send/recv) — the GPU works, but
  on the interconnect's schedule, not the host's;
* ``copy``: only memcpy/memset run (a gap between kernels that a copy fills is not host time);
* ``host``: nothing runs — the only time the host can be blamed for.

So ``copy + host`` is M1's idle on the same window and ``gpu + communication`` its busy time. The
launch calls that run while the GPU is empty are the *exposed* launch time: the evidence that
launch overhead (M2) actually starves the GPU rather than overlapping queued work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from infersight.analyses import intervals
from infersight.analyses.launches import trace_launch_calls
from infersight.analyses.timeline import CPU_DEVICE_KIND
from infersight.host.results import GapFill
from infersight.model import Trace
from infersight.overlap.comm_args import parse_kernel_name

IntervalSet = tuple[np.ndarray, np.ndarray]
MEMSET = "memset"
OTHER_COLLECTIVE = "other collective"


@dataclass(frozen=True)
class DeviceCopies:
    """A device's copies and memsets as arrays, with a direction label per row."""

    starts: np.ndarray
    ends: np.ndarray
    direction: np.ndarray  # object array: HtoD, DtoH, DtoD, PtoP, ..., memset
    migration: np.ndarray  # bool: a unified-memory page migration (a kernel waits for it)


def device_copies(trace: Trace, device: int, migration: re.Pattern[str]) -> DeviceCopies:
    """Memcpy rows (labelled by their kind) and memsets (labelled ``memset``) of one device.

    A memcpy is a unified-memory migration when its kind or a memory side matches ``migration``
    (``[attribution] migration_kind`` in ``data/host_thresholds.toml``).
    """
    m = trace.memcpy[trace.memcpy["device"].to_numpy() == device]
    s = trace.memset[trace.memset["device"].to_numpy() == device]
    kinds = m["kind"].astype(str).to_numpy(dtype=object)
    migrating = (
        _matches(m["kind"], migration)
        | _matches(m["src_kind"], migration)
        | _matches(m["dst_kind"], migration)
    )
    return DeviceCopies(
        starts=np.concatenate([m["start"].to_numpy(np.int64), s["start"].to_numpy(np.int64)]),
        ends=np.concatenate([m["end"].to_numpy(np.int64), s["end"].to_numpy(np.int64)]),
        direction=np.concatenate([kinds, np.full(len(s), MEMSET, dtype=object)]),
        migration=np.concatenate([migrating, np.zeros(len(s), dtype=bool)]),
    )


def _matches(column: pd.Series, pattern: re.Pattern[str]) -> np.ndarray:
    """Per row: does the (categorical) value match? One regex call per distinct value."""
    cat = column.astype("category")
    hit = np.array([bool(pattern.search(str(v))) for v in cat.cat.categories], dtype=bool)
    codes = cat.cat.codes.to_numpy()
    return np.where(codes >= 0, hit[np.maximum(codes, 0)] if hit.size else False, False).astype(bool)


def collective_labels(names: pd.Series, is_comm: np.ndarray) -> np.ndarray:
    """Per kernel: its collective (AllReduce, SendRecv, ...) when it is a collective, else ''."""
    cat = names.astype("category")
    labels = np.array(
        [parse_kernel_name(str(n))[0] or OTHER_COLLECTIVE for n in cat.cat.categories], dtype=object
    )
    codes = cat.cat.codes.to_numpy()
    out = np.where(codes >= 0, labels[np.maximum(codes, 0)] if labels.size else "", "")
    return np.where(is_comm, out, "").astype(object)


def activity_window(
    kernel_starts: np.ndarray, kernel_ends: np.ndarray, copies: DeviceCopies
) -> IntervalSet | None:
    """First to last GPU activity of any kind (kernel, copy, memset): the whole GPU timeline.

    Unlike the kernel span of M1, copies before the first kernel (weight upload) and after the
    last (read-back) count: a copy-bound run can have most of its copies outside the kernels.
    """
    starts = np.concatenate([kernel_starts, copies.starts])
    ends = np.concatenate([kernel_ends, copies.ends])
    if starts.size == 0:
        return None
    return np.array([starts.min()], dtype=np.int64), np.array([ends.max()], dtype=np.int64)


def complement(window: IntervalSet, inside: IntervalSet) -> IntervalSet:
    """The window minus a disjoint, sorted interval set that lies inside it."""
    starts = np.sort(np.concatenate([window[0], inside[1]]))
    ends = np.sort(np.concatenate([inside[0], window[1]]))
    keep = ends > starts
    return starts[keep], ends[keep]


def _length(ivs: IntervalSet) -> int:
    return int((ivs[1] - ivs[0]).sum())


def _per_label(
    starts: np.ndarray, ends: np.ndarray, labels: np.ndarray, where: IntervalSet
) -> dict[str, int]:
    """Time each label's intervals cover inside ``where`` (labels few: one union per label)."""
    out: dict[str, int] = {}
    for label in sorted({str(x) for x in labels if x}):
        sel = labels == label
        covered = _length(intervals.clip(starts[sel], ends[sel], where))
        if covered > 0:
            out[label] = covered
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def exposed_launch_ns(trace: Trace, device: int, host_idle: IntervalSet) -> int | None:
    """Launch-call time of this device's launches that falls where nothing runs on the GPU.

    Charged like M2 (``analyses/timeline.py``): calls joined to the device's kernels, or all calls
    on a one-device trace. None when the trace has no launch calls (M2 is n/a then too).
    """
    if trace.device_kind == CPU_DEVICE_KIND or trace.api.empty:
        return None
    calls = trace_launch_calls(trace)
    if not len(calls.start):
        return None
    mine = (calls.device == device) | ((calls.device == -1) & calls.single_device)
    return int(intervals.overlap_lengths(calls.start[mine], calls.end[mine], host_idle).sum())


def claim(window: IntervalSet, ordered: list[IntervalSet]) -> list[IntervalSet]:
    """Give each instant of the window to the first set (in order) that covers it."""
    taken: IntervalSet = (np.empty(0, np.int64), np.empty(0, np.int64))
    out = []
    for ivs in ordered:
        mine = intervals.clip(ivs[0], ivs[1], complement(window, intervals.clip(taken[0], taken[1], window)))
        out.append(mine)
        taken = intervals.union(np.concatenate([taken[0], mine[0]]), np.concatenate([taken[1], mine[1]]))
    return out


def gap_fill(
    trace: Trace,
    device: int,
    kernels: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    copies: DeviceCopies,
    window: IntervalSet,
    label: str,
) -> GapFill:
    """Split one device's window into gpu / communication / copy / host time.

    ``kernels`` is (starts, ends, is_collective, collective label) of the device's kernels.
    Precedence: unified-memory migrations > compute kernels > collectives > other copies: a
    migration under a kernel is the kernel stalled on page faults (not a copy hidden by compute),
    and a copy under a kernel is hidden.
    """
    starts, ends, is_comm, collective = kernels
    migrating = copies.migration
    migration, compute, comm, copy = claim(
        window,
        [
            (copies.starts[migrating], copies.ends[migrating]),
            (starts[~is_comm], ends[~is_comm]),
            (starts[is_comm], ends[is_comm]),
            (copies.starts[~migrating], copies.ends[~migrating]),
        ],
    )
    copied = intervals.union(np.concatenate([migration[0], copy[0]]), np.concatenate([migration[1], copy[1]]))
    occupied = intervals.union(
        np.concatenate([copied[0], compute[0], comm[0]]), np.concatenate([copied[1], compute[1], comm[1]])
    )
    wall = _length(window)
    gpu_ns, comm_ns, copy_ns = _length(compute), _length(comm), _length(copied)
    return GapFill(
        window=label,
        window_ns=wall,
        gpu_ns=gpu_ns,
        communication_ns=comm_ns,
        copy_ns=copy_ns,
        host_ns=wall - gpu_ns - comm_ns - copy_ns,
        launch_exposed_ns=exposed_launch_ns(trace, device, complement(window, occupied)),
        copy_by_direction=_per_label(copies.starts, copies.ends, copies.direction, copied),
        communication_by_collective=_per_label(starts[is_comm], ends[is_comm], collective[is_comm], comm),
    )


def add_fills(parts: list[GapFill], label: str) -> GapFill:
    """Sum of several devices' fills (ratios over them are device-time weighted, like M1)."""

    def merged(dicts: list[dict[str, int]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in dicts:
            for k, v in d.items():
                out[k] = out.get(k, 0) + v
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    launches = [p.launch_exposed_ns for p in parts]
    return GapFill(
        window=label,
        window_ns=sum(p.window_ns for p in parts),
        gpu_ns=sum(p.gpu_ns for p in parts),
        communication_ns=sum(p.communication_ns for p in parts),
        copy_ns=sum(p.copy_ns for p in parts),
        host_ns=sum(p.host_ns for p in parts),
        launch_exposed_ns=(
            None if not parts or any(v is None for v in launches) else sum(v or 0 for v in launches)
        ),
        copy_by_direction=merged([p.copy_by_direction for p in parts]),
        communication_by_collective=merged([p.communication_by_collective for p in parts]),
    )
