"""HuggingFace ``config.json`` -> :class:`ModelConfig`, and the built-in model configs.

The reader knows the key spellings of the decoder-only families inference engineers run
(Llama/Mistral/Qwen dense, Mixtral/Qwen-MoE/DeepSeek/gpt-oss MoE, DeepSeek MLA) and turns them
into the one normalised :class:`ModelConfig`; operator code never reads raw HuggingFace keys.
Anything that would make the FLOP/byte counts wrong (missing sizes, zero heads, heads not
divisible by kv heads, an unknown quantisation scheme) is an :class:`InputError` naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from infersight.errors import InputError
from infersight.theory.checkpoint import Checkpoint, read_checkpoint
from infersight.theory.model_config import MLAConfig, ModelConfig, MoEConfig
from infersight.theory.quantization import dtype_of, parse_quantization

CHECKPOINT_MISMATCH = 0.05  # relative gap between checkpoint and config above which we say so

# Alternative spellings of the core sizes (GPT-2/OPT/Falcon style configs), first match wins.
HIDDEN_KEYS = ("hidden_size", "d_model", "n_embd")
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers")
HEAD_KEYS = ("num_attention_heads", "n_head", "num_heads")
KV_HEAD_KEYS = ("num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num")
INTERMEDIATE_KEYS = ("intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size")
EXPERT_COUNT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
TOPK_KEYS = ("num_experts_per_tok", "experts_per_token", "moe_topk", "num_experts_per_token")

# Families whose MLP is up/down (2 matrices, GELU) rather than gated SwiGLU (3 matrices).
UNGATED_MODEL_TYPES = frozenset(
    {"gpt2", "gpt_bigcode", "opt", "gpt_neox", "gptj", "falcon", "phi", "bloom", "starcoder2", "mpt"}
)
# Families that tie lm_head to the embedding when the config does not say.
TIED_BY_DEFAULT = frozenset({"gpt2", "gpt_bigcode", "opt", "gemma", "gemma2", "gemma3_text", "bloom"})
# Families with q/k/v biases but none on o_proj.
QKV_BIAS_MODEL_TYPES = frozenset({"qwen2", "qwen2_moe"})


def load_model_config(path: Path, name: str | None = None) -> ModelConfig:
    """Read a HuggingFace ``config.json`` (or a model folder holding one).

    A ``model.safetensors.index.json`` and/or ``*.safetensors`` shards next to it, when present,
    give the checkpoint's byte size, exact parameter count and stored dtype; disagreements with
    what the config implies become notes (they usually mean a misread config).
    """
    path = Path(path)
    config_path = path / "config.json" if path.is_dir() else path
    raw = _read_json_object(config_path)
    config_name = name or _name_from(raw, config_path)
    checkpoint = read_checkpoint(config_path.parent)
    config = parse_config(
        raw,
        source=config_path,
        name=config_name,
        checkpoint_bytes=checkpoint.total_bytes if checkpoint else None,
    )
    if checkpoint is None:
        return config
    return dataclasses.replace(
        config,
        checkpoint_params=checkpoint.params,
        checkpoint_dtype=checkpoint.dominant_dtype,
        notes=(*config.notes, *checkpoint_notes(config, checkpoint, raw)),
    )


def checkpoint_notes(config: ModelConfig, checkpoint: Checkpoint, raw: dict[str, Any]) -> tuple[str, ...]:
    """Where the checkpoint disagrees with the config (each a one-line note)."""
    from infersight.theory.params import count_parameters, weight_bytes

    notes = []
    if checkpoint.total_bytes is not None:
        notes.append(f"checkpoint: {checkpoint.total_bytes} bytes of tensors")
        ratio = checkpoint.total_bytes / weight_bytes(config)
        if abs(ratio - 1) > CHECKPOINT_MISMATCH:
            notes.append(
                f"checkpoint is {ratio:.2f}x the {weight_bytes(config):.4g} bytes the config implies "
                "(wrong torch_dtype, unmodelled modules such as vision towers or MTP layers, or quantisation)"
            )
    if checkpoint.shards_missing:
        notes.append(
            f"{checkpoint.shards_missing} checkpoint shard(s) not in the folder: parameters not counted"
        )
    expected = count_parameters(config).total
    params = checkpoint.params
    if (
        params is not None
        and config.quantization is None
        and abs(params / expected - 1) > CHECKPOINT_MISMATCH
    ):
        notes.append(f"checkpoint holds {checkpoint.params} parameters, the config implies {expected}")
    dtype = checkpoint.dominant_dtype
    if dtype is not None and config.quantization is None and dtype != config.compute_dtype:
        notes.append(f"checkpoint tensors are mostly {dtype} but the config says {config.compute_dtype}")
    has_lm_head = any(name.endswith("lm_head.weight") for name in checkpoint.tensor_names)
    if checkpoint.tensor_names and raw.get("tie_word_embeddings") is False and not has_lm_head:
        notes.append("config says untied embeddings but the checkpoint has no lm_head.weight")
    if checkpoint.tensor_names and config.tie_word_embeddings and has_lm_head:
        notes.append("config says tied embeddings but the checkpoint stores an lm_head.weight")
    return tuple(notes)


def parse_config(
    raw: dict[str, Any], source: str | Path, name: str, checkpoint_bytes: int | None = None
) -> ModelConfig:
    """Normalise the dict of a HuggingFace config; ``source`` names it in errors."""
    if isinstance(raw.get("text_config"), dict) and not any(key in raw for key in HIDDEN_KEYS):
        raw = {**raw, **raw["text_config"]}  # multimodal wrapper: the language model is inside
    notes: list[str] = []
    model_type = str(raw.get("model_type") or "unknown")
    hidden = _positive_int(raw, HIDDEN_KEYS, source)
    layers = _positive_int(raw, LAYER_KEYS, source)
    heads = _positive_int(raw, HEAD_KEYS, source)
    vocab = _positive_int(raw, ("vocab_size",), source)
    kv_heads = _kv_heads(raw, heads, source)
    mla = _mla(raw, source)
    head_dim = _head_dim(raw, hidden, heads, mla, source)
    intermediate = _intermediate(raw, hidden, model_type, source, notes)
    moe = _moe(raw, model_type, layers, intermediate, source)
    activation_dtype, activation_bytes, dtype_note = dtype_of(raw, source)
    if dtype_note:
        notes.append(dtype_note)
    quant = parse_quantization(raw, source, activation_dtype, activation_bytes)
    notes.extend(quant.notes)
    if raw.get("num_nextn_predict_layers"):
        notes.append(
            f"{raw['num_nextn_predict_layers']} multi-token-prediction layer(s) in the checkpoint are "
            "not counted (used only for speculative decoding)"
        )
    if "tie_word_embeddings" in raw:
        tied = bool(raw["tie_word_embeddings"])
    else:
        tied = model_type in TIED_BY_DEFAULT
        notes.append(f"tie_word_embeddings not given: assumed {tied} for model_type {model_type}")
    window, window_layers = _sliding_window(raw, layers)
    return ModelConfig(
        name=name,
        model_type=model_type,
        hidden_size=hidden,
        num_layers=layers,
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=intermediate,
        vocab_size=vocab,
        tie_word_embeddings=tied,
        gated_mlp=model_type not in UNGATED_MODEL_TYPES,
        attention_bias=bool(raw.get("attention_bias", raw.get("bias", model_type in QKV_BIAS_MODEL_TYPES))),
        sliding_window=window,
        sliding_window_layers=window_layers,
        max_position_embeddings=_optional_int(raw.get("max_position_embeddings")),
        moe=moe,
        mla=mla,
        weight_bytes=quant.weight_bytes,
        activation_bytes=activation_bytes,
        kv_cache_bytes=quant.kv_cache_bytes if quant.kv_cache_bytes is not None else activation_bytes,
        quantization=quant.label,
        compute_dtype=quant.compute_dtype,
        embedding_weight_bytes=quant.embedding_weight_bytes,
        attention_weight_bytes=quant.attention_weight_bytes,
        mlp_bias=bool(raw.get("mlp_bias", False)),
        attention_sinks=model_type == "gpt_oss",
        checkpoint_bytes=checkpoint_bytes,
        source=str(source),
        notes=tuple(notes),
    )


# ---------------------------------------------------------------- built-in models


@dataclass(frozen=True)
class BuiltinModel:
    """One shipped config (``data/models/index.toml``)."""

    name: str
    file: str
    hf_id: str
    aliases: tuple[str, ...]
    published_params: float | None
    published_active_params: float | None
    active_includes_embedding: bool
    params_source: str


def normalise_model_name(name: str) -> str:
    """Case- and punctuation-insensitive key: ``"Llama 3.1-8B"`` -> ``"llama318b"``."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


@cache
def builtin_index() -> dict[str, BuiltinModel]:
    """The shipped models by canonical name, read once from ``data/models/index.toml``."""
    text = resources.files("infersight.data").joinpath("models/index.toml").read_text(encoding="utf-8")
    table = tomllib.loads(text)
    return {
        name: BuiltinModel(
            name=name,
            file=entry["file"],
            hf_id=entry["hf_id"],
            aliases=tuple(entry.get("aliases", ())),
            published_params=entry.get("published_params"),
            published_active_params=entry.get("published_active_params"),
            active_includes_embedding=bool(entry.get("active_includes_embedding", False)),
            params_source=entry.get("params_source", ""),
        )
        for name, entry in table.items()
    }


@cache
def _lookup_keys() -> dict[str, str]:
    """Normalised name/alias/HuggingFace id (with and without org) -> canonical name."""
    keys: dict[str, str] = {}
    for model in builtin_index().values():
        for spelling in (model.name, *model.aliases, model.hf_id, model.hf_id.split("/")[-1]):
            keys.setdefault(normalise_model_name(spelling), model.name)
    return keys


def list_builtin_models() -> list[str]:
    """Canonical names of the shipped configs, sorted."""
    return sorted(builtin_index())


def builtin_model_info(name: str) -> BuiltinModel:
    """Index entry (HuggingFace id, published sizes) of a built-in model name or alias."""
    canonical = _lookup_keys().get(normalise_model_name(name))
    if canonical is None:
        raise InputError(
            None,
            f"unknown model {name!r}; built-in models: {', '.join(list_builtin_models())}; "
            "or pass --config PATH to a HuggingFace config.json",
        )
    return builtin_index()[canonical]


def builtin_model(name: str) -> ModelConfig:
    """A shipped config by name (``llama-3-8b``, ``Mixtral-8x7B``, ``deepseek-ai/DeepSeek-V3`` ...)."""
    info = builtin_model_info(name)
    return _load_builtin(info.name)


@cache
def _load_builtin(canonical: str) -> ModelConfig:
    info = builtin_index()[canonical]
    resource = resources.files("infersight.data").joinpath(f"models/{info.file}")
    source = f"builtin:{canonical}"
    try:
        raw = json.loads(resource.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:  # a packaging bug, still stated in one line
        raise InputError(source, f"shipped config unreadable: {error}") from error
    return parse_config(raw, source=source, name=canonical)


def resolve_model(name_or_path: str) -> ModelConfig:
    """A built-in model name, else a path to a config.json or a model folder."""
    if normalise_model_name(name_or_path) in _lookup_keys():
        return builtin_model(name_or_path)
    path = Path(name_or_path).expanduser()
    if path.exists():
        return load_model_config(path)
    raise InputError(
        None,
        f"{name_or_path!r} is neither a built-in model ({', '.join(list_builtin_models())}) "
        "nor an existing config.json path",
    )


# ---------------------------------------------------------------- field readers


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise InputError(path, "file not found") from error
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(path, f"cannot read: {error}") from error
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(path, f"not valid JSON (line {error.lineno}: {error.msg})") from error
    if not isinstance(raw, dict):
        raise InputError(path, "expected a JSON object (a HuggingFace config.json)")
    return raw


def _name_from(raw: dict[str, Any], path: Path) -> str:
    """``_name_or_path`` when the config carries one, else the folder (or file) name."""
    recorded = raw.get("_name_or_path")
    if isinstance(recorded, str) and recorded and not recorded.startswith((".", "/")):
        return recorded
    return path.parent.name if path.name == "config.json" and path.parent.name else path.stem


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _first(raw: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, Any]:
    for key in keys:
        if raw.get(key) is not None:
            return key, raw[key]
    return keys[0], None


def _positive_int(raw: dict[str, Any], keys: tuple[str, ...], source: str | Path) -> int:
    key, value = _first(raw, keys)
    if value is None:
        raise InputError(source, f"missing {key} in the model config")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(source, f"{key} must be an integer, got {value!r}")
    if value <= 0:
        raise InputError(source, f"{key} must be positive, got {value}")
    return value


def _kv_heads(raw: dict[str, Any], heads: int, source: str | Path) -> int:
    key, value = _first(raw, KV_HEAD_KEYS)
    if value is None:
        kv_heads = 1 if raw.get("multi_query") else heads  # Falcon-style MQA flag, else MHA
    else:
        kv_heads = _positive_int(raw, (key,), source)
    if heads % kv_heads:
        raise InputError(
            source, f"num_attention_heads ({heads}) is not divisible by num_key_value_heads ({kv_heads})"
        )
    return kv_heads


def _mla(raw: dict[str, Any], source: str | Path) -> MLAConfig | None:
    if raw.get("kv_lora_rank") is None:
        return None
    q_rank = raw.get("q_lora_rank")
    return MLAConfig(
        q_lora_rank=_positive_int(raw, ("q_lora_rank",), source) if q_rank is not None else None,
        kv_lora_rank=_positive_int(raw, ("kv_lora_rank",), source),
        qk_nope_head_dim=_positive_int(raw, ("qk_nope_head_dim",), source),
        qk_rope_head_dim=_positive_int(raw, ("qk_rope_head_dim",), source),
        v_head_dim=_positive_int(raw, ("v_head_dim",), source),
    )


def _head_dim(raw: dict[str, Any], hidden: int, heads: int, mla: MLAConfig | None, source: str | Path) -> int:
    """Explicit ``head_dim`` (Qwen3, gpt-oss), MLA's q/k width, else hidden / heads."""
    if mla is not None:
        return mla.qk_nope_head_dim + mla.qk_rope_head_dim
    if raw.get("head_dim") is not None:
        return _positive_int(raw, ("head_dim",), source)
    if hidden % heads:
        raise InputError(
            source, f"hidden_size ({hidden}) is not divisible by num_attention_heads ({heads}); give head_dim"
        )
    return hidden // heads


def _intermediate(
    raw: dict[str, Any], hidden: int, model_type: str, source: str | Path, notes: list[str]
) -> int:
    key, value = _first(raw, INTERMEDIATE_KEYS)
    if value is None and model_type in UNGATED_MODEL_TYPES:
        notes.append("no intermediate size in the config: assumed 4 x hidden_size")
        return 4 * hidden
    return _positive_int(raw, (key,), source)


def _moe(
    raw: dict[str, Any], model_type: str, layers: int, intermediate: int, source: str | Path
) -> MoEConfig | None:
    """Routed experts, shared experts and which layers are MoE, by each family's own rule."""
    count_key, count = _first(raw, EXPERT_COUNT_KEYS)
    if not count:  # absent or 0: dense
        return None
    num_experts = _positive_int(raw, (count_key,), source)
    top_k = _positive_int(raw, TOPK_KEYS, source)
    if top_k > num_experts:
        raise InputError(source, f"experts per token ({top_k}) exceeds the number of experts ({num_experts})")
    expert_width = (
        _positive_int(raw, ("moe_intermediate_size",), source)
        if raw.get("moe_intermediate_size")
        else intermediate
    )
    shared_count, shared_width, shared_gate = 0, 0, False
    if raw.get("n_shared_experts"):  # DeepSeek: n shared experts of the routed width
        shared_count, shared_width = _positive_int(raw, ("n_shared_experts",), source), expert_width
    elif raw.get("shared_expert_intermediate_size"):  # Qwen2-MoE: one wide gated shared expert
        shared_count = 1
        shared_width = _positive_int(raw, ("shared_expert_intermediate_size",), source)
        shared_gate = True
    first_dense = int(raw.get("first_k_dense_replace") or 0)
    freq = int(raw.get("moe_layer_freq") or 1)
    if "n_routed_experts" in raw:  # DeepSeek: layer >= first_k_dense_replace and layer % freq == 0
        moe_layers = tuple(i for i in range(layers) if i >= first_dense and i % freq == 0)
    elif "decoder_sparse_step" in raw or "mlp_only_layers" in raw:  # Qwen-MoE
        step = int(raw.get("decoder_sparse_step") or 1)
        dense_only = set(raw.get("mlp_only_layers") or ())
        moe_layers = tuple(i for i in range(layers) if i not in dense_only and (i + 1) % step == 0)
    else:  # Mixtral, gpt-oss: every layer
        moe_layers = tuple(range(layers))
    return MoEConfig(
        num_routed_experts=num_experts,
        experts_per_token=top_k,
        expert_intermediate_size=expert_width,
        num_shared_experts=shared_count,
        shared_expert_intermediate_size=shared_width,
        first_k_dense_layers=first_dense,
        moe_layer_freq=freq,
        moe_layers=moe_layers,
        router_bias=model_type == "gpt_oss" or raw.get("topk_method") == "noaux_tc",
        expert_bias=model_type == "gpt_oss",
        shared_expert_gate=shared_gate,
    )


def _sliding_window(raw: dict[str, Any], layers: int) -> tuple[int | None, tuple[int, ...]]:
    """(window, layers using it); empty layers with a window means every layer uses it."""
    window = _optional_int(raw.get("sliding_window"))
    if window is None or raw.get("use_sliding_window") is False:
        return None, ()
    layer_types = raw.get("layer_types")
    if isinstance(layer_types, list) and layer_types:
        sliding = tuple(i for i, kind in enumerate(layer_types) if kind == "sliding_attention")
        return (window, sliding) if sliding else (None, ())
    if raw.get("use_sliding_window") and raw.get("max_window_layers") is not None:  # Qwen2
        first = int(raw["max_window_layers"])
        sliding = tuple(range(first, layers))
        return (window, sliding) if sliding else (None, ())
    return window, ()
