"""Findings, printed one way for every command: terminal (rich), Markdown and HTML.

``analyze``, ``host``, ``overlap``/``ranks``, ``ncu`` and ``report`` all produce the same
:class:`~infersight.rules.finding.Finding`; these functions are the only place that lays one
out. The cells (where, evidence, expected gain) come from :mod:`infersight.render.sections`, so
all three formats show the same words and numbers.
"""

from __future__ import annotations

import re

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from infersight.render.sections import fmt_evidence, fmt_gain, fmt_location, ordered_findings
from infersight.rules.finding import Finding

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
SUMMARY_ADVICE = 2  # advice lines a one-line-per-finding summary shows
HTML_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")  # CommonMark: only these can begin raw HTML


# ---------------------------------------------------------------- terminal


def _finding_body(finding: Finding) -> Group:
    lines: list[Text] = [Text(f"where: {fmt_location(finding.location)}", style="dim")]
    if finding.evidence:
        lines.append(Text("evidence:", style="bold"))
        lines.extend(Text(f"  • {fmt_evidence(e)}") for e in finding.evidence)
    if finding.advice:
        lines.append(Text("advice:", style="bold"))
        lines.extend(Text(f"  • {a}") for a in finding.advice)
    lines.append(Text.assemble(("expected gain: ", "bold"), fmt_gain(finding.expected_gain)))
    lines.append(
        Text.assemble(
            ("confidence: ", "bold"),
            finding.confidence,
            f" — {finding.confidence_reason}" if finding.confidence_reason else "",
        )
    )
    if finding.verification:
        lines.append(Text("verify:", style="bold"))
        lines.extend(Text(f"  $ {v}") for v in finding.verification)
    return Group(*lines)


def print_findings(console: Console, findings: list[Finding], *, summary: bool = False) -> None:
    """The findings, critical first: one panel each with evidence, advice, expected gain,
    confidence and verification; ``summary``: one line each with its first advice lines (for
    commands whose tables already show the evidence)."""
    console.print()
    if not findings:
        console.print(Text("Findings", style="bold"), Text(" — no rule fired", style="dim"))
        return
    console.print(Text(f"Findings ({len(findings)})", style="bold"))
    for finding in ordered_findings(findings):
        style = SEVERITY_STYLE.get(finding.severity, "white")
        if summary:
            console.print(
                Text.assemble(
                    (f"[{finding.severity}] ", style),
                    (finding.title, "bold"),
                    (f"  ({finding.id}, confidence {finding.confidence})", "dim"),
                )
            )
            for line in finding.advice[:SUMMARY_ADVICE]:
                console.print(f"   → {line}")
            continue
        title = Text.assemble((f"[{finding.severity}] ", style), (finding.title, "bold"), f"  ({finding.id})")
        console.print(Panel(_finding_body(finding), title=title, title_align="left", border_style=style))


# ---------------------------------------------------------------- Markdown


def md_text(text: str) -> str:
    """Literal text in Markdown: kernel names like ``kernel<FillFunctor>`` or ``float*`` must not
    turn into HTML tags or emphasis. Only a ``<`` that could open a tag is escaped, so "< 5 µs"
    stays readable in the raw Markdown."""
    text = text.replace("&", "&amp;").replace("*", "\\*").replace("`", "\\`")
    return HTML_TAG_START.sub("&lt;", text)


def findings_markdown(findings: list[Finding]) -> list[str]:
    """The findings as a Markdown section (lines), critical first."""
    lines = [f"## Findings ({len(findings)})", ""]
    if not findings:
        return [*lines, "_No rule fired._", ""]
    for finding in ordered_findings(findings):
        lines += [
            f"### [{finding.severity}] {md_text(finding.title)}",
            "",
            f"- **id**: `{finding.id}`",
            f"- **where**: {md_text(fmt_location(finding.location))}",
        ]
        if finding.evidence:
            lines.append("- **evidence**:")
            lines += [f"  - {md_text(fmt_evidence(e))}" for e in finding.evidence]
        if finding.advice:
            lines.append("- **advice**:")
            lines += [f"  - {md_text(a)}" for a in finding.advice]
        lines.append(f"- **expected gain**: {md_text(fmt_gain(finding.expected_gain))}")
        reason = f" — {md_text(finding.confidence_reason)}" if finding.confidence_reason else ""
        lines.append(f"- **confidence**: {finding.confidence}{reason}")
        if finding.verification:
            lines += ["- **verify**:", "", "  ```sh"]
            lines += [f"  {v}" for v in finding.verification]
            lines += ["  ```"]
        lines.append("")
    return lines


# ---------------------------------------------------------------- HTML


def finding_card(finding: Finding, origin_ns: int | None = None) -> dict[str, object]:
    """The cells of one finding's card in the HTML report (the template escapes them); with
    ``origin_ns`` (the trace start) its time range reads relative to the trace start."""
    return {
        "id": finding.id,
        "title": finding.title,
        "severity": finding.severity,
        "location": fmt_location(finding.location, origin_ns),
        "evidence": [fmt_evidence(e) for e in finding.evidence],
        "advice": finding.advice,
        "gain": fmt_gain(finding.expected_gain),
        "verification": finding.verification,
        "confidence": f"{finding.confidence}"
        + (f" — {finding.confidence_reason}" if finding.confidence_reason else ""),
    }
