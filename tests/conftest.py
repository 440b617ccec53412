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


@pytest.fixture
def small_disk(tmp_path: Path, request) -> Path:
    """A small tmpfs for full-disk tests, for real (needs root to mount, else the test is skipped).

    Its size in MB comes from ``@pytest.mark.disk_mb(N)`` (default 40)."""
    import subprocess

    marker = request.node.get_closest_marker("disk_mb")
    size = marker.args[0] if marker else 40
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}M", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
