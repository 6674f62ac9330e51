"""Views of the kernel deep dive (:class:`NcuReport`) and of an ``ncu-plan``: terminal, Markdown, JSON.

Only formatting: every figure comes from the report. Sections reuse the shared table layout of
:mod:`infersight.render.sections`, so the terminal and the Markdown show the same cells.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from infersight.errors import InputError
from infersight.ncu.plan import NcuPlan
from infersight.ncu.results import KernelProfile, NcuReport
from infersight.render.findings import findings_markdown, print_findings
from infersight.render.markdown import _md
from infersight.render.markdown import _section as markdown_section
from infersight.render.sanitize import one_line, sanitize_text, sanitizing_console
from infersight.render.sections import Section, fmt_count, fmt_duration, fmt_pct
from infersight.render.tables import print_section

if TYPE_CHECKING:
    from infersight.render.roofline_plot import KernelPoint
    from infersight.theory.estimates import ModelEstimate


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


def theory_section(report: NcuReport) -> Section | None:
    """The theory operator points drawn with the measured kernels (``--model``/``--config``)."""
    theory = report.theory
    if theory is None:
        return None
    rows = [
        [p.phase, p.operator, p.category, f"{p.intensity:.3g}", _si(p.flop_per_s, "FLOP/s"), p.bound,
         fmt_pct(p.share)]
        for p in theory.points
    ]  # fmt: skip
    return Section(
        f"Theory operators on the same roofline — {theory.model} on {theory.gpu}, B={theory.batch}, "
        f"S={theory.prompt_len}, L={theory.context_len}, TP={theory.tp}",
        ["phase", "operator", "category", "FLOP/B", "FLOP/s at the roof", "bound", "share of pass"],
        rows,
        notes=[
            f"theory roofs: {_si(theory.matmul_peak_flop_per_s, 'FLOP/s')} matmul ({theory.compute_dtype}), "
            f"{_si(theory.vector_peak_flop_per_s, 'FLOP/s')} vector, B_eff "
            f"{_si(theory.effective_bytes_per_s, 'B/s')}; measured kernels use their dtype's peak and "
            "the datasheet DRAM bandwidth"
        ],
        right_aligned={3, 4, 6},
        wrapping={1},
    )


def _kernel_names(report: NcuReport) -> list[str]:
    return [f"k{index}: {k.name}" for index, k in enumerate(report.kernels)]


def _sections(report: NcuReport) -> list[Section]:
    out = [s for s in (trace_section(report),) if s is not None]
    kernels = kernels_section(report)
    kernels.notes += roofline_notes(report)
    out += [kernels]
    out += [s for s in (theory_section(report),) if s is not None]
    out += [checks_section(report), ncu_advice_section(report)]
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
        print_section(console, section)
    for note in report.notes:
        console.print(Text(f"note: {note}", style="dim"))
    print_findings(console, report.findings)


def render_ncu_text(report: NcuReport, width: int = 200) -> str:
    """The terminal report as plain text (tests, pipes)."""
    buffer = io.StringIO()
    render_ncu_terminal(
        report,
        sanitizing_console(file=buffer, width=width, color_system=None, force_terminal=False, markup=False),
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
    parts += findings_markdown(report.findings)
    parts += ["## Kernel names", ""] + [f"- {_md(name)}" for name in _kernel_names(report)] + [""]
    return sanitize_text("\n".join(parts).rstrip() + "\n")


def render_ncu_json(report: NcuReport) -> str:
    """The report as indented JSON."""
    return report.model_dump_json(indent=2) + "\n"


def kernel_label(kernel: KernelProfile) -> str:
    """'flash_fwd_splitkv_kernel (grid 1×8×10, block 128×1×1)'."""
    return f"{kernel.short_name} (grid {_dims(kernel.grid)}, block {_dims(kernel.block)})"


def render_plan_text(plan: NcuPlan) -> str:
    """The ncu-plan output: a commented shell script, one command per focus kernel."""
    # every comment is one_line(): a newline in a kernel name must not start a shell command
    lines = [one_line(f"# infersight ncu-plan — {plan.focus_method}; trace: {', '.join(plan.source)}")]
    lines += [one_line(f"# note: {note}") for note in plan.notes]
    for index, k in enumerate(plan.kernels, start=1):
        lines += [
            "",
            one_line(
                f"# {index}. {k.name} [{k.category}] — {k.reason}: "
                f"{k.count:,} launches, {fmt_duration(k.total_ns)}"
            ),
        ]
        if k.regex_note:
            lines.append(one_line(f"#    regex note: {k.regex_note}"))
        lines.append(k.command)
    return "\n".join(lines) + "\n"


def kernel_plot_points(report: NcuReport) -> list[KernelPoint]:
    """The kernels with an intensity and achieved FLOP/s, as labelled roofline points with their roofs."""
    from infersight.render.roofline_plot import KernelPoint

    points: list[KernelPoint] = []
    for index, kernel in enumerate(report.kernels):
        point = kernel.roofline
        if not (point.intensity and point.achieved_flop_per_s):
            continue
        e_roof = "n/a" if point.e_roof is None else f"{point.e_roof:.0%}"
        points.append(
            KernelPoint(
                label=f"k{index} {kernel.short_name[:40]} (E_roof {e_roof})",
                intensity=point.intensity,
                flop_per_s=point.achieved_flop_per_s,
                roof_label=f"{point.precision} roof" if point.precision else None,
                peak_flop_per_s=point.peak_flop_per_s,
                peak_bytes_per_s=point.peak_bytes_per_s,
            )
        )
    return points


def render_ncu_roofline_plot(report: NcuReport, path: Path, estimate: ModelEstimate | None = None) -> bytes:
    """Measured kernel points under their roofs, with the theory operators of ``estimate`` when given.

    Drawn by :mod:`infersight.render.roofline_plot` (one plotting implementation for both commands):
    kernels are diamonds labelled with E_roof under the roof of their dtype's peak and the DRAM
    bandwidth; theory operators (both phases) sit on the theory roofs. png, svg or html bytes.
    """
    from infersight.render.roofline_plot import (
        check_plot_path,
        render_kernel_roofline_plot,
        render_roofline_plot,
    )

    check_plot_path(path)
    points = kernel_plot_points(report)
    if not points:
        raise InputError(path, "--plot: no kernel has both FLOP and DRAM-byte counters; nothing to plot")
    if estimate is not None:
        return render_roofline_plot(estimate, path, kernels=points)
    title = f"Measured kernels (Nsight Compute) on {report.gpu_name or 'unknown GPU'}"
    return render_kernel_roofline_plot(points, path, title)
