"""ncu-plan on real traces, and the integrated report (ncu + Kineto) — cross-checked on the raw JSON."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import plain_json_events, require_extra, shared_file, shared_traces

from infersight import api
from infersight.analysis_report import AnalysisReport
from infersight.cli import run
from infersight.model import Trace
from infersight.ncu.analysis import analyze_ncu
from infersight.ncu.plan import NcuPlan, build_plan, function_name
from infersight.ncu.reader import parse_ncu_csv, read_ncu
from infersight.render.ncu import render_ncu_json, render_ncu_markdown, render_ncu_text

VLLM = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
QWEN = "kineto/tracelens_qwen1.5-0.5b-chat_h100.json.gz"
CUTLASS = "cutlass_80_tensorop_s16816gemm_bf16_128x64_64x6_tn_align8"
GEMM = (
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x128x64_warpgroupsize1x1x1_execute_segment_k_off"
    "_kernel__5x_cublas"
)


def _kernel_events(relative: str) -> list[dict[str, object]]:
    events = plain_json_events(shared_file(relative))
    return [e for e in events if e.get("cat") == "kernel" and e.get("ph") == "X"]


@pytest.fixture(scope="module")
def vllm_traces() -> list[Trace]:
    return shared_traces(VLLM)


@pytest.fixture(scope="module")
def vllm(vllm_traces: list[Trace]) -> tuple[AnalysisReport, list[str], list[dict[str, object]]]:
    names = sorted({str(n) for t in vllm_traces for n in pd.unique(t.kernels["name"].astype(str))})
    return api.report_from_traces(vllm_traces), names, _kernel_events(VLLM)


@pytest.fixture(scope="module")
def plan(vllm: tuple[AnalysisReport, list[str], list[dict[str, object]]]) -> NcuPlan:
    report, names, _ = vllm
    return build_plan(report, names, top_k=10, app="python -m vllm.entrypoints.openai.api_server --model M")


def _selected(base: str, regex: str, name: str) -> bool:
    return re.search(regex, function_name(name) if base == "function" else name) is not None


def test_each_command_selects_exactly_its_kernel(vllm, plan: NcuPlan) -> None:  # type: ignore[no-untyped-def]
    _, _, events = vllm
    counts = Counter(str(e["name"]) for e in events)
    assert len(plan.kernels) == 10
    for kernel in plan.kernels:
        selected = sum(
            n for name, n in counts.items() if _selected(kernel.name_base, kernel.name_regex, name)
        )
        assert selected == kernel.count, kernel.name  # the raw JSON agrees with the trace statistics
        assert kernel.regex_note is None


def test_commands_hit_steady_state_and_collect_what_the_rules_need(plan: NcuPlan) -> None:
    first = plan.kernels[0]
    assert first.name == GEMM and first.name_base == "function" and first.name_regex == f"^{GEMM}$"
    assert first.count == 1440 and first.launch_skip == math.ceil(1440 * 0.1) and first.launch_count == 5
    for kernel in plan.kernels:
        command = kernel.command
        assert command.startswith("ncu --kernel-name-base ")
        parts = (
            "--clock-control none",
            "--csv --page raw --print-units base",
            f"--log-file {kernel.output}",
            "--section SpeedOfLight",
            "--section MemoryWorkloadAnalysis_Tables",
            "--section WarpStateStats",
            "smsp__sass_thread_inst_executed_op_ffma_pred_on.sum",
            "dram__bytes_read.sum",
            f"--launch-skip {kernel.launch_skip} --launch-count {kernel.launch_count}",
        )
        for part in parts:
            assert part in command, (part, command)
        assert command.endswith("python -m vllm.entrypoints.openai.api_server --model M")
    assert any(
        k.name_base == "demangled" for k in plan.kernels
    )  # cutlass::Kernel2<...> shares a function name


def test_integrated_report_joins_ncu_kernels_to_the_trace(vllm) -> None:  # type: ignore[no-untyped-def]
    report, _, events = vllm
    header = '"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size",'
    header += '"Grid Size",'
    header += '"Device","CC","gpu__time_duration.sum","sm__throughput.avg.pct_of_peak_sustained_elapsed"'
    units = '"","","","","","","","","","","","nsecond","%"'
    row = f'"0","1","python3","h","{GEMM}","1","7","(128, 1, 1)","(66, 1, 1)","0","9.0","9,100","71.50"'
    small = f'"1","1","python3","h","void cutlass::Kernel2<{CUTLASS}>(T1::Params)","1","7",'
    small += '"(128, 1, 1)","(8, 1, 1)","0","9.0","17,900","21.50"'
    export = parse_ncu_csv("\n".join([header, units, row, small]), "gemm.csv")
    integrated = analyze_ncu([export], trace=report)
    kernel = integrated.kernels[0]
    durations = [float(e["dur"]) * 1e3 for e in events if e["name"] == GEMM]  # µs -> ns
    assert kernel.trace is not None and kernel.trace.count == len(durations) == 1440
    assert kernel.trace.avg_ns == pytest.approx(sum(durations) / len(durations), rel=1e-6)
    launch = {c.rule: c.status for c in integrated.checks if c.kernel.startswith("k0")}["launch_bound"]
    assert launch == ("fired" if kernel.trace.avg_ns < 50_000 else "passed")
    # a kernel of 720 launches averaging ~18 µs is launch-bound; its gain is launches x 2-5 µs / wall time
    small_kernel = next(k for k in integrated.kernels if k.short_name == CUTLASS)
    assert small_kernel.trace is not None and small_kernel.trace.count == sum(
        CUTLASS in str(e["name"]) for e in events
    )
    storm = next(f for f in integrated.findings if f.type == "ncu_launch_bound")
    assert storm.location.kernel == CUTLASS and storm.expected_gain is not None
    starts = [float(e["ts"]) for e in events]
    wall_ns = (max(float(e["ts"]) + float(e["dur"]) for e in events) - min(starts)) * 1e3
    assert storm.expected_gain.high == pytest.approx(720 * 5_000 / wall_ns, rel=1e-3)
    assert integrated.trace is not None and integrated.trace.top_kernels[0].profiled
    assert integrated.gpu_name_source == "trace" and "H100" in (integrated.gpu_name or "")
    text, markdown, as_json = (
        render_ncu_text(integrated),
        render_ncu_markdown(integrated),
        render_ncu_json(integrated),
    )
    assert "Trace overview" in text and "sm90_xmma_gemm" in text
    assert launch == "passed" and "Launch-bound: 720 launches" in text
    assert "| k0 |" in markdown and "## Findings" in markdown
    assert json.loads(as_json)["kernels"][0]["trace"]["count"] == 1440


def test_cli_ncu_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    code = run(
        ["ncu-plan", str(shared_file(QWEN)), "--top", "3", "--app", "python run.py", "--json", str(out)]
    )
    printed = capsys.readouterr().out
    assert code == 0
    commands = [line for line in printed.splitlines() if line.startswith("ncu ")]
    assert len(commands) == 3 and all(c.endswith("python run.py") for c in commands)
    assert len(json.loads(out.read_text())["kernels"]) == 3


def test_cli_ncu_report_files_and_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    csv_path = shared_file("ncu/dsocr_decode_flash_fwd_splitkv_rtx5090.details.csv")
    md, js = tmp_path / "r.md", tmp_path / "r.json"
    assert run(["ncu", str(csv_path), "--md", str(md), "--json", str(js)]) == 0
    assert "flash_fwd_splitkv_kernel" in capsys.readouterr().out
    assert "# infersight kernel deep dive" in md.read_text()
    assert json.loads(js.read_text())["kernels"][0]["metrics"]["duration_ns"] == pytest.approx(10_340.0)
    bad = tmp_path / "bad.csv"
    bad.write_text("hello,world\n1,2\n")
    assert run(["ncu", str(bad)]) == 2
    assert "no ncu CSV header" in capsys.readouterr().err


def test_theory_focus_set_adds_low_efficiency_kernels(vllm_traces: list[Trace], vllm) -> None:  # type: ignore[no-untyped-def]
    from infersight.theory.inputs import TheoryOptions
    from infersight.theory.run import theory_report

    report, names, _ = vllm
    config = shared_file("configs/meta-llama--Meta-Llama-3.1-70B_config.json")
    theory = theory_report(
        TheoryOptions(config=config), batch=32, prompt=1000, context=1005, tp=4, traces=vllm_traces, top_k=5
    )
    assert theory.focus is not None
    with_theory = build_plan(report, names, top_k=5, focus=theory.focus)
    top_only = build_plan(report, names, top_k=5)
    assert [k.name for k in with_theory.kernels[:5]] == [k.name for k in top_only.kernels]
    low = [k for k in with_theory.kernels if "E_roof" in k.reason]
    expected = {item.kernel for item in theory.focus.items if item.reasons == ["low_efficiency"]}
    assert low and {k.name for k in low} == expected
    assert with_theory.focus_method.startswith("TopK(time) ∪ E_roof < τ_E")


def test_cli_ncu_roofline_plot(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    require_extra("matplotlib", "plot")
    svg = tmp_path / "roof.svg"
    fixture = Path(__file__).parent / "data" / "h100_raw_base_units.csv"
    assert run(["ncu", str(fixture), "--plot", str(svg)]) == 0
    text = svg.read_text()
    assert "<svg" in text and "E_roof 30%" in text and "tensor_bf16 roof" in text
    assert run(["ncu", str(fixture), "--plot", str(tmp_path / "roof.gif")]) == 2
    assert "unsupported file type" in capsys.readouterr().err


def test_trace_join_by_name_and_launch_configuration(vllm, vllm_traces) -> None:  # type: ignore[no-untyped-def]
    """The trace runs the GEMM with grid 112 and grid 64 (720 launches each): the profiled grid's
    own launches are joined; a grid the trace never ran is said, and the name's figures kept."""
    from infersight.ncu.trace_join import launch_configs

    report, _, events = vllm
    configs = launch_configs(vllm_traces)
    raw = Counter(
        (tuple(e["args"]["grid"]), tuple(e["args"]["block"]))  # type: ignore[index]
        for e in events
        if e["name"] == GEMM
    )
    assert {(c.grid, c.block): c.count for c in configs[GEMM]} == raw
    header = '"ID","Kernel Name","Block Size","Grid Size","CC","gpu__time_duration.sum"'
    rows = [
        f'"0","{GEMM}","(384, 1, 1)","(112, 1, 1)","9.0","9,100"',
        f'"1","{GEMM}","(384, 1, 1)","(66, 1, 1)","9.0","9,000"',
    ]
    export = parse_ncu_csv("\n".join([header, '"","","","","","nsecond"', *rows]), "gemm.csv")
    integrated = analyze_ncu([export], trace=report, trace_configs=configs)
    by_grid = {k.grid: k for k in integrated.kernels}
    matched, unmatched = by_grid[(112, 1, 1)].trace, by_grid[(66, 1, 1)].trace
    durations = [
        float(e["dur"]) * 1e3 for e in events if e["name"] == GEMM and e["args"]["grid"] == [112, 1, 1]
    ]  # type: ignore[index]
    assert matched is not None and matched.config_match is True and matched.count == len(durations) == 720
    assert matched.total_ns == pytest.approx(sum(durations), rel=1e-6)
    assert unmatched is not None and unmatched.config_match is False and unmatched.count == 1440
    text = render_ncu_text(integrated)
    assert "this grid/block" in text and "the trace never ran this grid/block" in text
    overview = integrated.trace
    assert overview is not None and overview.verdict == report.profile.primary_bottleneck.headline
    assert sum(overview.categories.values()) == pytest.approx(1.0, abs=1e-6)
    assert "verdict: " in text and "kernel time by category: GEMM" in text


def test_export_and_trace_from_different_gpus_are_said(vllm) -> None:  # type: ignore[no-untyped-def]
    report, _, _ = vllm  # an H100 trace; the export is an RTX 5090 one
    export = read_ncu(shared_file("ncu/dsocr_decode_flash_fwd_splitkv_rtx5090.details.csv"))
    integrated = analyze_ncu([export], trace=report)
    assert integrated.gpu_name == "NVIDIA GeForce RTX 5090"  # the export's own GPU, not the trace's
    assert any("ran on NVIDIA GeForce RTX 5090 but the trace on NVIDIA H100" in n for n in integrated.notes)
    assert integrated.kernels[0].trace is None
