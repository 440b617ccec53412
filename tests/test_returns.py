"""回流: one return per district and per department from a small silver lake, filtered by 共享类型 and the
granted requests, masked, logged in meta/returns_log."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil

import duckdb
import pyarrow as pa
import pytest

from govlake import contracts, storage
from govlake.catalog import get_catalog
from govlake.config import Settings
from govlake.identifiers import is_valid_id_number
from govlake.report._returns import returns_section
from govlake.returns import INFO_TABLE, RECTIFY_TABLE, RETURN_FILE, build_returns, delivery_log, plan
from govlake.sharing import ShareRequest, SharingInputError, load_requests, requests_path
from test_gold import E1, E4, MOBILE, PERSON_ID, PERSON_ID_2, id_number, write_sample_silver, write_silver

PERSON_ID_3 = id_number("19700101", "789")
MOBILE_2 = "13987654321"
POPULATION = [
    {"id_number": PERSON_ID, "name": "孙八", "sex": "男", "birth_date": dt.date(1990, 3, 7),
     "hukou_region": "370102", "address": "山东省济南市历下区泉城路5号", "mobile": MOBILE},
    {"id_number": PERSON_ID_2, "name": "刘七", "sex": "男", "birth_date": dt.date(1985, 11, 11),
     "hukou_region": "370104", "address": "山东省济南市槐荫区经十路9号", "mobile": MOBILE_2},
    {"id_number": PERSON_ID_3, "name": "周九", "sex": "女", "birth_date": dt.date(1970, 1, 1),
     "hukou_region": "370102001001", "address": "山东省济南市历下区文化东路3号", "mobile": None},
]
HEADER = ("申请编号,申请部门,资源代码,申请共享类型,申请时间,答复时间,答复结果,是否有效,"
          "共享用途,共享数据项,共享行政区划\n")
REQUESTS = HEADER + "\n".join([
    # granted: hrss may see names, divisions and mobiles of the people registered in 历下区 (370102)
    "GX-1,市人力资源和社会保障局,psb.population,有条件共享,2024-04-01,2024-04-03,同意,是,社保参保资格核验,"
    "name;hukou_region;mobile,370102",
    # refused, set aside, granted without a purpose: none of them covers a return
    "GX-2,ee,psb.population,有条件共享,2024-04-01,2024-04-03,驳回,是,环境执法,name,",
    "GX-3,tax,psb.population,有条件共享,2024-04-01,2024-04-03,同意,否,税务稽查,name,",
    "GX-4,court,psb.population,有条件共享,2024-04-01,2024-04-03,同意,是,,name,",
    # granted for the whole city: ee gets the enterprises' divisions and capital, not their legal reps
    "GX-5,ee,amr.enterprise,有条件共享,2024-04-01,2024-04-02,同意,是,排污许可核查,uscc;region_code;reg_capital,",
]) + "\n"


@pytest.fixture(scope="module")
def returned(tmp_path_factory):
    """The returns of a small lake, built once for the module: the tests only read them."""
    tmp_path = tmp_path_factory.mktemp("returns")
    settings = Settings(var=tmp_path / "var", inbox=tmp_path / "inbox", as_of=dt.date(2024, 5, 6))
    write_sample_silver(settings)
    write_silver(settings, "psb.population", POPULATION)
    path = requests_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text(REQUESTS, encoding="utf-8")
    catalog = get_catalog(settings.catalog_dir)
    penalty = catalog.resource("credit.penalty")
    bad = {c: None for c in contracts.bronze_schema(penalty).names} | {
        "decision_no": "济环罚〔2024〕9号", "subject_name": "钱十", "id_no": PERSON_ID_3,
        "_source": "ee/penalty_0501.csv",
        "_row_number": 7, "_failed_rules": ["required.subject_type", "retired.rule"], "_run_id": "r0", "_dept": "ee"}
    storage.write_table(storage.table_path(settings, "quarantine", penalty.slug),
                        pa.Table.from_pylist([bad], schema=contracts.quarantine_schema(penalty)),
                        mode="overwrite", run_id="test")
    seen = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    conflict = {"conflict_id": "C1", "item": "legal_rep", "item_name": "法定代表人", "entity_key_type": "uscc",
                "entity_key": E1, "resource": "hrss.social_insurance", "record_key": f"{E1}|202402",
                "authority_department": "amr", "authority_resource": "amr.enterprise", "authoritative_value": "张三",
                "department": "hrss", "other_value": "李四", "first_seen": seen, "last_seen": seen,
                "resolved_at": None, "status": "open", "run_id": "r0"}
    storage.write_table(storage.table_path(settings, "gold", "conflicts"),
                        pa.Table.from_pylist([conflict], schema=contracts.CONFLICTS), mode="overwrite", run_id="test")
    summary = build_returns(settings=settings, run_id="ret-1")
    return settings, summary


def _tables(path) -> dict[str, list[dict]]:
    with duckdb.connect(str(path), read_only=True) as con:
        names = [t for (t,) in con.execute("select table_name from duckdb_tables() order by 1").fetchall()]
        out = {}
        for t in names:
            cur = con.execute(f'select * from "{t}"')
            cols = [d[0] for d in cur.description]
            out[t] = [dict(zip(cols, r)) for r in cur.fetchall()]
        return out


def _columns(path) -> dict[str, list[str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("select table_name, column_name from duckdb_columns() order by table_name, column_index")
        out: dict[str, list[str]] = {}
        for t, c in rows.fetchall():
            out.setdefault(t, []).append(c)
        return out


def test_one_return_per_district_and_department(returned):
    settings, summary = returned
    depts = set(get_catalog(settings.catalog_dir).departments)
    # 370102 and 370104 from the enterprises' and the people's divisions (a 12-digit code is cut to its county)
    assert set(summary) == depts | {"370102", "370104"}
    for receiver in summary:
        assert (settings.returns / receiver / RETURN_FILE).is_file()
    assert not [p for p in settings.returns.rglob("*") if p.name.endswith((".tmp", ".wal"))]
    # districts get the 无条件共享 resources that have a district (through the enterprise register): no
    # 有条件共享 resource at all
    assert set(summary["370102"]["tables"]) == {"credit_license", "credit_penalty"}
    assert summary["370104"]["tables"] == {"credit_license": 0, "credit_penalty": 1}


def test_no_receiver_gets_another_districts_row(returned):
    settings, _ = returned
    li = _tables(settings.returns / "370102" / RETURN_FILE)
    huaiyin = _tables(settings.returns / "370104" / RETURN_FILE)
    # penalties: 1–3 (E1, 历下) go to 370102, 3号 (E4, 槐荫) to 370104; the natural person's 4号 and E5's 5号
    # (no enterprise on the register) go to no district
    assert sorted(r["decision_no"] for r in li["credit_penalty"]) == ["济环罚〔2024〕1号", "济环罚〔2024〕2号"]
    assert [r["decision_no"] for r in huaiyin["credit_penalty"]] == ["济环罚〔2024〕3号"]
    assert {r["uscc"] for r in li["credit_penalty"] + li["credit_license"]} == {E1}
    assert {r["uscc"] for r in huaiyin["credit_penalty"]} == {E4}
    # the granted request GX-1 names 370102: hrss sees the people of 历下区 (also the 12-digit code), not 槐荫区
    hrss = _tables(settings.returns / "hrss" / RETURN_FILE)
    people = hrss["psb_population__gx_1"]
    assert sorted(r["hukou_region"] for r in people) == ["370102", "370102001001"]


def test_conditional_resource_reaches_only_receivers_with_a_covering_request(returned):
    settings, summary = returned
    population = {r: t for r, s in summary.items() for t in s["tables"] if t.startswith("psb_population")}
    # psb provides it; hrss has GX-1; ee was refused (GX-2), tax's request was set aside (GX-3), court's has
    # no purpose (GX-4); districts never get it
    assert population == {"psb": "psb_population", "hrss": "psb_population__gx_1"}
    enterprise = {r: t for r, s in summary.items() for t in s["tables"] if t.startswith("amr_enterprise")}
    assert enterprise == {"amr": "amr_enterprise", "ee": "amr_enterprise__gx_5"}


def test_only_the_items_a_request_covers(returned):
    settings, _ = returned
    hrss = _columns(settings.returns / "hrss" / RETURN_FILE)
    ee = _columns(settings.returns / "ee" / RETURN_FILE)
    assert hrss["psb_population__gx_1"] == ["name", "hukou_region", "mobile"]  # not id_number, address, birth date
    assert ee["amr_enterprise__gx_5"] == ["uscc", "reg_capital", "region_code"]  # catalog order
    # the provider's own table has every released item; the L4 身份证号 is masked, not left out (it has a mask)
    psb = _columns(settings.returns / "psb" / RETURN_FILE)
    assert psb["psb_population"] == [i.column for i in get_catalog(settings.catalog_dir)
                                     .resource("psb.population").items]


ID_RE = re.compile(r"[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]")
MOBILE_RE = re.compile(r"1[3-9]\d{9}")


def test_no_unmasked_personal_value_in_any_return(returned):
    settings, _ = returned
    cells = [v for path in settings.returns.rglob(RETURN_FILE) for rows in _tables(path).values()
             for row in rows for v in row.values() if isinstance(v, str)]
    assert cells
    assert not [c for c in cells if is_valid_id_number(c) or ID_RE.search(c) or MOBILE_RE.search(c)]
    for secret in (PERSON_ID, PERSON_ID_2, PERSON_ID_3, MOBILE, MOBILE_2, "孙八", "刘七", "周九", "张三", "钱十",
                   "泉城路5号"):
        assert not [c for c in cells if secret in c], secret
    # even the providing department gets its own people masked
    psb = {r["name"]: r for r in _tables(settings.returns / "psb" / RETURN_FILE)["psb_population"]}
    assert set(psb) == {"孙*", "刘*", "周*"}
    assert psb["孙*"]["id_number"] == PERSON_ID[:6] + "********" + PERSON_ID[-4:]
    assert psb["孙*"]["mobile"] == "138****5678"
    assert psb["孙*"]["address"] == "山东省济南市历下区****"
    hrss = {r["name"]: r for r in _tables(settings.returns / "hrss" / RETURN_FILE)["psb_population__gx_1"]}
    assert hrss["孙*"]["mobile"] == "138****5678"
    # an organisation's name is public; the natural person's in a 无条件共享 resource is masked
    ee = _tables(settings.returns / "ee" / RETURN_FILE)
    penalties = {r["decision_no"]: r for r in ee["credit_penalty"]}
    assert penalties["济环罚〔2024〕1号"]["subject_name"] == "济南甲有限公司"
    assert penalties["济环罚〔2024〕4号"]["subject_name"] == "孙*"


def test_departments_get_their_rectification_list(returned):
    settings, _ = returned
    ee = _tables(settings.returns / "ee" / RETURN_FILE)[RECTIFY_TABLE]
    assert [(r["kind"], r["file"], r["row"], r["rule"]) for r in ee] == [
        ("隔离", "ee/penalty_0501.csv", 7, "required.subject_type"), ("隔离", "ee/penalty_0501.csv", 7, "retired.rule")]
    assert ee[0]["reason_zh"] == "行政相对人类别为必填项"
    assert "retired.rule" in ee[1]["reason_zh"] and "已不在现行规则中" in ee[1]["reason_zh"]
    # the conflict is listed for both parties, the values themselves are not
    for dept, role in (("hrss", "本部门持有副本"), ("amr", "本部门为权威部门")):
        (c,) = _tables(settings.returns / dept / RETURN_FILE)[RECTIFY_TABLE]
        assert c["kind"] == "冲突" and c["rule"] == "一数一源:legal_rep" and role in c["reason_zh"]
        assert "市市场监督管理局" in c["reason_zh"] and "李四" not in str(c) and "张三" not in str(c)
    assert _tables(settings.returns / "tax" / RETURN_FILE)[RECTIFY_TABLE] == []
    # ee submitted penalties to the credit centre's 双公示 resource: they come back in full as its own data
    assert len(_tables(settings.returns / "ee" / RETURN_FILE)["credit_penalty_submitted"]) == 5


def test_the_delivery_log_matches_the_files(returned):
    settings, summary = returned
    logged = delivery_log(settings)
    assert {r["run_id"] for r in logged} == {"ret-1"}
    from_files = {}
    for receiver in summary:
        path = settings.returns / receiver / RETURN_FILE
        tables, columns = _tables(path), _columns(path)
        from_files |= {(receiver, t): (len(rows), ",".join(columns[t])) for t, rows in tables.items()
                       if t != INFO_TABLE}
        assert {r["table_name"]: r["rows"] for r in tables[INFO_TABLE]} == {
            t: len(rows) for t, rows in tables.items() if t != INFO_TABLE}
    assert {(r["receiver"], r["table_name"]): (r["rows"], r["column_names"]) for r in logged} == from_files
    assert all(r["columns"] == len(r["column_names"].split(",")) for r in logged)
    gx1 = next(r for r in logged if r["request_id"] == "GX-1")
    assert (gx1["receiver"], gx1["basis"], gx1["purpose"], gx1["rows"]) == ("hrss", "有条件共享", "社保参保资格核验", 2)
    assert {r["basis"] for r in logged} == {"无条件共享", "有条件共享", "本部门数据", "整改清单"}


def test_rerun_replaces_every_file_and_logs_again(returned, tmp_path):
    settings = dataclasses.replace(returned[0], var=tmp_path / "var")
    shutil.copytree(returned[0].var, settings.var)
    build_returns(settings=settings, run_id="ret-2")
    with duckdb.connect(str(settings.returns / "hrss" / RETURN_FILE), read_only=True) as con:
        assert con.execute(f"select distinct run_id from {INFO_TABLE}").fetchall() == [("ret-2",)]
    runs = [r["run_id"] for r in delivery_log(settings)]
    assert runs.count("ret-1") == runs.count("ret-2") > 0


def test_the_auditors_section_shows_the_last_deliveries(returned):
    settings, _ = returned
    html = returns_section(delivery_log(settings))
    assert 'id="returns-table"' in html and "GX-1" in html and "社保参保资格核验" in html and "370104" in html
    assert "尚无回流记录" in returns_section([])


def test_a_request_naming_an_unknown_item_or_a_bad_division_is_refused(settings):
    path = requests_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text(HEADER + "GX-9,hrss,psb.population,有条件共享,2024-04-01,2024-04-03,同意,是,核验,name;salary,"
                    "3701X2\n", encoding="utf-8")
    with pytest.raises(SharingInputError) as err:
        load_requests(path, get_catalog(settings.catalog_dir))
    assert [p.split(": ", 1)[1] for p in err.value.problems] == [
        "request.format: 共享行政区划: not a 6-digit division code: 3701X2 (got '3701X2')"]
    path.write_text(HEADER + "GX-9,hrss,psb.population,有条件共享,2024-04-01,2024-04-03,同意,是,核验,name;salary,\n",
                    encoding="utf-8")
    with pytest.raises(SharingInputError, match=r"share_requests.csv:2: request.item_known: resource "
                                                r"psb.population has no item 'salary'"):
        load_requests(path, get_catalog(settings.catalog_dir))


def _cli(settings, env, *args):
    from typer.testing import CliRunner

    from govlake.cli import app

    env.setenv("GOVLAKE_VAR", str(settings.var))
    env.setenv("GOVLAKE_INBOX", str(settings.inbox))
    env.setenv("GOVLAKE_AS_OF", "2024-05-06")
    return CliRunner().invoke(app, list(args))


def test_govlake_return_writes_and_reports_the_returns(returned, tmp_path, env):
    settings = dataclasses.replace(returned[0], var=tmp_path / "var")
    shutil.copytree(returned[0].var, settings.var)
    out = _cli(settings, env, "return", "--json")
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["receivers"]["hrss"]["tables"]["psb_population__gx_1"] == 2
    assert {r["run_id"] for r in delivery_log(settings)} == {"ret-1", result["run_id"]}


def test_govlake_return_names_the_bad_request_row_and_exits_1(returned, tmp_path, env):
    settings = dataclasses.replace(returned[0], var=tmp_path / "var", inbox=tmp_path / "inbox")
    shutil.copytree(returned[0].var, settings.var)
    path = requests_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text(HEADER + "GX-9,hrss,psb.population,有条件共享,2024-04-01,2024-04-03,同意,是,核验,salary,\n",
                    encoding="utf-8")
    out = _cli(settings, env, "return")
    assert out.exit_code == 1
    assert "share_requests.csv:2: request.item_known: resource psb.population has no item 'salary'" in out.output
    assert [r["run_id"] for r in delivery_log(settings)].count("ret-1") == len(delivery_log(settings))


def _request(id_: str, dept: str, resource: str, items: str, regions: str = "", **kw) -> ShareRequest:
    return ShareRequest.model_validate({"id": id_, "department": dept, "resource": resource, "share_type": "有条件共享",
                                        "requested_at": "2024-04-01", "answered_at": "2024-04-02", "outcome": "同意",
                                        "valid": "是", "purpose": "核验", "items": items, "regions": regions} | kw)


def test_not_shared_data_goes_back_to_its_provider_only():
    """A 不予共享 resource, and a 不予共享 item of a shared one, reach no one but the provider, whatever the
    requests say (a catalog copy with such entries: the city's catalog has none)."""
    catalog = get_catalog()
    psb = catalog.resource("psb.population").model_copy(update={"share_type": "不予共享"})
    amr = catalog.resource("amr.enterprise")
    amr = amr.model_copy(update={"items": [i.model_copy(update={"share_type": "不予共享"}) if i.column == "reg_capital"
                                           else i for i in amr.items]})
    penalty = catalog.resource("credit.penalty")
    penalty = penalty.model_copy(update={"items": [
        i.model_copy(update={"share_type": "不予共享"}) if i.column == "fine_amount" else i for i in penalty.items]})
    catalog = dataclasses.replace(catalog, resources=catalog.resources | {
        psb.code: psb, amr.code: amr, penalty.code: penalty})
    requests = (_request("R1", "hrss", "psb.population", "name;hukou_region"),
                _request("R2", "ee", "amr.enterprise", "uscc;reg_capital;region_code", "370100"),
                _request("R3", "tax", "amr.enterprise", "reg_capital"),
                # two ids that make the same table name: the second is told apart
                _request("GX-7", "hrss", "amr.enterprise", "uscc"), _request("gx_7", "hrss", "amr.enterprise", "uscc"))
    deliveries = plan(catalog, requests, districts=["370102"], submitted={"credit.penalty": {"ee"}},
                      routed={"credit.penalty", "amr.enterprise", "psb.population"})
    by = {(d.receiver, d.table): d for d in deliveries}
    assert {r for r, t in by if t.startswith("psb_population")} == {"psb"}
    assert by[("psb", "psb_population")].basis == "本部门数据"
    ee = by[("ee", "amr_enterprise__r2")]
    assert ee.columns == ("uscc", "region_code") and ee.where == "coalesce(starts_with(_district, '3701'), false)"
    assert ("tax", "amr_enterprise__r3") not in by  # it asked for nothing it may have
    assert "reg_capital" in by[("amr", "amr_enterprise")].columns
    # a 不予共享 item of a 无条件共享 resource: to districts and departments without it, back to its submitter with it
    assert "fine_amount" not in by[("370102", "credit_penalty")].columns
    assert "fine_amount" not in by[("hrss", "credit_penalty")].columns
    assert "fine_amount" in by[("ee", "credit_penalty_submitted")].columns
    assert "fine_amount" in by[("credit", "credit_penalty")].columns
    assert [(t, by[("hrss", t)].request_id) for r, t in by if r == "hrss" and t.startswith("amr_")] == [
        ("amr_enterprise__gx_7", "GX-7"), ("amr_enterprise__gx_7_1", "gx_7")]


def test_a_run_killed_between_the_log_and_the_files_is_finished_by_the_next(returned, tmp_path):
    import _forked as forked

    settings = dataclasses.replace(returned[0], var=tmp_path / "var")
    shutil.copytree(returned[0].var, settings.var)
    killed = forked.run(build_returns, settings=settings, run_id="ret-crash",
                        env={"GOVLAKE_CRASH_AT": "returns:meta/returns_log"})
    assert killed.returncode == -9, killed.output
    # logged, but every file is still the previous run's (the new ones wait under their temporary names)
    assert {r["run_id"] for r in delivery_log(settings)} == {"ret-1", "ret-crash"}
    with duckdb.connect(str(settings.returns / "hrss" / RETURN_FILE), read_only=True) as con:
        assert con.execute(f"select distinct run_id from {INFO_TABLE}").fetchall() == [("ret-1",)]
    build_returns(settings=settings, run_id="ret-next")
    runs = [r["run_id"] for r in delivery_log(settings)]
    assert runs.count("ret-crash") == runs.count("ret-1") == runs.count("ret-next")  # nothing logged twice
    with duckdb.connect(str(settings.returns / "hrss" / RETURN_FILE), read_only=True) as con:
        assert con.execute(f"select distinct run_id from {INFO_TABLE}").fetchall() == [("ret-next",)]
    assert not [p for p in settings.returns.rglob("*") if p.name.endswith((".tmp", ".wal"))]
