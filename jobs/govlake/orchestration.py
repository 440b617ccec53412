"""Builders for the Airflow DAGs in ``dags/``: the DAG files say what runs when, this module says how.

A feed DAG lands one catalog resource in bronze (``pipeline.ingest``), then standardizes and
validates it into silver and quarantine (``pipeline.process``); its silver table is an Airflow
Asset, and the feeds' silver Assets schedule ``publish_gold``. ``dags/feeds.py`` builds one feed DAG
per catalog resource (:func:`catalog_feeds`), and the publish DAGs derive their Asset schedules from
the same list (:func:`on_update_cycles`, :func:`credit_inputs`), so a new resource needs no DAG code.

Parsing a DAG file imports only this module, ``airflow.sdk`` and PyYAML: the catalog's resource
files are read for the few fields a DAG needs (not validated: ``govlake catalog validate`` and every
task do that), and every task imports ``govlake.pipeline`` when it runs, so the scheduler never loads
DuckDB, Delta or Great Expectations and parsing needs no secrets or network.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pendulum
import yaml
from airflow.sdk import (
    DAG,
    Asset,
    AssetAll,
    AssetAny,
    DeadlineAlert,
    DeadlineReference,
    SyncCallback,
    dag,
    get_current_context,
    task,
)

log = logging.getLogger(__name__)

START_DATE = pendulum.datetime(2024, 1, 1, tz="Asia/Shanghai")
"""First schedulable interval of every govlake DAG (the catalog's earliest ``published``); no catchup."""

SCHEDULES = {"realtime": "@hourly", "daily": "@daily", "weekly": "@weekly", "monthly": "@monthly",
             "quarterly": "@quarterly", "yearly": "@yearly"}
"""Catalog ``update_cycle`` → Airflow schedule of the feed DAG (a ``realtime`` source is polled hourly)."""
TOGETHER = ("realtime", "daily")
"""Update cycles whose feeds a publish DAG waits for all together; a slower feed schedules it on its own
(waiting for every feed would publish once a year)."""

_SOURCES = {"csv": "CSV files", "xlsx": "Excel workbooks", "jsonl": "JSON lines"}
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclasses.dataclass(frozen=True)
class Feed:
    """What the DAGs need to know of one catalog resource (``catalog/resources/<code>.yml``)."""

    code: str
    name: str
    name_en: str
    provider: str
    provider_name: str
    update_cycle: str
    summary: str
    grain: str
    source: dict

    @property
    def slug(self) -> str:
        return slug(self.code)

    @property
    def dag_id(self) -> str:
        return f"feed_{self.slug}"

    @property
    def silver(self) -> Asset:
        """The Asset the feed's ``process`` task updates: ``govlake://silver/<slug>``."""
        return Asset(f"govlake://silver/{self.slug}")

    def doc(self, tasks: str | None) -> str:
        """The feed DAG's doc: what the catalog says of the resource, then ``tasks`` (the DAG file's doc)."""
        src = self.source
        if src.get("kind") == "db":
            arrives = f"database table `{src.get('table')}`, read incrementally on `{src.get('watermark')}`"
        else:
            arrives = f"{_SOURCES.get(src.get('kind'), src.get('kind'))} `{src.get('pattern')}` under the inbox"
            if src.get("sheet"):
                arrives += f" (sheet {src['sheet']})"
        head = (f"# Feed: {self.code} — {self.name} ({self.name_en})\n\n{self.summary}\n\n"
                f"{self.provider_name} (`{self.provider}`) delivers it as {arrives}. Silver "
                f"`lake/silver/{self.slug}`: {self.grain}; rejected rows go to `lake/quarantine/{self.slug}`, and "
                f"each successful `process` updates the Asset `{self.silver.uri}`.\n\n"
                f"Schedule: catalog `update_cycle: {self.update_cycle}` ({SCHEDULES[self.update_cycle]}). "
                f"Owner: the providing department, `{self.provider}`.\n")
        return head + (f"\n{tasks.strip()}\n" if tasks else "")


def _read_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)  # a safe loader


def catalog_feeds(directory: Path | None = None) -> list[Feed]:
    """One feed per catalog resource, in code order, read from ``resources/*.yml`` with PyYAML alone.

    Args:
        directory: the catalog folder (default: the configured one, ``GOVLAKE_CATALOG_DIR``).

    A resource file that cannot be read or lacks a code, provider or known ``update_cycle`` is left
    out with a warning in the parse log, so the other departments' feeds keep running;
    ``govlake catalog validate`` names its problems.

    Raises:
        FileNotFoundError: ``directory`` has no ``resources/`` folder (a wrong GOVLAKE_CATALOG_DIR):
            the DAG files fail to import rather than silently define no feeds.
    """
    if directory is None:
        from govlake.config import get_settings

        directory = get_settings().catalog_dir
    directory = Path(directory)
    if not (directory / "resources").is_dir():
        raise FileNotFoundError(f"{directory}: no catalog here (resources/<code>.yml); check GOVLAKE_CATALOG_DIR")
    names: dict[str, str] = {}
    with contextlib.suppress(OSError, yaml.YAMLError):
        names = {d["code"]: d.get("name", d["code"]) for d in _read_yaml(directory / "departments.yml") or []
                 if isinstance(d, dict) and "code" in d}
    feeds: dict[str, Feed] = {}
    for path in sorted((directory / "resources").glob("*.yml")):
        try:
            data = _read_yaml(path)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            log.warning("%s: left out of the feed DAGs: %s", path, str(exc).splitlines()[0])
            continue
        if not isinstance(data, dict):
            log.warning("%s: left out of the feed DAGs: not a mapping", path)
            continue
        code, provider, cycle = data.get("code"), data.get("provider"), data.get("update_cycle")
        if not (isinstance(code, str) and isinstance(provider, str) and cycle in SCHEDULES) or code in feeds:
            log.warning("%s: left out of the feed DAGs: code %r, provider %r, update_cycle %r%s", path, code,
                        provider, cycle, " (code declared twice)" if code in feeds else "")
            continue
        source = data.get("source") if isinstance(data.get("source"), dict) else {}
        feeds[code] = Feed(code=code, name=str(data.get("name", code)), name_en=str(data.get("name_en", "")),
                           provider=provider, provider_name=str(names.get(provider, provider)),
                           update_cycle=cycle, summary=str(data.get("summary", "")).strip(),
                           grain=str(data.get("grain", "")), source=source)
    return [feeds[code] for code in sorted(feeds)]


def on_update_cycles(feeds: Iterable[Feed]) -> AssetAny | None:
    """A schedule over the feeds' silver Assets: the daily (and realtime) feeds all together, or any
    slower feed on its own; None (manual runs only) when there are no feeds."""
    feeds = sorted(feeds, key=lambda f: f.code)
    together = [f.silver for f in feeds if f.update_cycle in TOGETHER]
    alone = [f.silver for f in feeds if f.update_cycle not in TOGETHER]
    conditions = ([AssetAll(*together)] if together else []) + alone
    return AssetAny(*conditions) if conditions else None


def theme_tables(directory: Path | None = None) -> list[str]:
    """The tables of the model-built theme libraries of ``themes.yml`` (the themes step's outputs), read with
    PyYAML alone; [] when the file is absent or unreadable (``govlake catalog validate`` / ``govlake themes
    list`` name its problems)."""
    if directory is None:
        from govlake.config import get_settings

        directory = get_settings().catalog_dir
    try:
        themes = (_read_yaml(Path(directory) / "themes.yml") or {}).get("themes") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return []
    return [str(m) for t in themes.values() if isinstance(t, dict) and not t.get("step")
            for m in t.get("models") or []]


def credit_inputs() -> tuple[str, ...]:
    """The resources the credit step reads: ``govlake.credit._build.INPUTS``.

    Read from the step's source with ``ast`` rather than imported: importing the step loads pyarrow,
    DuckDB and Delta, which parsing a DAG must not (tests/test_dags.py checks both).
    """
    source = Path(__file__).with_name("credit") / "_build.py"
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["INPUTS"]:
            return tuple(ast.literal_eval(node.value))
    raise RuntimeError(f"{source}: no `INPUTS = (...)` literal, so publish_credit cannot know what the credit "
                       "step reads")


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
                         ("govlake.quality", "QualityError"), ("govlake.gold", "GoldError"),
                         ("govlake.sharing", "SharingInputError")]:
        try:
            errors.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            log.debug("%s.%s not available", module, name)
    return tuple(errors)


def on_task_failure(context: Any, *, resource: str | None = None) -> None:
    """``on_failure_callback`` of every govlake task: the failure (after its retries) becomes a ``task_failed``
    alert, stored in meta/alerts and sent to the alert channels like the check's (govlake.alerts). The alerts
    code is imported only when a task fails; the error text is masked (ID and phone numbers)."""
    from govlake.alerts import Condition, raise_alert
    from govlake.config import get_settings
    from govlake.pipeline import new_run_id

    ti = context["ti"]
    error = context.get("exception")
    what = f"{type(error).__name__}: {error}"[:500] if error is not None else "no error recorded"
    where = f"{ti.dag_id}.{ti.task_id}"
    condition = Condition(
        "task_failed", f"task_failed:{ti.dag_id}:{ti.task_id}:{ti.run_id}", "critical",
        f"调度任务 {where} 在运行 {ti.run_id} 中失败（重试后）：{what}",
        f"Airflow task {where} failed in run {ti.run_id} (after its retries): {what}",
        resource, getattr(getattr(ti, "task", None), "owner", None),
        {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id, "try_number": getattr(ti, "try_number", None),
         "error": what})
    alert, sent = raise_alert(get_settings(), condition, run_id=new_run_id("alerts"))
    failed = [d for d in sent if not d.ok]
    log.error("alert %s raised for %s%s", alert.alert_id, where,
              f"; {len(failed)} channel(s) did not take it (stored, sent again by the next check)" if failed else "")


def run_deadline(resource: str, owner: str) -> DeadlineAlert | None:
    """The feed DAG's Airflow deadline alert: GOVLAKE_FEED_RUN_DEADLINE after a run was queued,
    :func:`deadline_missed` is called on the executor; None when the setting is not set."""
    from govlake.config import get_settings

    interval = get_settings().feed_run_deadline
    if interval is None:
        return None
    return DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=interval,
                         callback=SyncCallback(f"{__name__}.deadline_missed",
                                               kwargs={"resource": resource, "owner": owner}))


def deadline_missed(context: dict, resource: str | None = None, owner: str | None = None) -> None:
    """Callback of the feed DAGs' Airflow deadline alert (:func:`run_deadline`): a ``run_overdue`` alert,
    stored and sent like the check's. ``context`` is what the scheduler passes (``dag_run``, ``deadline``)."""
    from govlake.alerts import Condition, raise_alert
    from govlake.config import get_settings
    from govlake.pipeline import new_run_id

    run, deadline = context.get("dag_run") or {}, context.get("deadline") or {}
    dag_id, dag_run = run.get("dag_id", "?"), run.get("dag_run_id") or run.get("run_id", "?")
    condition = Condition(
        "run_overdue", f"run_overdue:{dag_id}:{dag_run}", "warning",
        f"调度运行 {dag_id} / {dag_run} 到截止时间 {deadline.get('deadline_time')} 仍未完成",
        f"Airflow run {dag_id} / {dag_run} had not finished by its deadline {deadline.get('deadline_time')}",
        resource, owner,
        {"dag_id": dag_id, "run_id": dag_run, "deadline": deadline.get("deadline_time"), "state": run.get("state")})
    raise_alert(get_settings(), condition, run_id=new_run_id("alerts"))


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
        default_args={"owner": owner, "retries": retries,
                      "on_failure_callback": functools.partial(on_task_failure, resource=resource)},
        deadline=run_deadline(resource, owner),
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
