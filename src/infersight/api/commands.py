"""One function per command: a typed request in, the typed result out.

The CLI, the MCP tools and the agent workflow are adapters over these functions: they build the
request (from options, tool arguments or a notebook call), call the function here, and render or
serialise the result. So every front end loads the same way, checks the same way and refuses the
same input with the same message. Nothing here prints or writes files.

Every function takes either a request model or its fields as keywords:
``api.host(rq.HostRequest(traces=[p]))`` and ``api.host(traces=[p])`` are the same call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from infersight.api import _core
from infersight.api import requests as rq
from infersight.api.scenario import layer_theory_request, require_scenario, theory_options, theory_request
from infersight.errors import InputError
from infersight.progress import NO_PROGRESS, Progress

if TYPE_CHECKING:
    from infersight.advisor.narrator import Narration
    from infersight.advisor.profiling import CaptureProgress, ProfileResult
    from infersight.advisor.verify_flow import VerifyOutcome
    from infersight.analysis_report import AnalysisReport
    from infersight.api.html_data import HtmlExtras
    from infersight.host.results import DiffReport, HostReport
    from infersight.kb.lookup import LookupResult
    from infersight.kb.store import RecordResult
    from infersight.layers.results import LayerReport
    from infersight.model import Trace
    from infersight.ncu.plan import NcuPlan
    from infersight.ncu.reader import NcuExport
    from infersight.ncu.results import NcuReport
    from infersight.overlap.results import OverlapReport
    from infersight.theory.estimates import ModelEstimate
    from infersight.theory.report import TheoryReport

__all__ = [
    "HtmlReportData",
    "NcuResult",
    "analyze",
    "diff",
    "export",
    "host",
    "kb_lookup",
    "kb_record",
    "kernel_names",
    "layers",
    "narrate",
    "ncu",
    "ncu_device_mismatches",
    "ncu_plan",
    "overlap",
    "profile",
    "ranks",
    "report",
    "roofline",
    "verify",
]

R = TypeVar("R", bound=rq.ApiRequest)


def _request(kind: type[R], request: R | None, fields: dict[str, Any]) -> R:
    """The request as given, or built (and checked) from keyword fields — not both."""
    if request is not None:
        if fields:
            raise InputError(None, f"give a {kind.__name__} or its fields, not both")
        if not isinstance(request, kind):
            raise InputError(None, f"expected a {kind.__name__}, got {type(request).__name__}")
        return request
    return kind.of(**fields)


def kernel_names(traces: Sequence[Trace]) -> list[str]:
    """Every distinct full kernel name of the traces, sorted (ncu filters on the full name)."""
    import pandas as pd

    return sorted({str(name) for t in traces for name in pd.unique(t.kernels["name"].astype(str))})


def analyze(
    request: rq.AnalyzeRequest | Sequence[str | Path] | None = None,
    /,
    *,
    progress: Progress = NO_PROGRESS,
    **fields: Any,
) -> AnalysisReport:
    """Global profile (busy/idle, kernels, categories, ranges, phases) and rule findings; with a model
    and scenario also the roofline theory, measured vs theory and the focus set. ``progress`` hears
    the stages and bytes read (the CLI's progress bar); it is not part of the request.

    Also callable the older way, ``analyze(paths, window_nvtx=..., theory=TheoryRequest(...))``.
    """
    if request is not None and not isinstance(request, rq.AnalyzeRequest):
        return _core.analyze(request, progress=progress, **fields)
    req = _request(rq.AnalyzeRequest, request, fields)
    _core.check_window_regex(req.window_nvtx)
    return _core.analyze(
        req.traces,
        window_nvtx=req.window_nvtx,
        cpu_ops_as_kernels=req.cpu_ops_as_kernels,
        theory=theory_request(req),
        executor=req.executor,
        executor_address=req.executor_address,
        progress=progress,
    )


def host(request: rq.HostRequest | None = None, /, **fields: Any) -> HostReport:
    """Is host overhead the bottleneck? M1-M5 verdicts, iterations, gap drill-down, advice."""
    from infersight.host.config import compile_regex, load_config
    from infersight.host.detect import analyze_host

    req = _request(rq.HostRequest, request, fields)
    if req.host_prep_range is not None:
        compile_regex(req.host_prep_range, "--host-prep-range")
    config = load_config(req.thresholds).with_phase_regex(list(req.phase_regex))
    return analyze_host(_core.load(req.traces), config, req.host_prep_range)


def _labels(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise InputError(None, f"--labels {text!r}: give two names separated by a comma, e.g. before,after")
    return parts[0], parts[1]


def _one_rank_with_kernels(path: Path) -> Trace:
    usable = [t for t in _core.load([path]) if not t.kernels.empty]
    if len(usable) != 1:
        raise InputError(path, f"diff needs one rank with GPU kernels per side, found {len(usable)}")
    return usable[0]


def diff(request: rq.DiffRequest | None = None, /, **fields: Any) -> DiffReport:
    """Per-step wall, operations, kernels, GPU time and CUDA API calls of two traces, ranked by |delta|."""
    from infersight.host.config import load_config
    from infersight.host.diff import diff_traces

    req = _request(rq.DiffRequest, request, fields)
    names = _labels(req.labels)
    config = load_config(req.thresholds)
    return diff_traces(
        _one_rank_with_kernels(req.baseline), _one_rank_with_kernels(req.target), config, names
    )


def layers(request: rq.LayersRequest | None = None, /, **fields: Any) -> LayerReport:
    """Forward passes and layers of one rank's trace: per-layer and layer-type tables, flow, theory."""
    from infersight.layers.analysis import analyze_layers
    from infersight.layers.profiles import check_regex

    req = _request(rq.LayersRequest, request, fields)
    if req.model is not None and req.config is not None:
        raise InputError(None, "give --model or --config, not both")
    if req.anchor_kernel is not None:
        check_regex(req.anchor_kernel, "--anchor-kernel")
    theory = layer_theory_request(req)
    model_config = None
    if req.has_model:
        from infersight.theory.inputs import load_model

        model_config = load_model(theory_options(req, link_bandwidth=req.link_bandwidth))
    loaded = _core.load([req.trace], cpu_ops_as_kernels=req.cpu_ops_as_kernels)
    if len(loaded) != 1:
        raise InputError(req.trace, f"holds {len(loaded)} ranks; give one rank's file")
    return analyze_layers(
        loaded[0],
        config=model_config,
        num_layers=req.num_layers,
        profile=req.profile,
        anchor_kernel=req.anchor_kernel,
        device=req.device,
        fwd_pass=req.fwd_pass,
        layer=req.layer,
        compare_layer=req.compare_layer,
        theory=theory,
    )


def overlap(request: rq.OverlapRequest | None = None, /, **fields: Any) -> OverlapReport:
    """Copy/compute overlap (bandwidth, hidden vs exposed copies) and comm/compute overlap (M5)."""
    from infersight.overlap import analyze_overlap

    req = _request(rq.OverlapRequest, request, fields)
    _core.check_regex("--window-nvtx", req.window_nvtx)
    _core.check_regex("--per-range", req.per_range)
    return analyze_overlap(_core.load(req.traces), window_nvtx=req.window_nvtx, per_range=req.per_range)


def ranks(request: rq.RanksRequest | None = None, /, **fields: Any) -> OverlapReport:
    """Per-rank busy/idle/comm table, clock alignment, collective wait, stragglers, MoE imbalance."""
    from infersight.overlap import analyze_ranks

    req = _request(rq.RanksRequest, request, fields)
    return analyze_ranks(_core.load(req.traces))


def roofline(request: rq.RooflineRequest | None = None, /, **fields: Any) -> TheoryReport:
    """Per-operator FLOPs, bytes, bound and roofline time for prefill and decode (with traces:
    measured vs theory and the focus set)."""
    from infersight.theory.run import theory_report
    from infersight.validate import ensure_finite

    req = _request(rq.RooflineRequest, request, fields)
    options = theory_options(
        req, link_bandwidth=req.link_bandwidth, kappa=req.kappa, memory_efficiency=req.mem_efficiency
    )
    loaded = _core.load(req.traces) if req.traces else None
    result = theory_report(
        options,
        batch=req.batch,
        prompt=req.prompt,
        context=req.context,
        tp=req.tp,
        attention=req.attention,
        measured_ttft_ms=req.measured_ttft,
        measured_tpot_ms=req.measured_tpot,
        measured_tps=req.measured_tps,
        retest_delta=req.retest_delta,
        traces=loaded,
    )
    ensure_finite(result.model_dump(), "roofline report")
    return result


def _export_devices(export: NcuExport) -> tuple[set[str], set[str]]:
    """(GPU names, compute capabilities) an ncu export records."""
    from infersight.ncu.metrics import gpu_name_of

    names = {n for launch in export.launches if (n := gpu_name_of(launch))}
    ccs = {launch.compute_capability for launch in export.launches if launch.compute_capability}
    return names, ccs


def ncu_device_mismatches(exports: Sequence[NcuExport], traces: Sequence[Trace]) -> list[str]:
    """Exports profiled on another GPU than the traces ran on: their bounds describe that other GPU.

    Compared by name (through the GPU spec table) when the export records one, else by compute
    capability (details-page CSVs carry only the ``CC`` column).
    """
    from infersight.kb.fingerprint import gpu_match

    infos = [info for trace in traces for info in trace.gpus.values()]
    trace_names = {info.name for info in infos if info.name}
    trace_ccs = {info.compute_capability for info in infos if info.compute_capability}
    out = []
    for export in exports:
        names, ccs = _export_devices(export)
        file = Path(export.source).name
        if names and trace_names and not any(gpu_match(a, b) == 1.0 for a in names for b in trace_names):
            out.append(
                f"ncu export {file} is from {', '.join(sorted(names))}, the trace from "
                f"{', '.join(sorted(trace_names))}: its bounds describe the other GPU"
            )
        elif not names and ccs and trace_ccs and not ccs & trace_ccs:
            out.append(
                f"ncu export {file} is from a GPU of compute capability {', '.join(sorted(ccs))}, the trace "
                f"from {', '.join(sorted(trace_names)) or 'a GPU'} (CC {', '.join(sorted(trace_ccs))}): "
                "its bounds describe the other GPU"
            )
    return out


@dataclass(frozen=True)
class NcuResult:
    """What :func:`ncu` returns: the report, and the theory estimate drawn beside it (if any)."""

    report: NcuReport
    estimate: ModelEstimate | None = None  # the plot draws it; the JSON holds its overlay only


def ncu(
    request: rq.NcuRequest | None = None,
    /,
    *,
    loaded: Sequence[Trace] | None = None,
    trace_report: AnalysisReport | None = None,
    **fields: Any,
) -> NcuResult:
    """Nsight Compute exports: per-kernel bound, roofline distance, findings; with traces, kernels
    matched to trace time and exports from another GPU flagged; with a model, the theory operators.

    ``loaded`` (and optionally ``trace_report``, their report): traces the caller has already read,
    used instead of the request's ``traces`` so they are not read twice (the agent's loop passes
    its own, with the report of its window and theory).
    """
    from infersight.ncu.analysis import analyze_ncu
    from infersight.ncu.reader import read_ncu
    from infersight.validate import ensure_finite

    req = _request(rq.NcuRequest, request, fields)
    if not req.exports:
        raise InputError(None, "no ncu export given")
    if loaded is not None and req.traces:
        raise InputError(None, "give the request's traces or already loaded traces, not both")
    if trace_report is not None and loaded is None:
        raise InputError(None, "a trace report needs the loaded traces it was made from")
    scenario = require_scenario(req)
    read = [read_ncu(path) for path in req.exports]
    if loaded is None:
        loaded = _core.load(req.traces) if req.traces else []
    if trace_report is None and loaded:
        trace_report = _core.report_from_traces(list(loaded))
    from infersight.ncu.trace_join import launch_configs

    result = analyze_ncu(
        read, gpu=req.gpu, trace=trace_report, trace_configs=launch_configs(loaded) if loaded else None
    )
    result.device_warnings = ncu_device_mismatches(read, loaded)
    estimate = None
    if scenario is not None:
        from infersight.ncu.theory_overlay import theory_overlay
        from infersight.theory.inputs import TheoryOptions
        from infersight.theory.run import theory_report

        gpu_key = result.gpu.key if result.gpu is not None and result.gpu.key else result.gpu_name
        options = TheoryOptions(model=req.model, config=req.config, gpu=gpu_key, dtype=req.dtype)
        estimate = theory_report(
            options, batch=scenario[0], prompt=scenario[1], context=req.context, tp=req.tp
        ).estimate
        result.theory = theory_overlay(estimate)
    ensure_finite(result.model_dump(), "ncu report")
    return NcuResult(report=result, estimate=estimate)


def ncu_plan(request: rq.NcuPlanRequest | None = None, /, **fields: Any) -> NcuPlan:
    """The exact ncu command lines that profile the trace's focus kernels (TopK(time) ∪ {E_roof < 0.3}
    with a model and scenario; the Top-K kernels by GPU time without)."""
    from infersight.ncu.plan import build_plan

    req = _request(rq.NcuPlanRequest, request, fields)
    scenario = require_scenario(req)
    if scenario is not None:
        from infersight.theory.inputs import load_model

        load_model(theory_options(req))  # a malformed config fails before the (slow) trace read
    loaded = _core.load(req.traces)
    analysed = _core.report_from_traces(loaded)
    if not analysed.profile.kernels:
        raise InputError(req.traces[0], "no GPU kernels in the trace: nothing to profile")
    focus = None
    if scenario is not None:
        from infersight.theory.run import theory_report

        theory = theory_report(
            theory_options(req),
            batch=scenario[0],
            prompt=scenario[1],
            context=req.context,
            tp=req.tp,
            traces=loaded,
            top_k=req.top,
        )
        focus = theory.focus
    return build_plan(
        analysed,
        kernel_names(loaded),
        top_k=req.top,
        launch_count=req.launch_count,
        output_prefix=req.output_prefix,
        app=req.app,
        focus=focus,
    )


@dataclass(frozen=True)
class HtmlReportData:
    """What the HTML report draws: the analysis report, the chart data, and the traces read."""

    report: AnalysisReport
    extras: HtmlExtras
    traces: list[str]


def report(request: rq.ReportRequest | None = None, /, **fields: Any) -> HtmlReportData:
    """The data of the self-contained HTML report (``render.html.render_html`` draws it)."""
    from infersight.api.html_data import html_extras

    req = _request(rq.ReportRequest, request, fields)
    _core.check_window_regex(req.window_nvtx)
    theory = theory_request(req)
    loaded = _core.load(req.traces, cpu_ops_as_kernels=req.cpu_ops_as_kernels)
    analysed = _core.report_from_traces(loaded, window_nvtx=req.window_nvtx, theory=theory)
    extras = html_extras(loaded, window_nvtx=req.window_nvtx, with_layers=not req.no_layers)
    return HtmlReportData(report=analysed, extras=extras, traces=[t.source for t in loaded])


def export(request: rq.ExportRequest | None = None, /, **fields: Any) -> list[Trace]:
    """The normalised traces ``export`` writes (``render.trace_export`` serialises them)."""
    req = _request(rq.ExportRequest, request, fields)
    return _core.load(req.traces, cpu_ops_as_kernels=req.cpu_ops_as_kernels)


def kb_lookup(request: rq.KbLookupRequest | None = None, /, **fields: Any) -> LookupResult:
    """Stored runs most similar to a fingerprint (from a report and/or fields), best first."""
    from infersight.kb.lookup import kb_lookup as lookup

    req = _request(rq.KbLookupRequest, request, fields)
    return lookup(
        kb=req.kb,
        report=req.report,
        overrides=req.overrides(),
        top=req.top,
        min_similarity=req.min_similarity,
    )


def kb_record(request: rq.KbRecordRequest | None = None, /, **fields: Any) -> list[RecordResult]:
    """Store analysed runs (all checked before the first is stored); changes make a new version."""
    from infersight.kb.store import KnowledgeBase, check_report, load_report_json

    req = _request(rq.KbRecordRequest, request, fields)
    given = req.overrides()
    loaded = [load_report_json(p) for p in req.reports]
    for path, data in zip(req.reports, loaded, strict=True):
        check_report(data, label=req.label, overrides=given, source=path)
    with KnowledgeBase.open(req.kb) as store:
        return [
            store.record_report(data, label=req.label, overrides=given, source=path)
            for path, data in zip(req.reports, loaded, strict=True)
        ]


def verify(
    request: rq.VerifyRequest | None = None, /, *, progress: Any = None, **fields: Any
) -> VerifyOutcome:
    """A/B of two trace sets or command lines: gain with a 95% CI; conclusive results go to the KB."""
    from infersight.advisor.verify_flow import verify_and_record

    req = _request(rq.VerifyRequest, request, fields)
    return verify_and_record(
        req.baseline,
        req.candidate,
        repeats=req.repeats,
        warmup=req.warmup,
        timeout_s=req.timeout_s,
        recommendation=req.recommendation,
        env_report=req.env_report,
        overrides=req.overrides(),
        kb=req.kb if req.use_kb else None,
        use_kb=req.use_kb,
        allow_env_change=req.allow_env_change,
        progress=progress,
    )


def narrate(request: rq.NarrateRequest | None = None, /, **fields: Any) -> Narration:
    """LLM prose for an analyze --json report's findings, every claim checked against them."""
    from infersight.advisor.narrator import narrate as narrate_findings
    from infersight.analysis_report import AnalysisReport

    req = _request(rq.NarrateRequest, request, fields)
    try:
        parsed = AnalysisReport.model_validate_json(req.report.read_bytes())
    except OSError as exc:
        raise InputError(req.report, f"cannot read: {exc.strerror or exc}") from None
    except ValueError:
        raise InputError(req.report, "not an infersight analyze --json report") from None
    return narrate_findings(parsed.findings, url=req.llm_url, model=req.llm_model)


def profile(
    request: rq.ProfileRequest | None = None, /, *, progress: CaptureProgress | None = None, **fields: Any
) -> ProfileResult:
    """Run a command under nsys, the torch profiler or ncu (the focus kernels of a plan) with the flags
    infersight's analyses need; a dry run gives the command lines only.

    CLI-only, not an MCP tool: the command runs with this process's standard streams (over the MCP
    stdio transport its output would corrupt the protocol stream), without a time limit (a serving
    engine's capture runs until it is stopped), and it is whatever command the caller names, with
    none of the opt-in and limits that ``verify`` puts on the command lines it runs for an agent.
    ``progress`` hears each capture start and end.
    """
    from infersight.advisor.profiling import NO_CAPTURE_PROGRESS, profile_captures, run_captures

    req = _request(rq.ProfileRequest, request, fields)
    captures = profile_captures(
        req.tool,
        req.command,
        req.output,
        plan=req.plan,
        capture_range=req.capture_range,
        delay_s=req.delay,
        duration_s=req.duration,
        check_tool=not req.dry_run,
    )
    return run_captures(
        captures,
        req.tool,
        dry_run=req.dry_run,
        progress=progress if progress is not None else NO_CAPTURE_PROGRESS,
    )
