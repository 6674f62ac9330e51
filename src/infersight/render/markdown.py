"""Markdown view of an :class:`AnalysisReport`: the same sections and figures as the terminal."""

from __future__ import annotations

import re

from infersight.analyses.results import AnalysisReport
from infersight.render.attribution import attribution_section, breakdown_section, primary_line
from infersight.render.sanitize import sanitize_text
from infersight.render.sections import (
    CPU_CAPTURE_WARNING,
    Section,
    categories_section,
    devices_section,
    fmt_evidence,
    fmt_gain,
    fmt_location,
    gaps_section,
    has_cpu_capture,
    kernels_section,
    ordered_findings,
    phases_section,
    ranges_section,
    traces_section,
    transfers_section,
)
from infersight.render.terminal import DEFAULT_TOP
from infersight.render.theory import report_sections as theory_sections
from infersight.rules.finding import Finding

HTML_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")  # CommonMark: only these can begin raw HTML


def render_markdown(report: AnalysisReport, *, top: int = DEFAULT_TOP) -> str:
    """The report as one self-contained Markdown document."""
    parts = [
        "# infersight report",
        "",
        f"infersight {report.tool_version} · report schema {report.schema_version}",
        "",
    ]
    verdict = primary_line(report)
    if verdict is not None:
        parts += [f"**{_md(verdict)}**", ""]
    if has_cpu_capture(report):
        parts += [f"> **{CPU_CAPTURE_WARNING}**", ""]
    for section in (
        attribution_section(report),
        breakdown_section(report),
        traces_section(report),
        devices_section(report),
        transfers_section(report),
        gaps_section(report),
        categories_section(report),
        kernels_section(report, top),
        ranges_section(report, top),
        phases_section(report),
        *theory_sections(report),
    ):
        parts += _section(section)
    parts += _findings(report.findings)
    return sanitize_text("\n".join(parts).rstrip() + "\n")


def _md(text: str) -> str:
    """Literal text in Markdown: kernel names like ``kernel<FillFunctor>`` or ``float*`` must not
    turn into HTML tags or emphasis. Only a ``<`` that could open a tag is escaped, so "< 5 µs"
    stays readable in the raw Markdown."""
    text = text.replace("&", "&amp;").replace("*", "\\*").replace("`", "\\`")
    return HTML_TAG_START.sub("&lt;", text)


def _cell(text: str) -> str:
    """Table-safe cell: escaped, pipes escaped, line breaks as <br>."""
    return _md(text).replace("|", "\\|").replace("\n", "<br>") or " "


def _section(section: Section) -> list[str]:
    lines = [f"## {_md(section.title)}", ""]
    if not section.rows:
        reason = f" ({_md(section.empty_reason)})" if section.empty_reason else ""
        return [*lines, f"_None in this trace{reason}._", ""]
    align = ["---:" if i in section.right_aligned else "---" for i in range(len(section.headers))]
    lines.append("| " + " | ".join(_cell(h) for h in section.headers) + " |")
    lines.append("| " + " | ".join(align) + " |")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in section.rows]
    lines.append("")
    lines += [f"- {_md(note)}" for note in section.notes]
    if section.notes:
        lines.append("")
    return lines


def _findings(findings: list[Finding]) -> list[str]:
    lines = [f"## Findings ({len(findings)})", ""]
    if not findings:
        return [*lines, "_No rule fired._", ""]
    for finding in ordered_findings(findings):
        lines += [
            f"### [{finding.severity}] {_md(finding.title)}",
            "",
            f"- **id**: `{finding.id}`",
            f"- **where**: {_md(fmt_location(finding.location))}",
        ]
        if finding.evidence:
            lines.append("- **evidence**:")
            lines += [f"  - {_md(fmt_evidence(e))}" for e in finding.evidence]
        if finding.advice:
            lines.append("- **advice**:")
            lines += [f"  - {_md(a)}" for a in finding.advice]
        lines.append(f"- **expected gain**: {_md(fmt_gain(finding.expected_gain))}")
        reason = f" — {_md(finding.confidence_reason)}" if finding.confidence_reason else ""
        lines.append(f"- **confidence**: {finding.confidence}{reason}")
        if finding.verification:
            lines += ["- **verify**:", "", "  ```sh"]
            lines += [f"  {v}" for v in finding.verification]
            lines += ["  ```"]
        lines.append("")
    return lines
