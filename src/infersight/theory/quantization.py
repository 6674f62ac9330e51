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
    name = raw.get("torch_dtype", raw.get("dtype"))
    if name is None:
        return "bf16", 2.0, "no torch_dtype in the config: assumed bfloat16"
    key = str(name).removeprefix("torch.").lower()
    if key not in TORCH_DTYPES:
        raise InputError(source, f"unknown torch_dtype {name!r} (expected one of {', '.join(TORCH_DTYPES)})")
    label, width = TORCH_DTYPES[key]
    return label, width, None


def _int_field(config: dict[str, Any], keys: tuple[str, ...], default: int, source: str | Path) -> int:
    """The first of ``keys`` present in ``config`` as an int (``default`` when none is)."""
    for key in keys:
        if config.get(key) is not None:
            value = config[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(source, f"quantization_config.{key} must be an integer, got {value!r}")
            return value
    return default


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
    config = raw.get("quantization_config")
    if config is None:
        return Quantization(None, activation_bytes, activation_dtype)
    if not isinstance(config, dict):
        raise InputError(source, "quantization_config must be a JSON object")
    method = str(config.get("quant_method", "")).lower()
    if method in ("fp8", "fbgemm_fp8"):
        return _fp8(config, method, activation_bytes)
    if method == "awq":
        return _awq(config, source)
    if method == "gptq":
        return _gptq(config, source, activation_dtype)
    if method == "bitsandbytes":
        return _bitsandbytes(config, activation_dtype)
    if method == "compressed-tensors":
        return _compressed_tensors(config, source, activation_dtype, activation_bytes)
    if method == "modelopt":
        return _modelopt(config, source, activation_bytes)
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
    shown = method or "(no quant_method)"
    raise InputError(
        source, f"unknown quantisation method {shown!r}; supported: {', '.join(SUPPORTED_METHODS)}"
    )


def _fp8(config: dict[str, Any], method: str, activation_bytes: float) -> Quantization:
    """fp8 weights; block-wise (DeepSeek 128x128) fp32 scales when ``weight_block_size`` is set."""
    block = config.get("weight_block_size")
    weight_bytes = 1.0
    notes = []
    if isinstance(block, list) and len(block) == 2 and all(isinstance(b, int) and b > 0 for b in block):
        weight_bytes += FP32_SCALE_BYTES / (block[0] * block[1])
        notes.append(f"fp8 weights with one fp32 scale per {block[0]}x{block[1]} block")
    return Quantization(
        "fp8",
        weight_bytes,
        "fp8",
        embedding_weight_bytes=activation_bytes,
        notes=(*notes, f"{method}: embeddings and lm_head stay unquantised"),
    )


def _awq(config: dict[str, Any], source: str | Path) -> Quantization:
    """AWQ: weight-only int4 (W4A16) with per-group fp16 scales and packed zero points."""
    bits = _int_field(config, ("bits", "w_bit"), 4, source)
    group = _int_field(config, ("group_size", "q_group_size"), 128, source)
    zero_point = bool(config.get("zero_point", True))
    return Quantization(
        f"awq-int{bits}",
        _grouped_int_bytes(bits, group, zero_point),
        "fp16",
        embedding_weight_bytes=FP16_SCALE_BYTES,
        notes=(f"AWQ int{bits} weight-only, group size {group}: GEMMs dequantise into fp16",),
    )


def _gptq(config: dict[str, Any], source: str | Path, activation_dtype: str) -> Quantization:
    """GPTQ: weight-only int2/3/4/8 with per-group fp16 scales and packed zero points."""
    bits = _int_field(config, ("bits",), 4, source)
    group = _int_field(config, ("group_size",), 128, source)
    if bits not in (2, 3, 4, 8):
        raise InputError(source, f"GPTQ bits must be 2, 3, 4 or 8, got {bits}")
    compute = activation_dtype if activation_dtype in ("fp16", "bf16") else "fp16"
    return Quantization(
        f"gptq-int{bits}",
        _grouped_int_bytes(bits, group, zero_point=True),  # GPTQ always stores packed qzeros
        compute,
        embedding_weight_bytes=FP16_SCALE_BYTES,
        notes=(f"GPTQ int{bits} weight-only, group size {group}: GEMMs dequantise into {compute}",),
    )


def _bitsandbytes(config: dict[str, Any], activation_dtype: str) -> Quantization:
    """bitsandbytes: NF4/FP4 (blockwise fp32 absmax, optionally double-quantised) or LLM.int8."""
    if config.get("load_in_4bit"):
        double = bool(config.get("bnb_4bit_use_double_quant", False))
        scale_bytes = (
            1.0 / BNB_BLOCK + FP32_SCALE_BYTES / (BNB_BLOCK * BNB_DOUBLE_QUANT_BLOCK)
            if double
            else FP32_SCALE_BYTES / BNB_BLOCK
        )
        compute_name = str(config.get("bnb_4bit_compute_dtype", "float32")).removeprefix("torch.")
        compute = TORCH_DTYPES.get(compute_name, (activation_dtype, 2.0))[0]
        kind = str(config.get("bnb_4bit_quant_type", "fp4"))
        return Quantization(
            f"bnb-{kind}",
            0.5 + scale_bytes,
            compute,
            embedding_weight_bytes=2.0,
            notes=(f"bitsandbytes 4-bit {kind}, blocksize {BNB_BLOCK}: GEMMs dequantise into {compute}",),
        )
    if config.get("load_in_8bit"):
        return Quantization(
            "bnb-int8",
            1.0,
            "int8",
            embedding_weight_bytes=2.0,
            notes=("bitsandbytes LLM.int8: int8 GEMMs plus an fp16 path for outlier columns",),
        )
    return Quantization(None, 2.0, activation_dtype, notes=("bitsandbytes config with no 4/8-bit load",))


def _bits_label(scheme: dict[str, Any]) -> tuple[int, str]:
    """(num_bits, "float"|"int") of one compressed-tensors weights/activations scheme."""
    return int(scheme.get("num_bits", 16)), str(scheme.get("type", "int"))


def _compressed_tensors(
    config: dict[str, Any], source: str | Path, activation_dtype: str, activation_bytes: float
) -> Quantization:
    """compressed-tensors (llm-compressor): W8A8 fp8/int8, W4A16 int4 groups, NVFP4."""
    groups = config.get("config_groups") or {}
    if not isinstance(groups, dict) or not groups:
        raise InputError(source, "compressed-tensors quantization_config has no config_groups")
    first = next(iter(groups.values()))
    weights = first.get("weights") or {}
    bits, kind = _bits_label(weights)
    group = int(weights.get("group_size") or 0)
    activations = first.get("input_activations")
    if bits == 8 and kind == "float":
        weight_bytes, label = 1.0, "fp8"
    elif bits == 8:
        weight_bytes, label = 1.0, "int8"
    elif bits == 4 and kind == "float":  # NVFP4: fp8 scale per 16 elements
        weight_bytes, label = 0.5 + 1.0 / (group or NVFP4_BLOCK), "nvfp4"
    elif bits == 4:
        weight_bytes = _grouped_int_bytes(4, group, zero_point=not weights.get("symmetric", True))
        label = "int4"
    else:
        raise InputError(source, f"compressed-tensors weights with {bits}-bit {kind} are not supported")
    if activations:
        act_bits, act_kind = _bits_label(activations)
        compute = {(8, "float"): "fp8", (8, "int"): "int8", (4, "float"): "fp4"}.get(
            (act_bits, act_kind), activation_dtype
        )
    else:
        compute = activation_dtype
    kv_scheme = config.get("kv_cache_scheme")
    kv_bytes = int(kv_scheme.get("num_bits", 16)) / 8 if isinstance(kv_scheme, dict) else None
    return Quantization(
        f"{label}" if activations else f"{label}-weight-only",
        weight_bytes,
        compute,
        kv_cache_bytes=kv_bytes,
        embedding_weight_bytes=activation_bytes,
        notes=(f"compressed-tensors {label} weights, activations {compute}",),
    )


def _modelopt(config: dict[str, Any], source: str | Path, activation_bytes: float) -> Quantization:
    """NVIDIA TensorRT Model Optimizer exports: FP8 or NVFP4 (``quant_algo``)."""
    inner = config.get("quantization")
    nested: dict[str, Any] = inner if isinstance(inner, dict) else config
    algo = str(nested.get("quant_algo", "")).upper()
    kv_algo = str(nested.get("kv_cache_quant_algo") or "").upper()
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
    raise InputError(source, f"unknown modelopt quant_algo {algo or '(missing)'!r}; supported: FP8, NVFP4")
