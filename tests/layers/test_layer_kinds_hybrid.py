"""Per-layer theory of hybrid models: each layer kind gets only its own attention operators."""

from __future__ import annotations

from infersight.hardware.gpu_specs import lookup_gpu
from infersight.layers.theory import kind_label, kind_theory
from infersight.theory.config_reader import builtin_model
from infersight.theory.operators import Scenario
from infersight.theory.roofline import hardware_from_gpu, phase_estimate


def _kinds(name: str) -> dict[str, tuple[int, list[str]]]:
    model = builtin_model(name)
    hw = hardware_from_gpu(lookup_gpu("h200"), model.compute_dtype)
    kinds = kind_theory(model, Scenario(batch=1, prompt_len=4096, context_len=4096), "decode", hw)
    return {k.kind: (len(k.layers), k.operators) for k in kinds.values()}


def test_qwen3_next_linear_layers_have_no_kv_cache_operators() -> None:
    kinds = _kinds("qwen3-next-80b-a3b")
    assert {kind: count for kind, (count, _) in kinds.items()} == {"MoE+linear": 36, "MoE": 12}
    linear, full = kinds["MoE+linear"][1], kinds["MoE"][1]
    assert "linear_attention" in linear and not {"q_proj", "kv_cache_store", "attention"} & set(linear)
    assert {"q_proj", "kv_cache_store", "attention", "attn_output_gate"} <= set(full)
    assert not any(name.startswith("linear_") for name in full)


def test_llama4_chunked_and_global_layers_and_the_per_pass_sum() -> None:
    kinds = _kinds("llama-4-scout")
    assert kinds["MoE+chunked"][0] == 36 and "attention_chunked" in kinds["MoE+chunked"][1]
    assert kinds["MoE"][0] == 12 and "attention_full" in kinds["MoE"][1]
    # the layer kinds together hold every layer-level operator occurrence of the pass
    model = builtin_model("llama-4-scout")
    hw = hardware_from_gpu(lookup_gpu("h200"), model.compute_dtype)
    ops = phase_estimate(model, Scenario(batch=1, prompt_len=4096, context_len=4096), "decode", hw).operators
    attention_ops = {
        t.operator.name: t.operator.layers for t in ops if t.operator.name.startswith("attention")
    }
    assert attention_ops == {"attention_chunked": 36, "attention_full": 12}


def test_kind_labels() -> None:
    assert kind_label(False, "full") == "dense" and kind_label(True, "sliding") == "MoE+sliding"
    assert kind_label(False, True) == "dense+sliding"  # the older (MoE, sliding) form
