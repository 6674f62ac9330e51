"""Checking a request's model + scenario and turning it into the theory engine's request.

Why here (the api floor) and not in a front end: ``analyze``, ``report``, ``layers``, ``ncu`` and
``ncu_plan`` take the same theory options from the CLI, the MCP tools and notebooks; the rules
"--gpu needs --model", "--model needs --batch and --prompt" (unless the trace tells them) must
read the same in all of them.
Error texts name the CLI flags, the spelling the docs use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from infersight.errors import InputError

if TYPE_CHECKING:
    from infersight.api.requests import LayersRequest, ModelArgs, ScenarioArgs, TheoryArgs
    from infersight.layers.theory import LayerTheoryRequest
    from infersight.theory.inputs import TheoryOptions
    from infersight.theory.run import TheoryRequest

__all__ = ["layer_theory_request", "require_scenario", "theory_options", "theory_request"]


def theory_options(args: ModelArgs, *, link_bandwidth: float | None = None, **tuning: Any) -> TheoryOptions:
    """The theory engine's model/GPU options of a request; ``tuning`` passes the roofline's
    ``kappa`` / ``memory_efficiency`` overrides (validated by ``TheoryOptions``)."""
    from infersight.theory.inputs import TheoryOptions

    return TheoryOptions(
        model=args.model,
        config=args.config,
        gpu=args.gpu,
        peak_tflops=args.peak_tflops,
        bandwidth_gb_per_s=args.bandwidth,
        link_bandwidth_gb_per_s=link_bandwidth,
        dtype=args.dtype,
        **tuning,
    )


def require_scenario(args: ScenarioArgs) -> tuple[int, int] | None:
    """(batch, prompt) when a model is named, None without one; InputError when half-given."""
    if not args.has_model:
        return None
    if args.batch is None or args.prompt is None:
        raise InputError(
            None, "--model/--config needs the scenario: --batch B and --prompt S (and --context L)"
        )
    return args.batch, args.prompt


def theory_request(args: TheoryArgs | ScenarioArgs) -> TheoryRequest | None:
    """The theory part of ``analyze``/``report``: None without a model; InputError when half-given."""
    from infersight.api.requests import TheoryArgs

    measured = (
        (args.measured_ttft, args.measured_tpot, args.measured_tps)
        if isinstance(args, TheoryArgs)
        else (None, None, None)
    )
    if not args.has_model:
        flags = (
            ("--gpu", args.gpu),
            ("--peak-tflops", args.peak_tflops),
            ("--bandwidth", args.bandwidth),
            ("--batch", args.batch),
            ("--prompt", args.prompt),
            ("--context", args.context),
            ("--dtype", args.dtype),
            ("--measured-ttft", measured[0]),
            ("--measured-tpot", measured[1]),
            ("--measured-tps", measured[2]),
        )
        given = [flag for flag, value in flags if value is not None]
        if given or args.tp != 1:
            raise InputError(None, f"{', '.join(given) or '--tp'} needs --model NAME or --config PATH")
        return None
    # without --batch/--prompt the scenario is read from the trace (infersight.theory.scenario_check);
    # with no trace that can tell it, the theory run refuses with the same wording as require_scenario
    from infersight.theory.inputs import load_model
    from infersight.theory.run import TheoryRequest  # here: no theory import without a model

    request = TheoryRequest(
        options=theory_options(args),
        batch=args.batch,
        prompt=args.prompt,
        context=args.context,
        tp=args.tp,
        measured_ttft_ms=measured[0],
        measured_tpot_ms=measured[1],
        measured_tps=measured[2],
    )
    # the model (a config file the user wrote, or a built-in name) is read now, before the
    # trace: a malformed config fails in milliseconds, not after a read of many seconds
    load_model(request.options)
    return request


def layer_theory_request(request: LayersRequest) -> LayerTheoryRequest | None:
    """The per-layer theory request: None without --batch; InputError for options that cannot apply."""
    from infersight.layers.theory import LayerTheoryRequest, check_request_inputs

    check_request_inputs(
        request.has_model,
        request.batch,
        {
            "--prompt": request.prompt,
            "--context": request.context,
            "--tp": request.tp if request.tp != 1 else None,
            "--gpu": request.gpu,
            "--dtype": request.dtype,
            "--peak-tflops": request.peak_tflops,
            "--bandwidth": request.bandwidth,
            "--link-bandwidth": request.link_bandwidth,
            "--phase": request.phase,
        },
    )
    if request.batch is None:
        return None
    from infersight.theory.operators import PHASES

    if request.phase is not None and request.phase not in PHASES:
        raise InputError(None, f"--phase {request.phase!r}: expected prefill or decode")
    return LayerTheoryRequest(
        options=theory_options(request, link_bandwidth=request.link_bandwidth),
        batch=request.batch,
        prompt=request.prompt,
        context=request.context,
        tp=request.tp,
        phase=request.phase,  # checked against PHASES above
    )
