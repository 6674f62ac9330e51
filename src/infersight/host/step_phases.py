"""Classify isolated steps as context (prefill) or generation (decode) — methodology §4 item 2.

First from range names (the user's ``--phase-regex``, then the markers of
``data/phase_markers.toml`` via :func:`infersight.analyses.phases.classify_range_name`: TRT-LLM
``_forward_step N: X ctx reqs, Y gen reqs``, vLLM ``execute_..._context_N_generation_M``,
SGLang ``step[EXTEND``/``DECODE``...);
lacking markers, from the kernel mix: prefill runs large-M GEMMs and O(S²) attention, so its
mean kernel duration is several times a decode step's (the ratio is the one phases.py uses).
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from infersight.analyses.ranges import GPU_SOURCE, SUMMARY_SOURCES
from infersight.host.config import HostConfig
from infersight.host.results import Step
from infersight.model import Trace

UNKNOWN = "unknown"


@cache
def _kernel_mix_config() -> dict[str, Any]:
    text = resources.files("infersight").joinpath("data/phase_markers.toml").read_text(encoding="utf-8")
    section: dict[str, Any] = tomllib.loads(text)["kernel_mix"]
    return section


def classify_steps(
    trace: Trace, frame: pd.DataFrame, steps: list[Step], config: HostConfig
) -> tuple[str, str]:
    """Set ``phase`` on every step; return (method, reason)."""
    if not steps:
        return "none", "no steps to classify"
    if _by_markers(trace, frame, steps, config):
        counts = _counts(steps)
        return "annotation", f"phase markers in range names: {counts}"
    return _by_kernel_mix(frame, steps)


def _counts(steps: list[Step]) -> str:
    phases = pd.Series([s.phase for s in steps]).value_counts()
    return ", ".join(f"{n} {p}" for p, n in phases.items())


def _by_markers(trace: Trace, frame: pd.DataFrame, steps: list[Step], config: HostConfig) -> bool:
    """Label steps by their own range name or by the marker range that holds their launches."""
    labelled = False
    for step in steps:
        phase = config.classify(step.label) if step.label else None
        if phase is not None:
            step.phase = phase
            labelled = True
    if labelled:
        return True
    r = trace.ranges
    r = r[r["source"].isin(SUMMARY_SOURCES).to_numpy()]
    if r.empty:
        return False
    names = r["name"].astype("category")
    cats = names.cat.categories
    phase_of_cat = np.array([config.classify(str(n)) or "" for n in cats], dtype=object)
    codes = names.cat.codes.to_numpy()
    range_phase = np.where(codes >= 0, phase_of_cat[np.maximum(codes, 0)], "")
    marked = r.assign(phase=range_phase)[range_phase != ""]
    if marked.empty:
        return False
    ms, me = marked["start"].to_numpy(np.int64), marked["end"].to_numpy(np.int64)
    is_gpu = (marked["source"].astype(str) == GPU_SOURCE).to_numpy()
    mphase = marked["phase"].to_numpy()
    launched = frame[(frame["step"].to_numpy() >= 0) & (frame["launch_start"].to_numpy() >= 0)]
    spans = launched.groupby(["step", "device"])["launch_start"].agg(["min", "max"])
    first, last = spans["min"].to_dict(), spans["max"].to_dict()
    for step in steps:  # per step: a handful to a few thousand, each one vector op over the markers
        key = (step.index, step.device)
        lo_h, hi_h = (int(first[key]), int(last[key])) if key in first else (step.start_ns, step.end_ns)
        lo = np.where(is_gpu, step.start_ns, lo_h)
        hi = np.where(is_gpu, step.end_ns, hi_h)
        overlap = np.minimum(me, hi) - np.maximum(ms, lo)
        best = int(np.argmax(overlap))
        if overlap[best] > 0 or (overlap[best] == 0 and ms[best] <= lo[best] < me[best]):
            step.phase = str(mphase[best])
            labelled = True
    return labelled


def _by_kernel_mix(frame: pd.DataFrame, steps: list[Step]) -> tuple[str, str]:
    cfg = _kernel_mix_config()
    sel = frame[frame["step"].to_numpy() >= 0]
    mean = (sel["end"] - sel["start"]).groupby([sel["step"], sel["device"]]).mean()
    means = np.array([float(mean.get((s.index, s.device), 0.0)) for s in steps])
    if len(steps) < 2:
        return "none", "one step and no phase marker: phase unknown"
    ordered = np.sort(means)
    ratios = ordered[1:] / np.maximum(ordered[:-1], 1.0)
    cut = int(np.argmax(ratios))
    threshold = float(cfg["prefill_decode_duration_ratio"])
    if ratios[cut] < threshold:
        return "none", (
            f"no phase markers; step mean kernel durations differ at most {ratios[cut]:.1f}x "
            f"(< {threshold:g}x): context and generation cannot be told apart"
        )
    boundary = ordered[cut]
    for step, m in zip(steps, means, strict=True):
        step.phase = "context" if m > boundary else "generation"
    return "kernel-mix", (
        f"no phase markers; mean kernel duration splits the steps {ratios[cut]:.1f}x (>= {threshold:g}x): "
        f"{_counts(steps)} (long-kernel steps are context/prefill)"
    )
