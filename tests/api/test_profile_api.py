"""``api.profile``: the capture commands of ``infersight profile``, run in order, as a typed result.

The CLI is an adapter over it (same command lines printed, same errors); the command is CLI-only,
not an MCP tool (it runs the caller's command with this process's standard streams).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from infersight import api
from infersight.advisor.profiling import CaptureCommand, run_captures
from infersight.agent import tools
from infersight.cli import run
from infersight.errors import InputError


class _Heard:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, int | None]] = []

    def starting(self, capture: CaptureCommand) -> None:
        self.events.append(("starting", capture.argv[-1], None))

    def finished(self, capture: CaptureCommand, status: int) -> None:
        self.events.append(("finished", capture.argv[-1], status))


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_dry_run_gives_the_nsys_command_without_nsys_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # a dry run checks no tool
    heard = _Heard()
    result = api.profile(
        tool="nsys", command=["python", "serve.py"], output=tmp_path / "run", duration=30, dry_run=True,
        progress=heard,
    )  # fmt: skip
    (only,) = result.runs
    assert only.exit_status is None and result.exit_status == 0 and result.dry_run
    assert only.capture.argv[:2] == ["nsys", "profile"] and only.capture.argv[-2:] == ["python", "serve.py"]
    assert "--duration=30" in only.capture.argv and f"--output={tmp_path / 'run'}" in only.capture.argv
    assert heard.events == [("starting", "serve.py", None)]


def test_torch_capture_runs_with_the_profiler_dirs_set(tmp_path: Path) -> None:
    out, seen = tmp_path / "torch" / "traces", tmp_path / "seen.txt"
    script = "import os, sys; open(sys.argv[1], 'w').write(os.environ['VLLM_TORCH_PROFILER_DIR'])"
    result = api.profile(api.ProfileRequest(tool="torch", command=[*_python(script), str(seen)], output=out))
    assert [r.exit_status for r in result.runs] == [0] and result.exit_status == 0
    assert out.is_dir() and seen.read_text() == str(out)  # the directory is made before the run


def test_the_first_failing_capture_stops_the_rest(tmp_path: Path) -> None:
    first = CaptureCommand(argv=_python("raise SystemExit(3)"), produces="-", tool="ncu")
    second = CaptureCommand(argv=_python("open('x', 'w')"), produces="x", tool="ncu")
    heard = _Heard()
    result = run_captures([first, second], "ncu", progress=heard)
    assert [r.exit_status for r in result.runs] == [3, None] and result.exit_status == 3
    assert [e[0] for e in heard.events] == ["starting", "finished"] and heard.events[1][2] == 3


def test_refused_requests(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nsys options"):
        api.profile(tool="torch", command=["python"], delay=5, dry_run=True)
    with pytest.raises(InputError, match="--ncu needs --plan"):
        api.profile(tool="ncu", command=["python"], dry_run=True)
    with pytest.raises(InputError, match="--tool"):
        api.profile(tool="perf", command=["python"], dry_run=True)
    with pytest.raises(InputError, match="no command to profile"):
        api.profile(tool="nsys", dry_run=True)
    plan = tmp_path / "plan.json"
    plan.write_text('{"kernels": [{"name": "k"}]}')
    with pytest.raises(InputError, match="not an ncu-plan JSON"):
        api.profile(tool="ncu", plan=plan, command=["python"], dry_run=True)


def test_the_cli_prints_what_the_api_gives(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.json"
    lines = [f"ncu --kernel-name regex:^k{i}$ --log-file k{i}.csv <your inference command>" for i in (1, 2)]
    plan.write_text(json.dumps({"kernels": [{"command": line} for line in lines]}))
    result = api.profile(tool="ncu", plan=plan, command=["python", "serve.py"], dry_run=True)
    assert len(result.runs) == 2
    assert run(["profile", "--ncu", "--plan", str(plan), "--dry-run", "--", "python", "serve.py"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [r.capture.shell() for r in result.runs]
    assert run(["profile", "--nsys", "--ncu", "--dry-run", "--", "python"]) == 2
    assert "choose exactly one of --nsys, --torch, --ncu" in capsys.readouterr().err


def test_the_cli_exits_with_the_failing_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["profile", "--torch", "-o", str(tmp_path / "t"), "--", *_python("raise SystemExit(5)")])
    assert code == 5
    assert "infersight: torch exited 5" in capsys.readouterr().err


def test_profile_is_registered_but_not_an_mcp_tool() -> None:
    """On the API registry (its request model generated like the others) but CLI-only; its docstring
    says why (stdio shared with the MCP transport, no time limit, any command)."""
    command = api.COMMANDS["profile"]
    assert command.request is api.ProfileRequest and not command.mcp
    assert "profile" not in tools.TOOLS and "MCP" in (api.profile.__doc__ or "")
    assert {p.name for p in command.parameters()} == set(api.ProfileRequest.model_fields)
