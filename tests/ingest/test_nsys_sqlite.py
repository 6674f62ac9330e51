"""Nsight Systems SQLite reader (and .nsys-rep wrapper) against every export in shared/data/nsys.

Reference figures are computed here with plain SQL through ``sqlite3`` and plain Python (the
interval union is a sort + merge loop), independently of the reader's group_concat/numpy code.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import sqlite3
import stat
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.conftest import assert_tables_equal, shared_file, shared_trace

from infersight.errors import InputError
from infersight.ingest import load_traces, nsys_sqlite
from infersight.ingest.nsys_rep import cached_export_path, export_nsys_report
from infersight.ingest.nsys_sqlite import COPY_KINDS, read_nsys_sqlite
from infersight.model.trace import Trace

WITH_KERNELS = [
    "concurrent_streams_nsys2022.sqlite",
    "ex_gpu_nsys2021_no_metadata.sqlite",
    "h100x2_llm_train_nsys2026.sqlite",
    "saxpy_mpi_a100_nvtx_oldschema.sqlite",
    "tensorrt_conv_rtx3090.sqlite",
    "vecadd_t4_nsys2022.sqlite",
    "vectoradd_a4500_memcpy.sqlite",
]
NO_KERNEL_TABLE = "gemm_rtx5060ti_no_kernel_table.sqlite"
ALL_FILES = [*WITH_KERNELS, NO_KERNEL_TABLE]

# kernel counts from shared/data/INDEX.md
KNOWN_KERNELS = {
    "concurrent_streams_nsys2022.sqlite": 12,
    "h100x2_llm_train_nsys2026.sqlite": 4010,
    "saxpy_mpi_a100_nvtx_oldschema.sqlite": 5,
    "tensorrt_conv_rtx3090.sqlite": 36,
    "vecadd_t4_nsys2022.sqlite": 4,
    "vectoradd_a4500_memcpy.sqlite": 1,
}
# copyKind code -> label: the product's vocabulary (the counts and bytes are what is checked)
COPY_KIND_NAMES = COPY_KINDS
BACKTRACE_CLASSES = "(67, 68, 69)"  # CUDA backtrace rows duplicate runtime calls


def nsys_path(name: str) -> Path:
    return shared_file(f"nsys/{name}")


@cache
def trace_of(name: str) -> Trace:
    return read_nsys_sqlite(nsys_path(name))


@cache
def _connection(name: str) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{nsys_path(name)}?mode=ro&immutable=1", uri=True)
    conn.text_factory = lambda raw: raw.decode("utf-8", errors="replace")
    return conn


def sql(name: str, query: str) -> list[tuple]:
    return _connection(name).execute(query).fetchall()


def sql_one(name: str, query: str) -> object:
    return sql(name, query)[0][0]


def tables(name: str) -> set[str]:
    return {r[0] for r in sql(name, "SELECT name FROM sqlite_master WHERE type = 'table'")}


def columns(name: str, table: str) -> set[str]:
    return {r[1] for r in sql(name, f"PRAGMA table_info({table})")}


def union_length_plain(intervals: list[tuple[int, int]]) -> int:
    """Length of the union of [start, end) intervals: sort, merge, sum (plain Python)."""
    total = 0
    current_start = current_end = None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def idle_ratio_plain(intervals: list[tuple[int, int]]) -> float:
    span = max(e for _, e in intervals) - min(s for s, _ in intervals)
    return 1 - union_length_plain(intervals) / span


def idle_ratio_numpy(starts: np.ndarray, ends: np.ndarray) -> float:
    """Same figure from the reader's arrays, vectorised (running max of ends)."""
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    covered_until = np.concatenate([[np.iinfo(np.int64).min], np.maximum.accumulate(e)[:-1]])
    busy = np.clip(e - np.maximum(s, covered_until), 0, None).sum()
    return 1 - busy / (e.max() - s.min())


def file_fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


# --------------------------------------------------------------------------------------------
# every export with a kernel table, against plain SQL


def test_every_shared_export_is_covered() -> None:
    folder = nsys_path(ALL_FILES[0]).parent
    assert sorted(p.name for p in folder.glob("*.sqlite")) == sorted(ALL_FILES)


@pytest.mark.parametrize("name", WITH_KERNELS)
def test_reader_leaves_the_file_untouched_and_matches_schema(name: str) -> None:
    path = nsys_path(name)
    before = file_fingerprint(path)
    siblings = sorted(p.name for p in path.parent.iterdir())
    trace = read_nsys_sqlite(path)
    trace.check_schema()
    for table in ("kernels", "memcpy", "memset", "api", "ranges"):
        assert trace.table(table)["start"].is_monotonic_increasing, table
    assert trace.format == "nsys-sqlite"
    assert trace.source == str(path)
    assert file_fingerprint(path) == before
    assert sorted(p.name for p in path.parent.iterdir()) == siblings  # no -journal/-wal/-shm


@pytest.mark.parametrize("name", WITH_KERNELS)
def test_kernels_match_sql(name: str) -> None:
    kernels = trace_of(name).kernels
    count, total = sql(name, 'SELECT COUNT(*), SUM("end" - start) FROM CUPTI_ACTIVITY_KIND_KERNEL')[0]
    assert len(kernels) == count
    assert int((kernels["end"] - kernels["start"]).sum()) == total
    per_device = dict(
        sql(name, "SELECT deviceId, COUNT(*) FROM CUPTI_ACTIVITY_KIND_KERNEL GROUP BY deviceId")
    )
    assert kernels["device"].value_counts().to_dict() == per_device
    distinct_names = sql_one(
        name,
        "SELECT COUNT(DISTINCT s.value) FROM CUPTI_ACTIVITY_KIND_KERNEL k "
        "JOIN StringIds s ON s.id = COALESCE(k.demangledName, k.shortName)",
    )
    assert kernels["name"].nunique() == distinct_names
    assert "" not in set(kernels["name"].astype(str))
    first = sql(
        name,
        "SELECT k.start, s.value, k.gridX, k.blockX, k.registersPerThread, "
        "k.staticSharedMemory + k.dynamicSharedMemory, k.streamId, k.globalPid "
        "FROM CUPTI_ACTIVITY_KIND_KERNEL k JOIN StringIds s ON s.id = k.demangledName "
        "ORDER BY k.start, k.rowid LIMIT 1",
    )[0]
    row = kernels.sort_values("start", kind="stable").iloc[0]
    assert (
        int(row["start"]),
        row["name"],
        int(row["grid_x"]),
        int(row["block_x"]),
        int(row["registers"]),
        int(row["shared_mem"]),
        int(row["stream"]),
        int(row["process"]),
    ) == first


@pytest.mark.parametrize("name", WITH_KERNELS)
def test_idle_ratio_per_device_matches_plain_union(name: str) -> None:
    kernels = trace_of(name).kernels
    for device in sorted(set(kernels["device"])):
        rows = sql(name, f'SELECT start, "end" FROM CUPTI_ACTIVITY_KIND_KERNEL WHERE deviceId = {device}')
        mine = kernels[kernels["device"] == device]
        expected = idle_ratio_plain(rows) if len(rows) > 1 else 0.0
        got = idle_ratio_numpy(mine["start"].to_numpy(), mine["end"].to_numpy()) if len(mine) > 1 else 0.0
        assert got == pytest.approx(expected, abs=0.005)


@pytest.mark.parametrize("name", WITH_KERNELS)
def test_api_calls_match_sql(name: str) -> None:
    api = trace_of(name).api
    runtime = "CUPTI_ACTIVITY_KIND_RUNTIME"
    assert runtime in tables(name)
    keep = f"r.eventClass NOT IN {BACKTRACE_CLASSES}"
    total = sql_one(name, f"SELECT COUNT(*) FROM {runtime} r WHERE {keep}")
    assert len(api) == total
    launches = sql_one(
        name,
        f"SELECT COUNT(*) FROM {runtime} r JOIN StringIds s ON s.id = r.nameId "
        f"WHERE s.value LIKE 'cudaLaunchKernel%' AND {keep}",
    )
    assert int(api["name"].astype(str).str.startswith("cudaLaunchKernel").sum()) == launches
    assert launches > 0
    assert int((api["name"] == "cudaLaunchKernel").sum()) > 0  # suffix stripped
    assert not api["name"].astype(str).str.contains(r"_v\d{4,}$").any()
    drivers = sql_one(name, f"SELECT COUNT(*) FROM {runtime} r WHERE r.eventClass = 1")
    assert int((api["source"] == "driver").sum()) == drivers
    threads = sql(name, f"SELECT DISTINCT globalTid FROM {runtime} r WHERE {keep}")
    assert set(api["thread"]) == {t for (t,) in threads}
    assert set(api["process"]) == {t & ~0xFFFFFF for (t,) in threads}


@pytest.mark.parametrize("name", WITH_KERNELS)
def test_launch_join_on_process_and_correlation_matches_sql(name: str) -> None:
    trace = trace_of(name)
    expected = sql_one(
        name,
        "SELECT COUNT(*) FROM CUPTI_ACTIVITY_KIND_KERNEL k JOIN CUPTI_ACTIVITY_KIND_RUNTIME r "
        "ON r.correlationId = k.correlationId AND (r.globalTid & ~16777215) = k.globalPid "
        f"WHERE r.eventClass NOT IN {BACKTRACE_CLASSES}",
    )
    joined = trace.kernels.merge(trace.api, on=["process", "correlation"], how="inner")
    assert len(joined) == expected
    assert expected > 0


@pytest.mark.parametrize("name", WITH_KERNELS)
def test_memcpy_and_memset_match_sql(name: str) -> None:
    trace = trace_of(name)
    if "CUPTI_ACTIVITY_KIND_MEMCPY" in tables(name):
        expected: dict[str, tuple[int, int]] = {}
        for kind, count, total in sql(
            name, "SELECT copyKind, COUNT(*), SUM(bytes) FROM CUPTI_ACTIVITY_KIND_MEMCPY GROUP BY copyKind"
        ):
            label = COPY_KIND_NAMES.get(kind, "other")
            old = expected.get(label, (0, 0))
            expected[label] = (old[0] + count, old[1] + total)
        got = {
            str(kind): (len(group), int(group["bytes"].sum()))
            for kind, group in trace.memcpy.groupby("kind", observed=True)
        }
        assert got == expected
    else:
        assert trace.memcpy.empty
    if "CUPTI_ACTIVITY_KIND_MEMSET" in tables(name):
        count, total = sql(name, "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM CUPTI_ACTIVITY_KIND_MEMSET")[
            0
        ]
        assert (len(trace.memset), int(trace.memset["bytes"].sum())) == (count, total)
    else:
        assert trace.memset.empty


@pytest.mark.parametrize("name", WITH_KERNELS)
def test_nvtx_ranges_match_sql(name: str) -> None:
    ranges = trace_of(name).ranges
    if "NVTX_EVENTS" not in tables(name):
        assert ranges.empty
        assert any("NVTX" in note for note in trace_of(name).notes)
        return
    rows = sql(
        name,
        'SELECT n.start, n."end", COALESCE(n.text, s.value), n.globalTid FROM NVTX_EVENTS n '
        "LEFT JOIN StringIds s ON s.id = n.textId "
        'WHERE n.eventType IN (59, 60) AND n."end" IS NOT NULL',
    )
    assert len(ranges) == len(rows)
    assert Counter(ranges["name"].astype(str)) == Counter(r[2] for r in rows)
    assert int((ranges["end"] - ranges["start"]).sum()) == sum(r[1] - r[0] for r in rows)
    assert set(ranges["process"]) == {r[3] & ~0xFFFFFF for r in rows}
    assert set(ranges["source"]) == {"nvtx"}
    assert set(ranges["device"]) == {-1}


# --------------------------------------------------------------------------------------------
# known figures (INDEX.md) and schema specifics


def test_h100x2_two_devices_two_processes_kept_apart() -> None:
    name = "h100x2_llm_train_nsys2026.sqlite"
    trace = trace_of(name)
    assert len(trace.kernels) == 4010
    assert trace.kernels["device"].value_counts().to_dict() == {0: 1993, 1: 2017}
    by_process = trace.kernels.groupby("process")["device"].unique()
    assert len(by_process) == 2
    assert all(len(devices) == 1 for devices in by_process)  # one process per GPU
    # correlation ids repeat across processes, so the join needs the process
    repeated = sql_one(
        name,
        "SELECT COUNT(*) FROM (SELECT correlationId FROM CUPTI_ACTIVITY_KIND_KERNEL "
        "GROUP BY correlationId HAVING COUNT(DISTINCT globalPid) > 1)",
    )
    assert repeated > 0
    on_correlation_only = trace.kernels.merge(trace.api, on="correlation")
    on_both = trace.kernels.merge(trace.api, on=["process", "correlation"])
    assert len(on_correlation_only) > len(on_both)
    assert trace.metadata["nsys_version"].startswith("2026.2")
    assert trace.metadata["export_schema_version"] == "3.25.0"
    assert len(trace.ranges) == 19118  # all NVTX rows are push/pop ranges
    assert set(trace.ranges["domain"]) == {"", "domain 1"}  # trimmed: no domain-creation row
    assert sorted(trace.gpus) == [0, 1]
    assert all(g.name is None for g in trace.gpus.values())  # no TARGET_INFO_GPU in this export
    graph_ids = sql_one(name, "SELECT COUNT(*) FROM CUPTI_ACTIVITY_KIND_KERNEL WHERE graphId IS NOT NULL")
    assert graph_ids == 0 and set(trace.kernels["graph_id"]) == {-1}


def test_tensorrt_figures() -> None:
    trace = trace_of("tensorrt_conv_rtx3090.sqlite")
    assert len(trace.kernels) == 36
    assert len(trace.memcpy) == 4
    assert set(trace.memcpy["kind"]) == {"DtoD"}
    nvtx_rows = sql_one("tensorrt_conv_rtx3090.sqlite", "SELECT COUNT(*) FROM NVTX_EVENTS")
    assert nvtx_rows == 60  # 59 push/pop ranges + 1 domain creation
    assert len(trace.ranges) == 59
    assert set(trace.ranges["domain"]) == {"TensorRT"}
    assert len(trace.api) == 5668
    k = trace.kernels
    assert idle_ratio_numpy(k["start"].to_numpy(), k["end"].to_numpy()) == pytest.approx(0.0066, abs=0.0005)
    assert sorted(trace.gpus) == [0, 1, 2, 3]
    gpu = trace.gpus[0]
    assert (gpu.name, gpu.sm_count, gpu.compute_capability) == ("NVIDIA GeForce RTX 3090", 82, "8.6")
    assert gpu.memory_bandwidth_bytes_per_s == pytest.approx(936.096e9)
    assert gpu.clock_khz == 1_695_000
    assert trace.metadata["nsys_version"] == "2023.1.2.43"


def test_saxpy_old_schema_figures() -> None:
    trace = trace_of("saxpy_mpi_a100_nvtx_oldschema.sqlite")
    k = trace.kernels
    assert len(k) == 5
    assert idle_ratio_numpy(k["start"].to_numpy(), k["end"].to_numpy()) == pytest.approx(0.915, abs=0.005)
    # 24 NVTX rows: 22 push/pop ranges, 1 domain creation ("MPI"), 1 thread name (eventType 39)
    assert len(trace.ranges) == 22
    assert trace.ranges["domain"].value_counts().to_dict() == {"MPI": 17, "": 5}
    assert set(trace.ranges.loc[trace.ranges["domain"] == "", "name"]) == {"saxpy"}
    assert trace.memcpy.groupby("kind", observed=True)["src_kind"].agg(
        lambda s: set(s.astype(str))
    ).to_dict() == {
        "HtoD": {"pageable"},
        "DtoH": {"device"},
    }
    assert trace.gpus[0].name == "NVIDIA A100-SXM4-40GB"
    assert trace.gpus[0].memory_bandwidth_bytes_per_s == pytest.approx(1.5552e12)
    assert trace.metadata["export_schema_version"] == "2.9.1"
    # backtrace duplicates (eventClass 67, unversioned names) are not API calls
    assert int((trace.api["name"] == "cudaMalloc").sum()) == 15


def test_2021_export_without_metadata_or_mangled_names() -> None:
    name = "ex_gpu_nsys2021_no_metadata.sqlite"
    assert "mangledName" not in columns(name, "CUPTI_ACTIVITY_KIND_KERNEL")
    trace = trace_of(name)
    assert len(trace.kernels) == 6
    assert trace.metadata == {}
    assert any("metadata" in note for note in trace.notes)
    assert sorted(trace.gpus) == [0, 1, 2, 3]  # TARGET_INFO_CUDA_GPU: 4 A100s
    gpu = trace.gpus[0]
    assert (gpu.name, gpu.sm_count, gpu.compute_capability, gpu.clock_khz) == (
        "A100-PCIE-40GB",
        108,
        "8.0",
        1_410_000,
    )
    assert gpu.memory_bandwidth_bytes_per_s == pytest.approx(1.5552e12)  # kB/s in this table
    assert int((trace.api["name"] == "cudaLaunchKernel").sum()) == 6  # not 12: backtrace rows skipped


def test_2022_export_without_enum_tables() -> None:
    name = "concurrent_streams_nsys2022.sqlite"
    assert not any(t.startswith("ENUM_") for t in tables(name))
    trace = trace_of(name)
    assert len(trace.kernels) == 12
    assert trace.kernels["stream"].nunique() == len(
        {r[0] for r in sql(name, "SELECT streamId FROM CUPTI_ACTIVITY_KIND_KERNEL")}
    )
    assert Counter(trace.memcpy["kind"].astype(str)) == {"HtoD": 15, "DtoH": 15}
    assert set(trace.memcpy.loc[trace.memcpy["kind"] == "HtoD", "src_kind"]) == {"pinned"}
    # TARGET_INFO_GPU also lists an Intel iGPU and a software adapter: not CUDA devices
    assert list(trace.gpus) == [0]
    assert trace.gpus[0].name == "GeForce GTX 1060 with Max-Q Design"
    assert trace.gpus[0].compute_capability == "6.1"
    assert trace.metadata["nsys_version"] == "2022.1.1.61"  # metadata holds non-UTF-8 bytes
    assert set(trace.ranges["domain"]) == {"de.tu-darmstadt.parallel.extra_prof"}
    assert len(trace.ranges) == 76


def test_unified_memory_copies_are_other() -> None:
    trace = trace_of("vectoradd_a4500_memcpy.sqlite")
    assert len(trace.kernels) == 1
    assert len(trace.memcpy) == 227
    assert set(trace.memcpy["kind"]) == {"UVM HtoD", "UVM DtoH"}  # copyKind 11/12: unified-memory migrations
    assert trace.metadata["nsys_version"].startswith("2026.1")


def test_vecadd_t4() -> None:
    trace = trace_of("vecadd_t4_nsys2022.sqlite")
    assert len(trace.kernels) == 4
    assert len(trace.memcpy) == 12
    assert trace.gpus[0].name == "Tesla T4"
    assert trace.kernels["stream"].nunique() == 4


def test_known_kernel_counts() -> None:
    for name, count in KNOWN_KERNELS.items():
        assert len(trace_of(name).kernels) == count, name


def test_reading_in_rowid_slices_gives_the_same_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "h100x2_llm_train_nsys2026.sqlite"
    monkeypatch.setattr(nsys_sqlite, "_SLICE_ROWS", 1000)  # 4010 kernels, 7466 API rows: many slices
    sliced = read_nsys_sqlite(nsys_path(name))
    whole = trace_of(name)
    for table in ("kernels", "api", "memcpy", "memset", "ranges"):
        assert_tables_equal(sliced.table(table), whole.table(table))


def test_nvtx_slices_are_shared_with_a_helper_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both reading threads take NVTX slices; the table equals the one-slice read."""
    name = "h100x2_llm_train_nsys2026.sqlite"  # 19,118 NVTX rows
    monkeypatch.setattr(nsys_sqlite, "_SLICE_ROWS", 1000)
    readers: set[str] = set()
    fetch = nsys_sqlite._fetch_slice

    def recording_fetch(conn: sqlite3.Connection, table: str, *args: object) -> object:
        if table == nsys_sqlite.NVTX_TABLE:
            readers.add(threading.current_thread().name)
            time.sleep(0.01)  # let the other thread take the next slice
        return fetch(conn, table, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(nsys_sqlite, "_fetch_slice", recording_fetch)
    sliced = read_nsys_sqlite(nsys_path(name))
    assert len(readers) == 2
    ranges = trace_of(name).ranges
    assert_tables_equal(sliced.ranges, ranges)
    assert sliced.ranges["name"].cat.categories.is_unique
    # categories in order of first appearance in the table, whichever thread read which slice
    assert list(sliced.ranges["name"].cat.categories) == list(ranges["name"].cat.categories)


def test_shared_nvtx_slices_are_a_quarter_of_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    """The slices two threads share are smaller (both end together); one thread's are not."""
    monkeypatch.setattr(nsys_sqlite, "_SLICE_ROWS", 1000)
    sizes: dict[str, set[int]] = {}
    fetch = nsys_sqlite._fetch_slice

    def recording_fetch(
        conn: sqlite3.Connection, table: str, fields: object, condition: str, *args: object
    ) -> object:
        low, high = (int(v) for v in condition.rsplit("BETWEEN", 1)[1].split("AND"))
        sizes.setdefault(table, set()).add(high - low + 1)
        return fetch(conn, table, fields, condition, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(nsys_sqlite, "_fetch_slice", recording_fetch)
    read_nsys_sqlite(nsys_path("h100x2_llm_train_nsys2026.sqlite"))
    assert max(sizes[nsys_sqlite.NVTX_TABLE]) == 250
    assert max(sizes[nsys_sqlite.KERNEL_TABLE]) == max(sizes[nsys_sqlite.RUNTIME_TABLE]) == 1000


def test_shared_slices_come_back_in_order_and_errors_propagate(tmp_path: Path) -> None:
    path = nsys_path("h100x2_llm_train_nsys2026.sqlite")
    tables = frozenset({nsys_sqlite.NVTX_TABLE})
    opened: list[sqlite3.Connection] = []

    def helper() -> sqlite3.Connection:
        opened.append(nsys_sqlite._connect(path, any_thread=True))
        return opened[-1]

    def first_rowid(conn: sqlite3.Connection, condition: str) -> int:
        time.sleep(0.005)
        return int(conn.execute(f"SELECT MIN(rowid) FROM NVTX_EVENTS WHERE {condition}").fetchone()[0])

    with closing(nsys_sqlite._connect(path, any_thread=True)) as conn:
        schema = nsys_sqlite.Schema(conn, tables, helper)
        original = nsys_sqlite._SLICE_ROWS
        try:
            nsys_sqlite._SLICE_ROWS = 2000
            starts = nsys_sqlite._map_slices(schema, nsys_sqlite.NVTX_TABLE, "1", first_rowid)
            assert starts == list(range(1, 19_119, 2000))

            def failing(conn: sqlite3.Connection, condition: str) -> int:
                if "BETWEEN 8001" in condition:
                    raise ValueError("slice 5")
                return first_rowid(conn, condition)

            with pytest.raises(ValueError, match="slice 5"):
                nsys_sqlite._map_slices(schema, nsys_sqlite.NVTX_TABLE, "1", failing)
        finally:
            nsys_sqlite._SLICE_ROWS = original
    assert len(opened) == 2
    with pytest.raises(sqlite3.ProgrammingError):  # the helper connections were closed
        opened[0].execute("SELECT 1")


def test_load_traces_dispatches_sqlite() -> None:
    [trace] = load_traces(nsys_path("vecadd_t4_nsys2022.sqlite"))
    assert trace.format == "nsys-sqlite" and len(trace.kernels) == 4


# --------------------------------------------------------------------------------------------
# repaired and bad input


@pytest.fixture
def tensorrt_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "tensorrt copy.sqlite"  # a space: the URI must be quoted
    shutil.copyfile(nsys_path("tensorrt_conv_rtx3090.sqlite"), copy)
    copy.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return copy


def _modify(path: Path, *statements: str) -> None:
    with closing(sqlite3.connect(path)) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.commit()


def test_rows_with_end_before_start_are_dropped_with_a_note(tensorrt_copy: Path) -> None:
    _modify(
        tensorrt_copy,
        'UPDATE CUPTI_ACTIVITY_KIND_KERNEL SET "end" = start - 5 WHERE rowid IN (1, 2)',
        'UPDATE CUPTI_ACTIVITY_KIND_RUNTIME SET "end" = start - 1 WHERE rowid = 3',
    )
    trace = read_nsys_sqlite(tensorrt_copy)
    assert len(trace.kernels) == 34
    assert len(trace.api) == 5667
    assert any(note.startswith("2 kernel rows") for note in trace.notes)
    assert any(note.startswith("1 API rows") for note in trace.notes)


def test_invalid_ranges_and_backtrace_rows_are_counted_like_a_full_table_scan(tensorrt_copy: Path) -> None:
    # invalid rows are dropped in numpy after one read (no separate COUNT scan): the note must
    # still count them over the whole table, including backtrace rows (which are never kept),
    # and the inline texts of the kept ranges must stay aligned with their rows
    _modify(
        tensorrt_copy,
        "UPDATE NVTX_EVENTS SET text = 'inline ' || rowid WHERE eventType = 59 AND rowid % 2 = 0",
        'UPDATE NVTX_EVENTS SET "end" = start - 1 WHERE eventType = 59 AND rowid IN (4, 5)',
        'UPDATE NVTX_EVENTS SET "end" = NULL WHERE eventType = 59 AND rowid = 6',
        "INSERT INTO CUPTI_ACTIVITY_KIND_RUNTIME "
        '(start, "end", eventClass, globalTid, correlationId, nameId, returnValue) '
        "SELECT start, start - 1, 67, globalTid, correlationId, nameId, 0 FROM CUPTI_ACTIVITY_KIND_RUNTIME "
        "WHERE rowid = 10",
        "INSERT INTO CUPTI_ACTIVITY_KIND_RUNTIME "
        '(start, "end", eventClass, globalTid, correlationId, nameId, returnValue) '
        'SELECT start, "end", 67, globalTid, correlationId, nameId, 0 FROM CUPTI_ACTIVITY_KIND_RUNTIME '
        "WHERE rowid = 11",
        'UPDATE CUPTI_ACTIVITY_KIND_RUNTIME SET "end" = start - 1 WHERE rowid = 3',
    )
    trace = read_nsys_sqlite(tensorrt_copy)
    assert any(note.startswith("3 NVTX ranges with a missing, reversed") for note in trace.notes)
    assert any(note.startswith("2 API rows of CUPTI_ACTIVITY_KIND_RUNTIME") for note in trace.notes)
    assert len(trace.api) == 5668 - 1  # the valid backtrace row is skipped, row 3 dropped
    with closing(sqlite3.connect(tensorrt_copy)) as conn:
        expected = conn.execute(
            "SELECT start, COALESCE(n.text, s.value) FROM NVTX_EVENTS n "
            "LEFT JOIN StringIds s ON s.id = n.textId "
            'WHERE eventType IN (59, 60) AND "end" >= start ORDER BY start, n.rowid'
        ).fetchall()
    ranges = trace.ranges.sort_values("start", kind="stable")
    assert list(zip(ranges["start"].tolist(), ranges["name"].astype(str).tolist(), strict=True)) == expected


def test_missing_global_pid_falls_back_to_the_only_process(tensorrt_copy: Path) -> None:
    _modify(tensorrt_copy, "ALTER TABLE CUPTI_ACTIVITY_KIND_KERNEL DROP COLUMN globalPid")
    trace = read_nsys_sqlite(tensorrt_copy)
    assert set(trace.kernels["process"]) == set(trace_of("tensorrt_conv_rtx3090.sqlite").kernels["process"])
    assert any("no globalPid" in note for note in trace.notes)


def test_missing_demangled_name_falls_back_to_short_name(tensorrt_copy: Path) -> None:
    # a schema whose demangledName may be NULL (the real one says NOT NULL): rebuild the table
    _modify(
        tensorrt_copy,
        "CREATE TABLE k AS SELECT * FROM CUPTI_ACTIVITY_KIND_KERNEL",
        "DROP TABLE CUPTI_ACTIVITY_KIND_KERNEL",
        "ALTER TABLE k RENAME TO CUPTI_ACTIVITY_KIND_KERNEL",
        "UPDATE CUPTI_ACTIVITY_KIND_KERNEL SET demangledName = NULL WHERE rowid = 1",
    )
    short = sql_one(
        "tensorrt_conv_rtx3090.sqlite",
        "SELECT s.value FROM CUPTI_ACTIVITY_KIND_KERNEL k JOIN StringIds s ON s.id = k.shortName "
        "WHERE k.rowid = 1",
    )
    start = sql_one(
        "tensorrt_conv_rtx3090.sqlite", "SELECT start FROM CUPTI_ACTIVITY_KIND_KERNEL WHERE rowid = 1"
    )
    trace = read_nsys_sqlite(tensorrt_copy)
    assert trace.kernels.loc[trace.kernels["start"] == start, "name"].tolist() == [short]


def test_separate_driver_table_is_read_as_driver_calls(tensorrt_copy: Path) -> None:
    _modify(
        tensorrt_copy,
        "CREATE TABLE CUPTI_ACTIVITY_KIND_DRIVER AS SELECT * FROM CUPTI_ACTIVITY_KIND_RUNTIME "
        "WHERE eventClass = 1",
        "DELETE FROM CUPTI_ACTIVITY_KIND_RUNTIME WHERE eventClass = 1",
    )
    original = trace_of("tensorrt_conv_rtx3090.sqlite").api
    api = read_nsys_sqlite(tensorrt_copy).api
    assert len(api) == len(original) == 5668
    assert Counter(zip(api["name"].astype(str), api["source"].astype(str), strict=True)) == Counter(
        zip(original["name"].astype(str), original["source"].astype(str), strict=True)
    )
    assert isinstance(api["name"].dtype, pd.CategoricalDtype)


def test_empty_kernel_table_is_no_gpu_kernels(tensorrt_copy: Path) -> None:
    _modify(tensorrt_copy, "DELETE FROM CUPTI_ACTIVITY_KIND_KERNEL")
    with pytest.raises(InputError, match="no GPU kernels") as info:
        read_nsys_sqlite(tensorrt_copy)
    assert tensorrt_copy.name in str(info.value)


def test_failed_read_cancels_the_background_nvtx_query(
    tensorrt_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error in the kernel table is not held up by the NVTX read running beside it."""

    def slow_nvtx_read(schema: nsys_sqlite.Schema, notes: list[str]) -> pd.DataFrame:
        count_to_a_billion = (
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1000000000) "
            "SELECT COUNT(*) FROM c"
        )
        schema.conn.execute(count_to_a_billion).fetchone()  # minutes, unless cancelled
        raise AssertionError("the NVTX query was not cancelled")

    monkeypatch.setattr(nsys_sqlite, "_nvtx_ranges", slow_nvtx_read)
    _modify(tensorrt_copy, "DELETE FROM CUPTI_ACTIVITY_KIND_KERNEL")
    started = time.perf_counter()
    with pytest.raises(InputError, match="no GPU kernels"):
        read_nsys_sqlite(tensorrt_copy)
    assert time.perf_counter() - started < 5
    assert not any(t.name.startswith("infersight-nvtx") for t in threading.enumerate())


def test_no_kernel_table_gives_the_capture_advice() -> None:
    path = nsys_path(NO_KERNEL_TABLE)
    before = file_fingerprint(path)
    with pytest.raises(InputError) as info:
        read_nsys_sqlite(path)
    message = str(info.value)
    assert NO_KERNEL_TABLE in message
    assert "CUPTI_ACTIVITY_KIND_KERNEL" in message and "--trace=cuda" in message
    assert "\n" not in message
    assert file_fingerprint(path) == before
    with pytest.raises(InputError, match="no CUDA kernel table"):
        load_traces(path)


def test_truncated_export(tmp_path: Path) -> None:
    source = nsys_path("h100x2_llm_train_nsys2026.sqlite")
    truncated = tmp_path / "truncated.sqlite"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 3])
    before = file_fingerprint(truncated)
    with pytest.raises(InputError) as info:
        read_nsys_sqlite(truncated)
    assert "truncated.sqlite" in str(info.value)
    assert file_fingerprint(truncated) == before


def test_random_bytes_behind_the_sqlite_magic(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"SQLite format 3\x00" + np.random.default_rng(0).bytes(8192))
    with pytest.raises(InputError, match=r"garbage\.sqlite"):
        load_traces(garbage)


def test_empty_database_is_not_an_nsys_export(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    _modify(empty, "PRAGMA user_version = 1")  # a valid SQLite file with no tables
    with pytest.raises(InputError, match=r"empty\.sqlite: not an Nsight Systems export"):
        load_traces(empty)
    other = tmp_path / "other.sqlite"
    _modify(other, "CREATE TABLE notes (text TEXT)")
    with pytest.raises(InputError, match="not an Nsight Systems export"):
        read_nsys_sqlite(other)


@pytest.fixture
def saxpy_copy(tmp_path: Path) -> Path:
    """Writable copy of the saxpy export: NVTX ranges named inline (saxpy) and by textId (MPI_*)."""
    copy = tmp_path / "saxpy copy.sqlite"
    shutil.copyfile(nsys_path("saxpy_mpi_a100_nvtx_oldschema.sqlite"), copy)
    copy.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return copy


def _nvtx_names_plain(path: Path) -> Counter[str]:
    """Range names by plain SQL, one row at a time, raw bytes decoded here (invalid -> U+FFFD)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT CAST(COALESCE(n.text, s.value, '') AS BLOB) FROM NVTX_EVENTS n "
            "LEFT JOIN StringIds s ON s.id = n.textId "
            'WHERE n.eventType IN (59, 60) AND n."end" IS NOT NULL'
        ).fetchall()
    return Counter(raw.decode("utf-8", errors="replace") for (raw,) in rows)


def test_nvtx_text_both_inline_and_by_text_id_is_one_category(saxpy_copy: Path) -> None:
    # every other MPI_Send range carries its name inline instead of through textId 85
    _modify(
        saxpy_copy,
        "UPDATE NVTX_EVENTS SET text = (SELECT value FROM StringIds WHERE id = textId), textId = NULL "
        "WHERE eventType = 59 AND textId = 85 AND rowid % 2 = 0",
    )
    inline = sql_one_at(saxpy_copy, "SELECT COUNT(*) FROM NVTX_EVENTS WHERE text = 'MPI_Send'")
    registered = sql_one_at(saxpy_copy, "SELECT COUNT(*) FROM NVTX_EVENTS WHERE textId = 85")
    assert (inline, registered) == (5, 5)
    names = read_nsys_sqlite(saxpy_copy).ranges["name"]
    categories = [str(c) for c in names.cat.categories]
    assert len(categories) == len(set(categories))
    assert categories.count("MPI_Send") == 1
    assert int((names == "MPI_Send").sum()) == 10
    assert Counter(names.astype(str)) == _nvtx_names_plain(saxpy_copy)


def sql_one_at(path: Path, query: str) -> object:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return conn.execute(query).fetchone()[0]


@pytest.mark.parametrize("slice_rows", [4, 1 << 21])
def test_nvtx_texts_with_separators_empty_and_invalid_utf8(
    saxpy_copy: Path, slice_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    every_control_character = "".join(f"char({c})" if c == 1 else f" || char({c})" for c in range(1, 32))
    _modify(
        saxpy_copy,
        "UPDATE NVTX_EVENTS SET text = 'a' || char(31) || 'b' WHERE rowid = 6",  # the bulk separator
        "UPDATE NVTX_EVENTS SET text = '' WHERE rowid = 10",
        "UPDATE NVTX_EVENTS SET text = CAST(X'66E28F78' AS TEXT) WHERE rowid = 14",  # truncated UTF-8
        f"UPDATE NVTX_EVENTS SET text = {every_control_character} WHERE rowid = 18",
        "UPDATE NVTX_EVENTS SET text = 'MPI_Recv', textId = NULL WHERE rowid = 19",
    )
    monkeypatch.setattr(nsys_sqlite, "_SLICE_ROWS", slice_rows)  # 4: the odd texts in separate slices
    ranges = read_nsys_sqlite(saxpy_copy).ranges
    expected = _nvtx_names_plain(saxpy_copy)
    assert Counter(ranges["name"].astype(str)) == expected
    assert {"a\x1fb", "", "f\ufffdx", "".join(map(chr, range(1, 32)))} <= set(expected)
    assert expected["MPI_Recv"] == 5 and expected["saxpy"] == 1
    assert len(ranges["name"].cat.categories) == len(expected)


def test_nvtx_domains_are_matched_per_process(saxpy_copy: Path) -> None:
    # a second process (pid + 1) creates domain 1 as "Other" and records ranges 20-24 in it;
    # ranges 2-3 use domain 7, which no row creates
    other = "(globalTid + 16777216)"
    _modify(
        saxpy_copy,
        f"INSERT INTO NVTX_EVENTS (start, eventType, text, globalTid, domainId) "
        f"SELECT start, 75, 'Other', {other}, 1 FROM NVTX_EVENTS WHERE rowid = 1",
        f"UPDATE NVTX_EVENTS SET globalTid = {other} WHERE rowid BETWEEN 20 AND 24",
        "UPDATE NVTX_EVENTS SET domainId = 7 WHERE rowid IN (2, 3)",
    )
    expected = sql_at(
        saxpy_copy,
        "SELECT n.start, CASE WHEN n.domainId = 0 THEN '' ELSE COALESCE("
        "(SELECT d.text FROM NVTX_EVENTS d WHERE d.eventType = 75 AND d.domainId = n.domainId "
        "AND (d.globalTid & ~16777215) = (n.globalTid & ~16777215)), "
        "(SELECT d.text FROM NVTX_EVENTS d WHERE d.eventType = 75 AND d.domainId = n.domainId "
        "ORDER BY d.rowid LIMIT 1), 'domain ' || n.domainId) END "
        "FROM NVTX_EVENTS n WHERE n.eventType IN (59, 60)",
    )
    trace = read_nsys_sqlite(saxpy_copy)
    got = Counter(zip(trace.ranges["start"].tolist(), trace.ranges["domain"].astype(str), strict=True))
    assert got == Counter(expected)
    assert Counter(d for _, d in expected) == {"MPI": 12, "Other": 4, "": 5, "domain 7": 1}
    assert any("[7]" in note for note in trace.notes)


def _recording_domain_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads that read the domain-creation rows, one entry per read."""
    threads: list[str] = []
    read = nsys_sqlite._nvtx_domain_names

    def recording(conn: sqlite3.Connection, cols: set[str]) -> object:
        threads.append(threading.current_thread().name)
        return read(conn, cols)

    monkeypatch.setattr(nsys_sqlite, "_nvtx_domain_names", recording)
    return threads


def test_domain_names_are_read_once_beside_the_range_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Named domains in use: their names are read once, on a thread of their own (not the NVTX
    reading threads), and the ranges equal those of a serial read (one connection, names read
    after the slices)."""
    name = "h100x2_llm_train_nsys2026.sqlite"  # 462 of 19,118 ranges in named domains
    monkeypatch.setattr(nsys_sqlite, "_SLICE_ROWS", 1000)
    threads = _recording_domain_reads(monkeypatch)
    beside = read_nsys_sqlite(nsys_path(name)).ranges
    assert len(threads) == 1 and threads[0].startswith("infersight-domains")
    with closing(nsys_sqlite._connect(nsys_path(name))) as conn:
        schema = nsys_sqlite.Schema(conn, frozenset({nsys_sqlite.NVTX_TABLE, nsys_sqlite.STRING_TABLE}))
        serial = nsys_sqlite._time_ordered(nsys_sqlite._nvtx_ranges(schema, []))
    assert threads[1:] == [threading.current_thread().name]
    assert_tables_equal(serial, beside)
    assert set(beside["domain"].astype(str)) > {""}


def test_no_domain_scan_when_every_range_is_in_the_default_domain(
    saxpy_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _modify(saxpy_copy, "UPDATE NVTX_EVENTS SET domainId = 0 WHERE eventType IN (59, 60)")
    threads = _recording_domain_reads(monkeypatch)
    trace = read_nsys_sqlite(saxpy_copy)
    assert threads == []
    assert len(trace.ranges) == 22 and set(trace.ranges["domain"].astype(str)) == {""}


def sql_at(path: Path, query: str) -> list[tuple]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return conn.execute(query).fetchall()


@pytest.mark.slow  # builds and reads a 200k-kernel export (CI); slices: test_reading_in_rowid_slices_...
def test_a_million_rows_scale_check(tmp_path: Path) -> None:
    """200k kernels (the h100x2 kernels replicated): right counts, columnar names."""
    big = tmp_path / "big.sqlite"
    source = nsys_path("h100x2_llm_train_nsys2026.sqlite")
    with closing(sqlite3.connect(big)) as conn:
        conn.execute(f"ATTACH DATABASE 'file:{source}?mode=ro&immutable=1' AS src")
        for table in ("CUPTI_ACTIVITY_KIND_KERNEL", "StringIds"):
            ddl = conn.execute("SELECT sql FROM src.sqlite_master WHERE name = ?", (table,)).fetchone()[0]
            conn.execute(ddl)
        conn.execute("INSERT INTO StringIds SELECT * FROM src.StringIds")
        cols = [r[1] for r in conn.execute("PRAGMA table_info(CUPTI_ACTIVITY_KIND_KERNEL)")]
        shifted = ", ".join(
            f'"{c}" + :shift'
            if c in ("start", "end")
            else f'"{c}" + :corr'
            if c == "correlationId"
            else f'"{c}"'
            for c in cols
        )
        for copy in range(50):
            conn.execute(
                f"INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL SELECT {shifted} "
                "FROM src.CUPTI_ACTIVITY_KIND_KERNEL",
                {"shift": copy * 10**9, "corr": copy * 10**6},
            )
        conn.commit()
    trace = read_nsys_sqlite(big)
    assert len(trace.kernels) == 50 * 4010
    assert (
        trace.kernels["name"].nunique()
        == trace_of("h100x2_llm_train_nsys2026.sqlite").kernels["name"].nunique()
    )
    assert trace.kernels["name"].memory_usage(deep=True) < 2 * len(trace.kernels) + 200_000
    assert any("no CUPTI_ACTIVITY_KIND_RUNTIME" in note for note in trace.notes)


# --------------------------------------------------------------------------------------------
# .nsys-rep through nsys export


FAKE_NSYS = """#!{python}
import os, shutil, sys
args = sys.argv[1:]
with open(os.environ["FAKE_NSYS_LOG"], "a") as log:
    log.write(repr(args) + "\\n")
if os.environ.get("FAKE_NSYS_FAIL"):
    sys.stderr.write("Importer error: the report is damaged\\n")
    sys.exit(1)
shutil.copyfile(os.environ["FAKE_NSYS_SOURCE"], args[args.index("--output") + 1])
"""


@pytest.fixture
def fake_nsys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fake `nsys` on PATH that 'exports' by copying a real SQLite export; yields its log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "nsys"
    script.write_text(FAKE_NSYS.format(python=sys.executable))
    script.chmod(0o755)
    log = tmp_path / "nsys.log"
    log.touch()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_NSYS_LOG", str(log))
    monkeypatch.setenv("FAKE_NSYS_SOURCE", str(nsys_path("tensorrt_conv_rtx3090.sqlite")))
    monkeypatch.setenv("INFERSIGHT_CACHE", str(tmp_path / "cache"))
    yield log


@pytest.fixture
def report(tmp_path: Path) -> Path:
    folder = tmp_path / "user"
    folder.mkdir()
    path = folder / "run 1.nsys-rep"
    path.write_bytes(b"not really a report")
    return path


def test_nsys_rep_without_nsys_gives_the_command(
    report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    with pytest.raises(InputError) as info:
        load_traces(report)
    message = str(info.value)
    assert f"nsys export --type sqlite --output report.sqlite '{report}'" in message
    assert message.startswith(str(report))
    assert sorted(p.name for p in report.parent.iterdir()) == [report.name]


def test_nsys_rep_exported_once_into_the_cache(fake_nsys: Path, report: Path, tmp_path: Path) -> None:
    [trace] = load_traces(report)
    assert len(trace.kernels) == 36  # the fake export is the tensorrt capture
    calls = fake_nsys.read_text().splitlines()
    assert len(calls) == 1
    args = ast.literal_eval(calls[0])  # the repr of a list of str, written by the fake script
    assert args[:4] == ["export", "--type", "sqlite", "--output"]
    assert args[-1] == str(report)
    exported = export_nsys_report(report)
    assert exported == cached_export_path(report)
    assert exported.parent == tmp_path / "cache"
    assert exported.name.startswith("run 1-") and exported.suffix == ".sqlite"
    assert len(fake_nsys.read_text().splitlines()) == 1  # reused, not exported again
    assert sorted(p.name for p in report.parent.iterdir()) == [report.name]  # nothing next to it
    assert sorted(p.name for p in exported.parent.iterdir()) == [exported.name]  # no partial left
    os.utime(report, ns=(report.stat().st_atime_ns, report.stat().st_mtime_ns + 10**9))
    assert export_nsys_report(report) != exported  # a changed report is exported again
    assert len(fake_nsys.read_text().splitlines()) == 2


def test_nsys_export_failure_is_one_line(
    fake_nsys: Path, report: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NSYS_FAIL", "1")
    with pytest.raises(InputError, match="nsys export failed \\(Importer error: the report is damaged\\)"):
        export_nsys_report(report)
    assert list(cached_export_path(report).parent.iterdir()) == []


def test_api_name_table_is_categorical() -> None:
    api = trace_of("h100x2_llm_train_nsys2026.sqlite").api
    assert isinstance(api["name"].dtype, pd.CategoricalDtype)
    assert api["name"].cat.categories.is_unique


def test_name_codes_match_pandas_factorize() -> None:
    """Names are coded in order of first appearance, exactly as ``pd.factorize`` codes them.

    The readers code millions of range names with a dict instead of pandas; this checks it
    against pandas on names with repeats, an empty name, unicode and names equal but for case.
    """
    import numpy as np
    import pandas as pd

    from infersight.model import factorize_names

    rng = np.random.default_rng(3)
    pool = ["", "b", "a", "aten::mm, seq = 1, op_id = 2", "é", "a ", "B", "aten::mm, seq = 1, op_id = 10"]
    for size in (0, 1, 5, 200):
        names = [pool[i] for i in rng.integers(0, len(pool), size)]
        codes, distinct = factorize_names(names)
        expected_codes, expected_distinct = pd.factorize(np.asarray(names, dtype=object))
        assert codes.dtype == np.int64 and distinct.dtype == object
        assert codes.tolist() == expected_codes.tolist()
        assert distinct.tolist() == list(expected_distinct)


def test_nvtx_names_are_one_category_per_distinct_text() -> None:
    """Every range keeps its own text, and a text read in several slices is one category."""
    from infersight.ingest import nsys_sqlite

    trace = trace_of("h100x2_llm_train_nsys2026.sqlite")
    names = trace.ranges["name"]
    assert names.cat.categories.is_unique
    texts = (
        _connection("h100x2_llm_train_nsys2026.sqlite")
        .execute(
            "SELECT COALESCE(n.text, s.value) FROM NVTX_EVENTS n LEFT JOIN StringIds s ON s.id = n.textId "
            f"WHERE eventType IN ({nsys_sqlite.NVTX_PUSHPOP_RANGE}, {nsys_sqlite.NVTX_STARTEND_RANGE})"
        )
        .fetchall()
    )
    assert len(texts) > 10_000
    assert Counter(t[0] or "" for t in texts) == Counter(names.astype(str).tolist())


@pytest.mark.parametrize("keep_every", [1, 3])
def test_launch_note_counts_the_kernels_without_a_launching_call(keep_every: int) -> None:
    """The note's count equals a plain set lookup of each kernel's (process, correlation) among the
    calls' pairs, on a real two-GPU export whole and with two calls in three removed."""
    trace = shared_trace("nsys/h100x2_llm_train_nsys2026.sqlite")
    kernels, api = trace.kernels, trace.api.iloc[::keep_every]
    pairs = set(zip(api["process"].tolist(), api["correlation"].tolist(), strict=True))
    expected = sum(
        pair not in pairs
        for pair in zip(kernels["process"].tolist(), kernels["correlation"].tolist(), strict=True)
    )
    notes = nsys_sqlite._launch_notes(kernels, api)
    if keep_every > 1:
        assert expected > len(kernels) // 2
    if expected:
        assert notes and notes[0].startswith(f"{expected} of {len(kernels)} kernels have no launching")
    else:
        assert notes == []
