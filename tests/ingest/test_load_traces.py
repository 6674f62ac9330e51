"""The format dispatcher: directories of per-rank files, non-trace files, unknown formats."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.conftest import shared_file

from infersight.errors import InputError
from infersight.ingest import load_traces


def test_directory_skips_our_own_json_outputs(tmp_path: Path) -> None:
    source = shared_file("kineto/hta_sampled_128ranks")
    for trace in sorted(source.iterdir()):
        shutil.copy(trace, tmp_path / trace.name)
    (tmp_path / "report.json").write_text('{"schema_version": "1.0", "profile": {}}')
    traces = load_traces(tmp_path)
    assert [t.rank for t in traces] == [0, 1]
    assert [len(t.kernels) for t in traces] == [1154, 1104]


def test_directory_without_traces_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "report.json").write_text('{"profile": {}}')
    with pytest.raises(InputError, match="directory holds no traces") as err:
        load_traces(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_unrecognised_file_names_the_formats(tmp_path: Path) -> None:
    bogus = tmp_path / "trace.bin"
    bogus.write_bytes(b"\x00\x01binary")
    with pytest.raises(InputError, match="not a recognised trace"):
        load_traces(bogus)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_traces(tmp_path / "absent.json")
