"""Per-rank files of a directory read in worker processes give the same traces as a serial read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.conftest import assert_tables_equal, shared_file

from infersight.errors import InputError
from infersight.ingest import load_traces
from infersight.ingest.parallel import WORKERS_ENV, worker_count

RANKS = "kineto/hta_sampled_128ranks"


def test_parallel_read_equals_serial_read(monkeypatch: pytest.MonkeyPatch) -> None:
    folder = shared_file(RANKS)
    monkeypatch.setenv(WORKERS_ENV, "1")
    serial = load_traces(folder)
    monkeypatch.setenv(WORKERS_ENV, "2")
    parallel = load_traces(folder)
    assert [t.source for t in parallel] == [t.source for t in serial]
    for a, b in zip(serial, parallel, strict=True):
        assert a.notes == b.notes and a.rank == b.rank
        for table in ("kernels", "memcpy", "memset", "api", "ranges"):
            assert_tables_equal(a.table(table), b.table(table))


def test_parallel_read_reports_the_bad_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copyfile(shared_file(f"{RANKS}/rank-0.json.gz"), tmp_path / "rank-0.json.gz")
    (tmp_path / "rank-1.json").write_bytes(b'{"traceEvents": [{"ph": "X", "cat": "kernel"')
    monkeypatch.setenv(WORKERS_ENV, "2")
    with pytest.raises(InputError, match=r"rank-1\.json"):
        load_traces(tmp_path)


def test_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKERS_ENV, "8")
    assert worker_count(3) == 3 and worker_count(20) == 8
    monkeypatch.setenv(WORKERS_ENV, "0")
    assert worker_count(5) == 1
    monkeypatch.setenv(WORKERS_ENV, "lots")
    with pytest.raises(InputError, match=WORKERS_ENV):
        worker_count(5)


def test_parallel_read_while_another_thread_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a second thread alive (the CLI spinner) workers come from a fork server: same traces."""
    import threading

    stop = threading.Event()
    spinner = threading.Thread(target=stop.wait, daemon=True)
    spinner.start()
    try:
        monkeypatch.setenv(WORKERS_ENV, "2")
        traces = load_traces(shared_file(RANKS))
    finally:
        stop.set()
        spinner.join()
    monkeypatch.setenv(WORKERS_ENV, "1")
    for a, b in zip(load_traces(shared_file(RANKS)), traces, strict=True):
        assert_tables_equal(a.kernels, b.kernels)
