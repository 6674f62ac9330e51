"""One check for every numeric option of every command: finite floats, integers of sane size.

Why here and not per option: a range such as ``min=1, max=2`` lets ``nan`` through (every
comparison with nan is false) and a plain ``float`` option takes ``inf``; ``--link-bandwidth nan``
once made a TP all-reduce take 4.3 ns and ``--bandwidth inf`` printed "memory inf PB/s". Chaining
a check onto the callback of every parameter of the built command (the callback runs after the
value is converted, for options and arguments alike) means a new option cannot forget it. Domain
bounds (a bandwidth > 0, a batch <= ``validate.MAX_BATCH``) live in the request models
(``TheoryOptions``, ``TheoryRequest``, ``Scenario``) so the API and the MCP tools refuse the same
values.
"""

from __future__ import annotations

import functools
import inspect
import math
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from infersight.ingest.formats import FORMATS_HELP
from infersight.validate import MAX_EXACT_INT

if TYPE_CHECKING:
    from infersight.api.requests import ApiRequest

R = TypeVar("R", bound="ApiRequest")
F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "FINGERPRINT_OPTIONS",
    "MEASURED_OPTIONS",
    "MODEL_OPTIONS",
    "SCENARIO_OPTIONS",
    "check_number",
    "guard_numeric_options",
    "request_of",
    "with_options",
]

_GUARDED = "_infersight_numbers_guarded"


def check_number(value: Any) -> str | None:
    """Why a converted option value is refused (nan/inf, an int beyond 2^53), or None."""
    if isinstance(value, list | tuple):
        return next((problem for item in value if (problem := check_number(item))), None)
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_EXACT_INT:
        return f"{value} is larger than {MAX_EXACT_INT:,}"
    return None


def _guarded(callback: Callable[..., Any] | None) -> Callable[..., Any]:
    def check_then_call(ctx: Any, param: Any, value: Any) -> Any:
        problem = check_number(value)
        if problem is not None:
            raise typer.BadParameter(problem, ctx=ctx, param=param)  # exit 2: "Invalid value for '--x'"
        return callback(ctx, param, value) if callback is not None else value

    setattr(check_then_call, _GUARDED, True)
    return check_then_call


def guard_numeric_options(command: Any) -> Any:
    """Chain :func:`check_number` onto every parameter of a click command and its sub-commands."""
    for param in command.params:
        if not getattr(param.callback, _GUARDED, False):
            param.callback = _guarded(param.callback)
    for sub in getattr(command, "commands", {}).values():  # a group's sub-commands
        guard_numeric_options(sub)
    return command


# ---------------------------------------------------------------- shared option types
# Every command that takes these options imports them from here: one help text, one bound, one
# metavar per option across analyze, report, layers, ncu, ncu-plan, roofline, kb and verify.
# The fields they fill are declared in :mod:`infersight.api.requests`.

TracesArg = Annotated[
    list[Path],
    typer.Argument(
        help=f"Trace files or directories of per-rank files: {FORMATS_HELP}.",
        show_default=False,
        metavar="TRACE",
    ),
]
JsonOpt = Annotated[
    Path | None, typer.Option("--json", metavar="OUT", help="Also write the JSON result to OUT.")
]
WindowOpt = Annotated[
    str | None,
    typer.Option(
        "--window-nvtx",
        metavar="REGEX",
        help="Cut the analysis window to NVTX/annotation ranges whose name matches REGEX.",
    ),
]
CpuOpsOpt = Annotated[
    bool,
    typer.Option(
        "--cpu-ops-as-kernels",
        help="For CPU-only PyTorch captures: analyse the dominant CPU operators (self time >= half"
        " their duration, outermost first) as if they were kernels.",
    ),
]
ThresholdsOpt = Annotated[
    Path | None,
    typer.Option("--thresholds", metavar="FILE", help="TOML file overriding data/host_thresholds.toml."),
]

# theory: model, GPU and scenario
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", metavar="NAME", help="A built-in model (e.g. llama-3-8b, mixtral-8x7b, deepseek-v3)."
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", metavar="PATH", help="A HuggingFace config.json (instead of --model)."),
]
GpuOpt = Annotated[
    str | None,
    typer.Option("--gpu", metavar="NAME", help="GPU from the spec table (e.g. H100-SXM, A100-80GB)."),
]
PeakOpt = Annotated[
    float | None,
    typer.Option(
        "--peak-tflops", metavar="X", help="Dense matmul peak of the compute dtype, TFLOP/s (override)."
    ),
]
BandwidthOpt = Annotated[
    float | None, typer.Option("--bandwidth", metavar="GB/S", help="Memory bandwidth, GB/s (override).")
]
LinkOpt = Annotated[
    float | None,
    typer.Option(
        "--link-bandwidth",
        metavar="GB/S",
        help="Per-direction GPU-to-GPU bandwidth for TP all-reduces (default: the GPU's NVLink/PCIe figure).",
    ),
]
BatchOpt = Annotated[int, typer.Option("--batch", metavar="B", min=1, help="Sequences per pass.")]
PromptOpt = Annotated[
    int, typer.Option("--prompt", metavar="S", min=1, help="Prompt tokens per sequence (prefill).")
]
OptionalBatchOpt = Annotated[
    int | None, typer.Option("--batch", metavar="B", min=1, help="Theory: sequences per pass (with --model).")
]
OptionalPromptOpt = Annotated[
    int | None, typer.Option("--prompt", metavar="S", min=1, help="Theory: prompt tokens per sequence.")
]
ContextOpt = Annotated[
    int | None,
    typer.Option(
        "--context", metavar="L", min=1, help="KV-cache tokens per sequence at the decode step (default S)."
    ),
]
TpOpt = Annotated[int, typer.Option("--tp", metavar="N", min=1, help="Tensor-parallel degree.")]
DtypeOpt = Annotated[
    str | None,
    typer.Option(
        "--dtype", metavar="D", help="Compute dtype and weight width: fp32, tf32, fp16, bf16, fp8, int8."
    ),
]
MeasuredTtftOpt = Annotated[
    float | None, typer.Option("--measured-ttft", metavar="MS", min=0.0, help="Measured TTFT, ms.")
]
MeasuredTpotOpt = Annotated[
    float | None, typer.Option("--measured-tpot", metavar="MS", min=0.0, help="Measured TPOT, ms.")
]
MeasuredTpsOpt = Annotated[
    float | None,
    typer.Option("--measured-tps", metavar="X", min=0.0, help="Measured decode tokens/s (whole batch)."),
]

# knowledge base: the fingerprint of a run
KbOpt = Annotated[
    str | None,
    typer.Option(
        "--kb",
        metavar="URL",
        help="SQLite path or SQLAlchemy URL of the knowledge base (default: $INFERSIGHT_KB).",
    ),
]
FpGpuOpt = Annotated[str | None, typer.Option("--gpu", help="GPU name (fingerprint).")]
FpModelOpt = Annotated[str | None, typer.Option("--model", help="Model name (fingerprint).")]
FpDtypeOpt = Annotated[str | None, typer.Option("--dtype", help="Compute dtype, e.g. bf16 (fingerprint).")]
FpTpOpt = Annotated[int | None, typer.Option("--tp", min=1, help="Tensor-parallel degree.")]
FpEpOpt = Annotated[int | None, typer.Option("--ep", min=1, help="Expert-parallel degree.")]
FpEngineOpt = Annotated[str | None, typer.Option("--engine", help="Inference engine, e.g. vllm, sglang.")]
FpEngineVersionOpt = Annotated[str | None, typer.Option("--engine-version", help="Engine version.")]
FpTorchOpt = Annotated[str | None, typer.Option("--torch", help="torch version.")]
FpCudaOpt = Annotated[str | None, typer.Option("--cuda", help="CUDA version.")]
FpDriverOpt = Annotated[str | None, typer.Option("--driver", help="NVIDIA driver version.")]
FpBatchOpt = Annotated[int | None, typer.Option("--batch", min=1, help="Batch size (shape vector).")]
FpPromptOpt = Annotated[int | None, typer.Option("--prompt", min=1, help="Prompt length (shape vector).")]
FpContextOpt = Annotated[
    int | None, typer.Option("--context", min=1, help="Decode context length (shape vector).")
]


# ---------------------------------------------------------------- shared option lists
# Groups of options several commands take together, in the order their help lists them; each
# mirrors a request model of infersight.api.requests (ModelArgs, ScenarioArgs, TheoryArgs,
# FingerprintArgs). A command adds a group with @with_options and receives its values in **options.

OptionGroup = tuple[inspect.Parameter, ...]


def _group(**options: tuple[Any, Any]) -> OptionGroup:
    """Keyword-only parameters ``name: annotation = default`` for :func:`with_options`."""
    return tuple(
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
        for name, (annotation, default) in options.items()
    )


MODEL_OPTIONS = _group(
    model=(ModelOpt, None),
    config=(ConfigOpt, None),
    gpu=(GpuOpt, None),
    peak_tflops=(PeakOpt, None),
    bandwidth=(BandwidthOpt, None),
    dtype=(DtypeOpt, None),
)
SCENARIO_OPTIONS = _group(
    batch=(OptionalBatchOpt, None),
    prompt=(OptionalPromptOpt, None),
    context=(ContextOpt, None),
    tp=(TpOpt, 1),
)
MEASURED_OPTIONS = _group(
    measured_ttft=(MeasuredTtftOpt, None),
    measured_tpot=(MeasuredTpotOpt, None),
    measured_tps=(MeasuredTpsOpt, None),
)
FINGERPRINT_OPTIONS = _group(
    gpu=(FpGpuOpt, None),
    model=(FpModelOpt, None),
    dtype=(FpDtypeOpt, None),
    tp=(FpTpOpt, None),
    ep=(FpEpOpt, None),
    engine=(FpEngineOpt, None),
    engine_version=(FpEngineVersionOpt, None),
    torch=(FpTorchOpt, None),
    cuda=(FpCudaOpt, None),
    driver=(FpDriverOpt, None),
    batch=(FpBatchOpt, None),
    prompt=(FpPromptOpt, None),
    context=(FpContextOpt, None),
)


def with_options(*groups: OptionGroup) -> Callable[[F], F]:
    """Add option groups to a command: typer sees them in its signature (after the command's own
    parameters), the command receives their values in its ``**options``.

    Why: a list such as the thirteen fingerprint options was written out in every command taking
    it, and one copy could drift (a bound, a default). The annotations are resolved here, in the
    command's module, because typer reads them from the wrapper.
    """

    def decorate(command: F) -> F:
        hints = typing.get_type_hints(command, include_extras=True)
        signature = inspect.signature(command)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in signature.parameters.values()
            if p.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        added = [p for group in groups for p in group]
        clash = sorted({p.name for p in own} & {p.name for p in added})
        if clash or len({p.name for p in added}) != len(added):
            raise TypeError(f"{command.__name__}: options given twice: {clash or 'within the groups'}")

        @functools.wraps(command)
        def with_groups(*args: Any, **kwargs: Any) -> Any:
            return command(*args, **kwargs)

        parameters = [*own, *added]
        returns = hints.get("return", signature.return_annotation)
        with_groups.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=parameters, return_annotation=returns
        )
        with_groups.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": returns}
        return typing.cast(F, with_groups)

    return decorate


def request_of(kind: type[R], values: dict[str, Any], **renamed: Any) -> R:
    """The API request of a command from its parameters (``locals()``): every parameter named like a
    request field fills it; ``renamed`` gives the fields whose option is spelt otherwise.

    Why: the field list is then written once (in the request model), not again per command, and a
    new field reaches every front end whose option carries its name.
    """
    fields = {name: values[name] for name in kind.model_fields if name in values}
    return kind.of(**(fields | renamed))
