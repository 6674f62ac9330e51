"""Gain estimators and confidence functions of the bucket rules (copy-, communication-, GPU-bound).

Each reads the attribution metrics of one scope (:mod:`infersight.rules.attribution_metrics`):
the expected gain is the exposed time of the bucket the rule addresses, a measured number of the
trace, and the confidence follows the attribution's margin.
"""

from __future__ import annotations

from infersight.analyses.attribution import confidence_of
from infersight.rules.confidence import confidence_rule
from infersight.rules.estimators import estimator
from infersight.rules.finding import Confidence, ExpectedGain
from infersight.rules.values import Metrics, number
from infersight.units import fmt_duration

PARTIAL_RECOVERY = 0.5  # overlap / prefetch rarely hides all of it: the floor is half


def _bucket_gain(m: Metrics, share_metric: str, ns_metric: str, what: str, how: str) -> ExpectedGain | None:
    share, ns, window = number(m, share_metric), number(m, ns_metric), number(m, "activity_window_ns")
    if share is None or ns is None or window is None or share <= 0:
        return None
    return ExpectedGain(
        low=PARTIAL_RECOVERY * share,
        high=share,
        basis=(
            f"{what} {fmt_duration(ns)} of the {fmt_duration(window)} activity window is the ceiling "
            f"({share:.1%}); {how} typically recovers at least half of it"
        ),
    )


@estimator("exposed_copy")
def estimate_exposed_copy(m: Metrics) -> ExpectedGain | None:
    """All copy-only time at most; half of it when overlap / pinning / fewer copies works partly."""
    return _bucket_gain(
        m, "copy_share", "copy_bucket_ns", "copy-only time", "overlapping or removing the copies"
    )


@estimator("uvm_migration")
def estimate_uvm_migration(m: Metrics) -> ExpectedGain | None:
    """Migration time at most (prefetching moves it off the kernels' critical path)."""
    return _bucket_gain(
        m, "uvm_copy_share", "uvm_copy_ns", "unified-memory migration", "prefetching the pages"
    )


@estimator("exposed_communication")
def estimate_exposed_communication(m: Metrics) -> ExpectedGain | None:
    """All collective-only time at most; half of it when compute overlap works partly."""
    return _bucket_gain(
        m,
        "communication_share",
        "communication_bucket_ns",
        "collective-only time",
        "overlapping communication with compute",
    )


@confidence_rule("bucket")
def confidence_bucket(m: Metrics) -> tuple[Confidence, str]:
    """The attribution's own confidence: its margin when the rule's bucket is the primary one."""
    margin = number(m, "primary_margin")
    primary = m.get("primary_bucket")
    if margin is None:
        return "low", "no wall-time attribution for this scope"
    level: Confidence = confidence_of(margin)
    return level, (
        f"the wall-time attribution puts {primary} first by a margin of {margin:.2f} "
        "(docs/methodology.md §3.2); every bucket is measured directly from interval unions"
    )
