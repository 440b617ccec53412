"""
# Feed: amr.enterprise — 企业登记信息 (Enterprise registry)

市场监督管理局 (amr) registry database table `amr_enterprise`, read incrementally on the
`updated_at` watermark. Silver is the authoritative source of 法人库 (legal_entity): one row per
enterprise (统一社会信用代码), latest registration record.

Tasks:
- `ingest` lands what is new in the source in bronze, `lake/bronze/amr_enterprise`.
- `process` standardizes and validates bronze into `lake/silver/amr_enterprise` and
  `lake/quarantine/amr_enterprise` and reconciles the counts; a blocking rule or a count mismatch
  fails it and leaves silver unchanged. On success it updates the Asset
  `govlake://silver/amr_enterprise`, which schedules `publish_gold`.

Schedule: catalog `update_cycle: daily`. Owner: the providing department, `amr`.
"""

from airflow.sdk import Asset

from govlake.orchestration import feed_dag

dag = feed_dag(
    "amr.enterprise",
    schedule="@daily",
    owner="amr",
    retries=2,
    tags=["govlake", "feed", "amr", "daily"],
    doc_md=__doc__,
    outlet=Asset("govlake://silver/amr_enterprise"),
)
