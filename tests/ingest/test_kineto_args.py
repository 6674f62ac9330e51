"""The Kineto args kept as optional model columns, and the file's first event time, against plain
``json`` reads of the real traces (exact decimals) and hand-built texts."""

from __future__ import annotations

import ast
import math
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from tests.conftest import plain_json, shared_file, shared_trace, trace_sweep

from infersight.ingest import kineto_text
from infersight.ingest.kineto import read_kineto
from infersight.model.trace import (
    KERNEL_COLUMNS,
    OPTIONAL_COLUMNS,
    RANGE_COLUMNS,
    TABLE_COLUMNS,
    Trace,
    make_table,
)
from infersight.render.trace_export import export_traces

NCCL = "hta_nccl_a100_rank0.json.gz"  # collective args on kernels and record_param_comms ops
OLD_PYTORCH = "hta_sampled_128ranks/rank-1.json.gz"  # record_param_comms with input dims only
SHAPES = "tracelens_qwen1.5-0.5b-chat_h100.json.gz"  # record_shapes=True, parsed whole (no slimming)
SHAPES_SLIMMED = "hta_trace_diff_control_a100_rank3.json.gz"  # record_shapes=True, slimmed text
EAGER = "tracelens_vllm_eager_b200_rank0.json.gz"
NS_EPOCH = "hta_ns_resolution_v100_rank0.pt.trace.json.gz"  # epoch µs with ns decimals
SGLANG = "tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz"  # json.dump layout


@cache
def document(relative: str) -> Any:
    return plain_json(shared_file(f"kineto/{relative}"), exact_decimals=True)


def read(relative: str) -> Trace:
    """The reader's trace of a shared Kineto file, read once per test run (see tests/conftest.py)."""
    return shared_trace(f"kineto/{relative}")


def to_ns(us: Any) -> int:
    return int((Decimal(us) * 1000).to_integral_value(rounding=ROUND_HALF_EVEN))


def events(relative: str, cat: str) -> list[dict[str, Any]]:
    return [e for e in document(relative)["traceEvents"] if e.get("ph") == "X" and e.get("cat") == cat]


def plain_int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else -1


def plain_group(args: dict[str, Any]) -> int:
    if plain_int(args.get("Group size")) > 0:
        return plain_int(args["Group size"])
    ranks = args.get("Process Group Ranks")
    return len(ast.literal_eval(ranks)) if isinstance(ranks, str) and ast.literal_eval(ranks) else -1


def plain_comm(args: dict[str, Any]) -> dict[str, Any]:
    return {
        "comm_collective": str(args.get("Collective name") or ""),
        "comm_dtype": str(args.get("dtype") or ""),
        "comm_in_nelems": plain_int(args.get("In msg nelems")),
        "comm_out_nelems": plain_int(args.get("Out msg nelems")),
        "comm_group_size": plain_group(args),
    }


def row_values(frame: pd.DataFrame, table: str, row: int, columns: list[str]) -> dict[str, Any]:
    """One row's optional columns; an absent column reads as its unknown value ("" or -1)."""
    out: dict[str, Any] = {}
    for column in columns:
        if column not in frame.columns:
            out[column] = "" if OPTIONAL_COLUMNS[table][column] == "category" else -1
            continue
        value = frame[column].iloc[row]
        out[column] = value if isinstance(value, str) else int(value)
    return out


@pytest.mark.parametrize(
    "relative",
    trace_sweep([NCCL, NS_EPOCH, OLD_PYTORCH, SHAPES, SGLANG]),
)
def test_first_event_is_the_files_earliest_timed_event(relative: str) -> None:
    # every event of the file counts here, Python frames and flows included (the reader cuts them)
    stamps = [to_ns(e["ts"]) for e in document(relative)["traceEvents"] if "ts" in e and e.get("ph") != "M"]
    trace = read(relative)
    assert trace.first_event_ns == min(stamps)
    assert trace.first_event_ns < int(trace.kernels["start"].min())


@pytest.mark.slow  # re-reads the 2.9 MB trace (see tests.conftest.trace_sweep)
def test_first_event_of_the_big_vllm_trace() -> None:
    trace = read("vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz")
    assert trace.first_event_ns == 3676599907409475  # the "PyTorch Profiler (0)" span, 3676599907409.475 µs


def test_kernel_collective_args_match_plain_json() -> None:
    trace = read(NCCL)
    k = trace.kernels
    carrying = [e for e in events(NCCL, "kernel") if "In msg nelems" in e["args"]]
    assert len(carrying) == 21
    by_correlation = {c: i for i, c in enumerate(k["correlation"].tolist())}
    columns = ["comm_collective", "comm_dtype", "comm_in_nelems", "comm_out_nelems", "comm_group_size"]
    for event in carrying:
        row = by_correlation[event["args"]["correlation"]]
        assert row_values(k, "kernels", row, columns) == plain_comm(event["args"])
    assert int((k["comm_in_nelems"].to_numpy() >= 0).sum()) == len(carrying)  # no other row carries them
    assert str(k["comm_in_nelems"].dtype) == "Sparse[int64, -1]"


@pytest.mark.parametrize("relative", [NCCL, OLD_PYTORCH, EAGER])
def test_record_param_comms_args_match_plain_json(relative: str) -> None:
    trace = read(relative)
    r = trace.ranges
    ops = r[(r["name"] == "record_param_comms").to_numpy()]
    plain = events(relative, "cpu_op")
    plain = sorted((e for e in plain if e["name"] == "record_param_comms"), key=lambda e: to_ns(e["ts"]))
    assert len(ops) == len(plain) > 0
    for row, event in enumerate(plain):
        args = event["args"]
        dims, types = args.get("Input Dims"), args.get("Input type")
        first = dims[0] if isinstance(dims, list) and dims else None
        expected = {
            **plain_comm(args),
            "external_id": plain_int(args.get("External id")),
            "comm_input_nelems": math.prod(first) if isinstance(first, list) and first else -1,
            "comm_input_type": str(types[0]) if isinstance(types, list) and types else "",
        }
        assert int(ops["start"].iloc[row]) == to_ns(event["ts"])
        assert row_values(ops, "ranges", row, list(expected)) == expected


def test_kernels_keep_the_external_id_of_their_comm_operator() -> None:
    trace = read(EAGER)
    k = trace.kernels
    linked = k[(k["external_id"].to_numpy() >= 0)]
    (op_id,) = [
        e["args"]["External id"] for e in events(EAGER, "cpu_op") if e["name"] == "record_param_comms"
    ]
    kernel_ids = [e["args"].get("External id") for e in events(EAGER, "kernel")]
    assert linked["external_id"].tolist() == [op_id] * kernel_ids.count(op_id)


def plain_dims_label(dims: list[Any]) -> str:
    text = "[" + ", ".join("x".join(map(str, d)) if isinstance(d, list) and d else "-" for d in dims) + "]"
    return text if len(text) <= 80 else text[:79] + "…"


@pytest.mark.parametrize("relative", [SHAPES, SHAPES_SLIMMED])
def test_operator_input_dims_match_plain_json(relative: str) -> None:
    trace = read(relative)
    r = trace.ranges
    ops = r[(r["source"] == "cpu_op").to_numpy()]
    got = sorted(
        zip(ops["start"].tolist(), ops["name"].astype(str), ops["input_dims"].astype(str), strict=True)
    )
    expected = sorted(
        (
            to_ns(e["ts"]),
            e["name"],
            plain_dims_label(e["args"]["Input Dims"])
            if any(isinstance(d, list) and d for d in e.get("args", {}).get("Input Dims", []))
            else "",
        )
        for e in events(relative, "cpu_op")
    )
    assert got == expected
    assert sum(1 for _, _, dims in got if dims) > 1000


def test_traces_without_those_args_have_only_the_declared_columns() -> None:
    trace = read("hta_alexnet_a100.json.gz")
    for name, columns in TABLE_COLUMNS.items():
        assert list(trace.table(name).columns) == list(columns), name


def _libkineto_text(extra_events: list[str]) -> bytes:
    """A trace in libkineto's layout: enough kernels to be slimmed, then the given events."""
    kernel = (
        '  {{\n    "ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7,\n'
        '    "ts": {ts}, "dur": 1,\n    "args": {{\n      "device": 0, "correlation": {c}\n    }}\n  }}'
    )
    body = [kernel.format(ts=100 + i, c=i) for i in range(kineto_text.MIN_EVENTS_TO_SLIM)]
    return ('{\n  "traceEvents": [\n' + ",\n".join([*body, *extra_events]) + "\n]}\n").encode()


def test_slimmed_text_keeps_comm_args_and_input_dims_as_text() -> None:
    shaped = (
        '  {\n    "ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1,\n'
        '    "ts": 5, "dur": 2,\n    "args": {\n      "External id": 3, "Input Dims": [[32, 4096], [], '
        '[4096, -1]], "Input type": ["c10::BFloat16", "", ""], "Ev Idx": 4\n    }\n  }'
    )
    comm = (
        '  {\n    "ph": "X", "cat": "cpu_op", "name": "record_param_comms", "pid": 1, "tid": 1,\n'
        '    "ts": 6, "dur": 1,\n    "args": {\n'
        '      "External id": 9, "In msg nelems": 8, "dtype": "Float"\n    }\n  }'
    )
    plain = '  {\n    "ph": "X", "cat": "cpu_op", "name": "aten::add", "pid": 1, "tid": 1,\n'
    plain += '    "ts": 7, "dur": 1,\n    "args": {\n      "External id": 5, "Ev Idx": 6\n    }\n  }'
    text = _libkineto_text([shaped, comm, plain, plain.replace('"ts": 7', '"ts": 8')])
    slim = kineto_text.slim_text(text)
    assert slim is not None
    ops = [e for e in orjson.loads(slim)["traceEvents"] if e["cat"] == "cpu_op"]
    assert ops[0]["args"] == {"Input Dims": "[[32, 4096], [], [4096, -1]]"}
    assert ops[1]["args"] == {"External id": 9, "In msg nelems": 8, "dtype": "Float"}
    assert "args" not in ops[2]


def test_optional_columns_on_a_written_trace(tmp_path: Path) -> None:
    shaped = (
        '  {\n    "ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1,\n'
        '    "ts": 5, "dur": 2,\n    "args": {\n      "Input Dims": [[32, 4096], [], [4096, 8]]\n    }\n  }'
    )
    span = '  {\n    "ph": "X", "cat": "Trace", "name": "PyTorch Profiler (0)", "pid": 1, "tid": 1,\n'
    span += '    "ts": 3.5, "dur": 2000\n  }'
    path = tmp_path / "t.json"
    path.write_bytes(_libkineto_text([shaped, span]))
    trace = read_kineto(path)
    assert trace.first_event_ns == 3500
    assert trace.ranges["input_dims"].tolist() == ["[32x4096, -, 4096x8]"]
    assert list(trace.ranges.columns) == [*RANGE_COLUMNS, "input_dims"]
    assert list(trace.kernels.columns) == list(KERNEL_COLUMNS)


def test_check_schema_accepts_optional_columns_only() -> None:
    ranges = make_table(RANGE_COLUMNS, {"start": [1, 2], "end": [3, 4], "name": ["a", "b"]})
    ranges["input_dims"] = pd.Categorical(["", "[2x2]"])
    trace = Trace(source="t.json", format="kineto", ranges=ranges)
    trace.check_schema()
    trace.ranges = ranges.assign(input_dims=ranges["input_dims"].astype(str))  # wrong dtype
    with pytest.raises(ValueError, match="input_dims"):
        trace.check_schema()
    trace.ranges = ranges.assign(surprise=np.zeros(2, dtype=np.int64))  # not declared
    with pytest.raises(ValueError, match="optional"):
        trace.check_schema()
    assert set(OPTIONAL_COLUMNS) <= set(TABLE_COLUMNS)


def test_export_keeps_the_declared_columns_only() -> None:
    trace = read(NCCL)
    assert "comm_in_nelems" in trace.kernels.columns
    document = orjson.loads(export_traces([trace]))
    for name, columns in TABLE_COLUMNS.items():
        assert document["traces"][0]["tables"][name]["columns"] == list(columns)
