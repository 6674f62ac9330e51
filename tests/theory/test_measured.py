"""Measured kernel time vs theory per (phase, category), and the focus set (methodology §2, §3)."""

from __future__ import annotations

import pytest
from tests.conftest import plain_json_events, shared_file, shared_report, shared_traces

from infersight.theory.inputs import TheoryOptions
from infersight.theory.measured import FocusSet, KernelTime, MeasuredRow, MeasuredVsTheory, focus_set
from infersight.theory.report import TheoryReport
from infersight.theory.run import theory_report

SGLANG_QWEN3 = "kineto/tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz"
QWEN3_CONFIG = "configs/qwen3-8b.config.json"


@pytest.fixture(scope="module")
def sglang_report() -> TheoryReport:
    traces = shared_traces(SGLANG_QWEN3)
    options = TheoryOptions(config=shared_file(QWEN3_CONFIG))
    return theory_report(options, batch=1, prompt=1024, traces=traces)


def test_measured_rows_cover_every_kernel(sglang_report: TheoryReport) -> None:
    # independent total: plain JSON, every complete kernel event
    events = plain_json_events(shared_file(SGLANG_QWEN3))
    kernel_us = sum(e["dur"] for e in events if e.get("cat") == "kernel" and e.get("ph") == "X")
    measured = sglang_report.measured
    assert measured is not None and measured.phase_method == "annotation"
    assert sum(r.total_ns for r in measured.rows) == pytest.approx(kernel_us * 1e3, rel=1e-6)
    assert sum(r.kernel_count for r in measured.rows) == 527
    assert sglang_report.estimate.gpu == "AMD Instinct MI300X"  # taken from the trace


def test_e_roof_is_theory_roof_over_measured_time(sglang_report: TheoryReport) -> None:
    measured = sglang_report.measured
    assert measured is not None
    prefill_ops = sglang_report.estimate.prefill.operators
    gemm = next(r for r in measured.rows if r.phase == "prefill" and r.category == "GEMM")
    theory_gemm_s = sum(t.total_t_roof_s or 0 for t in prefill_ops if t.operator.category == "GEMM")
    assert gemm.theory_roof_s == pytest.approx(theory_gemm_s)
    assert gemm.e_roof == pytest.approx(theory_gemm_s / (gemm.total_ns / gemm.steps / 1e9))
    assert gemm.achieved_flops_per_s == pytest.approx(gemm.theory_flops / (gemm.total_ns / gemm.steps / 1e9))
    assert set(gemm.theory_operators) >= {"q_proj", "o_proj", "gate_proj", "down_proj", "lm_head"}
    # a category the theory has no operator for is n/a with a reason, never 0
    other = [r for r in measured.rows if r.category in ("reduction", "other")]
    assert other and all(r.e_roof is None and r.e_roof_na_reason for r in other)


def test_focus_set_of_the_trace(sglang_report: TheoryReport) -> None:
    focus = sglang_report.focus
    assert focus is not None and focus.k == 10 and focus.tau_e == 0.3
    assert focus.items[0].kernel.startswith("Cijk_")  # the biggest GEMM
    assert sum("top_time" in item.reasons for item in focus.items) == 10


def row(phase: str, category: str, e_roof: float | None, kernels: dict[str, int]) -> MeasuredRow:
    return MeasuredRow(
        phase=phase,
        category=category,
        kernel_count=len(kernels),
        total_ns=sum(kernels.values()),
        steps=1,
        measured_ns_per_step=float(sum(kernels.values())),
        e_roof=e_roof,
        kernels=[KernelTime(name=n, count=1, total_ns=t) for n, t in kernels.items()],
    )


def test_focus_set_is_topk_union_low_efficiency() -> None:
    measured = MeasuredVsTheory(
        phase_method="annotation",
        phase_reason="test",
        rows=[
            row("decode", "GEMM", 0.8, {"gemm_a": 500, "gemm_b": 300, "gemm_c": 100}),
            row("decode", "attention", 0.5, {"attn": 200}),
            # cheap but far below its roofline: its main kernels join even outside the top K
            row("decode", "copy", 0.05, {"embedding_gather": 40, "tiny_copy": 2, "other_copy": 8}),
            row("prefill", "norm", None, {"rmsnorm": 60}),
        ],
    )
    focus: FocusSet = focus_set(measured, k=2, tau_e=0.3)
    assert [(i.kernel, i.reasons) for i in focus.items] == [
        ("gemm_a", ["top_time"]),
        ("gemm_b", ["top_time"]),
        ("embedding_gather", ["low_efficiency"]),
        ("other_copy", ["low_efficiency"]),  # 8/50 = 16% of its category >= 10%; tiny_copy (4%) is not
    ]
    assert focus.items[0].share == pytest.approx(500 / 1210)
    assert focus.items[2].e_roof == 0.05
    wide = focus_set(measured, k=10, tau_e=0.6)
    assert {i.kernel for i in wide.items} == {
        "gemm_a",
        "gemm_b",
        "gemm_c",
        "attn",
        "embedding_gather",
        "tiny_copy",
        "other_copy",
        "rmsnorm",
    }
    assert next(i for i in wide.items if i.kernel == "attn").reasons == ["top_time", "low_efficiency"]


def test_from_the_global_profile_matches_the_trace_path(sglang_report: TheoryReport) -> None:
    from infersight.theory.measured import measured_vs_theory_from_profile

    profile = shared_report(SGLANG_QWEN3).profile
    from_profile = measured_vs_theory_from_profile(profile, sglang_report.estimate)
    assert sglang_report.measured is not None
    by_key = {(r.phase, r.category): r for r in sglang_report.measured.rows}
    assert len(from_profile.rows) == 5  # the profile keeps the top 5 categories per phase
    for r in from_profile.rows:
        full = by_key[(r.phase, r.category)]
        assert (r.total_ns, r.steps) == (full.total_ns, full.steps)
        assert r.e_roof == pytest.approx(full.e_roof)
