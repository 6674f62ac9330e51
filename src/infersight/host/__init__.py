"""Host overhead (methodology §4): is the host the bottleneck, where, and what changed between two runs.

Data flow: :mod:`iterations` cuts the GPU timeline into steps (NVTX step ranges, allreduce
grouping, kernel density) and :mod:`step_phases` labels them context / generation;
:mod:`metrics` turns windows into the interval totals behind M1-M5; :mod:`verdict` judges each
scope against ``data/host_thresholds.toml``; :mod:`drilldown` explains the largest gaps;
:mod:`diff` compares per-step breakdowns; :mod:`advice` maps it all to findings
(``data/host_advice.toml``). :func:`analyze_host` and :func:`diff_traces` are the entry points.
"""

from __future__ import annotations

from infersight.host.config import HostConfig, load_config
from infersight.host.detect import analyze_host
from infersight.host.diff import diff_traces, step_breakdown

__all__ = ["HostConfig", "analyze_host", "diff_traces", "load_config", "step_breakdown"]
