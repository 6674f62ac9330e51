"""Confidence functions: named functions a rule table refers to by name (``confidence = ...``).

A confidence function reads the measured numbers of one scope and returns a level (high, medium,
low) with the reason it is not higher. Every domain registers its own with
:func:`confidence_rule`; the built-in ones below judge the timeline rules of ``data/rules.toml``.
:func:`lowered` is the shared convention: each reason lowers the level by one step.
"""

from __future__ import annotations

from collections.abc import Callable

from infersight.rules.finding import Confidence
from infersight.rules.values import Metrics, number
from infersight.units import fmt_duration

ConfidenceRule = Callable[[Metrics], tuple[Confidence, str]]
CONFIDENCES: dict[str, ConfidenceRule] = {}
LEVELS: tuple[Confidence, ...] = ("high", "medium", "low")
SMALL_SAMPLE_KERNELS = 1000
SLOW_LAUNCH_NS = 100_000  # a launch call averaging > 100 µs is not launch overhead (launches: 2-5 µs)
ONE_OFF_GAPS = 3  # at most this many gaps > 1 ms holding most of the idle: one-off waits


def confidence_rule(name: str) -> Callable[[ConfidenceRule], ConfidenceRule]:
    """Register ``fn`` as the confidence function ``name``."""

    def register(fn: ConfidenceRule) -> ConfidenceRule:
        if name in CONFIDENCES and CONFIDENCES[name] is not fn:
            raise ValueError(f"confidence function {name!r} registered twice")
        CONFIDENCES[name] = fn
        return fn

    return register


def _t(ns: float) -> str:
    return fmt_duration(ns)


def lowered(reasons: list[str], why_high: str) -> tuple[Confidence, str]:
    """High without reasons; each reason lowers the level one step (at most to low)."""
    level = LEVELS[min(len(reasons), len(LEVELS) - 1)]
    return level, "; ".join(reasons) if reasons else why_high


@confidence_rule("launch_bound")
def confidence_launch_bound(m: Metrics) -> tuple[Confidence, str]:
    """High when the GPU idles (> 30%) and launch overhead is measured; lowered otherwise."""
    reasons = []
    idle = number(m, "idle_ratio")
    if idle is None:
        reasons.append("idle_ratio not applicable")
    elif idle <= 0.30:
        reasons.append(
            f"GPU idle only {idle:.1%}: kernels run back to back, so fusion helps more than graph replay"
        )
    if m.get("launch_overhead_ratio") is None:
        reasons.append("launch_overhead_ratio not applicable (no kernel-launch API calls recorded)")
    count = int(number(m, "kernel_count") or 0)
    if count < SMALL_SAMPLE_KERNELS:
        reasons.append(f"only {count} kernels (< {SMALL_SAMPLE_KERNELS}): a short sample")
    return lowered(reasons, "GPU idle > 30% with launch overhead measured and many kernels")


@confidence_rule("idle")
def confidence_idle(m: Metrics) -> tuple[Confidence, str]:
    """Idle time is measured directly; lowered for short captures or few kernels."""
    reasons = []
    count = int(number(m, "kernel_count") or 0)
    if count < 100:
        reasons.append(f"only {count} kernels: the window may be dominated by start-up")
    wall = number(m, "wall_ns") or 0.0
    if wall < 1_000_000.0:
        reasons.append(f"window only {_t(wall)} long")
    long_ns, long_count, idle = (
        number(m, "gap_gt_1ms_ns"),
        number(m, "gap_gt_1ms_count"),
        number(m, "idle_ns"),
    )
    if long_ns and long_count and idle and long_count <= ONE_OFF_GAPS and long_ns >= 0.5 * idle:
        reasons.append(
            f"{int(long_count)} gap(s) longer than 1 ms hold {long_ns / idle:.0%} of the idle time: "
            "one-off waits (start-up, a synchronisation, a pause between requests) rather than a "
            "per-step cost; cut the window to steady-state steps (--window-nvtx) to confirm"
        )
    return lowered(reasons, "idle time is measured directly from the union of kernel intervals")


@confidence_rule("launch_overhead")
def confidence_launch_overhead(m: Metrics) -> tuple[Confidence, str]:
    """High when the GPU idles, so launch time is on the critical path; else it may be hidden.

    Lowered when launch calls are far slower than a launch costs (> SLOW_LAUNCH_NS on average):
    then their time is first-launch work (lazy module loading, JIT) or a full launch queue.
    """
    reasons = []
    idle = number(m, "idle_ratio")
    if idle is None or idle <= 0.30:
        reasons.append("GPU mostly busy: launch calls overlap kernel execution and may be hidden")
    count = int(number(m, "launch_api_count") or 0)
    if count < 100:
        reasons.append(f"only {count} launch calls: a short sample, dominated by start-up")
    avg = number(m, "avg_launch_ns")
    if avg is not None and avg > SLOW_LAUNCH_NS:
        reasons.append(
            f"launch calls average {_t(avg)} (a launch costs 2-5 µs): start-up or blocking, "
            "not per-launch overhead"
        )
    return lowered(reasons, "launch time measured from API calls and the GPU idles > 30%")


@confidence_rule("cpu_dispatch")
def confidence_cpu_dispatch(m: Metrics) -> tuple[Confidence, str]:
    """CPU capture: high when the thread spends > 30% between operators over many operators."""
    reasons = []
    idle = number(m, "idle_ratio")
    if idle is None:
        reasons.append("idle_ratio not applicable")
    elif idle <= 0.30:
        reasons.append(
            f"only {idle:.1%} of the time lies between operators: the operators' own work dominates, "
            "so fusion saves mostly memory passes, less dispatch"
        )
    count = int(number(m, "kernel_count") or 0)
    if count < SMALL_SAMPLE_KERNELS:
        reasons.append(f"only {count} operators (< {SMALL_SAMPLE_KERNELS}): a short sample")
    return lowered(reasons, "over 30% of the thread's time lies between many short operators")
