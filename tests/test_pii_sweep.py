"""Personal data by default-deny: a small generated city plus injected natural persons — every
spelling of 行政相对人类别 (blank, null, padded, 个人, 自然人, unknown, a typo) and ID and mobile
numbers in every usual spelling inside free text — goes through the whole pipeline, open data, the
returns, the alerts check and the report;
then every output file is swept for the injected names, ID numbers and phone numbers.

The lake's data layers (var/lake/bronze, silver, quarantine, gold) hold the rows as sent by design:
they are the data, not an output, and are not swept. Its meta tables (ingest log, validation results,
reconciliation, KPI history) are logs and are swept like the rest.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import html
import json
import logging
import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import duckdb
import pytest
from typer.testing import CliRunner

from govlake import lineage, pipeline, storage
from govlake.alerts import check as check_alerts
from govlake.catalog import get_catalog
from govlake.cli import app
from govlake.config import Settings
from govlake.generate import generate_city, to_full_width
from govlake.identifiers import ric_check_char, uscc_check_char
from govlake.quality import decide_batch
from govlake.report import build_report

pytestmark = pytest.mark.slow


AS_OF = dt.date(2026, 11, 20)
DEPT, DEPT_USCC = "市生态环境局", "11370100MB0000007W"
COURT, COURT_USCC = "市中级人民法院", "11370100MB0000006R"


def _id(first17: str) -> str:
    return first17 + ric_check_char(first17)


def _uscc(first17: str) -> str:
    return first17 + uscc_check_char(first17)


def _id_with_x(prefix14: str) -> str:
    """A valid 18-digit 身份证号 whose check character is X."""
    for seq in range(1000):
        number = _id(f"{prefix14}{seq:03d}")
        if number.endswith("X"):
            return number
    raise AssertionError("no sequence gives X")


# Free-text spellings: (as typed into 违法事实 / 备注 / 失信情形, the number it carries).
ID_PLAIN = _id("37010219880412731")
ID_LOWER_X = _id_with_x("37010519790923")
ID_SPACED = _id("37011219900101123")
ID_HYPHENS = _id("37011319850315234")
ID_FULL_WIDTH = _id("37012419920606456")
ID_15 = "370102850315237"
ID_TEXTS = [
    (ID_PLAIN, ID_PLAIN),
    (ID_LOWER_X.lower(), ID_LOWER_X),
    (f"{ID_SPACED[:6]} {ID_SPACED[6:14]} {ID_SPACED[14:]}", ID_SPACED),
    (f"{ID_HYPHENS[:6]}-{ID_HYPHENS[6:14]}-{ID_HYPHENS[14:]}", ID_HYPHENS),
    (to_full_width(ID_FULL_WIDTH), ID_FULL_WIDTH),
    (ID_15, ID_15),
]
PHONE_TEXTS = [
    ("+86 138 1234 0001", "13812340001"),
    ("+8613912340002", "13912340002"),
    ("008613712340003", "13712340003"),
    ("138-1234-0004", "13812340004"),
    ("159 1234 0005", "15912340005"),
    (to_full_width("18612340006"), "18612340006"),
    ("(+86)188-1234-0007", "18812340007"),
    ("13612340008", "13612340008"),
]

# Natural persons as 行政相对人 of penalties: (name, 行政相对人类别 as sent, where the row ends up).
PENALTY_PERSONS = [
    ("滕鹤翔", "自然人", "silver"),
    ("钮诗韵", " 自然人 ", "silver"),
    ("糜一鸣", "个人", "silver"),
    ("宓海澜", "\u3000自然人", "silver"),
    ("隗青岚", "个体工商户", "silver"),  # a 个体工商户 named after its owner
    ("蔺雪晴", "", "quarantine"),
    ("郤子墨", "unknown", "quarantine"),
    ("阙梦蝶", "自燃人", "quarantine"),
    ("笪雨桐", "自然人", "quarantine"),  # wrong ID check character
    ("殳星河", "个人", "quarantine"),  # 罚款 without an amount
    ("逄知秋", " 自然人 ", "quarantine"),  # 罚款 without an amount
]
# 失信被执行人 (JSON lines, so 被执行人类别 can be a real null).
COURT_PERSONS = [
    ("巫马清风", None, "quarantine"),
    ("乜雪松", "unknown", "quarantine"),
    ("佘北辰", "个人", "silver"),
    ("甄晓岚", " 自然人 ", "silver"),
    ("訾云帆", "自燃人", "quarantine"),
]
LEGAL_REP = "厍怀瑾"  # an organisation's 法定代表人: always a natural person
HEADERLESS_PERSON = "亓若溪"  # a file sent without its header row
ORG_NAME = "济南笪氏环保科技有限公司"
ORG_PADDED = "济南逄记商贸有限公司"  # ' 法人及非法人组织 ' (padded) and quarantined: still an organisation

NAMES = [p[0] for p in PENALTY_PERSONS + COURT_PERSONS] + [LEGAL_REP, HEADERLESS_PERSON]


def _person_id(i: int) -> str:
    return _id(f"3701{i:02d}1970{(i % 12) + 1:02d}{(i % 27) + 1:02d}{i:03d}")


def _penalty(n: int, name: str, subject_type: str, **kw) -> dict:
    id_text, _ = ID_TEXTS[n % len(ID_TEXTS)]
    phone_text, _ = PHONE_TEXTS[n % len(PHONE_TEXTS)]
    phone_2, _ = PHONE_TEXTS[(n + 3) % len(PHONE_TEXTS)]
    row = {
        "subject_name": name, "subject_type": subject_type, "id_type": "身份证", "id_no": _person_id(n),
        "decision_no": f"济环罚〔2026〕S{n}号", "violation_type": "露天焚烧垃圾",
        "facts": f"当事人{name}（身份证号{id_text}，联系电话{phone_text}）于2026年10月在院内露天焚烧垃圾。",
        "basis": "《中华人民共和国大气污染防治法》第一百一十九条", "penalty_category": "罚款",
        "content": "罚款人民币500元", "fine_amount": "0.05", "decision_date": "2026-11-10",
        "valid_until": "2027-11-10", "publish_until": "2027-11-10", "authority": DEPT, "authority_uscc": DEPT_USCC,
        "status": "有效", "source_dept": DEPT, "source_dept_uscc": DEPT_USCC,
        "remark": f"联系人{name}，手机{phone_2}", "submitted_at": "2026-11-12 10:00:00",
    }
    return row | kw


def _penalty_rows() -> list[dict]:
    rows = []
    for n, (name, subject_type, _) in enumerate(PENALTY_PERSONS):
        kw = {}
        if subject_type == "个体工商户":
            kw = {"uscc": _uscc(f"92370102MA{n:07d}"), "id_type": "", "id_no": ""}
        if name == "笪雨桐":
            kw["id_no"] = _person_id(n)[:-1] + ("0" if _person_id(n)[-1] != "0" else "1")
        if name in ("殳星河", "逄知秋"):
            kw["fine_amount"] = ""
        rows.append(_penalty(n, name, subject_type, **kw))
    n = len(rows)
    rows.append(_penalty(n, ORG_NAME, "法人及非法人组织", id_no="", id_type="", uscc=_uscc("91370102MA3C00001"),
                         legal_rep=LEGAL_REP, legal_rep_id_type="身份证", legal_rep_id_no=_person_id(40),
                         facts=f"{ORG_NAME}（法定代表人{LEGAL_REP}，电话{PHONE_TEXTS[0][0]}）超标排放。"))
    rows.append(_penalty(n + 1, ORG_PADDED, " 法人及非法人组织 ", id_no="", id_type="", fine_amount="",
                         uscc=_uscc("91370102MA3C00002"), facts="超标排放。", remark=""))
    return rows


def _court_rows() -> list[dict]:
    rows = []
    for n, (name, subject_type, _) in enumerate(COURT_PERSONS):
        id_text, _ = ID_TEXTS[(n + 2) % len(ID_TEXTS)]
        phone_text, _ = PHONE_TEXTS[(n + 5) % len(PHONE_TEXTS)]
        rows.append({"案号": f"（2026）鲁01执S{n}号", "被执行人名称": name, "被执行人类别": subject_type,
                     "统一社会信用代码": None, "证件号码": _person_id(20 + n), "法定代表人或负责人姓名": None,
                     "执行法院": "济南市中级人民法院", "立案日期": "2026-03-02", "发布日期": "2026-06-01",
                     "失信情形": f"被执行人{name}（{id_text}，{phone_text}）有履行能力而拒不履行",
                     "履行情况": "全部未履行", "移除日期": None})
    return rows


def _write_csv(path: Path, columns: list[str], headers: list[str], rows: list[dict], *, header: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(headers)
        for r in rows:
            w.writerow([r.get(c, "") for c in columns])


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("pii")
    settings = Settings(var=root / "var", inbox=root / "inbox", as_of=AS_OF)
    catalog = get_catalog(settings.catalog_dir)
    generate_city(settings.city, scale=300, seed=7, as_of=AS_OF)
    penalty = catalog.resource("credit.penalty")
    columns = [i.column for i in penalty.items]
    _write_csv(settings.city / "credit/penalty/sweep_20261120.csv", columns, [i.name for i in penalty.items],
               _penalty_rows())
    headerless = root / "elsewhere" / "noheader_20261120.csv"
    _write_csv(headerless, columns, [], [_penalty(90, HEADERLESS_PERSON, "自然人")],
               header=False)
    court = settings.city / "court/sweep_20261120.jsonl"
    court.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _court_rows()), encoding="utf-8")

    handler = _Records()
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.INFO)
    try:
        for code in catalog.resources:
            pipeline.ingest(code, settings=settings)
        # A file sent without its header row: rejected, and the error names the file, not the row.
        cli = CliRunner().invoke(
            app, ["ingest", "credit.penalty", "--file", str(headerless), "--no-run"],
            env={"GOVLAKE_VAR": str(settings.var), "GOVLAKE_INBOX": str(settings.city),
                 "GOVLAKE_AS_OF": AS_OF.isoformat()})
        first = pipeline.run(settings=settings, run_id="sweep-1")
        # the injected files are mostly bad rows, so they are held; released, they are published
        held = [h for r in first["resources"].values() for h in r.held_batches]
        assert {Path(h.source).name for h in held} >= {"sweep_20261120.csv", "sweep_20261120.jsonl"}
        for h in held:
            decide_batch(settings, h.batch_id, decision="released", reason="sweep test", by="sweep",
                         run_id="sweep-release")
        pipeline.run(settings=settings, run_id="sweep-2")
        pipeline.open_data(settings=settings, run_id="sweep-open")
        pipeline.returns(settings=settings, run_id="sweep-return")   # 回流 files and 整改清单
        check_alerts(settings, run_id="sweep-alerts")                 # alert texts and their evidence
        build_report(settings, pdf=False)
    finally:
        root_logger.removeHandler(handler)
        root_logger.setLevel(level)
    return {"settings": settings, "logs": handler.lines, "cli": cli}


# ---- reading every output ---------------------------------------------------------------------


def _fold(text: str) -> str:
    """NFKC, separators inside numbers removed, upper case: every injected spelling of a number
    becomes its digits."""
    return re.sub(r"[\s\-()+]", "", unicodedata.normalize("NFKC", text)).upper()


def _decoded(text: str, suffix: str) -> str:
    """The text, plus the text behind its escapes (JSON \\u, HTML entities, %-encoding)."""
    parts = [text, html.unescape(text), unquote(text)]
    if suffix in (".json", ".jsonl"):
        for line in text.splitlines() if suffix == ".jsonl" else [text]:
            with contextlib.suppress(json.JSONDecodeError):
                parts.append(json.dumps(json.loads(line), ensure_ascii=False))
    return "\n".join(parts)


def _duckdb_text(path: Path) -> str:
    with duckdb.connect(str(path), read_only=True) as con:
        parts = [str(r) for r in con.execute(
            "select table_name, comment from duckdb_tables() union all "
            "select table_name || '.' || column_name, comment from duckdb_columns()").fetchall()]
        for (table,) in con.execute("select table_name from duckdb_tables()").fetchall():
            parts += [str(r) for r in con.execute(f'select * from "{table}"').fetchall()]
    return "\n".join(parts)


def _outputs(settings: Settings) -> dict[str, str]:
    """Every file under GOVLAKE_VAR except the lake's data layers, as text; the lake's meta tables."""
    out = {}
    data_layers = [settings.layer(layer) for layer in ("bronze", "silver", "quarantine", "gold")]
    for path in sorted(p for p in settings.var.rglob("*") if p.is_file()):
        if any(path.is_relative_to(layer) for layer in data_layers) or path.is_relative_to(settings.layer("meta")):
            continue
        if path.suffix == ".duckdb":
            out[str(path)] = _duckdb_text(path)
        else:
            out[str(path)] = _decoded(path.read_bytes().decode("utf-8", errors="replace"), path.suffix)
    meta = settings.layer("meta")
    for table in sorted(p for p in meta.iterdir() if p.is_dir()) if meta.is_dir() else []:
        rows = storage.open_table(table).to_pyarrow_table().to_pylist()
        out[f"lake/meta/{table.name}"] = "\n".join(json.dumps(r, ensure_ascii=False, default=str) for r in rows)
    return out


def _leaks(texts: dict[str, str]) -> list[str]:
    found = []
    numbers = {number for _, number in ID_TEXTS + PHONE_TEXTS} | {_person_id(i) for i in range(100)}
    for where, text in texts.items():
        folded = _fold(text)
        found += [f"{where}: name {n}" for n in NAMES if n in text or n in folded]
        found += [f"{where}: number {n}" for n in sorted(numbers) if n in folded]
    return found


# ---- the sweep --------------------------------------------------------------------------------


def test_the_injected_rows_went_where_intended(city):
    """The sweep is only worth something if the persons reached silver, quarantine, gold and the report."""
    settings = city["settings"]
    con = storage.connect(settings)
    for layer in ("silver", "quarantine"):
        for slug in ("credit_penalty", "court_dishonest"):
            storage.register(con, f"{layer}_{slug}", storage.table_path(settings, layer, slug))
    got = {n: "silver" for (n,) in con.execute(
        "select subject_name from silver_credit_penalty union all select subject_name from silver_court_dishonest"
    ).fetchall()} | {n: "quarantine" for (n,) in con.execute(
        "select subject_name from quarantine_credit_penalty union all "
        "select subject_name from quarantine_court_dishonest").fetchall()}
    assert {n: got.get(n) for n, _, _ in PENALTY_PERSONS + COURT_PERSONS} == {
        n: where for n, _, where in PENALTY_PERSONS + COURT_PERSONS}
    assert got.get(ORG_PADDED) == "quarantine"
    sweep = [p for p in (settings.reports / "quality").rglob("*.html") if "sweep_20261120.csv" in p.read_text()]
    assert sweep, "no report page shows a sample row of the injected file"


def test_the_headerless_file_is_rejected_with_a_clear_error(city):
    cli = city["cli"]
    assert cli.exit_code == 1
    assert "noheader_20261120.csv" in cli.output and "Traceback" not in cli.output
    assert "is the header row missing?" in cli.output
    assert not _leaks({"cli output": cli.output})


def test_no_personal_value_in_any_output(city):
    settings = city["settings"]
    texts = _outputs(settings)
    assert any(p.endswith("analyst.duckdb") for p in texts)
    assert any("/reports/gx/" in p for p in texts)
    assert any(p.endswith(".jsonl") and "/lineage/" in p for p in texts)
    assert any(p.endswith(".csv") and "/reports/quality/" in p for p in texts)
    assert any("/open/" in p and p.endswith("/data.csv") for p in texts)  # open data (docs/open-data.md)
    assert any("/returns/" in p and p.endswith(".duckdb") for p in texts)  # 回流 (docs/returns.md)
    assert texts.get("lake/meta/alerts") and texts.get("lake/meta/returns_log")  # alerts (docs/alerts.md)
    texts["logs"] = "\n".join(city["logs"])
    assert _leaks(texts) == []


def test_organisations_stay_public(city):
    """Default-deny is not deny-all: an organisation's name is released, also with a padded category."""
    settings = city["settings"]
    with duckdb.connect(str(settings.extracts / "analyst.duckdb"), read_only=True) as con:
        names = {n for (n,) in con.execute("select subject_name from penalty_publication").fetchall()}
    assert ORG_NAME in names
    assert any(ORG_PADDED in p.read_text() for p in (settings.reports / "quality").rglob("*.html"))


# ---- without the city ---------------------------------------------------------------------------


def test_a_failing_jobs_lineage_event_carries_no_row_values(tmp_path):
    """The FAIL event's message is scrubbed, and the exceptions it was raised from (a library's
    message quoting a row) are left out of the stack trace."""
    settings = Settings(var=tmp_path / "var")
    plan = lineage.JobPlan(name="t", description="t")
    with lineage.capture() as events, pytest.raises(ValueError), \
            lineage.job_run(plan, settings=settings, run_id="r-1"):
        try:
            raise KeyError(f"row 3: {NAMES[0]},自然人,{ID_PLAIN}")
        except KeyError as exc:
            raise ValueError(f"bad value {ID_TEXTS[2][0]}, tel {PHONE_TEXTS[3][0]}") from exc
    error = events[-1]["run"]["facets"]["errorMessage"]
    assert error["message"] == f"ValueError: bad value {ID_SPACED[:6]}********{ID_SPACED[-4:]}, tel 138****0004"
    assert error["stackTrace"].endswith(error["message"] + "\n") and "test_pii_sweep.py" in error["stackTrace"]
    assert not _leaks({"event": json.dumps(events, ensure_ascii=False)})
