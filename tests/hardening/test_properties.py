"""Property tests (hypothesis): interval algebra and timeline invariants on random kernel sets.

A brute-force reference works on a per-nanosecond coverage array, so every property is checked
against an answer that shares no code with ``analyses.intervals``. The reader properties (end of
the file) inject extreme values (int64 bounds, huge ids, booleans, NaN/Infinity) into real traces.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import examples, shared_file, shared_traces

from infersight.analyses import intervals
from infersight.analyses.ranges import grouped_union_length
from infersight.analyses.timeline import device_timelines
from infersight.api import analyze
from infersight.errors import InputError
from infersight.model import Trace
from infersight.model.trace import KERNEL_COLUMNS, make_table

HORIZON = 400  # ns: small enough for a per-ns reference array

interval = st.tuples(st.integers(0, HORIZON), st.integers(0, 60)).map(lambda t: (t[0], t[0] + t[1]))
interval_sets = st.lists(interval, min_size=0, max_size=40)


def _covered(pairs: list[tuple[int, int]]) -> np.ndarray:
    """Per-ns coverage flags of [s, e) intervals (the reference)."""
    mask = np.zeros(HORIZON + 61, dtype=bool)
    for s, e in pairs:
        mask[s:e] = True
    return mask


def _arrays(pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.int64)


@settings(max_examples=examples(ci=150), deadline=None)
@given(interval_sets)
def test_union_is_sorted_disjoint_and_covers_the_same_instants(pairs: list[tuple[int, int]]) -> None:
    s, e = _arrays(pairs)
    us, ue = intervals.union(s, e)
    assert (ue > us).all()
    assert (us[1:] > ue[:-1]).all()  # sorted, disjoint, not even touching
    assert np.array_equal(_covered(list(zip(us.tolist(), ue.tolist(), strict=True))), _covered(pairs))
    assert intervals.total_length(s, e) == int(_covered(pairs).sum())
    assert intervals.total_length(s, e) <= int((e - s).sum())  # union <= sum of lengths
    us2, ue2 = intervals.union(us, ue)  # idempotent
    assert np.array_equal(us, us2) and np.array_equal(ue, ue2)


@settings(max_examples=examples(ci=150), deadline=None)
@given(interval_sets, interval_sets)
def test_intersection_and_inclusion_exclusion(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> None:
    a_s, a_e = _arrays(a)
    b_s, b_e = _arrays(b)
    i_s, i_e = intervals.intersect(a_s, a_e, b_s, b_e)
    assert np.array_equal(
        _covered(list(zip(i_s.tolist(), i_e.tolist(), strict=True))), _covered(a) & _covered(b)
    )
    union_ab = intervals.total_length(np.concatenate([a_s, b_s]), np.concatenate([a_e, b_e]))
    assert union_ab == intervals.total_length(a_s, a_e) + intervals.total_length(b_s, b_e) - int(
        (i_e - i_s).sum()
    )


@settings(max_examples=examples(ci=100), deadline=None)
@given(interval_sets, st.lists(st.integers(0, HORIZON + 60), max_size=10))
def test_covered_before_matches_reference(pairs: list[tuple[int, int]], times: list[int]) -> None:
    us, ue = intervals.union(*_arrays(pairs))
    reference = np.concatenate([[0], np.cumsum(_covered(pairs))])
    got = intervals.covered_before(us, ue, np.array(times, dtype=np.int64))
    assert got.tolist() == [int(reference[t]) for t in times]


@settings(max_examples=examples(ci=100), deadline=None)
@given(
    interval_sets,
    st.lists(st.integers(0, HORIZON + 60), max_size=10),
    st.sampled_from([0, 2**60, -(2**60), 2**62]),
)
def test_covered_before_is_exact_far_from_zero_on_both_paths(
    pairs: list[tuple[int, int]], times: list[int], offset: int
) -> None:
    """Large clock values keep exact answers; a query 2**54 ns away takes the integer path
    (float64 is exact only below 2**53) and changes no other answer."""
    us, ue = intervals.union(*_arrays(pairs))
    reference = np.concatenate([[0], np.cumsum(_covered(pairs))])
    expected = [int(reference[t]) for t in times]
    shifted = np.array(times, dtype=np.int64) + offset
    assert intervals.covered_before(us + offset, ue + offset, shifted).tolist() == expected
    far = np.append(shifted, offset - 2**54)
    got = intervals.covered_before(us + offset, ue + offset, far).tolist()
    assert got == [*expected, 0]


def test_covered_before_on_touching_intervals() -> None:
    """Touching intervals (a set not merged by ``union``) are counted once each, on either path."""
    starts, ends = np.array([0, 5, 20], dtype=np.int64), np.array([5, 10, 30], dtype=np.int64)
    times = np.array([-3, 0, 3, 5, 7, 10, 15, 25, 40], dtype=np.int64)
    assert intervals.covered_before(starts, ends, times).tolist() == [0, 0, 3, 5, 7, 10, 10, 15, 20]


@settings(max_examples=examples(ci=100), deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), interval), max_size=40))
def test_grouped_union_length_is_union_per_group(rows: list[tuple[int, tuple[int, int]]]) -> None:
    group = np.array([g for g, _ in rows], dtype=np.int64)
    s, e = _arrays([iv for _, iv in rows])
    got = grouped_union_length(group, s, e, 4)
    for g in range(4):
        assert got[g] == int(_covered([iv for gg, iv in rows if gg == g]).sum())


@settings(max_examples=examples(ci=60), deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 3), interval), min_size=1, max_size=40))
def test_device_timeline_idle_ratio_and_busy_bounds(rows: list[tuple[int, int, tuple[int, int]]]) -> None:
    """Kernels on 2 devices / 4 streams: 0 <= busy <= wall, idle ratio in [0, 1], busy = reference."""
    trace = Trace(source="random.json", format="kineto")
    trace.kernels = make_table(
        KERNEL_COLUMNS,
        {
            "device": [d for d, _, _ in rows],
            "stream": [st_ for _, st_, _ in rows],
            "start": [iv[0] for _, _, iv in rows],
            "end": [iv[1] for _, _, iv in rows],
            "name": [f"k{i % 3}" for i in range(len(rows))],
        },
    )
    for timeline in device_timelines(trace):
        on_device = [iv for d, _, iv in rows if d == timeline.device]
        assert 0 <= timeline.busy_ns <= timeline.wall_ns
        assert 0.0 <= timeline.idle_ratio <= 1.0
        assert timeline.wall_ns == max(e for _, e in on_device) - min(s for s, _ in on_device)
        assert timeline.busy_ns == int(_covered(on_device).sum())


@pytest.mark.parametrize(
    "relative",
    ["kineto/hta_nccl_a100_rank0.json.gz", "kineto/tracelens_qwen1.5-0.5b-chat_h100.json.gz"],
)
def test_diff_of_a_trace_with_itself_shows_no_change(relative: str) -> None:
    """The diff of a real trace against itself: every row 'same' (no regression), no findings."""

    from infersight.host.config import load_config
    from infersight.host.diff import diff_traces

    (trace,) = shared_traces(relative)
    report = diff_traces(trace, trace, load_config())
    rows = [*report.summary, *report.ops, *report.apis]
    assert rows and all(r.status not in ("REGRESSION", "NEW", "IMPROVED", "REMOVED") for r in rows)
    assert all(not r.delta for r in rows if r.delta is not None)
    assert not report.findings


# ---------------------------------------------------------------- readers on extreme values
# Hostile values injected into real traces (a copy per example): the readers either refuse the
# file (InputError: one clear line) or the report holds 0 <= busy <= wall, an idle ratio in
# [0, 1] and no NaN/inf anywhere, and the input is left byte-for-byte as it was.

INT64_EDGES = [0, 1, -1, 2**31 - 1, 2**31, 2**32, 2**53, 2**62 - 1, 2**62, 2**63 - 1, -(2**62), -(2**63)]
extreme_ints = st.sampled_from(INT64_EDGES) | st.integers(-(2**63), 2**63 - 1)
odd_json_values = st.one_of(
    extreme_ints,
    st.integers(2**63, 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "", "7"]),
    st.none(),
)
KINETO_FIELDS = ("ts", "dur", "device")


def _finite_everywhere(value: object) -> None:
    """Every float in a model dump is finite (the JSON writer would turn NaN into null)."""
    if isinstance(value, float):
        assert np.isfinite(value), value
    elif isinstance(value, dict):
        for item in value.values():
            _finite_everywhere(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _finite_everywhere(item)


def _check_report_or_input_error(path: Path) -> None:
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        report = analyze([path])
    except InputError as error:
        assert "\n" not in error.one_line()
    else:
        for device in report.profile.devices:
            assert 0 <= device.busy_ns <= device.wall_ns < 2**63
            assert device.idle_ratio is None or 0.0 <= device.idle_ratio <= 1.0
        _finite_everywhere(report.model_dump())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


# Each example writes and reads a whole trace: fewer examples in the quick run (see tests.conftest.examples).
@settings(max_examples=examples(ci=25, quick=10), deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from(KINETO_FIELDS), odd_json_values), max_size=6))
def test_kineto_reader_on_extreme_values(edits: list[tuple[int, str, object]]) -> None:
    with gzip.open(shared_file("kineto/hta_event_sync_multi_stream_a100.json.gz"), "rb") as fh:
        document = json.loads(fh.read())
    kernels = [e for e in document["traceEvents"] if e.get("cat") == "kernel" and e.get("ph") == "X"]
    for index, field, value in edits:
        target = kernels[index % len(kernels)]
        if field == "device":
            target.setdefault("args", {})["device"] = value
        else:
            target[field] = value
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trace.json"
        path.write_text(json.dumps(document))
        _check_report_or_input_error(path)


NSYS_COLUMNS = ("start", "end", "deviceId")
odd_reals = st.sampled_from([float("inf"), float("-inf"), 1e308, -1.0, 0.0, 2.0**64]) | st.floats(
    allow_nan=False
)


@settings(max_examples=examples(ci=15, quick=6), deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 36), st.sampled_from(NSYS_COLUMNS), extreme_ints), max_size=6),
    st.lists(
        st.tuples(st.sampled_from(("clockRate", "memoryBandwidth", "smCount", "totalMemory")), odd_reals),
        max_size=3,
    ),
)
def test_nsys_reader_on_extreme_values(
    kernel_edits: list[tuple[int, str, int]], gpu_edits: list[tuple[str, float]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.sqlite"
        shutil.copyfile(shared_file("nsys/tensorrt_conv_rtx3090.sqlite"), path)
        with closing(sqlite3.connect(path)) as conn:
            for row, column, value in kernel_edits:
                conn.execute(
                    f'UPDATE CUPTI_ACTIVITY_KIND_KERNEL SET "{column}" = ? WHERE rowid = '
                    "(SELECT rowid FROM CUPTI_ACTIVITY_KIND_KERNEL ORDER BY rowid LIMIT 1 OFFSET ?)",
                    (value, row - 1),
                )
            for column, real in gpu_edits:
                conn.execute(f'UPDATE TARGET_INFO_GPU SET "{column}" = ?', (real,))
            conn.commit()
        _check_report_or_input_error(path)
