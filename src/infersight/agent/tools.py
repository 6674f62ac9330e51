"""The MCP tools: generated from :data:`infersight.api.COMMANDS` (those marked ``mcp``), returning JSON.

Each tool takes the fields of its command's request model as parameters, builds the request
(a bad value is an :class:`~infersight.errors.InputError`, which the MCP server turns into a
tool error), calls the API function and returns ``model_dump(mode="json")`` of the result — what
the CLI's ``--json`` writes. Only the reply is shaped here, where a whole result would not fit an
agent's context (the kernel table, an inline export) or a file is written (the HTML report).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infersight import api
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
    "ranks_tool",
    "report_tool",
    "roofline_tool",
    "verify_tool",
]

JsonDict = dict[str, Any]
Tool = Callable[..., JsonDict]
ALLOW_COMMANDS_ENV = "INFERSIGHT_MCP_ALLOW_COMMANDS"
DEFAULT_TIMEOUT_S = 300.0  # a command-line A/B run from an agent is always time-limited
MAX_TIMEOUT_S = 3600.0
MAX_INLINE_EXPORT_BYTES = 8 * 1024 * 1024  # an inline export larger than this is refused: write a file
REQUIRED_HERE = {"report": ("output",)}  # the CLI's default file name is no default for an agent


def _dump(result: Any) -> JsonDict:
    dumped: JsonDict = result.model_dump(mode="json")
    return dumped


def _analyze_reply(request: Any, result: Any) -> JsonDict:
    """The kernel table cut to the request's `top` kernels by GPU time (the rest counted)."""
    data = _dump(result)
    kernels = data["profile"]["kernels"]
    if len(kernels) > request.top:
        data["profile"]["kernels"] = kernels[: request.top]
        data["truncated"] = {"profile.kernels": {"shown": request.top, "total": len(kernels)}}
    return data


def _output(path: Path, suffixes: tuple[str, ...], traces: list[Path]) -> Path:
    """An output path the client gave: the expected suffix (no stray file is overwritten with HTML or
    JSON), never one of the inputs (symlinks and hard links included), in an existing folder."""
    from infersight.output_paths import check_outputs

    out = path.expanduser()
    if out.suffix.lower() not in suffixes:
        raise InputError(out, f"output must end with {' or '.join(suffixes)}")
    check_outputs([out], traces)
    return out


def _report_reply(request: Any, data: Any) -> JsonDict:
    """Write the HTML to `output`; return where, and a summary."""
    from infersight.output_paths import check_outputs, write_output
    from infersight.render.html import render_html

    check_outputs([request.output], [Path(t) for t in data.traces])  # the files a folder expanded to
    html = render_html(data.report, data.extras, top=request.top).encode()
    write_output(request.output, html)
    primary = data.report.profile.primary_bottleneck
    return {
        "output": str(request.output),
        "bytes": len(html),
        "traces": data.traces,
        "findings": len(data.report.findings),
        "primary_bottleneck": primary.bucket if primary is not None else None,
    }


def _export_reply(request: Any, loaded: Any) -> JsonDict:
    """With `output` the whole document is written there; without, returned cut to `top` rows a table."""
    import orjson

    from infersight.output_paths import check_outputs, write_output
    from infersight.render.trace_export import export_traces

    document = export_traces(loaded)
    if request.output is not None:
        check_outputs([request.output], [Path(t.source) for t in loaded])
        write_output(request.output, document)
        parsed = orjson.loads(document)
        return {
            "schema": parsed["schema"],
            "schema_version": parsed["schema_version"],
            "output": str(request.output),
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
            if table["rows"] > request.top:
                truncated[f"traces[{index}].tables.{name}"] = {"shown": request.top, "total": table["rows"]}
                table["data"] = {col: values[: request.top] for col, values in table["data"].items()}
                table["rows"] = request.top
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


def _verify_request(request: Any) -> Any:
    """Sides checked (paths exist, programs found) and commands refused without the opt-in; every
    command-line run limited in time."""
    from infersight.advisor.verify import parse_side

    timeout = request.timeout_s if request.timeout_s is not None else DEFAULT_TIMEOUT_S
    if not 0 < timeout <= MAX_TIMEOUT_S:
        raise InputError(None, f"timeout_s must be in (0, {MAX_TIMEOUT_S:.0f}] seconds, got {timeout}")
    sides = [parse_side(request.baseline), parse_side(request.candidate)]
    if any(side.mode == "command" for side in sides) and not commands_allowed():
        raise InputError(
            None,
            "verify: this MCP server does not run commands (start it with `infersight mcp --allow-commands` "
            f"or {ALLOW_COMMANDS_ENV}=1); give trace files instead",
        )
    return request.model_copy(update={"timeout_s": timeout})


def _verify_reply(request: Any, outcome: Any) -> JsonDict:
    from infersight.advisor.verify import parse_side

    data = _dump(outcome)
    sides = [parse_side(request.baseline), parse_side(request.candidate)]
    if any(side.mode == "command" for side in sides):
        data["ran"] = {
            "baseline": sides[0].argv,
            "candidate": sides[1].argv,
            "runs_per_side": request.warmup + request.repeats,
            "timeout_s": request.timeout_s,
            "shell": False,
        }
    return data


def _kb_record_reply(request: Any, results: Any) -> JsonDict:
    return {"records": [_dump(r) for r in results]}


def _narrate_reply(request: Any, narration: Any) -> JsonDict:
    return {**_dump(narration), "text": narration.text}


def _ncu_reply(request: Any, result: Any) -> JsonDict:
    return _dump(result.report)


REPLIES: dict[str, Callable[[Any, Any], JsonDict]] = {
    "analyze": _analyze_reply,
    "ncu": _ncu_reply,
    "report": _report_reply,
    "export": _export_reply,
    "verify": _verify_reply,
    "kb_record": _kb_record_reply,
    "narrate": _narrate_reply,
}
PREPARE: dict[str, Callable[[Any], Any]] = {
    "verify": _verify_request,
    "report": lambda r: r.model_copy(update={"output": _output(r.output, (".html", ".htm"), list(r.traces))}),
    "export": lambda r: (
        r
        if r.output is None
        else r.model_copy(update={"output": _output(r.output, (".json",), list(r.traces))})
    ),
}


def _make_tool(command: api.ApiCommand) -> Tool:
    """The MCP tool of one API command: its request's fields as parameters (required ones first,
    also positional, so Python callers may write ``report_tool(traces, output)``)."""
    required = REQUIRED_HERE.get(command.name, ())
    params = [
        p.replace(default=inspect.Parameter.empty) if p.name in required else p for p in command.parameters()
    ]
    params.sort(key=lambda p: p.default is not inspect.Parameter.empty)
    params = [
        p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) if p.default is inspect.Parameter.empty else p
        for p in params
    ]
    signature = inspect.Signature(params, return_annotation=JsonDict)
    reply = REPLIES.get(command.name, lambda _request, result: _dump(result))
    prepare = PREPARE.get(command.name, lambda r: r)

    def tool(*args: Any, **fields: Any) -> JsonDict:
        try:
            bound = signature.bind(*args, **fields)
        except TypeError as exc:
            raise InputError(None, f"{command.name}: {exc}") from None
        request = prepare(command.request.of(**bound.arguments))
        return reply(request, command.function(request))

    tool.__name__ = f"{command.name}_tool"
    tool.__qualname__ = tool.__name__
    tool.__doc__ = command.summary
    tool.__signature__ = signature  # type: ignore[attr-defined]
    tool.__annotations__ = {p.name: p.annotation for p in params} | {"return": JsonDict}
    return tool


TOOLS: dict[str, Tool] = {name: _make_tool(command) for name, command in api.COMMANDS.items() if command.mcp}

analyze_tool = TOOLS["analyze"]
roofline_tool = TOOLS["roofline"]
host_tool = TOOLS["host"]
diff_tool = TOOLS["diff"]
layers_tool = TOOLS["layers"]
overlap_tool = TOOLS["overlap"]
ranks_tool = TOOLS["ranks"]
ncu_tool = TOOLS["ncu"]
ncu_plan_tool = TOOLS["ncu_plan"]
report_tool = TOOLS["report"]
export_tool = TOOLS["export"]
kb_lookup_tool = TOOLS["kb_lookup"]
kb_record_tool = TOOLS["kb_record"]
verify_tool = TOOLS["verify"]
narrate_tool = TOOLS["narrate"]
