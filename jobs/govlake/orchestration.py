"""Builders for the Airflow DAGs in ``dags/``: the DAG files say what runs when, this module says how.

A feed DAG lands one catalog resource in bronze (``pipeline.ingest``), then standardizes and
validates it into silver and quarantine (``pipeline.process``); its silver table is an Airflow
Asset, and the feeds' silver Assets schedule ``publish_gold``. Parsing a DAG file imports only this
module and ``airflow.sdk``: every task imports ``govlake.pipeline`` when it runs, so the scheduler
never loads DuckDB, Delta or Great Expectations and parsing needs no secrets or network.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Iterator
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, dag, get_current_context, task

log = logging.getLogger(__name__)

START_DATE = pendulum.datetime(2024, 1, 1, tz="Asia/Shanghai")
"""First schedulable interval of every govlake DAG (the catalog's earliest ``published``); no catchup."""

SCHEDULES = {"daily": "@daily", "monthly": "@monthly", "yearly": "@yearly"}
"""Catalog ``update_cycle`` → Airflow schedule; tests/test_dags.py checks each feed DAG against it."""


def slug(resource: str) -> str:
    """Lake table name of a catalog resource code: ``credit.penalty`` → ``credit_penalty``."""
    return resource.replace(".", "_")


def run_id() -> str:
    """A govlake run id naming the Airflow DAG run that made it (folder-safe; see pipeline.new_run_id)."""
    from govlake.pipeline import new_run_id

    return new_run_id(get_current_context()["dag"].dag_id)


def business_date():
    """The run's business date: the DAG run's logical date in the bureau's time zone (None for
    runs without one, e.g. manual triggers in Airflow 3; the pipeline then uses today)."""
    logical = get_current_context().get("logical_date")
    return None if logical is None else pendulum.instance(logical).in_timezone("Asia/Shanghai").date()


def jsonable(value: Any) -> Any:
    """A job's result as plain JSON for XCom and the task log (dataclasses → dicts, paths → str)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


@contextlib.contextmanager
def no_retry_on_data_errors() -> Iterator[None]:
    """Fail the task at once on errors that a retry cannot fix (bad catalog, bad input, blocking rule).

    Retries are for the transient (a locked file, a database connection); re-running a data error
    twice only delays the alert.
    """
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except Exception as exc:
        if isinstance(exc, _data_errors()):
            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
        raise


def _data_errors() -> tuple[type[Exception], ...]:
    import importlib

    errors: list[type[Exception]] = []
    for module, name in [("govlake.config", "SettingsError"), ("govlake.catalog", "CatalogError"),
                         ("govlake.ingest", "IngestError"),
                         ("govlake.quality", "QualityError"), ("govlake.gold", "GoldError")]:
        try:
            errors.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            log.debug("%s.%s not available", module, name)
    return tuple(errors)


def feed_dag(resource: str, *, schedule: str, owner: str, retries: int, tags: list[str], doc_md: str | None,
             outlet: Asset) -> DAG:
    """The DAG ``feed_<slug>``: ingest(resource) >> process(resource), updating ``outlet`` on success.

    Args:
        resource: catalog resource code, e.g. ``credit.penalty``.
        schedule: from the catalog's ``update_cycle`` (see SCHEDULES).
        owner: the providing department's code (catalog ``provider``).
        retries: retries per task for transient failures (data errors are not retried).
        tags: shown in the Airflow UI.
        doc_md: the DAG file's docstring.
        outlet: the silver Asset ``process`` publishes.
    """

    @dag(
        dag_id=f"feed_{slug(resource)}",
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args={"owner": owner, "retries": retries},
        tags=tags,
        doc_md=doc_md,
    )
    def feed() -> None:
        @task
        def ingest(resource: str) -> dict:
            """Land what is new in the resource's source in bronze."""
            from govlake import pipeline

            with no_retry_on_data_errors():
                result = pipeline.ingest(resource, run_id=run_id())
            summary = jsonable(result)
            log.info("ingest %s: %s", resource, summary)
            return summary

        # all_done: a rejected file fails the ingest task (and so the DAG run), but the files that
        # did land are still processed; a held batch is reported by process without failing it
        @task(outlets=[outlet], trigger_rule="all_done")
        def process(resource: str) -> dict:
            """Standardize and validate bronze into silver + quarantine; reconciled or failed."""
            from govlake import pipeline

            with no_retry_on_data_errors():
                result = pipeline.process(resource, run_id=run_id(), as_of=business_date())
            summary = jsonable(result)
            log.info("process %s: %s", resource, summary)
            for held in result.held_batches:
                log.warning("process %s: %s — `govlake batches` to reject or release it", resource, held.describe())
            return summary

        ingest(resource) >> process(resource)

    return feed()
