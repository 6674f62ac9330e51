"""The MCP server in a real session: spawned over stdio, tools listed and called with the SDK's client."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from tests.conftest import require_extra, shared_file

# A spawned server over stdio, end to end (~7 s): CI runs it; the tools themselves run in-process
# in test_tools.py, and tests/api/test_front_ends_agree.py checks their JSON equals the CLI's.
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def _mcp_sdk() -> None:
    """The MCP SDK (test extra), imported when these tests run, not when they are collected
    (its import costs ~1 s of every test process, slow tests deselected or not)."""
    require_extra("mcp", "mcp")


EXPECTED_TOOLS = {
    "analyze",
    "roofline",
    "host",
    "diff",
    "layers",
    "ncu_plan",
    "overlap",
    "kb_lookup",
    "kb_record",
    "ncu",
    "narrate",
    "verify",
    "report",
    "export",
    "ranks",
}


VERIFY_ARGUMENTS = {"baseline": "sleep 5", "candidate": "true", "repeats": 1, "warmup": 0, "timeout_s": 0.5}


def _text(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


def _is_error(result: Any) -> bool:
    return bool(getattr(result, "is_error", None) or getattr(result, "isError", None))


async def _session_calls(kb: Path, trace: Path) -> dict[str, Any]:
    from mcp.client.stdio import stdio_client

    from mcp import ClientSession, StdioServerParameters

    env = {k: v for k, v in os.environ.items() if k != "INFERSIGHT_MCP_ALLOW_COMMANDS"}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "infersight", "mcp"], env={**env, "INFERSIGHT_KB": str(kb)}
    )
    out: dict[str, Any] = {}
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        out["server_info"] = getattr(init, "server_info", None) or init.serverInfo
        listed = await session.list_tools()
        out["tools"] = {tool.name: tool for tool in listed.tools}
        out["analyze"] = await session.call_tool("analyze", {"traces": [str(trace)]})
        out["kb_lookup"] = await session.call_tool("kb_lookup", {"gpu": "H100"})
        out["bad"] = await session.call_tool("analyze", {"traces": [str(kb.parent / "missing.json")]})
        html = kb.parent / "report.html"
        out["report"] = await session.call_tool("report", {"traces": [str(trace)], "output": str(html)})
        out["report_html"] = html.read_text(encoding="utf-8") if html.exists() else ""
        out["report_over_input"] = await session.call_tool(
            "report", {"traces": [str(trace)], "output": str(trace)}
        )
        out["export"] = await session.call_tool("export", {"traces": [str(trace)], "top": 5})
        out["verify_refused"] = await session.call_tool("verify", VERIFY_ARGUMENTS)
    return out


@pytest.fixture(scope="module")
def session_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    trace = shared_file("kineto/hta_alexnet_a100.json.gz")
    kb = tmp_path_factory.mktemp("mcp") / "kb.sqlite"
    return anyio.run(_session_calls, kb, trace)


def test_tools_are_listed_with_schemas(session_results: dict[str, Any]) -> None:
    tools = session_results["tools"]
    assert set(tools) == EXPECTED_TOOLS
    from infersight import api

    # the tool list is generated from the API: it cannot drift; `profile` (runs the caller's command
    # with this process's stdio, no time limit) is the one CLI-only command
    assert set(tools) == {name for name, command in api.COMMANDS.items() if command.mcp}
    assert set(api.COMMANDS) - set(tools) == {"profile"}
    schema = getattr(tools["analyze"], "input_schema", None) or tools["analyze"].inputSchema
    assert "traces" in schema["properties"] and "traces" in schema.get("required", [])


def test_server_reports_its_version(session_results: dict[str, Any]) -> None:
    from infersight import __version__

    assert session_results["server_info"].name == "infersight"
    assert session_results["server_info"].version == __version__


def test_analyze_tool_returns_the_report_json(session_results: dict[str, Any]) -> None:
    import gzip

    result = session_results["analyze"]
    assert not _is_error(result), _text(result)
    report = json.loads(_text(result))
    trace = json.loads(gzip.decompress(shared_file("kineto/hta_alexnet_a100.json.gz").read_bytes()))
    kernels = [e for e in trace["traceEvents"] if e.get("ph") == "X" and e.get("cat") == "kernel"]
    assert report["profile"]["total"]["kernel_count"] == len(kernels)  # independent count from the JSON


def test_kb_lookup_and_errors(session_results: dict[str, Any]) -> None:
    lookup = json.loads(_text(session_results["kb_lookup"]))
    assert lookup["matches"] == [] and lookup["query"]["gpu"] == "H100"
    bad = session_results["bad"]
    assert _is_error(bad) and "missing.json" in _text(bad)


async def _verify_allowed(kb: Path) -> Any:
    from mcp.client.stdio import stdio_client

    from mcp import ClientSession, StdioServerParameters

    env = {k: v for k, v in os.environ.items() if k != "INFERSIGHT_MCP_ALLOW_COMMANDS"}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "infersight", "mcp", "--allow-commands"],
        env={**env, "INFERSIGHT_KB": str(kb)},
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        return await session.call_tool("verify", VERIFY_ARGUMENTS)


def test_verify_refused_without_the_flag(session_results: dict[str, Any]) -> None:
    refused = session_results["verify_refused"]
    assert _is_error(refused) and "does not run commands" in _text(refused)


@pytest.mark.slow  # a second server process, only for the timeout
def test_verify_timed_out_with_the_flag(tmp_path: Path) -> None:
    timed_out = anyio.run(_verify_allowed, tmp_path / "kb.sqlite")
    assert _is_error(timed_out) and "timed out after 0.5 s" in _text(timed_out)


def test_report_and_export_tools(session_results: dict[str, Any]) -> None:
    report = session_results["report"]
    assert not _is_error(report), _text(report)
    written = json.loads(_text(report))
    assert written["output"].endswith("report.html") and written["bytes"] > 0
    assert "<html" in session_results["report_html"].lower()
    refused = session_results["report_over_input"]
    assert _is_error(refused) and "infersight: error:" in _text(refused)
    exported = session_results["export"]
    assert not _is_error(exported), _text(exported)
    document = json.loads(_text(exported))
    assert (
        document["schema"] == "infersight.trace" and document["traces"][0]["tables"]["kernels"]["rows"] == 5
    )
    assert document["truncated"]["traces[0].tables.kernels"] == {"shown": 5, "total": 79}
