"""One call from user options to a :class:`TheoryReport` (what the CLI and the API use)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, model_validator

from infersight.errors import InputError
from infersight.theory.estimates import DEFAULT_RETEST_DELTA, estimate, measured_vs_theory_findings
from infersight.theory.inputs import TheoryOptions, gpu_memory_gb, load_model, resolve_hardware
from infersight.theory.measured import DEFAULT_TAU_E, DEFAULT_TOP_K, focus_set, measured_vs_theory
from infersight.theory.memory import memory_fit
from infersight.theory.operators import Scenario
from infersight.theory.report import TheoryReport
from infersight.theory.scenario_check import ScenarioCheck, resolve_scenario, scenario_notes
from infersight.validate import check_scenario, finite_float, optional_float

if TYPE_CHECKING:
    from infersight.model import Trace

ATTENTION_FORMS = ("flash", "unfused")


class TheoryRequest(BaseModel):
    """What ``analyze --model ...`` asks of the theory engine: model/GPU options and the scenario."""

    options: TheoryOptions
    batch: int | None = Field(default=None, ge=1, description="None: read from the trace")
    prompt: int | None = Field(default=None, ge=1, description="None: read from the trace")
    context: int | None = None
    tp: int = 1
    attention: str = "flash"
    measured_ttft_ms: float | None = None
    measured_tpot_ms: float | None = None
    measured_tps: float | None = None
    retest_delta: float = DEFAULT_RETEST_DELTA

    @model_validator(mode="after")
    def _in_range(self) -> TheoryRequest:
        """Front ends other than the CLI (MCP tools, the API) get the same refusals as its options."""
        check_scenario(self.batch or 1, self.prompt or 1, self.context, self.tp)
        optional_float(self.measured_ttft_ms, "--measured-ttft", minimum=0.0)
        optional_float(self.measured_tpot_ms, "--measured-tpot", minimum=0.0)
        optional_float(self.measured_tps, "--measured-tps", minimum=0.0)
        finite_float(self.retest_delta, "--retest-delta", minimum=0.0)
        return self


def theory_for_traces(
    request: TheoryRequest, traces: Sequence[Trace], *, window_nvtx: str | None = None
) -> TheoryReport:
    """:func:`theory_report` for a request, with measured-vs-theory over ``traces``.

    Batch, prompt and context the request leaves out are read from the traces
    (:mod:`infersight.analyses.scenario`); given ones that the trace contradicts are flagged in
    the measured-vs-theory section.
    """
    check = resolve_scenario(traces, request.batch, request.prompt, request.context)
    return theory_report(
        request.options,
        batch=check.batch,
        prompt=check.prompt,
        context=check.context,
        scenario_check=check,
        tp=request.tp,
        attention=request.attention,
        measured_ttft_ms=request.measured_ttft_ms,
        measured_tpot_ms=request.measured_tpot_ms,
        measured_tps=request.measured_tps,
        retest_delta=request.retest_delta,
        traces=traces,
        window_nvtx=window_nvtx,
    )


def theory_report(
    options: TheoryOptions,
    *,
    batch: int,
    prompt: int,
    context: int | None = None,
    tp: int = 1,
    attention: str = "flash",
    measured_ttft_ms: float | None = None,
    measured_tpot_ms: float | None = None,
    measured_tps: float | None = None,
    retest_delta: float = DEFAULT_RETEST_DELTA,
    traces: Sequence[Trace] | None = None,
    window_nvtx: str | None = None,
    top_k: int = DEFAULT_TOP_K,
    tau_e: float = DEFAULT_TAU_E,
    scenario_check: ScenarioCheck | None = None,
) -> TheoryReport:
    """Estimate (and, with traces, measured vs theory + focus set) for the user's scenario.

    ``context`` defaults to ``prompt`` (the first decode step after the prompt). The GPU comes
    from the options, else from the first trace's GPU name.
    """
    if attention not in ATTENTION_FORMS:
        raise InputError(None, f"--attention {attention!r}: expected one of {', '.join(ATTENTION_FORMS)}")
    check_scenario(batch, prompt, context, tp)
    optional_float(measured_ttft_ms, "--measured-ttft", minimum=0.0)
    optional_float(measured_tpot_ms, "--measured-tpot", minimum=0.0)
    optional_float(measured_tps, "--measured-tps", minimum=0.0)
    finite_float(retest_delta, "--retest-delta", minimum=0.0)
    model = load_model(options)
    scenario = Scenario(
        batch=batch,
        prompt_len=prompt,
        context_len=context if context is not None else prompt,
        tp=tp,
        attention=attention,  # type: ignore[arg-type]
    )
    hw = resolve_hardware(options, model, tp=tp, gpu_name=_trace_gpu(traces))
    gpu_label, memory_gb = gpu_memory_gb(options, _trace_gpu(traces))
    fit = memory_fit(
        model,
        gpu=gpu_label,
        memory_gb=memory_gb,
        batch=batch,
        prompt=prompt,
        context=scenario.context_len,
        tp=tp,
    )
    if fit.status == "weights_do_not_fit" and not traces:
        raise InputError(None, f"{model.name} on {gpu_label}: {fit.message}")
    est = estimate(model, scenario, hw, memory=fit)
    findings = measured_vs_theory_findings(
        est,
        ttft_s=None if measured_ttft_ms is None else measured_ttft_ms / 1e3,
        tpot_s=None if measured_tpot_ms is None else measured_tpot_ms / 1e3,
        tokens_per_s=measured_tps,
        delta=retest_delta,
    )
    if not traces:
        return TheoryReport(estimate=est, findings=findings)
    measured = measured_vs_theory(traces, est, window_nvtx=window_nvtx)
    if scenario_check is not None:
        measured = measured.model_copy(
            update={"scenario": scenario_check, "notes": [*scenario_notes(scenario_check), *measured.notes]}
        )
    return TheoryReport(
        estimate=est, measured=measured, focus=focus_set(measured, k=top_k, tau_e=tau_e), findings=findings
    )


def _trace_gpu(traces: Sequence[Trace] | None) -> str | None:
    for trace in traces or ():
        for gpu in trace.gpus.values():
            if gpu.name:
                return str(gpu.name)
    return None
