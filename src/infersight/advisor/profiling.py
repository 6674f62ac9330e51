"""Profiling wrappers: the right capture command for nsys, the torch profiler and ncu, or a clear error.

* nsys: ``nsys profile --trace=cuda,nvtx,osrt --cuda-graph-trace=node --export=sqlite`` — CUDA API
  + kernels, NVTX ranges (engine step annotations), OS runtime (host stalls), kernels inside
  CUDA graphs traced per node (otherwise a graph is one opaque launch), and the SQLite export
  infersight reads; ``--trace-fork-before-exec=true`` so forked engine workers (TP ranks,
  vLLM/SGLang schedulers) are traced too. A server runs for hours: limit the capture to the
  steady state with ``--capture-range=cudaProfilerApi`` (the engine's profiler start/stop
  endpoints call cudaProfilerStart/Stop) or ``--delay``/``--duration`` seconds.
* torch: vLLM and SGLang start the PyTorch profiler when ``VLLM_TORCH_PROFILER_DIR`` /
  ``SGLANG_TORCH_PROFILER_DIR`` point at a directory; the wrapper sets both and runs the command.
* ncu: ``--target-processes all`` (TP workers are child processes), then the commands of an
  ``infersight ncu-plan`` (Top-K focus kernels), with the user's command
  (after ``--``) in place of the plan's placeholder — or, for a plan written with the command
  already in it (``ncu-plan --app``, the agent's ``--app``), the plan's lines as they are.

:func:`profile_captures` picks the capture(s) of one request and :func:`run_captures` runs them in
order, stopping at the first that fails; ``infersight.api.profile`` is both in one call.
Domain code below the API (like the A/B runs of :mod:`infersight.advisor.verify`): the CLI and
the agent workflow call it through the API.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from infersight.errors import InputError

__all__ = [
    "NO_CAPTURE_PROGRESS",
    "NSYS_FLAGS",
    "PROFILERS",
    "TORCH_PROFILER_ENV",
    "CaptureCommand",
    "CaptureProgress",
    "CaptureRun",
    "ProfileResult",
    "ncu_commands",
    "nsys_command",
    "plan_commands",
    "profile_captures",
    "run_capture",
    "run_captures",
    "torch_command",
]

NSYS_FLAGS = (
    "--trace=cuda,nvtx,osrt",
    "--cuda-graph-trace=node",
    "--export=sqlite",
    "--force-overwrite=false",
    "--trace-fork-before-exec=true",
)
CAPTURE_RANGES = ("none", "cudaProfilerApi")
TORCH_PROFILER_ENV = ("VLLM_TORCH_PROFILER_DIR", "SGLANG_TORCH_PROFILER_DIR")
PLAN_PLACEHOLDER = "<your inference command>"
Profiler = Literal["nsys", "torch", "ncu"]
PROFILERS: tuple[Profiler, ...] = ("nsys", "torch", "ncu")


class CaptureCommand(BaseModel):
    """One command to run, with extra environment, and what it will produce."""

    argv: list[str]
    env: dict[str, str] = Field(default_factory=dict)
    produces: str
    tool: str

    def shell(self) -> str:
        """The command as one copy-pasteable shell line."""
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return (prefix + " " if prefix else "") + shlex.join(self.argv)


def _require(tool: str, hint: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise InputError(None, f"{tool} not found on PATH: {hint}")
    return found


def _check_command(command: Sequence[str]) -> None:
    if not command:
        raise InputError(
            None, "no command to profile: put it after --, e.g. infersight profile --nsys -- python serve.py"
        )


def _capture_flags(capture_range: str | None, delay_s: float | None, duration_s: float | None) -> list[str]:
    """nsys flags that limit the capture to a range (engine profiler calls) or a time window."""
    flags = []
    if capture_range not in (None, "none"):
        if capture_range not in CAPTURE_RANGES:
            raise InputError(None, f"--capture-range must be one of {', '.join(CAPTURE_RANGES)}")
        flags += [f"--capture-range={capture_range}", "--capture-range-end=stop"]
    for option, value in (("delay", delay_s), ("duration", duration_s)):
        if value is not None:
            if value <= 0:
                raise InputError(None, f"--{option} must be > 0 seconds")
            flags.append(f"--{option}={value:g}")
    return flags


def nsys_command(
    command: Sequence[str],
    output: Path,
    *,
    check_tool: bool = True,
    capture_range: str | None = None,
    delay_s: float | None = None,
    duration_s: float | None = None,
) -> CaptureCommand:
    """``nsys profile`` with the flags infersight needs; writes OUTPUT.nsys-rep and OUTPUT.sqlite."""
    _check_command(command)
    limits = _capture_flags(capture_range, delay_s, duration_s)
    nsys = (
        _require(
            "nsys", "install Nsight Systems (https://developer.nvidia.com/nsight-systems) or add it to PATH"
        )
        if check_tool
        else "nsys"
    )
    argv = [nsys, "profile", *NSYS_FLAGS, *limits, f"--output={output}", *command]
    return CaptureCommand(argv=argv, produces=f"{output}.nsys-rep and {output}.sqlite", tool="nsys")


def torch_command(command: Sequence[str], output_dir: Path) -> CaptureCommand:
    """Run ``command`` with the vLLM/SGLang torch-profiler directories set to ``output_dir``."""
    _check_command(command)
    env = {name: str(output_dir) for name in TORCH_PROFILER_ENV}
    return CaptureCommand(
        argv=list(command),
        env=env,
        produces=f"Kineto traces (*.pt.trace.json.gz) under {output_dir} once the engine's profiler is "
        "started "
        "(vLLM: POST /start_profile and /stop_profile; SGLang: /start_profile)",
        tool="torch",
    )


def ncu_commands(
    plan_commands: Sequence[str], command: Sequence[str], *, check_tool: bool = True
) -> list[CaptureCommand]:
    """The plan's ncu command lines, the placeholder replaced by ``command`` (module docstring)."""
    filled = [line for line in plan_commands if PLAN_PLACEHOLDER not in line]
    if command and filled:
        raise InputError(
            None,
            "the plan already holds the inference command; run it without a command after -- "
            f"(or write the plan without --app): {filled[0][:120]}",
        )
    if not command and len(filled) != len(plan_commands):
        raise InputError(
            None, f"the plan has the {PLAN_PLACEHOLDER!r} placeholder: put your command after --"
        )
    if not plan_commands:
        raise InputError(None, "the plan has no ncu command")
    if check_tool:
        _require(
            "ncu", "install Nsight Compute (https://developer.nvidia.com/nsight-compute) or add it to PATH"
        )
    out = []
    app = shlex.join(command)
    for line in plan_commands:
        argv = shlex.split(line.replace(PLAN_PLACEHOLDER, app))
        if argv and Path(argv[0]).name == "ncu" and "--target-processes" not in argv:
            argv[1:1] = ["--target-processes", "all"]  # TP workers are child processes of the command
        if "--log-file" in argv:
            produces = argv[argv.index("--log-file") + 1]
        elif "-o" in argv:
            produces = argv[argv.index("-o") + 1] + ".ncu-rep"
        else:
            produces = "ncu output on stdout"
        out.append(CaptureCommand(argv=argv, produces=produces, tool="ncu"))
    return out


def run_capture(capture: CaptureCommand, *, base_env: Mapping[str, str] | None = None) -> int:
    """Run one capture command (inheriting stdio) and return its exit status."""
    env = {**(base_env if base_env is not None else os.environ), **capture.env}
    try:
        return subprocess.run(capture.argv, env=env, check=False).returncode
    except FileNotFoundError:
        raise InputError(None, f"command not found: {capture.argv[0]}") from None


def plan_commands(path: Path) -> list[str]:
    """The ncu command lines of an ``ncu-plan --json`` file (``kernels[].command``)."""
    import orjson

    from infersight.safe_io import MAX_REPORT_BYTES, read_bounded_bytes

    raw = read_bounded_bytes(path, MAX_REPORT_BYTES, "ncu plan")
    try:
        data = orjson.loads(raw)
        return [str(k["command"]) for k in data["kernels"]]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise InputError(path, "not an ncu-plan JSON (expected kernels[].command)") from None


def profile_captures(
    tool: Profiler,
    command: Sequence[str],
    output: Path,
    *,
    plan: Path | None = None,
    capture_range: str | None = None,
    delay_s: float | None = None,
    duration_s: float | None = None,
    check_tool: bool = True,
) -> list[CaptureCommand]:
    """The capture command(s) of one profiling request: one for nsys and torch, one per plan line for ncu.

    The nsys-only limits (capture range, delay, duration) are refused with another profiler rather
    than dropped: a user who asked for a 30 s window must not get an unbounded capture.
    """
    if tool != "nsys" and (capture_range or delay_s or duration_s):
        raise InputError(None, "--capture-range, --delay and --duration are nsys options: add --nsys")
    if tool == "nsys":
        capture = nsys_command(
            command,
            output,
            check_tool=check_tool,
            capture_range=capture_range,
            delay_s=delay_s,
            duration_s=duration_s,
        )
        return [capture]
    if tool == "torch":
        return [torch_command(command, output)]
    if plan is None:
        raise InputError(
            None, "--ncu needs --plan PLAN.json (from `infersight ncu-plan TRACE --json PLAN.json`)"
        )
    return ncu_commands(plan_commands(plan), command, check_tool=check_tool)


class CaptureRun(BaseModel):
    """One capture command and how it ended."""

    capture: CaptureCommand
    exit_status: int | None = Field(
        default=None, description="exit status; None when not run (a dry run, or an earlier capture failed)"
    )


class ProfileResult(BaseModel):
    """What ``infersight profile`` did: the capture commands, in order, and their exit statuses."""

    tool: Profiler
    dry_run: bool
    runs: list[CaptureRun]

    @property
    def exit_status(self) -> int:
        """The first non-zero exit status of the captures run, 0 when all succeeded (or none ran)."""
        return next((r.exit_status for r in self.runs if r.exit_status), 0)


class CaptureProgress(Protocol):
    """Hears each capture as it starts and ends (the CLI prints the command line and what it produced)."""

    def starting(self, capture: CaptureCommand) -> None:
        """The capture is about to run (or, in a dry run, would)."""

    def finished(self, capture: CaptureCommand, status: int) -> None:
        """The capture ran and exited with ``status``."""


class _NoCaptureProgress:
    def starting(self, capture: CaptureCommand) -> None:
        """Nothing to report to."""

    def finished(self, capture: CaptureCommand, status: int) -> None:
        """Nothing to report to."""


NO_CAPTURE_PROGRESS: CaptureProgress = _NoCaptureProgress()


def run_captures(
    captures: Sequence[CaptureCommand],
    tool: Profiler,
    *,
    dry_run: bool = False,
    progress: CaptureProgress = NO_CAPTURE_PROGRESS,
    base_env: Mapping[str, str] | None = None,
) -> ProfileResult:
    """Run the captures in order (none in a dry run); the first that fails stops the rest.

    The torch profiler's output directory is made first: the engine writes its traces there and
    would fail (or silently write nothing) without it.
    """
    runs: list[CaptureRun] = []
    failed = False
    for capture in captures:
        if failed:
            runs.append(CaptureRun(capture=capture))
            continue
        progress.starting(capture)
        if dry_run:
            runs.append(CaptureRun(capture=capture))
            continue
        if capture.tool == "torch":
            Path(capture.env[TORCH_PROFILER_ENV[0]]).mkdir(parents=True, exist_ok=True)
        status = run_capture(capture, base_env=base_env)
        progress.finished(capture, status)
        runs.append(CaptureRun(capture=capture, exit_status=status))
        failed = status != 0
    return ProfileResult(tool=tool, dry_run=dry_run, runs=runs)
