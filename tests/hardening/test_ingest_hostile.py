"""Hostile trace inputs (issue 20, ingest side), each derived from a real file into ``tmp_path``.

The contract, as in ``test_bad_inputs.py``: a broken input ends with exit code 2 and one stderr
line naming the file (never a traceback, never a hang); an odd-but-readable one gives the right
answer (exit 0) with a note saying what was odd. Inputs — and the folder around them — are
unchanged afterwards (hash before/after, sidecar files included).

Covered: SQLite state (an un-checkpointed ``-wal``, a hot rollback journal, a live writer, a
kernel table that is a VIEW), values (int64-extreme times, device ids >= 2**32, booleans as
numbers, NaN/Infinity in TARGET_INFO_GPU, empty rank files), non-regular files (FIFO, device,
symlink loop, as a trace, a folder member or a ``-wal``), resource bounds (junk decompression
caps, a gzip bomb's peak memory, a hung ``nsys export``) and a 10 MiB kernel name.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT, shared_file

from infersight.cli import run
from infersight.ingest import load_traces, sqlite_snapshot
from infersight.ingest.checks import MAX_NAME_CHARS

KINETO_SOURCE = "kineto/hta_alexnet_a100.json.gz"  # 79 kernels on one A100
NSYS_SOURCE = "nsys/tensorrt_conv_rtx3090.sqlite"  # 36 kernels, wall 6457677 ns
KERNEL = "CUPTI_ACTIVITY_KIND_KERNEL"
CAP_ENV = "INFERSIGHT_MAX_DECOMPRESSED_BYTES"
TRACE_COMMANDS = ("analyze", "host", "overlap", "layers")


# ---------------------------------------------------------------- running and checking


def _digest(path: Path) -> str:
    """Hash of a file, or of every entry of a folder (names, kinds and contents)."""
    if path.is_symlink() or not (path.is_file() or path.is_dir()):
        return f"special:{os.lstat(path).st_mode}"
    if path.is_dir():
        return "|".join(f"{p.name}:{_digest(p)}" for p in sorted(path.iterdir()))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = run(args)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, captured.err.strip().splitlines()


def _expect_error(
    command: str, path: Path, fragment: str, capsys: pytest.CaptureFixture[str], named: Path | None = None
) -> None:
    """``infersight <command> path`` exits 2 with one line naming the file and saying ``fragment``."""
    watched = path.parent
    before = _digest(watched)
    code, lines = _run([command, str(path)], capsys)
    assert code == 2, (code, lines)
    assert len(lines) == 1, lines
    assert lines[0].startswith("infersight: error: ")
    assert (named or path).name in lines[0], lines[0]
    assert fragment.lower() in lines[0].lower(), lines[0]
    assert _digest(watched) == before, "the input or its folder was modified"


def _profile(path: Path, tmp: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    """The analyze JSON profile of ``path`` (exit 0 required; the input folder unchanged)."""
    watched = path.parent
    before = _digest(watched)
    out = tmp / "out" / f"{path.name}.report.json"
    out.parent.mkdir(exist_ok=True)
    code, lines = _run(["analyze", str(path), "--json", str(out), *extra], capsys)
    assert code == 0, lines
    assert _digest(watched) == before, "the input or its folder was modified"
    _assert_finite(out.read_text())
    profile: dict = json.loads(out.read_text())["profile"]
    for device in profile["devices"]:
        assert 0 <= device["busy_ns"] <= device["wall_ns"] < 2**63
    return profile


def _assert_finite(text: str) -> None:
    """No NaN/Infinity token in a JSON text (Python's json writes them; they are not JSON)."""

    def refuse(token: str) -> float:
        raise AssertionError(f"{token} in the JSON output")

    json.loads(text, parse_constant=refuse)


def _notes(profile: dict) -> list[str]:
    return [note for trace in profile["traces"] for note in trace["notes"]]


def _has_note(profile: dict, fragment: str) -> bool:
    return any(fragment.lower() in note.lower() for note in _notes(profile))


def _read_fine(command: str, code: int, lines: list[str]) -> bool:
    """Exit 0, or a refusal that comes after the trace was read: ``layers`` finding no per-layer
    anchor kernel in a non-LLM trace, ``ranks`` given one rank."""
    expected = {"layers": "--anchor-kernel", "ranks": "at least two ranks"}
    return code == 0 or (code == 2 and command in expected and expected[command] in lines[-1])


def _commands_succeed(path: Path, capsys: pytest.CaptureFixture[str], out: Path | None = None) -> None:
    """Trace commands read ``path`` without an error, the input unchanged.

    With an ``out`` folder (for the files they write), every command that reads a trace, not
    only :data:`TRACE_COMMANDS`.
    """
    before = _digest(path.parent)
    runs = [[command, str(path)] for command in TRACE_COMMANDS]
    if out is not None:
        out.mkdir(exist_ok=True)
        runs += [
            ["ranks", str(path)],
            ["report", str(path), "-o", str(out / "report.html")],
            ["export", str(path), "-o", str(out / "model.json")],
            ["diff", str(path), str(path)],
            ["ncu-plan", str(path)],
        ]
    for args in runs:
        code, lines = _run(args, capsys)
        assert _read_fine(args[0], code, lines), (args[0], lines)
    assert _digest(path.parent) == before


# ---------------------------------------------------------------- builders


def _folder(tmp: Path, name: str = "in") -> Path:
    folder = tmp / name
    folder.mkdir()
    return folder


def _nsys_copy(tmp: Path) -> Path:
    out = _folder(tmp) / "report.sqlite"
    shutil.copyfile(shared_file(NSYS_SOURCE), out)
    return out


def _nsys_edit(tmp: Path, *statements: str) -> Path:
    out = _nsys_copy(tmp)
    with sqlite3.connect(out) as conn:
        for statement in statements:
            conn.execute(statement)
    sqlite3.connect(out).close()
    return out


def _kineto_document() -> dict:
    with gzip.open(shared_file(KINETO_SOURCE), "rb") as fh:
        document: dict = json.loads(fh.read())
    return document


def _kernels(document: dict) -> list[dict]:
    return [e for e in document["traceEvents"] if e.get("cat") == "kernel" and e.get("ph") == "X"]


def _kineto_edited(tmp: Path, edit: Callable[[list[dict]], None]) -> Path:
    document = _kineto_document()
    edit(_kernels(document))
    out = _folder(tmp) / "trace.json"
    out.write_text(json.dumps(document))
    return out


def _wal_with_committed_delete(tmp: Path) -> tuple[Path, int]:
    """An export whose -wal holds a committed DELETE of half the kernels, not checkpointed.

    The files are copied while the writer still has the database open (SQLite would fold the
    log in when its last connection closes). Returns the export and the committed kernel count.
    """
    work = _folder(tmp, "writer") / "report.sqlite"
    shutil.copyfile(shared_file(NSYS_SOURCE), work)
    conn = sqlite3.connect(work)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(f"DELETE FROM {KERNEL} WHERE rowid IN (SELECT rowid FROM {KERNEL} ORDER BY start LIMIT 18)")
    conn.commit()
    folder = _folder(tmp)
    shutil.copyfile(work, folder / "report.sqlite")
    shutil.copyfile(work.with_name("report.sqlite-wal"), folder / "report.sqlite-wal")
    conn.close()
    return folder / "report.sqlite", 18


def _hot_journal(tmp: Path) -> Path:
    """An export caught mid-transaction: shifted kernel pages already in the file, originals in
    a hot ``-journal`` (the writer's cache was too small to hold the change)."""
    work = _folder(tmp, "writer") / "report.sqlite"
    shutil.copyfile(shared_file(NSYS_SOURCE), work)
    conn = sqlite3.connect(work, isolation_level=None)
    conn.execute("PRAGMA cache_size=1")
    conn.execute("BEGIN")
    conn.execute(f'UPDATE {KERNEL} SET start = start + 1000000000000, "end" = "end" + 1000000000000')
    conn.execute("UPDATE StringIds SET value = value || ' (uncommitted)'")
    folder = _folder(tmp)
    shutil.copyfile(work, folder / "report.sqlite")
    shutil.copyfile(work.with_name("report.sqlite-journal"), folder / "report.sqlite-journal")
    conn.execute("ROLLBACK")
    conn.close()
    return folder / "report.sqlite"


@pytest.fixture
def committed_wall(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> int:
    """wall_ns of the untouched export (6457677 ns)."""
    reference = _folder(tmp_path, "reference") / "report.sqlite"
    shutil.copyfile(shared_file(NSYS_SOURCE), reference)
    wall: int = _profile(reference, tmp_path, capsys)["devices"][0]["wall_ns"]
    return wall


# ---------------------------------------------------------------- 1. SQLite state


def test_uncheckpointed_wal_is_read_in_its_committed_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, committed = _wal_with_committed_delete(tmp_path)
    with sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True) as stale:
        assert stale.execute(f"SELECT COUNT(*) FROM {KERNEL}").fetchone()[0] == 36  # what immutable saw
    profile = _profile(path, tmp_path, capsys)
    assert sum(d["kernel_count"] for d in profile["devices"]) == committed
    assert _has_note(profile, "committed changes, not yet in the file, were applied")
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.sqlite", "report.sqlite-wal"]  # no -shm
    _commands_succeed(path, capsys, tmp_path / "written")


def test_hot_journal_is_rolled_back_on_a_private_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], committed_wall: int
) -> None:
    path = _hot_journal(tmp_path)
    profile = _profile(path, tmp_path, capsys)
    assert profile["devices"][0]["wall_ns"] == committed_wall == 6457677  # not 1000006457677
    assert sum(d["kernel_count"] for d in profile["devices"]) == 36
    assert _has_note(profile, "interrupted write it records was rolled back")
    assert not any("(uncommitted)" in k["name"] for k in profile["kernels"])
    _commands_succeed(path, capsys, tmp_path / "written")


LIVE_WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA cache_size=1")
conn.execute("BEGIN")
conn.execute('UPDATE CUPTI_ACTIVITY_KIND_KERNEL SET start = start + 1000000000000')
conn.execute("UPDATE StringIds SET value = value || 'x'")
print("ready", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


@pytest.fixture
def live_writer(tmp_path: Path) -> Iterator[Path]:
    """An export with another process in the middle of writing it (exclusive lock, pages spilled)."""
    path = _nsys_copy(tmp_path)
    writer = subprocess.Popen(
        [sys.executable, "-c", LIVE_WRITER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        yield path
    finally:
        assert writer.stdin is not None
        writer.stdin.write("\n")
        writer.stdin.close()
        writer.wait(timeout=30)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="writer locks are probed with F_GETLK")
def test_database_locked_by_a_writer_waits_then_fails_clearly(
    live_writer: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_snapshot, "BUSY_WAIT_S", 0.3)  # the wait's length is not the point
    started = time.monotonic()
    code, lines = _run(["analyze", str(live_writer)], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert live_writer.name in lines[0] and "being written by another process" in lines[0]
    assert "more than 0.3 s" in lines[0]  # it waited, then gave up
    assert time.monotonic() - started < 60  # not forever


def test_kernel_table_as_a_view(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _nsys_edit(
        tmp_path,
        f"ALTER TABLE {KERNEL} RENAME TO kernel_rows",
        f"CREATE VIEW {KERNEL} AS SELECT * FROM kernel_rows",
    )
    profile = _profile(path, tmp_path, capsys)
    assert profile["devices"][0]["kernel_count"] == 36
    assert profile["devices"][0]["wall_ns"] == 6457677


def test_fifo_beside_the_export_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _nsys_copy(tmp_path)
    os.mkfifo(path.with_name("report.sqlite-wal"))
    with _unblocker(path.with_name("report.sqlite-wal")):
        _expect_error("analyze", path, "named pipe", capsys, named=path.with_name("report.sqlite-wal"))


# ---------------------------------------------------------------- 2. values


def test_nsys_int64_extreme_times_are_dropped_not_wrapped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _nsys_edit(
        tmp_path,
        f'UPDATE {KERNEL} SET start = 9223372036854775800, "end" = 9223372036854775807 '
        f"WHERE rowid = (SELECT MIN(rowid) FROM {KERNEL})",
        f'UPDATE {KERNEL} SET start = -9223372036854775808, "end" = -9223372036854775805 '
        f"WHERE rowid = (SELECT MAX(rowid) FROM {KERNEL})",
    )
    profile = _profile(path, tmp_path, capsys)
    assert profile["devices"][0]["kernel_count"] == 34
    assert _has_note(profile, "out-of-range start/end were dropped")
    assert 0 < profile["devices"][0]["wall_ns"] <= 6457677


def test_nsys_all_kernels_out_of_range_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _nsys_edit(
        tmp_path, f'UPDATE {KERNEL} SET start = 9223372036854775000, "end" = 9223372036854775807'
    )
    _expect_error("analyze", path, "none of the kernel rows", capsys)


def test_kineto_int64_extreme_times_are_dropped_not_wrapped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def edit(kernels: list[dict]) -> None:
        kernels[0]["ts"], kernels[0]["dur"] = 9.2e15, 9.2e15
        kernels[1]["ts"], kernels[1]["dur"] = -9.2e15, 1e16
        kernels[2]["dur"] = 2**62

    profile = _profile(_kineto_edited(tmp_path, edit), tmp_path, capsys)
    assert sum(d["kernel_count"] for d in profile["devices"]) == 79 - 3
    assert _has_note(profile, "out of range) were dropped")


@pytest.mark.parametrize("reader", ["nsys", "kineto"])
def test_device_ids_beyond_int32_are_not_folded_into_device_0(
    reader: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if reader == "nsys":
        path = _nsys_edit(
            tmp_path,
            f"UPDATE {KERNEL} SET deviceId = 4294967296 WHERE rowid IN (SELECT rowid FROM {KERNEL} LIMIT 5)",
        )
        expected, fragment = 36 - 5, "deviceid that is not a 32-bit integer"
    else:

        def edit(kernels: list[dict]) -> None:
            for kernel in kernels[:5]:
                kernel["args"]["device"] = 2**32
            kernels[5]["args"]["device"] = True

        path, expected, fragment = _kineto_edited(tmp_path, edit), 79 - 6, "device id that is not a 32-bit"
    profile = _profile(path, tmp_path, capsys)
    assert [d["device"] for d in profile["devices"]] == [0]
    assert profile["devices"][0]["kernel_count"] == expected
    assert _has_note(profile, fragment)
    _commands_succeed(path, capsys)


def test_kineto_booleans_are_not_timestamps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def edit(kernels: list[dict]) -> None:
        kernels[0]["ts"] = True
        kernels[1]["dur"] = False
        kernels[2]["ts"] = False

    path = _kineto_edited(tmp_path, edit)
    profile = _profile(path, tmp_path, capsys)
    assert profile["devices"][0]["kernel_count"] == 79 - 3
    assert _has_note(profile, "boolean")
    _commands_succeed(path, capsys)


def test_kineto_all_timestamps_boolean_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def edit(kernels: list[dict]) -> None:
        for kernel in kernels:
            kernel["ts"] = True

    _expect_error(
        "analyze", _kineto_edited(tmp_path, edit), "none of the 79 gpu kernel events is usable", capsys
    )


def test_target_info_infinity_and_nan_are_ignored_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _nsys_edit(
        tmp_path,
        "UPDATE TARGET_INFO_GPU SET clockRate = 9e999, memoryBandwidth = -9e999, smCount = 'many', "
        "totalMemory = 1e300",
    )
    profile = _profile(path, tmp_path, capsys)
    assert _has_note(profile, "not a finite positive number")
    assert profile["devices"][0]["gpu_name"] == "NVIDIA GeForce RTX 3090"
    _assert_finite(json.dumps(profile))


def _negative_numbers(value: object, key: str = "") -> list[str]:
    """Keys of negative byte/bandwidth figures anywhere in a JSON document."""
    if isinstance(value, dict):
        return [k for sub, item in value.items() for k in _negative_numbers(item, str(sub))]
    if isinstance(value, list):
        return [k for item in value for k in _negative_numbers(item, key)]
    sized = any(word in key.lower() for word in ("bytes", "bandwidth", "gbps"))
    return [key] if sized and isinstance(value, int | float) and value < 0 else []


@pytest.mark.parametrize("reader", ["nsys", "kineto"])
def test_negative_copy_sizes_become_unknown(
    reader: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if reader == "nsys":
        path = _nsys_edit(tmp_path, "UPDATE CUPTI_ACTIVITY_KIND_MEMCPY SET bytes = -4096")
    else:
        document = _kineto_document()
        for event in document["traceEvents"]:
            if event.get("cat") == "gpu_memcpy":
                event["args"]["bytes"] = -4096
        path = _folder(tmp_path) / "trace.json"
        path.write_text(json.dumps(document))
    profile = _profile(path, tmp_path, capsys)
    assert _has_note(profile, "negative byte count")
    out = tmp_path / "overlap.json"
    code, lines = _run(["overlap", str(path), "--json", str(out)], capsys)
    assert code == 0, lines
    assert _negative_numbers(json.loads(out.read_text())) == []


def test_kineto_device_properties_out_of_range_are_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _kineto_document()
    document["deviceProperties"][0].update(numSms=True, totalGlobalMem=2**70, computeMajor=-8)
    document["deviceProperties"].append({"id": 2**40, "name": "ghost", "numSms": 10})
    path = _folder(tmp_path) / "trace.json"
    path.write_text(json.dumps(document))
    profile = _profile(path, tmp_path, capsys)
    assert [d["device"] for d in profile["devices"]] == [0]
    gpus = [gpu for trace in profile["traces"] for gpu in trace["gpus"]]
    assert all("ghost" not in json.dumps(gpu) for gpu in gpus)
    assert str(2**70) not in json.dumps(profile)


@pytest.mark.parametrize("empty", ["zero_bytes", "empty_gzip"])
def test_empty_rank_file_in_a_folder_is_reported(
    empty: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path, "ranks")
    shutil.copyfile(shared_file(KINETO_SOURCE), folder / "rank-0.json.gz")
    bad = folder / "rank-1.json.gz"
    bad.write_bytes(b"" if empty == "zero_bytes" else gzip.compress(b""))
    _expect_error("analyze", folder, "empty", capsys, named=bad)
    _expect_error("host", folder, "empty", capsys, named=bad)


# ---------------------------------------------------------------- 3. regular files, bounded work


class _unblocker:
    """Opens a FIFO for writing after a delay, so that a regression fails instead of hanging."""

    def __init__(self, fifo: Path, delay_s: float = 20.0) -> None:
        self._fifo, self._delay, self._done = fifo, delay_s, threading.Event()

    def _release(self) -> None:
        if not self._done.wait(self._delay):
            with open(self._fifo, "wb"):
                pass

    def __enter__(self) -> None:
        self._thread = threading.Thread(target=self._release, daemon=True)
        self._thread.start()

    def __exit__(self, *_: object) -> None:
        self._done.set()


@pytest.mark.parametrize("command", TRACE_COMMANDS)
def test_fifo_as_trace_is_refused_up_front(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = _folder(tmp_path) / "trace.json"
    os.mkfifo(fifo)
    with _unblocker(fifo):
        _expect_error(command, fifo, "named pipe", capsys)


def test_fifo_in_a_folder_of_ranks_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path, "ranks")
    shutil.copyfile(shared_file(KINETO_SOURCE), folder / "rank-0.json.gz")
    fifo = folder / "rank-1.json.gz"
    os.mkfifo(fifo)
    with _unblocker(fifo):
        _expect_error("analyze", folder, "named pipe", capsys, named=fifo)


@pytest.mark.parametrize("where", ["trace", "folder member"])
def test_symlink_loop_is_refused(where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path)
    loop = folder / "rank-1.json"
    os.symlink(loop, loop)
    if where == "trace":
        _expect_error("analyze", loop, "symbolic link loop", capsys)
    else:
        shutil.copyfile(shared_file(KINETO_SOURCE), folder / "rank-0.json.gz")
        _expect_error("analyze", folder, "symbolic link loop", capsys, named=loop)


def test_device_as_trace_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = _folder(tmp_path) / "trace.json.gz"
    os.symlink("/dev/zero", link)
    _expect_error("analyze", link, "a device", capsys)
    _expect_error("host", link, "a device", capsys)


@pytest.mark.parametrize("value", ["1e400", "nan", "inf", "-5", "0", "4G", "1.5", "9" * 400])
def test_junk_decompression_cap_is_an_input_error(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CAP_ENV, value)
    path = _folder(tmp_path) / "trace.json.gz"
    shutil.copyfile(shared_file(KINETO_SOURCE), path)
    _expect_error("analyze", path, CAP_ENV, capsys)


def test_decompression_cap_in_exponent_form_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CAP_ENV, "1e9")
    path = _folder(tmp_path) / "trace.json.gz"
    shutil.copyfile(shared_file(KINETO_SOURCE), path)
    assert _profile(path, tmp_path, capsys)["devices"][0]["kernel_count"] == 79


PEAK_PROBE = """
import os, resource, sys
from infersight.errors import InputError
from infersight.ingest.kineto import read_kineto
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    read_kineto(sys.argv[1])
    outcome = "read"
except InputError as exc:
    outcome = exc.problem
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(outcome)
print((peak - base) * 1024)
"""


def _peak_growth(path: Path, cap: int) -> tuple[str, int]:
    """(outcome, bytes of peak-RSS growth) of reading ``path`` in a fresh interpreter."""
    env = {**os.environ, CAP_ENV: str(cap), "PYTHONPATH": str(REPO_ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", PEAK_PROBE, str(path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    outcome, growth = done.stdout.strip().splitlines()
    return outcome, int(growth)


@pytest.mark.slow  # hundreds of MiB of text, read in a fresh interpreter
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in kiB on Linux")
def test_gzip_bomb_stops_at_the_cap_without_holding_twice_the_cap(tmp_path: Path) -> None:
    cap = 128 << 20
    bomb = _folder(tmp_path) / "bomb.json.gz"
    squeezer = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    with bomb.open("wb") as fh:  # 512 MiB of blanks inside a JSON list
        fh.write(squeezer.compress(b"["))
        for _ in range(8):
            fh.write(squeezer.compress(b" " * (64 << 20)))
        fh.write(squeezer.compress(b"]") + squeezer.flush())
    outcome, growth = _peak_growth(bomb, cap)
    assert "once decompressed" in outcome
    assert growth < cap + (96 << 20), f"peak grew by {growth / 2**20:.0f} MiB for a {cap >> 20} MiB cap"


@pytest.mark.slow  # hundreds of MiB of text, read in a fresh interpreter
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in kiB on Linux")
def test_mostly_blank_json_is_not_held_twice(tmp_path: Path) -> None:
    raw = gzip.decompress(shared_file(KINETO_SOURCE).read_bytes())
    at = raw.index(b"[", raw.index(b"traceEvents")) + 1
    sparse = _folder(tmp_path) / "trace.json"
    blank = 256 << 20
    with sparse.open("wb") as fh:
        fh.write(raw[:at])
        for _ in range(blank >> 24):
            fh.write(b" " * (1 << 24))
        fh.write(raw[at:])
    outcome, growth = _peak_growth(sparse, 1 << 40)
    assert outcome == "read"
    assert growth < blank + (96 << 20), f"peak grew by {growth / 2**20:.0f} MiB for {blank >> 20} MiB"


HUNG_NSYS = """#!{python}
import time
time.sleep(60)
"""


@pytest.fixture
def hung_nsys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake ``nsys`` on PATH that never finishes; returns a report to export."""
    bin_dir = _folder(tmp_path, "bin")
    script = bin_dir / "nsys"
    script.write_text(HUNG_NSYS.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("INFERSIGHT_CACHE", str(tmp_path / "cache"))
    report = _folder(tmp_path) / "run.nsys-rep"
    report.write_bytes(b"not really a report")
    return report


def test_hung_nsys_export_is_stopped_by_the_timeout(
    hung_nsys: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERSIGHT_NSYS_EXPORT_TIMEOUT", "1")
    started = time.monotonic()
    _expect_error("analyze", hung_nsys, "did not finish within 1 s", capsys)
    assert time.monotonic() - started < 30
    assert not any((hung_nsys.parent.parent / "cache").glob("*.partial-*"))


@pytest.mark.parametrize("value", ["soon", "nan", "-1", "0", "1e400"])
def test_junk_export_timeout_is_an_input_error(
    value: str, hung_nsys: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERSIGHT_NSYS_EXPORT_TIMEOUT", value)
    _expect_error("analyze", hung_nsys, "INFERSIGHT_NSYS_EXPORT_TIMEOUT", capsys)


# ---------------------------------------------------------------- 4. a 10 MiB kernel name

TEN_MIB = 10 << 20


@pytest.mark.slow
@pytest.mark.parametrize("reader", ["kineto", "nsys"])
def test_ten_mib_kernel_name_costs_what_a_short_one_costs(
    reader: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if reader == "kineto":

        def edit(kernels: list[dict]) -> None:
            kernels[0]["name"] = "void huge<" + "x" * TEN_MIB + ">()"
            kernels[1]["name"] = "void huge<" + "x" * TEN_MIB + "y>()"  # differs only past the cut

        path, expected_long = _kineto_edited(tmp_path, edit), 2
    else:
        path = _nsys_edit(
            tmp_path,
            f"UPDATE StringIds SET value = 'void huge<' || printf('%.{TEN_MIB}c', 'x') || '>()' "
            f"WHERE id = (SELECT demangledName FROM {KERNEL} ORDER BY start LIMIT 1)",
        )
        expected_long = 1
    started = time.monotonic()
    profile = _profile(path, tmp_path, capsys, "--top", "1000")
    _commands_succeed(path, capsys, tmp_path / "written")
    assert time.monotonic() - started < 120  # 10 commands; host alone took > 120 s before
    assert _has_note(
        profile, f"{expected_long} name(s) longer than {MAX_NAME_CHARS:,} characters were shortened"
    )
    long_names = [k["full_name"] for k in profile["kernels"] if "chars #" in k["full_name"]]
    assert long_names and all(len(n) <= MAX_NAME_CHARS for n in long_names)
    [trace] = load_traces(path)
    names = trace.kernels["name"].cat.categories
    assert sum("chars #" in n for n in names) == expected_long  # kept apart past the cut
    assert max(map(len, names)) <= MAX_NAME_CHARS
