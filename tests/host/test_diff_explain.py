"""diff explains before it blames: environment, wall delta by bucket, workload similarity, steps.

All on real traces: the A100 8-rank vs V100 2-rank recommender step (hardware change), the vLLM H100
trace against itself and against an injected host delay, and vLLM H100 vs SGLang MI300X (unrelated
workloads).
"""

from __future__ import annotations

import numpy as np
import pytest
from independent import kineto_events, ns
from inject import inject_host_delay
from tests.conftest import shared_file, shared_traces
from tests.interval_oracle import length, merge, overlap

from infersight.analyses.attribution import BUCKETS, kernel_labels
from infersight.cli import run
from infersight.host.config import load_config
from infersight.host.diff import diff_traces, self_times
from infersight.host.diff_explain import self_pieces, step_buckets, workload_similarity
from infersight.host.results import DiffReport, IterationSet
from infersight.model import Trace

CONFIG = load_config()
A100 = "kineto/hta_trace_diff_control_a100_rank3.json.gz"
V100 = "kineto/hta_trace_diff_test_v100_rank1.json.gz"
SGLANG = "kineto/tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz"
OP = "_vllm_fa3_C::get_scheduler_metadata"


@pytest.fixture(scope="module")
def a100() -> Trace:
    return shared_traces(A100)[0]


@pytest.fixture(scope="module")
def v100() -> Trace:
    return shared_traces(V100)[0]


@pytest.fixture(scope="module")
def hardware_pair(a100: Trace, v100: Trace) -> DiffReport:
    return diff_traces(a100, v100, CONFIG, ("a100", "v100"))


@pytest.fixture(scope="module")
def unrelated(vllm_trace: Trace) -> DiffReport:
    sglang = shared_traces(SGLANG)[0]
    return diff_traces(vllm_trace, sglang, CONFIG, ("vllm", "sglang"))


def _assert_buckets_sum(report: DiffReport) -> None:
    d = report.decomposition
    assert d is not None
    for side in (d.baseline, d.target):  # integer ns: exact
        assert sum(side.times_ns[b] for b in BUCKETS) == side.wall_ns
    assert sum(r.delta for r in d.buckets) == pytest.approx(d.wall.delta, abs=1e-6)
    if d.wall.delta:
        assert sum(r.share_of_wall_delta or 0.0 for r in d.buckets) == pytest.approx(1.0, abs=1e-9)
    gpu = next(r for r in d.buckets if r.name == "gpu")
    assert sum(r.delta for r in d.gpu_categories) == pytest.approx(gpu.delta, abs=1e-3)


def test_hardware_change_is_named_first(hardware_pair: DiffReport) -> None:
    changes = {c.field: c for c in hardware_pair.environment_changes}
    assert changes["gpu_model"].hardware
    assert "A100" in str(changes["gpu_model"].baseline) and "V100" in str(changes["gpu_model"].target)
    assert (changes["world_size"].baseline, changes["world_size"].target) == ("8", "2")
    warning = hardware_pair.warnings[0]
    assert "mixes hardware" in warning and "×8 ranks" in warning and "×2 ranks" in warning
    assert hardware_pair.root_cause.startswith("the runs differ in hardware")
    assert hardware_pair.findings[0].type == "diff_environment"


def test_matmul_dtype_hint_from_kernel_names(hardware_pair: DiffReport, unrelated: DiffReport) -> None:
    """A100 runs cutlass s1688gemm (TF32 tensor cores), V100 volta_sgemm (FP32); vLLM H100 is BF16."""
    assert hardware_pair.environment is not None and unrelated.environment is not None
    a100, v100 = hardware_pair.environment
    assert max(a100.kernel_dtypes, key=lambda k: a100.kernel_dtypes[k]) == "tf32"
    assert max(v100.kernel_dtypes, key=lambda k: v100.kernel_dtypes[k]) == "fp32"
    assert sum(a100.kernel_dtypes.values()) == pytest.approx(1.0, abs=1e-3)
    change = next(c for c in hardware_pair.environment_changes if c.field.startswith("dtype:matmul"))
    assert (change.baseline, change.target, change.hardware) == ("tf32", "fp32", False)
    assert unrelated.environment[0].kernel_dtypes.get("bf16", 0) > 0.9


def test_hardware_pair_wall_delta_is_mostly_gpu_time(hardware_pair: DiffReport) -> None:
    _assert_buckets_sum(hardware_pair)
    d = hardware_pair.decomposition
    assert d is not None
    wall = hardware_pair.summary[0]
    assert d.wall.baseline == pytest.approx(wall.baseline) and d.wall.target == pytest.approx(wall.target)
    top = max(d.buckets, key=lambda r: r.delta)
    assert top.name == "gpu" and (top.share_of_wall_delta or 0) > 0.5
    # the op the old diff blamed waits on the GPU: its delta falls in the gpu bucket, not the host one
    op = next(r for r in hardware_pair.ops if r.name == "aten::_local_scalar_dense")
    assert op.bucket == "gpu"
    assert sum(op.bucket_delta.values()) == pytest.approx(op.delta, rel=0.01)
    memcpy = next(r for r in hardware_pair.apis if r.name == "cudaMemcpyAsync")
    assert memcpy.bucket == "gpu"  # the synchronous copy call waits for the kernels ahead of it
    types = [f.type for f in hardware_pair.findings]
    assert types.index("diff_bucket") < types.index("diff_regression")
    blamed = [f for f in hardware_pair.findings if f.type == "diff_regression"]
    assert all(f.severity == "info" and f.bucket == "gpu" for f in blamed)  # waits, not causes


def test_profiler_steps_are_not_operations(hardware_pair: DiffReport) -> None:
    names = [r.name for r in hardware_pair.ops]
    assert not [n for n in names if n.startswith("ProfilerStep#")]
    assert any(n.startswith("ProfilerStep#") for n in hardware_pair.baseline.step_markers_excluded)


def test_bucket_split_matches_plain_python_over_the_json(hardware_pair: DiffReport) -> None:
    """host = window − union(all GPU activity); gpu+communication+copy = the union, per step window."""
    events = kineto_events(shared_file(A100))
    gpu_events = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    busy = merge([ns(e) for e in gpu_events])
    steps = hardware_pair.baseline.iterations.steady()
    windows = [(s.start_ns, s.end_ns) for s in steps]
    wall = sum(e - s for s, e in windows)
    covered = sum(overlap(busy, [w]) for w in windows)
    d = hardware_pair.decomposition
    assert d is not None
    assert d.baseline.wall_ns == wall
    assert d.baseline.times_ns["host"] == pytest.approx(wall - covered, rel=1e-3)
    kernels = merge([ns(e) for e in gpu_events if e["cat"] == "kernel" and "nccl" not in e["name"].lower()])
    gpu = sum(overlap(kernels, [w]) for w in windows)
    assert d.baseline.times_ns["gpu"] == pytest.approx(gpu, rel=1e-3)


def test_self_diff_is_zero_and_blames_nothing(vllm_trace: Trace) -> None:
    report = diff_traces(vllm_trace, vllm_trace, CONFIG)
    _assert_buckets_sum(report)
    assert report.decomposition is not None
    assert all(r.delta == 0 for r in report.decomposition.buckets)
    assert report.environment_changes == [] and report.warnings == [] and report.findings == []
    assert report.similarity is not None and report.similarity.shared_kernel_time == pytest.approx(1.0)
    assert report.root_cause == "no significant change per step"


def test_injected_host_delay_lands_in_the_host_bucket(vllm_trace: Trace) -> None:
    injected = inject_host_delay(vllm_trace, OP, 400_000)
    report = diff_traces(vllm_trace, injected, CONFIG)
    _assert_buckets_sum(report)
    assert report.decomposition is not None
    delta = {r.name: r.delta for r in report.decomposition.buckets}
    assert delta["host"] == pytest.approx(400.0, rel=0.05)
    assert delta["gpu"] == pytest.approx(0.0, abs=1.0)
    op = next(r for r in report.ops if r.name == OP)
    assert op.bucket == "host"
    assert report.findings[0].type == "diff_regression" and report.findings[0].bucket == "host"


def test_unrelated_workloads_warn_and_blame_no_operation(unrelated: DiffReport) -> None:
    sim = unrelated.similarity
    assert sim is not None and not sim.comparable and sim.shared_kernel_time < sim.threshold
    assert any(w.startswith("different workloads: only") for w in unrelated.warnings)
    assert "different workloads" in unrelated.root_cause and "largest change" not in unrelated.root_cause
    assert "diff_regression" not in {f.type for f in unrelated.findings}
    assert "diff_different_workloads" in {f.type for f in unrelated.findings}


def test_environment_reads_versions_and_step_marker_batch(unrelated: DiffReport) -> None:
    assert unrelated.environment is not None
    vllm, sglang = unrelated.environment
    assert vllm.versions["distributedInfo.nccl_version"] == "2.21.5"
    assert "hip_runtime_version" in sglang.versions and "cuda_runtime_version" in vllm.versions
    assert sglang.batch["step marker context per step"] == "15"
    assert sglang.batch["step marker tokens per step"] == "15360"
    assert (vllm.world_size, sglang.world_size) == (4, 1)
    assert "schemaVersion" not in {c.field.removeprefix("version:") for c in unrelated.environment_changes}


def test_no_steps_uses_the_activity_window(a100: Trace) -> None:
    empty = IterationSet(method="none", reason="test")
    split = step_buckets(a100, empty, kernel_labels(a100))
    k, m, s = a100.kernels, a100.memcpy, a100.memset
    first = min(int(t["start"].min()) for t in (k, m, s) if len(t))
    last = max(int(t["end"].max()) for t in (k, m, s) if len(t))
    assert split.window == "activity" and split.steps == 1 and split.wall_ns == last - first
    assert sum(split.times_ns.values()) == split.wall_ns


def test_self_pieces_sum_to_self_times(vllm_trace: Trace) -> None:
    r = vllm_trace.ranges
    starts, ends = r["start"].to_numpy(np.int64), r["end"].to_numpy(np.int64)
    threads = r["thread"].to_numpy(np.int64) * 1_000_003 + r["process"].to_numpy(np.int64)
    index, ps, pe = self_pieces(starts, ends, threads)
    summed = np.bincount(index, weights=pe - ps, minlength=starts.size)
    expected = self_times(starts, ends, threads)
    assert (summed == expected).mean() > 0.999  # overlapping siblings (not nested) may differ
    assert length(merge(list(zip(ps.tolist(), pe.tolist(), strict=True)))) <= int((ends - starts).sum())


def test_cli_prints_caveats_and_split_before_the_op_table(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """The one CLI run of diff on a real pair (each run reads both 1.6-1.8 MB traces again)."""
    out = tmp_path / "diff.json"
    pair = [str(shared_file(A100)), str(shared_file(V100))]
    assert run(["diff", *pair, "--labels", "a100,v100", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.index("mixes hardware") < text.index("where the step wall changed") < text.index("operations")
    assert "ProfilerStep#" not in text.split("operations", 1)[1]
    assert "REGRESSION" in text and "a100" in text and "root cause" in text
    doc = out.read_text()
    assert '"environment_changes"' in doc and '"decomposition"' in doc and '"similarity"' in doc
    assert '"root_cause"' in doc


def test_similarity_threshold_is_data(a100: Trace, v100: Trace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Same model family on two GPUs shares ~78% of kernel time; a stricter threshold file flips it."""
    labels = (kernel_labels(a100), kernel_labels(v100))
    default = workload_similarity(a100, v100, CONFIG.section("diff"), labels)
    assert default.comparable and default.shared_kernel_time == pytest.approx(0.776, abs=0.01)
    strict = tmp_path / "strict.toml"
    strict.write_text("[diff]\nmin_shared_kernel_time = 0.9\n")
    cfg = load_config(strict).section("diff")
    assert not workload_similarity(a100, v100, cfg, labels).comparable
