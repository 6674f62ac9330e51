"""Numbered stages on a terminal for long commands (issue 18 item 4); silent when stderr is not a terminal."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from infersight.commands._io import Stages, input_size


def test_stages_print_each_step_on_a_terminal() -> None:
    out = io.StringIO()
    stages = Stages(2, console=Console(file=out, force_terminal=True, width=100))
    assert stages.run("reading 1 trace(s), 2.9 MB", lambda: 41) == 41
    assert stages.run("analysing", lambda: "done") == "done"
    text = out.getvalue()
    assert "✓ [1/2] reading 1 trace(s), 2.9 MB" in text and "✓ [2/2] analysing" in text


def test_stages_silent_when_not_a_terminal(capsys: object) -> None:
    stages = Stages(1)
    stages.active = False  # what a pipe or a CI log gets
    assert stages.run("reading", lambda: 7) == 7
    assert capsys.readouterr().err == ""  # type: ignore[attr-defined]


def test_input_size(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b"x" * 1500)
    folder = tmp_path / "ranks"
    folder.mkdir()
    (folder / "r0.json").write_bytes(b"x" * 2_000_000)
    assert input_size([tmp_path / "a.json"]) == "1.5 KB"
    assert input_size([tmp_path / "a.json", folder]) == "2.0 MB"
    assert input_size([tmp_path / "missing"]) == "0 B"
