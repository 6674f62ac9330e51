"""Thresholds and options of the host analysis, from ``data/host_thresholds.toml`` (+ a user file).

Thresholds are data with sources so a team can tighten them per deployment without code
changes; a user file only needs the keys it changes (deep-merged over the built-in table).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from infersight.errors import InputError
from infersight.host.results import Comparison

METRIC_IDS = ("M1", "M1h", "M2", "M2e", "M3a", "M3b", "M3c", "M4", "M5")
PHASE_SCOPES = ("context", "generation")
PHASE_OF_MARKER = {"prefill": "context", "decode": "generation", "mixed": "mixed"}


@dataclass(frozen=True)
class Threshold:
    """One metric's limit in one scope."""

    metric: str
    name: str
    threshold: float
    comparison: Comparison
    source: str

    def crossed(self, value: float) -> bool:
        """Whether the value is on the "bottleneck" side of the limit."""
        return value > self.threshold if self.comparison == ">" else value < self.threshold


@dataclass(frozen=True)
class HostConfig:
    """The merged configuration (built-in table updated by the user's file)."""

    raw: dict[str, Any]

    def threshold(self, metric: str, scope: str = "aggregate") -> Threshold:
        """The limit of ``metric`` in ``scope``: the phase variant when one exists.

        A metric with ``same_as = "M1"`` and no threshold of its own (M1h) follows that metric's
        limit in every scope, so a user file that tightens M1 tightens the verdict too.
        """
        base = self.raw["metric"][metric]
        override = self.raw.get("phase", {}).get(scope, {}).get(metric, {})
        if "threshold" not in base and "threshold" not in override and base.get("same_as"):
            parent = self.threshold(str(base["same_as"]), scope)
            return Threshold(
                metric=metric,
                name=str(base["name"]),
                threshold=parent.threshold,
                comparison=parent.comparison,
                source=f"{base.get('source', '')}; limit of {parent.metric}: {parent.source}",
            )
        return Threshold(
            metric=metric,
            name=str(base["name"]),
            threshold=float(override.get("threshold", base["threshold"])),
            comparison=override.get("comparison", base["comparison"]),
            source=str(override.get("source", base.get("source", ""))),
        )

    def verdict_rule(self) -> dict[str, Any]:
        """The ``[verdict]`` section: which crossed metrics make a scope host-bound."""
        return self.section("verdict")

    def phase_patterns(self) -> list[tuple[str, re.Pattern[str]]]:
        """User phase regexes (``[phase_regex]`` / ``--phase-regex``), tried before built-in markers."""
        user = self.raw.get("phase_regex", {})
        return [(phase, re.compile(str(user[phase]))) for phase in PHASE_SCOPES if user.get(phase)]

    def classify(self, name: str) -> str | None:
        """Phase (context/generation/mixed) of a range name: user regexes, then phase_markers.toml."""
        for phase, pattern in self.phase_patterns():
            if pattern.search(name):
                return phase
        from infersight.analyses.phases import classify_range_name

        found = classify_range_name(name)
        return None if found is None else PHASE_OF_MARKER.get(found, found)

    def with_phase_regex(self, assignments: list[str]) -> HostConfig:
        """A copy with ``PHASE=REGEX`` assignments (from --phase-regex) added; InputError if malformed."""
        if not assignments:
            return self
        user = dict(self.raw.get("phase_regex", {}))
        for text in assignments:
            phase, sep, pattern = text.partition("=")
            if not sep or phase.strip() not in PHASE_SCOPES:
                raise InputError(None, f"--phase-regex {text!r}: write context=REGEX or generation=REGEX")
            compile_regex(pattern, f"--phase-regex {phase.strip()}")
            user[phase.strip()] = pattern
        return HostConfig({**self.raw, "phase_regex": user})

    def section(self, name: str) -> dict[str, Any]:
        """A plain section (``iterations``, ``diff``, ``drilldown``, ``host_prep``)."""
        section: dict[str, Any] = self.raw[name]
        return section


@cache
def _builtin() -> dict[str, Any]:
    text = resources.files("infersight").joinpath("data/host_thresholds.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: Path | None = None) -> HostConfig:
    """The built-in thresholds, updated by the user's TOML file when given.

    Raises InputError for an unreadable/invalid file, an unknown metric or a bad comparison.
    """
    raw = _builtin()
    if path is None:
        return HostConfig(raw)
    try:
        user = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(path, f"cannot read thresholds file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"thresholds file is not valid TOML: {exc}") from None
    merged = _merge(raw, user)
    _validate(merged, path)
    return HostConfig(merged)


def _validate(raw: dict[str, Any], path: Path) -> None:
    scopes = {"aggregate": raw.get("metric", {}), **raw.get("phase", {})}
    for scope, metrics in scopes.items():
        if scope not in ("aggregate", *PHASE_SCOPES):
            raise InputError(path, f"unknown phase {scope!r} (use context or generation)")
        for metric, spec in metrics.items():
            if metric not in METRIC_IDS:
                raise InputError(
                    path, f"unknown metric {metric!r} in {scope} (known: {', '.join(METRIC_IDS)})"
                )
            if spec.get("comparison", ">") not in (">", "<"):
                raise InputError(path, f"{scope}.{metric}: comparison must be '>' or '<'")
            if "threshold" in spec and not isinstance(spec["threshold"], int | float):
                raise InputError(path, f"{scope}.{metric}: threshold must be a number")
    compile_regex(str(raw["host_prep"]["pattern"]), "host_prep.pattern", path)
    compile_regex(str(raw["attribution"]["migration_kind"]), "attribution.migration_kind", path)
    rule = raw["verdict"]
    named = [*rule["host_signals"], rule["launch_signal"], *rule["launch_needs_any"], *rule["prep_signals"]]
    unknown = sorted({str(m) for m in named} - set(METRIC_IDS))
    if unknown:
        raise InputError(
            path, f"verdict: unknown metric(s) {', '.join(unknown)} (known: {', '.join(METRIC_IDS)})"
        )
    if not isinstance(rule.get("explained_share"), int | float) or not 0 <= rule["explained_share"] <= 1:
        raise InputError(path, "verdict.explained_share must be a number between 0 and 1")
    for phase, pattern in raw.get("phase_regex", {}).items():
        if phase not in PHASE_SCOPES:
            raise InputError(path, f"phase_regex: unknown phase {phase!r} (use context or generation)")
        compile_regex(str(pattern), f"phase_regex.{phase}", path)


def compile_regex(pattern: str, option: str, source: str | Path | None = None) -> re.Pattern[str]:
    """Compile a user regex, turning a syntax error into a one-line InputError."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InputError(source, f"{option}: invalid regular expression {pattern!r}: {exc}") from None
