"""Masking rules (docs/domain.md, "Classification and masking"): Python and SQL give the same answers."""

from __future__ import annotations

import sys
import unicodedata

import duckdb
import pytest

from govlake.catalog import Item, get_catalog
from govlake.masking import (
    is_personal,
    is_public,
    is_released,
    mask_address,
    mask_id_number,
    mask_note,
    mask_person_name,
    mask_phone,
    mask_sql,
    mask_value,
    scrub_sql,
    scrub_text,
)

ID = "370102199003071238"


def item(pii: str | None, level: str = "L3", **kw) -> Item:
    return Item(column="x", name="x", name_en="x", pii=pii, level=level, **kw)


def run_sql(expr: str, rows: list[dict]) -> list:
    """Evaluate ``expr`` over ``rows`` (columns from the dicts, all strings) in DuckDB."""
    con = duckdb.connect()
    columns = sorted({k for r in rows for k in r})
    con.execute("create table t (i integer, " + ", ".join(f"{c} varchar" for c in columns) + ")")
    for i, r in enumerate(rows):
        con.execute(f"insert into t values (?, {', '.join('?' for _ in columns)})",
                    [i, *(r.get(c) for c in columns)])
    return [v for (v,) in con.execute(f"select {expr} from t order by i").fetchall()]


def test_id_number_keeps_6_and_4():
    assert mask_id_number(ID) == "370102********1238"
    assert mask_id_number("37010219900307X") == "370102********307X"  # legacy 15 digits
    assert mask_id_number("E12345678") == "*********"  # passport: nothing kept
    assert mask_id_number("1234567890") == "**********"  # 6 + 4 would show every character
    assert mask_id_number(None) is None


def test_phone_keeps_3_and_4():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("88886666") == "********"
    assert mask_phone(None) is None


def test_person_name_keeps_the_surname():
    assert mask_person_name("张三") == "张*"
    assert mask_person_name("张三丰") == "张*"
    assert mask_person_name("欧阳修") == "欧*"
    assert mask_person_name(None) is None


@pytest.mark.parametrize(("address", "masked"), [
    ("山东省济南市历下区泉城路1号", "山东省济南市历下区****"),
    ("济南市市中区经四路12号", "济南市市中区****"),
    ("北京市朝阳区建国路88号", "北京市朝阳区****"),
    ("广西壮族自治区南宁市青秀区民族大道100号", "广西壮族自治区南宁市青秀区****"),
    ("吉林省延边朝鲜族自治州延吉市光明街", "吉林省延边朝鲜族自治州延吉市****"),
    ("平阴县榆山街道", "平阴县****"),
    ("济南市泉城路100号阳光小区3号楼", "济南市****"),  # no district: the street is not kept
    ("泉城路12号金鼎市场", "****"),
])
def test_address_keeps_the_divisions(address, masked):
    assert mask_address(address) == masked


@pytest.mark.parametrize(("pii", "values"), [
    ("id_number", [ID, "37010219900307X", "E12345678", "1234567890", "", None]),
    ("phone", ["13812345678", "+8613812345678", "88886666", None]),
    ("person_name", ["张三", "欧阳修", "张", "", None]),
    ("address", ["山东省济南市历下区泉城路1号", "济南市市中区经四路12号", "泉城路12号", "", None]),
    ("bank_account", ["6222020200112233445", "12345", None]),
    ("health", ["高血压", None]),
])
def test_sql_masks_like_python(pii, values):
    it = item(pii)
    expected = [mask_value(it, v) for v in values]
    assert run_sql(mask_sql(it, "x"), [{"x": v} for v in values]) == expected


PUBLIC = ["法人及非法人组织", "法人", "非法人组织", "法人和非法人组织", " 法人及非法人组织 ", "\u3000法人\u3000",
          "\t法人及非法人组织\n", "法⼈", "\xa0非法⼈组织"]  # ⼈ is the Kangxi radical U+2F08: NFKC gives 人
PERSONAL = [None, "", " ", "自然人", " 自然人 ", "个人", "个体工商户", "unknown", "自燃人", "法人代表", "法 人",
            "法人及非法人组织X", "NULL", "其他"]


def test_only_a_row_positively_about_an_organisation_is_unmasked():
    """Default-deny: 行政相对人名称 is released only when 行政相对人类别 is, normalised, one of the
    organisation values; blank, null, 个人, 自然人, 个体工商户, unknown values and typos are masked."""
    subject_name = get_catalog().resource("credit.penalty").item("subject_name")
    rows = ([{"subject_name": "济南甲有限公司", "subject_type": t} for t in PUBLIC]
            + [{"subject_name": "张三丰", "subject_type": t} for t in PERSONAL] + [{"subject_name": "李四"}])
    expected = ["济南甲有限公司"] * len(PUBLIC) + ["张*"] * len(PERSONAL) + ["李*"]
    assert [mask_value(subject_name, r["subject_name"], r) for r in rows] == expected
    assert run_sql(mask_sql(subject_name, "subject_name"),
                   [{"subject_type": None} | r for r in rows]) == expected
    assert [is_personal(subject_name, r) for r in rows] == [e != "济南甲有限公司" for e in expected]
    assert mask_value(subject_name, "济南甲有限公司") == "济*"  # no row: not known to be public


def _variants(value: str) -> list[str]:
    """``value`` with each character replaced by each character NFKC folds into it, and padded."""
    from govlake.masking import WHITESPACE, _nfkc_sources

    sources = _nfkc_sources()
    out = [value, *(w + value + w for w in WHITESPACE)]
    for i, char in enumerate(value):
        out += [value[:i] + s + value[i + 1:] for s in sources.get(char, ())]
    return out


def test_every_character_nfkc_changes_lies_in_the_planes_walked():
    """masking._nfkc_sources walks only NFKC_PLANES: every other code point is one NFKC leaves as it is, under the
    Unicode database of the running Python (a later one assigning such a character elsewhere fails here)."""
    import sys
    import unicodedata

    from govlake.masking import NFKC_PLANES, _nfkc_sources

    walked = [(p.start, p.stop) for p in NFKC_PLANES]
    changed = [code for code in range(sys.maxunicode + 1)
               if not any(lo <= code < hi for lo, hi in walked) and not 0xD800 <= code <= 0xDFFF
               and not unicodedata.is_normalized("NFKC", chr(code))]
    assert changed == []
    assert sum(len(v) for v in _nfkc_sources().values()) > 4_000  # the planes walked hold them: ＡＢＣ, ①, ㈱ …


def test_sql_normalises_categories_like_python():
    """One definition: the SQL folding and trimming agrees with NFKC + strip on every variant."""
    from govlake.masking import WHITESPACE, normalise_category, public_sql

    subject_name = get_catalog().resource("credit.penalty").item("subject_name")
    values = [v for base in subject_name.public_when["subject_type"] for v in _variants(base)]
    values += ["⼈", "自然⼈", "法人 ", "ﾎｳｼﾞﾝ", "法人\u200b", *PERSONAL[1:]]
    assert sum(1 for v in values if normalise_category(v) == "法人") > 30
    rows = [{"subject_type": v} for v in values] + [{"subject_type": None}]
    assert run_sql(public_sql(subject_name), rows) == [is_public(subject_name, r) for r in rows]
    # WHITESPACE is what str.strip removes, and NFKC turns no other character into whitespace, so
    # trimming before folding is the same as after.
    every = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    assert "".join(c for c in every if c.isspace()) == WHITESPACE
    assert "".join(c for c in every if unicodedata.normalize("NFKC", c).isspace()) == WHITESPACE


def test_catalog_public_conditions_name_the_resources_columns():
    for res in get_catalog().resources.values():
        columns = {i.column for i in res.items}
        for it in res.items:
            if it.public_when:
                assert it.pii, f"{res.code}.{it.column}: public_when without pii"
                assert set(it.public_when) <= columns, f"{res.code}.{it.column}"
                assert "自然人" not in str(it.public_when) and "个体工商户" not in str(it.public_when)


def test_mask_note_states_the_rule():
    subject_name = get_catalog().resource("credit.penalty").item("subject_name")
    assert mask_note(subject_name) == ("masked: person_name unless subject_type is "
                                       "法人 / 法人及非法人组织 / 法人和非法人组织 / 非法人组织")
    assert mask_note(item("phone")) == "masked: phone"
    assert mask_note(item(None)) is None


def test_l4_without_a_mask_is_not_released():
    secret = item(None, level="L4")
    assert not is_released(secret)
    assert is_released(item("id_number", level="L4"))
    with pytest.raises(ValueError, match="not released"):
        mask_sql(secret, "x")
    with pytest.raises(ValueError, match="not released"):
        mask_value(secret, "x")


def test_items_without_pii_pass_through():
    plain = item(None, level="L2")
    assert mask_sql(plain, "x") == "x"
    assert mask_value(plain, "男") == "男"


def test_catalog_personal_items_have_masks():
    for res in get_catalog().resources.values():
        for it in res.items:
            if it.pii:
                assert mask_value(it, "370102199003071238", {}) != "370102199003071238"


def test_free_text_is_scrubbed():
    text = f"当事人孙八（身份证号{ID}，电话13812345678）露天焚烧垃圾，文号济环罚〔2024〕4号"
    expected = "当事人孙八（身份证号370102********1238，电话138****5678）露天焚烧垃圾，文号济环罚〔2024〕4号"
    assert scrub_text(text) == expected
    assert run_sql(scrub_sql("x"), [{"x": text}, {"x": None}]) == [expected, None]


@pytest.mark.parametrize(("typed", "masked"), [
    ("身份证37010219900307123x。", "身份证370102********123x。"),  # lower-case check character
    ("370102 19900307 1238", "370102********1238"),
    ("370102-19900307-1238", "370102********1238"),
    ("3701 0219 9003 0712 38", "3701 02********12 38"),
    ("３７０１０２１９９００３０７１２３８", "３７０１０２********１２３８"),  # full-width digits
    ("３７０１０２１９９００３０７１２３Ｘ", "３７０１０２********１２３Ｘ"),
    ("旧证370102900307123号", "旧证370102********123号"),  # legacy 15 digits
    ("370102 900307 123", "370102********123"),
    ("电话+8613812345678", "电话+86138****5678"),
    ("电话+86 138 1234 5678", "电话+86 138****5678"),
    ("电话008613812345678", "电话0086138****5678"),
    ("138-1234-5678", "138****5678"),
    ("（+86）188－1234－5678", "（+86）188****5678"),
    ("１３８１２３４５６７８", "１３８****５６７８"),
    ("两个：13812345678、13912345678", "两个：138****5678、139****5678"),
    ("罚款3900元，2024年5月9日", "罚款3900元，2024年5月9日"),  # amounts and dates stay
    ("济环罚〔2024〕4号，2024-05-09 14:34:28", "济环罚〔2024〕4号，2024-05-09 14:34:28"),
    ("座机0531-88886666", "座机0531-88886666"),  # landlines are not required
])
def test_free_text_variants_are_scrubbed(typed, masked):
    assert scrub_text(typed) == masked
    assert run_sql(scrub_sql("x"), [{"x": typed}]) == [masked]


def test_the_eleven_digit_search_skips_only_text_the_patterns_leave_as_it_is():
    """Text without eleven digits in a row (at most one separator between two) is not searched for the three
    patterns: on text built of digits, full-width digits, separators and letters around the 10/11-digit edge, the
    scrub with the search gives what the patterns alone give, in Python and in SQL."""
    import random
    import re

    from govlake.masking import _TEXT_PATTERNS

    def unfiltered(text: str) -> str:
        for pattern, replacement in _TEXT_PATTERNS:
            text = re.sub(pattern, replacement, text)
        return text

    rng = random.Random(7)
    alphabet = list("0123456789" * 3 + "１３８９Xx") + [" ", "-", "－", "\u3000", "  ", "号", "a", "，"]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(8, 40))) for _ in range(3_000)]
    texts += ["1381234567", "13812345678", "138 1234 567", "138 1234 5678", "370102199003071238", "37010290030712"]
    expected = [unfiltered(t) for t in texts]
    assert sum(e != t for e, t in zip(expected, texts)) > 100  # the cases hold matches as well as near misses
    assert [scrub_text(t) for t in texts] == expected
    assert run_sql(scrub_sql("x"), [{"x": t} for t in texts]) == expected


def test_a_rows_own_person_names_are_scrubbed_from_its_free_text():
    import duckdb

    from govlake.catalog import get_catalog
    from govlake.masking import name_items, scrub_names, scrub_names_sql

    res = get_catalog().resource("credit.penalty")
    names = name_items(res.items)
    assert {i.column for i in names} == {"subject_name", "legal_rep"}
    rows = [
        {"subject_type": "自然人", "subject_name": "孙八", "legal_rep": None, "facts": "当事人孙八在孙八家门口焚烧"},
        {"subject_type": "法人及非法人组织", "subject_name": "济南甲有限公司", "legal_rep": "张三",
         "facts": "济南甲有限公司（法定代表人张三）超标排放"},
        {"subject_type": "自然人", "subject_name": "李", "legal_rep": None, "facts": "李某"},   # one character: kept
    ]
    expected = ["当事人孙*在孙*家门口焚烧", "济南甲有限公司（法定代表人张*）超标排放", "李某"]
    assert [scrub_names(r["facts"], r, names) for r in rows] == expected
    con = duckdb.connect()
    con.execute("create table t (subject_type varchar, subject_name varchar, legal_rep varchar, facts varchar)")
    con.executemany("insert into t values (?, ?, ?, ?)", [list(r.values()) for r in rows])
    assert [r[0] for r in con.execute(f"select {scrub_names_sql('facts', names)} from t").fetchall()] == expected


def test_an_organisation_s_name_holding_an_id_or_mobile_number_is_released_scrubbed():
    """A name left unmasked because the row says 法人及非法人组织 may still hold a person's 身份证号 or mobile number
    (a department's 张三 + ID in the name column): released, it is scrubbed as free text is, whatever the category;
    a person's name is masked as before."""
    from govlake.masking import release_item_sql

    subject_name = get_catalog().resource("credit.penalty").item("subject_name")
    rows = [{"subject_name": "张三110101199003077777", "subject_type": "法人及非法人组织"},
            {"subject_name": "济南甲有限公司13812345678", "subject_type": "法人"},
            {"subject_name": "济南甲有限公司", "subject_type": "法人"},
            {"subject_name": "张三110101199003077777", "subject_type": "自然人"}]
    released = run_sql(release_item_sql(subject_name, "subject_name"), rows)
    assert released == [scrub_text(rows[0]["subject_name"]), scrub_text(rows[1]["subject_name"]), "济南甲有限公司",
                        "张*"]
    assert "110101199003077777" not in "".join(released) and "13812345678" not in "".join(released)
