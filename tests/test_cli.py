"""The CLI as users run it: figures printed, files written, errors as one line.

Most cases call the CLI in this process (:func:`run_cli`: the same ``cli.run`` the console
script exits with, standard streams captured); the ones about the process itself (the
``python -m infersight`` entry point, its exit code and stderr) spawn it (:func:`run_process`).
Expected figures are computed here independently from the raw trace (plain gzip/json), never
from infersight's own code.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT, plain_json_events, shared_file, shared_report

from infersight import __version__, api, cli
from infersight.analysis_report import AnalysisReport

VLLM_H100 = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
CPU_ONLY = "kineto/hta_cpu_only_no_gpu.json.gz"
NO_KERNEL_TABLE = "nsys/gemm_rtx5060ti_no_kernel_table.sqlite"
NSYS_H100X2 = "nsys/h100x2_llm_train_nsys2026.sqlite"
DEMO = REPO_ROOT / "src" / "infersight" / "data" / "demo" / "tiny_llama_cpu.pt.trace.json.gz"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_process(*args: str | Path) -> Result:
    """``python -m infersight ARGS`` in a child process with no TTY, as CI runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "infersight", *map(str, args)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def run_cli(*args: str | Path) -> Result:
    """``infersight ARGS`` in this process: the exit code ``main`` would exit with, and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.run([str(a) for a in args])
    return Result(code, out.getvalue(), err.getvalue())


def assert_one_line_error(result: Result, mentions: str) -> None:
    """Exit 2, exactly one stderr line naming the culprit, no traceback."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("infersight: error: ")
    assert mentions in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def idle_ratio_of(intervals: list[tuple[int, int]]) -> float:
    """1 - union(intervals) / (last end - first start): plain sweep over sorted intervals."""
    intervals = sorted(intervals)
    busy, cur_start, cur_end = 0, intervals[0][0], intervals[0][1]
    for start, end in intervals[1:]:
        if start > cur_end:
            busy += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    busy += cur_end - cur_start
    wall = max(e for _, e in intervals) - intervals[0][0]
    return 1.0 - busy / wall


@functools.cache
def independent_idle_ratio(path: Path) -> tuple[int, float]:
    """Kernel count and idle ratio of a Kineto trace, read with plain gzip/json (ns, like the model)."""
    events = plain_json_events(path)
    intervals = [
        (round(float(e["ts"]) * 1000), round(float(e["ts"]) * 1000) + round(float(e["dur"]) * 1000))
        for e in events
        if e.get("ph") == "X" and e.get("cat") == "kernel"
    ]
    return len(intervals), idle_ratio_of(intervals)


@pytest.fixture(scope="module")
def vllm_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path, Path]:
    out = tmp_path_factory.mktemp("vllm")
    json_out, md_out = out / "report.json", out / "report.md"
    result = run_cli("analyze", shared_file(VLLM_H100), "--json", json_out, "--md", md_out, "--top", "5")
    return result, json_out, md_out


def test_version() -> None:
    result = run_process("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"infersight {__version__}"


def test_analyze_prints_key_figures(vllm_run: tuple[Result, Path, Path]) -> None:
    result, _, _ = vllm_run
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no spinner without a TTY
    kernels, idle = independent_idle_ratio(shared_file(VLLM_H100))
    assert kernels == 13_508
    out = result.stdout
    assert "13,508" in out
    assert f"{100 * idle:.1f}%" in out
    assert f"{100 * (1 - idle):.1f}%" in out
    assert "NVIDIA H100 80GB HBM3" in out
    for section in ("Traces read", "Devices", "Operator categories", "Top 5 kernels", "Prefill vs decode"):
        assert section in out, section
    assert "Findings" in out


def test_json_report_validates_and_equals_api(vllm_run: tuple[Result, Path, Path]) -> None:
    result, json_out, _ = vllm_run
    assert result.returncode == 0, result.stderr
    text = json_out.read_text()
    report = AnalysisReport.model_validate_json(text)  # the schema is the pydantic model
    assert report.schema_version == "1.2"
    assert report.tool_version == __version__
    expected = shared_report(VLLM_H100)
    assert json.loads(text) == json.loads(expected.model_dump_json())
    kernels, idle = independent_idle_ratio(shared_file(VLLM_H100))
    assert sum(d.kernel_count for d in report.profile.devices) == kernels
    assert report.profile.total.idle_ratio == pytest.approx(idle, abs=1e-6)


def test_markdown_report_written(vllm_run: tuple[Result, Path, Path]) -> None:
    _, _, md_out = vllm_run
    md = md_out.read_text()
    assert md.startswith("# infersight report")
    assert "## Devices" in md and "13,508" in md


def test_export_writes_trace_model(tmp_path: Path) -> None:
    out = tmp_path / "trace.json"
    result = run_cli("export", shared_file(VLLM_H100), "-o", out)
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_bytes())
    assert document["schema"] == "infersight.trace"
    assert document["traces"][0]["tables"]["kernels"]["rows"] == 13_508


def test_nsys_two_gpus_per_device_figures(tmp_path: Path) -> None:
    path = shared_file(NSYS_H100X2)
    json_out = tmp_path / "r.json"
    result = run_cli("analyze", path, "--json", json_out)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute('SELECT deviceId, start, "end" FROM CUPTI_ACTIVITY_KIND_KERNEL').fetchall()
    per_device: dict[int, list[tuple[int, int]]] = {}
    for device, start, end in rows:
        per_device.setdefault(device, []).append((start, end))
    report = AnalysisReport.model_validate_json(json_out.read_text())
    assert sorted(d.device for d in report.profile.devices) == sorted(per_device) == [0, 1]
    for timeline in report.profile.devices:
        assert timeline.device is not None
        expected_idle = idle_ratio_of(per_device[timeline.device])
        assert timeline.kernel_count == len(per_device[timeline.device])
        assert timeline.idle_ratio == pytest.approx(expected_idle, abs=1e-9)
        assert f"{100 * expected_idle:.1f}%" in result.stdout
    assert "4,010" in result.stdout and "all devices" in result.stdout


@pytest.mark.skipif(not DEMO.exists(), reason="demo trace not captured yet")
def test_demo_trace_with_cpu_ops() -> None:
    result = run_cli("analyze", DEMO, "--cpu-ops-as-kernels")
    assert result.returncode == 0, result.stderr
    assert "CPU capture" in result.stdout
    assert result.stdout.index("CPU capture") < result.stdout.index("Traces read")


def test_two_rank_files_are_two_traces() -> None:
    folder = shared_file("kineto/hta_sampled_128ranks")
    result = run_cli("analyze", folder / "rank-0.json.gz", folder / "rank-1.json.gz", "--top", "3")
    assert result.returncode == 0, result.stderr
    assert "rank-0.json.gz" in result.stdout and "rank-1.json.gz" in result.stdout
    assert "1,154" in result.stdout and "1,104" in result.stdout  # INDEX.md kernel counts


# The error cases in this process (quick) and in a child process (slow: the exit code and stderr of
# `python -m infersight` itself; test_version checks that entry point in the quick run).
IN_PROCESS_AND_CHILD = pytest.mark.parametrize(
    "runner", [run_cli, pytest.param(run_process, marks=pytest.mark.slow)], ids=["in_process", "child"]
)


@IN_PROCESS_AND_CHILD
def test_missing_file(tmp_path: Path, runner: Callable[..., Result]) -> None:
    missing = tmp_path / "nope.json.gz"
    assert_one_line_error(runner("analyze", missing), str(missing))


def test_directory_without_traces(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("not a trace")
    assert_one_line_error(run_cli("analyze", tmp_path), str(tmp_path))


def test_truncated_gzip(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.json.gz"
    truncated.write_bytes(shared_file(VLLM_H100).read_bytes()[:4096])
    assert_one_line_error(run_cli("analyze", truncated), str(truncated))


def test_nsys_without_kernel_table() -> None:
    path = shared_file(NO_KERNEL_TABLE)
    assert_one_line_error(run_cli("analyze", path), path.name)


def test_cpu_only_kineto_without_flag() -> None:
    path = shared_file(CPU_ONLY)
    assert_one_line_error(run_cli("analyze", path), path.name)


def test_refuses_to_overwrite_input(tmp_path: Path) -> None:
    path = shared_file(VLLM_H100)
    before = path.stat().st_mtime_ns
    assert_one_line_error(run_cli("analyze", path, "--json", path), path.name)
    copy = tmp_path / "copy.json.gz"
    copy.write_bytes(path.read_bytes()[:10])  # content is irrelevant: refused before reading
    assert_one_line_error(run_cli("export", copy, "-o", copy), copy.name)
    assert copy.read_bytes() == path.read_bytes()[:10]
    assert path.stat().st_mtime_ns == before


def test_unwritable_output_and_bad_regex(tmp_path: Path) -> None:
    path = shared_file(CPU_ONLY)
    out = tmp_path / "missing-dir" / "r.json"
    assert_one_line_error(run_cli("analyze", path, "--json", out), str(out))
    assert_one_line_error(run_cli("analyze", path, "--window-nvtx", "(unclosed"), "--window-nvtx")


@IN_PROCESS_AND_CHILD
def test_usage_error_is_one_line(runner: Callable[..., Result]) -> None:
    assert_one_line_error(runner("analyze", "--no-such-option"), "--no-such-option")


def test_unexpected_error_is_one_line_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(api, "analyze", boom)
    monkeypatch.delenv("INFERSIGHT_DEBUG", raising=False)
    assert cli.run(["analyze", "whatever.json"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "kaboom" in err and "please report" in err
    assert "Traceback" not in err

    monkeypatch.setenv("INFERSIGHT_DEBUG", "1")
    assert cli.run(["analyze", "whatever.json"]) == 1
    assert "Traceback" in capsys.readouterr().err
