"""M1-M5 and verdicts on hand-built traces where the right answer is known by construction."""

from __future__ import annotations

import pytest
from builders import build_trace

from infersight.host.config import load_config
from infersight.host.detect import analyze_host

CONFIG = load_config()


def _m(report, scope: str, metric: str) -> float | None:  # type: ignore[no-untyped-def]
    value = report.scope(scope).metric(metric).value
    return value


def test_fully_exposed_host_prep_is_confirmed() -> None:
    # GPU busy 0-10 and 110-120 µs; the host prepares inputs exactly in the 100 µs hole
    trace = build_trace([(0, 10, "gemm"), (110, 120, "gemm")], [(10, 110, "_prepare_inputs")])
    report = analyze_host([trace], CONFIG)
    assert _m(report, "aggregate", "M1") == pytest.approx(100 / 120)
    assert _m(report, "aggregate", "M3a") == pytest.approx(1.0)
    assert _m(report, "aggregate", "M3b") == pytest.approx(100 / 120)
    assert _m(report, "aggregate", "M3c") == pytest.approx(1.0)
    assert report.scope("aggregate").host_prep_confirmed is True
    assert report.verdict == "YES"
    assert "host_prep_exposed/aggregate" in [f.id for f in report.findings]


def test_fully_hidden_host_prep_is_not_a_bottleneck() -> None:
    # the GPU runs back to back while the host prepares the next step: nothing exposed
    trace = build_trace([(0, 100, "gemm"), (100, 200, "gemm")], [(10, 90, "_prepare_inputs")])
    report = analyze_host([trace], CONFIG)
    agg = report.scope("aggregate")
    assert _m(report, "aggregate", "M3a") == 0.0
    assert _m(report, "aggregate", "M3b") == 0.0
    assert agg.metric("M3c").value is None and "never idle" in (agg.metric("M3c").na_reason or "")
    assert agg.host_prep_confirmed is None or agg.host_prep_confirmed is False
    assert report.verdict == "NO"


def test_partly_exposed_prep_small_share_is_not_confirmed() -> None:
    # 20 µs of prep, 5 µs of it exposed in a 1000 µs window: M3a 0.25, M3b 0.005, M3c 1.0
    trace = build_trace([(0, 500, "gemm"), (505, 1000, "gemm")], [(490, 510, "_prepare_inputs")])
    report = analyze_host([trace], CONFIG)
    assert _m(report, "aggregate", "M3a") == pytest.approx(5 / 20)
    assert _m(report, "aggregate", "M3b") == pytest.approx(5 / 1000)
    assert _m(report, "aggregate", "M3c") == pytest.approx(1.0)
    assert report.scope("aggregate").host_prep_confirmed is False  # M3c alone does not confirm
    assert report.verdict == "NO"


def test_nccl_dominated_timeline_gets_caveat_not_host_verdict() -> None:
    kernels = [(0, 10, "gemm"), (10, 90, "ncclDevKernel_AllReduce_Sum_bf16_RING_LL"), (90, 100, "gemm")]
    report = analyze_host([build_trace(kernels)], CONFIG)
    agg = report.scope("aggregate")
    assert _m(report, "aggregate", "M1") == 0.0
    assert _m(report, "aggregate", "M5") == pytest.approx(0.8)
    assert report.verdict == "NO"
    assert any("utilisation without NCCL kernels is 0.200" in c for c in agg.caveats)
    assert "nccl_heavy/aggregate" in [f.id for f in report.findings]


def _context_then_generation() -> tuple[list[tuple[float, float, str]], list[tuple[float, float, str]]]:
    kernels = [(10, 20, "prefill_gemm"), (60, 70, "prefill_attn")]  # context step: 40 µs idle in 60
    ranges = [(5, 65, "prefill")]
    for k in range(10):  # ten generation steps of 100 µs with 5 µs idle each, back to back
        t = 70 + 100 * k
        kernels += [(t, t + 50, "gemv"), (t + 55, t + 100, "gemv")]
        ranges.append((t - 2, t + 90, "decode"))
    return kernels, ranges


def test_context_only_bottleneck_raises_the_masked_aggregate() -> None:
    kernels, ranges = _context_then_generation()
    report = analyze_host([build_trace(kernels, ranges)], CONFIG)
    iterations = report.iterations[0]
    assert iterations.method == "step-ranges"
    assert [s.phase for s in iterations.steps].count("generation") == 10
    assert _m(report, "aggregate", "M1") == pytest.approx((40 + 50) / 1060)
    assert report.scope("aggregate").host_bound is False
    assert _m(report, "context", "M1") == pytest.approx(40 / 60)
    assert report.scope("context").host_bound is True
    assert _m(report, "generation", "M1") == pytest.approx(0.05)
    assert report.scope("generation").metric("M1").threshold == 0.15  # phase variant
    assert report.scope("generation").host_bound is False
    assert report.verdict == "YES"
    assert "raised to YES by the context phase" in report.verdict_reason


def test_generation_threshold_is_stricter() -> None:
    kernels, ranges = _context_then_generation()
    # widen every generation gap to 20 µs: idle 0.2 > 0.15 (generation) but < 0.30 (aggregate)
    kernels = kernels[:2] + [
        (s, e, n) if i % 2 == 0 else (s + 15, e, n) for i, (s, e, n) in enumerate(kernels[2:])
    ]
    report = analyze_host([build_trace(kernels, ranges)], CONFIG)
    assert _m(report, "generation", "M1") == pytest.approx(0.2)
    assert report.scope("generation").host_bound is True


def test_without_api_calls_m2_is_not_applicable() -> None:
    report = analyze_host([build_trace([(0, 10, "gemm"), (20, 30, "gemm")], with_api=False)], CONFIG)
    m2 = report.scope("aggregate").metric("M2")
    assert m2.value is None and "API" in (m2.na_reason or "")
    assert report.drilldown.top_gaps[0].na_reason is not None


def test_without_ranges_m3_is_not_applicable_not_zero() -> None:
    report = analyze_host([build_trace([(0, 10, "gemm"), (20, 30, "gemm")])], CONFIG)
    agg = report.scope("aggregate")
    for metric in ("M3a", "M3b", "M3c"):
        assert agg.metric(metric).value is None
    assert "no NVTX/annotation ranges" in (agg.metric("M3b").na_reason or "")
    assert agg.host_prep_confirmed is None


def test_single_kernel_gives_no_verdict_and_no_steps() -> None:
    # the launch call outlasts the kernel: M2 would read 1.0 — a verdict from one kernel is noise
    report = analyze_host([build_trace([(0, 0.4, "gemm")])], CONFIG)
    assert not report.scope("aggregate").applicable
    assert "only 1 kernel" in (report.scope("aggregate").na_reason or "")
    assert report.drilldown.top_gaps == []
    assert report.iterations[0].method == "none"
    assert not report.scope("context").applicable
    assert report.verdict == "N/A" and report.findings == []


def test_ranks_with_clock_offset_are_reported_not_merged() -> None:
    a = build_trace([(0, 10, "gemm"), (20, 30, "gemm")])
    b = build_trace([(5e6, 5e6 + 10, "gemm"), (5e6 + 20, 5e6 + 30, "gemm")])
    report = analyze_host([a, b], CONFIG)
    assert any("do not overlap" in n for n in report.notes)
    assert _m(report, "aggregate", "M1") == pytest.approx(20 / 60)  # per-device windows, summed


def test_layer_pattern_names_the_group_after_the_largest_in_step_gaps() -> None:
    kernels: list[tuple[float, float, str]] = []
    ranges: list[tuple[float, float, str]] = []
    for step in range(3):  # three decode steps: gemm, 30 µs hole, attention, 2 µs hole, gemm
        t = 100 + 1000 * step
        kernels += [
            (t, t + 10, "gemm_kernel"),
            (t + 40, t + 50, "flash_attn_fwd"),
            (t + 52, t + 60, "gemm_kernel"),
        ]
        ranges.append((t - 5, t + 100, "decode"))
    report = analyze_host([build_trace(kernels, ranges)], CONFIG)
    pattern = report.drilldown.layer_pattern
    assert pattern[0].group == "attention" and pattern[0].gap_ns == 3 * 30 * 1000
    assert pattern[0].share_of_gap == pytest.approx(30 / 32)
    assert pattern[1].group == "GEMM" and pattern[1].gap_ns == 3 * 2 * 1000  # step-boundary gaps excluded


def test_sync_gap_finding_needs_a_host_bound_scope() -> None:
    # the host sits in cudaStreamSynchronize across a 500 µs hole: idle 0.83, host-bound
    trace = build_trace([(0, 50, "gemm"), (550, 600, "gemm")])
    api = trace.api.copy()
    extra = api.iloc[[0]].assign(start=45_000, end=548_000, name="cudaStreamSynchronize", correlation=99)
    from infersight.model.trace import API_COLUMNS, make_table

    trace.api = make_table(
        API_COLUMNS, {c: list(api[c].astype(object)) + list(extra[c].astype(object)) for c in API_COLUMNS}
    )
    report = analyze_host([trace], CONFIG)
    assert report.drilldown.top_gaps[0].host_api == "cudaStreamSynchronize"
    assert "host_sync_gaps/run" in [f.id for f in report.findings]


def test_user_phase_regex_names_the_phases() -> None:
    kernels = [(100, 110, "k"), (150, 160, "k"), (300, 350, "k"), (352, 400, "k")]
    ranges = [(95, 170, "ctx_batch"), (295, 390, "gen_batch")]
    plain = analyze_host([build_trace(kernels, ranges)], CONFIG)
    assert plain.iterations[0].method != "step-ranges"  # unknown names: not steps by default
    config = CONFIG.with_phase_regex(["context=^ctx_", "generation=^gen_"])
    report = analyze_host([build_trace(kernels, ranges)], config)
    assert [s.phase for s in report.iterations[0].steps] == ["context", "generation"]
    assert _m(report, "context", "M1") == pytest.approx(40 / 60)
    assert _m(report, "generation", "M1") == pytest.approx(2 / 100)


def test_straggler_is_the_rank_that_waits_least_in_collectives() -> None:
    def rank(step_us: float, wait_us: float) -> list[tuple[float, float, str]]:
        kernels = []
        for k in range(4):  # 4 steps split by > 1 ms idle; 25 kernels each (density method)
            t = 100 + 5000 * k
            kernels += [(t + i * 2, t + i * 2 + 1, "gemm") for i in range(24)]
            kernels.append((t + step_us - wait_us, t + step_us, "ncclDevKernel_AllReduce_Sum_bf16_RING_LL"))
        return kernels

    fast, slow = build_trace(rank(100, 40)), build_trace(rank(130, 5))
    slow.rank, fast.rank = 1, 0
    report = analyze_host([fast, slow], CONFIG)
    flagged = [s.rank for s in report.stragglers if s.straggler]
    assert flagged == ["rank 1 device 0"]
    assert "straggler_rank/rank 1 device 0" in [f.id for f in report.findings]


def test_gap_filled_by_a_copy_says_so() -> None:
    from infersight.model.trace import MEMCPY_COLUMNS, make_table

    trace = build_trace([(10, 20, "gemm"), (120, 130, "gemm")])
    trace.memcpy = make_table(
        MEMCPY_COLUMNS,
        {
            "device": [0],
            "start": [40_000],
            "end": [100_000],
            "bytes": [1 << 20],
            "kind": ["HtoD"],
            "src_kind": ["pageable"],
            "dst_kind": ["device"],
        },
    )
    gap = analyze_host([trace], CONFIG).drilldown.top_gaps[0]
    assert (gap.length_ns, gap.copy_ns) == (100_000, 60_000)
    assert gap.launch_api == "cudaLaunchKernel" and gap.launch_into_gap_ns == 99_000  # launched 1 µs before


def test_trtllm_step_markers_split_context_and_generation() -> None:
    kernels: list[tuple[float, float, str]] = [
        (100, 150, "gemm"),
        (200, 250, "gemm"),
    ]  # context step, 50 idle
    ranges = [(95, 260, "[Executor] _forward_step 0: 4 ctx reqs, 0 gen reqs")]
    for k in range(1, 6):  # five generation steps: 90 µs busy of 100
        t = 300 + 200 * k
        kernels += [(t, t + 45, "gemv"), (t + 55, t + 100, "gemv")]
        ranges.append((t - 5, t + 150, f"[Executor] _forward_step {k}: 0 ctx reqs, 4 gen reqs"))
    report = analyze_host([build_trace(kernels, ranges)], CONFIG)
    phases = [s.phase for s in report.iterations[0].steps]
    assert phases == ["context"] + ["generation"] * 5
    assert _m(report, "context", "M1") == pytest.approx(50 / 150)
    assert _m(report, "generation", "M1") == pytest.approx(0.10)
    assert report.scope("generation").metric("M4").threshold == 0.80
    assert report.scope("generation").host_bound is False  # 0.90 utilisation >= 0.80


def test_launch_overhead_counts_only_when_the_gpu_waits_for_the_launches() -> None:
    # 3 µs kernels 1 µs apart, each launched inside the gap before it: M1 0.25 (no idle signal),
    # M2 0.125 and all of it while the GPU is empty (M2e 0.125): the GPU waits for the launches
    exposed = build_trace([(4 * i + 1, 4 * i + 4, "gemv") for i in range(50)])
    report = analyze_host([exposed], CONFIG)
    assert _m(report, "aggregate", "M1") == pytest.approx(49 / 199)
    assert _m(report, "aggregate", "M2e") == pytest.approx(_m(report, "aggregate", "M2"))
    assert report.verdict == "YES" and "with the GPU waiting (M2e" in report.verdict_reason
    assert "launch_overhead/aggregate" in [f.id for f in report.findings]
    # the same launches issued while the previous kernel still runs: M2 alike, nothing exposed
    hidden = build_trace([(4 * i + 1, 4 * i + 5, "gemv") for i in range(50)])
    report = analyze_host([hidden], CONFIG)
    assert (_m(report, "aggregate", "M2") or 0) > 0.10 and _m(report, "aggregate", "M2e") == 0.0
    assert report.verdict == "NO" and report.scope("aggregate").explained_by == "gpu"
    assert "launch_overhead/aggregate" not in [f.id for f in report.findings]
    assert any("the launches overlap GPU work" in c for c in report.scope("aggregate").caveats)


def test_gap_filled_by_a_copy_is_not_host_time() -> None:
    from infersight.model.trace import MEMCPY_COLUMNS, make_table

    trace = build_trace([(0, 10, "gemm"), (110, 120, "gemm")])  # M1 100/120
    trace.memcpy = make_table(
        MEMCPY_COLUMNS,
        {"device": [0], "start": [10_000], "end": [105_000], "bytes": [1 << 30], "kind": ["HtoD"]},
    )
    report = analyze_host([trace], CONFIG)
    agg = report.scope("aggregate")
    assert _m(report, "aggregate", "M1") == pytest.approx(100 / 120)
    assert _m(report, "aggregate", "M1h") == pytest.approx(5 / 120)
    assert agg.attribution.copy_by_direction == {"HtoD": 95_000}
    assert report.verdict == "NO" and agg.explained_by == "copy"


def test_verdict_rule_comes_from_the_thresholds_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from infersight.errors import InputError

    tight = tmp_path / "m1.toml"
    tight.write_text("[metric.M1]\nthreshold = 0.05\nsource = 'team limit'\n")
    config = load_config(tight)
    assert config.threshold("M1h").threshold == 0.05  # M1h follows M1 unless set itself
    assert config.threshold("M1h", "generation").threshold == 0.15  # the phase variant of M1
    assert "team limit" in config.threshold("M1h").source
    bad = tmp_path / "rule.toml"
    bad.write_text('[verdict]\nhost_signals = ["M9"]\n')
    with pytest.raises(InputError, match="unknown metric"):
        load_config(bad)
