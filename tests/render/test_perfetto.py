"""``infersight annotate``: a Chrome-trace / Perfetto file with the trace's own tracks and ours.

Each real trace is annotated once through the CLI entry; the file is parsed back with plain
json and checked against the Chrome trace event format (every event: ph / ts / pid / tid; complete
events: name and dur >= 0; tracks named by metadata events). Counts are checked against the raw
input read independently (plain gzip/json, plain SQL) and against the trace model; the
attribution slices against the report's ``time_attribution`` (exact nanoseconds).
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import math
import re
import shutil
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import plain_json_events, shared_file, shared_report, shared_traces

from infersight import api
from infersight.analyses.annotations import annotate_trace, gap_causes
from infersight.analyses.attribution import BUCKETS
from infersight.analysis_report import AnalysisReport
from infersight.api import AnnotatedTraces
from infersight.cli import run
from infersight.host.config import load_config
from infersight.render.perfetto import (
    ATTRIBUTION_TRACK,
    BUCKET_COLOURS,
    FINDINGS_TRACK,
    GAPS_TRACK,
    PHASES_TRACK,
    STEPS_TRACK,
)

VLLM_H100 = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
NSYS_VECADD = "nsys/vecadd_t4_nsys2022.sqlite"
NSYS_H100X2 = "nsys/h100x2_llm_train_nsys2026.sqlite"
TRACES = [VLLM_H100, NSYS_VECADD, NSYS_H100X2]
EVENT_PHASES = {"X", "M", "s", "f"}
METADATA_NAMES = {"process_name", "process_sort_index", "thread_name", "thread_sort_index"}
# catapult's reserved colour names (tracing/tracing/base/color_scheme.html)
RESERVED_COLOURS = {
    "thread_state_uninterruptible", "thread_state_iowait", "thread_state_running",
    "thread_state_runnable", "thread_state_sleeping", "thread_state_unknown", "background_memory_dump",
    "light_memory_dump", "detailed_memory_dump", "vsync_highlight_color", "generic_work", "good", "bad",
    "terrible", "black", "grey", "white", "yellow", "olive", "rail_response", "rail_animation",
    "rail_idle", "rail_load", "startup", "heap_dump_stack_frame", "heap_dump_object_type",
    "heap_dump_child_node_arrow", "cq_build_running", "cq_build_passed", "cq_build_failed",
    "cq_build_abandoned", "cq_build_attempt_runnig", "cq_build_attempt_passed", "cq_build_attempt_failed",
}  # fmt: skip


@dataclass
class Annotation:
    """One annotate run: the input, the file written, the parsed document and the reference."""

    source: Path
    output: Path
    doc: dict[str, Any]
    reference: AnnotatedTraces
    kernels: int
    input_sha_before: str

    @property
    def report(self) -> AnalysisReport:
        return self.reference.report

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(self.doc["traceEvents"])

    def names(self, kind: str) -> dict[tuple[int, int], str]:
        """(pid, tid) or (pid, 0) -> name, from the metadata events of ``kind``."""
        return {
            (e["pid"], e["tid"]): e["args"]["name"]
            for e in self.events
            if e["ph"] == "M" and e["name"] == kind
        }

    def slices_on(self, track: str) -> list[dict[str, Any]]:
        tracks = {key for key, name in self.names("thread_name").items() if name.startswith(track)}
        return [e for e in self.events if e["ph"] == "X" and (e["pid"], e["tid"]) in tracks]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


_ANNOTATIONS: dict[str, Annotation] = {}


def _annotation(relative: str, tmp_path_factory: pytest.TempPathFactory) -> Annotation:
    """``infersight annotate`` of a shared trace, run once per module (the fixture's cases and the
    vLLM track test share it). The vLLM file is written as plain JSON (its name does not end in
    .gz), the others gzipped. The reference is what ``api.annotate`` computes, from the per-process
    trace and report caches: ``load``, ``report_from_traces``, ``annotate_trace`` per trace."""
    if relative in _ANNOTATIONS:
        return _ANNOTATIONS[relative]
    source = shared_file(relative)
    before = _sha256(source)
    output = tmp_path_factory.mktemp("annotate") / ("out.json" if relative == VLLM_H100 else "out.json.gz")
    assert run(["annotate", str(source), "-o", str(output)]) == 0
    raw = output.read_bytes()
    doc = json.loads(gzip.decompress(raw) if output.suffix == ".gz" else raw)
    causes = gap_causes(load_config().section("drilldown"))
    traces = shared_traces(relative)
    reference = AnnotatedTraces(
        traces=traces,
        report=shared_report(relative),
        annotations=[annotate_trace(t, causes, None) for t in traces],
        gap_causes=causes,
    )
    _ANNOTATIONS[relative] = Annotation(source, output, doc, reference, len(traces[0].kernels), before)
    return _ANNOTATIONS[relative]


@pytest.fixture(scope="module", params=TRACES, ids=["vllm_tp4_kineto", "vecadd_nsys", "h100x2_nsys"])
def annotation(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Annotation:
    return _annotation(request.param, tmp_path_factory)


def test_output_is_a_valid_chrome_trace(annotation: Annotation) -> None:
    doc = annotation.doc
    assert isinstance(doc["traceEvents"], list) and doc["traceEvents"]
    assert doc["displayTimeUnit"] in {"ms", "ns"}
    assert re.fullmatch(r"\d+\.\d+", doc["otherData"]["schema_version"])
    for event in doc["traceEvents"]:
        assert {"ph", "ts", "pid", "tid"} <= event.keys(), event
        assert event["ph"] in EVENT_PHASES
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
        assert isinstance(event["ts"], int | float) and math.isfinite(event["ts"])
        assert isinstance(event["name"], str)
        if event["ph"] == "X":
            assert isinstance(event["dur"], int | float) and event["dur"] >= 0
        elif event["ph"] == "M":
            assert event["name"] in METADATA_NAMES and isinstance(event["args"], dict)
        else:  # flow start / end: an id shared by exactly one "s" and one "f"
            assert isinstance(event["id"], int) and event["cat"] == "launch"
        if "cname" in event:
            assert event["cname"] in RESERVED_COLOURS
    flows = Counter((e["id"], e["ph"]) for e in doc["traceEvents"] if e["ph"] in {"s", "f"})
    assert all(n == 1 for n in flows.values())
    assert {i for i, ph in flows if ph == "s"} == {i for i, ph in flows if ph == "f"}
    named = set(annotation.names("thread_name")) | {pid for pid, _ in annotation.names("process_name")}
    for event in doc["traceEvents"]:
        if event["ph"] == "X":
            assert (event["pid"], event["tid"]) in named, "every slice is on a named track"


def test_input_untouched(annotation: Annotation) -> None:
    assert _sha256(annotation.source) == annotation.input_sha_before


def test_kernel_count_equals_the_model_and_the_raw_input(annotation: Annotation) -> None:
    kernels = [e for e in annotation.events if e["ph"] == "X" and e.get("cat") == "kernel"]
    assert len(kernels) == annotation.kernels
    assert len(kernels) == _raw_kernel_count(annotation.source)


def _raw_kernel_count(path: Path) -> int:
    if path.suffix == ".sqlite":
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT COUNT(*) FROM CUPTI_ACTIVITY_KIND_KERNEL").fetchone()[0])
    events = plain_json_events(path)
    return sum(1 for e in events if e.get("ph") == "X" and e.get("cat") == "kernel")


def test_attribution_slices_sum_to_the_report_per_device(annotation: Annotation) -> None:
    processes = annotation.names("process_name")
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for event in annotation.slices_on(ATTRIBUTION_TRACK):
        assert event["name"] in BUCKETS
        assert event["cname"] == BUCKET_COLOURS[event["name"]]
        device = processes[(event["pid"], 0)].split(" · ")[0]  # "GPU 0"
        totals[(device, event["name"])] += round(event["dur"] * 1000)
    attribution = annotation.report.profile.time_attribution
    assert attribution
    for device in attribution:
        for bucket in BUCKETS:
            expected = int(getattr(device.times_ns, bucket))
            assert totals[(f"GPU {device.device}", bucket)] == expected, (device.device, bucket)


def test_slice_counts_equal_the_analysis_intervals(annotation: Annotation) -> None:
    """Per device: one slice per bucket interval (checked against an oracle in test_annotations)."""
    processes = annotation.names("process_name")
    counts: Counter[tuple[str, str]] = Counter()
    for event in annotation.slices_on(ATTRIBUTION_TRACK):
        counts[(processes[(event["pid"], 0)].split(" · ")[0], event["name"])] += 1
    gaps: Counter[str] = Counter(
        processes[(e["pid"], 0)].split(" · ")[0] for e in annotation.slices_on(GAPS_TRACK)
    )
    (trace,) = annotation.reference.annotations
    assert trace.devices
    for device in trace.devices:
        for bucket in BUCKETS:
            assert counts[(f"GPU {device.device}", bucket)] == device.buckets[bucket][0].size
        assert gaps[f"GPU {device.device}"] == device.buckets["host"][0].size


def test_attribution_slices_tile_each_window(annotation: Annotation) -> None:
    by_pid: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for event in annotation.slices_on(ATTRIBUTION_TRACK):
        by_pid[event["pid"]].append((event["ts"], event["ts"] + event["dur"]))
    assert len(by_pid) == len(annotation.report.profile.time_attribution)
    for spans in by_pid.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end - 1e-3, "bucket slices never overlap"


def test_host_gaps_carry_their_likely_cause(annotation: Annotation) -> None:
    host = [e for e in annotation.slices_on(ATTRIBUTION_TRACK) if e["name"] == "host"]
    gaps = annotation.slices_on(GAPS_TRACK)
    assert len(gaps) == len(host)
    for gap in gaps:
        assert gap["name"] == f"{gap['args']['likely cause']} ({gap['args']['gap length']})"
        assert "µs" in gap["args"]["gap length"] or "ms" in gap["args"]["gap length"]


def test_findings_are_slices(annotation: Annotation) -> None:
    findings = annotation.slices_on(FINDINGS_TRACK)
    assert len(findings) == len(annotation.report.findings) > 0
    titles = Counter(e["args"]["title"] for e in findings)
    assert titles == Counter(f.title for f in annotation.report.findings)
    for event in findings:
        assert event["args"]["severity"] in {"critical", "warning", "info"}
        assert "expected gain" in event["args"]
        assert event["dur"] > 0


def test_tracks_and_slice_counts_on_the_vllm_trace(tmp_path_factory: pytest.TempPathFactory) -> None:
    annotated = _annotation(VLLM_H100, tmp_path_factory)
    output = annotated.output  # plain JSON when the name does not end in .gz
    assert output.suffix == ".json" and output.read_bytes()[:1] != b"\x1f"
    doc = annotated.doc
    counts = Counter(e.get("cat") for e in doc["traceEvents"] if e["ph"] == "X")
    # the raw file's own counts (INDEX.md: 13,508 kernels); copies and API calls from the model
    trace = shared_traces(VLLM_H100)[0]
    assert counts["kernel"] == 13_508
    assert counts["memcpy"] == len(trace.memcpy) and counts["memset"] == len(trace.memset)
    assert counts["cuda_api"] == len(trace.api)
    # a launch arrow per kernel / copy whose launching call the trace recorded (process + correlation)
    api_keys = set(zip(trace.api["process"], trace.api["correlation"], strict=True))
    launched = sum(
        (p, c) in api_keys and c >= 0
        for table in (trace.kernels, trace.memcpy, trace.memset)
        for p, c in zip(table["process"], table["correlation"], strict=True)
    )
    assert sum(e["ph"] == "f" for e in doc["traceEvents"]) == launched > 0
    threads = {e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "thread_name"}
    assert {ATTRIBUTION_TRACK, GAPS_TRACK, PHASES_TRACK, STEPS_TRACK, FINDINGS_TRACK} <= threads
    phases = [
        e for e in doc["traceEvents"] if e.get("cat") == "infersight" and e["name"] in {"prefill", "decode"}
    ]
    # 1 prefill step then 9 decode steps: two phase runs; ten step slices
    assert [(e["name"], e["args"]["steps"]) for e in phases] == [("prefill", 1), ("decode", 9)]
    steps = [e for e in doc["traceEvents"] if e.get("cat") == "infersight" and " step " in e["name"]]
    assert len(steps) == 10
    # each step carries its own bucket shares from the report's per-step attribution
    assert all(e["args"]["where the time goes"].startswith("gpu ") for e in steps)
    assert all(e["args"]["where the time goes (whole phase)"].startswith("gpu ") for e in phases)


def test_output_equal_to_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "vecadd.sqlite"
    shutil.copyfile(shared_file(NSYS_VECADD), copy)
    before = _sha256(copy)
    assert run(["annotate", str(copy), "-o", str(copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to overwrite" in err[0]
    assert _sha256(copy) == before


def test_unwritable_output_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = shared_file(NSYS_VECADD)
    assert run(["annotate", str(source), "-o", str(tmp_path / "missing" / "out.json.gz")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_loads_in_perfetto_trace_processor(annotation: Annotation) -> None:
    """Optional: Perfetto's own importer reads the file (skipped without the perfetto package)."""
    tp_module = pytest.importorskip("perfetto.trace_processor")
    try:
        tp = tp_module.TraceProcessor(trace=str(annotation.output))
    except Exception as exc:  # the package fetches its binary on first use; offline CI cannot
        pytest.skip(f"trace processor unavailable: {exc}")
    try:
        rows = list(tp.query("select count(*) as n from slice where category = 'kernel'"))
        assert rows[0].n == annotation.kernels
    finally:
        tp.close()


def test_a_folder_of_ranks_gets_one_process_per_rank_and_gpu(tmp_path: Path) -> None:
    folder = shared_file("kineto/hta_sampled_128ranks")
    output = tmp_path / "ranks.json.gz"
    assert run(["annotate", str(folder), "-o", str(output)]) == 0
    with gzip.open(output, "rb") as fh:
        doc = json.load(fh)
    traces = shared_traces("kineto/hta_sampled_128ranks")
    kernels = sum(1 for e in doc["traceEvents"] if e.get("cat") == "kernel")
    assert kernels == sum(len(t.kernels) for t in traces) == 1154 + 1104
    processes = {e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "process_name"}
    for trace in traces:
        for device in trace.kernels["device"].unique():
            assert any(p.startswith(f"{trace.label()} · GPU {device}") for p in processes), processes


def test_output_over_a_rank_file_of_a_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ranks"
    shutil.copytree(shared_file("kineto/hta_sampled_128ranks"), folder)
    folder.chmod(0o755)  # the shared copy is read-only; the temporary one must be removable
    target = folder / "rank-0.json.gz"
    before = _sha256(target)
    assert run(["annotate", str(folder), "-o", str(target)]) == 2
    err_text = capsys.readouterr().err
    assert "output path is one of the input traces" in err_text or "refusing to overwrite" in err_text
    assert _sha256(target) == before
    assert sorted(p.name for p in folder.iterdir()) == ["rank-0.json.gz", "rank-1.json.gz"]


def test_help_names_the_format_and_the_methodology(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["annotate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Perfetto" in text and "docs/methodology.md §3.2" in text and "-o, --output" in text


def test_window_nvtx_cuts_the_attribution_slices_like_the_report(tmp_path: Path) -> None:
    source = shared_file("kineto/hta_nccl_a100_rank0.json.gz")
    output = tmp_path / "window.json.gz"
    assert run(["annotate", str(source), "--window-nvtx", "ProfilerStep", "-o", str(output)]) == 0
    with gzip.open(output, "rb") as fh:
        events = json.load(fh)["traceEvents"]
    report = api.analyze([source], window_nvtx="ProfilerStep")
    (device,) = report.profile.time_attribution
    assert device.window_source.startswith("nvtx")
    totals: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "infersight" and event["name"] in BUCKETS:
            totals[event["name"]] += round(event["dur"] * 1000)
    assert {b: totals[b] for b in BUCKETS} == {b: int(getattr(device.times_ns, b)) for b in BUCKETS}
    assert sum(totals.values()) == device.window_ns


def test_phase_findings_cover_their_phase(annotation: Annotation) -> None:
    """A finding about one phase (no time range of its own) spans that phase's steps."""
    phase_slices: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in annotation.slices_on(PHASES_TRACK):
        phase_slices[event["name"]].append(event)
    about_phase = [f for f in annotation.report.findings if f.location.phase and not f.location.time_range_ns]
    if annotation.source.name.startswith("vllm"):
        assert {f.location.phase for f in about_phase} == {"prefill", "decode"}
    by_title = {e["args"]["title"]: e for e in annotation.slices_on(FINDINGS_TRACK)}
    for finding in about_phase:
        runs = phase_slices[str(finding.location.phase)]
        event = by_title[finding.title]
        assert event["ts"] == min(r["ts"] for r in runs)
        assert event["ts"] + event["dur"] == pytest.approx(max(r["ts"] + r["dur"] for r in runs), abs=1e-3)
        assert event["pid"] == runs[0]["pid"]  # on the GPU the phase ran on
