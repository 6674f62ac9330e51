"""The operators of one forward pass, with FLOPs and bytes per GPU (methodology §2).

:func:`build_operators` lists, for the **prefill** pass (batch B, prompt S: T = B·S tokens) or
one **decode** step (batch B, context L: T = B tokens, each attending to L cached tokens), every
operator of a layer (attn_norm, q/k/v projections, RoPE, KV-cache store, attention, out_proj,
residual adds, mlp_norm, gate/up/SwiGLU/down or the MoE router + experts, tensor-parallel
all-reduces) and the model-level ones (embedding, final norm, lm_head, sampling). Nothing here
knows the GPU: :mod:`infersight.theory.roofline` turns the counts into time.

Conventions (the contract with the tests' hand derivations):

* GEMM ``F = 2·M·N·K``; bytes = weights (N·K·α_w) + input (M·K·α_a) + output (M·N·α_a), each
  tensor read or written once (ideal tiling); a bias adds N weights and M·N FLOPs.
* RMSNorm ``F = 4·T·H`` (square, sum, scale, weight); SwiGLU ``F = 3·T·I``; residual add
  ``F = T·H``; softmax ``F = 5·B·N_h·S_q·S_k`` (max, subtract, exp, sum, divide); RoPE 3 FLOPs per
  rotated element.
* Flash (fused) attention: prefill is causal, so only the S·(S+1)/2 (query, key) pairs per
  sequence are computed (masked tiles are skipped); ``F = pairs·N_h·(2·d_qk + 2·d_v + 5)``;
  bytes = Q + K + V read once + O written. Unfused attention computes the full S_q × S_k
  score matrix (then masks it) as three kernels (qk GEMM, softmax, sv GEMM); the score and
  probability tensors are temporaries counted with the factor β (β ≈ 1.2–1.5).
* Byte classes: ``weight_bytes`` (parameters, α_w), ``kv_bytes`` (KV-cache traffic, α_kv: the
  store of new K/V and, in decode, the read of the whole cache), ``activation_bytes`` (α_a;
  prefill attention reads K/V from the fresh projections, so those are activations).
* Tensor parallelism (Megatron style, degree t): attention heads, MLP/expert widths and the
  vocabulary are split t ways; norms, RoPE tables, the MoE router and the MLA down-projections
  (q_a, kv_a) are replicated; after out_proj and after the MLP (and after the vocab-parallel
  embedding) a ring all-reduce sends ``2·(t−1)/t·T·H·α_a`` bytes per GPU, and the vocab-parallel
  logits are all-gathered. KV heads fewer than t are replicated (one per GPU).
* MoE: each token runs top-k experts; expert GEMMs are category ``MoE`` (as the kernel table
  classifies fused-MoE kernels). Weights read = distinct experts touched. For T tokens routed
  independently and uniformly, the expected number of distinct experts is
  ``E·(1 − (1 − k/E)^T)`` — decode with small B touches far fewer than E experts; prefill
  touches practically all. Real routers are not uniform (this is an upper estimate of reuse).
  Expert parallelism is not modelled (experts are split by TP).
* MLA (DeepSeek): prefill uses the decompressed ("naive") form — kv_b_proj expands the latent
  to per-head K_nope/V and attention is MHA with d_qk = nope + rope, d_v = v_head_dim; decode
  uses the absorbed form — W_UK is applied to q (q_absorb) and W_UV to the output (out_absorb),
  and attention runs MQA-like over the cached latent (kv_lora_rank + rope dims per token, one
  copy for all heads, replicated on every TP rank). This is what vLLM/SGLang (FlashMLA) run.
* Weight widths: ``embedding_bytes_per_weight`` for the embedding and lm_head tables,
  ``attention_bytes_per_weight`` for the attention projections, ``weight_bytes`` for the MLP and
  experts (quantisation schemes leave the tables, sometimes the attention, unquantised); the MoE
  router and the norm weights at the activation width. Biases (attention, MLP, router, experts)
  add N weights and M·N FLOPs.
* lm_head and sampling run only for the last position of each sequence (what serving engines
  do); sampling is a softmax over fp32 logits and one draw: ``F = 5·B·V``, bytes = 3·B·V·4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from infersight.errors import InputError
from infersight.theory.model_config import ModelConfig
from infersight.validate import check_scenario, finite_float

Phase = Literal["prefill", "decode"]
PHASES: tuple[Phase, ...] = ("prefill", "decode")
AttentionForm = Literal["flash", "unfused"]

ROPE_FLOPS_PER_ELEMENT = 3  # x·cos + rotate(x)·sin
SOFTMAX_FLOPS_PER_ELEMENT = 5  # max, subtract, exp, sum, divide
NORM_FLOPS_PER_ELEMENT = 4  # square, sum, scale, weight
SWIGLU_FLOPS_PER_ELEMENT = 3  # silu (as one op), multiply by up, (cast) -- F = 3·B·S·I
GELU_FLOPS_PER_ELEMENT = 8  # tanh approximation with tanh counted as one op
SIGMOID_GATE_FLOPS_PER_ELEMENT = 5  # sigmoid (exp, add, divide counted as 4) and the multiply
DELTA_RULE_FLOPS_PER_STATE_ELEMENT = 7  # gated delta rule per token: decay, S·k, update, S·q
CONV_FLOPS_PER_TAP = 2  # multiply-add per conv1d tap
ROUTER_FLOPS_PER_LOGIT = 5  # softmax/sigmoid + top-k selection, per router logit
SAMPLING_LOGIT_BYTES = 4.0  # serving engines upcast logits to fp32 before sampling
SAMPLING_PASSES = 3  # softmax reads the logits and writes probabilities; the draw reads them
ROUTING_BYTES_PER_CHOICE = 8.0  # fp32 routing weight + int32 expert id per (token, expert)
TOKEN_ID_BYTES = 4.0  # int32 token ids read by the embedding lookup
DEFAULT_TEMPORARY_FACTOR = 1.25  # β of methodology §2 (1.2-1.5) for materialised attention scores


class Scenario(BaseModel):
    """What is run: batch, prompt length, decode context length, TP degree, attention form."""

    model_config = {"frozen": True}

    batch: int = Field(ge=1, description="sequences per pass (B)")
    prompt_len: int = Field(ge=1, description="prompt tokens per sequence in the prefill pass (S)")
    context_len: int = Field(ge=1, description="tokens in the KV cache each decoded token attends to (L)")
    tp: int = Field(default=1, ge=1, description="tensor-parallel degree: work per GPU is divided by it")
    attention: AttentionForm = Field(
        default="flash", description="fused flash attention, or unfused qk/softmax/sv"
    )
    temporary_factor: float = Field(
        default=DEFAULT_TEMPORARY_FACTOR,
        ge=1.0,
        description="β: multiplier on bytes of materialised temporaries",
    )

    @model_validator(mode="after")
    def _bounded(self) -> Scenario:
        """Sizes within the documented bounds, whichever front end built the scenario (InputError)."""
        check_scenario(self.batch, self.prompt_len, self.context_len, self.tp)
        finite_float(self.temporary_factor, "temporary factor", minimum=1.0)
        return self


class Operator(BaseModel):
    """One operator of the forward pass, counted per GPU and per occurrence (one layer)."""

    name: str
    phase: Phase
    category: str = Field(description="kernel category vocabulary (GEMM, attention, norm, ...)")
    block: str = Field(description="attention, mlp, moe, shared_expert, or model (outside the layers)")
    layers: int = Field(description="occurrences per forward pass (layers it runs in; 1 for model ops)")
    shape: str = Field(description="the dimensions the counts come from, per GPU")
    flops: float = Field(description="FLOPs per occurrence per GPU")
    weight_bytes: float = Field(description="parameter bytes read per occurrence per GPU")
    activation_bytes: float = Field(description="activation bytes read + written (temporaries × β)")
    kv_bytes: float = Field(description="KV-cache bytes read + written")
    comm_bytes: float = Field(
        default=0.0, description="bytes sent over the GPU interconnect (all-reduce/gather)"
    )
    note: str = ""
    compute_dtype: str | None = Field(
        default=None,
        description="dtype whose peak rate this operator runs at; None: the model's compute dtype "
        "(attention runs in the activation dtype even when the weights are fp8)",
    )

    @property
    def memory_bytes(self) -> float:
        """Bytes moved through GPU memory per occurrence (weights + activations + KV)."""
        return self.weight_bytes + self.activation_bytes + self.kv_bytes

    @property
    def is_communication(self) -> bool:
        """True for all-reduce / all-gather operators (timed on the interconnect, not HBM)."""
        return self.comm_bytes > 0


@dataclass(frozen=True)
class _Pass:
    """Per-pass sizes shared by every operator builder."""

    model: ModelConfig
    scenario: Scenario
    phase: Phase
    batch: int
    q_len: int  # query tokens per sequence in this pass (S, or 1)
    kv_len: int  # keys each query of the last position sees (S, or L)
    tokens: int  # T = B·q_len
    tp: int
    w: float  # α_w
    a: float  # α_a
    kv: float  # α_kv

    @property
    def heads(self) -> int:
        return self.model.num_attention_heads // self.tp

    @property
    def kv_heads(self) -> int:
        return max(self.model.num_kv_heads // self.tp, 1)


def build_operators(model: ModelConfig, scenario: Scenario, phase: Phase) -> list[Operator]:
    """Every operator of one ``phase`` pass of ``model`` under ``scenario``, per GPU.

    Raises InputError when the TP degree does not divide the attention heads (or the KV heads,
    unless it is a multiple of them).
    """
    _check_tp(model, scenario.tp)
    q_len = scenario.prompt_len if phase == "prefill" else 1
    kv_len = scenario.prompt_len if phase == "prefill" else scenario.context_len
    p = _Pass(
        model=model,
        scenario=scenario,
        phase=phase,
        batch=scenario.batch,
        q_len=q_len,
        kv_len=kv_len,
        tokens=scenario.batch * q_len,
        tp=scenario.tp,
        w=model.weight_bytes,
        a=model.activation_bytes,
        kv=model.kv_cache_bytes,
    )
    ops: list[Operator] = [*_embedding_ops(p)]
    ops += _attention_block(p)
    dense = sum(1 for layer in range(model.num_layers) if not model.is_moe_layer(layer))
    moe_layers = model.num_layers - dense
    if dense:
        ops += _dense_mlp_block(p, dense)
    if moe_layers:
        ops += _moe_block(p, moe_layers)
    ops += _head_ops(p)
    return ops


def _check_tp(model: ModelConfig, tp: int) -> None:
    if model.num_attention_heads % tp:
        raise InputError(
            None, f"--tp {tp} does not divide the {model.num_attention_heads} attention heads of {model.name}"
        )
    nkv = model.num_kv_heads
    if model.mla is None and nkv % tp and tp % nkv:
        raise InputError(
            None, f"--tp {tp} neither divides nor is a multiple of the {nkv} KV heads of {model.name}"
        )


# ---------------------------------------------------------------- operator helpers


def _op(
    p: _Pass,
    name: str,
    category: str,
    block: str,
    layers: int,
    shape: str,
    *,
    flops: float,
    weight_bytes: float,
    activation_bytes: float,
    kv_bytes: float,
    comm_bytes: float = 0.0,
    note: str = "",
    compute_dtype: str | None = None,
) -> Operator:
    return Operator(
        name=name,
        phase=p.phase,
        category=category,
        block=block,
        layers=layers,
        shape=shape,
        flops=flops,
        weight_bytes=weight_bytes,
        activation_bytes=activation_bytes,
        kv_bytes=kv_bytes,
        comm_bytes=comm_bytes,
        note=note,
        compute_dtype=compute_dtype,
    )


def _gemm(
    p: _Pass,
    name: str,
    block: str,
    layers: int,
    m: int,
    n: float,
    k: float,
    *,
    category: str = "GEMM",
    batch: float = 1,
    weight_element: float | None = None,
    bias: bool = False,
    note: str = "",
) -> Operator:
    """``batch`` independent M×N×K products, each with its own N×K weight (bias optional)."""
    if weight_element is not None:
        alpha_w = weight_element
    elif block == "attention":  # some schemes keep the attention projections unquantised (gpt-oss)
        alpha_w = p.model.attention_bytes_per_weight
    else:
        alpha_w = p.w
    flops = 2.0 * m * n * k * batch + (m * n * batch if bias else 0.0)
    weights = (n * k + (n if bias else 0.0)) * batch * alpha_w
    shape = f"M={m}, N={_num(n)}, K={_num(k)}" + (f", batch={_num(batch)}" if batch != 1 else "")
    return _op(
        p,
        name,
        category,
        block,
        layers,
        shape,
        flops=flops,
        weight_bytes=weights,
        activation_bytes=(m * k + m * n) * batch * p.a,
        kv_bytes=0.0,
        note=note,
    )


def _norm(p: _Pass, name: str, block: str, layers: int, tokens: int, width: int) -> Operator:
    """RMSNorm over ``width``: read x, write y (α_a), read the weight vector (kept unquantised)."""
    return _op(
        p,
        name,
        "norm",
        block,
        layers,
        f"T={tokens}, H={width}",
        flops=float(NORM_FLOPS_PER_ELEMENT * tokens * width),
        weight_bytes=width * p.a,
        activation_bytes=2.0 * tokens * width * p.a,
        kv_bytes=0.0,
    )


def _residual(p: _Pass, name: str, block: str, layers: int) -> Operator:
    h = p.model.hidden_size
    return _op(
        p,
        name,
        "elementwise",
        block,
        layers,
        f"T={p.tokens}, H={h}",
        flops=float(p.tokens * h),
        weight_bytes=0.0,
        activation_bytes=3.0 * p.tokens * h * p.a,
        kv_bytes=0.0,
    )


def _allreduce(p: _Pass, name: str, block: str, layers: int, elements: int) -> list[Operator]:
    """Ring all-reduce of ``elements`` activations across the TP group (none without TP)."""
    if p.tp == 1:
        return []
    share = (p.tp - 1) / p.tp
    return [
        _op(
            p,
            name,
            "NCCL",
            block,
            layers,
            f"elements={elements}, tp={p.tp}",
            flops=share * elements,
            weight_bytes=0.0,
            activation_bytes=0.0,
            kv_bytes=0.0,
            comm_bytes=2.0 * share * elements * p.a,
            note="ring all-reduce: 2·(t−1)/t of the tensor sent per GPU",
        )
    ]


def _swiglu(p: _Pass, name: str, block: str, layers: int, tokens: int, width: float) -> Operator:
    gated = p.model.gated_mlp
    per_element = SWIGLU_FLOPS_PER_ELEMENT if gated else GELU_FLOPS_PER_ELEMENT
    return _op(
        p,
        name,
        "activation",
        block,
        layers,
        f"T={tokens}, I={_num(width)}",
        flops=per_element * tokens * width,
        weight_bytes=0.0,
        activation_bytes=(3.0 if gated else 2.0) * tokens * width * p.a,
        kv_bytes=0.0,
        note="silu(gate)·up" if gated else "gelu(up)",
    )


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


# ---------------------------------------------------------------- model-level operators


def _embedding_ops(p: _Pass) -> list[Operator]:
    h = p.model.hidden_size
    lookup = _op(
        p,
        "embedding",
        "copy",
        "model",
        1,
        f"T={p.tokens}, H={h}, V={p.model.vocab_size}/{p.tp}",
        flops=0.0,
        weight_bytes=p.tokens * h * p.model.embedding_bytes_per_weight / p.tp,
        activation_bytes=p.tokens * TOKEN_ID_BYTES + p.tokens * h * p.a,
        kv_bytes=0.0,
        note="gather of the token rows (vocab-parallel: 1/t of the rows live on each GPU)",
    )
    return [lookup, *_allreduce(p, "embedding_allreduce", "model", 1, p.tokens * h)]


def _head_ops(p: _Pass) -> list[Operator]:
    model = p.model
    h, vocab = model.hidden_size, model.vocab_size
    ops = [
        _norm(p, "final_norm", "model", 1, p.tokens, h),
        _gemm(
            p,
            "lm_head",
            "model",
            1,
            p.batch,
            vocab / p.tp,
            h,
            weight_element=p.model.embedding_bytes_per_weight,
            note="last position of each sequence",
        ),
    ]
    if p.tp > 1:
        share = (p.tp - 1) / p.tp
        ops.append(
            _op(
                p,
                "logits_allgather",
                "NCCL",
                "model",
                1,
                f"B={p.batch}, V={vocab}, tp={p.tp}",
                flops=0.0,
                weight_bytes=0.0,
                activation_bytes=0.0,
                kv_bytes=0.0,
                comm_bytes=share * p.batch * vocab * p.a,
                note="all-gather of vocab-parallel logits",
            )
        )
    ops.append(
        _op(
            p,
            "sampling",
            "sampling",
            "model",
            1,
            f"B={p.batch}, V={vocab}",
            flops=float(SOFTMAX_FLOPS_PER_ELEMENT * p.batch * vocab),
            weight_bytes=0.0,
            activation_bytes=SAMPLING_PASSES * p.batch * vocab * SAMPLING_LOGIT_BYTES,
            kv_bytes=0.0,
            note="softmax over fp32 logits + one draw",
        )
    )
    return ops


# ---------------------------------------------------------------- attention block


@dataclass(frozen=True)
class _AttentionGroup:
    """Layers that attend the same way: full, a sliding window, or a chunk."""

    layers: int
    window: int | None = None  # sliding window (keys within the last W tokens)
    chunk: int | None = None  # chunked local attention (keys within the query's own chunk)
    suffix: str = ""


def _attention_groups(model: ModelConfig) -> list[_AttentionGroup]:
    """Softmax-attention layers grouped by how they attend (linear-attention layers excluded)."""
    counts = {kind: model.layers_of_kind(kind) for kind in ("full", "sliding", "chunked")}
    present = [kind for kind, count in counts.items() if count]
    groups = []
    for kind in present:
        suffix = (
            "" if len(present) == 1 else {"full": "_full", "sliding": "_window", "chunked": "_chunked"}[kind]
        )
        groups.append(
            _AttentionGroup(
                layers=counts[kind],
                window=model.sliding_window if kind == "sliding" else None,
                chunk=model.attention_chunk_size if kind == "chunked" else None,
                suffix=suffix,
            )
        )
    return groups


def causal_pairs(seq: int, window: int | None = None) -> int:
    """(query, key) pairs of causal attention over ``seq`` tokens: Σ_{i=1..S} min(i, W)."""
    if window is None or window >= seq:
        return seq * (seq + 1) // 2
    return window * (window + 1) // 2 + (seq - window) * window


def chunked_pairs(seq: int, chunk: int) -> int:
    """(query, key) pairs of chunked causal attention: each query sees its own chunk up to itself.

    Full chunks give C·(C+1)/2 pairs each, the last partial chunk of r tokens r·(r+1)/2.
    """
    full, rest = divmod(seq, chunk)
    return full * chunk * (chunk + 1) // 2 + rest * (rest + 1) // 2


def chunked_keys(context: int, chunk: int) -> int:
    """Keys the query at position ``context`` (1-based) sees under chunked attention: (L−1) mod C + 1."""
    return (context - 1) % chunk + 1


def attention_layer_count(model: ModelConfig) -> int:
    """Layers with softmax attention (all but the linear-attention layers of hybrid models)."""
    return model.num_layers - model.layers_of_kind("linear")


def _attention_block(p: _Pass) -> list[Operator]:
    model = p.model
    n = model.num_layers
    n_att = attention_layer_count(model)
    ops = [_norm(p, "attn_norm", "attention", n, p.tokens, model.hidden_size)]
    if n_att:
        ops += _mla_projections(p, n_att) if model.mla is not None else _qkv_projections(p, n_att)
        for group in _attention_groups(model):
            ops += _attention_core(p, group)
        if model.mla is not None and p.phase == "decode":
            mla = model.mla
            ops.append(
                _gemm(
                    p,
                    "out_absorb",
                    "attention",
                    n_att,
                    p.tokens,
                    mla.v_head_dim,
                    mla.kv_lora_rank,
                    batch=p.heads,
                    note="W_UV applied to the latent attention output per head (absorbed MLA)",
                )
            )
        v_dim = model.mla.v_head_dim if model.mla is not None else model.head_dim
        if model.gated_attention_output:
            ops.append(_output_gate(p, n_att, p.heads * v_dim))
        ops.append(_gemm(p, "o_proj", "attention", n_att, p.tokens, model.hidden_size, p.heads * v_dim))
    if n - n_att:
        ops += _linear_attention_block(p, n - n_att)
    ops += _allreduce(p, "attn_allreduce", "attention", n, p.tokens * model.hidden_size)
    if model.norms_per_layer >= 4:  # Gemma-2/3 sandwich norms: one after attention, one after the MLP
        ops.append(_norm(p, "post_attn_norm", "attention", n, p.tokens, model.hidden_size))
        ops.append(_norm(p, "post_mlp_norm", "attention", n, p.tokens, model.hidden_size))
    ops.append(_residual(p, "attn_residual_add", "attention", n))
    return ops


def _output_gate(p: _Pass, layers: int, width: int) -> Operator:
    """Qwen3-Next gated attention: o = attn · sigmoid(gate), the gate being q_proj's second half."""
    elements = p.tokens * width
    return _op(
        p,
        "attn_output_gate",
        "elementwise",
        "attention",
        layers,
        f"T={p.tokens}, width={width}",
        flops=float(SIGMOID_GATE_FLOPS_PER_ELEMENT * elements),
        weight_bytes=0.0,
        activation_bytes=3.0 * elements * p.a,
        kv_bytes=0.0,
        note="sigmoid output gate of gated attention",
    )


def _qkv_projections(p: _Pass, n: int) -> list[Operator]:
    model = p.model
    h, d = model.hidden_size, model.head_dim
    bias = model.attention_bias
    q_width = p.heads * d * (2 if model.gated_attention_output else 1)
    rope_layers = n - len([layer for layer in model.nope_layers if model.attention_kind(layer) != "linear"])
    ops = [
        _gemm(
            p,
            "q_proj",
            "attention",
            n,
            p.tokens,
            q_width,
            h,
            bias=bias,
            note="query and its output gate" if model.gated_attention_output else "",
        ),
        _gemm(p, "k_proj", "attention", n, p.tokens, p.kv_heads * d, h, bias=bias),
        _gemm(p, "v_proj", "attention", n, p.tokens, p.kv_heads * d, h, bias=bias),
    ]
    if rope_layers:
        ops.append(_rope(p, rope_layers, p.heads * d + p.kv_heads * d, d))
    ops.append(_kv_store(p, n, 2 * p.kv_heads * d, f"T={p.tokens}, kv_heads={p.kv_heads}, d={d}, K and V"))
    return ops


def _mla_projections(p: _Pass, n: int) -> list[Operator]:
    model = p.model
    mla = model.mla
    assert mla is not None
    h = model.hidden_size
    qk_dim = mla.qk_nope_head_dim + mla.qk_rope_head_dim
    latent = mla.kv_lora_rank + mla.qk_rope_head_dim
    ops: list[Operator] = []
    if mla.q_lora_rank is None:
        ops.append(_gemm(p, "q_proj", "attention", n, p.tokens, p.heads * qk_dim, h))
    else:
        ops += [
            _gemm(p, "q_a_proj", "attention", n, p.tokens, mla.q_lora_rank, h, note="replicated under TP"),
            _norm(p, "q_a_norm", "attention", n, p.tokens, mla.q_lora_rank),
            _gemm(p, "q_b_proj", "attention", n, p.tokens, p.heads * qk_dim, mla.q_lora_rank),
        ]
    ops += [
        _gemm(p, "kv_a_proj", "attention", n, p.tokens, latent, h, note="latent + k_pe; replicated under TP"),
        _norm(p, "kv_a_norm", "attention", n, p.tokens, mla.kv_lora_rank),
        _rope(p, n, p.heads * mla.qk_rope_head_dim + mla.qk_rope_head_dim, mla.qk_rope_head_dim),
        _kv_store(p, n, latent, f"T={p.tokens}, latent={mla.kv_lora_rank}+rope {mla.qk_rope_head_dim}"),
    ]
    if p.phase == "prefill":
        ops.append(
            _gemm(
                p,
                "kv_b_proj",
                "attention",
                n,
                p.tokens,
                p.heads * (mla.qk_nope_head_dim + mla.v_head_dim),
                mla.kv_lora_rank,
                note="decompress the latent to per-head K_nope and V (naive MLA prefill)",
            )
        )
    else:
        ops.append(
            _gemm(
                p,
                "q_absorb",
                "attention",
                n,
                p.tokens,
                mla.kv_lora_rank,
                mla.qk_nope_head_dim,
                batch=p.heads,
                note="W_UK absorbed into q per head (absorbed MLA decode)",
            )
        )
    return ops


def _rope(p: _Pass, layers: int, rotated_width: int, rope_dim: int) -> Operator:
    """RoPE on q and k: read + write the rotated elements, read cos/sin (rope_dim per token)."""
    elements = p.tokens * rotated_width
    return _op(
        p,
        "rope",
        "RoPE",
        "attention",
        layers,
        f"T={p.tokens}, rotated width={rotated_width}, rope dim={rope_dim}",
        flops=float(ROPE_FLOPS_PER_ELEMENT * elements),
        weight_bytes=0.0,
        activation_bytes=2.0 * elements * p.a + p.tokens * rope_dim * p.a,
        kv_bytes=0.0,
    )


def _kv_store(p: _Pass, layers: int, elements_per_token: int, shape: str) -> Operator:
    """Write the new tokens' K/V (or MLA latent) into the cache: read activations, write cache."""
    return _op(
        p,
        "kv_cache_store",
        "copy",
        "attention",
        layers,
        shape,
        flops=0.0,
        weight_bytes=0.0,
        activation_bytes=p.tokens * elements_per_token * p.a,
        kv_bytes=p.tokens * elements_per_token * p.kv,
    )


@dataclass(frozen=True)
class _AttentionDims:
    heads: int  # query heads per GPU
    qk_dim: int
    v_dim: int
    kv_read_per_token: int  # elements of K and V read per key token (per GPU)


def _attention_dims(p: _Pass) -> _AttentionDims:
    model, mla = p.model, p.model.mla
    if mla is None:
        d = model.head_dim
        return _AttentionDims(p.heads, d, d, 2 * p.kv_heads * d)
    if p.phase == "prefill":  # naive: MHA over decompressed per-head K (nope+rope) and V
        qk = mla.qk_nope_head_dim + mla.qk_rope_head_dim
        return _AttentionDims(p.heads, qk, mla.v_head_dim, p.heads * (qk + mla.v_head_dim))
    latent = mla.kv_lora_rank + mla.qk_rope_head_dim  # absorbed: K = latent+rope, V = latent
    return _AttentionDims(p.heads, latent, mla.kv_lora_rank, latent)


def _attention_core(p: _Pass, group: _AttentionGroup) -> list[Operator]:
    """Attention of one group of layers (full, sliding window or chunked), flash or unfused.

    Runs in the activation dtype (``ModelConfig.activation_dtype``): fp8 checkpoints quantise the
    projection weights, while Q, K and V reach attention in bf16/fp16 (methodology §2).
    """
    layers, window, chunk, suffix = group.layers, group.window, group.chunk, group.suffix
    dims = _attention_dims(p)
    if chunk is not None:
        keys = chunked_keys(p.kv_len, chunk) if p.phase == "decode" else min(p.kv_len, chunk)
    else:
        keys = min(p.kv_len, window) if window is not None else p.kv_len
    from_cache = p.phase == "decode"
    kv_read = p.batch * keys * dims.kv_read_per_token * (p.kv if from_cache else p.a)
    q_bytes = p.tokens * dims.heads * dims.qk_dim * p.a
    o_bytes = p.tokens * dims.heads * dims.v_dim * p.a
    kv_note = "K/V read from the KV cache" if from_cache else "K/V read from the fresh projections"
    dtype = p.model.activation_dtype
    if p.scenario.attention == "flash":
        if p.phase == "prefill":
            per_seq = chunked_pairs(p.q_len, chunk) if chunk is not None else causal_pairs(p.q_len, window)
        else:
            per_seq = keys
        pairs = p.batch * per_seq
        flops = pairs * dims.heads * (2 * dims.qk_dim + 2 * dims.v_dim + SOFTMAX_FLOPS_PER_ELEMENT)
        causal = ", causal" if p.phase == "prefill" else ""
        span = f"chunk {chunk}" if chunk is not None else (f"window {window}" if window is not None else "")
        return [
            _op(
                p,
                "attention" + suffix,
                "attention",
                "attention",
                layers,
                f"B={p.batch}, heads={dims.heads}, S_q={p.q_len}, S_k={keys}, d_qk={dims.qk_dim}, "
                f"d_v={dims.v_dim}, (q,k) pairs={pairs}" + (f", {span}" if span else ""),
                flops=float(flops),
                weight_bytes=0.0,
                activation_bytes=q_bytes + o_bytes + (0.0 if from_cache else kv_read),
                kv_bytes=kv_read if from_cache else 0.0,
                note=f"fused flash attention{causal}; {kv_note}; in {dtype}",
                compute_dtype=dtype,
            )
        ]
    beta = p.scenario.temporary_factor
    scores = p.batch * dims.heads * p.q_len * keys
    k_read = kv_read * dims.qk_dim / (dims.qk_dim + dims.v_dim) if p.model.mla is None else kv_read
    v_read = kv_read - k_read if p.model.mla is None else 0.0  # MLA: V is the latent already read
    shape = f"B={p.batch}, heads={dims.heads}, S_q={p.q_len}, S_k={keys}"
    kv_class = "kv_bytes" if from_cache else "activation_bytes"
    qk = _op(
        p,
        "qk_matmul" + suffix,
        "GEMM",
        "attention",
        layers,
        f"{shape}, d={dims.qk_dim}",
        flops=2.0 * scores * dims.qk_dim,
        weight_bytes=0.0,
        activation_bytes=q_bytes + beta * scores * p.a,
        kv_bytes=0.0,
        note=f"full S_q×S_k scores (masked), written as a temporary (β={beta:g}); {kv_note}",
    )
    softmax = _op(
        p,
        "softmax" + suffix,
        "attention",
        "attention",
        layers,
        shape,
        flops=float(SOFTMAX_FLOPS_PER_ELEMENT * scores),
        weight_bytes=0.0,
        activation_bytes=2.0 * beta * scores * p.a,
        kv_bytes=0.0,
    )
    sv = _op(
        p,
        "sv_matmul" + suffix,
        "GEMM",
        "attention",
        layers,
        f"{shape}, d={dims.v_dim}",
        flops=2.0 * scores * dims.v_dim,
        weight_bytes=0.0,
        activation_bytes=beta * scores * p.a + o_bytes,
        kv_bytes=0.0,
    )
    qk = qk.model_copy(update={kv_class: getattr(qk, kv_class) + k_read, "compute_dtype": dtype})
    sv = sv.model_copy(update={kv_class: getattr(sv, kv_class) + v_read, "compute_dtype": dtype})
    return [qk, softmax, sv]


def _linear_attention_block(p: _Pass, layers: int) -> list[Operator]:
    """Gated DeltaNet layers (Qwen3-Next): projections, causal conv1d, the delta-rule recurrence
    over a fixed d_k×d_v state per value head, gated norm, out_proj.

    The recurrence does ``DELTA_RULE_FLOPS_PER_STATE_ELEMENT`` FLOPs per state element per token
    (decay, S·k, the rank-1 update, S·q). Its state is what a KV cache is for softmax attention,
    but of fixed size: decode reads and writes it once per step; prefill writes the final state
    once (chunked kernels keep the running state on chip). The state is counted in the model
    dtype (α_a) as KV-class bytes; heads are split over TP.
    """
    lin = p.model.linear_attention
    assert lin is not None
    h = p.model.hidden_size
    tp = p.tp
    key_dim, value_dim, conv_dim = lin.key_dim / tp, lin.value_dim / tp, lin.conv_dim / tp
    v_heads = lin.num_value_heads / tp
    state = v_heads * lin.key_head_dim * lin.value_head_dim  # per sequence, per GPU
    conv_state = conv_dim * (lin.conv_kernel - 1)
    decode = p.phase == "decode"
    state_traffic = (2.0 if decode else 1.0) * p.batch * (state + conv_state) * p.a
    return [
        _gemm(p, "linear_in_proj_qkvz", "attention", layers, p.tokens, 2 * key_dim + 2 * value_dim, h),
        _gemm(p, "linear_in_proj_ba", "attention", layers, p.tokens, 2 * v_heads, h),
        _op(
            p,
            "linear_conv1d",
            "elementwise",
            "attention",
            layers,
            f"T={p.tokens}, channels={_num(conv_dim)}, kernel={lin.conv_kernel}",
            flops=float(CONV_FLOPS_PER_TAP * p.tokens * conv_dim * lin.conv_kernel),
            weight_bytes=conv_dim * lin.conv_kernel * p.a,
            activation_bytes=2.0 * p.tokens * conv_dim * p.a,
            kv_bytes=0.0,
            note="causal depthwise conv over q, k, v (its window is part of the state below)",
        ),
        _op(
            p,
            "linear_attention",
            "attention",
            "attention",
            layers,
            f"B={p.batch}, T={p.tokens}, value heads={_num(v_heads)}, d_k={lin.key_head_dim}, "
            f"d_v={lin.value_head_dim}",
            flops=float(DELTA_RULE_FLOPS_PER_STATE_ELEMENT * p.tokens * state),
            weight_bytes=0.0,
            activation_bytes=p.tokens * (2 * key_dim + 2 * value_dim) * p.a,
            kv_bytes=state_traffic,
            note="gated delta rule over a fixed-size state (no KV cache grows with the context); "
            + ("state read and written once per step" if decode else "final state written once"),
            compute_dtype=p.model.activation_dtype,
        ),
        _op(
            p,
            "linear_gated_norm",
            "norm",
            "attention",
            layers,
            f"T={p.tokens}, width={_num(value_dim)}, weight={lin.value_head_dim}",
            flops=float((NORM_FLOPS_PER_ELEMENT + SIGMOID_GATE_FLOPS_PER_ELEMENT) * p.tokens * value_dim),
            weight_bytes=lin.value_head_dim * p.a,  # one weight vector shared by every value head
            activation_bytes=3.0 * p.tokens * value_dim * p.a,  # read o and the gate z, write
            kv_bytes=0.0,
            note="RMSNorm per value head, gated by silu(z)",
        ),
        _gemm(p, "linear_out_proj", "attention", layers, p.tokens, h, value_dim),
    ]


# ---------------------------------------------------------------- MLP blocks


def _dense_mlp_block(p: _Pass, layers: int) -> list[Operator]:
    model = p.model
    h, width = model.hidden_size, model.intermediate_size / p.tp
    ops = [_norm(p, "mlp_norm", "mlp", layers, p.tokens, h)]
    if model.gated_mlp:
        ops.append(_gemm(p, "gate_proj", "mlp", layers, p.tokens, width, h, bias=model.mlp_bias))
    ops += [
        _gemm(p, "up_proj", "mlp", layers, p.tokens, width, h, bias=model.mlp_bias),
        _swiglu(p, "swiglu" if model.gated_mlp else "gelu", "mlp", layers, p.tokens, width),
        _gemm(p, "down_proj", "mlp", layers, p.tokens, h, width, bias=model.mlp_bias),
        *_allreduce(p, "mlp_allreduce", "mlp", layers, p.tokens * h),
        _residual(p, "mlp_residual_add", "mlp", layers),
    ]
    return ops


def expected_distinct_experts(experts: int, top_k: int, tokens: int) -> float:
    """Expected number of experts at least one of ``tokens`` picks, each choosing top_k of experts
    uniformly and independently: E·(1 − (1 − k/E)^T)."""
    if top_k >= experts:
        return float(experts)
    return experts * (1.0 - (1.0 - top_k / experts) ** tokens)


def _moe_block(p: _Pass, layers: int) -> list[Operator]:
    model = p.model
    moe = model.moe
    assert moe is not None
    h, t, e, k = model.hidden_size, p.tokens, moe.num_routed_experts, moe.experts_per_token
    width = moe.expert_intermediate_size / p.tp
    distinct = expected_distinct_experts(e, k, t)
    routed = t * k  # (token, expert) assignments
    n_mats = 2 if model.gated_mlp else 1
    touched = f"expected distinct experts {distinct:.4g} of {e} for {t} tokens × top-{k} (uniform routing)"
    ops = [
        _norm(p, "mlp_norm", "moe", layers, t, h),
        _gemm(
            p,
            "router",
            "moe",
            layers,
            t,
            e,
            h,
            weight_element=p.a,
            bias=moe.router_bias,
            note="router logits; replicated under TP",
        ),
        _op(
            p,
            "router_topk",
            "MoE",
            "moe",
            layers,
            f"T={t}, E={e}, k={k}",
            flops=float(ROUTER_FLOPS_PER_LOGIT * t * e),
            weight_bytes=0.0,
            activation_bytes=t * e * p.a + routed * ROUTING_BYTES_PER_CHOICE,
            kv_bytes=0.0,
        ),
        _op(
            p,
            "experts_gate_up",
            "MoE",
            "moe",
            layers,
            f"tokens×k={routed}, N={_num(n_mats * width)}, K={h}, experts read={distinct:.4g}",
            flops=2.0 * routed * n_mats * width * h + (routed * n_mats * width if moe.expert_bias else 0.0),
            weight_bytes=distinct * n_mats * width * (h + (1 if moe.expert_bias else 0)) * p.w,
            activation_bytes=routed * h * p.a + routed * n_mats * width * p.a,
            kv_bytes=0.0,
            note=touched,
        ),
        _swiglu(p, "experts_swiglu" if model.gated_mlp else "experts_gelu", "moe", layers, routed, width),
        _op(
            p,
            "experts_down",
            "MoE",
            "moe",
            layers,
            f"tokens×k={routed}, N={h}, K={_num(width)}, experts read={distinct:.4g}",
            flops=2.0 * routed * width * h + (routed * h if moe.expert_bias else 0.0),
            weight_bytes=distinct * (width + (1 if moe.expert_bias else 0)) * h * p.w,
            activation_bytes=routed * width * p.a + routed * h * p.a,
            kv_bytes=0.0,
            note=touched,
        ),
        _op(
            p,
            "experts_combine",
            "MoE",
            "moe",
            layers,
            f"T={t}, k={k}, H={h}",
            flops=2.0 * routed * h,
            weight_bytes=0.0,
            activation_bytes=routed * h * p.a + t * h * p.a,
            kv_bytes=0.0,
            note="routing-weighted sum of the k expert outputs",
        ),
    ]
    if moe.num_shared_experts and moe.shared_expert_intermediate_size:
        shared = moe.num_shared_experts * moe.shared_expert_intermediate_size / p.tp
        if model.gated_mlp:
            ops.append(_gemm(p, "shared_gate_proj", "shared_expert", layers, t, shared, h))
        ops += [
            _gemm(p, "shared_up_proj", "shared_expert", layers, t, shared, h),
            _swiglu(
                p, "shared_swiglu" if model.gated_mlp else "shared_gelu", "shared_expert", layers, t, shared
            ),
            _gemm(p, "shared_down_proj", "shared_expert", layers, t, h, shared),
            *(
                [
                    _gemm(
                        p,
                        "shared_expert_gate",
                        "shared_expert",
                        layers,
                        t,
                        1,
                        h,
                        note="sigmoid gate (Qwen2-MoE)",
                    )
                ]
                if moe.shared_expert_gate
                else []
            ),
            _op(
                p,
                "shared_add",
                "elementwise",
                "shared_expert",
                layers,
                f"T={t}, H={h}",
                flops=float(t * h * (2 if moe.shared_expert_gate else 1)),  # (gate ·) shared + routed
                weight_bytes=0.0,
                activation_bytes=3.0 * t * h * p.a,
                kv_bytes=0.0,
            ),
        ]
    ops += [
        *_allreduce(p, "moe_allreduce", "moe", layers, t * h),
        _residual(p, "mlp_residual_add", "moe", layers),
    ]
    return ops
