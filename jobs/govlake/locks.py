"""Who may write which tables now: named locks, behind one small interface.

Every govlake step takes the lock of what it writes before it reads anything (``hold``):

| lock | taken by | protects |
|---|---|---|
| ``ingest:<resource>`` | ingest | the resource's bronze table and its ingest-log rows (a file lands once) |
| ``process:<resource>`` | process, ``batches reject/release`` | the resource's silver, quarantine and held batches |
| ``publish`` | gold, conflicts, credit, extract, kpis, objections, open, return | gold, extract, kpis, outputs |
| ``claims`` | ``catalog claim/release/mount/unmount`` | meta/catalog_claims_history, meta/catalog_claims |
| ``report`` | report | the report folder |
| ``alerts`` | ``alerts check/ack/resolve``, the DAGs' alert callbacks | meta/alerts, its history, the deliveries |
| ``lake`` | every step shared; backup, restore, vacuum exclusive | a consistent cut of the whole lake |

A second invocation that needs a held lock waits (``GOVLAKE_LOCK_WAIT`` seconds, default 1800,
saying once who holds it) and then refuses with :class:`LockBusy`, naming the holder's command,
pid, host and start time. So two invocations touching the same tables run one after the other.

While ``var/locks/fence.json`` exists (an interrupted ``govlake restore`` left the lake half
changed) no step starts: :func:`hold` refuses with the file's message, which says what to do.

On one machine (the default) locks are ``flock(2)`` locks on files under ``var/locks``: the
kernel releases them when their process ends, however it ends (``kill -9`` included), so a lock
is never left stale; the holder file is only what the last holder wrote about itself. They hold
between processes of one host and on NFSv4 (byte-range emulation). When several machines write
one lake (object storage, a Spark cluster, Airflow workers on other hosts), ``GOVLAKE_LOCK_URL``
names a PostgreSQL server and :class:`PgLocks` takes the same locks as session-level advisory locks
there: the server releases them when the holder's connection ends, however it ends, and the
holders' own records (table ``govlake_lock_holders``) are read only for the locks actually held.
docs/operations.md says which guarantee holds where.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from govlake.config import Settings

log = logging.getLogger(__name__)

LAKE = "lake"
PUBLISH = "publish"
CLAIMS = "claims"
ALERTS = "alerts"
FENCE = "fence.json"


class LockBusy(RuntimeError):
    """A lock stayed held by another invocation for longer than we were willing to wait."""


@dataclass(frozen=True)
class Holder:
    """What a lock's holder says about itself."""

    command: str
    pid: int
    host: str
    since: str

    def describe(self) -> str:
        return f"`{self.command}` (pid {self.pid} on {self.host}, since {self.since})"


class LockProvider(Protocol):
    """Acquires named locks; ``shared`` locks may be held by many at once, exclusive by one."""

    def acquire(self, name: str, *, shared: bool, timeout: float) -> contextlib.AbstractContextManager[None]:
        """Hold ``name`` for the ``with`` block; raise LockBusy after ``timeout`` seconds."""
        ...

    def holders(self) -> dict[str, Holder]:
        """Locks held right now (by anybody) and what their holders said about themselves."""
        ...


def command_line() -> str:
    """This process's command, for holder records (arguments kept short)."""
    args = [Path(sys.argv[0]).name if sys.argv else "python", *sys.argv[1:]]
    text = " ".join(args)
    return text if len(text) <= 200 else text[:197] + "..."


class _Locks:
    """Re-entrancy within a process and the wait-then-refuse loop, shared by the providers.

    A provider opens a handle per lock (``_open``), tries to take it without blocking (``_try``),
    records its holder (``_claim``), releases and closes it, and lists the locks held by others.
    """

    def __init__(self) -> None:
        self._held: dict[str, tuple[object, int, bool]] = {}
        """name → (handle, depth, shared) for the locks this process holds."""

    @contextlib.contextmanager
    def acquire(self, name: str, *, shared: bool, timeout: float) -> Iterator[None]:
        if name in self._held:
            handle, depth, was_shared = self._held[name]
            if was_shared and not shared:
                raise RuntimeError(f"lock {name}: cannot upgrade a shared lock to exclusive")
            self._held[name] = (handle, depth + 1, was_shared)
            try:
                yield
            finally:
                handle, depth, was_shared = self._held[name]
                self._held[name] = (handle, depth - 1, was_shared)
            return
        handle = self._open(name)
        try:
            self._wait(handle, name, shared=shared, timeout=timeout)
            self._claim(handle, name, shared=shared)
            self._held[name] = (handle, 1, shared)
            try:
                yield
            finally:
                del self._held[name]
                self._release(handle, name)
        finally:
            self._close(handle)

    def _wait(self, handle, name: str, *, shared: bool, timeout: float) -> None:
        deadline, told, pause = time.monotonic() + timeout, False, 0.05
        while not self._try(handle, name, shared=shared):
            if time.monotonic() >= deadline:
                raise LockBusy(f"{name} is held by {self._blame(name)}; waited {timeout:g}s. Wait for it to "
                               "finish (or stop it) and run again; set GOVLAKE_LOCK_WAIT to wait longer")
            if not told:
                log.warning("waiting for lock %s, held by %s", name, self._blame(name))
                told = True
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _blame(self, name: str) -> str:
        held = self.holders()
        if name == LAKE:
            return ("; ".join(f"{n}: {h.describe()}" for n, h in sorted(held.items()) if n != LAKE)
                    or "another govlake command")
        return held[name].describe() if name in held else "another govlake command"

    def holders(self) -> dict[str, Holder]:
        raise NotImplementedError

    def _open(self, name: str):
        raise NotImplementedError

    def _try(self, handle, name: str, *, shared: bool) -> bool:
        raise NotImplementedError

    def _claim(self, handle, name: str, *, shared: bool) -> None:
        raise NotImplementedError

    def _release(self, handle, name: str) -> None:
        raise NotImplementedError

    def _close(self, handle) -> None:
        raise NotImplementedError


class FileLocks(_Locks):
    """flock(2) locks on ``<dir>/<name>.lock``; the exclusive holder writes its record into the file."""

    def __init__(self, directory: Path):
        super().__init__()
        self.directory = directory

    def _path(self, name: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
        return self.directory / f"{safe}.lock"

    def _open(self, name: str) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        return os.open(self._path(name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def _try(self, fd: int, name: str, *, shared: bool) -> bool:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _claim(self, fd: int, name: str, *, shared: bool) -> None:
        if not shared:
            data = _holder_record().encode("utf-8")
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)

    def _release(self, fd: int, name: str) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

    def _close(self, fd: int) -> None:
        os.close(fd)

    def holders(self) -> dict[str, Holder]:
        found = {}
        if not self.directory.is_dir():
            return found
        held = {self._path(n).stem for n in self._held}
        for path in sorted(self.directory.glob("*.lock")):
            if path.stem in held:
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
            except BlockingIOError:
                found[path.stem] = _read_holder(path) or Holder("another govlake command", 0, "?", "?")
            finally:
                os.close(fd)
        return found

    def _blame(self, name: str) -> str:
        if name == LAKE:
            return super()._blame(name)
        holder = _read_holder(self._path(name))
        return holder.describe() if holder else "another govlake command"


def _holder_record() -> str:
    return json.dumps({"command": command_line(), "pid": os.getpid(), "host": socket.gethostname(),
                       "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}, ensure_ascii=False)


def _read_holder(path: Path) -> Holder | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8") or "null")
        return Holder(str(record["command"]), int(record["pid"]), str(record["host"]), str(record["since"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


class PgLocks(_Locks):
    """PostgreSQL session-level advisory locks, one connection per held lock.

    A lock's key is the first 8 bytes of sha256(``<namespace>:<name>``), the namespace being the lake's
    location, so two lakes can share one server.
    """

    def __init__(self, url: str, namespace: str):
        super().__init__()
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.namespace = namespace

    def _key(self, name: str) -> int:
        digest = hashlib.sha256(f"{self.namespace}:{name}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    def _open(self, name: str | None = None):
        import psycopg

        conn = psycopg.connect(self.url, autocommit=True, application_name="govlake", connect_timeout=10)
        # another process may create it at the same moment
        with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
            conn.execute("""create table if not exists govlake_lock_holders (
                namespace text, name text, command text, pid integer, host text, since timestamptz,
                backend_pid integer)""")
        return conn

    def _try(self, conn, name: str, *, shared: bool) -> bool:
        function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        return bool(conn.execute(f"select {function}(%s)", (self._key(name),)).fetchone()[0])

    def _claim(self, conn, name: str, *, shared: bool) -> None:
        record = json.loads(_holder_record())
        conn.execute("insert into govlake_lock_holders values (%s, %s, %s, %s, %s, %s, pg_backend_pid())",
                     (self.namespace, name, record["command"], record["pid"], record["host"], record["since"]))

    def _release(self, conn, name: str) -> None:
        conn.execute("delete from govlake_lock_holders where backend_pid = pg_backend_pid() and name = %s", (name,))

    def _close(self, conn) -> None:
        conn.close()  # ends the session: the server releases its advisory locks

    def holders(self) -> dict[str, Holder]:
        conn = self._open()
        try:
            rows = conn.execute("""select h.name, h.command, h.pid, h.host, h.since from govlake_lock_holders h
                where h.namespace = %s and h.backend_pid in (
                    select pid from pg_locks where locktype = 'advisory' and granted)
                order by h.since""", (self.namespace,)).fetchall()
        finally:
            conn.close()
        return {n: Holder(c, p, h, s.isoformat(timespec="seconds")) for n, c, p, h, s in rows
                if n not in self._held}


_PROVIDERS: dict[tuple[str, str], LockProvider] = {}


def provider(settings: Settings) -> LockProvider:
    """The lock provider of ``settings``' lake (one per lake per process, so locks are re-entrant):
    PostgreSQL advisory locks with GOVLAKE_LOCK_URL, else flock files under var/locks."""
    if settings.lock_url:
        key = (settings.lock_url, str(settings.lake))
        if key not in _PROVIDERS:
            _PROVIDERS[key] = PgLocks(settings.lock_url, str(settings.lake))
        return _PROVIDERS[key]
    key = ("file", str(settings.var / "locks"))
    if key not in _PROVIDERS:
        _PROVIDERS[key] = FileLocks(settings.var / "locks")
    return _PROVIDERS[key]


def wait_seconds() -> float:
    """How long to wait for a held lock: GOVLAKE_LOCK_WAIT (seconds), default 1800."""
    raw = os.environ.get("GOVLAKE_LOCK_WAIT", "1800")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"GOVLAKE_LOCK_WAIT={raw!r}: expected a number of seconds") from None
    if value < 0:
        raise ValueError(f"GOVLAKE_LOCK_WAIT={raw!r}: expected a number of seconds ≥ 0")
    return value


@contextlib.contextmanager
def hold(settings: Settings, name: str, *, timeout: float | None = None) -> Iterator[None]:
    """Hold lock ``name`` exclusively (and the lake lock shared) for the ``with`` block.

    ``hold(settings, LAKE)`` holds the whole lake exclusively: every other step waits.
    """
    locks = provider(settings)
    wait = wait_seconds() if timeout is None else timeout
    if name == LAKE:
        with locks.acquire(LAKE, shared=False, timeout=wait):
            yield
        return
    with locks.acquire(LAKE, shared=True, timeout=wait):
        check_fence(settings)
        with locks.acquire(name, shared=False, timeout=wait):
            yield


def check_fence(settings: Settings) -> None:
    """Refuse while ``var/locks/fence.json`` exists (written and removed by govlake.backup's restores),
    unless this process wrote it (a restore rebuilding the extract)."""
    path = settings.var / "locks" / FENCE
    try:
        record = json.loads(path.read_text(encoding="utf-8") or "{}")
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        record = {}
    if record.get("pid") == os.getpid() and record.get("host") == socket.gethostname():
        return
    raise LockBusy(record.get("message") or f"{path}: the lake is fenced off by an interrupted restore; "
                   "run `govlake restore --resume`")
