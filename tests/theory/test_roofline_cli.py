"""``infersight roofline``: the operator tables, JSON, plot and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import require_extra

from infersight.cli import run
from infersight.hardware.gpu_specs import lookup_gpu
from infersight.theory.config_reader import builtin_model
from infersight.theory.estimates import estimate
from infersight.theory.operators import Scenario
from infersight.theory.report import TheoryReport
from infersight.theory.roofline import hardware_from_gpu

BASE = ["roofline", "--model", "llama-3-8b", "--batch", "4", "--prompt", "512", "--context", "1024"]


def test_prints_both_phases_and_the_estimate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert run([*BASE, "--gpu", "H100-SXM", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Prefill roofline — B=4, S=512, TP=1" in text and "Decode roofline — B=4, L=1024, TP=1" in text
    for name in ("q_proj", "attention", "swiglu", "lm_head", "sampling", "kv_cache_store", "TTFT", "TPOT"):
        assert name in text
    report = TheoryReport.model_validate_json(out.read_text())
    # the same numbers as the Python API with the same inputs
    hw = hardware_from_gpu(lookup_gpu("H100-SXM"), "bf16")
    direct = estimate(builtin_model("llama-3-8b"), Scenario(batch=4, prompt_len=512, context_len=1024), hw)
    assert report.estimate.ttft_s == pytest.approx(direct.ttft_s)
    assert report.estimate.tpot_s == pytest.approx(direct.tpot_s)
    assert report.findings == []


def test_custom_gpu_tp_and_measured_finding(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = [*BASE, "--peak-tflops", "400", "--bandwidth", "2000", "--tp", "2", "--link-bandwidth", "100"]
    assert run([*args, "--measured-tpot", "100", "--json", str(out)]) == 0
    report = TheoryReport.model_validate_json(out.read_text())
    hw = report.estimate.hardware
    assert hw.matmul_peak_flops == 400e12 and hw.memory_bandwidth == 2000e9 and hw.link_bandwidth == 100e9
    assert any(t.operator.name == "attn_allreduce" and t.t_theory_s for t in report.estimate.decode.operators)
    assert [f.id for f in report.findings] == ["theory_mismatch/tpot"]
    assert "measured TPOT is" in capsys.readouterr().out


# the html page wraps the same matplotlib drawing as svg: drawn in CI (matplotlib costs ~2 s a plot)
@pytest.mark.parametrize("suffix", [".png", pytest.param(".html", marks=pytest.mark.slow)])
def test_plot(tmp_path: Path, suffix: str) -> None:
    require_extra("matplotlib", "plot")
    out = tmp_path / f"roofline{suffix}"
    assert run([*BASE, "--gpu", "A100-SXM-80GB", "--plot", str(out)]) == 0
    data = out.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG")
    else:
        assert data.startswith(b"<!DOCTYPE html>") and b"<svg" in data


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--gpu", "Quantum GPU 9000"], "Quantum GPU 9000"),
        (["--peak-tflops", "100"], "no GPU: give --gpu NAME, or both --peak-tflops and --bandwidth"),
        (["--gpu", "H100-SXM", "--tp", "3"], "does not divide the 32 attention heads"),
        (["--gpu", "H100-SXM", "--config", "x.json"], "exactly one of --model NAME"),
        (["--gpu", "H100-SXM", "--dtype", "int3"], "--dtype 'int3'"),
        (["--gpu", "H100-SXM", "--plot", "r.gif"], "unsupported file type '.gif'"),
        (["--gpu", "H100-SXM", "--measured-tps", "0"], "measured decode tokens/s must be a positive number"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert run([*BASE, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("infersight: error:") and message in err
    assert len(err.strip().splitlines()) == 1
