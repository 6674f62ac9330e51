"""Per-rank digests (issue #8): what a worker computes from one rank's trace so that only small,
mergeable results travel back to the caller, whatever the rank's size.

A :class:`RankDigest` holds what :func:`~infersight.analyses.profile.build_global_profile`
computes per trace (the trace summary, the windows' device timelines, the phase label of every
kernel) and, for the figures that merge across ranks, their exact sufficient statistics:

- kernels (ranking and categories): per distinct full name, the value counts of its durations
  and the position of its first kernel (ties in the rankings go to the first-seen name);
- ranges: per (name, domain, source), the value counts of the range durations and the sums of
  the GPU projection;
- phases: per phase, the sums (kernels, time, steps, wall, busy, gap histograms, launch time),
  the graph-coverage part of the rank, and the kernel value counts for the category ranking.

:func:`~infersight.analyses.digest_merge.build_global_profile_from_digests` merges them into the
global profile that ``build_global_profile`` gives on the loaded traces. The per-trace parts
call the very functions of the traces path (``trace_summary``, ``device_timeline``,
``label_trace``, ``range_rows``, ``launch_time``, ``time_by_name``...), so the two paths cannot
drift apart; tests compare them field for field on every real trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from infersight.analyses.attribution import trace_attribution
from infersight.analyses.launches import graph_kernel_mask
from infersight.analyses.phases import PHASE_ORDER, Labelled, PhaseTimeline, label_trace, launch_time
from infersight.analyses.profile import trace_summary
from infersight.analyses.ranges import range_rows
from infersight.analyses.results import DeviceAttribution, DeviceTimeline, GapBucket, TraceSummary
from infersight.analyses.timeline import (
    coverage_na_reason,
    device_timeline,
    kernel_durations,
    time_by_name,
)
from infersight.analyses.value_counts import ValueCounts
from infersight.analyses.window import analysis_windows
from infersight.model import Trace


@dataclass(frozen=True)
class KernelCounts:
    """Durations of some kernels of one rank, per distinct full name."""

    names: list[str]  # distinct full names, in the order of the trace's name categories
    first_row: np.ndarray  # per name: position of its first kernel among these kernels
    durations: ValueCounts  # group = index into names

    @staticmethod
    def of(names: pd.Categorical, durations: np.ndarray) -> KernelCounts:
        """From one full name and one duration per kernel (names: unused categories dropped)."""
        names = names.remove_unused_categories()
        codes = np.asarray(names.codes, dtype=np.int64)
        first_row = np.zeros(len(names.categories), dtype=np.int64)
        present, first = np.unique(codes, return_index=True)
        first_row[present] = first
        return KernelCounts([str(n) for n in names.categories], first_row, ValueCounts.of(codes, durations))


@dataclass(frozen=True)
class RangeCounts:
    """The summarised NVTX/annotation ranges of one rank, per (name, domain, source) group.

    Groups are in the order of their first range, so concatenating the ranks' groups keeps the
    first-seen order that the "other" folding uses for ties.
    """

    name: list[str]
    domain: list[str]
    source: list[str]
    host: np.ndarray  # host range (False: GPU annotation)
    gpu_count: np.ndarray
    gpu_time: np.ndarray
    gpu_busy: np.ndarray
    busy_unknown: np.ndarray  # some range's busy union was skipped (too many pairs)
    durations: ValueCounts  # group = index into the per-group lists
    na_reason: str | None  # why the rank's host ranges have no GPU projection


@dataclass(frozen=True)
class CoveragePart:
    """One rank's share of a CUDA-graph coverage figure (see ``graph_coverage_from_masks``)."""

    label: str
    na_reason: str | None
    kernel_count: int
    graph_kernel_count: int
    graph_kernel_time_ns: int
    graph_launch_count: int
    eager_by_name: pd.DataFrame  # name, kernels, total_ns of the eager kernels per full name


@dataclass(frozen=True)
class PhasePiece:
    """One rank's kernels of one phase, summed (see ``phases._phase_stat``)."""

    label: str
    kernel_count: int
    kernel_time_ns: int
    steps: int
    wall_ns: int
    busy_ns: int
    gap_buckets: list[GapBucket]
    eager_gap_buckets: list[GapBucket]
    launch_ns: int
    launch_na_reason: str | None
    coverage: CoveragePart
    kernels: KernelCounts


@dataclass(frozen=True)
class RankDigest:
    """Everything the global profile needs from one rank, without its event tables."""

    summary: TraceSummary  # the caller may append the cross-rank clock-offset note
    label: str
    kernel_span: tuple[int, int] | None  # first kernel start, last kernel end (None: no kernels)
    devices: list[DeviceTimeline]
    kernels: KernelCounts  # the kernels inside their device's window
    ranges: RangeCounts | None  # None: no summarised range
    phase_method: str
    phase_reason: str
    phases: dict[str, PhasePiece] = field(default_factory=dict)
    attribution: list[DeviceAttribution] = field(default_factory=list)


def digest_trace(trace: Trace, window_nvtx: str | None = None) -> RankDigest:
    """The digest of one rank; raises InputError as the traces path does (window regex unmatched)."""
    k = trace.kernels
    windows = analysis_windows(trace, window_nvtx) if not k.empty else {}
    labelled = label_trace(trace, windows)
    kept = labelled.kernels  # the kernels in their device's window, in trace order (windowed_kernels)
    return RankDigest(
        summary=trace_summary(trace),
        label=trace.label(),
        kernel_span=None if k.empty else (int(k["start"].min()), int(k["end"].max())),
        devices=[device_timeline(trace, device, window) for device, window in windows.items()],
        kernels=KernelCounts.of(
            pd.Categorical(kept["name"]), (kept["end"] - kept["start"]).to_numpy(np.int64)
        ),
        ranges=range_counts(trace),
        phase_method=labelled.method,
        phase_reason=labelled.reason,
        phases=phase_pieces(labelled) if labelled.method != "none" else {},
        attribution=trace_attribution(trace, window_nvtx, windows=windows, labelled=labelled),
    )


def range_counts(trace: Trace) -> RangeCounts | None:
    """The rank's ranges grouped by (name, domain, source) in first-seen order (None: no range)."""
    rows = range_rows(trace)
    if rows is None:
        return None
    names = rows.name.groups()
    n_sources = len(rows.source.categories) + 1
    n_pairs = (len(rows.domain.categories) + 1) * n_sources
    key = (
        (names.codes + 1) * n_pairs
        + (rows.domain.codes.astype(np.int64) + 1) * n_sources
        + (rows.source.codes.astype(np.int64) + 1)
    )
    group, _ = pd.factorize(key)
    n_groups = int(group.max()) + 1
    first = np.unique(group, return_index=True)[1]
    gpu = np.zeros((3, n_groups), dtype=np.int64)
    for row, values in enumerate((rows.gpu_count, rows.gpu_time, rows.gpu_busy)):
        np.add.at(gpu[row], group, values)
    busy_unknown = np.zeros(n_groups, dtype=bool)
    np.logical_or.at(busy_unknown, group, rows.gpu_busy < 0)
    return RangeCounts(
        name=[names.label(code) for code in names.codes[first].tolist()],
        domain=[str(d) for d in rows.domain.take(first)],
        source=[str(s) for s in rows.source.take(first)],
        host=rows.host[first],
        gpu_count=gpu[0],
        gpu_time=gpu[1],
        gpu_busy=gpu[2],
        busy_unknown=busy_unknown,
        durations=ValueCounts.of(group, rows.duration),
        na_reason=rows.na_reason,
    )


def phase_pieces(labelled: Labelled) -> dict[str, PhasePiece]:
    """The rank's figures of every phase its kernels were labelled with."""
    trace = labelled.trace
    pieces: dict[str, PhasePiece] = {}
    for phase in PHASE_ORDER:
        k = labelled.kernels
        k = k[k["phase"].to_numpy() == phase].reset_index(drop=True)
        if k.empty:
            continue
        is_graph = graph_kernel_mask(trace, k)
        timeline = PhaseTimeline()
        timeline.add(k, is_graph)
        durations = (k["end"] - k["start"]).to_numpy(np.int64)
        launched, launch_na = launch_time(trace, k)
        pieces[phase] = PhasePiece(
            label=trace.label(),
            kernel_count=len(k),
            kernel_time_ns=int(durations.sum()),
            steps=int(k["step"].nunique()),
            wall_ns=timeline.wall,
            busy_ns=timeline.busy,
            gap_buckets=timeline.buckets(),
            eager_gap_buckets=timeline.buckets(eager=True),
            launch_ns=launched,
            launch_na_reason=launch_na,
            coverage=coverage_part(trace, k, is_graph),
            kernels=KernelCounts.of(pd.Categorical(k["name"]), durations),
        )
    return pieces


def coverage_part(trace: Trace, kernels: pd.DataFrame, is_graph: np.ndarray) -> CoveragePart:
    """The per-trace figures of ``timeline.graph_coverage_from_masks`` for non-empty ``kernels``."""
    reason = coverage_na_reason(trace, kernels, is_graph)
    if reason is not None:
        no_eager = pd.DataFrame({"name": [], "kernels": [], "total_ns": []})
        return CoveragePart(trace.label(), reason, len(kernels), 0, 0, 0, no_eager)
    durations = kernel_durations(kernels)
    replays = kernels.loc[is_graph, ["process", "correlation"]]
    return CoveragePart(
        label=trace.label(),
        na_reason=None,
        kernel_count=len(kernels),
        graph_kernel_count=int(is_graph.sum()),
        graph_kernel_time_ns=int(durations[is_graph].sum()),
        graph_launch_count=len(replays[replays["correlation"].to_numpy() >= 0].drop_duplicates()),
        eager_by_name=time_by_name(kernels["name"].array[~is_graph], durations[~is_graph]),
    )
