"""The public Python API: every front end (CLI, MCP tools, agent, notebooks) calls these and never computes.

One function per command, each taking a typed request (:mod:`infersight.api.requests`) or its
fields as keywords, and returning the typed result::

    from infersight import api
    report = api.analyze(traces=["run.sqlite"])
    host = api.host(api.HostRequest(traces=["run.sqlite"]))

:data:`COMMANDS` lists them (the MCP tools are generated from it; ``profile``, which runs the
caller's command, is CLI-only). The lower-level steps
(:func:`load`, :func:`report_from_traces`, :func:`report_from_profile`) stay public for
notebooks that reuse loaded traces.
"""

from __future__ import annotations

from infersight.api._core import (
    AnnotatedTraces,
    annotate,
    check_window_regex,
    load,
    predict_ops,
    report_from_profile,
    report_from_traces,
)
from infersight.api.commands import (
    HtmlReportData,
    NcuResult,
    analyze,
    diff,
    export,
    host,
    kb_lookup,
    kb_record,
    kernel_names,
    layers,
    narrate,
    ncu,
    ncu_device_mismatches,
    ncu_plan,
    overlap,
    profile,
    ranks,
    report,
    roofline,
    verify,
)
from infersight.api.registry import COMMANDS, ApiCommand
from infersight.api.requests import (
    AnalyzeRequest,
    ApiRequest,
    DiffRequest,
    ExportRequest,
    FingerprintArgs,
    HostRequest,
    KbLookupRequest,
    KbRecordRequest,
    LayersRequest,
    NarrateRequest,
    NcuPlanRequest,
    NcuRequest,
    OverlapRequest,
    ProfileRequest,
    RanksRequest,
    ReportRequest,
    RooflineRequest,
    VerifyRequest,
)
from infersight.api.scenario import require_scenario, theory_request

__all__ = [
    "COMMANDS",
    "AnalyzeRequest",
    "AnnotatedTraces",
    "ApiCommand",
    "ApiRequest",
    "DiffRequest",
    "ExportRequest",
    "FingerprintArgs",
    "HostRequest",
    "HtmlReportData",
    "KbLookupRequest",
    "KbRecordRequest",
    "LayersRequest",
    "NarrateRequest",
    "NcuPlanRequest",
    "NcuRequest",
    "NcuResult",
    "OverlapRequest",
    "ProfileRequest",
    "RanksRequest",
    "ReportRequest",
    "RooflineRequest",
    "VerifyRequest",
    "analyze",
    "annotate",
    "check_window_regex",
    "diff",
    "export",
    "host",
    "kb_lookup",
    "kb_record",
    "kernel_names",
    "layers",
    "load",
    "narrate",
    "ncu",
    "ncu_device_mismatches",
    "ncu_plan",
    "overlap",
    "predict_ops",
    "profile",
    "ranks",
    "report",
    "report_from_profile",
    "report_from_traces",
    "require_scenario",
    "roofline",
    "theory_request",
    "verify",
]
