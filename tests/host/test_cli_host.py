"""`infersight host` end to end, and bad input giving one clear line (exit 2)."""

from __future__ import annotations

import json

import pytest
from tests.conftest import shared_file

from infersight.cli import run


def test_host_command_prints_verdict_and_writes_json(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = shared_file("nsys/tensorrt_conv_rtx3090.sqlite")
    out = tmp_path / "host.json"
    assert run(["host", str(path), "--host-prep-range", "ExecutionContext", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "host overhead bottleneck: NO" in text and "M3a" in text and "largest gaps" in text
    data = json.loads(out.read_text())
    assert data["verdict"] == "NO" and data["handoff"]["kind"] == "infersight.host"
    assert (
        data["scopes"][0]["metrics"][2]["id"] == "M3a"
        and data["scopes"][0]["metrics"][2]["value"] is not None
    )


def test_cpu_only_trace_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["host", str(shared_file("kineto/hta_cpu_only_no_gpu.json.gz"))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("infersight: error:") and "kernel" in err and len(err.strip().splitlines()) == 1


def test_trace_without_kernel_table_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["host", str(shared_file("nsys/gemm_rtx5060ti_no_kernel_table.sqlite"))]) == 2
    assert "infersight: error:" in capsys.readouterr().err


def test_bad_regex_and_bad_thresholds_file(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(shared_file("kineto/hta_triton_example_a100.json.gz"))
    assert run(["host", path, "--host-prep-range", "(unclosed"]) == 2
    assert "--host-prep-range" in capsys.readouterr().err
    bad = tmp_path / "t.toml"
    bad.write_text("[metric.M9]\nthreshold = 1\n")
    assert run(["host", path, "--thresholds", str(bad)]) == 2
    assert "unknown metric 'M9'" in capsys.readouterr().err


def test_user_thresholds_change_the_verdict(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(shared_file("nsys/tensorrt_conv_rtx3090.sqlite"))
    strict = tmp_path / "strict.toml"
    strict.write_text("[metric.M1]\nthreshold = 0.001\nsource = 'test'\n")
    assert run(["host", path, "--thresholds", str(strict)]) == 0
    assert "host overhead bottleneck: YES" in capsys.readouterr().out


def test_single_kernel_trace_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["host", str(shared_file("kineto/hta_triton_example_a100.json.gz"))]) == 0
    out = capsys.readouterr().out  # launch call longer than the kernel: M2 = 1.0 would be noise
    assert "host overhead bottleneck: N/A" in out and "only 1 kernel" in out


def test_malformed_phase_regex_is_input_error(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(shared_file("kineto/hta_triton_example_a100.json.gz"))
    assert run(["host", path, "--phase-regex", "prefill"]) == 2
    assert "context=REGEX" in capsys.readouterr().err
