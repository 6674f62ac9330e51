"""Segmentation on hand-built traces whose passes and layers are known by construction."""

from __future__ import annotations

import pytest
from tests.conftest import shared_file
from tests.layers import synthetic

from infersight.errors import InputError
from infersight.layers.analysis import analyze_layers
from infersight.layers.profiles import layer_types, load_profiles
from infersight.theory.config_reader import resolve_model


def test_layers_and_passes_match_construction() -> None:
    built = synthetic.build(passes=3, layers=6)
    report = analyze_layers(built.trace, num_layers=6, fwd_pass=1)
    assert [p.layer_count for p in report.passes] == [6, 6, 6]
    assert [row.start_ns for row in report.layers] == built.layer_starts_ns[1]
    assert [row.end_ns for row in report.layers][-1] == built.layer_ends_ns[1][-1]
    assert all(row.kernel_count == 12 and row.allreduce_count == 2 for row in report.layers)
    first = report.passes[0]
    assert first.layers_start_ns == built.layer_starts_ns[0][0]
    assert (
        first.prologue_ns > 0 and first.epilogue_ns > 0
    )  # embedding / lm_head + argmax are outside the layers
    assert first.layers_ns + first.prologue_ns + first.epilogue_ns == first.duration_ns
    assert report.warnings == []


def test_layer_count_inferred_without_config() -> None:
    report = analyze_layers(synthetic.build(passes=4, layers=5).trace)
    assert report.layers_expected is None
    assert [p.layer_count for p in report.passes] == [5, 5, 5, 5]
    structure = report.pass_structure
    assert structure is not None and structure.plausible and structure.layers_per_pass == 5
    assert structure.method == "boundary-kernels"


def test_trace_starting_mid_pass_gives_a_truncated_first_pass() -> None:
    built = synthetic.build(passes=3, layers=6, drop_first=2 + 12 * 4)  # prologue and 4 layers cut away
    report = analyze_layers(built.trace, num_layers=6)
    assert [p.layer_count for p in report.passes] == [2, 6, 6]
    assert report.passes[0].state == "truncated"
    assert report.passes[0].first_layer_ns is None  # layer 0 of that pass is not in the trace
    assert any("truncated" in w for w in report.warnings)
    assert report.selected_pass != 0


def test_layer_count_mismatch_warns_and_still_tabulates() -> None:
    report = analyze_layers(synthetic.build(passes=3, layers=6).trace, num_layers=7)
    assert report.layers  # best-effort table
    assert any("says 7" in w or "truncated" in w for w in report.warnings)


def test_anchor_that_never_occurs_warns_and_falls_back() -> None:
    report = analyze_layers(
        synthetic.build(passes=2, layers=4).trace, num_layers=4, anchor_kernel="no_such_kernel"
    )
    assert any("matches no kernel" in w for w in report.warnings)
    assert [p.layer_count for p in report.passes] == [4, 4]


def test_anchor_override_on_the_input_norm() -> None:
    built = synthetic.build(passes=2, layers=4)
    # the input norms: plain rms_norm (layer 0) and the fused add-norm opening layers 1..3; the post-attention
    # add-norm and the final norm match too, so this anchor has 2 events per layer and one extra per pass
    report = analyze_layers(built.trace, num_layers=4, anchor_kernel="rms_norm")
    assert report.anchor.source == "--anchor-kernel"
    assert report.anchor.anchors_per_layer == 2
    assert report.anchor.boundary == "anchor_start"
    assert [p.layer_count for p in report.passes] == [4, 4]
    assert [row.start_ns for row in report.layers] == built.layer_starts_ns[report.selected_pass or 0]


def test_moe_layers_typed_from_kernels_and_clustered() -> None:
    report = analyze_layers(synthetic.build(passes=2, layers=6, moe_from=2).trace, num_layers=6)
    assert [row.layer_type for row in report.layers] == ["dense", "dense", "MoE", "MoE", "MoE", "MoE"]
    assert {c.layer_type: c.count for c in report.clusters} == {"MoE": 4, "dense": 2}
    assert report.verdict.startswith("MoE layers (4 of 6)")


def test_compute_flow_and_diff() -> None:
    report = analyze_layers(
        synthetic.build(passes=2, layers=4, moe_from=2).trace, num_layers=4, layer=1, compare_layer=2
    )
    assert report.flow is not None and report.flow.layer == 1
    assert next(r.offset_ns for r in report.flow.rows) == 0
    assert sorted(r.rank for r in report.flow.rows) == list(range(1, 13))
    assert abs(sum(r.share for r in report.flow.rows) - 1) < 1e-3
    assert report.diff is not None
    only_b = {r.name for r in report.diff.only_in_b}
    assert "moe::dev::routing::routingIndicesOffsetsKernel" in only_b or any("routing" in n for n in only_b)
    with pytest.raises(InputError):
        analyze_layers(synthetic.build(passes=1, layers=4).trace, num_layers=4, layer=9)


def test_pass_selection_and_bad_pass() -> None:
    trace = synthetic.build(passes=3, layers=4).trace
    assert analyze_layers(trace, num_layers=4, fwd_pass=2).selected_pass == 2
    with pytest.raises(InputError):
        analyze_layers(trace, num_layers=4, fwd_pass=3)


def test_unknown_profile_is_an_input_error() -> None:
    with pytest.raises(InputError):
        analyze_layers(synthetic.build(passes=1, layers=2).trace, profile="nope")


def test_profile_table_is_valid_and_has_reasons() -> None:
    table = load_profiles()
    assert {p.name for p in table.profiles} >= {"generic", "vllm", "sglang", "hf-transformers"}
    assert all(p.reason for p in table.profiles)
    assert table.plausibility.min_layers_per_pass >= 1
    assert table.plausibility.backward_anchor.search("softmax_warp_backward")
    assert not table.plausibility.backward_anchor.search("flash::FlashAttnFwdSm90")


def test_layer_types_from_configs() -> None:
    deepseek = resolve_model(str(shared_file("configs/deepseek-ai--DeepSeek-V3_config.json")))
    types = layer_types(deepseek, deepseek.num_layers)
    assert types is not None and types[:3] == ["dense"] * 3 and set(types[3:]) == {"MoE"}
    gpt_oss = resolve_model("gpt-oss-120b")
    types = layer_types(gpt_oss, gpt_oss.num_layers)
    assert types is not None and types[:2] == ["MoE+sliding", "MoE"]


def test_no_attention_and_no_periodic_norm_is_an_input_error() -> None:
    built = synthetic.build(passes=1, layers=3)
    kernels = built.trace.kernels
    gemm_only = kernels[kernels["name"].astype(str) == synthetic.GEMM].reset_index(drop=True)
    built.trace.kernels = gemm_only
    with pytest.raises(InputError, match="--anchor-kernel"):
        analyze_layers(built.trace)
