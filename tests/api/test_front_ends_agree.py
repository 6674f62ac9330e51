"""The CLI's ``--json`` and the MCP tool give the same JSON for the same input.

Both are adapters over :mod:`infersight.api`; this is the test that they stay adapters (a front
end that computed, or defaulted, on its own would show here as a difference).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import shared_file

from infersight.agent import tools
from infersight.cli import run

ALEXNET = "kineto/hta_alexnet_a100.json.gz"
NCU_CSV = "ncu/dsocr_decode_flash_fwd_splitkv_rtx5090.details.csv"


def _cli_json(tmp_path: Path, *argv: str) -> Any:
    out = tmp_path / "out.json"
    code = run([*argv, "--json", str(out)])
    assert code == 0
    return json.loads(out.read_text(encoding="utf-8"))


def test_analyze_agrees(tmp_path: Path) -> None:
    trace = str(shared_file(ALEXNET))
    cli = _cli_json(tmp_path, "analyze", trace, "--top", "1000", "--executor", "local")
    mcp = tools.TOOLS["analyze"](traces=[trace], top=1000, executor="local")
    assert "truncated" not in mcp  # 79 kernels < top: the whole table on both sides
    assert mcp == cli
    assert cli["profile"]["total"]["kernel_count"] == 79  # INDEX.md: AlexNet step, 79 kernels


def test_host_agrees(tmp_path: Path) -> None:
    trace = str(shared_file(ALEXNET))
    assert tools.TOOLS["host"](traces=[trace]) == _cli_json(tmp_path, "host", trace)


def test_roofline_agrees_and_needs_the_scenario_everywhere(tmp_path: Path) -> None:
    args = {"model": "llama-3.1-8b", "gpu": "H100-SXM", "batch": 4, "prompt": 256, "tp": 1}
    cli = _cli_json(tmp_path, "roofline", *[f"--{k}={v}" for k, v in args.items()])
    assert tools.TOOLS["roofline"](**args) == cli
    assert cli["estimate"]["scenario"]["prompt_len"] == 256
    # neither front end invents a scenario: both refuse a missing --batch
    assert run(["roofline", "--model", "llama-3.1-8b", "--prompt", "256"]) == 2
    from infersight.errors import InputError

    with pytest.raises(InputError, match="batch"):
        tools.TOOLS["roofline"](model="llama-3.1-8b", prompt=256)


def test_ncu_agrees(tmp_path: Path) -> None:
    export = str(shared_file(NCU_CSV))
    trace = str(shared_file(ALEXNET))
    cli = _cli_json(tmp_path, "ncu", export, "--trace", trace)
    mcp = tools.TOOLS["ncu"](exports=[export], traces=[trace])
    assert mcp == cli
    # the trace ran on an A100, the export on an RTX 5090: both front ends flag it
    assert cli["device_warnings"] and "5090" in cli["device_warnings"][0]
