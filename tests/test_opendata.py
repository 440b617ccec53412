"""Open data (`govlake open`): k-anonymous, de-identified datasets with DCAT metadata, from a small lake."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
import rdflib
import rdflib.namespace as ns

from govlake import storage
from govlake.catalog import CatalogError
from govlake.config import Settings
from govlake.credit import build_credit
from govlake.gold import build_gold
from govlake.opendata import CATALOG_FILE, META_TABLE, OpenConfig, load_config, publish_open_data
from govlake.opendata._config import DatasetSpec
from test_gold import LICENSES, MOBILE, PERSON_ID, _penalty, id_number, uscc, write_silver

ID_RE = re.compile(r"[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]")
MOBILE_RE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
AS_OF = dt.date(2024, 5, 6)
SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平"


def person_name(n: int) -> str:
    return SURNAMES[n % len(SURNAMES)] + GIVEN[n % len(GIVEN)] + GIVEN[(n * 7 + 3) % len(GIVEN)]


# 80 enterprises: 4 districts of one city, a few industries, established over 2015–2022, capital 1–5000 万元
ENTERPRISES = [
    {"uscc": uscc(1000 + n), "name": f"济南{n}号有限公司", "legal_rep": person_name(n),
     "legal_rep_id": id_number(f"19{70 + n % 25:02d}0{1 + n % 9}1{n % 10}", f"{n % 1000:03d}"),
     "reg_capital": Decimal(1 + (n * 37) % 5000), "established": dt.date(2015 + n % 8, 1 + n % 12, 1 + n % 28),
     "reg_authority": "济南市市场监督管理局", "address": f"山东省济南市历下区某路{n}号",
     "region_code": ("370102", "370103", "370104", "370105")[n % 4],
     "industry_code": ("F5211", "F5212", "I6510", "C1311")[n % 4 if n % 5 else 0], "status": "存续",
     "updated_at": dt.datetime(2024, 5, 1, 9, 0)}
    for n in range(80)
]
# 40 penalties in their publicity period, half of them of natural persons, named in the facts with ID and mobile
PENALTIES = [
    _penalty(f"济环罚〔2024〕{n}号", fine_amount=Decimal((2, 5, 20)[n % 3]), decision_date=dt.date(2024, 3 + n % 2, 5),
             **({"subject_name": person_name(100 + n), "subject_type": "自然人", "uscc": None, "legal_rep": None,
                 "legal_rep_id_type": None, "legal_rep_id_no": None, "id_type": "身份证",
                 "id_no": id_number("19880101", f"{n:03d}"),
                 "facts": f"当事人{person_name(100 + n)}（身份证号{PERSON_ID}，电话{MOBILE}）露天焚烧垃圾"}
                if n % 2 else {"uscc": uscc(2000 + n), "subject_name": f"济南{n}号商贸有限公司",
                               "legal_rep": person_name(200 + n)}))
    for n in range(40)
]
POPULATION = [{"id_number": id_number("19900101", f"{n:03d}"), "name": person_name(300 + n), "sex": "男",
               "birth_date": dt.date(1990, 1, 1), "hukou_region": "370102", "mobile": f"1381234{n:04d}"}
              for n in range(30)]

CONFIG = OpenConfig(k=5, max_suppression=0.1, datasets=[
    DatasetSpec(resource="amr.enterprise", approved="市市场监管局2024年第3号开放审批",
                columns=["region_code", "industry_code", "status", "established", "reg_capital", "reg_authority"]),
    DatasetSpec(resource="credit.penalty", source="gold/penalty_publication",
                columns=["subject_type", "authority", "authority_uscc", "penalty_category", "fine_amount",
                         "decision_date", "facts", "severity", "publish_end"],
                identifiers=["authority_uscc"], quasi_identifiers={"authority": "category", "publish_end": "date"}),
    # 不予开放: listed, with an approval even, and still never opened
    DatasetSpec(resource="psb.population", approved="no approval can open it", columns=["sex", "hukou_region"]),
])


@pytest.fixture
def lake(tmp_path) -> Settings:
    settings = Settings(var=tmp_path / "var", as_of=AS_OF)
    write_silver(settings, "amr.enterprise", ENTERPRISES)
    write_silver(settings, "credit.penalty", PENALTIES)
    write_silver(settings, "credit.license", LICENSES)
    write_silver(settings, "psb.population", POPULATION)
    for code in ("tax.credit_rating", "hrss.social_insurance"):
        write_silver(settings, code, [])
    build_gold(settings=settings, run_id="run-1")
    build_credit(settings=settings, run_id="run-1")
    return settings


@pytest.fixture
def published(lake):
    return lake, publish_open_data(settings=lake, run_id="open-1", config=CONFIG)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM (Excel)
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    return list(rows[0]) if rows else [], rows


def test_every_quasi_identifier_combination_appears_at_least_k_times(published):
    settings, result = published
    by_name = {d.dataset: d for d in result.datasets}
    assert {n: d.status for n, d in by_name.items()} == {"amr_enterprise": "published", "credit_penalty": "published"}
    for name, qis in (("amr_enterprise", ["region_code", "industry_code", "status", "established", "reg_capital"]),
                      ("credit_penalty", ["subject_type", "authority", "penalty_category", "fine_amount",
                                          "decision_date", "publish_end"])):
        header, rows = read_csv(settings.open_data / name / "data.csv")
        assert rows and set(qis) <= set(header)
        assert sorted(by_name[name].quasi_identifiers) == sorted(qis)
        cells = Counter(tuple(r[q] for q in qis) for r in rows)
        assert min(cells.values()) >= 5, cells
        records = json.loads((settings.open_data / name / "data.json").read_text(encoding="utf-8"))
        assert Counter(tuple(r[q] or "" for q in qis) for r in records) == cells  # the same rows as the CSV
        assert by_name[name].rows_out == len(rows) == by_name[name].rows_in - by_name[name].suppressed
        assert by_name[name].suppressed <= 0.1 * by_name[name].rows_in
    amr = by_name["amr_enterprise"]
    assert amr.rows_in == 80
    _, rows = read_csv(settings.open_data / "amr_enterprise" / "data.csv")
    # generalized at least to the ladders' first levels: a month or coarser, bands, division codes
    assert all(re.fullmatch(r"\d{4}(-\d{2}|-Q[1-4])?", r["established"]) for r in rows)
    assert all(re.fullmatch(r"\[\d+,\d+\)|\(0,1\)|0|>0", r["reg_capital"]) for r in rows)
    assert all(re.fullmatch(r"37\d{4}", r["region_code"]) for r in rows)
    assert set(amr.generalization) == set(amr.quasi_identifiers)


def test_no_direct_identifier_or_personal_column_survives(published):
    settings, result = published
    names = ({e["legal_rep"] for e in ENTERPRISES} | {p["name"] for p in POPULATION}
             | {p["subject_name"] for p in PENALTIES if p["subject_type"] == "自然人"}
             | {p["legal_rep"] for p in PENALTIES if p["legal_rep"]})
    numbers = ({e["legal_rep_id"] for e in ENTERPRISES} | {p["id_no"] for p in PENALTIES if p.get("id_no")}
               | {PERSON_ID, MOBILE} | {p["mobile"] for p in POPULATION})
    enterprise_ids = {e["uscc"] for e in ENTERPRISES} | {e["name"] for e in ENTERPRISES}
    files = [p for p in settings.open_data.rglob("*") if p.is_file()]
    assert len(files) == 7  # 2 × (csv, json, jsonld) + catalog
    for path in files:
        text = path.read_text(encoding="utf-8-sig")
        assert not ID_RE.search(text), path
        assert not MOBILE_RE.search(text), path
        assert not [n for n in names if n in text], path
        assert not [n for n in numbers | enterprise_ids if n in text], path
    header, rows = read_csv(settings.open_data / "credit_penalty" / "data.csv")
    assert not {"subject_name", "uscc", "legal_rep", "legal_rep_id_no", "id_no"} & set(header)
    # free text is scrubbed: the person's name masked, ID and mobile numbers removed whole from 违法事实
    person = [r["facts"] for r in rows if r["subject_type"] == "自然人"]
    assert person and all(re.fullmatch(r"当事人.\*（身份证号\*\*\*\*，电话\*\*\*\*）露天焚烧垃圾", f) for f in person)
    # columns derived in gold: a declared quasi-identifier generalized, the others opened as (scrubbed) text
    assert {r["severity"] for r in rows} <= {"一般", "严重"} and all(re.fullmatch(r"\d{4}(-\d{2}|-Q[1-4])?",
                                                                              r["publish_end"]) for r in rows)
    header, _ = read_csv(settings.open_data / "amr_enterprise" / "data.csv")
    assert header == ["region_code", "industry_code", "status", "established", "reg_capital", "reg_authority"]


def test_a_resource_that_may_not_be_opened_produces_nothing(published):
    settings, result = published
    closed = {c.resource: c.reason for c in result.closed}
    assert closed["psb.population"].startswith("不予开放")
    assert closed["court.dishonest"].startswith("有条件开放")  # no approval recorded
    assert closed["credit.license"] == "open_data.yml chooses no columns for it"
    assert sorted(p.name for p in settings.open_data.iterdir() if not p.name.startswith(".")) == [
        "amr_enterprise", "catalog.jsonld", "credit_penalty"]
    assert "psb_population" not in (settings.open_data / CATALOG_FILE).read_text(encoding="utf-8")


def _graph(path: Path) -> rdflib.Graph:
    return rdflib.Graph().parse(path, format="json-ld")


def test_dcat_metadata_is_json_ld_with_sizes_that_match_the_files(published):
    settings, result = published
    folder = settings.open_data / "amr_enterprise"
    g = _graph(folder / "dataset.jsonld")
    (dataset,) = g.subjects(ns.RDF.type, ns.DCAT.Dataset)
    titles = {t.language: str(t) for t in g.objects(dataset, ns.DCTERMS.title)}
    assert titles == {"zh": "企业登记信息（开放数据）", "en": "Enterprise registry (open data)"}
    assert g.value(dataset, ns.DCTERMS.description) is not None
    publisher = g.value(dataset, ns.DCTERMS.publisher)
    assert {str(n) for n in g.objects(publisher, rdflib.FOAF.name)} >= {"市市场监督管理局"}
    assert g.value(dataset, ns.DCTERMS.issued).datatype == rdflib.XSD.dateTime
    assert g.value(dataset, ns.DCTERMS.modified) is not None
    assert str(g.value(dataset, ns.DCTERMS.license)) == "https://creativecommons.org/licenses/by/4.0/"
    period = g.value(dataset, ns.DCTERMS.temporal)
    start, end = g.value(period, ns.DCAT.startDate).toPython(), g.value(period, ns.DCAT.endDate).toPython()
    assert dt.date(2015, 1, 1) <= start < end <= dt.date(2022, 12, 31)
    spatial = {str(g.value(s, ns.DCTERMS.identifier)) for s in g.objects(dataset, ns.DCTERMS.spatial)}
    _, rows = read_csv(folder / "data.csv")
    assert spatial == {r["region_code"] for r in rows}
    sizes = {}
    for dist in g.objects(dataset, ns.DCAT.distribution):
        url = str(g.value(dist, ns.DCAT.downloadURL))
        sizes[url.rsplit("/", 1)[1]] = (int(g.value(dist, ns.DCAT.byteSize)), str(g.value(dist, ns.DCAT.mediaType)))
    assert sizes == {"data.csv": ((folder / "data.csv").stat().st_size, "https://www.iana.org/assignments/media-types/text/csv"),
                     "data.json": ((folder / "data.json").stat().st_size,
                                   "https://www.iana.org/assignments/media-types/application/json")}
    doc = json.loads((folder / "dataset.jsonld").read_text(encoding="utf-8"))
    assert doc["govlake:kAnonymity"] == 5
    assert {g_["govlake:column"]: g_["govlake:level"] for g_ in doc["govlake:generalization"]} == \
        result.datasets[0].generalization
    # the catalog lists both datasets, and resolves their files to the same addresses
    cat = _graph(settings.open_data / CATALOG_FILE)
    (catalog,) = cat.subjects(ns.RDF.type, ns.DCAT.Catalog)
    listed = set(cat.objects(catalog, ns.DCAT.dataset))
    assert len(listed) == 2 and dataset in listed
    urls = {str(u) for u in g.objects(None, ns.DCAT.downloadURL)}
    assert urls and {str(u) for u in cat.objects(None, ns.DCAT.downloadURL)} >= urls


def test_each_run_is_logged_and_replaces_the_files_atomically(published):
    settings, first = published
    second = publish_open_data(settings=settings, run_id="open-2", config=CONFIG)
    log = storage.open_table(storage.table_path(settings, "meta", META_TABLE.split("/")[1])).to_pyarrow_table()
    rows = sorted(log.to_pylist(), key=lambda r: (r["run_id"], r["dataset"]))
    assert [(r["run_id"], r["dataset"], r["status"]) for r in rows] == [
        ("open-1", "amr_enterprise", "published"), ("open-1", "credit_penalty", "published"),
        ("open-2", "amr_enterprise", "published"), ("open-2", "credit_penalty", "published")]
    amr = rows[2]
    assert (amr["rows_in"], amr["rows_out"], amr["suppressed"], amr["k"]) == (80, second.datasets[0].rows_out,
                                                                            second.datasets[0].suppressed, 5)
    assert json.loads(amr["generalization"]) == second.datasets[0].generalization
    assert amr["source_table"] == "silver/amr_enterprise" and amr["source_version"] == 0
    # the dataset names are links to this run's folders; the previous run's are gone
    assert os.readlink(settings.open_data / "amr_enterprise") == ".amr_enterprise@open-2"
    assert sorted(p.name for p in settings.open_data.iterdir() if p.name.startswith(".")) == [
        ".amr_enterprise@open-2", ".credit_penalty@open-2"]
    # issued stays the first publication; modified moves
    doc = json.loads((settings.open_data / "amr_enterprise" / "dataset.jsonld").read_text(encoding="utf-8"))
    assert doc["dct:issued"]["@value"] < doc["dct:modified"]["@value"]


def test_k_out_of_reach_withholds_the_dataset_with_a_clear_reason(published):
    settings, _ = published
    result = publish_open_data(settings=settings, run_id="open-3", config=CONFIG, k=60)
    by_name = {d.dataset: d for d in result.datasets}
    amr, penalty = by_name["amr_enterprise"], by_name["credit_penalty"]
    assert amr.status == penalty.status == "withheld"
    assert amr.rows_out == 0 and amr.suppressed > 0.5 * amr.rows_in
    assert amr.reason.startswith(f"k=60 not reached: {amr.suppressed} of 80 rows")
    assert "region_code: province" in amr.reason and "established: year" in amr.reason
    # the earlier files are withdrawn and the catalog lists nothing
    assert not (settings.open_data / "amr_enterprise").exists()
    catalog = json.loads((settings.open_data / CATALOG_FILE).read_text(encoding="utf-8"))
    assert catalog["dcat:dataset"] == []


def _catalog_copy(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "catalog"
    shutil.copytree(Path(__file__).parents[1] / "catalog", folder)
    (folder / "open_data.yml").write_text(text, encoding="utf-8")
    return folder


def test_config_refuses_personal_columns_naming_file_and_line(tmp_path):
    folder = _catalog_copy(tmp_path, """k: 5
datasets:
  - resource: credit.penalty
    source: gold/penalty_publication
    columns: [subject_type, subject_name, uscc, nope]
publisher: nobody
""")
    with pytest.raises(CatalogError) as err:
        load_config(Settings(var=tmp_path / "var", catalog_dir=folder))
    problems = err.value.problems
    assert f"{folder}/open_data.yml:5:29: subject_name (行政相对人名称) is never opened: level L3" in problems[0]
    assert "uscc (行政相对人代码_1(统一社会信用代码)) identifies an organisation" in problems[1]
    assert "has no column 'nope'" in problems[2]
    assert problems[3] == f"{folder}/open_data.yml:6:12: unknown department 'nobody' (departments.yml)"


@pytest.mark.slow
def test_cli_publishes_and_exits_3_when_a_dataset_is_withheld(lake, tmp_path):
    folder = _catalog_copy(tmp_path, """k: 5
max_suppression: 0.1
datasets:
  - resource: amr.enterprise
    approved: 市市场监管局2024年第3号开放审批
    columns: [region_code, established, reg_capital]
""")
    env = {**os.environ, "GOVLAKE_VAR": str(lake.var), "GOVLAKE_AS_OF": AS_OF.isoformat(),
           "GOVLAKE_CATALOG_DIR": str(folder)}
    cli = [sys.executable, "-m", "govlake.cli", "open", "--json"]
    out = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert [(d["dataset"], d["status"]) for d in report["datasets"]] == [("amr_enterprise", "published")]
    events = [json.loads(line) for line in (lake.var / "lineage" / "govlake.jsonl").read_text().splitlines()]
    runs = [(e["job"]["name"], e["eventType"]) for e in events if e["job"]["name"] == "open"]
    assert runs == [("open", "START"), ("open", "COMPLETE")]
    outputs = {o["name"] for o in events[-1]["outputs"]}
    assert str(lake.var.resolve() / "open" / "amr_enterprise" / "data.csv") in outputs
    from govlake.lineage import validate_file

    assert validate_file(lake.var / "lineage" / "govlake.jsonl") == {}  # OpenLineage 2-0-2 schemas
    out = subprocess.run([*cli[:-1], "--k", "90"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 3, out.stderr
    events = [json.loads(line) for line in (lake.var / "lineage" / "govlake.jsonl").read_text().splitlines()]
    assert str(lake.var.resolve() / "open" / "amr_enterprise" / "data.csv") in {o["name"] for o in
                                                                                 events[-1]["outputs"]}
    assert "withheld amr_enterprise: k=90 not reached: 80 of 80 rows (100%)" in " ".join(out.stdout.split())


def test_the_report_lists_the_open_datasets_with_k_generalization_and_suppression(published, tmp_path):
    from govlake.catalog import get_catalog
    from govlake.opendata import open_data_runs
    from govlake.report._data import LakeData
    from govlake.report._open import open_data
    from govlake.report._pages import Site
    from govlake.report._scores import load_scorecard

    settings, first = published
    withheld = publish_open_data(settings=settings, run_id="open-9", config=CONFIG, k=60)
    data = LakeData(settings=settings, catalog=get_catalog(settings.catalog_dir), kpis=[], as_of=AS_OF, rules={},
                    runs=[], reconciliation={}, rows_by_dept_month={}, kpi_history_all={}, kpi_history_last={},
                    table_counts=[], conflicts=[], gx_docs=None, open_data=open_data_runs(settings, runs=10))
    site = Site(data, load_scorecard(), tmp_path / "site", generated="test")
    open_data(site)
    html = (tmp_path / "site" / "open.html").read_text(encoding="utf-8")
    assert "run <code>open-9</code>" in html and "open-1" in html  # latest run, and the earlier one below
    latest = list(csv.DictReader((tmp_path / "site" / "open_datasets.csv").read_text(encoding="utf-8-sig")
                                 .splitlines()))
    amr = next(r for r in latest if r["数据集 dataset"] == "amr_enterprise")
    figures = withheld.datasets[0]
    assert (amr["状态 status"], amr["k"], amr["输入行 rows in"], amr["抑制行 suppressed"]) == (
        "withheld", "60", "80", str(figures.suppressed))
    assert "region_code → province (region)" in amr["泛化 generalization"]
    assert amr["说明 reason"].startswith("k=60 not reached")
    earlier = list(csv.DictReader((tmp_path / "site" / "open_runs.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert {(r["运行 run"], r["状态 status"]) for r in earlier} >= {("open-1", "published"), ("open-9", "withheld")}
    assert "psb.population" in html and "不予开放" in html


def test_catalog_validate_checks_open_data_yml(tmp_path):
    folder = _catalog_copy(tmp_path, """datasets:
  - resource: psb.population
    columns: [sex, mobile]
""")
    env = {**os.environ, "GOVLAKE_VAR": str(tmp_path / "var"), "GOVLAKE_CATALOG_DIR": str(folder)}
    out = subprocess.run([sys.executable, "-m", "govlake.cli", "catalog", "validate"], capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == 1
    assert f"{folder}/open_data.yml:3:20: mobile (手机号) is never opened: level L3" in " ".join(out.stderr.split())


@pytest.mark.parametrize(("kind", "value", "rungs"), [
    ("region", "370102", ["370102", "370100", "370000"]),
    ("date", dt.date(2024, 4, 5), ["2024-04", "2024-Q2", "2024"]),
    ("date", dt.datetime(2024, 12, 31, 23, 0), ["2024-12", "2024-Q4", "2024"]),
    ("amount", Decimal(2), ["[1,10)", "[1,100)", ">0"]),
    ("amount", Decimal("50.5"), ["[10,100)", "[1,100)", ">0"]),
    ("amount", Decimal(1000), ["[1000,10000)", "[100,10000)", ">0"]),
    ("amount", Decimal(999999), ["[100000,1000000)", "[10000,1000000)", ">0"]),
    ("amount", Decimal("0.5"), ["(0,1)", "(0,1)", ">0"]),
    ("amount", Decimal(0), ["0", "0", "0"]),
    ("amount", Decimal(-3), ["<0", "<0", "<0"]),
    ("industry", "F5211", ["F5211", "F52", "F"]),
    ("category", "罚款;警告", ["罚款;警告", "*"]),
    ("category", None, [None, None]),
])
def test_each_ladder_rung(kind, value, rungs):
    import duckdb

    from govlake.opendata import LADDERS
    from govlake.opendata._kanon import generalize_sql

    con = duckdb.connect()
    con.execute("create table t (v " + {"region": "varchar", "date": "timestamp", "amount": "decimal(18,4)",
                                         "industry": "varchar", "category": "varchar"}[kind] + ")")
    con.execute("insert into t values (?)", [value])
    assert len(LADDERS[kind]) == len(rungs)
    assert [con.execute(f"select {generalize_sql(kind, level, 'v')} from t").fetchone()[0]
            for level in range(len(rungs))] == rungs


OVERSHOOT = [(r, dt.date.fromisoformat(d), Decimal(a)) for r, d, a in (
    ("370102", "2024-01-05", 50), ("370103", "2024-01-05", 2), ("370102", "2024-04-05", 5),
    ("370102", "2024-01-05", 2), ("370103", "2024-01-05", 5), ("370211", "2024-02-05", 2),
    ("370203", "2024-01-05", 2), ("370103", "2024-01-05", 5000), ("370103", "2024-02-05", 50),
    ("370102", "2024-02-05", 50), ("370103", "2024-04-05", 5000), ("370102", "2024-01-05", 5),
    ("370103", "2024-01-05", 2), ("370103", "2024-01-05", 2), ("370103", "2024-04-05", 5),
    ("370203", "2024-01-05", 200))]


def test_the_search_takes_back_steps_the_allowance_does_not_need():
    import duckdb

    from govlake.opendata._kanon import search, small_rows

    con = duckdb.connect()
    # 20 rows in one county and month: only the amounts differ (10 of 1–10, 10 of 10–100, each value once)
    con.execute("create table t as select '370102' as region, date '2024-04-05' as d, "
                "cast(case when i < 10 then 1 + i * 0.5 else 10 + i end as decimal(18,4)) as amount "
                "from range(20) r(i)")
    qis = {"region": "region", "d": "date", "amount": "amount"}
    outcome = search(con, "t", qis, k=5, max_suppression=0)
    # the bands alone reach k: neither region nor date needs to be coarser than its first rung
    assert outcome.levels == {"region": 0, "d": 0, "amount": 0}
    assert outcome.small_rows == 0 and outcome.publishable
    outcome = search(con, "t", qis, k=11, max_suppression=0)
    assert outcome.levels == {"region": 0, "d": 0, "amount": 1}  # [1,100) holds all 20
    assert small_rows(con, "t", qis, {"region": 0, "d": 0, "amount": 0}, 11) == 20
    # a case where the climb overshoots: the dates went to the year on the way, a quarter is enough at the end
    con.execute("create or replace table t (region varchar, d date, amount decimal(18,4))")
    con.executemany("insert into t values (?, ?, ?)", OVERSHOOT)
    outcome = search(con, "t", qis, k=3, max_suppression=0)
    assert outcome.levels == {"region": 1, "d": 1, "amount": 2} and outcome.small_rows == 0
    assert small_rows(con, "t", qis, {"region": 1, "d": 0, "amount": 2}, 3) > 0  # and no finer
    assert small_rows(con, "t", qis, {"region": 0, "d": 1, "amount": 2}, 3) > 0
    assert small_rows(con, "t", qis, {"region": 1, "d": 1, "amount": 1}, 3) > 0
    outcome = search(con, "t", qis, k=21, max_suppression=0.5)
    assert not outcome.publishable and outcome.small_rows == 16 and outcome.allowed == 8
    assert outcome.levels == {"region": 2, "d": 2, "amount": 2}


@pytest.mark.slow
def test_a_run_killed_after_the_files_is_finished_by_the_next(lake, tmp_path):
    from govlake import steps

    folder = _catalog_copy(tmp_path, """datasets:
  - resource: amr.enterprise
    approved: 市市场监管局2024年第3号开放审批
    columns: [region_code, established, reg_capital]
    max_suppression: 0.1
""")
    env = {**os.environ, "GOVLAKE_VAR": str(lake.var), "GOVLAKE_AS_OF": AS_OF.isoformat(),
           "GOVLAKE_CATALOG_DIR": str(folder)}
    cli = [sys.executable, "-m", "govlake.cli", "open", "--json"]
    killed = subprocess.run(cli, capture_output=True, text=True, env={**env, "GOVLAKE_CRASH_AT": "open:files"},
                            timeout=300)
    assert killed.returncode in (-9, 137), killed.stderr
    (intent,) = steps.open_intents(lake)
    assert intent["consumer"] == "open"
    stale = intent["run_id"]
    assert os.readlink(lake.open_data / "amr_enterprise") == f".amr_enterprise@{stale}"
    assert storage.open_table(storage.table_path(lake, "meta", "open_data")) is None  # not logged yet
    out = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    fresh = json.loads(out.stdout)["run_id"]
    log = storage.open_table(storage.table_path(lake, "meta", "open_data")).to_pyarrow_table().to_pylist()
    assert sorted((r["run_id"], r["status"]) for r in log) == sorted([(stale, "published"), (fresh, "published")])
    assert steps.open_intents(lake) == []
    assert sorted(p.name for p in lake.open_data.iterdir()) == [
        f".amr_enterprise@{fresh}", "amr_enterprise", "catalog.jsonld"]
