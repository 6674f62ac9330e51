"""Thresholds and options of the host analysis, from ``data/host_thresholds.toml`` (+ a user file).

Thresholds are data with sources so a team can tighten them per deployment without code
changes; a user file only needs the keys it changes (deep-merged over the built-in table).
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from infersight.errors import InputError
from infersight.host.results import Comparison
from infersight.safe_io import MAX_THRESHOLDS_BYTES, read_bounded_text

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

    The file is read bounded (a regular UTF-8 file of at most MAX_THRESHOLDS_BYTES: ``/dev/zero``
    or a FIFO is refused before it is read) and every key is checked — known section and key,
    value type, finite numbers, compilable regexes — so a typo or ``threshold = nan`` is one
    line naming the file and the key, never a wrong verdict such as "M1 ... > nan".
    """
    raw = _builtin()
    if path is None:
        return HostConfig(raw)
    text = read_bounded_text(path, MAX_THRESHOLDS_BYTES, "thresholds file")
    try:
        user = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"thresholds file is not valid TOML: {exc}") from None
    _check_layout(user, path)
    merged = _merge(raw, user)
    _validate(merged, path)
    return HostConfig(merged)


# Plain sections: key -> kind. count: int >= 0; positive_int: int >= 1; nonneg / positive: finite
# float >= 0 / > 0; regex: a compilable pattern; text: a string; edges: ascending ints >= 0;
# texts: a list of strings.
SECTION_KEYS: dict[str, dict[str, str]] = {
    "host_prep": {"pattern": "regex", "source": "text"},
    "iterations": {
        "step_pattern": "regex",
        "dedup_window_ns": "count",
        "allreduce_pattern": "regex",
        "allreduce_iteration_gap_ns": "count",
        "allreduce_phase_gap_ns": "count",
        "density_gap_ns": "count",
        "min_kernels_per_iteration": "positive_int",
        "warmup_factor": "positive",
    },
    "diff": {
        "min_delta_us": "nonneg",
        "min_delta_ratio": "nonneg",
        "source": "text",
        "min_shared_kernel_time": "nonneg",
        "shared_kernel_time_source": "text",
        "version_key_pattern": "regex",
        "dtype_key_pattern": "regex",
        "batch_key_pattern": "regex",
        "ignored_version_keys": "texts",
        "packages": "texts",
        "dtype_hint_categories": "texts",
        "dtype_hint_tokens": "text_pairs",
        "batch_step_pattern": "regex",
    },
    "drilldown": {"top_gaps": "count", "bucket_edges_ns": "edges", "bucket_causes": "texts"},
    "attribution": {"migration_kind": "regex", "source": "text"},
    "verdict": {
        "host_signals": "texts",
        "launch_signal": "text",
        "launch_needs_any": "texts",
        "prep_signals": "texts",
        "explained_share": "nonneg",
        "single_gap_share": "nonneg",
        "source": "text",
    },
}
METRIC_KEYS = {"name": "text", "comparison": "comparison", "threshold": "number", "source": "text"}
TOP_LEVEL = {"version", "metric", "phase", "phase_regex", *SECTION_KEYS}
INT64_MAX = 2**63 - 1


def _table(value: Any, where: str, path: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(path, f"{where}: expected a table ([{where}]), got {_type_name(value)}")
    return value


def _check_layout(user: dict[str, Any], path: Path) -> None:
    """Only known sections and keys: a misspelt key would otherwise be ignored without a word."""
    for key, value in user.items():
        if key not in TOP_LEVEL:
            raise InputError(path, f"unknown key {key!r} (known: {', '.join(sorted(TOP_LEVEL))})")
        if key in SECTION_KEYS:
            for name in _table(value, key, path):
                if name not in SECTION_KEYS[key]:
                    known = ", ".join(SECTION_KEYS[key])
                    raise InputError(path, f"{key}.{name}: unknown key (known: {known})")
    for scope, metrics in _scopes(user, path).items():
        for metric, spec in metrics.items():
            for name in _table(spec, f"{scope}.{metric}", path):
                if name not in METRIC_KEYS:
                    known = ", ".join(METRIC_KEYS)
                    raise InputError(path, f"{scope}.{metric}.{name}: unknown key (known: {known})")


def _scopes(raw: dict[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    """``metric`` (the aggregate scope) and each ``phase.<name>`` table, checked to be tables."""
    scopes = {"metric": _table(raw.get("metric", {}), "metric", path)}
    for phase, metrics in _table(raw.get("phase", {}), "phase", path).items():
        if phase not in PHASE_SCOPES:
            raise InputError(path, f"phase.{phase}: unknown phase (use context or generation)")
        scopes[f"phase.{phase}"] = _table(metrics, f"phase.{phase}", path)
    return scopes


def _validate(raw: dict[str, Any], path: Path) -> None:
    for scope, metrics in _scopes(raw, path).items():
        for metric, spec in metrics.items():
            if metric not in METRIC_IDS:
                raise InputError(
                    path, f"{scope}.{metric}: unknown metric {metric!r} (known: {', '.join(METRIC_IDS)})"
                )
            for key, value in _table(spec, f"{scope}.{metric}", path).items():
                _check_value(METRIC_KEYS.get(key, "text"), value, f"{scope}.{metric}.{key}", path)
    for section, keys in SECTION_KEYS.items():
        table = _table(raw.get(section), section, path)
        for key, kind in keys.items():
            if key in table:
                _check_value(kind, table[key], f"{section}.{key}", path)
    edges = raw["drilldown"]["bucket_edges_ns"]
    if len(raw["drilldown"]["bucket_causes"]) != len(edges):
        raise InputError(
            path, f"drilldown.bucket_causes: give one cause per edge of bucket_edges_ns ({len(edges)})"
        )
    if not isinstance(raw.get("version", 1), int) or isinstance(raw.get("version"), bool):
        raise InputError(path, "version: expected an integer")
    rule = raw["verdict"]
    named = [*rule["host_signals"], rule["launch_signal"], *rule["launch_needs_any"], *rule["prep_signals"]]
    unknown = sorted({str(m) for m in named} - set(METRIC_IDS))
    if unknown:
        raise InputError(
            path, f"verdict: unknown metric(s) {', '.join(unknown)} (known: {', '.join(METRIC_IDS)})"
        )
    if not 0 <= rule["explained_share"] <= 1:
        raise InputError(path, "verdict.explained_share must be a number between 0 and 1")
    for phase, pattern in _table(raw.get("phase_regex", {}), "phase_regex", path).items():
        if phase not in PHASE_SCOPES:
            raise InputError(path, f"phase_regex.{phase}: unknown phase (use context or generation)")
        _check_value("regex", pattern, f"phase_regex.{phase}", path)


def _check_value(kind: str, value: Any, key: str, path: Path) -> None:
    """One value against its kind; InputError naming the file and the key."""
    problem = _problem(kind, value)
    if problem is not None:
        raise InputError(path, f"{key}: {problem}")
    if kind == "regex":
        compile_regex(value, key, path)


def _problem(kind: str, value: Any) -> str | None:
    if kind in ("text", "regex"):
        return None if isinstance(value, str) else f"expected a string, got {_type_name(value)}"
    if kind == "comparison":
        return None if value in (">", "<") else "comparison must be '>' or '<'"
    if kind == "texts":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return None if ok else "expected a list of strings"
    if kind == "text_pairs":
        ok = isinstance(value, list) and all(
            isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v) for v in value
        )
        return None if ok else "expected a list of [name, regex] pairs of strings"
    if kind == "edges":
        if not isinstance(value, list) or not value or not all(_is_int(v, 0) for v in value):
            return "expected a non-empty list of integers >= 0 (nanoseconds)"
        return None if value == sorted(set(value)) else "edges must be strictly ascending"
    if kind in ("count", "positive_int"):
        low = 0 if kind == "count" else 1
        return None if _is_int(value, low) else f"expected an integer >= {low}, got {_shown(value)}"
    number_ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not number_ok:
        return f"expected a finite number, got {_shown(value)}"
    if kind == "nonneg" and value < 0:
        return f"expected a number >= 0, got {value!r}"
    if kind == "positive" and value <= 0:
        return f"expected a number > 0, got {value!r}"
    return None


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= INT64_MAX


def _type_name(value: Any) -> str:
    return {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "a list"}.get(
        type(value), type(value).__name__
    )


def _shown(value: Any) -> str:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return repr(value)
    return _type_name(value)


def compile_regex(pattern: str, option: str, source: str | Path | None = None) -> re.Pattern[str]:
    """Compile a user regex, turning a syntax error into a one-line InputError."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InputError(source, f"{option}: invalid regular expression {pattern!r}: {exc}") from None
