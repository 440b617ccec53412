"""What the lake holds now: tables, row counts, quarantine per rule, latest reconciliation, rows
pending (landed, not processed yet) and held, held batches, open alerts, interrupted steps and who holds
a lock."""

from __future__ import annotations

import duckdb

from govlake import locks, objectstore, steps, storage
from govlake.config import Settings, get_settings
from govlake.quality import _batches


def lake_status(settings: Settings | None = None) -> dict:
    settings = settings or get_settings()
    tables, by_rule = [], []
    for layer in storage.LAYERS:
        folder = settings.layer(layer)
        for name in objectstore.delta_tables(folder):
            path = objectstore.join(folder, name)
            dt = storage.open_table(path)
            if dt is None:
                continue
            ds = dt.to_pyarrow_dataset()
            tables.append({"layer": layer, "table": name, "rows": ds.count_rows(),
                           "version": dt.version(), "path": str(path)})
            if layer == "quarantine":
                con = duckdb.connect()
                con.register("q", ds)
                for rule, n in con.execute("""select rule, count(*) from
                        (select unnest(_failed_rules) as rule from q) group by rule
                        order by count(*) desc, rule""").fetchall():
                    by_rule.append({"table": name, "rule": rule, "rows": n})
                con.close()
    recon = []
    rec = storage.open_table(storage.table_path(settings, "meta", "reconciliation"))
    if rec is not None:
        con = duckdb.connect()
        con.register("r", rec.to_pyarrow_dataset())
        have = set(rec.schema().to_arrow().names)
        cols = ["resource", "run_id", "rows_read", "silver", "quarantined", "duplicates", "held", "rejected",
                "balanced", "published"]
        select = ", ".join(c if c in have else f"null as {c}" for c in cols)
        for row in con.execute(f"""select {select} from r where published
                qualify row_number() over (partition by resource order by checked_at desc) = 1
                order by resource""").fetchall():
            recon.append({**dict(zip(cols, row)), "held": row[6] or 0, "rejected": row[7] or 0})
        con.close()
    bronze_rows = {t["table"]: t["rows"] for t in tables if t["layer"] == "bronze"}
    for r in recon:
        r["pending"] = max(bronze_rows.get(r["resource"].replace(".", "_"), 0) - (r["rows_read"] or 0), 0)
    held = [{"batch_id": b.batch_id, "resource": b.resource, "source": b.source, "rows": b.rows,
             "quarantined": b.quarantined, "status": b.status, "since": b.held_at, "reason": b.reason}
            for b in _batches.states(settings) if b.status in (_batches.HELD, _batches.RELEASED)]
    from govlake.alerts import LIVE, list_alerts

    alerts = [{"alert_id": a.alert_id, "kind": a.kind, "severity": a.severity, "state": a.state,
               "resource": a.resource, "department": a.department, "message_en": a.message_en,
               "since": a.first_seen} for a in list_alerts(settings, states=LIVE)]
    interrupted = [{"step": i["consumer"], "run_id": i["run_id"], "started_at": i.get("started_at")}
                   for i in steps.open_intents(settings)]
    held_locks = {name: h.describe() for name, h in locks.provider(settings).holders().items()}
    fence = None
    try:
        locks.check_fence(settings)
    except locks.LockBusy as exc:
        fence = str(exc)
    extract = settings.extracts / "analyst.duckdb"
    return {"lake": str(settings.lake), "tables": tables, "quarantine_by_rule": by_rule,
            "reconciliation": recon, "held_batches": held, "open_alerts": alerts,
            "interrupted_steps": interrupted, "locks": held_locks,
            "fence": fence, "extract": str(extract) if extract.exists() else None}
