"""Terminal views of the layer / forward-pass report (layout only; numbers come from infersight.layers)."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from infersight.layers.results import ComputeFlow, LayerDiff, LayerReport, PassRow, PerfettoRange

TOP_CATEGORIES = 3
MAX_DIFF_ROWS = 12


def _us(ns: int | float | None) -> str:
    return "-" if ns is None else f"{ns / 1e3:,.1f}"


def _range(perfetto: PerfettoRange) -> str:
    return f"{perfetto.start_s:.6f}–{perfetto.end_s:.6f}"


def _shares(shares: dict[str, float]) -> str:
    return ", ".join(f"{name} {share:.0%}" for name, share in list(shares.items())[:TOP_CATEGORIES])


def render_layers(report: LayerReport, console: Console, *, show_all_passes: bool = False) -> None:
    """Anchor, passes, per-layer table, layer-type clusters, verdict, diff and warnings."""
    _header(report, console)
    passes = (
        report.passes if show_all_passes else [p for p in report.passes if p.index == report.selected_pass]
    )
    if passes:
        title = "forward passes" if show_all_passes else f"selected pass ({report.selected_reason})"
        if report.pass_structure is not None and not report.pass_structure.plausible:
            title += " — split not trusted: see the pass structure above"
        console.print(_pass_table(passes, title))
    if not show_all_passes and len(report.passes) > 1:
        states = ", ".join(f"{sum(p.state == s for p in report.passes)} {s}" for s in _states(report.passes))
        console.print(
            Text(
                f"{len(report.passes)} passes ({states}); "
                "--show-all-passes lists them, --fwd-pass N picks one",
                style="dim",
            )
        )
    if report.layers:
        _print_theory(report, console)
        console.print(_layer_table(report))
        console.print(_cluster_table(report))
        console.print(Text.assemble(("verdict: ", "bold"), report.verdict))
        _print_theory_summary(report, console)
    if report.diff is not None:
        _print_diff(report.diff, console)
    _print_warnings(report, console)


def render_compute_flow(report: LayerReport, console: Console) -> None:
    """The kernels of one layer in execution order (and the diff when --compare-layer is given)."""
    _header(report, console)
    if report.flow is None:
        console.print(Text("no layers found", style="yellow"))
    else:
        console.print(_flow_table(report.flow))
        if report.flow.input_dims_na_reason:
            console.print(Text(f"input dims: n/a — {report.flow.input_dims_na_reason}", style="dim"))
    if report.diff is not None:
        _print_diff(report.diff, console)
    _print_warnings(report, console)


def _header(report: LayerReport, console: Console) -> None:
    expected = (
        f"{report.layers_expected} layers ({report.layers_expected_source})"
        if report.layers_expected
        else "layer count not given (inferred from the trace)"
    )
    model = report.model or "no model config"
    console.print(
        Text.assemble(("layers ", "bold"), f"{report.trace} · device {report.device} · {model} · {expected}")
    )
    console.print(Text.assemble(("anchor: ", "bold"), report.anchor.reason))
    _print_pass_structure(report, console)
    if report.anchor.period_kernels is not None and report.anchor.period_stability is not None:
        console.print(
            Text(
                f"{report.anchor.occurrences} anchor events; {report.anchor.period_kernels} kernels between "
                f"anchors in {report.anchor.period_stability:.0%} of the intervals · Perfetto times are "
                "seconds since the trace's first event",
                style="dim",
            )
        )


def _print_pass_structure(report: LayerReport, console: Console) -> None:
    """Layers per pass and the evidence that decided it; an implausible split says so first."""
    structure = report.pass_structure
    if structure is None or structure.method in ("config", "--num-layers"):
        return
    if structure.plausible:
        console.print(
            Text.assemble(
                ("pass structure: ", "bold"),
                f"{'at least ' if structure.lower_bound else ''}{structure.layers_per_pass} layers per pass "
                f"(method: {structure.method}) — "
                f"{structure.reason}",
            )
        )
        return
    console.print(
        Text.assemble(
            ("pass structure: ", "bold"),
            ("layers per pass unknown", "yellow"),
            f" (method: {structure.method}) — the anchor count per pass is implausible: "
            f"{'; '.join(structure.problems)}. Evidence: {structure.reason}. Pass --config or --layers N "
            "(docs/methodology.md §5).",
        )
    )


def _has_theory(report: LayerReport) -> bool:
    return any(row.theory_roof_ns is not None for row in report.layers)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _print_theory(report: LayerReport, console: Console) -> None:
    """What the theory columns are (or how to get them)."""
    theory = report.theory
    if theory is None:
        if report.theory_hint:
            console.print(Text(report.theory_hint, style="dim"))
        return
    lengths = f"S={theory.prompt_len}" if theory.phase == "prefill" else f"L={theory.context_len}"
    console.print(
        Text.assemble(
            ("theory: ", "bold"),
            f"{theory.phase or 'unknown'} pass ({theory.phase_reason}); {theory.model} on {theory.gpu} "
            f"({theory.gpu_source}, {theory.compute_dtype}), B={theory.batch}, {lengths}, TP={theory.tp}",
        )
    )
    console.print(Text(theory.definition, style="dim"))
    if theory.na_reason:
        console.print(Text.assemble(("theory n/a: ", "yellow"), theory.na_reason))
    for note in theory.notes:
        console.print(Text.assemble(("note: ", "yellow"), note))


def _print_theory_summary(report: LayerReport, console: Console) -> None:
    """One line: mean E_roof per layer type."""
    if not _has_theory(report):
        return
    parts = [
        f"{c.layer_type} {_ratio(c.avg_e_roof_wall)} of wall / {_ratio(c.avg_e_roof_kernels)} of kernel time"
        for c in report.clusters
        if c.avg_theory_roof_ns is not None
    ]
    console.print(Text.assemble(("E_roof per layer type (mean): ", "bold"), "; ".join(parts)))


def _states(passes: list[PassRow]) -> list[str]:
    return list(dict.fromkeys(p.state for p in passes))


def _pass_table(passes: list[PassRow], title: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD)
    for header in (
        "pass",
        "state",
        "shape",
        "layers",
        "kernels",
        "wall µs",
        "layers µs",
        "pre µs",
        "post µs",
        "layer avg µs",
        "layer 0 µs",
        "Perfetto s",
    ):
        table.add_column(
            header, justify="left" if header in ("state", "Perfetto s") else "right", overflow="fold"
        )
    for p in passes:
        table.add_row(
            str(p.index),
            p.state,
            str(p.shape),
            str(p.layer_count),
            str(p.kernel_count),
            _us(p.duration_ns),
            _us(p.layers_ns),
            _us(p.prologue_ns),
            _us(p.epilogue_ns),
            _us(p.avg_layer_ns),
            _us(p.first_layer_ns),
            _range(p.perfetto),
        )
    return table


def _layer_table(report: LayerReport) -> Table:
    table = Table(
        title=f"layers of pass {report.selected_pass}",
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
    )
    theory = _has_theory(report)
    headers = ["layer", "type", "wall µs", "kernel µs", "busy"]
    if theory:
        headers += ["theory µs", "E_roof wall", "E_roof kern"]
    headers += ["categories (share of kernel time)", "allreduce", "kernels", "Perfetto s"]
    for header in headers:
        left = header in ("type", "categories (share of kernel time)", "Perfetto s")
        table.add_column(header, justify="left" if left else "right", overflow="fold")
    for row in report.layers:
        busy = f"{row.kernel_time_ns / row.wall_ns:.0%}" if row.wall_ns else "-"
        cells = [str(row.layer), row.layer_type, _us(row.wall_ns), _us(row.kernel_time_ns), busy]
        if theory:
            cells += [_us(row.theory_roof_ns), _ratio(row.e_roof_wall), _ratio(row.e_roof_kernels)]
        cells += [
            _shares(row.category_shares),
            str(row.allreduce_count),
            str(row.kernel_count),
            _range(row.perfetto),
        ]
        table.add_row(*cells)
    return table


def _cluster_table(report: LayerReport) -> Table:
    table = Table(title="layer types", title_justify="left", title_style="bold", box=box.SIMPLE_HEAD)
    theory = _has_theory(report)
    headers = ["type", "layers", "avg wall µs", "avg kernel µs", "share of layer time"]
    if theory:
        headers += ["avg theory µs", "avg E_roof wall", "avg E_roof kern"]
    for header in [*headers, "categories"]:
        table.add_column(header, justify="left" if header in ("type", "categories") else "right")
    for c in report.clusters:
        cells = [
            c.layer_type,
            str(c.count),
            _us(c.avg_wall_ns),
            _us(c.avg_kernel_time_ns),
            f"{c.share_of_layers:.0%}",
        ]
        if theory:
            cells += [_us(c.avg_theory_roof_ns), _ratio(c.avg_e_roof_wall), _ratio(c.avg_e_roof_kernels)]
        table.add_row(*cells, _shares(c.category_shares))
    return table


def _flow_table(flow: ComputeFlow) -> Table:
    table = Table(
        title=f"compute flow of layer {flow.layer} ({flow.layer_type}) in pass {flow.pass_index}: wall "
        f"{_us(flow.wall_ns)} µs, kernels {_us(flow.kernel_time_ns)} µs",
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
    )
    for header in ("#", "rank", "category", "kernel", "µs", "%", "offset µs", "stream", "input dims"):
        table.add_column(
            header,
            justify="left" if header in ("category", "kernel", "input dims") else "right",
            overflow="fold",
        )
    for position, row in enumerate(flow.rows, start=1):
        table.add_row(
            str(position),
            str(row.rank),
            row.category,
            row.name,
            _us(row.duration_ns),
            f"{row.share:.1%}",
            _us(row.offset_ns),
            str(row.stream),
            row.input_dims or "-",
        )
    return table


def _print_diff(diff: LayerDiff, console: Console) -> None:
    console.print(
        Text.assemble(
            (f"layer {diff.layer_a} vs layer {diff.layer_b}: ", "bold"),
            f"{diff.type_a} vs {diff.type_b}; wall {_us(diff.wall_a_ns)} vs {_us(diff.wall_b_ns)} µs",
        )
    )
    for label, rows in (
        (f"only in layer {diff.layer_a}", diff.only_in_a),
        (f"only in layer {diff.layer_b}", diff.only_in_b),
    ):
        names = ", ".join(f"{r.name} ({_us(r.duration_ns)} µs)" for r in rows) or "none"
        console.print(f"  {label}: {names}")
    table = Table(title="shared kernels, largest change first", title_justify="left", box=box.SIMPLE_HEAD)
    for header in ("kernel", "#", f"layer {diff.layer_a} µs", f"layer {diff.layer_b} µs", "delta µs"):
        table.add_column(header, justify="left" if header == "kernel" else "right", overflow="fold")
    for row in diff.shared[:MAX_DIFF_ROWS]:
        table.add_row(
            row.name, str(row.occurrence), _us(row.a_ns), _us(row.b_ns), f"{row.delta_ns / 1e3:+,.1f}"
        )
    console.print(table)


def _print_warnings(report: LayerReport, console: Console) -> None:
    for warning in report.warnings:
        console.print(Text.assemble(("warning:", "yellow"), f" {warning}"))
