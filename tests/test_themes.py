"""Theme libraries (主题库): declared in catalog/themes.yml, built by the themes step into gold/theme/.

On a copy of the session's city (conftest's built_city, run once by `govlake run`'s pipeline): the
demo's market theme against a hand computation over the 一企一档 files; a theme added by a catalog entry
and a SQL model alone (copies of catalog/ and sql/ in tmp_path) built into gold/theme/ with its lineage;
a bad themes.yml named by file, line and problem (and by `govlake catalog validate`).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from govlake import pipeline, storage
from govlake.catalog import CatalogError
from govlake.cli import app
from govlake.config import Settings
from govlake.themes import load_themes, theme_tables

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
LICENCES = """\
-- grain: one row per licensing authority (许可机关) | key: authority_uscc unique not null | owner: credit
-- inputs: silver_credit_license, gold_market_region_industry
-- Valid (有效 or no status) licensing decisions per authority, and the counties the lake knows.
with

licences as (
    select
        authority_uscc,
        count(*) as valid_licences
    from silver_credit_license
    where coalesce(status, '有效') = '有效'
    group by authority_uscc
),

counties as (
    select count(distinct region_code) as counties
    from gold_market_region_industry
),

per_authority as (
    select
        licences.authority_uscc,
        licences.valid_licences,
        counties.counties
    from licences
    cross join counties
)

select * from per_authority
"""
LICENCES_YML = """\
title: {zh: 各许可机关有效许可数, en: Valid licences per licensing authority}
model: theme/licences_by_authority
grain: one row per licensing authority (许可机关)
key: [authority_uscc]
key_tests: [unique, not_null]
owner: credit
sources: [credit.license]
columns:
  - {name: authority_uscc, from: credit.license.authority_uscc}
  - {name: valid_licences, zh: 有效许可数, en: Valid licensing decisions}
  - {name: counties, zh: 区县数, en: Counties in the market theme}
"""


@pytest.fixture
def city(built_city, tmp_path):
    settings, _ = built_city.copy(tmp_path / "var")
    return settings


def _rows(settings: Settings, name: str) -> list[dict]:
    table = storage.open_table(storage.table_path(settings, "gold", name))
    assert table is not None, f"gold/theme/{name} was not written"
    return table.to_pyarrow_table().to_pylist()


def test_the_market_theme_counts_the_credit_files_per_county_and_industry(city):
    assert [lib.id for lib in load_themes(city)] == ["credit", "market"]
    assert theme_tables(city) == ["market_region_industry"]
    market = _rows(city, "market_region_industry")
    profiles = storage.table_path(city, "gold", "enterprise_credit_profile")
    assert str(profiles).endswith("gold/theme/enterprise_credit_profile")
    con = duckdb.connect()
    con.register("p", storage.open_table(profiles).to_pyarrow_dataset())
    expected = {(r, s): (n, reg, pen) for r, s, n, reg, pen in con.execute("""
        select coalesce(region_code, '未知'), coalesce(upper(substr(industry_code, 1, 1)), '未知'), count(*),
               count(*) filter (where not coalesce(registration_revoked, false)),
               count(*) filter (where published_penalty_count > 0)
        from p group by all""").fetchall()}
    got = {(m["region_code"], m["industry_section"]): (m["enterprises"], m["registered_enterprises"],
                                                         m["with_published_penalty"]) for m in market}
    assert got == expected and sum(n for n, _, _ in got.values()) > 100
    assert any(pen for _, _, pen in got.values())


def test_a_theme_added_by_a_catalog_entry_and_a_model_is_built_into_gold_theme(city, tmp_path):
    catalog, sql = tmp_path / "catalog", tmp_path / "sql"
    shutil.copytree(REPO / "catalog", catalog)
    shutil.copytree(REPO / "sql", sql)
    (sql / "theme" / "licences_by_authority.sql").write_text(LICENCES, encoding="utf-8")
    (sql / "theme" / "licences_by_authority.yml").write_text(LICENCES_YML, encoding="utf-8")
    with (catalog / "themes.yml").open("a", encoding="utf-8") as f:
        f.write("  licensing:\n"
                "    title: {zh: 行政许可主题库, en: Licensing theme library}\n"
                "    owner: credit\n"
                "    inputs: [credit.license, gold/market_region_industry]\n"
                "    models: [licences_by_authority]\n")
    settings = dataclasses.replace(city, catalog_dir=catalog, sql_dir=sql)
    assert theme_tables(settings) == ["market_region_industry", "licences_by_authority"]

    # the first build ever: licensing reads the market table this very run builds before it
    shutil.rmtree(settings.lake / "gold" / "theme" / "market_region_industry")
    rows = pipeline.themes(settings=settings, run_id="themes-1")
    assert set(rows) == {"market_region_industry", "licences_by_authority"}
    got = {r["authority_uscc"]: r for r in _rows(settings, "licences_by_authority")}
    assert (settings.lake / "gold" / "theme" / "licences_by_authority" / "_delta_log").is_dir()
    con = duckdb.connect()
    con.register("l", storage.open_table(storage.table_path(settings, "silver", "credit_license")).to_pyarrow_dataset())
    expected = dict(con.execute("select authority_uscc, count(*) from l where coalesce(status, '有效') = '有效' "
                                "group by all").fetchall())
    assert {k: r["valid_licences"] for k, r in got.items()} == expected and len(expected) > 1
    counties = {r["region_code"] for r in _rows(settings, "market_region_industry")}
    assert {r["counties"] for r in got.values()} == {len(counties)}

    # again: the same rows, the table overwritten (not appended)
    assert pipeline.themes(settings=settings, run_id="themes-2") == rows

    # lineage: one child run per theme table, reading what its model reads; the column lineage once the
    # inputs exist when the run starts (the first run's market input did not: table-level, and it says why)
    events = [json.loads(line) for line in (settings.var / "lineage" / "govlake.jsonl").read_text().splitlines()]
    done = [e for e in events if e["job"]["name"] == "themes.licences_by_authority" and e["eventType"] == "COMPLETE"]
    assert len(done) == 2
    for event in done:
        inputs = {i["name"].split("/lake/")[-1] for i in event["inputs"]}
        assert inputs == {"silver/credit_license", "gold/theme/market_region_industry"}
        (out,) = event["outputs"]
        assert out["name"].endswith("/lake/gold/theme/licences_by_authority")
    assert "columnLineage" not in done[0]["outputs"][0]["facets"]
    parents = [e for e in events if e["job"]["name"] == "themes" and e["eventType"] == "COMPLETE"]
    errors = [x["errorMessage"] for x in parents[-2]["run"]["facets"]["extractionError"]["errors"]]
    assert any(x.startswith("themes.licences_by_authority: column lineage:") for x in errors), errors
    assert "extractionError" not in parents[-1]["run"]["facets"]
    fields = done[1]["outputs"][0]["facets"]["columnLineage"]["fields"]
    assert set(fields) >= {"authority_uscc", "counties"}, fields
    assert {f["name"].split("/lake/")[-1] for f in fields["authority_uscc"]["inputFields"]} == {"silver/credit_license"}


def test_a_model_reading_what_its_theme_does_not_declare_is_refused_with_file_and_line(city, tmp_path, monkeypatch):
    catalog, sql = tmp_path / "catalog", tmp_path / "sql"
    shutil.copytree(REPO / "catalog", catalog)
    shutil.copytree(REPO / "sql", sql)
    (sql / "theme" / "licences_by_authority.sql").write_text(LICENCES, encoding="utf-8")
    themes = catalog / "themes.yml"
    with themes.open("a", encoding="utf-8") as f:
        f.write("  licensing:\n"
                "    title: {zh: 行政许可主题库, en: Licensing theme library}\n"
                "    owner: nobody\n"
                "    inputs: [credit.license, gold/later_table, no.such]\n"
                "    models: [licences_by_authority, legal_entity]\n")
    lines = themes.read_text(encoding="utf-8").splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "inputs: [credit.license, gold/later" in text)
    settings = dataclasses.replace(city, catalog_dir=catalog, sql_dir=sql)
    with pytest.raises(CatalogError) as err:
        load_themes(settings)
    text = "\n".join(err.value.problems)
    assert "unknown department 'nobody'" in text
    assert f"{themes}:{line}:" in text and "gold/later_table is not a gold table built before this theme" in text
    assert "'no.such' is neither a catalog resource nor gold/<table>" in text
    assert "reads gold_market_region_industry, which theme licensing does not declare" in text
    assert "gold table 'legal_entity' exists already" in text
    with pytest.raises(CatalogError):
        pipeline.themes(settings=settings, run_id="refused")
    assert storage.open_table(storage.table_path(settings, "gold", "licences_by_authority")) is None

    # the CLI says the same and exits 1
    monkeypatch.setenv("GOVLAKE_CATALOG_DIR", str(catalog))
    monkeypatch.setenv("GOVLAKE_VAR", str(settings.var))
    result = CliRunner().invoke(app, ["catalog", "validate"])
    assert result.exit_code == 1 and "unknown department 'nobody'" in result.output


def test_themes_list_and_build_on_the_command_line(city, monkeypatch):
    monkeypatch.setenv("GOVLAKE_VAR", str(city.var))
    listed = CliRunner().invoke(app, ["themes", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    themes = {t["theme"]: t for t in json.loads(listed.stdout)["themes"]}
    assert themes["credit"]["built_by"] == "credit" and themes["market"]["built_by"] == "models"
    assert themes["market"]["tables"]["market_region_industry"] == len(_rows(city, "market_region_industry"))
    built = CliRunner().invoke(app, ["themes", "build", "--json"])
    assert built.exit_code == 0, built.output
    assert json.loads(built.stdout)["tables"] == {"market_region_industry": themes["market"]["tables"][
        "market_region_industry"]}
