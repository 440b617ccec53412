"""A pipeline function in a process of its own, started warm: forked from a server (multiprocessing's
forkserver) that imported govlake's quality step and Great Expectations once, instead of a fresh
interpreter importing them again (about 7 s of CPU each time).

The child is a separate process like any other: killed with SIGKILL at a commit boundary
(GOVLAKE_CRASH_AT), it leaves the lake exactly as a fresh interpreter would. The server is forked
before anything ran (no threads, no open connection), and each child starts from it, not from the
test process.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["govlake.quality", "great_expectations"])


@dataclass(frozen=True)
class Finished:
    returncode: int
    """0, 1 for an exception, or minus the signal that ended it (as subprocess reports it)."""
    output: str
    """its stdout and stderr"""


def _child(env: dict[str, str], output: str, function: Callable, args: tuple, kwargs: dict) -> None:
    for key in [k for k in os.environ if k.startswith("GOVLAKE_")]:
        del os.environ[key]
    os.environ.update(env)
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    function(*args, **kwargs)


def run(function: Callable, *args, env: dict[str, str] | None = None, timeout: float = 300, **kwargs) -> Finished:
    """``function(*args, **kwargs)`` in a forked process, with ``env`` as its only GOVLAKE_ settings."""
    with tempfile.NamedTemporaryFile(prefix="govlake-forked-", suffix=".log") as log:
        process = _CONTEXT.Process(target=_child, args=(env or {}, log.name, function, args, kwargs))
        process.start()
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
            raise TimeoutError(f"{getattr(function, '__name__', function)} did not end within {timeout:.0f} s: "
                               + Path(log.name).read_text(errors="replace")[-2000:])
        return Finished(process.exitcode, Path(log.name).read_text(errors="replace"))
