"""``layers`` without a model config: the pass structure found from the real traces themselves.

Each expected count is cross-checked independently from the plain Kineto JSON (orjson): anchor
kernels counted between kernels whose role in that trace is known (the sampling argmax, the
embedding), never through infersight's segmentation. Traces whose anchors allow no layer count
(training steps, CNNs) must say the count is implausible and why, not print a split as fact.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import REPO_ROOT, plain_json_events, shared_file, shared_traces
from tests.layers import synthetic

from infersight import api
from infersight.cli import run
from infersight.layers.analysis import analyze_layers
from infersight.layers.results import LayerReport
from infersight.model import Trace
from infersight.model.trace import RANGE_COLUMNS, make_table

VLLM_70B = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
QWEN_05B = "kineto/tracelens_qwen1.5-0.5b-chat_h100.json.gz"
SGLANG = "kineto/tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz"
B200_GPT_OSS = "kineto/tracelens_vllm_eager_b200_rank0.json.gz"
MI300X_GPT_OSS = "kineto/tracelens_vllm_gptoss_prefilldecode_piecewise_graph_mi300x.json.gz"


def _kernel_names(path: Path) -> list[str]:
    """Kernel names in start order, read with plain orjson."""
    events = plain_json_events(path)
    kernels = [e for e in events if e.get("cat") == "kernel" and e.get("ph") == "X"]
    return [str(e["name"]) for e in sorted(kernels, key=lambda e: float(e["ts"]))]


def _count_between(names: list[str], anchor: str, marker: str) -> list[int]:
    """Anchor kernels between consecutive marker kernels (and before the first / after the last)."""
    counts, current = [], 0
    anchor_re, marker_re = re.compile(anchor), re.compile(marker)
    for name in names:
        if marker_re.search(name):
            counts.append(current)
            current = 0
        elif anchor_re.search(name):
            current += 1
    return [*counts, current]


def _no_config(relative: str) -> tuple[LayerReport, Path]:
    path = shared_file(relative)
    return analyze_layers(shared_traces(relative)[0]), path


def _structure(report: LayerReport) -> tuple[int | None, str, bool]:
    assert report.pass_structure is not None
    return (
        report.pass_structure.layers_per_pass,
        report.pass_structure.method,
        report.pass_structure.plausible,
    )


def test_vllm_70b_class_80_layers_times_10_passes() -> None:
    report, path = _no_config(VLLM_70B)
    assert [p.layer_count for p in report.passes] == [80] * 10
    assert _structure(report) == (80, "boundary-kernels", True)
    # independent: 80 FA3 attention kernels between two greedy-sampling argmaxes, 10 argmaxes
    between = _count_between(_kernel_names(path), r"FlashAttnFwdSm90", r"ArgMaxOps")
    assert between == [80] * 10 + [0]
    assert report.selected_pass == 1 and report.passes[1].state == "steady-state"


def test_vllm_70b_class_one_decode_step_alone() -> None:
    """A trace of one decode step (the kernels of one graph replay + sampling): one pass of 80."""
    trace = shared_traces(VLLM_70B)[0]
    names = trace.kernels["name"].astype(str)
    argmax = trace.kernels.loc[names.str.contains("ArgMaxOps"), "start"].sort_values().to_numpy()
    start = trace.kernels["start"]
    one_step = trace.kernels[
        (start > argmax[4]) & (start <= argmax[5])
    ]  # after step 4's sampling .. step 5's
    report = analyze_layers(dataclasses.replace(trace, kernels=one_step.reset_index(drop=True)))
    assert [p.layer_count for p in report.passes] == [80]
    assert _structure(report) == (80, "single-pass", True)
    assert report.pass_structure is not None and not report.pass_structure.lower_bound  # embedding .. argmax
    # the same step cut inside its last layer (before its MLP all-reduce): a lower bound, and said so
    reduces = one_step[one_step["name"].astype(str).str.contains("cross_device_reduce")]["start"]
    cut = one_step[one_step["start"] < reduces.max()].reset_index(drop=True)
    cut_report = analyze_layers(dataclasses.replace(trace, kernels=cut))
    assert cut_report.pass_structure is not None and cut_report.pass_structure.lower_bound
    assert "a lower bound" in cut_report.pass_structure.reason


def test_qwen15_05b_24_layers_and_a_truncated_first_pass() -> None:
    report, path = _no_config(QWEN_05B)
    assert [p.layer_count for p in report.passes] == [10, 24]
    assert _structure(report) == (24, "boundary-kernels", True)
    assert report.passes[0].state == "truncated"
    assert any("pass 0 is truncated (10 of 24 layers" in w for w in report.warnings)
    # the trace ends after the final norm, before lm_head: the 24 is shown as a lower bound
    assert report.pass_structure is not None and report.pass_structure.lower_bound
    # independent: the embedding (indexSelectLargeIndex) runs once, 10 attention kernels before it, 24 after
    assert _count_between(_kernel_names(path), r"flash_fwd_kernel", r"indexSelectLargeIndex") == [10, 24]


@pytest.mark.parametrize(
    ("relative", "anchor", "layers"),
    [
        (SGLANG, r"FmhaBatchPrefillWithPagedKVCacheKernel", 36),  # Qwen3-8B: 36 layers
        (B200_GPT_OSS, r"fmhaSm100", 36),  # gpt-oss-120b: 36 layers (1 + 35 before)
        (MI300X_GPT_OSS, r"kernel_unified_attention_2d", 24),  # gpt-oss-20b class: 24 layers
    ],
)
def test_one_pass_traces(relative: str, anchor: str, layers: int) -> None:
    report, path = _no_config(relative)
    assert [p.layer_count for p in report.passes] == [layers]
    assert _structure(report) == (layers, "step-ranges", True)  # the engine's one step annotation
    assert report.pass_structure is not None and not report.pass_structure.lower_bound
    assert sum(bool(re.search(anchor, name)) for name in _kernel_names(path)) == layers  # independent
    assert not any("implausible" in w for w in report.warnings)
    # without the step annotations the kernels alone give the same pass
    trace = api.load([path])[0]
    bare = analyze_layers(dataclasses.replace(trace, ranges=trace.ranges.iloc[:0]))
    assert [p.layer_count for p in bare.passes] == [layers]
    assert _structure(bare) == (layers, "single-pass", True)


def test_two_layer_passes_are_implausible_not_a_finding() -> None:
    """A recommender training rank: 4 softmax kernels split 2 + 2 — no decoder, and said so."""
    report, _ = _no_config("kineto/hta_sampled_128ranks/rank-0.json.gz")
    layers, _, plausible = _structure(report)
    assert layers is None and not plausible
    assert report.pass_structure is not None
    assert any("a pass of 2 layers" in p for p in report.pass_structure.problems)
    assert any(
        w.startswith("the anchor count per pass is implausible") and "--layers N" in w
        for w in report.warnings
    )


def test_training_steps_are_implausible() -> None:
    """A training trace whose norm-gradient anchor splits into passes of 2, 3, 5 and 15 "layers"."""
    report, _ = _no_config("kineto/hta_trace_diff_control_a100_rank3.json.gz")
    assert report.pass_structure is not None and not report.pass_structure.plausible
    assert any("disagree" in p for p in report.pass_structure.problems)
    cnn, _ = _no_config("kineto/hta_ns_resolution_v100_rank0.pt.trace.json.gz")
    assert cnn.pass_structure is not None and not cnn.pass_structure.plausible
    assert any("backward pass" in p for p in cnn.pass_structure.problems)


def test_config_path_is_unchanged_and_says_so() -> None:
    report = analyze_layers(shared_traces(QWEN_05B)[0], num_layers=24)
    assert [p.layer_count for p in report.passes] == [10, 24]
    assert _structure(report) == (24, "--num-layers", True)


def test_cli_shows_the_method_and_the_implausible_case(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["layers", str(shared_file(SGLANG))]) == 0
    out = capsys.readouterr().out
    assert "pass structure: 36 layers per pass (method: step-ranges)" in out
    assert run(["layers", str(shared_file("kineto/hta_sampled_128ranks/rank-0.json.gz"))]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "layers per pass unknown" in out and "implausible" in out and "--layers N" in out
    assert "split not trusted" in out
    assert run(["layers", str(shared_file(SGLANG)), "--layers", "36", "--format", "json"]) == 0
    assert '"method": "--num-layers"' in capsys.readouterr().out


def test_alternating_layer_types_are_not_passes() -> None:
    """One 24-layer pass whose sliding-window layers run one more kernel: 24 layers, not 12 x 2."""
    report = analyze_layers(synthetic.build(passes=1, layers=24, alternate=True).trace)
    assert [p.layer_count for p in report.passes] == [24]
    assert report.pass_structure is not None and report.pass_structure.layer_type_period == 2
    several = analyze_layers(synthetic.build(passes=3, layers=24, alternate=True, drop_first=100).trace)
    assert [p.layer_count for p in several.passes] == [16, 24, 24]


def test_an_extra_layer_kernel_is_no_pass_boundary() -> None:
    """A layer that runs two more of the layer's own kernels (a split launch) does not cut the pass."""
    built = synthetic.build(passes=1, layers=36)
    kernels = built.trace.kernels
    twice = kernels[kernels["start"] >= built.layer_starts_ns[0][34]].head(2)
    twice = twice.assign(start=twice["start"] + 1, end=twice["start"] + 2)
    merged = pd.concat([kernels, twice], ignore_index=True)
    merged["name"] = merged["name"].astype("category")
    trace: Trace = dataclasses.replace(
        built.trace, kernels=merged.sort_values("start", kind="stable").reset_index(drop=True)
    )
    report = analyze_layers(trace)
    assert [p.layer_count for p in report.passes] == [36]
    assert _structure(report) == (36, "single-pass", True)


def test_a_one_off_kernel_inside_a_pass_is_reported_not_split_silently() -> None:
    """Two launches of a kernel no layer runs, inside layer 34 of one whole 36-layer pass: the old
    period search printed 34 layers + a truncated 2-layer pass; the 2-layer side ends with sampling,
    so it is whole too, and the split is reported as implausible."""
    built = synthetic.build(passes=1, layers=36)
    kernels = built.trace.kernels
    at = kernels[kernels["start"] >= built.layer_starts_ns[0][34]].head(2)
    helper = at.assign(name="void lazy_init_helper_kernel<>()", start=at["start"] + 1, end=at["start"] + 2)
    merged = pd.concat([kernels.astype({"name": str}), helper], ignore_index=True)
    merged["name"] = merged["name"].astype("category")
    trace: Trace = dataclasses.replace(
        built.trace, kernels=merged.sort_values("start", kind="stable").reset_index(drop=True)
    )
    report = analyze_layers(trace)
    assert report.pass_structure is not None and not report.pass_structure.plausible
    assert any("disagree: 34 vs 2 layers" in p for p in report.pass_structure.problems)
    assert any("implausible" in w for w in report.warnings)


def test_idle_gaps_decide_when_no_kernel_marks_the_boundary() -> None:
    """Graph replays with no boundary kernels on the layer stream: the host gap between steps cuts."""
    report = analyze_layers(synthetic.build(passes=4, layers=24, bare=True, drop_first=50).trace)
    assert [p.layer_count for p in report.passes] == [20, 24, 24, 24]
    assert _structure(report) == (24, "idle-gaps", True)
    halves = analyze_layers(synthetic.build(passes=2, layers=24, bare=True).trace)  # one gap, halfway
    assert [p.layer_count for p in halves.passes] == [24, 24]
    assert _structure(halves) == (24, "idle-gaps", True)
    uneven = analyze_layers(synthetic.build(passes=2, layers=24, bare=True, drop_first=30).trace)
    assert _structure(uneven)[1] == "single-pass"  # one gap off-centre: a host stall is as likely
    assert uneven.pass_structure is not None
    assert "long idle gaps at no constant spacing" in uneven.pass_structure.reason


def test_user_anchor_with_two_events_per_layer() -> None:
    """--anchor-kernel on the two RMSNorms of every layer (+ layer 0's plain one): still 80 x 10."""
    report = analyze_layers(shared_traces(VLLM_70B)[0], anchor_kernel="rsqrt")
    assert report.anchor.anchors_per_layer == 2 and report.anchor.occurrences == 10 * (2 * 80 + 1)
    assert [p.layer_count for p in report.passes] == [80] * 10
    assert _structure(report) == (80, "boundary-kernels", True)


def _step_ranges(built: synthetic.Built) -> pd.DataFrame:
    """vLLM-style per-step GPU annotations around every built pass."""
    steps = len(built.layer_starts_ns)
    return make_table(
        RANGE_COLUMNS,
        {
            "start": [starts[0] - 1 for starts in built.layer_starts_ns],
            "end": [ends[-1] + 1 for ends in built.layer_ends_ns],
            "name": [f"execute_context_0(0)_generation_8({step})" for step in range(steps)],
            "source": ["gpu_user_annotation"] * steps,
            "device": [0] * steps,
        },
        "ranges",
    )


def test_engine_step_ranges_decide_when_no_kernel_or_gap_marks_the_boundary() -> None:
    """Back-to-back graph replays with no boundary kernels and no host gap: vLLM's per-step GPU
    annotations cut the passes; with boundary kernels, the kernels decide and the steps agree."""
    built = synthetic.build(passes=3, layers=24, bare=True, step_gap_ns=0)
    report = analyze_layers(dataclasses.replace(built.trace, ranges=_step_ranges(built)))
    assert [p.layer_count for p in report.passes] == [24, 24, 24]
    assert _structure(report) == (24, "step-ranges", True)
    without = analyze_layers(built.trace)
    assert _structure(without) == (72, "single-pass", True)  # nothing in the kernels says otherwise
    assert without.pass_structure is not None and without.pass_structure.lower_bound
    marked = synthetic.build(passes=3, layers=24)
    agreed = analyze_layers(dataclasses.replace(marked.trace, ranges=_step_ranges(marked)))
    assert _structure(agreed) == (24, "boundary-kernels", True)
    assert (
        agreed.pass_structure is not None
        and "engine step annotation ranges agree" in agreed.pass_structure.reason
    )


def test_cpu_capture_without_a_layer_count() -> None:
    """CPU operators stand in for kernels, so layers differ by a kernel or two: still 17 x 4."""
    demo = REPO_ROOT / "src" / "infersight" / "data" / "demo" / "tiny_llama_cpu.pt.trace.json.gz"
    report = analyze_layers(api.load([demo], cpu_ops_as_kernels=True)[0])
    assert [p.layer_count for p in report.passes] == [4] * 17  # prefill + 16 decode steps
    assert _structure(report) == (4, "boundary-kernels", True)


def test_html_report_skips_an_implausible_layer_chart() -> None:
    from infersight.api.html_data import html_extras

    extras = html_extras(shared_traces("kineto/hta_sampled_128ranks/rank-0.json.gz"))
    assert extras.layers is None
    assert any("per-layer chart skipped: the anchor count per pass is implausible" in n for n in extras.notes)
    good = html_extras(shared_traces(SGLANG))
    assert good.layers is not None and len(good.layers.layers) == 36


def test_a_heavier_layer_every_six_is_no_pass_boundary() -> None:
    """One 36-layer pass whose every 6th layer runs two more kernels: 36 layers, not 6 passes of 6."""
    report = analyze_layers(synthetic.build(passes=1, layers=36, heavy_every=6).trace)
    assert [p.layer_count for p in report.passes] == [36]
    assert _structure(report) == (36, "single-pass", True)
    assert report.pass_structure is not None
    assert "every 6 layers: a repeating layer-type pattern" in report.pass_structure.reason
    several = analyze_layers(synthetic.build(passes=3, layers=36, heavy_every=6).trace)  # real boundaries
    assert [p.layer_count for p in several.passes] == [36, 36, 36]
