"""``ncu-plan``: the exact ``ncu`` command lines that profile the focus set of a trace.

For each focus kernel (Top-K by GPU time, methodology §3) the command selects exactly that kernel:

* ``--kernel-name-base function --kernel-name regex:^NAME$`` when the function name (no
  namespace, templates or parameters — what ncu prints in ``==PROF== Profiling "NAME"``) is
  unique among the trace's kernels; otherwise ``--kernel-name-base demangled`` with a regex of
  the identifiers of its full name in order (identifiers survive every demangler; template
  literals do not: ncu prints ``(int)128`` where Kineto prints ``128``). Each regex is checked
  against every kernel name in the trace: it must match this kernel's names and no other.
* ``--launch-skip`` skips the first tenth of its launches (warm-up, JIT, autotuning; at least
  one) and ``--launch-count`` profiles a few steady-state launches, so medians and run-to-run
  variation can be computed. ``--launch-skip`` counts only launches matching the filter.
* the sections and metrics the rules read (``data/ncu_metrics.toml`` ``[plan]``), raw-page CSV
  with base units, and ``--clock-control none`` so the GPU runs at the clocks the trace saw.
"""

from __future__ import annotations

import itertools
import math
import re
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from infersight.analyses.kernel_names import simplify_kernel_name
from infersight.analyses.results import KernelStat
from infersight.analysis_report import AnalysisReport
from infersight.ncu.metrics import metric_table

if TYPE_CHECKING:
    from infersight.theory.measured import FocusSet

# MAJOR.MINOR of the ncu-plan JSON: a new optional field bumps the minor, a breaking change the major.
NCU_PLAN_SCHEMA_VERSION = "1.0"
DEFAULT_TOP_K = 10
DEFAULT_LAUNCH_COUNT = 5
WARMUP_FRACTION = 0.1
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SKIP_IDENTS = frozenset(
    {"void", "const", "unsigned", "int", "long", "char", "float", "double", "bool", "short"}
)


class PlannedKernel(BaseModel):
    """One focus kernel and the command that profiles it."""

    name: str = Field(description="simplified kernel name")
    full_name: str
    category: str
    count: int
    total_ns: int
    share: float
    reason: str = Field(description="why it is in the focus set")
    name_base: str
    name_regex: str
    regex_note: str | None = None
    launch_skip: int
    launch_count: int
    output: str
    command: str


class NcuPlan(BaseModel):
    """All commands, plus how the focus set was chosen."""

    schema_version: str = NCU_PLAN_SCHEMA_VERSION
    source: list[str]
    focus_method: str
    kernels: list[PlannedKernel]
    notes: list[str] = Field(default_factory=list)


def function_name(full: str) -> str:
    """The identifier ncu's ``function`` name base shows: no return type, namespace, templates, params."""
    head = full.strip()
    depth, cut = 0, len(head)
    for index, char in enumerate(head):  # the parameter list is the first '(' outside <>
        if char == "<":
            depth += 1
        elif char == ">":
            depth = max(0, depth - 1)
        elif char == "(" and depth == 0:
            cut = index
            break
    head = head[:cut]
    depth, out = 0, []
    for char in head:  # drop template arguments
        if char == "<":
            depth += 1
        elif char == ">":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(char)
    plain = "".join(out).strip().split()[-1] if "".join(out).strip() else head
    return plain.split("::")[-1]


def _identifiers(full: str) -> list[str]:
    return [t for t in _IDENT.findall(full) if t not in _SKIP_IDENTS and len(t) > 1]


def _demangled_candidates(full_names: set[str], function: str | None, all_names: Sequence[str]) -> list[str]:
    """Short demangled-name regexes: the function name then one or two identifiers that only
    this kernel's names contain (at most two ``.*``, so matching stays linear-ish)."""
    common = set.intersection(*(set(_identifiers(name)) for name in full_names))
    others = [name for name in all_names if name not in full_names]
    rivals = [set(_identifiers(name)) for name in others if function is None or function in name]
    head = re.escape(function) if function else ""
    order = _identifiers(sorted(full_names)[0])
    ranked = sorted(common - {function}, key=lambda t: (sum(t in r for r in rivals), -len(t)))
    patterns = [f"{head}.*\\b{re.escape(t)}\\b" if head else f"\\b{re.escape(t)}\\b" for t in ranked[:5]]
    for first, second in itertools.pairwise(ranked[:5]):
        a, b = sorted((first, second), key=lambda t: order.index(t) if t in order else 0)
        patterns.append(f"{head}.*\\b{re.escape(a)}\\b.*\\b{re.escape(b)}\\b")
    return patterns


def _selects(pattern: str, target: set[str], names: Sequence[str], base: str) -> int:
    """How many names outside ``target`` the regex also selects (0 = exact), -1 if it misses one."""
    compiled = re.compile(pattern)
    keyed = {name: (function_name(name) if base == "function" else name) for name in names}
    if not all(
        compiled.search(keyed.get(name, function_name(name) if base == "function" else name))
        for name in target
    ):
        return -1
    return sum(1 for name, key in keyed.items() if name not in target and compiled.search(key))


def kernel_filter(full_names: set[str], all_names: Sequence[str]) -> tuple[str, str, str | None]:
    """(name base, regex, note) that selects exactly the kernels in ``full_names``."""
    functions = {function_name(name) for name in full_names}
    function = next(iter(functions)) if len(functions) == 1 else None
    candidates: list[tuple[str, str]] = []
    if function:
        candidates.append(("function", f"^{re.escape(function)}$"))
    candidates += [("demangled", p) for p in _demangled_candidates(full_names, function, all_names)]
    best: tuple[str, str, int] | None = None
    for base, pattern in candidates:
        extra = _selects(pattern, full_names, all_names, base)
        if extra == 0:
            return base, pattern, None
        if extra > 0 and (best is None or extra < best[2]):
            best = (base, pattern, extra)
    if best is None:
        base, pattern = candidates[0] if candidates else ("demangled", re.escape(sorted(full_names)[0]))
        return base, pattern, "this regex does not match every name variant of the kernel in the trace"
    return best[0], best[1], f"also matches {best[2]} other kernel name(s) in the trace"


def _command(
    base: str,
    regex: str,
    skip: int,
    count: int,
    output: str,
    app: str,
    table_sections: Sequence[str],
    metrics: Sequence[str],
) -> str:
    parts = [
        "ncu",
        "--kernel-name-base", base,
        "--kernel-name", f"regex:{regex}",
        "--launch-skip", str(skip),
        "--launch-count", str(count),
    ]  # fmt: skip
    for section in table_sections:
        parts += ["--section", section]
    parts += ["--metrics", ",".join(metrics)]
    parts += [
        "--clock-control",
        "none",
        "--csv",
        "--page",
        "raw",
        "--print-units",
        "base",
        "--log-file",
        output,
    ]
    return " ".join(shlex.quote(p) for p in parts) + " " + app


def _focus_kernels(
    report: AnalysisReport, focus: FocusSet | None, top_k: int
) -> tuple[list[tuple[KernelStat, str]], str, list[str]]:
    """The kernels to profile with the reason for each, how they were chosen, and notes."""
    if focus is None:
        chosen = [
            (k, f"top {i + 1} by GPU time ({k.share:.1%})")
            for i, k in enumerate(report.profile.kernels[:top_k])
        ]
        note = (
            "focus set = Top-K kernels by GPU time only: pass --model/--config with --batch/--prompt to add "
            "the kernels of operator categories far below their roofline (E_roof < τ_E, methodology §3)"
        )
        return chosen, f"top {top_k} by GPU time", [note]
    stats = {k.name: k for k in report.profile.kernels}
    chosen, seen, notes = [], set(), []
    for item in focus.items:
        if item.kernel in seen:
            continue
        seen.add(item.kernel)
        stat = stats.get(item.kernel)
        if stat is None:
            notes.append(f"focus kernel {item.kernel} is not in the kernel summary; skipped")
            continue
        reasons = []
        if "top_time" in item.reasons:
            reasons.append(f"top {focus.k} by GPU time ({stat.share:.1%})")
        if "low_efficiency" in item.reasons and item.e_roof is not None:
            reasons.append(f"{item.phase} {item.category} at E_roof {item.e_roof:.2f} < {focus.tau_e:g}")
        chosen.append((stat, "; ".join(reasons) or ", ".join(item.reasons)))
    return chosen, f"TopK(time) ∪ E_roof < τ_E (K={focus.k}, τ_E={focus.tau_e:g})", notes


def build_plan(
    report: AnalysisReport,
    all_full_names: Sequence[str],
    *,
    top_k: int = DEFAULT_TOP_K,
    launch_count: int = DEFAULT_LAUNCH_COUNT,
    output_prefix: str = "ncu_focus",
    app: str = "<your inference command>",
    focus: FocusSet | None = None,
) -> NcuPlan:
    """The commands for the focus set (theory's when given, else the Top-K kernels by GPU time)."""
    table = metric_table()
    simple_of = {name: simplify_kernel_name(name) for name in all_full_names}
    chosen, method, notes = _focus_kernels(report, focus, top_k)
    notes += [
        "--launch-skip counts only launches that match --kernel-name; it skips the first tenth of the "
        "trace's launches of that kernel (warm-up); raise it if your capture started after warm-up",
        "if ncu reports 'Failed to find metric' on your GPU, drop that metric from --metrics",
        "each command writes a raw-page CSV: analyse them together with "
        "`infersight ncu FILE... --trace TRACE`",
    ]
    planned: list[PlannedKernel] = []
    for index, (kernel, reason) in enumerate(chosen):
        targets = {name for name, simple in simple_of.items() if simple == kernel.name} or {kernel.full_name}
        base, regex, note = kernel_filter(targets, list(simple_of))
        skip = max(1, math.ceil(kernel.count * WARMUP_FRACTION)) if kernel.count > 1 else 0
        count = max(1, min(launch_count, kernel.count - skip))
        output = f"{output_prefix}_{index + 1:02d}.csv"
        planned.append(
            PlannedKernel(
                name=kernel.name,
                full_name=kernel.full_name,
                category=kernel.category,
                count=kernel.count,
                total_ns=kernel.total_ns,
                share=kernel.share,
                reason=reason,
                name_base=base,
                name_regex=regex,
                regex_note=note,
                launch_skip=skip,
                launch_count=count,
                output=output,
                command=_command(
                    base, regex, skip, count, output, app, table.plan_sections, table.plan_metrics
                ),
            )
        )
    return NcuPlan(
        source=[t.source for t in report.profile.traces], focus_method=method, kernels=planned, notes=notes
    )
