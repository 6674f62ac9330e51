"""The scenario theory runs for: the user's, the trace's, and where the two disagree.

Why: ``analyze TRACE --model M`` without ``--batch/--prompt`` should not need the user to know
what the engine ran (the trace says it: :mod:`infersight.analyses.scenario`), and a user-given
scenario that contradicts the trace (``--batch 32`` on a batch-1 trace makes decode look healthy)
must be flagged in the measured-vs-theory section and the JSON, not silently used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from infersight.analyses.scenario import ScenarioInference, infer_scenario
from infersight.errors import InputError

if TYPE_CHECKING:
    from infersight.model import Trace

TRUSTED = ("high", "medium")  # confidences strong enough to contradict the user


class ScenarioCheck(BaseModel):
    """What scenario was used, where it came from, and the trace's own reading of it."""

    source: Literal["trace", "user", "user and trace"] = Field(
        description="trace: inferred (no --batch/--prompt); user: given and not contradicted"
    )
    batch: int
    prompt: int
    context: int | None
    inferred: ScenarioInference
    contradictions: list[str] = Field(
        default_factory=list, description="user-given figures the trace contradicts (with its evidence)"
    )


class ScenarioUnreadable(InputError):
    """Neither given nor readable from the trace: batch or prompt. A subclass so that callers that
    can fall back (the agent workflow assumes a scenario and says so) catch exactly this."""


def resolve_scenario(
    traces: Sequence[Trace], batch: int | None, prompt: int | None, context: int | None
) -> ScenarioCheck:
    """The user's figures where given, the trace's elsewhere; contradictions listed.

    Raises InputError when a figure is neither given nor readable from the trace.
    """
    inferred = infer_scenario(traces)
    given = {"batch": batch, "prompt": prompt, "context": context}
    used: dict[str, int | None] = {}
    for key, value in given.items():
        field = getattr(inferred, key)
        used[key] = value if value is not None else field.value
    if context is None and prompt is not None and prompt != inferred.prompt.value:
        used["context"] = None  # the trace's context belongs to its own prompt, not the user's
    if used["batch"] is None or used["prompt"] is None:
        flags = {"batch": "--batch B", "prompt": "--prompt S"}
        missing = [flags[key] for key in ("batch", "prompt") if used[key] is None]
        why = "; ".join([*inferred.notes, *inferred.prompt.evidence]) or "no evidence"
        raise ScenarioUnreadable(
            None,
            f"the trace does not tell the scenario ({why}): give {' and '.join(missing)} (and --context L)",
        )
    contradictions = [
        _contradiction(key, value, getattr(inferred, key).value, getattr(inferred, key).evidence)
        for key, value in given.items()
        if value is not None
        and getattr(inferred, key).value is not None
        and getattr(inferred, key).confidence in TRUSTED
        and getattr(inferred, key).value != value
    ]
    if all(value is None for value in given.values()):
        source: Literal["trace", "user", "user and trace"] = "trace"
    elif all(value is not None for value in given.values()) or inferred.method == "none":
        source = "user"
    else:
        source = "user and trace"
    return ScenarioCheck(
        source=source,
        batch=int(used["batch"]),
        prompt=int(used["prompt"]),
        context=used["context"],
        inferred=inferred,
        contradictions=contradictions,
    )


def scenario_notes(check: ScenarioCheck) -> list[str]:
    """One line on where the scenario came from, then one per contradiction."""
    inferred = check.inferred
    if check.source == "trace":
        lines = [
            f"scenario from the trace ({inferred.method}): batch {check.batch} "
            f"[{inferred.batch.confidence}], prompt {check.prompt} [{inferred.prompt.confidence}], "
            f"context {check.context if check.context is not None else check.prompt} "
            f"[{inferred.context.confidence}] — "
            + "; ".join(
                [*inferred.batch.evidence[:1], *inferred.prompt.evidence[:1], *inferred.context.evidence[:1]]
            )
        ]
    else:
        lines = [f"scenario as given: batch {check.batch}, prompt {check.prompt}, context {check.context}"]
    lines += [f"SCENARIO MISMATCH: {line}" for line in check.contradictions]
    return lines


def _contradiction(key: str, given: int, seen: int | None, evidence: list[str]) -> str:
    return (
        f"--{key} {given} but the trace shows {key} {seen} ({'; '.join(evidence[:2])}): "
        "theory is for the given scenario, the measured kernels for the trace's"
    )
