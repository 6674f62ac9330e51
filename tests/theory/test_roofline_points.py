"""The roofline geometry both drawings use (HTML inline SVG, matplotlib plot): one roof, one set of points."""

from __future__ import annotations

import re

import pytest
from tests.conftest import shared_file, shared_traces

from infersight.render.html import roofline_svg
from infersight.theory.inputs import TheoryOptions
from infersight.theory.report import TheoryReport
from infersight.theory.roofline_points import category_points, roof
from infersight.theory.run import theory_report

SGLANG_QWEN3 = "kineto/tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz"
QWEN3_CONFIG = "configs/qwen3-8b.config.json"


@pytest.fixture(scope="module")
def sglang_report() -> TheoryReport:
    traces = shared_traces(SGLANG_QWEN3)
    return theory_report(TheoryOptions(config=shared_file(QWEN3_CONFIG)), batch=1, prompt=1024, traces=traces)


def test_roof_bends_at_the_ridge() -> None:
    # H100 SXM bf16 dense 989 TFLOP/s, 3.35 TB/s: ridge at 295.2 FLOP/B
    corners = roof(989e12, 3.35e12, 1.0, 1e4)
    assert corners == [(1.0, 3.35e12), (pytest.approx(989e12 / 3.35e12), 989e12), (1e4, 989e12)]
    # the whole range on one side of the ridge: a straight line, no corner
    assert roof(989e12, 3.35e12, 1.0, 10.0) == [(1.0, 3.35e12), (10.0, 3.35e12 * 10)]
    assert roof(989e12, 3.35e12, 1e3, 1e4) == [(1e3, 989e12), (1e4, 989e12)]


def test_category_points_from_the_measured_rows(sglang_report: TheoryReport) -> None:
    measured = sglang_report.measured
    assert measured is not None
    points = category_points(measured)
    gemm = next(p for p in points if p.phase == "prefill" and p.category == "GEMM")
    row = next(r for r in measured.rows if r.phase == "prefill" and r.category == "GEMM")
    seconds_per_step = row.total_ns / row.steps / 1e9  # independent of achieved_flops_per_s
    assert gemm.achieved_flop_per_s == pytest.approx(row.theory_flops / seconds_per_step)
    assert gemm.intensity == pytest.approx(row.theory_flops / row.theory_bytes)
    assert gemm.achieved_flop_per_s / gemm.theory_flop_per_s == pytest.approx(row.e_roof)  # T_roof / T
    # categories with no theory operator (E_roof n/a) are not drawn
    assert all(p.category not in ("reduction", "other") for p in points)


def test_the_html_roofline_draws_these_points(sglang_report: TheoryReport) -> None:
    measured = sglang_report.measured
    assert measured is not None
    svg = roofline_svg(measured, sglang_report.estimate.hardware)
    points = category_points(measured)
    assert len(re.findall(r"<circle [^>]*fill=\"none\"", svg)) == len(points)  # theory, hollow
    assert svg.count("<polyline") == 1
    for point in points:
        assert f"{point.label} measured: {point.achieved_flop_per_s / 1e12:.3g} TFLOP/s" in svg
