"""
# Feed: hrss.social_insurance — 单位社会保险参保缴费信息 (Social-insurance contributions)

人社局 (hrss) sends monthly JSON lines (`hrss/*.jsonl`): insured employees, amounts due, paid
and in arrears. Silver: one row per enterprise per contribution month.

Tasks:
- `ingest` lands what is new in the source in bronze, `lake/bronze/hrss_social_insurance`.
- `process` standardizes and validates bronze into `lake/silver/hrss_social_insurance` and
  `lake/quarantine/hrss_social_insurance` and reconciles the counts; a blocking rule or a count mismatch
  fails it and leaves silver unchanged. On success it updates the Asset
  `govlake://silver/hrss_social_insurance`, which schedules `publish_gold`.

Schedule: catalog `update_cycle: monthly`. Owner: the providing department, `hrss`.
"""

from airflow.sdk import Asset

from govlake.orchestration import feed_dag

dag = feed_dag(
    "hrss.social_insurance",
    schedule="@monthly",
    owner="hrss",
    retries=2,
    tags=["govlake", "feed", "hrss", "monthly"],
    doc_md=__doc__,
    outlet=Asset("govlake://silver/hrss_social_insurance"),
)
