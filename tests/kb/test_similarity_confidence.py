"""Similarity and confidence formulas on hand-built fingerprints whose answers are known."""

from __future__ import annotations

import itertools
import math

import pytest

from infersight.kb.confidence import recommendation_confidence, stability_from_cv
from infersight.kb.fingerprint import ENV_WEIGHTS, Fingerprint, fingerprint_from_report, similarity
from infersight.kb.store import StoredAb

H100 = Fingerprint(
    gpu="NVIDIA H100 80GB HBM3",
    model="llama-3-8b",
    dtype="bf16",
    tp=1,
    torch="2.4.1",
    batch=8,
    prompt_len=1024,
    context_len=2048,
    operator_shares={"GEMM": 0.6, "attention": 0.4},
)


def test_identical_fingerprints_are_fully_similar() -> None:
    sim = similarity(H100, H100)
    assert sim.score == pytest.approx(1.0)
    assert sim.coverage == pytest.approx(
        sum(ENV_WEIGHTS[f] for f in ("gpu", "model", "dtype", "tp", "torch"))
    )
    assert sim.differences == []


def test_similarity_formula_by_hand() -> None:
    other = H100.model_copy(
        update={"gpu": "A100-SXM4-80GB", "torch": "2.4.0", "batch": 4, "operator_shares": {"GEMM": 1.0}}
    )
    sim = similarity(H100, other)
    compared = 0.30 + 0.20 + 0.10 + 0.10 + 0.04
    env = (0.20 + 0.10 + 0.10 + 0.04 * 0.5) / compared  # GPU differs, torch same major.minor
    shape = (4 / 8 + 1 + 1) / 3
    ops = 0.6 / math.sqrt(0.6**2 + 0.4**2)
    assert sim.env == pytest.approx(env)
    assert sim.shape == pytest.approx(shape)
    assert sim.ops == pytest.approx(ops)
    assert sim.score == pytest.approx(0.60 * env + 0.25 * shape + 0.15 * ops, abs=1e-6)
    assert any(d.startswith("gpu:") for d in sim.differences)


def test_missing_components_are_renormalised_not_zero() -> None:
    a = Fingerprint(gpu="H100", model="m")
    b = Fingerprint(gpu="H100", model="m", batch=3)
    sim = similarity(a, b)
    assert (sim.shape, sim.ops, sim.score) == (None, None, 1.0)
    assert similarity(Fingerprint(), Fingerprint()).score == 0.0  # nothing known: nothing matches


def test_fingerprint_from_report() -> None:
    report = {
        "profile": {
            "traces": [{"gpus": ["H100"]}],
            "devices": [{}, {}],
            "categories": [{"category": "GEMM", "share": 1.0}],
        },
        "theory": {
            "estimate": {
                "model": "llama",
                "compute_dtype": "bf16",
                "scenario": {"batch": 2, "prompt_len": 128, "context_len": 256, "tp": 2},
            }
        },
    }
    fp = fingerprint_from_report(report)
    assert (fp.gpu, fp.gpu_count, fp.model, fp.dtype, fp.tp, fp.batch, fp.context_len) == (
        "H100",
        2,
        "llama",
        "bf16",
        2,
        2,
        256,
    )
    assert fp.operator_shares == {"GEMM": 1.0}
    assert fingerprint_from_report({}).gpu is None


_IDS = itertools.count(1)


def _ab(verdict: str, fingerprint: Fingerprint) -> StoredAb:
    """A distinct stored A/B (its own id and key: another baseline/candidate pair)."""
    ab_id = next(_IDS)
    return StoredAb(
        id=ab_id,
        ab_key=f"k{ab_id}",
        version=1,
        created_at="t",
        recommendation_type="r",
        fingerprint=fingerprint,
        mode="command",
        baseline="a",
        candidate="b",
        repeats=5,
        warmup=1,
        baseline_median_s=1.0,
        baseline_std_s=0.0,
        candidate_median_s=0.9,
        candidate_std_s=0.0,
        baseline_cv=0.01,
        candidate_cv=0.01,
        gain=0.1,
        gain_ci_low=0.05,
        gain_ci_high=0.15,
        verdict=verdict,
        samples={},
    )


def test_confidence_formula() -> None:
    none = recommendation_confidence(H100, [], sample_cv=0.0)
    assert (none.score, none.level) == (0.25, "low")
    one = recommendation_confidence(H100, [_ab("improved", H100)], sample_cv=0.0)
    assert one.score == pytest.approx(2 / 3, abs=1e-6) and one.level == "high"
    mixed = recommendation_confidence(H100, [_ab("improved", H100), _ab("regressed", H100)], sample_cv=0.0)
    assert mixed.p_success == pytest.approx(0.5) and mixed.level == "medium"
    noisy = recommendation_confidence(H100, [_ab("improved", H100)], sample_cv=0.12)
    assert (noisy.stability, noisy.level) == (0.0, "low")
    assert stability_from_cv(0.05) == pytest.approx(0.75)
    far = H100.model_copy(update={"gpu": "T4", "model": "other", "dtype": "fp32"})
    distant = recommendation_confidence(H100, [_ab("improved", far)], sample_cv=0.0)
    assert distant.score < one.score
