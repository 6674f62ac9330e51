#!/usr/bin/env python3
"""Multi-rank analysis before and after per-rank digests (issue #8): caller memory and wall time.

- ``traces``: what ``infersight analyze DIR`` did before: every rank is read on the executor, its
  whole Trace is shipped back, and the caller profiles all of them (``api.load`` +
  ``api.report_from_traces``);
- ``digests``: what it does now (``api.analyze``): each task reads *and* digests its rank and only
  the digest comes back; the caller merges the digests.

Each run is a fresh subprocess doing the same work (analysis + JSON report). Measured: wall
seconds; the caller process's own peak RSS and the peak summed RSS of caller + workers (psutil,
sampled every 10 ms). Both paths' reports must agree (floats to 1e-9 relative), else exit 1.

Input: N copies of one real trace (default the vLLM H100 rank-0 trace, 13,508 kernels) with
``distributedInfo.rank`` = 0..N-1, written gzipped to a temporary directory. Not part of the tests.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

DEFAULT_TRACE = Path(
    "/work/shared/data/kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
)
SAMPLE_SECONDS = 0.01
RUN = {
    "traces": "report = api.report_from_traces(api.load([folder], executor=executor))",
    "digests": "report = api.analyze([folder], executor=executor)",
}
SCRIPT = (
    "import sys\n"
    "from infersight import api\n"
    "from infersight.render.json_report import render_json\n"
    "folder, out, executor = sys.argv[1:4]\n"
    "{run}\n"
    "open(out, 'w').write(render_json(report))\n"
)


def write_ranks(trace: Path, ranks: int, folder: Path) -> None:
    """N gzipped copies of the trace, rank set in its distributedInfo (text edit, no re-encode)."""
    with gzip.open(trace, "rb") as fh:
        text = fh.read()
    head = text.index(b'"distributedInfo"')
    for rank in range(ranks):
        ranked = text[:head] + re.sub(rb'"rank":\s*\d+', f'"rank": {rank}'.encode(), text[head:], count=1)
        with gzip.open(folder / f"rank-{rank}.pt.trace.json.gz", "wb", compresslevel=1) as out:
            out.write(ranked)


def measured_run(path: str, executor: str, folder: Path, out: Path) -> tuple[float, int, int]:
    """(wall seconds, caller peak RSS, caller + workers peak RSS) of one fresh run."""
    script = SCRIPT.format(run=RUN[path])
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", script, str(folder), str(out), executor])
    caller = psutil.Process(proc.pid)
    caller_peak = tree_peak = 0
    while proc.poll() is None:
        try:
            own = caller.memory_info().rss
            workers = 0
            for child in caller.children(recursive=True):
                try:
                    workers += child.memory_info().rss
                except psutil.Error:
                    continue
        except psutil.Error:
            break
        caller_peak, tree_peak = max(caller_peak, own), max(tree_peak, own + workers)
        time.sleep(SAMPLE_SECONDS)
    seconds = time.perf_counter() - start
    if proc.wait() != 0:
        raise RuntimeError(f"{path}/{executor} run failed")
    return seconds, caller_peak, tree_peak


def same(a: Any, b: Any) -> bool:
    """Equal JSON values, floats to 1e-9 relative."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9)
    return bool(a == b)


def main(argv: list[str] | None = None) -> int:
    """Write the rank folder, run every (path, executor) interleaved, print medians; 1 on disagreement."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    parser.add_argument("--ranks", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--executors", default="local,process")
    args = parser.parse_args(argv)
    executors = args.executors.split(",")
    with tempfile.TemporaryDirectory(prefix="infersight-digest-") as tmp:
        folder = Path(tmp) / "ranks"
        folder.mkdir()
        write_ranks(args.trace, args.ranks, folder)
        cases = [(path, executor) for executor in executors for path in RUN]
        runs: dict[tuple[str, str], list[tuple[float, int, int]]] = {case: [] for case in cases}
        for _ in range(args.repeats):  # interleaved: every case sees the same machine load
            for path, executor in cases:
                out = Path(tmp) / f"{path}-{executor}.json"
                runs[path, executor].append(measured_run(path, executor, folder, out))
        reports = {case: json.loads((Path(tmp) / f"{case[0]}-{case[1]}.json").read_text()) for case in cases}
        agree = all(same(reports[cases[0]]["profile"], r["profile"]) for r in reports.values())
    print(f"{args.ranks} ranks of {args.trace.name}; {os.cpu_count()} cores; {args.repeats} repeats")
    print(f"{'path':<8} {'executor':<8} {'median s':>9} {'caller peak MiB':>16} {'caller+workers MiB':>19}")
    for (path, executor), measured in runs.items():
        print(
            f"{path:<8} {executor:<8} {statistics.median(m[0] for m in measured):>9.2f} "
            f"{max(m[1] for m in measured) / 2**20:>16.0f} {max(m[2] for m in measured) / 2**20:>19.0f}"
        )
    print(f"reports agree: {agree}")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
