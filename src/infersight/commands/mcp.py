"""``infersight mcp``: serve the analyses as MCP tools over stdio (for AI agents)."""

from __future__ import annotations

import os
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the ``mcp`` command."""

    @app.command("mcp")
    def mcp(
        allow_commands: Annotated[
            bool,
            typer.Option(
                "--allow-commands",
                help="Let the verify tool run command lines here (no shell, with a timeout); off by default.",
            ),
        ] = False,
    ) -> None:
        """Serve the analyses as MCP tools on stdio (analyze, roofline, host, diff, layers, ncu_plan, ...)."""
        from infersight.agent.tools import ALLOW_COMMANDS_ENV
        from infersight.mcp_server import serve_stdio

        if allow_commands:
            os.environ[ALLOW_COMMANDS_ENV] = "1"

        serve_stdio()
