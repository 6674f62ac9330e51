"""Parameter counts from a :class:`ModelConfig`: per part, total, and active per token.

Why: weight bytes dominate decode time (every step streams the active weights), and a count
that matches the published model size is the cheapest proof that the config was read right.
Counts follow the HuggingFace modelling code of each family (biases, q/k norms, MLA
low-rank projections, shared experts, routers); positional-embedding tables of GPT-2-style
models and DeepSeek's multi-token-prediction layers are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from infersight.theory.model_config import ModelConfig

# Family rules (q/k norms, LayerNorm, q/k/v-only biases, norms per layer) come from the
# architecture registry (data/architectures.toml) through the ModelConfig fields.


@dataclass(frozen=True)
class LayerParameters:
    """Parameters of one decoder layer, by part."""

    attention: int  # q/k/v/o (or MLA) projections, their biases, q/k norms, attention sinks
    dense_mlp: int  # gate/up/down of a dense layer (0 in a MoE layer)
    routed_experts: int  # all routed experts of the layer
    routed_expert_each: int  # one routed expert
    shared_experts: int  # always-active experts (and Qwen2-MoE's shared-expert gate)
    router: int  # the gate that scores experts
    norms: int  # pre-attention and pre-MLP norms

    @property
    def total(self) -> int:
        return (
            self.attention
            + self.dense_mlp
            + self.routed_experts
            + self.shared_experts
            + self.router
            + self.norms
        )


@dataclass(frozen=True)
class ParameterCount:
    """Whole-model parameter counts by part; ``total`` and ``active_per_token`` derived."""

    embedding: int
    lm_head: int  # 0 when tied to the embedding
    attention: int
    dense_mlp: int
    routed_experts: int
    shared_experts: int
    router: int
    norms: int  # layer norms + the final norm
    active_routed_experts: int  # routed-expert parameters one token passes through (top-k per layer)

    @property
    def total(self) -> int:
        return (
            self.embedding
            + self.lm_head
            + self.attention
            + self.dense_mlp
            + self.routed_experts
            + self.shared_experts
            + self.router
            + self.norms
        )

    @property
    def active_per_token(self) -> int:
        """Parameters one token computes with: all but the embedding table and unchosen experts.

        The embedding is a table lookup (a token reads one row), so it is left out, as in
        the gpt-oss model card; lm_head and the top-k routed experts are in (DeepSeek-V3 37B,
        gpt-oss 5.13B). Mistral and Qwen quote :attr:`active_with_embedding` (Mixtral 12.9B).
        """
        return self.total - self.embedding - self.routed_experts + self.active_routed_experts

    @property
    def active_with_embedding(self) -> int:
        """``active_per_token`` plus the embedding table (the convention of Mistral and Qwen model cards)."""
        return self.active_per_token + self.embedding

    @property
    def non_embedding(self) -> int:
        """Everything but the embedding table and lm_head (Qwen model cards quote this)."""
        return self.total - self.embedding - self.lm_head


def attention_parameters(config: ModelConfig, layer: int | None = None) -> int:
    """q/k/v/o projections of one layer (MLA: the low-rank chain), with biases and q/k norms.

    ``layer`` matters for hybrid models: a linear-attention layer has the Gated DeltaNet's
    projections instead (:func:`linear_attention_parameters`).
    """
    if layer is not None and config.attention_kind(layer) == "linear":
        return linear_attention_parameters(config)
    hidden, heads, kv_heads, head_dim = (
        config.hidden_size,
        config.num_attention_heads,
        config.num_kv_heads,
        config.head_dim,
    )
    mla = config.mla
    if mla is not None:
        qk_dim = mla.qk_nope_head_dim + mla.qk_rope_head_dim
        if mla.q_lora_rank is None:
            q_params = hidden * heads * qk_dim
        else:  # q_a_proj, q_a_layernorm, q_b_proj
            q_params = hidden * mla.q_lora_rank + mla.q_lora_rank + mla.q_lora_rank * heads * qk_dim
        kv_params = (
            hidden * (mla.kv_lora_rank + mla.qk_rope_head_dim)  # kv_a_proj_with_mqa
            + mla.kv_lora_rank  # kv_a_layernorm
            + mla.kv_lora_rank * heads * (mla.qk_nope_head_dim + mla.v_head_dim)  # kv_b_proj
        )
        return q_params + kv_params + heads * mla.v_head_dim * hidden
    q_out, kv_out = heads * head_dim, kv_heads * head_dim
    q_width = 2 * q_out if config.gated_attention_output else q_out  # Qwen3-Next: query + output gate
    params = hidden * q_width + 2 * hidden * kv_out + q_out * hidden
    if config.attention_bias:
        params += q_width + 2 * kv_out
        if not config.qkv_bias_only:
            params += hidden
    if config.qk_norm:
        params += 2 * head_dim
    if config.attention_sinks:
        params += heads
    return params


def linear_attention_parameters(config: ModelConfig) -> int:
    """One Gated DeltaNet layer (Qwen3-Next): in_proj_qkvz, in_proj_ba, conv1d, dt_bias, A_log,
    the gated RMSNorm over value_head_dim, out_proj."""
    lin = config.linear_attention
    assert lin is not None
    hidden = config.hidden_size
    in_qkvz = hidden * (2 * lin.key_dim + 2 * lin.value_dim)
    in_ba = hidden * 2 * lin.num_value_heads
    conv = lin.conv_dim * lin.conv_kernel  # depthwise, no bias
    per_head = 2 * lin.num_value_heads  # dt_bias and A_log
    return in_qkvz + in_ba + conv + per_head + lin.value_head_dim + lin.value_dim * hidden


def mlp_parameters(config: ModelConfig, intermediate: int, bias: bool) -> int:
    """One MLP (dense layer, routed or shared expert) of width ``intermediate``."""
    matrices = 3 if config.gated_mlp else 2
    params = matrices * config.hidden_size * intermediate
    if bias:
        params += (matrices - 1) * intermediate + config.hidden_size
    return params


def norm_parameters(config: ModelConfig) -> int:
    """One norm over hidden_size: RMSNorm has a weight, LayerNorm a weight and a bias."""
    return (2 if config.layernorm else 1) * config.hidden_size


def layer_parameters(config: ModelConfig, layer: int) -> LayerParameters:
    """Parameters of decoder layer ``layer`` (0-based): dense or MoE by the config's rule."""
    attention = attention_parameters(config, layer)
    norms = config.norms_per_layer * norm_parameters(config)
    moe = config.moe
    if moe is None or not config.is_moe_layer(layer):
        return LayerParameters(
            attention=attention,
            dense_mlp=mlp_parameters(config, config.intermediate_size, config.mlp_bias),
            routed_experts=0,
            routed_expert_each=0,
            shared_experts=0,
            router=0,
            norms=norms,
        )
    expert = mlp_parameters(config, moe.expert_intermediate_size, moe.expert_bias)
    shared = moe.num_shared_experts * mlp_parameters(config, moe.shared_expert_intermediate_size, False)
    if moe.shared_expert_gate:
        shared += config.hidden_size
    router = config.hidden_size * moe.num_routed_experts + (moe.num_routed_experts if moe.router_bias else 0)
    return LayerParameters(
        attention=attention,
        dense_mlp=0,
        routed_experts=moe.num_routed_experts * expert,
        routed_expert_each=expert,
        shared_experts=shared,
        router=router,
        norms=norms,
    )


def count_parameters(config: ModelConfig) -> ParameterCount:
    """Whole-model counts: embeddings, every layer by its kind, final norm, lm_head."""
    layers = [layer_parameters(config, index) for index in range(config.num_layers)]
    top_k = config.moe.experts_per_token if config.moe else 0
    embedding = config.vocab_size * config.hidden_size
    return ParameterCount(
        embedding=embedding,
        lm_head=0 if config.tie_word_embeddings else embedding,
        attention=sum(layer.attention for layer in layers),
        dense_mlp=sum(layer.dense_mlp for layer in layers),
        routed_experts=sum(layer.routed_experts for layer in layers),
        shared_experts=sum(layer.shared_experts for layer in layers),
        router=sum(layer.router for layer in layers),
        norms=sum(layer.norms for layer in layers) + norm_parameters(config),
        active_routed_experts=sum(top_k * layer.routed_expert_each for layer in layers),
    )


def weight_bytes(config: ModelConfig, active_only: bool = False) -> float:
    """Bytes of the weights as stored: quantised parts at ``weight_bytes``, the rest as the config says.

    Embedding/lm_head use ``embedding_bytes_per_weight``, attention ``attention_bytes_per_weight``,
    norms and routers stay in the activation dtype; ``active_only`` counts only the experts
    one token is routed to (what one decode token streams at batch 1).
    """
    counts = count_parameters(config)
    experts = counts.active_routed_experts if active_only else counts.routed_experts
    return (
        (counts.embedding + counts.lm_head) * config.embedding_bytes_per_weight
        + counts.attention * config.attention_bytes_per_weight
        + (counts.dense_mlp + experts + counts.shared_experts) * config.weight_bytes
        + (counts.norms + counts.router) * config.activation_bytes
    )


def checkpoint_size_ratio(config: ModelConfig) -> float | None:
    """Checkpoint bytes (safetensors index) / bytes we expect from the config; None without an index.

    Near 1.0 means the config was read as the checkpoint was saved; a large gap flags a wrong
    dtype, a missed quantisation or extra modules (vision towers, MTP layers).
    """
    if config.checkpoint_bytes is None:
        return None
    return config.checkpoint_bytes / weight_bytes(config)
