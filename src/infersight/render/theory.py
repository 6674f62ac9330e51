"""Theory sections (methodology §2, §8 "roofline table per operator"): cells only, no computation.

The roofline command prints :func:`estimate_sections`; ``analyze --model`` adds
:func:`measured_sections`. Both are :class:`~infersight.render.sections.Section` lists, so the
terminal and the Markdown views show the same figures.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from infersight.analysis_report import AnalysisReport
from infersight.render.findings import print_findings
from infersight.render.sections import Section, fmt_bytes, fmt_duration, fmt_pct
from infersight.render.tables import print_section
from infersight.rules.finding import Finding
from infersight.theory.estimates import ModelEstimate
from infersight.theory.measured import FocusSet, MeasuredVsTheory
from infersight.theory.ops import OpsPrediction
from infersight.theory.roofline import Hardware, OperatorTime, PhaseEstimate


def fmt_flops(flops: float) -> str:
    """FLOP count in decimal units: 512, 3.20 M, 1.50 G, 2.10 T, 4.0 P."""
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(flops) >= scale:
            return f"{flops / scale:.3g} {unit}"
    return f"{flops:.0f}"


def fmt_rate(per_s: float | None, unit: str) -> str:
    """A rate in its unit with a decimal prefix: 989 TFLOP/s, 3.35 TB/s."""
    if per_s is None:
        return "n/a"
    return f"{fmt_flops(per_s)}{unit}/s".replace(" ", " ")


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else fmt_duration(value * 1e9)


def _operator_row(t: OperatorTime) -> list[str]:
    op = t.operator
    bytes_cell = fmt_bytes(op.comm_bytes if op.is_communication else op.memory_bytes)
    split = (
        "link"
        if op.is_communication
        else " / ".join(
            fmt_bytes(b) if b else "-" for b in (op.weight_bytes, op.activation_bytes, op.kv_bytes)
        )
    )
    return [
        op.name,
        op.category,
        op.block,
        f"×{op.layers}",
        op.shape,
        fmt_flops(op.flops),
        bytes_cell,
        split,
        "-" if t.intensity is None else f"{t.intensity:.3g}",
        t.bound,
        _seconds(t.t_theory_s),
        _seconds(t.total_t_theory_s),
        fmt_pct(t.share),
    ]


OPERATOR_HEADERS = [
    "operator",
    "category",
    "block",
    "n",
    "shape (per GPU)",
    "FLOPs",
    "bytes",
    "W / A / KV",
    "I (F/B)",
    "bound",
    "T_theory",
    "× n",
    "share",
]


def phase_section(est: ModelEstimate, phase: PhaseEstimate) -> Section:
    """One pass: every operator with FLOPs, bytes, intensity, bound, T_theory and share."""
    s = est.scenario
    title = (
        f"{phase.phase.capitalize()} roofline — B={s.batch}, "
        + (f"S={s.prompt_len}" if phase.phase == "prefill" else f"L={s.context_len}")
        + f", TP={s.tp}"
    )
    rows = [_operator_row(t) for t in phase.operators]
    rows.append(
        [
            "total",
            "",
            "",
            "",
            "",
            fmt_flops(phase.flops),
            fmt_bytes(phase.memory_bytes),
            " / ".join(fmt_bytes(b) for b in (phase.weight_bytes, phase.activation_bytes, phase.kv_bytes)),
            f"{phase.flops / phase.memory_bytes:.3g}" if phase.memory_bytes else "-",
            "",
            "",
            _seconds(phase.t_theory_s),
            "100.0%",
        ]
    )
    notes = [
        "FLOPs, bytes and T_theory are per occurrence (one layer) per GPU; '× n' is T_theory × occurrences; "
        "W / A / KV = weight / activation / KV-cache bytes; I = FLOPs / bytes.",
        *[f"not timed: {u}" for u in phase.untimed],
    ]
    return Section(title, OPERATOR_HEADERS, rows, notes, right_aligned={3, 5, 6, 8, 10, 11, 12}, wrapping={4})


def summary_section(est: ModelEstimate) -> Section:
    """The whole-model figures and the hardware assumptions behind them."""
    hw = est.hardware
    rows = [
        ["TTFT (prefill pass)", _seconds(est.ttft_s), f"{est.prefill_tokens_per_s:,.0f} prompt tokens/s"],
        ["TPOT (one decode step)", _seconds(est.tpot_s), f"{est.decode_tokens_per_s:,.1f} output tokens/s"],
        ["prefill FLOPs / bytes per GPU", fmt_flops(est.prefill.flops), fmt_bytes(est.prefill.memory_bytes)],
        ["decode FLOPs / bytes per GPU", fmt_flops(est.decode.flops), fmt_bytes(est.decode.memory_bytes)],
    ]
    if est.memory is not None:
        flag = {"kv_does_not_fit": "WARNING: ", "weights_do_not_fit": "ERROR: "}.get(est.memory.status, "")
        rows.append(["memory per GPU", fmt_bytes(est.memory.total_bytes), flag + est.memory.message])
    link = (
        "n/a" if hw.link_bandwidth is None else f"{fmt_rate(hw.link_bandwidth, 'B')} × {hw.link_efficiency:g}"
    )
    matmul, vector = fmt_rate(hw.matmul_peak_flops, "FLOP"), fmt_rate(hw.vector_peak_flops, "FLOP")
    memory, b_eff = fmt_rate(hw.memory_bandwidth, "B"), fmt_rate(hw.effective_bandwidth, "B")
    notes = [
        f"{est.model} on {est.gpu}: matmul peak {matmul} ({hw.compute_dtype}), vector peak {vector}, "
        f"memory {memory} × η {hw.memory_efficiency:g} = B_eff {b_eff}, link {link}, κ {hw.kappa:g}",
        _time_model_note(hw),
        *est.notes,
    ]
    return Section("Whole-model estimate", ["figure", "value", "also"], rows, notes, right_aligned={1})


def _time_model_note(hw: Hardware) -> str:
    """The per-operator formula with the figures in use (plain roofline or the calibrated model)."""
    if hw.overlap_exponent is None:
        kernel = "max(F / (η_c·P_peak), bytes / B_eff)"
    else:
        kernel = (
            "(t_c^p + t_m^p)^(1/p) + t_floor, t_c = F / (η_c·P_peak), t_m = bytes / B_eff, "
            f"p {hw.overlap_exponent:g}"
        )
    collectives = f"collectives α {hw.collective_alpha_s * 1e6:g} µs + bytes / link"
    if hw.oneshot_alpha_s is not None and hw.oneshot_efficiency is not None:
        collectives += (
            f" (NCCL ring) or, when faster, α {hw.oneshot_alpha_s * 1e6:g} µs + bytes / "
            f"(link × {hw.oneshot_efficiency:g}) (one-shot custom all-reduce)"
        )
    return (
        f"T_theory = [{kernel}] · κ per kernel, η_c {hw.compute_efficiency:g}, t_floor "
        f"{hw.kernel_floor_s * 1e6:g} µs (matmul) / {hw.vector_floor_s * 1e6:g} µs (other); {collectives}; "
        f"{hw.time_model} (docs/methodology.md §2); TTFT/TPOT = Σ over the pass."
    )


def estimate_sections(est: ModelEstimate) -> list[Section]:
    """Everything ``infersight roofline`` prints, in order."""
    return [phase_section(est, est.prefill), phase_section(est, est.decode), summary_section(est)]


def measured_section(measured: MeasuredVsTheory) -> Section:
    """Measured kernel time per (phase, category) against the theory operators of that category."""
    rows = [
        [
            r.phase,
            r.category,
            str(r.steps),
            _seconds(None if r.measured_ns_per_step is None else r.measured_ns_per_step / 1e9),
            _seconds(r.theory_roof_s),
            ", ".join(r.theory_operators[:6]) + ("…" if len(r.theory_operators) > 6 else "") or "-",
            "n/a" if r.e_roof is None else f"{r.e_roof:.2f}",
            "\n".join(r.top_kernels[:2]) or "-",
        ]
        for r in measured.rows
    ]
    notes = [
        f"phase split: {measured.phase_method} — {measured.phase_reason}",
        "E_roof = T_roof (Σ time-model time of the category's operators, no κ; docs/methodology.md "
        "§2.1) / measured time per step; 1.0 = as fast as calibrated kernels.",
        *measured.notes,
        *sorted(
            {
                f"E_roof n/a ({r.phase} {r.category}): {r.e_roof_na_reason}"
                for r in measured.rows
                if r.e_roof_na_reason
            }
        ),
    ]
    headers = [
        "phase",
        "category",
        "steps",
        "measured/step",
        "T_roof",
        "theory operators",
        "E_roof",
        "top kernels",
    ]
    return Section("Measured vs theory", headers, rows, notes, right_aligned={2, 3, 4, 6}, wrapping={5, 7})


def focus_section(focus: FocusSet) -> Section:
    """The focus set: TopK kernels by time ∪ kernels of categories with E_roof < τ_E."""
    rows = [
        [
            item.phase,
            item.kernel,
            item.category,
            fmt_duration(item.total_ns),
            fmt_pct(item.share),
            "n/a" if item.e_roof is None else f"{item.e_roof:.2f}",
            ", ".join(item.reasons),
        ]
        for item in focus.items
    ]
    notes = [
        f"S_focus = Top{focus.k}(time) ∪ {{E_roof < {focus.tau_e:g}}}; E_roof is that of the kernel's "
        "(phase, category) — the theory has no per-kernel shapes."
    ]
    headers = ["phase", "kernel", "category", "time", "share", "E_roof", "why"]
    return Section("Focus set", headers, rows, notes, right_aligned={3, 4, 5}, wrapping={1})


def report_sections(report: AnalysisReport) -> list[Section]:
    """The theory sections of an ``analyze --model`` report (none without a model)."""
    theory = report.theory
    if theory is None:
        return []
    sections = [summary_section(theory.estimate)]
    if theory.measured is not None:
        sections.append(measured_section(theory.measured))
    if theory.focus is not None:
        sections.append(focus_section(theory.focus))
    return sections


def print_sections(console: Console, sections: list[Section], findings: list[Finding] | None = None) -> None:
    """Print sections (and findings, when given) the way ``infersight analyze`` does."""
    for section in sections:
        print_section(console, section)
    if findings is not None:
        print_findings(console, findings)


def print_title(console: Console, text: str) -> None:
    """A bold heading line."""
    console.print(Text(text, style="bold"))


OPS_TABLE_ROWS = 40  # the terminal shows the first rows; --json has them all


def ops_sections(result: OpsPrediction) -> list[Section]:
    """``roofline --ops``: the first rows with their predicted time and bound, and a bound summary."""
    rows = [
        [p.id, p.op, fmt_duration(p.predicted_s * 1e9), p.bound, _flops_or_dash(p.flops), fmt_bytes(p.bytes)]
        for p in result.ops[:OPS_TABLE_ROWS]
    ]
    counts: dict[str, int] = {}
    for p in result.ops:
        counts[p.bound] = counts.get(p.bound, 0) + 1
    link = "n/a" if result.intra_node_link is None else fmt_rate(result.intra_node_link, "B")
    network = fmt_rate(result.network_link, "B") if result.network_link else "n/a"
    peak, memory = fmt_rate(result.peak_flops, "FLOP"), fmt_rate(result.memory_bandwidth, "B")
    notes = [
        f"{len(result.ops):,} rows on {result.gpu} ({result.dtype}): peak {peak}, memory {memory}, "
        f"link {link} (≤ {result.ranks_per_node} ranks), network {network}; "
        f"time model: {result.time_model} (docs/methodology.md)",
        "bounds: " + ", ".join(f"{bound} {n:,}" for bound, n in sorted(counts.items())),
    ]
    if len(result.ops) > OPS_TABLE_ROWS:
        notes.append(f"first {OPS_TABLE_ROWS} of {len(result.ops):,} rows shown; --json OUT writes them all")
    return [
        Section(
            "Predicted time per operator",
            ["id", "op", "predicted", "bound", "FLOPs", "bytes"],
            rows,
            notes,
            right_aligned={2, 4, 5},
        )
    ]


def _flops_or_dash(flops: float) -> str:
    return "—" if flops <= 0 else fmt_flops(flops)
