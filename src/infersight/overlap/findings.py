"""Findings of the overlap analyses: overlap scopes evaluated with ``data/overlap_rules.toml``.

Each function turns one typed result into scopes of flat metrics (a device's copies, a copy
direction, a range, a rank's communication, a collective, the straggler, a rank's waits, a MoE
load measure) and evaluates the overlap rules on them with the shared engine. Thresholds,
texts, sources, estimators and confidence are named in the rule table; derived numbers (ratios,
per-instance times) are computed here, as metrics, never as conditions.
"""

from __future__ import annotations

from infersight.overlap.ranks import median_comm_duration
from infersight.overlap.results import CommOverlap, CopyOverlap, MultiRankView, RangeOverlap
from infersight.overlap.rules_data import overlap_rules
from infersight.rules.evaluate import Scope, evaluate_rule
from infersight.rules.finding import Finding, Location
from infersight.rules.values import Metrics

HOST_OR_PEER_DIRECTIONS = ("HtoD", "DtoH", "PtoP")  # directions with a link figure to compare against


def unit(metric: str) -> str:
    """Evidence units of the overlap metrics (ratios and shares are plain fractions)."""
    if metric.endswith("_ns"):
        return "ns"
    if metric.endswith("_gb_per_s"):
        return "GB/s"
    return "B" if metric.endswith("_bytes") else ""


def _findings(scopes: list[Scope]) -> list[Finding]:
    return [f for scope in scopes for rule in overlap_rules() if (f := evaluate_rule(rule, scope, unit=unit))]


def _where(rank: int | None, device: int) -> str:
    return f"rank {rank} / GPU {device}" if rank is not None else f"GPU {device}"


def copy_findings(result: CopyOverlap) -> list[Finding]:
    """Pageable copies, exposed copies and low copy bandwidth on one device."""
    if result.copy_busy_ns == 0 or result.wall_ns == 0:
        return []
    where = _where(result.rank, result.device)
    location = Location(
        scope="device",
        rank=result.rank,
        device=result.device,
        time_range_ns=result.window.intervals_ns[0] if result.window.intervals_ns else None,
    )
    pageable_time = sum(d.pageable_time_ns for d in result.directions)
    metrics: Metrics = {
        "where": where,
        "wall_ns": result.wall_ns,
        "copy_time_ns": result.copy_time_ns,
        "copy_time_ratio": result.copy_time_ns / result.wall_ns,
        "pageable_copies": sum(d.pageable_count for d in result.directions),
        "pageable_copy_time_ns": pageable_time,
        "pageable_share": pageable_time / result.copy_time_ns if result.copy_time_ns > 0 else 0.0,
        "exposed_copy_ratio": result.exposed_ratio or 0.0,
        "hidden_copy_ratio": result.hidden_ratio or 0.0,
        "exposed_copy_ns": result.exposed_ns,
        "compute_busy_ns": result.compute_busy_ns,
    }
    scopes = [Scope("copy", where, location, metrics)]
    for d in result.directions:
        if (
            d.link is None
            or d.link_ratio is None
            or d.count == 0
            or d.direction not in HOST_OR_PEER_DIRECTIONS
        ):
            continue
        direction: Metrics = {
            "where": where,
            "wall_ns": result.wall_ns,
            "direction": d.direction,
            "achieved_gb_per_s": d.achieved_gb_per_s,
            "link_ratio": d.link_ratio,
            "link_name": d.link.name,
            "link_gb_per_s": d.link.gb_per_s,
            "mean_copy_bytes": d.bytes / d.count,
            "exposed_copy_ns": d.exposed_ns,
        }
        notes = {"link_ratio": f"{d.link.name}: {d.link.source}"}
        scopes.append(Scope("copy_direction", f"{d.direction}/{where}", location, direction, notes=notes))
    return _findings(scopes)


def range_findings(row: RangeOverlap, range_regex: str) -> list[Finding]:
    """Load not hidden by compute in a streaming loop range."""
    if row.load_compute_ratio is None or row.serial_efficiency is None:
        return []
    per = max(row.instances, 1)
    metrics: Metrics = {
        "range_name": row.name,
        "range_regex": range_regex,
        "copy_ns": row.copy_ns / per,
        "compute_ns": row.compute_ns / per,
        "load_compute_ratio": row.load_compute_ratio,
        "serial_efficiency": row.serial_efficiency,
        "hidden_ratio": row.hidden_ratio,
        "pageable_copies": row.pageable_count,
        "instances": row.instances,
        "range_actual_ns": row.actual_ns,
        "range_best_ns": max(row.copy_ns, row.compute_ns),
    }
    return _findings([Scope("range", row.name, Location(scope="range", range_name=row.name), metrics)])


def comm_findings(result: CommOverlap) -> list[Finding]:
    """Exposed communication, the M5 caveat, and low bus bandwidth of one rank."""
    if result.comm_time_ns == 0 or result.wall_ns == 0:
        return []
    where = _where(result.rank, result.device)
    location = Location(scope="device", rank=result.rank, device=result.device, category="NCCL")
    algorithms = ", ".join(
        sorted({f"{c.collective} {c.algorithm or '?'}/{c.protocol or '?'}" for c in result.collectives})
    )
    metrics: Metrics = {
        "where": where,
        "exposed_comm_ratio": result.exposed_ratio or 0.0,
        "comm_overlap_ratio": result.overlap_ratio or 0.0,
        "exposed_comm_ns": result.exposed_ns,
        "m5_nccl_ratio": result.m5_nccl_ratio,
        "comm_time_ns": result.comm_time_ns,
        "collectives": algorithms,
    }
    scopes = [Scope("comm", where, location, metrics)]
    for c in result.collectives:
        if c.busbw_gb_per_s is None or c.link is None or c.link_ratio is None or c.message_bytes is None:
            continue
        collective: Metrics = {
            "where": where,
            "collective": c.collective,
            "busbw_gb_per_s": c.busbw_gb_per_s,
            "link_ratio": c.link_ratio,
            "link_name": c.link.name,
            "mean_message_bytes": c.message_bytes,
            "group_size": c.group_size,
        }
        notes = {"link_ratio": f"{c.link.name}: {c.link.source}", "group_size": c.size_source or ""}
        scopes.append(Scope("collective", f"{c.collective}/{where}", location, collective, notes=notes))
    return _findings(scopes)


def rank_findings(view: MultiRankView) -> list[Finding]:
    """Straggler, collective waits and MoE imbalance across ranks."""
    scopes: list[Scope] = []
    rows = {r.rank: r for r in view.ranks}
    if view.straggler_rank is not None:
        row = rows[view.straggler_rank]
        median = median_comm_duration(view)
        late_mean = row.late_mean_ns or 0.0
        metrics: Metrics = {
            "who": row.label,
            "late_share": (row.late_count or 0) / view.matched_collectives,
            "late_mean_ns": row.late_mean_ns,
            "late_mean_ratio": late_mean / median if median else float("inf"),
            "matched_collectives": view.matched_collectives,
            "alignment": view.alignment_method,
            "waits_rough": int(view.waits_rough),
            "others_wait_ns": sum(r.wait_ns or 0 for r in view.ranks if r.rank != row.rank),
            "others_wall_ns": sum(r.wall_ns for r in view.ranks if r.rank != row.rank),
        }
        location = Location(scope="run", rank=row.rank)
        scopes.append(Scope("straggler", f"rank {row.rank}", location, metrics))
    for r in view.ranks:
        if r.wait_ns is None or r.wall_ns == 0:
            continue
        waits: Metrics = {"who": r.label, "wait_ratio": r.wait_ns / r.wall_ns, "wait_ns": r.wait_ns}
        scopes.append(Scope("rank", f"rank {r.rank}", Location(scope="run", rank=r.rank), waits))
    scopes += _moe_scopes(view)
    return _findings(scopes)


def _moe_scopes(view: MultiRankView) -> list[Scope]:
    measures = {
        "all-to-all bytes": {r.rank: float(r.all_to_all_bytes) for r in view.ranks if r.all_to_all_bytes},
        "MoE kernel time": {r.rank: float(r.moe_kernel_ns) for r in view.ranks if r.moe_kernel_ns},
    }
    labels = {r.rank: r.label for r in view.ranks}
    scopes = []
    for measure, values in measures.items():
        if len(values) < 2 or len(values) < len(view.ranks):
            continue
        mean = sum(values.values()) / len(values)
        top = max(values, key=lambda k: values[k])
        metrics: Metrics = {
            "metric": measure,
            "imbalance": values[top] / mean,
            "who": labels[top],
            "per_rank": ", ".join(f"{k}: {v:.3g}" for k, v in values.items()),
            "missing_ranks": len(view.missing_ranks),
        }
        scopes.append(Scope("moe", measure, Location(scope="run", rank=top), metrics))
    return scopes
