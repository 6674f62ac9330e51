"""Parameter counts: published model sizes, hand derivations, checkpoint sizes."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from infersight.theory.config_reader import builtin_index, builtin_model, load_model_config, parse_config
from infersight.theory.params import (
    checkpoint_size_ratio,
    count_parameters,
    layer_parameters,
    weight_bytes,
)

PUBLISHED_TOLERANCE = 0.02


@pytest.mark.parametrize("name", sorted(builtin_index()))
def test_total_matches_the_published_size(name: str) -> None:
    published = builtin_index()[name].published_params
    assert published is not None, f"index.toml lacks published_params for {name}"
    total = count_parameters(builtin_model(name)).total
    assert total == pytest.approx(published, rel=PUBLISHED_TOLERANCE), builtin_index()[name].params_source


@pytest.mark.parametrize(
    "name", [name for name, info in sorted(builtin_index().items()) if info.published_active_params]
)
def test_active_matches_the_published_active_size(name: str) -> None:
    info = builtin_index()[name]
    published = info.published_active_params
    counts = count_parameters(builtin_model(name))
    active = counts.active_with_embedding if info.active_includes_embedding else counts.active_per_token
    assert active == pytest.approx(published, rel=PUBLISHED_TOLERANCE), builtin_index()[name].params_source


@pytest.mark.parametrize(
    ("name", "published_non_embedding"),
    [("qwen2.5-7b", 6.53e9), ("qwen2.5-32b", 31.0e9), ("qwen3-8b", 6.95e9), ("qwen3-32b", 31.2e9)],
)
def test_non_embedding_matches_the_qwen_model_cards(name: str, published_non_embedding: float) -> None:
    assert count_parameters(builtin_model(name)).non_embedding == pytest.approx(
        published_non_embedding, rel=0.01
    )


def test_llama_2_7b_by_hand() -> None:
    hidden, intermediate, layers, vocab = 4096, 11008, 32, 32000
    per_layer = 4 * hidden * hidden + 3 * hidden * intermediate + 2 * hidden
    expected = layers * per_layer + 2 * vocab * hidden + hidden
    counts = count_parameters(builtin_model("llama-2-7b"))
    assert counts.total == expected == 6_738_415_616
    assert counts.active_per_token == expected - vocab * hidden  # dense: all but the embedding lookup


def test_llama_3_8b_by_hand_gqa() -> None:
    hidden, kv_width, intermediate = 4096, 8 * 128, 14336
    attention = 2 * hidden * hidden + 2 * hidden * kv_width
    layer = layer_parameters(builtin_model("llama-3-8b"), 0)
    assert layer.attention == attention
    assert layer.dense_mlp == 3 * hidden * intermediate
    assert count_parameters(builtin_model("llama-3-8b")).total == 8_030_261_248


def test_mixtral_by_hand() -> None:
    hidden, kv_width, expert_width, experts, layers, vocab = 4096, 1024, 14336, 8, 32, 32000
    attention = 2 * hidden * hidden + 2 * hidden * kv_width
    expert = 3 * hidden * expert_width
    per_layer = attention + experts * expert + hidden * experts + 2 * hidden
    counts = count_parameters(builtin_model("mixtral-8x7b"))
    assert counts.total == layers * per_layer + 2 * vocab * hidden + hidden
    assert counts.active_routed_experts == layers * 2 * expert
    assert counts.router == layers * hidden * experts


def test_deepseek_v3_layers_by_hand() -> None:
    config = builtin_model("deepseek-v3")
    hidden, heads, q_rank, kv_rank, nope, rope, v_dim = 7168, 128, 1536, 512, 128, 64, 128
    attention = (
        hidden * q_rank
        + q_rank
        + q_rank * heads * (nope + rope)
        + hidden * (kv_rank + rope)
        + kv_rank
        + kv_rank * heads * (nope + v_dim)
        + heads * v_dim * hidden
    )
    dense_layer, moe_layer = layer_parameters(config, 0), layer_parameters(config, 3)
    assert dense_layer.attention == moe_layer.attention == attention
    assert dense_layer.dense_mlp == 3 * hidden * 18432
    assert moe_layer.routed_experts == 256 * 3 * hidden * 2048
    assert moe_layer.shared_experts == 3 * hidden * 2048
    assert moe_layer.router == hidden * 256 + 256
    counts = count_parameters(config)
    assert counts.routed_experts == 58 * 256 * 3 * hidden * 2048


def test_tied_embeddings_drop_the_lm_head() -> None:
    raw = {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "vocab_size": 100,
        "tie_word_embeddings": True,
    }
    counts = count_parameters(parse_config(raw, source="t", name="t"))
    assert counts.lm_head == 0
    assert counts.total == 4 * 64 * 64 + 3 * 64 * 128 + 2 * 64 + 64 + 100 * 64


def test_shipped_tied_model_has_no_lm_head() -> None:
    counts = count_parameters(builtin_model("llama-3.2-1b"))
    assert counts.lm_head == 0
    assert counts.active_per_token == counts.total - counts.embedding
    assert counts.active_with_embedding == counts.total


def test_weight_bytes_by_precision() -> None:
    llama = builtin_model("llama-3-8b")
    assert weight_bytes(llama) == 2 * count_parameters(llama).total
    deepseek = builtin_model("deepseek-v3")
    counts = count_parameters(deepseek)
    fp8_parts = counts.attention + counts.dense_mlp + counts.routed_experts + counts.shared_experts
    expected = fp8_parts * (1 + 4 / 128**2) + 2 * (
        counts.embedding + counts.lm_head + counts.norms + counts.router
    )
    assert weight_bytes(deepseek) == pytest.approx(expected)
    assert weight_bytes(deepseek, active_only=True) < weight_bytes(deepseek) / 10


@pytest.mark.parametrize(
    ("name", "total_size"),
    [
        # metadata.total_size of the models' model.safetensors.index.json on the HuggingFace Hub
        ("llama-3-8b", 16060522496),
        ("llama-2-7b", 13476839424),  # includes 32 x 64 fp32 rotary inv_freq buffers (8192 B)
    ],
)
def test_parameter_bytes_match_the_safetensors_index(tmp_path: Path, name: str, total_size: int) -> None:
    folder = tmp_path / name
    folder.mkdir()
    shipped = builtin_model(name)
    (folder / "config.json").write_text(shipped_text(shipped.name), encoding="utf-8")
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total_size}, "weight_map": {}}), encoding="utf-8"
    )
    ratio = checkpoint_size_ratio(load_model_config(folder))
    assert ratio == pytest.approx(1.0, abs=1e-6)


def test_no_index_no_ratio() -> None:
    assert checkpoint_size_ratio(builtin_model("llama-3-8b")) is None


def shipped_text(name: str) -> str:
    """The JSON text of a shipped config, as a user would have it on disk."""
    file = builtin_index()[name].file
    return resources.files("infersight.data").joinpath(f"models/{file}").read_text(encoding="utf-8")
