"""
# Publish public credit: 双公示 lifecycles, 一企一档 profiles, theme libraries, the extract, open data, KPIs

Runs when 法人库 (`gold/base/legal_entity`, from `publish_gold`) has been rebuilt and the feeds the credit
step reads (`INPUTS` of `govlake.credit`: licensing and penalty decisions, credit repairs, the
court's 失信被执行人 list, the registry, tax ratings, social insurance) have published since its last
run: its daily inputs all together, or any slower one (monthly, yearly) on its own (Asset-based
schedule built from the catalog and the step's inputs).

- `credit` re-derives only what changed since its last run (incremental): each decision's deadline
  (the n-th working day after it on the State Council calendar), on-time flag, 失信 severity and
  publicity period; credit-repair reviews; withdrawals (expired, repaired, revoked) with the
  withdrawal log; the 一企一档 profile and public credit score of every enterprise touched. Results are
  merged into the credit theme library, `gold/theme/`: `penalty_record`, `penalty_publication`,
  `license_record`, `license_publication`, `credit_repair_review`, `enterprise_credit_profile` (and
  `penalty_totals`, the penalties' counts the profiles are computed from).
- `themes` builds the theme libraries declared in `catalog/themes.yml` from their SQL models
  (`gold/theme/<table>`, e.g. the 市场主体主题库 `market_region_industry` from the 一企一档 files).
- `extract` then writes the masked analyst database `extracts/analyst.duckdb`; records that left
  it are logged too.
- `open_data` publishes the de-identified, k-anonymous open datasets (CSV, JSON, DCAT) under `open/`
  for the resources whose 开放类型 allows it (docs/open-data.md); a dataset withheld because k is out
  of reach is reported in its result, not a failure.
- `kpis` records every KPI (双公示 合规率 and 及时率, conflicts, sharing) in `meta/kpi_history` for
  the quality report's trends; `govlake kpi` prints the same figures.

The business date is the DAG run's logical date (Asia/Shanghai). Owner: the public-credit centre
(`credit`), which publishes 双公示 on the departments' behalf.
"""

from airflow.sdk import Asset, AssetAll, dag, task

from govlake.orchestration import (
    START_DATE,
    business_date,
    catalog_feeds,
    credit_inputs,
    jsonable,
    no_retry_on_data_errors,
    on_task_failure,
    on_update_cycles,
    run_id,
    theme_tables,
)

READS = credit_inputs()
INPUTS = AssetAll(Asset("govlake://gold/base/legal_entity"),
                  on_update_cycles(feed for feed in catalog_feeds() if feed.code in READS))
CREDIT = [Asset(f"govlake://gold/theme/{name}") for name in (
    "penalty_record", "penalty_publication", "license_record", "license_publication", "credit_repair_review",
    "penalty_totals", "enterprise_credit_profile")] + [Asset("govlake://gold/withdrawal_log")]
EXTRACT = Asset("govlake://extract/analyst")
KPIS = Asset("govlake://meta/kpi_history")
OPEN_DATA = Asset("govlake://open/catalog")
THEMES = [Asset(f"govlake://gold/theme/{name}") for name in theme_tables()]


@dag(
    schedule=INPUTS,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "credit", "retries": 2, "on_failure_callback": on_task_failure},
    tags=["govlake", "credit", "extract", "open-data", "kpi"],
    doc_md=__doc__,
)
def publish_credit() -> None:
    @task(outlets=CREDIT)
    def credit() -> dict:
        """The incremental credit step; rows re-derived per table, withdrawals per reason."""
        from govlake import pipeline

        with no_retry_on_data_errors():
            return jsonable(pipeline.credit(run_id=run_id(), as_of=business_date()))

    @task(outlets=THEMES)
    def themes() -> dict:
        """Build the model-built theme libraries of catalog/themes.yml; rows per gold/theme/ table."""
        from govlake import pipeline

        with no_retry_on_data_errors():
            return jsonable(pipeline.themes(run_id=run_id()))

    @task(outlets=[EXTRACT])
    def extract() -> str:
        """Write the masked analyst extract; its path."""
        from govlake import pipeline

        with no_retry_on_data_errors():
            return str(pipeline.extract(run_id=run_id(), as_of=business_date()))

    @task(outlets=[OPEN_DATA])
    def open_data() -> dict:
        """Publish the open datasets; per dataset its status, rows in and out, suppressed, k."""
        from govlake import pipeline

        with no_retry_on_data_errors():
            result = pipeline.open_data(run_id=run_id(), as_of=business_date())
        return {d.dataset: {"status": d.status, "rows_in": d.rows_in, "rows_out": d.rows_out,
                            "suppressed": d.suppressed, "k": d.k, "reason": d.reason} for d in result.datasets}

    @task(outlets=[KPIS])
    def kpis() -> int:
        """Record every KPI value in meta/kpi_history; the number of values."""
        from govlake import pipeline

        with no_retry_on_data_errors():
            return pipeline.kpis(run_id=run_id(), as_of=business_date())

    built = credit()
    built >> extract()
    built >> kpis()
    built >> open_data()
    built >> themes()


publish_credit()
