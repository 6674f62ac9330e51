"""The typed requests of :mod:`infersight.api`: one model per command, shared by every front end.

Why one model per command: the CLI options, the MCP tool parameters and a notebook call are three
spellings of the same request. Declaring its fields (names, defaults, bounds) once here means the
front ends cannot drift apart — the MCP tools are generated from these models, and the CLI builds
them from its options — and a bad value is refused with the same message everywhere.

Field names follow the CLI's long options (``--link-bandwidth`` -> ``link_bandwidth``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infersight.errors import InputError
from infersight.validate import MAX_LAYERS

__all__ = [
    "AnalyzeRequest",
    "ApiRequest",
    "DiffRequest",
    "ExportRequest",
    "FingerprintArgs",
    "HostRequest",
    "KbLookupRequest",
    "KbRecordRequest",
    "LayersRequest",
    "ModelArgs",
    "NarrateRequest",
    "NcuPlanRequest",
    "NcuRequest",
    "OverlapRequest",
    "ProfileRequest",
    "RanksRequest",
    "ReportRequest",
    "RooflineRequest",
    "ScenarioArgs",
    "TheoryArgs",
    "VerifyRequest",
]

TracePaths = list[Path]


class ApiRequest(BaseModel):
    """Base of every request: unknown fields refused (a typo must not be silently ignored).

    ``defer_build``: a command builds the validator of its own request only, when it first makes
    one, instead of every import building all twenty (~25 ms of each start).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    @classmethod
    def of(cls, **fields: Any) -> Self:
        """Build and check a request; a bad field is an :class:`InputError` (one line, exit 2)."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            raise InputError(None, _one_line(cls, exc)) from None


_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


def _one_line(kind: type[ApiRequest], exc: ValidationError) -> str:
    """The first problem of a validation error as one line: ``top must be >= 1, got 0``."""
    first = exc.errors()[0]
    # named like the CLI option (the spelling of every other error): link_bandwidth -> --link-bandwidth
    where = ".".join(f"--{p}".replace("_", "-") if isinstance(p, str) else str(p) for p in first["loc"])
    where = where or kind.__name__
    op = _BOUNDS.get(first["type"])
    if op is not None and first.get("ctx"):
        limit = next(iter(first["ctx"].values()))
        return f"{where} must be {op} {limit}, got {first['input']}"
    return f"{where}: {first['msg']}"


class ModelArgs(ApiRequest):
    """The model and GPU of a theory estimate (``--model``/``--config``, ``--gpu`` and overrides).

    The GPU figures are checked (finite, > 0) by the theory engine's ``TheoryOptions``, whose
    messages name the option; they are not bounded twice here.
    """

    model: str | None = Field(default=None, description="A built-in model, e.g. llama-3-8b.")
    config: Path | None = Field(default=None, description="A HuggingFace config.json (instead of model).")
    gpu: str | None = Field(default=None, description="GPU from the spec table, e.g. H100-SXM.")
    dtype: str | None = Field(default=None, description="Compute dtype: fp32, tf32, fp16, bf16, fp8, int8.")
    peak_tflops: float | None = Field(default=None, description="Dense matmul peak override, TFLOP/s.")
    bandwidth: float | None = Field(default=None, description="Memory bandwidth override, GB/s.")

    @property
    def has_model(self) -> bool:
        """Whether a model was named (the theory part applies)."""
        return self.model is not None or self.config is not None


class ScenarioArgs(ModelArgs):
    """A model plus the serving scenario (batch, prompt, context, TP) — optional as a whole."""

    batch: int | None = Field(default=None, ge=1, description="Sequences per pass.")
    prompt: int | None = Field(default=None, ge=1, description="Prompt tokens per sequence.")
    context: int | None = Field(default=None, ge=1, description="KV-cache tokens at the decode step.")
    tp: int = Field(default=1, ge=1, description="Tensor-parallel degree.")


class TheoryArgs(ScenarioArgs):
    """The theory part of ``analyze``/``report``: scenario plus the user's measured figures."""

    measured_ttft: float | None = Field(default=None, ge=0, description="Measured TTFT, ms.")
    measured_tpot: float | None = Field(default=None, ge=0, description="Measured TPOT, ms.")
    measured_tps: float | None = Field(default=None, ge=0, description="Measured decode tokens/s.")


class AnalyzeRequest(TheoryArgs):
    """``analyze``: global profile + rule findings (+ measured vs theory with a model)."""

    traces: TracePaths = Field(description="Trace files or directories of per-rank files.")
    window_nvtx: str | None = Field(default=None, description="Regex cutting the window to NVTX ranges.")
    cpu_ops_as_kernels: bool = Field(default=False, description="CPU-only captures: CPU ops as kernels.")
    top: int = Field(default=15, ge=1, description="Rows of the kernel table shown (the rest counted).")
    executor: str = Field(default="process", description="Where per-rank files are read: local, process, ...")
    executor_address: str | None = Field(default=None, description="Cluster address (dask/ray).")


class HostRequest(ApiRequest):
    """``host``: is host overhead the bottleneck (M1-M5), iterations, gap drill-down, advice."""

    traces: TracePaths = Field(description="Trace files; several = ranks.")
    host_prep_range: str | None = Field(default=None, description="Regex of host input-preparation ranges.")
    thresholds: Path | None = Field(default=None, description="TOML overriding data/host_thresholds.toml.")
    phase_regex: list[str] = Field(default_factory=list, description="PHASE=REGEX range names of a phase.")


class DiffRequest(ApiRequest):
    """``diff``: what changed per step between two traces of one workload."""

    baseline: Path = Field(description="Baseline trace (one rank).")
    target: Path = Field(description="Target trace of the same workload.")
    labels: str | None = Field(default=None, description="Names of the two runs, e.g. before,after.")
    thresholds: Path | None = Field(default=None, description="TOML overriding data/host_thresholds.toml.")


class LayersRequest(ScenarioArgs):
    """``layers``: forward passes and per-layer tables of one rank's trace (+ per-layer theory)."""

    trace: Path = Field(description="One rank's trace.")
    num_layers: int | None = Field(default=None, ge=1, le=MAX_LAYERS, description="Layers per pass.")
    profile: str | None = Field(default=None, description="Model profile from data/model_profiles.toml.")
    anchor_kernel: str | None = Field(default=None, description="Regex of a kernel run once per layer.")
    device: int | None = Field(default=None, description="GPU (default: the one with most kernels).")
    fwd_pass: int | None = Field(default=None, ge=0, description="Pass to tabulate.")
    layer: int | None = Field(default=None, ge=0, description="Layer for the compute flow / diff.")
    compare_layer: int | None = Field(default=None, ge=0, description="Diff layer against this one.")
    cpu_ops_as_kernels: bool = Field(default=False, description="CPU-only captures: CPU ops as kernels.")
    link_bandwidth: float | None = Field(default=None, description="GPU-GPU bandwidth, GB/s.")
    phase: str | None = Field(default=None, description="Theory phase of the pass: prefill or decode.")


class OverlapRequest(ApiRequest):
    """``overlap``: copy/compute and communication/computation overlap."""

    traces: TracePaths = Field(description="Trace files or directories of per-rank files.")
    window_nvtx: str | None = Field(default=None, description="Regex cutting the window to NVTX ranges.")
    per_range: str | None = Field(default=None, description="Regex: load vs compute per matching range.")


class RanksRequest(ApiRequest):
    """``ranks``: the multi-rank view (per-rank table, stragglers, collective wait)."""

    traces: TracePaths = Field(description="A directory of per-rank traces or one multi-GPU export.")


class RooflineRequest(ModelArgs):
    """``roofline``: per-operator roofline of a model/GPU/scenario (with traces: measured vs theory).

    ``batch`` and ``prompt`` are required everywhere: a silent default scenario would give
    numbers for a run the user never made.
    """

    batch: int = Field(ge=1, description="Sequences per pass.")
    prompt: int = Field(ge=1, description="Prompt tokens per sequence.")
    context: int | None = Field(default=None, ge=1, description="KV-cache tokens at the decode step.")
    tp: int = Field(default=1, ge=1, description="Tensor-parallel degree.")
    link_bandwidth: float | None = Field(default=None, description="GPU-GPU bandwidth, GB/s.")
    attention: str = Field(default="flash", description="flash (fused) or unfused (qk/softmax/sv).")
    kappa: float = Field(default=1.0, ge=1.0, le=2.0, description="κ: T_theory = T_roof·κ (an extra margin).")
    mem_efficiency: float | None = Field(
        default=None, ge=0.05, le=1.0, description="η_m: B_eff = bandwidth × ETA (None: calibrated figure)."
    )
    measured_ttft: float | None = Field(default=None, ge=0, description="Measured TTFT, ms.")
    measured_tpot: float | None = Field(default=None, ge=0, description="Measured TPOT, ms.")
    measured_tps: float | None = Field(default=None, ge=0, description="Measured decode tokens/s.")
    retest_delta: float = Field(default=0.2, ge=0, description="Flag measured vs theory beyond this.")
    traces: TracePaths = Field(default_factory=list, description="Traces: measured vs theory, focus set.")


class NcuRequest(ScenarioArgs):
    """``ncu``: Nsight Compute exports — per-kernel bound, roofline distance, findings."""

    exports: list[Path] = Field(description="ncu CSV exports or .ncu-rep files.")
    traces: TracePaths = Field(default_factory=list, description="Traces of the same run (time shares).")


class NcuPlanRequest(ScenarioArgs):
    """``ncu_plan``: the ncu command lines that profile the focus kernels."""

    traces: TracePaths = Field(description="Trace(s) of the run to profile.")
    top: int = Field(default=10, ge=1, description="Focus-set size (Top-K by GPU time).")
    launch_count: int = Field(default=5, ge=1, description="Steady-state launches per kernel.")
    app: str = Field(default="<your inference command>", description="Your inference command.")
    output_prefix: str = Field(default="ncu_focus", description="CSV files are PREFIX_01.csv, ...")


class ReportRequest(ScenarioArgs):
    """``report``: the self-contained HTML report's data (timeline, ranking, roofline, layers)."""

    traces: TracePaths = Field(description="Trace files or directories.")
    output: Path = Field(default=Path("infersight-report.html"), description="Where the HTML goes.")
    window_nvtx: str | None = Field(default=None, description="Regex cutting the window to NVTX ranges.")
    top: int = Field(default=15, ge=1, description="Kernels in the ranking.")
    no_layers: bool = Field(default=False, description="Skip the per-layer segmentation.")
    cpu_ops_as_kernels: bool = Field(default=False, description="CPU-only captures: CPU ops as kernels.")


class ExportRequest(ApiRequest):
    """``export``: the normalised trace model as columnar JSON."""

    traces: TracePaths = Field(description="Trace files or directories.")
    output: Path | None = Field(default=None, description="Where to write the JSON (.json).")
    cpu_ops_as_kernels: bool = Field(default=False, description="CPU-only captures: CPU ops as kernels.")
    top: int = Field(default=1000, ge=1, description="Rows per table returned inline (without output).")


class FingerprintArgs(ApiRequest):
    """Fingerprint fields a user may give instead of (or over) a report's."""

    gpu: str | None = Field(default=None, description="GPU name.")
    model: str | None = Field(default=None, description="Model name.")
    dtype: str | None = Field(default=None, description="Compute dtype, e.g. bf16.")
    tp: int | None = Field(default=None, ge=1, description="Tensor-parallel degree.")
    ep: int | None = Field(default=None, ge=1, description="Expert-parallel degree.")
    engine: str | None = Field(default=None, description="Inference engine, e.g. vllm.")
    engine_version: str | None = Field(default=None, description="Engine version.")
    torch: str | None = Field(default=None, description="torch version.")
    cuda: str | None = Field(default=None, description="CUDA version.")
    driver: str | None = Field(default=None, description="NVIDIA driver version.")
    batch: int | None = Field(default=None, ge=1, description="Batch size (shape vector).")
    prompt: int | None = Field(default=None, ge=1, description="Prompt length (shape vector).")
    context: int | None = Field(default=None, ge=1, description="Decode context length (shape vector).")

    def overrides(self) -> dict[str, Any]:
        """The given fields under the fingerprint's names (``prompt`` -> ``prompt_len``)."""
        renames = {"prompt": "prompt_len", "context": "context_len"}
        fields = FingerprintArgs.model_fields
        return {renames.get(k, k): v for k in fields if (v := getattr(self, k)) is not None}


class KbLookupRequest(FingerprintArgs):
    """``kb_lookup``: stored runs most similar to a fingerprint, best first."""

    kb: str | None = Field(default=None, description="SQLite path or SQLAlchemy URL ($INFERSIGHT_KB).")
    report: Path | None = Field(default=None, description="Take the fingerprint from a report JSON.")
    top: int = Field(default=5, ge=1, description="Matches to return.")
    min_similarity: float = Field(default=0.0, ge=0.0, le=1.0, description="Lowest similarity kept.")


class KbRecordRequest(FingerprintArgs):
    """``kb_record``: store analyze --json reports (a new version only when the content changed)."""

    reports: list[Path] = Field(min_length=1, description="analyze --json reports.")
    kb: str | None = Field(default=None, description="SQLite path or SQLAlchemy URL ($INFERSIGHT_KB).")
    label: str | None = Field(default=None, description="Run label (default: trace file names).")


class VerifyRequest(FingerprintArgs):
    """``verify``: A/B of two trace sets or command lines, gain with a 95% CI; KB write-back."""

    baseline: str = Field(description="Command line, or trace file(s).")
    candidate: str = Field(description="Command line, or trace file(s).")
    repeats: int = Field(default=5, ge=1, description="Measured runs per side (commands).")
    warmup: int = Field(default=1, ge=0, description="Unmeasured runs first (commands).")
    timeout_s: float | None = Field(default=None, gt=0, description="Per-run time limit, s.")
    recommendation: str | None = Field(default=None, description="Finding type the change implements.")
    env_report: Path | None = Field(default=None, description="Environment fingerprint from a report.")
    kb: str | None = Field(default=None, description="SQLite path or SQLAlchemy URL ($INFERSIGHT_KB).")
    use_kb: bool = Field(default=True, description="Read and write the knowledge base.")
    allow_env_change: bool = Field(default=False, description="Compare sides from other environments.")


class NarrateRequest(ApiRequest):
    """``narrate``: LLM prose for a report's findings, every claim checked against them."""

    report: Path = Field(description="An analyze --json report.")
    llm_url: str = Field(description="OpenAI-compatible base URL.")
    llm_model: str = Field(description="Model name at that URL.")


class ProfileRequest(ApiRequest):
    """``profile``: run a command under nsys, the torch profiler or ncu with the flags the analyses need."""

    tool: Literal["nsys", "torch", "ncu"] = Field(description="Profiler: nsys, torch or ncu.")
    command: list[str] = Field(default_factory=list, description="The command to profile, one word each.")
    output: Path = Field(
        default=Path("infersight_profile"), description="nsys: report base name; torch: dir."
    )
    plan: Path | None = Field(default=None, description="ncu: an `ncu-plan --json` file.")
    capture_range: str | None = Field(default=None, description="nsys: none or cudaProfilerApi.")
    delay: float | None = Field(default=None, description="nsys: start capturing after this many seconds.")
    duration: float | None = Field(default=None, description="nsys: capture for this many seconds.")
    dry_run: bool = Field(default=False, description="Give the command line(s), run nothing.")
