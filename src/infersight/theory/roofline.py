"""Time of each operator on a GPU (methodology §2) and the whole-model sums.

The arithmetic (F, bytes) comes from :mod:`infersight.theory.operators`; turning it into time is
the calibrated model of :mod:`infersight.theory.time_model`:
``T = (t_c^p + t_m^p)^(1/p) + t_floor`` with ``t_c = F / (η_c·P_peak)`` and ``t_m = B / (η_m·BW)``
for kernels (t_floor: the matmul floor, or the smaller floor of other kernels),
``T = α + bytes / (η_link·BW_link)`` for all-reduce / all-gather (their bytes already carry the
ring factor), the faster of the NCCL ring and the one-shot custom all-reduce engines use for
small messages. Matmul operators (categories GEMM, attention, MoE) use the tensor-core peak
of the compute dtype; the others (norms, activations, RoPE, copies, sampling) run on the CUDA
cores and use the fp32 vector peak. Without a link bandwidth a collective's time is not estimated
(``None``, with the reason), never 0.

:func:`hardware_from_gpu` fills η_c, η_m, p, t_floor, α and η_link from ``data/time_model.toml``
for the GPU's generation (fitted on measured H100 kernels and all-reduces). A :class:`Hardware`
built by hand without them is the plain roofline ``max(F/P, B/(η_m·BW))`` (η_c = 1, p = ∞, no
floor, α = 0). κ (default 1) multiplies the result: ``T_theory = T·κ``; ``T_roof`` (E_roof's
reference) is ``T`` without κ.
"""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, Field

from infersight.errors import InputError
from infersight.theory.model_config import ModelConfig
from infersight.theory.operators import PHASES, Operator, Phase, Scenario, build_operators
from infersight.theory.time_model import combine, time_model_params

DEFAULT_KAPPA = 1.0  # the calibrated model already carries the efficiencies; κ is the user's extra margin
DEFAULT_MEMORY_EFFICIENCY = 0.85  # plain-roofline default of a hand-built Hardware only
DEFAULT_LINK_EFFICIENCY = 0.8
MATMUL_CATEGORIES = frozenset({"GEMM", "attention", "MoE"})
VECTOR_DTYPE = "fp32"
OPERATOR_DTYPES = ("fp16", "bf16", "fp32")  # dtypes an operator may run in besides the compute dtype

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
    compute_efficiency: float = Field(default=1.0, gt=0, le=1, description="η_c: t_c = F / (η_c·P_peak)")
    overlap_exponent: float | None = Field(
        default=None, ge=1, description="p in (t_c^p + t_m^p)^(1/p); None = max (the plain roofline)"
    )
    kernel_floor_s: float = Field(
        default=0.0, ge=0, description="t_floor of one matmul kernel (GEMM, attention), s"
    )
    vector_floor_s: float = Field(
        default=0.0, ge=0, description="t_floor of one non-matmul kernel (norm, copy), s"
    )
    collective_alpha_s: float = Field(default=0.0, ge=0, description="α: fixed time of one collective, s")
    oneshot_alpha_s: float | None = Field(
        default=None, ge=0, description="α of a one-shot custom all-reduce inside a node (None: ring only), s"
    )
    oneshot_efficiency: float | None = Field(
        default=None, gt=0, le=1, description="η_link of the one-shot custom all-reduce"
    )
    time_model: str = Field(default="plain roofline", description="where η_c, η_m, p, t_floor, α come from")
    kappa: float = Field(default=DEFAULT_KAPPA, ge=1.0, description="κ: T_theory = T·κ")
    dtype_peak_flops: dict[str, float] = Field(
        default_factory=dict,
        description="dense tensor-core FLOP/s of the other dtypes the GPU has (an operator that runs "
        "in another dtype than the model's compute dtype, e.g. bf16 attention of an fp8 checkpoint)",
    )

    @property
    def effective_bandwidth(self) -> float:
        """B_eff = bandwidth · η_mem (bytes/s)."""
        return self.memory_bandwidth * self.memory_efficiency

    def peak_for(self, category: str, dtype: str | None = None) -> float:
        """P_peak for an operator of ``category``: tensor cores for matmuls, CUDA cores otherwise.

        ``dtype``: the operator's own dtype when it differs from the compute dtype (its tensor-core
        rate when the GPU lists one, else the compute dtype's).
        """
        if category not in MATMUL_CATEGORIES:
            return self.vector_peak_flops
        if dtype is None or dtype == self.compute_dtype:
            return self.matmul_peak_flops
        return self.dtype_peak_flops.get(dtype, self.matmul_peak_flops)


def hardware_from_gpu(
    gpu: GpuLike,
    dtype: str,
    *,
    kappa: float = DEFAULT_KAPPA,
    memory_efficiency: float | None = None,
    link_bandwidth_gb_per_s: float | None = None,
) -> Hardware:
    """Time-model parameters of ``gpu`` for matmuls in ``dtype`` (fp32 vector peak for the rest).

    η_c, η_m, p, t_floor, α and η_link are the calibrated figures of the GPU's generation
    (``family`` in the spec table), else the generic default; ``memory_efficiency`` overrides η_m.
    """
    matmul = gpu.peak_flops(dtype)
    try:
        vector = gpu.peak_flops(VECTOR_DTYPE)
    except InputError:
        vector = matmul
    params = time_model_params(getattr(gpu, "family", None))
    others: dict[str, float] = {}
    for other in OPERATOR_DTYPES:
        try:
            others[other] = gpu.peak_flops(other)
        except InputError:
            continue
    return Hardware(
        name=gpu.name,
        compute_dtype=dtype,
        matmul_peak_flops=matmul,
        vector_peak_flops=vector,
        memory_bandwidth=gpu.memory_bandwidth_gb_per_s * 1e9,
        memory_efficiency=params.kernel.memory_efficiency if memory_efficiency is None else memory_efficiency,
        link_bandwidth=None if link_bandwidth_gb_per_s is None else link_bandwidth_gb_per_s * 1e9,
        link_efficiency=params.intra_node.bus_efficiency,
        compute_efficiency=params.kernel.compute_efficiency,
        overlap_exponent=params.kernel.overlap_exponent,
        kernel_floor_s=params.kernel.floor_s,
        vector_floor_s=params.kernel.vector_floor_s,
        collective_alpha_s=params.intra_node.alpha_s,
        oneshot_alpha_s=params.oneshot.alpha_s,
        oneshot_efficiency=params.oneshot.bus_efficiency,
        time_model=f"calibrated ({params.generation}): data/time_model.toml",
        kappa=kappa,
        dtype_peak_flops=others,
    )


class OperatorTime(BaseModel):
    """One operator with its roofline: intensity, bound, times (per occurrence and per pass)."""

    operator: Operator
    intensity: float | None = Field(description="I = F / memory bytes; None for communication or 0 bytes")
    bound: Bound
    peak_flops: float = Field(description="P_peak used for this operator")
    t_compute_s: float = Field(description="F / (η_c·P_peak), per occurrence")
    t_memory_s: float | None = Field(description="bytes / B_eff (or over the link), per occurrence")
    t_roof_s: float | None = Field(
        description="time model per occurrence, no κ: (t_c^p + t_m^p)^(1/p) + t_floor; collectives α + t_link"
    )
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
    """One operator's time: the calibrated kernel model, or α + bytes/link for a collective."""
    peak = hw.peak_for(op.category, op.compute_dtype)
    t_compute = op.flops / (peak * hw.compute_efficiency)
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
        t_roof = hw.collective_alpha_s + t_memory
        if hw.oneshot_alpha_s is not None and hw.oneshot_efficiency is not None:
            oneshot_link = op.comm_bytes / (hw.link_bandwidth * hw.oneshot_efficiency)
            if hw.oneshot_alpha_s + oneshot_link < t_roof:  # small messages: the engine's one-shot kernel
                t_memory, t_roof = oneshot_link, hw.oneshot_alpha_s + oneshot_link
        bound: Bound = "communication"
    else:
        t_memory = op.memory_bytes / hw.effective_bandwidth
        bound = "compute" if t_compute > t_memory else "memory"
        floor = hw.kernel_floor_s if op.category in MATMUL_CATEGORIES else hw.vector_floor_s
        t_roof = _kernel_time(t_compute, t_memory, hw, floor)
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


def _kernel_time(t_compute: float, t_memory: float, hw: Hardware, floor: float) -> float:
    """(t_c^p + t_m^p)^(1/p) + t_floor; the plain max when p is None. An operator with no work takes 0."""
    if t_compute <= 0 and t_memory <= 0:
        return 0.0
    if hw.overlap_exponent is None:
        busy = max(t_compute, t_memory)
    else:
        busy = float(combine(t_compute, t_memory, hw.overlap_exponent))
    return busy + floor


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
