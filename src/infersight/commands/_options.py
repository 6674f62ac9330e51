"""One check for every numeric option of every command: finite floats, integers of sane size.

Why here and not per option: a range such as ``min=1, max=2`` lets ``nan`` through (every
comparison with nan is false) and a plain ``float`` option takes ``inf``; ``--link-bandwidth nan``
once made a TP all-reduce take 4.3 ns and ``--bandwidth inf`` printed "memory inf PB/s". Chaining
a check onto the callback of every parameter of the built command (the callback runs after the
value is converted, for options and arguments alike) means a new option cannot forget it. Domain
bounds (a bandwidth > 0, a batch <= ``validate.MAX_BATCH``) live in the request models
(``TheoryOptions``, ``TheoryRequest``, ``Scenario``) so the API and the MCP tools refuse the same
values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import typer

from infersight.validate import MAX_EXACT_INT

__all__ = ["check_number", "guard_numeric_options"]

_GUARDED = "_infersight_numbers_guarded"


def check_number(value: Any) -> str | None:
    """Why a converted option value is refused (nan/inf, an int beyond 2^53), or None."""
    if isinstance(value, list | tuple):
        return next((problem for item in value if (problem := check_number(item))), None)
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_EXACT_INT:
        return f"{value} is larger than {MAX_EXACT_INT:,}"
    return None


def _guarded(callback: Callable[..., Any] | None) -> Callable[..., Any]:
    def check_then_call(ctx: Any, param: Any, value: Any) -> Any:
        problem = check_number(value)
        if problem is not None:
            raise typer.BadParameter(problem, ctx=ctx, param=param)  # exit 2: "Invalid value for '--x'"
        return callback(ctx, param, value) if callback is not None else value

    setattr(check_then_call, _GUARDED, True)
    return check_then_call


def guard_numeric_options(command: Any) -> Any:
    """Chain :func:`check_number` onto every parameter of a click command and its sub-commands."""
    for param in command.params:
        if not getattr(param.callback, _GUARDED, False):
            param.callback = _guarded(param.callback)
    for sub in getattr(command, "commands", {}).values():  # a group's sub-commands
        guard_numeric_options(sub)
    return command
