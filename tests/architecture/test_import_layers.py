"""The import layers run one way: ingest -> model -> analyses -> rules/theory -> api -> render -> front ends.

Every ``import infersight...`` statement of the package (module level, in functions and under
``TYPE_CHECKING`` alike: a lazy import is still a dependency) is read from the source with
:mod:`ast` and checked against the floor of both modules. A module may import its own package,
its floor and the floors below; an import from a higher floor is an arrow running back up and
fails this test, unless it is one of the few :data:`KNOWN` ones (each with the reason it is
still there). Import circles between packages need an arrow back up, so they fail here too.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "infersight"

# package (first name under infersight) -> floor; lower floors never import higher ones
FLOORS: dict[str, int] = {
    # 0: the base every layer uses
    "": 0,  # infersight/__init__.py (the version)
    "errors": 0,
    "safe_io": 0,
    "output_paths": 0,  # outputs never overwrite inputs: the CLI commands and the MCP tools both check
    "validate": 0,
    "units": 0,
    "heap": 0,  # giving freed C-heap memory back to the OS, for the readers and the analyses
    "progress": 0,  # the progress-callback protocol ingest and analyses report stages to
    "executors": 0,
    "model": 0,
    # 1: readers, and what the hardware is (GPU specs and links, data files)
    "ingest": 1,
    "hardware": 1,
    # 2: the global profile and its pieces
    "analyses": 2,
    "per_rank": 2,
    # 3: rules (findings) and theory (roofline); the knowledge base stores their results
    "rules": 3,
    "theory": 3,
    "kb": 3,
    # 4: drill-downs built on rules and theory, and the report that combines them
    "host": 4,
    "overlap": 4,
    "layers": 4,
    "ncu": 4,
    "analysis_report": 4,
    "advisor": 4,  # narrating findings in checked words, A/B verification of a recommendation
    # 5: the public API
    "api": 5,
    # 6: renderers
    "render": 6,
    # 7: front ends
    "commands": 7,
    "cli": 7,
    "mcp_server": 7,
    "agent": 7,
    "__main__": 7,
}

# (importing module, imported module) pairs still running up, with the reason; shrink, never grow
KNOWN: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _root_name(name: str) -> str:
    """``from infersight import X``: the module X, or the package root for a name it defines."""
    is_module = (SRC / f"{name}.py").exists() or (SRC / name).is_dir()
    return f"infersight.{name}" if is_module else "infersight"


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every infersight module the file imports (absolute imports; the package uses no relative ones)."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "infersight":  # from infersight import api (or __version__: the root)
                found += [(_root_name(alias.name), node.lineno) for alias in node.names]
            elif node.module.startswith("infersight."):
                found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("infersight")]
    return found


@functools.cache
def _edges() -> tuple[tuple[str, str, int], ...]:
    """Every (module, imported module, line) of the package: parsed once per test process (the
    source does not change during a run), shared by the checks below."""
    return tuple(
        (_module_name(path), imported, line)
        for path in sorted(SRC.rglob("*.py"))
        for imported, line in _imports(path)
    )


def test_every_package_has_a_floor() -> None:
    packages = {_package(_module_name(p)) for p in SRC.rglob("*.py")}
    assert packages <= set(FLOORS), f"give these packages a floor: {sorted(packages - set(FLOORS))}"


def test_imports_run_one_way() -> None:
    back = [
        f"{module}:{line} imports {imported} "
        f"(floor {FLOORS[_package(module)]} -> {FLOORS[_package(imported)]})"
        for module, imported, line in _edges()
        if _package(imported) != _package(module)
        and FLOORS[_package(imported)] > FLOORS[_package(module)]
        and (module, imported) not in KNOWN
    ]
    assert not back, "imports running back up the layers:\n" + "\n".join(back)


def test_known_exceptions_still_exist() -> None:
    """An exception that was fixed is taken off the list, so the list only ever shrinks."""
    edges = {(module, imported) for module, imported, _ in _edges()}
    stale = [pair for pair in KNOWN if pair not in edges]
    assert not stale, f"fixed, remove from KNOWN: {stale}"


def test_the_check_sees_a_back_arrow(tmp_path: Path) -> None:
    """The checker itself: a rules module importing a renderer is caught (so the test can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from infersight.render.sections import fmt_duration\n", encoding="utf-8")
    ((imported, _),) = _imports(bad)
    assert FLOORS[_package(imported)] > FLOORS["rules"]


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("analyses", "rules"),
        ("analyses", "theory"),
        ("rules", "render"),
        ("render", "agent"),
        ("host", "api"),
        ("theory", "overlap"),
    ],
)
def test_the_issue_arrows_are_gone(low: str, high: str) -> None:
    """The arrows named in the restructuring issue: none of them runs up any more."""
    offending = [
        (m, i) for m, i, _ in _edges() if _package(m) == low and _package(i) == high and (m, i) not in KNOWN
    ]
    assert not offending


def test_no_import_circle_between_packages() -> None:
    """Packages on one floor may import each other one way only (rules -> theory, never back too).

    The front ends are covered too: ``commands`` starts the agent and the MCP server, so neither
    of those may import ``commands`` back (the output checks they share are in ``output_paths``).
    """
    graph: dict[str, set[str]] = {}
    for module, imported, _ in _edges():
        if (module, imported) not in KNOWN and _package(module) != _package(imported):
            graph.setdefault(_package(module), set()).add(_package(imported))
    circles = sorted(
        f"{a} <-> {b}" for a, targets in graph.items() for b in targets if a < b and a in graph.get(b, set())
    )
    assert not circles, f"packages importing each other: {circles}"


def test_front_ends_do_not_import_the_cli() -> None:
    """The agent and the MCP server are started by the CLI and never reach back into it."""
    back = [
        f"{module}:{line} imports {imported}"
        for module, imported, line in _edges()
        if _package(module) in {"agent", "mcp_server"}
        and _package(imported) in {"commands", "cli", "__main__"}
    ]
    assert not back, "front ends importing the CLI:\n" + "\n".join(back)
