"""``infersight layers`` end to end (text, compute-flow, JSON, errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT, shared_file

from infersight.cli import run

DEMO = REPO_ROOT / "src" / "infersight" / "data" / "demo" / "tiny_llama_cpu.pt.trace.json.gz"
SGLANG = "kineto/tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz"


def _sglang() -> list[str]:
    return [str(shared_file(SGLANG)), "--config", str(shared_file("configs/qwen3-8b.config.json"))]


def test_text_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["layers", *_sglang()]) == 0
    out = capsys.readouterr().out
    assert "layers of pass 0" in out and "layer types" in out and "verdict:" in out
    assert "ck_tile::FmhaBatchPrefillWithPagedKVCacheKernel" in out  # the anchor is explained


def test_json_and_compute_flow(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "layers.json"
    assert (
        run(
            [
                "layers",
                *_sglang(),
                "--format",
                "json",
                "--layer",
                "3",
                "--compare-layer",
                "4",
                "--json",
                str(out_file),
            ]
        )
        == 0
    )
    document = json.loads(capsys.readouterr().out)
    assert document == json.loads(out_file.read_text())
    assert len(document["layers"]) == 36 and document["flow"]["layer"] == 3
    assert document["diff"]["layer_b"] == 4
    assert (
        run(["layers", *_sglang(), "--format", "compute-flow", "--layer", "3", "--compare-layer", "4"]) == 0
    )
    out = capsys.readouterr().out
    assert "compute flow of layer 3" in out and "layer 3 vs layer 4" in out


def test_cpu_demo_all_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["layers", str(DEMO), "--cpu-ops-as-kernels", "--num-layers", "4", "--show-all-passes"]) == 0
    out = capsys.readouterr().out
    assert "forward passes" in out and out.count("steady-state") >= 10


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--anchor-kernel", "("], "invalid regular expression"),
        (["--profile", "nope"], "unknown model profile"),
        (["--fwd-pass", "5"], "--fwd-pass 5"),
        (["--model", "qwen3-8b"], "not both"),
        (["--layer", "99"], "layer 99"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert run(["layers", *_sglang(), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
