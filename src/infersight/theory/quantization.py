"""HuggingFace ``quantization_config`` -> bytes per weight and the dtype the matmuls run in.

Why a module of its own: every scheme stores its low-bit weights plus per-group scales (and
sometimes zero points), and what a roofline needs is the *amortised* bytes per weight element
(``bits/8 + scale_bytes/group_size``) and which tensor-core rate the GEMMs use (fp8 checkpoints
run fp8 GEMMs; AWQ/GPTQ int4 are weight-only and dequantise into fp16/bf16 GEMMs). Schemes we
do not know raise :class:`InputError`: guessing bytes would silently corrupt every estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infersight.errors import InputError
from infersight.validate import MAX_QUANT_BITS, MAX_WIDTH, JsonFields, shown

# torch dtype names (config "torch_dtype" / "dtype") -> (our dtype label, bytes per element)
TORCH_DTYPES: dict[str, tuple[str, float]] = {
    "float32": ("fp32", 4.0),
    "float": ("fp32", 4.0),
    "fp32": ("fp32", 4.0),
    "float16": ("fp16", 2.0),
    "half": ("fp16", 2.0),
    "fp16": ("fp16", 2.0),
    "bfloat16": ("bf16", 2.0),
    "bf16": ("bf16", 2.0),
    "float8_e4m3fn": ("fp8", 1.0),
    "float8_e5m2": ("fp8", 1.0),
}

SUPPORTED_METHODS = (
    "fp8",
    "fbgemm_fp8",
    "awq",
    "gptq",
    "bitsandbytes",
    "compressed-tensors",
    "modelopt",
    "mxfp4",
)

FP16_SCALE_BYTES = 2.0  # AWQ/GPTQ/compressed-tensors store group scales as fp16/bf16
FP32_SCALE_BYTES = 4.0  # DeepSeek block-fp8 and bitsandbytes absmax scales are fp32
E8M0_SCALE_BYTES = 1.0  # MX formats: one shared 8-bit exponent per 32-element block
MX_BLOCK = 32
NVFP4_BLOCK = 16  # NVFP4: one fp8 (e4m3) scale per 16 elements
BNB_BLOCK = 64  # bitsandbytes 4-bit blocksize
BNB_DOUBLE_QUANT_BLOCK = 256  # second-level blocks of the absmax values with double quantisation
MAX_INT_BITS = 8  # AWQ/GPTQ pack 2..8-bit integers; more (or <= 0) is a damaged config


@dataclass(frozen=True)
class Quantization:
    """What a quantisation config means for FLOP and byte counting."""

    label: str | None  # "fp8", "awq-int4", ... ; None: unquantised
    weight_bytes: float  # amortised bytes per quantised weight element, scales included
    compute_dtype: str  # the dtype whose tensor-core rate the GEMMs run at
    kv_cache_bytes: float | None = None  # None: same as the activations
    embedding_weight_bytes: float | None = None  # None: same as weight_bytes
    attention_weight_bytes: float | None = None  # None: same as weight_bytes
    notes: tuple[str, ...] = field(default_factory=tuple)


def dtype_of(raw: dict[str, Any], source: str | Path) -> tuple[str, float, str | None]:
    """The unquantised dtype of the checkpoint: (label, bytes, note when we had to assume)."""
    fields = JsonFields(raw, source)
    key_name = "torch_dtype" if "torch_dtype" in raw else "dtype"
    name = fields.text(key_name)
    if name is None:
        return "bf16", 2.0, "no torch_dtype in the config: assumed bfloat16"
    key = name.removeprefix("torch.").lower()
    if key not in TORCH_DTYPES:
        raise InputError(
            source, f"unknown torch_dtype {shown(name)} (expected one of {', '.join(TORCH_DTYPES)})"
        )
    label, width = TORCH_DTYPES[key]
    return label, width, None


def _int_field(
    config: JsonFields, keys: tuple[str, ...], default: int, *, minimum: int = 1, maximum: int = MAX_WIDTH
) -> int:
    """The first of ``keys`` present in ``config`` as an int in range (``default`` when none is)."""
    key = config.first(keys)
    return default if key is None else config.integer(key, minimum=minimum, maximum=maximum)


def _group_size(config: JsonFields, keys: tuple[str, ...]) -> int:
    """A group size: positive, or -1/0 for one scale per output channel (HuggingFace writes -1)."""
    return _int_field(config, keys, 128, minimum=-1)


def _grouped_int_bytes(bits: int, group_size: int, zero_point: bool) -> float:
    """Bytes per weight of group-wise integer quantisation: packed values + fp16 scale (+ zero).

    ``group_size <= 0`` means one scale per output channel; that overhead is a few bytes per
    thousands of weights and is left out.
    """
    per_group = FP16_SCALE_BYTES + (bits / 8 if zero_point else 0.0)
    return bits / 8 + (per_group / group_size if group_size > 0 else 0.0)


def parse_quantization(
    raw: dict[str, Any], source: str | Path, activation_dtype: str, activation_bytes: float
) -> Quantization:
    """Interpret ``raw["quantization_config"]`` (absent: the unquantised checkpoint dtype)."""
    config = JsonFields(raw, source).child("quantization_config")
    if config is None:
        return Quantization(None, activation_bytes, activation_dtype)
    method = (config.text("quant_method") or "").lower()
    if method in ("fp8", "fbgemm_fp8"):
        return _fp8(config, method, activation_bytes)
    if method == "awq":
        return _awq(config)
    if method == "gptq":
        return _gptq(config, activation_dtype)
    if method == "bitsandbytes":
        return _bitsandbytes(config, activation_dtype)
    if method == "compressed-tensors":
        return _compressed_tensors(config, activation_dtype, activation_bytes)
    if method == "modelopt":
        return _modelopt(config, activation_bytes)
    if method == "mxfp4":
        return Quantization(
            "mxfp4",
            0.5 + E8M0_SCALE_BYTES / MX_BLOCK,
            activation_dtype,
            embedding_weight_bytes=activation_bytes,
            attention_weight_bytes=activation_bytes,
            notes=(
                "mxfp4 applies to the expert weights only (attention, router, embeddings stay "
                f"{activation_dtype}); GEMMs counted at the {activation_dtype} rate (Hopper dequantises; "
                "Blackwell can run fp4 natively)",
            ),
        )
    shown_method = shown(method) if method else "'(no quant_method)'"
    raise InputError(
        source, f"unknown quantisation method {shown_method}; supported: {', '.join(SUPPORTED_METHODS)}"
    )


def _fp8(config: JsonFields, method: str, activation_bytes: float) -> Quantization:
    """fp8 weights; block-wise (DeepSeek 128x128) fp32 scales when ``weight_block_size`` is set."""
    block = config.integers("weight_block_size", minimum=1, maximum=MAX_WIDTH, max_items=2)
    weight_bytes = 1.0
    notes = []
    if block is not None and len(block) == 2:
        weight_bytes += FP32_SCALE_BYTES / (block[0] * block[1])
        notes.append(f"fp8 weights with one fp32 scale per {block[0]}x{block[1]} block")
    elif block:
        raise InputError(
            config.source, f"{config.name('weight_block_size')} must hold two block sizes, got {len(block)}"
        )
    return Quantization(
        "fp8",
        weight_bytes,
        "fp8",
        embedding_weight_bytes=activation_bytes,
        notes=(*notes, f"{method}: embeddings and lm_head stay unquantised"),
    )


def _awq(config: JsonFields) -> Quantization:
    """AWQ: weight-only int4 (W4A16) with per-group fp16 scales and packed zero points."""
    bits = _int_field(config, ("bits", "w_bit"), 4, maximum=MAX_INT_BITS)
    group = _group_size(config, ("group_size", "q_group_size"))
    zero_point = config.flag("zero_point", True)
    return Quantization(
        f"awq-int{bits}",
        _grouped_int_bytes(bits, group, zero_point),
        "fp16",
        embedding_weight_bytes=FP16_SCALE_BYTES,
        notes=(f"AWQ int{bits} weight-only, group size {group}: GEMMs dequantise into fp16",),
    )


def _gptq(config: JsonFields, activation_dtype: str) -> Quantization:
    """GPTQ: weight-only int2/3/4/8 with per-group fp16 scales and packed zero points."""
    bits = _int_field(config, ("bits",), 4, maximum=MAX_INT_BITS)
    group = _group_size(config, ("group_size",))
    if bits not in (2, 3, 4, 8):
        raise InputError(config.source, f"GPTQ bits must be 2, 3, 4 or 8, got {bits}")
    compute = activation_dtype if activation_dtype in ("fp16", "bf16") else "fp16"
    return Quantization(
        f"gptq-int{bits}",
        _grouped_int_bytes(bits, group, zero_point=True),  # GPTQ always stores packed qzeros
        compute,
        embedding_weight_bytes=FP16_SCALE_BYTES,
        notes=(f"GPTQ int{bits} weight-only, group size {group}: GEMMs dequantise into {compute}",),
    )


def _bitsandbytes(config: JsonFields, activation_dtype: str) -> Quantization:
    """bitsandbytes: NF4/FP4 (blockwise fp32 absmax, optionally double-quantised) or LLM.int8."""
    if config.flag("load_in_4bit", False):
        double = config.flag("bnb_4bit_use_double_quant", False)
        scale_bytes = (
            1.0 / BNB_BLOCK + FP32_SCALE_BYTES / (BNB_BLOCK * BNB_DOUBLE_QUANT_BLOCK)
            if double
            else FP32_SCALE_BYTES / BNB_BLOCK
        )
        compute_name = (config.text("bnb_4bit_compute_dtype") or "float32").removeprefix("torch.")
        compute = TORCH_DTYPES.get(compute_name, (activation_dtype, 2.0))[0]
        kind = config.text("bnb_4bit_quant_type") or "fp4"
        return Quantization(
            f"bnb-{kind}",
            0.5 + scale_bytes,
            compute,
            embedding_weight_bytes=2.0,
            notes=(f"bitsandbytes 4-bit {kind}, blocksize {BNB_BLOCK}: GEMMs dequantise into {compute}",),
        )
    if config.flag("load_in_8bit", False):
        return Quantization(
            "bnb-int8",
            1.0,
            "int8",
            embedding_weight_bytes=2.0,
            notes=("bitsandbytes LLM.int8: int8 GEMMs plus an fp16 path for outlier columns",),
        )
    return Quantization(None, 2.0, activation_dtype, notes=("bitsandbytes config with no 4/8-bit load",))


def _bits_label(scheme: JsonFields) -> tuple[int, str]:
    """(num_bits, "float"|"int") of one compressed-tensors weights/activations scheme."""
    return _int_field(scheme, ("num_bits",), 16, maximum=MAX_QUANT_BITS), scheme.text("type") or "int"


def _compressed_tensors(config: JsonFields, activation_dtype: str, activation_bytes: float) -> Quantization:
    """compressed-tensors (llm-compressor): W8A8 fp8/int8, W4A16 int4 groups, NVFP4."""
    groups = config.child("config_groups")
    if groups is None or not groups.data:
        raise InputError(config.source, "compressed-tensors quantization_config has no config_groups")
    first = groups.child(next(iter(groups.data)))
    if first is None:
        raise InputError(config.source, f"{groups.prefix}{next(iter(groups.data))} is null")
    weights = first.child("weights") or JsonFields({}, config.source, f"{first.prefix}weights.")
    bits, kind = _bits_label(weights)
    group = _int_field(weights, ("group_size",), 0, minimum=-1)
    activations = first.child("input_activations")
    if bits == 8 and kind == "float":
        weight_bytes, label = 1.0, "fp8"
    elif bits == 8:
        weight_bytes, label = 1.0, "int8"
    elif bits == 4 and kind == "float":  # NVFP4: fp8 scale per 16 elements
        weight_bytes, label = 0.5 + 1.0 / (group if group > 0 else NVFP4_BLOCK), "nvfp4"
    elif bits == 4:
        weight_bytes = _grouped_int_bytes(4, group, zero_point=not weights.flag("symmetric", True))
        label = "int4"
    else:
        raise InputError(
            config.source, f"compressed-tensors weights with {bits}-bit {kind} are not supported"
        )
    if activations is not None and activations.data:
        act_bits, act_kind = _bits_label(activations)
        compute = {(8, "float"): "fp8", (8, "int"): "int8", (4, "float"): "fp4"}.get(
            (act_bits, act_kind), activation_dtype
        )
    else:
        compute = activation_dtype
    kv_scheme = config.child("kv_cache_scheme")
    kv_bytes = _int_field(kv_scheme, ("num_bits",), 16, maximum=MAX_QUANT_BITS) / 8 if kv_scheme else None
    with_activations = activations is not None and bool(activations.data)
    return Quantization(
        f"{label}" if with_activations else f"{label}-weight-only",
        weight_bytes,
        compute,
        kv_cache_bytes=kv_bytes,
        embedding_weight_bytes=activation_bytes,
        notes=(f"compressed-tensors {label} weights, activations {compute}",),
    )


def _modelopt(config: JsonFields, activation_bytes: float) -> Quantization:
    """NVIDIA TensorRT Model Optimizer exports: FP8 or NVFP4 (``quant_algo``)."""
    inner = config.raw("quantization")
    nested = config.child("quantization") if isinstance(inner, dict) else config
    assert nested is not None  # isinstance checked just above
    algo = (nested.text("quant_algo") or "").upper()
    kv_algo = (nested.text("kv_cache_quant_algo") or "").upper()
    kv_bytes = 1.0 if kv_algo in ("FP8", "INT8") else None
    if algo == "FP8":
        return Quantization("fp8", 1.0, "fp8", kv_bytes, activation_bytes, notes=("modelopt FP8",))
    if algo == "NVFP4":
        return Quantization(
            "nvfp4",
            0.5 + 1.0 / NVFP4_BLOCK,
            "fp4",
            kv_bytes,
            activation_bytes,
            notes=("modelopt NVFP4: fp4 values with an fp8 scale per 16 elements",),
        )
    raise InputError(
        config.source,
        f"unknown modelopt quant_algo {shown(algo) if algo else repr('(missing)')}; supported: FP8, NVFP4",
    )
