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


def _op_table(title: str, rows: list[OpRow], labels: tuple[str, str], *, bucket: bool = False) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD)
    columns = ["name", labels[0], labels[1], "delta", "delta %", "status"] + (["bucket"] if bucket else [])
    for col in columns:
        table.add_column(col, justify="left" if col in ("name", "bucket") else "right")
    for r in rows:
        cells = [
            r.name[:70],
            "-" if r.baseline is None else f"{r.baseline:,.1f}",
            "-" if r.target is None else f"{r.target:,.1f}",
            f"{r.delta:+,.1f}",
            "-" if r.delta_pct is None else f"{r.delta_pct:+.1f}%",
            r.status,
        ]
        table.add_row(*cells, *([r.bucket or "-"] if bucket else []))
    return table


def _environment_table(report: DiffReport) -> Table | None:
    """GPU, ranks, versions, dtype and batch of both sides; changed rows in bold."""
    if report.environment is None:
        return None
    base, tgt = report.environment
    changed = {c.field for c in report.environment_changes}
    table = Table(title="environment", box=box.SIMPLE_HEAD)
    for col in ("", report.labels[0], report.labels[1]):
        table.add_column(col)
    rows: list[tuple[str, str, str, str]] = [
        ("gpu_model", "GPU", base.gpu_model or "-", tgt.gpu_model or "-"),
        ("world_size", "world size", _opt(base.world_size), _opt(tgt.world_size)),
        ("gpus_active", "GPUs in this trace", str(base.gpus_active), str(tgt.gpus_active)),
    ]
    rows.append(
        (
            "dtype:matmul kernels (hint)",
            "matmul kernel dtypes (hint, from names)",
            _dtype_text(base.kernel_dtypes),
            _dtype_text(tgt.kernel_dtypes),
        )
    )
    for prefix, a, b in (("version", base.versions, tgt.versions), ("dtype", base.dtypes, tgt.dtypes)):
        rows += [(f"{prefix}:{k}", k, a.get(k, "-"), b.get(k, "-")) for k in sorted(set(a) | set(b))]
    rows += [
        (f"batch:{k}", k, base.batch.get(k, "-"), tgt.batch.get(k, "-"))
        for k in sorted(set(base.batch) | set(tgt.batch))
    ]
    for field, name, a_text, b_text in rows:
        style = "bold" if field in changed else ""
        table.add_row(name, a_text[:60], b_text[:60], style=style)
    return table


def _dtype_text(hint: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0%}" for k, v in list(hint.items())[:3]) or "-"


def _opt(value: int | None) -> str:
    return "-" if value is None else str(value)


def _decomposition_table(report: DiffReport) -> Table | None:
    """The step-wall delta split into buckets (and the gpu bucket by category), µs/step."""
    d = report.decomposition
    if d is None:
        return None
    table = Table(
        title="where the step wall changed (µs/step, docs/methodology.md §3.2)", box=box.SIMPLE_HEAD
    )
    for col in ("bucket", report.labels[0], report.labels[1], "delta", "share of wall delta"):
        table.add_column(col, justify="left" if col == "bucket" else "right")
    for r in [d.wall, *d.buckets, *d.gpu_categories[:6]]:
        share = "-" if r.share_of_wall_delta is None else f"{r.share_of_wall_delta:+.0%}"
        name = f"  {r.name}" if r.name.startswith("gpu:") else r.name
        table.add_row(name, f"{r.baseline:,.1f}", f"{r.target:,.1f}", f"{r.delta:+,.1f}", share)
    return table


def render_diff(report: DiffReport, console: Console) -> None:
    """Caveats and environment, the bucket split of the wall delta, then per-op deltas by |delta|."""
    for warning in report.warnings:
        console.print(Text.assemble(("warning: ", "bold yellow"), warning))
    env = _environment_table(report)
    if env is not None:
        console.print(env)
    console.print(Text.assemble(("root cause: ", "bold"), report.root_cause))
    for b in (report.baseline, report.target):
        console.print(f"{b.label}: {b.steps} steady steps ({b.iterations.method}: {b.iterations.reason})")
    split = _decomposition_table(report)
    if split is not None:
        console.print(split)
    console.print(_op_table("per step", report.summary, report.labels))
    changed = [r for r in report.ops if r.status != "same"][:MAX_OPS] or report.ops[:5]
    comparable = report.similarity is None or report.similarity.comparable
    title = "operations (self time µs/step, by |delta|; bucket: what the GPU did meanwhile)"
    if not comparable:
        title += " — different workloads: not comparable, not blame"
    console.print(_op_table(title, changed, report.labels, bucket=True))
    console.print(
        _op_table("CUDA API (µs/step, by |delta|)", report.apis[: MAX_OPS // 2], report.labels, bucket=True)
    )
    for finding in report.findings:
        console.print(
            Text.assemble((finding.severity, "bold"), f" {finding.title} ", (f"({finding.id})", "dim"))
        )
