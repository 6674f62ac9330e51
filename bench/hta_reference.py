#!/usr/bin/env python3
"""Regenerate ``tests/agreement/hta_reference.json``: HTA's figures on every real Kineto trace.

Why a fixture: Holistic Trace Analysis pulls in Jupyter, plotly and networkx, so it is not a
test dependency. This script runs HTA (in its own virtual environment, see bench/README.md) on
each trace of ``../shared/data/kineto`` (a per-rank folder counts as one trace) and stores, per
rank, what the agreement test (``tests/agreement/test_hta_agreement.py``) compares:

* ``get_temporal_breakdown``: idle, compute, non-compute and kernel (window) time in µs;
* ``get_gpu_kernel_breakdown`` with every kernel kept (``duration_ratio=1``, no top-N cut):
  per full kernel name, the summed duration in µs (computation and communication kernels);
* the number of GPU events HTA analyses (``stream != -1``: kernels, memcpy, memset) and of
  ``ProfilerStep`` annotations (with >= 2 steps HTA drops the last step's kernels, see the test).

HTA runs with ``HTA_DISABLE_NS_ROUNDING=1``: by default it rounds every event of a
ns-resolution trace to whole µs (start up, end down), which shortens each 1-7 µs kernel by up to
1 µs; the rounding is HTA's, not a disagreement about the trace (see bench/README.md).

Usage (from the repository root)::

    /work/venv-hta/bin/python bench/hta_reference.py [--data ../shared/data/kineto] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kineto"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "tests" / "agreement" / "hta_reference.json"


def trace_inputs(data: Path) -> list[Path]:
    """Every trace file, and every folder of per-rank files, under ``data`` (sorted)."""
    files = sorted(p for p in data.iterdir() if p.is_file() and p.name.endswith((".json", ".json.gz")))
    folders = sorted(p for p in data.iterdir() if p.is_dir())
    return [*files, *folders]


def hta_figures(trace: Path) -> dict[str, Any]:
    """HTA's figures for one trace (file or per-rank folder), or {"error": ...} if HTA fails."""
    from hta.analyzers.breakdown_analysis import BreakdownAnalysis
    from hta.trace_analysis import TraceAnalysis
    from hta.utils.utils import get_kernel_type

    with tempfile.TemporaryDirectory(prefix="hta-ref-") as tmp:
        if trace.is_dir():
            for f in trace.iterdir():
                shutil.copyfile(f, Path(tmp) / f.name)
        else:
            shutil.copyfile(trace, Path(tmp) / trace.name)
        try:
            analysis = TraceAnalysis(trace_dir=tmp)
            temporal = analysis.get_temporal_breakdown(visualize=False)
            _, per_kernel = BreakdownAnalysis.get_gpu_kernel_breakdown(
                analysis.t, visualize=False, duration_ratio=1.0, num_kernels=10**9
            )
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
        symbols = analysis.t.symbol_table.get_sym_table()
        steps = sum(1 for s in symbols if "ProfilerStep" in str(s))
        ranks: dict[str, Any] = {}
        for _, row in temporal.iterrows():
            rank = int(row["rank"])
            frame = analysis.t.get_trace(rank)
            gpu = frame[frame["stream"].ne(-1)]
            types = gpu["name"].map(lambda i: get_kernel_type(symbols[i]))
            names = per_kernel[per_kernel["rank"] == rank]
            ranks[str(rank)] = {
                "idle_us": float(row["idle_time(us)"]),
                "compute_us": float(row["compute_time(us)"]),
                "non_compute_us": float(row["non_compute_time(us)"]),
                "kernel_time_us": float(row["kernel_time(us)"]),
                "gpu_events": len(gpu),
                "gpu_events_by_type": {str(k): int(v) for k, v in types.value_counts().items()},
                "kernel_sum_us": {
                    str(n): float(s) for n, s in zip(names["name"], names["sum (us)"], strict=True)
                },
            }
        return {"profiler_steps": steps, "ranks": ranks}


def main(argv: list[str] | None = None) -> int:
    """Run HTA on every trace and write the JSON fixture."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    os.environ["HTA_DISABLE_NS_ROUNDING"] = "1"
    logging.disable(logging.WARNING)
    import hta

    figures = {p.name: hta_figures(p) for p in trace_inputs(args.data)}
    document = {
        "generator": "bench/hta_reference.py",
        "hta_version": getattr(hta, "__version__", "0.5.0"),
        "hta_disable_ns_rounding": True,
        "traces": figures,
    }
    args.out.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    for name, entry in figures.items():
        print(f"{name}: {entry.get('error') or str(len(entry['ranks'])) + ' rank(s)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
