"""One validation layer for numbers and JSON fields at the edges of every reader and option.

Why one module: a config value ``"two"``, a ``1e400`` that JSON turns into ``inf``, a list where
an object belongs or ``--link-bandwidth nan`` must each end as one line that names the file (or
option), the field and what is wrong (:class:`~infersight.errors.InputError`, exit code 2) —
never a traceback deep in the FLOP counting, and never a ``nan``/``inf``/negative number that
flows on into a report as if it were fact. Readers (HuggingFace configs, safetensors headers and
indexes, ncu cells) and front ends (CLI options, the API's request models) all call these
helpers, so the same value is refused the same way everywhere.

Bounds on model sizes (``MAX_LAYERS`` ...) are documented in ``docs/methodology.md``: they are far
above every published model and keep per-layer loops and integer products bounded, so that a
config with ``num_hidden_layers = 1e9`` is an input error rather than a multi-minute loop.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infersight.errors import InputError

# Largest integer a float holds exactly: counts beyond it would be rounded in every product.
MAX_EXACT_INT = 2**53
# Sane bounds of a decoder-only transformer config (the largest published models are far below:
# 126 layers, 128 heads, 256 routed experts, hidden 25,600, vocabulary 262,144).
MAX_LAYERS = 10_000
MAX_HEADS = 65_536
MAX_EXPERTS = 65_536
MAX_WIDTH = 2**24  # hidden, intermediate, head_dim, vocabulary, LoRA ranks (16,777,216)
MAX_POSITIONS = 2**40  # context lengths and sliding windows
MAX_QUANT_BITS = 32
MAX_JSON_DEPTH_HINT = "nested too deeply"

_SHOWN_CHARS = 60


def shown(value: object) -> str:
    """A short, safe rendering of a user value for an error line.

    Containers are named, not printed (a 10,000-deep list would overflow ``repr`` and a long one
    would not fit on a line); strings and numbers are cut to a few dozen characters.
    """
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list | tuple):
        return "a JSON list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


# ---------------------------------------------------------------- plain numbers


def finite_float(
    value: object,
    what: str,
    source: str | Path | None = None,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
) -> float:
    """``value`` as a finite float within the bounds; else InputError naming ``what``.

    ``minimum`` is inclusive, ``above`` exclusive (a bandwidth must be > 0, a measured time >= 0).
    Booleans are refused: ``true`` is not the number 1 in any of our inputs.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(source, f"{what} must be a number, got {shown(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int with hundreds of digits
        raise InputError(source, f"{what} is too large ({shown(value)})") from None
    if not math.isfinite(number):
        raise InputError(source, f"{what} must be a finite number, got {shown(value)}")
    if minimum is not None and number < minimum:
        raise InputError(source, f"{what} must be at least {minimum:g}, got {number:g}")
    if above is not None and number <= above:
        bound = "a positive number" if above == 0 else f"greater than {above:g}"
        raise InputError(source, f"{what} must be {bound}, got {number:g}")
    if maximum is not None and number > maximum:
        raise InputError(source, f"{what} must be at most {maximum:g}, got {number:g}")
    return number


def bounded_int(
    value: object,
    what: str,
    source: str | Path | None = None,
    *,
    minimum: int = 1,
    maximum: int = MAX_EXACT_INT,
) -> int:
    """``value`` as an int in [minimum, maximum]; else InputError naming ``what``.

    Floats are refused even when integral (``4096.0``, ``1e9``): a config that writes a size as a
    float is rare and usually a sign of a generated or damaged file.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(source, f"{what} must be an integer, got {shown(value)}")
    if value < minimum:
        kind = "positive" if minimum == 1 else f"at least {minimum:,}"
        raise InputError(source, f"{what} must be {kind}, got {shown(value)}")
    if value > maximum:
        raise InputError(source, f"{what} = {shown(value)} exceeds the supported maximum of {maximum:,}")
    return value


# ---------------------------------------------------------------- JSON documents


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is out of the range of a 64-bit float")
    return value


def parse_json(text: str | bytes, source: str | Path, what: str = "JSON") -> Any:
    """Strict JSON: no NaN/Infinity, no number that overflows to inf, bounded nesting.

    A 10,000-deep nesting makes the json module recurse until RecursionError, and an int of
    thousands of digits hits Python's conversion limit: both are the file's problem (exit 2).
    """
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise InputError(source, f"{what} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise InputError(source, f"{what} is {MAX_JSON_DEPTH_HINT} to be read") from None
    except UnicodeDecodeError as exc:
        raise InputError(source, f"{what} is not UTF-8 text ({exc.reason})") from None
    except ValueError as exc:  # NaN/Infinity/1e400, or an int beyond Python's digit limit
        raise InputError(
            source, f"{what} holds an invalid number ({' '.join(str(exc).split())[:120]})"
        ) from None


@dataclass(frozen=True)
class JsonFields:
    """A JSON object from a file, with typed accessors that name the file and the key path.

    ``prefix`` is the key path of this object inside the document (``"quantization_config."``),
    so an error reads ``config.json: quantization_config.bits: must be positive, got 0``.
    """

    data: Mapping[str, Any]
    source: str | Path
    prefix: str = ""

    def name(self, key: str) -> str:
        """The key path of ``key`` as printed in errors."""
        return f"{self.prefix}{key}"

    def raw(self, key: str) -> Any:
        """The value as given (None when absent or null); for presence tests only."""
        return self.data.get(key)

    def has(self, key: str) -> bool:
        """Whether ``key`` is present and not null."""
        return self.data.get(key) is not None

    def first(self, keys: tuple[str, ...]) -> str | None:
        """The first of ``keys`` present and not null (alternative spellings of one field)."""
        return next((key for key in keys if self.has(key)), None)

    def integer(
        self, key: str, default: int | None = None, *, minimum: int = 1, maximum: int = MAX_EXACT_INT
    ) -> int:
        """An integer field in range; ``default`` when absent (InputError when also None)."""
        value = self.data.get(key)
        if value is None:
            if default is None:
                raise InputError(self.source, f"missing {self.name(key)}")
            return default
        return bounded_int(value, self.name(key), self.source, minimum=minimum, maximum=maximum)

    def optional_integer(self, key: str, *, minimum: int = 1, maximum: int = MAX_EXACT_INT) -> int | None:
        """An integer field in range, or None when absent or null."""
        value = self.data.get(key)
        if value is None:
            return None
        return bounded_int(value, self.name(key), self.source, minimum=minimum, maximum=maximum)

    def number(
        self,
        key: str,
        default: float | None = None,
        *,
        minimum: float | None = None,
        above: float | None = None,
        maximum: float | None = None,
    ) -> float:
        """A finite number field in range; ``default`` when absent."""
        value = self.data.get(key)
        if value is None:
            if default is None:
                raise InputError(self.source, f"missing {self.name(key)}")
            return default
        return finite_float(value, self.name(key), self.source, minimum=minimum, above=above, maximum=maximum)

    def flag(self, key: str, default: bool) -> bool:
        """A true/false field (``"false"`` is a string, not False: refused rather than read as true)."""
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise InputError(self.source, f"{self.name(key)} must be true or false, got {shown(value)}")
        return value

    def text(self, key: str, default: str | None = None) -> str | None:
        """A string field; ``default`` when absent."""
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise InputError(self.source, f"{self.name(key)} must be a string, got {shown(value)}")
        return value

    def items(self, key: str) -> list[Any] | None:
        """A list field, or None when absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise InputError(self.source, f"{self.name(key)} must be a JSON list, got {shown(value)}")
        return value

    def integers(
        self, key: str, *, minimum: int = 0, maximum: int = MAX_EXACT_INT, max_items: int = MAX_LAYERS
    ) -> tuple[int, ...] | None:
        """A list of integers in range (layer indices, block sizes), or None when absent."""
        items = self.items(key)
        if items is None:
            return None
        if len(items) > max_items:
            raise InputError(
                self.source, f"{self.name(key)} has {len(items):,} items, more than {max_items:,}"
            )
        return tuple(
            bounded_int(item, f"{self.name(key)}[{index}]", self.source, minimum=minimum, maximum=maximum)
            for index, item in enumerate(items)
        )

    def strings(self, key: str, *, max_items: int = MAX_LAYERS) -> tuple[str, ...] | None:
        """A list of strings (``layer_types``), or None when absent."""
        items = self.items(key)
        if items is None:
            return None
        if len(items) > max_items:
            raise InputError(
                self.source, f"{self.name(key)} has {len(items):,} items, more than {max_items:,}"
            )
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise InputError(
                    self.source, f"{self.name(key)}[{index}] must be a string, got {shown(item)}"
                )
        return tuple(items)

    def child(self, key: str) -> JsonFields | None:
        """A nested object as :class:`JsonFields` (errors name ``key.``), or None when absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise InputError(self.source, f"{self.name(key)} must be a JSON object, got {shown(value)}")
        return JsonFields(value, self.source, f"{self.name(key)}.")


def json_object(value: object, source: str | Path, what: str) -> JsonFields:
    """The document (or a part of it) as :class:`JsonFields`; InputError when it is not an object."""
    if not isinstance(value, dict):
        raise InputError(source, f"{what}: expected a JSON object, got {shown(value)}")
    return JsonFields(value, source)


# ---------------------------------------------------------------- scenario bounds

MAX_BATCH = 2**20  # sequences per pass (1,048,576)
MAX_SEQUENCE_TOKENS = 2**31  # prompt or context tokens per sequence
MAX_TP = 4096  # tensor-parallel degree


def optional_float(
    value: float | None,
    what: str,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
) -> float | None:
    """:func:`finite_float` for an optional option (None passes): the API's request models use it."""
    if value is None:
        return None
    return finite_float(value, what, minimum=minimum, above=above, maximum=maximum)


def check_scenario(batch: int, prompt: int, context: int | None, tp: int) -> None:
    """Scenario sizes within the documented bounds (validate.MAX_BATCH ...); else InputError.

    The bounds keep every FLOP and byte count finite and exact enough (a batch of 10^30
    sequences would still be "a number", just not one any run can have).
    """
    bounded_int(batch, "--batch", maximum=MAX_BATCH)
    bounded_int(prompt, "--prompt", maximum=MAX_SEQUENCE_TOKENS)
    if context is not None:
        bounded_int(context, "--context", maximum=MAX_SEQUENCE_TOKENS)
    bounded_int(tp, "--tp", maximum=MAX_TP)


# ---------------------------------------------------------------- outputs


def first_non_finite(node: Any, path: str = "") -> str | None:
    """The path of the first nan/inf float in a (model_dump'ed) output tree, or None."""
    if isinstance(node, float):
        return None if math.isfinite(node) else path or "<root>"
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list | tuple):
        items = enumerate(node)
    else:
        return None
    for key, value in items:
        found = first_non_finite(value, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def ensure_finite(node: Any, what: str) -> None:
    """The last guard before an output is written: a nan/inf that got this far is our bug.

    Pydantic writes a non-finite float as ``null`` in JSON and the terminal would print "inf";
    either way a wrong number would pass as fact. Raising here turns it into the CLI's
    "internal error ... please report it" (exit 1) instead.
    """
    found = first_non_finite(node)
    if found is not None:
        raise ArithmeticError(f"{what}: non-finite number at {found}; refusing to print it")
