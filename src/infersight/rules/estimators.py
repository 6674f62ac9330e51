"""Expected-gain estimators: named functions a rule table refers to by name (``estimator = ...``).

An estimator reads the measured numbers of one scope and returns the expected gain as a range
with the basis of the estimate, or None when the scope lacks the numbers. Every domain registers
its own with :func:`estimator`; the built-in ones below size the timeline rules of
``data/rules.toml`` (idle gaps and launch cost, in fractions of the scope's wall time).
"""

from __future__ import annotations

from collections.abc import Callable

from infersight.rules.finding import ExpectedGain
from infersight.rules.values import Metrics, number, ratio
from infersight.units import fmt_duration

Estimator = Callable[[Metrics], ExpectedGain | None]
ESTIMATORS: dict[str, Estimator] = {}


def estimator(name: str) -> Callable[[Estimator], Estimator]:
    """Register ``fn`` as the estimator ``name`` (a second function of the same name is a bug)."""

    def register(fn: Estimator) -> Estimator:
        if name in ESTIMATORS and ESTIMATORS[name] is not fn:
            raise ValueError(f"estimator {name!r} registered twice")
        ESTIMATORS[name] = fn
        return fn

    return register


@estimator("not_sized")
def estimate_not_sized(m: Metrics) -> ExpectedGain | None:
    """No gain figure: the rule names a problem whose size the measured numbers do not give
    (e.g. kernel speed-ups need the roofline (--model) or Nsight Compute)."""
    return None


def _t(ns: float) -> str:
    return fmt_duration(ns)


@estimator("short_gaps")
def estimate_short_gaps(m: Metrics) -> ExpectedGain | None:
    """Graphs/fusion recover the short (< 100 µs) inter-kernel gaps: [0.5, 1.0] x that time / wall."""
    short, wall = number(m, "short_gap_ns"), number(m, "wall_ns")
    share = ratio(short, wall)
    if share is None or short is None or wall is None:
        return None
    return ExpectedGain(
        low=0.5 * share,
        high=share,
        basis=(
            f"idle gaps shorter than 100 µs total {_t(short)} of {_t(wall)} wall ({share:.1%}); "
            "CUDA graphs/fusion typically remove half to all of that dispatch latency"
        ),
    )


@estimator("cpu_op_gaps")
def estimate_cpu_op_gaps(m: Metrics) -> ExpectedGain | None:
    """CPU capture: fewer, fused operators recover the short (< 100 µs) time between operators.

    Between dominant CPU operators the host thread runs Python and the PyTorch dispatcher, a
    fixed cost per operator; fusion (torch.compile) removes half to all of it: [0.5, 1.0] x that
    time / wall. No GPU mechanism (launches, graphs) is involved.
    """
    short, wall = number(m, "short_gap_ns"), number(m, "wall_ns")
    share = ratio(short, wall)
    if share is None or short is None or wall is None:
        return None
    return ExpectedGain(
        low=0.5 * share,
        high=share,
        basis=(
            f"time between CPU operators in stretches shorter than 100 µs totals {_t(short)} of "
            f"{_t(wall)} wall ({share:.1%}): per-operator Python/dispatcher overhead, which fusing "
            "operators (torch.compile) typically removes half to all of"
        ),
    )


@estimator("eager_short_gaps")
def estimate_eager_short_gaps(m: Metrics) -> ExpectedGain | None:
    """With graphs in use only the short gaps next to eager kernels are recoverable by wider capture.

    Gaps inside a graph replay are already the graph's own minimum; when the analysis could not
    tell which gaps border eager kernels (phases), fall back to all short gaps and say so.
    """
    eager, wall = number(m, "eager_short_gap_ns"), number(m, "wall_ns")
    share = ratio(eager, wall)
    if share is None or eager is None or wall is None:
        gain = estimate_short_gaps(m)
        if gain is None:
            return None
        return gain.model_copy(
            update={
                "basis": gain.basis + "; gaps next to eager kernels are not computed for this scope, "
                "so gaps inside graph replays are counted too (an upper estimate)"
            }
        )
    short = number(m, "short_gap_ns") or 0.0
    coverage = number(m, "graph_coverage") or 0.0
    return ExpectedGain(
        low=0.5 * share,
        high=share,
        basis=(
            f"CUDA graphs already replay {coverage:.0%} of kernels, so only idle gaps shorter than "
            f"100 µs next to an eager kernel count: {_t(eager)} of {_t(wall)} wall ({share:.1%}; "
            f"{_t(max(short - eager, 0.0))} of short gaps inside graph replays excluded); widening "
            "capture or fusing the eager kernels removes half to all of it"
        ),
    )


@estimator("idle_time")
def estimate_idle_time(m: Metrics) -> ExpectedGain | None:
    """At most all idle time; at least half of the idle in gaps < 1 ms (host overhead, not waits)."""
    idle, wall = number(m, "idle_ns"), number(m, "wall_ns")
    high = ratio(idle, wall)
    low = ratio(number(m, "gap_lt_1ms_ns"), wall)
    if high is None or idle is None or wall is None:
        return None
    low_v = min(0.5 * (low or 0.0), high)
    return ExpectedGain(
        low=low_v,
        high=high,
        basis=(
            f"idle {_t(idle)} of {_t(wall)} wall is the ceiling ({high:.1%}); "
            f"the floor is half the idle in gaps < 1 ms ({low_v:.1%}), "
            "the part host-side fixes reliably recover"
        ),
    )


def _exposed_launch(m: Metrics, idle_metric: str, idle_label: str, note: str) -> ExpectedGain | None:
    launch, idle, wall = number(m, "launch_api_ns"), number(m, idle_metric), number(m, "wall_ns")
    if launch is None or idle is None or wall is None:
        return None
    exposed = min(launch, idle)
    share = ratio(exposed, wall)
    if share is None:
        return None
    return ExpectedGain(
        low=0.5 * share,
        high=share,
        basis=(
            f"launch calls {_t(launch)}, {idle_label} {_t(idle)}: at most min(launch, idle) = "
            f"{_t(exposed)} of {_t(wall)} wall ({share:.1%}) is exposed launch cost{note}"
        ),
    )


@estimator("exposed_launch_time")
def estimate_exposed_launch_time(m: Metrics) -> ExpectedGain | None:
    """Launch time only costs wall time where the GPU idles: min(launch, idle), [0.5, 1.0] x that."""
    return _exposed_launch(m, "idle_ns", "GPU idle", "")


@estimator("eager_exposed_launch_time")
def estimate_eager_exposed_launch_time(m: Metrics) -> ExpectedGain | None:
    """With graphs in use, only the idle next to eager kernels is launch cost wider capture removes."""
    if number(m, "eager_gap_ns") is None:
        gain = estimate_exposed_launch_time(m)
        if gain is None:
            return None
        return gain.model_copy(
            update={"basis": gain.basis + "; gaps next to eager kernels are not computed for this scope"}
        )
    coverage = number(m, "graph_coverage") or 0.0
    return _exposed_launch(
        m,
        "eager_gap_ns",
        "GPU idle next to eager kernels",
        f" (CUDA graphs already replay {coverage:.0%} of kernels; idle inside graph replays excluded)",
    )
