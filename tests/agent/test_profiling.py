"""Profiling wrappers: the flags infersight needs, the torch env, and clear errors without the tools."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from infersight.advisor.profiling import NSYS_FLAGS, ncu_commands, nsys_command
from infersight.cli import run
from infersight.errors import InputError


def test_nsys_command_flags(tmp_path: Path) -> None:
    capture = nsys_command(["python", "serve.py"], tmp_path / "run", check_tool=False)
    assert capture.argv[:2] == ["nsys", "profile"]
    for flag in ("--trace=cuda,nvtx,osrt", "--cuda-graph-trace=node", "--export=sqlite"):
        assert flag in capture.argv and flag in NSYS_FLAGS
    assert capture.argv[-2:] == ["python", "serve.py"]


def test_missing_tools_are_input_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(InputError, match="nsys not found on PATH"):
        nsys_command(["python"], Path("x"))
    with pytest.raises(InputError, match="ncu not found on PATH"):
        ncu_commands(["ncu -o a <your inference command>"], ["python"])
    assert run(["profile", "--nsys", "--", "python", "x.py"]) == 2
    assert "nsys not found" in capsys.readouterr().err
    assert run(["profile", "--nsys", "--torch", "--", "python"]) == 2


def test_torch_wrapper_sets_profiler_dirs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "torch"
    seen = tmp_path / "seen.txt"
    script = (
        "import os, sys; open(sys.argv[1], 'w').write("
        "os.environ['VLLM_TORCH_PROFILER_DIR'] + '|' + os.environ['SGLANG_TORCH_PROFILER_DIR'])"
    )
    code = run(["profile", "--torch", "-o", str(out), "--", sys.executable, "-c", script, str(seen)])
    assert code == 0
    assert out.is_dir() and seen.read_text() == f"{out}|{out}"


def test_ncu_plan_commands_take_the_user_command() -> None:
    plan = ["ncu --kernel-name regex:^k$ --launch-count 1 --log-file f.csv <your inference command>"]
    (capture,) = ncu_commands(plan, ["python", "serve.py", "--tp", "2"], check_tool=False)
    assert capture.argv[-4:] == ["python", "serve.py", "--tp", "2"]
    assert capture.produces == "f.csv"
    assert shlex.split(capture.shell()) == capture.argv


def test_ncu_plan_with_the_command_filled_in_runs_as_it_is() -> None:
    plan = ["ncu --kernel-name regex:^k$ --launch-count 1 --log-file f.csv python serve.py --tp 2"]
    (capture,) = ncu_commands(plan, [], check_tool=False)
    assert capture.argv[-4:] == ["python", "serve.py", "--tp", "2"]
    with pytest.raises(InputError, match="already holds the inference command"):
        ncu_commands(plan, ["python", "other.py"], check_tool=False)
    with pytest.raises(InputError, match="put your command after --"):
        ncu_commands(["ncu -o a <your inference command>"], [], check_tool=False)
