"""Does the scenario fit in GPU memory? Weights + KV cache (+ activations) per GPU against HBM.

Why: a roofline time for a model that cannot be loaded (DeepSeek-V3's 673 GB on one 80 GB H100,
Mixtral bf16 on one 80 GB GPU, Llama-3-70B on a 24 GB RTX 4090) is a number nobody can measure.
Per GPU (methodology §2, "Does it fit?"):

* weights = the checkpoint's bytes as stored (quantised parts at their width) / (TP·PP);
* KV cache = batch × Σ over layers of the per-sequence cache at the context: full attention
  L tokens, sliding window min(L, W), chunked attention min(L, C), linear attention a fixed
  state; K/V heads split over TP (replicated when fewer than TP), MLA's latent replicated;
* activations = an estimate of the largest live tensors of one prefill layer (residual, q/k/v,
  MLP gate+up) plus the fp32 logits: small next to weights except for long prompts;
* usable = capacity × usable_fraction − CUDA context (``data/memory_fit.toml``).

Policy: weights (+ activations) that do not fit → ``error`` (the run cannot load; the smallest TP
that fits is named); weights that fit but the KV cache for the requested batch × context does
not → ``warning`` with the largest batch that fits (engines queue the rest).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, Field

from infersight.theory.model_config import ModelConfig
from infersight.theory.params import weight_bytes

FitStatus = Literal["fits", "kv_does_not_fit", "weights_do_not_fit", "unknown"]
LOGIT_BYTES = 4.0  # engines upcast the logits to fp32
ACTIVATION_HIDDEN_COPIES = 2  # residual stream + norm output live together


@dataclass(frozen=True)
class MemoryPolicy:
    """The figures of ``data/memory_fit.toml``."""

    capacity_unit_bytes: float
    usable_fraction: float
    cuda_context_bytes: float
    gpus_per_node: int
    max_nodes: int
    prefill_chunk_tokens: int


@cache
def memory_policy() -> MemoryPolicy:
    """The shipped memory-fit figures, read once."""
    text = resources.files("infersight.data").joinpath("memory_fit.toml").read_text(encoding="utf-8")
    table = tomllib.loads(text)
    unit = float(table["capacity_unit_bytes"])
    return MemoryPolicy(
        capacity_unit_bytes=unit,
        usable_fraction=float(table["usable_fraction"]),
        cuda_context_bytes=float(table["cuda_context_gib"]) * 2**30,
        gpus_per_node=int(table["gpus_per_node"]),
        max_nodes=int(table["max_nodes"]),
        prefill_chunk_tokens=int(table["prefill_chunk_tokens"]),
    )


class MemoryFit(BaseModel):
    """Per-GPU memory of the scenario against the GPU's usable memory, and the verdict."""

    status: FitStatus = Field(
        description="fits, kv_does_not_fit (warning), weights_do_not_fit (error), unknown"
    )
    gpu: str
    tp: int
    pp: int = 1
    capacity_bytes: float | None = Field(description="GPU memory (marketed GB as GiB); None when unknown")
    usable_bytes: float | None = Field(description="capacity × usable fraction − CUDA context")
    weight_bytes: float = Field(description="weights per GPU")
    kv_cache_bytes: float = Field(
        description="KV cache (and linear-attention states) per GPU for batch × context"
    )
    kv_bytes_per_sequence: float = Field(description="KV cache per GPU of one sequence at the context")
    activation_bytes: float = Field(
        description="estimated peak activations per GPU (one prefill layer + logits)"
    )
    total_bytes: float
    max_batch: int | None = Field(
        default=None, description="largest batch whose KV cache fits at this context (None: unknown)"
    )
    smallest_fitting_tp: int | None = Field(
        default=None, description="smallest TP (powers of two per node, then whole nodes) where it all fits"
    )
    smallest_tp_for_weights: int | None = Field(
        default=None, description="smallest TP where the weights and activations alone fit"
    )
    message: str = Field(description="one line: what fits, or what does not and what would")


def kv_bytes_per_sequence(model: ModelConfig, context: int, tp: int = 1) -> float:
    """KV cache of one sequence at ``context`` tokens, per GPU under TP, summed over the layers.

    Standard attention stores ``2·kv_heads·head_dim`` elements per token and layer (K and V,
    heads split over TP, at least one per GPU); MLA stores its latent + RoPE key once, on every
    rank; sliding-window layers keep min(L, W) tokens, chunked layers min(L, C); linear-attention
    layers keep a fixed state (model dtype) whatever L is.
    """
    per_token = _kv_elements_per_token(model, tp) * model.kv_cache_bytes
    total = 0.0
    for layer in range(model.num_layers):
        kind = model.attention_kind(layer)
        if kind == "linear":
            lin = model.linear_attention
            assert lin is not None
            total += lin.state_elements / tp * model.activation_bytes
            continue
        if kind == "sliding" and model.sliding_window is not None:
            tokens = min(context, model.sliding_window)
        elif kind == "chunked" and model.attention_chunk_size is not None:
            tokens = min(context, model.attention_chunk_size)
        else:
            tokens = context
        total += tokens * per_token
    return total


def _kv_elements_per_token(model: ModelConfig, tp: int) -> float:
    if model.mla is not None:
        return model.mla.kv_lora_rank + model.mla.qk_rope_head_dim
    return 2 * max(model.num_kv_heads // tp, 1) * model.head_dim


def activation_bytes_estimate(model: ModelConfig, tokens: int, batch: int, tp: int = 1) -> float:
    """Largest live activations of one prefill layer (per GPU) plus the fp32 logits.

    ``tokens`` is capped at the prefill chunk (``prefill_chunk_tokens``): engines prefill long
    batches in chunks. Residual + norm output (2·H), q/k/v ((N_h + 2·N_kv)·d / TP) and the MLP's
    gate and up outputs (2·I / TP, the widest of dense, shared and top-k routed widths) for
    ``tokens`` tokens, and the logits of the last position of each sequence (B·V/TP·4 bytes).
    An estimate: engines reuse buffers, and vLLM profiles the real peak at start-up.
    """
    tokens = min(tokens, memory_policy().prefill_chunk_tokens)
    hidden = model.hidden_size
    qkv = (model.num_attention_heads + 2 * model.num_kv_heads) * model.head_dim / tp
    widths = [model.intermediate_size]
    if model.moe is not None:
        widths.append(model.moe.expert_intermediate_size * model.moe.experts_per_token)
        widths.append(model.moe.num_shared_experts * model.moe.shared_expert_intermediate_size)
    mlp = 2 * max(widths) / tp
    per_token = (ACTIVATION_HIDDEN_COPIES * hidden + qkv + mlp) * model.activation_bytes
    return tokens * per_token + batch * model.vocab_size / tp * LOGIT_BYTES


def weight_bytes_per_gpu(model: ModelConfig, tp: int = 1, pp: int = 1) -> float:
    """Stored weight bytes split over TP·PP (expert parallelism of the same degree splits the same bytes)."""
    return weight_bytes(model) / (tp * pp)


def tp_candidates(policy: MemoryPolicy | None = None) -> list[int]:
    """1, 2, 4, ... up to a node, then whole nodes: 8, 16, 24, ... up to max_nodes nodes."""
    policy = policy or memory_policy()
    within = [1 << i for i in range(int(math.log2(policy.gpus_per_node)) + 1)]
    across = [policy.gpus_per_node * n for n in range(2, policy.max_nodes + 1)]
    return within + across


def usable_bytes(memory_gb: float, policy: MemoryPolicy | None = None) -> float:
    """capacity × usable fraction − CUDA context."""
    policy = policy or memory_policy()
    return memory_gb * policy.capacity_unit_bytes * policy.usable_fraction - policy.cuda_context_bytes


def memory_fit(
    model: ModelConfig,
    *,
    gpu: str,
    memory_gb: float | None,
    batch: int,
    prompt: int,
    context: int,
    tp: int = 1,
    pp: int = 1,
) -> MemoryFit:
    """Weights, KV cache and activations per GPU against the usable memory, with the verdict.

    ``context`` is the longest KV length of the scenario (decode context, at least the prompt).
    """
    longest = max(prompt, context)
    weights = weight_bytes_per_gpu(model, tp, pp)
    kv_one = kv_bytes_per_sequence(model, longest, tp) / pp
    kv = batch * kv_one
    activations = activation_bytes_estimate(model, batch * prompt, batch, tp)
    total = weights + kv + activations
    unknown = MemoryFit(
        status="unknown",
        gpu=gpu,
        tp=tp,
        pp=pp,
        capacity_bytes=None,
        usable_bytes=None,
        weight_bytes=weights,
        kv_cache_bytes=kv,
        kv_bytes_per_sequence=kv_one,
        activation_bytes=activations,
        total_bytes=total,
        message=f"memory fit not checked: the memory size of {gpu} is not known",
    )
    if memory_gb is None:
        return unknown
    policy = memory_policy()
    usable = usable_bytes(memory_gb, policy)
    capacity = memory_gb * policy.capacity_unit_bytes
    fits_all = _smallest_tp(model, memory_gb, batch, prompt, longest, pp, with_kv=True)
    fits_weights = _smallest_tp(model, memory_gb, batch, prompt, longest, pp, with_kv=False)
    room = usable - weights - activations
    max_batch = max(int(room // kv_one), 0) if kv_one > 0 else None
    per_gpu = f"{_gb(total)} per GPU (weights {_gb(weights)}, KV {_gb(kv)}, activations ~{_gb(activations)})"
    where = f"{_gb(usable)} usable of {gpu}'s {memory_gb:g} GB"
    if room < 0:
        status: FitStatus = "weights_do_not_fit"
        message = (
            f"does not fit: weights need {_gb(weights)} per GPU at TP {tp} (+ ~{_gb(activations)} "
            "of activations), "
            f"more than the {where}; {_suggest(fits_weights, 'the weights fit')}"
        )
    elif total > usable:
        status = "kv_does_not_fit"
        message = (
            f"KV cache does not fit: {per_gpu} exceeds the {where}; at context {longest} at most "
            f"{max_batch} sequence(s) fit (batch {batch} asked); {_suggest(fits_all, 'batch {batch} fits')}"
        ).replace("{batch}", str(batch))
    else:
        status = "fits"
        message = f"fits: {per_gpu} of the {where}"
    return unknown.model_copy(
        update={
            "status": status,
            "capacity_bytes": capacity,
            "usable_bytes": usable,
            "max_batch": max_batch,
            "smallest_fitting_tp": fits_all,
            "smallest_tp_for_weights": fits_weights,
            "message": message,
        }
    )


def _smallest_tp(
    model: ModelConfig, memory_gb: float, batch: int, prompt: int, context: int, pp: int, *, with_kv: bool
) -> int | None:
    """The smallest candidate TP (dividing the attention heads) at which it fits."""
    usable = usable_bytes(memory_gb)
    for tp in tp_candidates():
        if model.num_attention_heads % tp:  # TP must split the heads evenly
            continue
        need = weight_bytes_per_gpu(model, tp, pp) + activation_bytes_estimate(
            model, batch * prompt, batch, tp
        )
        if with_kv:
            need += batch * kv_bytes_per_sequence(model, context, tp) / pp
        if need <= usable:
            return tp
    return None


def _suggest(tp: int | None, what: str) -> str:
    if tp is None:
        return f"no TP up to {tp_candidates()[-1]} GPUs makes it fit"
    policy = memory_policy()
    if tp <= policy.gpus_per_node:
        return f"{what} from --tp {tp}"
    return f"{what} from --tp {tp} ({tp // policy.gpus_per_node} nodes of {policy.gpus_per_node} GPUs)"


def _gb(value: float) -> str:
    return f"{value / 1e9:.1f} GB"
