"""Kineto reader against every real trace in shared/data/kineto.

Reference figures are computed here with plain ``json``/``gzip`` and Python (exact decimal
timestamps via ``parse_float=Decimal``), independently of the reader's numpy code.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from tests.conftest import KINETO_DIR, plain_json, shared_file, shared_trace, trace_sweep

import infersight
from infersight.errors import InputError
from infersight.ingest import kineto_text, load_traces
from infersight.ingest.kineto import read_kineto
from infersight.model.trace import Trace

# kernel counts from shared/data/INDEX.md
KNOWN_KERNELS = {
    "tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz": 527,
    "tracelens_vllm_gptoss_prefilldecode_piecewise_graph_mi300x.json.gz": 413,
    "tracelens_qwen1.5-0.5b-chat_h100.json.gz": 1465,
    "tracelens_vllm_eager_b200_rank0.json.gz": 768,
    "hta_trace_diff_control_a100_rank3.json.gz": 8568,
    "hta_trace_diff_test_v100_rank1.json.gz": 9876,
    "hta_ns_resolution_v100_rank0.pt.trace.json.gz": 4350,
    "hta_nccl_a100_rank0.json.gz": 2700,
    "hta_sampled_128ranks/rank-0.json.gz": 1154,
    "hta_sampled_128ranks/rank-1.json.gz": 1104,
    "hta_alexnet_a100.json.gz": 79,
    "hta_event_sync_multi_stream_a100.json.gz": 3,
    "hta_triton_example_a100.json.gz": 1,
    "hta_mi250_minitoy.json.gz": 14,
    "vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz": 13508,
}
CPU_ONLY = "hta_cpu_only_no_gpu.json.gz"
VLLM = "vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
SGLANG = "tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz"
GPU_FILES = sorted(KNOWN_KERNELS)


# ---------------------------------------------------------------- independent reference code


def plain_document(path: Path) -> Any:
    """The trace parsed by the standard library, decimals kept exact (read-only, shared)."""
    return plain_json(path, exact_decimals=True)


def gunzip(relative: str) -> bytes:
    return gzip.decompress(shared_file(f"kineto/{relative}").read_bytes())


def to_ns(us: Any) -> int:
    """round(us * 1000) on the exact decimal value."""
    return int((Decimal(us) * 1000).to_integral_value(rounding=ROUND_HALF_EVEN))


def complete_events(doc: Any, cat: str) -> list[dict[str, Any]]:
    return [e for e in doc["traceEvents"] if e.get("ph") == "X" and e.get("cat") == cat]


def intervals(events: list[dict[str, Any]]) -> list[tuple[int, int]]:
    out = []
    for e in events:
        start = to_ns(e["ts"])
        out.append((start, start + to_ns(e["dur"])))
    return out


def idle_ratio_plain(spans: list[tuple[int, int]]) -> float:
    """1 - union / (last end - first start), the union merged interval by interval."""
    spans = sorted(spans)
    busy = 0
    cur_start, cur_end = spans[0]
    for start, end in spans[1:]:
        if start > cur_end:
            busy += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    busy += cur_end - cur_start
    window = max(e for _, e in spans) - min(s for s, _ in spans)
    return 1.0 - busy / window


def idle_ratio_numpy(trace: Trace) -> float:
    """The same from the trace's columns, vectorised (what an analysis would do)."""
    order = np.argsort(trace.kernels["start"].to_numpy(), kind="stable")
    start = trace.kernels["start"].to_numpy()[order]
    end = trace.kernels["end"].to_numpy()[order]
    reach = np.maximum.accumulate(end)
    new_block = np.r_[True, start[1:] > reach[:-1]]
    block_id = np.cumsum(new_block) - 1
    block_start = start[new_block]
    block_end = np.zeros(block_id[-1] + 1, dtype=np.int64)
    np.maximum.at(block_end, block_id, end)
    busy = int((block_end - block_start).sum())
    return 1.0 - busy / int(end.max() - start.min())


@cache
def reference(relative: str) -> dict[str, Any]:
    doc = plain_document(shared_file(f"kineto/{relative}"))
    kernels = complete_events(doc, "kernel")
    api = complete_events(doc, "cuda_runtime") + complete_events(doc, "cuda_driver")
    copies = complete_events(doc, "gpu_memcpy")
    sets = complete_events(doc, "gpu_memset")
    api_name = {e["args"]["correlation"]: e["name"] for e in api}
    return {
        "kernel_spans": intervals(kernels),
        "kernel_corr": [e["args"].get("correlation", -1) for e in kernels],
        "api_count": len(api),
        "api_names": Counter(e["name"] for e in api),
        "graph_launched": sum(
            1
            for e in kernels
            if api_name.get(e["args"].get("correlation")) in ("cudaGraphLaunch", "hipGraphLaunch")
        ),
        "memcpy": (len(copies), sum(e["args"].get("bytes", 0) for e in copies)),
        "memset": (len(sets), sum(e["args"].get("bytes", 0) for e in sets)),
        "ranges": {
            cat: len(complete_events(doc, cat))
            for cat in ("user_annotation", "gpu_user_annotation", "cpu_op")
        },
        "gpu_names": {p["id"]: p["name"] for p in doc.get("deviceProperties", [])},
        "rank": doc.get("distributedInfo", {}).get("rank"),
        "header": {key: value for key, value in doc.items() if key != "traceEvents"},
    }


def read(relative: str) -> Trace:
    """The reader's trace of a shared Kineto file (``read_kineto`` through ``api.load``, read once
    per test run and shared: tests/test_shared_cache.py checks it equals a fresh read)."""
    return shared_trace(f"kineto/{relative}")


# ---------------------------------------------------------------- every real file


def test_every_kineto_file_is_covered() -> None:
    shared_file("kineto")
    on_disk = {str(p.relative_to(KINETO_DIR)) for p in KINETO_DIR.rglob("*.json*")}
    assert on_disk == {*KNOWN_KERNELS, CPU_ONLY}


@pytest.mark.parametrize("relative", trace_sweep(GPU_FILES))
def test_kernels_match_plain_json(relative: str) -> None:
    trace, ref = read(relative), reference(relative)
    kernels = trace.kernels
    assert len(kernels) == len(ref["kernel_spans"]) == KNOWN_KERNELS[relative]
    # every interval exact to the ns (sorted, as a multiset)
    ours = sorted(zip(kernels["start"].tolist(), kernels["end"].tolist(), strict=True))
    assert ours == sorted(ref["kernel_spans"])
    total_ref = sum(end - start for start, end in ref["kernel_spans"])
    assert int((kernels["end"] - kernels["start"]).sum()) == total_ref
    assert abs(idle_ratio_numpy(trace) - idle_ratio_plain(ref["kernel_spans"])) < 0.005
    assert sorted(kernels["correlation"].tolist()) == sorted(ref["kernel_corr"])
    assert (kernels["process"] == 0).all() and (kernels["graph_id"] == -1).all()
    trace.check_schema()


@pytest.mark.parametrize("relative", trace_sweep(GPU_FILES))
def test_copies_api_ranges_gpus_match_plain_json(relative: str) -> None:
    trace, ref = read(relative), reference(relative)
    assert (len(trace.memcpy), int(trace.memcpy["bytes"].sum())) == ref["memcpy"]
    assert (len(trace.memset), int(trace.memset["bytes"].sum())) == ref["memset"]
    assert len(trace.api) == ref["api_count"]
    assert Counter(trace.ranges["source"].astype(str)) == Counter(
        {k: v for k, v in ref["ranges"].items() if v}
    )
    assert trace.rank == ref["rank"]
    for device, name in ref["gpu_names"].items():
        assert trace.gpus[device].name == (name or None)
    for device in trace.kernels["device"].unique():
        assert int(device) in trace.gpus


def test_sglang_idle_ratio_and_rocm_device() -> None:
    trace = read(SGLANG)
    assert round(idle_ratio_numpy(trace), 4) == 0.5009
    # kernels run on HSA agent 9; the single deviceProperties entry names the model
    assert trace.kernels["device"].unique().tolist() == [9]
    assert trace.gpus[9].name == "AMD Instinct MI300X" and trace.gpus[9].sm_count == 304
    assert any("no deviceProperties entry" in note for note in trace.notes)


def test_vllm_graph_launches_and_metadata() -> None:
    trace, ref = read(VLLM), reference(VLLM)
    assert len(trace.kernels) == 13508
    api_corr = set(trace.api["correlation"].tolist())
    assert all(c in api_corr for c in trace.kernels["correlation"].tolist())
    assert ref["graph_launched"] == 8667
    graph_corr = set(trace.api.loc[trace.api["name"] == "cudaGraphLaunch", "correlation"].tolist())
    assert int(trace.kernels["correlation"].isin(graph_corr).sum()) == 8667
    assert any("8667 of 13508 kernels" in note for note in trace.notes)
    assert trace.gpus[0].name == "NVIDIA H100 80GB HBM3"
    assert trace.gpus[0].sm_count == 132 and trace.gpus[0].compute_capability == "9.0"
    assert trace.metadata["cuda_runtime_version"] == "12040"
    assert trace.metadata["distributedInfo.world_size"] == "4"
    assert trace.metadata["trace_id"] == "DF01F16841D44D189CDE22104D4F51B5"
    assert trace.rank == 0


def test_api_names_and_sources() -> None:
    trace, ref = read(VLLM), reference(VLLM)
    assert Counter(trace.api["name"].astype(str)) == ref["api_names"]  # no suffix to strip here
    assert int((trace.api["source"] == "driver").sum()) == 402
    # _v2 is part of a real API name, not a version suffix
    assert "cudaStreamGetCaptureInfo_v2" in set(trace.api["name"].astype(str))


def test_unlaunched_kernels_are_noted() -> None:
    trace = read("tracelens_qwen1.5-0.5b-chat_h100.json.gz")
    assert any(note.startswith("436 of 1465 kernels") for note in trace.notes)


def test_memcpy_kinds_from_names() -> None:
    alexnet = read("hta_alexnet_a100.json.gz").memcpy
    assert set(alexnet["kind"].astype(str)) == {"HtoD"}
    assert set(alexnet["src_kind"].astype(str)) == {"pageable"}
    assert set(alexnet["dst_kind"].astype(str)) == {"device"}
    rocm = read("hta_mi250_minitoy.json.gz").memcpy
    assert rocm["kind"].astype(str).tolist() == ["HtoD", "HtoD"]
    assert set(rocm["src_kind"].astype(str)) == {"unknown"}  # "Host": pinned or not is unknown
    ranks = read("hta_sampled_128ranks/rank-0.json.gz").memcpy
    assert Counter(zip(ranks["kind"].astype(str), ranks["src_kind"].astype(str), strict=True)) == {
        ("HtoD", "pageable"): 16,
        ("HtoD", "pinned"): 8,
        ("DtoH", "device"): 8,
        ("DtoD", "device"): 8,
    }


def test_kernel_launch_config_columns() -> None:
    kernels = read("hta_event_sync_multi_stream_a100.json.gz").kernels
    sgemm = kernels[kernels["name"] == "ampere_sgemm_128x64_nn"].iloc[0]
    assert (sgemm.grid_x, sgemm.grid_y, sgemm.grid_z) == (8, 16, 5)
    assert (sgemm.block_x, sgemm.block_y, sgemm.block_z) == (128, 1, 1)
    assert (sgemm.registers, sgemm.shared_mem, sgemm.stream, sgemm.device) == (122, 12544, 20, 0)
    assert sgemm.end - sgemm.start == 123_000


def test_gpu_user_annotations_keep_their_device() -> None:
    ranges = read("hta_nccl_a100_rank0.json.gz").ranges
    gpu = ranges[ranges["source"] == "gpu_user_annotation"]
    assert len(gpu) == 30 and set(gpu["device"].tolist()) == {0}
    assert set(ranges.loc[ranges["source"] != "gpu_user_annotation", "device"].tolist()) == {-1}


def test_ns_resolution_keeps_every_digit() -> None:
    # epoch-µs timestamps with ns decimals (~1.7e15 µs): float64 alone is 0.25 µs coarse
    kernels = read("hta_ns_resolution_v100_rank0.pt.trace.json.gz").kernels
    assert (kernels["start"] % 250 != 0).mean() > 0.5
    first = reference("hta_ns_resolution_v100_rank0.pt.trace.json.gz")["kernel_spans"]
    assert int(kernels["start"].min()) == min(s for s, _ in first)


def _rewritten(relative: str, writer: str, tmp_path: Path) -> Path:
    """The real file as is, or re-saved by json.dump / minified (orjson), as tools re-save traces."""
    path = shared_file(f"kineto/{relative}")
    if writer == "as-is":
        return path
    doc = json.loads(gunzip(relative))
    out = tmp_path / f"{writer}.json"
    out.write_bytes(json.dumps(doc).encode() if writer == "json.dump" else orjson.dumps(doc))
    return out


@pytest.mark.parametrize(
    ("relative", "writer", "layout"),
    [
        # the two real files as written (the big ones: CI only, see tests.conftest.trace_sweep)
        pytest.param(VLLM, "as-is", "libkineto", marks=pytest.mark.slow),
        ("hta_nccl_a100_rank0.json.gz", "as-is", "libkineto"),
        ("hta_nccl_a100_rank0.json.gz", "json.dump", "json.dump"),
        ("hta_nccl_a100_rank0.json.gz", "minified", "minified"),
        pytest.param(SGLANG, "as-is", "json.dump", marks=pytest.mark.slow),
    ],
)
def test_text_slimming_changes_nothing(
    relative: str, writer: str, layout: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # before parsing, the reader drops python_function/flow events and range args from the text
    path = _rewritten(relative, writer, tmp_path)
    text = path.read_bytes()
    text = gzip.decompress(text) if path.suffix == ".gz" else text
    recognised = [lay.name for lay in kineto_text.LAYOUTS if kineto_text._slim(text, lay) is not None]
    assert recognised == [layout]
    fast = read(relative) if writer == "as-is" else read_kineto(path)  # the shared file: read once
    monkeypatch.setattr(kineto_text, "slim_text", lambda raw: None)
    full = read_kineto(path)
    for table in ("kernels", "memcpy", "memset", "api", "ranges"):
        assert fast.table(table).equals(full.table(table)), table
    assert (fast.notes, fast.metadata, fast.gpus, fast.rank, fast.first_event_ns) == (
        full.notes,
        full.metadata,
        full.gpus,
        full.rank,
        full.first_event_ns,  # Python frames and flows, cut from the text, never come first
    )
    assert len(fast.kernels) == KNOWN_KERNELS[relative]


def test_multi_rank_directory() -> None:
    traces = load_traces(shared_file("kineto/hta_sampled_128ranks"))
    assert [t.rank for t in traces] == [0, 1]
    assert [len(t.kernels) for t in traces] == [1154, 1104]
    assert [t.format for t in traces] == ["kineto", "kineto"]


# ---------------------------------------------------------------- CPU-only captures


def test_cpu_only_trace_is_refused_with_a_hint() -> None:
    with pytest.raises(InputError, match="no GPU kernels") as err:
        read_kineto(shared_file(f"kineto/{CPU_ONLY}"))
    assert CPU_ONLY in str(err.value) and "--cpu-ops-as-kernels" in str(err.value)


def test_cpu_only_trace_as_cpu_ops() -> None:
    path = shared_file(f"kineto/{CPU_ONLY}")
    trace = read_kineto(path, cpu_ops_as_kernels=True)
    ops = complete_events(plain_document(path), "cpu_op")
    assert trace.device_kind == "cpu"
    assert trace.gpus[0].kind == "cpu" and trace.gpus[0].name == "CPU (host operators)"
    assert sorted(trace.kernels["name"].astype(str)) == sorted(e["name"] for e in ops)  # 4 top-level leaves
    assert set(trace.kernels["stream"].tolist()) == {e["tid"] for e in ops}
    assert trace.rank == 34


def plain_dominant_ops(ops: list[dict[str, Any]]) -> Counter[tuple[int, int, int]]:
    """Dominant operators by brute force, O(n^2), straight from the definition.

    p contains c: same thread, c's interval inside p's and c starting before p ends (an op that
    starts where p ends is a sibling); of identical intervals the earlier one in the file
    contains the later. c's parent: its smallest container (latest in the file among identical
    ones). Self time: duration minus the merged union of the direct children, clipped to the op.
    Dominant: self time >= half the duration, and no ancestor dominant-qualified.
    """
    spans = [(e["tid"], *interval) for e, interval in zip(ops, intervals(ops), strict=True)]

    def contains(p: int, c: int) -> bool:
        (tp, sp, ep), (tc, sc, ec) = spans[p], spans[c]
        if p == c or tp != tc or not (sp <= sc and ec <= ep and sc < ep):
            return False
        return (sp, ep) != (sc, ec) or p < c

    parent = []
    for c in range(len(spans)):
        containers = [p for p in range(len(spans)) if contains(p, c)]
        innermost = min(containers, key=lambda p: (spans[p][2] - spans[p][1], -p), default=-1)
        parent.append(innermost)
    qualifies = []
    for p, (_, start, end) in enumerate(spans):
        children = sorted((spans[c][1], min(spans[c][2], end)) for c in range(len(spans)) if parent[c] == p)
        covered, reach = 0, start
        for child_start, child_end in children:
            covered += max(0, child_end - max(child_start, reach))
            reach = max(reach, child_end)
        qualifies.append(2 * (end - start - covered) >= end - start)
    dominant: Counter[tuple[int, int, int]] = Counter()
    for c in range(len(spans)):
        ancestor, blocked = parent[c], False
        while ancestor >= 0 and not blocked:
            blocked, ancestor = qualifies[ancestor], parent[ancestor]
        if qualifies[c] and not blocked:
            dominant[spans[c]] += 1
    return dominant


def kernel_spans(trace: Trace) -> Counter[tuple[int, int, int]]:
    columns = (trace.kernels[c].tolist() for c in ("stream", "start", "end"))
    return Counter(zip(*columns, strict=True))


def test_dominant_cpu_ops_on_a_real_timeline(tmp_path: Path) -> None:
    # alexnet's host timeline, GPU kernels removed: 359 cpu_ops, 5 levels deep, with zero-length
    # and identical (same thread, start, end) operators
    doc = json.loads(gunzip("hta_alexnet_a100.json.gz"))
    doc["traceEvents"] = [e for e in doc["traceEvents"] if e.get("cat") != "kernel"]
    path = tmp_path / "alexnet_cpu_only.json"
    path.write_text(json.dumps(doc))
    trace = read_kineto(path, cpu_ops_as_kernels=True)
    ops = complete_events(doc, "cpu_op")
    expected = plain_dominant_ops(ops)
    assert kernel_spans(trace) == expected
    assert len(trace.kernels) == sum(expected.values()) == 192
    # not the leaves: some dominant ops have children (and those children are not kernels)
    spans = [(e["tid"], *interval) for e, interval in zip(ops, intervals(ops), strict=True)]
    with_children = [
        k for k in expected if any(s[0] == k[0] and k[1] <= s[1] and s[2] <= k[2] and s != k for s in spans)
    ]
    assert len(with_children) == 28
    assert any("192 dominant CPU operators (of 359 cpu_op events" in note for note in trace.notes)


DEMO = Path(infersight.__file__).parent / "data" / "demo" / "tiny_llama_cpu.pt.trace.json.gz"


@cache
def demo_document() -> Any:
    with gzip.open(DEMO, "rb") as fh:
        return json.loads(fh.read(), parse_float=Decimal)


def plain_top_level_ops(ops: list[dict[str, Any]]) -> list[tuple[int, int, int]]:
    """Ops not contained in another op of their thread: sorted by (thread, start, -end), an op
    is contained exactly when an earlier one of its thread reaches at least as far."""
    spans = sorted((e["tid"], s, -end) for e, (s, end) in zip(ops, intervals(ops), strict=True))
    top, thread, reach = [], None, 0
    for tid, start, neg_end in spans:
        if tid != thread:
            thread, reach = tid, -1
        if -neg_end > reach:
            top.append((tid, start, -neg_end))
            reach = -neg_end
    return top


def test_demo_cpu_capture_keeps_the_gemms() -> None:
    # each aten::mm has tiny aten::resolve_conj children: leaf selection dropped every GEMM
    trace = read_kineto(DEMO, cpu_ops_as_kernels=True)
    ops = complete_events(demo_document(), "cpu_op")
    assert len(ops) == 15397
    mm_events = [e for e in ops if e["name"] == "aten::mm"]
    mm_ops = Counter((e["tid"], *span) for e, span in zip(mm_events, intervals(mm_events), strict=True))
    kernels = trace.kernels
    mm_rows = kernels[kernels["name"] == "aten::mm"]
    assert len(mm_rows) == sum(mm_ops.values()) == 493  # every GEMM is a kernel row
    assert Counter(zip(mm_rows["stream"], mm_rows["start"], mm_rows["end"], strict=True)) == mm_ops
    # kernel rows of one thread never overlap
    rows = sorted(kernel_spans(trace).elements())
    assert all(t1 != t0 or s1 >= e0 for (t0, _, e0), (t1, s1, _) in pairwise(rows))
    # and they cover almost all operator time
    top = plain_top_level_ops(ops)
    top_time = sum(end - start for _, start, end in top)
    kernel_time = int((kernels["end"] - kernels["start"]).sum())
    assert top_time == 47_115_772 and kernel_time <= top_time
    assert kernel_time / top_time >= 0.9  # 0.936
    # GEMM is the bulk of the work, as it should be for a Llama forward pass
    mm_time = int((mm_rows["end"] - mm_rows["start"]).sum())
    assert mm_time / kernel_time > 0.6
    # idle over the kernel timeline: ~0.9 with leaves, 0.275 now (0.225 between top-level ops)
    idle = idle_ratio_plain([(s, e) for _, s, e in rows])
    assert abs(idle_ratio_numpy(trace) - idle) < 1e-9
    assert round(idle, 3) == 0.275 and round(idle_ratio_plain([(s, e) for _, s, e in top]), 3) == 0.225


def test_demo_capture_provenance_in_metadata() -> None:
    capture = demo_document()["infersight_capture"]
    meta = read_kineto(DEMO, cpu_ops_as_kernels=True).metadata
    assert meta["infersight_capture.device"] == capture["device"] == "cpu"
    assert meta["infersight_capture.torch"] == capture["torch"]
    assert meta["infersight_capture.transformers"] == capture["transformers"]
    for key, value in capture["model_config"].items():  # two levels down
        assert meta[f"infersight_capture.model_config.{key}"] == str(value)
    assert json.loads(meta["infersight_capture.scenario.annotations"]) == capture["scenario"]["annotations"]
    assert "infersight_capture.cuda" not in meta  # null
    assert meta["trace_id"] == demo_document()["trace_id"]


def test_deep_and_long_metadata_become_capped_json() -> None:
    relative = "tracelens_qwen1.5-0.5b-chat_h100.json.gz"
    header = reference(relative)["header"]["metadata"]
    meta = read(relative).metadata
    kwargs = header["profiler"]["torch_profiler_kwargs"]  # three levels down: kept as JSON
    assert json.loads(meta["metadata.profiler.torch_profiler_kwargs"]) == kwargs
    assert meta["metadata.profiler.warmups"] == str(header["profiler"]["warmups"])
    pg_config = reference(VLLM)["header"]["distributedInfo"]["pg_config"]
    compact = json.dumps(pg_config, separators=(",", ":"))
    value = read(VLLM).metadata["distributedInfo.pg_config"]
    assert len(compact) > 500 and len(value) == 500
    assert value == compact[:499] + "…"
    # libkineto's log lines and the GPU list (-> trace.gpus) are not metadata
    nccl = read("hta_nccl_a100_rank0.json.gz").metadata
    assert nccl["distributedInfo.nccl_version"] == "2.17.1"
    assert not any(key.startswith(("INFO", "deviceProperties", "traceEvents")) for key in nccl)


def test_cpu_flag_is_ignored_when_there_are_kernels() -> None:
    trace = read_kineto(shared_file("kineto/hta_triton_example_a100.json.gz"), cpu_ops_as_kernels=True)
    assert trace.device_kind == "gpu" and len(trace.kernels) == 1
    assert any("cpu_ops_as_kernels ignored" in note for note in trace.notes)


# ---------------------------------------------------------------- other shapes of valid input


def test_bare_event_list_and_rank_from_file_name(tmp_path: Path) -> None:
    doc = json.loads(gunzip("hta_triton_example_a100.json.gz"))
    for name, rank in (
        ("x_rank3.json", 3),
        ("run-rank-12.json", 12),
        ("1745-TP-2.trace.json", 2),
        ("a.json", None),
    ):
        path = tmp_path / name
        path.write_text(json.dumps(doc["traceEvents"]))
        trace = read_kineto(path)
        assert len(trace.kernels) == 1 and trace.rank == rank


def test_version_suffix_is_stripped(tmp_path: Path) -> None:
    raw = gunzip("hta_alexnet_a100.json.gz")
    path = tmp_path / "suffixed.json"
    path.write_bytes(raw.replace(b'"cudaLaunchKernel"', b'"cudaLaunchKernel_v7000"'))
    names = Counter(read_kineto(path).api["name"].astype(str))
    assert names["cudaLaunchKernel"] == reference("hta_alexnet_a100.json.gz")["api_names"]["cudaLaunchKernel"]
    assert not any(n.endswith("_v7000") for n in names)


def test_kernels_without_timestamps(tmp_path: Path) -> None:
    doc = json.loads(gunzip("hta_alexnet_a100.json.gz"))
    kernels = [e for e in doc["traceEvents"] if e.get("cat") == "kernel"]
    for e in kernels[:3]:
        del e["dur"]
    path = tmp_path / "some_missing.json"
    path.write_text(json.dumps(doc))
    trace = read_kineto(path)
    assert len(trace.kernels) == 76
    assert any("3 'kernel' events without a usable ts/dur" in note for note in trace.notes)
    for e in kernels:
        e.pop("ts", None)
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="none of the 79 GPU kernel events"):
        read_kineto(path)


# ---------------------------------------------------------------- bad input


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[bytes, str]]:
    real_gz = shared_file("kineto/hta_nccl_a100_rank0.json.gz").read_bytes()
    real_json = gzip.decompress(real_gz)
    return {
        "truncated.json.gz": (real_gz[: len(real_gz) // 2], "truncated gzip"),
        "truncated.json": (real_json[: len(real_json) // 2], "not valid JSON"),
        "garbage.json": (b"{\x00\x01 this is not json", "not valid JSON"),
        "corrupt.json.gz": (
            real_gz[:1000] + bytes(b ^ 0xFF for b in real_gz[1000:2000]) + real_gz[2000:],
            "corrupt gzip",
        ),
        "bad_crc.json.gz": (real_gz[:-8] + bytes(8), "corrupt gzip"),
        "no_events.json": (b'{"schemaVersion": 1, "deviceProperties": []}', "no 'traceEvents'"),
        "empty.json": (b"", "empty"),
        "empty.json.gz": (gzip.compress(b""), "empty after decompression"),
        "events_not_objects.json": (b'{"traceEvents": [1, 2, 3]}', "not JSON objects"),
        "scalar.json": (b"42", "no 'traceEvents'"),
    }


def test_bad_inputs_give_one_line_errors(tmp_path: Path) -> None:
    shared_before = _digest(shared_file("kineto/hta_nccl_a100_rank0.json.gz"))
    for name, (content, expected) in _bad_inputs(tmp_path).items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(InputError) as err:
            read_kineto(path)
        message = str(err.value)
        assert expected in message, (name, message)
        assert name in message and "\n" not in message
        assert path.read_bytes() == content  # never written to
    assert _digest(shared_file("kineto/hta_nccl_a100_rank0.json.gz")) == shared_before


def test_decompressed_size_cap(tmp_path: Path) -> None:
    path = shared_file("kineto/hta_alexnet_a100.json.gz")
    with pytest.raises(InputError, match="once decompressed"):
        read_kineto(path, max_decompressed_bytes=100_000)
    plain = tmp_path / "alexnet.json"
    plain.write_bytes(gzip.decompress(path.read_bytes()))
    with pytest.raises(InputError, match="once decompressed"):
        read_kineto(plain, max_decompressed_bytes=100_000)


def test_streamed_gunzip_reads_members_padding_and_the_exact_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The streamed decompression (small pieces forced) reads what one zlib call read."""
    from infersight.ingest import kineto

    monkeypatch.setattr(kineto, "_GZIP_READ_BYTES", 4096)
    monkeypatch.setattr(kineto, "_GZIP_OUTPUT_BYTES", 65536)
    source = shared_file("kineto/hta_alexnet_a100.json.gz")
    text = gzip.decompress(source.read_bytes())
    middle = len(text) // 2
    members = tmp_path / "members.json.gz"  # two gzip members with zero padding in between
    members.write_bytes(gzip.compress(text[:middle]) + b"\x00" * 5000 + gzip.compress(text[middle:]))
    expected = read_kineto(source)
    for path in (source, members):
        got = read_kineto(path, max_decompressed_bytes=len(text))  # exactly at the cap: fine
        assert got.kernels.equals(expected.kernels)
        with pytest.raises(InputError, match="once decompressed"):
            read_kineto(path, max_decompressed_bytes=len(text) - 1)


def test_load_traces_dispatches_bad_kineto_to_input_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_bytes(b'{"traceEvents": [{"ph": "X", "cat": "kernel"')
    with pytest.raises(InputError, match=r"cut\.json"):
        load_traces(path)


def test_string_thread_and_stream_ids(tmp_path: Path) -> None:
    # older Kineto wrote GPU tids as "stream 7"; some host threads carry names instead of numbers
    doc = json.loads(gunzip("hta_alexnet_a100.json.gz"))
    for e in complete_events(doc, "kernel"):
        e["tid"] = f"stream {e['args'].pop('stream')}"
    ops = complete_events(doc, "cpu_op")
    for e in ops:
        e["tid"] = "main thread"
    path = tmp_path / "string_tids.json"
    path.write_text(json.dumps(doc))
    first, second = read_kineto(path), read_kineto(path)
    assert set(first.kernels["stream"].tolist()) == {7, 20}
    cpu_threads = first.ranges.loc[first.ranges["source"] == "cpu_op", "thread"]
    assert len(cpu_threads) == len(ops) and cpu_threads.nunique() == 1
    assert int(cpu_threads.iloc[0]) < -1  # a name: stable negative id, never a real tid or -1
    assert first.ranges["thread"].equals(second.ranges["thread"])
