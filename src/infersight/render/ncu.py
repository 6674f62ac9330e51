"""Views of the kernel deep dive (:class:`NcuReport`) and of an ``ncu-plan``: terminal, Markdown, JSON.

Only formatting: every figure comes from the report. Sections reuse the shared table layout of
:mod:`infersight.render.sections`, so the terminal and the Markdown show the same cells.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

from rich.console import Console
from rich.text import Text

from infersight.errors import InputError
from infersight.ncu.plan import NcuPlan
from infersight.ncu.results import KernelProfile, NcuReport
from infersight.render.markdown import _findings as markdown_findings
from infersight.render.markdown import _md
from infersight.render.markdown import _section as markdown_section
from infersight.render.sections import Section, fmt_count, fmt_duration, fmt_pct
from infersight.render.terminal import _print_findings, _print_section


def _num(value: float | None, fmt: str = "{:.1f}", unit: str = "") -> str:
    return "n/a" if value is None else fmt.format(value) + unit


def _si(value: float | None, unit: str) -> str:
    """1.23 TFLOP/s, 458 GB/s: three significant digits with an SI prefix."""
    if value is None:
        return "n/a"
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _dims(dims: tuple[int, int, int] | None) -> str:
    return "n/a" if dims is None else "×".join(str(d) for d in dims)


def trace_section(report: NcuReport) -> Section | None:
    """Kernel time share in the nsys/Kineto trace, and which kernels the ncu export covers."""
    if report.trace is None:
        return None
    rows = [
        [
            k.name,
            k.category,
            fmt_count(k.count),
            fmt_duration(k.total_ns),
            fmt_pct(k.share),
            "yes" if k.profiled else "—",
        ]
        for k in report.trace.top_kernels
    ]
    notes = [
        f"trace wall {fmt_duration(report.trace.wall_ns)}, "
        f"kernel time {fmt_duration(report.trace.kernel_time_ns)}; "
        f"NCCL share {fmt_pct(report.trace.nccl_share)}"
    ]
    return Section(
        "Trace overview (nsys/Kineto): top kernels by GPU time",
        ["kernel", "category", "count", "total", "share", "in ncu"],
        rows,
        notes=notes,
        right_aligned={2, 3, 4},
        wrapping={0},
    )


def kernels_section(report: NcuReport) -> Section:
    """Per-kernel counters: SOL, occupancy, DRAM, caches, roofline."""
    rows = []
    for index, k in enumerate(report.kernels):
        m = k.metrics
        rows.append(
            [
                f"k{index}",
                k.short_name,
                f"{k.launches}",
                fmt_duration(m.get("duration_ns")),
                _num(m.get("sm_throughput_pct"), unit="%"),
                _num(
                    m.get("memory_throughput_pct")
                    if m.get("memory_throughput_pct") is not None
                    else m.get("dram_throughput_pct"),
                    unit="%",
                ),
                _num(m.get("achieved_occupancy_pct"), unit="%"),
                _si(m.get("dram_bandwidth") or k.roofline.achieved_bytes_per_s, "B/s"),
                _num(m.get("l1_hit_rate_pct"), unit="%"),
                _num(m.get("l2_hit_rate_pct"), unit="%"),
                _si(k.roofline.achieved_flop_per_s, "FLOP/s"),
                _num(k.roofline.intensity, "{:.3g}"),
                fmt_pct(k.roofline.e_roof),
                fmt_pct(k.roofline.dram_efficiency),
                k.sol_verdict or "n/a",
            ]
        )
    notes = [
        f"GPU: {report.gpu_name or 'unknown'}"
        + (f" (from {report.gpu_name_source})" if report.gpu_name_source else "")
    ]
    return Section(
        "Kernels (Nsight Compute, median over launches)",
        ["#", "kernel", "launches", "duration", "SM", "memory", "occupancy", "DRAM BW", "L1 hit", "L2 hit",
         "FLOP/s", "FLOP/B", "E_roof", "DRAM eff", "speed-of-light verdict"],
        rows,
        notes=notes,
        right_aligned=set(range(2, 14)),
        wrapping={1, 14},
    )  # fmt: skip


def roofline_notes(report: NcuReport) -> list[str]:
    """Why E_roof or FLOPs are missing, per kernel (once per distinct reason)."""
    seen: dict[str, list[str]] = {}
    for index, k in enumerate(report.kernels):
        for reason in (k.roofline.e_roof_na_reason, k.roofline.flops_na_reason):
            if reason:
                seen.setdefault(reason, []).append(f"k{index}")
    return [f"{', '.join(ids)}: {reason}" for reason, ids in seen.items()]


def checks_section(report: NcuReport) -> Section:
    """Rules that could not be evaluated, with the metric that would settle them (kernels grouped)."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for check in report.checks:
        if check.status == "not_evaluated":
            grouped.setdefault((check.rule, "\n".join(check.missing)), []).append(
                check.kernel.split(":", 1)[0]
            )
    rows = [[", ".join(kernels), rule, missing] for (rule, missing), kernels in grouped.items()]
    return Section(
        "Rules not evaluated (missing counters)",
        ["kernels", "rule", "would be settled by"],
        rows,
        wrapping={2},
    )


def ncu_advice_section(report: NcuReport) -> Section:
    """Nsight Compute's own rule results from a details export."""
    rows = [
        [f"k{index}", rule.name, rule.type, _num(rule.speedup_pct, unit="%"), rule.description]
        for index, k in enumerate(report.kernels)
        for rule in k.ncu_rules
        if rule.type in ("OPT", "WRN")
    ]
    return Section(
        "Nsight Compute's own rules (OPT/WRN)",
        ["kernel", "rule", "type", "est. speedup", "description"],
        rows,
        right_aligned={3}, wrapping={4},
    )  # fmt: skip


def _kernel_names(report: NcuReport) -> list[str]:
    return [f"k{index}: {k.name}" for index, k in enumerate(report.kernels)]


def _sections(report: NcuReport) -> list[Section]:
    out = [s for s in (trace_section(report),) if s is not None]
    kernels = kernels_section(report)
    kernels.notes += roofline_notes(report)
    out += [kernels, checks_section(report), ncu_advice_section(report)]
    return out


def render_ncu_terminal(report: NcuReport, console: Console) -> None:
    """Print the integrated report."""
    console.print(
        Text.assemble(
            ("infersight ncu ", "bold"), f"{report.tool_version} · report schema {report.schema_version}"
        )
    )
    for source in report.sources:
        console.print(Text(f"  {source}", style="dim"))
    for section in _sections(report):
        _print_section(console, section)
    for note in report.notes:
        console.print(Text(f"note: {note}", style="dim"))
    _print_findings(console, report.findings)


def render_ncu_text(report: NcuReport, width: int = 200) -> str:
    """The terminal report as plain text (tests, pipes)."""
    buffer = io.StringIO()
    render_ncu_terminal(
        report, Console(file=buffer, width=width, color_system=None, force_terminal=False, markup=False)
    )
    return buffer.getvalue()


def render_ncu_markdown(report: NcuReport) -> str:
    """The integrated report as one Markdown document."""
    parts = [
        "# infersight kernel deep dive (Nsight Compute)",
        "",
        f"infersight {report.tool_version} · report schema {report.schema_version}",
        "",
    ]
    parts += [f"- source: `{source}`" for source in report.sources] + [""]
    for section in _sections(report):
        parts += markdown_section(section)
    if report.notes:
        parts += ["## Notes", ""] + [f"- {_md(note)}" for note in report.notes] + [""]
    parts += markdown_findings(report.findings)
    parts += ["## Kernel names", ""] + [f"- {_md(name)}" for name in _kernel_names(report)] + [""]
    return "\n".join(parts).rstrip() + "\n"


def render_ncu_json(report: NcuReport) -> str:
    """The report as indented JSON."""
    return report.model_dump_json(indent=2) + "\n"


def kernel_label(kernel: KernelProfile) -> str:
    """'flash_fwd_splitkv_kernel (grid 1×8×10, block 128×1×1)'."""
    return f"{kernel.short_name} (grid {_dims(kernel.grid)}, block {_dims(kernel.block)})"


def render_plan_text(plan: NcuPlan) -> str:
    """The ncu-plan output: a commented shell script, one command per focus kernel."""
    lines = [f"# infersight ncu-plan — {plan.focus_method}; trace: {', '.join(plan.source)}"]
    lines += [f"# note: {note}" for note in plan.notes]
    for index, k in enumerate(plan.kernels, start=1):
        lines += [
            "",
            f"# {index}. {k.name} [{k.category}] — {k.reason}: "
            f"{k.count:,} launches, {fmt_duration(k.total_ns)}",
        ]
        if k.regex_note:
            lines.append(f"#    regex note: {k.regex_note}")
        lines.append(k.command)
    return "\n".join(lines) + "\n"


def render_ncu_roofline_plot(report: NcuReport, path: Path) -> bytes:
    """Measured roofline points (one per kernel) under the GPU's roofs, as png, svg or html bytes.

    Only kernels with an intensity and achieved FLOP/s are drawn; the roofs are the peaks the
    report used (``peak_flop_per_s`` per precision, ``peak_bytes_per_s``). Needs matplotlib.
    """
    from infersight.theory.plot import check_plot_path

    check_plot_path(path)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError(path, "the roofline plot needs matplotlib: pip install 'infersight[plot]'") from None
    points = [
        (f"k{i}", k.short_name, k.roofline)
        for i, k in enumerate(report.kernels)
        if k.roofline.intensity and k.roofline.achieved_flop_per_s
    ]
    if not points:
        raise InputError(path, "--plot: no kernel has both FLOP and DRAM-byte counters; nothing to plot")
    figure, axes = plt.subplots(figsize=(10, 6.5), dpi=110)
    try:
        xs = [p[2].intensity or 1.0 for p in points]
        lo, hi = min(xs) / 4, max(xs) * 4
        grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
        bandwidth = next((p[2].peak_bytes_per_s for p in points if p[2].peak_bytes_per_s), None)
        roofs = {(p[2].precision, p[2].peak_flop_per_s) for p in points if p[2].peak_flop_per_s}
        styles = ("--", "-", "-.", ":")
        for index, (precision, peak) in enumerate(sorted(roofs, key=lambda r: r[1] or 0.0)):
            if bandwidth and peak:
                roof = [min(peak, x * bandwidth) for x in grid]
                style = styles[index % len(styles)]
                axes.plot(grid, roof, style, color="black", lw=1, label=f"{precision} roof")
        for label, name, point in points:
            x, y = float(point.intensity or 0.0), float(point.achieved_flop_per_s or 0.0)
            axes.scatter([x], [y], s=40, edgecolors="black", linewidths=0.4)
            e_roof = "n/a" if point.e_roof is None else f"{point.e_roof:.0%}"
            axes.annotate(
                f"{label} {name[:40]} (E_roof {e_roof})",
                (x, y),
                fontsize=7,
                xytext=(4, -10),
                textcoords="offset points",
            )
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("arithmetic intensity (FLOP / DRAM byte)")
        axes.set_ylabel("achieved FLOP/s")
        axes.set_title(
            f"Measured kernels (Nsight Compute) on {report.gpu_name or 'unknown GPU'}", fontsize=10
        )
        axes.grid(True, which="both", lw=0.3, alpha=0.5)
        if roofs and bandwidth:
            axes.legend(fontsize=8, loc="lower right")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png" if path.suffix.lower() == ".png" else "svg", bbox_inches="tight")
    finally:
        plt.close(figure)
    data = buffer.getvalue()
    if path.suffix.lower() != ".html":
        return data
    svg = data.decode("utf-8")
    title = html.escape(f"infersight ncu roofline — {report.gpu_name or 'unknown GPU'}")
    page = f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>\n<body>\n"
    return (page + svg[svg.index("<svg") :] + "\n</body></html>\n").encode("utf-8")
