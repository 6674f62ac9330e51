"""diff / per-step breakdown: an injected host delay is found exactly; real pair prints a table."""

from __future__ import annotations

import numpy as np
import pytest
from inject import inject_host_delay
from tests.conftest import shared_file

from infersight.cli import run
from infersight.host.config import load_config
from infersight.host.diff import diff_traces, self_times, step_breakdown
from infersight.model import Trace

CONFIG = load_config()
OP = "_vllm_fa3_C::get_scheduler_metadata"
DELAY_NS = 400_000  # 400 µs of extra host work per step


@pytest.fixture(scope="module")
def injected(vllm_trace: Trace) -> Trace:
    return inject_host_delay(vllm_trace, OP, DELAY_NS)


def test_injected_host_delay_is_found_exactly(vllm_trace: Trace, injected: Trace) -> None:
    report = diff_traces(vllm_trace, injected, CONFIG, ("before", "after"))
    changed = [r for r in report.ops if r.status != "same"]
    assert [r.name for r in changed] == [OP]  # exactly that op: parents grow only inclusively
    assert changed[0].status == "REGRESSION"
    assert changed[0].delta == pytest.approx(DELAY_NS / 1e3, rel=0.05)
    wall = report.summary[0]
    assert wall.name == "step wall" and wall.delta == pytest.approx(DELAY_NS / 1e3, rel=0.05)
    gpu = next(r for r in report.summary if r.name == "GPU kernel time")
    assert gpu.status == "same" and gpu.delta == 0
    assert OP in report.root_cause and "on the host" in report.root_cause
    assert report.findings and report.findings[0].type == "diff_regression"
    assert report.handoff["top_ops"][0]["name"] == OP  # type: ignore[index]


def test_breakdown_per_step_counts(vllm_trace: Trace) -> None:
    b = step_breakdown(vllm_trace, CONFIG)
    assert b.steps == 10
    assert b.kernels_per_step == pytest.approx(len(vllm_trace.kernels) / 10, rel=0.01)
    assert b.op_counts[OP] == pytest.approx(1.0)  # one scheduler-metadata call per step


def test_self_time_subtracts_direct_children_only() -> None:
    starts = np.array([0, 10, 20, 100], dtype=np.int64)
    ends = np.array([90, 50, 30, 120], dtype=np.int64)
    threads = np.zeros(4, dtype=np.int64)
    # 0: [0,90) holds [10,50) which holds [20,30); [100,120) stands alone
    assert self_times(starts, ends, threads).tolist() == [50, 30, 10, 20]


# The CLI on the real A100/V100 pair (regression table, root cause, labels) is
# tests/host/test_diff_explain.py::test_cli_prints_caveats_and_split_before_the_op_table.


def test_diff_bad_labels_is_input_error(capsys: pytest.CaptureFixture[str]) -> None:
    path = shared_file("kineto/hta_triton_example_a100.json.gz")
    assert run(["diff", str(path), str(path), "--labels", "only-one"]) == 2
    assert "--labels" in capsys.readouterr().err
