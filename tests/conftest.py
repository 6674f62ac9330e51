"""Shared test fixtures: where the real traces live, and a per-process cache of what they load to.

Reading a real trace costs seconds (the vLLM TP4 Kineto file: ~2 s to load, ~2.5 s more to
profile), and dozens of test modules read the same few files. :func:`shared_traces` and
:func:`shared_report` read each (file, options) once per test process and hand every caller
its own deep copy, so a test that changes what it got cannot change what the next test sees.
Tests about reading itself (readers, executors, error paths) keep calling the readers directly.
"""

from __future__ import annotations

import copy
import functools
import gc
import gzip
import importlib
import json
import os
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from infersight.analyses.results import AnalysisReport
    from infersight.model import Trace

T = TypeVar("T")

# The CLI sizes its tables to $COLUMNS when set, else to a fixed width when piped. A developer's
# shell may export COLUMNS and pytest-xdist workers get COLUMNS=80: drop it so every test sees the
# piped output, as CI does (a test about COLUMNS sets it with monkeypatch).
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

# Hypothesis profiles. Most properties are cheap per example and keep the counts their own
# `@settings` give; the few whose every example reads a whole trace file ask
# :func:`trace_examples` for their count: the full count under the "ci" profile (CI is set, as
# .ci/run does), a smaller one under "quick" (a developer's default run).
settings.register_profile("ci", deadline=None)
settings.register_profile("quick", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "quick")


def trace_examples(ci: int, quick: int) -> int:
    """``max_examples`` of a property whose every example reads a whole trace: ``ci`` in CI
    (the "ci" hypothesis profile), ``quick`` otherwise."""
    return ci if settings.get_current_profile_name() == "ci" else quick


REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("INFERSIGHT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
NSYS_DIR = SHARED_DATA / "nsys"
KINETO_DIR = SHARED_DATA / "kineto"


def shared_file(relative: str) -> Path:
    """A file under ../shared/data; skips the test when the folder is absent (outside CI)."""
    path = SHARED_DATA / relative
    if not SHARED_DATA.exists():
        if os.environ.get("CI"):
            pytest.fail(f"shared data folder missing in CI: {SHARED_DATA}")
        pytest.skip(f"shared data not present at {SHARED_DATA}")
    assert path.exists(), f"missing shared test file {path}"
    return path


def require_extra(module: str, extra: str) -> ModuleType:
    """Import an optional dependency of the ``test`` extra: skip without it, but fail in CI, where
    ``pip install -e '.[test]'`` must have installed it (a skip there would hide a broken install)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} missing in CI: the test extra must install it")
        pytest.skip(f"{module} not installed: pip install 'infersight[{extra}]'", allow_module_level=True)


def _kept(value: T) -> T:
    """A cached value, moved out of the garbage collector's sight (``gc.freeze``): the caches hold
    millions of objects for the whole run (a parsed trace document), and every full collection
    would walk them all again. Garbage is collected first, so none of it is kept for good."""
    gc.collect()
    gc.freeze()
    return value


@functools.cache
def _loaded(relative: str, cpu_ops_as_kernels: bool) -> tuple[Trace, ...]:
    from infersight import api

    path = shared_file(relative)  # a skip/fail raises here and is not cached
    return _kept(tuple(api.load([path], cpu_ops_as_kernels=cpu_ops_as_kernels, executor="local")))


@functools.cache
def _report(relative: str, cpu_ops_as_kernels: bool, window_nvtx: str | None) -> AnalysisReport:
    from infersight import api

    traces = list(copy.deepcopy(_loaded(relative, cpu_ops_as_kernels)))
    return _kept(api.report_from_traces(traces, window_nvtx=window_nvtx))


def shared_traces(relative: str, *, cpu_ops_as_kernels: bool = False) -> list[Trace]:
    """``api.load`` of a shared file (read in this process, once per test run): a fresh deep copy."""
    return list(copy.deepcopy(_loaded(relative, cpu_ops_as_kernels)))


def shared_trace(relative: str, *, cpu_ops_as_kernels: bool = False) -> Trace:
    """The one trace of a single shared trace file (see :func:`shared_traces`)."""
    [trace] = shared_traces(relative, cpu_ops_as_kernels=cpu_ops_as_kernels)
    return trace


def shared_report(
    relative: str, *, cpu_ops_as_kernels: bool = False, window_nvtx: str | None = None
) -> AnalysisReport:
    """``api.report_from_traces`` of a shared file (computed once per test run): a fresh deep copy."""
    return _report(relative, cpu_ops_as_kernels, window_nvtx).model_copy(deep=True)


class _ReadOnly(Exception):
    """Raised by a change to a :func:`plain_json` document (shared by every test of the process)."""


def _refuse(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise _ReadOnly(
        f"plain_json documents are shared by every test of the process: copy.deepcopy it before "
        f"changing it ({type(self).__name__})"
    )


class FrozenList(list[Any]):
    """A list that refuses changes; ``copy.deepcopy`` gives a plain, changeable list."""

    append = extend = insert = pop = remove = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __deepcopy__(self, memo: dict[int, object]) -> list[Any]:
        return [copy.deepcopy(value, memo) for value in self]

    def __copy__(self) -> list[Any]:
        return list(self)


class FrozenDict(dict[str, Any]):
    """A dict that refuses changes; ``copy.deepcopy`` gives a plain, changeable dict."""

    pop = popitem = clear = update = setdefault = _refuse
    __setitem__ = __delitem__ = __ior__ = _refuse

    def __deepcopy__(self, memo: dict[int, object]) -> dict[str, Any]:
        return {key: copy.deepcopy(value, memo) for key, value in self.items()}

    def __copy__(self) -> dict[str, Any]:
        return dict(self)


def _freeze_top(value: Any) -> Any:
    """The document and the lists it holds (``traceEvents``) frozen; every JSON object is frozen
    as it is parsed. Lists inside events (``args`` dims) stay plain: freezing each would cost a
    third more parse time for little safety."""
    if type(value) is list:
        return FrozenList(value)
    if isinstance(value, dict):
        return FrozenDict((k, FrozenList(v) if type(v) is list else v) for k, v in value.items())
    return value


@functools.cache
def _plain_json(path: Path, exact_decimals: bool) -> Any:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    parse_float = Decimal if exact_decimals else None
    return _kept(_freeze_top(json.loads(raw, parse_float=parse_float, object_pairs_hook=FrozenDict)))


def plain_json(path: Path, *, exact_decimals: bool = False) -> Any:
    """A (gzipped) JSON trace parsed by the standard library alone, for the independent
    cross-checks: parsed once per test process and shared, so it is read-only (a change to the
    document, its event list or any object raises; ``copy.deepcopy`` it first).
    ``exact_decimals`` parses floats as :class:`~decimal.Decimal`."""
    return _plain_json(Path(path).resolve(), exact_decimals)


def plain_json_events(path: Path, *, exact_decimals: bool = False) -> list[dict[str, Any]]:
    """The ``traceEvents`` of :func:`plain_json` (read-only)."""
    return plain_json(path, exact_decimals=exact_decimals)["traceEvents"]  # type: ignore[no-any-return]


# The two HolisticTraceAnalysis recommender-training traces (8,568 and 9,876 kernels, the largest
# Kineto files) make the parametrised cross-checks against plain JSON the slowest cases of the
# suite. Those cases run in CI (`-m ""`); the quick run keeps the same checks on every other trace
# (the vLLM TP4 trace included). Tests that need these files themselves (diff) are not affected.
LARGE_TRAINING_TRACES = ("hta_trace_diff_control_a100_rank3", "hta_trace_diff_test_v100_rank1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the parametrised cases over :data:`LARGE_TRAINING_TRACES` slow."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            continue
        values = " ".join(map(str, callspec.params.values()))
        if any(name in values for name in LARGE_TRAINING_TRACES):
            item.add_marker(pytest.mark.slow)
