"""Bad-input corpus: damaged or odd variants of the real traces, each run through ``infersight analyze``.

Every case is generated here, into ``tmp_path``, from a real trace under ``../shared/data``. The
contract (issue 8): a broken input ends with exit code 2 and one stderr line that names the file,
never a traceback; a valid-but-odd input gives a report (exit 0) whose notes say what was odd.
In both cases the input file is byte-for-byte unchanged afterwards (hash before/after).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import shared_file

from infersight.cli import run

KINETO_SOURCE = "kineto/hta_alexnet_a100.json.gz"  # 79 kernels, A100: fast to analyse
KINETO_RANKS = "kineto/hta_sampled_128ranks"
NSYS_SOURCE = "nsys/tensorrt_conv_rtx3090.sqlite"  # 36 kernels, runtime API, NVTX, memcpy
NSYS_OLD_SOURCE = "nsys/vecadd_t4_nsys2022.sqlite"
MAX_DECOMPRESSED_ENV = "INFERSIGHT_MAX_DECOMPRESSED_BYTES"


@dataclass(frozen=True)
class Case:
    """A damaged input: how to build it, and what ``analyze`` must do with it."""

    build: Callable[[Path], Path]  # tmp_path -> the input path to analyse
    expect_error: str | None  # a fragment of the one-line error, or None: a report must come
    expect_note: str | None = None  # a fragment of a trace note the report must carry
    env: tuple[tuple[str, str], ...] = ()


# ---------------------------------------------------------------- builders: Kineto


def _kineto_events() -> dict:
    with gzip.open(shared_file(KINETO_SOURCE), "rb") as fh:
        return json.loads(fh.read())


def _kineto_raw() -> bytes:
    with gzip.open(shared_file(KINETO_SOURCE), "rb") as fh:
        return fh.read()


def _write_json(tmp: Path, document: object, name: str = "trace.json") -> Path:
    out = tmp / name
    out.write_text(json.dumps(document))
    return out


def _write_bytes(tmp: Path, data: bytes, name: str) -> Path:
    out = tmp / name
    out.write_bytes(data)
    return out


def _kernels(document: dict) -> list[dict]:
    return [e for e in document["traceEvents"] if e.get("cat") == "kernel" and e.get("ph") == "X"]


def _edit_kernels(edit: Callable[[list[dict]], None]) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        document = _kineto_events()
        edit(_kernels(document))
        return _write_json(tmp, document)

    return build


def _truncated_gz(tmp: Path) -> Path:
    data = shared_file(KINETO_SOURCE).read_bytes()
    return _write_bytes(tmp, data[: len(data) // 2], "trace.json.gz")


def _bit_flipped_gz(tmp: Path) -> Path:
    data = bytearray(shared_file(KINETO_SOURCE).read_bytes())
    data[len(data) // 2] ^= 0x10
    return _write_bytes(tmp, bytes(data), "trace.json.gz")


def _gz_bad_header(tmp: Path) -> Path:
    data = bytearray(shared_file(KINETO_SOURCE).read_bytes())
    data[2] = 0x07  # compression method: only 8 (deflate) exists
    return _write_bytes(tmp, bytes(data), "trace.json.gz")


def _gz_trailing_garbage(tmp: Path) -> Path:
    return _write_bytes(tmp, shared_file(KINETO_SOURCE).read_bytes() + b"\x00garbage", "trace.json.gz")


def _zip_bomb(tmp: Path) -> Path:
    """64 MiB of spaces compress to ~64 kB; the cap (set by env in the case) is 8 MiB."""
    return _write_bytes(tmp, gzip.compress(b"[" + b" " * (64 << 20) + b"]", compresslevel=1), "bomb.json.gz")


def _truncated_json(tmp: Path) -> Path:
    raw = _kineto_raw()
    return _write_bytes(tmp, raw[: int(len(raw) * 0.6)], "trace.json")


def _bit_flipped_json(tmp: Path) -> Path:
    """One bit of a structural byte flipped: the first '{' of an event becomes 'z'."""
    raw = bytearray(_kineto_raw())
    at = raw.index(b"{", raw.index(b"traceEvents"))
    raw[at] ^= 0x01
    return _write_bytes(tmp, bytes(raw), "trace.json")


def _json_with_nan(tmp: Path) -> Path:
    document = _kineto_events()
    _kernels(document)[0]["dur"] = float("nan")
    out = tmp / "trace.json"
    out.write_text(json.dumps(document))  # Python writes the bare token NaN (not JSON)
    return out


def _json_with_huge_numbers(tmp: Path) -> Path:
    raw = json.dumps(_kineto_events())
    return _write_bytes(tmp, raw.replace('"dur": ', '"dur": 1e400 * 0 + ', 1).encode(), "trace.json")


def _json_huge_ts(kernels: list[dict]) -> None:
    kernels[0]["ts"] = 1e300
    kernels[1]["dur"] = 10**30


def _json_duplicate_keys(tmp: Path) -> Path:
    """Every kernel's "dur" written twice; JSON parsers keep the last one (here the real value)."""
    raw = json.dumps(_kineto_events())
    raw = raw.replace('"cat": "kernel",', '"cat": "kernel", "dur": -5,')
    return _write_bytes(tmp, raw.encode(), "trace.json")


def _negative_durations(kernels: list[dict]) -> None:
    for k in kernels[:5]:
        k["dur"] = -abs(k.get("dur", 1)) - 1


def _zero_durations(kernels: list[dict]) -> None:
    for k in kernels[:10]:
        k["dur"] = 0


def _overlapping_on_one_stream(kernels: list[dict]) -> None:
    """The second kernel of the first stream starts before the first one ends."""
    stream = kernels[0]["tid"]
    same = [k for k in kernels if k["tid"] == stream]
    same[1]["ts"] = same[0]["ts"] + same[0]["dur"] / 2
    same[1]["dur"] = max(same[1]["dur"], same[0]["dur"])


def _long_names(kernels: list[dict]) -> None:
    for k in kernels[:3]:
        k["name"] = "void very_long_template_kernel<" + "float, " * 1500 + "int>(int)"  # ~10 kB


def _empty_names(kernels: list[dict]) -> None:
    for k in kernels[:3]:
        k["name"] = ""


def _non_utf8_json(tmp: Path) -> Path:
    raw = json.dumps(_kineto_events()).encode()
    name = _kernels(_kineto_events())[0]["name"].encode()
    return _write_bytes(tmp, raw.replace(name, name[:5] + b"\xff\xfe" + name[5:], 1), "trace.json")


def _events_not_a_list(tmp: Path) -> Path:
    return _write_json(tmp, {"traceEvents": {"ph": "X"}})


def _top_level_scalar(tmp: Path) -> Path:
    return _write_bytes(tmp, b"[42]", "trace.json")


def _empty_json_file(tmp: Path) -> Path:
    return _write_bytes(tmp, b"   \n", "trace.json")


def _empty_gz(tmp: Path) -> Path:
    return _write_bytes(tmp, gzip.compress(b""), "trace.json.gz")


def _kernels_without_ts(kernels: list[dict]) -> None:
    for k in kernels:
        k.pop("ts", None)


def _string_timestamps(kernels: list[dict]) -> None:
    for k in kernels[:4]:
        k["ts"] = "soon"


def _no_kernels(tmp: Path) -> Path:
    document = _kineto_events()
    document["traceEvents"] = [e for e in document["traceEvents"] if e.get("cat") != "kernel"]
    return _write_json(tmp, document)


def _random_bytes(tmp: Path) -> Path:
    return _write_bytes(tmp, bytes(range(256)) * 64, "trace.json")


def _ranks_with_clock_offset(tmp: Path) -> Path:
    """Two real ranks, the second one's clock shifted by +1 hour: per-rank figures must not change."""
    folder = tmp / "ranks"
    folder.mkdir()
    shutil.copyfile(shared_file(f"{KINETO_RANKS}/rank-0.json.gz"), folder / "rank-0.json.gz")
    with gzip.open(shared_file(f"{KINETO_RANKS}/rank-1.json.gz"), "rb") as fh:
        document = json.loads(fh.read())
    for event in document["traceEvents"]:
        if isinstance(event.get("ts"), int | float):
            event["ts"] += 3600e6
    (folder / "rank-1.json.gz").write_bytes(gzip.compress(json.dumps(document).encode()))
    return folder


def _empty_folder(tmp: Path) -> Path:
    folder = tmp / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a trace")
    return folder


# ---------------------------------------------------------------- builders: Nsight Systems SQLite


def _nsys_copy(tmp: Path, source: str = NSYS_SOURCE) -> Path:
    out = tmp / "report.sqlite"
    shutil.copyfile(shared_file(source), out)
    return out


def _nsys_edit(*statements: str, source: str = NSYS_SOURCE) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        out = _nsys_copy(tmp, source)
        conn = sqlite3.connect(out)
        try:
            for statement in statements:
                conn.execute(statement)
            conn.commit()
        finally:
            conn.close()
        return out

    return build


def _truncated_sqlite(tmp: Path) -> Path:
    data = shared_file(NSYS_SOURCE).read_bytes()
    return _write_bytes(tmp, data[: len(data) // 3], "report.sqlite")


def _bit_flipped_sqlite_header(tmp: Path) -> Path:
    data = bytearray(shared_file(NSYS_SOURCE).read_bytes())
    data[16] ^= 0x40  # page size field: no longer a power of two
    return _write_bytes(tmp, bytes(data), "report.sqlite")


def _bit_flipped_sqlite_pages(tmp: Path) -> Path:
    """Every byte of the second page (the root of the first tables) inverted."""
    data = bytearray(shared_file(NSYS_SOURCE).read_bytes())
    page = int.from_bytes(data[16:18], "big")
    page = 65536 if page == 1 else page
    for i in range(page, min(2 * page, len(data))):
        data[i] ^= 0xFF
    return _write_bytes(tmp, bytes(data), "report.sqlite")


def _sqlite_header_only(tmp: Path) -> Path:
    return _write_bytes(tmp, b"SQLite format 3\x00", "report.sqlite")


def _empty_sqlite(tmp: Path) -> Path:
    out = tmp / "report.sqlite"
    sqlite3.connect(out).close()
    conn = sqlite3.connect(out)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    return out


_KERNEL = "CUPTI_ACTIVITY_KIND_KERNEL"

CASES: dict[str, Case] = {
    # --- gzip / JSON damage
    "kineto_truncated_gz": Case(_truncated_gz, "truncated"),
    "kineto_bit_flipped_gz": Case(_bit_flipped_gz, "corrupt"),
    "kineto_gz_bad_header": Case(_gz_bad_header, "gzip"),
    "kineto_gz_trailing_garbage": Case(_gz_trailing_garbage, "corrupt gzip"),
    "kineto_zip_bomb": Case(_zip_bomb, "decompressed", env=((MAX_DECOMPRESSED_ENV, str(8 << 20)),)),
    "kineto_real_trace_over_cap": Case(
        lambda tmp: shared_file(KINETO_SOURCE), "decompressed", env=((MAX_DECOMPRESSED_ENV, "1000"),)
    ),
    "kineto_truncated_json": Case(_truncated_json, "JSON"),
    "kineto_bit_flipped_json": Case(_bit_flipped_json, "JSON"),
    "kineto_nan": Case(_json_with_nan, "JSON"),
    "kineto_expression_for_number": Case(_json_with_huge_numbers, "JSON"),
    "kineto_huge_numbers": Case(_edit_kernels(_json_huge_ts), None, "dropped"),
    "kineto_duplicate_keys": Case(_json_duplicate_keys, None),
    "kineto_negative_durations": Case(_edit_kernels(_negative_durations), None, "dropped"),
    "kineto_zero_durations": Case(_edit_kernels(_zero_durations), None),
    "kineto_overlap_one_stream": Case(_edit_kernels(_overlapping_on_one_stream), None, "overlap"),
    "kineto_10kb_names": Case(_edit_kernels(_long_names), None),
    "kineto_empty_names": Case(_edit_kernels(_empty_names), None),
    "kineto_non_utf8_name": Case(_non_utf8_json, None, "invalid UTF-8"),
    "kineto_events_not_a_list": Case(_events_not_a_list, "traceEvents"),
    "kineto_top_level_scalar": Case(_top_level_scalar, "not JSON objects"),
    "kineto_whitespace_only": Case(_empty_json_file, "not a recognised trace"),
    "kineto_empty_gz": Case(_empty_gz, "empty"),
    "kineto_no_timestamps": Case(_edit_kernels(_kernels_without_ts), "kernel"),
    "kineto_string_timestamps": Case(_edit_kernels(_string_timestamps), None, "dropped"),
    "kineto_no_kernels": Case(_no_kernels, "no GPU kernels"),
    "random_bytes_named_json": Case(_random_bytes, "not a recognised trace"),
    "ranks_clock_offset": Case(_ranks_with_clock_offset, None, "clock"),
    "folder_without_traces": Case(_empty_folder, "no traces"),
    # --- SQLite damage
    "nsys_truncated": Case(_truncated_sqlite, "corrupt"),
    "nsys_bit_flipped_header": Case(_bit_flipped_sqlite_header, "corrupt"),
    "nsys_bit_flipped_page": Case(_bit_flipped_sqlite_pages, "corrupt"),
    "nsys_header_only": Case(_sqlite_header_only, "corrupt"),
    "sqlite_not_nsys": Case(_empty_sqlite, "not an Nsight Systems export"),
    "nsys_no_kernel_table": Case(_nsys_edit(f"DROP TABLE {_KERNEL}"), "kernel"),
    "nsys_no_stringids": Case(_nsys_edit("DROP TABLE StringIds"), "StringIds"),
    "nsys_kernel_without_start": Case(_nsys_edit(f"ALTER TABLE {_KERNEL} DROP COLUMN start"), "lacks column"),
    "nsys_no_runtime_table": Case(
        _nsys_edit("DROP TABLE CUPTI_ACTIVITY_KIND_RUNTIME"), None, "API calls were not recorded"
    ),
    "nsys_no_nvtx_table": Case(_nsys_edit("DROP TABLE NVTX_EVENTS"), None, "NVTX"),
    "nsys_end_before_start": Case(
        _nsys_edit(
            f'UPDATE {_KERNEL} SET "end" = start - 5 WHERE rowid IN (SELECT rowid FROM {_KERNEL} LIMIT 3)'
        ),
        None,
        "dropped",
    ),
    "nsys_zero_durations": Case(
        _nsys_edit(
            f'UPDATE {_KERNEL} SET "end" = start WHERE rowid IN (SELECT rowid FROM {_KERNEL} LIMIT 5)'
        ),
        None,
    ),
    "nsys_null_correlation": Case(_nsys_edit(f"UPDATE {_KERNEL} SET correlationId = NULL"), None, "launch"),
    "nsys_text_in_int_column": Case(
        _nsys_edit(f"UPDATE {_KERNEL} SET streamId = 'x' WHERE rowid = (SELECT MIN(rowid) FROM {_KERNEL})"),
        "corrupt",
    ),
    "nsys_all_kernels_invalid": Case(_nsys_edit(f'UPDATE {_KERNEL} SET "end" = start - 1'), "kernel"),
    "nsys_overlap_one_stream": Case(
        _nsys_edit(
            f'UPDATE {_KERNEL} SET start = start - 1000000, "end" = "end" + 1000000 '
            f"WHERE rowid = (SELECT rowid FROM {_KERNEL} ORDER BY start LIMIT 1 OFFSET 5)"
        ),
        None,
        "overlap",
    ),
    "nsys_unknown_name_id": Case(_nsys_edit(f"UPDATE {_KERNEL} SET demangledName = 999999999"), None),
    "nsys_10kb_name": Case(
        _nsys_edit(
            f"UPDATE StringIds SET value = value || printf('%.10000c', 'x') WHERE id IN "
            f"(SELECT demangledName FROM {_KERNEL})"
        ),
        None,
    ),
    "nsys_non_utf8_name": Case(
        _nsys_edit(
            f"UPDATE StringIds SET value = CAST(x'ff6b65726e656cfe' AS TEXT) WHERE id IN "
            f"(SELECT demangledName FROM {_KERNEL} LIMIT 1)"
        ),
        None,
    ),
    "nsys_empty_nvtx_text": Case(_nsys_edit("UPDATE NVTX_EVENTS SET text = '', textId = NULL"), None),
    "nsys_old_schema_no_runtime": Case(
        _nsys_edit("DROP TABLE CUPTI_ACTIVITY_KIND_RUNTIME", source=NSYS_OLD_SOURCE), None, "API"
    ),
}


def _digest(path: Path) -> str:
    if path.is_dir():
        return "|".join(f"{p.name}:{_digest(p)}" for p in sorted(path.iterdir()))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.reads_shared_files  # the real trace over the decompression cap is read, not cached
@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[name]
    for key, value in case.env:
        monkeypatch.setenv(key, value)
    path = case.build(tmp_path)
    before = _digest(path)
    report = tmp_path / "out" / "report.json"
    report.parent.mkdir()
    code = run(["analyze", str(path), "--json", str(report)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert _digest(path) == before, "the input was modified"
    if case.expect_error is not None:
        lines = captured.err.strip().splitlines()
        assert code == 2, (code, captured.err)
        assert len(lines) == 1, lines
        assert lines[0].startswith("infersight: error: ")
        assert path.name in lines[0]
        assert case.expect_error.lower() in lines[0].lower(), lines[0]
        return
    assert code == 0, captured.err
    profile = json.loads(report.read_text())["profile"]
    assert profile["devices"], "a report without devices"
    for device in profile["devices"]:
        assert 0 <= device["busy_ns"] <= device["wall_ns"]
    if case.expect_note is not None:
        notes = [note for trace in profile["traces"] for note in trace["notes"]]
        assert any(case.expect_note.lower() in note.lower() for note in notes), notes
