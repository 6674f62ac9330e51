"""Optional LLM narrator: findings + evidence in, prose out — and every sentence checked against the evidence.

Off by default; any OpenAI-compatible ``/chat/completions`` endpoint works (``--llm-url``,
``--llm-model``, key from ``INFERSIGHT_LLM_API_KEY`` or ``OPENAI_API_KEY``). The model receives
only the findings (ids, titles, evidence values, thresholds, expected gains, confidence, advice)
and is told to cite a finding id in square brackets in every sentence.

The check (:func:`check_narration`) keeps a sentence only when

1. it cites at least one known finding id (``[small_kernel_storm/dev0]``), and
2. every claim it makes holds in the *cited* findings (:mod:`infersight.advisor.claims`): each
   number is the value of the metric the sentence says it is ("idle 12.9%" is refused when 12.9%
   is the launch-overhead ratio), in a display unit of its kind (fraction -> percent, ns ->
   µs/ms/s), equal at the precision it is written (``12.8`` and ``13`` match 12.83; ``12.9``
   does not); "pct", "percent" and spelled-out numbers are read too; causal and gain claims
   ("will fix it", "a 2x speed-up") hold only when a cited finding advises that lever and its
   expected gain contains the stated gain.

Sentences that fail are dropped and listed with the reason, so an invented number never reaches
the report. Without an LLM the rules' own text is the report.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from infersight.advisor.claims import Claim, check_sentence
from infersight.errors import InputError
from infersight.rules.finding import Finding

__all__ = ["DroppedSentence", "Narration", "check_narration", "evidence_payload", "narrate"]

CITATION = re.compile(r"\[([^\[\]]+)\]")
NARRATION_SCHEMA_VERSION = "1.0"
SYSTEM_PROMPT = (
    "You are writing the summary of an LLM-inference performance report. Use ONLY the findings given as "
    "JSON. Every sentence must cite the id of the finding it is based on in square brackets, e.g. "
    "[small_kernel_storm/dev0], before the final period. State only numbers that appear in the findings "
    "(you may show fractions as percentages and nanoseconds as µs/ms/s). Do not speculate. Plain text, "
    "at most 8 sentences."
)


class NarratedSentence(BaseModel):
    """A sentence that passed the check, with the finding ids it cites."""

    text: str
    cites: list[str]
    claims: list[Claim] = Field(default_factory=list, description="each number and the evidence value it is")


class DroppedSentence(BaseModel):
    """A sentence the check removed, and why."""

    text: str
    reason: str


class Narration(BaseModel):
    """The checked narration: what is shown, what was dropped (flagged), and from which model."""

    schema_version: str = NARRATION_SCHEMA_VERSION
    model: str | None = None
    kept: list[NarratedSentence] = Field(default_factory=list)
    dropped: list[DroppedSentence] = Field(default_factory=list)

    @property
    def text(self) -> str:
        """The kept sentences as one paragraph."""
        return " ".join(s.text for s in self.kept)


def evidence_payload(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """What the model sees: the findings' facts, nothing from the raw trace."""
    return [
        {
            "id": f.id,
            "title": f.title,
            "severity": f.severity,
            "location": f.location.model_dump(exclude_none=True),
            "evidence": [e.model_dump(exclude_none=True) for e in f.evidence],
            "advice": f.advice,
            "expected_gain": f.expected_gain.model_dump() if f.expected_gain else None,
            "confidence": f.confidence,
            "confidence_reason": f.confidence_reason,
        }
        for f in findings
    ]


def _sentences(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+", text.strip()) if p.strip()]
    merged: list[str] = []
    for part in parts:
        if merged and not CITATION.sub("", part).strip(" .;,"):
            merged[-1] = f"{merged[-1]} {part}"  # a citation that trails the period belongs to the sentence
        else:
            merged.append(part)
    return merged


def check_narration(text: str, findings: Sequence[Finding], *, model: str | None = None) -> Narration:
    """Keep the sentences that cite a known finding and whose every claim the cited evidence holds."""
    by_id = {f.id: f for f in findings}
    narration = Narration(model=model)
    for sentence in _sentences(text):
        cites = [c.strip() for c in CITATION.findall(sentence)]
        valid = [c for c in cites if c in by_id]
        if not valid:
            reason = f"cites unknown finding(s) {', '.join(cites)}" if cites else "cites no finding id"
            narration.dropped.append(DroppedSentence(text=sentence, reason=reason))
            continue
        verdict = check_sentence(CITATION.sub("", sentence), [by_id[c] for c in valid])
        if not verdict.ok:
            narration.dropped.append(DroppedSentence(text=sentence, reason=verdict.reason))
            continue
        narration.kept.append(NarratedSentence(text=sentence, cites=valid, claims=verdict.claims))
    return narration


def _endpoint(url: str) -> str:
    base = url.rstrip("/")
    return base if base.endswith("/chat/completions") else f"{base}/chat/completions"


def narrate(
    findings: Sequence[Finding], *, url: str, model: str, api_key: str | None = None, timeout_s: float = 120.0
) -> Narration:
    """Ask the endpoint for a summary of ``findings`` and return it checked (never unchecked)."""
    if not findings:
        return Narration(model=model)
    key = api_key or os.environ.get("INFERSIGHT_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
    body = {
        "model": model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": json.dumps({"findings": evidence_payload(findings)})},
        ],
    }
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        _endpoint(url), data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            reply = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise InputError(None, f"--llm-url {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise InputError(None, f"--llm-url {url}: cannot reach the endpoint ({exc})") from None
    except json.JSONDecodeError:
        raise InputError(None, f"--llm-url {url}: the reply is not JSON") from None
    try:
        content = str(reply["choices"][0]["message"]["content"])
    except (KeyError, IndexError, TypeError):
        raise InputError(None, f"--llm-url {url}: not an OpenAI-compatible chat completion reply") from None
    return check_narration(content, findings, model=str(reply.get("model") or model))
