#!/usr/bin/env python3
"""infersight vs Holistic Trace Analysis (HTA) on the same real Kineto traces, side by side.

Why: HTA is the reference open-source analyser of PyTorch-profiler traces, so it is the honest
yardstick for both speed and numbers. Both tools get the same work: read the trace(s) and
produce a global time breakdown. For infersight that is ``infersight.api.analyze([path])``
(load + global profile + rules); for HTA it is ``TraceAnalysis(trace_dir=...)`` (load) +
``get_temporal_breakdown()`` + ``get_idle_time_breakdown()`` + ``get_gpu_kernel_breakdown()``.

Two cases: (1) one trace (default: the vLLM 70B-class TP4 H100 rank-0 trace, 13,508 kernels);
(2) a directory of 8 ranks made by writing 8 copies of that trace into a temp directory, each with
its own ``distributedInfo.rank`` (HTA keys ranks by it). The original file is only read.

Timing: both tools in this one process, interleaved (infersight, HTA, infersight, ...) so drift
hits both alike; the table shows the median (and min) of ``--repeats`` runs, and the ratio
HTA / infersight. Peak memory: each tool runs once more in its own subprocess, started by a
fresh launcher (``peak_rss.py``: a child of this big process would inherit its high-water
mark); the peak RSS is ``ru_maxrss`` from ``os.wait4`` (largest single process) and, when
psutil is installed, the peak of the summed RSS of the process tree sampled every 20 ms (HTA
parses ranks in a multiprocessing pool, whose workers a single-process figure would miss).

Sanity check: the figures both tools compute for the same trace (kernel count, idle ratio of the
temporal breakdown) are printed next to each other. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peak_rss import run_measured

DEFAULT_TRACE = Path(
    "/work/shared/data/kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
)
DEFAULT_RANKS = 8
DEFAULT_REPEATS = 5
TOOLS = ("infersight", "hta")


@dataclass
class Figures:
    """What one tool says about the trace(s): per rank kernel count and idle ratio."""

    kernel_count: dict[int, int]
    idle_ratio: dict[int, float]


@dataclass
class Memory:
    """Peak memory of one tool run in a subprocess (bytes)."""

    max_single_process: int
    max_tree_sum: int | None


# ---------------------------------------------------------------- inputs


def prepare_inputs(trace: Path, ranks: int, workdir: Path) -> tuple[Path, Path]:
    """A one-trace directory and an N-rank directory of copies with distinct ranks (temp files only)."""
    single = workdir / "single"
    single.mkdir()
    shutil.copyfile(trace, single / trace.name)
    multi = workdir / f"ranks{ranks}"
    multi.mkdir()
    document = read_trace_json(trace)
    for rank in range(ranks):
        info = dict(document.get("distributedInfo") or {})
        info.update(rank=rank, world_size=max(ranks, int(info.get("world_size", 0) or 0)))
        document["distributedInfo"] = info
        write_trace_json(document, multi / f"rank-{rank}.pt.trace.json.gz")
    return single, multi


def read_trace_json(path: Path) -> dict[str, Any]:
    """Load a (gzipped) Chrome-trace JSON document."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def write_trace_json(document: dict[str, Any], path: Path) -> None:
    """Write a gzipped Chrome-trace JSON document (fast compression: these are scratch copies)."""
    with gzip.open(path, "wt", compresslevel=1) as fh:
        json.dump(document, fh)


# ---------------------------------------------------------------- the two tools


def run_infersight(target: Path) -> Figures:
    """Full infersight analysis (load + profile + rules) of a file or directory."""
    from infersight.api import analyze

    report = analyze([target])
    kernels: dict[int, int] = {}
    idle: dict[int, float] = {}
    for index, device in enumerate(report.profile.devices):
        rank = device.rank if device.rank is not None else index
        kernels[rank] = kernels.get(rank, 0) + device.kernel_count
        idle[rank] = device.idle_ratio
    return Figures(kernel_count=kernels, idle_ratio=idle)


def run_hta(trace_dir: Path) -> Figures:
    """HTA load + temporal, idle-time and kernel breakdowns; kernel counts from HTA's parsed frames."""
    from hta.trace_analysis import TraceAnalysis

    quiet_hta_logging()
    analysis = TraceAnalysis(trace_dir=str(trace_dir))
    temporal = analysis.get_temporal_breakdown(visualize=False)
    analysis.get_idle_time_breakdown(visualize=False)
    analysis.get_gpu_kernel_breakdown(visualize=False)
    kernel_cat = analysis.t.symbol_table.get_sym_id_map().get("kernel")
    kernels = {
        int(rank): int((analysis.t.get_trace(rank)["cat"] == kernel_cat).sum())
        for rank in analysis.t.get_ranks()
    }
    idle = {
        int(r): float(p) / 100.0 for r, p in zip(temporal["rank"], temporal["idle_time_pctg"], strict=True)
    }
    return Figures(kernel_count=kernels, idle_ratio=idle)


def quiet_hta_logging() -> None:
    """HTA logs every parse step at INFO; keep the benchmark's table readable."""
    for name in list(logging.root.manager.loggerDict):
        if name == "hta" or name.startswith("hta."):
            logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("hta").setLevel(logging.ERROR)


def run_tool(tool: str, target: Path) -> Figures:
    """Dispatch by tool name; infersight gets the file (single) or the directory, HTA the directory."""
    if tool == "infersight":
        files = list(target.iterdir()) if target.is_dir() else [target]
        return run_infersight(files[0] if len(files) == 1 else target)
    return run_hta(target if target.is_dir() else target.parent)


# ---------------------------------------------------------------- measuring


def time_interleaved(
    target: Path, repeats: int, tools: list[str]
) -> tuple[dict[str, list[float]], dict[str, Figures]]:
    """Run the tools ``repeats`` times, alternating, in this process; seconds per run per tool."""
    times: dict[str, list[float]] = {tool: [] for tool in tools}
    figures: dict[str, Figures] = {}
    for _ in range(repeats):
        for tool in tools:
            started = time.perf_counter()
            figures[tool] = run_tool(tool, target)
            times[tool].append(time.perf_counter() - started)
    return times, figures


def measure_memory(tool: str, target: Path) -> Memory:
    """Peak RSS of one run of ``tool`` in a fresh subprocess (single process and whole tree)."""
    measured = run_measured(
        [sys.executable, str(Path(__file__).resolve()), "--worker", tool, "--path", str(target)]
    )
    return Memory(max_single_process=measured.peak_rss_bytes, max_tree_sum=measured.tree_peak_rss_bytes)


# ---------------------------------------------------------------- reporting


def mib(value: int | None) -> str:
    """Bytes as MiB, or 'n/a'."""
    return "n/a" if value is None else f"{value / 2**20:,.0f}"


def print_case(
    label: str, times: dict[str, list[float]], memory: dict[str, Memory], figures: dict[str, Figures]
) -> None:
    """One case: timing table, memory, and the two tools' figures side by side."""
    med = {tool: statistics.median(runs) for tool, runs in times.items()}
    print(f"\n== {label} ==")
    print(f"{'tool':<11} {'median s':>9} {'min s':>7} {'peak RSS MiB':>13} {'tree RSS MiB':>13}")
    for tool in times:
        mem = memory.get(tool)
        print(
            f"{tool:<11} {med[tool]:>9.2f} {min(times[tool]):>7.2f} "
            f"{mib(mem.max_single_process if mem else None):>13} {mib(mem.max_tree_sum if mem else None):>13}"
        )
    if set(times) != set(TOOLS):
        return
    print(f"ratio HTA / infersight (median time): {med['hta'] / med['infersight']:.2f}x")
    ours, theirs = figures["infersight"], figures["hta"]
    print("sanity (per rank)   kernels infersight / HTA     idle ratio infersight / HTA")
    for rank in sorted(set(ours.kernel_count) | set(theirs.kernel_count)):
        nan = float("nan")
        kernels = f"{ours.kernel_count.get(rank, -1):>19,} / {theirs.kernel_count.get(rank, -1):<,}"
        idle = f"{ours.idle_ratio.get(rank, nan):>22.4f} / {theirs.idle_ratio.get(rank, nan):.4f}"
        print(f"  rank {rank:<3} {kernels}{idle}")
    print(
        "  (HTA rounds every GPU event to whole µs -- start up, end down -- so µs-long decode kernels\n"
        "   lose up to 1 µs each and its idle ratio comes out higher; infersight keeps ns precision)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--worker`` is the internal one-run mode used for memory)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE, help="real Kineto trace to use")
    parser.add_argument("--ranks", type=int, default=DEFAULT_RANKS, help="rank copies in the multi-rank case")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help="timed runs per tool (median)")
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help="comma-separated subset of infersight,hta (default both)"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-RSS subprocess runs")
    parser.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Prepare inputs, time both tools on both cases, print the tables."""
    args = parse_args(argv)
    if args.worker:
        run_tool(args.worker, args.path)
        return 0
    tools = [t for t in TOOLS if t in args.tools.split(",")]
    import hta
    import pandas

    import infersight

    quiet_hta_logging()

    print(
        f"infersight {infersight.__version__} | HTA {getattr(hta, '__version__', '?')} | "
        f"pandas {pandas.__version__} | python {sys.version.split()[0]} | {os.cpu_count()} cores"
    )
    print(f"trace: {args.trace}")
    with tempfile.TemporaryDirectory(prefix="infersight-vs-hta-") as tmp:
        single, multi = prepare_inputs(args.trace, args.ranks, Path(tmp))
        for label, target in (("one trace", single), (f"{args.ranks} ranks (copies)", multi)):
            times, figures = time_interleaved(target, args.repeats, tools)
            memory = {} if args.no_memory else {tool: measure_memory(tool, target) for tool in tools}
            print_case(label, times, memory, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
