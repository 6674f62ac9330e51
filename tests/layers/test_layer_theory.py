"""Per-layer theory time and E_roof (``infersight layers --batch ...``).

The theory side is recomputed here from :func:`infersight.theory.operators.build_operators` with
the time model written out (``(t_c^p + t_m^p)^(1/p) + t_floor``, collectives α + bytes/link, the
figures read straight from ``data/time_model.toml``), never through :mod:`infersight.layers.theory`;
the measured side of the real trace is summed from the raw Kineto JSON.
"""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from rich.console import Console
from tests.conftest import plain_json_events, shared_file, shared_traces
from tests.layers import synthetic

from infersight.cli import run
from infersight.errors import InputError
from infersight.hardware.gpu_specs import lookup_gpu
from infersight.hardware.links import gpu_links
from infersight.layers.analysis import analyze_layers
from infersight.layers.results import LayerReport
from infersight.layers.theory import LayerTheoryRequest, kind_theory, operators_of_layer
from infersight.model import Trace
from infersight.render.layers import render_layers
from infersight.theory.config_reader import resolve_model
from infersight.theory.inputs import TheoryOptions
from infersight.theory.model_config import ModelConfig, MoEConfig
from infersight.theory.operators import Operator, Phase, Scenario, build_operators
from infersight.theory.roofline import Hardware, phase_estimate

VLLM_70B = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
MODEL = "llama-3.1-70b"
MATMULS = {"GEMM", "attention", "MoE"}
REL = 1e-9


def _h100_figures() -> dict[str, dict[str, float]]:
    """The H100 rows of time_model.toml, read with tomllib (not through theory.time_model)."""
    text = (resources.files("infersight") / "data" / "time_model.toml").read_text(encoding="utf-8")
    gen = tomllib.loads(text)["generation"]
    h100, default = gen["H100"], gen["default"]
    return {key: h100.get(key, default[key]) for key in ("kernel", "intra_node", "oneshot")}


def _plain_roof_s(op: Operator, *, matmul_peak: float, vector_peak: float, hbm: float, link: float) -> float:
    """The plain roofline of one occurrence (a hand-built Hardware without time-model figures)."""
    peak = matmul_peak if op.category in MATMULS else vector_peak
    if op.comm_bytes > 0:
        return max(op.flops / peak, op.comm_bytes / link)
    return max(op.flops / peak, (op.weight_bytes + op.activation_bytes + op.kv_bytes) / hbm)


def _roof_s(op: Operator, *, matmul_peak: float, vector_peak: float, hbm: float, link: float) -> float:
    """The calibrated time of one occurrence on H100, written out independently of theory.roofline."""
    fig = _h100_figures()
    k, ring, one = fig["kernel"], fig["intra_node"], fig["oneshot"]
    if op.comm_bytes > 0:
        t_ring = ring["alpha_us"] * 1e-6 + op.comm_bytes / (link * ring["bus_efficiency"])
        t_one = one["alpha_us"] * 1e-6 + op.comm_bytes / (link * one["bus_efficiency"])
        return min(t_ring, t_one)
    matmul = op.category in MATMULS
    t_c = op.flops / ((matmul_peak if matmul else vector_peak) * k["compute_efficiency"])
    t_m = (op.weight_bytes + op.activation_bytes + op.kv_bytes) / (hbm * k["memory_efficiency"])
    if t_c == 0 and t_m == 0:
        return 0.0
    p = k["overlap_exponent"]
    floor = (k["floor_us"] if matmul else k["vector_floor_us"]) * 1e-6
    return float((t_c**p + t_m**p) ** (1 / p)) + floor


def _independent_layer_s(model: ModelConfig, scenario: Scenario, phase: Phase) -> float:
    """One dense, full-attention layer of ``model`` on an H100 SXM: every non-model operator once."""
    gpu = lookup_gpu("H100-SXM")
    peer = gpu_links(gpu.name).peer
    assert peer is not None
    try:
        vector = gpu.peak_flops("fp32")
    except InputError:  # a GPU without an fp32 figure: the engine falls back to the matmul peak
        vector = gpu.peak_flops(model.compute_dtype)
    return sum(
        _roof_s(
            op,
            matmul_peak=gpu.peak_flops(model.compute_dtype),
            vector_peak=vector,
            hbm=gpu.memory_bandwidth_gb_per_s * 1e9,
            link=peer.gb_per_s * 1e9,
        )
        for op in build_operators(model, scenario, phase)
        if op.block != "model"
    )


@pytest.fixture(scope="module")
def vllm_trace() -> Trace:
    return shared_traces(VLLM_70B)[0]


def _report(trace: Trace, **kwargs: object) -> LayerReport:
    request = LayerTheoryRequest(options=TheoryOptions(model=MODEL), tp=4, **kwargs)  # type: ignore[arg-type]
    return analyze_layers(trace, config=resolve_model(MODEL), theory=request)


@pytest.fixture(scope="module")
def decode_report(vllm_trace: Trace) -> LayerReport:
    return _report(vllm_trace, batch=32, prompt=1000, context=1005)


@pytest.fixture(scope="module")
def kernel_events() -> list[tuple[int, int]]:
    """(start ns, duration ns) of device 0's kernels, straight from the JSON."""
    raw = plain_json_events(shared_file(VLLM_70B))
    return [
        (round(float(e["ts"]) * 1000), round(float(e["dur"]) * 1000))
        for e in raw
        if e.get("cat") == "kernel" and e.get("ph") == "X" and int(e.get("args", {}).get("device", 0)) == 0
    ]


def test_decode_layer_theory_equals_independent_operator_sum(decode_report: LayerReport) -> None:
    theory = decode_report.theory
    assert theory is not None and theory.phase == "decode" and theory.na_reason is None
    assert theory.gpu == lookup_gpu("H100-SXM").name  # from the trace's deviceProperties
    expected_ns = 1e9 * _independent_layer_s(
        resolve_model(MODEL), Scenario(batch=32, prompt_len=1000, context_len=1005, tp=4), "decode"
    )
    assert len(decode_report.layers) == 80
    for row in decode_report.layers:
        assert row.theory_kind == "dense"
        assert row.theory_roof_ns == pytest.approx(expected_ns, rel=REL)
        assert row.theory_ns == pytest.approx(expected_ns * theory.kappa, rel=REL)


def test_e_roof_from_raw_kernel_times(
    decode_report: LayerReport, kernel_events: list[tuple[int, int]]
) -> None:
    for row in (decode_report.layers[i] for i in (0, 1, 40, 79)):
        kernel_ns = sum(d for s, d in kernel_events if row.start_ns <= s < row.end_ns)
        assert kernel_ns == row.kernel_time_ns
        assert row.theory_roof_ns is not None
        assert row.e_roof_kernels == pytest.approx(row.theory_roof_ns / kernel_ns, rel=REL)
        assert row.e_roof_wall == pytest.approx(row.theory_roof_ns / (row.end_ns - row.start_ns), rel=REL)
    steady = [r.e_roof_kernels for r in decode_report.layers[1:] if r.e_roof_kernels is not None]
    # the calibrated time model is what tuned kernels reach, so E_roof sits near 1 (it may pass 1:
    # the B=32 scenario over-states this batch-1 trace's work; with B=1 the layers score 0.74–0.99)
    assert all(0.7 < e < 1.4 for e in steady)
    (cluster,) = decode_report.clusters
    assert cluster.avg_e_roof_kernels == pytest.approx(
        sum(r.e_roof_kernels or 0.0 for r in decode_report.layers) / 80, rel=REL
    )


def test_prefill_pass_uses_prefill_theory(vllm_trace: Trace, kernel_events: list[tuple[int, int]]) -> None:
    request = LayerTheoryRequest(options=TheoryOptions(model=MODEL), tp=4, batch=1, prompt=1000)
    report = analyze_layers(vllm_trace, config=resolve_model(MODEL), fwd_pass=0, theory=request)
    assert report.theory is not None and report.theory.phase == "prefill"
    expected_ns = 1e9 * _independent_layer_s(
        resolve_model(MODEL), Scenario(batch=1, prompt_len=1000, context_len=1000, tp=4), "prefill"
    )
    row = report.layers[5]
    kernel_ns = sum(d for s, d in kernel_events if row.start_ns <= s < row.end_ns)
    assert row.theory_roof_ns == pytest.approx(expected_ns, rel=REL)
    assert row.e_roof_kernels == pytest.approx(expected_ns / kernel_ns, rel=REL)


def test_prefill_scenario_far_above_the_pass_is_flagged(vllm_trace: Trace) -> None:
    request = LayerTheoryRequest(options=TheoryOptions(model=MODEL), tp=4, batch=32, prompt=1000)
    report = analyze_layers(vllm_trace, config=resolve_model(MODEL), fwd_pass=0, theory=request)
    assert report.theory is not None and any("E_roof > 1" in note for note in report.theory.notes)


def _hand_model() -> ModelConfig:
    """4 layers: 0 dense, 1 dense+sliding, 2 MoE, 3 MoE+sliding."""
    return ModelConfig(
        name="hand",
        model_type="test",
        hidden_size=512,
        num_layers=4,
        num_attention_heads=8,
        num_kv_heads=2,
        head_dim=64,
        intermediate_size=1024,
        vocab_size=1000,
        sliding_window=128,
        sliding_window_layers=(1, 3),
        moe=MoEConfig(
            num_routed_experts=8, experts_per_token=2, expert_intermediate_size=256, moe_layers=(2, 3)
        ),
    )


HAND_HW = Hardware(
    name="hand",
    compute_dtype="bf16",
    matmul_peak_flops=1e14,
    vector_peak_flops=1e13,
    memory_bandwidth=1e12,
    memory_efficiency=1.0,
    link_bandwidth=1e11,
    link_efficiency=1.0,
)


def test_hand_built_layer_kinds_pick_their_own_operators() -> None:
    model = _hand_model()
    scenario = Scenario(batch=4, prompt_len=512, context_len=512, tp=2)
    kinds = kind_theory(model, scenario, "decode", HAND_HW)
    by_label = {k.kind: k for k in kinds.values()}
    assert {label: k.layers for label, k in by_label.items()} == {
        "dense": [0],
        "dense+sliding": [1],
        "MoE": [2],
        "MoE+sliding": [3],
    }
    assert "gate_proj" in by_label["dense"].operators and "gate_proj" not in by_label["MoE"].operators
    assert "attention_full" in by_label["dense"].operators
    assert "attention_window" in by_label["MoE+sliding"].operators
    assert "attention_full" not in by_label["dense+sliding"].operators
    assert not {"embedding", "lm_head", "final_norm"} & set(by_label["dense"].operators)
    ops = build_operators(model, scenario, "decode")

    def hand_sum(names: list[str], moe: bool) -> float:
        blocks = {"attention", "moe", "shared_expert"} if moe else {"attention", "mlp"}
        return 1e9 * sum(
            _plain_roof_s(op, matmul_peak=1e14, vector_peak=1e13, hbm=1e12, link=1e11)
            for op in ops
            if op.name in names and op.block in blocks
        )

    for kind in by_label.values():
        assert kind.theory_roof_ns == pytest.approx(
            hand_sum(kind.operators, kind.kind.startswith("MoE")), rel=REL
        )
    # a sliding layer at context 512 with a 128 window reads fewer keys: it is cheaper
    assert by_label["dense+sliding"].theory_roof_ns < by_label["dense"].theory_roof_ns  # type: ignore[operator]
    timed = phase_estimate(model, scenario, "decode", HAND_HW).operators
    assert len(operators_of_layer(timed, moe=False, sliding=False)) == len(by_label["dense"].operators)


def _tiny_llama_config(tmp_path: Path, layers: int) -> Path:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "model_type": "llama",
                "architectures": ["LlamaForCausalLM"],
                "hidden_size": 1024,
                "intermediate_size": 2816,
                "num_hidden_layers": layers,
                "num_attention_heads": 16,
                "num_key_value_heads": 4,
                "vocab_size": 32000,
                "torch_dtype": "bfloat16",
            }
        )
    )
    return path


def test_hand_built_trace_e_roof_is_theory_over_known_kernel_time(tmp_path: Path) -> None:
    built = synthetic.build(passes=3, layers=4)
    config = _tiny_llama_config(tmp_path, 4)
    request = LayerTheoryRequest(
        options=TheoryOptions(config=config, gpu="H100-SXM"), batch=8, context=256, tp=2
    )
    report = analyze_layers(built.trace, config=resolve_model(str(config)), fwd_pass=1, theory=request)
    assert report.theory is not None and report.theory.phase == "decode"
    layer_kernel_ns = {
        row.layer: 1000 * sum(synthetic.LAYER_DURATIONS[n] for n in synthetic.dense_layer(row.layer == 0))
        for row in report.layers
    }
    for row in report.layers:
        assert row.kernel_time_ns == layer_kernel_ns[row.layer]
        assert row.theory_roof_ns is not None
        assert row.e_roof_kernels == pytest.approx(row.theory_roof_ns / layer_kernel_ns[row.layer], rel=REL)


def test_without_batch_the_columns_are_absent_and_the_text_says_how(tmp_path: Path) -> None:
    config = resolve_model(str(_tiny_llama_config(tmp_path, 4)))
    report = analyze_layers(synthetic.build(passes=2, layers=4).trace, config=config)
    assert report.theory is None and all(row.theory_roof_ns is None for row in report.layers)
    console = Console(record=True, width=250)
    render_layers(report, console)
    text = console.export_text()
    assert "theory µs" not in text and "per-layer theory: add --batch B" in text


def test_unknown_gpu_is_the_theory_engine_error(vllm_trace: Trace) -> None:
    request = LayerTheoryRequest(options=TheoryOptions(model=MODEL, gpu="NoSuchGPU"), batch=4, prompt=10)
    with pytest.raises(InputError, match="unknown GPU 'NoSuchGPU'"):
        analyze_layers(vllm_trace, config=resolve_model(MODEL), theory=request)


def test_cli_json_carries_the_theory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "layers.json"
    args = ["layers", str(shared_file(VLLM_70B)), "--model", MODEL, "--batch", "32", "--prompt", "1000"]
    assert run([*args, "--context", "1005", "--tp", "4", "--json", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "theory µs" in out and "E_roof per layer type (mean): dense" in out
    data = json.loads(out_file.read_text())
    assert data["theory"]["phase"] == "decode" and data["theory"]["tp"] == 4
    assert all(row["e_roof_kernels"] is not None for row in data["layers"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--batch", "4"], "--batch needs --model"),
        (["--model", MODEL, "--tp", "4"], "--tp needs --batch"),
        (["--model", MODEL, "--batch", "4", "--phase", "both"], "--phase 'both'"),
    ],
)
def test_cli_errors(extra: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["layers", "no_such_trace.json", *extra]) == 2
    assert message in capsys.readouterr().err


def test_prefill_without_prompt_says_what_is_missing(tmp_path: Path) -> None:
    config = _tiny_llama_config(tmp_path, 4)
    request = LayerTheoryRequest(
        options=TheoryOptions(config=config, gpu="H100-SXM"), batch=8, context=256, phase="prefill"
    )
    report = analyze_layers(
        synthetic.build(passes=2, layers=4).trace, config=resolve_model(str(config)), theory=request
    )
    assert report.theory is not None and report.theory.phase_reason == "--phase prefill"
    assert report.theory.na_reason is not None and "--prompt" in report.theory.na_reason
    assert all(row.theory_roof_ns is None and row.e_roof_kernels is None for row in report.layers)


def test_tp_without_a_link_bandwidth_leaves_the_columns_empty_with_the_reason(tmp_path: Path) -> None:
    config = _tiny_llama_config(tmp_path, 4)
    options = TheoryOptions(config=config, peak_tflops=100.0, bandwidth_gb_per_s=1000.0)
    request = LayerTheoryRequest(options=options, batch=8, context=256, tp=2)
    report = analyze_layers(
        synthetic.build(passes=2, layers=4).trace, config=resolve_model(str(config)), theory=request
    )
    assert report.theory is not None and report.theory.na_reason is not None
    assert "--link-bandwidth" in report.theory.na_reason
    assert all(row.theory_roof_ns is None and row.theory_na_reason for row in report.layers)
