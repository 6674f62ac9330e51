"""Prefill/decode split: marker names, annotation assignment, kernel-mix iterations, real traces."""

from __future__ import annotations

import gzip
import json
import re
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import plain_json_events, shared_file, shared_traces

from infersight.analyses.phases import classify_range_name, phase_split
from infersight.analyses.window import analysis_windows
from infersight.model import Trace
from infersight.model.trace import API_COLUMNS, KERNEL_COLUMNS, RANGE_COLUMNS, make_table

VLLM = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
SGLANG = "kineto/tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz"
GPTOSS = "kineto/tracelens_vllm_gptoss_prefilldecode_piecewise_graph_mi300x.json.gz"


@pytest.mark.parametrize(
    ("name", "phase"),
    [
        ("[Executor] _forward_step 3: 2 ctx reqs, 0 gen reqs", "prefill"),
        ("[Executor] _forward_step 4: 0 ctx reqs, 32 gen reqs", "decode"),
        ("[Executor] _forward_step 5: 1 ctx reqs, 31 gen reqs", "prefill"),
        ("step[EXTEND bs=15 toks=15360]", "prefill"),
        ("step[DECODE bs=32]", "decode"),
        ("execute_8192_context_9(sq8155sk8430)_generation_37(sq37sk34489)", "mixed"),
        ("execute_15360_context_15(sq15360)_generation_0(sq0sk0)", "prefill"),
        ("execute_32_context_0(sq0)_generation_32(sq32)", "decode"),
        ("prefill", "prefill"),
        ("decode_step", "decode"),
        ("ContextPhase", "prefill"),
        ("generate_tokens", "decode"),
        ("execute_context_1(888_788544)_generation_0(0)", "prefill"),
        ("GENERATION", "decode"),
        ("## decoder fp8 None ##", None),
        ("contextual_embedding", None),
        ("ProfilerStep#3", None),
        ("nccl:_all_gather_base", None),
    ],
)
def test_marker_names(name: str, phase: str | None) -> None:
    assert classify_range_name(name) == phase


def _trace(kernels: dict, api: dict | None = None, ranges: dict | None = None) -> Trace:
    t = Trace(source="synthetic.json", format="kineto")
    t.kernels = make_table(KERNEL_COLUMNS, kernels)
    if api:
        t.api = make_table(API_COLUMNS, api)
    if ranges:
        t.ranges = make_table(RANGE_COLUMNS, ranges)
    t.check_schema()
    return t


def _split(t: Trace):  # type: ignore[no-untyped-def]
    return phase_split([t], [analysis_windows(t)])


def test_phases_by_host_annotation_follow_the_launch() -> None:
    # thread 1: "prefill" [0,100) launches corr 1 (a graph: 2 kernels); two "decode_step" ranges
    # [100,150), [150,200) launch corr 2 and 3; corr 4 is launched outside every range.
    kernels = {
        "device": [0] * 5,
        "start": [1000, 1100, 2000, 2100, 3000],
        "end": [1100, 1300, 2010, 2110, 3010],
        "name": ["gemm", "attn", "gemv", "gemv", "copy"],
        "correlation": [1, 1, 2, 3, 4],
        "process": [0] * 5,
    }
    api = {
        "process": [0] * 4,
        "thread": [1] * 4,
        "start": [10, 110, 160, 300],
        "end": [20, 120, 170, 310],
        "name": ["cudaGraphLaunch", "cudaLaunchKernel", "cudaLaunchKernel", "cudaLaunchKernel"],
        "correlation": [1, 2, 3, 4],
    }
    ranges = {
        "process": [0] * 3,
        "thread": [1] * 3,
        "start": [0, 100, 150],
        "end": [100, 150, 200],
        "name": ["prefill", "decode_step", "decode_step"],
        "source": ["user_annotation"] * 3,
    }
    split = _split(_trace(kernels, api, ranges))
    assert split.method == "annotation"
    assert "1 outside every phase range" in split.reason
    by = {p.phase: p for p in split.phases}
    assert set(by) == {"prefill", "decode"}
    assert (by["prefill"].steps, by["prefill"].kernel_count, by["prefill"].kernel_time_ns) == (1, 2, 300)
    assert (by["prefill"].wall_ns, by["prefill"].busy_ns) == (300, 300)
    assert (by["decode"].steps, by["decode"].kernel_count, by["decode"].kernel_time_ns) == (2, 2, 20)
    # two steps: spans [2000,2010) and [2100,2110): wall 20, no idle counted between steps
    assert (by["decode"].wall_ns, by["decode"].idle_ratio) == (20, 0.0)
    assert by["prefill"].launch_overhead_ratio == pytest.approx(10 / 300)


def test_gpu_annotation_assigns_overlapping_kernels_and_inner_range_wins() -> None:
    kernels = {
        "device": [0] * 3,
        "start": [0, 50, 120],
        "end": [40, 110, 130],
        "name": ["a", "b", "c"],
        "correlation": [1, 2, 3],
    }
    ranges = {
        "start": [0, 100],
        "end": [200, 125],
        "name": ["execute_64_context_2(x)_generation_0(y)", "step[DECODE bs=1]"],
        "source": ["gpu_user_annotation"] * 2,
        "device": [0, 0],
    }
    by = {p.phase: p for p in _split(_trace(kernels, ranges=ranges)).phases}
    assert by["prefill"].kernel_count == 1  # a only; b overlaps the inner decode range
    assert by["decode"].kernel_count == 2


def _mix_trace(durations_per_iteration: list[int], per_iter: int = 30) -> Trace:
    starts, ends = [], []
    t0 = 0
    for dur in durations_per_iteration:
        for i in range(per_iter):
            starts.append(t0 + i * (dur + 1000))
            ends.append(starts[-1] + dur)
        t0 = ends[-1] + 5_000_000  # 5 ms gap between iterations
    n = len(starts)
    kernels = {"device": [0] * n, "start": starts, "end": ends, "name": ["k"] * n, "correlation": [-1] * n}
    return _trace(kernels)


def test_kernel_mix_splits_long_and_short_kernel_iterations() -> None:
    split = _split(_mix_trace([200_000, 10_000, 11_000, 10_000]))
    assert split.method == "kernel-mix"
    assert "gaps > 1 ms" in split.reason
    by = {p.phase: p for p in split.phases}
    assert (by["prefill"].steps, by["decode"].steps) == (1, 3)
    assert (by["prefill"].kernel_count, by["decode"].kernel_count) == (30, 90)


def test_kernel_mix_uniform_gives_none_with_reason() -> None:
    split = _split(_mix_trace([10_000, 12_000, 11_000]))
    assert split.method == "none"
    assert "cannot be told apart" in split.reason
    assert split.phases == []
    # decode-style kernel names in one iteration of three: counted, not rounded to "all"/"none"
    t = _mix_trace([10_000, 12_000, 11_000])
    names = ["k"] * 60 + ["gemv_kernel"] * 30
    t.kernels["name"] = pd.Categorical(names)
    split = _split(t)
    assert split.method == "none"
    assert "decode-style kernels (GEMV, split-K, split-KV/paged attention) in 1 of them" in split.reason


def _json_kernels(path: str) -> list[dict]:
    events = plain_json_events(shared_file(path))  # parsed once per test process (read-only)
    return [e for e in events if e.get("cat") == "kernel" and e.get("ph") == "X"]


def test_vllm_trace_is_one_prefill_then_nine_decode_steps() -> None:

    traces = shared_traces(VLLM)
    split = phase_split(traces, [analysis_windows(t) for t in traces])
    assert split.method == "kernel-mix", split.reason
    by = {p.phase: p for p in split.phases}
    assert (by["prefill"].steps, by["decode"].steps) == (1, 9)
    kernels = _json_kernels(VLLM)
    assert by["prefill"].kernel_count + by["decode"].kernel_count == len(kernels) == 13508
    assert by["prefill"].avg_kernel_ns is not None and by["decode"].avg_kernel_ns is not None
    assert by["prefill"].avg_kernel_ns > 5 * by["decode"].avg_kernel_ns
    # independent: the prefill iteration ends before the first host sync; its kernels are the
    # earliest ones, so its kernel count is the number of kernels starting before the 2nd step's
    first_decode_start = sorted(e["ts"] for e in kernels)[by["prefill"].kernel_count]
    assert by["decode"].kernel_count == sum(e["ts"] >= first_decode_start for e in kernels)
    # vLLM runs prefill eagerly and replays decode from its 729 CUDA graphs (8667 kernels, the
    # figures test_timeline checks against plain json for the whole trace)
    assert (by["prefill"].graph_kernel_count, by["prefill"].graph_coverage) == (0, 0.0)
    assert (by["decode"].graph_kernel_count, by["decode"].graph_launch_count) == (8667, 729)
    decode_eager, decode_all = by["decode"].eager_gap_buckets, by["decode"].gap_buckets
    assert decode_eager is not None
    assert 0 < sum(b.total_ns for b in decode_eager) < sum(b.total_ns for b in decode_all)


def test_sglang_and_gptoss_traces_split_by_their_annotations() -> None:

    for path, phase, count in ((SGLANG, "prefill", 527), (GPTOSS, "mixed", 413)):
        traces = shared_traces(path)
        split = phase_split(traces, [analysis_windows(t) for t in traces])
        assert split.method == "annotation"
        assert [(p.phase, p.kernel_count, p.steps) for p in split.phases] == [(phase, count, 1)]
        assert count == len(_json_kernels(path))


def test_profiler_step_ranges_cut_the_iterations() -> None:
    # three ProfilerStep#N ranges on thread 1, 30 kernels launched in each; the first step runs
    # 200 µs kernels, the others 10 µs. "ProfilerStep#x" and "aten::mm" ranges are not steps, and
    # every range name repeats (categories are matched, not rows).
    per_step, durations = 30, [200_000, 10_000, 10_000]
    step_starts = [0, 10_000_000, 20_000_000]
    launch, kstart, kend = [], [], []
    for step_start, dur in zip(step_starts, durations, strict=True):
        for i in range(per_step):
            launch.append(step_start + 1000 * i)
            kstart.append(step_start + 1_000_000 + i * (dur + 100))  # no gap > 1 ms within a step
            kend.append(kstart[-1] + dur)
    n = len(launch)
    kernels = {
        "device": [0] * n,
        "start": kstart,
        "end": kend,
        "name": ["k"] * n,
        "correlation": list(range(n)),
    }
    api = {
        "thread": [1] * n,
        "start": launch,
        "end": [t + 10 for t in launch],
        "name": ["cudaLaunchKernel"] * n,
        "correlation": list(range(n)),
    }
    noise = ["ProfilerStep#x", "aten::mm"] * 50
    names = [f"ProfilerStep#{i + 1}" for i in range(3)] + noise
    ranges = {
        "thread": [1] * len(names),
        "start": step_starts + [5_000_000 + i for i in range(len(noise))],
        "end": [s + 10_000_000 for s in step_starts] + [30_000_000] * len(noise),
        "name": names,
        "source": ["user_annotation"] * len(names),
    }
    split = _split(_trace(kernels, api, ranges))
    assert split.method == "kernel-mix", split.reason
    assert "3 ProfilerStep ranges gave 3 iterations (1 prefill, 2 decode)" in split.reason
    by = {p.phase: p for p in split.phases}
    # independent: kernels whose launch starts in [step start, step start + 10 ms)
    in_step = [sum(s <= t < s + 10_000_000 for t in launch) for s in step_starts]
    assert (by["prefill"].steps, by["prefill"].kernel_count) == (1, in_step[0])
    assert (by["decode"].steps, by["decode"].kernel_count) == (2, in_step[1] + in_step[2])
    assert by["prefill"].kernel_time_ns == per_step * durations[0]


# ---------------------------------------------------------------- CPU captures

DEMO = Path(str(resources.files("infersight").joinpath("data/demo/tiny_llama_cpu.pt.trace.json.gz")))


def test_cpu_operators_follow_the_phase_ranges_of_their_own_thread() -> None:
    # CPU capture: stream = host thread. Thread 1 runs "prefill" [0,100) and "decode_step_0"
    # [100,200) with operators inside; thread 2 runs operators at the same time but has no
    # range: they stay unassigned (a range charges only its own thread's operators).
    kernels = {
        "device": [0] * 6,
        "stream": [1, 1, 1, 1, 2, 2],
        "start": [10, 40, 110, 150, 20, 120],
        "end": [30, 90, 140, 160, 60, 130],
        "name": ["aten::mm", "aten::mm", "aten::mm", "aten::add", "aten::mm", "aten::mm"],
    }
    ranges = {
        "thread": [1, 1],
        "start": [0, 100],
        "end": [100, 200],
        "name": ["prefill", "decode_step_0"],
        "source": ["user_annotation"] * 2,
    }
    t = _trace(kernels, ranges=ranges)
    t.device_kind = "cpu"
    split = _split(t)
    assert split.method == "annotation"
    assert "4 CPU operators assigned by their own start on the range's host thread, 2 outside" in split.reason
    by = {p.phase: p for p in split.phases}
    assert (by["prefill"].kernel_count, by["prefill"].kernel_time_ns, by["prefill"].wall_ns) == (2, 70, 80)
    assert (by["decode"].kernel_count, by["decode"].kernel_time_ns, by["decode"].busy_ns) == (2, 40, 40)
    for p in split.phases:
        assert p.launch_overhead_ratio is None and "CPU capture" in (p.launch_overhead_na_reason or "")
        assert p.graph_coverage is None and "CPU capture" in (p.graph_coverage_na_reason or "")


def _plain_demo_phase_ranges() -> list[tuple[str, int, int, int]]:
    """(phase, tid, start ns, end ns) of the demo's prefill / decode_step_N annotations, plain json."""
    with gzip.open(DEMO) as fh:
        events = json.load(fh)["traceEvents"]
    out = []
    for e in events:
        if e.get("cat") != "user_annotation" or e.get("ph") != "X":
            continue
        is_decode = re.fullmatch(r"decode_step_\d+", e["name"]) is not None
        phase = "prefill" if e["name"] == "prefill" else "decode" if is_decode else None
        if phase:
            start = round(Decimal(repr(e["ts"])) * 1000)
            out.append((phase, int(e["tid"]), start, start + round(Decimal(repr(e["dur"])) * 1000)))
    return out


def test_cpu_demo_trace_splits_one_prefill_and_n_decode_steps() -> None:
    from infersight.ingest import load_traces

    (trace,) = load_traces(DEMO, cpu_ops_as_kernels=True)
    assert trace.device_kind == "cpu"
    split = phase_split([trace], [analysis_windows(trace)])
    assert split.method == "annotation", split.reason
    by = {p.phase: p for p in split.phases}
    ranges = _plain_demo_phase_ranges()
    decode_steps = sum(1 for phase, *_ in ranges if phase == "decode")
    assert decode_steps == 16
    assert (by["prefill"].steps, by["decode"].steps) == (1, decode_steps)
    # independent: an operator belongs to the range of its own thread that its start lies in;
    # per step, wall = first start -> last end, busy = union of the operators' intervals
    ops = list(zip(trace.kernels["stream"], trace.kernels["start"], trace.kernels["end"], strict=True))
    plain = {p: {"count": 0, "time": 0, "wall": 0, "busy": 0} for p in ("prefill", "decode")}
    for phase, tid, rs, re_ in ranges:
        mine = sorted((int(s), int(e)) for t, s, e in ops if t == tid and rs <= s < re_)
        plain[phase]["count"] += len(mine)
        plain[phase]["time"] += sum(e - s for s, e in mine)
        plain[phase]["wall"] += max(e for _, e in mine) - mine[0][0]
        covered_to = mine[0][0]
        for s, e in mine:
            plain[phase]["busy"] += max(0, e - max(s, covered_to))
            covered_to = max(covered_to, e)
    for phase, stat in by.items():
        got = (stat.kernel_count, stat.kernel_time_ns, stat.wall_ns, stat.busy_ns)
        assert got == tuple(plain[phase].values()), phase
    assert by["prefill"].avg_kernel_ns is not None and by["decode"].avg_kernel_ns is not None
    assert by["prefill"].avg_kernel_ns > 5 * by["decode"].avg_kernel_ns  # large-M GEMMs vs one-token steps
    outside = len(trace.kernels) - by["prefill"].kernel_count - by["decode"].kernel_count
    assert f", {outside} outside every phase range" in split.reason


def test_phase_graph_coverage_and_gaps_next_to_eager_kernels() -> None:
    # two decode steps on thread 1. Step 1 replays a graph (corr 1: G1 [1000,1010), G2
    # [1015,1025)) then launches eager E1 [1040,1050); step 2 launches eager E2 [2000,2010) then
    # replays G3 [2030,2040). Gaps inside the steps: 5 (inside the graph), 15 (G2->E1), 20
    # (E2->G3); [1050,2000) lies between the steps and is no gap of the phase.
    kernels = {
        "device": [0] * 5,
        "start": [1000, 1015, 1040, 2000, 2030],
        "end": [1010, 1025, 1050, 2010, 2040],
        "name": ["g1", "g2", "e1", "e2", "g3"],
        "correlation": [1, 1, 2, 3, 4],
    }
    api = {
        "thread": [1] * 4,
        "start": [10, 20, 110, 120],
        "end": [15, 25, 115, 125],
        "name": ["cudaGraphLaunch", "cudaLaunchKernel", "cudaLaunchKernel", "cudaGraphLaunch"],
        "correlation": [1, 2, 3, 4],
    }
    ranges = {
        "thread": [1, 1],
        "start": [0, 100],
        "end": [100, 200],
        "name": ["decode_step", "decode_step"],
        "source": ["user_annotation"] * 2,
    }
    (decode,) = _split(_trace(kernels, api, ranges)).phases
    assert (decode.steps, decode.wall_ns, decode.busy_ns) == (2, 50 + 40, 50)
    assert (decode.graph_kernel_count, decode.graph_launch_count, decode.graph_coverage) == (3, 2, 3 / 5)
    assert [(b.count, b.total_ns) for b in decode.gap_buckets if b.count] == [(3, 5 + 15 + 20)]
    assert decode.eager_gap_buckets is not None
    assert [(b.count, b.total_ns) for b in decode.eager_gap_buckets if b.count] == [(2, 15 + 20)]
    assert {e.name for e in decode.top_eager_kernels} == {"e1", "e2"}


# ---------------------------------------------------------------- emit_nvtx-style unique names


def test_canonical_names_zero_only_the_emit_nvtx_numbers() -> None:
    from infersight.analyses.phases import canonical_range_names

    names = [
        "aten::mm, seq = 12, op_id = 3456",
        "aten::mm, seq = 7, op_id = 8, sizes = [[1, 2]]",
        "decode_step_3",
        "execute_8192_context_9(sq8155sk8430)_generation_37(sq37sk34489), op_id = 99",
        "odd\x00name, seq = 5",  # NUL inside a name: the chunk is done name by name
    ]
    assert canonical_range_names(names) == [
        "aten::mm, seq = 0, op_id = 0",
        "aten::mm, seq = 0, op_id = 0, sizes = [[1, 2]]",
        "decode_step_3",
        "execute_8192_context_9(sq8155sk8430)_generation_37(sq37sk34489), op_id = 0",
        "odd\x00name, seq = 0",
    ]
    # non-ASCII text takes the Unicode patterns: other scripts' digits are numbers too (\d)
    unicode_names = ["ñ_op, op_id = 12", "x, seq = \u0663\u0664, op_id = 5", "y, op_id = ²"]
    assert canonical_range_names(unicode_names) == [
        "ñ_op, op_id = 0",
        "x, seq = 0, op_id = 0",
        "y, op_id = ²",  # a superscript is not a decimal digit
    ]


def test_canonical_codes_chunk_by_chunk_equal_one_factorisation(monkeypatch: pytest.MonkeyPatch) -> None:
    # forms repeat across chunks (chunks of 3 names): codes in order of first appearance overall
    import numpy as np
    import pandas as pd

    from infersight.analyses import phases

    names = [f"op{i % 4}, seq = {i}, op_id = {i * 7}" for i in range(20)] + ["decode", "op3", "decode"]
    canonical = np.asarray(phases.canonical_range_names(names), dtype=object)
    expected_codes, expected_forms = pd.factorize(canonical)
    for chunk in (3, 1 << 18):
        monkeypatch.setattr(phases, "_CANONICAL_CHUNK", chunk)
        codes, forms = phases._canonical_codes(names)
        assert codes.tolist() == expected_codes.tolist()
        assert list(forms) == list(expected_forms) and forms.dtype == object
    assert list(expected_forms)[:2] == ["op0, seq = 0, op_id = 0", "op1, seq = 0, op_id = 0"]
    empty_codes, empty_forms = phases._canonical_codes([])
    assert len(empty_codes) == 0 and len(empty_forms) == 0


def test_every_marker_classifies_emit_nvtx_names_like_their_canonical_form() -> None:
    # the split classifies one canonical name per group: that must not change any result
    from infersight.analyses.phases import _framework, _is_profiler_step, canonical_range_names

    bodies = [
        "[Executor] _forward_step 3: 2 ctx reqs, 0 gen reqs",
        "[Executor] _forward_step 4: 0 ctx reqs, 32 gen reqs",
        "execute_8192_context_9(sq8155sk8430)_generation_37(sq37sk34489)",
        "execute_32_context_0(sq0)_generation_32(sq32)",
        "step[EXTEND bs=15]",
        "step[DECODE bs=32]",
        "step[MIXED bs=4]",
        "prefill",
        "decode",
        "decode_step",
        "ContextPhase",
        "generate_tokens",
        "ProfilerStep#3",
        "aten::mm",
    ]
    suffixes = [
        "",
        ", seq = 0",
        ", seq = 17",
        ", op_id = 123456",
        ", seq = 3, op_id = 40",
        ", seq = 9, op_id = 1, x",
    ]
    names = [body + suffix for body in bodies for suffix in suffixes]
    for name, canonical in zip(names, canonical_range_names(names), strict=True):
        for judge in (classify_range_name, _framework, _is_profiler_step):
            assert judge(name) == judge(canonical), (judge.__name__, name)


def test_phase_split_with_a_unique_name_per_range_matches_name_by_name_classification(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # every range its own emit_nvtx name: the split (one classification per canonical name) must
    # equal the one that classifies every distinct name itself
    from infersight.analyses import phases

    kernels = {
        "device": [0] * 4,
        "start": [1000, 1100, 2000, 2100],
        "end": [1100, 1300, 2010, 2110],
        "name": ["gemm", "attn", "gemv", "gemv"],
        "correlation": [1, 1, 2, 3],
        "process": [0] * 4,
    }
    api = {
        "process": [0] * 3,
        "thread": [1] * 3,
        "start": [10, 110, 160],
        "end": [20, 120, 170],
        "name": ["cudaGraphLaunch", "cudaLaunchKernel", "cudaLaunchKernel"],
        "correlation": [1, 2, 3],
    }
    ranges = {
        "process": [0] * 4,
        "thread": [1] * 4,
        "start": [0, 100, 150, 0],
        "end": [100, 150, 200, 300],
        "name": [
            "prefill, seq = 1, op_id = 1",
            "decode_step, seq = 2, op_id = 2",
            "decode_step, seq = 3, op_id = 3",
            "aten::mm, seq = 4, op_id = 4",
        ],
        "source": ["user_annotation"] * 4,
    }
    canonical = _split(_trace(kernels, api, ranges))
    monkeypatch.setattr(phases, "canonical_range_names", lambda names: list(names))
    monkeypatch.setattr(phases, "_canonical_cache", None)
    name_by_name = _split(_trace(kernels, api, ranges))
    assert canonical.method == "annotation"
    assert {p.phase for p in canonical.phases} == {"prefill", "decode"}
    assert canonical.model_dump() == name_by_name.model_dump()
