"""Prefill vs decode split (methodology §3): aggregates hide phase-specific bottlenecks.

Two methods, in order:

1. **annotation** — NVTX / ``record_function`` / GPU annotation names matched against the
   markers in ``data/phase_markers.toml`` (vLLM, SGLang, TRT-LLM, HF, generic). A kernel belongs
   to the innermost marked range that its launching API call starts in (host ranges, joined on
   process + correlation, so CUDA-graph kernels follow their ``cudaGraphLaunch``), or that its
   execution overlaps (GPU annotations). In a CPU capture (``--cpu-ops-as-kernels``) the
   "kernels" are the host thread's own operators: an operator belongs to the range of its own
   thread that its start lies in (there is no launch to correlate).
2. **kernel-mix** — the kernel stream is cut into iterations (``ProfilerStep#N`` ranges, else the
   host synchronisations that end each inference step, else gaps > 1 ms) and iterations are
   classified by kernel duration: prefill runs large-M GEMMs and O(S²) attention, so its mean
   kernel duration is several times that of decode steps (which run GEMV-like GEMMs and
   split-KV / paged attention). Without a clear two-cluster separation the method is ``none``.
"""

from __future__ import annotations

import re
import tomllib
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from infersight.analyses import intervals
from infersight.analyses.category_summary import category_summary
from infersight.analyses.kernel_summary import label_kernels
from infersight.analyses.launches import first_match, graph_kernel_mask, kernel_launch_info, launch_calls
from infersight.analyses.range_names import form_column
from infersight.analyses.ranges import GPU_SOURCE, SUMMARY_SOURCES
from infersight.analyses.results import GapBucket, PhaseSplit, PhaseStat, Window
from infersight.analyses.timeline import (
    CPU_DEVICE_KIND,
    bucket_gaps,
    graph_coverage_from_masks,
    next_to_eager,
)
from infersight.analyses.window import window_arrays
from infersight.model import Trace, factorize_names, union_names

PHASE_ORDER = ("prefill", "decode", "mixed")
TOP_CATEGORIES_PER_PHASE = 5
PROFILER_STEP = re.compile(r"^ProfilerStep#\d+$")
NO_PHASE = ""
# the numbers torch.autograd.profiler.emit_nvtx appends to every range name (see _per_name)
_EMIT_NVTX_NUMBERS = (
    (re.compile(r", seq = \d+"), ", seq = 0"),
    (re.compile(r", op_id = \d+"), ", op_id = 0"),
)
# the same on ASCII text, where \d is [0-9]: ~20% faster (no Unicode digit test per character)
_EMIT_NVTX_NUMBERS_ASCII = tuple(
    (re.compile(pattern.pattern.replace(r"\d", "[0-9]")), replacement)
    for pattern, replacement in _EMIT_NVTX_NUMBERS
)
_NAME_SEPARATOR = "\x00"
_CANONICAL_CHUNK = 1 << 18


@dataclass(frozen=True)
class Marker:
    """One phase-marker rule from phase_markers.toml."""

    framework: str
    pattern: re.Pattern[str]
    phase: str | None
    both: str

    def classify(self, name: str) -> str | None:
        """The phase this marker gives a range name, or None when it does not match."""
        m = self.pattern.search(name)
        if m is None:
            return None
        if self.phase is not None:
            return self.phase
        ctx, gen = int(m.group("ctx")), int(m.group("gen"))
        if ctx > 0 and gen > 0:
            return self.both
        if ctx > 0:
            return "prefill"
        return "decode" if gen > 0 else None


@cache
def _config() -> dict[str, Any]:
    text = resources.files("infersight").joinpath("data/phase_markers.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@cache
def markers() -> tuple[Marker, ...]:
    """The phase markers, in priority order."""
    return tuple(
        Marker(
            framework=m["framework"],
            pattern=re.compile(m["pattern"]),
            phase=m.get("phase"),
            both=m.get("both", "mixed"),
        )
        for m in _config()["marker"]
    )


def classify_range_name(name: str) -> str | None:
    """Phase of a range name by the first matching marker (None: not a phase marker)."""
    for marker in markers():
        phase = marker.classify(name)
        if phase is not None:
            return phase
    return None


@dataclass
class Labelled:
    """Per-trace kernels (in window) with a phase label and a step id (-1: unassigned)."""

    trace: Trace
    kernels: pd.DataFrame  # device, start, end, name, phase, step
    method: str
    reason: str


def phase_split(
    traces: list[Trace], windows: list[dict[int, Window]], labelled: list[Labelled] | None = None
) -> PhaseSplit:
    """Split the kernels of all traces into prefill / decode (/ mixed) and profile each phase.

    ``labelled``: the traces' :func:`label_trace` results when the caller already has them.
    """
    if labelled is None:
        labelled = [label_trace(t, w) for t, w in zip(traces, windows, strict=True)]
    methods = {lab.method for lab in labelled}
    method = next((m for m in ("annotation", "kernel-mix") if m in methods), "none")
    if len(labelled) == 1:
        reason = labelled[0].reason
    else:
        reason = "; ".join(f"{lab.trace.label()}: {lab.reason}" for lab in labelled)
    used = [lab for lab in labelled if lab.method != "none"]
    phases = [_phase_stat(phase, used) for phase in PHASE_ORDER]
    return PhaseSplit(method=method, reason=reason, phases=[p for p in phases if p is not None])


def _window_kernels(trace: Trace, windows: dict[int, Window]) -> pd.DataFrame:
    """The trace's kernels inside the windows, with where on the host each one was issued.

    On a GPU the issuing point is the launching API call (thread, start). In a CPU capture the
    "kernels" are the host thread's own operators (``stream`` = host thread): there is no launch
    to correlate, so an operator is issued where it runs, on its thread at its own start.
    """
    k = trace.kernels
    launch = _cpu_issue_points(k) if trace.device_kind == CPU_DEVICE_KIND else kernel_launch_info(trace)
    keep = np.zeros(len(k), dtype=bool)
    dev = k["device"].to_numpy()
    ks, ke = k["start"].to_numpy(np.int64), k["end"].to_numpy(np.int64)
    for device, window in windows.items():
        on = dev == device
        keep[on] = intervals.overlaps_any(ks[on], ke[on], window_arrays(window))
    frame = pd.DataFrame(
        {
            "device": dev,
            "start": ks,
            "end": ke,
            "name": k["name"].array,
            "process": k["process"].to_numpy(),
            "correlation": k["correlation"].to_numpy(),
            "launch_thread": launch["launch_thread"].to_numpy(),
            "launch_start": launch["launch_start"].to_numpy(),
        }
    )[keep].reset_index(drop=True)
    frame["phase"] = NO_PHASE
    frame["step"] = np.int64(-1)
    return frame


def _cpu_issue_points(kernels: pd.DataFrame) -> pd.DataFrame:
    """CPU operators as their own "launch": thread = the operator's host thread, start = its start."""
    return pd.DataFrame(
        {
            "launch_thread": kernels["stream"].to_numpy(np.int64),
            "launch_start": kernels["start"].to_numpy(np.int64),
        }
    )


def label_trace(trace: Trace, windows: dict[int, Window]) -> Labelled:
    """The trace's windowed kernels with a phase label each, and how the labels were decided.

    Public because the theory engine's measured-vs-theory step labels kernels the same way.
    """
    kernels = _window_kernels(trace, windows)
    if kernels.empty:
        return Labelled(trace, kernels, "none", "no kernels in the analysis window")
    found = _label_by_annotation(trace, kernels)
    if found is not None:
        return Labelled(trace, kernels, "annotation", found)
    method, reason = _label_by_kernel_mix(trace, kernels)
    return Labelled(trace, kernels, method, reason)


# ---------------------------------------------------------------- annotation method


def _label_by_annotation(trace: Trace, kernels: pd.DataFrame) -> str | None:
    """Label kernels by marked ranges; returns the reason, or None when no range marks a phase."""
    r = trace.ranges
    r = r[r["source"].isin(SUMMARY_SOURCES).to_numpy()].reset_index(drop=True)
    if r.empty:
        return None
    phase = _per_name(form_column(r), classify_range_name)
    is_marked = pd.notna(phase)
    marked = r[is_marked].assign(phase=phase[is_marked])
    if marked.empty:
        return None
    marked = _with_step_ids(marked)
    # outermost first, so that inner (more specific) ranges overwrite their parents
    marked = marked.assign(length=marked["end"] - marked["start"]).sort_values("length", ascending=False)
    labels = np.full(len(kernels), NO_PHASE, dtype=object)
    steps = np.full(len(kernels), -1, dtype=np.int64)
    host = marked[marked["source"].astype(str) != GPU_SOURCE]
    gpu = marked[marked["source"].astype(str) == GPU_SOURCE]
    _assign_host(kernels, host, labels, steps)
    _assign_gpu(kernels, gpu, labels, steps)
    if (labels == NO_PHASE).all():
        return None
    kernels["phase"] = labels
    kernels["step"] = steps
    pairs = marked[["phase", "framework"]].drop_duplicates()
    used = sorted(zip(pairs["phase"].astype(str), pairs["framework"].astype(str), strict=True))
    described = ", ".join(f"{p} ({fw})" for p, fw in used)
    unassigned = int((labels == NO_PHASE).sum())
    how = (
        "CPU operators assigned by their own start on the range's host thread"
        if trace.device_kind == CPU_DEVICE_KIND
        else "kernels assigned by launch/overlap"
    )
    return (
        f"phase ranges matched by name: {described}; {len(kernels) - unassigned} {how}, "
        f"{unassigned} outside every phase range"
    )


def _with_step_ids(marked: pd.DataFrame) -> pd.DataFrame:
    """Step id = connected component of overlapping same-phase ranges (nested ranges: one step)."""
    frame = marked.copy()
    frame["framework"] = _per_name(form_column(frame), _framework)
    frame = frame.sort_values(["phase", "start"], kind="stable")
    running = frame.groupby("phase")["end"].cummax().to_numpy(np.int64)
    starts = frame["start"].to_numpy(np.int64)
    ph = frame["phase"].to_numpy()
    new = np.ones(len(frame), dtype=bool)
    new[1:] = (ph[1:] != ph[:-1]) | (starts[1:] >= running[:-1])  # touching ranges: two steps
    frame["step_id"] = np.cumsum(new) - 1
    return frame


def _per_name(names: pd.Series, value_of: Callable[[str], object]) -> np.ndarray:
    """``value_of`` each row's name, evaluated once per distinct *canonical* name (an object array).

    Range tables hold millions of rows (several NVTX ranges per kernel) but a few thousand
    distinct names: the function runs on the categories and the codes map the results back.
    Only the categories some row uses are evaluated: a subset of a range table keeps all of the
    table's categories. A missing name (code -1) gets None.

    ``torch.autograd.profiler.emit_nvtx`` names every range ``op, seq = N, op_id = M``, so a
    capture can hold millions of distinct names; the classifiers here (phase markers,
    ``ProfilerStep#N``) never look at those two numbers, so names are evaluated once per
    :func:`canonical_range_names` form (the numbers set to 0): 4.6M names -> ~20k evaluations.
    """
    cat = names.astype("category").cat
    codes = cat.codes.to_numpy().astype(np.int64)
    canonical_codes, canonical = _canonical_categories(cat.categories)
    used = np.bincount(codes + 1, minlength=len(cat.categories) + 1)[1:] > 0
    used_canonical = np.flatnonzero(np.bincount(canonical_codes[used], minlength=len(canonical)))
    per_canonical = np.full(len(canonical) + 1, None, dtype=object)  # last slot: code -1
    per_canonical[used_canonical] = [value_of(str(name)) for name in canonical.take(used_canonical)]
    return per_canonical[np.append(canonical_codes, -1)[codes]]


# (weak reference to the categories, canonical code per category, canonical names) of the last call
_canonical_cache: tuple[weakref.ref[pd.Index], np.ndarray, pd.Index] | None = None


def _canonical_categories(categories: pd.Index) -> tuple[np.ndarray, pd.Index]:
    """Code of each category's :func:`canonical_range_names` form, and those forms.

    The phase split asks this several times of one range table (markers, then ProfilerStep
    ranges): the last answer is kept while its categories object lives.
    """
    global _canonical_cache
    cached = _canonical_cache
    if cached is not None and cached[0]() is categories:
        return cached[1], cached[2]
    # a list of the values first: iterating a string-dtype Index costs ~2 us per element
    values = np.asarray(categories, dtype=object).tolist()
    if not isinstance(categories.dtype, pd.StringDtype) and pd.api.types.infer_dtype(values) != "string":
        values = [str(name) for name in values]  # (a C scan tells all-str lists apart: 4.6M names)
    result = _canonical_codes(values)
    _canonical_cache = (weakref.ref(categories), *result)
    return result


def _canonical_codes(names: list[str]) -> tuple[np.ndarray, pd.Index]:
    """Code of each name's :func:`canonical_range_names` form (order of first appearance), and the forms.

    Chunk by chunk: each chunk's forms are factorised and dropped, and only the chunks' distinct
    forms are factorised together at the end, so the millions of canonical strings of an
    emit_nvtx capture (4.6M names, ~20k forms) are never all alive at once (~350 MB of peak
    memory for 1M kernels). Same codes as one factorisation of all the forms.
    """
    chunk_codes: list[np.ndarray] = []
    chunk_forms: list[np.ndarray] = []
    for start in range(0, len(names), _CANONICAL_CHUNK):
        codes, forms = factorize_names(canonical_range_names(names[start : start + _CANONICAL_CHUNK]))
        chunk_codes.append(codes)
        chunk_forms.append(forms)
    if not chunk_codes:
        return np.empty(0, dtype=np.int64), pd.Index([], dtype=object)
    merged, canonical = factorize_names(np.concatenate(chunk_forms).tolist())
    offsets = np.cumsum([0, *(len(forms) for forms in chunk_forms[:-1])])
    codes = np.concatenate([merged[offset + part] for offset, part in zip(offsets, chunk_codes, strict=True)])
    return codes, pd.Index(canonical, dtype=object)


def canonical_range_names(names: list[str]) -> list[str]:
    """``names`` with the numbers of emit_nvtx's ``, seq = N`` / ``, op_id = N`` parts set to 0.

    Regular-expression substitutions over the names joined by NUL, per chunk, instead of calls
    per name (the substitution then runs in C; ~10x faster on 1M names). A name holding NUL
    (never seen) would shift the split: the chunk is then done name by name.
    """
    canonical: list[str] = []
    for start in range(0, len(names), _CANONICAL_CHUNK):
        chunk = names[start : start + _CANONICAL_CHUNK]
        joined = _NAME_SEPARATOR.join(chunk)
        if ", seq = " not in joined and ", op_id = " not in joined:
            canonical.extend(chunk)
            continue
        parts = _zero_emit_nvtx_numbers(joined).split(_NAME_SEPARATOR)
        if len(parts) != len(chunk):
            parts = [_zero_emit_nvtx_numbers(name) for name in chunk]
        canonical.extend(parts)
    return canonical


def _zero_emit_nvtx_numbers(text: str) -> str:
    """Set the numbers after ``, seq = `` and ``, op_id = `` to 0 (literal-led patterns: fast scan)."""
    for pattern, replacement in _EMIT_NVTX_NUMBERS_ASCII if text.isascii() else _EMIT_NVTX_NUMBERS:
        text = pattern.sub(replacement, text)
    return text


def _is_profiler_step(name: str) -> bool:
    """A PyTorch profiler step range (``ProfilerStep#N``): one per training/inference step."""
    return PROFILER_STEP.match(name) is not None


def _framework(name: str) -> str:
    for marker in markers():
        if marker.classify(name) is not None:
            return marker.framework
    return ""


def _assign_host(kernels: pd.DataFrame, host: pd.DataFrame, labels: np.ndarray, steps: np.ndarray) -> None:
    """Kernels whose launch (same process and thread) starts inside each range."""
    if host.empty:
        return
    kp, kt = kernels["process"].to_numpy(), kernels["launch_thread"].to_numpy()
    kls = kernels["launch_start"].to_numpy(np.int64)
    for (process, thread), grp in host.groupby(["process", "thread"], sort=False):  # per host thread
        idx = np.flatnonzero((kp == process) & (kt == thread) & (kls >= 0))
        if idx.size == 0:
            continue
        idx = idx[np.argsort(kls[idx], kind="stable")]
        sorted_starts = kls[idx]
        lo = np.searchsorted(sorted_starts, grp["start"].to_numpy(np.int64), side="left")
        hi = np.searchsorted(sorted_starts, grp["end"].to_numpy(np.int64), side="left")
        for a, b, phase, step in zip(lo, hi, grp["phase"], grp["step_id"], strict=True):  # per range
            labels[idx[a:b]] = phase
            steps[idx[a:b]] = step


def _assign_gpu(kernels: pd.DataFrame, gpu: pd.DataFrame, labels: np.ndarray, steps: np.ndarray) -> None:
    """Kernels of the range's device whose execution overlaps the range."""
    if gpu.empty:
        return
    dev = kernels["device"].to_numpy()
    ks, ke = kernels["start"].to_numpy(np.int64), kernels["end"].to_numpy(np.int64)
    for device, grp in gpu.groupby("device", sort=False):
        idx = np.flatnonzero(dev == device)
        if idx.size == 0:
            continue
        idx = idx[np.argsort(ks[idx], kind="stable")]
        s, e = ks[idx], ke[idx]
        longest = int((e - s).max())
        lo = np.searchsorted(s, grp["start"].to_numpy(np.int64) - longest, side="left")
        hi = np.searchsorted(s, grp["end"].to_numpy(np.int64), side="left")
        for a, b, rs, phase, step in zip(lo, hi, grp["start"], grp["phase"], grp["step_id"], strict=True):
            cand = idx[a:b]
            hit = cand[ke[cand] > rs]
            labels[hit] = phase
            steps[hit] = step


# ---------------------------------------------------------------- kernel-mix method


def _label_by_kernel_mix(trace: Trace, kernels: pd.DataFrame) -> tuple[str, str]:
    cfg = _config()["kernel_mix"]
    iteration, how = _iterations(trace, kernels, cfg)
    kernels["step"] = iteration
    dur = (kernels["end"] - kernels["start"]).to_numpy(np.int64)
    decode_re = re.compile(cfg["decode_kernel_pattern"])
    names = kernels["name"].astype("category")
    is_decode_kernel = names.cat.categories.map(lambda n: bool(decode_re.search(str(n))))
    decode_kernel = np.asarray(is_decode_kernel, dtype=bool)[names.cat.codes.to_numpy()]
    per_iter = pd.DataFrame({"it": iteration, "dur": dur, "dk": decode_kernel})
    per_iter = (
        per_iter[per_iter["it"] >= 0]
        .groupby("it")
        .agg(n=("dur", "size"), mean=("dur", "mean"), dk=("dk", "any"))
    )
    eligible = per_iter[per_iter["n"] >= int(cfg["min_kernels_per_iteration"])]
    if len(eligible) < 2:
        return "none", (
            f"no phase annotations; {how} gave {len(eligible)} iteration(s) with at least "
            f"{cfg['min_kernels_per_iteration']} kernels: nothing to compare, phases not split"
        )
    means = np.sort(eligible["mean"].to_numpy())
    ratios = means[1:] / np.maximum(means[:-1], 1.0)
    cut = int(np.argmax(ratios))
    threshold = float(cfg["prefill_decode_duration_ratio"])
    if ratios[cut] >= threshold:
        boundary = means[cut]
        phase = np.where(eligible["mean"] > boundary, "prefill", "decode")
        basis = (
            f"mean kernel duration separates them {ratios[cut]:.1f}x (>= {threshold:g}x): "
            f"long-kernel iterations are prefill (mean >= {means[cut + 1] / 1e3:.1f} µs), "
            f"short-kernel ones decode (mean <= {boundary / 1e3:.1f} µs)"
        )
        agree = int(((phase == "decode") == eligible["dk"].to_numpy()).sum())
        basis += (
            f"; decode-style kernels (split-KV/paged attention, GEMV, split-K) agree on "
            f"{agree}/{len(eligible)} iterations"
        )
    else:
        # decode-only kernel names alone are not trusted: training traces run GEMV and
        # split-K reductions too; they only corroborate a duration split
        with_decode_style = int(eligible["dk"].sum())
        return "none", (
            f"no phase annotations; {how} gave {len(eligible)} iterations whose kernel mix is uniform "
            f"(largest mean-duration ratio {ratios[cut]:.1f}x < {threshold:g}x; decode-style kernels "
            f"(GEMV, split-K, split-KV/paged attention) in {with_decode_style} of them, which training "
            "runs too, so they do not decide alone): prefill and decode cannot be told apart"
        )
    phase_of_iter = dict(zip(eligible.index, phase, strict=True))
    kernels["phase"] = pd.Series(iteration).map(phase_of_iter).fillna(NO_PHASE).to_numpy()
    kernels.loc[kernels["phase"] == NO_PHASE, "step"] = -1
    counts = pd.Series(phase).value_counts()
    summary = ", ".join(f"{counts.get(p, 0)} {p}" for p in ("prefill", "decode"))
    return "kernel-mix", f"no phase annotations; {how} gave {len(eligible)} iterations ({summary}): {basis}"


def _iterations(trace: Trace, kernels: pd.DataFrame, cfg: dict[str, Any]) -> tuple[np.ndarray, str]:
    """Iteration id per kernel (-1: none) and how the iterations were found."""
    kls = kernels["launch_start"].to_numpy(np.int64)
    r = trace.ranges
    steps = r[_per_name(form_column(r), _is_profiler_step).astype(bool)] if not r.empty else r
    if len(steps) >= 2 and (kls >= 0).any():
        it = np.full(len(kernels), -1, dtype=np.int64)
        steps = steps.sort_values("start")
        for i, (s, e) in enumerate(zip(steps["start"], steps["end"], strict=True)):  # per step
            it[(kls >= s) & (kls < e)] = i
        if (it >= 0).any():
            return it, f"{len(steps)} ProfilerStep ranges"
    api = trace.api
    if not api.empty and (kls >= 0).any():
        names = api["name"].astype("category")
        sync_re = re.compile(cfg["sync_api_pattern"])
        sync_names = [n for n in names.cat.categories if sync_re.search(str(n))]
        syncs = np.sort(api[names.isin(sync_names).to_numpy()]["end"].to_numpy(np.int64))
        if syncs.size >= 1:
            it = np.searchsorted(syncs, kls, side="left").astype(np.int64)
            it[kls < 0] = -1
            if np.unique(it[it >= 0]).size >= 2:
                return (
                    it,
                    f"{syncs.size} host synchronisations ({', '.join(map(str, sync_names))}) ending steps",
                )
    gap = int(cfg["iteration_gap_ns"])
    it = np.full(len(kernels), -1, dtype=np.int64)
    base = 0
    for _device, grp in kernels.groupby("device", sort=True):  # per device
        order = grp.sort_values("start", kind="stable")
        s, e = order["start"].to_numpy(np.int64), order["end"].to_numpy(np.int64)
        running = np.maximum.accumulate(e)
        new = np.ones(len(s), dtype=bool)
        new[1:] = s[1:] - running[:-1] > gap
        ids = np.cumsum(new) - 1 + base
        it[order.index.to_numpy()] = ids
        base = int(ids.max()) + 1
    return it, f"gaps > {gap / 1e6:g} ms"


# ---------------------------------------------------------------- per-phase profile


@dataclass
class PhaseTimeline:
    """Wall, busy and idle gaps of one phase, summed over traces and devices."""

    wall: int = 0
    busy: int = 0
    gaps: list[np.ndarray] = field(default_factory=list)  # lengths of gaps inside the steps
    eager_gaps: list[np.ndarray] = field(default_factory=list)  # those an eager kernel ends or starts

    def add(self, kernels: pd.DataFrame, is_graph: np.ndarray) -> None:
        """One trace's kernels of the phase (positional rows, ``is_graph`` aligned to them).

        Per device, the phase's wall is the union of its step spans (first kernel start to last
        kernel end of each step), so time between steps (other phases, host work) is not idle
        of this phase; only gaps lying wholly inside a step span count.
        """
        dev = kernels["device"].to_numpy()
        starts, ends = kernels["start"].to_numpy(np.int64), kernels["end"].to_numpy(np.int64)
        steps = kernels["step"].to_numpy(np.int64)
        for device in np.unique(dev):  # per device
            on = dev == device
            spans = pd.DataFrame({"step": steps[on], "s": starts[on], "e": ends[on]}).groupby("step")
            span_s, span_e = intervals.union(spans["s"].min().to_numpy(), spans["e"].max().to_numpy())
            bs, be = intervals.union(starts[on], ends[on])
            self.wall += int((span_e - span_s).sum())
            self.busy += int((be - bs).sum())
            g0, g1 = be[:-1], bs[1:]
            inside = intervals.overlap_lengths(g0, g1, (span_s, span_e)) == (g1 - g0)
            g0, g1 = g0[inside], g1[inside]
            self.gaps.append(g1 - g0)
            eager = on & ~is_graph
            near = next_to_eager(g0, g1, starts[eager], ends[eager])
            self.eager_gaps.append((g1 - g0)[near])

    def buckets(self, eager: bool = False) -> list[GapBucket]:
        lengths = self.eager_gaps if eager else self.gaps
        return bucket_gaps(np.concatenate(lengths) if lengths else np.empty(0, np.int64))


def _phase_stat(phase: str, labelled: list[Labelled]) -> PhaseStat | None:
    count = ktime = nsteps = launch_ns = 0
    timeline = PhaseTimeline()
    launch_na: list[str] = []
    names: list[pd.Categorical] = []
    durations: list[np.ndarray] = []
    parts: list[tuple[Trace, pd.DataFrame, np.ndarray]] = []
    for lab in labelled:
        k = lab.kernels
        k = k[k["phase"].to_numpy() == phase].reset_index(drop=True)
        if k.empty:
            continue
        is_graph = graph_kernel_mask(lab.trace, k)
        parts.append((lab.trace, k, is_graph))
        nsteps += int(k["step"].nunique())
        timeline.add(k, is_graph)
        count += len(k)
        d = (k["end"] - k["start"]).to_numpy(np.int64)
        ktime += int(d.sum())
        names.append(pd.Categorical(k["name"]))
        durations.append(d)
        launched, why_na = launch_time(lab.trace, k)
        if why_na is not None:
            launch_na.append(why_na if len(labelled) == 1 else f"{lab.trace.label()}: {why_na}")
        else:
            launch_ns += launched
    if count == 0:
        return None
    all_names = union_names(names)
    labelled_kernels = label_kernels(all_names, np.concatenate(durations))
    coverage = graph_coverage_from_masks(parts)
    wall = timeline.wall
    return PhaseStat(
        phase=phase,
        wall_ns=wall,
        busy_ns=timeline.busy,
        idle_ratio=1.0 - timeline.busy / wall if wall > 0 else 0.0,
        kernel_count=count,
        kernel_time_ns=ktime,
        avg_kernel_ns=ktime / count,
        steps=nsteps,
        top_categories=category_summary(labelled_kernels)[:TOP_CATEGORIES_PER_PHASE],
        gap_buckets=timeline.buckets(),
        eager_gap_buckets=timeline.buckets(eager=True) if coverage.graph_coverage is not None else None,
        launch_overhead_ratio=launch_ns / wall if not launch_na and wall > 0 else None,
        launch_overhead_na_reason="; ".join(dict.fromkeys(launch_na)) if launch_na else None,
        **coverage.model_dump(),
    )


def launch_time(trace: Trace, kernels: pd.DataFrame) -> tuple[int, str | None]:
    """Time in the launch calls that launched these kernels, or 0 and why it is not applicable."""
    if trace.device_kind == CPU_DEVICE_KIND:
        return 0, "CPU capture: operators run on the host thread itself, there are no kernel launches"
    calls = launch_calls(trace)
    if calls.empty:
        return 0, "no kernel-launch API calls recorded"
    launched = first_match(calls["process"], calls["correlation"], kernels["process"], kernels["correlation"])
    durations = calls["end"].to_numpy(np.int64) - calls["start"].to_numpy(np.int64)
    return int(durations[launched >= 0].sum()), None
