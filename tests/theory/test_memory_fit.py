"""Memory fit (weights + KV cache + activations per GPU against HBM), NVL GPUs, attention dtype."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infersight.cli import run
from infersight.errors import InputError
from infersight.hardware.gpu_specs import lookup_gpu
from infersight.theory.config_reader import builtin_model
from infersight.theory.inputs import TheoryOptions
from infersight.theory.memory import (
    kv_bytes_per_sequence,
    memory_fit,
    memory_policy,
    tp_candidates,
    usable_bytes,
)
from infersight.theory.operators import Scenario, build_operators
from infersight.theory.params import weight_bytes
from infersight.theory.roofline import hardware_from_gpu, phase_estimate
from infersight.theory.run import theory_report

GIB = 2**30
H100_USABLE = (
    80 * GIB * 0.9 - 0.5 * GIB
)  # data/memory_fit.toml: 90% of the GiB capacity less the CUDA context
RTX4090_USABLE = 24 * GIB * 0.9 - 0.5 * GIB


def test_usable_memory_by_hand() -> None:
    assert usable_bytes(80) == pytest.approx(H100_USABLE)
    assert memory_policy().gpus_per_node == 8
    assert tp_candidates()[:6] == [1, 2, 4, 8, 16, 24]


def test_deepseek_v3_on_one_h100_is_refused_with_the_tp_that_fits() -> None:
    model = builtin_model("deepseek-v3")
    # 671.0 B parameters, fp8 experts/attention with fp32 block scales, bf16 embeddings: ~673 GB
    assert weight_bytes(model) == pytest.approx(673e9, rel=0.01)
    fit = memory_fit(model, gpu="H100", memory_gb=80, batch=1, prompt=1024, context=1024, tp=1)
    assert fit.status == "weights_do_not_fit"
    # 673 GB / 8 = 84 GB > 76.8 GB usable; /16 = 42 GB fits (2 nodes of 8)
    assert weight_bytes(model) / 8 > H100_USABLE > weight_bytes(model) / 16
    assert fit.smallest_tp_for_weights == 16
    assert "--tp 16 (2 nodes of 8 GPUs)" in fit.message
    with pytest.raises(InputError, match=r"does not fit.*--tp 16"):
        theory_report(TheoryOptions(model="deepseek-v3", gpu="h100"), batch=1, prompt=1024)


def test_mixtral_bf16_on_one_80gb_gpu_is_refused() -> None:
    model = builtin_model("mixtral-8x7b")
    assert weight_bytes(model) == pytest.approx(2 * 46.7e9, rel=0.01)  # 93.4 GB > 76.8 GB usable
    fit = memory_fit(model, gpu="H100", memory_gb=80, batch=1, prompt=512, context=512)
    assert fit.status == "weights_do_not_fit" and fit.smallest_tp_for_weights == 2


def test_llama3_70b_on_an_rtx_4090() -> None:
    model = builtin_model("llama-3-70b")
    # 70.6 B bf16 = 141 GB; /4 = 35 GB > 22.7 GB; /8 = 17.6 GB fits
    assert weight_bytes(model) / 4 > RTX4090_USABLE > weight_bytes(model) / 8
    fit = memory_fit(model, gpu="RTX 4090", memory_gb=24, batch=1, prompt=512, context=512)
    assert fit.status == "weights_do_not_fit" and fit.smallest_tp_for_weights == 8


def test_kv_cache_that_does_not_fit_is_a_warning_with_the_max_batch() -> None:
    model = builtin_model("llama-3-8b")
    context = 8192
    per_seq = 32 * context * 2 * 8 * 128 * 2  # 32 layers, K+V, 8 KV heads of 128, bf16 = 1 GiB
    assert kv_bytes_per_sequence(model, context) == per_seq == GIB
    fit = memory_fit(model, gpu="H100", memory_gb=80, batch=128, prompt=context, context=context)
    assert fit.status == "kv_does_not_fit"
    # activations of one 8192-token prefill chunk: residual + norm out (2·4096), q/k/v ((32+16)·128),
    # gate + up (2·14336), bf16; plus 128 sequences' fp32 logits over the 128256-token vocabulary
    activations = 8192 * (2 * 4096 + 48 * 128 + 2 * 14336) * 2 + 128 * 128256 * 4
    assert fit.activation_bytes == activations == 770_310_144
    expected_max = int((H100_USABLE - weight_bytes(model) - activations) // per_seq)
    assert fit.max_batch == expected_max == 55
    assert fit.smallest_fitting_tp == 4  # 128 GiB of KV / 2 + 8 GB of weights still exceeds 76.8 GB
    assert f"at most {expected_max} sequence(s)" in fit.message


def test_kv_is_split_over_tp_and_replicated_below_one_head() -> None:
    model = builtin_model("llama-3-8b")  # 8 KV heads
    assert kv_bytes_per_sequence(model, 1000, tp=4) == kv_bytes_per_sequence(model, 1000) / 4
    assert kv_bytes_per_sequence(model, 1000, tp=16) == kv_bytes_per_sequence(model, 1000) / 8
    mla = builtin_model("deepseek-v3")  # latent 512 + rope 64 per token, fp8 KV? no: bf16 as configured
    per_token = 61 * (512 + 64) * mla.kv_cache_bytes
    assert kv_bytes_per_sequence(mla, 100, tp=8) == 100 * per_token  # replicated on every rank


def test_fit_is_unknown_without_a_memory_size() -> None:
    fit = memory_fit(builtin_model("llama-3-8b"), gpu="custom", memory_gb=None, batch=1, prompt=8, context=8)
    assert fit.status == "unknown" and fit.max_batch is None


def test_roofline_cli_refuses_and_json_carries_the_fit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(["roofline", "--model", "deepseek-v3", "--gpu", "h100", "--batch", "1", "--prompt", "64"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("infersight: error:") and "--tp 16" in err
    assert len(err.strip().splitlines()) == 1
    out = tmp_path / "r.json"
    args = ["roofline", "--model", "llama-3-8b", "--gpu", "h100", "--batch", "128", "--prompt", "8192"]
    assert run([*args, "--json", str(out)]) == 0
    memory = json.loads(out.read_text())["estimate"]["memory"]
    assert memory["status"] == "kv_does_not_fit" and memory["max_batch"] == 55
    assert "WARNING" in capsys.readouterr().out


# ------------------------------------------------------------------ NVL GPUs


@pytest.mark.parametrize(
    ("name", "key", "memory", "bandwidth", "bf16"),
    [
        ("NVIDIA H100 NVL", "h100-nvl", 94, 3900, 835.5),
        ("NVIDIA H200 NVL", "h200-nvl", 141, 4800, 835.5),
        ("h100-nvl", "h100-nvl", 94, 3900, 835.5),
    ],
)
def test_nvl_variants(name: str, key: str, memory: int, bandwidth: int, bf16: float) -> None:
    spec = lookup_gpu(name)
    assert (spec.key, spec.memory_gb, spec.memory_bandwidth_gb_per_s) == (key, memory, bandwidth)
    assert spec.peak_flops("bf16") == pytest.approx(bf16 * 1e12)  # datasheet 1,671 with sparsity, halved
    assert lookup_gpu("NVIDIA H200").key == "h200"  # the SXM part still resolves to itself


# ------------------------------------------------------------------ attention dtype of fp8 checkpoints


def test_fp8_checkpoint_runs_attention_in_bf16() -> None:
    model = builtin_model("deepseek-v3")
    assert (model.compute_dtype, model.activation_dtype) == ("fp8", "bf16")
    gpu = lookup_gpu("h100")
    hw = hardware_from_gpu(gpu, model.compute_dtype)
    scenario = Scenario(batch=1, prompt_len=4096, context_len=4096, tp=8)
    attention = [op for op in build_operators(model, scenario, "prefill") if op.name == "attention"]
    assert attention and attention[0].compute_dtype == "bf16"
    timed = {t.operator.name: t for t in phase_estimate(model, scenario, "prefill", hw).operators}
    assert timed["attention"].peak_flops == pytest.approx(989.4e12)  # bf16, not the fp8 1,978.9
    assert timed["q_b_proj"].peak_flops == pytest.approx(1978.9e12)  # the fp8 GEMMs keep the fp8 rate
    op = timed["attention"].operator
    # t_c = F / (η_c·P_peak) with the calibrated compute efficiency and the bf16 peak
    assert timed["attention"].t_compute_s == pytest.approx(op.flops / (989.4e12 * hw.compute_efficiency))
