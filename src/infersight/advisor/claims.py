"""Claim-level check of narrated sentences: a number must be the value of the metric it is said of.

Why not "does the number appear anywhere in the evidence": with dozens of evidence values and
unit scalings, almost any number appears somewhere ("idle 0.73" matched 729 graph launches
×1e-3; "idle 12.9%" matched the launch-overhead ratio). So a sentence is parsed into claims:

1. Normalise the writing: ``pct`` / ``percent`` / ``per cent`` → ``%``, spelled-out numbers
   with a unit or of 11 and above ("seventy-three percent") → digits, time words → ``ms``/``µs``/…
2. Find the metric words of :data:`VOCABULARY` (idle, launch overhead, utilisation, copy, …);
   each names a set of evidence metrics.
3. Bind each number to the nearest metric mention whose kind (fraction, time, count, bytes,
   rate, multiplier) fits the number's unit; a number with no fitting mention is checked against
   every evidence value of its kind (the old, weaker check — still unit-aware).
4. A claim holds when one value of *that* metric in the *cited* findings equals the number at the
   precision it is written (half a unit of the last digit), after the unit conversion of its
   kind; an expected gain holds anywhere inside the finding's range (as a fraction of wall time
   or as the speed-up ``1 / (1 - gain)``).

Causal and gain claims ("will fix", "will give a 2x speedup", "disabling X …") need a cited
finding that states them: certainty words are never evidence, every lever the sentence names
must be in the cited findings' advice (with the same direction: "disabling CUDA graphs" is not
"capture in CUDA graphs"), and a stated gain (a number, "double", "twice") must lie in a cited
finding's expected gain — a qualitative one ("fusing could reduce kernel time") only restates advice.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from infersight.rules.finding import Finding

__all__ = ["Claim", "ClaimCheck", "check_sentence", "normalise"]

Kind = Literal["fraction", "time", "count", "bytes", "rate", "multiplier", "bare"]

# metric word (regex) -> substrings of evidence metric names it speaks of ("@" = a pseudo metric)
VOCABULARY: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"\bidle\b|\bidling\b", ("idle",)),
    (r"launch[- ]?(?:overhead|bound|latency)|dispatch", ("launch_overhead", "host_launch", "avg_launch")),
    (r"utili[sz]ation|\bbusy\b|gpu[- ]bound|gpu share|kernels run", ("gpu_share", "busy", "gpu_bucket")),
    (r"\bcop(?:y|ies|ying)\b|memcpy|\bh2d\b|\bd2h\b|transfer", ("copy", "uvm")),
    (r"communicat\w*|nccl|all[- ]?reduce|collective", ("comm", "nccl", "collective", "busbw")),
    (r"host[- ]to[- ]device|device[- ]to[- ]host|\bhtod\b|\bdtoh\b", ("copy",)),
    (r"(?<!to-)(?<!to )\bhost\b(?![- ]to[- ])|\bcpu\b", ("host",)),
    (r"\blink\b|pcie|nvlink", ("link",)),
    (r"\bkernels?\b(?! time)", ("kernel_count", "avg_kernel", "kernel_time")),
    (r"average kernel|averag\w*|mean kernel", ("avg_",)),
    (r"\bgraphs?\b", ("graph",)),
    (r"\bgaps?\b", ("gap",)),
    (r"\bwall\b|\bwindow\b|total time|\bspan\b", ("wall", "activity_window", "@window")),
    (r"threshold|limit", ("@threshold",)),
    (
        r"expected gain|\bgains?\b|\bsav(?:e|es|ed|ing|ings)\b|speed[- ]?ups?|faster|\breduc\w*|\bcut\b",
        ("@gain",),
    ),
    (r"elementwise|element-wise|\bgemm|\bmoe\b|attention|categor\w*", ("category",)),
    (r"bandwidth|gb/s", ("gb_per_s", "busbw")),
)
UNIT_KIND: dict[str, tuple[Kind, float]] = {
    "%": ("fraction", 0.01),
    "x": ("multiplier", 1.0),
    "×": ("multiplier", 1.0),
    "times": ("multiplier", 1.0),
    "fold": ("multiplier", 1.0),
    "ns": ("time", 1.0),
    "µs": ("time", 1e3),
    "us": ("time", 1e3),
    "ms": ("time", 1e6),
    "s": ("time", 1e9),
    "b": ("bytes", 1.0),
    "kb": ("bytes", 1e3),
    "mb": ("bytes", 1e6),
    "gb": ("bytes", 1e9),
    "tb": ("bytes", 1e12),
    "kib": ("bytes", 1024.0),
    "mib": ("bytes", 1024.0**2),
    "gib": ("bytes", 1024.0**3),
    "gb/s": ("rate", 1.0),
    "tb/s": ("rate", 1e3),
    "mb/s": ("rate", 1e-3),
}
COUNT_UNITS = {
    "kernels", "steps", "launches", "calls", "gaps", "devices", "gpus", "ranks", "layers", "copies"
}  # fmt: skip
COUNT_UNIT_MENTION = {"kernels": "kernel", "launches": "launch_count", "gaps": "gap", "copies": "copy"}
NUMBER = re.compile(
    r"(?<![\w./\-])([-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?)(\s?(?:%|(?i:gb/s|tb/s|mb/s)|[a-zA-Zµ×]+))?"
)
CERTAINTY = re.compile(
    r"\bwill (?:fix|solve|eliminate|remove|resolve|cure)\b|\b(?:guarantee[sd]?|definitely|certainly|always"
    r"|completely (?:fix|solve|remove))\b|\bfix(?:es)? (?:it|this|the problem)\b",
    re.IGNORECASE,
)
GAIN_CLAIM = re.compile(
    r"\b(?:will|would|should|could|can|may)\s+(?:\w+\s+)?(?:give|yield|deliver|bring|make|double|halve"
    r"|improve|speed|boost|increase|cut|reduce|save|gain|remove|lower|raise)"
    r"|\d\s*(?:x|×|-fold|times)\b|speed[- ]?ups?\b|\btwice\b|\bdouble\b|\bhalve\b",
    re.IGNORECASE,
)
LEVERS: dict[str, str] = {
    "cuda graphs": r"cuda[- ]?graphs?|\bgraph (?:capture|replay)",
    "fp8": r"\bfp8\b",
    "int4": r"\bint4\b",
    "int8": r"\bint8\b",
    "quantisation": r"quantiz|quantis",
    "fusion": r"\bfus(?:e|ed|ing|ion)\b",
    "torch.compile": r"torch\.compile",
    "batch size": r"\bbatch",
    "flashattention": r"flash[- ]?(?:attention|infer)",
    "tensor parallelism": r"tensor[- ]parallel|\btp\b",
    "pinned memory": r"pinned|page[- ]locked",
    "overlap": r"\boverlap",
    "nccl": r"\bnccl",
    "streams": r"\bstreams?\b",
}
NEGATION = r"\b(?:disabl\w*|without|turn(?:ing)? off|remov\w*|stop\w*|avoid\w*|no|drop\w*)\s+(?:\w+\s+){0,2}"
WORD_MULTIPLIERS = {
    "twice": 2,
    "double": 2,
    "doubles": 2,
    "doubling": 2,
    "halve": 2,
    "halves": 2,
    "triple": 3,
}
METRIC_NAME = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
RANGE = re.compile(r"(?<![\w.\-])(\d+(?:\.\d+)?)\s*[-–]\s*(\d+(?:\.\d+)?)\s*(%|x|×|ms|µs|us|ns|s)(?![\w/])")
# "rank 3", "device 0", "step 12", "§3.2": a number that names something states no value
IDENTIFIER_BEFORE = re.compile(r"(?:\b(?:rank|device|dev|gpu|step|layer|stream|tp|pp|ep|id)|§|#)\s*$", re.I)
CLAUSE_COST = 1000
CLAUSE_BREAK = re.compile(r"[,;:]|\bwhile\b|\bwhereas\b|\bbut\b")
WORD_NUMBERS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
WORD_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
WORD_RUN = re.compile(
    r"\b(?:(?:" + "|".join(sorted([*WORD_NUMBERS, *WORD_SCALES], key=len, reverse=True)) + r")\b"
    r"(?:[\s-]+(?:and[\s-]+)?)?)+",
    re.IGNORECASE,
)
UNIT_WORDS = (
    (re.compile(r"\s*(?:per[\s-]?cent(?:age)?|pct)\b", re.I), "%"),
    (re.compile(r"\s*milliseconds?\b", re.I), " ms"),
    (re.compile(r"\s*microseconds?\b", re.I), " µs"),
    (re.compile(r"\s*nanoseconds?\b", re.I), " ns"),
    (re.compile(r"(?<=\d)\s*seconds?\b", re.I), " s"),
)
UNIT_AFTER = re.compile(
    r"\s*(?:%|per[\s-]?cent|pct|times|fold|x\b|ms\b|milli|micro|nano|seconds?|kernels|launches)", re.I
)


class Claim(BaseModel):
    """One number of a kept sentence and the metric value it was matched with."""

    written: str
    unit: str
    metric: str = ""
    matched_value: float | None = None
    finding: str = ""


@dataclass(frozen=True)
class Fact:
    """A value a cited finding states: of which metric, of which kind, at what precision."""

    metric: str
    value: float
    kind: Kind
    finding: str
    low: float | None = None  # a range (expected gain): any value inside holds
    high: float | None = None
    from_text: bool = False  # read from the finding's words, not an evidence field


@dataclass(frozen=True)
class Mention:
    """A metric word in a sentence: where, and which evidence metric substrings it names."""

    start: int
    end: int
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Number:
    """A number of a sentence with its unit kind and scale to the canonical unit."""

    start: int
    end: int
    written: str
    value: float
    unit: str
    kind: Kind
    scale: float


class ClaimCheck(BaseModel):
    """The verdict on one sentence: its claims when it holds, the reason when it does not."""

    ok: bool
    claims: list[Claim] = []
    reason: str = ""


def _words_to_number(words: str) -> int | None:
    total, current = 0, 0
    for word in re.split(r"[\s-]+", words.lower()):
        if word in ("", "and"):
            continue
        if word in WORD_NUMBERS:
            current += WORD_NUMBERS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in WORD_SCALES:
            total += max(current, 1) * WORD_SCALES[word]
            current = 0
        else:
            return None
    return total + current


def normalise(text: str) -> str:
    """Units written as words → symbols; spelled numbers with a unit (or >= 11) → digits."""

    def spelled(match: re.Match[str]) -> str:
        words = match.group(0)
        trailing = words[len(words.rstrip(" -")) :]
        value = _words_to_number(words.rstrip(" -"))
        if value is None:
            return words
        has_unit = bool(UNIT_AFTER.match(text, match.end() - len(trailing)))
        return f"{value}{trailing}" if has_unit or value > 10 else words

    text = WORD_RUN.sub(spelled, text)
    for pattern, symbol in UNIT_WORDS:
        text = pattern.sub(symbol, text)
    return RANGE.sub(r"\1\3 to \2\3", text)  # "3.4-6.8%" states 3.4% and 6.8%


def _numbers(text: str) -> list[Number]:
    """Numbers with their unit; digits glued to letters (H100, fp8, Llama-3-8B) and numbers after
    "rank", "device", "step", "§", … are names, not claims."""
    out = []
    for match in NUMBER.finditer(text):
        unit_raw = match.group(2) or ""
        unit = unit_raw.strip().lower()
        glued = bool(unit_raw) and not unit_raw[0].isspace()
        known = unit in UNIT_KIND or unit in COUNT_UNITS
        if glued and not known:
            continue
        try:
            value = float(match.group(1).replace(",", ""))
        except ValueError:
            continue
        if not math.isfinite(value) or IDENTIFIER_BEFORE.search(text, 0, match.start()):
            continue
        kind: Kind
        if unit in UNIT_KIND:
            kind, scale = UNIT_KIND[unit]
        elif unit in COUNT_UNITS:
            kind, scale = "count", 1.0
        else:
            kind, scale, unit = "bare", 1.0, ""
        end = match.end() if unit else match.end(1)
        written = match.group(1).replace(",", "")
        out.append(Number(match.start(), end, written, value, unit, kind, scale))
    return out


def _mentions(text: str) -> list[Mention]:
    """Metric words of the vocabulary, and evidence metric names written as such (``idle_ratio``)."""
    literal = [Mention(m.start(), m.end(), (m.group(0).lower(),)) for m in METRIC_NAME.finditer(text)]
    return literal + [
        Mention(m.start(), m.end(), keys)
        for pattern, keys in VOCABULARY
        for m in re.finditer(pattern, text, re.IGNORECASE)
        if not any(n.start <= m.start() < n.end for n in literal)
    ]


def _metric_kind(metric: str, unit: str) -> Kind:
    if unit == "ns" or metric.endswith("_ns"):
        return "time"
    if unit == "fraction" or re.search(r"ratio|share|coverage|efficiency|fraction", metric):
        return "fraction"
    if unit == "count" or re.search(r"count|collectives|instances|copies", metric):
        return "count"
    if "bytes" in metric:
        return "bytes"
    if "gb_per_s" in metric:
        return "rate"
    return "bare"


def _text_facts(text: str, finding: str) -> list[Fact]:
    """Facts written in a finding's own words (title, advice, notes): bound like a sentence's."""
    text = normalise(text)
    mentions = _mentions(text)
    facts = []
    for number in _numbers(text):
        own_unit = COUNT_UNIT_MENTION.get(number.unit)
        mention = _nearest(number, mentions, lambda _keys: True, text)
        metric = own_unit or (",".join(mention.keys) if mention else "@text")
        facts.append(Fact(metric, number.value * number.scale, number.kind, finding, from_text=True))
    return facts


def findings_facts(findings: Iterable[Finding]) -> list[Fact]:
    """Every value the findings state, typed by kind (module docstring)."""
    facts: list[Fact] = []
    for f in findings:
        for e in f.evidence:
            if isinstance(e.value, int | float) and not isinstance(e.value, bool):
                kind = _metric_kind(e.metric, e.unit)
                facts.append(Fact(e.metric, float(e.value), kind, f.id))
                if e.metric == "idle_ratio":
                    facts.append(Fact("busy_gpu_share", 1.0 - float(e.value), kind, f.id))
                if e.threshold is not None:
                    facts.append(Fact("@threshold", float(e.threshold), kind, f.id))
            elif isinstance(e.value, str):
                facts += _text_facts(e.value, f.id)
            facts += _text_facts(e.note, f.id)
        if f.expected_gain is not None:
            low, high = f.expected_gain.low, f.expected_gain.high
            facts.append(Fact("@gain", high, "fraction", f.id, low=low, high=high))
            facts += _text_facts(f.expected_gain.basis, f.id)
        if f.location.time_range_ns is not None:
            start, end = f.location.time_range_ns
            facts.append(Fact("@window", float(end - start), "time", f.id))
        for text in (f.title, f.confidence_reason, *f.advice, *f.verification):
            facts += _text_facts(text, f.id)
    return facts


def _distance(number: Number, mention: Mention, text: str = "") -> int:
    """Characters between them; a clause boundary (comma, semicolon, "while", "but") costs CLAUSE_COST."""
    if mention.end <= number.start:
        between = text[mention.end : number.start]
    elif mention.start >= number.end:
        between = text[number.end : mention.start]
    else:
        return 0
    return len(between) + (CLAUSE_COST if CLAUSE_BREAK.search(between) else 0)


def _nearest(
    number: Number, mentions: Sequence[Mention], fits: Callable[[Sequence[str]], bool], text: str
) -> Mention | None:
    """The closest mention (same clause first) whose metrics can hold a number of this kind."""
    ranked = sorted(mentions, key=lambda m: _distance(number, m, text))
    return next((m for m in ranked if fits(m.keys)), None)


def _kinds_fit(number: Kind, fact: Kind) -> bool:
    if number == fact:
        return True
    if number == "bare":
        return fact in ("fraction", "count", "bare", "multiplier")
    if number == "count":
        return fact == "bare"
    if number == "multiplier":
        return fact in ("bare", "fraction")
    return False


def _holds(number: Number, fact: Fact) -> float | None:
    """The fact's value in the number's unit when equal at the written precision, else None."""
    if not _kinds_fit(number.kind, fact.kind):
        return None
    written = number.written
    decimals = len(written.split(".")[1]) if "." in written and "e" not in written.lower() else 0
    half_ulp = 0.5 * 10 ** (-decimals) + 1e-9
    stated = abs(number.value)
    if fact.low is not None and fact.high is not None:
        if number.kind == "multiplier":
            low, high = 1 / (1 - min(fact.low, 0.99)), 1 / (1 - min(fact.high, 0.99))
        else:
            low, high = fact.low / number.scale, fact.high / number.scale
        return stated if low - half_ulp <= stated <= high + half_ulp else None
    candidate = abs(fact.value) / number.scale
    return candidate if abs(stated - candidate) <= half_ulp else None


def _metric_of(fact: Fact, keys: Sequence[str]) -> bool:
    return any(key in fact.metric for key in keys)


def _label(number: Number) -> str:
    return number.written + ("" if number.unit in ("", "%") else " ") + number.unit


def _check_number(
    number: Number, mentions: Sequence[Mention], facts: Sequence[Fact], text: str
) -> Claim | str:
    """A claim when the number is the value of the metric it is said of; else the reason."""
    own_unit = COUNT_UNIT_MENTION.get(number.unit)

    def fits(keys: Sequence[str]) -> bool:
        return any(_kinds_fit(number.kind, f.kind) for f in facts if _metric_of(f, keys))

    mention = (
        Mention(number.start, number.end, (own_unit,)) if own_unit else _nearest(number, mentions, fits, text)
    )
    if mention is None and any(_distance(number, m, text) <= 40 for m in mentions):
        label = _label(number)
        return f"{label}: not a value of the metric it is said of"
    pool = (
        [f for f in facts if _metric_of(f, mention.keys)] if mention else [f for f in facts if f.low is None]
    )
    if mention is not None and not own_unit:  # word order varies: any metric named in the same clause
        same_clause = [m for m in mentions if _distance(number, m, text) < CLAUSE_COST and fits(m.keys)]
        pool += [f for m in same_clause if m != mention for f in facts if _metric_of(f, m.keys)]
    for fact in pool:
        matched = _holds(number, fact)
        if matched is not None:
            return Claim(
                written=number.written, unit=number.unit, metric=fact.metric, matched_value=fact.value,
                finding=fact.finding,
            )  # fmt: skip
    label = _label(number)
    if mention is None:
        return f"{label}: not in the evidence"
    names = sorted(
        {f.metric for f in pool if not f.metric.startswith("@") and not f.from_text}
        | {k.strip("@") for k in mention.keys if k.startswith("@")}
    )
    return f"{label}: not the value of {'/'.join(names[:3]) or 'that metric'} in the cited finding(s)"


def _check_causal(body: str, cited: Sequence[Finding]) -> str | None:
    """The reason a causal / gain statement is not backed by the cited findings, or None."""
    certainty = CERTAINTY.search(body)
    if certainty:
        return f"'{certainty.group(0)}': a certain outcome no finding states (findings give expected gains)"
    claim = GAIN_CLAIM.search(body)
    if not claim:
        return None
    advice = " ".join(
        [*(a for f in cited for a in f.advice), *(f.expected_gain.basis for f in cited if f.expected_gain)]
    )
    clause = body[max((m.end() for m in re.finditer(r"[,;:]", body[: claim.start()])), default=0) :]
    for lever, pattern in LEVERS.items():  # the levers of the clause that claims the gain
        if re.search(pattern, clause, re.IGNORECASE) and not re.search(pattern, advice, re.IGNORECASE):
            return f"gain claim about {lever}: no cited finding advises it"
        negated = NEGATION + f"(?:{pattern})"
        if re.search(negated, clause, re.IGNORECASE) and not re.search(negated, advice, re.IGNORECASE):
            return f"gain claim for turning off {lever}: no cited finding advises that"
    gains = [f.expected_gain for f in cited if f.expected_gain]
    quantified = bool(_numbers(clause)) or any(re.search(rf"\b{w}\b", clause, re.I) for w in WORD_MULTIPLIERS)
    if not gains:  # "fusing could reduce kernel time" restates advice; "a 2x speed-up" needs a gain
        return "gain claim, but no cited finding states an expected gain" if quantified else None
    for word, factor in WORD_MULTIPLIERS.items():
        if re.search(rf"\b{word}\b", body, re.IGNORECASE) and not any(
            1 / (1 - min(g.high, 0.99)) >= factor for g in gains
        ):
            return f"'{word}': a {factor}x gain, outside every cited finding's expected gain"
    return None


def _unquote(body: str, cited: Sequence[Finding]) -> str:
    """The sentence without verbatim quotes of the cited findings' own text (a title, an advice line)."""
    for f in cited:
        for quote in (f.title, *f.advice, f.confidence_reason):
            if len(quote) >= 20 and quote in body:
                body = body.replace(quote, " ")
    return body


SCOPE = re.compile(r"\b(device|dev|gpu|rank)\s*(\d+)\b", re.IGNORECASE)


def _in_scope(text: str, cited: Sequence[Finding]) -> list[Finding]:
    """The cited findings about the devices/ranks the sentence names (all of them when it names none)."""
    named: dict[str, set[int]] = {}
    for kind, number in SCOPE.findall(text):
        axis = "rank" if kind.lower() == "rank" else "device"
        named.setdefault(axis, set()).add(int(number))

    def about(f: Finding) -> bool:
        for axis, values in named.items():
            where = f.location.rank if axis == "rank" else f.location.device
            if where is not None and where not in values:
                return False
        return True

    return [f for f in cited if about(f)]


def check_sentence(body: str, cited: Sequence[Finding]) -> ClaimCheck:
    """Check one sentence (citations removed) against the findings it cites."""
    text = normalise(_unquote(body, cited))
    scoped = _in_scope(text, cited)
    if not scoped:
        return ClaimCheck(ok=False, reason="speaks of a device/rank that no cited finding is about")
    cited = scoped
    reason = _check_causal(text, cited)
    if reason:
        return ClaimCheck(ok=False, reason=reason)
    facts = findings_facts(cited)
    mentions = _mentions(text)
    claims, problems = [], []
    for number in _numbers(text):
        outcome = _check_number(number, mentions, facts, text)
        if isinstance(outcome, Claim):
            claims.append(outcome)
        else:
            problems.append(outcome)
    if problems:
        return ClaimCheck(ok=False, reason="; ".join(problems))
    if re.search(r"\b(?:" + "|".join(WORD_NUMBERS) + r")\b", text, re.I) and GAIN_CLAIM.search(text):
        return ClaimCheck(ok=False, reason="a gain stated in words the check cannot verify")
    return ClaimCheck(ok=True, claims=claims)
