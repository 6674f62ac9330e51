"""The global profile from per-rank digests: equal to ``build_global_profile`` over the traces.

Per-rank parts (trace summaries, device timelines) are taken as they are; the cross-rank
rankings are recomputed from the merged value counts with the same grouping, ordering and
tie-breaking as the traces path (first-seen order = rank order, then position in the rank), so
every figure is the same, floats to ~1e-12 relative (the std is two-pass, pandas' one-pass).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from infersight.analyses.bottleneck import primary_bottleneck
from infersight.analyses.categories import categorize
from infersight.analyses.category_summary import TOP_KERNELS_PER_CATEGORY, category_stats
from infersight.analyses.digest import CoveragePart, KernelCounts, PhasePiece, RangeCounts, RankDigest
from infersight.analyses.kernel_names import simplify_names
from infersight.analyses.kernel_summary import kernel_stats
from infersight.analyses.phases import PHASE_ORDER, TOP_CATEGORIES_PER_PHASE
from infersight.analyses.profile import NO_KERNELS
from infersight.analyses.ranges import fold_small_groups, max_range_names, range_stat
from infersight.analyses.results import (
    CategoryStat,
    GapBucket,
    GlobalProfile,
    GraphCoverage,
    KernelStat,
    PhaseSplit,
    PhaseStat,
    RangeStat,
)
from infersight.analyses.timeline import top_eager_kernels, total_timeline
from infersight.analyses.value_counts import ValueCounts, grouped_stats
from infersight.errors import InputError


def build_global_profile_from_digests(digests: list[RankDigest]) -> GlobalProfile:
    """The global profile of the ranks whose digests these are (in rank-file order)."""
    if not digests:
        raise InputError(None, "no traces to analyse")
    if all(d.kernel_span is None for d in digests):
        raise InputError(", ".join(d.summary.source for d in digests), NO_KERNELS)
    devices = [device for d in digests for device in d.devices]
    kernels = _MergedKernels.of([d.kernels for d in digests])
    attribution = [device for d in digests for device in d.attribution]
    return GlobalProfile(
        traces=[d.summary for d in digests],
        devices=devices,
        total=total_timeline(devices),
        kernels=kernels.kernel_stats(),
        categories=kernels.category_stats(),
        ranges=range_stats([d.ranges for d in digests if d.ranges is not None]),
        phases=phase_split(digests),
        time_attribution=attribution,
        primary_bottleneck=primary_bottleneck(attribution),
    )


# ---------------------------------------------------------------- kernels and categories


@dataclass(frozen=True)
class _MergedKernels:
    """Kernel value counts of several ranks under one numbering of the full names."""

    per_name: pd.DataFrame  # one row per (rank, full name), first-seen order: code, simple, category
    names: list[str]  # full names in union_categoricals order (the traces path's categories)
    simple: np.ndarray  # per full name
    category: np.ndarray  # per full name
    totals: np.ndarray  # total duration per full name
    durations: ValueCounts  # group = full-name code

    @staticmethod
    def of(parts: list[KernelCounts]) -> _MergedKernels:
        names = list(dict.fromkeys(name for part in parts for name in part.names))
        code_of = {name: code for code, name in enumerate(names)}
        codes = [np.array([code_of[n] for n in part.names], dtype=np.int64) for part in parts]
        durations = ValueCounts.concat(
            [part.durations.regrouped(c) for part, c in zip(parts, codes, strict=True) if len(c)]
        )
        distinct = pd.Categorical(pd.Index(names, dtype=object))
        simple: np.ndarray = np.asarray(simplify_names(distinct)).astype(object)
        category: np.ndarray = np.asarray(categorize(distinct)).astype(object)
        empty = np.empty(0, dtype=np.int64)
        rank = np.concatenate([empty, *(np.full(len(c), i, dtype=np.int64) for i, c in enumerate(codes))])
        code = np.concatenate([empty, *codes])
        first_row = np.concatenate([empty, *(p.first_row for p in parts)])
        order = np.lexsort((first_row, rank))
        per_name = pd.DataFrame(
            {"code": code[order], "simple": simple[code[order]], "category": category[code[order]]}
        )
        return _MergedKernels(per_name, names, simple, category, durations.totals(len(names)), durations)

    def summarize(self, by: str) -> pd.DataFrame:
        """``kernel_summary.summarize`` of the kernels: stats per ``by`` value, sorted alike."""
        group_of_row, labels = pd.factorize(self.per_name[by].to_numpy())
        group_of_name = np.zeros(len(self.names), dtype=np.int64)
        group_of_name[self.per_name["code"].to_numpy()] = group_of_row
        stats = grouped_stats(self.durations.regrouped(group_of_name), len(labels))
        stats.index = pd.Index(labels, dtype=object)
        total = float(stats["sum"].sum())
        stats["share"] = stats["sum"] / total if total > 0 else 0.0
        return stats.sort_values(["sum", "count"], ascending=[False, False])

    def by_name(self) -> pd.DataFrame:
        """One row per full name: the frame shape the traces path groups for its tie-breaks."""
        return pd.DataFrame(
            {
                "name": pd.Categorical.from_codes(
                    np.arange(len(self.names)), categories=pd.Index(self.names)
                ),
                "simple": pd.Categorical(self.simple),
                "category": pd.Categorical(self.category),
                "duration": self.totals,
            }
        )

    def kernel_stats(self) -> list[KernelStat]:
        """``kernel_summary.kernel_summary`` of the merged kernels."""
        if self.per_name.empty:
            return []
        first_category = self.per_name.groupby("simple", sort=False)["category"].first()
        return kernel_stats(self.summarize("simple"), self.by_name(), first_category)

    def category_stats(self, top: int = TOP_KERNELS_PER_CATEGORY) -> list[CategoryStat]:
        """``category_summary.category_summary`` of the merged kernels."""
        if self.per_name.empty:
            return []
        return category_stats(self.summarize("category"), self.by_name(), top)


# ---------------------------------------------------------------- ranges


def range_stats(parts: list[RangeCounts]) -> list[RangeStat]:
    """``ranges.range_summary`` from the ranks' range groups (top names + "other" rows alike)."""
    if not parts:
        return []
    names, name_labels = pd.factorize(np.concatenate([np.asarray(p.name, dtype=object) for p in parts]))
    domains, domain_labels = pd.factorize(np.concatenate([np.asarray(p.domain, dtype=object) for p in parts]))
    sources, source_labels = pd.factorize(np.concatenate([np.asarray(p.source, dtype=object) for p in parts]))
    n_sources = max(len(source_labels), 1)
    n_pairs = max(len(domain_labels), 1) * n_sources
    key = names.astype(np.int64) * n_pairs + domains.astype(np.int64) * n_sources + sources
    group, group_keys = pd.factorize(key)  # one row per (rank, group): first-seen order, as per range
    offsets = np.cumsum([0, *(len(p.name) for p in parts)])
    durations = ValueCounts.concat(
        [p.durations.regrouped(group[a:b]) for p, a, b in zip(parts, offsets[:-1], offsets[1:], strict=True)]
    )
    n_groups = len(group_keys)
    final_of_group, labels = fold_small_groups(
        np.arange(n_groups), np.asarray(group_keys, dtype=np.int64), durations.totals(n_groups),
        max_range_names(), n_pairs,
    )  # fmt: skip
    final = final_of_group[group]
    stats = grouped_stats(durations.regrouped(final_of_group), len(labels))
    for column in ("gpu_count", "gpu_time", "gpu_busy"):
        summed = np.zeros(len(labels), dtype=np.int64)
        np.add.at(summed, final, np.concatenate([getattr(p, column) for p in parts]))
        stats[column] = summed
    busy_unknown = np.zeros(len(labels), dtype=bool)
    np.logical_or.at(busy_unknown, final, np.concatenate([p.busy_unknown for p in parts]))
    reasons = sorted({p.na_reason for p in parts if p.na_reason is not None})
    reason = np.full(len(labels), -1, dtype=np.int64)
    np.maximum.at(
        reason,
        final,
        np.concatenate(
            [np.where(p.host, reasons.index(p.na_reason), -1) if p.na_reason else np.full(len(p.host), -1)
             for p in parts]
        ),
    )  # fmt: skip
    stats["busy_unknown"] = busy_unknown
    stats["reason"] = reason
    stats["folded"] = [folded > 0 for _, folded in labels]
    stats = stats.sort_values(["folded", "sum"], ascending=[True, False], kind="stable")
    out = []
    for group_id, row in zip(stats.index.tolist(), stats.to_dict("records"), strict=True):
        code, folded_names = labels[group_id]
        pair = code % n_pairs
        why = reasons[int(row["reason"])] if row["reason"] >= 0 else None
        name = str(name_labels[code // n_pairs])
        domain, source = str(domain_labels[pair // n_sources]), str(source_labels[pair % n_sources])
        out.append(range_stat(name, domain, source, folded_names, row, why))
    return out


# ---------------------------------------------------------------- phases


def phase_split(digests: list[RankDigest]) -> PhaseSplit:
    """``phases.phase_split`` from the ranks' phase pieces."""
    methods = {d.phase_method for d in digests}
    method = next((m for m in ("annotation", "kernel-mix") if m in methods), "none")
    if len(digests) == 1:
        reason = digests[0].phase_reason
    else:
        reason = "; ".join(f"{d.label}: {d.phase_reason}" for d in digests)
    used = [d for d in digests if d.phase_method != "none"]
    phases = [
        _phase_stat(phase, [d.phases[phase] for d in used if phase in d.phases], len(used))
        for phase in PHASE_ORDER
    ]
    return PhaseSplit(method=method, reason=reason, phases=[p for p in phases if p is not None])


def _phase_stat(phase: str, pieces: list[PhasePiece], n_used: int) -> PhaseStat | None:
    if not pieces:
        return None
    count = sum(p.kernel_count for p in pieces)
    kernel_time = sum(p.kernel_time_ns for p in pieces)
    wall = sum(p.wall_ns for p in pieces)
    busy = sum(p.busy_ns for p in pieces)
    launch_na = [
        p.launch_na_reason if n_used == 1 else f"{p.label}: {p.launch_na_reason}"
        for p in pieces
        if p.launch_na_reason is not None
    ]
    launch_ns = sum(p.launch_ns for p in pieces if p.launch_na_reason is None)
    coverage = merge_coverage([p.coverage for p in pieces])
    kernels = _MergedKernels.of([p.kernels for p in pieces])
    return PhaseStat(
        phase=phase,
        wall_ns=wall,
        busy_ns=busy,
        idle_ratio=1.0 - busy / wall if wall > 0 else 0.0,
        kernel_count=count,
        kernel_time_ns=kernel_time,
        avg_kernel_ns=kernel_time / count,
        steps=sum(p.steps for p in pieces),
        top_categories=kernels.category_stats()[:TOP_CATEGORIES_PER_PHASE],
        gap_buckets=_sum_buckets([p.gap_buckets for p in pieces]),
        eager_gap_buckets=(
            _sum_buckets([p.eager_gap_buckets for p in pieces])
            if coverage.graph_coverage is not None
            else None
        ),
        launch_overhead_ratio=launch_ns / wall if not launch_na and wall > 0 else None,
        launch_overhead_na_reason="; ".join(dict.fromkeys(launch_na)) if launch_na else None,
        **coverage.model_dump(),
    )


def _sum_buckets(per_rank: list[list[GapBucket]]) -> list[GapBucket]:
    """Bucket-wise sums of gap histograms (all over the same edges)."""
    merged = [b.model_copy() for b in per_rank[0]]
    for buckets in per_rank[1:]:
        for m, b in zip(merged, buckets, strict=True):
            m.count += b.count
            m.total_ns += b.total_ns
    return merged


def merge_coverage(parts: list[CoveragePart]) -> GraphCoverage:
    """``timeline.graph_coverage_from_masks`` from the ranks' coverage parts (non-empty kernels)."""
    if not parts:
        return GraphCoverage(graph_coverage_na_reason="no kernels")
    reasons = [
        f"{p.label}: {p.na_reason}" if len(parts) > 1 else p.na_reason
        for p in parts
        if p.na_reason is not None
    ]
    if reasons:
        return GraphCoverage(graph_coverage_na_reason="; ".join(reasons))
    graph_count = sum(p.graph_kernel_count for p in parts)
    return GraphCoverage(
        graph_kernel_count=graph_count,
        graph_kernel_time_ns=sum(p.graph_kernel_time_ns for p in parts),
        graph_coverage=graph_count / sum(p.kernel_count for p in parts),
        graph_launch_count=sum(p.graph_launch_count for p in parts),
        top_eager_kernels=top_eager_kernels(pd.concat([p.eager_by_name for p in parts], ignore_index=True)),
    )
