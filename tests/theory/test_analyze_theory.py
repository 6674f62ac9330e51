"""``infersight analyze TRACE --model/--config ...``: the theory section of the report."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import shared_file

from infersight.analysis_report import AnalysisReport
from infersight.cli import run

SGLANG_QWEN3 = "kineto/tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz"


def test_analyze_with_config_adds_measured_vs_theory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    trace = shared_file(SGLANG_QWEN3)
    config = shared_file("configs/qwen3-8b.config.json")
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    args = ["analyze", str(trace), "--config", str(config), "--batch", "1", "--prompt", "8192"]
    assert run([*args, "--measured-ttft", "1000", "--json", str(out), "--md", str(md)]) == 0
    text = capsys.readouterr().out
    assert "Measured vs theory" in text and "Focus set" in text and "Whole-model estimate" in text
    report = AnalysisReport.model_validate_json(out.read_text())
    assert report.theory is not None and report.theory.measured is not None
    assert report.theory.estimate.gpu == "AMD Instinct MI300X"
    assert any(f.id == "theory_mismatch/ttft" for f in report.findings)
    assert "## Measured vs theory" in md.read_text()


def test_theory_options_need_a_model(capsys: pytest.CaptureFixture[str]) -> None:
    trace = shared_file(SGLANG_QWEN3)
    assert run(["analyze", str(trace), "--gpu", "H100-SXM", "--batch", "2"]) == 2
    assert "--gpu, --batch needs --model NAME or --config PATH" in capsys.readouterr().err
    assert run(["analyze", str(trace), "--model", "llama-3-8b"]) == 2
    assert "--batch B and --prompt S" in capsys.readouterr().err
