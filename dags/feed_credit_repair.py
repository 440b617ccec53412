"""
# Feed: credit.repair — 行政处罚信息信用修复结果 (Credit repair of penalty records)

市公共信用信息中心 (credit) forwards the credit-repair (信用修复) decisions of 信用中国 and
信用中国（山东） as CSV files (`credit/repair/*.csv`, UTF-8 with BOM or GBK; the provincial
platform leaves out the optional code columns and 报送时间). Silver: one row per repaired penalty
(统一社会信用代码 + 处罚决定书文号). Whether a repair is allowed (after the minimum publicity
period) is decided by the credit lifecycle, which joins these rows to the penalties; this feed
checks the row only (required items, codes, dates not in the future, 报送时间 not before 修复日期).

Tasks:
- `ingest` lands what is new in the source in bronze, `lake/bronze/credit_repair`.
- `process` standardizes and validates bronze into `lake/silver/credit_repair` and
  `lake/quarantine/credit_repair` and reconciles the counts; a blocking rule or a count mismatch
  fails it and leaves silver unchanged. On success it updates the Asset
  `govlake://silver/credit_repair`, which schedules `publish_gold`.

Schedule: catalog `update_cycle: daily`. Owner: the providing department, `credit`.
"""

from airflow.sdk import Asset

from govlake.orchestration import feed_dag

dag = feed_dag(
    "credit.repair",
    schedule="@daily",
    owner="credit",
    retries=2,
    tags=["govlake", "feed", "credit", "daily"],
    doc_md=__doc__,
    outlet=Asset("govlake://silver/credit_repair"),
)
