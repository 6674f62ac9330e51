"""The versioned JSON report: the pydantic model serialised as is, plus its JSON Schema.

The report *is* :class:`~infersight.analyses.results.AnalysisReport`, so the JSON and the Python
API can never disagree; consumers check ``schema_version`` (see docs/report-schema.md).
"""

from __future__ import annotations

from typing import Any

from infersight.analyses.results import AnalysisReport


def render_json(report: AnalysisReport) -> str:
    """The report as indented JSON text (UTF-8 safe, ends with a newline)."""
    return report.model_dump_json(indent=2) + "\n"


def report_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12, as pydantic emits it) of the report."""
    schema: dict[str, Any] = AnalysisReport.model_json_schema()
    return schema


def load_report(text: str | bytes) -> AnalysisReport:
    """Parse and validate a JSON report (raises pydantic.ValidationError when it does not match)."""
    return AnalysisReport.model_validate_json(text)
