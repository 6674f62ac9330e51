"""Confidence of a recommendation from its A/B history, environment similarity and sample stability.

methodology §7: confidence grows with the recommendation's historical A/B success rate, the similarity
of the environments those A/B runs were made in, and the stability of the samples. The formula::

    w_i       = similarity(current environment, environment of A/B result i)      (fingerprint.py)
    p_success = (1 + Σ_i w_i·[result i improved]) / (2 + Σ_i w_i)                  Laplace prior 1/2
    S_env     = max_i w_i                       (0 with no history: nothing transfers)
    stability = max(0, 1 - (CV / 0.10)^2)       CV = the larger coefficient of variation of the
                                                current samples (1.0 when no samples are given)
    score     = p_success · (0.5 + 0.5·S_env) · stability

    level     = high   if score >= 0.60
                medium if score >= 0.35
                low    otherwise (and always low when CV > 10%: stability is 0)

The history counts each A/B once: versions of one A/B key (same environment, recommendation,
baseline and candidate — re-running the same command) count as their latest version only, and
records with the same environment and identical samples (the same traces stored under another
path) count once, so repeating an identical verify cannot raise the confidence.

So with no history a recommendation is at most 0.25 (low); one improved A/B result in an
identical environment with steady samples gives 0.67 (high); a failed one pulls it to 0.33.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from infersight.kb.fingerprint import Fingerprint, similarity
from infersight.rules.finding import Confidence

if TYPE_CHECKING:  # no SQLAlchemy needed to compute a confidence
    from infersight.kb.store import StoredAb

__all__ = ["CV_LIMIT", "RecommendationConfidence", "distinct_evidence", "recommendation_confidence"]

CV_LIMIT = 0.10
HIGH_SCORE = 0.60
MEDIUM_SCORE = 0.35


class RecommendationConfidence(BaseModel):
    """The confidence score, its level and every input of the formula (for the report)."""

    score: float
    level: Confidence
    p_success: float
    env_similarity: float
    stability: float
    history_count: int
    weighted_successes: float
    weighted_total: float
    reason: str = Field(description="one sentence a user can check")


def stability_from_cv(cv: float | None) -> float:
    """1 for perfectly steady samples, 0 at or beyond the 10% CV limit (quadratic in between)."""
    if cv is None:
        return 1.0
    return max(0.0, 1.0 - (cv / CV_LIMIT) ** 2)


def distinct_evidence(history: Sequence[StoredAb]) -> list[StoredAb]:
    """The latest version per A/B key, without repeats of identical samples in one environment."""
    latest: dict[str, StoredAb] = {}
    for ab in history:
        if ab.ab_key not in latest or ab.version > latest[ab.ab_key].version:
            latest[ab.ab_key] = ab
    seen: set[tuple[str, str]] = set()
    distinct = []
    for ab in sorted(latest.values(), key=lambda a: a.id):
        content = (ab.fingerprint.key(), repr(sorted(ab.samples.items())))
        if not any(ab.samples.values()) or content not in seen:
            seen.add(content)
            distinct.append(ab)
    return distinct


def recommendation_confidence(
    current: Fingerprint, history: Sequence[StoredAb], *, sample_cv: float | None = None
) -> RecommendationConfidence:
    """Apply the module formula to the A/B ``history`` of one recommendation type."""
    history = distinct_evidence(history)
    weights = [similarity(current, ab.fingerprint).score for ab in history]
    successes = sum(w for w, ab in zip(weights, history, strict=True) if ab.verdict == "improved")
    total = sum(weights)
    p_success = (1.0 + successes) / (2.0 + total)
    env = max(weights, default=0.0)
    stability = stability_from_cv(sample_cv)
    score = p_success * (0.5 + 0.5 * env) * stability
    level: Confidence = "high" if score >= HIGH_SCORE else "medium" if score >= MEDIUM_SCORE else "low"
    improved = sum(1 for ab in history if ab.verdict == "improved")
    cv_text = "no current samples" if sample_cv is None else f"sample CV {sample_cv:.1%}"
    reason = (
        f"{improved}/{len(history)} stored A/B results improved (similarity-weighted success "
        f"{p_success:.2f}), closest environment similarity {env:.2f}, {cv_text} -> score {score:.2f}"
    )
    return RecommendationConfidence(
        score=round(score, 6),
        level=level,
        p_success=round(p_success, 6),
        env_similarity=round(env, 6),
        stability=round(stability, 6),
        history_count=len(history),
        weighted_successes=round(successes, 6),
        weighted_total=round(total, 6),
        reason=reason,
    )
