"""The theory part of a report: estimate, measured-vs-theory rows, focus set and findings."""

from __future__ import annotations

from pydantic import BaseModel, Field

from infersight.rules.finding import Finding
from infersight.theory.estimates import ModelEstimate
from infersight.theory.measured import FocusSet, MeasuredVsTheory

# MAJOR.MINOR of the roofline JSON: a new optional field bumps the minor, a breaking change the major.
ROOFLINE_SCHEMA_VERSION = "1.0"


class TheoryReport(BaseModel):
    """What ``infersight roofline`` writes as JSON and ``analyze --model`` embeds as ``theory``."""

    schema_version: str = ROOFLINE_SCHEMA_VERSION
    estimate: ModelEstimate
    measured: MeasuredVsTheory | None = Field(
        default=None, description="measured kernel time vs theory per (phase, category); None without a trace"
    )
    focus: FocusSet | None = Field(
        default=None, description="TopK(time) ∪ {E_roof < τ_E}; None without a trace"
    )
    findings: list[Finding] = Field(default_factory=list, description="measured TTFT/TPOT/tokens/s vs theory")
