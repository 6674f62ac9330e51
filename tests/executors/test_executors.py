"""Per-rank reads on every executor — serial, local processes, a real Dask cluster — agree exactly.

The Dask tests start a two-worker ``distributed.LocalCluster`` (separate processes) and join it by
address, so the join path, the pickling of Traces back from workers, and error transport are all
exercised for real. The merged profile of the loaded ranks must be identical, field for field, to
the one built from a serial in-process read.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from tests.conftest import assert_tables_equal, shared_file

from infersight import api
from infersight.analyses.profile import build_global_profile
from infersight.cli import run
from infersight.errors import InputError
from infersight.executors import open_executor
from infersight.executors.processes import WORKERS_ENV
from infersight.ingest import load_traces
from infersight.ingest.checks import clock_offset_notes
from infersight.model import Trace

TWO_RANKS = "kineto/hta_sampled_128ranks"
VLLM_RANK0 = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
TABLES = ("kernels", "memcpy", "memset", "api", "ranges")


def _square(value: int) -> int:
    return value * value


def _pid(_: int) -> int:
    return os.getpid()


def _require_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("dask[distributed] missing in CI: the test extra must install it")
        pytest.skip("dask[distributed] not installed (pip install 'infersight[dask]')")


@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    """A real two-process local Dask cluster for the whole module; yields its scheduler address."""
    _require_dask()
    import logging

    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
    )
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def eight_ranks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight copies of the real vLLM rank-0 trace with ``distributedInfo.rank`` = 0..7."""
    source = shared_file(VLLM_RANK0)
    with gzip.open(source, "rb") as fh:
        document = orjson.loads(fh.read())
    folder = tmp_path_factory.mktemp("ranks8")
    for rank in range(8):
        info = dict(document.get("distributedInfo") or {})
        info.update(rank=rank, world_size=8)
        document["distributedInfo"] = info
        with gzip.open(folder / f"rank-{rank}.pt.trace.json.gz", "wb", compresslevel=1) as fh:
            fh.write(orjson.dumps(document))
    return folder


def _assert_same_traces(expected: list[Trace], actual: list[Trace]) -> None:
    assert [t.source for t in actual] == [t.source for t in expected]
    for a, b in zip(expected, actual, strict=True):
        assert (a.rank, a.notes, a.gpus) == (b.rank, b.notes, b.gpus)
        for table in TABLES:
            assert_tables_equal(a.table(table), b.table(table))


def _assert_same_profile(expected: list[Trace], actual: list[Trace]) -> None:
    """The merged global profile (every figure of the report) is byte-identical as JSON."""
    assert build_global_profile(actual).model_dump_json() == build_global_profile(expected).model_dump_json()


@pytest.mark.slow
def test_every_executor_maps_in_item_order(dask_address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKERS_ENV, "2")
    items = list(range(7))
    for name, address in (("local", None), ("process", None), ("dask", dask_address)):
        with open_executor(name, address) as executor:
            assert executor.map(_square, items) == [i * i for i in items], name
            assert executor.map(_square, []) == []


@pytest.mark.slow
def test_dask_tasks_run_outside_this_process(dask_address: str) -> None:
    with open_executor("dask", dask_address) as executor:
        pids = executor.map(_pid, list(range(4)))
    assert os.getpid() not in pids


@pytest.mark.slow
def test_two_rank_folder_on_dask_equals_serial(dask_address: str) -> None:
    folder = shared_file(TWO_RANKS)
    serial = api.load([folder], executor="local")
    on_dask = api.load([folder], executor="dask", executor_address=dask_address)
    assert [t.rank for t in on_dask] == [0, 1]
    _assert_same_traces(serial, on_dask)
    _assert_same_profile(serial, on_dask)


@pytest.mark.slow
def test_eight_rank_folder_on_dask_equals_the_in_process_read(eight_ranks: Path, dask_address: str) -> None:
    """The copies differ only in rank, so the expected traces are one in-process read of rank 0
    with each copy's source and rank (then the same cross-rank clock check a folder read runs);
    this keeps the test to one serial parse instead of eight."""
    files = sorted(eight_ranks.iterdir())
    rank0 = load_traces(files[0])[0]
    expected = [
        dataclasses.replace(rank0, source=str(path), rank=rank, notes=list(rank0.notes))
        for rank, path in enumerate(files)
    ]
    clock_offset_notes(expected)
    on_dask = api.load([eight_ranks], executor="dask", executor_address=dask_address)
    assert [t.rank for t in on_dask] == list(range(8))
    assert len(on_dask[7].kernels) > 10_000
    _assert_same_traces(expected, on_dask)
    _assert_same_profile(expected, on_dask)


@pytest.mark.slow
def test_dask_without_address_starts_and_stops_its_own_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    _require_dask()
    monkeypatch.setenv(WORKERS_ENV, "2")
    folder = shared_file(TWO_RANKS)
    executor = open_executor("dask")
    with executor:
        traces = api.load([folder], executor=executor)  # an Executor object stays open ...
        assert executor.map(_square, [3]) == [9]
    assert executor._client is None and executor._cluster is None  # type: ignore[attr-defined]
    _assert_same_traces(api.load([folder], executor="local"), traces)


@pytest.mark.slow
def test_bad_rank_file_on_dask_names_the_file(tmp_path: Path, dask_address: str) -> None:
    shutil.copyfile(shared_file(f"{TWO_RANKS}/rank-0.json.gz"), tmp_path / "rank-0.json.gz")
    (tmp_path / "rank-1.json").write_bytes(b'{"traceEvents": [{"ph": "X", "cat": "kernel"')
    with pytest.raises(InputError, match=r"rank-1\.json"):
        api.load([tmp_path], executor="dask", executor_address=dask_address)


def test_unreachable_scheduler_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _require_dask()
    from infersight.executors import dask_cluster

    monkeypatch.setattr(dask_cluster, "CONNECT_TIMEOUT_S", 0.2)  # the wait's length is not the point
    with pytest.raises(InputError, match=r"tcp://127\.0\.0\.1:9: cannot reach the Dask scheduler") as raised:
        api.load([shared_file(TWO_RANKS)], executor="dask", executor_address="tcp://127.0.0.1:9")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("name", "address", "message"),
    [
        ("spark", None, r"--executor 'spark' is unknown; engines: local, process, dask, ray"),
        ("process", "tcp://h:8786", r"--executor-address needs --executor dask or ray \(got .*process\)"),
        ("local", "127.0.0.1:6379", r"--executor-address needs --executor dask or ray \(got .*local\)"),
    ],
)
def test_bad_executor_choice(name: str, address: str | None, message: str) -> None:
    with pytest.raises(InputError, match=message):
        open_executor(name, address)


def test_missing_dask_gives_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import now raises ImportError
    with pytest.raises(InputError, match=r"pip install 'infersight\[dask\]'"):
        open_executor("dask")


@pytest.mark.slow
def test_cli_analyze_on_dask(tmp_path: Path, dask_address: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = shared_file(TWO_RANKS)
    on_dask, serial = tmp_path / "dask.json", tmp_path / "local.json"
    common = ["analyze", str(folder), "--json"]
    assert run([*common, str(on_dask), "--executor", "dask", "--executor-address", dask_address]) == 0
    assert run([*common, str(serial), "--executor", "local"]) == 0
    assert orjson.loads(on_dask.read_bytes())["profile"] == orjson.loads(serial.read_bytes())["profile"]
    capsys.readouterr()
    assert run(["analyze", str(folder), "--executor", "spark"]) == 2
    err = capsys.readouterr().err
    assert "--executor 'spark' is unknown; engines: local, process, dask, ray" in err
    assert "Traceback" not in err
