"""The versioned JSON report of ``analyze``: the global profile, the findings, the theory part.

Why its own module: the report combines results of three floors (analyses' profile, the rules'
findings, the theory report), so it sits above all three — in ``analyses/results.py`` it made
analyses import rules and theory, which import analyses (two import circles). Its schema is
versioned by ``REPORT_SCHEMA_VERSION`` (bump the major on any breaking change).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, computed_field

from infersight.analyses.results import DeviceAttribution, GlobalProfile, PrimaryBottleneck
from infersight.rules.finding import Finding
from infersight.theory.report import TheoryReport

if TYPE_CHECKING:
    import pandas as pd

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

    # ------------------------------------------------------------ tables as pandas DataFrames
    # For notebooks (like HTA's TraceAnalysis): each main table of the report as a DataFrame, one
    # row per item, nested fields flattened with dots ("shares.gpu"). The report stays the source.

    def kernels_frame(self) -> pd.DataFrame:
        """Kernels by GPU time, as in the report's kernel table."""
        return _frame(self.profile.kernels)

    def categories_frame(self) -> pd.DataFrame:
        """GPU time per kernel category (GEMM, attention, communication, ...)."""
        return _frame(self.profile.categories)

    def ranges_frame(self) -> pd.DataFrame:
        """NVTX/annotation ranges with their GPU time."""
        return _frame(self.profile.ranges)

    def devices_frame(self) -> pd.DataFrame:
        """Per device: busy, idle, kernel count, utilisation."""
        return _frame(self.profile.devices)

    def attribution_frame(self) -> pd.DataFrame:
        """Per device: the activity window split into the gpu/communication/copy/host buckets."""
        return _frame(self.profile.time_attribution)

    def findings_frame(self) -> pd.DataFrame:
        """The rule findings (and, with a model, the theory findings), in the report's order."""
        return _frame(self.findings)


def _frame(rows: Sequence[BaseModel]) -> pd.DataFrame:
    """Rows of models as a DataFrame with flattened nested fields; no rows -> an empty frame."""
    import pandas as pd

    return pd.json_normalize([row.model_dump(mode="json") for row in rows]) if rows else pd.DataFrame()
