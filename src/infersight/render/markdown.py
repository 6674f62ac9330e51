"""Markdown view of an :class:`AnalysisReport`: the same sections and figures as the terminal."""

from __future__ import annotations

from infersight.analysis_report import AnalysisReport
from infersight.render.attribution import attribution_section, breakdown_section, primary_line
from infersight.render.findings import findings_markdown
from infersight.render.findings import md_text as _md
from infersight.render.sanitize import sanitize_text
from infersight.render.sections import (
    CPU_CAPTURE_WARNING,
    Section,
    categories_section,
    devices_section,
    gaps_section,
    has_cpu_capture,
    kernels_section,
    phases_section,
    ranges_section,
    traces_section,
    transfers_section,
)
from infersight.render.terminal import DEFAULT_TOP
from infersight.render.theory import report_sections as theory_sections


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
    parts += findings_markdown(report.findings)
    return sanitize_text("\n".join(parts).rstrip() + "\n")


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
