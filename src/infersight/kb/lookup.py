"""KB lookup before analysis: the stored runs like this one, and whether one can answer directly."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.engine import make_url

from infersight.kb.fingerprint import Fingerprint, fingerprint_from_report
from infersight.kb.store import DIRECT_ANSWER_SIMILARITY, KnowledgeBase, LookupMatch, load_report_json

__all__ = ["LOOKUP_SCHEMA_VERSION", "LookupResult", "kb_lookup"]

LOOKUP_SCHEMA_VERSION = "1.1"  # 1.1: GPU names matched through the GPU spec table


class LookupResult(BaseModel):
    """What the lookup found, with a one-line summary for humans and agents."""

    schema_version: str = LOOKUP_SCHEMA_VERSION
    kb_url_redacted: str
    query: Fingerprint
    runs_searched: int
    matches: list[LookupMatch]
    summary: str
    skipped: list[str] = Field(
        default_factory=list, description="stored rows left out because they cannot be read back"
    )


def kb_lookup(
    *,
    kb: str | None = None,
    report: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    top: int = 5,
    min_similarity: float = 0.0,
) -> LookupResult:
    """Rank the stored runs by similarity to the fingerprint of ``report`` and/or ``overrides``."""
    base = fingerprint_from_report(load_report_json(report)) if report is not None else Fingerprint()
    query = base.merged(overrides or {})
    with KnowledgeBase.open(kb) as store:
        skipped: list[str] = []
        matches = store.lookup(query, top=top, min_similarity=min_similarity, skipped=skipped)
        searched = store.count("runs")
        redacted = make_url(store.url).render_as_string(hide_password=True)
    direct = [m for m in matches if m.direct_answer]
    if direct:
        best = direct[0]
        summary = (
            f"run #{best.run_id} ({best.label}) matches with similarity {best.similarity.score:.3f} "
            f">= {DIRECT_ANSWER_SIMILARITY}: its measurements can answer directly; "
            "profile again only to verify"
        )
    elif matches:
        best = matches[0]
        diff = "; ".join(best.similarity.differences) or "fields unknown on one side"
        summary = (
            f"closest run #{best.run_id} has similarity {best.similarity.score:.3f} "
            f"(coverage {best.similarity.coverage:.2f}; differs in {diff}): "
            "use as a hint, profile this environment"
        )
    else:
        summary = "no similar run stored: profile this environment"
    return LookupResult(
        kb_url_redacted=redacted,
        query=query,
        runs_searched=searched,
        matches=matches,
        summary=summary,
        skipped=skipped,
    )
