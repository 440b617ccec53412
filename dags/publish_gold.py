"""
# Publish gold: 法人库, 人口库 and 一人一档, and the 一数一源 conflicts

Runs when the daily feeds (every catalog resource with `update_cycle: daily`, e.g. the registry,
population, licensing, penalties, credit repairs, the court's 失信 list) have all published their
silver tables since the last run, or when a slower feed (the monthly social-insurance, the yearly
tax feed) publishes (Asset-based schedule built from the catalog; waiting for every feed would
publish once a year).
`gold` rebuilds the base libraries: 法人库 (`lake/gold/base/legal_entity`), 人口库 (`lake/gold/base/population`)
and 一人一档 (`lake/gold/base/person_profile`) from silver, checking each model's grain and keys before anything is
written; the 法人库's Asset, with the credit feeds', schedules `publish_credit`
(双公示 publications, 一企一档 profiles, the analyst extract, the KPIs). `conflicts` compares every
department's copy of a data item with its authoritative department's value (一数一源) and merges the
disagreements into `lake/gold/conflicts`. `returns` then writes each district's and department's
回流 (`var/returns/<receiver>/returns.duckdb`: what it may receive under the catalog's 共享类型 and the
granted share requests, masked, with each department's 整改清单 of quarantined rows and conflicts) and
logs every delivery in `lake/meta/returns_log`.

Owner: the big data bureau itself (`dsj`), which publishes on the departments' behalf.
"""

from airflow.sdk import Asset, dag, task

from govlake.orchestration import (
    START_DATE,
    catalog_feeds,
    jsonable,
    no_retry_on_data_errors,
    on_task_failure,
    on_update_cycles,
    run_id,
)

SILVER = on_update_cycles(catalog_feeds())
GOLD = [Asset(f"govlake://gold/base/{name}")
        for name in ("legal_entity", "population", "person_profile", "penalty_subjects")]
"""The tables the gold step writes (govlake.gold.GOLD_TABLES; tests/test_dags.py checks they agree)."""
CONFLICTS = Asset("govlake://gold/conflicts")


@dag(
    schedule=SILVER,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "dsj", "retries": 2, "on_failure_callback": on_task_failure},
    tags=["govlake", "gold", "extract", "dsj"],
    doc_md=__doc__,
)
def publish_gold() -> None:
    @task(outlets=GOLD)
    def gold() -> dict[str, int]:
        """Build the gold tables from silver; rows per gold table."""
        from govlake import pipeline

        with no_retry_on_data_errors():
            return jsonable(pipeline.gold(run_id=run_id()))

    @task(outlets=[CONFLICTS])
    def conflicts() -> dict:
        """Compare departments' copies with their authorities (一数一源); merge gold/conflicts."""
        from govlake import pipeline

        with no_retry_on_data_errors():
            return jsonable(pipeline.conflicts(run_id=run_id()))

    @task
    def returns() -> dict[str, int]:
        """Write the districts' and departments' returns (回流); tables per receiver."""
        from govlake import pipeline

        with no_retry_on_data_errors():
            return {receiver: len(r["tables"]) for receiver, r in pipeline.returns(run_id=run_id()).items()}

    gold() >> conflicts() >> returns()


publish_gold()
