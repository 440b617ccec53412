"""Locks between real processes: a second invocation waits, or refuses naming the holder; a lock
held by a process killed with SIGKILL is free at once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from govlake import locks
from govlake.config import Settings

HOLD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from govlake import locks
    from govlake.config import Settings
    settings = Settings(var=Path(sys.argv[1]), lock_url=os.environ.get("GOVLAKE_LOCK_URL"))
    with locks.hold(settings, sys.argv[2]):
        Path(sys.argv[3]).write_text("held")
        time.sleep(float(sys.argv[4]))
""")


@pytest.fixture(params=["flock", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request, tmp_path) -> Settings:
    """The same tests on both providers: flock files, and PostgreSQL advisory locks."""
    if request.param == "flock":
        return Settings(var=tmp_path / "var")
    return Settings(var=tmp_path / "var", lock_url=request.getfixturevalue("pg_url"))


def _holder(settings: Settings, name: str, seconds: float, tmp_path: Path) -> subprocess.Popen:
    flag = tmp_path / f"held-{name.replace(':', '_')}"
    env = {k: v for k, v in os.environ.items() if k != "GOVLAKE_LOCK_URL"}
    if settings.lock_url:
        env["GOVLAKE_LOCK_URL"] = settings.lock_url
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(settings.var), name, str(flag), str(seconds)], env=env)
    deadline = time.monotonic() + 30
    while not flag.exists():
        assert proc.poll() is None, "the holder died before taking the lock"
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.05)
    return proc


def test_a_second_invocation_refuses_naming_the_holder(settings, tmp_path):
    proc = _holder(settings, "publish", 60, tmp_path)
    try:
        with pytest.raises(locks.LockBusy) as caught, locks.hold(settings, "publish", timeout=0.5):
            pass
        message = str(caught.value)
        assert f"pid {proc.pid}" in message and socket.gethostname() in message
        assert "publish is held by" in message and "since" in message and "-c" in message
        # other locks are free meanwhile: another resource's process step is not held up
        with locks.hold(settings, "process:credit.penalty", timeout=0.5):
            pass
    finally:
        proc.kill()
        proc.wait()


def test_a_waiting_invocation_goes_on_when_the_holder_finishes(settings, tmp_path):
    proc = _holder(settings, "process:credit.penalty", 1.5, tmp_path)
    start = time.monotonic()
    with locks.hold(settings, "process:credit.penalty", timeout=30):
        waited = time.monotonic() - start
    proc.wait()
    assert proc.returncode == 0
    assert 0.5 < waited < 30


def test_a_lock_of_a_killed_process_is_free_at_once(settings, tmp_path):
    proc = _holder(settings, "publish", 600, tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    start = time.monotonic()
    with locks.hold(settings, "publish", timeout=5):
        assert time.monotonic() - start < 1
    assert locks.provider(settings).holders() == {}


def test_the_exclusive_lake_lock_waits_for_every_step_and_names_them(settings, tmp_path):
    proc = _holder(settings, "process:credit.license", 60, tmp_path)
    try:
        with pytest.raises(locks.LockBusy, match=r"process.credit.license: .*pid"), \
                locks.hold(settings, locks.LAKE, timeout=0.5):
            pass
    finally:
        proc.kill()
        proc.wait()
    with locks.hold(settings, locks.LAKE, timeout=5), locks.hold(settings, "publish", timeout=0):
        pass  # re-entrant: a backup holding the lake may run steps itself


def test_lock_wait_setting_is_validated(monkeypatch):
    monkeypatch.setenv("GOVLAKE_LOCK_WAIT", "soon")
    with pytest.raises(ValueError, match="GOVLAKE_LOCK_WAIT='soon'"):
        locks.wait_seconds()
