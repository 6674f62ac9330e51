"""The README's notebook example (examples/notebook.py, quoted verbatim there) runs and its tables
hold the report's numbers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tests.conftest import REPO_ROOT, shared_file

EXAMPLE = REPO_ROOT / "examples" / "notebook.py"


def test_the_notebook_example_runs_on_a_real_trace(capsys: object) -> None:
    trace = shared_file("kineto/hta_alexnet_a100.json.gz")
    code = EXAMPLE.read_text(encoding="utf-8")
    assert code.count('"trace.json.gz"') == 2  # the one placeholder the README reader replaces
    namespace: dict[str, object] = {}
    exec(compile(code.replace('"trace.json.gz"', repr(str(trace))), str(EXAMPLE), "exec"), namespace)

    report = namespace["report"]
    kernels = namespace["kernels"]
    attribution = namespace["attribution"]
    categories = namespace["categories"]
    assert isinstance(kernels, pd.DataFrame) and isinstance(attribution, pd.DataFrame)
    # the frames are the report's tables, not a second computation
    profile = report.profile  # type: ignore[attr-defined]
    assert list(kernels["name"]) == [k.name for k in profile.kernels[:10]]
    assert len(attribution) == len(profile.time_attribution) == 1  # one A100
    shares = attribution.iloc[0]
    assert 0 <= shares["shares.gpu"] <= 1 and 0 <= shares["shares.host"] <= 1
    assert isinstance(categories, pd.DataFrame)
    total_gpu_ns = sum(k.total_ns for k in profile.kernels)
    assert int(categories["total_ns"].sum()) == total_gpu_ns  # categories partition the kernel time
    # independent: the kernel events' durations read straight from the trace file
    import gzip
    import json

    events = json.loads(gzip.decompress(trace.read_bytes()))["traceEvents"]
    durations = [e["dur"] for e in events if e.get("ph") == "X" and e.get("cat") == "kernel"]
    assert abs(total_gpu_ns - sum(durations) * 1000) <= len(durations)  # µs -> ns: <= 1 ns per kernel
    assert namespace["host"].verdict  # type: ignore[attr-defined]
    assert namespace["roof"].estimate.ttft_s > 0  # type: ignore[attr-defined]


def test_empty_tables_are_empty_frames() -> None:
    from infersight.analysis_report import _frame

    assert _frame([]).empty
    assert Path(EXAMPLE).exists()
