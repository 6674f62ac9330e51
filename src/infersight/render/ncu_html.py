"""The kernel deep dive (:class:`NcuReport`) as one self-contained HTML page.

The same sections as the terminal and Markdown views (:func:`infersight.render.ncu._sections`),
as HTML tables, then the findings with their evidence, advice, expected gain and confidence.
Every text from the exports (kernel names, Nsight Compute's rule descriptions) is escaped; no
script, no external resource.
"""

from __future__ import annotations

from html import escape

from infersight.ncu.results import NcuReport
from infersight.render.ncu import _sections, gpu_line
from infersight.render.sanitize import sanitize_text
from infersight.render.sections import Section, fmt_pct
from infersight.rules.finding import Finding

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1b1f24; max-width: 1400px; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.5rem; vertical-align: top; text-align: left; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #57606a; font-size: 0.85rem; margin: 0.2rem 0; }
.finding { border: 1px solid #d0d7de; border-radius: 6px; padding: 0.5rem 1rem; margin: 0.75rem 0; }
.finding h3 { font-size: 1rem; margin: 0.25rem 0; } .meta { color: #57606a; font-size: 0.85rem; }
code { background: #f6f8fa; padding: 0 0.2rem; }
"""


def _e(text: object) -> str:
    return escape(sanitize_text(str(text)), quote=False)  # text nodes only: no attribute is built from data


def section_html(section: Section) -> str:
    """One titled table with its notes."""
    parts = [f"<h2>{_e(section.title)}</h2>"]
    if not section.rows:
        reason = f" ({_e(section.empty_reason)})" if section.empty_reason else ""
        return "".join(parts) + f"<p class='note'>None{reason}.</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in section.headers)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='num'>{_e(c)}</td>" if i in section.right_aligned else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in section.rows
    )
    parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    parts += [f"<p class='note'>{_e(note)}</p>" for note in section.notes]
    return "".join(parts)


def finding_html(finding: Finding) -> str:
    """A finding card: title, where, confidence, expected gain, evidence, advice, verification."""
    gain = finding.expected_gain
    gain_text = (
        f"{fmt_pct(gain.low)}–{fmt_pct(gain.high)} of kernel time ({gain.basis})"
        if gain is not None
        else "n/a"
    )
    evidence = "".join(
        f"<li><code>{_e(ev.metric)}</code> = {_e(ev.value)}{_e(ev.unit if ev.unit != 'count' else '')}"
        + (f" (threshold {_e(ev.comparison)} {_e(ev.threshold)})" if ev.threshold is not None else "")
        + (f" — {_e(ev.note)}" if ev.note else "")
        + "</li>"
        for ev in finding.evidence
    )
    advice = "".join(f"<li>{_e(a)}</li>" for a in finding.advice)
    verify = "".join(f"<li><code>{_e(v)}</code></li>" for v in finding.verification)
    where = finding.location.kernel or finding.location.scope
    return (
        f"<div class='finding'><h3>[{_e(finding.severity)}] {_e(finding.title)}</h3>"
        f"<p class='meta'>{_e(finding.id)} · {_e(where)} · confidence {_e(finding.confidence)}: "
        f"{_e(finding.confidence_reason)}</p>"
        f"<p>expected gain: {_e(gain_text)}</p>"
        f"<p>evidence:</p><ul>{evidence}</ul><p>advice:</p><ul>{advice}</ul>"
        + (f"<p>verify:</p><ul>{verify}</ul>" if verify else "")
        + "</div>"
    )


def render_ncu_html(report: NcuReport) -> str:
    """The integrated report as a standalone HTML document."""
    sources = "".join(f"<li><code>{_e(s)}</code></li>" for s in report.sources)
    body = [
        "<h1>infersight kernel deep dive (Nsight Compute)</h1>",
        f"<p class='meta'>infersight {_e(report.tool_version)} · "
        f"report schema {_e(report.schema_version)}</p>",
        f"<ul>{sources}</ul>",
        f"<p>{_e(gpu_line(report))}</p>",
    ]
    body += [section_html(section) for section in _sections(report)]
    if report.notes:
        body.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in report.notes) + "</ul>")
    body.append(f"<h2>Findings ({len(report.findings)})</h2>")
    body += [finding_html(f) for f in report.findings] or ["<p class='note'>No rule fired.</p>"]
    names = "".join(f"<li>k{i}: <code>{_e(k.name)}</code></li>" for i, k in enumerate(report.kernels))
    body.append(f"<h2>Kernel names</h2><ul>{names}</ul>")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>infersight ncu report</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
