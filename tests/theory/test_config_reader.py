"""HuggingFace config.json -> ModelConfig: shipped models, architectures, quantisation, bad input."""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import shared_file

from infersight.errors import InputError
from infersight.theory.architectures import architecture_for
from infersight.theory.config_reader import (
    builtin_index,
    builtin_model,
    list_builtin_models,
    load_model_config,
    parse_config,
    resolve_model,
)

REQUIRED_MODELS = (
    "llama-2-7b",
    "llama-2-70b",
    "llama-3-8b",
    "llama-3-70b",
    "llama-3.1-8b",
    "qwen2.5-7b",
    "qwen3-32b",
    "qwen3-30b-a3b",
    "mistral-7b",
    "mixtral-8x7b",
    "deepseek-v3",
    "gpt-oss-20b",
    "gpt-oss-120b",
)

LLAMA_LIKE: dict[str, Any] = {
    "model_type": "llama",
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
    "torch_dtype": "bfloat16",
    "tie_word_embeddings": False,
}


def shipped_raw(name: str) -> dict[str, Any]:
    """The shipped JSON of a built-in model, read without the reader under test."""
    file = builtin_index()[name].file
    text = resources.files("infersight.data").joinpath(f"models/{file}").read_text(encoding="utf-8")
    raw: dict[str, Any] = json.loads(text)
    return raw


def write_config(folder: Path, raw: dict[str, Any], name: str = "config.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def parse(raw: dict[str, Any]) -> Any:
    return parse_config(raw, source="test.json", name="test")


# ------------------------------------------------------------------ built-ins


def test_required_models_are_shipped() -> None:
    assert set(REQUIRED_MODELS) <= set(list_builtin_models())


@pytest.mark.parametrize("name", sorted(builtin_index()))
def test_every_builtin_matches_its_raw_json(name: str) -> None:
    config = builtin_model(name)
    raw = shipped_raw(name)
    if "hidden_size" not in raw:  # multimodal wrapper (Llama-4, Gemma-3): the language model is inside
        raw = {**raw, **raw["text_config"]}
    assert config.name == name
    assert config.hidden_size == raw["hidden_size"]
    assert config.num_layers == raw["num_hidden_layers"]
    assert config.num_attention_heads == raw["num_attention_heads"]
    assert config.num_kv_heads == raw.get("num_key_value_heads", raw["num_attention_heads"])
    default_vocab = architecture_for(config.model_type).defaults.get("vocab_size")
    assert config.vocab_size == raw.get("vocab_size", default_vocab)
    tied = raw.get("tie_word_embeddings", architecture_for(config.model_type).tied_by_default)
    assert config.tie_word_embeddings is tied
    assert config.num_attention_heads % config.num_kv_heads == 0


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("llama-3-8b", "llama-3-8b"),
        ("Llama 3 8B", "llama-3-8b"),
        ("meta-llama/Meta-Llama-3-8B", "llama-3-8b"),
        ("LLAMA-3.1-8B", "llama-3.1-8b"),
        ("llama3.1_8b", "llama-3.1-8b"),
        ("Mixtral-8x7B", "mixtral-8x7b"),
        ("deepseek-ai/DeepSeek-V3", "deepseek-v3"),
        ("Qwen2.5-7B", "qwen2.5-7b"),
        ("qwen3_30b_a3b", "qwen3-30b-a3b"),
        ("mistralai/Mistral-7B-v0.1", "mistral-7b"),
        ("GPT-OSS-120B", "gpt-oss-120b"),
    ],
)
def test_builtin_names_are_case_and_punctuation_insensitive(spelling: str, canonical: str) -> None:
    assert builtin_model(spelling).name == canonical


def test_llama_3_and_3_1_are_distinct_names_with_the_same_shapes() -> None:
    llama3, llama31 = builtin_model("llama-3-8b"), builtin_model("llama-3.1-8b")
    assert llama3.max_position_embeddings == 8192
    assert llama31.max_position_embeddings == 131072
    assert (llama3.hidden_size, llama3.intermediate_size) == (llama31.hidden_size, llama31.intermediate_size)


def test_unknown_builtin_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match=r"unknown model 'llama-9-1b'.*llama-3-8b.*--config"):
        builtin_model("llama-9-1b")


def test_resolve_model_takes_names_paths_and_folders(tmp_path: Path) -> None:
    assert resolve_model("mixtral-8x7b").moe is not None
    path = write_config(tmp_path / "tiny-llama", LLAMA_LIKE)
    assert resolve_model(str(path)).hidden_size == 256
    from_folder = resolve_model(str(path.parent))
    assert from_folder.name == "tiny-llama"
    with pytest.raises(InputError, match="neither a built-in model"):
        resolve_model(str(tmp_path / "absent.json"))


def test_shared_qwen3_config_reads_like_the_shipped_one() -> None:
    path = shared_file("configs/qwen3-8b.config.json")
    from_file = load_model_config(path)
    shipped = builtin_model("qwen3-8b")
    assert from_file.head_dim == shipped.head_dim == 128
    assert (from_file.num_attention_heads, from_file.num_kv_heads) == (32, 8)
    assert from_file.source == str(path)


# ------------------------------------------------------------------ architectures


def test_dense_gqa_llama() -> None:
    config = builtin_model("llama-3-8b")
    assert (config.num_attention_heads, config.num_kv_heads, config.head_dim) == (32, 8, 128)
    assert config.gated_mlp and config.moe is None and config.mla is None
    assert (config.weight_bytes, config.activation_bytes, config.compute_dtype) == (2.0, 2.0, "bf16")
    assert config.quantization is None


def test_llama_2_7b_is_mha_in_fp16() -> None:
    config = builtin_model("llama-2-7b")
    assert config.num_kv_heads == config.num_attention_heads == 32
    assert config.compute_dtype == "fp16"


def test_explicit_head_dim_wins_over_hidden_over_heads() -> None:
    config = builtin_model("qwen3-32b")
    assert config.hidden_size // config.num_attention_heads == 80
    assert config.head_dim == 128


def test_mqa_and_missing_kv_heads() -> None:
    mqa = parse({**LLAMA_LIKE, "num_key_value_heads": 1})
    assert mqa.num_kv_heads == 1
    mha = parse({key: value for key, value in LLAMA_LIKE.items() if key != "num_key_value_heads"})
    assert mha.num_kv_heads == mha.num_attention_heads == 8


def test_sliding_window_rules() -> None:
    assert builtin_model("mistral-7b").sliding_window == 4096
    assert builtin_model("mistral-7b").sliding_window_layers == ()  # every layer
    assert builtin_model("qwen2.5-7b").sliding_window is None  # use_sliding_window: false
    gpt_oss = builtin_model("gpt-oss-20b")
    assert gpt_oss.sliding_window == 128
    assert gpt_oss.sliding_window_layers == tuple(range(0, 24, 2))


def test_mixtral_moe() -> None:
    config = builtin_model("mixtral-8x7b")
    assert config.moe is not None
    assert (config.moe.num_routed_experts, config.moe.experts_per_token) == (8, 2)
    assert config.moe.expert_intermediate_size == 14336
    assert config.moe.num_shared_experts == 0
    assert config.num_moe_layers == 32


def test_deepseek_v3_mla_moe_and_fp8() -> None:
    config = builtin_model("deepseek-v3")
    assert config.mla is not None and config.moe is not None
    assert (config.mla.q_lora_rank, config.mla.kv_lora_rank) == (1536, 512)
    assert (config.mla.qk_nope_head_dim, config.mla.qk_rope_head_dim, config.mla.v_head_dim) == (128, 64, 128)
    assert config.head_dim == 192
    assert (config.moe.num_routed_experts, config.moe.experts_per_token) == (256, 8)
    assert (config.moe.num_shared_experts, config.moe.shared_expert_intermediate_size) == (1, 2048)
    assert [config.is_moe_layer(layer) for layer in range(4)] == [False, False, False, True]
    assert config.num_moe_layers == 58
    assert config.moe.router_bias  # noaux_tc score-correction bias
    assert config.quantization == "fp8" and config.compute_dtype == "fp8"
    assert config.weight_bytes == pytest.approx(1 + 4 / (128 * 128))
    assert config.embedding_bytes_per_weight == 2.0
    assert config.kv_cache_bytes == 2.0
    assert any("multi-token-prediction" in note for note in config.notes)


def test_qwen3_moe_without_shared_experts() -> None:
    config = builtin_model("qwen3-30b-a3b")
    assert config.moe is not None
    assert (config.moe.num_routed_experts, config.moe.experts_per_token) == (128, 8)
    assert config.moe.expert_intermediate_size == 768
    assert config.num_moe_layers == 48


def test_qwen2_moe_shared_expert_sparse_step_and_dense_layers() -> None:
    raw = {
        **LLAMA_LIKE,
        "model_type": "qwen2_moe",
        "num_hidden_layers": 6,
        "num_experts": 16,
        "num_experts_per_tok": 4,
        "moe_intermediate_size": 64,
        "shared_expert_intermediate_size": 256,
        "decoder_sparse_step": 2,
        "mlp_only_layers": [3],
    }
    config = parse(raw)
    assert config.moe is not None
    assert config.moe.moe_layers == (1, 5)  # (i + 1) % 2 == 0, minus the dense-only layer 3
    assert (config.moe.num_shared_experts, config.moe.shared_expert_intermediate_size) == (1, 256)
    assert config.moe.shared_expert_gate
    assert config.attention_bias  # Qwen2 family: q/k/v bias


def test_deepseek_moe_layer_freq_counts_from_layer_zero() -> None:
    raw = {
        **LLAMA_LIKE,
        "model_type": "deepseek_v2",
        "num_hidden_layers": 8,
        "n_routed_experts": 8,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 64,
        "n_shared_experts": 2,
        "first_k_dense_replace": 1,
        "moe_layer_freq": 2,
    }
    config = parse(raw)
    assert config.moe is not None
    assert config.moe.moe_layers == (2, 4, 6)  # DeepSeek: layer >= k and layer % freq == 0


def test_gpt_oss_mxfp4_experts_only() -> None:
    config = builtin_model("gpt-oss-120b")
    assert config.moe is not None
    assert (config.moe.num_routed_experts, config.moe.experts_per_token) == (128, 4)
    assert config.moe.router_bias and config.moe.expert_bias
    assert config.attention_sinks and config.attention_bias
    assert config.quantization == "mxfp4"
    assert config.weight_bytes == pytest.approx(0.5 + 1 / 32)
    assert config.attention_bytes_per_weight == config.embedding_bytes_per_weight == 2.0


def test_tied_embeddings_and_defaults() -> None:
    assert parse({**LLAMA_LIKE, "tie_word_embeddings": True}).tie_word_embeddings
    untold = parse({key: value for key, value in LLAMA_LIKE.items() if key != "tie_word_embeddings"})
    assert not untold.tie_word_embeddings
    assert any("tie_word_embeddings not given" in note for note in untold.notes)


def test_multimodal_wrapper_reads_the_text_config() -> None:
    raw = {"model_type": "llava", "text_config": LLAMA_LIKE, "torch_dtype": "float16"}
    config = parse(raw)
    assert (config.hidden_size, config.model_type) == (256, "llama")


# ------------------------------------------------------------------ dtypes and quantisation


def test_fp32_checkpoint() -> None:
    config = parse({**LLAMA_LIKE, "torch_dtype": "float32"})
    assert (config.weight_bytes, config.activation_bytes, config.compute_dtype) == (4.0, 4.0, "fp32")


def test_missing_dtype_is_assumed_bf16_with_a_note() -> None:
    config = parse({key: value for key, value in LLAMA_LIKE.items() if key != "torch_dtype"})
    assert config.compute_dtype == "bf16"
    assert any("assumed bfloat16" in note for note in config.notes)


@pytest.mark.parametrize(
    ("quantization_config", "label", "weight_bytes", "compute"),
    [
        (
            {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True},
            "awq-int4",
            0.5 + 2.5 / 128,
            "fp16",
        ),
        ({"quant_method": "gptq", "bits": 4, "group_size": 128}, "gptq-int4", 0.5 + 2.5 / 128, "bf16"),
        ({"quant_method": "gptq", "bits": 4, "group_size": -1}, "gptq-int4", 0.5, "bf16"),
        ({"quant_method": "gptq", "bits": 8, "group_size": 64}, "gptq-int8", 1 + 3 / 64, "bf16"),
        ({"quant_method": "fbgemm_fp8"}, "fp8", 1.0, "fp8"),
        (
            {
                "quant_method": "bitsandbytes",
                "load_in_4bit": True,
                "bnb_4bit_quant_type": "nf4",
                "bnb_4bit_compute_dtype": "bfloat16",
            },
            "bnb-nf4",
            0.5 + 4 / 64,
            "bf16",
        ),
        ({"quant_method": "bitsandbytes", "load_in_8bit": True}, "bnb-int8", 1.0, "int8"),
        ({"quant_method": "modelopt", "quant_algo": "NVFP4"}, "nvfp4", 0.5 + 1 / 16, "fp4"),
        ({"quant_method": "modelopt", "quantization": {"quant_algo": "FP8"}}, "fp8", 1.0, "fp8"),
    ],
)
def test_quantisation_bytes_and_compute_dtype(
    quantization_config: dict[str, Any], label: str, weight_bytes: float, compute: str
) -> None:
    config = parse({**LLAMA_LIKE, "quantization_config": quantization_config})
    assert config.quantization == label
    assert config.weight_bytes == pytest.approx(weight_bytes)
    assert config.compute_dtype == compute
    assert config.embedding_bytes_per_weight == 2.0  # embeddings stay unquantised


def test_compressed_tensors_w8a8_fp8_with_fp8_kv_cache() -> None:
    quantization_config = {
        "quant_method": "compressed-tensors",
        "config_groups": {
            "group_0": {
                "weights": {"num_bits": 8, "type": "float", "strategy": "channel"},
                "input_activations": {"num_bits": 8, "type": "float", "dynamic": True},
                "targets": ["Linear"],
            }
        },
        "kv_cache_scheme": {"num_bits": 8, "type": "float"},
        "ignore": ["lm_head"],
    }
    config = parse({**LLAMA_LIKE, "quantization_config": quantization_config})
    assert (config.quantization, config.compute_dtype, config.weight_bytes) == ("fp8", "fp8", 1.0)
    assert config.kv_cache_bytes == 1.0


def test_compressed_tensors_w4a16_int4_groups() -> None:
    quantization_config = {
        "quant_method": "compressed-tensors",
        "config_groups": {
            "g": {"weights": {"num_bits": 4, "type": "int", "group_size": 128, "symmetric": True}}
        },
    }
    config = parse({**LLAMA_LIKE, "quantization_config": quantization_config})
    assert config.quantization == "int4-weight-only"
    assert config.weight_bytes == pytest.approx(0.5 + 2 / 128)
    assert config.compute_dtype == "bf16"


@pytest.mark.parametrize("method", ["hqq", "aqlm", ""])
def test_unknown_quantisation_is_an_error(method: str) -> None:
    with pytest.raises(InputError, match=r"unknown quantisation method.*supported: fp8"):
        parse({**LLAMA_LIKE, "quantization_config": {"quant_method": method}})


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_size": None}, "missing hidden_size"),
        ({"num_attention_heads": 0}, "num_attention_heads must be positive"),
        (
            {"num_key_value_heads": 3},
            r"num_attention_heads \(8\) is not divisible by num_key_value_heads \(3\)",
        ),
        ({"num_key_value_heads": 0}, "num_key_value_heads must be positive"),
        ({"hidden_size": 250}, "hidden_size .250. is not divisible by num_attention_heads"),
        ({"num_hidden_layers": "32"}, "num_hidden_layers must be an integer"),
        ({"vocab_size": None}, "missing vocab_size"),
        ({"torch_dtype": "float128"}, "unknown torch_dtype"),
        ({"num_experts": 4, "num_experts_per_tok": 8}, r"experts per token \(8\) exceeds"),
        ({"num_experts": 4}, "missing num_experts_per_tok"),
    ],
)
def test_bad_configs_name_the_file_in_one_line(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    raw = {key: value for key, value in {**LLAMA_LIKE, **change}.items() if value is not None}
    path = write_config(tmp_path, raw)
    with pytest.raises(InputError, match=message) as caught:
        load_model_config(path)
    assert caught.value.source == str(path)
    assert "\n" not in str(caught.value)


def test_not_json_and_not_an_object(tmp_path: Path) -> None:
    broken = tmp_path / "config.json"
    broken.write_text('{"hidden_size": 4096,', encoding="utf-8")
    with pytest.raises(InputError, match="not valid JSON"):
        load_model_config(broken)
    broken.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match="expected a JSON object"):
        load_model_config(broken)
    with pytest.raises(InputError, match="file not found"):
        load_model_config(tmp_path / "missing.json")


# ------------------------------------------------------------------ safetensors index


def test_sibling_safetensors_index_gives_checkpoint_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "Meta-Llama-3-8B"
    write_config(folder, shipped_raw("llama-3-8b"))
    # metadata.total_size of meta-llama/Meta-Llama-3-8B's model.safetensors.index.json
    write_config(
        folder,
        {
            "metadata": {"total_size": 16060522496},
            "weight_map": {"lm_head.weight": "model-00004-of-00004.safetensors"},
        },
        name="model.safetensors.index.json",
    )
    config = load_model_config(folder)
    assert config.checkpoint_bytes == 16060522496
    assert config.name == "Meta-Llama-3-8B"


def test_index_without_lm_head_contradicting_untied_config_is_noted(tmp_path: Path) -> None:
    write_config(tmp_path, LLAMA_LIKE)
    write_config(
        tmp_path,
        {"metadata": {"total_size": 1000}, "weight_map": {"model.embed_tokens.weight": "a.safetensors"}},
        name="model.safetensors.index.json",
    )
    config = load_model_config(tmp_path)
    assert any("no lm_head.weight" in note for note in config.notes)


def test_bad_index_is_an_error(tmp_path: Path) -> None:
    write_config(tmp_path, LLAMA_LIKE)
    write_config(tmp_path, {"weight_map": {}}, name="model.safetensors.index.json")
    with pytest.raises(InputError, match=r"model.safetensors.index.json: no positive metadata.total_size"):
        load_model_config(tmp_path / "config.json")


# ------------------------------------------------------------------ safetensors shards

ELEMENT_BYTES = {"BF16": 2, "F32": 4}


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]]) -> int:
    """A valid .safetensors file of zero tensors (header + data); returns the data bytes."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = ELEMENT_BYTES[dtype]
        for dim in shape:
            size *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header).encode()
    path.write_bytes(len(encoded).to_bytes(8, "little") + encoded + bytes(offset))
    return offset


def tiny_llama_tensors(dtype: str) -> dict[str, tuple[str, list[int]]]:
    """HF tensor names and shapes of LLAMA_LIKE, written out independently of params.py."""
    hidden, inter, kv_width, vocab = 256, 512, 2 * (256 // 8), 1000
    tensors = {"model.embed_tokens.weight": (dtype, [vocab, hidden])}
    for layer in range(2):
        prefix = f"model.layers.{layer}"
        tensors |= {
            f"{prefix}.self_attn.q_proj.weight": (dtype, [hidden, hidden]),
            f"{prefix}.self_attn.k_proj.weight": (dtype, [kv_width, hidden]),
            f"{prefix}.self_attn.v_proj.weight": (dtype, [kv_width, hidden]),
            f"{prefix}.self_attn.o_proj.weight": (dtype, [hidden, hidden]),
            f"{prefix}.mlp.gate_proj.weight": (dtype, [inter, hidden]),
            f"{prefix}.mlp.up_proj.weight": (dtype, [inter, hidden]),
            f"{prefix}.mlp.down_proj.weight": (dtype, [hidden, inter]),
            f"{prefix}.input_layernorm.weight": (dtype, [hidden]),
            f"{prefix}.post_attention_layernorm.weight": (dtype, [hidden]),
        }
    tensors |= {"model.norm.weight": (dtype, [hidden]), "lm_head.weight": (dtype, [vocab, hidden])}
    return tensors


def write_sharded(folder: Path, dtype: str, keep_shards: int = 2) -> int:
    """Two shards plus an index; returns the total data bytes."""
    write_config(folder, LLAMA_LIKE)
    tensors = list(tiny_llama_tensors(dtype).items())
    halves = {
        "model-00001-of-00002.safetensors": tensors[:10],
        "model-00002-of-00002.safetensors": tensors[10:],
    }
    total = 0
    weight_map = {}
    for number, (file, part) in enumerate(halves.items()):
        shard = folder / file
        total += write_safetensors(shard, dict(part))
        weight_map |= {name: file for name, _ in part}
        if number >= keep_shards:
            shard.unlink()
    write_config(folder, {"metadata": {"total_size": total}, "weight_map": weight_map}, INDEX_NAME)
    return total


INDEX_NAME = "model.safetensors.index.json"


def test_shard_headers_give_the_exact_parameter_count(tmp_path: Path) -> None:
    from infersight.theory.params import count_parameters

    total = write_sharded(tmp_path, "BF16")
    config = load_model_config(tmp_path)
    expected = sum(math.prod(shape) for _, shape in tiny_llama_tensors("BF16").values())
    assert config.checkpoint_params == expected == count_parameters(config).total
    assert config.checkpoint_bytes == total == 2 * expected
    assert config.checkpoint_dtype == "bf16"
    assert not [note for note in config.notes if "x the" in note or "but the" in note]


def test_fp32_checkpoint_under_a_bf16_config_is_flagged(tmp_path: Path) -> None:
    write_sharded(tmp_path, "F32")
    config = load_model_config(tmp_path)
    assert config.checkpoint_dtype == "fp32"
    assert any("mostly fp32 but the config says bf16" in note for note in config.notes)
    assert any("2.00x" in note for note in config.notes)


def test_missing_shard_counts_nothing_but_says_so(tmp_path: Path) -> None:
    write_sharded(tmp_path, "BF16", keep_shards=1)
    config = load_model_config(tmp_path)
    assert config.checkpoint_params is None
    assert any("1 checkpoint shard(s) not in the folder" in note for note in config.notes)


def test_single_file_checkpoint_without_index(tmp_path: Path) -> None:
    write_config(tmp_path, LLAMA_LIKE)
    data_bytes = write_safetensors(tmp_path / "model.safetensors", tiny_llama_tensors("BF16"))
    config = load_model_config(tmp_path / "config.json")
    assert config.checkpoint_bytes == data_bytes
    assert config.checkpoint_params == data_bytes // 2


def test_tied_config_with_a_stored_lm_head_is_flagged(tmp_path: Path) -> None:
    write_config(tmp_path, {**LLAMA_LIKE, "tie_word_embeddings": True})
    write_safetensors(tmp_path / "model.safetensors", tiny_llama_tensors("BF16"))
    config = load_model_config(tmp_path)
    assert any("tied embeddings but the checkpoint stores an lm_head" in note for note in config.notes)


def test_corrupt_shard_names_the_shard(tmp_path: Path) -> None:
    write_config(tmp_path, LLAMA_LIKE)
    (tmp_path / "model.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(InputError, match=r"model.safetensors: safetensors header length .* is implausible"):
        load_model_config(tmp_path)
