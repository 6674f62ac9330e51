#!/usr/bin/env python3
"""Big Kineto traces: infersight (this tree, and optionally an older ``src/``) vs HTA, whole processes.

Why: the streaming reader's targets are about whole runs on big files: wall time and peak RSS
of ``infersight analyze FILE --json OUT`` next to HTA's load + temporal + idle + kernel
breakdown (``traceinsight``, HTA's current PyPI name, in its own venv), measured in the same run
so the ratio holds on a shared machine. Every tool runs in its own subprocess started by the
fresh launcher of ``peak_rss.py`` (true peak RSS of the largest process; the summed RSS of the
process tree when psutil is installed), ``--repeats`` times, interleaved (A, B, C, A, B, C, ...).

``--old-src DIR`` adds a run of another infersight source tree (``git archive <commit> src``):
the reports of both must be byte-identical, which checks "every figure identical before and
after". Input files are made by ``replicate_kineto.py`` (``--copies N`` of a real trace).

Usage::

    python bench/bench_stream.py FILE [FILE ...] [--old-src /tmp/old/src]
        [--hta-python /tmp/venv-ti/bin/python]
        [--repeats 3] [--source]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from peak_rss import Measured, run_measured

ROOT = Path(__file__).resolve().parent.parent
HTA_SNIPPET = (
    "import logging, sys\n"
    "logging.disable(logging.CRITICAL)\n"
    "from hta.trace_analysis import TraceAnalysis\n"
    "a = TraceAnalysis(trace_dir=sys.argv[1])\n"
    "t = a.get_temporal_breakdown(visualize=False)\n"
    "a.get_idle_time_breakdown(ranks=a.t.get_ranks(), visualize=False)\n"
    "a.get_gpu_kernel_breakdown(visualize=False)\n"
    "print(t.to_string())\n"
)


def infersight_command(src: Path, trace: Path, out: Path) -> list[str]:
    """``python -m infersight analyze`` of ``src``'s code (PYTHONPATH set through ``env``)."""
    return [
        "env",
        f"PYTHONPATH={src}",
        sys.executable,
        "-m",
        "infersight",
        "analyze",
        str(trace),
        "--json",
        str(out),
    ]


def compiled_copy(src: Path, dest: Path) -> Path:
    """A copy of the ``src`` tree with its bytecode compiled (``__pycache__`` beside the modules).

    Why: HTA runs from its venv's compiled site-packages, as an installed infersight wheel would;
    a checkout run with ``PYTHONDONTWRITEBYTECODE=1`` (as on the shared VM) compiles every
    infersight module from source on every start, ~0.2-0.3 s of a small trace's run. The copy
    leaves the checkout untouched. ``--source`` measures the checkout as it is.
    """
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dest)], check=True)
    return dest


def hta_command(python: str, trace_dir: Path) -> list[str]:
    return [python, "-c", HTA_SNIPPET, str(trace_dir)]


def fmt(runs: list[Measured]) -> str:
    seconds = statistics.median(r.seconds for r in runs)
    peak = max(r.peak_rss_bytes for r in runs) / 2**20
    tree = [r.tree_peak_rss_bytes for r in runs if r.tree_peak_rss_bytes]
    tree_text = f" / tree {max(tree) / 2**20:,.0f}" if tree else ""
    times = ", ".join(f"{r.seconds:.2f}" for r in runs)
    return f"{seconds:8.2f} s (runs {times})  peak {peak:,.0f} MiB{tree_text}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("traces", type=Path, nargs="+")
    parser.add_argument("--old-src", type=Path, help="an older infersight src/ to compare with")
    parser.add_argument("--hta-python", help="python of a venv with traceinsight (HTA) installed")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--source", action="store_true", help="run infersight from source (no compiled bytecode)"
    )
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]} | {os.cpu_count()} cores | load {os.getloadavg()[0]:.1f}")
    failed = False
    with tempfile.TemporaryDirectory(prefix="infersight-stream-") as tmp:
        work = Path(tmp)
        new_src, old_src = ROOT / "src", args.old_src
        if not args.source:
            new_src = compiled_copy(new_src, work / "src-new")
            old_src = compiled_copy(old_src, work / "src-old") if old_src else None
        for trace in args.traces:
            print(f"\n{trace} ({trace.stat().st_size / 2**20:,.1f} MiB on disk)")
            hta_dir = work / f"hta-{trace.stem}"
            hta_dir.mkdir()
            (hta_dir / trace.name).symlink_to(trace.resolve())
            tools: dict[str, list[str]] = {
                "infersight": infersight_command(new_src, trace, work / "new.json")
            }
            if old_src:
                tools["infersight (old src)"] = infersight_command(old_src, trace, work / "old.json")
            if args.hta_python:
                tools["HTA (traceinsight)"] = hta_command(args.hta_python, hta_dir)
            runs: dict[str, list[Measured]] = {name: [] for name in tools}
            for _ in range(args.repeats):
                for name, command in tools.items():
                    runs[name].append(run_measured(command))
                    print(f"    ran {name}: {fmt(runs[name][-1:])}", flush=True)
            for name in tools:
                print(f"  {name:<22} {fmt(runs[name])}")
            ours = statistics.median(r.seconds for r in runs["infersight"])
            for name in tools:
                if name != "infersight":
                    theirs = statistics.median(r.seconds for r in runs[name])
                    print(f"  {name} / infersight: {theirs / ours:.2f}x")
            if args.old_src:
                same = (work / "new.json").read_bytes() == (work / "old.json").read_bytes()
                print(f"  reports byte-identical to the old src: {'yes' if same else 'NO'}")
                failed |= not same
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
