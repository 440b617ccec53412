"""OpenLineage events of every govlake job: one START and one COMPLETE (or FAIL) per run, every event
and facet valid against the 2-0-2 schemas, column lineage of the 法人库 address back to the registry
database table and the tax export, statistics and quality assertions equal to what the run wrote."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from conftest import CITY_RUN
from govlake import lineage, pipeline
from govlake.catalog import get_catalog
from govlake.config import Settings
from govlake.ingest import IngestError
from govlake.lineage._graph import LineageGraph

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AS_OF = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def city(built_city):
    """The session's city (conftest's built_city), with the events its ingests and run wrote."""
    return built_city.settings, built_city.events(), built_city.ingested, built_city.summary


def _event(events, job: str, state: str = "COMPLETE") -> dict:
    found = [e for e in events if e["job"]["name"] == job and e["eventType"] == state]
    assert len(found) == 1, f"{job} {state}: {len(found)} events"
    return found[0]


def _output(event: dict, layer: str, table: str) -> dict:
    return next(o for o in event["outputs"] if o["name"].endswith(f"/lake/{layer}/{table}"))


def test_every_event_and_facet_validates(city):
    _, events, _, _ = city
    assert events
    problems = {f"{e['job']['name']} {e['eventType']}": lineage.validate_event(e) for e in events}
    assert {k: v for k, v in problems.items() if v} == {}
    facets = sum(len(e["run"]["facets"]) + sum(len(d.get("facets") or {}) for d in e["inputs"] + e["outputs"])
                 for e in events)
    assert facets > 100  # the check covered facets, not only envelopes


def test_one_start_and_one_complete_per_job(city):
    settings, events, ingested, _ = city
    codes = list(get_catalog(settings.catalog_dir).resources)
    landed = [c for c in codes if ingested[c].rows]   # a resource without files is not processed
    expected = ({f"ingest.{c}" for c in codes} | {f"process.{c}" for c in landed}
                | {"gold", "gold.penalty_subjects", "gold.legal_entity", "gold.population", "gold.person_profile",
                   "credit", "themes", "themes.market_region_industry", "conflicts", "extract"})
    for state in ("START", "COMPLETE"):
        assert sorted(e["job"]["name"] for e in events if e["eventType"] == state) == sorted(expected)
    assert not [e for e in events if e["eventType"] == "FAIL"]
    starts = {e["job"]["name"]: e["run"]["runId"] for e in events if e["eventType"] == "START"}
    completes = {e["job"]["name"]: e["run"]["runId"] for e in events if e["eventType"] == "COMPLETE"}
    assert starts == completes
    assert len(set(starts.values())) == len(expected)
    # The gold model runs are children of the gold run.
    gold_child = _event(events, "gold.legal_entity")
    assert gold_child["run"]["facets"]["parent"]["run"]["runId"] == starts["gold"]
    assert not any("extractionError" in e["run"]["facets"] for e in events)


def test_legal_entity_address_leads_back_to_the_registry_table_and_the_tax_export(city):
    settings, events, _, _ = city
    graph = LineageGraph(events)
    root = lineage.lake_table(settings, "gold", "legal_entity")
    walk = graph.walk(root, column="address", direction="upstream")
    reached = {(graph.ref(k).label, c) for (k, c), d in walk.depth.items() if d > 0}
    registry = f"sqlite://{(settings.city / 'amr_registry.sqlite').resolve()}"
    xlsx = str((settings.city / "tax" / "tax_credit_rating_2025.xlsx").resolve())
    assert reached == {
        ("silver.amr_enterprise", "address"), ("bronze.amr_enterprise", "address"), ("db:amr_enterprise", "address"),
        ("silver.tax_credit_rating", "address"), ("bronze.tax_credit_rating", "address"), (xlsx, "注册地址"),
    }
    db = [graph.ref(k) for (k, c), d in walk.depth.items() if graph.ref(k).kind == "db"]
    assert [(r.namespace, r.name) for r in db] == [(registry, "main.amr_enterprise")]
    # Downstream: the analyst extract's legal_entity.address, scrubbed free text (not masked: not personal).
    down = graph.walk(root, column="address", direction="downstream")
    assert [(h.target_column, h.job) for h in down.hops] == [("legal_entity.address", "extract")]


def test_statistics_are_what_the_run_wrote(city):
    settings, events, ingested, summary = city
    bronze = _output(_event(events, "ingest.credit.penalty"), "bronze", "credit_penalty")
    assert bronze["outputFacets"]["outputStatistics"]["rowCount"] == ingested["credit.penalty"].rows
    assert bronze["outputFacets"]["outputStatistics"]["fileCount"] == len(
        [b for b in ingested["credit.penalty"].batches if b.status == "landed"])
    gold = _output(_event(events, "gold.legal_entity"), "gold/base", "legal_entity")
    assert gold["outputFacets"]["outputStatistics"]["rowCount"] == summary["gold"]["legal_entity"]
    assert gold["facets"]["lifecycleStateChange"]["lifecycleStateChange"] == "OVERWRITE"
    table = DeltaTable(str(settings.table_path("gold", "legal_entity")))
    assert gold["facets"]["version"]["datasetVersion"] == str(table.version())
    assert [f["name"] for f in gold["facets"]["schema"]["fields"]] == table.schema().to_arrow().names
    # each column's type as Arrow names it (not the Python object's repr of the binding delta-rs returns)
    assert [f["type"] for f in gold["facets"]["schema"]["fields"]] == [
        str(f.type) for f in pa.schema(table.schema().to_arrow())]
    assert {f["name"]: f["type"] for f in gold["facets"]["schema"]["fields"]}["uscc"] == "string"
    silver = _output(_event(events, "process.amr.enterprise"), "silver", "amr_enterprise")
    assert silver["outputFacets"]["outputStatistics"]["rowCount"] == summary["resources"]["amr.enterprise"].silver


def test_quality_assertions_are_the_runs_gx_results(city):
    settings, events, _, _ = city
    event = _event(events, "process.credit.penalty")
    bronze = next(i for i in event["inputs"] if i["name"].endswith("/bronze/credit_penalty"))
    assertions = {a["name"]: a for a in bronze["inputFacets"]["dataQualityAssertions"]["assertions"]}
    rows = DeltaTable(str(settings.table_path("meta", "validation_results"))).to_pyarrow_dataset().to_table(
        filter=(pc.field("run_id") == CITY_RUN) & (pc.field("resource") == "credit.penalty")).to_pylist()
    assert {r["rule_id"]: r["success"] for r in rows} == {n: a["success"] for n, a in assertions.items()}
    assert assertions["required.decision_no"]["column"] == "decision_no"
    assert assertions["required.decision_no"]["assertion"] == "required"


def test_ownership_and_job_facets(city):
    _, events, _, _ = city
    process = _event(events, "process.amr.enterprise")
    owners = _output(process, "silver", "amr_enterprise")["facets"]["ownership"]["owners"]
    assert owners == [{"name": "department:amr", "type": "department"}]
    assert process["job"]["facets"]["jobType"]["integration"] == "GOVLAKE"
    assert "from bronze_amr_enterprise" in process["job"]["facets"]["sql"]["query"]
    gold = _event(events, "gold.legal_entity")
    assert _output(gold, "gold/base", "legal_entity")["facets"]["ownership"]["owners"][0]["name"] == "department:dsj"
    ingest = _event(events, "ingest.tax.credit_rating")
    tax_file = ingest["inputs"][0]
    assert tax_file["namespace"] == "file" and tax_file["name"].endswith("/tax/tax_credit_rating_2025.xlsx")
    assert "注册地址" in [f["name"] for f in tax_file["facets"]["schema"]["fields"]]
    bronze = _output(ingest, "bronze", "tax_credit_rating")
    assert bronze["facets"]["columnLineage"]["fields"]["address"]["inputFields"] == [
        {"namespace": "file", "name": tax_file["name"], "field": "注册地址",
         "transformations": [{"type": "DIRECT", "subtype": "IDENTITY", "masking": False}]}]


def test_failing_jobs_send_fail_with_the_error_to_the_events_file(tmp_path):
    settings = Settings(var=tmp_path / "var", inbox=tmp_path / "inbox")
    with pytest.raises(FileNotFoundError, match="has not been built"):
        pipeline.extract(settings=settings, run_id="extract-1")
    with pytest.raises(IngestError):
        pipeline.ingest("credit.penalty", files=[tmp_path / "missing.csv"], settings=settings, run_id="ingest-1")
    lines = (settings.var / "lineage" / "govlake.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("extract", "START"), ("extract", "FAIL"),
        ("ingest.credit.penalty", "START"), ("ingest.credit.penalty", "FAIL")]
    assert all(lineage.validate_event(e) == [] for e in events)
    error = events[1]["run"]["facets"]["errorMessage"]
    assert error["message"].startswith("FileNotFoundError: gold table legal_entity has not been built")
    assert error["programmingLanguage"] == "python"
    assert "no such file" in events[3]["run"]["facets"]["errorMessage"]["message"]
    assert {"key": "govlake.run_id", "value": "ingest-1", "source": "govlake"} in events[3]["run"]["facets"]["tags"][
        "tags"]


def test_http_transport_when_a_lineage_url_is_set(tmp_path):
    from openlineage.client.transport.file import FileTransport
    from openlineage.client.transport.http import HttpTransport

    plain = lineage.transport_for(Settings(var=tmp_path))
    assert [type(t) for t in plain] == [FileTransport]
    both = lineage.transport_for(Settings(var=tmp_path, lineage_url="http://marquez.local:5000"))
    assert [type(t) for t in both] == [FileTransport, HttpTransport]
    assert both[1].url == "http://marquez.local:5000"


def test_validation_rejects_broken_events():
    event = {"eventType": "START", "eventTime": "2026-11-20T00:00:00+00:00", "producer": "https://x",
             "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
             "run": {"runId": "01934f8a-7f00-7000-8000-000000000000", "facets": {}},
             "job": {"namespace": "govlake", "name": "j"}, "inputs": [], "outputs": []}
    assert lineage.validate_event(event) == []
    assert lineage.validate_event({**event, "run": {"facets": {}}})  # no runId
    stats = {"_producer": "https://x", "rowCount": "ten",
             "_schemaURL": "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json"
                           "#/$defs/OutputStatisticsOutputDatasetFacet"}
    broken = {**event, "outputs": [{"namespace": "file", "name": "/x", "outputFacets": {"outputStatistics": stats}}]}
    assert lineage.validate_event(broken) == [
        "outputs[0].outputFacets.outputStatistics: rowCount: 'ten' is not of type 'integer'"]


def test_schemas_ship_with_the_package():
    schemas = Path(lineage.__file__).parent / "schemas"
    assert (schemas / "OpenLineage.json").is_file()
    assert len(list((schemas / "facets").glob("*.json"))) >= 38


def test_the_ordering_of_an_arg_max_decides_the_value_it_does_not_feed_it():
    """The latest-row pattern of the gold models (arg_max over an ordering struct): the value's column is direct
    lineage, the ordering's columns conditional, like the condition of a case when."""
    sql = ("select k, arg_max(struct_pack(v := v), struct_pack(o_known := o is not null, o := o)).v as v, "
           "case when c then w end as w from t group by k")
    sources = lineage.column_sources(sql, {"t": ["k", "v", "o", "c", "w"]})
    assert sources["v"] == {("t", "v"): True, ("t", "o"): False}
    assert sources["w"] == {("t", "w"): True, ("t", "c"): False}
