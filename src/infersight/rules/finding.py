"""The typed Finding every rule produces; later capabilities extend it, never fork it.

A finding is a claim a senior engineer could check: what (type, title), where (location),
why (evidence: metric values against thresholds, with trace time ranges), what to do (advice),
how much it should gain (expected_gain, with the basis of the estimate), how sure we are
(confidence + reason) and how to verify (commands).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Confidence = Literal["high", "medium", "low"]
Severity = Literal["critical", "warning", "info"]


class Location(BaseModel):
    """Where the finding applies. Unset fields mean "not specific to that axis"."""

    scope: Literal["run", "device", "phase", "kernel", "category", "range", "layer", "step"] = "run"
    rank: int | None = None
    device: int | None = None
    phase: str | None = None
    kernel: str | None = None
    category: str | None = None
    range_name: str | None = None
    time_range_ns: tuple[int, int] | None = Field(
        default=None, description="trace-clock [start, end] in ns of the evidence"
    )


class Evidence(BaseModel):
    """One measured value and the threshold it was compared with."""

    metric: str
    value: float | int | str | None
    unit: str = ""
    threshold: float | None = None
    comparison: Literal[">", ">=", "<", "<=", "=="] | None = None
    note: str = ""


class ExpectedGain(BaseModel):
    """Expected improvement as a range of a fraction of the analysed wall time."""

    low: float = Field(ge=0.0)
    high: float = Field(ge=0.0)
    unit: Literal["fraction_of_wall_time", "fraction_of_kernel_time"] = "fraction_of_wall_time"
    basis: str = Field(description="how the range was computed, from which measured numbers")


class Finding(BaseModel):
    """A diagnosed problem with evidence, advice, expected gain, confidence and verification."""

    id: str = Field(description="stable id of the rule instance, e.g. 'small_kernel_storm/dev0'")
    type: str = Field(description="rule id, e.g. 'small_kernel_storm'")
    title: str
    severity: Severity = "warning"
    location: Location = Field(default_factory=Location)
    evidence: list[Evidence] = Field(default_factory=list)
    advice: list[str] = Field(default_factory=list)
    expected_gain: ExpectedGain | None = None
    confidence: Confidence = "medium"
    confidence_reason: str = ""
    verification: list[str] = Field(default_factory=list, description="commands/steps that verify the fix")
    bucket: str | None = Field(
        default=None,
        description="the wall-time bucket (gpu, communication, copy, host) this finding addresses, if any",
    )
