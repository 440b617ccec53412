"""
# Maintain the lake: weekly vacuum, the meta tables compacted

Runs every Sunday at 03:00 (Asia/Shanghai). `vacuum` is `govlake vacuum --compact` with the default
retention (168 h, so `govlake restore --as-of` can still go back a week): it deletes the data files no
version in that window needs, rewrites the small files of the append-only meta tables (the ingest log,
the consumption, the reconciliation, the validation results …) into few, checkpoints every table and drops
the gold and meta tables' log entries older than Delta's log retention.

Every step appends a row or a few to the meta tables, a file each: a lake run daily for a year holds
some 1,500 small files in each, and each read of one — every step reads the versions it consumed, the last
reconciled totals, the ingest history — opens them all (docs/performance.md). Compacted weekly, a meta
table holds at most a week's files.

The vacuum takes the lake's lock exclusively (govlake.locks): it waits for the steps running, and they for
it (`GOVLAKE_LOCK_WAIT`, 30 minutes); a wait that runs out fails the task, which is retried, and raises an
alert like any failed task.

Owner: the big data bureau's operations (`dsj`).
"""

from airflow.sdk import CronTriggerTimetable, dag, task

from govlake.orchestration import START_DATE, jsonable, on_task_failure


@dag(
    schedule=CronTriggerTimetable("0 3 * * 0", timezone="Asia/Shanghai"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "dsj", "retries": 2, "on_failure_callback": on_task_failure},
    tags=["govlake", "maintenance", "dsj"],
    doc_md=__doc__,
)
def maintain() -> None:
    @task
    def vacuum() -> dict:
        """`govlake vacuum --compact` with the default retention; what it removed and compacted, per table."""
        from govlake.backup import vacuum as vacuum_lake
        from govlake.config import get_settings

        result = vacuum_lake(get_settings(), compact=True)
        return jsonable({"files_removed": result.files, "removed": result.removed, "compacted": result.compacted,
                         "notes": result.notes, "seconds": round(result.seconds, 1)})

    vacuum()


maintain()
