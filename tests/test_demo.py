"""The README's first command: ``infersight analyze`` on the bundled real GPU demo trace.

The demo ships as package data, so it is found through the installed package, not the checkout.
"""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path

import pytest

from infersight.cli import run

GPU_DEMO = "data/demo/tracelens_qwen1.5-0.5b-chat_h100.json.gz"


def _demo() -> Path:
    return Path(str(resources.files("infersight").joinpath(GPU_DEMO)))


def test_gpu_demo_is_package_data_with_its_origin_note() -> None:
    demo = _demo()
    assert demo.is_file()
    note = resources.files("infersight").joinpath("data/demo/README.md").read_text(encoding="utf-8")
    assert demo.name in note and "AMD-AGI/TraceLens" in note and "MIT" in note
    with gzip.open(demo, "rt") as fh:
        doc = json.load(fh)
    kernels = [e for e in doc["traceEvents"] if e.get("ph") == "X" and e.get("cat") == "kernel"]
    assert len(kernels) == 1465
    assert doc["deviceProperties"][0]["name"] == "NVIDIA H100 80GB HBM3"


def test_readme_first_command_prints_a_gpu_diagnosis(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["analyze", str(_demo())]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0].startswith("infersight ")
    assert lines[1].startswith("Primary bottleneck: GPU compute")
    assert "NVIDIA H100 80GB HBM3" in out
    assert "--cpu-ops-as-kernels" not in out and "CPU operators" not in out
    assert "1,465" in out  # kernels read
