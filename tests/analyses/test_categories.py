"""Kernel-name simplification and operator categories against every real kernel name we have.

Kernel names and their total durations are collected here independently of infersight's
readers: Kineto files with plain ``gzip``/``json`` (events ``cat == "kernel"``, ``ph == "X"``),
nsys exports with plain ``sqlite3`` on ``CUPTI_ACTIVITY_KIND_KERNEL`` joined to ``StringIds``.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import time
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import KINETO_DIR, NSYS_DIR, examples, plain_json, shared_file, shared_traces

from infersight.analyses.categories import (
    CATEGORIES,
    builtin_table_path,
    categorize,
    categorize_name,
    load_category_rules,
)
from infersight.analyses.kernel_names import (
    MAX_SHORT_NAME,
    kernel_name_head,
    simplify_kernel_name,
    simplify_names,
)
from infersight.errors import InputError

QWEN_H100 = "kineto/tracelens_qwen1.5-0.5b-chat_h100.json.gz"
LLAMA_H100 = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
VLLM_B200 = "kineto/tracelens_vllm_eager_b200_rank0.json.gz"
SGLANG_MI300X = "kineto/tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz"
GPTOSS_MI300X = "kineto/tracelens_vllm_gptoss_prefilldecode_piecewise_graph_mi300x.json.gz"
TRAIN_NSYS = "nsys/h100x2_llm_train_nsys2026.sqlite"
LLM_TRACES = (QWEN_H100, LLAMA_H100, VLLM_B200, SGLANG_MI300X, GPTOSS_MI300X, TRAIN_NSYS)

OTHER_SHARE_LIMIT = 0.05


# ----------------------------------------------------------------------------- independent readers
@cache
def kernel_time_by_name(relative: str) -> dict[str, float]:
    """Total kernel duration (µs) per distinct full kernel name in one real trace."""
    path = shared_file(relative)
    if path.suffix == ".sqlite":
        return _nsys_kernel_time(path)
    document = plain_json(path)  # parsed once per test process, shared with the other modules
    events = document.get("traceEvents", []) if isinstance(document, dict) else document
    totals: Counter[str] = Counter()
    for event in events:
        if isinstance(event, dict) and event.get("cat") == "kernel" and event.get("ph") == "X":
            totals[str(event["name"])] += float(event.get("dur", 0.0))
    return dict(totals)


def _nsys_kernel_time(path: Path) -> dict[str, float]:
    """Per-name kernel time (µs) of an nsys export; {} when it has no kernel table."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        has_table = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'CUPTI_ACTIVITY_KIND_KERNEL'"
        ).fetchone()
        if not has_table:
            return {}
        rows = connection.execute(
            "SELECT s.value, SUM(k.end - k.start) FROM CUPTI_ACTIVITY_KIND_KERNEL k "
            "JOIN StringIds s ON s.id = k.demangledName GROUP BY s.value"
        ).fetchall()
    finally:
        connection.close()
    return {str(name): float(total) / 1000.0 for name, total in rows}


def all_trace_files() -> list[str]:
    """Every Kineto and nsys file under shared/data, relative to it."""
    shared_file("INDEX.md")  # skips when the shared data is absent
    kineto = sorted(str(p.relative_to(KINETO_DIR.parent)) for p in KINETO_DIR.rglob("*.json.gz"))
    nsys = sorted(str(p.relative_to(NSYS_DIR.parent)) for p in NSYS_DIR.glob("*.sqlite"))
    return kineto + nsys


@cache
def all_real_names() -> tuple[str, ...]:
    """Every distinct kernel name in every real trace (578), as the readers give them: the traces
    are read once per test run, and the set equals what :func:`kernel_time_by_name` finds."""
    names: set[str] = set()
    for relative in all_trace_files():
        try:
            traces = shared_traces(relative)
        except InputError:  # no kernel table, or a CPU-only capture: no kernel names
            continue
        names.update(str(name) for trace in traces for name in trace.kernels["name"].unique())
    return tuple(sorted(names))


def category_shares(relative: str) -> dict[str, float]:
    """Share of kernel time per category, summed here in plain Python over distinct names."""
    times = kernel_time_by_name(relative)
    total = sum(times.values())
    shares: Counter[str] = Counter()
    for name, duration in times.items():
        shares[categorize_name(name)] += duration / total
    return dict(shares)


# ----------------------------------------------------------------------------- (a) hand labels
# (trace, a substring that picks the kernel(s) in that trace, the category an engineer gives them)
HAND_LABELS: list[tuple[str, str, str]] = [
    (QWEN_H100, "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", "GEMM"),
    (QWEN_H100, "pytorch_flash::flash_fwd_kernel", "attention"),
    (
        QWEN_H100,
        "BinaryFunctor<c10::BFloat16, c10::BFloat16, c10::BFloat16, at::native::binary_internal::MulFunctor",
        "elementwise",
    ),
    (QWEN_H100, "direct_copy_kernel_cuda", "copy"),
    (QWEN_H100, "CatArrayBatchedCopy", "copy"),
    (QWEN_H100, "silu_kernel", "activation"),
    (QWEN_H100, "bfloat16_copy_kernel_cuda", "copy"),
    (QWEN_H100, "MeanOps", "reduction"),
    (QWEN_H100, "rsqrt_kernel_cuda", "elementwise"),
    (QWEN_H100, "indexSelectLargeIndex", "copy"),
    (QWEN_H100, "cutlass_80_simt_sgemm_128x32_8x5_nn_align1", "GEMM"),
    (QWEN_H100, "arange_cuda_out", "elementwise"),
    (LLAMA_H100, "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x128x64", "GEMM"),
    (LLAMA_H100, "ncclDevKernel_AllReduce_Sum_bf16_RING_LL", "NCCL"),
    (LLAMA_H100, "cutlass_80_tensorop_s16816gemm_bf16_128x64_64x6_tn_align8", "GEMM"),
    (LLAMA_H100, "cutlass_80_tensorop_bf16_s16816gemm_relu_bf16_64x64_64x4_tn_align8", "GEMM"),
    (LLAMA_H100, "vllm::cross_device_reduce_1stage", "NCCL"),
    (LLAMA_H100, "flash::FlashAttnFwdSm90", "attention"),
    (LLAMA_H100, "flash::FlashAttnFwdCombine", "attention"),
    (LLAMA_H100, "flash::prepare_varlen_num_blocks_kernel", "attention"),
    (LLAMA_H100, "triton_red_fused__to_copy_add_mean_mul_pow_rsqrt_2", "norm"),
    (LLAMA_H100, "triton_poi_fused_mul_silu_1", "activation"),
    (LLAMA_H100, "FillFunctor<long>", "copy"),
    (LLAMA_H100, "triton_poi_fused_cat_3", "copy"),
    (LLAMA_H100, "vllm::reshape_and_cache_flash_kernel", "copy"),
    (LLAMA_H100, "cublasLt::splitKreduce_kernel", "GEMM"),
    (LLAMA_H100, "ArgMaxOps", "sampling"),
    (LLAMA_H100, "ncclDevKernel_AllGather_RING_LL", "NCCL"),
    (LLAMA_H100, "triton_poi_fused_add_all_reduce_bitwise_and_bitwise_or_embedding", "copy"),
    (VLLM_B200, "bmm_MxE4m3_MxE2m1MxE4m3_Fp32", "MoE"),
    (VLLM_B200, "bmm_Bfloat16_MxE2m1MxE4m3_Fp32", "MoE"),
    (VLLM_B200, "multimem_all_reduce_kernel", "NCCL"),
    (VLLM_B200, "vllm::fused_add_rms_norm_kernel", "norm"),
    (VLLM_B200, "vllm::rms_norm_kernel", "norm"),
    (VLLM_B200, "nvjet_tst_64x64_64x16_2x1_2cta_v_bz_bias_TNT", "GEMM"),
    (VLLM_B200, "fmhaSm100aKernel_QkvE4m3OBfloat16H64PagedKvCausal", "attention"),
    (VLLM_B200, "moe::dev::finalize::finalizeKernelVecLoad", "MoE"),
    (VLLM_B200, "routingIndicesHistogramKernel", "MoE"),
    (VLLM_B200, "tensorrt_llm::kernels::quantize_with_block_size", "quantisation"),
    (VLLM_B200, "vllm::scaled_fp8_quant_kernel_strided", "quantisation"),
    (VLLM_B200, "vllm::rotary_embedding_kernel", "RoPE"),
    (
        VLLM_B200,
        "reshape_and_cache_flash_kernel<__nv_bfloat16, unsigned char, (vllm::Fp8KVCacheDataType)1>",
        "copy",
    ),
    (VLLM_B200, "masked_fill_kernel", "elementwise"),
    (VLLM_B200, "_copy_page_indices_kernel", "attention"),
    (VLLM_B200, "ncclDevKernel_AllGather_RING_LL(ncclDevKernelArgsStorage<4096ul>)", "NCCL"),
    (SGLANG_MI300X, "Cijk_Alik_Bljk_BBS_BH_Bias_HA_S_SAV_UserArgs_MT128x256x32", "GEMM"),
    (SGLANG_MI300X, "FmhaBatchPrefillWithPagedKVCacheKernel", "attention"),
    (SGLANG_MI300X, "add_rmsnorm_quant_kernel", "norm"),
    (SGLANG_MI300X, "act_and_mul_kernel", "activation"),
    (SGLANG_MI300X, "void rotary_embedding_kernel<c10::BFloat16, true>", "RoPE"),
    (SGLANG_MI300X, "store_kvcache", "copy"),
    (SGLANG_MI300X, "rocprim", "reduction"),
    (SGLANG_MI300X, "create_flashinfer_kv_indices_triton", "attention"),
    (SGLANG_MI300X, "vectorized_gather_kernel", "copy"),
    (GPTOSS_MI300X, "_matmul_ogs_NNT_bf16xbf16xmxfp4_128x128x128x1_swiglu", "MoE"),
    (GPTOSS_MI300X, "kernel_unified_attention_2d", "attention"),
    (GPTOSS_MI300X, "Rmsnorm2dFwd", "norm"),
    (GPTOSS_MI300X, "_topk_forward", "MoE"),
    (GPTOSS_MI300X, "triton_poi_fused_constant_pad_nd_moe_forward_0", "MoE"),
    (GPTOSS_MI300X, "triton_poi_fused__to_copy_1", "copy"),
    (GPTOSS_MI300X, "_finalize_matmul_scatter_bf16", "MoE"),
    (GPTOSS_MI300X, "Cijk_Alik_Bljk_BBS_BH_Bias_HA_S_SAV_UserArgs_MT256x192x64", "GEMM"),
    (TRAIN_NSYS, "flash::flash_fwd_kernel", "attention"),
    (TRAIN_NSYS, "nvjet_tst_192x192_64x4_2x1_v_bz_coopB_bias_TNN", "GEMM"),
    (TRAIN_NSYS, "ncclDevKernel_SendRecv", "NCCL"),
    (TRAIN_NSYS, "vectorized_layer_norm_kernel", "norm"),
    (TRAIN_NSYS, "GeluCUDAKernelImpl", "activation"),
    (TRAIN_NSYS, "pow_tensor_scalar_kernel_impl", "elementwise"),
    (TRAIN_NSYS, "CatArrayBatchedCopy_vectorized", "copy"),
    ("kineto/hta_nccl_a100_rank0.json.gz", "ncclKernel_AllReduce_RING_LL_Sum_float", "NCCL"),
    ("kineto/hta_nccl_a100_rank0.json.gz", "cudnn::bn_fw_tr_1C11_kernel_NCHW", "norm"),
    ("kineto/hta_alexnet_a100.json.gz", "sm80_xmma_fprop_implicit_gemm", "GEMM"),
    ("kineto/hta_mi250_minitoy.json.gz", "Cijk_Ailk_Bjlk_SB", "GEMM"),
    ("kineto/hta_mi250_minitoy.json.gz", "threshold_kernel_impl", "activation"),
    ("kineto/hta_triton_example_a100.json.gz", "triton_poi_fused_add_cos_sin_0", "elementwise"),
    ("nsys/tensorrt_conv_rtx3090.sqlite", "sm50_xmma_pooling", "reduction"),
    ("nsys/vecadd_t4_nsys2022.sqlite", "vecAdd", "elementwise"),
]


def test_hand_labels_cover_every_category_but_other() -> None:
    """The labelled set is diverse: at least 40 names and every real category represented."""
    assert len(HAND_LABELS) >= 40
    assert {label for _, _, label in HAND_LABELS} == set(CATEGORIES) - {"other"}


@pytest.mark.parametrize(("trace", "fragment", "expected"), HAND_LABELS, ids=lambda v: str(v)[:48])
def test_hand_labelled_real_kernel_gets_its_category(trace: str, fragment: str, expected: str) -> None:
    """Each hand-labelled real kernel (every name in the trace containing the fragment) is labelled so."""
    matching = [name for name in kernel_time_by_name(trace) if fragment in name]
    assert matching, f"{fragment!r} not found in {trace}"
    for name in matching:
        assert categorize_name(name) == expected, f"{name[:160]} -> {categorize_name(name)}"
        # the short name shown in reports lands in the same category
        assert categorize_name(simplify_kernel_name(name)) == expected, simplify_kernel_name(name)


# ----------------------------------------------------------------------------- (b) coverage on LLM traces
def _print_share_table(rows: dict[str, dict[str, float]]) -> None:
    columns = [c for c in CATEGORIES if any(r.get(c, 0.0) > 0 for r in rows.values())]
    print("\ntrace | " + " | ".join(columns))
    for trace, shares in rows.items():
        cells = " | ".join(f"{100 * shares.get(c, 0.0):5.1f}" for c in columns)
        print(f"{Path(trace).name[:48]} | {cells}")


def test_llm_traces_leave_under_five_percent_of_time_uncategorised() -> None:
    """On every real LLM trace, kernels categorised ``other`` hold < 5% of kernel time."""
    rows = {trace: category_shares(trace) for trace in LLM_TRACES}
    _print_share_table(rows)
    for trace, shares in rows.items():
        assert sum(shares.values()) == pytest.approx(1.0)
        times = kernel_time_by_name(trace)
        left = sorted(
            (simplify_kernel_name(n) for n in times if categorize_name(n) == "other"), key=str.lower
        )
        print(f"{Path(trace).name}: other = {100 * shares.get('other', 0.0):.3f}% {left}")
        assert shares.get("other", 0.0) < OTHER_SHARE_LIMIT, (trace, left)


def test_known_dominant_categories_of_llm_traces() -> None:
    """What an engineer reading these traces expects to dominate (figures from this table)."""
    llama = category_shares(LLAMA_H100)
    assert llama["GEMM"] > 0.70 and 0.09 < llama["NCCL"] < 0.12  # TP4 decode: GEMMs + all-reduce
    gptoss = category_shares(GPTOSS_MI300X)
    assert gptoss["MoE"] > 0.80  # mxfp4 expert GEMMs
    b200 = category_shares(VLLM_B200)
    assert b200["MoE"] > 0.50 and b200["NCCL"] > 0.19
    train = category_shares(TRAIN_NSYS)
    assert 0.50 < train["attention"] < 0.52  # flash_fwd_kernel is 50.88% of this trace
    sglang = category_shares(SGLANG_MI300X)
    assert sglang["GEMM"] > 0.85


def test_categorize_vectorised_matches_per_name_and_keeps_time() -> None:
    """``categorize`` on a per-kernel categorical equals the per-name answer, row for row."""
    times = kernel_time_by_name(LLAMA_H100)
    names = sorted(times)
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(names), size=50_000)
    column = pd.Categorical.from_codes(picks, categories=names)
    result = categorize(column)
    assert list(result.categories) == list(CATEGORIES)
    expected = np.array([categorize_name(names[i]) for i in range(len(names))], dtype=object)[picks]
    assert (np.asarray(result, dtype=object) == expected).all()
    as_series = categorize(pd.Series(column))
    assert (np.asarray(as_series, dtype=object) == expected).all()


def test_categorize_is_per_distinct_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A million kernels over 300 distinct names: the name rules run once per distinct name (300
    calls), never per kernel — what keeps categorising a big trace cheap (timed in bench/, not here)."""
    import infersight.analyses.categories as categories_module

    calls: list[str] = []
    real = categories_module.categorize_name

    def counting(name: str, rules: object) -> str:
        calls.append(name)
        return real(name, rules)  # type: ignore[arg-type]

    monkeypatch.setattr(categories_module, "categorize_name", counting)
    names = [f"triton_poi_fused_add_{i}" for i in range(150)] + [f"nvjet_tst_{i}x64_TNT" for i in range(150)]
    codes = np.random.default_rng(1).integers(0, len(names), size=1_000_000)
    column = pd.Categorical.from_codes(codes, categories=names)
    result = categorize(column)
    counts = pd.Series(result).value_counts()
    assert counts["elementwise"] == int((codes < 150).sum())
    assert counts["GEMM"] == int((codes >= 150).sum())
    assert sorted(calls) == sorted(names)


def test_missing_and_unknown_names_are_other() -> None:
    """Missing names and names no rule knows still land in a category (``other``)."""
    column = pd.Categorical(["my_custom_kernel_v2", None, "nvjet_tst_64x8_TNT"])
    assert list(np.asarray(categorize(column), dtype=object)) == ["other", "other", "GEMM"]
    assert list(categorize(pd.Categorical([]))) == []


def test_parameter_list_does_not_decide_the_category() -> None:
    """A quantisation kernel whose parameters mention ``flashinfer::`` is not attention."""
    name = next(n for n in kernel_time_by_name(VLLM_B200) if "quantize_with_block_size" in n)
    assert "flashinfer::" in name and "flashinfer::" not in kernel_name_head(name)
    assert categorize_name(name) == "quantisation"


# ----------------------------------------------------------------------------- table loading
def _write_table(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_builtin_table_loads_and_uses_only_known_categories() -> None:
    """The packaged table parses, and its rules name only the 12 real categories."""
    rules = load_category_rules()
    assert builtin_table_path().name == "kernel_categories.toml"
    assert len(rules) >= 15
    assert {r.category for r in rules} == set(CATEGORIES) - {"other"}
    assert all(r.source for r in rules)
    assert load_category_rules() is rules  # loaded once


def test_user_table_rules_come_first(tmp_path: Path) -> None:
    """A user table overrides the built-in one for the names it matches, and only those."""
    path = _write_table(
        tmp_path,
        '[[rule]]\ncategory = "attention"\npatterns = ["^my_fancy_gemm"]\nsource = "in-house kernel"\n',
    )
    rules = load_category_rules(path)
    assert rules[0].category == "attention"
    column = pd.Categorical(["my_fancy_gemm_v3", "nvjet_tst_64x8_TNT"])
    assert list(np.asarray(categorize(column, rules), dtype=object)) == ["attention", "GEMM"]
    assert categorize_name("my_fancy_gemm_v3") == "GEMM"  # the built-in table alone


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[rule]]\ncategory = "GEMMs"\npatterns = ["gemm"]\n', "rule 1 (category 'GEMMs'"),
        (
            '[[rule]]\ncategory = "GEMM"\npatterns = ["gemm"]\n'
            '[[rule]]\ncategory = "norm"\npatterns = ["rms(norm"]\n',
            "rule 2",
        ),
        ('[[rule]]\ncategory = "GEMM"\npattern = ["gemm"]\n', "unknown key"),
        ('[[rule]]\ncategory = "GEMM"\npatterns = []\n', "non-empty list"),
        ('[[rule]]\ncategory = "GEMM"\npatterns = "gemm"\n', "non-empty list"),
        ("[[rule]\n", "not valid TOML"),
        ("version = 1\n", "no [[rule]]"),
    ],
)
def test_bad_user_table_is_one_clear_error(tmp_path: Path, body: str, message: str) -> None:
    """Unknown category, bad regex, typo'd key, bad TOML: InputError naming file and rule."""
    path = _write_table(tmp_path, body)
    with pytest.raises(InputError) as raised:
        load_category_rules(path)
    text = raised.value.one_line()
    assert message in text and str(path) in text and "\n" not in text


def test_missing_user_table_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_category_rules(tmp_path / "absent.toml")


# ----------------------------------------------------------------------------- simplification
SM90_GEMM = (
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1"
    "_execute_segment_k_off_kernel__5x_cublas"
)
SIMPLIFIED: list[tuple[str, str, str]] = [
    (QWEN_H100, "bfloat16_copy_kernel_cuda", "vectorized_elementwise_kernel<bfloat16_copy_kernel_cuda>"),
    (
        QWEN_H100,
        "vectorized_elementwise_kernel<4, at::native::(anonymous namespace)::silu_kernel",
        "vectorized_elementwise_kernel<silu_kernel>",
    ),
    (
        QWEN_H100,
        "elementwise_kernel<128, 4, at::native::gpu_kernel_impl_nocast<"
        "at::native::BinaryFunctor<c10::BFloat16",
        "elementwise_kernel<MulFunctor>",
    ),
    (QWEN_H100, SM90_GEMM, SM90_GEMM),  # cuBLAS names stay whole: the tile size tells them apart
    (QWEN_H100, "pytorch_flash::flash_fwd_kernel", "pytorch_flash::flash_fwd_kernel"),
    (QWEN_H100, "MeanOps", "reduce_kernel<MeanOps>"),
    (
        QWEN_H100,
        "cutlass::Kernel2<cutlass_80_simt_sgemm_128x32_8x5_nn_align1>",
        "cutlass_80_simt_sgemm_128x32_8x5_nn_align1",
    ),
    (LLAMA_H100, "ArgMaxOps", "reduce_kernel<ArgMaxOps>"),
    (LLAMA_H100, "flash::FlashAttnFwdCombine", "flash::FlashAttnFwdCombine"),
    (
        LLAMA_H100,
        "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevComm*",
        "ncclDevKernel_AllReduce_Sum_bf16_RING_LL",
    ),
    (LLAMA_H100, "index_elementwise_kernel", "index_elementwise_kernel<index_kernel_impl>"),
    (LLAMA_H100, "triton_poi_fused_mul_silu_1", "triton_poi_fused_mul_silu_1"),
    (
        VLLM_B200,
        "ncclDevKernel_AllGather_RING_LL(ncclDevKernelArgsStorage<4096ul>)",
        "ncclDevKernel_AllGather_RING_LL",
    ),
    (VLLM_B200, "fused_add_rms_norm_kernel", "vllm::fused_add_rms_norm_kernel"),
    (VLLM_B200, "routingIndicesHistogramScoresKernel", "moe::routingIndicesHistogramScoresKernel"),
    (VLLM_B200, "quantize_with_block_size", "tensorrt_llm::quantize_with_block_size"),
    (
        SGLANG_MI300X,
        "_ZN7ck_tile6kentryILi2ENS_38FmhaBatchPrefill",
        "ck_tile::FmhaBatchPrefillWithPagedKVCacheKernel",
    ),
    (SGLANG_MI300X, "_ZN5aiter24add_rmsnorm_quant_kernel", "aiter::add_rmsnorm_quant_kernel"),
    (SGLANG_MI300X, "_ZN7sgl_hip10activation18act_and_mul_kernel", "sgl_hip::act_and_mul_kernel"),
    (
        SGLANG_MI300X,
        "UserArgs_MT128x256x32_MI16x16x1",
        "Cijk_Alik_Bljk_BBS_BH_Bias_HA_S_SAV_UserArgs_MT128x256x32_MI16x16x1",
    ),
    (GPTOSS_MI300X, "_ZN7ck_tile6kentryILi1ENS_12Rmsnorm2dFwd", "ck_tile::Rmsnorm2dFwd"),
    (TRAIN_NSYS, "flash::flash_fwd_kernel<Flash_fwd_kernel_traits", "flash::flash_fwd_kernel"),
    (TRAIN_NSYS, "GeluCUDAKernelImpl", "vectorized_elementwise_kernel<GeluCUDAKernelImpl>"),
    (
        TRAIN_NSYS,
        "pow_tensor_scalar_kernel_impl",
        "vectorized_elementwise_kernel<pow_tensor_scalar_kernel_impl>",
    ),
    (TRAIN_NSYS, "ncclDevKernel_SendRecv", "ncclDevKernel_SendRecv"),
    ("kineto/hta_mi250_minitoy.json.gz", "sum_functor", "reduce_kernel<sum_functor>"),
    (
        "kineto/hta_nccl_a100_rank0.json.gz",
        "_ZN19cutlass_cudnn_train6KernelINS_4conv6kernel23ImplicitGemmConvolution",
        "cutlass_cudnn_train::ImplicitGemmConvolution",
    ),
    ("kineto/hta_trace_diff_control_a100_rank3.json.gz", "internal::gemvx::kernel", "gemvx::kernel"),
]


@pytest.mark.parametrize(("trace", "fragment", "short"), SIMPLIFIED, ids=lambda v: str(v)[:40])
def test_simplify_real_names(trace: str, fragment: str, short: str) -> None:
    """Real kernels get the short name an engineer would use."""
    matching = [name for name in kernel_time_by_name(trace) if fragment in name]
    assert matching, f"{fragment!r} not found in {trace}"
    assert {simplify_kernel_name(name) for name in matching} == {short}


def test_simplify_all_real_names_is_short_idempotent_and_category_preserving() -> None:
    """Over all ~580 real names: short, a fixed point, same category, ATen functors kept apart."""
    names = all_real_names()
    assert len(names) > 500
    shorts = {name: simplify_kernel_name(name) for name in names}
    for name, short in shorts.items():
        assert 0 < len(short) <= min(len(name.strip()), MAX_SHORT_NAME), name[:120]
        assert simplify_kernel_name(short) == short, (name[:120], short)
        assert categorize_name(short) == categorize_name(name), (name[:160], short)
    # distinct functors stay distinct: every LLM trace keeps most of its distinct names
    for trace in LLM_TRACES:
        full = list(kernel_time_by_name(trace))
        distinct_short = {shorts[n] for n in full}
        assert len(distinct_short) >= 0.6 * len(full), (trace, len(full), len(distinct_short))


def test_simplify_names_maps_categories_only() -> None:
    """``simplify_names`` rewrites the categories; rows keep their kernels, NaN stays NaN."""
    full = [
        "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::ArgMaxOps<float>, "
        "unsigned int, long, 4> >(at::native::ReduceOp<float, at::native::ArgMaxOps<float>, "
        "unsigned int, long, 4>)",
        "ncclDevKernel_AllGather_RING_LL(ncclDevKernelArgsStorage<4096ul>)",
        "ncclDevKernel_AllGather_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
    ]
    column = pd.Categorical([full[0], full[1], None, full[2], full[0]])
    short = simplify_names(column)
    assert sorted(short.categories) == ["ncclDevKernel_AllGather_RING_LL", "reduce_kernel<ArgMaxOps>"]
    values = list(np.asarray(short, dtype=object))
    assert values[0] == values[4] == "reduce_kernel<ArgMaxOps>"
    assert values[1] == values[3] == "ncclDevKernel_AllGather_RING_LL"
    assert pd.isna(values[2])
    assert len(simplify_names(pd.Categorical([]))) == 0


BRACKETY = st.text(
    alphabet="<>(){}[]:, _-~#&*0123456789aZvoidkernel_Z\u00fc\u20ac\U0001f642\t\n", max_size=300
)


@settings(max_examples=examples(ci=400), deadline=None)
@given(st.one_of(st.text(max_size=400), BRACKETY))
def test_simplify_never_raises_and_is_idempotent(text: str) -> None:
    """Any text: no exception, deterministic, bounded length, and a fixed point."""
    short = simplify_kernel_name(text)
    assert isinstance(short, str)
    assert short == simplify_kernel_name(text)
    assert len(short) <= MAX_SHORT_NAME
    assert simplify_kernel_name(short) == short
    categorize_name(text)  # never raises either


@pytest.mark.parametrize(
    "text",
    [
        "void " + "k<" * 5000 + "int" + ">" * 5000 + "(int)",
        "(" * 10_000,
        ">" * 10_000 + ")" * 10_000,
        "void at::native::vectorized_elementwise_kernel<4, "
        + "at::native::BinaryFunctor<float, " * 2000
        + "x>(int)",
        "_ZN" + "9abcdefghi" * 1000 + "E",
        "Cijk_Ailk_Bljk_" + "X" * 10_000,
        "\u00fc\u20ac\U0001f642" * 3400,
        "triton_poi_fused_" + "add_" * 2500 + "0",
    ],
    ids=["nested", "open-parens", "closers", "deep-functor", "mangled", "cijk", "non-ascii", "triton"],
)
def test_simplify_ten_kilobyte_names(text: str) -> None:
    """10 kB names of every shape: no exception, no regex blow-up, short, idempotent."""
    assert len(text) >= 10_000
    start = time.perf_counter()
    short = simplify_kernel_name(text)
    # a hang guard against catastrophic regex backtracking (exponential time), not a speed
    # measurement: a linear-time simplifier takes milliseconds even on a loaded machine
    assert time.perf_counter() - start < 30.0
    assert 0 < len(short) <= MAX_SHORT_NAME
    assert simplify_kernel_name(short) == short
    assert categorize_name(text) in CATEGORIES


DEMO_TRACE = Path(__file__).resolve().parents[2] / "src/infersight/data/demo/tiny_llama_cpu.pt.trace.json.gz"
CPU_OP_LABELS = {
    "aten::mm": "GEMM",
    "aten::addmm": "GEMM",
    "aten::linear": "GEMM",
    "aten::_scaled_dot_product_flash_attention_for_cpu": "attention",
    "aten::silu": "activation",
    "aten::cat": "copy",
    "aten::transpose": "copy",
    "aten::reshape": "copy",
    "aten::sum": "reduction",
    "aten::mean": "reduction",
    "aten::mul": "elementwise",
    "aten::argmax": "sampling",
}


def test_cpu_operator_names_of_the_demo_capture() -> None:
    """ATen operator names (CPU captures) land in the math categories, not 'other'."""
    with gzip.open(DEMO_TRACE, "rb") as fh:
        events = json.load(fh)["traceEvents"]
    names = {e["name"] for e in events if e.get("cat") == "cpu_op"}
    labelled = {name: category for name, category in CPU_OP_LABELS.items() if name in names}
    assert {"aten::mm", "aten::cat", "aten::silu"} <= set(labelled)
    for name, category in labelled.items():
        assert categorize_name(name) == category, name
    assert categorize_name("at::native::vectorized_elementwise_kernel<4, mm>") != "GEMM"
