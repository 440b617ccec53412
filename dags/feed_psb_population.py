"""
# Feed: psb.population — 人口基础信息 (Population base data)

公安局 (psb) household-registration exports (`psb/*.csv`), the authoritative source of 人口库.
Silver: one row per person (身份证号); ID number, name, address and mobile are L3/L4 personal data
and reach analysts only masked.

Tasks:
- `ingest` lands what is new in the source in bronze, `lake/bronze/psb_population`.
- `process` standardizes and validates bronze into `lake/silver/psb_population` and
  `lake/quarantine/psb_population` and reconciles the counts; a blocking rule or a count mismatch
  fails it and leaves silver unchanged. On success it updates the Asset
  `govlake://silver/psb_population`, which schedules `publish_gold`.

Schedule: catalog `update_cycle: daily`. Owner: the providing department, `psb`.
"""

from airflow.sdk import Asset

from govlake.orchestration import feed_dag

dag = feed_dag(
    "psb.population",
    schedule="@daily",
    owner="psb",
    retries=2,
    tags=["govlake", "feed", "psb", "daily"],
    doc_md=__doc__,
    outlet=Asset("govlake://silver/psb_population"),
)
