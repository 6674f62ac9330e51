"""The list of API commands: name, function, request model. The MCP tools are generated from it
(every command marked ``mcp``).

Why a registry: a front end that lists its own tools drifts (a tool missing, a parameter with
another default). The MCP server builds one tool per entry here, with the request model's fields
as the tool's parameters, so a new API command is an MCP tool without further edits.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infersight.api import commands
from infersight.api.requests import ApiRequest

__all__ = ["COMMANDS", "ApiCommand"]


@dataclass(frozen=True)
class ApiCommand:
    """One command of the API: ``function(request)`` returns its typed result.

    ``mcp=False`` keeps a command off the MCP tools (the function's docstring says why).
    """

    name: str
    function: Callable[..., Any]
    mcp: bool = True

    @property
    def request(self) -> type[ApiRequest]:
        """The request model: the annotation of the function's first parameter (one source of truth)."""
        annotation = inspect.signature(self.function).parameters["request"].annotation
        hint = eval(annotation, vars(commands)) if isinstance(annotation, str) else annotation
        kinds = [
            k for k in typing.get_args(hint) or (hint,) if isinstance(k, type) and issubclass(k, ApiRequest)
        ]
        if len(kinds) != 1:
            raise TypeError(f"{self.name}: the first parameter must be annotated with one ApiRequest type")
        return kinds[0]

    @property
    def summary(self) -> str:
        """The function's docstring, whitespace folded (the MCP tool description)."""
        return " ".join((inspect.getdoc(self.function) or self.name).split("\n\n")[0].split())

    def parameters(self) -> list[inspect.Parameter]:
        """The request's fields as keyword-only parameters (required ones first)."""
        out = []
        for name, field in self.request.model_fields.items():
            default = (
                inspect.Parameter.empty
                if field.is_required()
                else field.get_default(call_default_factory=True)
            )
            out.append(
                inspect.Parameter(
                    name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=field.annotation
                )
            )
        return sorted(out, key=lambda p: p.default is not inspect.Parameter.empty)


COMMANDS: dict[str, ApiCommand] = {
    c.name: c
    for c in (
        ApiCommand("analyze", commands.analyze),
        ApiCommand("roofline", commands.roofline),
        ApiCommand("host", commands.host),
        ApiCommand("diff", commands.diff),
        ApiCommand("layers", commands.layers),
        ApiCommand("overlap", commands.overlap),
        ApiCommand("ranks", commands.ranks),
        ApiCommand("ncu", commands.ncu),
        ApiCommand("ncu_plan", commands.ncu_plan),
        ApiCommand("report", commands.report),
        ApiCommand("export", commands.export),
        ApiCommand("kb_lookup", commands.kb_lookup),
        ApiCommand("kb_record", commands.kb_record),
        ApiCommand("verify", commands.verify),
        ApiCommand("narrate", commands.narrate),
        ApiCommand("profile", commands.profile, mcp=False),  # runs the caller's command: see its docstring
    )
}
