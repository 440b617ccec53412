"""Emitting OpenLineage run events: the client, its transports, and ``job_run`` around a job.

``job_run`` sends START when a job begins, then COMPLETE with the datasets' facets (schema,
column lineage, output statistics, version, ownership, quality assertions) or FAIL with the
error: its message (ID and mobile numbers masked) and the frames of its stack, but not the
messages of the exceptions it was raised from (a library's message may quote a row). A job
describes what it reads and writes as a :class:`JobPlan`; ``plan`` may be a callable
so that working it out (parsing SQL, reading source headers) is timed with the job, and a plan
that cannot be worked out never stops the job: the event then carries an ``extractionError``.

Transport (``transport_for``): JSON lines appended to ``var/lineage/govlake.jsonl``, and also an
HTTP transport to ``settings.lineage_url`` (a Marquez-compatible API) when set. Inside
:func:`capture` every event goes to an in-memory list instead (tests).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    dataset_version_dataset,
    documentation_dataset,
    documentation_job,
    error_message_run,
    extraction_error_run,
    job_type_job,
    lifecycle_state_change_dataset,
    output_statistics_output_dataset,
    ownership_dataset,
    ownership_job,
    parent_run,
    processing_engine_run,
    schema_dataset,
    sql_job,
    tags_run,
)
from openlineage.client.serde import Serde
from openlineage.client.transport import Transport
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.uuid import generate_new_uuid

from govlake.config import Settings
from govlake.lineage._naming import DatasetRef
from govlake.lineage._stats import delta_state, written_by_run
from govlake.masking import scrub_text

log = logging.getLogger(__name__)

NAMESPACE = "govlake"
"""Job namespace: the same as Airflow's (infra/airflow.sh), so both kinds of events meet."""
PRODUCER = "https://github.com/govlake/govlake/tree/main/jobs/govlake/lineage"
EVENTS_FILE = "govlake.jsonl"


@dataclass(frozen=True)
class Assertion:
    """One data-quality check on a dataset (from meta/validation_results)."""

    name: str
    assertion: str
    success: bool
    column: str | None = None
    severity: str | None = None
    description: str | None = None
    actual: str | None = None


@dataclass
class Dataset:
    """A dataset a job reads or writes, with what the job knows about it.

    Lake tables (``ref.kind == "lake"``) get their schema and version from Delta; ``fields``
    gives the schema of other datasets (a file's header, a database table's columns).
    """

    ref: DatasetRef
    fields: list[tuple[str, str | None]] | None = None
    owner: str | None = None
    """Department code (catalog provider, or the gold model header's owner)."""
    description: str | None = None
    lineage: dict[str, dict[tuple[DatasetRef, str], tuple[str, str | None, bool]]] | None = None
    """Output column → {(input dataset, input column): (type, subtype, masking)}."""
    overwrite: bool = False
    assertions: list[Assertion] | None = None


@dataclass
class JobPlan:
    """What one job run reads and writes, and how it is described."""

    name: str
    description: str
    inputs: list[Dataset] = field(default_factory=list)
    outputs: list[Dataset] = field(default_factory=list)
    owner: str | None = None
    sql: str | None = None
    job_type: str = "JOB"
    tags: dict[str, str] = field(default_factory=dict)
    children: list[JobPlan] = field(default_factory=list)
    """Sub-jobs (one gold model each) sent as runs whose parent is this run."""
    finish: Callable[[JobPlan, Any, BaseException | None, str], None] | None = None
    """Called with the job's result (or error) and the govlake run id before the final event, to add
    what only the run knows (the files landed, the quality results)."""
    errors: list[str] = field(default_factory=list)
    """Parts of the lineage that could not be worked out (sent as the ``extractionError`` run facet)."""


# ---- transports ---------------------------------------------------------------------------

class MemoryTransport(Transport):
    """Keeps every event (as the JSON dict a file transport would write) in ``events``."""

    kind = "memory"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, event: Any) -> None:
        import json

        self.events.append(json.loads(Serde.to_json(event)))


_captured: contextvars.ContextVar[MemoryTransport | None] = contextvars.ContextVar("govlake_lineage", default=None)


@contextlib.contextmanager
def capture() -> Iterator[list[dict[str, Any]]]:
    """Collect the events of every job run in the block in a list instead of sending them."""
    transport = MemoryTransport()
    token = _captured.set(transport)
    try:
        yield transport.events
    finally:
        _captured.reset(token)


def transport_for(settings: Settings) -> list[Transport]:
    """The transports events go to: the JSON-lines file, and the HTTP API when configured."""
    captured = _captured.get()
    if captured is not None:
        return [captured]
    folder = settings.var / "lineage"
    folder.mkdir(parents=True, exist_ok=True)
    transports: list[Transport] = [FileTransport(FileConfig(log_file_path=str(folder / EVENTS_FILE), append=True))]
    if settings.lineage_url:
        transports.append(HttpTransport(HttpConfig.from_dict({"url": settings.lineage_url,
                                                              "endpoint": "api/v1/lineage", "timeout": 5})))
    return transports


class Emitter:
    """Sends events through an OpenLineageClient per transport; a failing transport only logs."""

    def __init__(self, settings: Settings):
        self.clients = [OpenLineageClient(transport=t) for t in transport_for(settings)]

    def emit(self, event: RunEvent) -> None:
        for client in self.clients:
            try:
                client.emit(event)
            except Exception as exc:  # lineage must never fail the job it describes
                log.warning("OpenLineage event for %s not sent through %s: %s", event.job.name,
                            client.transport.kind, exc)


# ---- facets -------------------------------------------------------------------------------

def _schema_facet(fields: list[tuple[str, str | None]]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in fields], producer=PRODUCER)


def _owners(owner: str) -> list:
    return [ownership_dataset.Owner(name=f"department:{owner}", type="department")]


def dataset_facets(ds: Dataset) -> dict[str, Any]:
    """Facets every event may carry for ``ds``: schema, version, documentation, ownership."""
    facets: dict[str, Any] = {}
    fields = ds.fields
    if ds.ref.kind == "lake" and ds.ref.path is not None:
        state = delta_state(ds.ref.path)
        if state is not None:
            fields = state[0] or fields
            facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=str(state[1]), producer=PRODUCER)
    if fields:
        facets["schema"] = _schema_facet(fields)
    if ds.description:
        facets["documentation"] = documentation_dataset.DocumentationDatasetFacet(
            description=ds.description, producer=PRODUCER)
    if ds.owner:
        facets["ownership"] = ownership_dataset.OwnershipDatasetFacet(owners=_owners(ds.owner), producer=PRODUCER)
    return facets


def _column_lineage(ds: Dataset) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    fields = {}
    for column, sources in (ds.lineage or {}).items():
        inputs = [column_lineage_dataset.InputField(
            namespace=ref.namespace, name=ref.name, field=col,
            transformations=[column_lineage_dataset.Transformation(type=t, subtype=sub, masking=masking)])
            for (ref, col), (t, sub, masking) in sorted(sources.items(), key=lambda kv: (kv[0][0].name, kv[0][1]))]
        fields[column] = column_lineage_dataset.Fields(inputFields=inputs)
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields, producer=PRODUCER)


def _assertions(ds: Dataset) -> data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet:
    return data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(assertions=[
        data_quality_assertions_dataset.Assertion(
            assertion=a.assertion, success=a.success, column=a.column, severity=a.severity, name=a.name,
            description=a.description, actual=a.actual) for a in ds.assertions or []], producer=PRODUCER)


def _job_facets(plan: JobPlan) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "documentation": documentation_job.DocumentationJobFacet(description=plan.description, producer=PRODUCER),
        "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="GOVLAKE",
                                                jobType=plan.job_type, producer=PRODUCER),
    }
    if plan.sql:
        facets["sql"] = sql_job.SQLJobFacet(query=plan.sql, dialect="duckdb", producer=PRODUCER)
    if plan.owner:
        facets["ownership"] = ownership_job.OwnershipJobFacet(
            owners=[ownership_job.Owner(name=f"department:{plan.owner}", type="department")], producer=PRODUCER)
    return facets


# ---- job runs -----------------------------------------------------------------------------

@dataclass
class _RunInfo:
    run_id: str
    govlake_run_id: str
    started: dt.datetime
    parent: parent_run.ParentRunFacet | None = None
    extraction_errors: list[str] = field(default_factory=list)


def _run_facets(info: _RunInfo, *, error: BaseException | None = None) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=version("govlake"), name="govlake", openlineageAdapterVersion=version("openlineage-python"),
            producer=PRODUCER),
        "tags": tags_run.TagsRunFacet(tags=[tags_run.TagsRunFacetFields(
            key="govlake.run_id", value=info.govlake_run_id, source="govlake")], producer=PRODUCER),
    }
    if info.parent is not None:
        facets["parent"] = info.parent
    if info.extraction_errors:
        facets["extractionError"] = extraction_error_run.ExtractionErrorRunFacet(
            totalTasks=1, failedTasks=1, producer=PRODUCER,
            errors=[extraction_error_run.Error(errorMessage=scrub_text(e)) for e in info.extraction_errors])
    if error is not None:
        message = scrub_text(f"{type(error).__name__}: {error}")
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=message, programmingLanguage="python", producer=PRODUCER,
            stackTrace="Traceback (most recent call last):\n" + "".join(traceback.format_tb(error.__traceback__))
            + message + "\n")
    return facets


def _event(state: RunState, plan: JobPlan, info: _RunInfo, *, final: bool, error: BaseException | None = None
           ) -> RunEvent:
    inputs = []
    for ds in plan.inputs:
        input_facets = {"dataQualityAssertions": _assertions(ds)} if final and ds.assertions else {}
        inputs.append(InputDataset(namespace=ds.ref.namespace, name=ds.ref.name, facets=dataset_facets(ds),
                                   inputFacets=input_facets))
    outputs = []
    for ds in plan.outputs:
        facets = dataset_facets(ds)
        output_facets: dict[str, Any] = {}
        if ds.lineage:
            facets["columnLineage"] = _column_lineage(ds)
        if final and ds.ref.kind == "lake" and ds.ref.path is not None:
            written = written_by_run(ds.ref.path, info.govlake_run_id, since=info.started)
            if written is not None:
                output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    rowCount=written.rows, size=written.bytes, fileCount=written.files, producer=PRODUCER)
                if ds.overwrite:
                    facets["lifecycleStateChange"] = lifecycle_state_change_dataset.LifecycleStateChangeDatasetFacet(
                        lifecycleStateChange=lifecycle_state_change_dataset.LifecycleStateChange.OVERWRITE,
                        producer=PRODUCER)
        elif final and ds.ref.kind == "file" and ds.ref.path is not None and ds.ref.path.is_file():
            output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                size=ds.ref.path.stat().st_size, fileCount=1, producer=PRODUCER)
        outputs.append(OutputDataset(namespace=ds.ref.namespace, name=ds.ref.name, facets=facets,
                                     outputFacets=output_facets))
    return RunEvent(
        eventType=state, eventTime=dt.datetime.now(dt.UTC).isoformat(), producer=PRODUCER,
        run=Run(runId=info.run_id, facets=_run_facets(info, error=error)),
        job=Job(namespace=NAMESPACE, name=plan.name, facets=_job_facets(plan)),
        inputs=inputs, outputs=outputs)


def _airflow_parent() -> parent_run.ParentRunFacet | None:
    """The Airflow task this job runs in, as the OpenLineage provider names its run (else None)."""
    if "airflow.sdk" not in sys.modules:
        return None
    try:
        from airflow.providers.openlineage.plugins import macros
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
        return parent_run.ParentRunFacet(
            run=parent_run.Run(runId=str(macros.lineage_run_id(ti))),
            job=parent_run.Job(namespace=macros.lineage_job_namespace(), name=macros.lineage_job_name(ti)),
            producer=PRODUCER)
    except Exception:  # not inside a task, or the provider is not set up
        return None


def _parent_of(info: _RunInfo, plan: JobPlan) -> parent_run.ParentRunFacet:
    root = info.parent.root if info.parent is not None and info.parent.root is not None else None
    if root is None and info.parent is not None:
        root = parent_run.Root(run=parent_run.RootRun(runId=info.parent.run.runId),
                               job=parent_run.RootJob(namespace=info.parent.job.namespace,
                                                      name=info.parent.job.name))
    return parent_run.ParentRunFacet(run=parent_run.Run(runId=info.run_id),
                                     job=parent_run.Job(namespace=NAMESPACE, name=plan.name),
                                     root=root, producer=PRODUCER)


class RunHandle:
    """What the body of ``job_run`` holds: hand the job's result to ``result`` for the final event."""

    def __init__(self, plan: JobPlan, info: _RunInfo):
        self.plan, self.info = plan, info
        self.result: Any = None

    @property
    def run_id(self) -> str:
        """The OpenLineage run id (a UUIDv7)."""
        return self.info.run_id


@contextlib.contextmanager
def job_run(plan: JobPlan | Callable[[], JobPlan], *, settings: Settings, run_id: str,
            name: str | None = None) -> Iterator[RunHandle]:
    """Wrap one job run in START and COMPLETE/FAIL events.

    Args:
        plan: what the job reads and writes, or a callable making it.
        settings: where events go (``transport_for``).
        run_id: the govlake run id; it stamps the Delta commits, so output statistics count exactly
            what this run wrote. Sent as the run's ``govlake.run_id`` tag.
        name: the job name to use when ``plan`` cannot be worked out.
    """
    started = dt.datetime.now(dt.UTC)
    info = _RunInfo(str(generate_new_uuid()), run_id, started, _airflow_parent())
    try:
        job_plan = plan() if callable(plan) else plan
    except Exception as exc:
        log.warning("lineage of %s not worked out: %s", name, scrub_text(str(exc)))
        info.extraction_errors.append(f"{type(exc).__name__}: {exc}")
        job_plan = JobPlan(name=name or "unknown", description="(lineage could not be worked out)")
    info.extraction_errors += job_plan.errors
    emitter = Emitter(settings)
    children = [(child, _RunInfo(str(generate_new_uuid()), run_id, started, _parent_of(info, job_plan)))
                for child in job_plan.children]
    emitter.emit(_event(RunState.START, job_plan, info, final=False))
    for child, child_info in children:
        emitter.emit(_event(RunState.START, child, child_info, final=False))
    handle = RunHandle(job_plan, info)
    try:
        yield handle
    except BaseException as exc:
        _finish(job_plan, None, exc, info)
        for child, child_info in children:
            _finish(child, None, exc, child_info)
            state = RunState.COMPLETE if _wrote_all(child, child_info) else RunState.FAIL
            emitter.emit(_event(state, child, child_info, final=True,
                                error=exc if state == RunState.FAIL else None))
        emitter.emit(_event(RunState.FAIL, job_plan, info, final=True, error=exc))
        raise
    _finish(job_plan, handle.result, None, info)
    for child, child_info in children:
        _finish(child, handle.result, None, child_info)
        emitter.emit(_event(RunState.COMPLETE, child, child_info, final=True))
    emitter.emit(_event(RunState.COMPLETE, job_plan, info, final=True))


def _finish(plan: JobPlan, result: Any, error: BaseException | None, info: _RunInfo) -> None:
    if plan.finish is None:
        return
    try:
        plan.finish(plan, result, error, info.govlake_run_id)
    except Exception as exc:
        log.warning("lineage of %s not completed: %s", plan.name, scrub_text(str(exc)))
        info.extraction_errors.append(f"{type(exc).__name__}: {exc}")


def _wrote_all(plan: JobPlan, info: _RunInfo) -> bool:
    """Whether every lake output of ``plan`` has a commit of this run (a sub-job that finished)."""
    lake = [ds for ds in plan.outputs if ds.ref.kind == "lake" and ds.ref.path is not None]
    return bool(lake) and all(written_by_run(ds.ref.path, info.govlake_run_id, since=info.started) is not None
                              for ds in lake)
