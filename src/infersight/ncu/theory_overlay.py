"""Theory operator points for the deep dive's roofline (methodology §6: plotted with the theory points).

The measured kernels (ncu counters) and the theory engine's operators for the user's scenario
(both phases) share one roofline: x = F / bytes, y = FLOP/s. A theory operator sits on its
roof (y = F / T_roof); communication operators and operators without FLOPs have no point.
"""

from __future__ import annotations

from infersight.ncu.results import TheoryOverlay, TheoryPoint
from infersight.theory.estimates import ModelEstimate


def theory_overlay(est: ModelEstimate) -> TheoryOverlay:
    """The operator points of both phases, with the roofs they were computed against."""
    points = [
        TheoryPoint(
            phase=phase.phase,
            operator=t.operator.name,
            category=t.operator.category,
            intensity=t.intensity,
            flop_per_s=t.operator.flops / t.t_roof_s,
            flops=t.operator.flops,
            memory_bytes=t.operator.memory_bytes,
            bound=str(t.bound),
            share=t.share,
        )
        for phase in (est.prefill, est.decode)
        for t in phase.operators
        if t.intensity is not None and t.t_roof_s and t.operator.flops > 0
    ]
    hw = est.hardware
    scenario = est.scenario
    return TheoryOverlay(
        model=est.model,
        gpu=est.gpu,
        compute_dtype=est.compute_dtype,
        batch=scenario.batch,
        prompt_len=scenario.prompt_len,
        context_len=scenario.context_len,
        tp=scenario.tp,
        matmul_peak_flop_per_s=hw.matmul_peak_flops,
        vector_peak_flop_per_s=hw.vector_peak_flops,
        effective_bytes_per_s=hw.effective_bandwidth,
        points=points,
    )
