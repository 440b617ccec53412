"""Objections (数据异议): every step recorded with who/when/why, illegal steps refused, gold follows."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from govlake import storage
from govlake.config import Settings
from govlake.gold import build_gold
from govlake.governance import (
    ObjectionError,
    detect_conflicts,
    history,
    list_objections,
    raise_objection,
    transition,
)
from govlake.identifiers import is_valid_id_number
from test_conflicts import E1, E2, MOBILE, PERSON, T1, read, write_silver

T = [dt.datetime(2026, 11, 10, 9, m, tzinfo=dt.UTC) for m in range(10)]
AMR = [
    {"uscc": E1, "name": "济南甲有限公司", "legal_rep": "张三", "reg_capital": Decimal(100),
     "established": dt.date(2015, 3, 1),
     "address": "山东省济南市历下区泉城路1号", "region_code": "370102", "status": "存续",
     "updated_at": dt.datetime(2026, 5, 1, 9, 0)},
    {"uscc": E2, "name": "济南乙有限公司", "legal_rep": "李四", "reg_capital": Decimal(100),
     "established": dt.date(2016, 3, 1),
     "address": "山东省济南市天桥区北园大街2号", "region_code": "370105", "status": "存续",
     "updated_at": dt.datetime(2026, 5, 1, 9, 0)},
]
HRSS = [{"uscc": E1, "name": "济南甲科技有限公司", "legal_rep": "张三", "period": "202610"}]


@pytest.fixture
def lake(settings: Settings) -> Settings:
    write_silver(settings, "amr.enterprise", AMR)
    write_silver(settings, "hrss.social_insurance", HRSS)
    detect_conflicts(settings=settings, run_id="c1", now=T1)
    return settings


def _gold(settings: Settings) -> dict[str, dict]:
    build_gold(settings=settings, run_id="g")
    return {r["uscc"]: r for r in read(settings, "gold", "legal_entity")}


def _conflict(settings: Settings) -> dict:
    (row,) = read(settings, "gold", "conflicts")
    return row


def test_an_objection_walked_through_every_step_is_in_the_history_and_corrects_gold(lake):
    conflict = _conflict(lake)
    assert (conflict["item"], conflict["authoritative_value"], conflict["other_value"]) == (
        "name", "济南甲有限公司", "济南甲科技有限公司")
    o = raise_objection(settings=lake, conflict_id=conflict["conflict_id"], by="hrss", reason="名称与登记不一致",
                        run_id="o1", now=T[0])
    assert (o.state, o.resource, o.item, o.entity_key, o.disputed_value) == (
        "raised", "amr.enterprise", "name", E1, "济南甲有限公司")
    assert _conflict(lake)["status"] == "under_objection"
    assert _gold(lake)[E1]["disputed_attributes"] is None  # raised only: not yet marked

    transition(o.objection_id, "accept", settings=lake, by="amr", reason="受理", run_id="o2", now=T[1])
    gold = _gold(lake)[E1]
    assert (gold["name"], gold["disputed_attributes"], gold["corrected_attributes"]) == ("济南甲有限公司", "name", None)

    transition(o.objection_id, "verify", settings=lake, by="amr-li", reason="核对登记档案", run_id="o3", now=T[2])
    assert _gold(lake)[E1]["disputed_attributes"] == "name"

    done = transition(o.objection_id, "resolve", settings=lake, by="amr", reason="已变更登记",
                      corrected_value="济南甲科技有限公司", run_id="o4", now=T[3])
    assert (done.state, done.outcome, done.disputed, done.resolved_at) == ("resolved", "resolved", False, T[3])
    gold = _gold(lake)[E1]
    assert (gold["name"], gold["corrected_attributes"], gold["disputed_attributes"]) == (
        "济南甲科技有限公司", "name", None)
    assert _gold(lake)[E2]["corrected_attributes"] is None
    assert _conflict(lake)["status"] == "open"  # silver still holds the old registry value

    transition(o.objection_id, "archive", settings=lake, by="dsj", reason="归档", run_id="o5", now=T[4])
    assert _gold(lake)[E1]["name"] == "济南甲科技有限公司"

    steps = history(lake, o.objection_id)
    assert [(s["step"], s["action"], s["previous_state"], s["state"], s["actor"], s["at"], s["reason"])
            for s in steps] == [
        (1, "raise", None, "raised", "hrss", T[0], "名称与登记不一致"),
        (2, "accept", "raised", "accepted", "amr", T[1], "受理"),
        (3, "verify", "accepted", "verified", "amr-li", T[2], "核对登记档案"),
        (4, "resolve", "verified", "resolved", "amr", T[3], "已变更登记"),
        (5, "archive", "resolved", "archived", "dsj", T[4], "归档"),
    ]
    (current,) = read(lake, "meta", "objections")
    assert (current["state"], current["outcome"], current["corrected_value"], current["steps"],
            current["raised_by"], current["updated_by"]) == (
        "archived", "resolved", "济南甲科技有限公司", 5, "hrss", "dsj")

    # the registry now carries a new value of its own: the feed wins over the old correction
    write_silver(lake, "amr.enterprise", [AMR[0] | {"name": "济南甲新材料有限公司"}, AMR[1]])
    gold = _gold(lake)[E1]
    assert (gold["name"], gold["corrected_attributes"]) == ("济南甲新材料有限公司", None)


def test_a_value_objection_with_a_decimal_correction(lake):
    o = raise_objection(settings=lake, resource="amr.enterprise", item="reg_capital", entity_key=E2, by="tax",
                        reason="注册资本有误", run_id="v1", now=T[0])
    assert (o.conflict_id, o.disputed_value, o.entity_key_type) == (None, "100.0000", "uscc")
    for action in ("accept", "verify"):
        transition(o.objection_id, action, settings=lake, by="amr", reason=action, run_id="v", now=T[1])
    with pytest.raises(ObjectionError, match="not a valid decimal"):
        transition(o.objection_id, "resolve", settings=lake, by="amr", reason="x", corrected_value="一百万",
                   run_id="v", now=T[2])
    transition(o.objection_id, "resolve", settings=lake, by="amr", reason="更正", corrected_value="120.5",
               run_id="v", now=T[2])
    assert _gold(lake)[E2]["reg_capital"] == Decimal("120.5")


def test_a_rejected_objection_changes_nothing(lake):
    o = raise_objection(settings=lake, resource="amr.enterprise", item="address", entity_key=E2, by="tax",
                        reason="地址有误", run_id="r", now=T[0])
    transition(o.objection_id, "accept", settings=lake, by="amr", reason="受理", run_id="r", now=T[1])
    transition(o.objection_id, "reject", settings=lake, by="amr", reason="登记无误", run_id="r", now=T[2])
    gold = _gold(lake)[E2]
    assert (gold["address"], gold["disputed_attributes"], gold["corrected_attributes"]) == (
        "山东省济南市天桥区北园大街2号", None, None)
    assert [o.state for o in list_objections(lake)] == ["rejected"]


@pytest.mark.parametrize(("steps", "action", "message"), [
    ([], "resolve", "is raised: cannot resolve"),
    ([], "verify", "is raised: cannot verify"),
    ([], "archive", "is raised: cannot archive"),
    (["accept"], "accept", "is accepted: cannot accept"),
    (["accept", "verify", "resolve"], "reject", "is resolved: cannot reject"),
    (["reject", "archive"], "accept", "is archived: cannot accept.*none"),
])
def test_illegal_transitions_are_refused(lake, steps, action, message):
    o = raise_objection(settings=lake, resource="amr.enterprise", item="name", entity_key=E2, by="tax",
                        reason="x", run_id="i", now=T[0])
    for i, step in enumerate(steps, start=1):
        transition(o.objection_id, step, settings=lake, by="amr", reason=step, run_id="i", now=T[i])
    with pytest.raises(ObjectionError, match=message):
        transition(o.objection_id, action, settings=lake, by="amr", reason="again", run_id="i", now=T[8])
    assert len(history(lake, o.objection_id)) == len(steps) + 1  # nothing written


def test_bad_requests_are_refused(lake):
    with pytest.raises(ObjectionError, match="--reason is required"):
        raise_objection(settings=lake, resource="amr.enterprise", item="name", entity_key=E2, by="tax", reason=" ",
                        run_id="b")
    with pytest.raises(ObjectionError, match="no conflict"):
        raise_objection(settings=lake, conflict_id="nope", by="tax", reason="x", run_id="b")
    with pytest.raises(ObjectionError, match="holds no row"):
        raise_objection(settings=lake, resource="amr.enterprise", item="name", entity_key="91370102MA0000000X",
                        by="tax", reason="x", run_id="b")
    with pytest.raises(ObjectionError, match="no objection"):
        transition("OBJ-x", "accept", settings=lake, by="amr", reason="x", run_id="b")
    o = raise_objection(settings=lake, resource="amr.enterprise", item="name", entity_key=E2, by="tax",
                        reason="x", run_id="b")
    with pytest.raises(ObjectionError, match="resolve only"):
        transition(o.objection_id, "accept", settings=lake, by="amr", reason="x", corrected_value="y", run_id="b")


def test_cli_walks_an_objection_and_prints_no_identifier_unmasked(lake, monkeypatch):
    from govlake.cli import app

    monkeypatch.setenv("GOVLAKE_VAR", str(lake.var))
    write_silver(lake, "psb.population", [
        {"id_number": PERSON, "name": "孙八", "sex": "男", "birth_date": dt.date(1990, 3, 7), "hukou_region": "370102",
         "address": "山东省济南市历下区泉城路8号", "mobile": MOBILE}])
    run = CliRunner().invoke
    printed = []

    def ok(*args: str) -> str:
        result = run(app, ["objection", *args], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        printed.append(result.output)
        return result.output

    ok("raise", "--resource", "psb.population", "--item", "address", "--entity", PERSON, "--by", "street-office",
       "--reason", f"住址已变更，联系电话{MOBILE}，身份证{PERSON}")
    (shown,) = json.loads(ok("list", "--json"))
    oid = shown["objection_id"]
    assert (shown["state"], shown["entity_key"], shown["disputed_value"]) == (
        "raised", PERSON[:6] + "********" + PERSON[-4:], "山东省济南市历下区****")
    assert "138****5678" in shown["last_reason"]
    ok("accept", oid, "--by", "psb", "--reason", "受理")
    bad = run(app, ["objection", "resolve", oid, "--by", "psb", "--reason", "x"])
    assert bad.exit_code == 1 and "is accepted: cannot resolve" in bad.output
    ok("verify", oid, "--by", "psb", "--reason", "核实")
    ok("resolve", oid, "--by", "psb", "--reason", "更正", "--corrected-value", "山东省济南市历下区泉城路88号")
    ok("list")
    steps = json.loads(ok("history", oid, "--json"))
    assert [s["state"] for s in steps] == ["raised", "accepted", "verified", "resolved"]
    assert steps[-1]["corrected_value"] == "山东省济南市历下区****"
    text = "\n".join(printed)
    assert not [t for t in re.findall(r"\d{17}[\dXx]", text) if is_valid_id_number(t)]
    assert not re.findall(r"1[3-9]\d{9}", text)
    assert "泉城路" not in text


def test_history_is_append_only(lake):
    o = raise_objection(settings=lake, resource="amr.enterprise", item="name", entity_key=E2, by="tax", reason="x",
                        run_id="h", now=T[0])
    transition(o.objection_id, "accept", settings=lake, by="amr", reason="y", run_id="h", now=T[1])
    table = storage.open_table(storage.table_path(lake, "meta", "objections_history"))
    modes = [c.get("operation") for c in table.history()]
    assert set(modes) <= {"WRITE", "CREATE TABLE"} and table.version() == 1
    assert all(c.get("operationParameters", {}).get("mode") in (None, "Append", "ErrorIfExists")
               for c in table.history())
