"""A malformed model config is refused before any trace is read.

Reading a large trace takes seconds to minutes; a typo in ``config.json`` must not cost that
read before its one-line error. Each command that takes both is run with a broken config and a
trace loader that fails the test if it is reached.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import shared_file

from infersight.api import _core
from infersight.cli import run

ALEXNET = "kineto/hta_alexnet_a100.json.gz"
QWEN3_8B = "configs/Qwen--Qwen3-8B_config.json"
SCENARIO = ["--gpu", "H100-SXM", "--batch", "1", "--prompt", "16"]


@pytest.mark.parametrize("command", ["analyze", "report", "ncu-plan"])
def test_a_broken_config_fails_before_the_trace_is_read(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(shared_file(QWEN3_8B).read_text(encoding="utf-8"))
    document["num_hidden_layers"] = "many"
    config = tmp_path / "config.json"
    config.write_text(json.dumps(document), encoding="utf-8")

    def no_read(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the trace was read before the config was checked")

    monkeypatch.setattr(_core, "load", no_read)
    extra = ["-o", str(tmp_path / "r.html")] if command == "report" else []
    code = run([command, str(shared_file(ALEXNET)), "--config", str(config), *SCENARIO, *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "config.json" in err[0] and "num_hidden_layers" in err[0]
