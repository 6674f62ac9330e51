"""Self-contained HTML report (methodology §8): one file, inline CSS/JS/SVG, nothing fetched from a network.

Interactive charts use uPlot (vendored in ``data/templates/vendor``, MIT, inlined in the page)
drawn by ``data/templates/report_charts.js`` from one JSON object (:func:`chart_data`): the
wall-time attribution per device and per phase (stacked bars), a zoomable per-device timeline
(kernel bars by category, idle gaps; decimated for big traces), prefill vs decode by category
and the idle-gap histogram. Static plots stay inline SVG (operator ranking, roofline with
theory and measured points, per-layer bars). Tables reuse the sections the terminal and
Markdown renderers print, so all three show the same figures; finding cards give times from
the trace start and the task list links to them. Needs ``jinja2``
(``pip install 'infersight[html]'``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape
from importlib import resources
from typing import Any

from infersight.analyses.html_data import DeviceBusyBins
from infersight.analysis_report import AnalysisReport
from infersight.api.html_data import HtmlExtras
from infersight.errors import InputError
from infersight.layers.results import LayerReport
from infersight.render import sections as sec
from infersight.render import theory as theory_sections
from infersight.render.attribution import attribution_section, breakdown_section, primary_line
from infersight.render.findings import finding_card
from infersight.render.sanitize import sanitize_text
from infersight.rules.finding import Finding
from infersight.theory.measured import MeasuredVsTheory
from infersight.theory.roofline import Hardware
from infersight.theory.roofline_points import category_points, roof

__all__ = ["render_html"]

WIDTH = 960
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]


# ---------------------------------------------------------------- SVG charts


def _svg(height: int, body: str, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" style="max-width:{WIDTH}px">{body}</svg>'
    )


def timeline_svg(timelines: Sequence[DeviceBusyBins]) -> str:
    """One row per device; each bin's green opacity is its busy fraction (white = idle)."""
    if not timelines:
        return ""
    left, row_h, top = 170, 26, 10
    plot_w = WIDTH - left - 20
    parts: list[str] = []
    for index, row in enumerate(timelines):
        y = top + index * (row_h + 8)
        parts.append(
            f'<text x="{left - 8}" y="{y + row_h * 0.68:.1f}" text-anchor="end" class="lbl">'
            f"{escape(row.label)} ({row.busy_ratio:.1%} busy)</text>"
        )
        parts.append(f'<rect x="{left}" y="{y}" width="{plot_w}" height="{row_h}" class="idle"/>')
        bin_w = plot_w / max(len(row.busy_fraction), 1)
        for b, frac in enumerate(row.busy_fraction):
            if frac <= 0:
                continue
            t0 = b * row.bin_ns / 1e6
            parts.append(
                f'<rect x="{left + b * bin_w:.2f}" y="{y}" width="{bin_w + 0.3:.2f}" height="{row_h}" '
                f'fill="#2e7d32" fill-opacity="{frac:.3f}">'
                f"<title>+{t0:.3f} ms: {frac:.0%} busy</title></rect>"
            )
    span_ms = max(r.bin_ns * len(r.busy_fraction) for r in timelines) / 1e6
    axis_y = top + len(timelines) * (row_h + 8) + 4
    for tick in range(6):
        x = left + plot_w * tick / 5
        parts.append(
            f'<text x="{x:.1f}" y="{axis_y + 12}" text-anchor="middle" class="tick">'
            f"{span_ms * tick / 5:.3g} ms</text>"
        )
    return _svg(axis_y + 20, "".join(parts), "GPU busy/idle timeline per device")


def bars_svg(
    items: Sequence[tuple[str, float, str]],
    label: str,
    value_fmt: str = "pct",
    colors: Sequence[str] | None = None,
) -> str:
    """Horizontal bars: (name, value, tooltip); values are shares in [0, 1] or absolute ns."""
    if not items:
        return ""
    left, bar_h = 330, 18
    plot_w = WIDTH - left - 90
    peak = max(v for _, v, _ in items) or 1.0
    parts = []
    for index, (name, value, tip) in enumerate(items):
        y = 6 + index * (bar_h + 6)
        short = name if len(name) <= 48 else name[:46] + "…"
        text = f"{value:.1%}" if value_fmt == "pct" else sec.fmt_duration(value)
        parts.append(
            f'<text x="{left - 8}" y="{y + 13}" text-anchor="end" class="lbl">{escape(short)}</text>'
        )
        parts.append(
            f'<rect x="{left}" y="{y}" width="{max(plot_w * value / peak, 1):.1f}" height="{bar_h}" '
            f'fill="{colors[index] if colors else PALETTE[index % len(PALETTE)]}">'
            f"<title>{escape(tip)}</title></rect>"
        )
        parts.append(
            f'<text x="{left + plot_w * value / peak + 6:.1f}" y="{y + 13}" class="tick">{text}</text>'
        )
    return _svg(12 + len(items) * (bar_h + 6), "".join(parts), label)


def roofline_svg(measured: MeasuredVsTheory, hw: Hardware) -> str:
    """Log-log roofline: roof = min(P_peak, I·B_eff); theory (hollow) and measured (filled) points."""
    points = category_points(measured)
    if not points:
        return ""
    bandwidth = hw.effective_bandwidth
    peak = hw.matmul_peak_flops
    ridge = peak / bandwidth
    xs = [p.intensity for p in points] + [ridge]
    ys = [p.achieved_flop_per_s for p in points] + [peak] + [p.theory_flop_per_s for p in points]
    x_lo, x_hi = 10 ** math.floor(math.log10(min(xs)) - 0.5), 10 ** math.ceil(math.log10(max(xs)) + 0.5)
    y_lo, y_hi = 10 ** math.floor(math.log10(min(ys)) - 0.5), 10 ** math.ceil(math.log10(max(ys)) + 0.3)
    left, top, plot_w, plot_h = 80, 12, WIDTH - 110, 330

    def px(x: float) -> float:
        return left + plot_w * (math.log10(x) - math.log10(x_lo)) / (math.log10(x_hi) - math.log10(x_lo))

    def py(y: float) -> float:
        return top + plot_h * (1 - (math.log10(y) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo)))

    parts = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>']
    for exp in range(int(math.log10(x_lo)), int(math.log10(x_hi)) + 1):
        parts.append(
            f'<text x="{px(10.0**exp):.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
            f'class="tick">1e{exp}</text>'
        )
    for exp in range(int(math.log10(y_lo)), int(math.log10(y_hi)) + 1):
        parts.append(
            f'<text x="{left - 6}" y="{py(10.0**exp) + 4:.1f}" text-anchor="end" class="tick">1e{exp}</text>'
        )
    corners = roof(peak, bandwidth, max(x_lo, y_lo / bandwidth), x_hi)  # starts inside the frame
    parts.append(
        '<polyline class="roof" points="' + " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in corners) + '">'
        f"<title>roof: min({sec.fmt_quantity(peak / 1e12, '')} TFLOP/s, I × "
        f"{bandwidth / 1e9:.0f} GB/s)</title></polyline>"
    )
    legend_y = top + plot_h + 52  # below the plot, two columns: never clipped at the right edge
    legend_cols, legend_w = 2, (WIDTH - left) // 2
    for index, p in enumerate(points):
        color = PALETTE[index % len(PALETTE)]
        name = p.label
        eroof = "n/a" if p.e_roof is None else f"{p.e_roof:.2f}"
        parts.append(
            f'<circle cx="{px(p.intensity):.1f}" cy="{py(p.theory_flop_per_s):.1f}" r="5" fill="none" '
            f'stroke="{color}" stroke-width="2"><title>{escape(name)} theory: I={p.intensity:.3g} FLOP/B'
            "</title></circle>"
        )
        parts.append(
            f'<circle cx="{px(p.intensity):.1f}" cy="{py(p.achieved_flop_per_s):.1f}" r="5" fill="{color}">'
            f"<title>{escape(name)} measured: {p.achieved_flop_per_s / 1e12:.3g} TFLOP/s, E_roof {eroof}"
            "</title></circle>"
        )
        entry = f"{name} (E_roof {eroof})"
        entry = entry if len(entry) <= 64 else entry[:62] + "…"
        lx, ly = left + (index % legend_cols) * legend_w, legend_y + (index // legend_cols) * 16
        parts.append(
            f'<text x="{lx}" y="{ly}" '
            f'class="lbl" style="fill:{color}">● {escape(entry)}<title>{escape(name)}</title></text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{top + plot_h + 30}" text-anchor="middle" class="tick">'
        "arithmetic intensity (FLOP/byte); ○ theory, ● measured per step; y: FLOP/s</text>"
    )
    legend_rows = (len(points) + legend_cols - 1) // legend_cols
    return _svg(legend_y + legend_rows * 16, "".join(parts), "roofline")


def layers_svg(layers: LayerReport) -> str:
    """Wall time per layer of the selected forward pass, coloured by layer type."""
    rows = layers.layers
    if not rows:
        return ""
    left, top, plot_w, plot_h = 70, 10, WIDTH - 90, 200
    peak = max(r.wall_ns for r in rows) or 1
    types = sorted({r.layer_type for r in rows})
    bar_w = plot_w / len(rows)
    parts = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>']
    for index, r in enumerate(rows):
        h = plot_h * r.wall_ns / peak
        color = PALETTE[types.index(r.layer_type) % len(PALETTE)]
        parts.append(
            f'<rect x="{left + index * bar_w + 1:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{max(bar_w - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="{color}"><title>layer {r.layer} ({escape(r.layer_type)}): '
            f"{sec.fmt_duration(r.wall_ns)} wall, {r.kernel_count} kernels</title></rect>"
        )
    parts.append(
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" class="tick">{sec.fmt_duration(peak)}</text>'
    )
    legend = ", ".join(f"{t}" for t in types)
    parts.append(
        f'<text x="{left}" y="{top + plot_h + 16}" class="tick">layers 0–{len(rows) - 1} of pass '
        f"{layers.selected_pass} (types: {escape(legend)})</text>"
    )
    return _svg(top + plot_h + 24, "".join(parts), "per-layer wall time")


# ---------------------------------------------------------------- uPlot chart data

BUCKETS = ("gpu", "communication", "copy", "host")
BUCKET_COLORS = {"gpu": "#59a14f", "communication": "#4e79a7", "copy": "#edc948", "host": "#e15759"}
CATEGORY_COLORS = [
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#9c755f",
    "#edc948", "#ff9da7", "#e15759", "#17becf", "#bcbd22", "#7f7f7f", "#bab0ac",
]  # fmt: skip


def _category_color(category: str) -> str:
    """The colour of a kernel category, the same in every chart (timeline, phases, ranking)."""
    from infersight.analyses.categories import CATEGORIES

    return (
        CATEGORY_COLORS[CATEGORIES.index(category) % len(CATEGORY_COLORS)]
        if category in CATEGORIES
        else "#999"
    )


def _stack(
    labels: list[str], series: dict[str, list[float]], colors: dict[str, str], unit: str, axis: str
) -> dict[str, Any]:
    return {
        "axis": axis,
        "labels": labels,
        "series": [{"label": k, "color": colors.get(k, "#999"), "values": v} for k, v in series.items()],
        "unit": unit,
    }


def _attribution_data(report: AnalysisReport) -> dict[str, Any]:
    """Stacked bars: each device's window and each phase (summed over devices) split into the four buckets."""
    rows = report.profile.time_attribution
    if not rows:
        return {}
    devices = [
        (f"rank {a.rank} dev {a.device}" if a.rank is not None else f"dev {a.device}", a.times_ns)
        for a in rows
    ]
    per_device = _stack(
        [name for name, _ in devices],
        {b: [round(getattr(t, b) / 1e6, 4) for _, t in devices] for b in BUCKETS},
        BUCKET_COLORS,
        "ms",
        "device",
    )
    phases: dict[str, dict[str, float]] = {}
    for a in rows:
        for part in a.phases:
            acc = phases.setdefault(part.phase, dict.fromkeys(BUCKETS, 0.0))
            for b in BUCKETS:
                acc[b] += getattr(part.times_ns, b)
    suffix = f" (sum over {len(rows)} devices)" if len(rows) > 1 else ""
    per_phase = _stack(
        [f"{name}{suffix}" for name in phases],
        {b: [round(phases[p][b] / 1e6, 4) for p in phases] for b in BUCKETS},
        BUCKET_COLORS,
        "ms",
        "phase",
    )
    return {"devices": per_device, "phases": per_phase if phases else None}


def _phase_data(report: AnalysisReport) -> dict[str, Any] | None:
    """Prefill vs decode side by side: kernel time by category, in % of each phase's kernel time."""
    phases = [p for p in report.profile.phases.phases if p.top_categories]
    if not phases:
        return None
    cats: list[str] = []
    for p in phases:
        cats += [c.category for c in p.top_categories if c.category not in cats]
    colors = {c: _category_color(c) for c in cats}
    series = {
        c: [round(next((s.share * 100 for s in p.top_categories if s.category == c), 0.0), 2) for p in phases]
        for c in cats
    }
    out = _stack([p.phase for p in phases], series, colors, "% of kernel time", "phase")
    out["notes"] = [
        f"{p.phase}: {sec.fmt_duration(p.wall_ns)} wall, {p.steps} step(s), "
        f"{sec.fmt_count(p.kernel_count)} kernels, GPU idle {sec.fmt_pct(p.idle_ratio)}"
        for p in phases
    ]
    return out


def _gap_data(report: AnalysisReport) -> dict[str, Any] | None:
    """Idle-gap histogram: idle time per gap-length bucket, stacked over devices (counts in the legend)."""
    devices = [d for d in report.profile.devices if d.gap_buckets]
    if not devices:
        return None
    labels: list[str] = []
    for d in devices:
        labels += [lbl for lbl in map(sec._bucket_label, d.gap_buckets) if lbl not in labels]
    series: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    for d in devices:
        name = sec._device_label(d)
        by_label = {sec._bucket_label(b): b for b in d.gap_buckets}
        series[name] = [round(by_label[lbl].total_ns / 1e6, 4) if lbl in by_label else 0.0 for lbl in labels]
        counts[name] = [by_label[lbl].count if lbl in by_label else 0 for lbl in labels]
    colors = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    out = _stack(labels, series, colors, "ms idle", "gap length")
    for entry in out["series"]:
        entry["counts"] = counts[entry["label"]]
    return out


def trace_origins(report: AnalysisReport) -> dict[str, int]:
    """The start of every trace (its first GPU activity over all devices), by trace source."""
    origins: dict[str, int] = {}
    for a in report.profile.time_attribution:
        origins[a.trace] = min(origins.get(a.trace, a.window_start_ns), a.window_start_ns)
    return origins


def finding_origin(report: AnalysisReport, finding: Finding, origins: dict[str, int]) -> int | None:
    """The trace start a finding's time range is relative to (its rank's trace when known)."""
    if finding.location.time_range_ns is None or not origins:
        return None
    loc = finding.location
    matches = {
        origins[a.trace]
        for a in report.profile.time_attribution
        if (loc.rank is None or a.rank == loc.rank) and (loc.device is None or a.device == loc.device)
    }
    if len(matches) == 1:
        return matches.pop()
    return min(origins.values()) if len(set(origins.values())) == 1 else None


def _shift_track(track: dict[str, Any], delta_us: int) -> dict[str, Any]:
    """Re-base a timeline track on another origin (``delta_us`` = old origin - new origin)."""
    if delta_us:
        track["bars"] = [v + delta_us if i % 3 == 0 else v for i, v in enumerate(track["bars"])]
        track["gaps"] = [v + delta_us if i % 2 == 0 else v for i, v in enumerate(track["gaps"])]
        track["window_us"] = [v + delta_us for v in track["window_us"]]
    return track


def chart_data(report: AnalysisReport, extras: HtmlExtras) -> dict[str, Any]:
    """Everything the inline uPlot script draws, as one JSON object embedded in the page."""
    from infersight.analyses.categories import CATEGORIES

    busy = {t.label: t.busy_ratio for t in extras.timelines}
    origins = trace_origins(report)
    tracks = []
    for t in extras.tracks:
        origin = origins.get(t.trace, t.origin_ns)
        track = {**t.model_dump(mode="json"), "busy": busy.get(t.label), "origin_ns": origin}
        tracks.append(_shift_track(track, round((t.origin_ns - origin) / 1e3)))
    return {
        "categories": list(CATEGORIES),
        "categoryColors": CATEGORY_COLORS[: len(CATEGORIES)],
        "attribution": _attribution_data(report),
        "phases": _phase_data(report),
        "gaps": _gap_data(report),
        "tracks": tracks,
    }


def _inline_json(data: object) -> str:
    """JSON safe inside a <script> element (no '</script>', no HTML comment openers)."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _vendor(name: str) -> str:
    return resources.files("infersight").joinpath(f"data/templates/vendor/{name}").read_text("utf-8")


def _uplot_js() -> str:
    """The vendored uPlot with its MIT licence notice in front (the licence asks for it in copies)."""
    notice = _vendor("uPlot.LICENSE").replace("*/", "* /").strip()
    return f"/*! uPlot 1.6.32, MIT licence:\n{notice}\n*/\n" + _vendor("uPlot.iife.min.js").replace(
        "</script", "<\\/script"
    )


# ---------------------------------------------------------------- report structure


def _focus_operators(report: AnalysisReport) -> tuple[list[dict[str, Any]], set[str]]:
    """Focus set (theory) or the top-3 categories, each with the findings located on it; and their ids."""
    theory = report.theory
    items: list[tuple[str, str | None, str, str]] = []  # title, kernel, category, measured text
    if theory is not None and theory.focus is not None and theory.focus.items:
        for item in theory.focus.items[:5]:
            eroof = "n/a" if item.e_roof is None else f"{item.e_roof:.2f}"
            items.append(
                (
                    f"{item.kernel} ({item.category}, {item.phase})",
                    item.kernel,
                    item.category,
                    f"{sec.fmt_duration(item.total_ns)} ({sec.fmt_pct(item.share)} of kernel time), "
                    f"E_roof {eroof}, "
                    f"in focus because: {', '.join(item.reasons)}",
                )
            )
    else:
        for cat in report.profile.categories[:3]:
            items.append(
                (
                    cat.category,
                    None,
                    cat.category,
                    f"{sec.fmt_duration(cat.total_ns)} ({sec.fmt_pct(cat.share)} of kernel time) "
                    f"in {cat.count} kernels; "
                    f"top: {', '.join(cat.top_kernels[:3])}",
                )
            )
    out: list[dict[str, Any]] = []
    shown: set[str] = set()
    for title, kernel, category, measured in items:
        matched = [
            f
            for f in sec.ordered_findings(report.findings)
            if (kernel is not None and f.location.kernel == kernel)
            or (f.location.category is not None and f.location.category == category)
        ]
        out.append({"title": title, "measured": measured, "findings": [_card(report, f) for f in matched]})
        shown |= {f.id for f in matched}
    return out, shown


def _card(report: AnalysisReport, finding: Finding) -> dict[str, object]:
    return finding_card(finding, finding_origin(report, finding, trace_origins(report)))


def _tasks(findings: list[Finding]) -> list[dict[str, str]]:
    """Findings ordered by severity, then by the upper end of the expected gain."""
    ranked = sorted(
        findings,
        key=lambda f: (
            sec.SEVERITY_ORDER.get(f.severity, 3),
            -(f.expected_gain.high if f.expected_gain else 0.0),
        ),
    )
    tasks = []
    for f in ranked:  # one line each: the advice, evidence and verification live in the card it links to
        gain = (
            ""
            if f.expected_gain is None
            else f"expected {sec.fmt_pct(f.expected_gain.low)}–{sec.fmt_pct(f.expected_gain.high)}"
        )
        tasks.append({"id": f.id, "severity": f.severity, "title": f.title, "gain": gain})
    return tasks


def _summary(report: AnalysisReport) -> str:
    total = report.profile.total
    devices = len(report.profile.devices)
    top = ", ".join(f"{c.category} ({sec.fmt_pct(c.share)})" for c in report.profile.categories[:3]) or "none"
    severities = {
        s: sum(1 for f in report.findings if f.severity == s) for s in ("critical", "warning", "info")
    }
    text = (
        f"Over {sec.fmt_duration(total.wall_ns)} of analysed wall time{_sum_label(report)} on {devices} "
        "device(s) the GPUs "
        f"were busy {sec.fmt_pct(total.utilization)} and idle {sec.fmt_pct(total.idle_ratio)}; "
        f"kernel time went mostly to {top}. "
        f"The rules raised {len(report.findings)} finding(s) ({severities['critical']} critical, "
        f"{severities['warning']} warning, {severities['info']} info)."
    )
    with_gain = [f for f in report.findings if f.expected_gain is not None]
    if with_gain:
        best = max(with_gain, key=lambda f: f.expected_gain.high if f.expected_gain else 0.0)
        assert best.expected_gain is not None
        text += (
            f" The largest expected gain is from '{best.title}' ({sec.fmt_pct(best.expected_gain.low)}–"
            f"{sec.fmt_pct(best.expected_gain.high)} of wall time); verify it with an A/B run "
            "before adopting it."
        )
    if report.theory is not None:
        est = report.theory.estimate
        text += (
            f" Theory ({est.model} on {est.gpu}, {est.compute_dtype}): TTFT {est.ttft_s * 1e3:.3g} ms, "
            f"TPOT {est.tpot_s * 1e3:.3g} ms."
        )
    return text


def _environment(report: AnalysisReport) -> list[tuple[str, str]]:
    gpus = sorted({g for t in report.profile.traces for g in t.gpus})
    rows = [
        ("traces", ", ".join(sec.short_source(t.source) for t in report.profile.traces)),
        ("formats", ", ".join(sorted({t.format for t in report.profile.traces}))),
        ("GPUs", sec.fmt_gpu_names(gpus) if gpus else "not recorded"),
        ("devices analysed", str(len(report.profile.devices))),
        ("analysis window", report.profile.total.window.source),
        ("infersight", f"{report.tool_version} (report schema {report.schema_version})"),
    ]
    if report.theory is not None:
        est = report.theory.estimate
        s = est.scenario
        rows.append(("model / dtype", f"{est.model} / {est.compute_dtype}"))
        rows.append(
            ("scenario", f"batch {s.batch}, prompt {s.prompt_len}, context {s.context_len}, TP {s.tp}")
        )
    return rows


def _sum_label(report: AnalysisReport) -> str:
    """' (sum over 2 GPUs)' when the totals add up several devices' windows, else ''."""
    devices = len(report.profile.devices)
    return f" (sum over {devices} GPUs)" if devices > 1 else ""


def _overall(report: AnalysisReport) -> list[tuple[str, str]]:
    total = report.profile.total
    summed = _sum_label(report)
    rows = [
        ("wall time" + summed, sec.fmt_duration(total.wall_ns)),
        ("GPU busy" + summed, f"{sec.fmt_duration(total.busy_ns)} ({sec.fmt_pct(total.utilization)})"),
        ("GPU idle" + summed, f"{sec.fmt_duration(total.idle_ns)} ({sec.fmt_pct(total.idle_ratio)})"),
    ]
    if summed:
        rows.append(
            (
                "wall time per GPU",
                ", ".join(
                    f"{sec._device_label(d)} {sec.fmt_duration(d.wall_ns)}" for d in report.profile.devices
                ),
            )
        )
    return [
        *rows,
        ("kernels", sec.fmt_count(total.kernel_count)),
        (
            "top-3 operators",
            ", ".join(f"{c.category} {sec.fmt_pct(c.share)}" for c in report.profile.categories[:3])
            or "none",
        ),
    ]


def _table(section: sec.Section) -> dict[str, object]:
    return {
        "title": section.title,
        "headers": section.headers,
        "rows": [[cell.split("\n") for cell in row] for row in section.rows],
        "notes": section.notes,
        "right": section.right_aligned,
    }


def render_html(report: AnalysisReport, extras: HtmlExtras | None = None, *, top: int = 15) -> str:
    """The whole report as one self-contained HTML document."""
    try:
        import jinja2
        from markupsafe import Markup
    except ImportError:
        raise InputError(None, "the HTML report needs jinja2: pip install 'infersight[html]'") from None
    extras = extras or HtmlExtras()
    theory = report.theory
    roofline_tables = [_table(s) for s in theory_sections.report_sections(report)]
    focus, focus_ids = _focus_operators(report)
    other = [_card(report, f) for f in sec.ordered_findings(report.findings) if f.id not in focus_ids]
    charts = {
        "timeline": timeline_svg(extras.timelines),
        "categories": bars_svg(
            [
                (c.category, c.share, f"{c.category}: {sec.fmt_duration(c.total_ns)} in {c.count} kernels")
                for c in report.profile.categories[:12]
            ],
            "operator ranking by category",
            colors=[_category_color(c.category) for c in report.profile.categories[:12]],
        ),
        "kernels": bars_svg(
            [
                (k.name, k.share, f"{k.full_name[:200]}: {sec.fmt_duration(k.total_ns)}, {k.count}×")
                for k in report.profile.kernels[:top]
            ],
            "kernel ranking",
        ),
        "roofline": roofline_svg(theory.measured, theory.estimate.hardware)
        if theory is not None and theory.measured is not None
        else "",
        "layers": layers_svg(extras.layers) if extras.layers is not None else "",
    }
    data = chart_data(report, extras)
    template_text = resources.files("infersight").joinpath("data/templates/report.html.j2").read_text("utf-8")
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    template = env.from_string(template_text)
    document = template.render(
        report=report,
        environment=_environment(report),
        overall=_overall(report),
        summary=_summary(report),
        verdict=primary_line(report),
        attribution_tables=[_table(attribution_section(report)), _table(breakdown_section(report))],
        charts={name: Markup(svg) for name, svg in charts.items()},
        roofline_tables=roofline_tables,
        ranking_tables=[_table(sec.categories_section(report)), _table(sec.kernels_section(report, top))],
        idle_tables=[
            _table(sec.devices_section(report)),
            _table(sec.gaps_section(report)),
            _table(sec.transfers_section(report)),
            _table(sec.phases_section(report)),
        ],
        focus=focus,
        other=other,
        tasks=_tasks(report.findings),
        extras_notes=extras.notes,
        layers=extras.layers,
        narration=extras.narration,
        chart_json=Markup(_inline_json(data)),
        chart_notes=data,
        charts_js=Markup(_vendor("../report_charts.js").replace("</script", "<\\/script")),
        uplot_js=Markup(_uplot_js()),
        uplot_css=Markup(_vendor("uPlot.min.css")),
    )
    return sanitize_text(document)  # autoescape covers <>&"' but not control characters
