"""The report charts (inlined uPlot) on real traces: size, no network, data, a headless-Chromium render."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.conftest import require_extra, shared_traces

from infersight import api
from infersight.analyses.html_data import device_tracks
from infersight.api.html_data import html_extras
from infersight.render.html import render_html

require_extra("jinja2", "html")

VLLM = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
NSYS_2GPU = "nsys/h100x2_llm_train_nsys2026.sqlite"
MAX_BYTES = 1_000_000
CHARTS = ["chart-attr-devices", "chart-attr-phases", "chart-timeline", "chart-phases", "chart-gaps"]
REMOTE_LOAD = re.compile(
    r"""<(script|img|link|iframe|source|video|audio|embed|object)\b[^>]*\b(src|href|data)\s*=\s*["']?\s*(https?:)?//"""
    r"""|url\(\s*["']?\s*(https?:)?//|@import""",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def vllm_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, object, object]:
    traces = shared_traces(VLLM)
    report = api.report_from_traces(traces)
    html = render_html(report, html_extras(traces, with_layers=False))
    path = tmp_path_factory.mktemp("charts") / "vllm.html"
    path.write_text(html, encoding="utf-8")
    return path, html, report, traces


def _chart_data(html: str) -> dict:  # type: ignore[type-arg]
    match = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.S)
    assert match
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def test_vllm_report_small_and_self_contained(vllm_page: tuple[Path, str, object, object]) -> None:
    path, html, _report, _traces = vllm_page
    assert path.stat().st_size <= MAX_BYTES
    assert not REMOTE_LOAD.search(html), REMOTE_LOAD.search(html)
    assert "uPlot 1.6.32, MIT licence" in html and "Leon Sorokin" in html  # licence notice inlined
    assert "<script src" not in html and "<link" not in html


def test_vllm_chart_data(vllm_page: tuple[Path, str, object, object]) -> None:
    _path, html, report, _traces = vllm_page
    data = _chart_data(html)
    for chart in CHARTS:
        assert f'id="{chart}"' in html, chart
    attribution = report.profile.time_attribution  # type: ignore[attr-defined]
    devices = data["attribution"]["devices"]
    assert len(devices["labels"]) == len(attribution)
    total_ms = sum(s["values"][0] for s in devices["series"])
    assert total_ms == pytest.approx(attribution[0].window_ns / 1e6, rel=1e-3)  # the four buckets add up
    assert [s["label"] for s in devices["series"]] == ["gpu", "communication", "copy", "host"]
    assert data["attribution"]["phases"]["labels"] == ["prefill", "decode"]
    assert data["phases"]["labels"] == ["prefill", "decode"]  # side by side
    assert data["gaps"]["labels"] and all(
        len(s["counts"]) == len(data["gaps"]["labels"]) for s in data["gaps"]["series"]
    )
    (track,) = data["tracks"]
    assert track["origin_ns"] == attribution[0].window_start_ns  # times relative to the trace start
    starts = track["bars"][0::3]
    assert min(starts) >= 0 and max(starts) <= track["window_us"][1]


def test_findings_once_with_relative_times(vllm_page: tuple[Path, str, object, object]) -> None:
    _path, html, report, _traces = vllm_page
    assert not re.search(r"t=\[\d{9,}", html)  # no absolute trace-clock timestamps in the cards
    findings = report.findings  # type: ignore[attr-defined]
    assert findings
    if any(f.location.time_range_ns for f in findings):
        assert "from the trace start" in html
    tasks = html[html.index('id="tasks"') :]
    for f in findings:
        assert html.count(f'id="finding-{f.id}"') == 1  # one card per finding
        assert f'href="#finding-{f.id}"' in tasks  # the task list links to it
        for line in f.advice:
            escaped = (
                line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
            )
            assert escaped not in tasks  # advice is written in the card only


def test_timeline_decimation_bounds(vllm_page: tuple[Path, str, object, object]) -> None:
    _path, _html, _report, traces = vllm_page
    (exact,) = device_tracks(traces, max_bars=10**9)  # type: ignore[arg-type]
    assert exact.bin_us is None
    (small,) = device_tracks(traces, max_bars=500, max_gaps=100)  # type: ignore[arg-type]
    assert small.bin_us is not None and len(small.bars) // 3 <= 500 and len(small.gaps) // 2 <= 100
    assert set(small.bars[2::3]) <= set(exact.bars[2::3])  # bins take a category the device ran


def test_multi_gpu_totals_are_labelled_sums() -> None:
    traces = shared_traces(NSYS_2GPU)
    report = api.report_from_traces(traces)
    html = render_html(report, html_extras(traces, with_layers=False))
    assert "wall time (sum over 2 GPUs)" in html and "wall time per GPU" in html
    assert len(_chart_data(html)["tracks"]) == 2


# ---------------------------------------------------------------- headless Chromium, network off


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    import os

    if os.environ.get("CI"):
        pytest.fail("chromium not installed in CI: apt-get install -y chromium")
    pytest.skip("headless Chromium not installed (apt-get install -y chromium)")


def _dump_dom(page: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost",  # no name resolves: network off
            f"--user-data-dir={profile}",
            "--window-size=1280,2400",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow  # starts a headless Chromium (end to end; CI installs it and runs these)
def test_chromium_draws_every_chart_offline(
    vllm_page: tuple[Path, str, object, object], tmp_path: Path
) -> None:
    path, _html, _report, _traces = vllm_page
    dom = _dump_dom(path, tmp_path / "p")
    assert [line for line in dom.stderr.splitlines() if ":CONSOLE" in line] == []
    assert 'data-report-ready="1"' in dom.stdout
    assert f'data-charts="{len(CHARTS)}"' in dom.stdout
    assert 'data-resources="0"' in dom.stdout  # the page requested nothing
    for chart in CHARTS:
        match = re.search(rf'id="{chart}"[^>]*data-ink="(\d+)"|data-ink="(\d+)"[^>]*id="{chart}"', dom.stdout)
        assert match, chart
        assert int(match.group(1) or match.group(2)) > 200, chart  # painted pixels on the canvas


@pytest.mark.slow  # starts a headless Chromium (end to end; CI installs it and runs these)
def test_resource_detection_works(tmp_path: Path) -> None:
    page = tmp_path / "remote.html"
    page.write_text(
        '<html><body><img src="http://example.invalid/x.png"><script>'
        'window.addEventListener("load", function () { document.documentElement.setAttribute('
        '"data-resources", String(performance.getEntriesByType("resource").length)); });'
        "</script></body></html>"
    )
    assert REMOTE_LOAD.search(page.read_text())
    dom = _dump_dom(page, tmp_path / "p")
    assert 'data-resources="1"' in dom.stdout


def test_decimation_helpers_edge_cases() -> None:
    import numpy as np

    from infersight.analyses.html_data import _bins, _runs

    starts = np.array([0, 10, 20, 100], dtype=np.int64)
    ends = np.array([10, 20, 30, 110], dtype=np.int64)
    cats = np.array([0, 0, 1, 1], dtype=np.int64)
    assert _runs(starts, ends, cats, tol=0).tolist() == [[0, 20, 0], [20, 30, 1], [100, 110, 1]]
    assert _runs(starts, ends, cats, tol=100).tolist() == [[0, 20, 0], [20, 110, 1]]
    same = np.full(300, 5, dtype=np.int64)  # zero-length kernels at one instant: no division by zero
    assert len(_bins(same, same, np.arange(300) % 3, 5, 5, 100)) == 0
