"""Operator FLOPs and bytes checked against hand derivations (methodology §2).

Every expected number below is written out from the model's published shapes with the
formulas of ``infersight.theory.operators`` (GEMM 2·M·N·K; bytes = weights + inputs + outputs):
if the code and these lines disagree on any operator of any pass, the test fails. The models
are built here directly (not read from the shipped configs) so these checks do not depend on
the config reader.

Scenario for all three models: B = 2 sequences, prompt S = 1024 (prefill T = 2048 tokens),
decode context L = 2048 (decode T = 2 tokens), TP = 1, fused flash attention.
"""

from __future__ import annotations

import math

import pytest

from infersight.errors import InputError
from infersight.theory.model_config import MLAConfig, ModelConfig, MoEConfig
from infersight.theory.operators import (
    Operator,
    Scenario,
    build_operators,
    causal_pairs,
    expected_distinct_experts,
)

LLAMA3_8B = ModelConfig(
    name="llama-3-8b",
    model_type="llama",
    hidden_size=4096,
    num_layers=32,
    num_attention_heads=32,
    num_kv_heads=8,
    head_dim=128,
    intermediate_size=14336,
    vocab_size=128256,
)
MIXTRAL_8X7B = ModelConfig(
    name="mixtral-8x7b",
    model_type="mixtral",
    hidden_size=4096,
    num_layers=32,
    num_attention_heads=32,
    num_kv_heads=8,
    head_dim=128,
    intermediate_size=14336,
    vocab_size=32000,
    moe=MoEConfig(num_routed_experts=8, experts_per_token=2, expert_intermediate_size=14336),
)
DEEPSEEK_V3 = ModelConfig(
    name="deepseek-v3",
    model_type="deepseek_v3",
    hidden_size=7168,
    num_layers=61,
    num_attention_heads=128,
    num_kv_heads=128,
    head_dim=192,
    intermediate_size=18432,
    vocab_size=129280,
    moe=MoEConfig(
        num_routed_experts=256,
        experts_per_token=8,
        expert_intermediate_size=2048,
        num_shared_experts=1,
        shared_expert_intermediate_size=2048,
        first_k_dense_layers=3,
    ),
    mla=MLAConfig(
        q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128
    ),
    weight_bytes=1.0,  # fp8 checkpoint: 1 byte per weight, bf16 activations and KV cache
    quantization="fp8",
    embedding_weight_bytes=2.0,  # embedding and lm_head stay bf16
    compute_dtype="fp8",
)

SCENARIO = Scenario(batch=2, prompt_len=1024, context_len=2048)
Counts = tuple[float, float, float, float]  # flops, weight bytes, activation bytes, kv bytes
Expected = dict[tuple[str, str], tuple[int, Counts]]  # (block, name) -> (layers, counts)


def check(ops: list[Operator], expected: Expected) -> None:
    """Every operator present, none extra, each count equal to the hand derivation."""
    got = {(op.block, op.name): op for op in ops}
    assert len(got) == len(ops), "operator (block, name) pairs must be unique"
    assert set(got) == set(expected)
    for key, (layers, (flops, weights, acts, kv)) in expected.items():
        op = got[key]
        assert op.layers == layers, key
        for field, want in (("flops", flops), ("weight_bytes", weights), ("activation_bytes", acts)):
            assert getattr(op, field) == pytest.approx(want, rel=1e-12), (key, field)
        assert op.kv_bytes == pytest.approx(kv, rel=1e-12), (key, "kv_bytes")
        assert op.comm_bytes == 0


def gemm(m: int, n: int, k: int, w: float = 2.0, a: float = 2.0) -> Counts:
    return (2 * m * n * k, n * k * w, (m * k + m * n) * a, 0)


def norm(t: int, width: int) -> Counts:
    return (4 * t * width, width * 2, 2 * t * width * 2, 0)


def residual(t: int, h: int) -> Counts:
    return (t * h, 0, 3 * t * h * 2, 0)


def head(t: int, b: int, h: int, vocab: int, w: float = 2.0) -> Expected:
    return {
        ("model", "embedding"): (1, (0, t * h * w, t * 4 + t * h * 2, 0)),
        ("model", "final_norm"): (1, norm(t, h)),
        ("model", "lm_head"): (1, gemm(b, vocab, h, w)),  # last position only
        ("model", "sampling"): (1, (5 * b * vocab, 0, 3 * b * vocab * 4, 0)),
    }


def gqa_attention(t: int, b: int, q_len: int, keys: int, decode: bool) -> Expected:
    """Llama-3-8B / Mixtral attention block: H 4096, 32 q heads, 8 kv heads, d 128."""
    h, nh, nkv, d = 4096, 32, 8, 128
    pairs = b * keys if decode else b * q_len * (q_len + 1) // 2
    kv_read = b * keys * 2 * nkv * d * 2
    q_o = 2 * t * nh * d * 2
    return {
        ("attention", "attn_norm"): (32, norm(t, h)),
        ("attention", "q_proj"): (32, gemm(t, nh * d, h)),
        ("attention", "k_proj"): (32, gemm(t, nkv * d, h)),
        ("attention", "v_proj"): (32, gemm(t, nkv * d, h)),
        # q and k rotated: (32 + 8)·128 = 5120 elements per token, read + write, plus cos/sin (128)
        ("attention", "rope"): (32, (3 * t * 5120, 0, 2 * t * 5120 * 2 + t * 128 * 2, 0)),
        ("attention", "kv_cache_store"): (32, (0, 0, t * 2048 * 2, t * 2048 * 2)),
        ("attention", "attention"): (
            32,
            (pairs * nh * (2 * d + 2 * d + 5), 0, q_o + (0 if decode else kv_read), kv_read if decode else 0),
        ),
        ("attention", "o_proj"): (32, gemm(t, h, nh * d)),
        ("attention", "attn_residual_add"): (32, residual(t, h)),
    }


# ---------------------------------------------------------------- Llama-3-8B


def llama_expected(phase: str) -> Expected:
    t, b = (2048, 2) if phase == "prefill" else (2, 2)
    q_len, keys = (1024, 1024) if phase == "prefill" else (1, 2048)
    h, inter = 4096, 14336
    return {
        **head(t, b, h, 128256),
        **gqa_attention(t, b, q_len, keys, decode=phase == "decode"),
        ("mlp", "mlp_norm"): (32, norm(t, h)),
        ("mlp", "gate_proj"): (32, gemm(t, inter, h)),
        ("mlp", "up_proj"): (32, gemm(t, inter, h)),
        ("mlp", "swiglu"): (32, (3 * t * inter, 0, 3 * t * inter * 2, 0)),
        ("mlp", "down_proj"): (32, gemm(t, h, inter)),
        ("mlp", "mlp_residual_add"): (32, residual(t, h)),
    }


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_llama3_8b_every_operator(phase: str) -> None:
    check(build_operators(LLAMA3_8B, SCENARIO, phase), llama_expected(phase))  # type: ignore[arg-type]


def test_llama_prefill_attention_is_causal_and_decode_reads_the_whole_cache() -> None:
    prefill = {op.name: op for op in build_operators(LLAMA3_8B, SCENARIO, "prefill")}
    decode = {op.name: op for op in build_operators(LLAMA3_8B, SCENARIO, "decode")}
    # 2 sequences × 1024·1025/2 pairs × 32 heads × (2·128 + 2·128 + 5)
    assert prefill["attention"].flops == 2 * 524800 * 32 * 517
    # decode: 2 sequences × 2048 cached tokens × (K + V) × 8 kv heads × 128 × 2 bytes = 16.8 MB / layer
    assert decode["attention"].kv_bytes == 16_777_216
    # decode is dominated by reading the weights once: Σ weight bytes ≈ 2 · 8.03e9 params
    weights = sum(op.weight_bytes * op.layers for op in build_operators(LLAMA3_8B, SCENARIO, "decode"))
    embedding_rows_not_read = (128256 - 2) * 4096 * 2  # only the 2 token rows of the embedding are read
    assert weights + embedding_rows_not_read == pytest.approx(2 * 8.03e9, rel=0.01)


def test_unfused_attention_materialises_the_full_score_matrix() -> None:
    scenario = SCENARIO.model_copy(update={"attention": "unfused", "temporary_factor": 1.5})
    ops = {op.name: op for op in build_operators(LLAMA3_8B, scenario, "prefill")}
    assert "attention" not in ops
    scores = 2 * 32 * 1024 * 1024  # B · heads · S · S (masked, not skipped)
    assert ops["qk_matmul"].flops == 2 * scores * 128
    assert ops["qk_matmul"].category == "GEMM"
    assert ops["softmax"].flops == 5 * scores
    assert ops["softmax"].category == "attention"
    assert ops["softmax"].activation_bytes == 2 * 1.5 * scores * 2
    assert ops["sv_matmul"].flops == 2 * scores * 128
    # K read by qk, V by sv (fresh projections in prefill): 2 · 1024 · 8 · 128 · 2 bytes each
    assert ops["qk_matmul"].activation_bytes == 2048 * 32 * 128 * 2 + 1.5 * scores * 2 + 2 * 1024 * 1024 * 2
    assert ops["sv_matmul"].activation_bytes == 1.5 * scores * 2 + 2048 * 32 * 128 * 2 + 2 * 1024 * 1024 * 2
    decode = {op.name: op for op in build_operators(LLAMA3_8B, scenario, "decode")}
    assert decode["qk_matmul"].kv_bytes == decode["sv_matmul"].kv_bytes == 2 * 2048 * 1024 * 2


def test_tensor_parallel_divides_work_and_adds_allreduce() -> None:
    tp2 = {op.name: op for op in build_operators(LLAMA3_8B, SCENARIO.model_copy(update={"tp": 2}), "decode")}
    assert tp2["q_proj"].flops == 2 * 2 * (16 * 128) * 4096
    assert tp2["k_proj"].weight_bytes == 4 * 128 * 4096 * 2
    assert tp2["gate_proj"].weight_bytes == 7168 * 4096 * 2
    assert tp2["attn_norm"].flops == 4 * 2 * 4096  # norms are replicated
    assert tp2["attention"].kv_bytes == 2 * 2048 * 2 * 4 * 128 * 2
    # ring all-reduce of T·H bf16 activations: 2·(t−1)/t of it sent per GPU
    assert tp2["attn_allreduce"].comm_bytes == 2 * 0.5 * 2 * 4096 * 2
    assert tp2["mlp_allreduce"].layers == 32
    assert tp2["attn_allreduce"].category == "NCCL"
    assert tp2["logits_allgather"].comm_bytes == 0.5 * 2 * 128256 * 2
    # 16 KV heads: TP 16 is fine (one kv head each after replication), TP 3 divides nothing
    tp16 = {
        op.name: op for op in build_operators(LLAMA3_8B, SCENARIO.model_copy(update={"tp": 16}), "decode")
    }
    assert tp16["k_proj"].weight_bytes == 1 * 128 * 4096 * 2
    with pytest.raises(InputError, match="does not divide the 32 attention heads"):
        build_operators(LLAMA3_8B, SCENARIO.model_copy(update={"tp": 3}), "decode")


def test_sliding_window_limits_keys() -> None:
    windowed = LLAMA3_8B.__class__(**{**LLAMA3_8B.__dict__, "sliding_window": 256})
    prefill = {op.name: op for op in build_operators(windowed, SCENARIO, "prefill")}
    decode = {op.name: op for op in build_operators(windowed, SCENARIO, "decode")}
    assert causal_pairs(1024, 256) == 256 * 257 // 2 + 768 * 256
    assert prefill["attention"].flops == 2 * causal_pairs(1024, 256) * 32 * 517
    assert decode["attention"].kv_bytes == 2 * 256 * 2048 * 2


# ---------------------------------------------------------------- Mixtral-8x7B


def mixtral_expected(phase: str) -> Expected:
    t, b = (2048, 2) if phase == "prefill" else (2, 2)
    q_len, keys = (1024, 1024) if phase == "prefill" else (1, 2048)
    h, inter, e, k = 4096, 14336, 8, 2
    # distinct experts: prefill 8·(1 − 0.75^2048) = 8 to double precision; decode 8·(1 − 0.75²) = 3.5
    distinct = 8.0 if phase == "prefill" else 3.5
    routed = k * t
    return {
        **head(t, b, h, 32000),
        **gqa_attention(t, b, q_len, keys, decode=phase == "decode"),
        ("moe", "mlp_norm"): (32, norm(t, h)),
        ("moe", "router"): (32, gemm(t, e, h)),
        ("moe", "router_topk"): (32, (5 * t * e, 0, t * e * 2 + routed * 8, 0)),
        ("moe", "experts_gate_up"): (
            32,
            (
                2 * routed * 2 * inter * h,
                distinct * 2 * inter * h * 2,
                routed * h * 2 + routed * 2 * inter * 2,
                0,
            ),
        ),
        ("moe", "experts_swiglu"): (32, (3 * routed * inter, 0, 3 * routed * inter * 2, 0)),
        ("moe", "experts_down"): (
            32,
            (2 * routed * inter * h, distinct * inter * h * 2, (routed * inter + routed * h) * 2, 0),
        ),
        ("moe", "experts_combine"): (32, (2 * routed * h, 0, (routed * h + t * h) * 2, 0)),
        ("moe", "mlp_residual_add"): (32, residual(t, h)),
    }


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_mixtral_every_operator(phase: str) -> None:
    check(build_operators(MIXTRAL_8X7B, SCENARIO, phase), mixtral_expected(phase))  # type: ignore[arg-type]


def test_expected_distinct_experts() -> None:
    assert expected_distinct_experts(8, 2, 2) == pytest.approx(3.5)
    assert expected_distinct_experts(256, 8, 2) == pytest.approx(15.75)  # 256·(1 − (248/256)²)
    assert expected_distinct_experts(256, 8, 1) == pytest.approx(8.0)  # one token: exactly its k
    assert expected_distinct_experts(256, 8, 100_000) == pytest.approx(256.0)
    assert expected_distinct_experts(8, 8, 1) == 8.0


# ---------------------------------------------------------------- DeepSeek-V3 (MLA + MoE)


def deepseek_expected(phase: str) -> Expected:
    decode = phase == "decode"
    t, b = (2, 2) if decode else (2048, 2)
    h, nh, v = 7168, 128, 129280
    w = 1.0  # fp8 weights
    q_lora, kv_lora, nope, rope, v_dim = 1536, 512, 128, 64, 128
    e, k, ie = 256, 8, 2048
    routed = k * t
    distinct = 15.75 if decode else 256 * (1 - (248 / 256) ** 2048)
    expected: Expected = {
        **head(t, b, h, v, 2.0),  # embedding and lm_head tables are not quantised
        ("attention", "attn_norm"): (61, norm(t, h)),
        ("attention", "q_a_proj"): (61, gemm(t, q_lora, h, w)),
        ("attention", "q_a_norm"): (61, norm(t, q_lora)),
        ("attention", "q_b_proj"): (61, gemm(t, nh * (nope + rope), q_lora, w)),
        ("attention", "kv_a_proj"): (61, gemm(t, kv_lora + rope, h, w)),
        ("attention", "kv_a_norm"): (61, norm(t, kv_lora)),
        # rope on q_pe (128 heads × 64) and the shared k_pe (64): 8256 elements per token
        ("attention", "rope"): (61, (3 * t * 8256, 0, 2 * t * 8256 * 2 + t * 64 * 2, 0)),
        # the cache holds the 512-wide latent + 64 rope dims per token (all heads share it)
        ("attention", "kv_cache_store"): (61, (0, 0, t * 576 * 2, t * 576 * 2)),
        ("attention", "o_proj"): (61, gemm(t, h, nh * v_dim, w)),
        ("attention", "attn_residual_add"): (61, residual(t, h)),
        # first 3 layers dense (intermediate 18432)
        ("mlp", "mlp_norm"): (3, norm(t, h)),
        ("mlp", "gate_proj"): (3, gemm(t, 18432, h, w)),
        ("mlp", "up_proj"): (3, gemm(t, 18432, h, w)),
        ("mlp", "swiglu"): (3, (3 * t * 18432, 0, 3 * t * 18432 * 2, 0)),
        ("mlp", "down_proj"): (3, gemm(t, h, 18432, w)),
        ("mlp", "mlp_residual_add"): (3, residual(t, h)),
        # 58 MoE layers: router (bf16 weights), 8 of 256 routed experts + 1 shared expert
        ("moe", "mlp_norm"): (58, norm(t, h)),
        ("moe", "router"): (58, gemm(t, e, h, 2.0)),
        ("moe", "router_topk"): (58, (5 * t * e, 0, t * e * 2 + routed * 8, 0)),
        ("moe", "experts_gate_up"): (
            58,
            (2 * routed * 2 * ie * h, distinct * 2 * ie * h * w, routed * h * 2 + routed * 2 * ie * 2, 0),
        ),
        ("moe", "experts_swiglu"): (58, (3 * routed * ie, 0, 3 * routed * ie * 2, 0)),
        ("moe", "experts_down"): (
            58,
            (2 * routed * ie * h, distinct * ie * h * w, (routed * ie + routed * h) * 2, 0),
        ),
        ("moe", "experts_combine"): (58, (2 * routed * h, 0, (routed * h + t * h) * 2, 0)),
        ("shared_expert", "shared_gate_proj"): (58, gemm(t, 2048, h, w)),
        ("shared_expert", "shared_up_proj"): (58, gemm(t, 2048, h, w)),
        ("shared_expert", "shared_swiglu"): (58, (3 * t * 2048, 0, 3 * t * 2048 * 2, 0)),
        ("shared_expert", "shared_down_proj"): (58, gemm(t, h, 2048, w)),
        ("shared_expert", "shared_add"): (58, residual(t, h)),
        ("moe", "mlp_residual_add"): (58, residual(t, h)),
    }
    if decode:
        # absorbed MLA: q_nope (128) -> latent (512) per head; MQA over the cached 576-wide latent;
        # latent output (512) -> v (128) per head
        pairs = b * 2048
        expected[("attention", "q_absorb")] = (
            61,
            (2 * t * 512 * 128 * nh, 512 * 128 * nh * w, (t * 128 + t * 512) * nh * 2, 0),
        )
        expected[("attention", "attention")] = (
            61,
            (
                pairs * nh * (2 * 576 + 2 * 512 + 5),
                0,
                t * nh * 576 * 2 + t * nh * 512 * 2,
                b * 2048 * 576 * 2,
            ),
        )
        expected[("attention", "out_absorb")] = (
            61,
            (2 * t * 128 * 512 * nh, 128 * 512 * nh * w, (t * 512 + t * 128) * nh * 2, 0),
        )
    else:
        # naive MLA prefill: kv_b_proj decompresses the latent to K_nope and V for all 128 heads,
        # then causal MHA with d_qk = 192, d_v = 128; K/V come from kv_b_proj (activations)
        pairs = b * 1024 * 1025 // 2
        expected[("attention", "kv_b_proj")] = (61, gemm(t, nh * (nope + v_dim), kv_lora, w))
        kv_read = b * 1024 * nh * (192 + 128) * 2
        expected[("attention", "attention")] = (
            61,
            (pairs * nh * (2 * 192 + 2 * 128 + 5), 0, t * nh * 192 * 2 + t * nh * 128 * 2 + kv_read, 0),
        )
    return expected


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_deepseek_v3_every_operator(phase: str) -> None:
    check(build_operators(DEEPSEEK_V3, SCENARIO, phase), deepseek_expected(phase))  # type: ignore[arg-type]


def test_deepseek_decode_touches_few_experts_and_reads_the_latent_cache_once() -> None:
    ops = {(op.block, op.name): op for op in build_operators(DEEPSEEK_V3, SCENARIO, "decode")}
    assert "15.75 of 256" in ops[("moe", "experts_gate_up")].note
    # the latent cache is per token, not per head: 128× smaller than a per-head K/V cache of d 192+128
    per_head_cache = 2 * 2048 * 128 * (192 + 128) * 2
    assert per_head_cache / ops[("attention", "attention")].kv_bytes == pytest.approx(128 * 320 / 576)
    # MLA replicates the latent cache and the down-projections on every TP rank
    tp8 = {
        (op.block, op.name): op
        for op in build_operators(DEEPSEEK_V3, SCENARIO.model_copy(update={"tp": 8}), "decode")
    }
    assert tp8[("attention", "attention")].kv_bytes == ops[("attention", "attention")].kv_bytes
    assert tp8[("attention", "kv_a_proj")].weight_bytes == ops[("attention", "kv_a_proj")].weight_bytes
    assert tp8[("attention", "q_b_proj")].weight_bytes == ops[("attention", "q_b_proj")].weight_bytes / 8
    assert tp8[("moe", "experts_down")].flops == ops[("moe", "experts_down")].flops / 8


def test_categories_use_the_kernel_vocabulary() -> None:
    from infersight.analyses.categories import CATEGORIES

    for model in (LLAMA3_8B, MIXTRAL_8X7B, DEEPSEEK_V3):
        for phase in ("prefill", "decode"):
            scenario = SCENARIO.model_copy(update={"tp": 2})
            for op in build_operators(model, scenario, phase):  # type: ignore[arg-type]
                assert op.category in CATEGORIES, op.name
                assert math.isfinite(op.flops) and op.flops >= 0


def test_mla_without_q_lora_and_partial_sliding_window() -> None:
    lite = ModelConfig(
        **{
            **DEEPSEEK_V3.__dict__,
            "name": "mla-lite",
            "num_attention_heads": 16,
            "num_kv_heads": 16,
            "mla": MLAConfig(
                q_lora_rank=None, kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128
            ),
        }
    )
    ops = {(op.block, op.name): op for op in build_operators(lite, SCENARIO, "prefill")}
    assert ("attention", "q_a_proj") not in ops
    assert ops[("attention", "q_proj")].flops == 2 * 2048 * (16 * 192) * 7168
    # every other layer windowed (like gpt-oss / Gemma-2): two attention operators with their layer counts
    mixed = ModelConfig(
        **{**LLAMA3_8B.__dict__, "sliding_window": 128, "sliding_window_layers": tuple(range(0, 32, 2))}
    )
    attention = {
        op.name: op for op in build_operators(mixed, SCENARIO, "decode") if op.category == "attention"
    }
    assert attention["attention_full"].layers == attention["attention_window"].layers == 16
    assert attention["attention_full"].kv_bytes == 2 * 2048 * 2048 * 2
    assert attention["attention_window"].kv_bytes == 2 * 128 * 2048 * 2


def test_every_builtin_model_builds_both_phases() -> None:
    from infersight.theory.config_reader import builtin_model, list_builtin_models

    names = list_builtin_models()
    assert {"llama-3-8b", "mixtral-8x7b", "deepseek-v3"} <= set(names)
    for name in names:
        model = builtin_model(name)
        for phase in ("prefill", "decode"):
            ops = build_operators(model, SCENARIO, phase)  # type: ignore[arg-type]
            assert sum(op.flops * op.layers for op in ops) > 0


def test_biases_shared_gate_and_per_part_weight_widths() -> None:
    # a small Qwen2-MoE / gpt-oss style mix: int4-like experts, bf16 attention and tables
    model = ModelConfig(
        name="mix",
        model_type="test",
        hidden_size=64,
        num_layers=2,
        num_attention_heads=4,
        num_kv_heads=2,
        head_dim=16,
        intermediate_size=128,
        vocab_size=1000,
        moe=MoEConfig(
            num_routed_experts=4,
            experts_per_token=4,  # every expert touched: distinct = 4
            expert_intermediate_size=32,
            num_shared_experts=1,
            shared_expert_intermediate_size=48,
            router_bias=True,
            expert_bias=True,
            shared_expert_gate=True,
        ),
        weight_bytes=0.5,
        attention_weight_bytes=2.0,
        embedding_weight_bytes=2.0,
        quantization="awq-int4",
    )
    ops = {
        (op.block, op.name): op
        for op in build_operators(model, Scenario(batch=1, prompt_len=3, context_len=3), "prefill")
    }
    t = 3
    assert ops[("attention", "q_proj")].weight_bytes == 64 * 64 * 2.0  # attention kept bf16
    assert ops[("model", "lm_head")].weight_bytes == 1000 * 64 * 2.0
    assert ops[("moe", "router")].flops == 2 * t * 4 * 64 + t * 4  # + bias
    assert ops[("moe", "router")].weight_bytes == (4 * 64 + 4) * 2.0
    assert ops[("moe", "experts_gate_up")].flops == 2 * (4 * t) * 64 * 64 + (4 * t) * 64
    assert ops[("moe", "experts_gate_up")].weight_bytes == 4 * 64 * (64 + 1) * 0.5
    assert ops[("moe", "experts_down")].flops == 2 * (4 * t) * 32 * 64 + (4 * t) * 64
    assert ops[("moe", "experts_down")].weight_bytes == 4 * (32 + 1) * 64 * 0.5
    assert ops[("shared_expert", "shared_expert_gate")].flops == 2 * t * 1 * 64
    assert ops[("shared_expert", "shared_add")].flops == 2 * t * 64
    assert ops[("shared_expert", "shared_up_proj")].weight_bytes == 48 * 64 * 0.5
