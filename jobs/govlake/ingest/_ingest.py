"""``ingest_resource``: find a resource's new files or database window and land each in bronze."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa

from govlake import storage
from govlake.catalog import Resource, get_catalog
from govlake.config import Settings
from govlake.ingest import _log
from govlake.ingest._bronze import Assembler, Provenance, land
from govlake.ingest._db import bronze_files, read_window
from govlake.ingest._encoding import FileFacts, Reencode, Undecodable
from govlake.ingest._paths import Source, matching, open_source
from govlake.ingest._readers import batches_of, facts_of
from govlake.ingest._results import DATA_ERRORS, BatchResult, IngestError, IngestResult
from govlake.ingest._spark import FileTask, land_file
from govlake.ingest._watermark import parse_lookback

_KIND_BY_SUFFIX = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx",
                   ".xls": "xlsx", ".ods": "xlsx", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
Opener = Callable[[Assembler, str | None], Iterator[pa.RecordBatch]]
"""A source's record batches for an assembler: its header checked now, the rows as they are read. The second argument
is None, or the encoding to read a file in that :class:`Reencode` named."""


def ingest_resource(resource: str, *, files: list[Path] | None, settings: Settings, run_id: str,
                    full_scan: bool = False, on_source: Callable[[str, BatchResult | None], None] | None = None
                    ) -> IngestResult:
    """Land ``resource`` in bronze: ``files``, or (None) every file matching the catalog pattern under
    ``settings.city`` / the new window of its database table. Sources already landed are skipped.
    ``full_scan`` (database sources) reads the whole table instead of the window, landing the rows
    bronze does not hold yet.

    Files that cannot be read are recorded as rejected and the others still land; then, when any
    source was rejected, IngestError is raised with the ``result`` attached (whether the files were
    named, discovered, or the source is the database). ``on_source(source, None)`` is called before
    each file or window is read and ``on_source(source, its BatchResult)`` after.
    """
    told = on_source or (lambda _source, _result: None)
    res = get_catalog(settings.catalog_dir).resource(resource)
    lander = _Lander(res, settings, run_id)
    result = IngestResult(res.code, run_id)
    if full_scan and res.source.kind != "db":
        raise IngestError(f"{res.code} arrives as {res.source.kind} files; a full scan is for database sources")
    if res.source.kind == "db":
        if files:
            raise IngestError(f"{res.code} is read from database table {res.source.table}; it takes no files")
        told(f"db:{res.source.table}", None)
        result.batches.append(lander.window(full_scan=full_scan))
        told(f"db:{res.source.table}", result.batches[-1])
    else:
        paths = [Path(f) for f in files] if files is not None else discover(settings.city, res.source.pattern or "")
        with (ThreadPoolExecutor(1, thread_name_prefix="sniff") as pool,
              contextlib.closing(_one_ahead(pool, lander.sniffed, paths)) as sniffed_files):
            for p, sniffed in zip(paths, sniffed_files, strict=True):
                told(str(p), None)
                result.batches.append(lander.file(sniffed))
                told(str(p), result.batches[-1])
    if result.rejected:
        errors = "\n  ".join(b.error or b.source for b in result.rejected)
        raise IngestError(f"{res.code}: {len(result.rejected)} of {len(result.batches)} source(s) rejected:\n"
                          f"  {errors}", result=result)
    return result


def discover(city: Path, pattern: str) -> list[Path]:
    """Files matching ``pattern`` under ``city``, sorted; Excel lock files and hidden files are ignored.

    Symbolic links are not followed: a link where a matching file (or a folder on the way) would be
    is listed, so that ingest records it as rejected; IngestError when a folder cannot be listed.
    """
    return sorted(p for p in matching(city, pattern) if not p.name.startswith(("~$", ".")))


@dataclasses.dataclass(frozen=True)
class _Sniffed:
    """A file open and sniffed, to be landed."""

    path: Path
    kind: str
    source: Source
    facts: FileFacts


def _one_ahead(pool: ThreadPoolExecutor, sniff: Callable[[Path], BatchResult | _Sniffed], paths: list[Path]
               ) -> Iterator[BatchResult | _Sniffed]:
    """``sniff(path)`` of each path in turn, the next one's running on ``pool`` while the caller lands this one; a
    sniffed file the caller does not take (it stopped) is closed."""
    pending = pool.submit(sniff, paths[0]) if paths else None
    try:
        for i in range(len(paths)):
            done = pending.result()
            pending = pool.submit(sniff, paths[i + 1]) if i + 1 < len(paths) else None
            yield done
    finally:  # (a sniff that raised closed its file itself)
        if pending is not None and not pending.cancel() and pending.exception() is None:
            left = pending.result()
            if isinstance(left, _Sniffed):
                left.source.close()


class _Lander:
    def __init__(self, resource: Resource, settings: Settings, run_id: str):
        self.res, self.settings, self.run_id = resource, settings, run_id
        self.bronze = storage.table_path(settings, "bronze", resource.slug)
        self.past = _log.history(settings, resource.code, self.bronze, run_id=run_id)

    def sniffed(self, path: Path) -> BatchResult | _Sniffed:
        """``path`` opened once without following links (under the inbox: from the inbox down), then hashed and
        its encoding found — unless it was landed before and is unchanged since, or cannot be read: a BatchResult
        says so (a rejection not logged yet: :meth:`file` logs it). Touches nothing but the file: the next file's
        runs on a thread while this one lands (hashing, reading and Arrow's UTF-8 check release the interpreter)."""
        kind = _KIND_BY_SUFFIX.get(path.suffix.lower(), self.res.source.kind)
        try:
            source = open_source(path, inbox=self.settings.city)
        except IngestError as exc:
            return BatchResult(str(path), None, None, 0, "rejected", str(exc))
        st = source.stat
        seen = self.past.files.get((str(path), st.st_size, st.st_mtime_ns))
        if seen is not None:
            # landed before and unchanged since: not read again, and not logged again either (its row is in
            # the log; a row per kept file and ingest made the day's ingest a commit for every file the
            # inbox ever received: 54 of them, 1.9 s of a 2.6 s ingest)
            source.close()
            return BatchResult(str(path), seen, None, 0, "skipped_already_ingested", size=st.st_size,
                               mtime_ns=st.st_mtime_ns)
        try:  # a Spark task's file is checked here: what it is decoded as is decided before the task runs
            facts = facts_of(kind, source, check=self._on_spark)
        except IngestError as exc:
            source.close()
            return BatchResult(str(path), None, None, 0, "rejected", str(exc))
        except BaseException:
            source.close()
            raise
        return _Sniffed(path, kind, source, facts)

    def file(self, sniffed: BatchResult | _Sniffed) -> BatchResult:
        """Land one file :meth:`sniffed` opened; the same open file is read, and a change since it was opened
        rejects it."""
        if isinstance(sniffed, BatchResult):
            return sniffed if sniffed.status == "skipped_already_ingested" else self._record(sniffed)
        path, kind, source, facts = sniffed.path, sniffed.kind, sniffed.source, sniffed.facts
        with source:
            st = source.stat

            def opener(asm: Assembler, encoding: str | None) -> Iterator[pa.RecordBatch]:
                known = facts if encoding is None else dataclasses.replace(facts, encoding=encoding, checked=True)
                return batches_of(kind, source, known, self.res, asm)

            def task(asm: Assembler) -> FileTask:
                return FileTask(str(path), str(self.settings.city) if self.settings.city else None, kind, facts,
                                st.st_mtime_ns, self.res, asm.provenance)

            return self._land(BatchResult(str(path), facts.sha256, facts.encoding, 0, "landed", size=st.st_size,
                                          mtime_ns=st.st_mtime_ns), opener, task if self._on_spark else None)

    def window(self, *, full_scan: bool = False) -> BatchResult:
        """Read the database table from the high-water mark minus the look-back (all of it on the
        first read or with ``full_scan``) and land the rows bronze does not hold yet as one window."""
        src, past = self.res.source, self.past
        lo = None if full_scan or past.high_water is None else past.high_water - parse_lookback(src.lookback)
        con = storage.connect(self.settings)
        try:
            landed = bronze_files(self.bronze, past.db_batches(since=lo))
            read = read_window(self.settings.db_url, self.res, con=con, lo=lo, high_water=past.high_water,
                               landed=landed, full_scan=full_scan)
            w = read.window
            batch = BatchResult(w.source, read.source_hash, None, 0, "landed", watermark_hi=w.hi,
                                unwatermarked_rows=read.unwatermarked)
            if read.rows == 0:
                batch.status = "skipped_already_ingested"
                return self._record(batch)
            if not read.readable:
                values = ", ".join(repr(v) for _, v in read.unparsed[:3])
                batch.status, batch.error = "rejected", (
                    f"{w.source}: no {src.watermark} read is a date and time ({len(read.unparsed)} new "
                    f"row(s), e.g. {values}); nothing landed, the rows are read again on the next ingest")
                return self._record(batch)
            batch.error = read.warning()
            return self._land(batch, lambda asm, _encoding: read.batches(asm))
        except IngestError as exc:  # no connection, no table, a required column missing
            return self._record(BatchResult(f"db:{src.table}", None, None, 0, "rejected", str(exc)))
        finally:
            con.close()

    @property
    def _on_spark(self) -> bool:
        """Files are decoded by Spark tasks (:mod:`govlake.ingest._spark`): the Spark engine, GOVLAKE_SPARK_INGEST
        not ``driver``."""
        return self.settings.engine == "spark" and self.settings.spark_ingest == "executors"

    def _land(self, batch: BatchResult, opener: Opener, task: Callable[[Assembler], FileTask] | None = None
              ) -> BatchResult:
        """Land ``batch``: ``opener`` checks the source's header now and gives its record batches, which land
        here; with ``task``, its header is checked here all the same, and a Spark task reads and lands it."""
        assert batch.source_hash is not None
        if batch.source_hash in self.past.hashes:
            batch.status = "skipped_already_ingested"
            return self._record(batch)
        now = dt.datetime.now(dt.UTC)  # the batch id keeps the clock's order; the received time is the business date's
        received, batch.batch_id = self.settings.landing_time(now), f"{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
        provenance = Provenance(self.res.code, batch.batch_id, batch.source, batch.source_hash, received)
        asm = Assembler(self.res, provenance)

        def reread(again: Reencode) -> Iterator[pa.RecordBatch]:
            """The file taken for GBK is GB18030: its batches again, in that (nothing of it was committed)."""
            nonlocal asm
            batch.encoding, asm = again.encoding, Assembler(self.res, provenance)
            return opener(asm, again.encoding)

        def rejected(exc: Exception, message: str) -> BatchResult:
            batch.status, batch.error, batch.rows = "rejected", message, 0
            if isinstance(exc, Undecodable):
                batch.encoding = None  # it is in none of the encodings tried
            return self._record(batch, received)

        try:
            try:
                batches = opener(asm, None)
            except Reencode as again:  # (its header does not decode as GBK)
                batches = reread(again)
        except IngestError as exc:
            return rejected(exc, str(exc))
        self._record(batch, received, status=_log.LANDING)
        try:
            if task is None:
                try:
                    batch.rows = land(self.bronze, batches, schema=asm.schema, run_id=self.run_id)
                except Reencode as again:
                    batch.rows = land(self.bronze, reread(again), schema=asm.schema, run_id=self.run_id)
            else:
                batches.close()  # the header was checked; the task reads the rows
                batch.rows, fields = land_file(self._spark(), self.bronze, task(asm), run_id=self.run_id)
                asm.headers, asm.types = [f for f, _ in fields], {f: t for f, t in fields if t}
            batch.fields = asm.fields
        except DATA_ERRORS as exc:
            return rejected(exc, _message(exc, batch.source))
        self.past.add(batch.source_hash, batch.watermark_hi)
        return self._record(batch, received)

    def _spark(self):
        from govlake.engine import get_engine

        return get_engine(self.settings).session()

    def _record(self, batch: BatchResult, received: dt.datetime | None = None, *, status: str | None = None
                ) -> BatchResult:
        row = dict(vars(batch), run_id=self.run_id, resource=self.res.code, status=status or batch.status,
                   received_at=received or dt.datetime.now(dt.UTC))
        _log.append(self.settings, [row], run_id=self.run_id)
        return batch


def _message(exc: Exception, source: str) -> str:
    text = str(exc)
    return text if source in text else f"{source}: {text}"
