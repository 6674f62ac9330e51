"""Hand-built traces whose passes and layers are known by construction."""

from __future__ import annotations

from dataclasses import dataclass, field

from infersight.model import Trace
from infersight.model.trace import KERNEL_COLUMNS, make_table

NORM = "void vllm::rms_norm_kernel<c10::BFloat16>()"
ADD_NORM = "void vllm::fused_add_rms_norm_kernel<c10::BFloat16>()"
GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x128x64"
ROPE = "void vllm::rotary_embedding_kernel<>()"
KV_WRITE = "void vllm::reshape_and_cache_flash_kernel<>()"
ATTENTION = "void flash::FlashAttnFwdSm90<>()"
ALLREDUCE = "ncclDevKernel_AllReduce_Sum_bf16_RING_LL"
ACT = "void vllm::act_and_mul_kernel<>()"
ROUTER = "void moe::dev::routing::routingIndicesOffsetsKernel()"
EXPERTS = "bmm_Bfloat16_E4m3_Fp32_t128x16x256_dynBatch_sm100"
EMBED = "void at::native::vectorized_gather_kernel<>()"
ARGMAX = "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::ArgMaxOps<float>>>()"
SLIDING_MASK = "triton_poi_fused_sliding_window_mask_0"

LAYER_DURATIONS = {
    NORM: 3,
    ADD_NORM: 4,
    GEMM: 20,
    ROPE: 2,
    KV_WRITE: 2,
    ATTENTION: 15,
    ALLREDUCE: 6,
    ACT: 3,
    ROUTER: 5,
    EXPERTS: 30,
    EMBED: 2,
    ARGMAX: 3,
    SLIDING_MASK: 1,
}


def dense_layer(first: bool) -> list[str]:
    """One TP decoder layer: input norm .. MLP all-reduce (layer 0 has a plain RMSNorm)."""
    return [
        NORM if first else ADD_NORM,
        GEMM,
        ROPE,
        KV_WRITE,
        ATTENTION,
        GEMM,
        ALLREDUCE,
        ADD_NORM,
        GEMM,
        ACT,
        GEMM,
        ALLREDUCE,
    ]


def moe_layer(first: bool) -> list[str]:
    return [
        NORM if first else ADD_NORM,
        GEMM,
        ROPE,
        KV_WRITE,
        ATTENTION,
        GEMM,
        ALLREDUCE,
        ADD_NORM,
        ROUTER,
        EXPERTS,
        EXPERTS,
        ALLREDUCE,
    ]


@dataclass
class Built:
    trace: Trace
    layer_starts_ns: list[list[int]] = field(default_factory=list)  # per pass
    layer_ends_ns: list[list[int]] = field(default_factory=list)


def build(
    passes: int,
    layers: int,
    *,
    moe_from: int | None = None,
    step_gap_ns: int = 500_000,
    drop_first: int = 0,
    alternate: bool = False,
    bare: bool = False,
    heavy_every: int | None = None,
) -> Built:
    """``passes`` forward passes of ``layers`` layers: embedding + all-reduce, the layers, final norm,
    lm_head, argmax; ``step_gap_ns`` idle between passes; ``drop_first`` kernels cut off the start;
    ``alternate``: every even layer is a sliding-window layer with one more kernel (gpt-oss alternates
    sliding-window and full attention layers); ``bare``: no embedding / lm_head / argmax (a CUDA-graph
    replay whose sampling runs on another stream), only the step gap separates the passes;
    ``heavy_every`` N: every Nth layer runs two more of the layer kernels (a global-attention layer
    among sliding-window ones, as Gemma-3 has one in 6)."""
    names: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    built_starts: list[list[int]] = []
    built_ends: list[list[int]] = []
    clock = 1_000_000

    def emit(name: str) -> None:
        nonlocal clock
        duration = LAYER_DURATIONS[name] * 1000
        names.append(name)
        starts.append(clock)
        ends.append(clock + duration)
        clock += duration + 1000  # 1 µs launch gap

    for _ in range(passes):
        if not bare:
            emit(EMBED)
            emit(ALLREDUCE)
        pass_starts: list[int] = []
        pass_ends: list[int] = []
        for layer in range(layers):
            pass_starts.append(clock)
            kernels = (
                moe_layer(layer == 0)
                if moe_from is not None and layer >= moe_from
                else dense_layer(layer == 0)
            )
            if alternate and layer % 2 == 0:
                kernels = [*kernels[:4], SLIDING_MASK, *kernels[4:]]
            if heavy_every is not None and layer % heavy_every == heavy_every - 1:
                kernels = [*kernels[:2], ROPE, GEMM, *kernels[2:]]
            for name in kernels:
                emit(name)
            pass_ends.append(ends[-1])
        if not bare:
            emit(ADD_NORM)
            emit(GEMM)
            emit(ARGMAX)
        built_starts.append(pass_starts)
        built_ends.append(pass_ends)
        clock += step_gap_ns
    names, starts, ends = names[drop_first:], starts[drop_first:], ends[drop_first:]
    n = len(names)
    kernels = make_table(
        KERNEL_COLUMNS,
        {
            "device": [0] * n,
            "stream": [7] * n,
            "start": starts,
            "end": ends,
            "name": names,
            "correlation": list(range(n)),
        },
        "kernels",
    )
    return Built(Trace(source="synthetic.json", format="kineto", kernels=kernels), built_starts, built_ends)
