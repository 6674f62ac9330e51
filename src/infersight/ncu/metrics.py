"""Canonical kernel metrics from whatever names an ncu export uses (``data/ncu_metrics.toml``).

The rules and the roofline read canonical names (``dram_throughput_pct``, ``l2_hit_rate_pct``,
``bank_conflicts_per_request``...). This module resolves each one for a launch from the
candidates of the mapping table, refuses a candidate whose unit does not fit (a Gbyte/s value
never becomes a percentage), and otherwise records why the metric is missing and which ncu
section would collect it.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from infersight.ncu.reader import MetricValue, NcuLaunch

STRICT_UNITS = frozenset({"ns", "byte", "byte/second", "hz", "%"})
# Canonical metrics that are divisors downstream: below these they are not a measurement.
MINIMUM_VALUE = {"duration_ns": 1.0, "sm_frequency": 1.0}


@dataclass(frozen=True)
class MetricSpec:
    """One canonical metric of the mapping table."""

    name: str
    label: str
    unit: str
    section: str
    metric: str
    candidates: tuple[str, ...]
    sum_of: tuple[tuple[str, ...], ...] = ()
    ratio_of: tuple[str, str] | None = None
    ratio_scale: float = 1.0
    accept_units: tuple[str, ...] = ()
    source: str = ""

    def settle_hint(self) -> str:
        """Which ncu collection would provide this metric."""
        metric = f" or --metrics {self.metric}" if self.metric else ""
        return f"collect it with --section {self.section}{metric}"

    def unit_fits(self, unit: str) -> bool:
        """Whether a value in base unit ``unit`` can stand for this metric."""
        if unit == self.unit or unit in self.accept_units:
            return True
        return self.unit == "" and unit not in STRICT_UNITS


@dataclass(frozen=True)
class MetricTable:
    """The whole mapping table: canonical metrics, the tensor-FLOP pattern and the ncu-plan lists."""

    metrics: dict[str, MetricSpec]
    tensor_flops_pattern: re.Pattern[str]
    tensor_flops_section: str
    tensor_flops_plan_metric: str
    tensor_dtype_aliases: dict[str, str]
    plan_sections: tuple[str, ...]
    plan_metrics: tuple[str, ...]


@dataclass
class ResolvedMetrics:
    """Canonical values of one launch, where each came from, and why the others are missing."""

    values: dict[str, float | str | None] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    not_applicable: set[str] = field(default_factory=set)  # ratios whose denominator is 0 (no such accesses)
    # why a metric's direct candidates were refused (blank unit, negative ...), for the reasons of the
    # sums and ratios that use it before it is resolved itself
    candidate_reasons: dict[str, str] = field(default_factory=dict, repr=False)


@cache
def metric_table() -> MetricTable:
    """The table shipped in infersight/data/ncu_metrics.toml."""
    text = resources.files("infersight").joinpath("data/ncu_metrics.toml").read_text(encoding="utf-8")
    return parse_metric_table(tomllib.loads(text))


def parse_metric_table(data: Mapping[str, Any]) -> MetricTable:
    """Validate and build the table (ratio/sum references must name known metrics or raw names)."""
    specs: dict[str, MetricSpec] = {}
    for raw in data["metric"]:
        ratio = raw.get("ratio_of")
        specs[raw["name"]] = MetricSpec(
            name=raw["name"],
            label=raw.get("label", raw["name"]),
            unit=raw.get("unit", ""),
            section=raw["section"],
            metric=raw.get("metric", ""),
            candidates=tuple(raw.get("candidates", [])),
            sum_of=tuple(tuple(terms) for terms in raw.get("sum_of", [])),
            ratio_of=(ratio[0], ratio[1]) if ratio else None,
            ratio_scale=float(raw.get("ratio_scale", 1.0)),
            accept_units=tuple(raw.get("accept_units", [])),
            source=raw.get("source", ""),
        )
    for spec in specs.values():
        if not (spec.candidates or spec.sum_of or spec.ratio_of):
            raise ValueError(f"ncu metric {spec.name}: no candidates, sum_of or ratio_of")
    tensor = data["tensor_flops"]
    plan = data["plan"]
    return MetricTable(
        metrics=specs,
        tensor_flops_pattern=re.compile(tensor["pattern"]),
        tensor_flops_section=tensor["section"],
        tensor_flops_plan_metric=tensor["plan_metric"],
        tensor_dtype_aliases=dict(tensor.get("dtype_aliases", {})),
        plan_sections=tuple(plan["sections"]),
        plan_metrics=(*plan["metrics"], tensor["plan_metric"]),
    )


def _lookup(
    values: Mapping[str, MetricValue], name: str, spec: MetricSpec | None
) -> tuple[float | None, str]:
    """A raw value usable for ``spec`` (numeric, unit fits) or None with the reason."""
    cell = values.get(name)
    if cell is None:
        return None, "not in the export"
    if cell.value is None:
        return None, cell.problem or "empty"
    if isinstance(cell.value, str):
        return None, f"not a number ({cell.value!r})"
    if spec is not None and not spec.unit_fits(cell.unit):
        return None, f"unit {cell.raw_unit!r} does not fit (expected {spec.unit or 'a count'})"
    if spec is not None and (problem := _below_minimum(spec, float(cell.value))):
        return None, problem
    return float(cell.value), ""


def _below_minimum(spec: MetricSpec, value: float) -> str | None:
    """Why ``value`` cannot stand for ``spec`` (a 0 ns duration divides by zero later), or None."""
    least = MINIMUM_VALUE.get(spec.name)
    if least is None or value >= least:
        return None
    return f"{value:g} {spec.unit} is below {least:g} {spec.unit}: not a measurement"


def resolve(launch: NcuLaunch, table: MetricTable | None = None) -> ResolvedMetrics:
    """Every canonical metric of one launch (base units; percentages stay 0-100)."""
    table = table or metric_table()
    out = ResolvedMetrics()
    for spec in table.metrics.values():  # direct candidates first, so derived metrics can use any
        _resolve_direct(spec, launch.values, out)
    for spec in table.metrics.values():  # then sums/ratios, in table order
        if spec.name not in out.values:
            _resolve_derived(spec, launch.values, out)
    return out


def _term(
    name: str, values: Mapping[str, MetricValue], out: ResolvedMetrics, spec: MetricSpec | None = None
) -> tuple[float | None, str]:
    """One term of a sum or ratio: a canonical metric already resolved, else a raw cell.

    A raw term of a sum must fit the unit of the sum (``spec``): adding "2.33" read from a
    blank-unit cell to bytes would mix scales silently.
    """
    if name in out.values:
        value = out.values[name]
        return (value, "") if isinstance(value, float) else (None, out.missing.get(name, "missing"))
    if name in out.candidate_reasons:
        return None, out.candidate_reasons[name]
    return _lookup(values, name, spec)


def _resolve_direct(spec: MetricSpec, values: Mapping[str, MetricValue], out: ResolvedMetrics) -> None:
    refused = []
    for candidate in spec.candidates:
        value, reason = _lookup(values, candidate, spec)
        if value is not None:
            out.values[spec.name], out.sources[spec.name] = value, candidate
            return
        if candidate in values:
            refused.append(f"{candidate}: {reason}")
    if refused:
        out.candidate_reasons[spec.name] = "; ".join(refused)


def _resolve_derived(spec: MetricSpec, values: Mapping[str, MetricValue], out: ResolvedMetrics) -> None:
    reasons = [
        f"{candidate}: {_lookup(values, candidate, spec)[1]}"
        for candidate in spec.candidates
        if candidate in values
    ]
    for terms in spec.sum_of:
        looked = [_term(term, values, out, spec) for term in terms]
        if all(value is not None for value, _ in looked):
            out.values[spec.name] = sum(value for value, _ in looked if value is not None)
            out.sources[spec.name] = " + ".join(terms)
            return
        reasons += [f"{term}: {reason}" for term, (_, reason) in zip(terms, looked, strict=True) if reason]
    if spec.ratio_of is not None:
        (numerator, why_n), (denominator, why_d) = (_term(name, values, out) for name in spec.ratio_of)
        reasons += [f"{name}: {why}" for name, why in zip(spec.ratio_of, (why_n, why_d), strict=True) if why]
        ratio = (
            numerator / denominator * spec.ratio_scale
            if numerator is not None and denominator is not None and denominator > 0
            else None
        )
        if ratio is not None and math.isfinite(ratio) and not _below_minimum(spec, ratio):
            out.values[spec.name] = ratio
            out.sources[spec.name] = " / ".join(spec.ratio_of)
            return
        if ratio is not None and (
            problem := _below_minimum(spec, ratio) or ("" if math.isfinite(ratio) else "overflows")
        ):
            reasons.append(f"{' / '.join(spec.ratio_of)}: {problem}")
        if denominator == 0:
            reasons.append(f"{spec.ratio_of[1]} is 0 (no such accesses)")
            out.not_applicable.add(spec.name)
    out.values[spec.name] = None
    detail = "; ".join(reasons) if reasons else "not in the export"
    out.missing[spec.name] = f"{detail} — {spec.settle_hint()}"


def tensor_flops_by_dtype(launch: NcuLaunch, table: MetricTable | None = None) -> dict[str, float]:
    """Tensor-core FLOPs per input dtype from the ``sm__ops_path_tensor_src_*`` counters present.

    The counter names overlap (``src_X.sum`` ⊇ ``src_X_dst_Y.sum`` ⊇ ``src_X_dst_Y_sparsity_*.sum``),
    so per input dtype only the most aggregated level present is summed (``data/ncu_metrics.toml``).
    """
    table = table or metric_table()
    # per dtype: level (0 = src only, 1 = per accumulator, 2 = per sparsity mode) -> values
    levels: dict[str, dict[int, list[float]]] = {}
    for name, cell in launch.values.items():
        match = table.tensor_flops_pattern.match(name)
        if not match or not isinstance(cell.value, float):
            continue
        level = 2 if match.group("sparsity") else 1 if match.group("dst") else 0
        levels.setdefault(match.group("dtype"), {}).setdefault(level, []).append(cell.value)
    flops: dict[str, float] = {}
    for raw_dtype, by_level in levels.items():  # e4m3 and e5m2 both count as fp8
        dtype = table.tensor_dtype_aliases.get(raw_dtype, raw_dtype)
        flops[dtype] = flops.get(dtype, 0.0) + sum(by_level[min(by_level)])
    return flops


STALL_PATTERN = re.compile(
    r"^smsp__average_warps_issue_stalled_(?P<reason>[a-z_]+?)_per_issue_active\.ratio$"
)
WARP_CYCLES_PER_ISSUE = (
    "smsp__average_warp_latency_per_inst_issued.ratio",
    "Warp State Statistics: Warp Cycles Per Issued Instruction",
)


def stall_shares(launch: NcuLaunch) -> dict[str, float]:
    """Each warp-stall reason's share of the cycles between two issued instructions (0-1).

    Nsight Compute's CPIStall rule: ``smsp__average_warps_issue_stalled_<reason>_per_issue_active.ratio``
    / ``smsp__average_warp_latency_per_inst_issued.ratio``. Only raw exports (or ``.ncu-rep``) carry
    the per-reason counters; a details page has the total alone.
    """
    total = next(
        (
            c.value
            for name in WARP_CYCLES_PER_ISSUE
            if (c := launch.values.get(name)) and isinstance(c.value, float)
        ),
        None,
    )
    if not total:
        return {}
    shares: dict[str, float] = {}
    for name, cell in launch.values.items():
        match = STALL_PATTERN.match(name)
        if match and isinstance(cell.value, float) and match.group("reason") != "not_selected":
            shares[match.group("reason")] = cell.value / total
    return shares


def gpu_name_of(launch: NcuLaunch) -> str | None:
    """The GPU name the export records (raw page / .ncu-rep only; details pages do not carry it)."""
    cell = launch.values.get("device__attribute_display_name")
    return cell.value if cell is not None and isinstance(cell.value, str) and cell.value else None
