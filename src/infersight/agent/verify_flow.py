"""verify + knowledge base: compare, write conclusive results back, and rate the recommendation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from infersight.agent.verify import VerifyResult, run_verify
from infersight.kb.confidence import RecommendationConfidence, recommendation_confidence
from infersight.kb.fingerprint import Fingerprint, fingerprint_from_report

if TYPE_CHECKING:
    from infersight.kb.store import KnowledgeBase

__all__ = ["VerifyOutcome", "verify_and_record"]


class VerifyOutcome(BaseModel):
    """The A/B result, where it was stored, and the recommendation's confidence afterwards."""

    result: VerifyResult
    fingerprint: Fingerprint
    recommendation: str | None
    stored_ab_id: int | None
    stored_version: int | None
    confidence: RecommendationConfidence | None
    kb_note: str


def verify_and_record(
    baseline: str,
    candidate: str,
    *,
    repeats: int = 5,
    warmup: int = 1,
    timeout_s: float | None = None,
    recommendation: str | None = None,
    env_report: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    kb: str | None = None,
    use_kb: bool = True,
    progress: Callable[[str], None] | None = None,
) -> VerifyOutcome:
    """Run :func:`run_verify`; conclusive results go to the KB (new version, never overwriting).

    Every input is checked before the first run (the environment report, the knowledge base):
    a minutes-long A/B must not end in an error that was knowable at the start.
    """
    from infersight.kb.store import KnowledgeBase, load_report_json

    base = fingerprint_from_report(load_report_json(env_report)) if env_report is not None else Fingerprint()
    fingerprint = base.merged(overrides or {})
    if not use_kb:
        result = run_verify(
            baseline, candidate, repeats=repeats, warmup=warmup, timeout_s=timeout_s, progress=progress
        )
        cv = max(result.baseline.cv, result.candidate.cv)
        conf = recommendation_confidence(fingerprint, [], sample_cv=cv) if recommendation else None
        return VerifyOutcome(
            result=result,
            fingerprint=fingerprint,
            recommendation=recommendation,
            stored_ab_id=None,
            stored_version=None,
            confidence=conf,
            kb_note="not used (--no-kb)",
        )
    with KnowledgeBase.open(kb) as store:
        result = run_verify(
            baseline, candidate, repeats=repeats, warmup=warmup, timeout_s=timeout_s, progress=progress
        )
        return _record(store, result, fingerprint, baseline, candidate, warmup, recommendation)


def _record(
    store: KnowledgeBase,
    result: VerifyResult,
    fingerprint: Fingerprint,
    baseline: str,
    candidate: str,
    warmup: int,
    recommendation: str | None,
) -> VerifyOutcome:
    """Store a conclusive result and rate the recommendation against the stored history."""
    from infersight.kb.store import AbRecord

    cv = max(result.baseline.cv, result.candidate.cv)
    stored = None
    if result.verdict != "inconclusive":
        stored = store.record_ab(
            AbRecord(
                recommendation_type=recommendation,
                fingerprint=fingerprint,
                mode=result.mode,
                baseline=baseline,
                candidate=candidate,
                repeats=result.repeats,
                warmup=warmup,
                baseline_median_s=result.baseline.median_s,
                baseline_std_s=result.baseline.std_s,
                candidate_median_s=result.candidate.median_s,
                candidate_std_s=result.candidate.std_s,
                baseline_cv=result.baseline.cv,
                candidate_cv=result.candidate.cv,
                gain=result.gain,
                gain_ci_low=result.gain_ci_low,
                gain_ci_high=result.gain_ci_high,
                verdict=result.verdict,
                samples={"baseline": result.baseline.samples_s, "candidate": result.candidate.samples_s},
            )
        )
        note = f"stored A/B result #{stored.id} (version {stored.version})"
    else:
        note = "not stored: the comparison was inconclusive"
    confidence = None
    if recommendation:
        confidence = recommendation_confidence(fingerprint, store.ab_history(recommendation), sample_cv=cv)
    return VerifyOutcome(
        result=result,
        fingerprint=fingerprint,
        recommendation=recommendation,
        stored_ab_id=stored.id if stored else None,
        stored_version=stored.version if stored else None,
        confidence=confidence,
        kb_note=note,
    )
