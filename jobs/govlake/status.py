"""What the lake holds now: tables, row counts, quarantine per rule, latest reconciliation."""

from __future__ import annotations

import duckdb

from govlake import storage
from govlake.config import Settings, get_settings


def lake_status(settings: Settings | None = None) -> dict:
    settings = settings or get_settings()
    tables, by_rule = [], []
    for layer in storage.LAYERS:
        folder = settings.layer(layer)
        if not folder.exists():
            continue
        for path in sorted(p for p in folder.iterdir() if (p / "_delta_log").exists()):
            dt = storage.open_table(path)
            ds = dt.to_pyarrow_dataset()
            tables.append({"layer": layer, "table": path.name, "rows": ds.count_rows(),
                           "version": dt.version(), "path": str(path)})
            if layer == "quarantine":
                con = duckdb.connect()
                con.register("q", ds)
                for rule, n in con.execute("""select rule, count(*) from
                        (select unnest(_failed_rules) as rule from q) group by rule
                        order by count(*) desc, rule""").fetchall():
                    by_rule.append({"table": path.name, "rule": rule, "rows": n})
                con.close()
    recon = []
    rec = storage.open_table(storage.table_path(settings, "meta", "reconciliation"))
    if rec is not None:
        con = duckdb.connect()
        con.register("r", rec.to_pyarrow_dataset())
        cols = ["resource", "run_id", "rows_read", "silver", "quarantined", "duplicates", "balanced", "published"]
        for row in con.execute(f"""select {', '.join(cols)} from r
                qualify row_number() over (partition by resource order by checked_at desc) = 1
                order by resource""").fetchall():
            recon.append(dict(zip(cols, row)))
        con.close()
    extract = settings.extracts / "analyst.duckdb"
    return {"lake": str(settings.lake), "tables": tables, "quarantine_by_rule": by_rule,
            "reconciliation": recon, "extract": str(extract) if extract.exists() else None}
