"""The agent loop end to end on a real trace: every step logged, resumable, changed inputs re-run."""

from __future__ import annotations

import json
import shlex
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
    for name in ("agent_state.json", "focus.json", "ncu_plan.json", "report.json"):  # versioned objects
        version = json.loads((work / "run" / name).read_text())["schema_version"]
        assert version.count(".") == 1 and all(part.isdigit() for part in version.split(".")), (name, version)


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


def _printed_command(message: str) -> list[str]:
    """The command a step message tells the user to run (between backticks), as argv."""
    return shlex.split(message.split("`")[1])


def test_the_ncu_next_step_runs_as_printed(
    first_run: tuple[Path, AgentInputs, object], capsys: pytest.CaptureFixture[str]
) -> None:
    _work, _inputs, state = first_run
    argv = _printed_command(state.steps["ncu"].message)  # type: ignore[attr-defined]
    assert argv[:3] == ["infersight", "profile", "--ncu"] and "--" not in argv  # --app filled the plan in
    capsys.readouterr()
    assert run([*argv[1:], "--dry-run"]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out.splitlines()
    assert printed and all(line.startswith("ncu ") and line.endswith("python serve.py") for line in printed)


def test_the_ncu_next_step_without_app_takes_the_command_after_dashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = AgentInputs(traces=[str(shared_file("kineto/hta_alexnet_a100.json.gz"))], use_kb=False)
    state = run_agent(inputs, tmp_path / "run")
    printed = state.steps["ncu"].message.split("`")[1]
    assert printed.endswith(" -- <your inference command>")  # the user puts the command there
    argv = shlex.split(printed.replace("<your inference command>", "python serve.py"))
    capsys.readouterr()
    assert run([argv[1], "--dry-run", *argv[2:]]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip().endswith("python serve.py")


def test_serving_app_gets_a_benchmark_client_ab_plan(tmp_path: Path) -> None:
    inputs = AgentInputs(
        traces=[str(shared_file("kineto/hta_alexnet_a100.json.gz"))],
        use_kb=False,
        app_command="vllm serve Qwen/Qwen3-8B --tensor-parallel-size 2",
    )
    run_agent(inputs, tmp_path / "run")
    plan = json.loads((tmp_path / "run" / "ab_plan.json").read_text())
    assert plan and all(entry["engine"] == "vllm" for entry in plan)
    verify = shlex.split(plan[0]["verify"])
    baseline = shlex.split(verify[verify.index("--baseline") + 1])
    candidate = shlex.split(verify[verify.index("--candidate") + 1])
    assert (
        baseline[:3] == ["vllm", "bench", "serve"]
        and baseline[baseline.index("--model") + 1] == "Qwen/Qwen3-8B"
    )
    assert (
        baseline[baseline.index("--port") + 1] == "8000"
        and candidate[candidate.index("--port") + 1] == "8001"
    )
    assert plan[0]["start_candidate_server"].startswith(
        "vllm serve Qwen/Qwen3-8B --tensor-parallel-size 2 --port 8001"
    )


def test_the_ab_plan_template_is_refused_until_filled_in(
    first_run: tuple[Path, AgentInputs, object], capsys: pytest.CaptureFixture[str]
) -> None:
    work, _inputs, _state = first_run
    plan = json.loads((work / "run" / "ab_plan.json").read_text())
    argv = shlex.split(plan[0]["verify"])
    assert argv[:2] == ["infersight", "verify"]
    capsys.readouterr()
    assert run([*argv[1:], "--no-kb"]) == 2  # as printed: nothing runs, one line says what to fill in
    err = capsys.readouterr().err
    assert "replace the placeholder <with the change>" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ scenario read from the trace

VLLM_TP4 = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"


def _profiled(tmp_path: Path, trace: str, **inputs: object) -> tuple[object, object]:
    """The profile step alone (the theory part is all this checks), on one real trace."""
    from infersight.agent.workflow import AgentState, _Run

    agent_inputs = AgentInputs(traces=[str(shared_file(trace))], use_kb=False, **inputs)  # type: ignore[arg-type]
    state = AgentState(inputs=agent_inputs, workdir=str(tmp_path))
    step = _Run(agent_inputs, tmp_path, state)
    return step.profile(), step.report()


def test_model_without_scenario_reads_it_from_the_trace(tmp_path: Path) -> None:
    """The vLLM TP4 trace tells batch 1 and a 1,049-token prompt (its token-id copies): the agent
    uses that, not the batch-1 / prompt-512 assumption it falls back on."""
    (status, message, _files), report = _profiled(tmp_path, VLLM_TP4, model="llama-3.1-70b", tp=4)
    assert status == "done" and "assumed" not in message
    scenario = report.theory.estimate.scenario  # type: ignore[attr-defined]
    assert (scenario.batch, scenario.prompt_len) == (1, 1049)


def test_model_without_scenario_on_a_trace_that_cannot_tell_assumes_and_says_so(tmp_path: Path) -> None:
    (status, message, _files), report = _profiled(
        tmp_path, "kineto/hta_alexnet_a100.json.gz", model="llama-3-8b"
    )
    assert status == "done" and "assumed batch 1, prompt 512" in message
    scenario = report.theory.estimate.scenario  # type: ignore[attr-defined]
    assert (scenario.batch, scenario.prompt_len) == (1, 512)


def test_the_ncu_step_with_exports_writes_what_the_cli_writes(tmp_path: Path) -> None:
    """With ncu exports given, the loop's ncu step goes through ``api.ncu`` like ``infersight ncu``:
    same kernels, findings and device check (the AlexNet trace ran on an A100, the export on an
    RTX 5090), so ncu.json is the CLI's ``--json`` (no window or model here, so the same report)."""
    trace = str(shared_file("kineto/hta_alexnet_a100.json.gz"))
    export = str(shared_file("ncu/dsocr_decode_flash_fwd_splitkv_rtx5090.details.csv"))
    inputs = AgentInputs(traces=[trace], ncu=[export], use_kb=False)
    state = run_agent(inputs, tmp_path / "run")
    step = state.steps["ncu"]
    assert step.status == "done" and step.message.startswith("WARNING: ncu export") and "5090" in step.message
    written = json.loads((tmp_path / "run" / "ncu.json").read_text())
    assert run(["ncu", export, "--trace", trace, "--json", str(tmp_path / "cli.json")]) == 0
    assert written == json.loads((tmp_path / "cli.json").read_text())
    assert written["kernels"] and written["device_warnings"]
