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
import hashlib
import importlib
import json
import os
import pickle
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import numpy as np
import pandas as pd
import pytest
from hypothesis import settings

# pytest imports this file as the plugin module ``conftest``; the test modules import it as
# ``tests.conftest``. Without this alias those are two module objects with two sets of caches:
# each shared trace read twice per process, and what the fixtures below fill never seen by tests.
if __name__ == "conftest":
    sys.modules.setdefault("tests.conftest", sys.modules[__name__])

# The cyclic garbage collector runs every 700 container allocations by default; tests build
# millions (parsed JSON documents, report models, rich renderables) and each run walks the young
# objects again. Collecting every 50,000 cut the quick run's CPU time by ~5% (user 231-236 s ->
# 223-224 s, two runs each, same host); no test depends on when garbage is collected.
gc.set_threshold(50_000, 20, 20)

if TYPE_CHECKING:
    from infersight.analyses.results import AnalysisReport
    from infersight.model import Trace

T = TypeVar("T")

# The CLI sizes its tables to $COLUMNS when set, else to a fixed width when piped. A developer's
# shell may export COLUMNS and pytest-xdist workers get COLUMNS=80: drop it so every test sees the
# piped output, as CI does (a test about COLUMNS sets it with monkeypatch).
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

# Hypothesis profiles: every property runs its full number of examples under "ci" (CI is set, as
# .ci/run does) and about a quarter of it under "quick" (a developer's default run): the default
# 100 becomes 25, and a property that sets its own count asks :func:`examples` for it.
QUICK_SHARE = 4
settings.register_profile("ci", deadline=None)
settings.register_profile("quick", deadline=None, max_examples=100 // QUICK_SHARE)
settings.load_profile("ci" if os.environ.get("CI") else "quick")


def examples(ci: int, quick: int | None = None) -> int:
    """``max_examples`` of a property: ``ci`` in CI (the "ci" hypothesis profile), else ``quick``
    (default: a quarter of ``ci``; properties whose every example reads a whole trace pick theirs)."""
    if settings.get_current_profile_name() == "ci":
        return ci
    return quick if quick is not None else max(1, ci // QUICK_SHARE)


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


def assert_tables_equal(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Two trace tables are exactly equal: columns, dtypes, index, and every value (for a
    categorical column: its categories in order, their dtype, and the codes).

    As strict as ``pd.testing.assert_frame_equal(..., check_exact=True)`` on these tables, but
    whole-column numpy compares: pandas boxes every element of a categorical column to compare
    it (~1 s per 100k rows), and the readers' equivalence tests compare millions of rows.
    """
    assert list(got.columns) == list(expected.columns), (list(got.columns), list(expected.columns))
    assert got.index.equals(expected.index) and len(got) == len(expected), (got.index, expected.index)
    for column in got.columns:
        left, right = got[column], expected[column]
        assert str(left.dtype) == str(right.dtype), (column, left.dtype, right.dtype)
        if isinstance(left.dtype, pd.CategoricalDtype):
            assert left.cat.categories.dtype == right.cat.categories.dtype, column
            assert list(left.cat.categories) == list(right.cat.categories), column
            left_values, right_values = left.cat.codes.to_numpy(), right.cat.codes.to_numpy()
        else:
            left_values, right_values = left.to_numpy(), right.to_numpy()
        same = np.array_equal(left_values, right_values, equal_nan=left_values.dtype.kind == "f")
        if not same:
            differ = np.flatnonzero(left_values != right_values)
            row = int(differ[0]) if len(differ) else -1
            raise AssertionError(
                f"column {column!r} differs first at row {row}: {left.iloc[row]!r} != {right.iloc[row]!r}"
            )


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


# The test processes of one run (pytest-xdist workers) share what _loaded and _report compute:
# the first process that needs a trace or a report pickles it into the run's temporary folder
# (kept and rotated by pytest like tmp_path), the others unpickle it (~4 ms for the vLLM trace,
# instead of a 1.2 s read). Parsed JSON documents (plain_json) are not shared: unpickling one
# costs as much as parsing it.
_RUN_FOLDER: list[Path] = []


@pytest.fixture(autouse=True, scope="session")
def _share_across_test_processes(tmp_path_factory: pytest.TempPathFactory) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's basetemp is a folder of the run's
        _RUN_FOLDER[:] = [tmp_path_factory.getbasetemp().parent / "shared-cache"]


def _run_shared(key: str, compute: Callable[[], T]) -> T:
    """``compute()``, or what another test process of this run computed for ``key``."""
    if not _RUN_FOLDER:
        return compute()
    path = _RUN_FOLDER[0] / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.pickle"
    try:
        with path.open("rb") as handle:
            return cast(T, pickle.load(handle))
    except FileNotFoundError:
        pass
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(partial, path)  # whole or absent, never half-written, for the other processes
    return value


@functools.cache
def _loaded(relative: str, cpu_ops_as_kernels: bool, compact_ranges: bool = False) -> tuple[Trace, ...]:
    from infersight import api

    path = shared_file(relative)  # a skip/fail raises here and is not cached

    def read() -> tuple[Trace, ...]:
        return tuple(
            api.load(
                [path], cpu_ops_as_kernels=cpu_ops_as_kernels, executor="local", compact_ranges=compact_ranges
            )
        )

    return _kept(_run_shared(f"load {relative} {cpu_ops_as_kernels} {compact_ranges}", read))


@functools.cache
def _report(relative: str, cpu_ops_as_kernels: bool, window_nvtx: str | None) -> AnalysisReport:
    from infersight import api

    def analyse() -> AnalysisReport:
        traces = list(copy.deepcopy(_loaded(relative, cpu_ops_as_kernels, False)))
        return api.report_from_traces(traces, window_nvtx=window_nvtx)

    return _kept(_run_shared(f"report {relative} {cpu_ops_as_kernels} {window_nvtx}", analyse))


def shared_traces(
    relative: str, *, cpu_ops_as_kernels: bool = False, compact_ranges: bool = False
) -> list[Trace]:
    """``api.load`` of a shared file (read in this process, once per test run): a fresh deep copy."""
    return list(copy.deepcopy(_loaded(relative, cpu_ops_as_kernels, compact_ranges)))


def shared_trace(relative: str, *, cpu_ops_as_kernels: bool = False) -> Trace:
    """The one trace of a single shared trace file (see :func:`shared_traces`)."""
    [trace] = shared_traces(relative, cpu_ops_as_kernels=cpu_ops_as_kernels)
    return trace


@pytest.fixture(autouse=True)
def _api_reads_shared_files_from_the_cache(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process CLI, MCP-tool and API runs read the shared trace files from the cache.

    A command run on a shared file (the vLLM trace: ~1 s a read) gets the same traces
    ``api.load`` gives (:func:`shared_traces`, a fresh deep copy), so the many tests that run a
    command on the same file share one read per test run. Only whole single files under
    ``../shared/data`` with no executor address are served this way; directories, copies in
    ``tmp_path`` and everything else go to the real reader. The readers themselves are tested
    directly; a test about how a command reads (progress, executors) is marked
    ``reads_shared_files`` and reads the files itself.
    """
    if request.node.get_closest_marker("reads_shared_files"):
        return
    from infersight.api import _core

    read = _core.load

    def load(paths: Any, **options: Any) -> Any:
        relative = [_shared_relative(path) for path in paths]
        if not relative or None in relative or options.get("executor_address") is not None:
            return read(paths, **options)
        cpu_ops = bool(options.get("cpu_ops_as_kernels", False))
        compact = bool(options.get("compact_ranges", False))
        return [
            t
            for name in relative
            for t in shared_traces(
                str(name),
                cpu_ops_as_kernels=cpu_ops,
                # only nsys exports have compact names: one cached read of the others
                compact_ranges=compact and str(name).endswith((".sqlite", ".nsys-rep")),
            )
        ]

    monkeypatch.setattr(_core, "load", load)


def _shared_relative(path: object) -> str | None:
    """``path`` relative to the shared data folder when it is a file there, else None."""
    try:
        resolved = Path(str(path)).resolve()
        relative = resolved.relative_to(SHARED_DATA.resolve())
    except (OSError, RuntimeError, ValueError):  # RuntimeError: a symbolic link loop
        return None
    return relative.as_posix() if resolved.is_file() else None


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


# Cross-checks that read every shared Kineto trace again through a second path (streamed vs whole
# read, msgspec structs vs orjson, the reader or the attribution vs plain JSON) re-read each file, so
# the files above QUICK_SWEEP_BYTES compressed (the vLLM TP4, SGLang MI300X and V100
# ns-resolution traces, besides the two above) are swept in CI only; the quick run sweeps the
# other ten, which hold every layout and writer the readers distinguish. Tests that use these
# files for what they show (phases, categories, agreement with HTA) still run on them.
QUICK_SWEEP_BYTES = 1 << 20


def trace_sweep(names: list[str], folder: Path = KINETO_DIR) -> list[Any]:
    """``names`` (files under ``folder``) as parameters of a re-read sweep: the ones larger than
    :data:`QUICK_SWEEP_BYTES` marked slow (run in CI, not in the quick run)."""
    return [
        pytest.param(name, marks=pytest.mark.slow) if _size(folder / name) > QUICK_SWEEP_BYTES else name
        for name in names
    ]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # absent shared data: the test itself skips (or fails in CI) via shared_file


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the parametrised cases over :data:`LARGE_TRAINING_TRACES` slow."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            continue
        values = " ".join(map(str, callspec.params.values()))
        if any(name in values for name in LARGE_TRAINING_TRACES):
            item.add_marker(pytest.mark.slow)
