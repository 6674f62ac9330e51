"""The analyses as JSON-returning functions: what the MCP server and the agent workflow call.

Each tool is a thin adapter — load the inputs, call the public function of the analysis package,
return ``model_dump(mode="json")`` — so an AI agent gets exactly what ``--json`` writes. Bad
input raises :class:`~infersight.errors.InputError` (the MCP server turns it into a tool error).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from infersight.errors import InputError

__all__ = [
    "ALLOW_COMMANDS_ENV",
    "TOOLS",
    "analyze_tool",
    "commands_allowed",
    "diff_tool",
    "export_tool",
    "host_tool",
    "kb_lookup_tool",
    "kb_record_tool",
    "layers_tool",
    "narrate_tool",
    "ncu_plan_tool",
    "ncu_tool",
    "overlap_tool",
    "report_tool",
    "roofline_tool",
    "verify_tool",
]

JsonDict = dict[str, Any]
ALLOW_COMMANDS_ENV = "INFERSIGHT_MCP_ALLOW_COMMANDS"
DEFAULT_TIMEOUT_S = 300.0
MAX_TIMEOUT_S = 3600.0
DEFAULT_EXPORT_ROWS = 1000  # rows per table an inline export returns (the file holds them all)
MAX_INLINE_EXPORT_BYTES = 8 * 1024 * 1024  # an inline export larger than this is refused: write a file


def _paths(traces: list[str]) -> list[Path]:
    if not traces:
        raise InputError(None, "no trace given")
    return [Path(t).expanduser() for t in traces]


def analyze_tool(
    traces: list[str], window_nvtx: str | None = None, cpu_ops_as_kernels: bool = False, top: int = 50
) -> JsonDict:
    """The global profile (busy/idle, kernels, categories, ranges, phases) and rule findings; the kernel
    table is cut to the `top` kernels by GPU time (the rest counted in `truncated`) to keep replies small."""
    from infersight import api

    if top < 1:
        raise InputError(None, f"top must be >= 1, got {top}")
    report = api.analyze(_paths(traces), window_nvtx=window_nvtx, cpu_ops_as_kernels=cpu_ops_as_kernels)
    data = report.model_dump(mode="json")
    kernels = data["profile"]["kernels"]
    if len(kernels) > top:
        data["profile"]["kernels"] = kernels[:top]
        data["truncated"] = {"profile.kernels": {"shown": top, "total": len(kernels)}}
    return data


def ncu_tool(exports: list[str], gpu: str | None = None, traces: list[str] | None = None) -> JsonDict:
    """Nsight Compute exports (CSV or .ncu-rep): per-kernel bound, roofline distance, findings; with the
    traces, kernels are matched to trace time and an export from another GPU is flagged."""
    from infersight import api
    from infersight.agent.workflow import ncu_device_mismatches
    from infersight.ncu.analysis import analyze_ncu
    from infersight.ncu.reader import read_ncu

    if not exports:
        raise InputError(None, "no ncu export given")
    read = [read_ncu(Path(p).expanduser()) for p in exports]
    loaded = api.load(_paths(traces)) if traces else []
    report = api.report_from_traces(loaded) if loaded else None
    result = analyze_ncu(read, gpu=gpu, trace=report)
    result.device_warnings = ncu_device_mismatches(read, loaded)
    return result.model_dump(mode="json")


def kb_record_tool(report: str, kb: str | None = None, label: str | None = None) -> JsonDict:
    """Store an analyze --json report in the knowledge base (a new version only when its content changed)."""
    from infersight.kb.store import KnowledgeBase, load_report_json

    loaded = load_report_json(Path(report).expanduser())
    with KnowledgeBase.open(kb) as store:
        return store.record_report(loaded, label=label).model_dump(mode="json")


def narrate_tool(report: str, llm_url: str, llm_model: str) -> JsonDict:
    """LLM prose for an analyze --json report's findings; every sentence's claims checked against the
    cited findings (dropped sentences listed with the reason)."""
    from infersight.agent.narrator import narrate
    from infersight.analyses.results import AnalysisReport

    path = Path(report).expanduser()
    try:
        parsed = AnalysisReport.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    except ValueError:
        raise InputError(path, "not an infersight analyze --json report") from None
    narration = narrate(parsed.findings, url=llm_url, model=llm_model)
    return {**narration.model_dump(mode="json"), "text": narration.text}


def roofline_tool(
    model: str | None = None,
    config: str | None = None,
    gpu: str | None = None,
    batch: int = 1,
    prompt: int = 512,
    context: int | None = None,
    tp: int = 1,
    dtype: str | None = None,
    traces: list[str] | None = None,
) -> JsonDict:
    """Roofline theory of a model/GPU/scenario; with traces also measured vs theory and the focus set."""
    from infersight import api
    from infersight.theory.inputs import TheoryOptions
    from infersight.theory.run import theory_report

    options = TheoryOptions(model=model, config=Path(config) if config else None, gpu=gpu, dtype=dtype)
    loaded = api.load(_paths(traces)) if traces else None
    report = theory_report(options, batch=batch, prompt=prompt, context=context, tp=tp, traces=loaded)
    return report.model_dump(mode="json")


def host_tool(traces: list[str], host_prep_range: str | None = None) -> JsonDict:
    """Is host overhead the bottleneck? M1-M5 verdicts, iterations, gap drill-down, advice."""
    from infersight.host.config import load_config
    from infersight.host.detect import analyze_host, load_for_host

    report = analyze_host(load_for_host(_paths(traces)), load_config(None), host_prep_range)
    return report.model_dump(mode="json")


def diff_tool(baseline: str, target: str) -> JsonDict:
    """Per-step breakdown of two traces of the same workload, and what changed."""
    from infersight.host.config import load_config
    from infersight.host.detect import load_for_host
    from infersight.host.diff import diff_traces

    def one(path: str) -> Any:
        usable = [t for t in load_for_host([Path(path)]) if not t.kernels.empty]
        if len(usable) != 1:
            raise InputError(path, f"diff needs one rank with GPU kernels per side, found {len(usable)}")
        return usable[0]

    return diff_traces(one(baseline), one(target), load_config(None)).model_dump(mode="json")


def layers_tool(
    trace: str, model: str | None = None, config: str | None = None, num_layers: int | None = None
) -> JsonDict:
    """Per-layer / per-forward-pass kernel time of one rank's trace."""
    from infersight import api
    from infersight.layers.analysis import analyze_layers
    from infersight.theory.config_reader import load_model_config, resolve_model

    if model is not None and config is not None:
        raise InputError(None, "give model or config, not both")
    model_config = resolve_model(model) if model else load_model_config(Path(config)) if config else None
    loaded = api.load([Path(trace)])
    if len(loaded) != 1:
        raise InputError(trace, f"holds {len(loaded)} ranks; give one rank's file")
    return analyze_layers(loaded[0], config=model_config, num_layers=num_layers).model_dump(mode="json")


def ncu_plan_tool(traces: list[str], top: int = 5, app: str = "<your inference command>") -> JsonDict:
    """Nsight Compute commands for the Top-K kernels by GPU time (the focus set)."""
    import pandas as pd

    from infersight import api
    from infersight.ncu.plan import build_plan

    loaded = api.load(_paths(traces))
    report = api.report_from_traces(loaded)
    if not report.profile.kernels:
        raise InputError(traces[0], "no GPU kernels in the trace: nothing to profile")
    names = sorted({str(n) for t in loaded for n in pd.unique(t.kernels["name"].astype(str))})
    return build_plan(report, names, top_k=top, app=app).model_dump(mode="json")


def overlap_tool(traces: list[str], window_nvtx: str | None = None) -> JsonDict:
    """Copy/compute and communication/computation overlap (and the multi-rank view)."""
    from infersight import api
    from infersight.overlap import analyze_overlap

    return analyze_overlap(api.load(_paths(traces)), window_nvtx=window_nvtx).model_dump(mode="json")


def kb_lookup_tool(
    kb: str | None = None,
    report: str | None = None,
    gpu: str | None = None,
    model: str | None = None,
    dtype: str | None = None,
    tp: int | None = None,
    batch: int | None = None,
    top: int = 5,
) -> JsonDict:
    """Stored runs similar to a fingerprint (from a report JSON and/or fields), best first."""
    from infersight.agent.lookup import kb_lookup

    fields = {"gpu": gpu, "model": model, "dtype": dtype, "tp": tp, "batch": batch}
    result = kb_lookup(
        kb=kb,
        report=Path(report) if report else None,
        overrides={k: v for k, v in fields.items() if v is not None},
        top=top,
    )
    return result.model_dump(mode="json")


def _output(path: str, suffixes: tuple[str, ...], traces: list[Path]) -> Path:
    """An output path the client gave: the expected suffix (no stray file is overwritten with HTML or
    JSON), never one of the inputs (symlinks and hard links included), in an existing folder."""
    from infersight.commands._io import check_outputs

    out = Path(path).expanduser()
    if out.suffix.lower() not in suffixes:
        raise InputError(out, f"output must end with {' or '.join(suffixes)}")
    check_outputs([out], traces)
    return out


def report_tool(
    traces: list[str],
    output: str,
    window_nvtx: str | None = None,
    model: str | None = None,
    config: str | None = None,
    gpu: str | None = None,
    batch: int | None = None,
    prompt: int | None = None,
    context: int | None = None,
    tp: int = 1,
    dtype: str | None = None,
    top: int = 15,
    no_layers: bool = False,
    cpu_ops_as_kernels: bool = False,
) -> JsonDict:
    """Write the self-contained HTML report (timeline, ranking, roofline with model+gpu, per-layer bars,
    findings) of the traces to `output` (.html; never one of the inputs); returns where and a summary."""
    from infersight import api
    from infersight.agent.html_data import html_extras
    from infersight.commands._io import check_outputs, write_output
    from infersight.commands.roofline import theory_request
    from infersight.render.html import render_html

    if top < 1:
        raise InputError(None, f"top must be >= 1, got {top}")
    paths = _paths(traces)
    out = _output(output, (".html", ".htm"), paths)
    api.check_window_regex(window_nvtx)
    theory = theory_request(
        model=model,
        config=Path(config).expanduser() if config else None,
        gpu=gpu,
        peak_tflops=None,
        bandwidth=None,
        batch=batch,
        prompt=prompt,
        context=context,
        tp=tp,
        dtype=dtype,
        measured_ttft=None,
        measured_tpot=None,
        measured_tps=None,
    )
    loaded = api.load(paths, cpu_ops_as_kernels=cpu_ops_as_kernels)
    check_outputs([out], [Path(t.source) for t in loaded])  # the files a trace folder expanded to
    report = api.report_from_traces(loaded, window_nvtx=window_nvtx, theory=theory)
    extras = html_extras(loaded, window_nvtx=window_nvtx, with_layers=not no_layers)
    html = render_html(report, extras, top=top).encode()
    write_output(out, html)
    primary = report.profile.primary_bottleneck
    return {
        "output": str(out),
        "bytes": len(html),
        "traces": [t.source for t in loaded],
        "findings": len(report.findings),
        "primary_bottleneck": primary.bucket if primary is not None else None,
    }


def export_tool(
    traces: list[str],
    output: str | None = None,
    top: int = DEFAULT_EXPORT_ROWS,
    cpu_ops_as_kernels: bool = False,
) -> JsonDict:
    """The normalised trace model (kernels, memcpy, memset, api, ranges) as columnar `infersight.trace` JSON.
    With `output` (.json, never an input) the whole document is written there and a summary returned;
    without, it is returned inline with each table cut to its first `top` rows (totals in `truncated`)."""
    import orjson

    from infersight import api
    from infersight.commands._io import check_outputs, write_output
    from infersight.render.trace_export import export_traces

    if top < 1:
        raise InputError(None, f"top must be >= 1, got {top}")
    paths = _paths(traces)
    out = _output(output, (".json",), paths) if output is not None else None
    loaded = api.load(paths, cpu_ops_as_kernels=cpu_ops_as_kernels)
    document = export_traces(loaded)
    if out is not None:
        check_outputs([out], [Path(t.source) for t in loaded])
        write_output(out, document)
        parsed = orjson.loads(document)
        return {
            "schema": parsed["schema"],
            "schema_version": parsed["schema_version"],
            "output": str(out),
            "bytes": len(document),
            "traces": [
                {"source": t["source"], "rows": {name: table["rows"] for name, table in t["tables"].items()}}
                for t in parsed["traces"]
            ],
        }
    data: JsonDict = orjson.loads(document)
    truncated: dict[str, JsonDict] = {}
    for index, trace in enumerate(data["traces"]):
        for name, table in trace["tables"].items():
            if table["rows"] > top:
                truncated[f"traces[{index}].tables.{name}"] = {"shown": top, "total": table["rows"]}
                table["data"] = {col: values[:top] for col, values in table["data"].items()}
                table["rows"] = top
    if truncated:
        data["truncated"] = truncated
    size = len(orjson.dumps(data))
    if size > MAX_INLINE_EXPORT_BYTES:
        raise InputError(
            None,
            f"the inline export is {size / 2**20:.1f} MiB (limit {MAX_INLINE_EXPORT_BYTES / 2**20:.0f} MiB): "
            "give output=PATH.json to write it to a file, or a smaller top",
        )
    return data


def commands_allowed() -> bool:
    """Whether this server may run command lines: only when started with the explicit opt-in."""
    return os.environ.get(ALLOW_COMMANDS_ENV, "") == "1"


def _timeout(timeout_s: float) -> float:
    if not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise InputError(None, f"timeout_s must be in (0, {MAX_TIMEOUT_S:.0f}] seconds, got {timeout_s}")
    return timeout_s


def verify_tool(
    baseline: str,
    candidate: str,
    repeats: int = 5,
    warmup: int = 1,
    recommendation: str | None = None,
    kb: str | None = None,
    use_kb: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    allow_env_change: bool = False,
) -> JsonDict:
    """A/B of two trace sets (or, only on a server started with --allow-commands, two command lines run
    without a shell, each run limited to timeout_s): gain with a 95% CI; KB write-back. Sides from
    different environments (GPU, GPU count, ...) are refused unless allow_env_change (then marked)."""
    from infersight.agent.verify import parse_side
    from infersight.agent.verify_flow import verify_and_record

    limit = _timeout(timeout_s)
    sides = [parse_side(baseline), parse_side(candidate)]  # paths checked, commands' programs found
    commands = [side.argv for side in sides if side.mode == "command"]
    if commands and not commands_allowed():
        raise InputError(
            None,
            "verify: this MCP server does not run commands (start it with `infersight mcp --allow-commands` "
            f"or {ALLOW_COMMANDS_ENV}=1); give trace files instead",
        )
    outcome = verify_and_record(
        baseline,
        candidate,
        repeats=repeats,
        warmup=warmup,
        timeout_s=limit,
        recommendation=recommendation,
        kb=kb,
        use_kb=use_kb,
        allow_env_change=allow_env_change,
    ).model_dump(mode="json")
    if commands:
        outcome["ran"] = {
            "baseline": sides[0].argv,
            "candidate": sides[1].argv,
            "runs_per_side": warmup + repeats,
            "timeout_s": limit,
            "shell": False,
        }
    return outcome


TOOLS = {
    "analyze": analyze_tool,
    "roofline": roofline_tool,
    "host": host_tool,
    "diff": diff_tool,
    "layers": layers_tool,
    "ncu_plan": ncu_plan_tool,
    "overlap": overlap_tool,
    "kb_lookup": kb_lookup_tool,
    "kb_record": kb_record_tool,
    "ncu": ncu_tool,
    "narrate": narrate_tool,
    "verify": verify_tool,
    "report": report_tool,
    "export": export_tool,
}
