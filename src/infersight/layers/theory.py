"""Per-layer measured time against the theory engine's per-layer roofline (methodology §2, §5).

The theory engine (:mod:`infersight.theory.operators`) lists every operator of one forward pass
with ``layers`` = how many layers it runs in. One layer's theory time is the sum of the
per-occurrence roofline times of the operators that run in *that* layer:

* attention-block operators run in every layer, except that with sliding-window layers the
  attention core is split into ``*_window`` (sliding layers) and ``*_full`` (the others);
* the dense MLP block (``block == "mlp"``) runs in dense layers, the MoE block (``moe``,
  ``shared_expert``) in the layers :meth:`ModelConfig.is_moe_layer` names;
* model-level operators (embedding, final norm, lm_head, sampling) belong to no layer.

``E_roof = T_roof / t_measured`` with T_roof the un-inflated roofline (no κ), the definition of
:mod:`infersight.theory.measured`: 1 means "at the roofline". It is given against the layer's wall
time (start of its first kernel to the start of the next layer: idle gaps and launch overhead
count against it) and against its summed kernel time (what :mod:`infersight.theory.measured`
divides by, per category).

The pass's phase decides the theory: a pass whose kernel mix occurs once in the trace (state
``single``) is taken as the prefill (prompt S), passes that repeat (``steady-state`` /
``cold-start``) as decode steps (context L); ``--phase`` overrides the guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from infersight.errors import InputError
from infersight.layers.results import LayerKindTheory, LayerRow, LayerTheory, LayerTypeCluster, PassRow
from infersight.theory.inputs import TheoryOptions, load_model, resolve_hardware
from infersight.theory.model_config import AttentionKind, ModelConfig
from infersight.theory.operators import Phase, Scenario
from infersight.theory.roofline import Hardware, OperatorTime, phase_estimate

if TYPE_CHECKING:
    from infersight.model import Trace

MODEL_BLOCK = "model"
DENSE_BLOCKS = frozenset({"mlp"})
MOE_BLOCKS = frozenset({"moe", "shared_expert"})
WINDOW_SUFFIX = "_window"
FULL_SUFFIX = "_full"
CHUNKED_SUFFIX = "_chunked"
LINEAR_PREFIX = "linear_"
E_ROOF_DEFINITION = (
    "E_roof = T_roof / measured, T_roof = Σ time-model time (docs/methodology.md §2.1) of the layer's "
    "theory operators without κ (as in the measured-vs-theory section); measured = layer wall "
    "(e_roof_wall) or the layer's summed kernel time (e_roof_kernels)"
)
ENABLE_HINT = (
    "per-layer theory: add --batch B with --model/--config (and --prompt S for a prefill pass, "
    "--context L for decode, --tp N, --gpu NAME if the trace does not name its GPU)"
)


class LayerTheoryRequest(BaseModel):
    """What ``infersight layers --batch ...`` asks of the theory engine for the selected pass."""

    options: TheoryOptions
    batch: int = Field(ge=1)
    prompt: int | None = Field(default=None, ge=1)
    context: int | None = Field(default=None, ge=1)
    tp: int = Field(default=1, ge=1)
    phase: Phase | None = Field(default=None, description="override of the pass's guessed phase")


def pass_phase(
    passes: Sequence[PassRow], selected: int | None, override: Phase | None
) -> tuple[Phase | None, str]:
    """The phase the selected pass ran, and why we think so (None: cannot tell)."""
    if override is not None:
        return override, f"--phase {override}"
    row = next((p for p in passes if p.index == selected), None)
    if row is None:
        return None, "no pass selected"
    if row.state == "single":
        return "prefill", "the only pass of its kernel mix (a prefill); --phase decode overrides"
    if row.state in ("steady-state", "cold-start"):
        same = sum(p.shape == row.shape for p in passes)
        return "decode", f"one of {same} passes with the same kernel mix (decode steps); --phase overrides"
    return None, f"pass {row.index} is {row.state}: give --phase prefill|decode"


def layer_kind(model: ModelConfig, layer: int) -> tuple[bool, AttentionKind]:
    """(routed-expert MLP, attention kind: full / sliding / chunked / linear) of a 0-based layer."""
    return model.is_moe_layer(layer), model.attention_kind(layer)


def kind_label(moe: bool, attention: AttentionKind | bool) -> str:
    """The label of a (MoE, attention kind) layer kind, as the theory columns name it."""
    if isinstance(attention, bool):  # (MoE, sliding) as earlier callers give it
        attention = "sliding" if attention else "full"
    return ("MoE" if moe else "dense") + ("" if attention == "full" else f"+{attention}")


ATTENTION_SUFFIXES: dict[str, str] = {
    "sliding": WINDOW_SUFFIX,
    "full": FULL_SUFFIX,
    "chunked": CHUNKED_SUFFIX,
}
SOFTMAX_ATTENTION_OPS = ("q_proj", "k_proj", "v_proj", "rope", "kv_cache_store", "o_proj", "attn_output_gate")
SOFTMAX_CORE_PREFIXES = ("attention", "qk_matmul", "softmax", "sv_matmul")


def operators_of_layer(
    operators: Sequence[OperatorTime],
    *,
    moe: bool,
    sliding: bool = False,
    attention: AttentionKind | None = None,
) -> list[OperatorTime]:
    """The operators that run once in a layer of the given kind (model-level ones excluded).

    ``attention`` (full, sliding, chunked, linear) picks the attention core of the layer's kind
    (``*_window``, ``*_full``, ``*_chunked``) and, for hybrid models, the linear-attention
    operators (``linear_*``) or the softmax-attention ones; ``sliding`` is the older boolean form.
    """
    kind: AttentionKind = attention if attention is not None else ("sliding" if sliding else "full")
    own_suffix = ATTENTION_SUFFIXES.get(kind)
    mine: list[OperatorTime] = []
    for timed in operators:
        op = timed.operator
        if op.block == MODEL_BLOCK:
            continue
        if (op.block in DENSE_BLOCKS and moe) or (op.block in MOE_BLOCKS and not moe):
            continue
        suffix = next((x for x in ATTENTION_SUFFIXES.values() if op.name.endswith(x)), None)
        if suffix is not None and suffix != own_suffix:
            continue
        if kind == "linear" and _softmax_attention_op(op.name):
            continue
        if kind != "linear" and op.name.startswith(LINEAR_PREFIX):
            continue
        mine.append(timed)
    return mine


def _softmax_attention_op(name: str) -> bool:
    """q/k/v/o projections, RoPE, KV store and attention cores: absent from linear-attention layers."""
    return name in SOFTMAX_ATTENTION_OPS or name.startswith(SOFTMAX_CORE_PREFIXES)


def trace_gpu_name(trace: Trace, device: int) -> str | None:
    """The spec-table name of the trace's GPU (its deviceProperties), None when the trace names none.

    Raises the theory engine's InputError when the trace names a GPU the table does not know.
    """
    from infersight.hardware.gpu_specs import gpu_for_device

    info = trace.gpus.get(device) or next(iter(trace.gpus.values()), None)
    if info is None or not (info.name or info.sm_count):
        return None
    return gpu_for_device(info.name, info.sm_count, info.memory_bytes).name


@dataclass(frozen=True)
class TheorySetup:
    """The model and roofline hardware of a request, resolved before the (slower) segmentation so
    that a bad --gpu / --dtype / config fails at once."""

    request: LayerTheoryRequest
    model: ModelConfig
    hw: Hardware


def theory_setup(trace: Trace, request: LayerTheoryRequest, device: int) -> TheorySetup:
    """Load the model and resolve the GPU (``--gpu``, else the trace's device properties)."""
    model = load_model(request.options)
    gpu_name = None if request.options.gpu is not None else trace_gpu_name(trace, device)
    return TheorySetup(
        request, model, resolve_hardware(request.options, model, tp=request.tp, gpu_name=gpu_name)
    )


def layer_theory(
    setup: TheorySetup, passes: Sequence[PassRow], selected: int | None, layers: list[LayerRow]
) -> tuple[LayerTheory, list[LayerRow]]:
    """The theory of the selected pass's phase, and the layer rows with their theory columns."""
    request, model, hw = setup.request, setup.model, setup.hw
    phase, phase_reason = pass_phase(passes, selected, request.phase)
    base = LayerTheory(
        phase=phase,
        phase_reason=phase_reason,
        model=model.name,
        gpu=hw.name,
        gpu_source="--gpu" if request.options.gpu is not None else "the trace's device properties",
        compute_dtype=hw.compute_dtype,
        batch=request.batch,
        prompt_len=request.prompt,
        context_len=request.context if request.context is not None else request.prompt,
        tp=request.tp,
        kappa=hw.kappa,
        definition=E_ROOF_DEFINITION,
    )
    scenario, missing = _scenario(request, phase)
    if phase is None or scenario is None:
        return base.model_copy(update={"na_reason": missing or phase_reason}), layers
    kinds = kind_theory(model, scenario, phase, hw)
    base = base.model_copy(update={"kinds": list(kinds.values())})
    rows = [_with_theory(row, model, kinds) for row in layers]
    untimed = [k for k in kinds.values() if k.theory_roof_ns is None]
    if untimed:
        base = base.model_copy(update={"na_reason": untimed[0].na_reason})
    above = [r.layer for r in rows if r.e_roof_kernels is not None and r.e_roof_kernels > 1]
    if above:
        base = base.model_copy(update={"notes": [_above_roof_note(above, len(rows), phase)]})
    return base, rows


def _above_roof_note(above: list[int], total: int, phase: Phase) -> str:
    """E_roof > 1 is faster than physically possible: the scenario, not the GPU, is off."""
    size = "B·S tokens" if phase == "prefill" else "B sequences at context L"
    return (
        f"E_roof > 1 in {len(above)} of {total} layers: measured faster than the roofline, so the pass "
        f"ran less work than the scenario's {size} (e.g. a chunked or partial prefill, fewer sequences) "
        "or the theory counts work the kernels fuse away; set --batch/--prompt/--context to what this "
        "pass ran"
    )


def _scenario(request: LayerTheoryRequest, phase: Phase | None) -> tuple[Scenario | None, str | None]:
    if phase == "prefill" and request.prompt is None:
        return None, "a prefill pass: give --prompt S (prompt tokens per sequence)"
    if phase == "decode" and request.context is None and request.prompt is None:
        return None, "a decode pass: give --context L (KV-cache tokens per sequence) or --prompt S"
    if phase is None:
        return None, None
    prompt = request.prompt if request.prompt is not None else request.context
    context = request.context if request.context is not None else request.prompt
    assert prompt is not None and context is not None
    return Scenario(batch=request.batch, prompt_len=prompt, context_len=context, tp=request.tp), None


def kind_theory(
    model: ModelConfig, scenario: Scenario, phase: Phase, hw: Hardware
) -> dict[tuple[bool, AttentionKind], LayerKindTheory]:
    """One entry per (MoE, sliding) kind that occurs in the model."""
    operators = phase_estimate(model, scenario, phase, hw).operators
    kinds: dict[tuple[bool, AttentionKind], LayerKindTheory] = {}
    for layer in range(model.num_layers):
        key = layer_kind(model, layer)
        if key in kinds:
            kinds[key].layers.append(layer)
            continue
        mine = operators_of_layer(operators, moe=key[0], attention=key[1])
        untimed = [t for t in mine if t.t_roof_s is None]
        roof = None if untimed else sum(t.t_roof_s or 0.0 for t in mine) * 1e9
        kinds[key] = LayerKindTheory(
            kind=kind_label(*key),
            layers=[layer],
            operators=[t.operator.name for t in mine],
            theory_roof_ns=roof,
            theory_ns=None if roof is None else roof * hw.kappa,
            na_reason=f"{untimed[0].operator.name}: {untimed[0].na_reason}" if untimed else None,
        )
    return kinds


def _with_theory(
    row: LayerRow, model: ModelConfig, kinds: dict[tuple[bool, AttentionKind], LayerKindTheory]
) -> LayerRow:
    if row.layer >= model.num_layers:
        return row.model_copy(
            update={"theory_na_reason": f"layer {row.layer} is beyond the model's {model.num_layers} layers"}
        )
    kind = kinds[layer_kind(model, row.layer)]
    if kind.theory_roof_ns is None:
        return row.model_copy(update={"theory_kind": kind.kind, "theory_na_reason": kind.na_reason})
    roof = kind.theory_roof_ns
    return row.model_copy(
        update={
            "theory_kind": kind.kind,
            "theory_roof_ns": roof,
            "theory_ns": kind.theory_ns,
            "e_roof_wall": roof / row.wall_ns if row.wall_ns > 0 else None,
            "e_roof_kernels": roof / row.kernel_time_ns if row.kernel_time_ns > 0 else None,
        }
    )


def with_cluster_theory(clusters: list[LayerTypeCluster], layers: list[LayerRow]) -> list[LayerTypeCluster]:
    """Each layer-type cluster with its layers' mean theory time and mean E_roof (None when untimed)."""
    out: list[LayerTypeCluster] = []
    for cluster in clusters:
        group = [r for r in layers if r.layer_type == cluster.layer_type and r.theory_roof_ns is not None]
        if not group:
            out.append(cluster)
            continue
        walls = [r.e_roof_wall for r in group if r.e_roof_wall is not None]
        kernel = [r.e_roof_kernels for r in group if r.e_roof_kernels is not None]
        out.append(
            cluster.model_copy(
                update={
                    "avg_theory_roof_ns": sum(r.theory_roof_ns or 0.0 for r in group) / len(group),
                    "avg_e_roof_wall": sum(walls) / len(walls) if walls else None,
                    "avg_e_roof_kernels": sum(kernel) / len(kernel) if kernel else None,
                }
            )
        )
    return out


def check_request_inputs(model_given: bool, batch: int | None, theory_flags: dict[str, object]) -> None:
    """InputError for theory options that cannot take effect (no model, or no --batch)."""
    given = [flag for flag, value in theory_flags.items() if value is not None]
    if batch is not None and not model_given:
        raise InputError(None, "--batch needs --model NAME or --config PATH")
    if given and batch is None:
        raise InputError(
            None, f"{', '.join(given)} needs --batch B (and --model/--config) for per-layer theory"
        )
