"""The rich progress bar: stages with bytes, percent and ETA; hidden for short runs and off the terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from infersight.progress import NO_PROGRESS
from infersight.render import progress as progress_module
from infersight.render.progress import RichProgress, progress_for


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=120), out


def test_bar_shows_stages_bytes_and_percent_once_due() -> None:
    console, out = _console()
    with RichProgress(console=console, show_after_s=0) as bar:
        bar.stage("reading", total=200 * 2**20)
        bar.advance(50 * 2**20)
        bar._bar.refresh()
        shown = out.getvalue()
        bar.stage("building columns")
        bar.stage("analyses")
        bar._bar.refresh()
    assert "reading" in shown and "50 / 200 MiB" in shown and "25%" in shown
    assert "analyses" in out.getvalue()


def test_short_runs_show_nothing() -> None:
    console, out = _console()
    with RichProgress(console=console, show_after_s=3600) as bar:
        bar.stage("reading", total=10)
        bar.advance(5)
    assert out.getvalue() == ""


def test_off_when_quiet_or_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module.sys.stderr, "isatty", lambda: True)
    assert progress_for(quiet=True) is None
    assert isinstance(progress_for(quiet=False), RichProgress)
    monkeypatch.setattr(progress_module.sys.stderr, "isatty", lambda: False)
    assert progress_for(quiet=False) is None
    NO_PROGRESS.stage("reading", 1)  # the silent default accepts every call
    NO_PROGRESS.advance(1)
