#!/usr/bin/env python3
"""CLI start time: ``import infersight.cli``, ``infersight --help`` and ``analyze`` of a small trace.

Why: on a 1-2 MB trace the whole process is mostly start-up (imports, building the commands), so
the ">= 2x faster than HTA on small traces" target of issue 15 depends on it. Each case runs this
tree and, with ``--old-src``, an older ``src/`` (``git archive <commit> src``), interleaved
(old, new, old, new, ...), each from a bytecode-compiled copy as an installed wheel runs. Wall
time and CPU time (user + system of the child) are reported as medians; on a shared machine the
CPU time is the steadier figure. The ``analyze`` reports of both trees must be byte-identical.

Usage::

    python bench/bench_startup.py [--old-src /tmp/old/src] [--trace FILE] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_stream import compiled_copy

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT.parent / "shared" / "data" / "kineto" / "hta_trace_diff_control_a100_rank3.json.gz"


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one run; the run must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old-src", type=Path, help="an older infersight src/ to compare with")
    parser.add_argument("--trace", type=Path, default=SMALL, help="the small trace analysed")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]} | {os.cpu_count()} cores | load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="infersight-startup-") as tmp:
        work = Path(tmp)
        trees = {"new": compiled_copy(ROOT / "src", work / "src-new")}
        if args.old_src:
            trees = {"old": compiled_copy(args.old_src, work / "src-old"), **trees}
        cases = {
            "import infersight.cli": lambda name: ["-c", "import infersight.cli"],
            "infersight --help": lambda name: ["-m", "infersight", "--help"],
            f"analyze {args.trace.name}": lambda name: [
                "-m", "infersight", "analyze", str(args.trace), "--json", str(work / f"{name}.json")
            ],
        }  # fmt: skip
        for case, argv in cases.items():
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
            for _ in range(args.repeats):
                for name, src in trees.items():
                    env = {**os.environ, "PYTHONPATH": str(src)}
                    runs[name].append(measured([sys.executable, *argv(name)], env))
            for name, done in runs.items():
                wall = statistics.median(w for w, _ in done)
                cpu = statistics.median(c for _, c in done)
                print(f"  {case:<48} {name:>4}: wall {wall:6.2f} s  cpu {cpu:6.2f} s  (n={len(done)})")
        print(f"load at the end {os.getloadavg()[0]:.1f}")
        if args.old_src:
            same = (work / "new.json").read_bytes() == (work / "old.json").read_bytes()
            print(f"analyze reports byte-identical: {'yes' if same else 'NO'}")
            return 0 if same else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
