"""Publicity regimes (catalog/credit_rules.yml publicity.regimes): the regime of each penalty by its
decision date, 轻微, ``govlake credit regimes`` / ``credit impact``, and bad regime files.

Expected dates are computed by hand from the configured regimes: ndrc-2023 (decided until
2026-03-31) 一般 3–12 months, 严重 6–36; ndrc-2026 (from 2026-04-01) 一般 3–12, 严重 12–36, 轻微 (only
警告/通报批评, fine below 1 万元) not published, at most 3 months. The business date is 2026-11-20.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from govlake.catalog import CatalogError
from govlake.cli import app
from govlake.config import Settings
from govlake.credit import build_credit, load_credit_rules, regime_impact
from govlake.gold import build_gold
from test_credit import copy_catalog, ee_penalty, put_silver, rows
from test_gold import E1, PERSON_ID

AS_OF = dt.date(2026, 11, 20)
PERSON = {"subject_name": "孙八", "subject_type": "自然人", "uscc": None, "legal_rep": None,
          "legal_rep_id_type": None, "legal_rep_id_no": None, "id_type": "身份证", "id_no": PERSON_ID}
PENALTIES = [
    # ndrc-2023 严重 (fine 150): repair from 2026-09-20, published until 2029-03-20; under ndrc-2026 only the
    # minimum moves (2027-03-20): no repair, same end and status → not affected
    ee_penalty("R1", dt.date(2026, 3, 20), fine_amount=Decimal(150)),
    # ndrc-2026 严重: repair from 2027-04-10 (12 months), until 2029-04-10; ndrc-2023 changes only the minimum
    ee_penalty("R2", dt.date(2026, 4, 10), fine_amount=Decimal(150)),
    # ndrc-2026 轻微 (警告 only): not published, period 2026-05-05 … 2026-08-05; ndrc-2023: 一般, published
    # until 2027-05-05 → affected by ndrc-2023
    ee_penalty("R3", dt.date(2026, 5, 5), penalty_category="警告", fine_amount=None),
    # ndrc-2023 一般 (fine 2): 2026-05-10 … 2027-02-10, the same under ndrc-2026 → never affected
    ee_penalty("R4", dt.date(2026, 2, 10)),
    # ndrc-2023 一般 (警告 only), published until 2027-01-05; ndrc-2026: 轻微, not published → affected
    ee_penalty("R5", dt.date(2026, 1, 5), penalty_category="警告", fine_amount=None),
    # ndrc-2023 严重, repaired 2026-09-01 (≥ 2026-08-01); under ndrc-2026 the repair is before the 12-month
    # minimum (2027-02-01): refused, published until 2029-02-01 → affected
    ee_penalty("R6", dt.date(2026, 2, 1), fine_amount=Decimal(150)),
    # a natural person, ndrc-2023 一般 (警告 only): like R5 → affected; shown masked
    ee_penalty("R7", dt.date(2026, 2, 3), penalty_category="警告", fine_amount=None, **PERSON),
    # the same with a 行政相对人类别 that does not say 自然人: masked all the same (default-deny)
    ee_penalty("R8", dt.date(2026, 2, 3), penalty_category="警告", fine_amount=None,
               **(PERSON | {"subject_name": "周九", "subject_type": "个人"})),
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    settings = Settings(var=tmp_path_factory.mktemp("regimes") / "var", as_of=AS_OF)
    put_silver(settings, "credit.penalty", PENALTIES)
    put_silver(settings, "credit.repair", [{"uscc": E1, "subject_name": "济南甲有限公司", "decision_no": "R6",
                                            "repair_date": dt.date(2026, 9, 1),
                                            "repair_authority": "济南市生态环境局"}])
    put_silver(settings, "amr.enterprise", [])
    build_gold(settings=settings, run_id="g")
    build_credit(settings=settings, run_id="c")
    return settings


def test_each_penalty_gets_the_periods_of_its_regime(lake):
    got = {no: (r["regime"], r["severity"], r["min_publish_end"], r["publish_end"], r["publicity_status"])
           for no, r in rows(lake, "penalty_record", "decision_no").items()}
    assert got == {
        "R1": ("ndrc-2023", "严重", dt.date(2026, 9, 20), dt.date(2029, 3, 20), "公示中"),
        "R2": ("ndrc-2026", "严重", dt.date(2027, 4, 10), dt.date(2029, 4, 10), "公示中"),
        "R3": ("ndrc-2026", "轻微", dt.date(2026, 5, 5), dt.date(2026, 8, 5), "不予公示"),
        "R4": ("ndrc-2023", "一般", dt.date(2026, 5, 10), dt.date(2027, 2, 10), "公示中"),
        "R5": ("ndrc-2023", "一般", dt.date(2026, 4, 5), dt.date(2027, 1, 5), "公示中"),
        "R6": ("ndrc-2023", "严重", dt.date(2026, 8, 1), dt.date(2026, 9, 1), "已修复"),
        "R7": ("ndrc-2023", "一般", dt.date(2026, 5, 3), dt.date(2027, 2, 3), "公示中"),
        "R8": ("ndrc-2023", "一般", dt.date(2026, 5, 3), dt.date(2027, 2, 3), "公示中"),
    }
    # the 轻微 record is not published at all
    assert set(rows(lake, "penalty_publication", "decision_no")) == {"R1", "R2", "R4", "R5", "R7", "R8"}


def test_impact_lists_exactly_the_records_another_regime_changes(lake):
    to_2026 = {r["decision_no"]: r for r in regime_impact(lake, "ndrc-2026", AS_OF)}
    assert set(to_2026) == {"R5", "R6", "R7", "R8"}
    r5, r6 = to_2026["R5"], to_2026["R6"]
    assert (r5["regime"], r5["severity"], r5["publicity_status"], r5["publish_end"]) == (
        "ndrc-2023", "一般", "公示中", dt.date(2027, 1, 5))
    assert (r5["new_regime"], r5["new_severity"], r5["new_publicity_status"], r5["new_publish_end"]) == (
        "ndrc-2026", "轻微", "不予公示", dt.date(2026, 4, 5))
    assert r5["rules"][0].startswith("class 一般 → 轻微: ndrc-2026 轻微 is only 警告/通报批评 and a fine < 1 万元 "
                                     "(《信用修复管理办法》（国家发展改革委令第36号）")
    assert (r6["publicity_status"], r6["publish_end"], r6["new_publicity_status"], r6["new_publish_end"]) == (
        "已修复", dt.date(2026, 9, 1), "公示中", dt.date(2029, 2, 1))
    assert [rule.split(" (")[0] for rule in r6["rules"]] == ["严重 min_months 6 → 12"]
    to_2023 = regime_impact(lake, "ndrc-2023", AS_OF)
    assert [(r["decision_no"], r["new_severity"], r["new_publicity_status"], r["new_publish_end"])
            for r in to_2023] == [("R3", "一般", "公示中", dt.date(2027, 5, 5))]


def test_the_cli_lists_regimes_and_the_impact_masked(lake, monkeypatch):
    monkeypatch.setenv("GOVLAKE_VAR", str(lake.var))
    monkeypatch.setenv("GOVLAKE_AS_OF", AS_OF.isoformat())
    runner = CliRunner()
    listed = runner.invoke(app, ["credit", "regimes", "--json"])
    assert listed.exit_code == 0, listed.output
    regimes = json.loads(listed.output)
    assert [(r["id"], r["effective_from"], r["until"]) for r in regimes] == [
        ("ndrc-2023", "2023-05-01", "2026-03-31"), ("ndrc-2026", "2026-04-01", None)]
    assert [(c["class"], c["min_months"], c["max_months"], c["published"]) for c in regimes[1]["classes"]] == [
        ("严重", 12, 36, True), ("轻微", 0, 3, False), ("一般", 3, 12, True)]
    assert all("令第36号" in c["source"] for c in regimes[1]["classes"])

    result = runner.invoke(app, ["credit", "impact", "--regime", "ndrc-2026", "--json"])
    assert result.exit_code == 0, result.output
    shown = {r["decision_no"]: r for r in json.loads(result.output)}
    assert set(shown) == {"R5", "R6", "R7", "R8"}
    assert (shown["R7"]["subject"], shown["R8"]["subject"], shown["R7"]["uscc"]) == ("孙*", "周*", None)
    assert shown["R5"]["subject"] == "济南甲有限公司"
    terminal = runner.invoke(app, ["credit", "impact", "--regime", "ndrc-2026"])
    assert terminal.exit_code == 0 and "R7" in terminal.output
    for out in (result.output, terminal.output):
        assert "孙八" not in out and "周九" not in out and PERSON_ID not in out

    unknown = runner.invoke(app, ["credit", "impact", "--regime", "ndrc-2099"])
    assert unknown.exit_code == 1
    assert "no regime 'ndrc-2099' in credit_rules.yml (publicity.regimes has: ndrc-2023, ndrc-2026)" in unknown.output


def test_impact_before_the_credit_step_has_run_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("GOVLAKE_VAR", str(tmp_path / "var"))
    result = CliRunner().invoke(app, ["credit", "impact", "--regime", "ndrc-2026"])
    assert result.exit_code == 1
    assert "gold/theme/penalty_record does not exist yet: run the credit step first" in result.output


@pytest.mark.parametrize(("old", "new", "field", "message"), [
    ("      until: 2026-03-31", "      until: 2026-04-05", "publicity.regimes.0.until",
     "regime 'ndrc-2023' until 2026-04-05 overlaps regime 'ndrc-2026' from 2026-04-01"),
    ("      until: 2026-03-31", "      until: 2026-03-20", "publicity.regimes.0.until",
     "gap: regime 'ndrc-2023' ends 2026-03-20 but 'ndrc-2026' starts 2026-04-01"),
    ("      effective_from: 2026-04-01\n", "      effective_from: 2026-04-01\n      until: 2027-12-31\n",
     "publicity.regimes.1.until", "the last regime ('ndrc-2026') ends 2027-12-31"),
    ("      effective_from: 2026-04-01\n", "      effective_from: 2023-01-01\n",
     "publicity.regimes.1.effective_from", "2023-01-01 is not after regime 'ndrc-2023'"),
    ("  regime_date: decision_date", "  regime_date: remark", "publicity.regime_date",
     "'remark' is not a date of credit.penalty (decision_date, valid_until, publish_until, submitted_at)"),
    ("          min_months: 12\n", "          min_months: 48\n", "publicity.regimes.1.classes.严重",
     "min_months is after max_months"),
    ("          source: {article: 一般失信行为公示期3个月至1年（条号待核对）}\n", "",
     "publicity.regimes.1.classes.一般.source", "Field required"),
])
def test_a_bad_regime_file_names_the_file_line_and_field(tmp_path, old, new, field, message):
    catalog = copy_catalog(tmp_path, old, new)
    path = catalog / "credit_rules.yml"
    with pytest.raises(CatalogError) as err:
        load_credit_rules(catalog)
    problems = [re.sub(r"^.*?credit_rules\.yml:(\d+):\d+: ", r"\1: ", p) for p in err.value.problems]
    assert len(problems) == 1 and all(str(path) in p for p in err.value.problems), err.value.problems
    line, text = problems[0].split(": ", 1)
    assert text.startswith(f"{field}: ") and message in text, problems
    assert int(line) > 1


def test_a_regime_chosen_by_another_date(tmp_path):
    """publicity.regime_date: submitted_at picks the regime by the 报送时间 (the decision date without one)."""
    catalog = copy_catalog(tmp_path, "  regime_date: decision_date", "  regime_date: submitted_at")
    settings = Settings(var=tmp_path / "var", catalog_dir=catalog, as_of=AS_OF)
    put_silver(settings, "credit.penalty", [
        ee_penalty("S1", dt.date(2026, 3, 20), fine_amount=Decimal(150),
                   submitted_at=dt.datetime(2026, 4, 2, 9, 0)),
        ee_penalty("S2", dt.date(2026, 3, 20), fine_amount=Decimal(150), submitted_at=None)])
    put_silver(settings, "amr.enterprise", [])
    day = dataclasses.replace(settings, as_of=AS_OF)
    build_gold(settings=day, run_id="g")
    build_credit(settings=day, run_id="c")
    got = {no: (r["regime"], r["min_publish_end"]) for no, r in rows(settings, "penalty_record", "decision_no").items()}
    # S1 submitted 2026-04-02 → ndrc-2026 (12 months from the decision); S2 has no 报送时间 → decision date
    assert got == {"S1": ("ndrc-2026", dt.date(2027, 3, 20)), "S2": ("ndrc-2023", dt.date(2026, 9, 20))}
