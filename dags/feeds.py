"""
## Tasks (the same in every feed DAG)

- `ingest` lands what is new in the resource's source in bronze (`lake/bronze/<slug>`); a file that
  cannot be parsed is rejected (recorded in `meta/ingest_log`) and fails the task, the others land.
- `process` standardizes and validates what landed into silver and quarantine and reconciles the
  counts; it runs even when `ingest` rejected a file. A batch with too many quarantined rows is held
  (logged as a warning; `govlake batches` to release or reject it) and a count mismatch fails the
  task. On success it updates the feed's silver Asset, which schedules `publish_gold` (and, for the
  inputs of the credit step, `publish_credit`).

`dags/feeds.py` builds one such DAG, `feed_<slug>`, for every resource in the catalog
(`catalog/resources/<code>.yml`, or `GOVLAKE_CATALOG_DIR`), with its schedule from the resource's
`update_cycle`, owner the providing department and retries 2: a new resource gets its feed without code.
"""

# Airflow parses a file in dags/ only when it mentions both "airflow" and "dag" (safe-mode discovery):
# this comment is what makes it find this one.
from govlake.orchestration import SCHEDULES, catalog_feeds, feed_dag

for feed in catalog_feeds():
    globals()[feed.dag_id] = feed_dag(
        feed.code,
        schedule=SCHEDULES[feed.update_cycle],
        owner=feed.provider,
        retries=2,
        tags=["govlake", "feed", feed.provider, feed.update_cycle],
        doc_md=feed.doc(__doc__),
        outlet=feed.silver,
    )
