"""``infersight overlap`` and ``infersight ranks`` through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import shared_file

from infersight import cli


def test_overlap_prints_tables_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = shared_file("nsys/vecadd_t4_nsys2022.sqlite")
    out = tmp_path / "overlap.json"
    assert cli.run(["overlap", str(trace), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Copy/compute overlap" in printed and "PCIe Gen3 x16" in printed
    report = json.loads(out.read_text())
    (copies,) = report["copies"]
    assert {d["direction"] for d in copies["directions"]} == {"HtoD", "DtoH"}
    assert report["comm"][0]["na_reason"].startswith("no communication")


def test_ranks_on_a_directory(capsys: pytest.CaptureFixture[str]) -> None:
    folder = shared_file("kineto/hta_sampled_128ranks")
    assert cli.run(["ranks", str(folder)]) == 0
    printed = capsys.readouterr().out
    assert "Ranks" in printed and "126 of 128 ranks have no trace" in printed


def test_ranks_needs_two_ranks(capsys: pytest.CaptureFixture[str]) -> None:
    trace = shared_file("nsys/vecadd_t4_nsys2022.sqlite")
    assert cli.run(["ranks", str(trace)]) == 2
    assert "at least two ranks" in capsys.readouterr().err


def test_bad_regex_is_an_input_error(capsys: pytest.CaptureFixture[str]) -> None:
    trace = shared_file("nsys/vecadd_t4_nsys2022.sqlite")
    assert cli.run(["overlap", str(trace), "--per-range", "("]) == 2
    assert "--per-range" in capsys.readouterr().err
    assert cli.run(["overlap", str(trace), "--per-range", "layer"]) == 2
    assert "matches no NVTX" in capsys.readouterr().err
