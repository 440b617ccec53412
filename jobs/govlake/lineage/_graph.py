"""The lineage graph read back from the OpenLineage events under ``var/lineage/``.

Every COMPLETE run event contributes table edges (each input → each output) and column edges
(its outputs' ``columnLineage``). An output the run replaced (``lifecycleStateChange`` OVERWRITE)
takes the edges of the latest such run of that job only; an output appended to or merged into
(bronze, incremental silver) keeps the edges of every run, so a bronze table leads to every file
and database table ever landed in it. Events of other producers (Airflow's provider) join the
graph when they name datasets.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from govlake.lineage._naming import DatasetRef, ref_from_event

Direction = Literal["upstream", "downstream"]
Key = tuple[str, str]


@dataclass(frozen=True)
class Hop:
    """One edge walked: ``source`` (column) feeds ``target`` (column) through ``job``."""

    source: Key
    target: Key
    job: str
    source_column: str | None = None
    target_column: str | None = None
    kind: str = "DIRECT"


@dataclass
class Walk:
    """What a walk from one table (or column) reached."""

    root: DatasetRef
    column: str | None
    direction: Direction
    hops: list[Hop] = field(default_factory=list)
    depth: dict[tuple[Key, str | None], int] = field(default_factory=dict)

    def datasets(self, graph: LineageGraph) -> list[DatasetRef]:
        """Every dataset reached (not the root), nearest first."""
        seen: dict[Key, int] = {}
        for (key, _column), d in self.depth.items():
            if key != self.root.key:
                seen[key] = min(d, seen.get(key, d))
        return [graph.ref(k) for k, _ in sorted(seen.items(), key=lambda kv: (kv[1], kv[0][1]))]


def event_files(var: Path) -> list[Path]:
    return sorted((var / "lineage").glob("*.jsonl"))


def read_events(paths: Iterable[Path]) -> list[dict]:
    """Run events from JSON-lines files (lines that are not JSON objects are skipped)."""
    events = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and "eventType" in event:
                events.append(event)
    return events


class LineageGraph:
    """Table and column edges between datasets, from run events."""

    def __init__(self, events: Iterable[dict]):
        self._refs: dict[Key, DatasetRef] = {}
        # (job, output) → (table edges {input}, column edges {(out col): {(input, in col, kind)}})
        self._by_output: dict[tuple[str, Key], tuple[set[Key], dict[str, set[tuple[Key, str, str]]]]] = {}
        self.jobs: dict[str, dict] = {}
        """Latest COMPLETE or FAIL event per job name."""
        for event in sorted(events, key=lambda e: e.get("eventTime", "")):
            self._add(event)
        self.table_in: dict[Key, set[tuple[Key, str]]] = {}
        self.table_out: dict[Key, set[tuple[Key, str]]] = {}
        self.column_in: dict[tuple[Key, str], set[tuple[Key, str, str, str]]] = {}
        self.column_out: dict[tuple[Key, str], set[tuple[Key, str, str, str]]] = {}
        for (job, out), (inputs, columns) in self._by_output.items():
            for source in inputs:
                if source == out:
                    continue
                self.table_in.setdefault(out, set()).add((source, job))
                self.table_out.setdefault(source, set()).add((out, job))
            for column, sources in columns.items():
                for source, source_column, kind in sources:
                    self.column_in.setdefault((out, column), set()).add((source, source_column, job, kind))
                    self.column_out.setdefault((source, source_column), set()).add((out, column, job, kind))

    def _ref(self, ds: dict) -> Key:
        key = (ds["namespace"], ds["name"])
        if key not in self._refs:
            self._refs[key] = ref_from_event(*key)
        return key

    def _add(self, event: dict) -> None:
        job = (event.get("job") or {}).get("name", "")
        if event.get("eventType") in ("COMPLETE", "FAIL"):
            self.jobs[job] = event
        if event.get("eventType") != "COMPLETE":
            return
        inputs = {self._ref(ds) for ds in event.get("inputs") or []}
        for ds in event.get("outputs") or []:
            out = self._ref(ds)
            facets = ds.get("facets") or {}
            columns: dict[str, set[tuple[Key, str, str]]] = {}
            for column, spec in ((facets.get("columnLineage") or {}).get("fields") or {}).items():
                for f in spec.get("inputFields") or []:
                    kind = ((f.get("transformations") or [{}])[0] or {}).get("type", "DIRECT")
                    columns.setdefault(column, set()).add((self._ref(f), f["field"], kind))
            overwrite = (facets.get("lifecycleStateChange") or {}).get("lifecycleStateChange") == "OVERWRITE"
            known = self._by_output.get((job, out))
            if overwrite or known is None:
                self._by_output[(job, out)] = (set(inputs), columns)
            else:
                known[0].update(inputs)
                for column, sources in columns.items():
                    known[1].setdefault(column, set()).update(sources)

    def ref(self, key: Key) -> DatasetRef:
        return self._refs.get(key) or ref_from_event(*key)

    @property
    def datasets(self) -> list[DatasetRef]:
        return list(self._refs.values())

    def walk(self, root: DatasetRef, *, column: str | None = None, direction: Direction = "upstream",
             indirect: bool = False) -> Walk:
        """Every table (or column) ``root`` comes from (upstream) or feeds (downstream), breadth first.

        With ``column``, only column edges are followed (DIRECT ones, and INDIRECT ones with ``indirect``).
        """
        result = Walk(root, column, direction)
        start = (root.key, column)
        result.depth[start] = 0
        queue = deque([start])
        while queue:
            key, col = queue.popleft()
            depth = result.depth[(key, col)]
            for nxt, nxt_col, hop in self._next(key, col, direction, indirect):
                result.hops.append(hop)
                if (nxt, nxt_col) not in result.depth:
                    result.depth[(nxt, nxt_col)] = depth + 1
                    queue.append((nxt, nxt_col))
        return result

    def _next(self, key: Key, col: str | None, direction: Direction, indirect: bool):
        if col is None:
            edges = self.table_in if direction == "upstream" else self.table_out
            for other, job in sorted(edges.get(key, ())):
                hop = Hop(other, key, job) if direction == "upstream" else Hop(key, other, job)
                yield other, None, hop
            return
        edges = self.column_in if direction == "upstream" else self.column_out
        for other, other_col, job, kind in sorted(edges.get((key, col), ())):
            if kind != "DIRECT" and not indirect:
                continue
            hop = (Hop(other, key, job, other_col, col, kind) if direction == "upstream"
                   else Hop(key, other, job, col, other_col, kind))
            yield other, other_col, hop


def load_graph(var: Path) -> LineageGraph:
    """The graph of every event file under ``var/lineage`` (govlake's and Airflow's)."""
    return LineageGraph(read_events(event_files(var)))
