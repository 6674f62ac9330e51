"""The kernel deep-dive rules (``data/ncu_rules.toml``) -> findings with evidence.

The rules are evaluated by the shared engine (:mod:`infersight.rules.evaluate`) on one scope per
profiled kernel (its canonical metrics) and one for the run (communication-bound). A missing
condition metric means "not evaluated" and the check names the metric and the ncu section that
would settle it. Supporting conditions that are missing do not stop the rule but lower the
confidence, and the reason names them too. The expected gain is computed by a named estimator
(registered here) from the kernel's own measured numbers and the table's ``[estimators]``
parameters.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from infersight.ncu.metrics import metric_table
from infersight.ncu.results import RuleCheck
from infersight.rules.confidence import confidence_rule
from infersight.rules.estimators import estimator
from infersight.rules.evaluate import Scope, check_rule
from infersight.rules.finding import Confidence, ExpectedGain, Finding, Location
from infersight.rules.schema import Rule, parse_rules
from infersight.rules.values import Metrics, number

DURATION_CV_LIMIT = 0.10  # run-to-run variation above 10% lowers confidence (docs/methodology.md §7)
PREFIX = "ncu"  # finding ids ncu/<rule>/<kernel>, types ncu_<rule>
COUNT_METRICS = frozenset(
    {"grid_blocks", "block_threads", "sm_count", "blocks_per_sm", "block_partial_warp_threads"}
)


def _table() -> Mapping[str, Any]:
    text = resources.files("infersight").joinpath("data/ncu_rules.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@cache
def estimator_params() -> Mapping[str, float]:
    """The ``[estimators]`` parameters of ncu_rules.toml."""
    return {k: float(v) for k, v in _table()["estimators"].items()}


@cache
def load_kernel_rules() -> tuple[Rule, ...]:
    """The rules shipped in infersight/data/ncu_rules.toml (a zero gain is still reported)."""
    return parse_rules(_table(), drop_zero_gain=False)


# ---------------------------------------------------------------- estimators


def _num(m: Metrics, name: str) -> float | None:
    return number(m, name)


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def estimate_sol_headroom(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """Time can shrink until the busiest unit reaches the latency threshold (low) / ceiling (high)."""
    busiest = _num(m, "busiest_unit_pct")
    if busiest is None:
        return None
    ceiling, latency = p["practical_ceiling_pct"], p["latency_threshold_pct"]
    floor = _floor_cap(m, p)
    basis = (
        f"busiest unit at {busiest:.0f}% of peak; at {latency:.0f}%-{ceiling:.0f}% the same work takes "
        f"{busiest / latency:.0%}-{busiest / ceiling:.0%} of today's time"
    )
    if floor < 1.0:
        basis += f"; capped at {floor:.0%} by the {p['min_kernel_ns'] / 1e3:.0f} µs kernel floor"
    return ExpectedGain(
        low=min(floor, _clamp(1 - busiest / latency)),
        high=min(floor, _clamp(1 - busiest / ceiling)),
        unit="fraction_of_kernel_time",
        basis=basis,
    )


def _floor_cap(m: Metrics, p: Mapping[str, float]) -> float:
    """The largest fraction of a kernel's time any change can save: 1 - floor / duration."""
    duration = _num(m, "duration_ns")
    if duration is None or duration <= 0:  # no measured duration: no floor to cap by
        return 1.0
    return _clamp(1 - p["min_kernel_ns"] / duration)


def estimate_fewer_bytes(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """A DRAM-bound kernel's time scales with its bytes: saving a fraction of them saves that share."""
    dram = _num(m, "dram_throughput_pct")
    if dram is None:
        return None
    share = dram / 100
    low, high = p["bytes_saved_low"], p["bytes_saved_high"]
    return ExpectedGain(
        low=_clamp(low * share),
        high=_clamp(high * share),
        unit="fraction_of_kernel_time",
        basis=f"DRAM busy {dram:.0f}% of the kernel; moving {low:.0%}-{high:.0%} fewer bytes "
        "(8-bit instead of 16-bit data for part / all of the traffic)",
    )


def estimate_tensor_headroom(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """Tensor pipe from u% to the 40% threshold (low) or a tuned GEMM's target (high), capped by memory."""
    tensor = _num(m, "tensor_pipe_pct")
    if tensor is None:
        return None
    memory = _num(m, "memory_throughput_pct") or 0.0
    cap = _clamp(1 - memory / p["practical_ceiling_pct"])
    target = p["tensor_target_pct"]
    return ExpectedGain(
        low=min(cap, _clamp(1 - tensor / 40.0)),
        high=min(cap, _clamp(1 - tensor / target)),
        unit="fraction_of_kernel_time",
        basis=f"tensor pipe {tensor:.0f}% -> 40%-{target:.0f}%, capped by memory throughput {memory:.0f}%",
    )


def estimate_bank_conflicts(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """Conflicts replay shared-memory wavefronts: removing c per request saves c/(1+c) of them."""
    conflicts = _num(m, "bank_conflicts_per_request")
    if conflicts is None or conflicts < 0:
        return None
    saved = conflicts / (1 + conflicts)
    busiest = _num(m, "busiest_unit_pct")
    high = min(saved, _clamp(1 - busiest / p["practical_ceiling_pct"])) if busiest is not None else saved
    return ExpectedGain(
        low=0.0,
        high=_clamp(high),
        unit="fraction_of_kernel_time",
        basis=f"{conflicts:.1f} conflicts per request replay {saved:.0%} of shared-memory wavefronts; "
        "the gain reaches that only when shared memory limits the kernel",
    )


def estimate_coalescing(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """Excess sectors are wasted traffic: coalescing saves 1 - ideal/actual of the load traffic."""
    sectors = _num(m, "global_load_sectors_per_request")
    if sectors is None or sectors <= 0:
        return None
    ideal = p["coalesced_sectors_per_request"]
    wasted = _clamp(1 - ideal / sectors)
    memory = _num(m, "memory_throughput_pct")
    share = memory / 100 if memory is not None else 1.0
    return ExpectedGain(
        low=0.0,
        high=_clamp(wasted * share),
        unit="fraction_of_kernel_time",
        basis=f"{sectors:.1f} sectors/request vs {ideal:.0f} when coalesced: {wasted:.0%} of load sectors "
        f"are excess, times the memory-busy share ({share:.0%})",
    )


def estimate_launch_overhead(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """CUDA graphs remove a per-launch host cost: count x cost / wall time of the trace."""
    count, wall = _num(m, "trace_count"), _num(m, "trace_wall_ns")
    if count is None or not wall:
        return None
    low, high = p["launch_cost_low_ns"], p["launch_cost_high_ns"]
    return ExpectedGain(
        low=_clamp(count * low / wall),
        high=_clamp(count * high / wall),
        unit="fraction_of_wall_time",
        basis=f"{count:,.0f} launches x {low / 1e3:.0f}-{high / 1e3:.0f} µs of launch cost over "
        f"{wall / 1e6:.1f} ms of trace wall time",
    )


def estimate_nccl_overlap(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """Overlapping collectives hides their time: down to the 20% threshold (low) or all of it (high)."""
    share = _num(m, "nccl_share")
    if share is None:
        return None
    return ExpectedGain(
        low=_clamp(share - 0.2),
        high=_clamp(share),
        unit="fraction_of_kernel_time",
        basis=f"NCCL kernels are {share:.0%} of GPU kernel time; "
        "overlap hides part (down to 20%) or all of it",
    )


def _issue_headroom(m: Metrics) -> float | None:
    """Nsight Compute's cap for occupancy and issue gains: 1 - the busiest unit's share of peak
    (its IssueSlotUtilization rule passes this to TheoreticalOccupancy/AchievedOccupancy)."""
    busiest = _num(m, "busiest_unit_pct")
    return None if busiest is None else _clamp(1 - busiest / 100)


def _sol_low(m: Metrics, p: Mapping[str, float]) -> float:
    """The conservative end: the busiest unit reaching the latency threshold (60%)."""
    busiest = _num(m, "busiest_unit_pct")
    return 0.0 if busiest is None else _clamp(1 - busiest / p["latency_threshold_pct"])


def estimate_grid_fill(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """Filling the GPU: time scales with the waves the grid fills (saves 1 - waves at best)."""
    waves = _num(m, "waves_per_sm")
    if waves is None:
        return None
    ideal = _clamp(1 - waves)
    floor = _floor_cap(m, p)
    share = p["split_efficiency_low"]
    return ExpectedGain(
        low=min(floor, ideal * share),
        high=min(floor, ideal),
        unit="fraction_of_kernel_time",
        basis=f"the grid fills {waves:.2f} waves: spread over every SM the same work takes {waves:.0%} of "
        f"today's time (high); split overhead keeps {share:.0%} of that saving (low); capped at "
        f"{floor:.0%} by the {p['min_kernel_ns'] / 1e3:.0f} µs kernel floor",
    )


def estimate_tail(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """A partial last wave costs up to one wave of 1 + full waves (Nsight Compute's tail estimate)."""
    tail = _num(m, "tail_effect_pct")
    if tail is None:
        return None
    return ExpectedGain(
        low=0.0,
        high=_clamp(tail / 100),
        unit="fraction_of_kernel_time",
        basis=f"the last partial wave is up to {tail:.0f}% of the waves (1 / (1 + full waves))",
    )


def estimate_block_size(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """Idle lanes of the last warp: (1 / warps) x (1 - used lanes / 32), Nsight Compute's estimate."""
    threads, lanes = _num(m, "block_threads"), _num(m, "block_partial_warp_threads")
    if threads is None or lanes is None or threads <= 0:
        return None
    size = p["warp_size"]
    warps = -(-threads // size)
    wasted = (1 / warps) * (1 - lanes / size) if lanes else 0.0
    return ExpectedGain(
        low=0.0,
        high=_clamp(wasted),
        unit="fraction_of_kernel_time",
        basis=f"{lanes:.0f} of {size:.0f} lanes of the last of {warps:.0f} warps work",
    )


def estimate_memory_traffic(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """Memory-system time shrinks with the bytes moved (``fewer_bytes`` on the SOL memory %)."""
    return _busy_share_gain(
        _num(m, "sol_memory_pct"),
        "memory",
        p,
        "moving {low:.0%}-{high:.0%} fewer bytes saves that share of it",
    )


def estimate_fewer_ops(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """A compute-bound kernel's time scales with its math: halving precision or work saves that share."""
    return _busy_share_gain(
        _num(m, "sm_throughput_pct"),
        "SM",
        p,
        "{low:.0%}-{high:.0%} less or cheaper math (redundant work, lower-precision tensor cores) "
        "saves that share of it",
    )


def _busy_share_gain(
    busy_pct: float | None, unit: str, p: Mapping[str, float], saving: str
) -> ExpectedGain | None:
    """The ``bytes_saved_low``-``high`` fraction of the share of time the busy unit works."""
    if busy_pct is None:
        return None
    low, high = p["bytes_saved_low"], p["bytes_saved_high"]
    return ExpectedGain(
        low=_clamp(low * busy_pct / 100),
        high=_clamp(high * busy_pct / 100),
        unit="fraction_of_kernel_time",
        basis=f"{unit} busy {busy_pct:.0f}% of peak; " + saving.format(low=low, high=high),
    )


def estimate_occupancy(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """More warps per SM: at best the missing share of warps (1 - theoretical), capped like ncu by
    the busiest unit's headroom; the low end is the busiest unit reaching the latency threshold."""
    theoretical, cap = _num(m, "theoretical_occupancy_pct"), _issue_headroom(m)
    if theoretical is None or cap is None:
        return None
    high = min(_clamp(1 - theoretical / 100), cap, _floor_cap(m, p))
    return ExpectedGain(
        low=min(high, _sol_low(m, p)),
        high=high,
        unit="fraction_of_kernel_time",
        basis=f"{100 - theoretical:.0f}% of the SM's warp slots cannot be used; capped by the busiest unit's "
        f"headroom ({cap:.0%}) and the kernel floor",
    )


def estimate_achieved_gap(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """Closing the occupancy gap: (theoretical - achieved) / theoretical, capped as ncu does."""
    theoretical, achieved = _num(m, "theoretical_occupancy_pct"), _num(m, "achieved_occupancy_pct")
    cap = _issue_headroom(m)
    if theoretical is None or achieved is None or theoretical <= 0 or cap is None:
        return None
    high = min(_clamp((theoretical - achieved) / theoretical), cap, _floor_cap(m, p))
    return ExpectedGain(
        low=0.0,
        high=high,
        unit="fraction_of_kernel_time",
        basis=f"warps active {achieved:.0f}% of the time against {theoretical:.0f}% possible; capped by the "
        f"busiest unit's headroom ({cap:.0%})",
    )


def estimate_issue_headroom(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """Idle issue slots: the busiest unit can rise to the latency threshold (low) or to its peak (high)."""
    cap = _issue_headroom(m)
    if cap is None:
        return None
    floor = _floor_cap(m, p)
    return ExpectedGain(
        low=min(floor, _sol_low(m, p)),
        high=min(floor, cap),
        unit="fraction_of_kernel_time",
        basis=f"busiest unit at {100 * (1 - cap):.0f}% of peak: busier issue slots can take it to "
        f"{p['latency_threshold_pct']:.0f}% (low) or its peak (high), within the kernel floor",
    )


ParamEstimator = Callable[[Metrics, Mapping[str, float]], ExpectedGain | None]
ESTIMATORS: dict[str, ParamEstimator] = {
    "sol_headroom": estimate_sol_headroom,
    "fewer_bytes": estimate_fewer_bytes,
    "tensor_headroom": estimate_tensor_headroom,
    "bank_conflicts": estimate_bank_conflicts,
    "coalescing": estimate_coalescing,
    "launch_overhead": estimate_launch_overhead,
    "nccl_overlap": estimate_nccl_overlap,
    "grid_fill": estimate_grid_fill,
    "tail": estimate_tail,
    "block_size": estimate_block_size,
    "memory_traffic": estimate_memory_traffic,
    "fewer_ops": estimate_fewer_ops,
    "occupancy": estimate_occupancy,
    "achieved_gap": estimate_achieved_gap,
    "issue_headroom": estimate_issue_headroom,
}


def _register(name: str, fn: ParamEstimator) -> None:
    estimator(f"ncu_{name}")(lambda m: fn(m, estimator_params()))


for _name, _fn in ESTIMATORS.items():
    _register(_name, _fn)


# ---------------------------------------------------------------- confidence


@confidence_rule("ncu_counters")
def confidence_counters(m: Metrics) -> tuple[Confidence, str]:
    """High when every condition is measured and launches agree; lowered by unmeasured supporting
    counters, launch-to-launch variation (> 10%) and a single profiled launch."""
    reasons: list[str] = []
    unmeasured = m.get("unmeasured_supporting")
    if isinstance(unmeasured, str) and unmeasured:
        reasons.append("not measured: " + unmeasured)
    cv = number(m, "launch_duration_cv")
    if cv is not None and cv > DURATION_CV_LIMIT:
        reasons.append(
            f"launch durations vary by {cv:.0%} (> 10%): re-measure with warm-up and "
            "repeats and compare medians"
        )
    launches = number(m, "profiled_launches")
    if launches is not None and launches < 2:
        reasons.append("one profiled launch: profile a few (--launch-count 5) to see the variation")
    if not reasons:
        return "high", "every condition measured on the kernel's counters; launches agree within 10%"
    count = int(number(m, "unmeasured_supporting_count") or 0)
    level: Confidence = "low" if count > 1 or (count and len(reasons) > 1) else "medium"
    return level, "; ".join(reasons)


# ---------------------------------------------------------------- evaluation


# derived rule metrics -> the canonical metric whose collection settles them
DERIVED_FROM = {
    "l2_miss_pct": "l2_hit_rate_pct",
    "busiest_unit_pct": "sm_throughput_pct",
    "sol_memory_pct": "memory_throughput_pct",
    "memory_lead_pct": "memory_throughput_pct",
    "compute_lead_pct": "sm_throughput_pct",
    "occupancy_gap_pct": "achieved_occupancy_pct",
    "tail_effect_pct": "waves_per_sm",
    "grid_blocks_per_sm": "sm_count",
    "block_partial_warp_threads": "block_threads",
    "issue_every_cycles": "issue_active_pct",
    "blocks_per_sm": "block_limit_registers",
    "limiter_registers": "block_limit_registers",
    "limiter_shared_mem": "block_limit_shared_mem",
    "limiter_warps": "block_limit_warps",
    "limiter_blocks": "block_limit_blocks",
    "top_stall_share_pct": "stall_long_scoreboard_pct",
}


def _missing_hint(metric: str, missing: Mapping[str, str]) -> str:
    """'l2_hit_rate_pct (collect it with --section MemoryWorkloadAnalysis ...)' for the report."""
    if metric in missing:
        return f"{metric}: {missing[metric]}"
    base = DERIVED_FROM.get(metric, metric)
    spec = metric_table().metrics.get(base)
    if spec is not None:
        return f"{metric}: {spec.settle_hint()}"
    if metric.startswith("trace_") or metric == "nccl_share":
        return f"{metric}: needs the nsys/Kineto trace of the same run (--trace)"
    return f"{metric}: not measured"


def unit(metric: str) -> str:
    """Evidence units of the ncu metrics: percentages of peak, durations, shares of kernel time."""
    if metric.endswith("_pct"):
        return "%"
    if metric in COUNT_METRICS:
        return "count"
    if metric.endswith("_ns"):
        return "ns"
    return "fraction" if metric.endswith("_share") else ""


@dataclass
class KernelScope:
    """What a rule sees: one kernel (or the run) and its metrics."""

    key: str
    category: str
    location: Location
    metrics: Metrics
    missing: Mapping[str, str]
    duration_cv: float | None = None
    launches: int = 1
    not_applicable: frozenset[str] = frozenset()
    kind: str = "kernel"

    def scope(self, rules: tuple[Rule, ...]) -> Scope:
        """The shared engine's scope: metrics plus what confidence reads, hints for every rule metric."""
        names = {c.metric for r in rules for c in r.conditions + r.supporting}
        extra: Metrics = {"launch_duration_cv": self.duration_cv}
        if self.kind == "kernel":
            extra["profiled_launches"] = self.launches
        return Scope(
            kind=self.kind,
            key=self.key,
            location=self.location,
            metrics={**self.metrics, **extra},
            category=self.category,
            missing={n: _missing_hint(n, self.missing).removeprefix(f"{n}: ") for n in names},
            not_applicable=self.not_applicable,
        )


def evaluate(rule: Rule, scope: KernelScope) -> tuple[Finding | None, RuleCheck]:
    """One rule on one scope: the finding (or None) and the check record for the report."""
    check = check_rule(rule, scope.scope(load_kernel_rules()), unit=unit, prefix=PREFIX)
    return check.finding, RuleCheck(
        rule=rule.id, kernel=scope.key, status=check.status, missing=list(check.missing)
    )
