"""Offline validation of OpenLineage events against the 2-0-2 JSON schemas in ``schemas/``.

``schemas/`` is a copy of the OpenLineage project's ``spec/OpenLineage.json`` and
``spec/facets/*.json`` (see schemas/README.md). Every ``$id`` URL is served from those files by a
``referencing`` registry, so nothing is fetched. An event is checked against the core schema
(``RunEvent``, ``DatasetEvent`` or ``JobEvent``), and each facet against the schema its
``_schemaURL`` names (matched by file name: the copy may be a newer revision of the same facet).
A facet without a schema here (a producer's own facet, e.g. Airflow's) is checked against the
core definition of its kind (RunFacet, JobFacet, DatasetFacet, …).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).parent / "schemas"
CORE_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"

_FACET_KINDS = {
    ("run", None): "RunFacet",
    ("job", None): "JobFacet",
    ("dataset", None): "DatasetFacet",
    ("dataset", "inputFacets"): "InputDatasetFacet",
    ("dataset", "outputFacets"): "OutputDatasetFacet",
}


@functools.cache
def _registry() -> tuple[Registry, dict[str, str]]:
    """The registry of every local schema by ``$id``, and file name → ``$id``."""
    resources, by_file = [], {}
    for path in [SCHEMAS / "OpenLineage.json", *sorted((SCHEMAS / "facets").glob("*.json"))]:
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((contents["$id"], Resource.from_contents(contents)))
        by_file[path.name] = contents["$id"]
    return Registry().with_resources(resources), by_file


@functools.cache
def _validator(ref: str) -> Draft202012Validator:
    registry, _ = _registry()
    return Draft202012Validator({"$ref": ref}, registry=registry)


def _errors(ref: str, instance: Any, where: str) -> list[str]:
    return [f"{where}: {'/'.join(map(str, e.absolute_path)) or '.'}: {e.message}"
            for e in _validator(ref).iter_errors(instance)]


def facet_schema_ref(schema_url: str, kind: str) -> str:
    """The local schema reference for a facet's ``_schemaURL`` (its kind's core definition when unknown)."""
    _, by_file = _registry()
    file_part, _, fragment = schema_url.partition("#")
    local = by_file.get(file_part.rsplit("/", 1)[-1])
    if local and fragment:
        return f"{local}#{fragment}"
    return f"{CORE_ID}#/$defs/{kind}"


def validate_event(event: dict[str, Any]) -> list[str]:
    """Every schema violation of one event (a dict as serialized), empty when it is valid."""
    if "eventType" in event or "run" in event:
        kind = "RunEvent"
    elif "dataset" in event:
        kind = "DatasetEvent"
    else:
        kind = "JobEvent"
    errors = _errors(f"{CORE_ID}#/$defs/{kind}", event, kind)
    for where, facets, facet_kind in _facets(event):
        for name, facet in (facets or {}).items():
            if not isinstance(facet, dict):
                errors.append(f"{where}.{name}: not an object")
                continue
            ref = facet_schema_ref(str(facet.get("_schemaURL", "")), facet_kind)
            errors += _errors(ref, facet, f"{where}.{name}")
    return errors


def _facets(event: dict[str, Any]):
    yield "run.facets", (event.get("run") or {}).get("facets"), "RunFacet"
    yield "job.facets", (event.get("job") or {}).get("facets"), "JobFacet"
    if isinstance(event.get("dataset"), dict):
        yield "dataset.facets", event["dataset"].get("facets"), "DatasetFacet"
    for side, extra, kind in (("inputs", "inputFacets", "InputDatasetFacet"),
                              ("outputs", "outputFacets", "OutputDatasetFacet")):
        for i, ds in enumerate(event.get(side) or []):
            yield f"{side}[{i}].facets", ds.get("facets"), "DatasetFacet"
            yield f"{side}[{i}].{extra}", ds.get(extra), kind


def validate_file(path: Path) -> dict[int, list[str]]:
    """Violations per line number (1-based) of a JSON-lines event file; empty when all are valid."""
    problems: dict[int, list[str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            errors = validate_event(json.loads(line))
        except json.JSONDecodeError as exc:
            errors = [f"not JSON: {exc}"]
        if errors:
            problems[number] = errors
    return problems
