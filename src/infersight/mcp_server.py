"""``infersight mcp``: the analyses as Model Context Protocol tools over stdio.

Built on the official ``mcp`` Python SDK (``pip install 'infersight[mcp]'``): ``MCPServer`` in
SDK 2.x, ``FastMCP`` in 1.x. The tools are generated from :data:`infersight.api.COMMANDS` (see
:mod:`infersight.agent.tools`), so an AI agent receives the same
JSON the CLI's ``--json`` writes; bad input becomes a tool error whose message is the CLI's
one-line error.
"""

from __future__ import annotations

import importlib
from typing import Any

from infersight import __version__
from infersight.agent.tools import TOOLS
from infersight.errors import InputError
from infersight.ingest.formats import FORMATS_SHORT

__all__ = ["build_server", "serve_stdio"]

INSTRUCTIONS = (
    f"infersight {__version__} diagnoses LLM inference performance from profiler traces "
    f"({FORMATS_SHORT}). Start with `analyze` on the traces; "
    "`roofline` compares with theory "
    "(model + GPU, batch and prompt); `host`, `overlap`, `ranks`, `layers`, `diff` drill down; "
    "`ncu_plan` gives Nsight Compute "
    "commands for the focus kernels and `ncu` reads their exports; `kb_lookup`/`kb_record` read and fill the "
    "knowledge base; `narrate` writes evidence-checked prose; `report` writes the HTML report to a path you "
    "give and `export` the columnar trace model; `verify` A/B-tests a change "
    "(trace files; command lines only when the server was started with --allow-commands)."
)


def _server_class() -> Any:
    for module, name in (("mcp.server.mcpserver", "MCPServer"), ("mcp.server.fastmcp", "FastMCP")):
        try:
            return getattr(importlib.import_module(module), name)
        except ImportError:
            continue
    raise InputError(None, "the MCP server needs the 'mcp' package: pip install 'infersight[mcp]'")


def build_server() -> Any:
    """An MCP server with one tool per entry of :data:`infersight.agent.tools.TOOLS`."""
    server_class = _server_class()
    import inspect

    extra = {"version": __version__} if "version" in inspect.signature(server_class).parameters else {}
    server = server_class(name="infersight", instructions=INSTRUCTIONS, **extra)
    for name, function in TOOLS.items():
        server.tool(name=name, description=(function.__doc__ or name).strip())(_tool_error_wrapper(function))
    return server


def _tool_error_class() -> type[Exception]:
    """The SDK's ToolError: its message reaches the client (other exceptions are hidden)."""
    for module in ("mcp.server.mcpserver.exceptions", "mcp.server.fastmcp.exceptions"):
        try:
            tool_error: type[Exception] = importlib.import_module(module).ToolError
        except ImportError:
            continue
        return tool_error
    raise InputError(None, "the MCP server needs the 'mcp' package: pip install 'infersight[mcp]'")


def _tool_error_wrapper(function: Any) -> Any:
    """Re-raise InputError as the SDK's ToolError carrying the CLI's one-line message."""
    import functools

    tool_error = _tool_error_class()

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except InputError as exc:
            raise tool_error(f"infersight: error: {exc.one_line()}") from None

    return wrapper


def serve_stdio() -> None:
    """Serve the tools on stdin/stdout until the client disconnects."""
    build_server().run("stdio")
