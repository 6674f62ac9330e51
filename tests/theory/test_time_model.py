"""The calibrated time model: the fit on the shared Vidur data, hand-checked shapes, roofline --ops."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import shared_file

from infersight import api
from infersight.cli import run
from infersight.theory.calibration import (
    allreduce_table,
    gemm_table,
    load_oneshot_latencies,
    load_vidur,
    oneshot_accuracy,
)
from infersight.theory.time_model import time_model_params

VIDUR = "measured/vidur"


@pytest.fixture(scope="module")
def vidur() -> object:
    return load_vidur(shared_file(VIDUR))


def test_gemm_fit_is_pinned(vidur: object) -> None:
    """The defaults in time_model.toml reproduce the bench's accuracy (bench/README.md)."""
    after = gemm_table(vidur, time_model_params("H100").kernel)  # type: ignore[arg-type]
    before = gemm_table(vidur, None)  # type: ignore[arg-type]
    assert after["all"].count == 21_924
    assert after["all"].median <= 0.070 and after["all"].p90 <= 0.20
    assert after["decode (M ≤ 64)"].median <= 0.045
    assert after["prefill (M > 64)"].median <= 0.072
    assert after["held-out models (CodeLlama-34B, Qwen-72B, Phi-2)"].median <= 0.075
    assert abs(after["all"].bias) <= 0.02  # no systematic optimism left
    # the κ roofline it replaces was ~35% optimistic on prefill GEMMs
    assert before["prefill (M > 64)"].median >= 0.3 and before["prefill (M > 64)"].bias > 0.3


def test_allreduce_fit_is_pinned(vidur: object) -> None:
    after = allreduce_table(vidur)  # type: ignore[arg-type]
    before = allreduce_table(vidur, old=True)  # type: ignore[arg-type]
    assert after["H100 all (DGX + NVLink pairs)"].median <= 0.065
    assert after["A100 in-node 4 ranks (held out of the A100 fit)"].median <= 0.065
    assert after["A100 in-node, A100 figures"].median <= 0.065
    assert before["H100 all (DGX + NVLink pairs)"].median > 0.6  # no latency term: small messages far off


def test_oneshot_fit_is_pinned() -> None:
    """The one-shot custom all-reduce figures reproduce SGLang's published H100 latencies."""
    path = Path(__file__).resolve().parents[2] / "bench" / "data" / "sglang_custom_allreduce_h100.csv"
    acc = oneshot_accuracy(load_oneshot_latencies(path), time_model_params("H100").oneshot)
    assert acc.count == 18 and acc.median <= 0.10 and abs(acc.bias) <= 0.02


def test_hand_checked_decode_gemm_and_allreduce(tmp_path: Path) -> None:
    """1×8192×8192 fp16 GEMM (Vidur measured 48 µs) and a 64 MiB 8-rank all-reduce on H100, by hand."""
    k = time_model_params("H100").kernel
    c = time_model_params("H100").intra_node
    t_m = (8192 * 8192 + 8192 + 8192) * 2 / (k.memory_efficiency * 3350e9)
    t_c = 2 * 8192 * 8192 / (k.compute_efficiency * 989.4e12)
    p = k.overlap_exponent
    gemm_s = (t_m**p + t_c**p) ** (1 / p) + k.floor_s
    ar_s = c.alpha_s + 64 * 2**20 * 2 * 7 / 8 / (c.bus_efficiency * 450e9)
    ops = pd.DataFrame(
        {
            "id": ["g", "a", "one"],
            "op": ["gemm", "allreduce", "allreduce"],
            "m": ["1", "", ""],
            "n": ["8192", "", ""],
            "k": ["8192", "", ""],
            "bytes": ["", str(64 * 2**20), "4096"],
            "ranks": ["", "8", "1"],
        }
    )
    result = api.predict_ops(ops, gpu="H100-SXM", dtype="fp16")
    got = {o.id: o for o in result.ops}
    assert got["g"].predicted_s == pytest.approx(gemm_s, rel=1e-9)
    assert got["g"].predicted_s == pytest.approx(48e-6, rel=0.05)  # the measurement
    assert got["g"].bound == "memory"
    assert got["a"].predicted_s == pytest.approx(ar_s, rel=1e-9) and got["a"].bound == "communication"
    assert got["one"].predicted_s == 0.0  # one rank: nothing to reduce


def test_ops_cli_writes_json_and_refuses_bad_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "ops.csv"
    csv.write_text(
        "id,op,m,n,k,bytes,ranks\nbig,gemm,4096,8192,8192,,\ntiny,gemm,16,512,512,,\n"
        "ar,allreduce,,,,16384,4\nnet,allreduce,,,,67108864,16\n",
        encoding="utf-8",
    )
    out = tmp_path / "ops.json"
    assert run(["roofline", "--ops", str(csv), "--gpu", "h100", "--dtype", "fp16", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["schema_version"] and [o["id"] for o in data["ops"]] == ["big", "tiny", "ar", "net"]
    bounds = {o["id"]: o["bound"] for o in data["ops"]}
    assert bounds == {"big": "compute", "tiny": "latency", "ar": "latency", "net": "communication"}
    # 16 ranks cross nodes: the network link (IB NDR, 50 GB/s) and its α
    net = time_model_params("H100").network
    expected = net.alpha_s + 67108864 * 2 * 15 / 16 / (net.bus_efficiency * 50e9)
    assert data["ops"][3]["predicted_s"] == pytest.approx(expected)
    assert "Predicted time per operator" in capsys.readouterr().out

    bad = tmp_path / "bad.csv"
    bad.write_text("id,op,m,n,k,bytes,ranks\nok,gemm,1,2,3,,\nx,allreduce,,,,100,0\n", encoding="utf-8")
    assert run(["roofline", "--ops", str(bad), "--gpu", "h100", "--dtype", "fp16"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "line 3" in err and "ranks" in err and "Traceback" not in err
    assert run(["roofline", "--ops", str(csv), "--gpu", "h100"]) == 2  # no --dtype


def test_custom_gpu_changes_only_spec_figures() -> None:
    """A GPU described by its figures alone uses the generic calibrated efficiencies."""
    ops = pd.DataFrame(
        {
            "id": ["g"],
            "op": ["gemm"],
            "m": ["4096"],
            "n": ["8192"],
            "k": ["8192"],
            "bytes": [""],
            "ranks": [""],
        }
    )
    h100 = api.predict_ops(ops, gpu="h100", dtype="fp16").ops[0].predicted_s
    half = api.predict_ops(ops, gpu=None, dtype="fp16", peak_tflops=989.4 / 2, bandwidth_gb_per_s=3350).ops[0]
    assert half.bound == "compute" and half.predicted_s == pytest.approx(2 * h100, rel=0.05)


def test_vllm_tp4_trace_decode_collectives_are_no_longer_zero() -> None:
    """analyze on the vLLM TP4 H100 trace: prefill close to measured, decode NCCL E_roof far from 0."""
    from infersight.theory.inputs import TheoryOptions
    from infersight.theory.run import theory_report

    trace = shared_file("kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz")
    traces = api.load([trace])
    report = theory_report(
        TheoryOptions(model="llama-3.1-70b"), batch=1, prompt=1049, context=1050, tp=4, traces=traces
    )
    assert 0.080 <= report.estimate.ttft_s <= 0.095  # measured prefill ≈ 88.4 ms (was 60.9 ms)
    rows = {(r.phase, r.category): r for r in report.measured.rows} if report.measured else {}
    # vLLM's one-shot custom all-reduce (5.3 µs a call): was E_roof 0.014 with no latency term
    assert rows[("decode", "NCCL")].e_roof == pytest.approx(0.85, abs=0.2)
    assert 0.014 <= report.estimate.tpot_s <= 0.019  # the decode step's kernels sum to 16.6 ms
    assert rows[("prefill", "GEMM")].e_roof == pytest.approx(1.0, abs=0.15)
