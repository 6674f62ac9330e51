"""Optional LLM narrator: findings + evidence in, prose out — and every sentence checked against the evidence.

Off by default; any OpenAI-compatible ``/chat/completions`` endpoint works (``--llm-url``,
``--llm-model``, key from ``INFERSIGHT_LLM_API_KEY`` or ``OPENAI_API_KEY``). The model receives
only the findings (ids, titles, evidence values, thresholds, expected gains, confidence, advice)
and is told to cite a finding id in square brackets in every sentence.

The check (:func:`check_narration`) keeps a sentence only when

1. it cites at least one known finding id (``[small_kernel_storm/dev0]``), and
2. every number it states matches a number of the evidence: a value, threshold, expected gain
   or a number written in the findings' own text, directly or in a display unit (fraction ->
   percent, ns -> µs/ms/s, bytes -> KB/MB/GB), equal at the precision the sentence states it
   (``12.8`` matches 12.83; ``13`` matches 12.83; ``12.9`` and ``99.7`` for 99.92 do not).

Sentences that fail are dropped and listed with the reason, so an invented number never reaches
the report. Without an LLM the rules' own text is the report.
"""

from __future__ import annotations

import json
import math
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from infersight.errors import InputError
from infersight.rules.finding import Finding

__all__ = ["DroppedSentence", "Narration", "check_narration", "evidence_payload", "narrate"]

TOKEN = re.compile(r"(?<![\w./\-])([-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?)(\s?(?:%|[a-zA-Zµ×/]+))?")
CITATION = re.compile(r"\[([^\[\]]+)\]")
UNITS = {
    "%",
    "x",
    "×",
    "ns",
    "µs",
    "us",
    "ms",
    "s",
    "b",
    "kb",
    "mb",
    "gb",
    "tb",
    "kib",
    "mib",
    "gib",
    "gb/s",
    "tb/s",
    "mb/s",
    "flop/s",
    "tflop/s",
    "gflop/s",
    "tflops",
    "gflops",
    "kernels",
    "steps",
    "launches",
    "calls",
    "gaps",
    "times",
    "devices",
    "gpus",
    "ranks",
    "layers",
}
SCALES = (1.0, 100.0, 1e-3, 1e-6, 1e-9, 1e-12, 1e3)
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


class DroppedSentence(BaseModel):
    """A sentence the check removed, and why."""

    text: str
    reason: str


class Narration(BaseModel):
    """The checked narration: what is shown, what was dropped (flagged), and from which model."""

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


def _parse(token: str) -> float | None:
    try:
        value = float(token.replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _claims(text: str) -> list[tuple[str, float]]:
    """The numbers a text states, as (written form, value).

    Digits glued to letters or a hyphen (H100, fp8, Llama-3-8B, v2) are names, not numbers;
    a glued unit (35%, 12ms, 3x) keeps the number.
    """
    out = []
    for match in TOKEN.finditer(text):
        unit_raw = match.group(2) or ""
        glued = bool(unit_raw) and not unit_raw[0].isspace()
        if glued and unit_raw.strip().lower() not in UNITS:
            continue
        value = _parse(match.group(1))
        if value is not None:
            out.append((match.group(1).replace(",", ""), value))
    return out


def _numbers_in(text: str) -> list[float]:
    return [value for _written, value in _claims(text)]


def _evidence_numbers(findings: Sequence[Finding]) -> list[float]:
    values: list[float] = []
    for f in findings:
        for e in f.evidence:
            for v in (e.value, e.threshold):
                if isinstance(v, int | float) and not isinstance(v, bool):
                    values.append(float(v))
                elif isinstance(v, str):
                    values += _numbers_in(v)
            values += _numbers_in(e.note)
        if f.expected_gain is not None:
            values += [f.expected_gain.low, f.expected_gain.high]
            values += _numbers_in(f.expected_gain.basis)
        if f.location.time_range_ns is not None:
            start, end = f.location.time_range_ns
            values.append(float(end - start))
        for text in (f.title, f.confidence_reason, *f.advice, *f.verification):
            values += _numbers_in(text)
    return values


def _decimals(written: str) -> int:
    return len(written.split(".")[1]) if "." in written and "e" not in written.lower() else 0


def _matches(stated: float, written: str, evidence: Iterable[float]) -> bool:
    """Equal at the stated precision (half a unit of the last written digit), in any display scale."""
    half_ulp = 0.5 * 10 ** (-_decimals(written))
    for value in evidence:
        for scale in SCALES:
            candidate = value * scale
            if abs(abs(stated) - abs(candidate)) <= half_ulp + 1e-12:
                return True
    return False


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
    """Keep the sentences that cite a known finding and state only evidence numbers (module docstring)."""
    known = {f.id for f in findings}
    evidence = _evidence_numbers(findings)
    narration = Narration(model=model)
    for sentence in _sentences(text):
        cites = [c.strip() for c in CITATION.findall(sentence)]
        valid = [c for c in cites if c in known]
        if not valid:
            reason = f"cites unknown finding(s) {', '.join(cites)}" if cites else "cites no finding id"
            narration.dropped.append(DroppedSentence(text=sentence, reason=reason))
            continue
        body = CITATION.sub("", sentence)
        unmatched = [written for written, value in _claims(body) if not _matches(value, written, evidence)]
        if unmatched:
            narration.dropped.append(
                DroppedSentence(
                    text=sentence, reason=f"number(s) not in the evidence: {', '.join(unmatched)}"
                )
            )
            continue
        narration.kept.append(NarratedSentence(text=sentence, cites=valid))
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
