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
import logging
import os
from pathlib import Path

import duckdb

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


def _copy_table(con: duckdb.DuckDBPyConnection, doc: TableDoc, source: str, run_id: str) -> list[str]:
    """Create the masked copy of one gold table; returns the columns withheld."""
    released, withheld = [], []
    columns = con.sql(f"select * from {source}").columns
    names = name_items([c.item for n, c in doc.columns.items() if n in columns and c.item is not None
                        and c.item.column == n])
    for name in columns:
        column = doc.columns.get(name)
        expr = release_sql(column, names) if column else None
        if expr is None:
            withheld.append(name)
            continue
        released.append((column, expr))
    select = ",\n    ".join(f"{expr} as {sql_ident(c.name)}" for c, expr in released)
    con.execute(f"create table {sql_ident(doc.name)} as select\n    {select}\nfrom {source}")
    con.execute(f"comment on table {sql_ident(doc.name)} is {sql_string(table_comment(doc, run_id))}")
    for column, _expr in released:
        con.execute(f"comment on column {sql_ident(doc.name)}.{sql_ident(column.name)} "
                    f"is {sql_string(column_comment(column))}")
    return withheld


def _withdrawals(con: duckdb.DuckDBPyConnection, intent: steps.Intent, previous: Path, as_of: dt.date) -> list[dict]:
    """Publication records in the previous extract that the new one no longer has, with the reason
    from their gold lifecycle record (gold/penalty_record, gold/license_record)."""
    con.execute(f"attach {sql_string(str(previous))} as previous (read_only)")
    try:
        had = {r[0] for r in con.execute(
            "select table_name from duckdb_tables() where database_name = 'previous'").fetchall()}
        rows = []
        for kind in (k for k in KINDS if k.publication in had):
            intent.register(con, f"gold_{kind.record}", gold_path(kind.record))
            key = ", ".join(kind.key)
            rows += [withdrawal(f"extract/{EXTRACT_NAME}:{kind.publication}", kind, row, as_of)
                     for row in con.execute(f"""
                    select {kind.key[0]}, r.authority_uscc, r.uscc, r.publicity_status, {kind.end_column}
                    from (select {key} from previous.{kind.publication}
                          except select {key} from {kind.publication}) as gone
                    join gold_{kind.record} as r using ({key})""").fetchall()]
        return rows
    finally:
        con.execute("detach previous")


def build_extract(*, settings: Settings, run_id: str) -> Path:
    """Write ``settings.extracts / "analyst.duckdb"`` from the gold tables; returns its path.

    One intent of govlake.steps under the ``publish`` lock: the gold tables are read at the versions
    pinned when it started, the withdrawal-log rows are written (stamped) before the new file
    replaces the old one, so an interrupted run is finished by the next one without a row lost or
    written twice. Raises FileNotFoundError when a gold table has not been built yet.
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


def _build(intent: steps.Intent) -> Path:
    settings, run_id = intent.settings, intent.run_id
    as_of = dt.date.fromisoformat(intent.params["as_of"])
    docs = table_docs(settings)
    target = settings.extracts / EXTRACT_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{EXTRACT_NAME}.{run_id}.tmp")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    info = []
    try:
        con = storage.connect(settings, database=str(tmp))
        try:
            for name in PUBLIC_TABLES:
                view = f"gold_{name}"
                intent.register(con, view, gold_path(name))
                withheld = _copy_table(con, docs[name], view, run_id)
                if withheld:
                    log.warning("extract %s: columns withheld: %s", name, ", ".join(withheld))
                rows = con.execute(f"select count(*) from {sql_ident(name)}").fetchone()[0]
                info.append((name, intent.version(gold_path(name)), rows, ", ".join(withheld) or None))
            con.execute(f"create table {INFO_TABLE} (gold_table varchar, gold_version bigint, "
                        "rows bigint, withheld_columns varchar, run_id varchar, built_at_utc timestamp)")
            built_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            con.executemany(f"insert into {INFO_TABLE} values (?, ?, ?, ?, ?, ?)",
                            [(*row, run_id, built_at) for row in info])
            con.execute(f"comment on table {INFO_TABLE} is "
                        f"{sql_string('本抽取的来源与批次 | Gold versions and run of this extract')}")
            con.execute("checkpoint")
            withdrawals = _withdrawals(con, intent, target, as_of) if target.exists() else []
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
