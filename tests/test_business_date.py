"""The business date is the lake's: `govlake generate` records the city's as-of date in
var/business_date, every later command uses it unless GOVLAKE_AS_OF is set, and files ingested in a
run for a past business date land on that date (the later file still wins its key)."""

from __future__ import annotations

import datetime as dt

import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from govlake import pipeline, storage
from govlake.cli import app
from govlake.config import Settings, SettingsError, get_settings
from govlake.credit.kpis import received_time_note
from govlake.identifiers import RIC_CHECK, RIC_WEIGHTS

AS_OF = dt.date(2026, 11, 20)
END_OF_AS_OF = dt.datetime(2026, 11, 20, 15, 59, 59, 999999, tzinfo=dt.UTC)  # 23:59:59.999999 in Beijing



def test_generate_records_the_city_date_and_commands_use_it_unless_govlake_as_of_is_set(env, tmp_path):
    assert get_settings().as_of is None  # a lake without a recorded date: today
    out = CliRunner().invoke(app, ["generate", "--only", "credit.repair", "--rows", "20"])
    assert out.exit_code == 0, out.output
    assert "business date 2026-11-20 recorded" in out.output
    assert (tmp_path / "var" / "business_date").read_text() == "2026-11-20\n"
    assert get_settings().as_of == AS_OF and get_settings().today == AS_OF
    env.setenv("GOVLAKE_AS_OF", "2026-12-01")  # an explicit GOVLAKE_AS_OF wins
    assert get_settings().as_of == dt.date(2026, 12, 1)
    kpi = CliRunner().invoke(app, ["kpi", "--json"])
    assert kpi.exit_code == 0 and '"as_of": "2026-12-01"' in kpi.output


def test_a_city_written_elsewhere_leaves_the_lake_date_alone(env, tmp_path):
    out = CliRunner().invoke(app, ["generate", "--only", "credit.repair", "--rows", "20",
                                   "--out", str(tmp_path / "scratch")])
    assert out.exit_code == 0, out.output
    assert "business date not recorded" in out.output and "GOVLAKE_AS_OF=2026-11-20" in out.output
    assert not (tmp_path / "var" / "business_date").exists() and get_settings().as_of is None


def test_an_unreadable_recorded_date_stops_with_the_file_named(env, tmp_path):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "business_date").write_text("20.11.2026\n")
    with pytest.raises(SettingsError, match=r"business_date='20.11.2026\\n': not an ISO date"):
        get_settings()
    result = CliRunner().invoke(app, ["kpi"])
    assert result.exit_code == 2 and "business_date" in result.output


def test_the_landing_time_never_passes_the_business_date(tmp_path):
    now = dt.datetime(2026, 12, 2, 11, 30, tzinfo=dt.UTC)
    assert Settings(var=tmp_path).landing_time(now) == now  # no business date set: the clock
    assert Settings(var=tmp_path, as_of=AS_OF).landing_time(now) == END_OF_AS_OF  # a past business date
    assert Settings(var=tmp_path, as_of=dt.date(2026, 12, 2)).landing_time(now) == now  # today's
    before = dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.UTC)
    assert Settings(var=tmp_path, as_of=AS_OF).landing_time(before) == before


def _id_number(body: str) -> str:
    return body + RIC_CHECK[sum(int(c) * w for c, w in zip(body, RIC_WEIGHTS)) % 11]


@pytest.mark.slow
def test_files_of_a_past_business_date_land_on_it_and_the_later_file_still_wins(tmp_path):
    """Both files are received at the end of 2026-11-20 (Beijing), whenever the ingest runs; the
    batch ids keep the clock's order, so the second delivery of a person replaces the first."""
    settings = Settings(var=tmp_path / "var", inbox=tmp_path / "inbox", as_of=AS_OF)
    person = _id_number("37010219900101123")
    header = "身份证号,姓名,性别,出生日期,户籍地行政区划,住址,手机号\n"
    paths = []
    for i, name in enumerate(["张三", "张叁"]):
        path = settings.city / "psb" / f"population_{i}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + f"{person},{name},男,1990-01-01,370102,山东省济南市历下区,13800000000\n",
                        encoding="utf-8")
        pipeline.ingest("psb.population", files=[path], settings=settings, run_id=f"i{i}")
        paths.append(path)
    bronze = DeltaTable(str(storage.table_path(settings, "bronze", "psb_population"))).to_pyarrow_table().to_pylist()
    assert {r["_received_at"] for r in bronze} == {END_OF_AS_OF}
    first, second = sorted(bronze, key=lambda r: r["_source"])
    assert first["_batch_id"] < second["_batch_id"]
    log = DeltaTable(str(storage.table_path(settings, "meta", "ingest_log"))).to_pyarrow_table().to_pylist()
    assert {r["received_at"] for r in log if r["status"] == "landed"} == {END_OF_AS_OF}
    pipeline.process("psb.population", settings=settings, run_id="p1")
    (row,) = DeltaTable(str(storage.table_path(settings, "silver", "psb_population"))).to_pyarrow_table().to_pylist()
    assert (row["name"], row["_source"]) == ("张叁", str(paths[1]))


def test_the_received_time_note_says_how_many_records_it_covers():
    assert received_time_note(0, 5) is None
    assert received_time_note(5, 5).endswith("no 报送时间: received time used")
    assert "2 of 5 without 报送时间" in received_time_note(2, 5)
