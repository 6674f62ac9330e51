"""Operator category of each kernel (GEMM, attention, norm, ...), from a data table of name patterns.

The patterns live in ``infersight/data/kernel_categories.toml`` (see its header for the
format and the matching rules) so that supporting a new library is a data change, and a user
can put their own table in front of it. Categories are computed per *distinct* kernel name,
so a million kernels with a few hundred names cost a few hundred regex searches.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infersight.analyses.kernel_names import kernel_name_head
from infersight.errors import InputError

CATEGORIES: tuple[str, ...] = (
    "GEMM",
    "attention",
    "norm",
    "activation",
    "RoPE",
    "elementwise",
    "reduction",
    "copy",
    "NCCL",
    "MoE",
    "sampling",
    "quantisation",
    "other",
)
"""Every category a kernel can get, in report order; ``other`` is what no rule matched."""

OTHER = "other"

_RULE_KEYS = frozenset({"category", "patterns", "source", "note"})
_BUILTIN_TABLE = "kernel_categories.toml"


@dataclass(frozen=True)
class CategoryRule:
    """One row of the table: any of ``patterns`` matching a kernel name gives ``category``."""

    category: str
    patterns: tuple[str, ...]
    source: str
    regex: re.Pattern[str]
    origin: str  # "<table file>: rule N", for messages

    def matches(self, head: str) -> bool:
        """Whether this rule claims a kernel, given the name without return type/parameters."""
        return self.regex.search(head) is not None


def builtin_table_path() -> Path:
    """Where the packaged table is (for messages and for users copying it as a template)."""
    return Path(str(resources.files("infersight") / "data" / _BUILTIN_TABLE))


@functools.cache
def load_category_rules(path: Path | None = None) -> tuple[CategoryRule, ...]:
    """The compiled rules: the user's table at ``path`` (tried first), then the built-in table.

    Loaded once per path. Any problem (unreadable file, bad TOML, unknown category, bad
    regex, missing or unknown key) raises :class:`InputError` naming the file and the rule.
    """
    builtin_text = (resources.files("infersight") / "data" / _BUILTIN_TABLE).read_text(encoding="utf-8")
    builtin = _parse_table(builtin_text, builtin_table_path())
    if path is None:
        return builtin
    try:
        user_text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(path, f"cannot read the kernel category table: {error}") from error
    return _parse_table(user_text, Path(path)) + builtin


def categorize_name(name: str, rules: Sequence[CategoryRule] | None = None) -> str:
    """The category of one kernel name (first matching rule; ``other`` when none matches)."""
    return _category_of(str(name), load_category_rules() if rules is None else tuple(rules))


@functools.lru_cache(maxsize=8192)
def _category_of(name: str, rules: tuple[CategoryRule, ...]) -> str:
    """Cached per (name, rule table): one analysis categorises the same distinct names in several
    places (the kernel table, the attribution, the phases), each a walk of every rule's regex."""
    head = kernel_name_head(name)
    for rule in rules:
        if rule.matches(head):
            return rule.category
    return OTHER


def categorize(
    names: pd.Categorical | pd.Series, rules: Sequence[CategoryRule] | None = None
) -> pd.Categorical:
    """Category of every kernel in ``names``, computed once per distinct name.

    Returns a categorical with exactly :data:`CATEGORIES` as categories (so group-bys list
    every category in report order). Missing names are ``other``: their time must still be
    counted somewhere.
    """
    categorical = names.array if isinstance(names, pd.Series) else names
    categorical = pd.Categorical(categorical)
    active = load_category_rules() if rules is None else tuple(rules)
    per_name = np.array(
        [CATEGORIES.index(categorize_name(str(name), active)) for name in categorical.categories],
        dtype=np.int64,
    )
    codes = np.asarray(categorical.codes)
    other_code = CATEGORIES.index(OTHER)
    if len(per_name) == 0:
        out_codes = np.full(len(codes), other_code, dtype=np.int64)
    else:
        out_codes = np.where(codes >= 0, per_name[np.clip(codes, 0, None)], other_code)
    return pd.Categorical.from_codes(out_codes, categories=pd.Index(CATEGORIES, dtype=object))


def _parse_table(text: str, path: Path) -> tuple[CategoryRule, ...]:
    """Parse and validate one TOML table into compiled rules."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(path, f"kernel category table is not valid TOML: {error}") from error
    raw_rules = table.get("rule")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise InputError(path, "kernel category table has no [[rule]] entries")
    return tuple(_parse_rule(raw, index, path) for index, raw in enumerate(raw_rules, start=1))


def _parse_rule(raw: Any, index: int, path: Path) -> CategoryRule:
    """Validate one ``[[rule]]`` entry and compile its patterns into one case-insensitive regex."""
    where = f"rule {index}"
    if not isinstance(raw, dict):
        raise InputError(path, f"{where}: expected a table with category and patterns")
    category = raw.get("category")
    where = f"rule {index} (category {category!r}, source {str(raw.get('source', ''))[:60]!r})"
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise InputError(path, f"{where}: unknown key(s) {unknown}; allowed: {sorted(_RULE_KEYS)}")
    if category not in CATEGORIES:
        raise InputError(path, f"{where}: unknown category {category!r}; expected one of {list(CATEGORIES)}")
    patterns = raw.get("patterns")
    if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise InputError(path, f"{where}: 'patterns' must be a non-empty list of non-empty strings")
    for pattern in patterns:
        try:
            re.compile(pattern, re.IGNORECASE)
        except re.error as error:
            raise InputError(path, f"{where}: bad regular expression {pattern!r}: {error}") from error
    return CategoryRule(
        category=str(category),
        patterns=tuple(patterns),
        source=str(raw.get("source", "")),
        regex=re.compile(_alternation(patterns), re.IGNORECASE),
        origin=f"{path}: {where}",
    )


def _alternation(patterns: Iterable[str]) -> str:
    """One regex matching any of ``patterns`` (each kept in its own group)."""
    return "|".join(f"(?:{pattern})" for pattern in patterns)
