"""Theory points on the kernel roofline, tensor-FLOP counters, and rule verdicts on every real export."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from tests.conftest import require_extra, shared_file

from infersight.cli import run
from infersight.ncu.analysis import analyze_ncu
from infersight.ncu.metrics import metric_table, tensor_flops_by_dtype
from infersight.ncu.reader import MetricValue, NcuLaunch, read_ncu
from infersight.ncu.results import NcuReport
from infersight.ncu.roofline import GpuPeaks, roofline_point
from infersight.theory.estimates import estimate
from infersight.theory.inputs import TheoryOptions, load_model, resolve_hardware
from infersight.theory.operators import Scenario

DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "h100_raw_base_units.csv"


def _launch(values: dict[str, float]) -> NcuLaunch:
    return NcuLaunch(
        id=0,
        kernel_name="k",
        source="t.csv",
        layout="raw",
        values={name: MetricValue(value, "", str(value), "") for name, value in values.items()},
    )


def test_tensor_flops_use_the_most_aggregated_counter_per_dtype() -> None:
    launch = _launch(
        {
            # fp16: per-accumulator totals and their sparsity split: only the totals count
            "sm__ops_path_tensor_src_fp16_dst_fp32.sum": 100.0,
            "sm__ops_path_tensor_src_fp16_dst_fp16.sum": 20.0,
            "sm__ops_path_tensor_src_fp16_dst_fp32_sparsity_off.sum": 100.0,
            # bf16: only sparsity variants (as some chips spell it): summed
            "sm__ops_path_tensor_src_bf16_dst_fp32_sparsity_off.sum": 30.0,
            "sm__ops_path_tensor_src_bf16_dst_fp32_sparsity_on.sum": 5.0,
            # fp8: the per-source total wins over its per-accumulator parts
            "sm__ops_path_tensor_src_fp8.sum": 70.0,
            "sm__ops_path_tensor_src_fp8_dst_fp16.sum": 40.0,
            # e4m3 / e5m2 spellings are fp8 too (aliases in ncu_metrics.toml)
            "sm__ops_path_tensor_src_e5m2_dst_fp32.sum": 3.0,
            "sm__ops_path_tensor_src_fp16_dst_fp32.sum.per_second": 1e9,  # a rate, not a count
        }
    )
    assert tensor_flops_by_dtype(launch) == {"fp16": 120.0, "bf16": 35.0, "fp8": 73.0}


def test_tensor_instruction_counts_alone_stay_a_lower_bound() -> None:
    peaks = GpuPeaks("H100-SXM")
    metrics = {"duration_ns": 1000.0, "dram_bytes": 1e6, "tensor_instructions": 5000.0}
    metrics |= {f"fp32_{op}": 10.0 for op in ("add", "mul", "fma")}
    lower = roofline_point(metrics, {}, peaks)
    assert "lower bounds" in (lower.flops_na_reason or "") and "MMA shape" in (lower.flops_na_reason or "")
    zero = roofline_point(metrics, {"fp16": 0.0}, peaks)  # a counter for another dtype did not see the work
    assert "5,000 tensor-pipe instructions" in (zero.flops_na_reason or "")
    counted = roofline_point(metrics, {"bf16": 4e9}, peaks)
    assert "tensor-pipe instructions" not in (counted.flops_na_reason or "")
    assert counted.precision == "tensor_bf16" and counted.flops == pytest.approx(4e9 + 40.0)


def test_plan_requests_the_tensor_op_counters_by_regex() -> None:
    table = metric_table()
    assert table.tensor_flops_plan_metric in table.plan_metrics
    regex = table.tensor_flops_plan_metric.removeprefix("regex:")
    for name in ("sm__ops_path_tensor_src_fp16_dst_fp32.sum", "sm__ops_path_tensor_src_fp8.sum"):
        assert re.match(regex, name) and table.tensor_flops_pattern.match(name)
    assert not re.match(regex, "sm__ops_path_tensor_src_fp16_dst_fp32.sum.per_second")


@pytest.fixture(scope="module")
def overlay_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:  # type: ignore[type-arg]
    require_extra("matplotlib", "plot")
    out = tmp_path_factory.mktemp("overlay")
    js, svg = out / "r.json", out / "r.svg"
    args = ["ncu", str(FIXTURE), "--model", "llama-3-8b", "--batch", "8", "--prompt", "512",
            "--context", "1024", "--json", str(js), "--plot", str(svg)]  # fmt: skip
    assert run(args) == 0
    return json.loads(js.read_text()), svg.read_text()


def test_theory_points_match_the_theory_engine(overlay_run: tuple[dict, str]) -> None:  # type: ignore[type-arg]
    report, _ = overlay_run
    model = load_model(TheoryOptions(model="llama-3-8b"))
    hw = resolve_hardware(TheoryOptions(model="llama-3-8b", gpu="NVIDIA H100 80GB HBM3"), model, tp=1)
    est = estimate(model, Scenario(batch=8, prompt_len=512, context_len=1024, tp=1), hw)
    expected = {
        (t.operator.phase, t.operator.name): (
            t.operator.flops / t.operator.memory_bytes,
            t.operator.flops / t.t_roof_s,
        )
        for phase in (est.prefill, est.decode)
        for t in phase.operators
        if t.operator.flops > 0 and t.operator.memory_bytes > 0 and t.t_roof_s
    }  # fmt: skip
    theory = report["theory"]
    got = {(p["phase"], p["operator"]): (p["intensity"], p["flop_per_s"]) for p in theory["points"]}
    assert got.keys() == expected.keys() and {phase for phase, _ in got} == {"prefill", "decode"}
    for key, (intensity, rate) in expected.items():
        assert got[key] == (pytest.approx(intensity), pytest.approx(rate))
    assert theory["context_len"] == 1024 and theory["gpu"] == est.gpu
    # the measured point set is in the same JSON
    assert report["kernels"][0]["roofline"]["intensity"] == pytest.approx((30e9 + 1000 + 2 * 2e6) / 50e6)


def test_plot_draws_both_point_sets_with_a_legend(overlay_run: tuple[dict, str]) -> None:  # type: ignore[type-arg]
    _, svg = overlay_run
    for text in ("prefill operators", "decode operators", "measured kernels (Nsight Compute)",
                 "matmul peak (bf16)", "tensor_bf16 roof", "E_roof 30%", "rms_norm_kernel"):  # fmt: skip
        assert text in svg, text


def test_theory_needs_the_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["ncu", str(FIXTURE), "--model", "llama-3-8b"]) == 2
    assert "--batch B and --prompt S" in capsys.readouterr().err


# --- rule verdicts on every real export, from the CSV cells (independent of the metric table) ---


def _cells(path: Path) -> dict[str, dict[str, float]]:
    """ID -> {metric name or 'Section: Metric' -> value} straight from the CSV (en_US numbers)."""
    out: dict[str, dict[str, float]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                value = float(row["Metric Value"].replace(",", ""))
            except ValueError:
                continue
            cells = out.setdefault(row["ID"], {})
            cells[row["Metric Name"]] = value
            cells[f"{row['Section Name']}: {row['Metric Name']}"] = value
    return out


def _expected(cells: dict[str, float], names: tuple[str, ...], op: str, threshold: float) -> bool | None:
    value = next((cells[n] for n in names if n in cells), None)
    if value is None:
        return None
    return value < threshold if op == "<" else value > threshold


SM = (
    "sm__throughput.avg.pct_of_peak_sustained_elapsed",
    "GPU Speed Of Light Throughput: Compute (SM) Throughput",
)
MEM = (
    "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed",
    "GPU Speed Of Light Throughput: Memory Throughput",
)
OCC = ("sm__warps_active.avg.pct_of_peak_sustained_active", "Occupancy: Achieved Occupancy")
DRAM = ("dram__throughput.avg.pct_of_peak_sustained_elapsed",
        "GPU Speed Of Light Throughput: DRAM Throughput")  # fmt: skip


@pytest.mark.parametrize(
    "name",
    ["ncu/dsocr_decode_cublas_gemv_rtx5090.details.csv",
     "ncu/dsocr_decode_flash_fwd_splitkv_rtx5090.details.csv",
     "ncu/gpt2_flashattn_ampere_oldlayout.csv"],
)  # fmt: skip
def test_rule_verdicts_on_each_real_export_follow_the_cells(name: str) -> None:
    path = shared_file(name)
    cells = _cells(path)
    report: NcuReport = analyze_ncu([read_ncu(path)])
    checked = 0
    for index, kernel in enumerate(report.kernels):
        statuses = {c.rule: c.status for c in report.checks if c.kernel.startswith(f"k{index}:")}
        mine = cells[str(kernel.launch_ids[0])]
        sm, mem = _expected(mine, SM, "<", 60), _expected(mine, MEM, "<", 60)
        verdicts = {
            "low_sm_and_memory_throughput": None if sm is None or mem is None else sm and mem,
            "low_occupancy": _expected(mine, OCC, "<", 30),
            "memory_bound": _expected(mine, DRAM, ">", 80),
        }
        for rule, fired in verdicts.items():
            if fired is None:
                assert statuses[rule] == "not_evaluated", (rule, kernel.short_name)
            else:
                assert statuses[rule] == ("fired" if fired else "passed"), (rule, kernel.short_name)
                checked += 1
    assert checked >= len(report.kernels)  # at least one rule decided per kernel


def test_tensor_instructions_from_the_hmma_and_gmma_pipes() -> None:
    from infersight.ncu.metrics import resolve

    both = resolve(_launch({"sm__inst_executed_pipe_tensor_op_hmma.sum": 0.0,
                            "sm__inst_executed_pipe_tensor_op_gmma.sum": 512.0}))  # fmt: skip
    assert both.values["tensor_instructions"] == 512.0
    ampere = resolve(_launch({"sm__inst_executed_pipe_tensor_op_hmma.sum": 64.0}))
    assert ampere.values["tensor_instructions"] == 64.0
