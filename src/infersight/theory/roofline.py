"""Roofline time of each operator on a GPU (methodology §2) and the whole-model sums.

``T_theory = max(F / P_peak, Bytes / B_eff) · κ`` with ``B_eff = bandwidth · η_mem``. Matmul
operators (categories GEMM, attention, MoE) use the tensor-core peak of the compute dtype; the
others (norms, activations, RoPE, copies, sampling) run on the CUDA cores and use the fp32
vector peak — they are memory-bound either way. All-reduce / all-gather operators move their
bytes over the interconnect at ``link_bandwidth · η_link``; without a link bandwidth their time
is not estimated (``None``, with the reason), never 0.

Defaults: κ = 1.1 (the low end of the usual 1.1–2.0: T_theory is what a well-tuned engine should
approach; calibrate κ from measurements) and η_mem = 0.85 (the fraction of the datasheet HBM
bandwidth a streaming kernel reaches on A100/H100-class parts); η_link = 0.8.
"""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, Field

from infersight.errors import InputError
from infersight.theory.model_config import ModelConfig
from infersight.theory.operators import PHASES, Operator, Phase, Scenario, build_operators

DEFAULT_KAPPA = 1.1
DEFAULT_MEMORY_EFFICIENCY = 0.85
DEFAULT_LINK_EFFICIENCY = 0.8
MATMUL_CATEGORIES = frozenset({"GEMM", "attention", "MoE"})
VECTOR_DTYPE = "fp32"

Bound = Literal["compute", "memory", "communication"]


class GpuLike(Protocol):
    """What the roofline needs from a GPU spec (``infersight.hardware.gpu_specs.GpuSpec``)."""

    @property
    def name(self) -> str:
        """Display name."""
        ...

    @property
    def memory_bandwidth_gb_per_s(self) -> float:
        """Datasheet memory bandwidth, GB/s."""
        ...

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s for ``dtype``."""
        ...


class Hardware(BaseModel):
    """The roofline parameters of one GPU for one compute dtype."""

    model_config = {"frozen": True}

    name: str
    compute_dtype: str
    matmul_peak_flops: float = Field(gt=0, description="dense tensor-core FLOP/s of the compute dtype")
    vector_peak_flops: float = Field(gt=0, description="FLOP/s for non-matmul operators (fp32 CUDA cores)")
    memory_bandwidth: float = Field(gt=0, description="datasheet memory bandwidth, bytes/s")
    memory_efficiency: float = Field(default=DEFAULT_MEMORY_EFFICIENCY, gt=0, le=1)
    link_bandwidth: float | None = Field(default=None, description="per-GPU interconnect bandwidth, bytes/s")
    link_efficiency: float = Field(default=DEFAULT_LINK_EFFICIENCY, gt=0, le=1)
    kappa: float = Field(default=DEFAULT_KAPPA, ge=1.0, description="κ: T_theory = max(F/P, B/B_eff)·κ")

    @property
    def effective_bandwidth(self) -> float:
        """B_eff = bandwidth · η_mem (bytes/s)."""
        return self.memory_bandwidth * self.memory_efficiency

    def peak_for(self, category: str) -> float:
        """P_peak for an operator of ``category``: tensor cores for matmuls, CUDA cores otherwise."""
        return self.matmul_peak_flops if category in MATMUL_CATEGORIES else self.vector_peak_flops


def hardware_from_gpu(
    gpu: GpuLike,
    dtype: str,
    *,
    kappa: float = DEFAULT_KAPPA,
    memory_efficiency: float = DEFAULT_MEMORY_EFFICIENCY,
    link_bandwidth_gb_per_s: float | None = None,
) -> Hardware:
    """Roofline parameters of ``gpu`` for matmuls in ``dtype`` (fp32 vector peak for the rest)."""
    matmul = gpu.peak_flops(dtype)
    try:
        vector = gpu.peak_flops(VECTOR_DTYPE)
    except InputError:
        vector = matmul
    return Hardware(
        name=gpu.name,
        compute_dtype=dtype,
        matmul_peak_flops=matmul,
        vector_peak_flops=vector,
        memory_bandwidth=gpu.memory_bandwidth_gb_per_s * 1e9,
        memory_efficiency=memory_efficiency,
        link_bandwidth=None if link_bandwidth_gb_per_s is None else link_bandwidth_gb_per_s * 1e9,
        kappa=kappa,
    )


class OperatorTime(BaseModel):
    """One operator with its roofline: intensity, bound, times (per occurrence and per pass)."""

    operator: Operator
    intensity: float | None = Field(description="I = F / memory bytes; None for communication or 0 bytes")
    bound: Bound
    peak_flops: float = Field(description="P_peak used for this operator")
    t_compute_s: float = Field(description="F / P_peak, per occurrence")
    t_memory_s: float | None = Field(description="bytes / B_eff (or link), per occurrence")
    t_roof_s: float | None = Field(description="max(t_compute, t_memory), per occurrence, without κ")
    t_theory_s: float | None = Field(description="t_roof · κ, per occurrence")
    total_t_theory_s: float | None = Field(description="t_theory · layers: this operator's share of the pass")
    total_t_roof_s: float | None = Field(description="t_roof · layers (E_roof's reference)")
    share: float | None = Field(default=None, description="total_t_theory / the pass's T_theory")
    na_reason: str | None = None


class PhaseEstimate(BaseModel):
    """All operators of one pass (prefill, or one decode step) and their sums."""

    phase: Phase
    operators: list[OperatorTime]
    flops: float = Field(description="Σ F·layers per GPU")
    weight_bytes: float
    activation_bytes: float
    kv_bytes: float
    comm_bytes: float
    t_theory_s: float = Field(description="Σ total_t_theory over operators with a time")
    t_roof_s: float = Field(description="Σ total_t_roof (no κ)")
    untimed: list[str] = Field(default_factory=list, description="operators without a time (and why)")

    @property
    def memory_bytes(self) -> float:
        """Σ bytes through GPU memory (weights + activations + KV) per GPU."""
        return self.weight_bytes + self.activation_bytes + self.kv_bytes


def time_operator(op: Operator, hw: Hardware) -> OperatorTime:
    """The roofline of one operator: T = max(F/P_peak, Bytes/B_eff)·κ (communication: bytes/link)."""
    peak = hw.peak_for(op.category)
    t_compute = op.flops / peak
    if op.is_communication:
        if hw.link_bandwidth is None:
            return OperatorTime(
                operator=op,
                intensity=None,
                bound="communication",
                peak_flops=peak,
                t_compute_s=t_compute,
                t_memory_s=None,
                t_roof_s=None,
                t_theory_s=None,
                total_t_theory_s=None,
                total_t_roof_s=None,
                na_reason="no interconnect bandwidth known (pass --link-bandwidth)",
            )
        t_memory = op.comm_bytes / (hw.link_bandwidth * hw.link_efficiency)
        bound: Bound = "communication"
    else:
        t_memory = op.memory_bytes / hw.effective_bandwidth
        bound = "compute" if t_compute > t_memory else "memory"
    t_roof = max(t_compute, t_memory)
    bytes_ = op.memory_bytes
    return OperatorTime(
        operator=op,
        intensity=op.flops / bytes_ if bytes_ > 0 and not op.is_communication else None,
        bound=bound,
        peak_flops=peak,
        t_compute_s=t_compute,
        t_memory_s=t_memory,
        t_roof_s=t_roof,
        t_theory_s=t_roof * hw.kappa,
        total_t_theory_s=t_roof * hw.kappa * op.layers,
        total_t_roof_s=t_roof * op.layers,
    )


def phase_estimate(model: ModelConfig, scenario: Scenario, phase: Phase, hw: Hardware) -> PhaseEstimate:
    """Every operator of the pass with its roofline, the sums, and each operator's share."""
    timed = [time_operator(op, hw) for op in build_operators(model, scenario, phase)]
    total = sum(t.total_t_theory_s for t in timed if t.total_t_theory_s is not None)
    timed = [t.model_copy(update={"share": _share(t.total_t_theory_s, total)}) for t in timed]
    ops = [t.operator for t in timed]
    return PhaseEstimate(
        phase=phase,
        operators=timed,
        flops=sum(o.flops * o.layers for o in ops),
        weight_bytes=sum(o.weight_bytes * o.layers for o in ops),
        activation_bytes=sum(o.activation_bytes * o.layers for o in ops),
        kv_bytes=sum(o.kv_bytes * o.layers for o in ops),
        comm_bytes=sum(o.comm_bytes * o.layers for o in ops),
        t_theory_s=total,
        t_roof_s=sum(t.total_t_roof_s for t in timed if t.total_t_roof_s is not None),
        untimed=[f"{t.operator.name}: {t.na_reason}" for t in timed if t.na_reason],
    )


def _share(part: float | None, total: float) -> float | None:
    return None if part is None or total <= 0 else part / total


def both_phases(model: ModelConfig, scenario: Scenario, hw: Hardware) -> dict[Phase, PhaseEstimate]:
    """Prefill and decode estimates, keyed by phase."""
    return {phase: phase_estimate(model, scenario, phase, hw) for phase in PHASES}
