"""Typed results of the layer / forward-pass view (methodology §5). Analyses return these;
renderers read them.

Times are integer nanoseconds on the trace clock (``*_ns``); shares are fractions in [0, 1].
``perfetto_*_s`` are seconds relative to the trace's first event, which is what the Perfetto UI
shows on its time axis, so a user can type them into its search box / jump to them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

LAYERS_SCHEMA_VERSION = "1.2"  # 1.1: optional per-layer theory fields; 1.2: pass_structure

PassState = Literal["cold-start", "steady-state", "single", "truncated"]


class PerfettoRange(BaseModel):
    """A time range as the Perfetto UI shows it: seconds since the trace's first event."""

    start_s: float
    end_s: float


class AnchorChoice(BaseModel):
    """Which kernel marks the layers, and why (printed so a wrong choice is easy to spot)."""

    profile: str = Field(description="model profile used (data/model_profiles.toml)")
    source: Literal["--anchor-kernel", "profile", "auto"]
    pattern: str = Field(description="regular expression over full kernel names")
    names: list[str] = Field(description="simplified names of the kernels the pattern matched")
    occurrences: int = Field(description="anchor events on the device (consecutive matches count once)")
    anchors_per_layer: int
    boundary: Literal["attention_walk_back", "anchor_start"] = Field(
        description="attention_walk_back: a layer opens at its input norm, found by walking back from its "
        "attention kernel over the q/k/v projection; anchor_start: a layer opens at its anchor"
    )
    period_kernels: int | None = Field(default=None, description="modal number of kernels between anchors")
    period_stability: float | None = Field(
        default=None, description="share of anchor intervals equal to the mode"
    )
    reason: str


class PassStructure(BaseModel):
    """How many layers a forward pass has, which evidence decided it, and whether it is plausible."""

    layers_per_pass: int | None = Field(
        description="layers of a whole pass; None when the evidence gives no plausible count"
    )
    method: Literal[
        "config", "--num-layers", "boundary-kernels", "step-ranges", "idle-gaps", "single-pass"
    ] = Field(
        description="what decided: the model config, --num-layers, anchor intervals with extra kernels "
        "(final norm / lm_head / sampling / embedding), the engine's step annotation ranges, long idle "
        "gaps between steps, or no boundary at all"
    )
    plausible: bool = Field(description="False: the split is shown but is not a layer count to rely on")
    reason: str
    layer_type_period: int | None = Field(
        default=None,
        description="period (in layers) of the repeating layer pattern, e.g. 2 for alternating "
        "sliding-window / full attention; None with a config",
    )
    problems: list[str] = Field(default_factory=list, description="why the split is implausible")
    lower_bound: bool = Field(
        default=False,
        description="True: the pass that gave the count shows no prologue / epilogue kernels at the trace's "
        "start or end, so the trace may cut it and layers_per_pass is a lower bound",
    )


class PassRow(BaseModel):
    """One forward pass (a prefill or decode step) found in the trace."""

    index: int
    start_ns: int
    end_ns: int
    duration_ns: int
    layers_start_ns: int = Field(description="start of the first layer (after embedding / prologue)")
    layers_end_ns: int = Field(description="end of the last layer (before final norm / lm_head)")
    layers_ns: int = Field(description="sum of the layer walls = layers_end_ns - layers_start_ns")
    prologue_ns: int
    epilogue_ns: int
    layer_count: int
    kernel_count: int
    avg_layer_ns: int | None
    first_layer_ns: int | None
    shape: int = Field(description="passes with the same layer count and kernel mix share a shape id")
    state: PassState
    perfetto: PerfettoRange


class LayerRow(BaseModel):
    """One layer of the selected pass."""

    pass_index: int
    layer: int
    layer_type: str
    start_ns: int
    end_ns: int
    wall_ns: int
    kernel_time_ns: int = Field(description="sum of the durations of the kernels that start in the layer")
    kernel_count: int
    allreduce_count: int
    category_shares: dict[str, float] = Field(description="category -> share of kernel_time_ns")
    perfetto: PerfettoRange
    theory_kind: str | None = Field(
        default=None,
        description="theory layer kind (dense / MoE, +sliding) from the config; None without --batch",
    )
    theory_roof_ns: float | None = Field(
        default=None,
        description="Σ roofline time (no κ) of the theory operators of this layer for the pass's phase; "
        "None without --batch or when not computable (see LayerReport.theory)",
    )
    theory_ns: float | None = Field(default=None, description="theory_roof_ns · κ (T_theory of the layer)")
    e_roof_wall: float | None = Field(
        default=None, description="theory_roof_ns / wall_ns (1 = at the roofline)"
    )
    e_roof_kernels: float | None = Field(
        default=None,
        description="theory_roof_ns / kernel_time_ns (the measured time theory/measured.py uses)",
    )
    theory_na_reason: str | None = None


class LayerTypeCluster(BaseModel):
    """Statistics over the layers of one type (dense / MoE / sliding ...) in the selected pass."""

    layer_type: str
    count: int
    avg_wall_ns: int
    avg_kernel_time_ns: int
    share_of_layers: float = Field(description="share of the pass's summed layer wall")
    category_shares: dict[str, float]
    avg_theory_roof_ns: float | None = Field(
        default=None, description="mean theory_roof_ns of the type's layers"
    )
    avg_e_roof_wall: float | None = Field(default=None, description="mean of the layers' e_roof_wall")
    avg_e_roof_kernels: float | None = Field(default=None, description="mean of the layers' e_roof_kernels")


class FlowRow(BaseModel):
    """One kernel of a layer's compute flow, in execution order."""

    rank: int = Field(description="1 = the layer's longest kernel")
    category: str
    name: str = Field(description="simplified kernel name")
    duration_ns: int
    share: float = Field(description="share of the layer's kernel time")
    offset_ns: int = Field(description="kernel start minus layer start")
    stream: int
    input_dims: str | None = None


class ComputeFlow(BaseModel):
    """The kernels of one layer."""

    pass_index: int
    layer: int
    layer_type: str
    wall_ns: int
    kernel_time_ns: int
    rows: list[FlowRow]
    input_dims_na_reason: str | None = None


class DiffRow(BaseModel):
    """A kernel (simplified name + occurrence within the layer) present in both layers."""

    name: str
    occurrence: int
    a_ns: int
    b_ns: int
    delta_ns: int


class LayerDiff(BaseModel):
    """What differs between two layers of the selected pass."""

    layer_a: int
    layer_b: int
    type_a: str
    type_b: str
    wall_a_ns: int
    wall_b_ns: int
    only_in_a: list[FlowRow]
    only_in_b: list[FlowRow]
    shared: list[DiffRow] = Field(description="largest |delta| first")


class LayerKindTheory(BaseModel):
    """The theory of one layer kind: the operators one such layer runs and their summed time."""

    kind: str = Field(description="dense / MoE, with +sliding for sliding-window attention layers")
    layers: list[int] = Field(description="0-based layer numbers of this kind in the model")
    operators: list[str] = Field(description="theory operators (theory/operators.py) one such layer runs")
    theory_roof_ns: float | None = Field(description="Σ per-occurrence roofline time, no κ")
    theory_ns: float | None = Field(description="theory_roof_ns · κ")
    na_reason: str | None = None


class LayerTheory(BaseModel):
    """The scenario the per-layer theory columns were computed for (present only with --batch)."""

    phase: Literal["prefill", "decode"] | None = Field(description="phase of the selected pass")
    phase_reason: str
    model: str
    gpu: str
    gpu_source: str = Field(description="--gpu, or the trace's device properties")
    compute_dtype: str
    batch: int
    prompt_len: int | None
    context_len: int | None
    tp: int
    kappa: float
    definition: str = Field(description="how E_roof is defined")
    kinds: list[LayerKindTheory] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="e.g. why E_roof > 1 can happen")
    na_reason: str | None = Field(
        default=None, description="why the theory columns are missing, when they are"
    )


class LayerReport(BaseModel):
    """Everything ``infersight layers`` shows for one device of one trace."""

    schema_version: str = LAYERS_SCHEMA_VERSION
    trace: str
    device: int
    model: str | None
    layers_expected: int | None = Field(description="from the model config (or --num-layers)")
    layers_expected_source: str | None
    anchor: AnchorChoice
    pass_structure: PassStructure | None = Field(
        default=None, description="layers per pass and the evidence for it (None when no anchor occurs)"
    )
    passes: list[PassRow]
    selected_pass: int | None
    selected_reason: str
    layers: list[LayerRow] = Field(description="layers of the selected pass")
    clusters: list[LayerTypeCluster]
    verdict: str
    flow: ComputeFlow | None = None
    diff: LayerDiff | None = None
    theory: LayerTheory | None = Field(
        default=None,
        description="per-layer theory scenario (with --batch and --model/--config); None otherwise",
    )
    theory_hint: str | None = Field(default=None, description="how to enable the per-layer theory columns")
    warnings: list[str] = Field(default_factory=list)
