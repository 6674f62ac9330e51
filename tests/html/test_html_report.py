"""The self-contained HTML report: content, no external resources, and a clean render in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.conftest import require_extra, shared_file, shared_traces

from infersight import api
from infersight.analyses.html_data import busy_timeline
from infersight.api.html_data import html_extras
from infersight.cli import run
from infersight.render.html import render_html

require_extra("jinja2", "html")

TRACE = "kineto/tracelens_qwen1.5-0.5b-chat_h100.json.gz"
SECTIONS = [
    "Environment",
    "Overall",
    "Roofline per operator",
    "Operator ranking",
    "Idle and launch diagnosis",
    "Focus operators",
    "Other advice",
    "Prioritised task list",
    "Summary",
]


@pytest.fixture(scope="module")
def html_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, object]:
    traces = shared_traces(TRACE)
    report = api.report_from_traces(traces)
    html = render_html(report, html_extras(traces))
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(html, encoding="utf-8")
    return path, html, report


def test_sections_and_numbers(html_page: tuple[Path, str, object]) -> None:
    _path, html, report = html_page
    for title in SECTIONS:
        assert f">{title}" in html, title
    total = report.profile.total  # type: ignore[attr-defined]
    assert f"{total.utilization:.1%} busy" in html  # the timeline row label
    top = report.profile.categories[0]  # type: ignore[attr-defined]
    assert f"{top.category} {top.share * 100:.1f}%" in html  # overall: top-3 operators
    assert "Per-layer wall time" in html


def test_self_contained(html_page: tuple[Path, str, object]) -> None:
    _path, html, _report = html_page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script src" not in html and "<link" not in html
    assert html.count("<svg") >= 3


def test_timeline_busy_matches_profile() -> None:
    traces = shared_traces("nsys/h100x2_llm_train_nsys2026.sqlite")
    report = api.report_from_traces(traces)
    rows = busy_timeline(traces, bins=50)
    assert len(rows) == len(report.profile.devices) == 2
    for row, device in zip(rows, report.profile.devices, strict=True):
        assert row.busy_ratio == pytest.approx(device.busy_ns / device.wall_ns, abs=1e-9)
        mean_bin = sum(row.busy_fraction) / len(row.busy_fraction)
        assert mean_bin == pytest.approx(row.busy_ratio, abs=2e-3)  # equal bins: mean of bins = total


def test_report_cli(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    trace = shared_file("kineto/hta_alexnet_a100.json.gz")
    assert run(["report", str(trace), "-o", str(out), "--no-layers"]) == 0
    assert "infersight report" in out.read_text()
    json_report = tmp_path / "r.json"
    assert run(["analyze", str(trace), "--json", str(json_report)]) == 0
    again = tmp_path / "again.html"
    assert run(["report", "--from-report", str(json_report), "-o", str(again)]) == 0
    assert "Operator ranking" in again.read_text()
    assert run(["report", str(trace), "-o", str(trace)]) == 2  # never overwrite an input


# ---------------------------------------------------------------- headless Chromium


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("chromium not installed in CI: apt-get install -y chromium")
    pytest.skip("headless Chromium not installed (apt-get install -y chromium)")


def _chromium_run(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.slow  # starts a headless Chromium (end to end; CI installs it and runs these)
def test_chromium_renders_without_console_errors(html_page: tuple[Path, str, object], tmp_path: Path) -> None:
    path, _html, _report = html_page
    dom = _chromium_run(path, tmp_path / "p1", "--dump-dom")
    assert _console_messages(dom.stderr) == []
    assert 'data-report-ready="1"' in dom.stdout  # the inline script ran to its end
    shot = tmp_path / "report.png"
    shoot = _chromium_run(path, tmp_path / "p2", "--window-size=1280,2400", f"--screenshot={shot}")
    assert _console_messages(shoot.stderr) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    keep = os.environ.get("INFERSIGHT_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "html_report.png")


@pytest.mark.slow  # starts a headless Chromium (end to end; CI installs it and runs these)
def test_console_error_detection_works(tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>notDefinedAnywhere();</script></body></html>")
    result = _chromium_run(broken, tmp_path / "p3", "--dump-dom")
    assert any("notDefinedAnywhere" in line for line in _console_messages(result.stderr))
