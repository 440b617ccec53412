"""The analyst extract: ``var/extracts/analyst.duckdb``, the gold tables with personal data masked.

One table per public gold table (govlake.gold.PUBLIC_TABLES). Each column's release follows its
catalog item (govlake.masking):
personal items (``pii``) are masked unless the row is public (``public_when``); L4 items without a mask are left
out; free-text items (strings without a code list) are scrubbed of ID and mobile numbers. A
gold column that its table's yml (``sql/gold/<table>.yml``, read by govlake.gold.table_docs) does
not document is left out too, so a new column is never released unreviewed. Tables and columns
carry comments from the ymls and the catalog items they name; table ``extract_info`` records the
run and the gold versions read.

The file is built under a temporary name next to the target and renamed over it, so an analyst
opening ``analyst.duckdb`` sees the previous extract or the new one, never half of one. A
publication record the previous extract had and the new one has not is written to
gold/withdrawal_log (output ``extract/analyst.duckdb:<table>``) with the reason from its lifecycle.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from govlake import lineage, locks, steps, storage
from govlake._faults import crash_point
from govlake.config import Settings
from govlake.credit import KINDS, WITHDRAWAL_SCHEMA, withdrawal, withdrawal_rows
from govlake.gold import PUBLIC_TABLES, ColumnDoc, TableDoc, table_docs
from govlake.layout import gold_path
from govlake.masking import mask_note, name_items, release_item_sql, sql_ident, sql_string

EXTRACT_NAME = "analyst.duckdb"
INFO_TABLE = "extract_info"

log = logging.getLogger(__name__)


def release_sql(column: ColumnDoc, names: list | None = None) -> str | None:
    """The SQL expression releasing ``column`` in the extract, or None when it is withheld.

    Free text is scrubbed of ID and mobile numbers and of the person names the row holds
    (``names``: the table's person-name items)."""
    ref = sql_ident(column.name)
    return ref if column.item is None else release_item_sql(column.item, ref, names)


def column_comment(column: ColumnDoc) -> str:
    """``法定代表人 | Legal representative | L3 | masked: person_name | from amr.enterprise``."""
    parts = [column.label, column.label_en]
    if column.item is not None:
        parts.append(column.item.level)
        if column.item.pii:
            parts.append(mask_note(column.item))
        parts.append(f"from {column.resource}.{column.item.column}")
    else:
        parts.append("derived")
    return " | ".join(parts)


def table_comment(doc: TableDoc, run_id: str) -> str:
    return (f"{doc.title} ({doc.title_en}) | grain: {doc.header.grain} | key: {' + '.join(doc.header.key)}"
            f" | owner: {doc.header.owner} | from: {', '.join(doc.sources)} | run: {run_id}")


REBUILD_CHURN = 1.0
"""A table updated in place is copied in full again once the rows it deleted and inserted since its last full
copy pass this share of its rows (and a day whose changes alone pass what is left is copied in full): a
file only ever updated grows. DuckDB reclaims most of a deleted row's space at its checkpoint: 30 days of
100,000 deletes and inserts on a table of 2 million rows grew its file by 15% per row (57 → 101 MiB for
2.0 → 3.1 million rows), and did not slow a scan."""


@dataclass(frozen=True)
class _Release:
    """How one gold table is released: each released column's expression, the columns withheld, and a
    fingerprint of both and of the comments, so that a change of masking, of the yml or of the gold table's
    columns copies the table in full."""

    doc: TableDoc
    columns: list[tuple[ColumnDoc, str]]
    withheld: list[str]

    @classmethod
    def of(cls, doc: TableDoc, columns: list[str]) -> _Release:
        names = name_items([c.item for n, c in doc.columns.items() if n in columns and c.item is not None
                            and c.item.column == n])
        released, withheld = [], []
        for name in columns:
            column = doc.columns.get(name)
            expr = release_sql(column, names) if column else None
            if expr is None:
                withheld.append(name)
            else:
                released.append((column, expr))
        return cls(doc, released, withheld)

    @property
    def select(self) -> str:
        return ",\n    ".join(f"{expr} as {sql_ident(c.name)}" for c, expr in self.columns)

    @property
    def fingerprint(self) -> str:
        text = "\n".join([self.select, table_comment(self.doc, ""), *(column_comment(c) for c, _ in self.columns)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def key(self) -> dict[str, str]:
        """The table's key columns and their release expressions when all are released (a gold row's copy is
        found by them), else {}."""
        released = {c.name: expr for c, expr in self.columns}
        key = self.doc.header.key
        return {k: released[k] for k in key} if key and all(k in released for k in key) else {}


@dataclass(frozen=True)
class _Built:
    """A table of the previous extract, from its extract_info row."""

    version: int | None
    release: str | None
    churn: int


def _previous(con: duckdb.DuckDBPyConnection) -> dict[str, _Built]:
    """The tables of the extract open in ``con`` with the gold version and release they were built from
    ({} for an extract written before extract_info recorded them: everything is copied in full)."""
    columns = {r[0] for r in con.execute(
        "select column_name from duckdb_columns() where table_name = ?", [INFO_TABLE]).fetchall()}
    if not {"release", "churn"} <= columns:
        return {}
    tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    return {name: _Built(version, release, churn) for name, version, release, churn in con.execute(
        f"select gold_table, gold_version, release, churn from {INFO_TABLE}").fetchall() if name in tables}


def _comment(con: duckdb.DuckDBPyConnection, release: _Release, run_id: str) -> None:
    """The table's and its columns' comments, in one transaction (each statement its own: 156 comments of a
    10-million-record extract 0.08–0.11 s, 0.03 s in one)."""
    table = sql_ident(release.doc.name)
    con.execute("begin")
    try:
        con.execute(f"comment on table {table} is {sql_string(table_comment(release.doc, run_id))}")
        for column, _expr in release.columns:
            con.execute(f"comment on column {table}.{sql_ident(column.name)} is {sql_string(column_comment(column))}")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _copy_in_full(con: duckdb.DuckDBPyConnection, release: _Release, source: str, gone: str | None) -> None:
    """(Re)create the masked copy of one gold table from view ``source``; with ``gone``, the keys the table
    had and its new copy has not are kept in temp table ``gone``."""
    table, key = sql_ident(release.doc.name), ", ".join(release.doc.header.key)
    fresh = sql_ident(f"{release.doc.name}__new")
    con.execute(f"create or replace table {fresh} as select\n    {release.select}\nfrom {source}")
    old = con.execute("select 1 from duckdb_tables() where table_name = ? and database_name = current_database()",
                      [release.doc.name]).fetchone()
    if gone is not None:
        had = f"select {key} from {table}" if old else f"select {key} from {fresh} limit 0"
        con.execute(f"create or replace temp table {gone} as {had} except select {key} from {fresh}")
    if old:
        con.execute(f"drop table {table}")
    con.execute(f"alter table {fresh} rename to {table}")


def _update(con: duckdb.DuckDBPyConnection, release: _Release, changes: tuple[list[str], list[str]],
            gone: str | None, budget: float) -> int | None:
    """Bring the masked copy of one gold table from its previous version to the new one: the rows of the
    removed data files that the added files do not hold unchanged go (found by the table's key), the added
    files' rows that the removed files did not hold come in. Returns the rows deleted and inserted; None,
    with nothing changed, when they would be more than ``budget`` or the rows the key finds are not exactly
    the rows that go (a key the table holds twice, or null): the table is then copied in full."""
    removed, added = changes
    table, key = sql_ident(release.doc.name), release.key
    for name, files in (("_removed_files", removed), ("_added_files", added)):
        if files:
            storage.register_files(con, name, files, pa.schema([]))
    gone_rows, new_rows = "_removed_files", "_added_files"
    if removed and added:
        # a merge rewrites whole files: most rows of a removed file come back, unchanged, in an added one;
        # only the rows that differ are applied (a day's merge into a table of 8 MiB files: ~110,000 rows
        # re-released for a few thousand changed). A row is unchanged when an added row has its key and the
        # same fingerprint (:func:`row_fingerprint`; one pass over each side; EXCEPT ALL over the wide rows took
        # 8× longer)
        added_rel = con.sql("select * from _added_files")
        columns = added_rel.columns
        if sorted(columns) == sorted(con.sql("select * from _removed_files").columns):
            listed, keys = ", ".join(map(sql_ident, columns)), ", ".join(map(sql_ident, key))
            hashed = f"select *, {row_fingerprint(columns, [str(t) for t in added_rel.types])} as __row_hash from"
            for side in ("_removed_files", "_added_files"):
                con.execute(f"create or replace temp table {side}_hashed as select {keys}, __row_hash "
                            f"from ({hashed} {side})")
            for into, side, other in (("_gone_rows", "_removed_files", "_added_files"),
                                      ("_new_rows", "_added_files", "_removed_files")):
                con.execute(f"create or replace temp table {into} as select {listed} from ({hashed} {side}) "
                            f"anti join {other}_hashed using ({keys}, __row_hash)")
            gone_rows, new_rows = "_gone_rows", "_new_rows"
    changed = sum(con.execute(f"select count(*) from {name}").fetchone()[0]
                  for name, files in ((gone_rows, removed), (new_rows, added)) if files)
    if changed > budget:
        log.info("extract %s: %s rows changed, more than %d; copied in full", release.doc.name, changed, budget)
        return None
    on = " and ".join(f"t.{sql_ident(k)} = r.{sql_ident(k)}" for k in key)
    con.execute("begin")
    try:
        if removed:
            con.execute("create or replace temp table _removed as select "
                        + ", ".join(f"{expr} as {sql_ident(k)}" for k, expr in key.items()) + f" from {gone_rows}")
            expected = con.execute("select count(*) from _removed").fetchone()[0]
            deleted = con.execute(f"delete from {table} as t using _removed as r where {on}").fetchone()[0]
            if deleted != expected:
                log.info("extract %s: the removed files' %s rows match %s by key; copied in full",
                         release.doc.name, expected, deleted)
                con.execute("rollback")
                return None
        else:
            deleted = 0
            con.execute(f"create or replace temp table _removed as select {', '.join(map(sql_ident, key))} "
                        f"from {table} limit 0")
        inserted = 0
        if added:
            inserted = con.execute(f"insert into {table} select\n    {release.select}\nfrom {new_rows}").fetchone()[0]
        if gone is not None:
            # every removed key was deleted (the counts agree), so the table holds one again only if an inserted
            # row brought it back: the removed keys less the inserted ones, without reading the table
            keys = ", ".join(map(sql_ident, release.doc.header.key))
            back = ", ".join(f"{expr} as {sql_ident(k)}" for k, expr in key.items())
            returned = f" except select {back} from {new_rows}" if added else ""
            con.execute(f"create or replace temp table {gone} as select {keys} from _removed{returned}")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return deleted + inserted


def row_fingerprint(columns: list[str], types: list[str]) -> str:
    """DuckDB SQL for a number that tells a row's values from another's: ``hash()`` of every column, and of every
    column holding text once more behind four spaces.

    DuckDB's ``hash()`` of a string (1.5) folds it in 8-byte blocks, each XORed in and multiplied, and a
    multiplication carries a change of a block's last byte into nothing but the last byte: two strings that
    differ only in the last bytes of two blocks share their hash one time in 256 (measured: 142 of 40,000 random
    such edits; '济交罚〔2025〕1097788号' and '济交罚〔2022〕1097288号' do). A row changed so would have been taken
    for the one it replaces, and the extract would have kept the old value. Behind four spaces those bytes fall
    in the middle of a block, whose changes the multiplication spreads: both hashes alike only as often as any
    two 64-bit numbers (none of the 40,000)."""
    text = [f"'    ' || {sql_ident(c)}::varchar" for c, t in zip(columns, types, strict=True) if "VARCHAR" in t]
    return f"hash({', '.join([*map(sql_ident, columns), *text])})"


READ_METHOD = "read"
"""extract_info's method for a gold table the extract reads without releasing it (the lifecycle records, for the
withdrawals' reasons): its row records the version read."""


def _withdrawals(con: duckdb.DuckDBPyConnection, intent: steps.Intent, gone: dict, as_of: dt.date,
                 read_before: dict[str, int]) -> list[dict]:
    """Publication records the previous extract had and the new one has not (``gone``: publication table →
    temp table of their keys), with the reason from their gold lifecycle record (gold/penalty_record,
    gold/license_record).

    A record leaves a publication when the credit step derives it again, so its current row is in a data
    file written since the previous extract read the record table (``read_before``: its version then): those
    files are looked in first, and the whole table only for keys they do not hold (a publication row deleted
    by hand) or when that version is unknown or its files are gone."""
    rows = []
    for kind in (k for k in KINDS if k.publication in gone):
        table, target = gold_path(kind.record), f"gold_{kind.record}"
        since, version = read_before.get(kind.record), intent.version(table)
        changes = (storage.file_changes(intent.path(table), since, version)
                   if None not in (since, version) else None)
        found = []
        if changes is not None and changes[1]:
            storage.register_files(con, f"{target}_added", changes[1], pa.schema([]))
            found = _reasons(con, kind, gone[kind.publication], f"{target}_added")
        wanted = con.execute(f"select count(*) from {gone[kind.publication]}").fetchone()[0]
        if changes is None or len(found) < wanted:
            intent.register(con, target, table)
            found = _reasons(con, kind, gone[kind.publication], target)
        rows += [withdrawal(f"extract/{EXTRACT_NAME}:{kind.publication}", kind, row, as_of) for row in found]
    return rows


def _reasons(con: duckdb.DuckDBPyConnection, kind, gone: str, records: str) -> list[tuple]:
    return con.execute(f"""
        select {kind.key[0]}, r.authority_uscc, r.uscc, r.publicity_status, {kind.end_column}
        from {gone} join {records} as r using ({", ".join(kind.key)})""").fetchall()


def _read_versions(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The versions of the gold tables the extract open in ``con`` read without releasing them ({} for an
    extract written before extract_info recorded them)."""
    if not con.execute("select 1 from duckdb_tables() where table_name = ?", [INFO_TABLE]).fetchone():
        return {}
    return {name: version for name, version in con.execute(
        f"select gold_table, gold_version from {INFO_TABLE} where method = ? and gold_version is not null",
        [READ_METHOD]).fetchall()}


def build_extract(*, settings: Settings, run_id: str) -> Path:
    """Write ``settings.extracts / "analyst.duckdb"`` from the gold tables; returns its path.

    One intent of govlake.steps under the ``publish`` lock: the gold tables are read at the versions
    pinned when it started, the withdrawal-log rows are written (stamped) before the new file
    replaces the old one, so an interrupted run is finished by the next one without a row lost or
    written twice. Raises FileNotFoundError when a gold table has not been built yet.

    The new file starts as a copy of the previous one: a table whose gold version and release are those
    it was built from is kept; one whose gold table changed by some of its files (a day's merge) is
    updated by those files' rows; any other is copied in full (extract_info says which, per table).
    """
    tables = [gold_path(name) for name in PUBLIC_TABLES] + [gold_path(kind.record) for kind in KINDS]

    def params() -> dict:
        for name in PUBLIC_TABLES:
            path = storage.table_path(settings, "gold", name)
            if storage.open_table(path) is None:
                raise FileNotFoundError(f"gold table {name} has not been built ({path}); run gold first")
        return {"as_of": settings.today.isoformat()}

    return steps.run(settings, "extract", lock=locks.PUBLISH, run_id=run_id, params=params,
                     reads=lambda _: tables, body=_build)


def _start_from(target: Path, tmp: Path) -> bool:
    """Copy the previous extract to ``tmp``; False (and ``tmp`` absent) when there is none or it cannot be
    opened (the new one is then built in full, and no withdrawal is logged against it)."""
    if not target.exists():
        return False
    shutil.copyfile(target, tmp)
    try:
        duckdb.connect(str(tmp), read_only=True).close()
    except duckdb.Error as e:
        log.warning("extract: the previous %s cannot be opened (%s); building a new one in full, without "
                    "logging the withdrawals since it", target, e)
        tmp.unlink()
        return False
    return True


def _build(intent: steps.Intent) -> Path:
    settings, run_id = intent.settings, intent.run_id
    as_of = dt.date.fromisoformat(intent.params["as_of"])
    docs = table_docs(settings)
    target = settings.extracts / EXTRACT_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{EXTRACT_NAME}.{run_id}.tmp")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    publications = {kind.publication for kind in KINDS}
    info = []
    try:
        had_previous = _start_from(target, tmp)
        con = storage.connect(settings, database=str(tmp))
        try:
            previous, read_before, gone = _previous(con), _read_versions(con), {}
            for name in PUBLIC_TABLES:
                view, table = f"gold_{name}", gold_path(name)
                intent.register(con, view, table)
                release = _Release.of(docs[name], [c for c in con.sql(f"select * from {view}").columns
                                                   if c != storage.KEY_HASH])  # the lake's lookup column
                version = intent.version(table)
                gone_table = f"_gone_{name}" if had_previous and name in publications else None
                method, churn = _refresh(con, intent, release, view, previous.get(name), version, gone_table)
                if gone_table is not None and method != "kept":
                    gone[name] = gone_table
                _comment(con, release, run_id)
                if release.withheld:
                    log.warning("extract %s: columns withheld: %s", name, ", ".join(release.withheld))
                rows = con.execute(f"select count(*) from {sql_ident(name)}").fetchone()[0]
                log.info("extract %s: %s (%s rows)", name, method, rows)
                info.append((name, version, rows, ", ".join(release.withheld) or None, method,
                             release.fingerprint, churn))
            info += [(kind.record, intent.version(gold_path(kind.record)), None, None, READ_METHOD, None, None)
                     for kind in KINDS]
            con.execute(f"create or replace table {INFO_TABLE} (gold_table varchar, gold_version bigint, "
                        "rows bigint, withheld_columns varchar, method varchar, release varchar, churn bigint, "
                        "run_id varchar, built_at_utc timestamp)")
            built_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            con.executemany(f"insert into {INFO_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [(*row, run_id, built_at) for row in info])
            con.execute(f"comment on table {INFO_TABLE} is {sql_string(INFO_COMMENT)}")
            con.execute("checkpoint")
            withdrawals = _withdrawals(con, intent, gone, as_of, read_before)
        finally:
            con.close()
        # the log first: if the process dies before the rename, the next run logs nothing twice (the
        # commit is stamped) and still renames; if it dies after, the file already is the new one
        intent.append_rows("gold/withdrawal_log", withdrawal_rows(withdrawals, as_of=as_of, run_id=run_id),
                           WITHDRAWAL_SCHEMA)
        os.replace(tmp, target)
        crash_point("extract:file")
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return target


INFO_COMMENT = ("本抽取的来源与批次 | Gold versions and run of this extract; per table: method (full: copied in full, "
                "updated: the changed gold files' rows applied to the previous extract's copy, kept: unchanged, "
                "read: not released, read for the withdrawals' reasons), "
                "release (fingerprint of its columns' masking and comments), churn (rows deleted and inserted "
                "since its last full copy)")


def _refresh(con: duckdb.DuckDBPyConnection, intent: steps.Intent, release: _Release, view: str,
             built: _Built | None, version: int | None, gone: str | None) -> tuple[str, int]:
    """Bring one table of the extract to gold ``version``: kept, updated or copied in full; returns how and
    the table's churn since its last full copy."""
    name = release.doc.name
    if built is not None and built.release == release.fingerprint and None not in (built.version, version):
        if built.version == version:
            return "kept", built.churn
        changes = storage.file_changes(intent.path(gold_path(name)), built.version, version) if release.key else None
        if changes is not None:
            rows = con.execute(f"select count(*) from {sql_ident(name)}").fetchone()[0]
            changed = _update(con, release, changes, gone, budget=REBUILD_CHURN * rows - built.churn)
            if changed is not None:
                return "updated", built.churn + changed
    _copy_in_full(con, release, view, gone)
    return "full", 0


def lineage_plan(settings: Settings) -> lineage.JobPlan:
    """The extract: the public gold tables → ``var/extracts/analyst.duckdb`` (fields ``<table>.<column>``;
    masked columns marked as masking, withheld ones absent)."""
    docs = table_docs(settings)
    target = lineage.file_dataset(settings.extracts / EXTRACT_NAME)
    inputs, fields = [], {}
    for name in PUBLIC_TABLES:
        ref = lineage.lake_table(settings, "gold", name)
        inputs.append(lineage.Dataset(ref))
        doc = docs.get(name)
        for column, _type in lineage.delta_schema(ref.path) or []:  # type: ignore[arg-type]
            column_doc = doc.columns.get(column) if doc else None
            expr = release_sql(column_doc) if column_doc else None
            if expr is None:
                continue  # withheld from the extract
            kind = lineage.MASKED if column_doc.item is not None and column_doc.item.pii else (
                lineage.DIRECT if expr == f'"{column}"' else lineage.TRANSFORMED)
            fields[f"{name}.{column}"] = {(ref, column): kind}
    output = lineage.Dataset(target, fields=[(c, None) for c in fields], owner="dsj", lineage=fields,
                             description="Analyst extract (DuckDB): gold tables with personal data masked")
    return lineage.JobPlan(name="extract", description="Write the masked analyst extract from the gold tables",
                           inputs=inputs, outputs=[output], owner="dsj")
