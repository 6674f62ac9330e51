"""Terminal views of the host report and the diff report (layout only, no computation)."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from infersight.host.results import DiffReport, GapFill, HostReport, OpRow
from infersight.render.findings import print_findings

MAX_OPS = 15


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _us(ns: int | float | None) -> str:
    return "-" if ns is None else f"{ns / 1e3:,.1f}"


def _fill_line(fill: GapFill) -> str:
    """One line of what fills a window, with the leading copy direction / collective."""
    parts = [
        f"compute {fill.share('gpu'):.0%}",
        f"communication {fill.share('communication'):.0%}",
        f"copy {fill.share('copy'):.0%}",
        f"nothing on the GPU (host) {fill.share('host'):.0%}",
    ]
    detail = []
    if fill.copy_by_direction:
        detail.append(
            "copy: "
            + ", ".join(f"{k} {v / 1e6:,.3f} ms" for k, v in list(fill.copy_by_direction.items())[:3])
        )
    if fill.communication_by_collective:
        detail.append(
            "communication: "
            + ", ".join(
                f"{k} {v / 1e6:,.3f} ms" for k, v in list(fill.communication_by_collective.items())[:3]
            )
        )
    tail = f" ({'; '.join(detail)})" if detail else ""
    return f"{fill.window} {fill.window_ns / 1e6:,.3f} ms: " + " · ".join(parts) + tail


def _render_attribution(report: HostReport, console: Console) -> None:
    """What fills each scope's window, and which bucket explains it (methodology §4)."""
    for scope in report.scopes:
        if not scope.applicable or scope.attribution is None:
            continue
        console.print(f"{scope.scope} [{scope.explained_by}] {_fill_line(scope.attribution)}")
        if scope.activity_attribution is not None:
            console.print(Text(f"  {_fill_line(scope.activity_attribution)}", style="dim"))


def render_host(report: HostReport, console: Console) -> None:
    """Verdict, metrics per scope, iterations, gap drill-down and findings."""
    style = {"YES": "bold red", "NO": "bold green"}.get(report.verdict, "bold yellow")
    console.print(
        Text.assemble(
            ("host overhead bottleneck: ", "bold"), (report.verdict, style), f" — {report.verdict_reason}"
        )
    )
    table = Table(title="M1-M5 per scope", box=box.SIMPLE_HEAD)
    table.add_column("metric")
    for scope in report.scopes:
        table.add_column(scope.scope, justify="right")
    table.add_column("threshold (agg)")
    aggregate = report.scopes[0]
    for metric in aggregate.metrics:
        cells = []
        for scope in report.scopes:
            m = scope.metric(metric.id)
            if not scope.applicable or m is None:
                cells.append("-")
            else:
                cells.append(("! " if m.crossed else "") + _ratio(m.value))
        table.add_row(f"{metric.id} {metric.name}", *cells, f"{metric.comparison} {metric.threshold:g}")
    table.add_row(
        "verdict", *[("YES" if s.host_bound else "NO") if s.applicable else "n/a" for s in report.scopes], ""
    )
    console.print(table)
    _render_attribution(report, console)
    shown: set[str] = set()
    for scope in report.scopes:
        if not scope.applicable:
            console.print(Text(f"{scope.scope}: not applicable — {scope.na_reason}", style="dim"))
            continue
        console.print(f"{scope.scope}: {scope.likely_cause}")
        for caveat in scope.caveats:
            if caveat not in shown:  # the same n/a reason in every scope is said once
                console.print(Text.assemble("  ", ("caveat", "yellow"), f" {caveat}"))
                shown.add(caveat)
    for it in report.iterations:
        console.print(
            f"iterations ({it.trace}): {it.method} — {it.reason}; "
            f"phases: {it.phase_method} ({it.phase_reason}); "
            f"{len(it.steady())} steady steps, {it.warmup_dropped} warm-up dropped"
        )
    _render_gaps(report, console)
    print_findings(console, report.findings, summary=True)
    for note in report.notes:
        console.print(Text(f"note: {note}", style="dim"))


def _render_gaps(report: HostReport, console: Console) -> None:
    drill = report.drilldown
    buckets = Table(title="GPU idle gaps by likely host cause", box=box.SIMPLE_HEAD)
    for col in ("gap length", "likely cause", "count", "total ms"):
        buckets.add_column(col, justify="right" if col in ("count", "total ms") else "left")
    for b in drill.buckets:
        upper = f"{b.upper_ns / 1e3:g} µs" if b.upper_ns is not None else "∞"
        buckets.add_row(
            f"{b.lower_ns / 1e3:g} µs – {upper}", b.cause, str(b.count), f"{b.total_ns / 1e6:,.3f}"
        )
    console.print(buckets)
    aggregate = report.scope("aggregate")
    if aggregate is not None and aggregate.explained_by in ("copy", "communication"):
        console.print(
            Text(
                f"the causes above are the host's usual ones for each gap length; here "
                f"{aggregate.explained_by} fills the gaps (copy % below), so they do not apply",
                style="yellow",
            )
        )
    gaps = Table(title="largest gaps and what the host was doing", box=box.SIMPLE_HEAD)
    for col in (
        "µs",
        "rank",
        "dev",
        "phase",
        "host API at gap start",
        "innermost range",
        "launch",
        "launched +µs",
        "copy %",
    ):
        gaps.add_column(col)
    for g in drill.top_gaps:
        gaps.add_row(
            _us(g.length_ns),
            g.rank[:24],
            str(g.device),
            g.phase or "-",
            g.host_api or "-",
            (g.host_range or "-")[:48],
            g.launch_api or (g.na_reason or "-")[:40],
            _us(g.launch_into_gap_ns),
            f"{g.copy_ns / g.length_ns:.0%}" if g.length_ns else "-",
        )
    console.print(gaps)
    coverage = (
        _ratio(drill.graph_coverage)
        if drill.graph_coverage is not None
        else f"n/a ({drill.graph_coverage_na_reason})"
    )
    console.print(f"CUDA-graph coverage: {coverage}")
    if drill.layer_pattern:
        top = ", ".join(f"{p.group} {p.share_of_gap:.0%} ({p.top_kernel})" for p in drill.layer_pattern[:4])
        console.print(f"idle inside steps, by the functional group it precedes: {top}")
    elif drill.layer_pattern_na_reason:
        console.print(Text(f"layer pattern: {drill.layer_pattern_na_reason}", style="dim"))
    for s in report.stragglers:
        if s.straggler:
            console.print(
                Text.assemble(("straggler:", "bold"), f" {s.rank} (avg step {_us(s.avg_step_ns)} µs)")
            )


def _op_table(title: str, rows: list[OpRow], labels: tuple[str, str]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for col in ("name", labels[0], labels[1], "delta", "delta %", "status"):
        table.add_column(col, justify="left" if col == "name" else "right")
    for r in rows:
        table.add_row(
            r.name[:70],
            "-" if r.baseline is None else f"{r.baseline:,.1f}",
            "-" if r.target is None else f"{r.target:,.1f}",
            f"{r.delta:+,.1f}",
            "-" if r.delta_pct is None else f"{r.delta_pct:+.1f}%",
            r.status,
        )
    return table


def render_diff(report: DiffReport, console: Console) -> None:
    """Summary per step, then operations and API calls ranked by |delta|."""
    console.print(Text.assemble(("root cause: ", "bold"), report.root_cause))
    for b in (report.baseline, report.target):
        console.print(f"{b.label}: {b.steps} steady steps ({b.iterations.method}: {b.iterations.reason})")
    console.print(_op_table("per step", report.summary, report.labels))
    changed = [r for r in report.ops if r.status != "same"][:MAX_OPS] or report.ops[:5]
    console.print(_op_table("operations (self time µs/step, by |delta|)", changed, report.labels))
    console.print(_op_table("CUDA API (µs/step, by |delta|)", report.apis[: MAX_OPS // 2], report.labels))
    for finding in report.findings:
        console.print(
            Text.assemble((finding.severity, "bold"), f" {finding.title} ", (f"({finding.id})", "dim"))
        )
