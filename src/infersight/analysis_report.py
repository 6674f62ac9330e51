"""The versioned JSON report of ``analyze``: the global profile, the findings, the theory part.

Why its own module: the report combines results of three floors (analyses' profile, the rules'
findings, the theory report), so it sits above all three — in ``analyses/results.py`` it made
analyses import rules and theory, which import analyses (two import circles). Its schema is
versioned by ``REPORT_SCHEMA_VERSION`` (bump the major on any breaking change).
"""

from __future__ import annotations

from pydantic import BaseModel, Field, computed_field

from infersight.analyses.results import DeviceAttribution, GlobalProfile, PrimaryBottleneck
from infersight.rules.finding import Finding
from infersight.theory.report import TheoryReport

__all__ = ["REPORT_SCHEMA_VERSION", "AnalysisReport"]

REPORT_SCHEMA_VERSION = "1.2"  # 1.1: wall-time attribution; 1.2: theory.schema_version


class AnalysisReport(BaseModel):
    """The versioned JSON report: the profile plus the findings the rules drew from it."""

    schema_version: str = REPORT_SCHEMA_VERSION
    tool_version: str
    profile: GlobalProfile
    findings: list[Finding]
    theory: TheoryReport | None = Field(
        default=None,
        description="roofline theory and measured vs theory (analyze --model/--config); None without a model",
    )

    @computed_field(description="the run's verdict: the largest wall-time bucket (as in profile)")
    def primary_bottleneck(self) -> PrimaryBottleneck | None:
        return self.profile.primary_bottleneck

    @computed_field(description="per device: the four bucket shares (as in profile)")
    def time_attribution(self) -> list[DeviceAttribution]:
        return self.profile.time_attribution
