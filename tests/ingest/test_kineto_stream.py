"""The streaming Kineto reader (chunks of text, columns per chunk) gives the whole-file read's trace.

Every real trace of the shared data is read whole (streaming off, once per trace and option) and
streamed in tiny chunks (256 kiB of text, 64 kiB decompressed pieces: tens to hundreds of chunks per
file), in this process and with chunk workers; every table, note and header field must be equal.
Odd layouts fall back to the whole read; corrupt and truncated files keep their errors. The
mechanism cases (fallback, errors, progress) use the NCCL trace: 9.8 MB of text, 38 chunks.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import KINETO_DIR, assert_tables_equal, shared_file, trace_sweep

from infersight.errors import InputError
from infersight.ingest import kineto, kineto_stream
from infersight.ingest.kineto import read_kineto
from infersight.model.trace import TABLE_COLUMNS, Trace

TRACES = sorted(p.name for p in KINETO_DIR.glob("*.json.gz")) if KINETO_DIR.is_dir() else []
FIELDS = ("notes", "metadata", "rank", "gpus", "first_event_ns", "device_kind")
STREAMED = "kineto/hta_nccl_a100_rank0.json.gz"  # HTA layout, 9.8 MB of text: 38 tiny chunks


def _tiny_chunks(monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    monkeypatch.setattr(kineto_stream, "CHUNK_BYTES", 1 << 18)
    monkeypatch.setattr(kineto_stream, "STREAM_MIN_BYTES", 1 << 19)
    monkeypatch.setattr(kineto, "_GZIP_OUTPUT_BYTES", 1 << 16)
    monkeypatch.setenv("INFERSIGHT_WORKERS", str(workers))


def _whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kineto_stream, "STREAM_MIN_BYTES", 1 << 40)


def _read(path: Path, **options: Any) -> Trace | str:
    try:
        return read_kineto(path, **options)
    except InputError as exc:
        return str(exc)


def assert_same_trace(got: Trace | str, expected: Trace | str) -> None:
    if isinstance(expected, str) or isinstance(got, str):
        assert got == expected
        return
    for table in TABLE_COLUMNS:
        assert_tables_equal(got.table(table), expected.table(table))
    for field in FIELDS:
        assert getattr(got, field) == getattr(expected, field), field


@functools.cache
def _whole_read(name: str, cpu_ops_as_kernels: bool) -> Trace | str:
    """The whole-file read (streaming off) of a shared trace, once per module: the reference both
    worker counts are compared with (only read, never changed)."""
    with pytest.MonkeyPatch.context() as whole:
        _whole(whole)
        return _read(shared_file(f"kineto/{name}"), cpu_ops_as_kernels=cpu_ops_as_kernels)


@functools.cache
def _streamed_text() -> bytes:
    """The decompressed text of :data:`STREAMED`, once per module (the mechanism cases cut and
    edit copies of it)."""
    return gzip.decompress(shared_file(STREAMED).read_bytes())


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("name", trace_sweep(TRACES))
def test_streamed_read_equals_whole_read(name: str, workers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cpu_ops_as_kernels`` changes only what is built from the parsed chunks, not the chunking:
    it is streamed in this process (the chunk workers parse the same chunks either way)."""
    path = shared_file(f"kineto/{name}")
    chunks: list[int] = []
    original = kineto_stream._Chunker.run

    def counting_run(self: Any, buffer: bytearray, stream: Any) -> Any:
        result = original(self, buffer, stream)
        chunks.append(len(self.chunks) if result is not None else -1)
        return result

    options = [False, True] if workers == 1 else [False]
    expected = [_whole_read(name, cpu_ops) for cpu_ops in options]
    _tiny_chunks(monkeypatch, workers)
    monkeypatch.setattr(kineto_stream._Chunker, "run", counting_run)
    got = [_read(path, cpu_ops_as_kernels=cpu_ops) for cpu_ops in options]
    for one, other in zip(got, expected, strict=True):
        assert_same_trace(one, other)
    if name.startswith(("hta_nccl", "hta_trace_diff", "vllm_", "tracelens_sglang")):
        assert chunks and min(chunks) > 3  # really streamed, in many chunks (not the fallback)


def test_odd_layout_falls_back_to_the_whole_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Events whose text does not end the way the layout's events end: read whole, same trace."""
    text = _streamed_text()
    at = text.index(b"\n  },\n  {\n", len(text) // 2)
    odd = tmp_path / "odd.json"
    odd.write_bytes(text[:at] + b"\n   },\n  {\n" + text[at + len(b"\n  },\n  {\n") :])
    with monkeypatch.context() as whole:
        _whole(whole)
        expected = _read(odd)
    _tiny_chunks(monkeypatch, 1)
    assert_same_trace(_read(odd), expected)


# two chunk workers (a process pool per read, four reads): CI; the quick run parses in parallel in
# test_streamed_read_equals_whole_read[...-2]
@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_corrupt_and_truncated_files_keep_their_errors(
    tmp_path: Path, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = shared_file(STREAMED)
    data = source.read_bytes()
    text = _streamed_text()
    cut_gz = tmp_path / "cut.json.gz"
    cut_gz.write_bytes(data[: len(data) * 2 // 3])
    cut_json = tmp_path / "cut.json"
    cut_json.write_bytes(text[: len(text) * 2 // 3])
    bad_middle = tmp_path / "bad.json"
    at = text.index(b'"dur": ', len(text) // 2)
    bad_middle.write_bytes(text[:at] + b'"dur": ]' + text[at + 8 :])
    _tiny_chunks(monkeypatch, workers)
    with pytest.raises(InputError, match="truncated gzip"):
        read_kineto(cut_gz)
    for path in (cut_json, bad_middle):
        with pytest.raises(InputError, match="not valid JSON"):
            read_kineto(path)
    with pytest.raises(InputError, match="once decompressed"):
        read_kineto(source, max_decompressed_bytes=len(text) - 1)


def test_streamed_read_reports_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stages in order and the file bytes read, ending at the file's size."""
    path = shared_file(STREAMED)
    _tiny_chunks(monkeypatch, 1)

    class Recorder:
        def __init__(self) -> None:
            self.events: list[tuple[str, int | None]] = []

        def stage(self, name: str, total: int | None = None) -> None:
            self.events.append((name, total))

        def advance(self, done: int) -> None:
            self.events.append(("advance", done))

    recorder = Recorder()
    read_kineto(path, progress=recorder)
    stages = [name for name, _ in recorder.events if name != "advance"]
    assert stages == ["reading", "building columns"]
    assert recorder.events[0][1] == path.stat().st_size
    done = [value for name, value in recorder.events if name == "advance"]
    assert len(done) > 3 and done == sorted(done) and done[-1] == path.stat().st_size
