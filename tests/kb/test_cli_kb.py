"""``infersight kb record|lookup|history`` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import shared_file

from infersight.cli import run


def test_record_lookup_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = shared_file("kineto/hta_alexnet_a100.json.gz")
    report, kb = tmp_path / "r.json", str(tmp_path / "kb.sqlite")
    assert run(["analyze", str(trace), "--json", str(report)]) == 0
    capsys.readouterr()
    assert run(["kb", "record", str(report), "--kb", kb, "--model", "alexnet", "--dtype", "fp32"]) == 0
    assert "recorded: run #1" in capsys.readouterr().out
    assert run(["kb", "record", str(report), "--kb", kb, "--model", "alexnet", "--dtype", "fp32"]) == 0
    assert "unchanged" in capsys.readouterr().out
    out = tmp_path / "lookup.json"
    assert (
        run(
            [
                "kb",
                "lookup",
                "--kb",
                kb,
                "--report",
                str(report),
                "--model",
                "alexnet",
                "--dtype",
                "fp32",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    best = result["matches"][0]
    assert best["similarity"]["score"] == pytest.approx(1.0) and best["direct_answer"]
    report_data = json.loads(report.read_text())
    top_category = report_data["profile"]["categories"][0]
    assert best["top_operators"][0]["operator"] == top_category["category"]
    assert best["top_operators"][0]["total_ns"] == top_category["total_ns"]
    assert "can answer directly" in capsys.readouterr().out
    assert run(["kb", "lookup", "--kb", kb, "--gpu", "T4", "--model", "other"]) == 0
    assert "use as a hint" in capsys.readouterr().out
    history = tmp_path / "history.json"
    assert run(["kb", "history", "--kb", kb, "--json", str(history)]) == 0
    assert "no A/B results" in capsys.readouterr().err
    assert json.loads(history.read_text())["results"] == []
    bad = tmp_path / "bad.json"
    bad.write_text('{"x": 1}')
    assert run(["kb", "record", str(bad), "--kb", kb]) == 2
    assert "not an infersight analyze report" in capsys.readouterr().err
