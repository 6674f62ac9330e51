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


ParamEstimator = Callable[[Metrics, Mapping[str, float]], ExpectedGain | None]
ESTIMATORS: dict[str, ParamEstimator] = {
    "sol_headroom": estimate_sol_headroom,
    "fewer_bytes": estimate_fewer_bytes,
    "tensor_headroom": estimate_tensor_headroom,
    "bank_conflicts": estimate_bank_conflicts,
    "coalescing": estimate_coalescing,
    "launch_overhead": estimate_launch_overhead,
    "nccl_overlap": estimate_nccl_overlap,
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


def _missing_hint(metric: str, missing: Mapping[str, str]) -> str:
    """'l2_hit_rate_pct (collect it with --section MemoryWorkloadAnalysis ...)' for the report."""
    if metric in missing:
        return f"{metric}: {missing[metric]}"
    base = {"l2_miss_pct": "l2_hit_rate_pct", "busiest_unit_pct": "sm_throughput_pct"}.get(metric, metric)
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
