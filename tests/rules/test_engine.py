"""Rules engine: thresholds from rules.toml, estimators from measured numbers, confidence."""

from __future__ import annotations

import pytest
from tests.conftest import shared_report, shared_traces

from infersight.analyses.profile import build_global_profile
from infersight.model import Trace
from infersight.model.trace import API_COLUMNS, KERNEL_COLUMNS, RANGE_COLUMNS, make_table
from infersight.rules.attribution_metrics import attribution_metrics, phase_attribution_metrics
from infersight.rules.engine import evaluate_rules, load_rules, parse_rules
from infersight.rules.finding import Finding

US = 1000


def _storm_trace(n: int, kernel_us: int = 10, gap_us: int = 20, launch_us: int | None = 5) -> Trace:
    """n kernels of kernel_us separated by gap_us idle, each launched by a launch_us call."""
    starts = [i * (kernel_us + gap_us) * US for i in range(n)]
    t = Trace(source="storm.json", format="kineto")
    t.kernels = make_table(
        KERNEL_COLUMNS,
        {
            "device": [0] * n,
            "start": starts,
            "end": [s + kernel_us * US for s in starts],
            "name": ["void fused_add_rmsnorm_kernel<float>(float*)"] * n,
            "correlation": list(range(n)),
            "process": [0] * n,
        },
    )
    if launch_us is not None:
        t.api = make_table(
            API_COLUMNS,
            {
                "process": [0] * n,
                "thread": [1] * n,
                "start": [s - launch_us * US for s in starts],
                "end": starts,
                "name": ["cudaLaunchKernel"] * n,
                "correlation": list(range(n)),
            },
        )
    return t


def test_thresholds_are_the_spec_values() -> None:
    rules = {r.id: r for r in load_rules()}
    storm = {(c.metric, c.op): c.threshold for c in rules["small_kernel_storm"].conditions}
    assert storm == {("avg_kernel_ns", "<"): 50_000.0, ("kernel_count", ">"): 500.0}  # 50 µs, methodology §3
    idle = rules["gpu_idle"].conditions
    assert [(c.metric, c.op, c.threshold) for c in idle] == [
        ("idle_ratio", ">", 0.30),
        ("host_share_of_waiting", ">=", 0.5),  # idle filled by copies/collectives is not host overhead
    ]
    assert rules["gpu_idle"].conditions[0].threshold_for("decode") == 0.15
    assert [(c.metric, c.threshold) for c in rules["launch_overhead"].conditions] == [
        ("launch_overhead_ratio", 0.10),
        ("host_share_of_waiting", 0.5),
    ]


def test_storm_idle_and_launch_fire_with_computed_gain() -> None:
    n = 1200
    findings = evaluate_rules(build_global_profile([_storm_trace(n)]))
    by = {f.id: f for f in findings}
    assert set(by) == {"small_kernel_storm/dev0", "gpu_idle/dev0", "launch_overhead/dev0"}
    wall = (n * 30 - 20) * US
    storm = by["small_kernel_storm/dev0"]
    assert storm.expected_gain is not None
    short_gaps = (n - 1) * 20 * US  # every gap is 20 µs < 100 µs
    assert storm.expected_gain.high == pytest.approx(short_gaps / wall)
    assert storm.expected_gain.low == pytest.approx(0.5 * short_gaps / wall)
    assert storm.confidence == "high"
    assert "1200 kernels averaging 10.0 µs" in storm.title
    assert any("--cuda-graph-trace=node" in v for v in storm.verification)
    assert {e.metric: e.value for e in storm.evidence}["avg_kernel_ns"] == pytest.approx(10_000.0)
    launch = by["launch_overhead/dev0"]
    assert {e.metric: e.value for e in launch.evidence}["launch_overhead_ratio"] == pytest.approx(
        (n * 5 * US - 5 * US) / wall  # the first call starts before the window: clipped away
    )
    gains = [f.expected_gain.high for f in findings if f.expected_gain]
    assert gains == sorted(gains, reverse=True)


def test_missing_api_never_triggers_and_lowers_confidence() -> None:
    findings = evaluate_rules(build_global_profile([_storm_trace(1200, launch_us=None)]))
    by = {f.type: f for f in findings}
    assert "launch_overhead" not in by
    storm = by["small_kernel_storm"]
    assert storm.confidence == "medium"
    assert "launch_overhead_ratio not applicable" in storm.confidence_reason
    launch_evidence = {e.metric: e for e in storm.evidence}["launch_overhead_ratio"]
    assert launch_evidence.value is None
    assert launch_evidence.note.startswith("not applicable: the trace has no CUDA/HIP API calls")


def _host_findings(findings: list[Finding]) -> list[Finding]:
    """The findings of the host-overhead rules (a busy GPU also gets the informational gpu_bound)."""
    return [f for f in findings if f.type != "gpu_bound"]


def test_busy_gpu_with_few_kernels_fires_nothing() -> None:
    findings = evaluate_rules(build_global_profile([_storm_trace(400, gap_us=1, launch_us=None)]))
    assert [f.type for f in findings] == ["gpu_bound"]  # the GPU-bound verdict, no host finding
    # 1200 kernels back to back: storm fires, but confidence says fusion rather than graphs
    (storm,) = _host_findings(
        evaluate_rules(build_global_profile([_storm_trace(1200, kernel_us=40, gap_us=1, launch_us=1)]))
    )
    assert storm.type == "small_kernel_storm" and storm.confidence == "medium"
    assert "back to back" in storm.confidence_reason


def test_decode_phase_uses_its_own_idle_threshold() -> None:
    t = _storm_trace(100, kernel_us=80, gap_us=20, launch_us=None)  # idle 20/100 ≈ 0.2
    t.ranges = make_table(
        RANGE_COLUMNS,
        {
            "start": [0],
            "end": [10**9],
            "name": ["step[DECODE bs=8]"],
            "source": ["gpu_user_annotation"],
            "device": [0],
        },
    )
    findings = _host_findings(evaluate_rules(build_global_profile([t])))
    assert [f.id for f in findings] == ["gpu_idle/phase:decode"]
    evidence = findings[0].evidence[0]
    assert (evidence.threshold, evidence.comparison) == (0.15, ">")


def test_unknown_estimator_is_rejected() -> None:
    bad = {
        "rule": [
            {
                "id": "x",
                "title": "x",
                "scopes": ["device"],
                "conditions": [{"metric": "idle_ratio", "op": ">", "threshold": 0.1}],
                "estimator": "guess",
                "confidence": "idle",
            }
        ]
    }
    with pytest.raises(ValueError, match="unknown estimator 'guess'"):
        parse_rules(bad)


def test_storm_fires_on_vllm_decode_trace_and_not_on_tiny_ones() -> None:

    vllm = build_global_profile(
        shared_traces("kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz")
    )
    ids = {f.id for f in evaluate_rules(vllm)}
    assert "small_kernel_storm/rank0/dev0" in ids  # 13,508 kernels averaging 17.3 µs
    assert "small_kernel_storm/phase:decode" in ids  # 12,375 decode kernels averaging 12.1 µs
    assert "small_kernel_storm/phase:prefill" not in ids  # 1,133 prefill kernels averaging 74 µs
    for tiny in ("kineto/hta_triton_example_a100.json.gz", "kineto/hta_alexnet_a100.json.gz"):
        findings = evaluate_rules(shared_report(tiny).profile)
        assert not [f for f in findings if f.type == "small_kernel_storm"]


# ---------------------------------------------------------------- CUDA-graph coverage


def _graph_storm_trace(n: int = 1200, kernel_us: int = 10, gap_us: int = 20, launch_us: int = 8) -> Trace:
    """Like _storm_trace, but every 4th kernel is eager (cudaLaunchKernel, an rms_norm kernel)
    and the three kernels after it are replayed by one cudaGraphLaunch (a gemv kernel)."""
    starts = [i * (kernel_us + gap_us) * US for i in range(n)]
    eager = [i % 4 == 0 for i in range(n)]
    correlation = [i if e else 4 * (i // 4) + 1 for i, e in enumerate(eager)]  # graph kernels share one id
    t = Trace(source="graph_storm.json", format="kineto")
    t.kernels = make_table(
        KERNEL_COLUMNS,
        {
            "device": [0] * n,
            "start": starts,
            "end": [s + kernel_us * US for s in starts],
            "name": ["void vllm::rms_norm_kernel<float>(float*)" if e else "gemv_bf16" for e in eager],
            "correlation": correlation,
            "process": [0] * n,
        },
    )
    launches = [i for i in range(n) if i % 4 in (0, 1)]  # one call per eager kernel and per replay
    t.api = make_table(
        API_COLUMNS,
        {
            "process": [0] * len(launches),
            "thread": [1] * len(launches),
            "start": [starts[i] - launch_us * US for i in launches],
            "end": [starts[i] for i in launches],
            "name": ["cudaLaunchKernel" if eager[i] else "cudaGraphLaunch" for i in launches],
            "correlation": [correlation[i] for i in launches],
        },
    )
    return t


def test_storm_without_graphs_advises_capturing_graphs() -> None:
    (storm,) = [
        f
        for f in evaluate_rules(build_global_profile([_storm_trace(1200)]))
        if f.type == "small_kernel_storm"
    ]
    evidence = {e.metric: e for e in storm.evidence}
    assert evidence["graph_coverage"].value == 0.0
    assert (evidence["graph_coverage"].threshold, evidence["graph_coverage"].comparison) == (0.05, "<")
    assert "'no graphs'" in evidence["graph_coverage"].note
    assert storm.advice[0].startswith("Capture the steady-state loop in CUDA Graphs so 1,200 launches")
    assert not any("already replays" in a for a in storm.advice)


def test_storm_with_graphs_points_at_the_eager_remainder() -> None:
    n = 1200
    findings = evaluate_rules(build_global_profile([_graph_storm_trace(n)]))
    by = {f.type: f for f in findings}
    storm = by["small_kernel_storm"]
    evidence = {e.metric: e for e in storm.evidence}
    assert evidence["graph_coverage"].value == pytest.approx(0.75)
    assert (evidence["graph_coverage"].threshold, evidence["graph_coverage"].comparison) == (0.5, ">=")
    assert evidence["graph_coverage"].unit == "fraction"
    assert evidence["graph_launch_count"].value == n // 4
    assert evidence["eager_kernel_count"].value == n // 4
    assert evidence["eager_kernel_time_ns"].value == (n // 4) * 10 * US
    assert evidence["top_eager_kernels"].value == "vllm::rms_norm_kernel (3.00 ms, 300×)"
    assert (
        "already replays CUDA graphs for 75% of kernels (900 of 1,200, from 300 graph launches)"
        in storm.advice[0]
    )
    assert "vllm::rms_norm_kernel (3.00 ms, 300×)" in storm.advice[0]
    assert "Expand graph capture" in storm.advice[1]
    assert not any(a.startswith("Capture the steady-state loop") for a in storm.advice)
    # gain: only gaps an eager kernel ends or starts (gap j between kernels j and j+1, j % 4 in {0, 3})
    eager_gaps = sum(20 * US for j in range(n - 1) if j % 4 in (0, 3))
    wall = (n * 30 - 20) * US
    assert evidence["eager_short_gap_ns"].value == eager_gaps
    assert storm.expected_gain is not None
    assert storm.expected_gain.high == pytest.approx(eager_gaps / wall)
    assert storm.expected_gain.low == pytest.approx(0.5 * eager_gaps / wall)
    assert "next to an eager kernel" in storm.expected_gain.basis

    launch = by["launch_overhead"]
    launch_evidence = {e.metric: e for e in launch.evidence}
    assert launch_evidence["graph_coverage"].value == pytest.approx(0.75)
    assert "already replay 75% of kernels" in launch.advice[0]
    # the first call [-8 µs, 0) lies before the window; the rest are counted whole
    launch_ns = (len([i for i in range(n) if i % 4 in (0, 1)]) - 1) * 8 * US
    assert launch_evidence["launch_api_count"].value == n // 2 - 1
    exposed = min(launch_ns, eager_gaps)
    assert launch.expected_gain is not None
    assert launch.expected_gain.high == pytest.approx(exposed / wall)
    assert "GPU idle next to eager kernels" in launch.expected_gain.basis


def test_unknown_graph_coverage_says_so_and_keeps_the_plain_estimate() -> None:
    findings = evaluate_rules(build_global_profile([_storm_trace(1200, launch_us=None)]))
    storm = {f.type: f for f in findings}["small_kernel_storm"]
    coverage = {e.metric: e for e in storm.evidence}["graph_coverage"]
    assert coverage.value is None and coverage.threshold is None
    assert coverage.note.startswith(
        "not applicable: the trace has no CUDA/HIP API calls and no CUDA-graph ids"
    )
    assert storm.advice[0].startswith("Check whether the steady-state loop already runs from CUDA graphs")
    assert storm.expected_gain is not None
    assert storm.expected_gain.high == pytest.approx((1199 * 20 * US) / ((1200 * 30 - 20) * US))


def test_time_evidence_is_in_ns_and_named_so() -> None:
    """Every evidence row's unit matches its name: *_ns in ns, ratios as fractions, no *_us left."""
    profile = build_global_profile([_graph_storm_trace()])
    findings = evaluate_rules(profile)
    rows = [e for f in findings for e in f.evidence]
    assert rows
    for e in rows:
        assert not e.metric.endswith("_us")
        if e.metric.endswith("_ns"):
            assert e.unit == "ns"
        if e.metric.endswith("_ratio") or e.metric == "graph_coverage":
            assert e.unit == "fraction"
    wall = {e.metric: e.value for f in findings for e in f.evidence}["wall_ns"]
    assert wall == profile.devices[0].wall_ns  # same unit and value as the profile JSON
    storm = next(f for f in findings if f.type == "small_kernel_storm")
    assert "averaging 10.0 µs" in storm.title


def test_first_matching_variant_wins_and_variant_estimators_are_checked() -> None:
    base = {
        "id": "x",
        "title": "x",
        "scopes": ["device"],
        "conditions": [{"metric": "kernel_count", "op": ">", "threshold": 0}],
        "estimator": "short_gaps",
        "confidence": "idle",
        "advice": ["base"],
        "variant": [
            {
                "name": "many",
                "conditions": [{"metric": "kernel_count", "op": ">", "threshold": 1000}],
                "advice": ["many {kernel_count}"],
            },
            {
                "name": "some",
                "conditions": [{"metric": "kernel_count", "op": ">", "threshold": 10}],
                "advice": ["some"],
            },
            {"name": "default", "advice": ["default"]},
        ],
    }
    rules = parse_rules({"rule": [base]})
    (finding,) = evaluate_rules(build_global_profile([_storm_trace(1200)]), rules)
    assert finding.advice == ["many 1200", "base"]
    (finding,) = evaluate_rules(build_global_profile([_storm_trace(5)]), rules)
    assert finding.advice == ["default", "base"]
    bad = {**base, "variant": [{"name": "v", "estimator": "guess"}]}
    with pytest.raises(ValueError, match="unknown estimator 'guess'"):
        parse_rules({"rule": [bad]})


def test_vllm_findings_say_graphs_are_already_used() -> None:

    profile = build_global_profile(
        shared_traces("kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz")
    )
    by = {f.id: f for f in evaluate_rules(profile)}
    for fid in ("small_kernel_storm/rank0/dev0", "launch_overhead/rank0/dev0"):
        finding = by[fid]
        evidence = {e.metric: e.value for e in finding.evidence}
        assert evidence["graph_coverage"] == pytest.approx(8667 / 13508)  # 64%: 729 cudaGraphLaunch
        assert evidence["graph_launch_count"] == 729
        assert "flash::FlashAttnFwdSm90" in str(evidence["top_eager_kernels"])
        assert "64% of kernels" in finding.advice[0]
        assert not any("Capture the steady-state loop" in a for a in finding.advice)
    storm = by["small_kernel_storm/rank0/dev0"]
    device = profile.devices[0]
    assert device.eager_gap_buckets is not None
    eager_short = sum(b.total_ns for b in device.eager_gap_buckets if b.upper_ns and b.upper_ns <= 100_000)
    assert storm.expected_gain is not None
    assert storm.expected_gain.high == pytest.approx(eager_short / device.wall_ns)


@pytest.mark.parametrize("with_api", [True, False])
def test_every_rule_text_renders_on_device_and_phase_metrics(with_api: bool) -> None:
    """A template naming a metric that does not exist would raise KeyError only when it fires."""
    from infersight.analyses.results import PhaseStat
    from infersight.rules.engine import device_metrics, phase_metrics, render

    profile = build_global_profile([_graph_storm_trace() if with_api else _storm_trace(1200, launch_us=None)])
    phase = PhaseStat(
        phase="decode",
        wall_ns=10,
        busy_ns=5,
        idle_ratio=0.5,
        kernel_count=1,
        kernel_time_ns=5,
        avg_kernel_ns=5.0,
        steps=1,
    )
    device = {**device_metrics(profile.devices[0]), **attribution_metrics(profile.time_attribution)}
    assert profile.primary_bottleneck is not None
    phase_bucket = profile.primary_bottleneck.phases or []
    phase_extra = phase_attribution_metrics(phase_bucket[0]) if phase_bucket else {}
    phase_scope = {**phase_metrics(phase), **phase_extra}
    for metrics, is_device in ((device, True), (phase_scope, False)):
        for rule in load_rules():
            texts = [rule.title, *rule.advice, *rule.verification]
            texts += [a for v in rule.variants for a in v.advice]
            for text in texts:
                assert "{" not in render(text, metrics)
            if not is_device:
                continue  # a phase has no per-direction / per-collective breakdown: those print n/a
            for name in rule.evidence + tuple(e for v in rule.variants for e in v.evidence):
                assert name in metrics, (rule.id, name)


# ---------------------------------------------------------------- device kind (CPU captures)


def _finding_text(f: object) -> str:
    from infersight.rules.finding import Finding

    assert isinstance(f, Finding)
    gain = f.expected_gain.basis if f.expected_gain else ""
    return " ".join([f.title, *f.advice, *f.verification, gain, f.confidence_reason]).lower()


def test_storm_on_a_cpu_capture_gets_cpu_advice_and_on_a_gpu_the_graph_advice() -> None:
    gpu = _storm_trace(1200, launch_us=None)
    cpu = _storm_trace(1200, launch_us=None)
    cpu.device_kind = "cpu"
    (gpu_storm,) = [f for f in evaluate_rules(build_global_profile([gpu])) if f.type == "small_kernel_storm"]
    cpu_findings = evaluate_rules(build_global_profile([cpu]))
    (cpu_storm,) = [f for f in cpu_findings if f.type == "small_kernel_storm"]
    assert gpu_storm.id == cpu_storm.id == "small_kernel_storm/dev0"  # same finding type and place
    assert "cuda graph" in _finding_text(gpu_storm) and "launch-bound" in gpu_storm.title
    assert "CPU operators" in cpu_storm.title and "dispatch-bound" in cpu_storm.title
    assert any("torch.compile" in a for a in cpu_storm.advice)
    assert any("GPU capture" in a for a in cpu_storm.advice)
    # the same measured conditions and gap figures, only the words differ
    assert [(e.metric, e.value) for e in cpu_storm.evidence[:2]] == [
        (e.metric, e.value) for e in gpu_storm.evidence[:2]
    ]
    assert cpu_storm.expected_gain is not None and gpu_storm.expected_gain is not None
    assert cpu_storm.expected_gain.high == pytest.approx(gpu_storm.expected_gain.high)
    # idle 20/30: the CPU gets the between-operators finding instead of gpu_idle
    assert {f.type for f in cpu_findings} == {"small_kernel_storm", "cpu_op_gaps"}
    for f in cpu_findings:
        text = _finding_text(f)
        assert "graph" not in text and "nsys-rep" not in text and "the gpu waits" not in text, f.id


def test_cpu_demo_findings_speak_of_cpu_operators_only() -> None:
    from importlib import resources

    from infersight.ingest import load_traces

    demo = resources.files("infersight").joinpath("data/demo/tiny_llama_cpu.pt.trace.json.gz")
    traces = load_traces(str(demo), cpu_ops_as_kernels=True)
    profile = build_global_profile(traces)
    findings = evaluate_rules(profile)
    assert {f.id for f in findings} >= {"small_kernel_storm/dev0", "small_kernel_storm/phase:decode"}
    for f in findings:
        assert f.type in {"small_kernel_storm", "cpu_op_gaps"}
        assert "graph" not in _finding_text(f), f.id
        assert "--cpu-ops-as-kernels" in " ".join(f.verification)


def test_rules_default_to_gpu_and_one_id_per_device_kind() -> None:
    rules = load_rules()
    assert {r.device_kinds for r in rules if r.id in {"gpu_idle", "launch_overhead"}} == {("gpu",)}
    storms = sorted(r.device_kinds for r in rules if r.id == "small_kernel_storm")
    assert storms == [("cpu",), ("gpu",)]
    rule = {
        "id": "x",
        "title": "x",
        "scopes": ["device"],
        "conditions": [{"metric": "kernel_count", "op": ">", "threshold": 0}],
        "estimator": "short_gaps",
        "confidence": "idle",
    }
    assert parse_rules({"rule": [rule]})[0].device_kinds == ("gpu",)
    with pytest.raises(ValueError, match="defined twice for device kind 'gpu'"):
        parse_rules({"rule": [rule, {**rule, "device_kinds": ["gpu", "cpu"]}]})
    with pytest.raises(ValueError, match="device_kinds must be some of"):
        parse_rules({"rule": [{**rule, "device_kinds": ["tpu"]}]})


# ---------------------------------------------------------------- noise the rules must not emit


def test_launch_time_hidden_behind_a_busy_gpu_gives_no_finding() -> None:
    # 600 kernels back to back (no idle) each launched by a 5 µs call: launch ratio 50% > 10%, but
    # min(launch, idle) = 0 is exposed, so there is nothing to recover and no finding
    profile = build_global_profile([_storm_trace(600, kernel_us=10, gap_us=0, launch_us=5)])
    (device,) = profile.devices
    assert device.launch_overhead_ratio is not None and device.launch_overhead_ratio > 0.10
    assert device.idle_ns == 0
    assert "launch_overhead" not in {f.type for f in evaluate_rules(profile)}


def test_phase_holding_the_whole_device_does_not_repeat_its_findings() -> None:
    t = _storm_trace(1200, launch_us=None)
    t.ranges = make_table(
        RANGE_COLUMNS,
        {
            "start": [-1],
            "end": [10**12],
            "name": ["prefill"],
            "source": ["gpu_user_annotation"],
            "device": [0],
        },
    )
    profile = build_global_profile([t])
    (phase,) = profile.phases.phases
    assert (phase.kernel_count, phase.wall_ns) == (
        profile.devices[0].kernel_count,
        profile.devices[0].wall_ns,
    )
    assert sorted(f.id for f in evaluate_rules(profile)) == ["gpu_idle/dev0", "small_kernel_storm/dev0"]
    # a decode phase over the same kernels keeps what only its own threshold finds (idle 0.2 > 0.15)
    t = _storm_trace(100, kernel_us=80, gap_us=20, launch_us=None)
    t.ranges = make_table(
        RANGE_COLUMNS,
        {
            "start": [-1],
            "end": [10**12],
            "name": ["decode"],
            "source": ["gpu_user_annotation"],
            "device": [0],
        },
    )
    findings = _host_findings(evaluate_rules(build_global_profile([t])))
    assert [f.id for f in findings] == ["gpu_idle/phase:decode"]


def test_launch_calls_far_slower_than_a_launch_are_called_start_up() -> None:
    # 20 kernels, each launched by a 1 ms call right before it (lazy loading / JIT at first launch)
    t = _storm_trace(20, kernel_us=10, gap_us=1000, launch_us=1000)
    findings = {f.type: f for f in evaluate_rules(build_global_profile([t]))}
    launch = findings["launch_overhead"]
    evidence = {e.metric: e for e in launch.evidence}
    assert evidence["avg_launch_ns"].value == pytest.approx(1_000_000)
    assert "selects the 'slow launch calls' advice" in evidence["avg_launch_ns"].note
    assert "not launch overhead but first-launch work" in launch.advice[0]
    assert launch.confidence == "low" and "launch calls average 1.00 ms" in launch.confidence_reason


def test_idle_held_by_one_long_gap_lowers_confidence() -> None:
    # 200 kernels of 10 µs with 1 µs gaps, then one 50 ms pause, then 200 more
    n = 400
    t = _storm_trace(n, kernel_us=10, gap_us=1, launch_us=None)
    late = t.kernels["start"].to_numpy() >= 200 * 11 * US
    t.kernels.loc[late, "start"] += 50_000 * US
    t.kernels.loc[late, "end"] += 50_000 * US
    idle = {f.type: f for f in evaluate_rules(build_global_profile([t]))}["gpu_idle"]
    assert idle.confidence == "medium"
    assert "1 gap(s) longer than 1 ms hold 99% of the idle time" in idle.confidence_reason
