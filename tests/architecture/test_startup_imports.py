"""What starting the CLI imports: ``infersight --help`` and ``import infersight.cli`` load no heavy library.

Why a property test and not a timing test: the start time of the CLI is mostly imports (pandas and
numpy ~0.5 s, pydantic with its schema machinery ~0.3 s, rich ~0.1 s, the theory and analysis
modules on top), and wall-clock assertions fail on a loaded machine. Which modules are in
``sys.modules`` after the import does not depend on the load: a module-level import that drags
one of these back in (``from infersight import api`` at the top of ``cli.py`` did: 2.5 s for
``--help``) fails here. Each check runs in a fresh interpreter, as a user's start does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import typer
from tests.conftest import REPO_ROOT

# libraries (and our own heavy floors) a start that only parses options must not import
HEAVY = (
    "pandas",
    "numpy",
    "pydantic",
    "rich",
    "plotly",
    "pyarrow",
    "scipy",
    "sqlalchemy",
    "mcp",
    "infersight.api",
    "infersight.analyses",
    "infersight.theory",
    "infersight.model",
    "infersight.analysis_report",
)


def _loaded_after(code: str) -> set[str]:
    """The top-level names (and infersight sub-packages) in ``sys.modules`` after running ``code``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT / "src"), env.get("PYTHONPATH")]))
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    modules: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return set(modules)


def _heavy(modules: set[str]) -> list[str]:
    return sorted(h for h in HEAVY if h in modules)


def test_the_check_sees_a_heavy_import() -> None:
    """The checker itself: a start that imports pandas is caught (so the tests below can fail)."""
    assert _heavy(_loaded_after("import infersight.cli, pandas")) == ["numpy", "pandas"]


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert _heavy(_loaded_after("import infersight.cli")) == []


def test_help_loads_no_heavy_library() -> None:
    """``infersight --help`` builds every command (all option lists) and still imports none of them."""
    loaded = _loaded_after(
        "import contextlib, io\nfrom infersight.cli import run\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n    assert run(['--help']) == 0\n"
        "assert 'analyze' in out.getvalue()"
    )
    assert _heavy(loaded) == []


@pytest.mark.parametrize("command", ["analyze", "profile", "kb"])
def test_command_help_loads_no_heavy_library(command: str) -> None:
    """A command's own help: typer (0.29+) coerces the parsed options through pydantic
    ``TypeAdapter``s, so pydantic comes with any command line; nothing else may."""
    loaded = _loaded_after(
        "import contextlib, io\nfrom infersight.cli import run\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    assert run([{command!r}, '--help']) == 0\n"
    )
    assert [h for h in _heavy(loaded) if h != "pydantic"] == []


def test_importing_the_api_loads_neither_pandas_nor_the_theory() -> None:
    """``from infersight import api`` (the MCP server, notebooks) defers the pipeline to the first call;
    the request models (pydantic) are all it needs up front."""
    loaded = _loaded_after("from infersight import api\nassert api.COMMANDS")
    assert _heavy(loaded) == ["infersight.api", "pydantic"]


def _names() -> list[str]:
    from infersight.cli import app

    commands = [c.name or typer.main.get_command_name(c.callback.__name__) for c in app.registered_commands]
    return sorted([*commands, *(g.name for g in app.registered_groups if g.name)])


@pytest.mark.parametrize("name", _names())
def test_a_run_of_one_command_builds_that_command_as_the_whole_app_does(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``cli.run`` builds only the command named first (typer builds every command's parameters
    before parsing): its help, usage line and option checks are the whole application's."""
    from typer.testing import CliRunner

    from infersight.cli import _app_for, app, run

    assert _app_for([name, "x"]) is not app and _app_for(["--help"]) is app and _app_for(["nope"]) is app
    whole = CliRunner().invoke(app, [name, "--help"], prog_name="infersight")  # builds every command
    assert whole.exit_code == 0
    assert run([name, "--help"]) == 0
    # the same text (the two runners wrap at different widths)
    assert "".join(capsys.readouterr().out.split()) == "".join(whole.output.split())
