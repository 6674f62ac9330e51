"""The normalised model description every theory computation reads (methodology §2).

This is the contract between the config reader (``config_reader.py``: HuggingFace
``config.json`` -> :class:`ModelConfig`) and the operator/roofline code (``operators.py``):
readers fill every field, operator code never looks at raw HuggingFace keys. Sizes are
per-model (not per TP shard); byte widths are per element.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AttentionKind = Literal["full", "sliding", "chunked", "linear"]


@dataclass(frozen=True)
class MoEConfig:
    """Mixture-of-experts MLP (Mixtral, Qwen-MoE, DeepSeek-V3, gpt-oss)."""

    num_routed_experts: int  # experts a token can be routed to (Mixtral 8, DeepSeek-V3 256)
    experts_per_token: int  # top-k routed experts per token
    expert_intermediate_size: int  # FFN width of one routed expert
    num_shared_experts: int = 0  # always-active experts (DeepSeek, Qwen2-MoE)
    shared_expert_intermediate_size: int = 0  # FFN width of ONE shared expert (0 when none)
    first_k_dense_layers: int = 0  # DeepSeek first_k_dense_replace: the first k layers are dense
    moe_layer_freq: int = 1  # every n-th layer (after the dense prefix) is MoE
    # Explicit 0-based indices of the MoE layers, as the architecture's own rule gives them
    # (Qwen ``decoder_sparse_step``/``mlp_only_layers``, DeepSeek ``layer % freq``). None: derive
    # from ``first_k_dense_layers``/``moe_layer_freq``. The config reader always fills it.
    moe_layers: tuple[int, ...] | None = None
    router_bias: bool = False  # router has a bias per expert (gpt-oss; DeepSeek-V3 score-correction bias)
    expert_bias: bool = False  # expert GEMMs carry biases (gpt-oss)
    shared_expert_gate: bool = False  # Qwen2-MoE: a hidden->1 sigmoid gate on the shared expert


@dataclass(frozen=True)
class MLAConfig:
    """DeepSeek multi-head latent attention: low-rank q and joint kv compression."""

    q_lora_rank: int | None  # None: q is a full projection hidden -> heads*(nope+rope)
    kv_lora_rank: int  # latent kv width cached per token (plus the rope part)
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int


@dataclass(frozen=True)
class LinearAttentionConfig:
    """Linear-attention layers (Qwen3-Next Gated DeltaNet): a fixed-size state, no growing KV cache.

    Per sequence and layer the state is ``value_heads·key_head_dim·value_head_dim`` (the
    recurrent matrix) plus ``conv_dim·(conv_kernel−1)`` (the short-convolution window), whatever
    the context length.
    """

    layers: tuple[int, ...]  # 0-based indices of the linear-attention layers
    num_key_heads: int
    num_value_heads: int
    key_head_dim: int
    value_head_dim: int
    conv_kernel: int

    @property
    def key_dim(self) -> int:
        return self.num_key_heads * self.key_head_dim

    @property
    def value_dim(self) -> int:
        return self.num_value_heads * self.value_head_dim

    @property
    def conv_dim(self) -> int:
        """Channels of the causal conv1d over q, k and v."""
        return 2 * self.key_dim + self.value_dim

    @property
    def state_elements(self) -> int:
        """Elements of one sequence's state in one layer (recurrent matrix + conv window)."""
        recurrent = self.num_value_heads * self.key_head_dim * self.value_head_dim
        return recurrent + self.conv_dim * (self.conv_kernel - 1)


@dataclass(frozen=True)
class ModelConfig:
    """A decoder-only transformer, as much as theory needs to count FLOPs and bytes."""

    name: str
    model_type: str  # HuggingFace model_type: llama, qwen2, qwen3, mistral, mixtral, deepseek_v3 ...
    hidden_size: int
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int  # == num_attention_heads for MHA, 1 for MQA
    head_dim: int  # per-head q/k/v width for standard attention (MLA: see ``mla``)
    intermediate_size: int  # dense MLP width (gate/up/down); dense layers of MoE models use it too
    vocab_size: int
    tie_word_embeddings: bool = False
    gated_mlp: bool = True  # SwiGLU-style gate+up (3 matrices); False: up/down only (2 matrices)
    attention_bias: bool = False
    sliding_window: int | None = None  # None: full attention in every layer
    sliding_window_layers: tuple[int, ...] = ()  # layer indices using the window (empty: all, if set)
    max_position_embeddings: int | None = None
    attention_chunk_size: int | None = None  # Llama-4 chunked local attention: keys only within the chunk
    chunked_layers: tuple[int, ...] = ()  # layer indices using chunked attention
    nope_layers: tuple[int, ...] = ()  # layer indices without RoPE (Llama-4 global layers)
    linear_attention: LinearAttentionConfig | None = None  # hybrid models: linear-attention layers
    gated_attention_output: bool = False  # q_proj also yields a sigmoid output gate (Qwen3-Next)
    architecture: str = "generic"  # registry entry (data/architectures.toml) the rules came from
    qk_norm: bool = False  # per-head RMSNorm weights on q and k
    layernorm: bool = False  # LayerNorm (weight + bias) rather than RMSNorm
    norms_per_layer: int = 2  # norm weight vectors over hidden_size per layer (Gemma-2/3: 4)
    qkv_bias_only: bool = False  # attention biases on q/k/v only (Qwen2)
    moe: MoEConfig | None = None
    mla: MLAConfig | None = None
    weight_bytes: float = 2.0  # bytes per weight element (bf16 2, fp8 1, int4 0.5 + scales amortised)
    activation_bytes: float = 2.0  # bytes per activation element
    kv_cache_bytes: float = 2.0  # bytes per KV-cache element
    quantization: str | None = None  # e.g. "fp8", "awq-int4", "gptq-int4", "int8"; None: unquantised
    compute_dtype: str = "bf16"  # dtype of the matmuls' peak rate: fp32, tf32, fp16, bf16, fp8, int8
    # dtype of the activations (the checkpoint's torch_dtype): attention runs in it (or in the KV
    # dtype), whatever the weight quantisation: an fp8 checkpoint still runs bf16 attention.
    activation_dtype: str = "bf16"
    # Bytes per weight of the parts quantisation schemes usually leave alone. None: ``weight_bytes``.
    embedding_weight_bytes: float | None = None  # embedding table and lm_head (kept bf16 by AWQ/GPTQ/fp8)
    attention_weight_bytes: float | None = None  # q/k/v/o (and MLA) projections (gpt-oss mxfp4 keeps bf16)
    mlp_bias: bool = False  # dense MLP projections carry biases
    attention_sinks: bool = False  # gpt-oss: one learned sink logit per head
    checkpoint_bytes: int | None = None  # total_size from model.safetensors.index.json, when present
    checkpoint_params: int | None = (
        None  # exact count from the safetensors headers, when all shards are local
    )
    checkpoint_dtype: str | None = None  # dtype holding most checkpoint parameters (bf16, fp8, int32 ...)
    source: str = ""  # where the config came from (file path or built-in name)
    notes: tuple[str, ...] = field(default_factory=tuple)  # reader remarks (assumptions made)

    def attention_kind(self, layer: int) -> AttentionKind:
        """How ``layer`` (0-based) attends: full, sliding window, chunked, or linear attention."""
        if self.linear_attention is not None and layer in self.linear_attention.layers:
            return "linear"
        if self.attention_chunk_size is not None and layer in self.chunked_layers:
            return "chunked"
        if self.sliding_window is not None and (
            not self.sliding_window_layers or layer in self.sliding_window_layers
        ):
            return "sliding"
        return "full"

    def layers_of_kind(self, kind: AttentionKind) -> int:
        """How many layers attend the ``kind`` way."""
        return sum(1 for layer in range(self.num_layers) if self.attention_kind(layer) == kind)

    def is_moe_layer(self, layer: int) -> bool:
        """Whether ``layer`` (0-based) has a routed-expert MLP."""
        if self.moe is None:
            return False
        if self.moe.moe_layers is not None:
            return layer in self.moe.moe_layers
        if layer < self.moe.first_k_dense_layers:
            return False
        return (layer - self.moe.first_k_dense_layers) % max(self.moe.moe_layer_freq, 1) == 0

    @property
    def embedding_bytes_per_weight(self) -> float:
        """Bytes per element of the embedding table and lm_head."""
        return self.weight_bytes if self.embedding_weight_bytes is None else self.embedding_weight_bytes

    @property
    def attention_bytes_per_weight(self) -> float:
        """Bytes per element of the attention projections."""
        return self.weight_bytes if self.attention_weight_bytes is None else self.attention_weight_bytes

    @property
    def num_moe_layers(self) -> int:
        """How many layers have a routed-expert MLP."""
        return sum(1 for layer in range(self.num_layers) if self.is_moe_layer(layer))
