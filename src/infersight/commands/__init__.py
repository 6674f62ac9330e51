"""Sub-commands of the ``infersight`` CLI beyond ``analyze``/``export``, one module each.

Every public module here defines ``register(app: typer.Typer) -> None`` that adds its
command(s). :func:`register_all` discovers them, so adding a command never means editing
``cli.py``. Modules are front ends: they parse options, call a pure function of an analysis
package, and hand the typed result to a renderer; they never compute.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

__all__ = ["register_all"]


def register_all(app: typer.Typer) -> None:
    """Import every public module of this package (sorted by name) and call its ``register``."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(app)
