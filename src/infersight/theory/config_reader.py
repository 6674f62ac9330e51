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
from infersight.safe_io import MAX_CONFIG_BYTES, read_bounded_text
from infersight.theory.architectures import Architecture, architecture_for
from infersight.theory.checkpoint import Checkpoint, read_checkpoint
from infersight.theory.model_config import (
    AttentionKind,
    LinearAttentionConfig,
    MLAConfig,
    ModelConfig,
    MoEConfig,
)
from infersight.theory.quantization import dtype_of, parse_quantization
from infersight.validate import (
    MAX_EXPERTS,
    MAX_HEADS,
    MAX_LAYERS,
    MAX_POSITIONS,
    MAX_WIDTH,
    JsonFields,
    json_object,
    parse_json,
)

CHECKPOINT_MISMATCH = 0.05  # relative gap between checkpoint and config above which we say so

# Alternative spellings of the core sizes (GPT-2/OPT/Falcon style configs), first match wins.
HIDDEN_KEYS = ("hidden_size", "d_model", "n_embd")
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers")
HEAD_KEYS = ("num_attention_heads", "n_head", "num_heads")
KV_HEAD_KEYS = ("num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num")
INTERMEDIATE_KEYS = ("intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size")
EXPERT_COUNT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
TOPK_KEYS = ("num_experts_per_tok", "experts_per_token", "moe_topk", "num_experts_per_token")

# Family rules (gated MLP, tied embeddings, biases, MoE layers, attention layouts) live in the
# architecture registry, data/architectures.toml (infersight.theory.architectures).
LAYER_TYPE_KINDS: dict[str, AttentionKind] = {
    "full_attention": "full",
    "sliding_attention": "sliding",
    "chunked_attention": "chunked",
    "linear_attention": "linear",
}


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
    """Normalise the dict of a HuggingFace config; ``source`` names it in errors.

    Every field goes through :class:`~infersight.validate.JsonFields`: a wrong type, a
    non-finite number or a size beyond the documented bounds (``MAX_LAYERS`` ...) is an
    InputError naming the file and the key, before any FLOP is counted.
    """
    fields = json_object(raw, source, "model config")
    text_config = fields.child("text_config")
    if text_config is not None and not any(fields.has(key) for key in HIDDEN_KEYS):
        # multimodal wrapper: the language model is inside
        raw = {**raw, **text_config.data}
        fields = JsonFields(raw, source)
    notes: list[str] = []
    model_type = fields.text("model_type") or "unknown"
    arch = architecture_for(model_type)
    if not arch.known:
        notes.append(
            f"model_type {model_type} is not in the architecture registry: generic Llama-like rules "
            "assumed (SwiGLU MLP, RMSNorm, no biases)"
        )
    fields = _with_defaults(fields, arch, model_type, notes)
    hidden = _size(fields, HIDDEN_KEYS, MAX_WIDTH)
    layers = _size(fields, LAYER_KEYS, MAX_LAYERS)
    heads = _size(fields, HEAD_KEYS, MAX_HEADS)
    vocab = _size(fields, ("vocab_size",), MAX_WIDTH)
    kv_heads = _kv_heads(fields, heads, notes)
    mla = _mla(fields)
    head_dim = _head_dim(fields, hidden, heads, mla)
    intermediate = _intermediate(fields, hidden, arch, notes)
    moe = _moe(fields, arch, layers, intermediate)
    activation_dtype, activation_bytes, dtype_note = dtype_of(raw, source)
    if dtype_note:
        notes.append(dtype_note)
    quant = parse_quantization(raw, source, activation_dtype, activation_bytes)
    notes.extend(quant.notes)
    mtp_layers = fields.optional_integer("num_nextn_predict_layers", minimum=0, maximum=MAX_LAYERS)
    if mtp_layers:
        notes.append(
            f"{mtp_layers} multi-token-prediction layer(s) in the checkpoint are "
            "not counted (used only for speculative decoding)"
        )
    if fields.has("tie_word_embeddings"):
        tied = fields.flag("tie_word_embeddings", False)
    else:
        tied = arch.tied_by_default
        notes.append(f"tie_word_embeddings not given: assumed {tied} for model_type {model_type}")
    layout = _attention_layout(fields, arch, layers, notes)
    bias_key = "attention_bias" if fields.has("attention_bias") else "bias"
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
        gated_mlp=arch.gated_mlp,
        attention_bias=fields.flag(bias_key, arch.qkv_bias_default),
        sliding_window=layout.window,
        sliding_window_layers=layout.window_layers,
        attention_chunk_size=layout.chunk,
        chunked_layers=layout.chunked_layers,
        nope_layers=layout.nope_layers,
        linear_attention=layout.linear,
        gated_attention_output=arch.gated_attention_output,
        architecture=arch.name,
        qk_norm=arch.qk_norm,
        layernorm=arch.layernorm,
        norms_per_layer=arch.norms_per_layer,
        qkv_bias_only=arch.qkv_bias_only,
        max_position_embeddings=_optional_size(fields, "max_position_embeddings", MAX_POSITIONS),
        moe=moe,
        mla=mla,
        weight_bytes=quant.weight_bytes,
        activation_bytes=activation_bytes,
        kv_cache_bytes=quant.kv_cache_bytes if quant.kv_cache_bytes is not None else activation_bytes,
        quantization=quant.label,
        compute_dtype=quant.compute_dtype,
        activation_dtype=activation_dtype,
        embedding_weight_bytes=quant.embedding_weight_bytes,
        attention_weight_bytes=quant.attention_weight_bytes,
        mlp_bias=fields.flag("mlp_bias", False),
        attention_sinks=arch.attention_sinks,
        checkpoint_bytes=checkpoint_bytes,
        source=str(source),
        notes=tuple(notes),
    )


def _with_defaults(fields: JsonFields, arch: Architecture, model_type: str, notes: list[str]) -> JsonFields:
    """The config with the registry's transformers defaults filled in, each stated in the notes.

    A default that a present key makes irrelevant (a pattern when ``layer_types`` lists every
    layer) is filled silently: it is never used.
    """
    missing = {key: value for key, value in arch.defaults.items() if not fields.has(key)}
    if not missing:
        return fields
    unused = {"sliding_window_pattern", "full_attention_interval"} if fields.has("layer_types") else set()
    if fields.has("no_rope_layers") and fields.items("no_rope_layers"):
        unused.add("no_rope_layer_interval")
    for key, value in missing.items():
        if key not in unused:
            notes.append(f"{key} not given: assumed {value} (transformers default for {model_type})")
    return JsonFields({**fields.data, **missing}, fields.source)


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
    """The config's JSON object: a regular file of bounded size, strict JSON (see validate.parse_json)."""
    if not path.exists() and not path.is_symlink():
        raise InputError(path, "file not found")
    text = read_bounded_text(path, MAX_CONFIG_BYTES, "model config")
    raw = parse_json(text, path, "model config")
    if not isinstance(raw, dict):
        raise InputError(path, "expected a JSON object (a HuggingFace config.json)")
    return raw


def _name_from(raw: dict[str, Any], path: Path) -> str:
    """``_name_or_path`` when the config carries one, else the folder (or file) name."""
    recorded = raw.get("_name_or_path")
    if isinstance(recorded, str) and recorded and not recorded.startswith((".", "/")):
        return recorded
    return path.parent.name if path.name == "config.json" and path.parent.name else path.stem


def _size(fields: JsonFields, keys: tuple[str, ...], maximum: int) -> int:
    """The first present spelling of a required size, a positive int up to ``maximum``."""
    key = fields.first(keys) or keys[0]
    return fields.integer(key, maximum=maximum)


def _optional_size(fields: JsonFields, key: str, maximum: int) -> int | None:
    """An optional size: absent, null or 0 mean "not given"; anything else must be a valid int."""
    value = fields.optional_integer(key, minimum=0, maximum=maximum)
    return value or None


def _kv_heads(fields: JsonFields, heads: int, notes: list[str]) -> int:
    key = fields.first(KV_HEAD_KEYS)
    if key is None:
        if fields.flag("multi_query", False):  # Falcon-style MQA flag
            kv_heads = 1
            notes.append("num_key_value_heads not given: multi_query is true, so MQA (1 KV head) assumed")
        else:
            kv_heads = heads
            notes.append(
                f"num_key_value_heads not given: MHA assumed ({heads} KV heads = attention heads); "
                "a GQA model misread this way has its KV cache overstated"
            )
    else:
        kv_heads = fields.integer(key, maximum=MAX_HEADS)
    if heads % kv_heads:
        raise InputError(
            fields.source,
            f"num_attention_heads ({heads}) is not divisible by num_key_value_heads ({kv_heads})",
        )
    return kv_heads


def _mla(fields: JsonFields) -> MLAConfig | None:
    if not fields.has("kv_lora_rank"):
        return None
    return MLAConfig(
        q_lora_rank=fields.optional_integer("q_lora_rank", maximum=MAX_WIDTH),
        kv_lora_rank=fields.integer("kv_lora_rank", maximum=MAX_WIDTH),
        qk_nope_head_dim=fields.integer("qk_nope_head_dim", maximum=MAX_WIDTH),
        qk_rope_head_dim=fields.integer("qk_rope_head_dim", maximum=MAX_WIDTH),
        v_head_dim=fields.integer("v_head_dim", maximum=MAX_WIDTH),
    )


def _head_dim(fields: JsonFields, hidden: int, heads: int, mla: MLAConfig | None) -> int:
    """Explicit ``head_dim`` (Qwen3, gpt-oss), MLA's q/k width, else hidden / heads."""
    if mla is not None:
        return mla.qk_nope_head_dim + mla.qk_rope_head_dim
    if fields.has("head_dim"):
        return fields.integer("head_dim", maximum=MAX_WIDTH)
    if hidden % heads:
        raise InputError(
            fields.source,
            f"hidden_size ({hidden}) is not divisible by num_attention_heads ({heads}); give head_dim",
        )
    return hidden // heads


def _intermediate(fields: JsonFields, hidden: int, arch: Architecture, notes: list[str]) -> int:
    """Width of the dense-layer MLP: the family's own key first (Llama-4 intermediate_size_mlp)."""
    key = fields.first((*arch.dense_intermediate_keys, *INTERMEDIATE_KEYS))
    if key is None and not arch.gated_mlp:
        notes.append("no intermediate size in the config: assumed 4 x hidden_size")
        return 4 * hidden
    return fields.integer(key or INTERMEDIATE_KEYS[0], maximum=MAX_WIDTH)


def _moe(fields: JsonFields, arch: Architecture, layers: int, intermediate: int) -> MoEConfig | None:
    """Routed experts, shared experts and which layers are MoE, by the family's registry rule."""
    count_key = fields.first(EXPERT_COUNT_KEYS)
    if count_key is None:
        return None
    num_experts = fields.integer(count_key, minimum=0, maximum=MAX_EXPERTS)
    if num_experts == 0:  # 0: dense
        return None
    top_k = _size(fields, TOPK_KEYS, MAX_EXPERTS)
    if top_k > num_experts:
        raise InputError(
            fields.source, f"experts per token ({top_k}) exceeds the number of experts ({num_experts})"
        )
    width_key = fields.first((*arch.expert_intermediate_keys, "moe_intermediate_size"))
    expert_width = _optional_size(fields, width_key, MAX_WIDTH) if width_key else None
    expert_width = expert_width or intermediate
    shared_count, shared_width, shared_gate = 0, 0, False
    n_shared = fields.optional_integer("n_shared_experts", minimum=0, maximum=MAX_EXPERTS)
    qwen_shared = _optional_size(fields, "shared_expert_intermediate_size", MAX_WIDTH)
    if n_shared:  # DeepSeek: n shared experts of the routed width
        shared_count, shared_width = n_shared, expert_width
    elif qwen_shared:  # Qwen2-MoE / Qwen3-Next: one wide gated shared expert
        shared_count, shared_width, shared_gate = 1, qwen_shared, True
    elif arch.shared_expert_count:  # Llama-4: the config does not count its one shared expert
        shared_count = arch.shared_expert_count
        shared_width = fields.integer(arch.shared_expert_width_key or "intermediate_size", maximum=MAX_WIDTH)
    first_dense = fields.integer("first_k_dense_replace", 0, minimum=0, maximum=MAX_LAYERS)
    freq = _optional_size(fields, "moe_layer_freq", MAX_LAYERS) or 1
    return MoEConfig(
        num_routed_experts=num_experts,
        experts_per_token=top_k,
        expert_intermediate_size=expert_width,
        num_shared_experts=shared_count,
        shared_expert_intermediate_size=shared_width,
        first_k_dense_layers=first_dense,
        moe_layer_freq=freq,
        moe_layers=_moe_layers(fields, arch, layers, first_dense, freq),
        router_bias=arch.router_bias or fields.text("topk_method") == "noaux_tc",
        expert_bias=arch.expert_bias,
        shared_expert_gate=shared_gate,
    )


def _moe_layers(
    fields: JsonFields, arch: Architecture, layers: int, first_dense: int, freq: int
) -> tuple[int, ...]:
    """0-based MoE layer indices by the registry's rule (generic: the rule the keys imply)."""
    rule = arch.moe_layer_rule
    if rule is None:  # not in the registry: the keys say which family's rule applies
        if "n_routed_experts" in fields.data:
            rule = "deepseek"
        elif "decoder_sparse_step" in fields.data or "mlp_only_layers" in fields.data:
            rule = "qwen_sparse_step"
        else:
            rule = "every"
    if rule == "deepseek":  # layer >= first_k_dense_replace and layer % freq == 0
        return tuple(i for i in range(layers) if i >= first_dense and i % freq == 0)
    if rule == "qwen_sparse_step":
        step = _optional_size(fields, "decoder_sparse_step", MAX_LAYERS) or 1
        dense_only = set(fields.integers("mlp_only_layers", maximum=MAX_LAYERS) or ())
        return tuple(i for i in range(layers) if i not in dense_only and (i + 1) % step == 0)
    if rule == "interleave":  # Llama-4: explicit moe_layers, else every step-th layer from step-1
        explicit = fields.integers("moe_layers", maximum=layers - 1)
        if explicit:
            return tuple(sorted(set(explicit)))
        step = _optional_size(fields, "interleave_moe_layer_step", MAX_LAYERS) or 1
        return tuple(range(step - 1, layers, step))
    return tuple(range(layers))


@dataclass(frozen=True)
class _AttentionLayout:
    """Which layers attend through a window, a chunk, a linear-attention state, or fully."""

    window: int | None = None
    window_layers: tuple[int, ...] = ()  # empty with a window: every layer
    chunk: int | None = None
    chunked_layers: tuple[int, ...] = ()
    nope_layers: tuple[int, ...] = ()
    linear: LinearAttentionConfig | None = None


def _attention_layout(
    fields: JsonFields, arch: Architecture, layers: int, notes: list[str]
) -> _AttentionLayout:
    """The per-layer attention kinds: ``layer_types`` when given, else the family's pattern rule."""
    kinds = _layer_kinds(fields, arch, layers)
    window = _optional_size(fields, "sliding_window", MAX_POSITIONS)
    if fields.raw("use_sliding_window") is not None and not fields.flag("use_sliding_window", True):
        window = None
    chunk = _optional_size(fields, "attention_chunk_size", MAX_POSITIONS)
    nope = _nope_layers(fields, arch, layers)
    linear = None
    if kinds is None:  # no per-layer list and no pattern: the window (if any) on every layer
        return _plain_window(fields, window, layers, nope)
    linear_layers = tuple(i for i, kind in enumerate(kinds) if kind == "linear")
    if linear_layers:
        linear = _linear_attention(fields, linear_layers)
    sliding = tuple(i for i, kind in enumerate(kinds) if kind == "sliding")
    if sliding and window is None:
        notes.append(
            "layer_types names sliding_attention layers but no sliding_window is given: read as full"
        )
        sliding = ()
    chunked = tuple(i for i, kind in enumerate(kinds) if kind == "chunked")
    if chunked and chunk is None:
        notes.append("chunked attention layers but no attention_chunk_size is given: read as full")
        chunked = ()
    return _AttentionLayout(
        window=window if sliding else None,
        window_layers=sliding,
        chunk=chunk if chunked else None,
        chunked_layers=chunked,
        nope_layers=nope,
        linear=linear,
    )


def _layer_kinds(fields: JsonFields, arch: Architecture, layers: int) -> list[AttentionKind] | None:
    """Each layer's kind, from ``layer_types`` (always wins) or the family's pattern; None: no pattern."""
    layer_types = fields.strings("layer_types", max_items=MAX_LAYERS)
    if layer_types:
        if len(layer_types) != layers:
            raise InputError(
                fields.source,
                f"layer_types has {len(layer_types)} entries but num_hidden_layers is {layers}",
            )
        unknown = sorted(set(layer_types) - set(LAYER_TYPE_KINDS))
        if unknown:
            raise InputError(
                fields.source,
                f"layer_types: unknown kind(s) {', '.join(unknown)} (known: {', '.join(LAYER_TYPE_KINDS)})",
            )
        return [LAYER_TYPE_KINDS[kind] for kind in layer_types]
    rule = arch.attention_rule
    if rule == "alternate_window":  # Gemma-2: even layers sliding, odd layers global
        return ["sliding" if i % 2 == 0 else "full" for i in range(layers)]
    if rule == "window_pattern":  # Gemma-3: every pattern-th layer global
        pattern = fields.integer("sliding_window_pattern", maximum=MAX_LAYERS)
        return ["sliding" if (i + 1) % pattern else "full" for i in range(layers)]
    if rule == "chunked_nope":  # Llama-4: RoPE layers chunked, NoPE layers global
        nope = set(_nope_layers(fields, arch, layers))
        return ["full" if i in nope else "chunked" for i in range(layers)]
    if rule == "hybrid_linear":  # Qwen3-Next: every interval-th layer full attention
        interval = fields.integer("full_attention_interval", maximum=MAX_LAYERS)
        return ["full" if (i + 1) % interval == 0 else "linear" for i in range(layers)]
    return None


def _nope_layers(fields: JsonFields, arch: Architecture, layers: int) -> tuple[int, ...]:
    """Layers without RoPE: Llama-4 ``no_rope_layers`` (1 = RoPE, 0 = NoPE) or its interval default."""
    if arch.attention_rule != "chunked_nope":
        return ()
    flags = fields.integers("no_rope_layers", maximum=1)
    if flags:
        if len(flags) != layers:
            raise InputError(
                fields.source, f"no_rope_layers has {len(flags)} entries but num_hidden_layers is {layers}"
            )
        return tuple(i for i, uses_rope in enumerate(flags) if not uses_rope)
    interval = fields.integer("no_rope_layer_interval", maximum=MAX_LAYERS)
    return tuple(i for i in range(layers) if (i + 1) % interval == 0)


def _linear_attention(fields: JsonFields, layers: tuple[int, ...]) -> LinearAttentionConfig:
    """Gated DeltaNet sizes (Qwen3-Next ``linear_*`` keys); every one is required."""
    return LinearAttentionConfig(
        layers=layers,
        num_key_heads=fields.integer("linear_num_key_heads", maximum=MAX_HEADS),
        num_value_heads=fields.integer("linear_num_value_heads", maximum=MAX_HEADS),
        key_head_dim=fields.integer("linear_key_head_dim", maximum=MAX_WIDTH),
        value_head_dim=fields.integer("linear_value_head_dim", maximum=MAX_WIDTH),
        conv_kernel=fields.integer("linear_conv_kernel_dim", maximum=MAX_WIDTH),
    )


def _plain_window(
    fields: JsonFields, window: int | None, layers: int, nope: tuple[int, ...]
) -> _AttentionLayout:
    """No per-layer pattern: the window on every layer, or from max_window_layers (Qwen2)."""
    if window is None:
        return _AttentionLayout(nope_layers=nope)
    if fields.flag("use_sliding_window", False) and fields.has("max_window_layers"):  # Qwen2
        first = fields.integer("max_window_layers", minimum=0, maximum=MAX_LAYERS)
        sliding = tuple(range(first, layers))
        return (
            _AttentionLayout(window=window, window_layers=sliding, nope_layers=nope)
            if sliding
            else _AttentionLayout(nope_layers=nope)
        )
    return _AttentionLayout(window=window, nope_layers=nope)
