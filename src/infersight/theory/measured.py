"""Measured kernel time against theory per (phase, operator category), and the focus set (methodology §2, §3).

Kernels are split into prefill / decode with :mod:`infersight.analyses.phases` and classified with
the kernel category table; theory operators carry the same category vocabulary, so a category's
measured time per step can be set against the roofline time of the theory operators of that
category: ``E_roof = T_roof / t_measured`` (= P_achieved / P_upper, since both rates divide the
same F). T_roof is the un-inflated roofline (no κ): E_roof = 1 means "at the roofline".

The theory has no per-kernel shapes, so a kernel's E_roof is that of its (phase, category).
Measured time per step = kernel time of the category in the phase / steps of the phase
(distinct step ids per trace and device): it assumes every step of the phase ran the scenario
the theory was computed for (batch, prompt or context length), which the caller must match.

:func:`focus_set` turns the rows into ``S_focus = TopK(time) ∪ {E_roof < τ_E}`` (K = 10,
τ_E = 0.3): the expensive kernels, plus the main kernels of categories far below their
roofline even when cheap (the "hidden bottlenecks"). The Nsight Compute plan consumes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from infersight.theory.estimates import ModelEstimate
from infersight.theory.roofline import PhaseEstimate
from infersight.theory.scenario_check import ScenarioCheck

if TYPE_CHECKING:  # analyses.results embeds the theory report: import it lazily to avoid a cycle
    from infersight.analyses.results import GlobalProfile
    from infersight.model import Trace

DEFAULT_TOP_K = 10
DEFAULT_TAU_E = 0.3
LOW_EFFICIENCY_KERNEL_SHARE = 0.10  # a low-E_roof category contributes its kernels above this share
KERNELS_PER_ROW = 10
ALL_PHASES = "all"


class KernelTime(BaseModel):
    """Time of one simplified kernel name within a (phase, category) row."""

    name: str
    count: int
    total_ns: int


class MeasuredRow(BaseModel):
    """One (phase, category): measured kernel time per step vs the theory operators' roofline."""

    phase: str = Field(description="prefill, decode, mixed, or 'all' when phases could not be split")
    category: str
    kernel_count: int
    total_ns: int = Field(description="sum of kernel durations (all steps, ranks and devices)")
    steps: int = Field(description="steps of the phase the time is divided by (per trace and device)")
    measured_ns_per_step: float | None
    theory_operators: list[str] = Field(default_factory=list)
    theory_flops: float = Field(default=0.0, description="Σ F of the category's operators per pass per GPU")
    theory_bytes: float = Field(default=0.0, description="Σ memory (or link) bytes per pass per GPU")
    theory_roof_s: float | None = Field(default=None, description="Σ time-model T_roof, no κ")
    achieved_flops_per_s: float | None = None
    achieved_bytes_per_s: float | None = None
    e_roof: float | None = Field(default=None, description="theory_roof_s / measured time per step")
    e_roof_na_reason: str | None = None
    top_kernels: list[str] = Field(default_factory=list, description="simplified names, by time")
    kernels: list[KernelTime] = Field(default_factory=list, description="top kernels with their time")


class MeasuredVsTheory(BaseModel):
    """Every measured (phase, category) row, and how phases were split."""

    phase_method: str
    phase_reason: str
    rows: list[MeasuredRow]
    notes: list[str] = Field(default_factory=list)
    scenario: ScenarioCheck | None = Field(
        default=None,
        description="the scenario theory used, the trace's own reading of it, and any contradiction",
    )


class FocusItem(BaseModel):
    """A kernel the deep dive should look at, and why."""

    phase: str
    kernel: str = Field(description="simplified kernel name")
    category: str
    total_ns: int
    share: float = Field(description="of all measured kernel time")
    e_roof: float | None = Field(description="E_roof of the kernel's (phase, category)")
    reasons: list[Literal["top_time", "low_efficiency"]]


class FocusSet(BaseModel):
    """S_focus = TopK(time) ∪ {E_roof < τ_E}, most expensive first."""

    k: int
    tau_e: float
    items: list[FocusItem]


def measured_vs_theory(
    traces: Sequence[Trace], est: ModelEstimate, *, window_nvtx: str | None = None
) -> MeasuredVsTheory:
    """Per (phase, category) measured kernel time per step against the theory of ``est``."""
    from infersight.analyses.kernel_summary import label_kernels
    from infersight.analyses.phases import label_trace
    from infersight.analyses.window import analysis_windows

    frames: list[pd.DataFrame] = []
    methods: list[str] = []
    reasons: list[str] = []
    for index, trace in enumerate(traces):
        if trace.kernels.empty:
            continue
        labelled = label_trace(trace, analysis_windows(trace, window_nvtx))
        methods.append(labelled.method)
        reasons.append(labelled.reason if len(traces) == 1 else f"{trace.label()}: {labelled.reason}")
        k = labelled.kernels
        labels_of = (
            k["phase"].to_numpy(object) if labelled.method != "none" else np.full(len(k), ALL_PHASES, object)
        )
        frames.append(
            pd.DataFrame(
                {
                    "name": k["name"].astype(str).to_numpy(),
                    "duration": (k["end"] - k["start"]).to_numpy(np.int64),
                    "phase": labels_of,
                    "step": k["step"].to_numpy(np.int64),
                    "device": k["device"].to_numpy(),
                    "trace": index,
                }
            )
        )
    method = next((m for m in ("annotation", "kernel-mix") if m in methods), "none")
    if not frames:
        return MeasuredVsTheory(phase_method=method, phase_reason="no kernels", rows=[])
    kernels = pd.concat(frames, ignore_index=True)
    kernels = kernels[kernels["phase"] != ""].reset_index(drop=True)  # outside every phase range
    labels = label_kernels(pd.Categorical(kernels["name"]), kernels["duration"].to_numpy())
    kernels["simple"] = labels["simple"].astype(str).to_numpy()
    kernels["category"] = labels["category"].astype(str).to_numpy()
    stepped = kernels.loc[kernels["step"] >= 0, ["phase", "trace", "device", "step"]].drop_duplicates()
    steps_of = stepped.groupby("phase").size().to_dict()
    rows = [
        _row(str(phase_name), str(category_name), grp, int(steps_of.get(phase_name, 0)), est)
        for (phase_name, category_name), grp in kernels.groupby(["phase", "category"], sort=False)
    ]
    rows.sort(key=lambda r: r.total_ns, reverse=True)
    return MeasuredVsTheory(
        phase_method=method,
        phase_reason="; ".join(reasons),
        rows=rows,
        notes=[*_notes(est), *_above_roof(rows)],
    )


def measured_vs_theory_from_profile(profile: GlobalProfile, est: ModelEstimate) -> MeasuredVsTheory:
    """The same rows from an already-built global profile (its top categories per phase only)."""
    split = profile.phases
    rows: list[MeasuredRow] = []
    if split.method != "none":
        for stat in split.phases:
            for cat in stat.top_categories:
                theory = _theory(est, stat.phase, cat.category)
                rows.append(
                    _with_efficiency(
                        MeasuredRow(
                            phase=stat.phase,
                            category=cat.category,
                            kernel_count=cat.count,
                            total_ns=cat.total_ns,
                            steps=stat.steps,
                            measured_ns_per_step=cat.total_ns / stat.steps if stat.steps else None,
                            top_kernels=cat.top_kernels,
                            **theory.model_dump(),
                        ),
                        stat.phase,
                    )
                )
    else:
        rows = [
            MeasuredRow(
                phase=ALL_PHASES,
                category=cat.category,
                kernel_count=cat.count,
                total_ns=cat.total_ns,
                steps=0,
                measured_ns_per_step=None,
                top_kernels=cat.top_kernels,
                e_roof_na_reason="prefill and decode could not be split: theory time is per phase",
            )
            for cat in profile.categories
        ]
    rows.sort(key=lambda r: r.total_ns, reverse=True)
    notes = [*_notes(est), "from the global profile: only the top categories of each phase are listed"]
    return MeasuredVsTheory(phase_method=split.method, phase_reason=split.reason, rows=rows, notes=notes)


def focus_set(
    measured: MeasuredVsTheory, *, k: int = DEFAULT_TOP_K, tau_e: float = DEFAULT_TAU_E
) -> FocusSet:
    """TopK kernels by time ∪ the main kernels (≥ 10% of the row) of rows with E_roof < τ_E."""
    total = sum(r.total_ns for r in measured.rows)
    candidates: dict[tuple[str, str], FocusItem] = {}
    every = [(row, kernel) for row in measured.rows for kernel in row.kernels]
    for row, kernel in sorted(every, key=lambda rk: rk[1].total_ns, reverse=True)[:k]:
        _add(candidates, row, kernel, total, "top_time")
    for row in measured.rows:
        if row.e_roof is None or row.e_roof >= tau_e:
            continue
        for kernel in row.kernels:
            if kernel is row.kernels[0] or kernel.total_ns >= LOW_EFFICIENCY_KERNEL_SHARE * row.total_ns:
                _add(candidates, row, kernel, total, "low_efficiency")
    items = sorted(candidates.values(), key=lambda item: item.total_ns, reverse=True)
    return FocusSet(k=k, tau_e=tau_e, items=items)


def _add(
    items: dict[tuple[str, str], FocusItem], row: MeasuredRow, kernel: KernelTime, total: int, reason: str
) -> None:
    key = (row.phase, kernel.name)
    if key in items:
        if reason not in items[key].reasons:
            items[key].reasons.append(reason)  # type: ignore[arg-type]
        return
    items[key] = FocusItem(
        phase=row.phase,
        kernel=kernel.name,
        category=row.category,
        total_ns=kernel.total_ns,
        share=kernel.total_ns / total if total else 0.0,
        e_roof=row.e_roof,
        reasons=[reason],  # type: ignore[list-item]
    )


def _row(phase: str, category: str, grp: pd.DataFrame, steps: int, est: ModelEstimate) -> MeasuredRow:
    per_kernel = (
        grp.groupby("simple", sort=False)["duration"]
        .agg(["count", "sum"])
        .sort_values("sum", ascending=False)
    )
    kernels = [
        KernelTime(name=str(name), count=int(r["count"]), total_ns=int(r["sum"]))
        for name, r in zip(
            per_kernel.index[:KERNELS_PER_ROW],
            per_kernel.head(KERNELS_PER_ROW).to_dict("records"),
            strict=True,
        )
    ]
    total = int(grp["duration"].sum())
    row = MeasuredRow(
        phase=phase,
        category=category,
        kernel_count=len(grp),
        total_ns=total,
        steps=steps,
        measured_ns_per_step=total / steps if steps else None,
        top_kernels=[k.name for k in kernels[:5]],
        kernels=kernels,
        **_theory(est, phase, category).model_dump(),
    )
    return _with_efficiency(row, phase)


def _phase_estimate(est: ModelEstimate, phase: str) -> PhaseEstimate | None:
    return {"prefill": est.prefill, "decode": est.decode}.get(phase)


class _Theory(BaseModel):
    """The theory side of a row: the category's operators in the phase and their sums."""

    theory_operators: list[str] = Field(default_factory=list)
    theory_flops: float = 0.0
    theory_bytes: float = 0.0
    theory_roof_s: float | None = None


def _theory(est: ModelEstimate, phase: str, category: str) -> _Theory:
    pe = _phase_estimate(est, phase)
    ops = [t for t in pe.operators if t.operator.category == category] if pe is not None else []
    if not ops:
        return _Theory()
    timed = [t.total_t_roof_s for t in ops if t.total_t_roof_s is not None]
    return _Theory(
        theory_operators=[t.operator.name for t in ops],
        theory_flops=sum(t.operator.flops * t.operator.layers for t in ops),
        theory_bytes=sum(
            (t.operator.comm_bytes if t.operator.is_communication else t.operator.memory_bytes)
            * t.operator.layers
            for t in ops
        ),
        theory_roof_s=sum(timed) if len(timed) == len(ops) else None,
    )


def _with_efficiency(row: MeasuredRow, phase: str) -> MeasuredRow:
    reason: str | None = None
    if phase not in ("prefill", "decode"):
        reason = f"phase '{phase}': theory time is per prefill or decode pass"
    elif row.measured_ns_per_step is None:
        reason = "no step ids in this phase: time per step unknown"
    elif not row.theory_operators:
        reason = f"no theory operator of category {row.category} in the {phase} pass"
    elif row.theory_roof_s is None:
        reason = "a theory operator of this category has no time (no link bandwidth)"
    if reason is not None:
        return row.model_copy(update={"e_roof_na_reason": reason})
    assert row.measured_ns_per_step is not None and row.theory_roof_s is not None
    measured_s = row.measured_ns_per_step / 1e9
    return row.model_copy(
        update={
            "e_roof": row.theory_roof_s / measured_s if measured_s > 0 else None,
            "e_roof_na_reason": None if measured_s > 0 else "zero measured time",
            "achieved_flops_per_s": row.theory_flops / measured_s if measured_s > 0 else None,
            "achieved_bytes_per_s": row.theory_bytes / measured_s if measured_s > 0 else None,
        }
    )


def _above_roof(rows: list[MeasuredRow]) -> list[str]:
    """Explain E_roof > 1: faster than physically possible means the accounting, not the GPU, differs."""
    above = [
        f"{r.phase} {r.category} ({r.e_roof:.2f})" for r in rows if r.e_roof is not None and r.e_roof > 1
    ]
    if not above:
        return []
    return [
        f"E_roof > 1 for {', '.join(above)}: measured faster than the roofline, so the kernels do not match "
        "the theory operators one to one — the work is fused into kernels of another category (e.g. "
        "residual add inside add+RMSNorm) or fewer tokens ran than the scenario says"
    ]


def _notes(est: ModelEstimate) -> list[str]:
    s = est.scenario
    return [
        f"theory: {est.model} on {est.gpu} ({est.compute_dtype}), B={s.batch}, S={s.prompt_len}, "
        f"L={s.context_len}, TP={s.tp}; each measured step is assumed to run this scenario"
    ]
