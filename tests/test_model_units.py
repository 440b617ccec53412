"""The ymls beside the published models (sql/gold/*.yml): their unit tests, their headers and their
column docs against the models themselves, and the loader's errors."""

from __future__ import annotations

import datetime as dt
import functools
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from govlake import contracts
from govlake.catalog import get_catalog
from govlake.config import Settings
from govlake.contracts import silver_schema
from govlake.credit import load_credit_rules
from govlake.credit._build import KINDS
from govlake.credit._build import context as credit_context
from govlake.gold import entity_plan, model_context, person_plan
from govlake.governance._conflicts import comparisons_context
from govlake.governance._plan import conflict_plan
from govlake.transform import ModelRunner, SpecError, load_specs, output_columns, run_unit_test

SETTINGS = Settings(var=Path("var"))  # only its catalog, sql and expectations folders are used
CATALOG = get_catalog(SETTINGS.catalog_dir)
RULES = load_credit_rules(SETTINGS.catalog_dir)
SPECS = load_specs(SETTINGS.sql_dir, catalog=CATALOG)
SCHEMAS = {f"silver_{r.slug}": silver_schema(r) for r in CATALOG.resources.values()}
AS_OF = dt.date(2026, 11, 20)
CREDIT_MODELS = {f"gold/{n}" for n in ("penalty_record", "license_record", "credit_repair_review",
                                       "enterprise_credit_profile")}


def render_context(model: str, params: Mapping[str, Any]) -> dict:
    """What ``model`` is rendered with in the pipeline, for a test's ``context`` (its business date)."""
    if model in CREDIT_MODELS:
        base = credit_context(RULES, params.get("as_of", AS_OF))
    elif model == "governance/comparisons":
        base = comparisons_context(conflict_plan(CATALOG))
    elif model.startswith("gold/"):
        base = model_context(model.removeprefix("gold/"), CATALOG)
    elif model.startswith("theme/"):
        base = {}  # theme models are plain SQL (govlake.themes)
    else:
        raise AssertionError(f"no context for {model}")
    return base | {k: v for k, v in params.items() if k != "as_of"}


def _run(spec, test, specs=SPECS, sql_dir=SETTINGS.sql_dir) -> list[str]:
    return run_unit_test(spec, test, runner=ModelRunner(sql_dir), specs=specs, schemas=SCHEMAS,
                         context=render_context)


UNIT_TESTS = [pytest.param(spec, test, id=f"{name}: {test.name}")
              for name, spec in SPECS.items() for test in spec.spec.unit_tests]


@pytest.mark.parametrize(("spec", "test"), UNIT_TESTS)
def test_unit(spec, test):
    assert _run(spec, test) == []


def test_the_models_the_issue_names_have_unit_tests():
    tested = {name for name, spec in SPECS.items() if spec.spec.unit_tests}
    assert {"legal_entity", "penalty_record", "credit_repair_review", "enterprise_credit_profile", "population",
            "person_profile"} <= tested


def test_every_published_table_has_a_yml():
    """Every gold table a step writes (the analyst extract copies some of them), and only those; not
    gold/withdrawal_log, a log the credit and extract steps append to (its contract,
    govlake.contracts.WITHDRAWAL_LOG, documents it), which no model builds."""
    from govlake.credit import OUTPUTS
    from govlake.gold import GOLD_TABLES, PUBLIC_TABLES
    from govlake.governance._conflicts import CONFLICTS
    from govlake.themes import theme_tables

    assert set(PUBLIC_TABLES) <= {*GOLD_TABLES, *OUTPUTS}
    published = {*GOLD_TABLES, *OUTPUTS, CONFLICTS, *theme_tables(SETTINGS)} - {"withdrawal_log"}
    assert published == set(SPECS)


@pytest.mark.parametrize("name", [n for n, s in SPECS.items() if not s.spec.projection_of])
def test_yml_agrees_with_the_rendered_header(name):
    spec = SPECS[name]
    rendered = ModelRunner(SETTINGS.sql_dir).render(spec.model, **render_context(spec.model, {}))
    header, mine = rendered.header, spec.header
    assert (mine.key, mine.unique, mine.not_null, mine.owner) == (header.key, header.unique, header.not_null,
                                                                  header.owner)
    if spec.spec.written_by is None:
        assert mine.grain == header.grain
    assert set(spec.spec.inputs) <= set(rendered.inputs) | {
        i for up in spec.spec.upstream for i in ModelRunner(SETTINGS.sql_dir).render(
            up, **render_context(up, {})).inputs}


def _produced() -> dict[str, list[str]]:
    """The columns of every published table: its model's output on empty inputs, a publication's
    projection (govlake.credit), gold/conflicts' contract."""
    return {name: list(columns) for name, columns in _produced_once().items()}


@functools.cache
def _produced_once() -> dict[str, list[str]]:
    runner = ModelRunner(SETTINGS.sql_dir)
    produced = {}
    for name, spec in SPECS.items():
        if spec.spec.projection_of:
            kind = next(k for k in KINDS if k.publication == name)
            silver = silver_schema(CATALOG.resource(kind.resource)).names
            produced[name] = [c for c in silver if c not in ("_batch_id", "_received_at")] + list(kind.published_extra)
        elif name == "conflicts":
            produced[name] = contracts.CONFLICTS.names
        else:
            produced[name] = output_columns(spec, runner=runner, specs=SPECS, schemas=SCHEMAS,
                                            context=render_context, params={})
    return produced


def test_every_column_of_every_published_table_is_documented():
    produced = _produced()
    assert produced["legal_entity"][:2] == ["uscc", "name"] and "penalty_count" in produced["legal_entity"]
    load_specs(SETTINGS.sql_dir, catalog=CATALOG, produced=produced)  # raises on a difference


def test_a_column_the_model_does_not_produce_is_an_error():
    produced = _produced()
    produced["legal_entity"].remove("penalty_count")
    produced["enterprise_credit_profile"].append("new_column")
    with pytest.raises(SpecError) as err:
        load_specs(SETTINGS.sql_dir, catalog=CATALOG, produced=produced)
    (gone,), (new,) = ([p for p in err.value.problems if name in p] for name in ("penalty_count", "new_column"))
    assert gone.startswith(f"{SETTINGS.sql_dir / 'gold' / 'legal_entity.yml'}:") and "not produced by" in gone
    assert "enterprise_credit_profile.yml:" in new and "undocumented columns: new_column" in new


def test_entity_attributes_say_their_authoritative_resource():
    columns = {c.name: c for c in SPECS["legal_entity"].columns}
    for attr in entity_plan(CATALOG).attributes:
        assert columns[attr.column].source == f"{attr.authority.code}.{attr.column}"


def test_person_attributes_say_their_authoritative_resource():
    for name in ("population", "person_profile"):
        columns = {c.name: c for c in SPECS[name].columns}
        for attr in person_plan(CATALOG).attributes:
            if attr.column in columns:
                assert columns[attr.column].source == f"{attr.authority.code}.{attr.column}", name


def _sources_read(models: list[str]) -> set[str]:
    """The resources ``models`` read: through their silver views, or through the summary the gold step keeps of
    one (govlake.gold.SUMMARY, whose yml names its resource)."""
    from govlake.gold import SUMMARY

    runner = ModelRunner(SETTINGS.sql_dir)
    slugs = {f"silver_{r.slug}": {r.code} for r in CATALOG.resources.values()}
    slugs[SUMMARY] = set(SPECS[SUMMARY].spec.sources)
    read = {i for m in models for i in runner.render(m, **render_context(m, {})).inputs}
    return set().union(*(slugs[i] for i in read if i in slugs))


@pytest.mark.parametrize("name", ["population", "person_profile"])
def test_person_tables_sources_are_what_their_models_read(name):
    models = ["gold/population"] + (["gold/person_profile"] if name == "person_profile" else [])
    assert set(SPECS[name].spec.sources) == _sources_read(models)


def test_sources_are_what_the_models_read():
    assert set(SPECS["legal_entity"].spec.sources) == _sources_read(["gold/int_entity_attributes", "gold/legal_entity"])
    plan = conflict_plan(CATALOG)
    assert set(SPECS["conflicts"].spec.sources) == {r.code for c in plan for r in (c.copy, c.authority)}


@pytest.fixture
def sql_copy(tmp_path: Path) -> Path:
    """A copy of sql/ to break."""
    return Path(shutil.copytree(SETTINGS.sql_dir, tmp_path / "sql"))


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_loader_errors_name_file_and_line(sql_copy):
    yml = sql_copy / "gold" / "credit_repair_review.yml"
    _edit(yml, "key: [uscc, decision_no]", "key: [uscc]")
    _edit(yml, "owner: credit", "owner: credit\ncolour: red")
    _edit(yml, "from: credit.repair.repair_date}", "from: credit.repair.repaired_date}")
    lines = yml.read_text(encoding="utf-8").splitlines()
    with pytest.raises(SpecError) as err:
        load_specs(sql_copy, catalog=CATALOG)
    problems = "\n".join(err.value.problems)
    assert f"{yml}:{lines.index('colour: red') + 1}:1: colour: Extra inputs are not permitted" in problems
    # pydantic rejects the file before cross-file checks: fix the unknown key, the rest is reported
    _edit(yml, "\ncolour: red", "")
    with pytest.raises(SpecError) as err:
        load_specs(sql_copy, catalog=CATALOG)
    lines = yml.read_text(encoding="utf-8").splitlines()
    problems = "\n".join(err.value.problems)
    assert f"{yml}:{lines.index('key: [uscc]') + 1}:6: key: ['uscc'] differs from the key of " in problems
    at = next(i for i, line in enumerate(lines) if "repaired_date" in line) + 1
    assert f"{yml}:{at}:" in problems and "'repaired_date' is not an item of credit.repair" in problems


def test_a_projection_names_its_record_columns(sql_copy):
    _edit(sql_copy / "gold" / "license_publication.yml", "  - on_time", "  - on_time\n  - severity")
    with pytest.raises(SpecError, match=r"license_publication.yml:\d+:\d+: columns\.\d+: 'severity' is not a "
                                        r"column of license_record.yml"):
        load_specs(sql_copy, catalog=CATALOG)


def test_a_failing_unit_test_names_the_model_the_test_and_the_rows(sql_copy):
    _edit(sql_copy / "gold" / "enterprise_credit_profile.yml", "credit_score: 730", "credit_score: 731")
    specs = load_specs(sql_copy, catalog=CATALOG)
    spec = specs["enterprise_credit_profile"]
    (problem,) = _run(spec, spec.spec.unit_tests[0], specs=specs, sql_dir=sql_copy)
    assert "gold/enterprise_credit_profile unit test 'score with two factors': rows differ" in problem
    assert "expected, not produced: {'uscc': '91370102MA00000116', 'published_serious_count': 1" in problem
    assert "'credit_score': 731" in problem
    assert "produced, not expected: {'uscc': '91370102MA00000116'" in problem and "'credit_score': 730.0" in problem
    assert "91370102MA00000220" not in problem  # the row that matches is not listed


def test_given_rows_must_fit_their_relation(sql_copy):
    _edit(sql_copy / "gold" / "penalty_record.yml", "fine_amount: 150,", "fine: 150,")
    specs = load_specs(sql_copy, catalog=CATALOG)
    spec = specs["penalty_record"]
    test = next(t for t in spec.spec.unit_tests if t.name == "serious by fine")
    (problem,) = _run(spec, test, specs=specs, sql_dir=sql_copy)
    assert "unit test 'serious by fine': given penalty_input[0]: fine not a column of penalty_input" in problem


def test_a_column_without_its_english_doc_is_the_only_error(sql_copy):
    yml = sql_copy / "gold" / "legal_entity.yml"
    _edit(yml, "    en: Departments holding data on the entity (;-joined codes)\n", "")
    at = yml.read_text(encoding="utf-8").splitlines().index("  - name: source_departments") + 1
    with pytest.raises(SpecError) as err:
        load_specs(sql_copy, catalog=CATALOG)
    # named by its place in the yml, and the tables reading legal_entity do not report it missing
    (problem,) = err.value.problems
    assert problem.startswith(f"{yml}:{at}:")
    assert problem.endswith(": a derived column needs zh and en docs (or from: <resource>.<column>)")
    index = [c.name for c in SPECS["legal_entity"].columns].index("source_departments")
    assert "function-after" not in problem and f": columns.{index}: " in problem


def test_key_check_counts_every_duplicated_key_and_nothing_else():
    """check_keys groups the keys by hash before comparing them: every duplicated key is still counted once, a
    key that shares only its second part with another is not, and a table without duplicates passes."""
    import duckdb

    from govlake.transform import ModelError, check_keys
    from govlake.transform._models import ModelHeader

    header = ModelHeader("one row per decision", ("decision_no", "authority_uscc"), unique=True, not_null=True,
                         owner="credit")
    con = duckdb.connect()
    con.execute("""create table records as
        select 'no-' || i as decision_no, 'auth-' || (i % 7) as authority_uscc from range(100000) as t(i)""")
    check_keys(con, "records", header)  # 100,000 distinct keys, authorities shared
    con.execute("""insert into records values ('no-5', 'auth-5'), ('no-5', 'auth-5'), ('no-77', 'auth-0'),
                   ('no-5', 'auth-6')""")  # no-5 three times, no-77 twice; (no-5, auth-6) is a key of its own
    with pytest.raises(ModelError, match=r"records: 2 duplicated keys \(decision_no, authority_uscc\)"):
        check_keys(con, "records", header)
