"""Events decoded by msgspec into structs give exactly the trace of the orjson read.

The reference is the reader as it was before structs: the whole text slimmed (unused events and
operator args cut) and parsed by orjson into dicts (``read_whole`` switched off). Every shared
trace is read both ways and every table, note and header field must be equal; synthetic traces
cover what the shared ones do not hold (odd ``Input Dims`` values, collective operators) and the
texts msgspec must hand back to orjson (invalid UTF-8, ``args`` that is not an object).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import KINETO_DIR, shared_file, trace_sweep
from tests.ingest.test_kineto_stream import _read, assert_same_trace

from infersight.ingest import kineto, kineto_stream, kineto_structs

TRACES = sorted(p.name for p in KINETO_DIR.glob("*.json.gz")) if KINETO_DIR.is_dir() else []


def _orjson_read(path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any) -> Any:
    with monkeypatch.context() as old:
        old.setattr(kineto_stream, "read_whole", lambda text, to_chunk: None)
        return _read(path, **options)


def _struct_chunks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the chunks decoded as structs (each entry: the events of one chunk)."""
    decoded: list[int] = []
    original = kineto_structs.decode

    def counting(text: bytes | bytearray) -> Any:
        events = original(text)
        if events is not None:
            decoded.append(len(events))
        return events

    monkeypatch.setattr(kineto_structs, "decode", counting)
    return decoded


@pytest.mark.parametrize("name", trace_sweep(TRACES))
def test_struct_read_equals_orjson_read(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = shared_file(f"kineto/{name}")
    expected = [_orjson_read(path, monkeypatch), _orjson_read(path, monkeypatch, cpu_ops_as_kernels=True)]
    decoded = _struct_chunks(monkeypatch)
    got = [_read(path), _read(path, cpu_ops_as_kernels=True)]
    for one, other in zip(got, expected, strict=True):
        assert_same_trace(one, other)
    if name.startswith(("hta_nccl", "hta_trace_diff", "vllm_", "tracelens_sglang")):
        assert decoded and min(decoded) > 1000  # the struct path was taken, not the fallback


def _event(ph: str, cat: str, name: str, ts: float, dur: float, **fields: Any) -> dict[str, Any]:
    """An event with its keys in the writers' order (ph, cat, name first: the layout's markers)."""
    return {"ph": ph, "cat": cat, "name": name, "pid": 1, "tid": 1, "ts": ts, "dur": dur, **fields}


ODD_DIMS: list[Any] = [
    [[32, 4096], [], [4096]],
    [[1.5, 2]],
    [[1, 2], "a"],
    [],
    5,
    "[[3, 4]]",
    None,
    [[-1, 7]],
    [[2**40, 3]],
]


def _synthetic(path: Path, *, extra: bytes = b"") -> Path:
    """A json.dump-layout trace of 1,200 operators with odd shapes, collectives and one kernel."""
    events = [_event("X", "python_function", "f", 5.0, 1.0, args={"Python id": 1})]
    for i in range(1200):
        args: dict[str, Any] = {"External id": i, "Input Dims": ODD_DIMS[i % len(ODD_DIMS)]}
        if i % len(ODD_DIMS) == 6:
            del args["Input Dims"]
        name = "aten::mm"
        if i % 100 == 7:
            name = "record_param_comms"
            args.update(
                {
                    "Collective name": "allreduce",
                    "dtype": "Float",
                    "In msg nelems": 1024,
                    "Out msg nelems": 1024,
                    "Group size": 2,
                    "Input type": ["float"],
                }
            )
        events.append(_event("X", "cpu_op", name, 10.0 + i, 0.5, args=args))
        events.append(_event("f", "ac2g", "flow", 10.0 + i, 0.0, id=i))
    events.append(_event("X", "cuda_runtime", "cudaLaunchKernel", 20.0, 1.0, args={"correlation": 9}))
    events.append(
        _event(
            "X",
            "kernel",
            "gemm",
            21.0,
            2.0,
            args={
                "device": 0,
                "stream": 7,
                "correlation": 9,
                "grid": [1, 2, 3],
                "block": [4, 5, 6],
                "registers per thread": 32,
                "External id": 707,
                "In msg nelems": 4,
                "Collective name": "allreduce",
                "Process Group Ranks": "[0, 1]",
                "queued": 0,
            },
        )
    )
    events.append(_event("i", "cpu_instant_event", "mark", 1.0, 0.0))
    events.append(_event("X", "user_annotation", "step", 9.0, 1300.0, args={"a": [1]}))
    text = json.dumps({"schemaVersion": 1, "traceEvents": events, "deviceProperties": []}).encode()
    if extra:
        at = text.index(b'"name": "gemm"')
        text = text[:at] + extra + text[at:]
    path.write_bytes(text)
    return path


def test_odd_operator_args_read_as_the_slimmed_text_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shapes that are not lists of integers, collectives' args, flows and instant events: the
    struct read keeps exactly what the slimmed orjson read kept (labels, comm columns, first time)."""
    path = _synthetic(tmp_path / "odd.json")
    expected = _orjson_read(path, monkeypatch)
    decoded = _struct_chunks(monkeypatch)
    got = _read(path)
    assert decoded, "the struct path was not taken"
    assert_same_trace(got, expected)
    assert not isinstance(got, str)
    assert "input_dims" in got.ranges.columns and "comm_collective" in got.ranges.columns
    assert "comm_collective" in got.kernels.columns


def test_invalid_utf8_keeps_its_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Invalid UTF-8 in a field no table reads: orjson's result (the whole read, with its note)."""
    path = _synthetic(tmp_path / "bad.json", extra=b'"label": "caf\xff", ')
    got = _read(path)
    assert_same_trace(got, _orjson_read(path, monkeypatch))
    assert not isinstance(got, str) and any("invalid UTF-8" in note for note in got.notes)


def test_number_beyond_float64_in_an_unread_field_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``1e400`` in a field no table reads: orjson refused the kernel's text, the slimmed read
    already ignored it in the args it cut; now it is ignored wherever it is (same trace as
    without it). In a field a table reads it is still refused."""
    plain = _read(_synthetic(tmp_path / "plain.json"))
    assert_same_trace(_read(_synthetic(tmp_path / "big.json", extra=b'"blocks": 1e400, ')), plain)
    refused = _read(_synthetic(tmp_path / "ts.json", extra=b'"ts": 1e400, '))
    assert isinstance(refused, str) and "not valid JSON" in refused


def test_decode_hands_back_what_structs_cannot_hold() -> None:
    assert kineto_structs.decode(b'[{"ph": "X", "args": {"device": 1}}]') is not None
    assert kineto_structs.decode(b'[{"ph": "X", "args": 5}]') is None  # args not an object
    assert kineto_structs.decode(b'[{"ph": "X", "args": null}]') is None  # the dict read takes null as {}
    assert kineto_structs.decode(b'[{"ph": "X", "ts": 1e400}]') is None  # beyond float64
    assert kineto_structs.decode(b'[{"ph": "X", "name": "caf\xff"}]') is None  # invalid UTF-8
    assert kineto_structs.decode(b'[{"ph": "X"}, 3]') is None  # not an object
    assert kineto_structs.decode(b'[{"ph": "X",}]') is None


def test_streamed_struct_chunks_equal_the_orjson_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A big trace in many struct chunks (tiny chunk size) equals the orjson whole read."""
    path = shared_file("kineto/hta_trace_diff_control_a100_rank3.json.gz")
    expected = _orjson_read(path, monkeypatch)
    text = gzip.decompress(path.read_bytes())
    monkeypatch.setattr(kineto_stream, "CHUNK_BYTES", len(text) // 20)
    monkeypatch.setattr(kineto_stream, "STREAM_MIN_BYTES", len(text) // 10)
    monkeypatch.setattr(kineto, "_GZIP_OUTPUT_BYTES", 1 << 16)
    monkeypatch.setenv("INFERSIGHT_WORKERS", "1")
    decoded = _struct_chunks(monkeypatch)
    assert_same_trace(_read(path), expected)
    assert len(decoded) > 10
