"""Whole-model estimates (TTFT, TPOT, tokens/s) and the measured-vs-theory check (methodology §2).

TTFT is the prefill pass (B prompts of S tokens, through lm_head and sampling of the first
token); TPOT is one decode step at context L; decode throughput is B / TPOT tokens/s. With TP
the per-GPU times are the pass times (the GPUs run in parallel) and all-reduces add to them.
When the user's measured TTFT / TPOT / tokens/s differs from theory by more than Δ_retest
(20% by default) a finding says so, with the steps to re-measure on a pinned environment:
a large gap is either real inefficiency (then the per-operator view says where) or a noisy or
mis-specified measurement, and the two must be told apart before anything is optimised.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from infersight.errors import InputError
from infersight.rules.finding import Evidence, Finding, Location
from infersight.theory.memory import MemoryFit
from infersight.theory.model_config import ModelConfig
from infersight.theory.operators import Scenario
from infersight.theory.roofline import Hardware, PhaseEstimate, both_phases

DEFAULT_RETEST_DELTA = 0.20

REMEASURE_STEPS = [
    "lock the GPU clocks so boost/throttling does not move the numbers: "
    "`sudo nvidia-smi -pm 1 && sudo nvidia-smi -lgc <max_sm_clock>` (check with `nvidia-smi -q -d CLOCK`; "
    "undo with `sudo nvidia-smi -rgc`)",
    "run the exact scenario (same batch, prompt length, context length, dtype, TP) on an otherwise idle "
    "GPU, after a warm-up of at least 3 untimed iterations (CUDA graph capture, autotuning, allocator)",
    "time at least 5 repeats and report the median and the standard deviation; repeat if std/median > 10%",
    "e.g. `vllm bench latency --model <model> --batch-size <B> --input-len <S> --output-len <N> "
    "--num-iters-warmup 5 --num-iters 10` (TTFT ≈ prefill latency, TPOT = (latency − TTFT)/(N − 1))",
]


class ModelEstimate(BaseModel):
    """Theory for one model, scenario and GPU: both passes and the whole-model figures."""

    model: str
    gpu: str
    compute_dtype: str
    scenario: Scenario
    hardware: Hardware
    prefill: PhaseEstimate
    decode: PhaseEstimate
    ttft_s: float = Field(description="T_theory of the prefill pass")
    tpot_s: float = Field(description="T_theory of one decode step")
    decode_tokens_per_s: float = Field(description="B / TPOT: output tokens per second over the batch")
    prefill_tokens_per_s: float = Field(description="B·S / TTFT")
    notes: list[str] = Field(default_factory=list)
    memory: MemoryFit | None = Field(
        default=None, description="weights + KV cache + activations per GPU against the GPU's memory"
    )


def estimate(
    model: ModelConfig, scenario: Scenario, hw: Hardware, memory: MemoryFit | None = None
) -> ModelEstimate:
    """Per-operator roofline of both passes and the whole-model TTFT / TPOT / tokens/s."""
    phases = both_phases(model, scenario, hw)
    prefill, decode = phases["prefill"], phases["decode"]
    notes = [*model.notes]
    for phase in (prefill, decode):
        notes += [f"{phase.phase}: {reason} — not included in the pass time" for reason in phase.untimed]
    return ModelEstimate(
        model=model.name,
        gpu=hw.name,
        compute_dtype=hw.compute_dtype,
        scenario=scenario,
        hardware=hw,
        prefill=prefill,
        decode=decode,
        ttft_s=prefill.t_theory_s,
        tpot_s=decode.t_theory_s,
        decode_tokens_per_s=scenario.batch / decode.t_theory_s,
        prefill_tokens_per_s=scenario.batch * scenario.prompt_len / prefill.t_theory_s,
        notes=notes,
        memory=memory,
    )


def measured_vs_theory_findings(
    est: ModelEstimate,
    *,
    ttft_s: float | None = None,
    tpot_s: float | None = None,
    tokens_per_s: float | None = None,
    delta: float = DEFAULT_RETEST_DELTA,
) -> list[Finding]:
    """One finding per measured figure that differs from theory by more than ``delta``.

    The deviation is measured/theory − 1 for times and theory/measured − 1 for throughput, so
    a positive deviation always means "slower than theory".
    """
    findings: list[Finding] = []
    checks = [
        ("ttft", "TTFT", ttft_s, est.ttft_s, "ms", "prefill"),
        ("tpot", "TPOT", tpot_s, est.tpot_s, "ms", "decode"),
        ("tokens_per_s", "decode tokens/s", tokens_per_s, est.decode_tokens_per_s, "tokens/s", "decode"),
    ]
    for key, label, measured, theory, unit, phase in checks:
        if measured is None:
            continue
        if not measured > 0:
            raise InputError(None, f"measured {label} must be a positive number, got {measured}")
        if unit == "ms":  # times: reported in ms so the evidence reads naturally
            measured, theory = measured * 1e3, theory * 1e3
        slower = measured / theory - 1.0 if unit == "ms" else theory / measured - 1.0
        if abs(slower) <= delta:
            continue
        findings.append(_finding(est, key, label, measured, theory, unit, phase, slower, delta))
    return findings


def _finding(
    est: ModelEstimate,
    key: str,
    label: str,
    measured: float,
    theory: float,
    unit: str,
    phase: str,
    slower: float,
    delta: float,
) -> Finding:
    s = est.scenario
    scenario = (
        f"B={s.batch}, S={s.prompt_len}, L={s.context_len}, TP={s.tp}, {est.compute_dtype} on {est.gpu}"
    )
    if slower > 0:
        title = f"measured {label} is {1 + slower:.2f}× the roofline estimate"
        advice = [
            f"the {phase} pass runs {100 * slower:.0f}% slower than the sum of operator roofline times: "
            f"compare measured kernels per operator category with theory (`infersight analyze TRACE --model "
            f"{est.model} --gpu ...`) to find the operators far from their roofline",
            "before optimising, re-measure on a pinned environment (steps under verification): a noisy "
            "or warm-up-polluted measurement looks the same as a slow kernel",
        ]
    else:
        title = f"measured {label} is faster than the roofline estimate ({1 + slower:.2f}×)"
        advice = [
            "a measurement faster than the roofline means the theory inputs do not describe the run: check "
            "the GPU, dtype/quantisation, batch, prompt/context lengths and TP degree given to infersight",
            "then re-measure on a pinned environment (steps under verification)",
        ]
    return Finding(
        id=f"theory_mismatch/{key}",
        type="theory_mismatch",
        title=title,
        severity="warning",
        location=Location(scope="phase", phase=phase),
        evidence=[
            Evidence(metric=f"measured {label}", value=measured, unit=unit),
            Evidence(metric=f"theory {label}", value=theory, unit=unit, note=scenario),
            Evidence(
                metric="deviation (slower than theory)",
                value=slower,
                unit="ratio",
                threshold=delta,
                comparison=">",
                note="|deviation| above Δ_retest",
            ),
        ],
        advice=advice,
        confidence="medium",
        confidence_reason=(
            f"theory assumes κ={est.hardware.kappa:g}, η_mem={est.hardware.memory_efficiency:g} "
            f"({est.hardware.time_model}) and uniform "
            "MoE routing; a single measurement without repeats may be noisy"
        ),
        verification=list(REMEASURE_STEPS),
    )
