"""Roofline times, whole-model estimates and the measured-vs-theory finding (methodology §2)."""

from __future__ import annotations

import pytest
from test_operators import DEEPSEEK_V3, LLAMA3_8B, SCENARIO

from infersight.theory.estimates import estimate, measured_vs_theory_findings
from infersight.theory.operators import Operator
from infersight.theory.roofline import Hardware, time_operator

# H100-SXM-like round numbers so the expected times are easy to derive by hand
HW = Hardware(
    name="test-gpu",
    compute_dtype="bf16",
    matmul_peak_flops=1.0e15,
    vector_peak_flops=50e12,
    memory_bandwidth=4.0e12,
    memory_efficiency=0.8,
    link_bandwidth=400e9,
    link_efficiency=0.75,
    kappa=1.25,
)


def op(category: str, flops: float, weights: float, comm: float = 0.0) -> Operator:
    return Operator(
        name="x",
        phase="decode",
        category=category,
        block="attention",
        layers=3,
        shape="",
        flops=flops,
        weight_bytes=weights,
        activation_bytes=0.0,
        kv_bytes=0.0,
        comm_bytes=comm,
    )


def test_memory_bound_gemm() -> None:
    t = time_operator(op("GEMM", flops=2e9, weights=32e6), HW)
    # F/P = 2 µs, bytes/B_eff = 32e6 / 3.2e12 = 10 µs -> memory bound, T = 10 µs · κ 1.25
    assert t.bound == "memory"
    assert t.intensity == pytest.approx(2e9 / 32e6)
    assert t.t_roof_s == pytest.approx(10e-6)
    assert t.t_theory_s == pytest.approx(12.5e-6)
    assert t.total_t_theory_s == pytest.approx(3 * 12.5e-6)


def test_compute_bound_gemm_and_vector_peak() -> None:
    t = time_operator(op("GEMM", flops=2e12, weights=32e6), HW)
    assert t.bound == "compute" and t.t_roof_s == pytest.approx(2e-3)
    # a norm with the same counts runs on the CUDA cores (50 TFLOP/s)
    assert time_operator(op("norm", flops=2e12, weights=32e6), HW).t_roof_s == pytest.approx(40e-3)


def test_allreduce_uses_the_link() -> None:
    t = time_operator(op("NCCL", flops=1e3, weights=0.0, comm=30e6), HW)
    assert t.bound == "communication"
    assert t.t_roof_s == pytest.approx(30e6 / 300e9)
    unknown = time_operator(
        op("NCCL", flops=1e3, weights=0.0, comm=30e6), HW.model_copy(update={"link_bandwidth": None})
    )
    assert unknown.t_theory_s is None and unknown.na_reason


def test_estimate_sums_operators_and_derives_throughput() -> None:
    est = estimate(LLAMA3_8B, SCENARIO, HW)
    assert est.ttft_s == pytest.approx(sum(t.total_t_theory_s or 0 for t in est.prefill.operators))
    assert est.tpot_s == pytest.approx(sum(t.total_t_theory_s or 0 for t in est.decode.operators))
    assert est.decode_tokens_per_s == pytest.approx(2 / est.tpot_s)
    assert est.prefill_tokens_per_s == pytest.approx(2048 / est.ttft_s)
    assert sum(t.share or 0 for t in est.decode.operators) == pytest.approx(1.0)
    # decode at B=2 streams the weights: 8.03 B params × 2 bytes, less the 1.05 GB embedding table
    # (only 2 rows are read), plus 32 layers × 16.8 MB of KV cache; at 3.2 TB/s, × κ
    decode_bytes = est.decode.memory_bytes
    assert decode_bytes == pytest.approx(2 * 8.03e9 - 1.05e9 + 32 * 16.8e6, rel=0.01)
    assert est.tpot_s == pytest.approx(decode_bytes / 3.2e12 * 1.25, rel=0.01)
    assert all(t.bound == "memory" for t in est.decode.operators if t.operator.category == "GEMM")
    # prefill of 2048 tokens is compute-bound in its big GEMMs
    bounds = {t.operator.name: t.bound for t in est.prefill.operators}
    assert bounds["gate_proj"] == "compute" and bounds["attention"] == "compute"


def test_deepseek_estimate_runs_with_tp() -> None:
    est = estimate(DEEPSEEK_V3, SCENARIO.model_copy(update={"tp": 8}), HW)
    names = {t.operator.name for t in est.decode.operators}
    assert {"moe_allreduce", "attn_allreduce", "q_absorb"} <= names
    assert est.decode.comm_bytes > 0 and est.tpot_s > 0


def test_measured_vs_theory_finding() -> None:
    est = estimate(LLAMA3_8B, SCENARIO, HW)
    assert measured_vs_theory_findings(est, tpot_s=est.tpot_s * 1.15) == []
    slow = measured_vs_theory_findings(
        est, ttft_s=est.ttft_s * 2.0, tokens_per_s=est.decode_tokens_per_s / 1.5
    )
    assert [f.id for f in slow] == ["theory_mismatch/ttft", "theory_mismatch/tokens_per_s"]
    assert slow[0].evidence[2].value == pytest.approx(1.0)
    assert slow[1].evidence[2].value == pytest.approx(0.5)
    assert any("nvidia-smi -lgc" in step for step in slow[0].verification)
    assert any("5 repeats" in step and "median" in step for step in slow[0].verification)
    fast = measured_vs_theory_findings(est, tpot_s=est.tpot_s * 0.5, delta=0.3)
    assert fast[0].title.startswith("measured TPOT is faster")
    assert measured_vs_theory_findings(est, tpot_s=est.tpot_s * 1.25, delta=0.3) == []
