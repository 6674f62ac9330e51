"""The environment fingerprint of a run and the similarity between two runs (methodology §7).

A measurement is only reusable in an environment that behaves like the one it was taken in, so
every knowledge-base record is keyed by a :class:`Fingerprint` (GPU, driver, CUDA, torch and
engine versions, model, dtype, parallelism) plus a shape vector (batch, prompt length, context
length) and, when known, the operator-time vector (share of kernel time per category).

Similarity (all components in [0, 1]; a component that cannot be computed because one side
lacks the data is left out and the remaining weights are renormalised)::

    similarity = (0.60·S_env + 0.25·S_shape + 0.15·S_ops) / (sum of the weights present)

    S_env   = Σ_f w_f·match_f / Σ_f w_f          over fingerprint fields f known on both sides,
              weights ENV_WEIGHTS (GPU 0.30, model 0.20, dtype 0.10, TP 0.10, EP 0.04, PP 0.02,
              engine 0.08, engine version 0.04, torch 0.04, CUDA 0.04, driver 0.02, GPU count 0.02),
              match_f = 1 for equal values; for version strings 0.5 when only the major.minor
              prefix agrees ... 0.25 when only the major agrees, else 0; GPU names are matched
              through the GPU spec table (aliases, board names, families): 1 for the same
              entry ("A100" typed vs "NVIDIA A100-PG509-200" from a trace) or a variant with
              the same peak rates and bandwidth, 0.9 for the same family but different
              variants (A100 40GB vs 80GB), else 0
    S_shape = mean over shape dimensions d known on both sides of min(a_d, b_d) / max(a_d, b_d)
    S_ops   = cosine similarity of the two operator-share vectors (categories as axes)

Fields unknown on both sides are left out of S_env, so two sparse fingerprints are not called
identical just because they are both empty: ``coverage`` (the share of the total env weight that
was compared) is returned with the score and lookups demand a minimum coverage.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import BaseModel, Field

__all__ = [
    "COMPARABILITY_FIELDS",
    "ENV_WEIGHTS",
    "Fingerprint",
    "Similarity",
    "environment_differences",
    "fingerprint_from_report",
    "gpu_match",
    "similarity",
]

ENV_WEIGHTS: dict[str, float] = {
    "gpu": 0.30,
    "model": 0.20,
    "dtype": 0.10,
    "tp": 0.10,
    "ep": 0.04,
    "pp": 0.02,
    "engine": 0.08,
    "engine_version": 0.04,
    "torch": 0.04,
    "cuda": 0.04,
    "driver": 0.02,
    "gpu_count": 0.02,
}
VERSION_FIELDS = frozenset({"engine_version", "torch", "cuda", "driver"})
SHAPE_FIELDS = ("batch", "prompt_len", "context_len")
COMPONENT_WEIGHTS = {"env": 0.60, "shape": 0.25, "ops": 0.15}
SAME_FAMILY_MATCH = 0.9
# what must agree for an A/B comparison to measure the change and not the environment
COMPARABILITY_FIELDS = (
    "gpu", "gpu_count", "engine", "engine_version", "model", "dtype", "tp", "ep", "pp",
    "batch", "prompt_len", "context_len",
)  # fmt: skip


class Fingerprint(BaseModel):
    """What a measurement depends on. ``None`` means unknown (never guessed)."""

    gpu: str | None = None
    gpu_count: int | None = None
    driver: str | None = None
    cuda: str | None = None
    torch: str | None = None
    engine: str | None = None
    engine_version: str | None = None
    model: str | None = None
    dtype: str | None = None
    tp: int | None = None
    ep: int | None = None
    pp: int | None = None
    batch: int | None = None
    prompt_len: int | None = None
    context_len: int | None = None
    operator_shares: dict[str, float] = Field(
        default_factory=dict, description="share of kernel time per operator category"
    )

    def env_dict(self) -> dict[str, Any]:
        """The environment fields only (no shape, no operator vector)."""
        return {name: getattr(self, name) for name in ENV_WEIGHTS}

    def key(self) -> str:
        """Stable hash of environment + shape: records with the same key are versions of one run."""
        payload = {**self.env_dict(), **{name: getattr(self, name) for name in SHAPE_FIELDS}}
        return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]

    def merged(self, overrides: Mapping[str, Any]) -> Fingerprint:
        """A copy with every non-None override applied (CLI options win over the report)."""
        values = {k: v for k, v in overrides.items() if v is not None and k in type(self).model_fields}
        return self.model_copy(update=values)


class Similarity(BaseModel):
    """Similarity of two runs with its parts, so a lookup can say why it matched."""

    score: float
    env: float | None
    shape: float | None
    ops: float | None
    coverage: float = Field(description="share of the environment weight compared (fields known on both)")
    differences: list[str] = Field(default_factory=list, description="environment fields that differ")


def _normalise(value: Any) -> str:
    return str(value).strip().lower().replace("nvidia ", "")


def _version_match(a: str, b: str) -> float:
    if a == b:
        return 1.0
    pa, pb = a.split("."), b.split(".")
    if pa[:2] == pb[:2] and len(pa) > 1:
        return 0.5
    return 0.25 if pa[0] == pb[0] else 0.0


@functools.lru_cache(maxsize=256)
def _gpu_identity(name: str) -> tuple[str | None, str | None]:
    """(spec key, family) of a GPU name through the spec table; unknown parts stay None."""
    from infersight.errors import InputError
    from infersight.hardware.gpu_specs import list_gpus, lookup_gpu

    try:
        spec = lookup_gpu(name)
        return spec.key, spec.family or spec.key
    except InputError:
        pass
    bare = re.sub(r"^(nvidia|amd)\s+", "", name.strip(), flags=re.IGNORECASE).lower()
    families = {spec.family for spec in list_gpus() if spec.family}
    family = next((f for f in families if re.match(rf"{re.escape(f.lower())}\b", bare)), None)
    return None, family


def _same_rates(key_a: str, key_b: str) -> bool:
    """Two table entries with the same peak rates and bandwidth (V100 16GB vs 32GB) run alike."""
    from infersight.hardware.gpu_specs import list_gpus

    specs = {spec.key: spec for spec in list_gpus()}
    a, b = specs.get(key_a), specs.get(key_b)
    return (
        a is not None
        and b is not None
        and a.family == b.family
        and a.peak_tflops == b.peak_tflops
        and a.memory_bandwidth_gb_per_s == b.memory_bandwidth_gb_per_s
    )


def gpu_match(a: str, b: str) -> float:
    """1 for the same GPU (by spec entry, equal name, or a variant with the same rates), 0.9 for the
    same family, else 0."""
    if _normalise(a) == _normalise(b):
        return 1.0
    key_a, family_a = _gpu_identity(a)
    key_b, family_b = _gpu_identity(b)
    if key_a is not None and (key_a == key_b or (key_b is not None and _same_rates(key_a, key_b))):
        return 1.0
    if family_a is not None and family_a == family_b:
        unspecific = key_a is None or key_b is None or _normalise(a) == family_a.lower()
        return 1.0 if unspecific or _normalise(b) == family_b.lower() else SAME_FAMILY_MATCH
    return 0.0


def _field_match(name: str, va: Any, vb: Any) -> float:
    if name == "gpu":
        return gpu_match(str(va), str(vb))
    na, nb = _normalise(va), _normalise(vb)
    return _version_match(na, nb) if name in VERSION_FIELDS else float(na == nb)


def environment_differences(a: Fingerprint, b: Fingerprint) -> list[str]:
    """The comparability fields known on both sides that differ ("gpu: V100 vs A100")."""
    out = []
    for name in COMPARABILITY_FIELDS:
        va, vb = getattr(a, name), getattr(b, name)
        if va is not None and vb is not None and _field_match(name, va, vb) < 1.0:
            out.append(f"{name}: {va} vs {vb}")
    return out


def _env_similarity(a: Fingerprint, b: Fingerprint) -> tuple[float | None, float, list[str]]:
    total = compared = 0.0
    score = 0.0
    differences: list[str] = []
    for name, weight in ENV_WEIGHTS.items():
        total += weight
        va, vb = getattr(a, name), getattr(b, name)
        if va is None or vb is None:
            continue
        compared += weight
        match = _field_match(name, va, vb)
        if match < 1.0:
            differences.append(f"{name}: {va} vs {vb}")
        score += weight * match
    if compared == 0:
        return None, 0.0, differences
    return score / compared, compared / total, differences


def _shape_similarity(a: Fingerprint, b: Fingerprint) -> float | None:
    ratios = []
    for name in SHAPE_FIELDS:
        va, vb = getattr(a, name), getattr(b, name)
        if va is None or vb is None or va <= 0 or vb <= 0:
            continue
        ratios.append(min(va, vb) / max(va, vb))
    return sum(ratios) / len(ratios) if ratios else None


def _ops_similarity(a: Mapping[str, float], b: Mapping[str, float]) -> float | None:
    if not a or not b:
        return None
    axes = set(a) | set(b)
    dot = sum(a.get(k, 0.0) * b.get(k, 0.0) for k in axes)
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    if na == 0 or nb == 0:
        return None
    return max(0.0, min(1.0, dot / (na * nb)))


def similarity(a: Fingerprint, b: Fingerprint) -> Similarity:
    """The documented similarity of two fingerprints (see the module docstring)."""
    env, coverage, differences = _env_similarity(a, b)
    parts = {
        "env": env,
        "shape": _shape_similarity(a, b),
        "ops": _ops_similarity(a.operator_shares, b.operator_shares),
    }
    present = {name: value for name, value in parts.items() if value is not None}
    weight = sum(COMPONENT_WEIGHTS[name] for name in present)
    score = (
        sum(COMPONENT_WEIGHTS[name] * value for name, value in present.items()) / weight if weight else 0.0
    )
    return Similarity(
        score=round(score, 6),
        env=parts["env"],
        shape=parts["shape"],
        ops=parts["ops"],
        coverage=round(coverage, 6),
        differences=differences,
    )


def _get(data: Any, *path: str | int) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(data, list) or len(data) <= step:
                return None
        elif not isinstance(data, dict):
            return None
        data = data[step] if isinstance(step, int) else data.get(step)
    return data


def fingerprint_from_report(report: Mapping[str, Any]) -> Fingerprint:
    """What an ``infersight analyze --json`` report says about its environment (unknowns stay None).

    GPU name and count come from the traces; model, dtype, shapes and TP from the theory part
    when ``--model`` was given; the operator vector from the category summary.
    """
    traces = _get(report, "profile", "traces") or []
    gpus = [g for t in traces if isinstance(t, dict) for g in (t.get("gpus") or [])]
    devices = _get(report, "profile", "devices") or []
    categories = _get(report, "profile", "categories") or []
    estimate = _get(report, "theory", "estimate") or {}
    scenario = estimate.get("scenario") or {} if isinstance(estimate, dict) else {}
    shares = {
        str(c["category"]): float(c["share"])
        for c in categories
        if isinstance(c, dict) and c.get("category") is not None and c.get("share") is not None
    }
    return Fingerprint(
        gpu=gpus[0] if gpus else None,
        gpu_count=len(devices) or None,
        model=estimate.get("model"),
        dtype=estimate.get("compute_dtype"),
        tp=scenario.get("tp"),
        batch=scenario.get("batch"),
        prompt_len=scenario.get("prompt_len"),
        context_len=scenario.get("context_len"),
        operator_shares=shares,
    )
