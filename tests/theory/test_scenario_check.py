"""``analyze --model`` without --batch/--prompt reads the scenario from the trace; a contradicting
user scenario is flagged in measured-vs-theory and the JSON."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest
from tests.conftest import shared_file

from infersight.cli import run
from infersight.errors import InputError
from infersight.ingest import load_file
from infersight.model import Trace
from infersight.theory.scenario_check import resolve_scenario

VLLM_TP4 = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"


@cache
def _trace() -> Trace:
    return load_file(shared_file(VLLM_TP4))


def test_missing_scenario_comes_from_the_trace() -> None:
    check = resolve_scenario([_trace()], None, None, None)
    assert (check.source, check.batch, check.prompt, check.context) == ("trace", 1, 1049, 1054)
    assert check.contradictions == []


def test_contradicting_user_scenario_is_listed() -> None:
    check = resolve_scenario([_trace()], 32, 1000, None)
    assert (check.batch, check.prompt) == (32, 1000)  # the user's scenario is still what theory runs
    assert check.context is None  # the trace's context belongs to its own 1049-token prompt
    assert len(check.contradictions) == 2
    assert check.contradictions[0].startswith("--batch 32 but the trace shows batch 1")


def test_agreeing_user_scenario_is_not_flagged() -> None:
    check = resolve_scenario([_trace()], 1, 1049, None)
    assert check.contradictions == [] and check.context == 1054


def test_no_evidence_and_no_scenario_is_a_clear_error() -> None:
    empty = Trace(source="synthetic", format="kineto")
    with pytest.raises(InputError, match="give --batch B and --prompt S"):
        resolve_scenario([empty], None, None, None)


def test_analyze_without_scenario_infers_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    args = [
        "analyze",
        str(shared_file(VLLM_TP4)),
        "--model",
        "llama-3.1-70b",
        "--tp",
        "4",
        "--json",
        str(out),
    ]
    assert run(args) == 0
    text = capsys.readouterr().out
    assert "scenario from the trace (token copies): batch 1" in text
    theory = json.loads(out.read_text())["theory"]
    assert theory["estimate"]["scenario"]["batch"] == 1
    assert theory["estimate"]["scenario"]["prompt_len"] == 1049
    assert theory["measured"]["scenario"]["source"] == "trace"
    assert theory["estimate"]["memory"]["status"] == "fits"


def test_analyze_flags_a_contradicting_batch(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    args = [
        "analyze", str(shared_file(VLLM_TP4)), "--model", "llama-3.1-70b", "--tp", "4",
        "--batch", "32", "--prompt", "1049", "--json", str(out),
    ]  # fmt: skip
    assert run(args) == 0
    assert "SCENARIO MISMATCH: --batch 32 but the trace shows batch 1" in capsys.readouterr().out
    scenario = json.loads(out.read_text())["theory"]["measured"]["scenario"]
    assert scenario["contradictions"] and scenario["inferred"]["batch"]["value"] == 1
