"""The overlap rules (``data/overlap_rules.toml``) and the gain / confidence functions they name.

The rules are evaluated by the shared engine (:mod:`infersight.rules.evaluate`); this module
registers the overlap estimators and confidence functions, each of which reads the metrics of
one overlap scope (built in :mod:`infersight.overlap.findings`). Every gain is computed from the
trace's own numbers: the exposed time that overlap would hide, never a constant.
"""

from __future__ import annotations

import functools
import tomllib
from importlib import resources

from infersight.rules.confidence import confidence_rule
from infersight.rules.estimators import estimator
from infersight.rules.finding import Confidence, ExpectedGain
from infersight.rules.schema import Rule, parse_rules
from infersight.rules.values import Metrics, number

_TABLE = "overlap_rules.toml"
STRAGGLER_MIN_MATCHED = 10  # fewer matched collectives: the straggler verdict is a small sample


@functools.cache
def overlap_rules() -> tuple[Rule, ...]:
    """The rules of ``data/overlap_rules.toml`` (a finding with zero gain is still reported)."""
    text = (resources.files("infersight") / "data" / _TABLE).read_text(encoding="utf-8")
    return parse_rules(tomllib.loads(text), drop_zero_gain=False)


def threshold(rule_id: str, metric: str) -> float:
    """The threshold of ``metric`` in rule ``rule_id`` (KeyError for an unknown pair: a code bug)."""
    for rule in overlap_rules():
        if rule.id == rule_id:
            for condition in rule.conditions:
                if condition.metric == metric:
                    return condition.threshold
    raise KeyError(f"{rule_id}: no condition on {metric}")


# ---------------------------------------------------------------- estimators


def _up_to(high: float | None, basis: str) -> ExpectedGain | None:
    return None if high is None else ExpectedGain(low=0.0, high=max(0.0, high), basis=basis)


def _share(m: Metrics, part: str, whole: str) -> float | None:
    num, den = number(m, part), number(m, whole)
    return None if num is None or not den else num / den


@estimator("pageable_copy_time")
def estimate_pageable_copy_time(m: Metrics) -> ExpectedGain | None:
    """Up to the pageable copies' time (of the window) once they overlap kernels."""
    share = _share(m, "pageable_copy_time_ns", "wall_ns")
    return _up_to(
        None if share is None else min(1.0, share),
        "up to the pageable copies' time once they overlap kernels",
    )


@estimator("copy_under_compute")
def estimate_copy_under_compute(m: Metrics) -> ExpectedGain | None:
    """Exposed copy time that could run under compute: at most the compute time."""
    exposed, compute = number(m, "exposed_copy_ratio"), _share(m, "compute_busy_ns", "wall_ns")
    return _up_to(
        None if exposed is None or compute is None else min(exposed, compute),
        "exposed copy time that could run under compute (at most the compute time)",
    )


@estimator("direction_exposed_copy")
def estimate_direction_exposed_copy(m: Metrics) -> ExpectedGain | None:
    """Up to the exposed time of the copies of one direction."""
    share = _share(m, "exposed_copy_ns", "wall_ns")
    return _up_to(None if share is None else min(1.0, share), "exposed time of these copies")


@estimator("perfect_prefetch")
def estimate_perfect_prefetch(m: Metrics) -> ExpectedGain | None:
    """The range's GPU span down to max(load, compute) with perfect prefetch."""
    actual, best = number(m, "range_actual_ns"), number(m, "range_best_ns")
    if actual is None or best is None:
        return None
    return _up_to(
        (actual - best) / actual if actual else 0.0,
        "range GPU span down to max(load, compute) with perfect prefetch (of the range's time)",
    )


@estimator("exposed_comm")
def estimate_exposed_comm(m: Metrics) -> ExpectedGain | None:
    """Up to the exposed communication time, if fully overlapped."""
    return _up_to(number(m, "exposed_comm_ratio"), "exposed communication time, if fully overlapped")


@estimator("others_wait")
def estimate_others_wait(m: Metrics) -> ExpectedGain | None:
    """Up to the other ranks' collective wait time (of their wall time)."""
    wait, wall = number(m, "others_wait_ns"), number(m, "others_wall_ns")
    if wait is None or wall is None:
        return None
    return _up_to(min(1.0, wait / wall) if wall else 0.0, "the other ranks' collective wait time")


@estimator("own_wait")
def estimate_own_wait(m: Metrics) -> ExpectedGain | None:
    """Up to this rank's collective wait time."""
    return _up_to(number(m, "wait_ratio"), "this rank's collective wait time")


# ---------------------------------------------------------------- confidence


@confidence_rule("rank_alignment")
def confidence_rank_alignment(m: Metrics) -> tuple[Confidence, str]:
    """Medium with enough matched collectives and one-to-one waits; low otherwise."""
    matched = int(number(m, "matched_collectives") or 0)
    rough = bool(number(m, "waits_rough"))
    level: Confidence = "medium" if matched >= STRAGGLER_MIN_MATCHED and not rough else "low"
    reason = f"{matched} collectives matched across ranks"
    return level, reason + ("; kernels do not pair up one to one, waits are rough" if rough else "")


@confidence_rule("ranks_present")
def confidence_ranks_present(m: Metrics) -> tuple[Confidence, str]:
    """Low when some ranks of the run are missing, medium otherwise."""
    if number(m, "missing_ranks"):
        return "low", "only some ranks are present"
    return "medium", "all ranks present"
