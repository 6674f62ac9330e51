"""A/B verification: run (or read) baseline and candidate, and say whether the change helped.

A side is either a shell-free command line (timed by wall clock, ``warmup`` discarded runs then
``repeats`` measured runs, baseline and candidate interleaved so drift hits both alike) or a list
of existing trace files (each trace's isolated steps — :mod:`infersight.host.iterations` — give
one wall-time sample each; warm-up steps and the first ``warmup`` steps are dropped).

Statistics: median and sample standard deviation per side; the gain is the fraction of the
baseline median saved, ``(median_b - median_c) / median_b``; its 95% confidence interval is the
percentile interval of the same statistic over ``BOOTSTRAP_RESAMPLES`` bootstrap resamples of
both sides (fixed seed, so a rerun on the same samples prints the same interval). The result is
``improved`` when the whole interval is above 0, ``regressed`` when below, ``no_change`` when it
straddles 0, and ``inconclusive`` — we refuse to conclude — when either side's coefficient of
variation exceeds 10% or has fewer than ``MIN_SAMPLES`` samples.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, Field

from infersight.errors import InputError
from infersight.ingest.formats import TRACE_SUFFIXES
from infersight.kb.confidence import CV_LIMIT
from infersight.kb.fingerprint import Fingerprint, environment_differences

if TYPE_CHECKING:
    from infersight.model.trace import Trace

__all__ = ["Side", "SideStats", "VerifyResult", "compare_samples", "parse_side", "run_verify"]

PLACEHOLDER = re.compile(r"<(?:your [^<>]*|with the change|model)>")
BOOTSTRAP_RESAMPLES = 4000
MIN_SAMPLES = 3
Verdict = Literal["improved", "regressed", "no_change", "inconclusive"]


class Side(BaseModel):
    """One side of the A/B: a command or trace files."""

    mode: Literal["command", "traces"]
    text: str = Field(description="as the user gave it")
    argv: list[str] = Field(default_factory=list)
    paths: list[Path] = Field(default_factory=list)


class SideStats(BaseModel):
    """Samples (seconds) of one side and their summary."""

    samples_s: list[float]
    median_s: float
    mean_s: float
    std_s: float
    cv: float = Field(description="std / mean")
    sample_note: str = ""
    environment: Fingerprint | None = Field(
        default=None, description="what the side's traces say of their environment (GPU, count)"
    )


class VerifyResult(BaseModel):
    """The A/B outcome; ``verdict == 'inconclusive'`` means: re-measure, do not act on it."""

    baseline: SideStats
    candidate: SideStats
    gain: float = Field(description="(median_b - median_c) / median_b: fraction of wall time saved")
    gain_ci_low: float
    gain_ci_high: float
    confidence_level: float = 0.95
    verdict: Verdict
    reason: str
    mode: str
    repeats: int
    warmup: int
    comparable: bool = Field(
        default=True, description="False: the two sides ran in different environments (see differences)"
    )
    environment_differences: list[str] = Field(default_factory=list)


def parse_side(text: str) -> Side:
    """Traces when every token is an existing file/dir with a trace suffix (or a dir), else a command."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise InputError(None, f"cannot parse {text!r}: {exc}") from None
    if not tokens:
        raise InputError(None, "empty baseline/candidate")
    paths = [Path(t) for t in tokens]
    if all(p.is_dir() or (p.is_file() and p.name.lower().endswith(TRACE_SUFFIXES)) for p in paths):
        return Side(mode="traces", text=text, paths=paths)
    placeholder = PLACEHOLDER.search(text)
    if placeholder:  # a plan's template, printed for the user to fill in
        raise InputError(None, f"{text!r}: replace the placeholder {placeholder.group(0)} before running it")
    for path in paths:  # a mistyped trace path must not become a command line
        if path.name.lower().endswith(TRACE_SUFFIXES) and not path.exists():
            raise InputError(path, "no such trace file (a trace path is never run as a command)")
    return Side(mode="command", text=text, argv=tokens)


def check_runnable(program: str) -> None:
    """Refuse, before anything runs, a first word that is not an executable on this host."""
    if "/" in program:
        path = Path(program).expanduser()
        if not path.is_file():
            raise InputError(path, "no such program (the first word of a command line must be one)")
        if not os.access(path, os.X_OK):
            raise InputError(path, "not executable")
    elif shutil.which(program) is None:
        raise InputError(None, f"command not found on this host: {program}")


def _stats(samples: Sequence[float], note: str = "") -> SideStats:
    values = np.asarray(samples, dtype=float)
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return SideStats(
        samples_s=[float(v) for v in values],
        median_s=float(np.median(values)),
        mean_s=mean,
        std_s=std,
        cv=std / mean if mean > 0 else float("inf"),
        sample_note=note,
    )


def _gain(baseline: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Gain of the medians along the last axis (vectorised over bootstrap resamples)."""
    median_b = np.median(baseline, axis=-1)
    return (median_b - np.median(candidate, axis=-1)) / median_b


def compare_samples(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    mode: str = "samples",
    warmup: int = 0,
    notes: tuple[str, str] = ("", ""),
    seed: int = 0,
) -> VerifyResult:
    """The statistics of the module docstring on two sample lists (seconds)."""
    if not baseline or not candidate:
        raise InputError(None, "no samples on one side: nothing to compare")
    base, cand = _stats(baseline, notes[0]), _stats(candidate, notes[1])
    b, c = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    rng = np.random.default_rng(seed)
    boot_b = b[rng.integers(0, len(b), size=(BOOTSTRAP_RESAMPLES, len(b)))]
    boot_c = c[rng.integers(0, len(c), size=(BOOTSTRAP_RESAMPLES, len(c)))]
    gains = _gain(boot_b, boot_c)
    low, high = (float(v) for v in np.percentile(gains, [2.5, 97.5]))
    gain = float(_gain(b, c))
    verdict: Verdict
    if min(len(b), len(c)) < MIN_SAMPLES:
        verdict = "inconclusive"
        fewest = min(len(b), len(c))
        reason = f"only {fewest} sample(s) on one side; need >= {MIN_SAMPLES}: re-measure with more repeats"
    elif max(base.cv, cand.cv) > CV_LIMIT:
        verdict = "inconclusive"
        reason = (
            f"run-to-run variation too high (CV baseline {base.cv:.1%}, candidate {cand.cv:.1%} > "
            f"{CV_LIMIT:.0%}): refusing to conclude; re-measure with warm-up, more repeats, a quiet machine"
        )
    elif low > 0:
        verdict, reason = "improved", f"the 95% interval of the gain [{low:.1%}, {high:.1%}] is above 0"
    elif high < 0:
        verdict, reason = "regressed", f"the 95% interval of the gain [{low:.1%}, {high:.1%}] is below 0"
    else:
        verdict, reason = "no_change", f"the 95% interval of the gain [{low:.1%}, {high:.1%}] contains 0"
    return VerifyResult(
        baseline=base,
        candidate=cand,
        gain=gain,
        gain_ci_low=low,
        gain_ci_high=high,
        verdict=verdict,
        reason=reason,
        mode=mode,
        repeats=min(len(b), len(c)),
        warmup=warmup,
    )


def time_command(argv: Sequence[str], *, timeout_s: float | None = None) -> float:
    """Wall time (seconds) of one run of ``argv``; a failing or missing command is an input error."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError:
        raise InputError(None, f"command not found: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise InputError(None, f"command timed out after {timeout_s} s: {shlex.join(argv)}") from None
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise InputError(
            None, f"command exited {done.returncode}: {shlex.join(argv)} {tail[0][:200]}".strip()
        )
    return elapsed


def trace_environment(traces: Sequence[Trace]) -> Fingerprint:
    """GPU name and count of the devices that ran kernels in ``traces`` (unknowns stay None)."""
    devices = [
        (index, int(device))
        for index, trace in enumerate(traces)
        if not trace.kernels.empty
        for device in sorted(trace.kernels["device"].dropna().unique())
    ]
    names = [
        info.name
        for index, device in devices
        for info in [traces[index].gpus.get(device)]
        if info is not None and info.name
    ]
    return Fingerprint(gpu=names[0] if names else None, gpu_count=len(devices) or None)


def step_samples(paths: Sequence[Path], warmup: int) -> tuple[list[float], str, Fingerprint]:
    """Step wall times (seconds) of the traces, warm-up steps dropped, and the traces' environment."""
    from infersight.host.config import load_config
    from infersight.host.iterations import isolate_iterations
    from infersight.ingest import load_traces

    config = load_config(None)
    samples: list[float] = []
    methods: list[str] = []
    loaded = [trace for path in paths for trace in load_traces(path)]
    for trace in loaded:
        iterations, _frame = isolate_iterations(trace, config)
        steps = [s for s in iterations.steps if not s.warmup]
        if steps:
            first_device = min(s.device for s in steps)
            steps = [s for s in steps if s.device == first_device]
            if len(steps) <= warmup:
                raise InputError(
                    trace.source,
                    f"only {len(steps)} step(s) found ({iterations.method}); --warmup {warmup} leaves none",
                )
            steps = steps[warmup:]
            samples += [(s.end_ns - s.start_ns) / 1e9 for s in steps]
            methods.append(f"{Path(trace.source).name}: {len(steps)} step(s) by {iterations.method}")
        elif not trace.kernels.empty:
            start, end = int(trace.kernels["start"].min()), int(trace.kernels["end"].max())
            samples.append((end - start) / 1e9)
            methods.append(
                f"{Path(trace.source).name}: no steps found ({iterations.reason}); whole trace = 1 sample"
            )
        else:
            raise InputError(trace.source, "no GPU kernels: no step times to compare")
    return samples, "; ".join(methods), trace_environment(loaded)


def run_verify(
    baseline: str,
    candidate: str,
    *,
    repeats: int = 5,
    warmup: int = 1,
    timeout_s: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> VerifyResult:
    """Collect both sides' samples (commands: interleaved runs; traces: step times) and compare them."""
    if repeats < 1 or warmup < 0:
        raise InputError(None, "--repeats must be >= 1 and --warmup >= 0")
    side_b, side_c = parse_side(baseline), parse_side(candidate)
    if side_b.mode != side_c.mode:
        raise InputError(None, "baseline and candidate must both be commands or both be traces")
    if side_b.mode == "traces":
        samples_b, note_b, env_b = step_samples(side_b.paths, warmup)
        samples_c, note_c, env_c = step_samples(side_c.paths, warmup)
        result = compare_samples(samples_b, samples_c, mode="traces", warmup=warmup, notes=(note_b, note_c))
        result.baseline.environment, result.candidate.environment = env_b, env_c
        differences = environment_differences(env_b, env_c)
        if differences:
            result.comparable, result.environment_differences = False, differences
        return result
    check_runnable(side_b.argv[0])  # both programs found before either side runs
    check_runnable(side_c.argv[0])
    # progress is reported after each pair succeeded: a command that fails on its first run
    # ends with its one error line, not with a "repeat 1/1" line that suggests it ran
    for index in range(warmup):
        time_command(side_b.argv, timeout_s=timeout_s)
        time_command(side_c.argv, timeout_s=timeout_s)
        if progress:
            progress(f"warm-up {index + 1}/{warmup} done")
    samples_b, samples_c = [], []
    for index in range(repeats):
        samples_b.append(time_command(side_b.argv, timeout_s=timeout_s))
        samples_c.append(time_command(side_c.argv, timeout_s=timeout_s))
        if progress:
            progress(
                f"repeat {index + 1}/{repeats} done: baseline {samples_b[-1] * 1e3:.1f} ms, "
                f"candidate {samples_c[-1] * 1e3:.1f} ms"
            )
    return compare_samples(samples_b, samples_c, mode="command", warmup=warmup)
