"""Communication/computation overlap per rank (methodology §4 M5, §6 communication rule).

Communication kernels are the NCCL category of ``data/kernel_categories.toml`` (NCCL, RCCL,
vLLM custom all-reduce, symmetric-memory multimem kernels). Per device and window:

* comm time = Σ comm kernel durations clipped to the window (M5's numerator), comm busy = their
  union; overlapped = the part of comm busy during which a compute kernel (any non-comm kernel,
  necessarily on another stream) runs; exposed = comm busy − overlapped;
* M5 = comm time / GPU active time (union of all kernels), the methodology §4 caveat;
* per collective type (from the PyTorch args when present, else the kernel name), the message
  size S and nccl-tests' algbw = S / t and busbw = algbw × factor(n) (data/interconnects.toml),
  compared with the GPU's peer link. Kernel time includes waiting for late peers, so busbw is
  a lower bound of what the link delivered.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from infersight.analyses import intervals
from infersight.analyses.results import Window
from infersight.analyses.window import analysis_windows, window_arrays
from infersight.hardware.links import collective_spec, device_links
from infersight.model import Trace
from infersight.model.trace import GpuInfo
from infersight.overlap.comm_args import CommArgs, comm_args, parse_kernel_name
from infersight.overlap.copies import comm_kernel_mask
from infersight.overlap.results import CollectiveStat, CommOverlap

NO_COMM = "no communication (NCCL-category) kernels in the window"
WORLD_SIZE_KEY = "distributedInfo.world_size"


def comm_overlaps(trace: Trace, window_nvtx: str | None = None) -> list[CommOverlap]:
    """Comm/compute overlap of every device of the trace that ran kernels."""
    windows = analysis_windows(trace, window_nvtx)
    is_comm = comm_kernel_mask(trace)
    args, reason = comm_args(trace, np.flatnonzero(is_comm)) if is_comm.any() else ({}, None)
    return [comm_overlap(trace, device, window, is_comm, args, reason) for device, window in windows.items()]


def comm_overlap(
    trace: Trace,
    device: int,
    window: Window,
    is_comm: np.ndarray,
    args: dict[int, CommArgs],
    args_na_reason: str | None,
) -> CommOverlap:
    """Comm vs compute kernels of one device inside its window."""
    win = window_arrays(window)
    k = trace.kernels
    on_device = k["device"].to_numpy() == device
    starts, ends = k["start"].to_numpy(np.int64), k["end"].to_numpy(np.int64)
    active_s, active_e = intervals.clip(starts[on_device], ends[on_device], win)
    compute = on_device & ~is_comm
    compute_union = intervals.clip(starts[compute], ends[compute], win)
    comm = on_device & is_comm
    comm_in = comm & intervals.overlaps_any(starts, ends, win)
    clipped = intervals.overlap_lengths(starts[comm_in], ends[comm_in], win)
    comm_s, comm_e = intervals.clip(starts[comm], ends[comm], win)
    comm_busy = int((comm_e - comm_s).sum())
    over_s, over_e = intervals.intersect(comm_s, comm_e, compute_union[0], compute_union[1])
    overlapped = int((over_e - over_s).sum())
    active = int((active_e - active_s).sum())
    comm_time = int(clipped.sum())
    wall = window.duration_ns
    gpu = trace.gpus.get(device)
    exposed = comm_busy - overlapped
    kernels = k[comm_in].assign(duration=clipped, kernel_row=np.flatnonzero(comm_in))
    return CommOverlap(
        trace=trace.source,
        rank=trace.rank,
        device=device,
        gpu_name=gpu.name if gpu else None,
        wall_ns=wall,
        active_ns=active,
        comm_kernel_count=int(comm_in.sum()),
        comm_time_ns=comm_time,
        comm_busy_ns=comm_busy,
        overlapped_ns=overlapped,
        exposed_ns=exposed,
        overlap_ratio=overlapped / comm_busy if comm_busy > 0 else None,
        exposed_ratio=exposed / wall if wall > 0 and comm_busy > 0 else None,
        m5_nccl_ratio=comm_time / active if active > 0 else None,
        collectives=collective_stats(trace, kernels, args, args_na_reason, gpu),
        na_reason=None if comm_time > 0 else NO_COMM,
    )


def collective_stats(
    trace: Trace,
    kernels: pd.DataFrame,
    args: dict[int, CommArgs],
    args_na_reason: str | None,
    gpu: GpuInfo | None,
) -> list[CollectiveStat]:
    """One row per (collective, algorithm, protocol) of the comm kernels given (with ``duration``
    and ``kernel_row``, their position in ``trace.kernels``, which keys ``args``)."""
    if kernels.empty:
        return []
    parsed = {str(n): parse_kernel_name(str(n)) for n in kernels["name"].astype(str).unique()}
    names = kernels["name"].astype(str).to_numpy()
    found = [args.get(int(row)) for row in kernels["kernel_row"].to_numpy(np.int64)]
    frame = pd.DataFrame(
        {
            "collective": [
                (a.collective if a is not None and a.collective else None) or parsed[n][0] or "unknown"
                for a, n in zip(found, names, strict=True)
            ],
            "algorithm": [parsed[n][1] or "" for n in names],
            "protocol": [parsed[n][2] or "" for n in names],
            "duration": kernels["duration"].to_numpy(np.int64),
            "row": np.arange(len(kernels)),
        }
    )
    world = _world_size(trace)
    link = device_links(gpu)
    peer = link.peer or link.host
    out = []
    for (collective, algorithm, protocol), group in frame.groupby(
        ["collective", "algorithm", "protocol"], sort=True
    ):
        rows = group["row"].to_numpy()
        stat = CollectiveStat(
            collective=str(collective),
            algorithm=str(algorithm) or None,
            protocol=str(protocol) or None,
            count=len(rows),
            time_ns=int(group["duration"].sum()),
            mean_ns=float(group["duration"].mean()),
        )
        _add_bandwidth(
            stat, [found[i] for i in rows], group["duration"].to_numpy(np.int64), world, args_na_reason
        )
        if stat.busbw_gb_per_s is not None and peer is not None:
            stat.link = peer
            stat.link_ratio = stat.busbw_gb_per_s / peer.gb_per_s
        out.append(stat)
    return sorted(out, key=lambda s: -s.time_ns)


def _add_bandwidth(
    stat: CollectiveStat,
    found: list[CommArgs | None],
    durations: np.ndarray,
    world: int | None,
    args_na_reason: str | None,
) -> None:
    """Fill message size, algbw and busbw from the kernels whose size the trace gives."""
    spec = collective_spec(stat.collective)
    if spec is None:
        stat.size_na_reason = f"no bus-bandwidth rule for collective {stat.collective!r}"
        return
    sizes = np.array(
        [(a.out_bytes if spec.size_from == "out" else a.in_bytes) if a is not None else None for a in found],
        dtype=object,
    )
    known = np.array([s is not None and s > 0 for s in sizes], dtype=bool)
    if not known.any():
        stat.size_na_reason = args_na_reason or "the trace gives no message size for these kernels"
        return
    nbytes = sizes[known].astype(np.int64)
    time_ns = int(durations[known].sum())
    groups = {a.group_size for a, k in zip(found, known, strict=True) if k and a is not None and a.group_size}
    group = groups.pop() if len(groups) == 1 else None
    source = found[int(np.flatnonzero(known)[0])]
    stat.size_source = (source.source if source else "") + (
        f" ({int(known.sum())} of {len(found)} kernels)" if not known.all() else ""
    )
    stat.message_bytes = int(nbytes.mean())
    stat.algbw_gb_per_s = float(nbytes.sum()) / time_ns if time_ns > 0 else None  # bytes/ns == GB/s
    if group is None and world is not None and spec.factor_expr != "1":
        group = world
        stat.size_source += f"; group size assumed = world size {world}"
    stat.group_size = group
    if stat.algbw_gb_per_s is None:
        return
    if spec.factor_expr == "1":
        stat.busbw_factor = 1.0
    elif group is not None and group > 1:
        stat.busbw_factor = spec.factor(group)
    else:
        stat.size_na_reason = "group size unknown: bus bandwidth needs the number of ranks"
        return
    stat.busbw_gb_per_s = stat.algbw_gb_per_s * stat.busbw_factor


def _world_size(trace: Trace) -> int | None:
    value = trace.metadata.get(WORLD_SIZE_KEY)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
