#!/usr/bin/env python3
"""Multi-rank analysis on each executor: serial, local processes, a Dask cluster, a Ray runtime.

Why: ``infersight analyze DIR`` on a directory of per-rank Kineto traces spends most of its time
parsing each rank; the parse holds the GIL, so ranks are read in parallel processes
(``--executor process``, the default, ``INFERSIGHT_WORKERS`` of them) or as tasks on a Dask
cluster (``--executor dask``). This measures, interleaved, each run a fresh
``python -m infersight analyze DIR --json OUT --executor E`` subprocess (wall time incl.
start-up, peak RSS of the largest process and of the process tree):

- ``serial``: ``--executor local``, one rank after the other in the CLI process;
- ``process``: the default pool;
- ``dask``: ``--executor dask``, which starts (and stops) its own LocalCluster each run;
- ``dask-join``: ``--executor dask --executor-address`` of a LocalCluster this script keeps up,
  i.e. the steady state of a long-lived cluster (its workers' RSS is not in the tree column);
- ``ray``: ``--executor ray``, which starts (and stops) its own local Ray runtime each run;

and checks every report holds the same figures.

Input: N copies of one real trace (default the vLLM H100 rank-0 trace, 13,508 kernels) with
``distributedInfo.rank`` = 0..N-1, written to a temporary directory. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_vs_hta import prepare_inputs
from peak_rss import Measured, run_measured

DEFAULT_TRACE = Path(
    "/work/shared/data/kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
)


def analyze(folder: Path, out: Path, executor_args: list[str]) -> Measured:
    """One ``infersight analyze`` run with the given ``--executor ...`` arguments."""
    command = [sys.executable, "-m", "infersight", "analyze", str(folder), "--json", str(out), *executor_args]
    return run_measured(command)


def start_dask_cluster(workers: int) -> Any:
    """A LocalCluster of single-threaded worker processes kept up for the dask-join runs."""
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )


def figures(report: Path) -> list[tuple[int | None, int, int, int]]:
    """(device, kernels, busy ns, wall ns) per device timeline of a JSON report."""
    profile = json.loads(report.read_text())["profile"]
    return [(d["device"], d["kernel_count"], d["busy_ns"], d["wall_ns"]) for d in profile["devices"]]


def main(argv: list[str] | None = None) -> int:
    """Build the rank folder, time every mode, print medians and ratios; exit 1 on disagreement."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    parser.add_argument("--ranks", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="infersight-multirank-") as tmp, contextlib.ExitStack() as stack:
        _, folder = prepare_inputs(args.trace, args.ranks, Path(tmp))
        modes = {"serial": ["--executor", "local"], "process": ["--executor", "process"]}
        if importlib.util.find_spec("distributed") is not None:
            cluster = stack.enter_context(start_dask_cluster(min(args.ranks, os.cpu_count() or 1)))
            modes["dask"] = ["--executor", "dask"]
            modes["dask-join"] = ["--executor", "dask", "--executor-address", cluster.scheduler_address]
        else:
            print("dask[distributed] not installed: dask modes skipped (pip install 'infersight[dask]')")
        if importlib.util.find_spec("ray") is not None:
            modes["ray"] = ["--executor", "ray"]
        else:
            print("ray not installed: ray mode skipped (pip install 'infersight[ray]')")
        runs: dict[str, list[Measured]] = {mode: [] for mode in modes}
        reports = {mode: Path(tmp) / f"{mode}.json" for mode in runs}
        for _ in range(args.repeats):  # interleaved, so every mode sees the same machine load
            for mode, executor_args in modes.items():
                runs[mode].append(analyze(folder, reports[mode], executor_args))
        same = all(figures(reports[mode]) == figures(reports["serial"]) for mode in modes)
        print(f"{args.ranks} ranks of {args.trace.name}; {os.cpu_count()} cores; {args.repeats} repeats")
        print(f"{'mode':<10} {'median s':>9} {'min s':>7} {'peak RSS MiB':>13} {'tree RSS MiB':>13}")
        medians = {}
        for mode, measured in runs.items():
            medians[mode] = statistics.median(m.seconds for m in measured)
            tree = [m.tree_peak_rss_bytes for m in measured if m.tree_peak_rss_bytes]
            print(
                f"{mode:<10} {medians[mode]:>9.2f} {min(m.seconds for m in measured):>7.2f} "
                f"{max(m.peak_rss_bytes for m in measured) / 2**20:>13.0f} "
                f"{(max(tree) / 2**20 if tree else float('nan')):>13.0f}"
            )
            print("           runs: " + ", ".join(f"{m.seconds:.2f}" for m in measured))
        others = [mode for mode in modes if mode != "serial"]
        ratios = ", ".join(f"serial / {mode} = {medians['serial'] / medians[mode]:.2f}x" for mode in others)
        print(f"{ratios}; figures identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
