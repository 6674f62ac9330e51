"""The agent loop end to end on a real trace: every step logged, resumable, changed inputs re-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.agent._support import FakeOpenAI, fake_openai_server
from tests.conftest import shared_file

from infersight.agent.workflow import STEPS, AgentInputs, run_agent
from infersight.cli import run


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, AgentInputs, object]:
    work = tmp_path_factory.mktemp("agent")
    inputs = AgentInputs(
        traces=[str(shared_file("kineto/hta_alexnet_a100.json.gz"))],
        kb=str(work / "kb.sqlite"),
        app_command="python serve.py",
    )
    return work, inputs, run_agent(inputs, work / "run")


def test_every_step_runs_and_is_logged(first_run: tuple[Path, AgentInputs, object]) -> None:
    work, _inputs, state = first_run
    steps = state.steps  # type: ignore[attr-defined]
    assert list(steps) == list(STEPS)
    assert steps["theory_inputs"].status == "needs_input" and "--model" in steps["theory_inputs"].message
    assert steps["ncu"].status == "needs_input" and (work / "run" / "ncu_plan.json").exists()
    assert steps["narrate"].status == "skipped"
    assert all(
        steps[s].status == "done" for s in ("profile", "focus", "rules", "report", "ab_plan", "kb_record")
    )
    log = [json.loads(line) for line in (work / "run" / "agent_log.jsonl").read_text().splitlines()]
    assert [entry["name"] for entry in log] == list(STEPS)
    plan = json.loads((work / "run" / "ab_plan.json").read_text())
    report = json.loads((work / "run" / "report.json").read_text())
    assert len(plan) == len(report["findings"])
    assert all("infersight verify --baseline 'python serve.py'" in line["verify"] for line in plan)
    assert (work / "run" / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_resume_skips_done_steps_and_reruns_changed_ones(first_run: tuple[Path, AgentInputs, object]) -> None:
    work, inputs, _state = first_run
    log_file = work / "run" / "agent_log.jsonl"
    lines_before = len(log_file.read_text().splitlines())
    messages: list[str] = []
    run_agent(inputs, work / "run", progress=lambda done, total, message: messages.append(message))
    assert len(log_file.read_text().splitlines()) == lines_before  # nothing re-ran
    assert all("resumed" in m for m in messages)
    changed = inputs.model_copy(update={"llm_url": "http://127.0.0.1:9/v1"})
    state = run_agent(changed, work / "run")
    rerun = [json.loads(line)["name"] for line in log_file.read_text().splitlines()[lines_before:]]
    assert rerun == ["narrate", "report", "ab_plan", "kb_record"]
    assert state.steps["narrate"].status == "needs_input"  # URL without --llm-model


def test_agent_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = shared_file("kineto/hta_alexnet_a100.json.gz")
    code = run(["agent", "--trace", str(trace), "--workdir", str(tmp_path / "w"), "--no-kb"])
    assert code == 0
    out = capsys.readouterr().out
    assert "kb_lookup           skipped" in out and "profile             done" in out
    assert run(["agent", "--trace", str(tmp_path / "missing.json"), "--workdir", str(tmp_path / "w2")]) == 2


def test_agent_with_narrator(tmp_path: Path) -> None:
    def reply(body: dict[str, object]) -> str:
        findings = json.loads(body["messages"][1]["content"])["findings"]  # type: ignore[index]
        first = findings[0]
        value = first["evidence"][0]["value"]
        cite = f"[{first['id']}]"
        return f"{first['title']} has {first['evidence'][0]['metric']} {value} {cite}. It costs 99.7% {cite}."

    FakeOpenAI.reply = reply
    inputs = AgentInputs(
        traces=[str(shared_file("kineto/hta_alexnet_a100.json.gz"))],
        use_kb=False,
        llm_url="set below",
        llm_model="fake-1",
    )
    with fake_openai_server() as url:
        state = run_agent(inputs.model_copy(update={"llm_url": url}), tmp_path / "run")
    assert state.steps["narrate"].status == "done", state.steps["narrate"].message
    narration = json.loads((tmp_path / "run" / "narration.json").read_text())
    assert len(narration["kept"]) == 1 and narration["dropped"][0]["reason"].startswith("99.7%")
    html = (tmp_path / "run" / "report.html").read_text()
    assert "every number checked against the evidence" in html and "99.7%" in html  # shown as dropped
    assert "dropped:" in (tmp_path / "run" / "report.md").read_text()
