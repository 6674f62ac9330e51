"""Per-rank digests merged into the global profile equal build_global_profile over the traces."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import shutil
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import examples, plain_json, plain_json_events, shared_file, shared_traces

from infersight import api
from infersight.analyses.digest import digest_trace
from infersight.analyses.digest_merge import build_global_profile_from_digests
from infersight.analyses.profile import build_global_profile
from infersight.analyses.results import GlobalProfile
from infersight.analyses.value_counts import ValueCounts, grouped_stats
from infersight.errors import InputError
from infersight.executors.base import SerialExecutor
from infersight.ingest import load_traces
from infersight.ingest.parallel import WORKERS_ENV
from infersight.model import Trace
from infersight.per_rank import rank_files

HTA_RANKS = "kineto/hta_sampled_128ranks"
VLLM = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
GPTOSS = "kineto/tracelens_vllm_gptoss_prefilldecode_piecewise_graph_mi300x.json.gz"
NSYS = ["nsys/h100x2_llm_train_nsys2026.sqlite", "nsys/saxpy_mpi_a100_nvtx_oldschema.sqlite"]
VLLM_COPIES = 3  # ranks: enough to merge more than a pair; each copy is profiled twice


def assert_same(expected: Any, got: Any, path: str = "profile") -> None:
    """Field-for-field equality of two model dumps; floats to 1e-9 relative."""
    if isinstance(expected, dict):
        assert expected.keys() == got.keys(), path
        for key in expected:
            assert_same(expected[key], got[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(expected) == len(got), f"{path}: {len(expected)} != {len(got)} items"
        for i, (a, b) in enumerate(zip(expected, got, strict=True)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert isinstance(got, float) and math.isclose(expected, got, rel_tol=1e-9), (
            f"{path}: {expected} != {got}"
        )
    else:
        assert type(expected) is type(got) and expected == got, f"{path}: {expected!r} != {got!r}"


def assert_profiles_equal(expected: GlobalProfile, got: GlobalProfile) -> None:
    assert_same(expected.model_dump(), got.model_dump())


def merged(traces: list[Trace], window_nvtx: str | None = None) -> GlobalProfile:
    return build_global_profile_from_digests([digest_trace(t, window_nvtx) for t in traces])


@pytest.fixture(scope="module")
def vllm_traces() -> list[Trace]:
    """The vLLM rank-0 trace read once, as ranks 0..VLLM_COPIES-1 (tables shared, read-only)."""
    trace = shared_traces(VLLM)[0]
    return [
        dataclasses.replace(trace, rank=rank, source=f"rank-{rank}.json", notes=list(trace.notes))
        for rank in range(VLLM_COPIES)
    ]


@pytest.fixture(scope="module")
def hta_traces() -> list[Trace]:
    return load_traces(shared_file(HTA_RANKS), executor=SerialExecutor())


@pytest.fixture(scope="module")
def nsys_traces() -> list[Trace]:
    return [t for name in NSYS for t in shared_traces(name)]


# ---------------------------------------------------------------- equality with the traces path


def test_vllm_copies_equal_the_traces_path(vllm_traces: list[Trace]) -> None:
    assert [t.rank for t in vllm_traces] == list(range(VLLM_COPIES))
    expected = build_global_profile(vllm_traces)
    got = merged(vllm_traces)
    assert_profiles_equal(expected, got)
    assert {p.phase for p in got.phases.phases} == {"prefill", "decode"}  # the kernel-mix split merged
    # what travels back from a worker is a small fraction of the rank's trace
    assert len(pickle.dumps(digest_trace(vllm_traces[0]))) * 10 < len(pickle.dumps(vllm_traces[0]))
    # independent cross-check: kernel count and time against the plain JSON of the source trace
    events = [
        e for e in plain_json_events(shared_file(VLLM)) if e.get("cat") == "kernel" and e.get("ph") == "X"
    ]
    assert sum(k.count for k in got.kernels) == VLLM_COPIES * len(events)
    plain_ns = sum(round(e["dur"] * 1000) for e in events)  # the reader: end = start + round(dur_us * 1000)
    assert sum(k.total_ns for k in got.kernels) == VLLM_COPIES * plain_ns
    top = got.kernels[0]
    top_full = [e for e in events if e["name"] == top.full_name]
    assert top.count == VLLM_COPIES * len(top_full)  # the top (cuBLAS) kernel has one full name
    durations = [round(e["dur"] * 1000) for e in top_full]
    assert top.median_ns == statistics.median(durations)
    assert top.std_ns == pytest.approx(statistics.stdev(durations * VLLM_COPIES), rel=1e-9)


def test_vllm_copies_with_window_equal_the_traces_path(vllm_traces: list[Trace]) -> None:
    expected = build_global_profile(vllm_traces, window_nvtx="nccl")
    assert expected.devices[0].window.source == "nvtx:nccl"
    assert_profiles_equal(expected, merged(vllm_traces, "nccl"))


def test_hta_ranks_equal_the_traces_path(hta_traces: list[Trace]) -> None:
    assert_profiles_equal(build_global_profile(hta_traces), merged(hta_traces))
    window = "coder fp8"
    assert_profiles_equal(build_global_profile(hta_traces, window_nvtx=window), merged(hta_traces, window))


def test_nsys_exports_equal_the_traces_path(
    nsys_traces: list[Trace], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(nsys_traces[0].gpus) == 2  # the h100x2 export: two devices in one trace
    assert_profiles_equal(build_global_profile(nsys_traces), merged(nsys_traces))
    window = "ncclSend|aten|saxpy"
    expected = build_global_profile(nsys_traces, window_nvtx=window)
    assert_profiles_equal(expected, merged(nsys_traces, window))
    # the top-N range names with "other" rows folded across ranks
    monkeypatch.setenv("INFERSIGHT_MAX_RANGE_NAMES", "7")
    expected = build_global_profile(nsys_traces)
    assert any(r.name.startswith("other (") for r in expected.ranges)
    assert_profiles_equal(expected, merged(nsys_traces))


def test_cpu_capture_equals_the_traces_path(tmp_path: Path) -> None:
    source = shared_file("kineto/hta_cpu_only_no_gpu.json.gz")
    for rank in range(2):
        shutil.copyfile(source, tmp_path / f"rank-{rank}.json.gz")
    expected = api.report_from_traces(api.load([tmp_path], cpu_ops_as_kernels=True, executor="local"))
    got = api.analyze([tmp_path], cpu_ops_as_kernels=True, executor="local")
    assert_same(expected.model_dump(), got.model_dump())


# ---------------------------------------------------------------- wiring and errors


def write_ranks(folder: Path, source: Path, ranks: int) -> None:
    """Copies of a real trace as ranks 0..n-1: odd ranks run their kernels 1.5x longer, and the
    last rank's clock starts 100 s later (their kernel spans do not overlap)."""
    document = plain_json(source)
    for rank in range(ranks):
        events = []
        for event in document["traceEvents"]:
            event = dict(event)
            if rank % 2 and event.get("cat") == "kernel" and "dur" in event:
                event["dur"] = round(event["dur"] * 1.5, 3)
            if rank == ranks - 1 and "ts" in event:
                event["ts"] = event["ts"] + 100_000_000
            events.append(event)
        info = {**document["distributedInfo"], "rank": rank, "world_size": ranks}
        ranked = {**document, "traceEvents": events, "distributedInfo": info}
        (folder / f"rank-{rank}.json").write_text(json.dumps(ranked))


def test_analyze_digests_on_process_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank files read and digested on worker processes equal the traces path; the caller
    never loads a trace."""
    write_ranks(tmp_path, shared_file(GPTOSS), VLLM_COPIES)
    expected = api.report_from_traces(api.load([tmp_path], executor="local"))
    assert [t.rank for t in expected.profile.traces] == list(range(VLLM_COPIES))
    assert all(any("clocks are probably offset" in n for n in t.notes) for t in expected.profile.traces)

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the multi-rank path must not load traces in the caller")

    monkeypatch.setattr(api, "load", no_load)
    monkeypatch.setenv(WORKERS_ENV, "2")
    got = api.analyze([tmp_path], executor="process")
    assert_same(expected.model_dump(), got.model_dump())


def test_single_file_keeps_the_traces_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_digest(*args: object, **kwargs: object) -> None:
        raise AssertionError("one trace file is profiled from the loaded trace")

    monkeypatch.setattr("infersight.per_rank.profile_ranks", no_digest)
    report = api.analyze([shared_file("kineto/hta_triton_example_a100.json.gz")], executor="local")
    assert len(report.profile.traces) == 1


@pytest.mark.parametrize("executor", ["local", "process"])
def test_bad_rank_file_names_the_file(tmp_path: Path, executor: str, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copyfile(shared_file(f"{HTA_RANKS}/rank-0.json.gz"), tmp_path / "rank-0.json.gz")
    (tmp_path / "rank-1.json").write_bytes(b'{"traceEvents": [{"ph": "X", "cat": "kernel"')
    monkeypatch.setenv(WORKERS_ENV, "2")
    with pytest.raises(InputError, match=r"rank-1\.json"):
        api.analyze([tmp_path], executor=executor)


def test_errors_come_in_the_traces_path_order(tmp_path: Path) -> None:
    """A window that matches nothing, and a missing path after the ranks, raise as the traces path."""
    folder = tmp_path / "ranks"
    folder.mkdir()
    for rank in range(2):
        shutil.copyfile(
            shared_file("kineto/hta_triton_example_a100.json.gz"), folder / f"rank-{rank}.json.gz"
        )
    with pytest.raises(InputError, match="matches no NVTX") as from_traces:
        api.report_from_traces(api.load([folder], executor="local"), window_nvtx="no such range")
    with pytest.raises(InputError, match="matches no NVTX") as from_digests:
        api.analyze([folder], window_nvtx="no such range", executor="local")
    assert from_digests.value.one_line() == from_traces.value.one_line()
    with pytest.raises(InputError, match="no such file"):
        api.analyze([folder, tmp_path / "missing"], executor="local")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InputError, match=r"bad\.json"):  # the unreadable file comes first
        api.analyze([bad, folder, tmp_path / "missing"], executor="local")
    assert rank_files([bad, folder]).folder == [-1, 1, 1]
    with pytest.raises(InputError, match="no traces to analyse"):
        build_global_profile_from_digests([])


# ---------------------------------------------------------------- value counts


@settings(max_examples=examples(ci=60), deadline=None)
@given(
    durations=st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=300),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    n_ranks=st.integers(min_value=1, max_value=9),
    n_groups=st.integers(min_value=1, max_value=5),
)
def test_value_counts_merge_like_pandas(durations: list[int], seed: int, n_ranks: int, n_groups: int) -> None:
    """Durations split across random ranks and groups: merged counts give pandas' figures."""
    rng = np.random.default_rng(seed)
    values = np.asarray(durations, dtype=np.int64)
    group = rng.integers(0, n_groups, len(values))
    group[:n_groups] = np.arange(min(n_groups, len(values)))  # every group used (when there are enough)
    n_groups = int(group.max()) + 1
    rank = rng.integers(0, n_ranks, len(values))
    parts = [ValueCounts.of(group[rank == r], values[rank == r]) for r in range(n_ranks)]
    got = grouped_stats(ValueCounts.concat(parts), n_groups)
    expected = (
        pd.DataFrame({"g": group, "d": values})
        .groupby("g")["d"]
        .agg(["count", "sum", "mean", "median", "min", "max", "std"])
    )
    expected["std"] = expected["std"].fillna(0.0)
    for column in ("count", "sum", "min", "max"):
        assert got[column].tolist() == expected[column].tolist()
    for column in ("mean", "median", "std"):
        np.testing.assert_allclose(got[column].to_numpy(), expected[column].to_numpy(), rtol=1e-9, atol=1e-6)


# ---------------------------------------------------------------- the CLI


# the window through the digests is also test_hta_ranks_equal_the_traces_path (API): its CLI run in CI
@pytest.mark.parametrize("window", [None, pytest.param("coder fp8", marks=pytest.mark.slow)])
def test_cli_analyze_of_a_rank_folder_is_unchanged(
    window: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`infersight analyze DIR` prints and writes what the load-everything path gives."""
    from infersight.cli import run

    folder = shared_file(HTA_RANKS)
    window_args = ["--window-nvtx", window] if window else []

    def analyze_run(name: str) -> tuple[str, Any, str]:
        out = tmp_path / name
        code = run(["analyze", str(folder), "--json", f"{out}.json", "--md", f"{out}.md", *window_args])
        assert code == 0
        return (
            capsys.readouterr().out,
            json.loads(Path(f"{out}.json").read_text()),
            Path(f"{out}.md").read_text(),
        )

    monkeypatch.setenv(WORKERS_ENV, "2")
    digest_out, digest_json, digest_md = analyze_run("digests")

    def load_then_profile(request: api.AnalyzeRequest) -> Any:
        loaded = api.load(request.traces, cpu_ops_as_kernels=request.cpu_ops_as_kernels, executor="local")
        return api.report_from_traces(loaded, window_nvtx=request.window_nvtx)

    monkeypatch.setattr(api, "analyze", load_then_profile)
    traces_out, traces_json, traces_md = analyze_run("traces")
    assert digest_out == traces_out and digest_md == traces_md
    assert_same(traces_json, digest_json)


def test_kineto_and_nsys_traces_together() -> None:
    """Name categories of str (Kineto) and object (SQLite) dtype merge on both paths, and every
    kernel of both files is counted once."""
    paths = [shared_file("kineto/hta_alexnet_a100.json.gz"), shared_file("nsys/vecadd_t4_nsys2022.sqlite")]
    traces = [load_traces(p)[0] for p in paths]
    expected = build_global_profile(traces)
    assert_profiles_equal(expected, api.analyze(paths, executor="local").profile)
    assert sum(k.count for k in expected.kernels) == sum(len(t.kernels) for t in traces)
    assert {d.trace for d in expected.devices} == {str(p) for p in paths}
