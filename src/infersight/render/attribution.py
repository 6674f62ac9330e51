"""Cells of the wall-time attribution: the primary-bottleneck line and its tables (no computation).

The terminal, Markdown and HTML views all print these, so the verdict reads the same everywhere.
"""

from __future__ import annotations

from infersight.analyses.results import CopyDirectionTime, DeviceAttribution
from infersight.analysis_report import AnalysisReport
from infersight.render.sections import Section, fmt_bandwidth, fmt_bytes, fmt_duration, fmt_pct

BUCKET_ORDER = ("gpu", "communication", "copy", "host")
TOP_ITEMS = 3
METHOD_NOTE = (
    "each instant of a device's activity window (first to last kernel, memcpy or memset) is one of: gpu "
    "(a non-communication kernel runs), communication (only collectives run), copy (only copies/memsets "
    "run), host (nothing runs); the four sum to 100% (docs/methodology.md §3.2). 'kernel-window idle' is "
    "the classic idle ratio over first-to-last kernel, comparable with HTA and nsys stats."
)


def primary_line(report: AnalysisReport) -> str | None:
    """``Primary bottleneck: <headline> (confidence ...)``; None without GPU activity."""
    verdict = report.profile.primary_bottleneck
    if verdict is None:
        return None
    confidence = f"confidence {verdict.confidence}: {verdict.confidence_reason}"
    return f"Primary bottleneck: {verdict.headline} ({confidence})"


def _label(d: DeviceAttribution) -> str:
    return f"rank {d.rank} dev {d.device}" if d.rank is not None else f"dev {d.device}"


def attribution_section(report: AnalysisReport) -> Section:
    """One row per device: the four shares, the verdict, and what the kernel window leaves out."""
    rows = []
    for d in report.profile.time_attribution:
        out = d.outside_kernel_window
        rows.append(
            [
                _label(d),
                fmt_duration(d.window_ns),
                *[fmt_pct(getattr(d.shares, b)) for b in BUCKET_ORDER],
                d.primary,
                d.confidence,
                fmt_pct(out.kernel_window_idle_ratio),
                f"{out.copies} / {fmt_duration(out.copy_ns)}" if out.copies else "-",
            ]
        )
    headers = [
        "device",
        "activity window",
        "gpu",
        "communication",
        "copy",
        "host",
        "primary",
        "confidence",
        "kernel-window idle",
        "copies outside kernel window",
    ]
    notes = [METHOD_NOTE, *_phase_notes(report)]
    return Section(
        "Where the time goes (wall-time attribution)",
        headers,
        rows,
        notes,
        right_aligned={1, 2, 3, 4, 5, 8, 9},
        empty_reason="no GPU activity to attribute",
    )


def _phase_notes(report: AnalysisReport) -> list[str]:
    verdict = report.profile.primary_bottleneck
    if verdict is None or not verdict.phases:
        return []
    parts = [
        f"{p.phase}: {p.primary} {getattr(p.shares, p.primary):.0%} "
        f"({', '.join(f'{b} {getattr(p.shares, b):.0%}' for b in BUCKET_ORDER if b != p.primary)}; "
        f"confidence {p.confidence})"
        for p in verdict.phases
    ]
    return ["per phase — " + "; ".join(parts)]


def breakdown_section(report: AnalysisReport) -> Section:
    """What fills each non-empty bucket, per device: top categories, copy directions, collectives,
    and what the host was doing."""
    rows: list[list[str]] = []
    for d in report.profile.time_attribution:
        for bucket, items in _bucket_items(d):
            if not items:
                continue
            rows.append([_label(d), bucket, fmt_duration(getattr(d.times_ns, bucket)), "; ".join(items)])
    return Section(
        "What fills each bucket",
        ["device", "bucket", "time", "top contributors"],
        rows,
        ["copy: exposed = copies running while no kernel runs; bandwidth = bytes / copy time vs the link."],
        right_aligned={2},
        wrapping={3},
    )


def _bucket_items(d: DeviceAttribution) -> list[tuple[str, list[str]]]:
    gpu = [f"{c.category} {c.share:.0%}" for c in d.gpu_categories[:TOP_ITEMS]]
    comm = [
        f"{c.collective} {fmt_duration(c.exposed_ns)} exposed of {fmt_duration(c.total_ns)}"
        for c in d.collectives[:TOP_ITEMS]
    ]
    copy = [_copy_item(c) for c in d.copy_directions[:TOP_ITEMS]]
    host = _host_items(d)
    return [("gpu", gpu), ("communication", comm), ("copy", copy), ("host", host)]


def _copy_item(c: CopyDirectionTime) -> str:
    text = f"{c.direction} ×{c.count} {fmt_bytes(c.bytes)}, {fmt_duration(c.exposed_ns)} exposed"
    if c.bandwidth_gb_per_s is not None:
        text += f", {fmt_bandwidth(c.bandwidth_gb_per_s)}"
        if c.link_ratio is not None and c.link:
            text += f" ({c.link_ratio:.0%} of {c.link})"
    if c.pageable_count:
        text += f", {c.pageable_count} pageable"
    return text


def _host_items(d: DeviceAttribution) -> list[str]:
    h = d.host
    total = d.times_ns.host
    if total <= 0:
        return []
    items = []
    if h.no_api_ns is not None:
        parts = {
            "no CUDA call (Python/framework)": h.no_api_ns,
            "sync/blocking calls": h.sync_ns or 0,
            "launch calls": h.launch_ns or 0,
            "other API calls": h.other_api_ns or 0,
        }
        items += [f"{k} {v / total:.0%}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]) if v > 0]
    elif h.na_reason:
        items.append(f"API split n/a: {h.na_reason}")
    if h.ranges:
        items.append("inside " + ", ".join(f"{r.name} {r.host_ns / total:.0%}" for r in h.ranges[:TOP_ITEMS]))
    return items
