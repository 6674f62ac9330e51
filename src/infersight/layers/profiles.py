"""Model profiles (which kernel marks a layer, where a layer opens) and layer types, as data.

The table is ``infersight/data/model_profiles.toml``; see its header for the keys and how a
profile is picked. Everything that depends on a model family or an engine lives there, so
supporting a new engine is a data change.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from infersight.errors import InputError
from infersight.theory.model_config import ModelConfig

AUTO_ATTENTION = "auto-attention"
Boundary = Literal["attention_walk_back", "anchor_start"]
_BOUNDARIES: tuple[Boundary, ...] = ("attention_walk_back", "anchor_start")
_TABLE = "model_profiles.toml"


@dataclass(frozen=True)
class ModelProfile:
    """One ``[[profile]]`` row."""

    name: str
    engines: tuple[str, ...]
    model_types: tuple[str, ...]
    anchor: str
    anchors_per_layer: int
    boundary: Boundary
    reason: str


@dataclass(frozen=True)
class EngineSignature:
    """One ``[[engine]]`` row: kernel-name patterns that reveal the serving engine."""

    name: str
    regex: re.Pattern[str]


@dataclass(frozen=True)
class LayerTypeRule:
    """One ``[[layer_type_rule]]`` row: a config feature that labels a layer."""

    feature: Literal["moe", "sliding_window"]
    when_true: str
    when_false: str


@dataclass(frozen=True)
class Plausibility:
    """The ``[plausibility]`` table: what a layer count found without a config must satisfy."""

    min_layers_per_pass: int
    backward_anchor: re.Pattern[str]


@dataclass(frozen=True)
class ProfileTable:
    profiles: tuple[ModelProfile, ...]
    engines: tuple[EngineSignature, ...]
    layer_type_rules: tuple[LayerTypeRule, ...]
    plausibility: Plausibility

    def by_name(self, name: str) -> ModelProfile:
        """The profile called ``name``; an unknown name is the user's input error."""
        for profile in self.profiles:
            if profile.name == name:
                return profile
        known = ", ".join(p.name for p in self.profiles)
        raise InputError(None, f"--profile: unknown model profile {name!r}; known profiles: {known}")


def table_path() -> Path:
    """Where the packaged profile table is (for messages)."""
    return Path(str(resources.files("infersight") / "data" / _TABLE))


@functools.cache
def load_profiles() -> ProfileTable:
    """Parse and validate the packaged table (once)."""
    path = table_path()
    text = (resources.files("infersight") / "data" / _TABLE).read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(path, f"model profile table is not valid TOML: {error}") from error
    profiles = tuple(_profile(row, path) for row in _rows(raw, "profile", path))
    engines = tuple(
        EngineSignature(str(row["name"]), re.compile("|".join(f"(?:{p})" for p in row["patterns"]), re.I))
        for row in _rows(raw, "engine", path)
    )
    rules = tuple(_layer_type_rule(row, path) for row in _rows(raw, "layer_type_rule", path))
    if not any(p.name == "generic" for p in profiles):
        raise InputError(path, "model profile table has no 'generic' profile")
    return ProfileTable(profiles, engines, rules, _plausibility(raw.get("plausibility"), path))


def detect_engine(names: Iterable[str]) -> str | None:
    """The first engine (in table order: specific engines before plain PyTorch) whose signature
    patterns match a kernel name; None when none does. Engines also run ATen kernels, so the
    order, not the number of hits, decides."""
    distinct = list(names)
    for engine in load_profiles().engines:
        if any(engine.regex.search(name) for name in distinct):
            return engine.name
    return None


def select_profile(
    name: str | None, engine: str | None, config: ModelConfig | None
) -> tuple[ModelProfile, str]:
    """The profile to use and one sentence on why it was chosen."""
    table = load_profiles()
    if name is not None:
        return table.by_name(name), f"--profile {name}"
    model_type = config.model_type if config is not None else None
    for profile in table.profiles:
        if engine is None or engine not in profile.engines:
            continue
        if profile.model_types and model_type not in profile.model_types:
            continue
        return profile, f"engine {engine} recognised from kernel names"
    reason = "no engine recognised from kernel names" if engine is None else f"no profile for engine {engine}"
    return table.by_name("generic"), reason


def layer_types(config: ModelConfig | None, num_layers: int) -> list[str] | None:
    """The type label of every layer from the config (None without a config)."""
    if config is None:
        return None
    rules = load_profiles().layer_type_rules
    sliding = set(config.sliding_window_layers)
    labels: list[str] = []
    for layer in range(num_layers):
        parts: list[str] = []
        for rule in rules:
            if rule.feature == "moe":
                holds = config.is_moe_layer(layer)
            else:
                holds = config.sliding_window is not None and (not sliding or layer in sliding)
            part = rule.when_true if holds else rule.when_false
            if part:
                parts.append(part)
        labels.append("+".join(parts) or "dense")
    return labels


def _rows(raw: dict[str, Any], key: str, path: Path) -> list[dict[str, Any]]:
    rows = raw.get(key, [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InputError(path, f"[[{key}]] entries must be tables")
    return rows


def _profile(row: dict[str, Any], path: Path) -> ModelProfile:
    name = str(row.get("name", ""))
    where = f"profile {name!r}"
    anchor = row.get("anchor")
    if not isinstance(anchor, str) or not anchor:
        raise InputError(path, f"{where}: 'anchor' must be a regular expression or {AUTO_ATTENTION!r}")
    if anchor != AUTO_ATTENTION:
        check_regex(anchor, f"{path}: {where}")
    boundary = row.get("boundary")
    if boundary not in _BOUNDARIES:
        raise InputError(path, f"{where}: 'boundary' must be one of {list(_BOUNDARIES)}")
    per_layer = row.get("anchors_per_layer", 1)
    if not isinstance(per_layer, int) or per_layer < 1:
        raise InputError(path, f"{where}: 'anchors_per_layer' must be a positive integer")
    return ModelProfile(
        name=name,
        engines=tuple(row.get("engines", ())),
        model_types=tuple(row.get("model_types", ())),
        anchor=anchor,
        anchors_per_layer=per_layer,
        boundary=boundary,
        reason=str(row.get("reason", "")),
    )


def _layer_type_rule(row: dict[str, Any], path: Path) -> LayerTypeRule:
    feature = row.get("feature")
    if feature not in ("moe", "sliding_window"):
        raise InputError(
            path, f"layer_type_rule: unknown feature {feature!r}; expected moe or sliding_window"
        )
    return LayerTypeRule(feature=feature, when_true=str(row["when_true"]), when_false=str(row["when_false"]))


def _plausibility(row: object, path: Path) -> Plausibility:
    if not isinstance(row, dict):
        raise InputError(path, "model profile table has no [plausibility] table")
    minimum = row.get("min_layers_per_pass")
    if not isinstance(minimum, int) or minimum < 1:
        raise InputError(path, "[plausibility] min_layers_per_pass must be a positive integer")
    pattern = row.get("backward_anchor_pattern")
    if not isinstance(pattern, str) or not pattern:
        raise InputError(path, "[plausibility] backward_anchor_pattern must be a regular expression")
    return Plausibility(minimum, check_regex(pattern, f"{path}: [plausibility]"))


def check_regex(pattern: str, where: str) -> re.Pattern[str]:
    """Compile a user/data regex; a bad one is an input error naming where it came from."""
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as error:
        raise InputError(None, f"{where}: invalid regular expression {pattern!r}: {error}") from None
