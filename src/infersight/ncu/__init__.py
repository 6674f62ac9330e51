"""Kernel deep dive with Nsight Compute (methodology §6).

``reader`` (ncu CSV / .ncu-rep -> per-launch metric tables, base units via ``units``) ->
``metrics`` (canonical metric names across ncu versions, ``data/ncu_metrics.toml``) ->
``roofline`` (measured roofline point, E_roof against ``hardware.gpu_specs``) ->
``rules`` (``data/ncu_rules.toml`` -> findings) -> ``analysis`` (the integrated
:class:`~infersight.ncu.results.NcuReport`); ``plan`` writes the ncu commands for a trace's
focus set.
"""

from __future__ import annotations

from infersight.ncu.analysis import analyze_ncu
from infersight.ncu.plan import build_plan
from infersight.ncu.reader import read_ncu

__all__ = ["analyze_ncu", "build_plan", "read_ncu"]
