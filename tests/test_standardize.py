"""The standardize model: raw text in, typed and cleaned values out (input and expected rows)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest

from govlake.catalog import get_catalog
from govlake.transform import DUCKDB, StagingRenderer


def _run(settings, code: str, rows: list[dict]) -> list[dict]:
    catalog = get_catalog(settings.catalog_dir)
    res = catalog.resource(code)
    cols = {i.column: pa.array([r.get(i.column) for r in rows], pa.string()) for i in res.items}
    n = len(rows)
    for meta in ("_parse_error", "_source", "_batch_id"):
        cols[meta] = pa.array([None] * n, pa.string())
    cols["_row_number"] = pa.array(range(1, n + 1), pa.int64())
    cols["_received_at"] = pa.array([None] * n, pa.timestamp("us", tz="UTC"))
    con = duckdb.connect()
    con.register(f"bronze_{res.slug}", pa.table(cols))
    deps = list(catalog.departments.values())
    con.register("ref_department", pa.table({"code": [d.code for d in deps], "uscc": [d.uscc for d in deps]}))
    sql = StagingRenderer(catalog, DUCKDB, settings).render(res)
    return con.sql(sql).to_arrow_table().to_pylist()


@pytest.mark.parametrize("raw, expected", [
    ("2026-10-09", dt.date(2026, 10, 9)),
    ("2026/10/09", dt.date(2026, 10, 9)),
    ("2026年10月9日", dt.date(2026, 10, 9)),
    ("20261009", dt.date(2026, 10, 9)),
    ("46304", dt.date(2026, 10, 9)),          # Excel serial
    ("46304.0", dt.date(2026, 10, 9)),
    ("２０２６－１０－０９", dt.date(2026, 10, 9)),  # full-width
    (" 2026-10-09 00:00:00 ", dt.date(2026, 10, 9)),
    ("2099/12/31", dt.date(2099, 12, 31)),    # long-term
    ("2026-02-30", None),
    ("昨天", None),
])
def test_dates_in_every_format(settings, raw, expected):
    out = _run(settings, "credit.penalty", [{"decision_date": raw}])
    assert out[0]["decision_date"] == expected


def test_identifiers_codes_and_numbers(settings):
    rows = [{
        "uscc": " ９１３７０１００ＭＡ３Ｃ００００ＸＸ ", "subject_type": "法人", "status": "1",
        "penalty_category": "罚款、吊销营业执照", "fine_amount": "1,200.5", "id_no": "x",
        "source_dept_uscc": "11370100MB0000001A", "decision_no": "济市监罚〔２０２６〕１号",
    }, {
        "subject_type": "个人", "status": "撤销", "penalty_category": "警告；罚没",
        "source_dept_uscc": "unknown",
    }]
    a, b = _run(settings, "credit.penalty", rows)
    assert a["uscc"] == "91370100MA3C0000XX"
    assert a["subject_type"] == "法人及非法人组织" and b["subject_type"] == "自然人"
    assert a["status"] == "有效" and b["status"] == "无效"
    assert a["penalty_category"] == "罚款;吊销许可证件"   # canonical order, synonyms mapped
    assert b["penalty_category"] == "警告"               # unknown 罚没 dropped here, flagged by its rule
    assert a["fine_amount"] == Decimal("1200.5")
    assert a["decision_no"] == "济市监罚〔2026〕1号"      # business key made half-width
    assert a["_dept"] == "amr" and b["_dept"] is None
    assert a["facts"] is None                          # empty stays null, never ''


def test_population_id_upgrade_phone_and_sex(settings):
    rows = [{"id_number": "110105491231002", "mobile": "+86 138-0013-8000", "sex": "2", "name": " 张三 "},
            {"id_number": "11010519491231002x", "mobile": "13800138000", "sex": "男", "name": "李四"}]
    a, b = _run(settings, "psb.population", rows)
    assert a["id_number"] == "11010519491231002X" and b["id_number"] == "11010519491231002X"
    assert a["mobile"] == "13800138000" == b["mobile"]
    assert a["sex"] == "女" and a["name"] == "张三"


def test_integers_and_timestamps(settings):
    rows = [{"insured_count": "12", "period": "202610"}, {"insured_count": "12.0"}, {"insured_count": "12.5"}]
    out = _run(settings, "hrss.social_insurance", rows)
    assert [r["insured_count"] for r in out] == [12, 12, None]
    amr = _run(settings, "amr.enterprise", [{"updated_at": "2026/11/20 08:30:00"}, {"updated_at": "2026-11-20"}])
    assert amr[0]["updated_at"] == dt.datetime(2026, 11, 20, 8, 30)
    assert amr[1]["updated_at"] == dt.datetime(2026, 11, 20)


def test_full_width_natural_person_id_is_normalized(settings):
    rows = [{"subject_type": "自然人", "id_type": "身份证", "id_no": "１１０１０５１９４９１２３１００２ｘ"}]
    (a,) = _run(settings, "credit.penalty", rows)
    assert a["id_no"] == "11010519491231002X"


def test_synonyms_with_full_width_punctuation_still_map(settings):
    (a,) = _run(settings, "amr.enterprise", [{"status": "存续（在营、开业、在册）"}])
    assert a["status"] == "存续"


_EDGE_CASES = ["", " ", "\u3000\t\r\n", "无空白", " 前", "后\u3000", "\t两端\n", "中 间\u3000空白",
               "\r\n 多个 \u3000\u3000", "ＡＢ１２", " ＡＢ１２\u3000", "\u3000Ａ Ｂ", "A\u3000B", "x\t", "AB12", " é ",
               "Ａ", "中文Ｘ", "é", "\n开头", "\r开头", "\x0b不是空白", "\x0c", None]


def test_whitespace_is_trimmed_at_both_ends_only(settings):
    """Every value trimmed of the whitespace (ideographic space included) at its ends and nothing else, with and
    without the full-width folding: the SQL skips trim() and translate() for values that need neither."""
    from govlake.transform._dialect import WHITESPACE
    from govlake.transform._staging import half_width

    out = _run(settings, "credit.penalty", [{"facts": v, "decision_no": v} for v in _EDGE_CASES])
    assert [r["facts"] for r in out] == [(v.strip(WHITESPACE) or None) if v is not None else None
                                         for v in _EDGE_CASES]
    assert [r["decision_no"] for r in out] == [(half_width(v).strip(WHITESPACE) or None) if v is not None else None
                                               for v in _EDGE_CASES]


def test_code_list_values_are_compared_before_they_are_trimmed(settings):
    """A code list's own spellings are taken as they are; any other value (blanks at an end, full-width forms,
    unknown words) is still trimmed, folded and mapped."""
    raw = ["自然人", " 自然人", "自然人\u3000", "个人", " 个人 ", "法人及非法人组织", "", "\u3000", None, "企业",
           "企业 ", "个体户", "个体户\t"]
    out = _run(settings, "credit.penalty", [{"subject_type": v} for v in raw])
    assert [r["subject_type"] for r in out] == ["自然人", "自然人", "自然人", "自然人", "自然人", "法人及非法人组织",
                                                None, None, None, "企业", "企业", "个体工商户", "个体工商户"]


@pytest.mark.parametrize("uscc, fine, expected_uscc, expected_fine", [
    ("91370100MA3C0000XX", "1200.5", "91370100MA3C0000XX", Decimal("1200.5")),
    ("91370100ma3c0000xx", "1,200.5", "91370100MA3C0000XX", Decimal("1200.5")),
    ("9137 0100 MA3C 0000XX", "1 200", "91370100MA3C0000XX", Decimal("1200")),
    (" 9137０100ma3c 0000xx\u3000", "１,２００ ", "91370100MA3C0000XX", Decimal("1200")),
    ("  ", ", ", None, None),
])
def test_identifiers_and_numbers_lose_their_blanks_and_separators(settings, uscc, fine, expected_uscc, expected_fine):
    """Blanks inside an identifier and thousands separators or blanks inside a number are removed, and an
    identifier is upper-cased, whether or not the value holds any (the SQL rewrites only those that do)."""
    (a,) = _run(settings, "credit.penalty", [{"uscc": uscc, "fine_amount": fine}])
    assert (a["uscc"], a["fine_amount"]) == (expected_uscc, expected_fine)


@pytest.mark.parametrize("raw, expected", [
    ("罚款", "罚款"), ("吊销营业执照", "吊销许可证件"), (" 拘留 ", "行政拘留"), ("处理", None), ("罚款；罚款", "罚款"),
    ("罚款、警告", "警告;罚款"), ("罚款，处理", "罚款"), ("；", None), (None, None),
])
def test_multi_values_one_spelling_or_several(settings, raw, expected):
    """A multi-value item's canonical values in code-list order: a value of one spelling is looked up whole, the
    others token by token; unknown tokens are dropped (the code-list rule reports them)."""
    (a,) = _run(settings, "credit.penalty", [{"penalty_category": raw}])
    assert a["penalty_category"] == expected
