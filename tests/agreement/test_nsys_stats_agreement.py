"""Agreement with ``nsys stats`` on every real Nsight Systems export in ../shared/data.

No nsys binary here, so each report is rebuilt in plain SQL over the export, following the
reports' definitions (nsys 2024 ``reports/*.py``): per name, instances, total, average, median,
min, max and sample standard deviation of ``end - start`` over

* ``cuda_gpu_kern_sum``: CUPTI_ACTIVITY_KIND_KERNEL, by demangled name;
* ``cuda_gpu_mem_time_sum``: CUPTI_ACTIVITY_KIND_MEMCPY by copy kind, plus MEMSET;
* ``nvtx_sum``: NVTX push/pop (59) and start/end (60) ranges, by text (inline or StringIds);
* ``cuda_api_sum``: CUPTI_ACTIVITY_KIND_RUNTIME, by name with the ``_v<ver>`` suffix removed.

SQL selects the rows; the statistics are computed here with :mod:`statistics` (SQLite has no
median). infersight's figures come from its public results (``profile.kernels`` by simplified
name, ``range_summary``) or its trace tables (memcpy/memset/API: the columns the timeline uses).
A figure that differs by more than 0.5% fails. Known, explained exceptions: none on these files;
``nsys stats`` drops rows with ``end < start`` silently, infersight drops them with a note, so
the SQL below drops them too.
"""

from __future__ import annotations

import re
import sqlite3
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.conftest import NSYS_DIR, shared_file

from infersight.analyses.kernel_names import simplify_names
from infersight.analyses.ranges import range_summary
from infersight.api import report_from_traces
from infersight.errors import InputError
from infersight.ingest import load_traces
from infersight.ingest.nsys_sqlite import COPY_KINDS
from infersight.model import Trace

TOLERANCE = 0.005
EXPORTS = sorted(p.name for p in NSYS_DIR.glob("*.sqlite")) if NSYS_DIR.exists() else []
# copyKind code -> label: the product's vocabulary (the counts and times are what is checked)
COPY_KIND = COPY_KINDS
Stats = tuple[int, int, float, float, int, int, float]  # count total avg median min max std


def _stats(durations: list[int]) -> Stats:
    return (
        len(durations),
        sum(durations),
        statistics.fmean(durations),
        float(statistics.median(durations)),
        min(durations),
        max(durations),
        statistics.stdev(durations) if len(durations) > 1 else 0.0,
    )


def _grouped(rows: list[tuple[str, int]]) -> dict[str, Stats]:
    by_name: dict[str, list[int]] = defaultdict(list)
    for name, duration in rows:
        by_name[name].append(int(duration))
    return {name: _stats(values) for name, values in by_name.items()}


def _close(ours: float, theirs: float) -> bool:
    return abs(ours - theirs) <= TOLERANCE * max(abs(theirs), 1.0)


def _assert_agree(ours: dict[str, Stats], theirs: dict[str, Stats], report: str) -> None:
    assert set(ours) == set(theirs), f"{report}: names differ: {set(ours) ^ set(theirs)}"
    for name, expected in theirs.items():
        got = ours[name]
        bad = [i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if not _close(a, b)]
        assert not bad, f"{report} {name!r}: infersight {got} vs SQL {expected}"


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in con.execute(f"PRAGMA table_info({table})")}


def _sql_kernels(con: sqlite3.Connection) -> dict[str, Stats]:
    cols = _columns(con, "CUPTI_ACTIVITY_KIND_KERNEL")
    name_col = "demangledName" if "demangledName" in cols else "shortName"
    rows = con.execute(
        f"SELECT COALESCE(s.value, ''), k.\"end\" - k.start FROM CUPTI_ACTIVITY_KIND_KERNEL k "
        f'LEFT JOIN StringIds s ON s.id = k.{name_col} WHERE k."end" >= k.start'
    ).fetchall()
    return _grouped(rows)


def _sql_memory(con: sqlite3.Connection) -> dict[str, Stats]:
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    rows: list[tuple[str, int]] = []
    if "CUPTI_ACTIVITY_KIND_MEMCPY" in tables:
        for kind, duration in con.execute(
            'SELECT copyKind, "end" - start FROM CUPTI_ACTIVITY_KIND_MEMCPY WHERE "end" >= start'
        ):
            rows.append((f"[CUDA memcpy {COPY_KIND.get(kind, 'other')}]", duration))
    if "CUPTI_ACTIVITY_KIND_MEMSET" in tables:
        rows += [
            ("[CUDA memset]", d)
            for (d,) in con.execute(
                'SELECT "end" - start FROM CUPTI_ACTIVITY_KIND_MEMSET WHERE "end" >= start'
            )
        ]
    return _grouped(rows)


_VERSION = re.compile(r"_v\d{4,}$")


def _sql_api(con: sqlite3.Connection) -> dict[str, Stats]:
    cols = _columns(con, "CUPTI_ACTIVITY_KIND_RUNTIME")
    backtrace = " AND COALESCE(r.eventClass, 0) NOT IN (67, 68, 69)" if "eventClass" in cols else ""
    rows = con.execute(
        'SELECT s.value, r."end" - r.start FROM CUPTI_ACTIVITY_KIND_RUNTIME r '
        f'JOIN StringIds s ON s.id = r.nameId WHERE r."end" >= r.start{backtrace}'
    ).fetchall()
    return _grouped([(_VERSION.sub("", name), d) for name, d in rows])


def _sql_nvtx(con: sqlite3.Connection) -> dict[str, Stats]:
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "NVTX_EVENTS" not in tables:
        return {}
    text_id = "s.value" if "textId" in _columns(con, "NVTX_EVENTS") else "NULL"
    join = "LEFT JOIN StringIds s ON s.id = n.textId" if text_id != "NULL" else ""
    rows = con.execute(
        f"SELECT COALESCE(n.text, {text_id}, ''), n.\"end\" - n.start FROM NVTX_EVENTS n {join} "
        'WHERE n.eventType IN (59, 60) AND n."end" >= n.start'
    ).fetchall()
    return _grouped(rows)


def _table_stats(frame: pd.DataFrame, labels: np.ndarray) -> dict[str, Stats]:
    durations = (frame["end"] - frame["start"]).to_numpy(np.int64)
    return _grouped(list(zip(labels.tolist(), durations.tolist(), strict=True)))


@pytest.fixture(scope="module", params=EXPORTS or ["(no shared data)"])
def export(request: pytest.FixtureRequest) -> tuple[Path, list[Trace] | None, sqlite3.Connection]:
    path = shared_file(f"nsys/{request.param}")
    try:
        traces: list[Trace] | None = load_traces(path)
    except InputError as exc:
        assert "kernel" in exc.problem  # the one export without kernels says so
        traces = None
    con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    con.text_factory = lambda raw: raw.decode("utf-8", errors="replace")
    yield path, traces, con
    con.close()


def test_cuda_gpu_kern_sum(export: tuple[Path, list[Trace] | None, sqlite3.Connection]) -> None:
    path, traces, con = export
    if traces is None:
        pytest.skip(f"{path.name}: no kernel table (its InputError is tested in tests/ingest)")
    expected = _sql_kernels(con)
    kernels = traces[0].kernels
    _assert_agree(
        _table_stats(kernels, kernels["name"].astype(str).to_numpy()), expected, "cuda_gpu_kern_sum"
    )
    # the report's ranking by simplified name: each row is the sum of its full names' SQL rows
    profile = report_from_traces(traces).profile
    simple_of = dict(zip(expected, simplify_names(pd.Categorical(list(expected))), strict=True))
    per_simple: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, figures in expected.items():
        per_simple[str(simple_of[name])][0] += figures[0]
        per_simple[str(simple_of[name])][1] += figures[1]
    got = {k.name: [k.count, k.total_ns] for k in profile.kernels}
    assert got == dict(per_simple)
    assert sum(k.share for k in profile.kernels) == pytest.approx(1.0)


def test_cuda_gpu_mem_time_sum(export: tuple[Path, list[Trace] | None, sqlite3.Connection]) -> None:
    path, traces, con = export
    if traces is None:
        pytest.skip(f"{path.name}: no kernel table")
    memcpy, memset = traces[0].memcpy, traces[0].memset
    ours = _table_stats(
        memcpy, np.array([f"[CUDA memcpy {k}]" for k in memcpy["kind"].astype(str)], dtype=object)
    )
    ours.update(_table_stats(memset, np.full(len(memset), "[CUDA memset]", dtype=object)))
    _assert_agree(ours, _sql_memory(con), "cuda_gpu_mem_time_sum")


def test_cuda_api_sum(export: tuple[Path, list[Trace] | None, sqlite3.Connection]) -> None:
    path, traces, con = export
    if traces is None:
        pytest.skip(f"{path.name}: no kernel table")
    api = traces[0].api
    runtime = api[
        (api["source"].astype(str) == "runtime").to_numpy() | (api["source"].astype(str) == "driver")
    ]
    _assert_agree(
        _table_stats(runtime, runtime["name"].astype(str).to_numpy()), _sql_api(con), "cuda_api_sum"
    )


def test_nvtx_sum(export: tuple[Path, list[Trace] | None, sqlite3.Connection]) -> None:
    path, traces, con = export
    if traces is None:
        pytest.skip(f"{path.name}: no kernel table")
    stats = [s for s in range_summary(traces, max_names=None) if s.source == "nvtx"]
    ours: dict[str, Stats] = {}
    for s in stats:  # nvtx_sum groups by name; infersight by (name, domain): merge domains of a name
        if s.name in ours:
            pytest.skip(f"{path.name}: a range name used in two domains; nvtx_sum merges them")
        ours[s.name] = (s.count, s.total_ns, s.avg_ns, s.median_ns, s.min_ns, s.max_ns, s.std_ns)
    _assert_agree(ours, _sql_nvtx(con), "nvtx_sum")
