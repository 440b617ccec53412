"""
# Feed: tax.credit_rating — 纳税信用等级评价结果 (Tax credit ratings)

税务局 (tax) sends the yearly A/B/M/C/D ratings as an Excel workbook (`tax/*.xlsx`, sheet
纳税信用评价). Silver: one row per enterprise per rating year.

Tasks:
- `ingest` lands what is new in the source in bronze, `lake/bronze/tax_credit_rating`.
- `process` standardizes and validates bronze into `lake/silver/tax_credit_rating` and
  `lake/quarantine/tax_credit_rating` and reconciles the counts; a blocking rule or a count mismatch
  fails it and leaves silver unchanged. On success it updates the Asset
  `govlake://silver/tax_credit_rating`, which schedules `publish_gold`.

Schedule: catalog `update_cycle: yearly`. Owner: the providing department, `tax`.
"""

from airflow.sdk import Asset

from govlake.orchestration import feed_dag

dag = feed_dag(
    "tax.credit_rating",
    schedule="@yearly",
    owner="tax",
    retries=2,
    tags=["govlake", "feed", "tax", "yearly"],
    doc_md=__doc__,
    outlet=Asset("govlake://silver/tax_credit_rating"),
)
