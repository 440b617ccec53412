"""
# Feed: credit.license — 行政许可信息（双公示）(Administrative licensing records)

市公共信用信息中心 (credit) forwards every department's licensing decisions in the national
双公示 CSV layout (`credit/license/*.csv`, GBK or UTF-8). Silver: one row per decision
(行政许可决定文书号 + 许可机关统一社会信用代码), with the submitting department resolved to `_dept`.

Tasks:
- `ingest` lands what is new in the source in bronze, `lake/bronze/credit_license`.
- `process` standardizes and validates bronze into `lake/silver/credit_license` and
  `lake/quarantine/credit_license` and reconciles the counts; a blocking rule or a count mismatch
  fails it and leaves silver unchanged. On success it updates the Asset
  `govlake://silver/credit_license`, which schedules `publish_gold`.

Schedule: catalog `update_cycle: daily`. Owner: the providing department, `credit`.
"""

from airflow.sdk import Asset

from govlake.orchestration import feed_dag

dag = feed_dag(
    "credit.license",
    schedule="@daily",
    owner="credit",
    retries=2,
    tags=["govlake", "feed", "credit", "daily"],
    doc_md=__doc__,
    outlet=Asset("govlake://silver/credit_license"),
)
