"""Perfetto's time zero and the flow's operator input dims, taken from the trace model (the file is
not read again): a real record_shapes trace against plain JSON, and hand-built traces."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.conftest import plain_json, shared_file, shared_traces
from tests.layers import synthetic

from infersight.layers.analysis import analyze_layers
from infersight.layers.launch_shapes import GRAPH_REASON, NO_DIMS_REASON, LaunchShapes, perfetto_origin
from infersight.model.trace import API_COLUMNS, RANGE_COLUMNS, Trace, make_table
from infersight.theory.config_reader import load_model_config

QWEN = "kineto/tracelens_qwen1.5-0.5b-chat_h100.json.gz"  # record_shapes=True, eager launches
QWEN_CONFIG = {
    "model_type": "qwen2",
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
    "intermediate_size": 2816,
    "vocab_size": 151936,
    "torch_dtype": "bfloat16",
}


def to_ns(us: Any) -> int:
    return int((Decimal(us) * 1000).to_integral_value(rounding=ROUND_HALF_EVEN))


def plain_dims(dims: list[Any]) -> str:
    text = "[" + ", ".join("x".join(map(str, d)) if isinstance(d, list) and d else "-" for d in dims) + "]"
    return text if len(text) <= 80 else text[:79] + "…"


class PlainShapes:
    """Kernel (stream, start) -> "op [dims]" of the innermost shaped cpu_op around its launch."""

    def __init__(self, path: Path) -> None:
        document = plain_json(path, exact_decimals=True)
        events = [e for e in document["traceEvents"] if e.get("ph") == "X"]
        self.first = min(to_ns(e["ts"]) for e in document["traceEvents"] if "ts" in e and e.get("ph") != "M")
        launches = {
            e["args"]["correlation"]: (e["tid"], to_ns(e["ts"]), e["name"])
            for e in events
            if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})
        }
        self.ops: list[tuple[Any, int, int, int, str]] = []
        for i, e in enumerate(events):
            dims = e.get("args", {}).get("Input Dims", [])
            if e.get("cat") == "cpu_op" and any(isinstance(d, list) and d for d in dims):
                start = to_ns(e["ts"])
                self.ops.append(
                    (e["tid"], start, start + to_ns(e["dur"]), i, f"{e['name']} {plain_dims(dims)}")
                )
        self.kernel_launch = {
            (e["args"]["stream"], to_ns(e["ts"])): launches.get(e["args"].get("correlation"))
            for e in events
            if e.get("cat") == "kernel"
        }

    def dims(self, stream: int, start: int) -> str | None:
        launch = self.kernel_launch[(stream, start)]
        if launch is None or "Graph" in launch[2]:
            return None
        tid, at, _ = launch
        around = [op for op in self.ops if op[0] == tid and op[1] <= at <= op[2]]
        return max(around, key=lambda op: (op[1], op[3]))[4] if around else None


@pytest.fixture(scope="module")
def qwen() -> tuple[Trace, Path]:
    path = shared_file(QWEN)
    return shared_traces(QWEN)[0], path


def test_flow_input_dims_match_plain_json(qwen: tuple[Trace, Path], tmp_path: Path) -> None:
    trace, path = qwen
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(QWEN_CONFIG))
    report = analyze_layers(trace, config=load_model_config(config_path), layer=3)
    plain = PlainShapes(path)
    assert report.flow is not None
    (layer_row,) = [row for row in report.layers if row.layer == report.flow.layer]
    expected = [plain.dims(row.stream, layer_row.start_ns + row.offset_ns) for row in report.flow.rows]
    assert [row.input_dims for row in report.flow.rows] == expected
    assert sum(d is not None for d in expected) >= 10  # the check bites: most kernels have shapes
    assert perfetto_origin(trace) == trace.first_event_ns == plain.first


def _shapes_trace(graph_launch: bool) -> Trace:
    """Two kernels launched on thread 9 at 150 and 350; an aten::mm [2x3] op from 100 to 200
    holds an aten::t op [3x2] from 140 to 160 (the innermost around the first launch)."""
    api_rows = make_table(
        API_COLUMNS,
        {
            "thread": [9, 9],
            "start": [150, 350],
            "end": [155, 355],
            "name": ["cudaGraphLaunch" if graph_launch else "cudaLaunchKernel", "cudaLaunchKernel"],
            "correlation": [1, 2],
            "source": ["runtime", "runtime"],
        },
    )
    ranges = make_table(
        RANGE_COLUMNS,
        {"thread": [9, 9, 9], "start": [100, 140, 300], "end": [200, 160, 400], "name": ["mm", "t", "add"]},
    )
    ranges = ranges.assign(
        source=pd.Categorical(["cpu_op"] * 3), input_dims=pd.Categorical(["[2x3]", "[3x2]", ""])
    )
    trace = Trace(source="t.json", format="kineto", api=api_rows, ranges=ranges)
    trace.check_schema()
    return trace


def test_innermost_shaped_operator_and_graph_launches() -> None:
    shapes = LaunchShapes(_shapes_trace(graph_launch=False))
    assert shapes.has_dims
    assert (shapes.input_dims(1), shapes.input_dims(2), shapes.input_dims(-1)) == ("t [3x2]", None, None)
    graph = LaunchShapes(_shapes_trace(graph_launch=True))
    assert graph.graph_launched(1) and graph.input_dims(1) is None and not graph.graph_launched(2)


def test_no_shapes_reason_and_origin_on_a_hand_built_trace() -> None:
    built = synthetic.build(passes=2, layers=4)
    report = analyze_layers(built.trace, num_layers=4, layer=1)
    assert report.flow is not None and report.flow.input_dims_na_reason == NO_DIMS_REASON
    assert GRAPH_REASON not in (report.flow.input_dims_na_reason or "")
    first_kernel = int(np.min(built.trace.kernels["start"].to_numpy()))
    assert perfetto_origin(built.trace) == first_kernel  # nothing recorded: the tables' first event
    built.trace.first_event_ns = first_kernel - 2_000_000  # the reader's first event: 2 ms earlier
    shifted = analyze_layers(built.trace, num_layers=4, layer=1)
    for before, after in zip(report.passes, shifted.passes, strict=True):
        assert after.perfetto.start_s == pytest.approx(before.perfetto.start_s + 0.002, abs=1e-9)
