"""Shared fixtures: a fresh govlake var/ folder per test, and the PostgreSQL server fixture."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from govlake.config import Settings  # noqa: E402

pytest_plugins = ["conftest_pg"] if (Path(__file__).parent / "conftest_pg.py").exists() else []


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose every output lands under tmp_path."""
    return Settings(var=tmp_path / "var", inbox=tmp_path / "inbox")
