"""Fault injection at commit boundaries (infra/chaos.py and the crash tests; off unless asked for).

``GOVLAKE_CRASH_AT=<label>[:<n>]`` kills the process with SIGKILL right after the n-th (default
first) commit boundary with that label; ``GOVLAKE_COMMIT_TRACE=<file>`` appends every label passed
to a file, so a harness can list a run's commit boundaries and then kill at each. Labels:
``<consumer>:<table>`` for a step's outputs (govlake.steps), ``<consumer>:begin``/``:done`` for its
intent, ``commit:<table>`` for any other Delta commit (ingest's log and bronze commits among them),
``extract:file`` for the extract's rename, ``open:files`` once the open datasets are swapped in, and
govlake.backup's ``backup:file``, ``restore:swap`` and ``restore:table`` (docs/operations.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal

_seen: dict[str, int] = {}


def crash_point(label: str) -> None:
    """Record a commit boundary; SIGKILL this process here when GOVLAKE_CRASH_AT names it."""
    trace = os.environ.get("GOVLAKE_COMMIT_TRACE")
    if trace:
        with open(trace, "a", encoding="utf-8") as f:
            f.write(label + "\n")
    target = os.environ.get("GOVLAKE_CRASH_AT")
    if not target:
        return
    head, _, tail = target.rpartition(":")
    name, nth = (head, int(tail)) if head and tail.isdigit() else (target, 1)
    if name != label:
        return
    _seen[label] = _seen.get(label, 0) + 1
    if _seen[label] == nth:
        with contextlib.suppress(Exception):
            logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)
