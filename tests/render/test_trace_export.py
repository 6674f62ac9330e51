"""Trace export: versioned columnar JSON that round-trips to the same counts and sums.

Cross-checks go two ways: export vs the in-memory Trace (exact), and export vs the raw input
read independently here (plain gzip/json for Kineto, plain SQL for nsys).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT, plain_json_events, shared_file, shared_traces

from infersight.ingest import load_traces
from infersight.model.trace import TABLE_COLUMNS
from infersight.render.trace_export import (
    EXPORT_SCHEMA_VERSION,
    export_json_schema,
    export_traces,
    load_export,
)

VLLM_H100 = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
NCCL_A100 = "kineto/hta_nccl_a100_rank0.json.gz"


def _raw_kineto_kernels(path: Path) -> list[dict]:
    events = plain_json_events(path)
    return [e for e in events if e.get("ph") == "X" and e.get("cat") == "kernel"]


@pytest.mark.parametrize("relative", [VLLM_H100, NCCL_A100])
def test_kineto_export_round_trips(relative: str) -> None:
    path = shared_file(relative)
    traces = load_traces(path)
    document = json.loads(export_traces(traces))  # plain json: what an agent would do

    assert document["schema"] == "infersight.trace"
    assert document["schema_version"] == EXPORT_SCHEMA_VERSION
    [exported] = document["traces"]
    [trace] = traces
    assert exported["source"] == str(path)
    assert exported["format"] == "kineto"
    assert exported["time_unit"] == "ns"
    assert set(exported["tables"]) == set(TABLE_COLUMNS)

    # export == in-memory trace, table by table
    for name, columns in TABLE_COLUMNS.items():
        table = exported["tables"][name]
        frame = trace.table(name)
        assert table["columns"] == list(columns)
        assert table["rows"] == len(frame)
        assert all(len(values) == len(frame) for values in table["data"].values())
        if len(frame):
            starts, ends = table["data"]["start"], table["data"]["end"]
            assert all(isinstance(v, int) for v in starts[:100])
            assert sum(ends) - sum(starts) == int((frame["end"] - frame["start"]).sum())
            assert Counter(table["data"]["name"] if "name" in columns else []) == Counter(
                frame["name"].astype(str) if "name" in columns else []
            )

    # export == raw file, read independently
    raw = _raw_kineto_kernels(path)
    kernels = exported["tables"]["kernels"]
    assert kernels["rows"] == len(raw)
    assert kernels["types"]["name"] == "string" and kernels["types"]["start"] == "int"
    assert Counter(kernels["data"]["name"]) == Counter(e["name"] for e in raw)
    total_ns = sum(kernels["data"]["end"]) - sum(kernels["data"]["start"])
    raw_total_ns = sum(float(e["dur"]) for e in raw) * 1000.0
    assert abs(total_ns - raw_total_ns) <= 0.5 * len(raw) + 1  # per-event rounding to whole ns
    assert exported["gpus"][0]["name"] == trace.gpus[min(trace.gpus)].name


def test_vllm_export_figures() -> None:
    """Known figures of the vLLM H100 trace (INDEX.md: 13,508 kernels) survive the export."""
    [exported] = json.loads(export_traces(shared_traces(VLLM_H100)))["traces"]
    assert exported["tables"]["kernels"]["rows"] == 13_508
    assert exported["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"
    assert exported["metadata"]["distributedInfo.world_size"] == "4"


def test_export_validates_against_its_model_and_schema() -> None:
    data = export_traces(shared_traces(NCCL_A100))
    model = load_export(data)
    assert model.schema_version == EXPORT_SCHEMA_VERSION
    assert model.traces[0].tables["kernels"].rows == 2_700
    schema = export_json_schema()
    assert schema["title"] == "TraceExport"
    assert {"schema", "schema_version", "tool_version", "traces"} <= set(schema["properties"])


def test_multi_rank_directory_exports_every_rank() -> None:
    directory = shared_file("kineto/hta_sampled_128ranks")
    document = json.loads(export_traces(load_traces(directory)))
    rows = sorted(t["tables"]["kernels"]["rows"] for t in document["traces"])
    assert rows == [1_104, 1_154]  # INDEX.md figures for rank-1 / rank-0


def test_nsys_export_matches_sql() -> None:
    path = shared_file("nsys/h100x2_llm_train_nsys2026.sqlite")
    [exported] = json.loads(export_traces(load_traces(path)))["traces"]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        count, total = db.execute(
            'SELECT COUNT(*), SUM("end" - start) FROM CUPTI_ACTIVITY_KIND_KERNEL'
        ).fetchone()
        devices = Counter(
            dict(db.execute("SELECT deviceId, COUNT(*) FROM CUPTI_ACTIVITY_KIND_KERNEL GROUP BY 1"))
        )
    kernels = exported["tables"]["kernels"]
    assert exported["format"] == "nsys-sqlite"
    assert kernels["rows"] == count == 4_010
    assert sum(kernels["data"]["end"]) - sum(kernels["data"]["start"]) == total
    assert Counter(kernels["data"]["device"]) == devices


def _property_names(schema: dict) -> set[str]:
    names = set(schema.get("properties", {}))
    for definition in schema.get("$defs", {}).values():
        names |= set(definition.get("properties", {}))
    return names


def test_every_export_field_and_column_is_documented() -> None:
    doc = (REPO_ROOT / "docs" / "export-schema.md").read_text()
    undocumented = {n for n in _property_names(export_json_schema()) if f"`{n}`" not in doc}
    undocumented |= {c for cols in TABLE_COLUMNS.values() for c in cols if f"`{c}`" not in doc}
    undocumented |= {f"`{t}`" for t in TABLE_COLUMNS if f"`{t}`" not in doc}
    assert not undocumented


def test_every_report_field_is_documented() -> None:
    from infersight.render.json_report import report_json_schema

    doc = (REPO_ROOT / "docs" / "report-schema.md").read_text()
    names = _property_names(report_json_schema())
    assert not {n for n in names if f"`{n}`" not in doc and f"`{n}[]`" not in doc}
