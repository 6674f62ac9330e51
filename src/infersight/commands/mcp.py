"""``infersight mcp``: serve the analyses as MCP tools over stdio (for AI agents)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``mcp`` command."""

    @app.command("mcp")
    def mcp() -> None:
        """Serve the analyses as MCP tools on stdio (analyze, roofline, host, diff, layers, ncu_plan, ...)."""
        from infersight.mcp_server import serve_stdio

        serve_stdio()
