"""verify + knowledge base: compare, write conclusive results back, and rate the recommendation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from infersight.advisor.verify import VerifyResult, run_verify
from infersight.errors import InputError
from infersight.kb.confidence import RecommendationConfidence, recommendation_confidence
from infersight.kb.fingerprint import Fingerprint, fingerprint_from_report

if TYPE_CHECKING:
    from infersight.kb.store import KnowledgeBase, StoredAb

__all__ = ["VERIFY_SCHEMA_VERSION", "VerifyOutcome", "verify_and_record"]

VERIFY_SCHEMA_VERSION = "1.1"  # 1.1: comparable, environment_differences, per-side environment


class VerifyOutcome(BaseModel):
    """The A/B result, where it was stored, and the recommendation's confidence afterwards."""

    schema_version: str = VERIFY_SCHEMA_VERSION
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
    allow_env_change: bool = False,
    progress: Callable[[str], None] | None = None,
) -> VerifyOutcome:
    """Run :func:`run_verify`; conclusive results go to the KB (new version, never overwriting).

    Every input is checked before the first run (the environment report, the knowledge base):
    a minutes-long A/B must not end in an error that was knowable at the start. Two sides from
    different environments (GPU model or count, engine, model, dtype, TP, shapes) measure the
    environment, not the change: refused unless ``allow_env_change``, and then marked not
    comparable and never stored. An A/B identical to a stored one (same inputs, same samples) is
    not stored again, so re-running a command cannot inflate the recommendation's confidence.
    """
    from infersight.kb.store import KnowledgeBase, load_report_json

    env = fingerprint_from_report(load_report_json(env_report)) if env_report is not None else None

    def measured() -> tuple[VerifyResult, Fingerprint]:
        result = _comparable_result(
            run_verify(
                baseline, candidate, repeats=repeats, warmup=warmup, timeout_s=timeout_s, progress=progress
            ),
            allow_env_change,
        )
        base = env if env is not None else result.baseline.environment  # traces say which GPU it ran on
        base = base if base is not None else Fingerprint()
        return result, base.merged(overrides or {})

    if not use_kb:
        result, fingerprint = measured()
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
        result, fingerprint = measured()
        return _record(store, result, fingerprint, baseline, candidate, warmup, recommendation)


def _comparable_result(result: VerifyResult, allow_env_change: bool) -> VerifyResult:
    """The result, refused (or marked) when the two sides ran in different environments."""
    if result.comparable:
        return result
    differences = "; ".join(result.environment_differences)
    if not allow_env_change:
        raise InputError(
            None,
            f"baseline and candidate ran in different environments ({differences}): the A/B would "
            "measure the environment, not the change; pass --allow-env-change to compare anyway",
        )
    result.reason = f"NOT COMPARABLE ({differences}); {result.reason}"
    return result


def _record(
    store: KnowledgeBase,
    result: VerifyResult,
    fingerprint: Fingerprint,
    baseline: str,
    candidate: str,
    warmup: int,
    recommendation: str | None,
) -> VerifyOutcome:
    """Store a conclusive, comparable, new result and rate the recommendation against the history."""
    from infersight.kb.store import AbRecord

    cv = max(result.baseline.cv, result.candidate.cv)
    stored = None
    history = store.ab_history(recommendation) if recommendation else store.ab_history()
    if not result.comparable:
        note = "not stored: baseline and candidate ran in different environments"
    elif result.verdict == "inconclusive":
        note = "not stored: the comparison was inconclusive"
    elif (same := _identical(history, fingerprint, recommendation, baseline, candidate, result)) is not None:
        stored = same
        note = f"not stored again: identical to A/B result #{same.id} (same inputs and measurements)"
    else:
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


def _identical(
    history: list[StoredAb],
    fingerprint: Fingerprint,
    recommendation: str | None,
    baseline: str,
    candidate: str,
    result: VerifyResult,
) -> StoredAb | None:
    """A stored A/B with the same inputs, environment and samples: re-recording it adds no evidence."""
    samples = {"baseline": result.baseline.samples_s, "candidate": result.candidate.samples_s}
    for ab in reversed(history):
        if (
            ab.recommendation_type == recommendation
            and ab.baseline == baseline
            and ab.candidate == candidate
            and ab.fingerprint.key() == fingerprint.key()
            and ab.samples == samples
        ):
            return ab
    return None
