"""The option groups of :mod:`infersight.commands._options`: one declaration, every command alike.

``with_options`` adds a group (model, scenario, measured figures, run fingerprint) to a command's
signature, so an option's help, bounds and default cannot differ between the commands taking it.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from infersight.cli import app
from infersight.commands._options import (
    FINGERPRINT_OPTIONS,
    MODEL_OPTIONS,
    SCENARIO_OPTIONS,
    OptionGroup,
    with_options,
)

GROUP_USERS: list[tuple[OptionGroup, list[list[str]]]] = [
    (MODEL_OPTIONS, [["analyze"], ["report"], ["layers"], ["ncu-plan"], ["roofline"]]),
    (SCENARIO_OPTIONS, [["analyze"], ["report"], ["layers"], ["ncu"], ["ncu-plan"]]),
    (FINGERPRINT_OPTIONS, [["kb", "record"], ["kb", "lookup"], ["verify"]]),
]


@functools.cache
def _whole_app() -> Any:
    """Every command's click object, built once per module (~0.5 s a build); only read here."""
    return typer.main.get_command(app)


def _command(path: list[str]) -> Any:
    command = _whole_app()
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command


def _described(command: Any, name: str) -> tuple[Any, ...]:
    (param,) = [p for p in command.params if p.name == name]
    kind = param.type_descriptor.annotation if hasattr(param, "type_descriptor") else param.type
    bounds = (getattr(param, "min", None), getattr(param, "max", None))
    return (tuple(param.opts), param.help, param.default, repr(kind), bounds, param.metavar)


@pytest.mark.parametrize(("group", "users"), GROUP_USERS)
def test_a_group_is_the_same_option_in_every_command(group: OptionGroup, users: list[list[str]]) -> None:
    for parameter in group:
        seen = {tuple(path): _described(_command(path), parameter.name) for path in users}
        assert len(set(seen.values())) == 1, (parameter.name, seen)


def _probe(*groups: OptionGroup) -> typer.Typer:
    probe = typer.Typer()

    @probe.command()
    @with_options(*groups)
    def run(name: str = "x", **options: Any) -> None:
        print(sorted(options.items()), name)

    return probe


def test_the_values_reach_the_command() -> None:
    result = CliRunner().invoke(_probe(SCENARIO_OPTIONS), ["--batch", "4", "--tp", "2", "--name", "y"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "[('batch', 4), ('context', None), ('prompt', None), ('tp', 2)] y"
    refused = CliRunner().invoke(_probe(SCENARIO_OPTIONS), ["--batch", "0"])
    assert refused.exit_code == 2  # the group's bound (min=1) holds


def test_an_option_given_twice_is_refused() -> None:
    with pytest.raises(TypeError, match="options given twice"):
        _probe(MODEL_OPTIONS, FINGERPRINT_OPTIONS)  # both declare --gpu, --model, --dtype

    def own_batch(batch: int = 1, **options: Any) -> None:
        """A command declaring --batch itself."""

    with pytest.raises(TypeError, match="batch"):
        with_options(SCENARIO_OPTIONS)(own_batch)
