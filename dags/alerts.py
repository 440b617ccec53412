"""
# Alerts check: late feeds, volume drops, held batches, failed reconciliations, late 双公示 records

Runs every hour, and whenever a feed has published its silver table (Asset-or-time schedule built from
the catalog: a late feed publishes nothing, so the clock must run the check too). `check` is
`govlake alerts check`: it finds what is wrong now, stores one alert per condition in `lake/meta/alerts`
(a condition found again is the same alert, one that cleared is resolved) and sends each new alert once
to the configured channels (`GOVLAKE_ALERT_WEBHOOK_URL`, `GOVLAKE_ALERT_SMTP_HOST`; docs/alerts.md). A
channel that fails to take an alert fails the task (the alert is stored, and the next run sends it again).

Failed tasks of every govlake DAG and feed runs past their deadline raise alerts of their own (the DAGs'
failure callbacks and Airflow deadline alerts); this DAG does not need to run for those.

Owner: the big data bureau's operations (`dsj`).
"""

from airflow.sdk import AssetAny, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from govlake.orchestration import START_DATE, catalog_feeds, jsonable, on_task_failure, run_id

FEEDS = AssetAny(*(feed.silver for feed in catalog_feeds()))


@dag(
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 * * * *", timezone="Asia/Shanghai"), assets=FEEDS),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "dsj", "retries": 2, "on_failure_callback": on_task_failure},
    tags=["govlake", "alerts", "dsj"],
    doc_md=__doc__,
)
def alerts() -> None:
    @task
    def check() -> dict:
        """Detect, store and notify; fails when a channel did not take an alert (stored, sent again next run)."""
        from govlake.alerts import check as check_alerts
        from govlake.config import get_settings

        result = check_alerts(get_settings(), run_id=run_id())
        summary = jsonable({"raised": [a.alert_id for a in result.raised], "seen": len(result.seen),
                            "resolved": [a.alert_id for a in result.resolved], "open": len(result.open),
                            "deliveries": result.deliveries})
        if result.failed:
            raise RuntimeError(f"{len(result.failed)} alert deliveries failed: "
                               + "; ".join(f"{d.channel} ({d.target}): {d.error}" for d in result.failed[:5]))
        return summary

    check()


alerts()
