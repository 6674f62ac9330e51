"""Claim-level narration check on a real report: an adversarial corpus of lying replies is fully caught.

The report is ``analyze --json`` of the H100 Qwen trace in ../shared/data: ``small_kernel_storm``
holds idle 8.5%, launch overhead 8.3%, 1465 kernels averaging 31.0 µs, gaps < 100 µs = 3.37 ms of
49.7 ms, expected gain 3.4%-6.8%; ``gpu_bound`` holds GPU 91.5% (92%), host 8%, copy 0.4%, no gain.
Each lie below is of a kind seen passing the old "appears anywhere in the evidence" check.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.agent._support import FakeOpenAI, fake_openai_server
from tests.conftest import shared_file

from infersight.advisor.narrator import check_narration, narrate
from infersight.analysis_report import AnalysisReport
from infersight.cli import run

S = "[small_kernel_storm/dev0]"
G = "[gpu_bound/dev0]"
TRUTHFUL = [
    f"The GPU was idle 8.5% of the 49.7 ms window {S}.",
    f"The launch-overhead ratio is 8.3% {S}.",
    f"1,465 kernels ran, averaging 31.0 µs each {S}.",
    f"Gaps shorter than 100 µs add up to 3.37 ms {S}.",
    f"CUDA graphs and fusion should save 3.4% to 6.8% of wall time {S}.",
    f"Kernels run 92% of the activity window, with elementwise at 36% of kernel time {G}.",
    f"Host share is 8%, copy share 0.4% {G}.",
    f"GPU utilisation is 91.5% {G}.",
    f"The GPU idle ratio is 0.085 {S}.",
    f"The GPU sat idle for eight percent of the window {S}.",
    f"3.37 ms of 49.7 ms wall time is in gaps shorter than 100 µs {S}.",
    f"The GPU is busy 92% of the time {G}.",
    f"With 1465 kernels at an average of 31.0 µs, the run is launch-bound {S}.",
    f"Expected gain from CUDA graphs and fusion is 3.4-6.8% of wall time {S}.",
    f"Graph coverage is 0% {S}.",
    f"On device 0 of rank 7, 8.5% of the window was idle (methodology §3) {S}.",
    f"Fusing memory-bound element-wise kernels could reduce kernel time {G}.",  # advice, no number
]
LIES = {
    "another metric's value (launch overhead said to be idle)": f"The GPU idle ratio is 8.3% {S}.",
    "another metric's value (idle said to be launch overhead)": f"The launch-overhead ratio is 8.5% {S}.",
    "a count scaled into a fraction (1465 kernels x 1e-3)": f"The GPU was idle 1.465 of the time {S}.",
    "pct": f"The GPU was idle 73pct of the time {S}.",
    "percent": f"The GPU was idle 73 percent of the time {S}.",
    "per cent": f"The GPU was idle 73 per cent of the time {S}.",
    "spelled out": f"The GPU was idle seventy-three percent of the time {S}.",
    "spelled out, teen": f"The GPU sat idle for eighteen percent of the window {S}.",
    "certain fix": f"Disabling CUDA graphs will fix it {S}.",
    "gain without an expected gain": f"FP8 will give a 2x speedup {G}.",
    "lever not advised": f"FP8 weights will give a 2x speedup {S}.",
    "speed-up outside the expected gain": f"CUDA graphs will give a 2x speedup {S}.",
    "gain outside the expected gain": f"CUDA graphs will give a 20% gain {S}.",
    "turning off what the finding says to turn on": f"Disabling CUDA graphs would save 5% of wall time {S}.",
    "off-by-one count": f"The kernel count is 1466 {S}.",
    "kernel count said of graph launches": f"There were 1465 graph launches {S}.",
    "a time said to be a ratio": f"The GPU was idle 49.7 ms {S}.",
    "host share said of copies": f"Copy share is 8% {G}.",
    "GPU share said of host": f"Host share is 92% {G}.",
    "communication from nothing": f"Communication takes 8% of the window {G}.",
    "second clause swaps metrics": f"The GPU was idle 8.5% of the window and graphs save 8.3% {S}.",
    "utilisation from idle": f"GPU utilisation is 8.5% {G}.",
    "a time of another metric": f"Kernels average 49.7 µs {S}.",
    "metric absent from the cited finding": f"The GPU was idle 92% of the window {G}.",
    "doubling in words": f"Fusing kernels will double throughput {S}.",
    "doubling without an expected gain": f"Fusing kernels will double throughput {G}.",
    "a lever no finding advises": f"Quantising to INT8 could reduce time {G}.",
    "expected gain invented": f"The expected gain is 12.9% {S}.",
    "rounded to a wrong digit": f"The GPU was idle 8.6% of the window {S}.",
    "a range beyond the expected gain": f"CUDA graphs should save 3.4-12% of wall time {S}.",
    "cited finding lacks the number": f"The launch-overhead ratio is 8.3% {G}.",
}


@pytest.fixture(scope="module")
def report_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """analyze --json of a real H100 trace."""
    out = tmp_path_factory.mktemp("narrate") / "report.json"
    trace = shared_file("kineto/tracelens_qwen1.5-0.5b-chat_h100.json.gz")
    assert run(["analyze", str(trace), "--json", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def report(report_path: Path) -> AnalysisReport:
    return AnalysisReport.model_validate_json(report_path.read_bytes())


def test_the_report_holds_what_the_corpus_assumes(report: AnalysisReport) -> None:
    storm = next(f for f in report.findings if f.id == "small_kernel_storm/dev0")
    values = {e.metric: e.value for e in storm.evidence}
    assert round(float(values["idle_ratio"]), 3) == 0.085  # type: ignore[arg-type]
    assert round(float(values["launch_overhead_ratio"]), 3) == 0.083  # type: ignore[arg-type]
    assert values["kernel_count"] == 1465 and storm.expected_gain is not None


def test_a_truthful_reply_keeps_every_sentence(report: AnalysisReport) -> None:
    narration = check_narration(" ".join(TRUTHFUL), report.findings)
    assert [d.reason for d in narration.dropped] == []
    assert [s.text for s in narration.kept] == TRUTHFUL
    idle = narration.kept[0].claims[0]
    assert idle.metric == "idle_ratio" and idle.written == "8.5"


@pytest.mark.parametrize("kind", sorted(LIES))
def test_each_lie_is_dropped(report: AnalysisReport, kind: str) -> None:
    narration = check_narration(LIES[kind], report.findings)
    assert narration.kept == [], kind
    assert narration.dropped[0].reason


def test_the_adversarial_corpus_through_a_local_endpoint(report: AnalysisReport) -> None:
    assert len(LIES) >= 20
    FakeOpenAI.reply = lambda _body: " ".join([TRUTHFUL[0], *LIES.values()])
    with fake_openai_server() as url:
        narration = narrate(report.findings, url=url, model="fake-1")
    assert [s.text for s in narration.kept] == [TRUTHFUL[0]]
    assert len(narration.dropped) == len(LIES)
    reasons = {d.text: d.reason for d in narration.dropped}
    assert (
        "not the value of idle_ratio"
        in reasons[LIES["another metric's value (launch overhead said to be idle)"]]
    )
    assert "73%" in reasons[LIES["spelled out"]]
    assert "will fix" in reasons[LIES["certain fix"]]


def test_narrate_cli_json_and_exit_code(
    report_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "narration.json"
    FakeOpenAI.reply = lambda _body: " ".join([*TRUTHFUL[:2], LIES["pct"]])
    with fake_openai_server() as url:
        code = run(["narrate", str(report_path), "--llm-url", url, "--llm-model", "m", "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["schema_version"] == "1.0"
    assert [k["text"] for k in data["kept"]] == TRUTHFUL[:2]
    assert data["kept"][0]["claims"][0]["metric"] == "idle_ratio"
    assert data["dropped"] == [{"text": LIES["pct"], "reason": data["dropped"][0]["reason"]}]
    assert capsys.readouterr().out.strip() == " ".join(TRUTHFUL[:2])

    FakeOpenAI.reply = lambda _body: " ".join(list(LIES.values())[:3])
    with fake_openai_server() as url:
        code = run(["narrate", str(report_path), "--llm-url", url, "--llm-model", "m", "--json", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("infersight: error:") and "all dropped" in err
    assert json.loads(out.read_text())["kept"] == []  # the JSON still lists what was dropped, and why


C = "[copy_bound/dev0]"
IDLE = "[gpu_idle/dev0]"
COPY_TRUTHFUL = [
    f"The GPU was idle 91.5% of the 1.04 s window {IDLE}.",
    f"Only 5 kernels ran {IDLE}.",
    f"Copies alone fill 26% of the activity window, about 285 ms {C}.",
    f"There were 15 pageable copies {C}.",
    f"The largest copies are host-to-device at 14.1 GB/s over PCIe Gen4 x16, 44.7% of the link {C}.",
    f"Pinning host memory could save 13% to 25.9% of the wall time {C}.",
    f"The GPU share of the window is only 8.1%, while the host share is 66% {C}.",
    f"Moving 2.62 GB host-to-device dominates {C}.",
]
COPY_LIES = [
    f"Copies fill 66% of the activity window {C}.",  # the host share
    f"The copies run at 44.7 GB/s {C}.",  # the link ratio as a bandwidth
    f"There were 5 pageable copies {C}.",  # the kernel count of another finding
    f"Pinning host memory will eliminate the copies {C}.",
    f"Pinning host memory could save 40% of the wall time {C}.",
]


def test_copy_bound_report_truthful_and_lying(tmp_path: Path) -> None:
    """The MPI saxpy export (A100): a copy-bound and an idle finding, both with expected gains."""
    out = tmp_path / "saxpy.json"
    assert (
        run(["analyze", str(shared_file("nsys/saxpy_mpi_a100_nvtx_oldschema.sqlite")), "--json", str(out)])
        == 0
    )
    findings = AnalysisReport.model_validate_json(out.read_bytes()).findings
    truthful = check_narration(" ".join(COPY_TRUTHFUL), findings)
    assert [d.reason for d in truthful.dropped] == [] and len(truthful.kept) == len(COPY_TRUTHFUL)
    lying = check_narration(" ".join(COPY_LIES), findings)
    assert lying.kept == [] and len(lying.dropped) == len(COPY_LIES)
