"""
# Feed: court.dishonest — 失信被执行人名单 (Dishonest judgment debtors)

市中级人民法院 (court) pushes the city's courts' 失信被执行人 entries once a day as JSON lines
(`court/*.jsonl`, UTF-8), the form the courts' enforcement system exchanges them in; an entry
taken off the list comes again with its 移除日期. Silver: one row per case (案号), its latest
state. A natural person's name and ID number are personal data (masked downstream from the
catalog: 被执行人名称 only when 被执行人类别 is 自然人).

Tasks:
- `ingest` lands what is new in the source in bronze, `lake/bronze/court_dishonest`.
- `process` standardizes and validates bronze into `lake/silver/court_dishonest` and
  `lake/quarantine/court_dishonest` and reconciles the counts; a blocking rule or a count mismatch
  fails it and leaves silver unchanged. On success it updates the Asset
  `govlake://silver/court_dishonest`, which schedules `publish_gold`.

Schedule: catalog `update_cycle: daily`. Owner: the providing department, `court`.
"""

from airflow.sdk import Asset

from govlake.orchestration import feed_dag

dag = feed_dag(
    "court.dishonest",
    schedule="@daily",
    owner="court",
    retries=2,
    tags=["govlake", "feed", "court", "daily"],
    doc_md=__doc__,
    outlet=Asset("govlake://silver/court_dishonest"),
)
