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
from infersight.rules.finding import Finding

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
    if report.trace.verdict:
        notes.insert(0, f"verdict: {report.trace.verdict}")
    if report.trace.categories:
        top = list(report.trace.categories.items())[:6]
        notes.append("kernel time by category: " + ", ".join(f"{c} {fmt_pct(s)}" for c, s in top))
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
    notes = [gpu_line(report)]
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


def gpu_line(report: NcuReport) -> str:
    """'GPU: NVIDIA GeForce RTX 5090 (identified from the export: ...)' for the report's header."""
    gpu = report.gpu
    if gpu is None:
        return "GPU: unknown — " + next(
            (k.roofline.e_roof_na_reason for k in report.kernels if k.roofline.e_roof_na_reason),
            "pass --gpu NAME",
        )
    how = {
        "named": "named by the export",
        "identified": "identified from the export's figures",
        "ambiguous": "the export's figures fit several GPUs",
        "closest": "closest match to the export's figures",
        "option": "--gpu",
        "trace": "from the trace",
    }[gpu.match]
    name = report.gpu_name or gpu.name or "unknown"
    detail = f": {gpu.reason}" if gpu.reason and gpu.match not in ("option", "named") else ""
    return f"GPU: {name} ({how}{detail})"


def _trace_line(k: KernelProfile) -> str:
    if k.trace is None:
        return "not in the trace" if k.trace is None else ""
    config = {
        True: "this grid/block",
        False: "the trace never ran this grid/block — figures are the kernel name's",
        None: "the trace has no launch dimensions",
    }[k.trace.config_match]
    return (
        f"{fmt_pct(k.trace.share)} of GPU kernel time, {fmt_count(k.trace.count)} launches averaging "
        f"{fmt_duration(k.trace.avg_ns)} ({config})"
    )


def _occupancy(k: KernelProfile) -> str:
    m = k.metrics
    achieved, theoretical = m.get("achieved_occupancy_pct"), m.get("theoretical_occupancy_pct")
    text = f"{_num(achieved, unit='%')} achieved of {_num(theoretical, unit='%')} theoretical"
    if k.occupancy_limiters:
        text += f"; limited by {' and '.join(k.occupancy_limiters)}"
    return text


def _bandwidth(k: KernelProfile) -> str:
    measured = k.metrics.get("dram_bandwidth") or k.roofline.achieved_bytes_per_s
    text = _si(measured, "B/s")
    if k.roofline.dram_efficiency is not None:
        text += f" ({fmt_pct(k.roofline.dram_efficiency)} of the datasheet peak)"
    return text


def kernel_figures_section(report: NcuReport, index: int) -> Section:
    """One focus kernel's Nsight Compute figures, one per row (the integrated report's kernel card)."""
    k = report.kernels[index]
    m = k.metrics
    waves = m.get("waves_per_sm")
    waves_source = k.metric_sources.get("waves_per_sm", "")
    computed = waves_source.startswith("computed")
    point = k.roofline
    l2_hit = _num(m.get("l2_hit_rate_pct"), unit="%")
    intensity = _num(point.intensity, "{:.3g}")
    rows = [
        ["in the trace", _trace_line(k) if report.trace is not None else "no --trace"],
        ["duration (median)", f"{fmt_duration(m.get('duration_ns'))} over {k.launches} profiled launch(es)"],
        ["SM throughput", _num(m.get("sm_throughput_pct"), unit="% of peak")],
        ["memory throughput", _num(m.get("memory_throughput_pct"), unit="% of peak")
         + f" (DRAM {_num(m.get('dram_throughput_pct'), unit='%')})"],
        ["DRAM bandwidth", _bandwidth(k)],
        ["L1 / L2 hit rate", f"{_num(m.get('l1_hit_rate_pct'), unit='%')} / {l2_hit}"],
        ["occupancy", _occupancy(k)],
        ["waves per SM", _num(waves, "{:.2f}") + (f" ({waves_source})" if computed else "")],
        ["FLOP/s, FLOP/byte", f"{_si(point.achieved_flop_per_s, 'FLOP/s')}, {intensity}"],
        ["E_roof", fmt_pct(point.e_roof) + (f" ({point.bound}-bound roof)" if point.bound else "")],
        ["speed of light", k.sol_verdict or "n/a"],
    ]  # fmt: skip
    return Section(
        f"k{index} {k.short_name} — grid {_dims(k.grid)}, block {_dims(k.block)}",
        ["figure", "value"],
        rows,
        wrapping={1},
    )


def _gain(finding: Finding) -> str:
    gain = finding.expected_gain
    if gain is None:
        return "n/a"
    return f"{fmt_pct(gain.low, 0)}-{fmt_pct(gain.high, 0)}"


def kernel_bottlenecks_section(report: NcuReport, index: int) -> Section:
    """The kernel's findings with confidence, expected gain and what Nsight Compute says about them."""
    k = report.kernels[index]
    scope = f"/k{index}:{k.short_name}"
    mine = [f for f in report.findings if f.id.endswith(scope)]
    ncu_of: dict[str, list[str]] = {}
    for row in report.nsight_rules:
        if row.kernel == f"k{index}":
            for fid in row.findings:
                ncu_of.setdefault(fid, []).append(
                    f"agrees ({row.rule})" if row.status == "agrees" else row.rule
                )
    has_rules = any(row.kernel == f"k{index}" for row in report.nsight_rules)
    rows = [
        [
            f.title,
            f"{f.confidence}",
            _gain(f),
            ", ".join(ncu_of.get(f.id, [])) or ("not flagged by Nsight Compute" if has_rules else "—"),
        ]
        for f in mine
    ]
    return Section(
        f"k{index} bottlenecks",
        ["finding", "confidence", "expected gain (of kernel time)", "Nsight Compute"],
        rows,
        wrapping={0, 3},
        empty_reason="no rule fired on this kernel",
    )


def _speedup(pct: float | None, kind: str) -> str:
    return _num(pct, unit="%") + (f" {kind}" if kind else "")


def nsight_section(report: NcuReport) -> Section | None:
    """Nsight Compute's own OPT/WRN rules and whether infersight's findings cover them."""
    if report.nsight_coverage is None:
        return None
    cov = report.nsight_coverage
    rows = [
        [
            r.kernel,
            r.rule,
            r.type,
            _speedup(r.speedup_pct, r.speedup_type),
            r.status.replace("_", " "),
            r.reason,
        ]
        for r in report.nsight_rules
    ]
    notes = [
        f"infersight covers {cov.covered} of Nsight Compute's {cov.rules} OPT/WRN findings "
        f"({fmt_pct(cov.covered / cov.rules if cov.rules else None, 0)}); "
        f"{cov.disagreements} disagreement(s)",
    ]
    if cov.infersight_only:
        notes.append("found by infersight only: " + ", ".join(cov.infersight_only))
    return Section(
        "Nsight Compute's own rules vs infersight",
        ["kernel", "rule", "type", "est. speedup", "infersight", "why"],
        rows,
        notes=notes,
        right_aligned={3},
        wrapping={5},
    )


def _kernel_names(report: NcuReport) -> list[str]:
    return [f"k{index}: {k.name}" for index, k in enumerate(report.kernels)]


def _sections(report: NcuReport) -> list[Section]:
    """The integrated report: trace overview, kernel table, each focus kernel (figures and
    bottlenecks), Nsight Compute's rules vs infersight, theory, unevaluated rules."""
    out = [s for s in (trace_section(report),) if s is not None]
    kernels = kernels_section(report)
    kernels.notes += roofline_notes(report)
    out += [kernels]
    for index in range(len(report.kernels)):
        out += [kernel_figures_section(report, index), kernel_bottlenecks_section(report, index)]
    nsight = nsight_section(report)
    out += [nsight] if nsight is not None else [ncu_advice_section(report)]
    out += [s for s in (theory_section(report),) if s is not None]
    out += [checks_section(report)]
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
