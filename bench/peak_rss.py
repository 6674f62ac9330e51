"""Run a command and measure its wall time and true peak RSS, for the benchmarks.

Why a launcher: on Linux a child's ``ru_maxrss`` starts from its parent's high-water mark
(``fork``/``vfork`` copy the memory descriptor, and ``execve`` keeps its peak), so a benchmark
process that has already loaded a trace would report *its own* peak as the child's. A small,
freshly started Python launcher spawns the measured command instead, so the figure read back
from ``os.wait4`` is the command's own (plus at most the launcher's ~10 MiB baseline).

With psutil installed it also samples the summed RSS of the command's whole process tree
(every 20 ms), which is what matters for tools that fan out to worker processes.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SAMPLE_SECONDS = 0.02

# Runs inside the launcher: spawn the command, wait for it, report "<seconds> <maxrss KiB> <exit>".
LAUNCHER = (
    "import os, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "print(time.perf_counter() - t, usage.ru_maxrss, os.waitstatus_to_exitcode(status))\n"
)


@dataclass
class Measured:
    """Wall seconds of the command, its peak RSS (bytes), and the tree's summed peak (if sampled)."""

    seconds: float
    peak_rss_bytes: int
    tree_peak_rss_bytes: int | None


def run_measured(command: Sequence[str], *, sample_tree: bool = True) -> Measured:
    """Run ``command`` (stdout discarded) through the launcher; raise RuntimeError if it fails.

    ``sample_tree=False``: no sampling of the process tree, for a command that runs in one
    process (its peak is ``os.wait4``'s): on two cores the sampler's walks of ``/proc`` every
    20 ms took ~0.4 s from a 10 s command.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    tree_peak = sample_descendants_rss(proc.pid) if sample_tree else (lambda: None)
    out, err = proc.communicate()
    if proc.returncode != 0 or not out.strip():
        raise RuntimeError(f"launcher failed ({proc.returncode}): {err.strip()[-2000:]}")
    seconds, maxrss_kib, exit_code = out.split()
    if int(exit_code) != 0:
        raise RuntimeError(f"{' '.join(command)} exited {exit_code}: {err.strip()[-2000:]}")
    return Measured(float(seconds), int(maxrss_kib) * 1024, tree_peak())


def sample_descendants_rss(pid: int) -> Callable[[], int | None]:
    """Sample the summed RSS of ``pid``'s descendants in a thread; returns a getter for the peak."""
    try:
        import psutil
    except ImportError:
        return lambda: None
    peak = [0]

    def sample() -> None:
        try:
            root = psutil.Process(pid)
            while root.status() != psutil.STATUS_ZOMBIE:
                total = 0
                for child in root.children(recursive=True):
                    try:
                        total += child.memory_info().rss
                    except psutil.Error:
                        continue
                peak[0] = max(peak[0], total)
                time.sleep(SAMPLE_SECONDS)
        except psutil.Error:
            return

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()

    def result() -> int | None:
        thread.join(timeout=5)
        return peak[0] or None

    return result
