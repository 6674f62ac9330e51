"""Segmentation of the real multi-layer traces, cross-checked against plain-JSON computations.

The independent side reads the Kineto file with orjson and finds each pass's layer region from
kernels whose role is known in that trace (layer 0's input norm, the MLP all-reduce, the final
norm), never through infersight's segmentation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from tests.conftest import REPO_ROOT, plain_json, shared_file, shared_traces

from infersight import api
from infersight.layers.analysis import analyze_layers
from infersight.layers.results import LayerReport
from infersight.theory.config_reader import load_model_config, resolve_model

DEMO = REPO_ROOT / "src" / "infersight" / "data" / "demo" / "tiny_llama_cpu.pt.trace.json.gz"
TOLERANCE = 0.01
CPU_TOLERANCE = 0.025


@dataclass(frozen=True)
class Event:
    name: str
    start: int  # ns, round(ts * 1000) as the reader does
    end: int
    stream: int


def _events(path: Path, category: str) -> tuple[list[Event], int]:
    """Complete events of one category in start order, and the file's first timestamp (ns)."""
    document = plain_json(path)
    raw = document["traceEvents"]
    first = min(round(float(e["ts"]) * 1000) for e in raw if "ts" in e and e.get("ph") != "M")
    events = []
    for e in raw:
        if e.get("cat") == category and e.get("ph") == "X":
            start = round(float(e["ts"]) * 1000)
            events.append(
                Event(e["name"], start, start + round(float(e["dur"]) * 1000), int(e.get("tid", -1)))
            )
    return sorted(events, key=lambda ev: ev.start), first


def _ends_before(events: list[Event], pattern: str, position: int) -> int:
    """End of the last kernel matching ``pattern`` that starts before ``events[position]``."""
    regex = re.compile(pattern)
    return next(ev.end for ev in reversed(events[:position]) if regex.search(ev.name))


def _positions(events: list[Event], pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return [i for i, ev in enumerate(events) if regex.search(ev.name)]


def _assert_layers_tile(
    report: LayerReport, pass_index: int, start_ns: int, end_ns: int, tolerance: float = TOLERANCE
) -> None:
    """Per-layer walls sum to the independently found layer region within ``tolerance`` (1%)."""
    row = report.passes[pass_index]
    expected = end_ns - start_ns
    assert abs(row.layers_ns - expected) <= tolerance * expected, (pass_index, row.layers_ns, expected)
    assert row.layers_ns + row.prologue_ns + row.epilogue_ns == row.duration_ns


def _assert_selected_pass_sums(report: LayerReport, kernels: list[Event]) -> None:
    """The selected pass's layer rows add up, and hold exactly the kernel time that starts inside them."""
    row = report.passes[report.selected_pass or 0]
    assert sum(layer.wall_ns for layer in report.layers) == row.layers_ns
    inside = sum(ev.end - ev.start for ev in kernels if row.layers_start_ns <= ev.start < row.layers_end_ns)
    assert abs(sum(layer.kernel_time_ns for layer in report.layers) - inside) <= len(kernels)  # rounding only


@pytest.fixture(scope="module")
def vllm() -> tuple[LayerReport, list[Event], int]:
    path = shared_file("kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz")
    report = analyze_layers(
        shared_traces("kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz")[0],
        config=resolve_model("llama-3-70b"),
    )
    kernels, first = _events(path, "kernel")
    return report, kernels, first


def test_vllm_llama70b_tp4(vllm: tuple[LayerReport, list[Event], int]) -> None:
    report, kernels, first = vllm
    assert report.anchor.profile == "vllm"
    assert [p.layer_count for p in report.passes] == [80] * 10  # 1 prefill + 9 decode steps
    assert report.passes[0].state == "single" and report.passes[0].shape != report.passes[1].shape
    assert report.selected_pass == 1 and report.passes[1].state == "steady-state"
    # independent: a pass's layers run from layer 0's plain RMSNorm (..rsqrt_1) to the end of its 160th
    # all-reduce (2 per layer, after the embedding's one)
    openers = _positions(kernels, r"rsqrt_1$")
    assert len(openers) == 10
    allreduce = _positions(kernels, r"AllReduce|cross_device_reduce")
    for index, opener in enumerate(openers):
        layer_reduces = [p for p in allreduce if p > opener][:160]
        _assert_layers_tile(report, index, kernels[opener].start, kernels[layer_reduces[-1]].end)
    _assert_selected_pass_sums(report, kernels)
    assert all(layer.allreduce_count == 2 for layer in report.layers)
    assert report.flow is not None and report.flow.rows[0].input_dims is None  # captured without shapes
    assert "record_shapes" in (report.flow.input_dims_na_reason or "")
    # Perfetto: seconds since the file's first event
    row = report.passes[1]
    assert row.perfetto.start_s == pytest.approx((row.start_ns - first) / 1e9, abs=1e-9)
    assert report.layers[3].perfetto.end_s == pytest.approx((report.layers[3].end_ns - first) / 1e9, abs=1e-9)


def test_sglang_qwen3_8b_mi300x() -> None:
    path = shared_file("kineto/tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz")
    config = load_model_config(shared_file("configs/qwen3-8b.config.json"))
    report = analyze_layers(
        shared_traces("kineto/tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz")[0], config=config
    )
    assert report.anchor.profile == "sglang"
    assert [p.layer_count for p in report.passes] == [36]
    kernels, _ = _events(path, "kernel")
    norms = _positions(kernels, r"add_rmsnorm_quant")
    assert len(norms) == 4 * 36 + 1  # input, q, k, post-attention norm per layer + the final norm
    main = [ev for ev in kernels[: norms[-1]] if ev.stream == kernels[norms[-1]].stream]
    _assert_layers_tile(report, 0, kernels[norms[0]].start, main[-1].end)  # up to the down-proj GEMM
    _assert_selected_pass_sums(report, kernels)
    assert report.clusters[0].layer_type == "dense" and report.clusters[0].count == 36


def test_qwen15_05b_h100_truncated_first_pass(tmp_path: Path) -> None:
    path = shared_file("kineto/tracelens_qwen1.5-0.5b-chat_h100.json.gz")
    config_path = tmp_path / "config.json"  # Qwen1.5-0.5B-Chat's published config (24 layers)
    config_path.write_text(
        orjson.dumps(
            {
                "model_type": "qwen2",
                "hidden_size": 1024,
                "num_hidden_layers": 24,
                "num_attention_heads": 16,
                "num_key_value_heads": 16,
                "intermediate_size": 2816,
                "vocab_size": 151936,
                "torch_dtype": "bfloat16",
            }
        ).decode()
    )
    report = analyze_layers(
        shared_traces("kineto/tracelens_qwen1.5-0.5b-chat_h100.json.gz")[0],
        config=load_model_config(config_path),
    )
    assert [p.layer_count for p in report.passes] == [
        10,
        24,
    ]  # the trace starts in the last 10 layers of a pass
    assert report.passes[0].state == "truncated"
    assert any("pass 0 is truncated" in w for w in report.warnings)
    assert report.selected_pass == 1
    kernels, _ = _events(path, "kernel")
    embedding = _positions(kernels, r"indexSelectLargeIndex")[0]
    pows = _positions(kernels, r"pow_tensor_scalar")
    first_norm = next(p for p in pows if p > embedding)
    _assert_layers_tile(report, 1, kernels[first_norm].start, _ends_before(kernels, r"gemm", pows[-1]))
    _assert_selected_pass_sums(report, kernels)


def test_vllm_eager_b200_gpt_oss() -> None:
    path = shared_file("kineto/tracelens_vllm_eager_b200_rank0.json.gz")
    report = analyze_layers(
        shared_traces("kineto/tracelens_vllm_eager_b200_rank0.json.gz")[0],
        config=resolve_model("gpt-oss-120b"),
        layer=1,
    )
    assert [p.layer_count for p in report.passes] == [36]
    assert {c.layer_type: c.count for c in report.clusters} == {"MoE+sliding": 18, "MoE": 18}
    assert len(report.anchor.names) == 2  # sliding-window and full-attention FMHA kernels together
    kernels, _ = _events(path, "kernel")
    opener = _positions(kernels, r"vllm::rms_norm_kernel")[0]
    final_norm = _positions(kernels, r"fused_add_rms_norm")[-1]
    _assert_layers_tile(
        report, 0, kernels[opener].start, _ends_before(kernels, r"multimem_all_reduce", final_norm)
    )
    _assert_selected_pass_sums(report, kernels)


def test_cpu_demo_capture_matches_its_step_annotations() -> None:
    report = analyze_layers(api.load([DEMO], cpu_ops_as_kernels=True)[0], num_layers=4)  # --layers 4 default
    assert [p.layer_count for p in report.passes] == [4] * 17  # prefill + 16 decode steps
    ops, _ = _events(DEMO, "cpu_op")
    steps, _ = _events(DEMO, "user_annotation")
    assert [s.name for s in steps] == ["prefill", *(f"decode_step_{i}" for i in range(16))]
    for index, step in enumerate(steps):
        inside = [op for op in ops if step.start <= op.start < step.end]
        pows = [i for i, op in enumerate(inside) if op.name == "aten::pow"]
        start, end = inside[pows[0]].start, _ends_before(inside, r"^aten::mm$", pows[-1])
        # CPU operators stand in for kernels: which small ones count as "dominant" varies per step, so
        # layer 0 may open one operator (and the Python time before it) earlier or later than its pow
        _assert_layers_tile(report, index, start, end, tolerance=CPU_TOLERANCE)
        assert (
            step.start
            <= report.passes[index].layers_start_ns
            < report.passes[index].layers_end_ns
            <= step.end
        )
