"""The architecture registry (``data/architectures.toml``): what each ``model_type`` means.

Why a data file: the family rules (gated MLP or not, tied embeddings, q/k norms, which layers are
MoE, which layers attend through a sliding window, a chunk or a linear-attention state) used to be
frozensets spread over the config reader and the parameter counter; a newcomer adding an
architecture had to find them all. Now one entry says it, with the transformers source it follows,
and :func:`architecture_for` is the only lookup. A model_type the registry does not know gets the
generic rules (Llama-like, rules picked from the keys present) and a note saying so.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

from infersight.errors import InputError

MoeLayerRule = Literal["every", "deepseek", "qwen_sparse_step", "interleave"]
AttentionRule = Literal["window", "alternate_window", "window_pattern", "chunked_nope", "hybrid_linear"]
MOE_LAYER_RULES: tuple[str, ...] = ("every", "deepseek", "qwen_sparse_step", "interleave")
ATTENTION_RULES: tuple[str, ...] = (
    "window",
    "alternate_window",
    "window_pattern",
    "chunked_nope",
    "hybrid_linear",
)
LINEAR_ATTENTION_KINDS: tuple[str, ...] = ("gated_deltanet",)
GENERIC = "generic"
REGISTRY = "architectures.toml"


@dataclass(frozen=True)
class Architecture:
    """One registry entry: the counting rules of a family of model_types."""

    name: str
    model_types: tuple[str, ...]
    source: str
    gated_mlp: bool = True
    tied_by_default: bool = False
    qkv_bias_default: bool = False
    qkv_bias_only: bool = False
    qk_norm: bool = False
    layernorm: bool = False
    norms_per_layer: int = 2
    moe_layer_rule: MoeLayerRule | None = None  # None: chosen from the keys present (generic)
    dense_intermediate_keys: tuple[str, ...] = ()
    expert_intermediate_keys: tuple[str, ...] = ()
    shared_expert_count: int = 0
    shared_expert_width_key: str | None = None
    attention_rule: AttentionRule = "window"
    linear_attention: str | None = None
    gated_attention_output: bool = False
    router_bias: bool = False
    expert_bias: bool = False
    attention_sinks: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        """False for the generic fallback (the model_type is not in the registry)."""
        return self.name != GENERIC


GENERIC_ARCHITECTURE = Architecture(
    name=GENERIC,
    model_types=(),
    source="no registry entry: Llama-like rules, MoE layer rule chosen from the keys present",
)


def architecture_for(model_type: str) -> Architecture:
    """The registry entry of ``model_type`` (the generic Llama-like rules when it has none)."""
    return _by_model_type().get(model_type, GENERIC_ARCHITECTURE)


def registered_model_types() -> list[str]:
    """Every model_type the registry knows, sorted."""
    return sorted(_by_model_type())


@cache
def _by_model_type() -> dict[str, Architecture]:
    text = resources.files("infersight.data").joinpath(REGISTRY).read_text(encoding="utf-8")
    return index_architectures(tomllib.loads(text), REGISTRY)


def index_architectures(table: dict[str, Any], source: str) -> dict[str, Architecture]:
    """model_type -> entry; a malformed entry or a model_type listed twice is an InputError."""
    index: dict[str, Architecture] = {}
    for raw in table.get("architecture", []):
        entry = _entry(raw, source)
        for model_type in entry.model_types:
            if model_type in index:
                raise InputError(
                    source, f"model_type {model_type!r} is in both {index[model_type].name} and {entry.name}"
                )
            index[model_type] = entry
    return index


_BOOL_KEYS = (
    "gated_mlp",
    "tied_by_default",
    "qkv_bias_default",
    "qkv_bias_only",
    "qk_norm",
    "layernorm",
    "gated_attention_output",
    "router_bias",
    "expert_bias",
    "attention_sinks",
)
_TUPLE_KEYS = ("model_types", "dense_intermediate_keys", "expert_intermediate_keys")
_KNOWN_KEYS = frozenset(
    {
        *_BOOL_KEYS,
        *_TUPLE_KEYS,
        "name",
        "source",
        "norms_per_layer",
        "moe_layer_rule",
        "shared_expert_count",
        "shared_expert_width_key",
        "attention_rule",
        "linear_attention",
        "defaults",
    }
)


def _entry(raw: dict[str, Any], source: str) -> Architecture:
    """One [[architecture]] table, checked key by key (a typo must not silently be ignored)."""
    name = raw.get("name")
    if not isinstance(name, str) or not raw.get("model_types") or not raw.get("source"):
        raise InputError(source, f"architecture entry {name!r}: name, model_types and source are required")
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise InputError(source, f"architecture {name}: unknown key(s) {', '.join(unknown)}")
    if raw.get("moe_layer_rule", "every") not in MOE_LAYER_RULES:
        raise InputError(source, f"architecture {name}: moe_layer_rule must be one of {MOE_LAYER_RULES}")
    if raw.get("attention_rule", "window") not in ATTENTION_RULES:
        raise InputError(source, f"architecture {name}: attention_rule must be one of {ATTENTION_RULES}")
    if raw.get("linear_attention") not in (None, *LINEAR_ATTENTION_KINDS):
        raise InputError(
            source, f"architecture {name}: linear_attention must be one of {LINEAR_ATTENTION_KINDS}"
        )
    values: dict[str, Any] = {key: raw[key] for key in raw if key not in _TUPLE_KEYS}
    values.update({key: tuple(raw.get(key, ())) for key in _TUPLE_KEYS})
    values["defaults"] = dict(raw.get("defaults", {}))
    values.setdefault("moe_layer_rule", "every")
    return Architecture(**values)
