"""Newer architectures read from their real configs, against figures derived by hand from the
config numbers (parameter count, active parameters, KV bytes at a context, decode weight bytes).

Each expected value is written out from the config's keys (Llama-4 Scout/Maverick, Gemma-2 9B,
Gemma-3 1B/27B, Qwen3-Next-80B-A3B), never read back from the code under test.
"""

from __future__ import annotations

from typing import Any

import pytest

from infersight.errors import InputError
from infersight.theory.architectures import architecture_for, index_architectures, registered_model_types
from infersight.theory.config_reader import builtin_model, parse_config
from infersight.theory.memory import kv_bytes_per_sequence
from infersight.theory.operators import Scenario, build_operators, chunked_keys, chunked_pairs
from infersight.theory.params import count_parameters

BF16 = 2


def decode_weight_bytes(name_or_config: Any, context: int = 1024) -> float:
    """Σ weight bytes of one batch-1 decode step (what the roofline streams), from the operators."""
    config = builtin_model(name_or_config) if isinstance(name_or_config, str) else name_or_config
    ops = build_operators(config, Scenario(batch=1, prompt_len=context, context_len=context), "decode")
    return sum(op.weight_bytes * op.layers for op in ops)


def decode_kv_read_bytes(config: Any, context: int) -> float:
    """KV bytes the decode attention operators read at ``context`` (batch 1)."""
    ops = build_operators(config, Scenario(batch=1, prompt_len=context, context_len=context), "decode")
    return sum(op.kv_bytes * op.layers for op in ops if op.name.startswith(("attention", "linear_attention")))


# ------------------------------------------------------------------ Llama-4

# Llama-4 Scout text_config: hidden 5120, 48 layers, 40 heads / 8 KV heads of 128, vocab 202048,
# 16 routed experts (top-1) of intermediate_size 8192 plus ONE shared expert of 8192, every layer
# MoE (interleave_moe_layer_step 1), untied lm_head, chunked attention 8192 on the RoPE layers.
H, L, V = 5120, 48, 202048
ATTN = H * 40 * 128 + 2 * H * 8 * 128 + 40 * 128 * H  # q, k, v, o (qk norm is a weightless L2 norm)
EXPERT = 3 * H * 8192  # gate, up, down
ROUTER_16 = H * 16
NORMS = 2 * H * L + H


def test_llama4_scout_counts_the_shared_expert() -> None:
    config = builtin_model("llama-4-scout")
    counts = count_parameters(config)
    total = 2 * V * H + L * (ATTN + 16 * EXPERT + EXPERT + ROUTER_16) + NORMS
    assert total == 107_769_861_120
    assert counts.total == total
    active = V * H + L * (ATTN + EXPERT + EXPERT + ROUTER_16) + NORMS  # lm_head, top-1 + shared expert
    assert active == 16_138_408_960  # ~16.1 B (10.1 B without the shared expert)
    assert counts.active_per_token == active
    assert config.moe is not None
    assert (config.moe.num_shared_experts, config.moe.shared_expert_intermediate_size) == (1, 8192)
    assert config.num_moe_layers == 48


def test_llama4_scout_decode_streams_the_active_weights() -> None:
    # one token reads one embedding row, lm_head, attention, 1 routed + 1 shared expert, routers, norms
    expected = BF16 * (H + V * H + L * (ATTN + 2 * EXPERT + ROUTER_16) + NORMS)
    assert expected == pytest.approx(32.28e9, rel=1e-3)  # ~32 GB, not the 20 GB without the shared expert
    assert decode_weight_bytes("llama-4-scout") == pytest.approx(expected, rel=1e-9)


def test_llama4_chunked_attention_and_nope_layers() -> None:
    config = builtin_model("llama-4-scout")
    # no_rope_layers is [] in the config: transformers' default makes every 4th layer NoPE (global)
    assert config.nope_layers == tuple(range(3, 48, 4))
    assert config.attention_chunk_size == 8192
    assert config.layers_of_kind("chunked") == 36 and config.layers_of_kind("full") == 12
    assert any("no_rope_layer_interval" in note for note in config.notes)
    context = 32768
    per_token_layer = 2 * 8 * 128 * BF16  # K and V, 8 KV heads of 128
    expected = 36 * 8192 * per_token_layer + 12 * context * per_token_layer
    assert expected == 2_818_572_288  # 86,016 B per token at 32k (full attention everywhere: 196,608)
    assert kv_bytes_per_sequence(config, context) == expected
    assert decode_kv_read_bytes(config, context) == expected  # the last position of a full chunk


def test_chunked_attention_pairs_and_keys_by_hand() -> None:
    assert chunked_pairs(10, 4) == (4 * 5 // 2) * 2 + 2 * 3 // 2  # two full chunks + 2 tokens
    assert chunked_keys(8193, 8192) == 1  # the first token of a new chunk sees only itself
    assert chunked_keys(8192, 8192) == 8192


MAVERICK_TEXT = {
    "model_type": "llama4_text",
    "attention_chunk_size": 8192,
    "head_dim": 128,
    "hidden_size": 5120,
    "interleave_moe_layer_step": 2,
    "intermediate_size": 8192,
    "intermediate_size_mlp": 16384,
    "max_position_embeddings": 1048576,
    "no_rope_layers": [],
    "num_attention_heads": 40,
    "num_experts_per_tok": 1,
    "num_hidden_layers": 48,
    "num_key_value_heads": 8,
    "num_local_experts": 128,
    "torch_dtype": "bfloat16",
    "use_qk_norm": True,
    "vocab_size": 202048,
}


def test_llama4_maverick_interleaves_moe_and_dense_layers() -> None:
    raw = {"model_type": "llama4", "tie_word_embeddings": False, "text_config": MAVERICK_TEXT}
    config = parse_config(raw, source="maverick.json", name="maverick")
    assert config.moe is not None and config.moe.moe_layers == tuple(range(1, 48, 2))  # layers 1, 3, ...
    dense_mlp = 3 * H * 16384  # intermediate_size_mlp
    moe_layer = 128 * EXPERT + EXPERT + H * 128
    total = 2 * V * H + L * ATTN + 24 * moe_layer + 24 * dense_mlp + NORMS
    assert total == pytest.approx(400.7e9, rel=1e-3)  # published: 400B total
    counts = count_parameters(config)
    assert counts.total == total
    active = V * H + L * ATTN + 24 * (2 * EXPERT + H * 128) + 24 * dense_mlp + NORMS
    assert counts.active_per_token == active
    assert counts.active_with_embedding == pytest.approx(17e9, rel=0.02)  # published: 17B active


def test_llama4_explicit_moe_layers_win() -> None:
    raw = {**MAVERICK_TEXT, "moe_layers": [0, 47], "tie_word_embeddings": False}
    config = parse_config(raw, source="t.json", name="t")
    assert config.moe is not None and config.moe.moe_layers == (0, 47)


# ------------------------------------------------------------------ Gemma-2 / Gemma-3


def test_gemma2_alternates_sliding_and_global_layers() -> None:
    config = builtin_model("gemma-2-9b")
    assert config.sliding_window_layers == tuple(range(0, 42, 2))  # even layers local
    h, i, vocab = 3584, 14336, 256000
    attn = h * 16 * 256 + 2 * h * 8 * 256 + 16 * 256 * h
    per_layer = attn + 3 * h * i + 4 * h  # 4 norms: input, post-attention, pre- and post-feed-forward
    total = vocab * h + 42 * per_layer + h  # tied lm_head
    assert total == 9_241_705_984  # published 9.24B
    assert count_parameters(config).total == total
    fp32 = 4  # the published config says torch_dtype float32
    per_token_layer = 2 * 8 * 256 * fp32
    context = 8192
    expected = 21 * 4096 * per_token_layer + 21 * context * per_token_layer
    assert kv_bytes_per_sequence(config, context) == expected == 4_227_858_432
    assert decode_kv_read_bytes(config, context) == expected
    # decode streams every weight once (tied lm_head reads the table) plus one embedding row, in fp32
    assert decode_weight_bytes(config) == pytest.approx(fp32 * (total + h), rel=1e-9)


def test_gemma3_window_pattern_six_is_five_local_one_global() -> None:
    config = builtin_model("gemma-3-1b")  # sliding_window 512, sliding_window_pattern 6, no layer_types
    assert [layer for layer in range(26) if config.attention_kind(layer) == "full"] == [5, 11, 17, 23]
    h, i, vocab = 1152, 6912, 262144
    attn = h * 4 * 256 + 2 * h * 1 * 256 + 4 * 256 * h + 2 * 256  # + q_norm, k_norm
    per_layer = attn + 3 * h * i + 4 * h
    total = vocab * h + 26 * per_layer + h
    assert total == 999_885_952  # published 1,000M
    assert count_parameters(config).total == total
    context = 32768
    per_token_layer = 2 * 1 * 256 * BF16
    expected = 4 * context * per_token_layer + 22 * 512 * per_token_layer
    assert expected == 145_752_064  # window on every layer would give 13,631,488: ~10.7x low
    assert kv_bytes_per_sequence(config, context) == expected
    assert decode_kv_read_bytes(config, context) == expected
    # one embedding row + every weight but the table (tied lm_head reads it once); the per-head q/k norm
    # weights (2·256 per layer) are not operators of their own (fused into the attention prologue)
    streamed = h + (total - vocab * h - 26 * 2 * 256) + vocab * h
    assert decode_weight_bytes(config) == pytest.approx(BF16 * streamed, rel=1e-9)


def test_gemma3_defaults_are_stated() -> None:
    config = builtin_model("gemma-3-27b")  # text_config omits vocab_size and sliding_window_pattern
    assert config.vocab_size == 262208
    assert any("sliding_window_pattern not given: assumed 6" in note for note in config.notes)
    assert any("vocab_size not given: assumed 262208" in note for note in config.notes)
    assert config.layers_of_kind("full") == 10 and config.layers_of_kind("sliding") == 52  # (i+1) % 6 == 0


def test_layer_types_win_over_the_pattern() -> None:
    raw = {
        "model_type": "gemma3_text",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "vocab_size": 100,
        "sliding_window": 8,
        "sliding_window_pattern": 6,
        "layer_types": ["full_attention", "sliding_attention", "full_attention", "sliding_attention"],
    }
    config = parse_config(raw, source="t.json", name="t")
    assert config.sliding_window_layers == (1, 3)
    assert not any("sliding_window_pattern" in note for note in config.notes)


# ------------------------------------------------------------------ Qwen3-Next (hybrid linear attention)


def test_qwen3_next_linear_layers_have_a_fixed_state() -> None:
    config = builtin_model("qwen3-next-80b-a3b")
    assert config.layers_of_kind("full") == 12 and config.layers_of_kind("linear") == 36  # interval 4
    h, vocab = 2048, 151936
    full_attn = h * 16 * 256 * 2 + 2 * h * 2 * 256 + 16 * 256 * h + 2 * 256  # q + gate, k, v, o, q/k norms
    key_dim, value_dim, conv_dim = 16 * 128, 32 * 128, 2 * 16 * 128 + 32 * 128
    linear_attn = h * (2 * key_dim + 2 * value_dim) + h * 2 * 32 + conv_dim * 4 + 2 * 32 + 128 + value_dim * h
    expert = 3 * h * 512
    moe = 512 * expert + (expert + h) + h * 512  # routed, shared + its gate, router
    total = 2 * vocab * h + 12 * full_attn + 36 * linear_attn + 48 * (moe + 2 * h) + h
    assert total == 79_674_391_296  # published 80B
    counts = count_parameters(config)
    assert counts.total == total
    active = (
        vocab * h + 12 * full_attn + 36 * linear_attn + 48 * (10 * expert + expert + h + h * 512 + 2 * h) + h
    )
    assert counts.active_per_token == active == 3_563_764_480
    context = 32768
    full_kv = 12 * context * (2 * 2 * 256 * BF16)  # 2 KV heads of 256
    state = 36 * (32 * 128 * 128 + conv_dim * 3) * BF16  # recurrent state + conv window, per sequence
    assert kv_bytes_per_sequence(config, context) == full_kv + state == 844_824_576
    # treating all 48 layers as full attention would store 4x the full-attention KV
    assert 48 * context * 2 * 2 * 256 * BF16 == 4 * full_kv
    assert kv_bytes_per_sequence(config, 2 * context) - kv_bytes_per_sequence(config, context) == full_kv
    assert decode_kv_read_bytes(config, context) == full_kv + 2 * state  # the state is read and written
    # batch-1 decode reads top-10 of 512 experts (E·(1−(1−k/E)^1) = k), the shared expert and its gate,
    # the routers, every attention weight but the q/k norms and dt_bias/A_log (fused into their kernels)
    streamed = (
        h  # one embedding row
        + vocab * h  # lm_head
        + 12 * (full_attn - 2 * 256)
        + 36 * (linear_attn - 2 * 32)
        + 48 * (10 * expert + expert + h + h * 512 + 2 * h)
        + h
    )
    assert decode_weight_bytes(config) == pytest.approx(BF16 * streamed, rel=1e-9)
    assert BF16 * streamed == pytest.approx(7.13e9, rel=1e-3)  # ~7.1 GB per decode step


# ------------------------------------------------------------------ defaults, registry


def test_missing_kv_heads_is_stated() -> None:
    raw = {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 100,
        "tie_word_embeddings": False,
    }
    config = parse_config(raw, source="t.json", name="t")
    assert config.num_kv_heads == 4
    assert any("num_key_value_heads not given: MHA assumed" in note for note in config.notes)


def test_unknown_model_type_is_stated() -> None:
    raw = {
        "model_type": "brand_new",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 100,
        "tie_word_embeddings": False,
    }
    config = parse_config(raw, source="t.json", name="t")
    assert any("not in the architecture registry" in note for note in config.notes)


def test_registry_covers_the_builtin_families() -> None:
    for model_type in ("llama", "qwen2", "qwen3", "qwen3_moe", "mixtral", "deepseek_v3", "gpt_oss"):
        assert model_type in registered_model_types()
    for model_type in ("llama4_text", "gemma2", "gemma3_text", "qwen3_next"):
        assert architecture_for(model_type).known


def test_registry_refuses_a_model_type_listed_twice_or_an_unknown_key() -> None:
    entry = {"name": "a", "model_types": ["x"], "source": "s"}
    with pytest.raises(InputError, match="both"):
        index_architectures({"architecture": [entry, {**entry, "name": "b"}]}, "t.toml")
    with pytest.raises(InputError, match="unknown key"):
        index_architectures({"architecture": [{**entry, "gated_mpl": True}]}, "t.toml")


def test_unknown_layer_type_is_refused() -> None:
    raw = {**MAVERICK_TEXT, "layer_types": ["mamba"] * 48}
    with pytest.raises(InputError, match="unknown kind"):
        parse_config(raw, source="t.json", name="t")
