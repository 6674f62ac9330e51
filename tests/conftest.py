"""Shared test fixtures: where the real traces live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("INFERSIGHT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
NSYS_DIR = SHARED_DATA / "nsys"
KINETO_DIR = SHARED_DATA / "kineto"


def shared_file(relative: str) -> Path:
    """A file under ../shared/data; skips the test when the folder is absent (outside CI)."""
    path = SHARED_DATA / relative
    if not SHARED_DATA.exists():
        if os.environ.get("CI"):
            pytest.fail(f"shared data folder missing in CI: {SHARED_DATA}")
        pytest.skip(f"shared data not present at {SHARED_DATA}")
    assert path.exists(), f"missing shared test file {path}"
    return path
