"""A/B verification: statistics by construction, refusal on noisy samples, KB write-back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.agent._support import write_step_trace

from infersight.advisor.verify import compare_samples, parse_side
from infersight.cli import run
from infersight.kb.store import KnowledgeBase


def test_compare_samples_gain_and_interval() -> None:
    base = [1.00, 1.01, 0.99, 1.00, 1.02, 0.98]
    cand = [0.80, 0.81, 0.79, 0.80, 0.80, 0.80]
    result = compare_samples(base, cand)
    assert result.baseline.median_s == pytest.approx(1.0)
    assert result.candidate.median_s == pytest.approx(0.8)
    assert result.gain == pytest.approx(0.2)
    assert result.baseline.std_s == pytest.approx(float(np.std(base, ddof=1)))
    assert result.gain_ci_low <= result.gain <= result.gain_ci_high
    assert result.gain_ci_low > 0.15 and result.verdict == "improved"
    assert compare_samples(cand, base).verdict == "regressed"
    assert compare_samples(base, list(reversed(base))).verdict == "no_change"


def test_refuses_noisy_or_few_samples() -> None:
    noisy = compare_samples([1.0, 1.3, 0.8, 1.1], [0.5, 0.5, 0.5, 0.5])
    assert noisy.baseline.cv > 0.10
    assert noisy.verdict == "inconclusive" and "refusing to conclude" in noisy.reason
    assert compare_samples([1.0, 1.0], [0.5, 0.5]).verdict == "inconclusive"


def test_parse_side(tmp_path: Path) -> None:
    trace = tmp_path / "a.json"
    trace.write_text("{}")
    assert parse_side(str(trace)).mode == "traces"
    assert parse_side(f"python {trace}").mode == "command"


def test_verify_traces_cli_writes_kb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, cand = tmp_path / "base.json", tmp_path / "cand.json"
    base_steps = write_step_trace(base, [100, 100, 101, 99, 100, 100])
    cand_steps = write_step_trace(cand, [80, 80, 81, 79, 80, 80])
    kb, out = tmp_path / "kb.sqlite", tmp_path / "verify.json"
    code = run(
        [
            "verify",
            "--baseline",
            str(base),
            "--candidate",
            str(cand),
            "--warmup",
            "1",
            "--kb",
            str(kb),
            "--recommendation",
            "faster_gemm",
            "--gpu",
            "H100",
            "--json",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    expected_gain = 1 - float(np.median(cand_steps[1:])) / float(np.median(base_steps[1:]))
    assert result["result"]["gain"] == pytest.approx(expected_gain, rel=1e-6)
    assert result["result"]["verdict"] == "improved"
    assert "verdict  : improved" in capsys.readouterr().out
    with KnowledgeBase.open(str(kb)) as store:
        history = store.ab_history("faster_gemm")
    assert len(history) == 1 and history[0].fingerprint.gpu == "H100"
    assert history[0].samples["baseline"] == pytest.approx(base_steps[1:])


def test_verify_refuses_noisy_traces_and_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, cand = tmp_path / "base.json", tmp_path / "cand.json"
    write_step_trace(base, [100, 140, 70, 120, 90])
    write_step_trace(cand, [80, 80, 80, 80, 80])
    kb = tmp_path / "kb.sqlite"
    code = run(
        ["verify", "--baseline", str(base), "--candidate", str(cand), "--warmup", "0", "--kb", str(kb)]
    )
    assert code == 3
    assert "refusing to conclude" in capsys.readouterr().out
    with KnowledgeBase.open(str(kb)) as store:
        assert store.count("ab_results") == 0


def test_verify_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(
        [
            "verify",
            "--baseline",
            "sleep 0.2",
            "--candidate",
            "sleep 0.1",
            "--repeats",
            "3",
            "--warmup",
            "0",
            "--kb",
            str(tmp_path / "kb.sqlite"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert "verdict  : improved" in captured.out
    assert run(["verify", "--baseline", "false", "--candidate", "true", "--repeats", "1", "--no-kb"]) == 2
    assert "command exited 1: false" in capsys.readouterr().err


def test_verify_takes_base_target_like_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, cand = tmp_path / "base.json", tmp_path / "cand.json"
    write_step_trace(base, [100, 100, 101, 99, 100, 100])
    write_step_trace(cand, [80, 80, 81, 79, 80, 80])
    assert run(["verify", str(base), str(cand), "--no-kb"]) == 0
    assert "verdict  : improved" in capsys.readouterr().out
    assert run(["verify", str(base), str(cand), "--baseline", str(base), "--no-kb"]) == 2
    assert "not both" in capsys.readouterr().err
    assert run(["verify", str(base), "--no-kb"]) == 2
    assert "needs both sides" in capsys.readouterr().err
