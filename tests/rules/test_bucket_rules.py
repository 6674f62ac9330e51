"""The wall-time bucket rules (copy-, unified-memory-, communication-, GPU-bound) on real traces,
and the order of findings: the primary bottleneck's findings first."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pytest
from tests.conftest import shared_file, shared_report

from infersight import api
from infersight.analyses.profile import build_global_profile
from infersight.cli import run
from infersight.rules.engine import evaluate_rules
from infersight.rules.finding import Finding

VLLM = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"


def _findings(relative: str) -> tuple[str | None, list[Finding]]:
    profile = shared_report(relative).profile
    verdict = profile.primary_bottleneck
    return (verdict.bucket if verdict else None), evaluate_rules(profile)


def test_copy_bound_fires_first_on_a_copy_run_and_no_host_rule_fires() -> None:
    primary, findings = _findings("nsys/vecadd_t4_nsys2022.sqlite")
    assert primary == "copy"
    assert findings[0].type == "copy_bound" and findings[0].bucket == "copy"
    assert findings[0].severity == "critical"
    assert not [f for f in findings if f.bucket == "host"]  # idle filled by copies is not host overhead
    evidence = {e.metric: e.value for e in findings[0].evidence}
    assert evidence["top_copy_direction"] == "HtoD"
    gain = findings[0].expected_gain
    assert gain is not None and gain.high == pytest.approx(evidence["copy_share"])


def test_unified_memory_migrations_get_prefetch_advice() -> None:
    _, findings = _findings("nsys/vectoradd_a4500_memcpy.sqlite")
    uvm = next(f for f in findings if f.type == "unified_memory_migration")
    assert any("cudaMemPrefetchAsync" in a for a in uvm.advice)
    assert {e.metric: e.value for e in uvm.evidence}["uvm_copy_count"] == 227


def test_communication_bound_fires_on_an_nccl_heavy_rank() -> None:
    # HTA's 8-rank recommender step: NCCL SendRecv alone for ~19% of rank 3's window
    _, findings = _findings("kineto/hta_trace_diff_control_a100_rank3.json.gz")
    comm = next(f for f in findings if f.type == "communication_bound")
    assert comm.bucket == "communication" and comm.severity == "critical"
    assert "SendRecv" in str({e.metric: e.value for e in comm.evidence}["top_collective"])


def test_gpu_bound_run_leads_with_the_gpu_finding() -> None:
    primary, findings = _findings(VLLM)
    assert primary == "gpu"
    assert findings[0].type == "gpu_bound"
    assert "GEMM" in findings[0].title
    # host findings still come, behind it, with their measured gains in order
    host = [f for f in findings if f.bucket == "host"]
    gains = [f.expected_gain.high for f in host if f.expected_gain]
    assert gains and gains == sorted(gains, reverse=True)


def test_copies_injected_into_the_gaps_flip_host_to_copy(tmp_path: Path) -> None:
    """The same real trace, with HtoD copies filling its kernel gaps: no longer a host verdict."""
    source = shared_file("kineto/hta_nccl_a100_rank0.json.gz")
    with gzip.open(source, "rb") as handle:
        document = json.loads(handle.read())
    kernels = sorted(
        (e for e in document["traceEvents"] if e.get("ph") == "X" and e.get("cat") == "kernel"),
        key=lambda e: float(e["ts"]),
    )
    template = next(e for e in document["traceEvents"] if e.get("cat") == "gpu_memcpy")
    for before, after in itertools.pairwise(kernels):
        gap_start = float(before["ts"]) + float(before["dur"])
        gap = float(after["ts"]) - gap_start
        if gap > 5:
            copy = json.loads(json.dumps(template))
            copy.update(name="Memcpy HtoD (Pageable -> Device)", ts=gap_start, dur=gap * 0.95)
            copy["args"]["device"] = before["args"]["device"]
            document["traceEvents"].append(copy)
    out = tmp_path / "copy_filled.json"
    out.write_text(json.dumps(document))
    before_verdict = build_global_profile(api.load([source])).primary_bottleneck
    after_profile = build_global_profile(api.load([out]))
    assert before_verdict is not None and before_verdict.bucket == "host"
    assert after_profile.primary_bottleneck is not None and after_profile.primary_bottleneck.bucket == "copy"
    findings = evaluate_rules(after_profile)
    assert findings[0].type == "copy_bound"
    assert "gpu_idle" not in {f.type for f in findings}


def test_analyze_prints_the_primary_bottleneck_first(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["analyze", str(shared_file("nsys/vecadd_t4_nsys2022.sqlite"))])
    assert code == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[1].startswith("Primary bottleneck: copy — copies alone fill 91%")


def test_analyze_json_has_the_attribution_at_the_top_level(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert run(["analyze", str(shared_file(VLLM)), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["primary_bottleneck"]["bucket"] == "gpu"
    (device,) = report["time_attribution"]
    assert set(device["shares"]) == {"gpu", "communication", "copy", "host"}
    assert sum(device["shares"].values()) == pytest.approx(1.0)
    assert device["primary"] == "gpu" and device["rank"] == 0 and device["window_ns"] > 0
    assert [p["phase"] for p in device["phases"]] == ["prefill", "decode"]
    assert report["findings"][0]["bucket"] == "gpu"
