"""Rules engine: thresholds from rules.toml, estimators from measured numbers, confidence."""

from __future__ import annotations

import importlib.util
import sys
import types

import pandas as pd
import pytest
from tests.conftest import shared_file

from infersight.analyses.profile import build_global_profile
from infersight.model import Trace
from infersight.model.trace import API_COLUMNS, KERNEL_COLUMNS, RANGE_COLUMNS, make_table
from infersight.rules.engine import evaluate_rules, load_rules, parse_rules

US = 1000


@pytest.fixture(autouse=True)
def _categories_available(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until infersight.analyses.categories lands, stand in a trivial categoriser."""
    if importlib.util.find_spec("infersight.analyses.categories") is None:
        stub = types.ModuleType("infersight.analyses.categories")
        stub.categorize = lambda names: pd.Categorical(["other"] * len(names))  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, stub.__name__, stub)


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
    assert storm == {("avg_kernel_us", "<"): 50.0, ("kernel_count", ">"): 500.0}
    idle = rules["gpu_idle"].conditions
    assert [(c.metric, c.op, c.threshold) for c in idle] == [("idle_ratio", ">", 0.30)]
    assert rules["gpu_idle"].conditions[0].threshold_for("decode") == 0.15
    assert [(c.metric, c.threshold) for c in rules["launch_overhead"].conditions] == [
        ("launch_overhead_ratio", 0.10)
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
    assert {e.metric: e.value for e in storm.evidence}["avg_kernel_us"] == pytest.approx(10.0)
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
    assert launch_evidence.value is None and launch_evidence.note == "not applicable"


def test_busy_gpu_with_few_kernels_fires_nothing() -> None:
    assert evaluate_rules(build_global_profile([_storm_trace(400, gap_us=1, launch_us=None)])) == []
    # 1200 kernels back to back: storm fires, but confidence says fusion rather than graphs
    (storm,) = evaluate_rules(build_global_profile([_storm_trace(1200, kernel_us=40, gap_us=1, launch_us=1)]))
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
    findings = evaluate_rules(build_global_profile([t]))
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
    from infersight.ingest import load_traces

    vllm = build_global_profile(
        load_traces(
            shared_file("kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz")
        )
    )
    ids = {f.id for f in evaluate_rules(vllm)}
    assert "small_kernel_storm/rank0/dev0" in ids  # 13,508 kernels averaging 17.3 µs
    assert "small_kernel_storm/phase:decode" in ids  # 12,375 decode kernels averaging 12.1 µs
    assert "small_kernel_storm/phase:prefill" not in ids  # 1,133 prefill kernels averaging 74 µs
    for tiny in ("kineto/hta_triton_example_a100.json.gz", "kineto/hta_alexnet_a100.json.gz"):
        findings = evaluate_rules(build_global_profile(load_traces(shared_file(tiny))))
        assert not [f for f in findings if f.type == "small_kernel_storm"]
