"""The tests' S3-compatible server: moto's S3 on 127.0.0.1 (infra/s3.py), started once per test session.

``s3`` (session scope) starts ``infra/s3.py`` as a subprocess on a free port, waits until it answers,
and stops it at the end of the session. ``s3_lake`` points one test's environment at a fresh prefix of
its bucket (GOVLAKE_LAKE and the AWS variables). Loaded by tests/conftest.py (``pytest_plugins``).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("govlake_infra_s3", REPO / "infra" / "s3.py")
s3_infra = importlib.util.module_from_spec(_spec)  # infra/ is scripts, not a package
_spec.loader.exec_module(s3_infra)

BUCKET = "govlake-test"


@dataclass
class S3Server:
    """A running server: its endpoint, bucket and the subprocess."""

    endpoint: str
    bucket: str
    process: subprocess.Popen
    log: Path
    trace: Path

    def writes(self, path_part: str) -> list[dict[str, str]]:
        """The write requests the server answered whose path contains ``path_part`` (infra/s3.py --trace):
        method, path, if-none-match, if-match, status (the code alone)."""
        out = []
        for line in self.trace.read_text(encoding="utf-8").splitlines() if self.trace.exists() else []:
            _, method, path, _query, none_match, match, _length, status = line.split("\t")
            if path_part in path:
                out.append({"method": method, "path": path, "if-none-match": none_match.partition("=")[2],
                            "if-match": match.partition("=")[2], "status": status.split()[0]})
        return out

    def env(self, prefix: str) -> dict[str, str]:
        """The variables that put a lake at ``s3://<bucket>/<prefix>`` on this server."""
        return s3_infra.environment(self.endpoint, self.bucket, prefix)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(log: Path, bucket: str = BUCKET, *, timeout: float = 30.0) -> S3Server:
    """Start infra/s3.py on a free port of 127.0.0.1 and wait until it answers and has ``bucket``."""
    port = s3_infra.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    trace = log.with_suffix(".trace")
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, str(REPO / "infra" / "s3.py"), "--port", str(port), "--bucket",
                                    "", "--quiet", "--trace", str(trace)], stdout=out, stderr=subprocess.STDOUT)
    server = S3Server(endpoint, bucket, process, log, trace)
    deadline = time.monotonic() + timeout
    while not s3_infra.answers(endpoint, timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the S3 test server did not start on {endpoint}: {log.read_text(errors='replace')}")
        time.sleep(0.1)
    s3_infra.create_bucket(endpoint, bucket)
    return server


@pytest.fixture(scope="session")
def s3(tmp_path_factory) -> Iterator[S3Server]:
    """moto's S3 on 127.0.0.1 for the whole test session (a bucket ``govlake-test``)."""
    try:
        import moto  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("moto is not installed (uv sync: the dev group)")
    server = start_server(tmp_path_factory.mktemp("s3") / "server.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_lake(s3: S3Server, env: pytest.MonkeyPatch) -> str:
    """This test's environment (the ``env`` fixture's, GOVLAKE_VAR under tmp_path) with its lake on a fresh
    prefix of the test server; returns the lake's URI."""
    variables = s3.env(f"lake-{uuid.uuid4().hex[:10]}")
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        env.delenv(key)
    for key, value in variables.items():
        env.setenv(key, value)
    return variables["GOVLAKE_LAKE"]
