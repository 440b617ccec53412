"""A full disk, for real (a small tmpfs holds GOVLAKE_VAR): the run fails with one clear line saying what
to do and a truthful exit code; once space is freed, the next run finishes the job and the lake is the
same as after a run that never ran out of space."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _bronze import write_bronze
from govlake.config import Settings
from govlake.quality import process_resource
from test_quality import BASE, TODAY, _rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))
from chaos import lake_digest, latest_reconciliation, meta_findings  # noqa: E402

pytestmark = pytest.mark.slow


def _govlake(var: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVLAKE_")}
    env.update(GOVLAKE_VAR=str(var), GOVLAKE_INBOX=str(var.parent / "inbox"), GOVLAKE_AS_OF=TODAY.isoformat())
    return subprocess.run([sys.executable, "-m", "govlake.cli", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def test_a_full_disk_fails_clearly_and_the_next_run_recovers(small_disk, tmp_path):
    var = small_disk / "var"
    settings = Settings(var=var, inbox=small_disk / "inbox")
    write_bronze(settings, "credit.penalty", _rows())
    process_resource("credit.penalty", settings=settings, run_id="r1", today=TODAY)
    write_bronze(settings, "credit.penalty", [dict(BASE, decision_no=f"新{i}号", facts="事实" * 200)
                                              for i in range(3000)], batch="b2", source="day2.csv")
    clean = tmp_path / "clean" / "var"
    shutil.copytree(var, clean)
    assert _govlake(clean, "run").returncode == 0

    filler = small_disk / "filler"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    with open(filler, "wb") as f:
        f.write(b"\0" * max(free - 64 * 1024, 0))
    full = _govlake(var, "run")
    assert full.returncode == 1, full.stderr
    assert "no space left on device" in full.stderr and "run the same command again" in full.stderr
    assert "Traceback" not in full.stderr

    filler.unlink()
    again = _govlake(var, "run")
    assert again.returncode == 0, again.stderr
    assert lake_digest(var) == lake_digest(clean)
    assert latest_reconciliation(var) == latest_reconciliation(clean)
    assert meta_findings(var) == []
