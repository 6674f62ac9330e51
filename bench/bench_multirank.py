#!/usr/bin/env python3
"""Multi-rank analysis: ranks read one after the other vs one worker process per rank.

Why: ``infersight analyze DIR`` on a directory of per-rank Kineto traces spends most of its time
parsing each rank; the parse holds the GIL, so ranks are read in a process pool
(``INFERSIGHT_WORKERS``, default one per core). This measures whether that pays off here: the
same command with ``INFERSIGHT_WORKERS=1`` (serial) and with the default, interleaved, each run
a fresh ``python -m infersight analyze DIR --json OUT`` subprocess (wall time incl. start-up,
peak RSS of the largest process and of the process tree), and checks both reports hold the same
figures.

Input: N copies of one real trace (default the vLLM H100 rank-0 trace, 13,508 kernels) with
``distributedInfo.rank`` = 0..N-1, written to a temporary directory. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench_vs_hta import prepare_inputs
from peak_rss import Measured, run_measured

DEFAULT_TRACE = Path(
    "/work/shared/data/kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
)


def analyze(folder: Path, out: Path, workers: str | None) -> Measured:
    """One ``infersight analyze`` run with INFERSIGHT_WORKERS set (None: the default)."""
    env_prefix = [] if workers is None else ["env", f"INFERSIGHT_WORKERS={workers}"]
    command = [*env_prefix, sys.executable, "-m", "infersight", "analyze", str(folder), "--json", str(out)]
    return run_measured(command)


def figures(report: Path) -> list[tuple[int | None, int, int, int]]:
    """(device, kernels, busy ns, wall ns) per device timeline of a JSON report."""
    profile = json.loads(report.read_text())["profile"]
    return [(d["device"], d["kernel_count"], d["busy_ns"], d["wall_ns"]) for d in profile["devices"]]


def main(argv: list[str] | None = None) -> int:
    """Build the rank folder, time both modes, print medians and the ratio; exit 1 on disagreement."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    parser.add_argument("--ranks", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="infersight-multirank-") as tmp:
        _, folder = prepare_inputs(args.trace, args.ranks, Path(tmp))
        runs: dict[str, list[Measured]] = {"serial": [], "parallel": []}
        reports = {mode: Path(tmp) / f"{mode}.json" for mode in runs}
        for _ in range(args.repeats):  # interleaved, so both modes see the same machine load
            runs["serial"].append(analyze(folder, reports["serial"], "1"))
            runs["parallel"].append(analyze(folder, reports["parallel"], None))
        same = figures(reports["serial"]) == figures(reports["parallel"])
        print(f"{args.ranks} ranks of {args.trace.name}; {os.cpu_count()} cores; {args.repeats} repeats")
        print(f"{'mode':<9} {'median s':>9} {'min s':>7} {'peak RSS MiB':>13} {'tree RSS MiB':>13}")
        medians = {}
        for mode, measured in runs.items():
            medians[mode] = statistics.median(m.seconds for m in measured)
            tree = [m.tree_peak_rss_bytes for m in measured if m.tree_peak_rss_bytes]
            print(
                f"{mode:<9} {medians[mode]:>9.2f} {min(m.seconds for m in measured):>7.2f} "
                f"{max(m.peak_rss_bytes for m in measured) / 2**20:>13.0f} "
                f"{(max(tree) / 2**20 if tree else float('nan')):>13.0f}"
            )
            print("          runs: " + ", ".join(f"{m.seconds:.2f}" for m in measured))
        ratio = medians["serial"] / medians["parallel"]
        print(f"serial / parallel = {ratio:.2f}x; figures identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
