"""The catalog loads, and a broken entry is reported with its file and line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from govlake.catalog import CatalogError, load_catalog
from govlake.config import REPO_ROOT
from govlake.quality import check_expectations, rules_for
from govlake.transform import DUCKDB


def test_repository_catalog_loads_with_every_resource():
    cat = load_catalog(REPO_ROOT / "catalog")
    assert {"amr.enterprise", "tax.credit_rating", "hrss.social_insurance", "psb.population",
            "credit.license", "credit.penalty"} <= set(cat.resources)
    penalty = cat.resource("credit.penalty")
    assert penalty.item("id_no").level == "L4" and penalty.item("id_no").pii == "id_number"
    assert cat.resource("tax.credit_rating").authority_of(cat.resource("tax.credit_rating").item("name")) == "amr"


def _copy_catalog(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(REPO_ROOT / "catalog", target)
    return target


def test_errors_name_file_and_line(tmp_path):
    cat = _copy_catalog(tmp_path)
    f = cat / "resources" / "psb.population.yml"
    text = f.read_text(encoding="utf-8").replace("code_list: sex", "code_list: gender")
    f.write_text(text, encoding="utf-8")
    g = cat / "resources" / "tax.credit_rating.yml"
    text_g = g.read_text(encoding="utf-8").replace("share_method: 文件", "share_method: 文件\nshare_type_typo: x")
    g.write_text(text_g, encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_catalog(cat)
    problems = info.value.problems
    typo_line = next(i for i, ln in enumerate(text_g.splitlines(), 1) if ln.startswith("share_type_typo"))
    gender_line = next(i for i, ln in enumerate(text.splitlines(), 1) if "code_list: gender" in ln)
    assert any(p.startswith(f"{g}:{typo_line}:") and "share_type_typo" in p for p in problems), problems
    assert any(p.startswith(f"{f}:{gender_line}:") and "unknown code list 'gender'" in p for p in problems)


def test_conditional_sharing_needs_condition_and_basis(tmp_path):
    cat = _copy_catalog(tmp_path)
    f = cat / "resources" / "hrss.social_insurance.yml"
    f.write_text(f.read_text(encoding="utf-8").replace("share_condition: 政务部门履职使用\n", ""), encoding="utf-8")
    with pytest.raises(CatalogError, match="有条件共享 needs share_condition"):
        load_catalog(cat)


def test_a_seeded_mount_follows_a_seeded_claim(tmp_path):
    cat = _copy_catalog(tmp_path)
    early = cat / "resources" / "psb.population.yml"     # claimed 2024-01-26
    early.write_text(early.read_text(encoding="utf-8").replace("mounted_on: 2024-02-05", "mounted_on: 2024-01-25"),
                     encoding="utf-8")
    orphan = cat / "resources" / "tax.credit_rating.yml"  # no claimed_by
    orphan.write_text(orphan.read_text(encoding="utf-8") + "mounted_on: 2024-03-01\n", encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_catalog(cat)
    problems = info.value.problems
    assert any(p.startswith(f"{early}:") and "mounted_on 2024-01-25 is before the claim (2024-01-26)" in p
               for p in problems), problems
    assert any(p.startswith(f"{orphan}:") and "mounted_on needs claimed_by" in p for p in problems), problems


def test_personal_data_cannot_be_level_l1(tmp_path):
    cat = _copy_catalog(tmp_path)
    f = cat / "resources" / "psb.population.yml"
    f.write_text(f.read_text(encoding="utf-8").replace("level: L3, pii: phone", "level: L1, pii: phone"),
                 encoding="utf-8")
    with pytest.raises(CatalogError, match="personal data"):
        load_catalog(cat)


# ---- hostile catalogs: every problem at once, each with its file and line ------------------


def _edit(path: Path, old: str, new: str) -> str:
    """Replace the first ``old`` in ``path``; the new text."""
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    return text


def _line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the ``nth`` line containing ``needle``."""
    lines = [i for i, ln in enumerate(text.splitlines(), 1) if needle in ln]
    return lines[nth - 1]


def _problems(cat: Path) -> list[str]:
    with pytest.raises(CatalogError) as info:
        load_catalog(cat)
    return info.value.problems


def _one(problems: list[str], prefix: str, text: str) -> str:
    """The problem that starts with ``prefix`` (``file:line:``) and mentions ``text``."""
    found = [p for p in problems if p.startswith(prefix) and text in p]
    assert len(found) == 1, (prefix, text, problems)
    return found[0]


def test_a_second_key_line_is_a_duplicate_key_naming_both_lines(tmp_path):
    cat = _copy_catalog(tmp_path)
    f = cat / "resources" / "credit.penalty.yml"
    text = _edit(f, "key: [decision_no, authority_uscc]\n", "key: [decision_no, authority_uscc]\nkey: [remark]\n")
    first, second = _line_of(text, "key: [decision_no"), _line_of(text, "key: [remark]")
    problem = _one(_problems(cat), f"{f}:{second}:1:", "duplicate key 'key'")
    assert f"first at line {first}" in problem


def test_duplicate_key_inside_an_item_mapping(tmp_path):
    cat = _copy_catalog(tmp_path)
    f = cat / "code_lists.yml"
    text = _edit(f, "  values: [男, 女]\n", "  values: [男, 女]\n  values: [M, F]\n")
    assert _one(_problems(cat), f"{f}:{_line_of(text, 'values: [M, F]')}:", "duplicate key 'values'")


BOMB = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))


def test_an_alias_bomb_is_refused_at_once_without_expanding_it(tmp_path):
    cat = _copy_catalog(tmp_path)
    f = cat / "resources" / "amr.bomb.yml"
    f.write_text('a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + BOMB, encoding="utf-8")
    assert f.stat().st_size < 1024  # 9**9 = 387 million strings once expanded
    started = time.perf_counter()
    problems = _problems(cat)
    assert time.perf_counter() - started < 1.0
    assert _one(problems, f"{f}:1:4:", "YAML anchor &a is not allowed")


def test_any_anchor_or_alias_is_refused(tmp_path):
    cat = _copy_catalog(tmp_path)
    f = cat / "departments.yml"
    text = f.read_text(encoding="utf-8") + "- *amr\n"
    f.write_text(text.replace("- {code: amr,", "- &amr {code: amr,"), encoding="utf-8")
    line = _line_of(text, "code: amr,")
    assert _one(_problems(cat), f"{f}:{line}:3:", "anchor &amr")


def test_a_huge_file_is_not_read(tmp_path):
    cat = _copy_catalog(tmp_path)
    f = cat / "resources" / "amr.enterprise.yml"
    f.write_text(f.read_text(encoding="utf-8") + "#" * 1_100_000 + "\n", encoding="utf-8")
    assert _one(_problems(cat), f"{f}:", "a catalog file may have at most 1,000,000")


def test_a_gbk_file_names_the_line_and_byte_offset(tmp_path):
    cat = _copy_catalog(tmp_path)
    f = cat / "resources" / "psb.population.yml"
    text = f.read_text(encoding="utf-8")
    f.write_bytes(text.encode("gbk"))
    line = _line_of(text, "人口基础信息")
    offset = len("\n".join(text.splitlines()[:line - 1]).encode("gbk")) + 1 + len("name: ")
    assert _one(_problems(cat), f"{f}:{line}:", f"not UTF-8 (byte offset {offset}")


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    cat = _copy_catalog(tmp_path)
    f = cat / "resources" / "tax.credit_rating.yml"
    text = _edit(f, "share_method: 文件", "share_method: [文件")
    problems = _problems(cat)
    line = _line_of(text, "share_method: [文件")
    assert any(p.startswith(f"{f}:{line + 1}:") and "not valid YAML" in p for p in problems), problems


def test_wrong_shapes_and_missing_files(tmp_path):
    cat = _copy_catalog(tmp_path)
    (cat / "code_lists.yml").write_text("- subject_type\n- id_type\n", encoding="utf-8")
    (cat / "departments.yml").unlink()
    (cat / "resources" / "credit.repair.yml").write_text("- just a list\n", encoding="utf-8")
    problems = _problems(cat)
    assert _one(problems, f"{cat / 'code_lists.yml'}:1:1:", "the top level must be a mapping")
    assert _one(problems, f"{cat / 'departments.yml'}:", "missing")
    assert _one(problems, f"{cat / 'resources' / 'credit.repair.yml'}:1:1:", "must be a mapping")
    # an unreadable file is reported once, not again at every department or code list it should hold
    assert not [p for p in problems if "unknown department" in p or "unknown code list" in p], problems
    assert len(problems) == 3, problems


def test_a_missing_resources_folder(tmp_path):
    cat = _copy_catalog(tmp_path)
    shutil.rmtree(cat / "resources")
    assert _problems(cat) == [f"{cat / 'resources'}: missing (the folder of resources/<code>.yml files)"]


def test_broken_references_are_all_reported_together(tmp_path):
    cat = _copy_catalog(tmp_path)
    pen = cat / "resources" / "credit.penalty.yml"
    _edit(pen, "provider: credit", "provider: credi")
    _edit(pen, "key: [decision_no, authority_uscc]", "key: [decision_number, authority_uscc]")
    _edit(pen, "{column: legal_rep, name", "{column: legal_rep, authority: police, name")
    _edit(pen, "copy_of: psb.population.name", "copy_of: psb.people.name")
    _edit(pen, "code_list: id_type}", "code_list: id_kind}")
    _edit(pen, "related: [amr.enterprise]", "related: [amr.enterprises]")
    text = _edit(pen, "{column: remark,", "{column: facts,")
    lic = cat / "resources" / "credit.license.yml"
    lic_text = _edit(lic, "copy_of: psb.population.name", "copy_of: psb.population.full_name")
    lic_text = _edit(lic, "copy_key: id_no", "copy_key: id_number")
    amr = cat / "resources" / "amr.enterprise.yml"
    amr_text = _edit(amr, "watermark: updated_at", "watermark: changed_at")
    problems = _problems(cat)
    _one(problems, f"{pen}:{_line_of(text, 'provider: credi')}:", "unknown department 'credi'")
    _one(problems, f"{pen}:{_line_of(text, 'key: [decision_number')}:", "'decision_number' is not an item")
    _one(problems, f"{pen}:{_line_of(text, 'authority: police')}:", "items.8.authority: unknown department 'police'")
    _one(problems, f"{pen}:{_line_of(text, 'psb.people.name')}:", "unknown resource 'psb.people'")
    _one(problems, f"{pen}:{_line_of(text, 'code_list: id_kind')}:", "unknown code list 'id_kind'")
    _one(problems, f"{pen}:{_line_of(text, 'related: [amr.enterprises]')}:", "unknown resource 'amr.enterprises'")
    dup = _one(problems, f"{pen}:{_line_of(text, '{column: facts,', 2)}:", "'facts' is declared twice")
    assert f"first at line {_line_of(text, '{column: facts,')}" in dup
    _one(problems, f"{lic}:{_line_of(lic_text, 'population.full_name')}:", "psb.population has no item 'full_name'")
    _one(problems, f"{lic}:{_line_of(lic_text, 'copy_key: id_number')}:", "'id_number' is not an item")
    _one(problems, f"{amr}:{_line_of(amr_text, 'watermark: changed_at')}:", "'changed_at' is not an item")
    assert len(problems) == 10, "\n".join(problems)


@pytest.mark.parametrize("column, message", [
    ("order", "'order' is an SQL keyword"),
    ("select", "'select' is an SQL keyword"),
    ("left", "'left' is an SQL keyword"),
    ("remark__in", "'__' is kept for the standardized columns"),
    ("Remark", "should match pattern"),
])
def test_column_names_must_be_plain_identifiers_and_not_keywords(tmp_path, column, message):
    cat = _copy_catalog(tmp_path)
    f = cat / "resources" / "credit.penalty.yml"
    text = _edit(f, "{column: remark,", f"{{column: {column},")
    _one(_problems(cat), f"{f}:{_line_of(text, f'column: {column},')}:", message)


@pytest.mark.parametrize("condition, message", [
    ("subject_type = 自然人", "unknown column 自然人"),
    ("subject_kind = '自然人'", "unknown column subject_kind"),
    ("subject_type = '自然人", "does not parse"),
    ("subject_type = '自然人'; drop table x", "one condition, without ';' or comments"),
    ("subject_type = '自然人' --", "one condition, without ';' or comments"),
    ("select 1", "must be a condition, not a statement"),
    ("is_natural(subject_type)", "DuckDB rejects"),
])
def test_sql_conditions_are_parsed_and_checked_against_the_items(tmp_path, condition, message):
    cat = _copy_catalog(tmp_path)
    f = cat / "resources" / "credit.penalty.yml"
    text = _edit(f, "copy_when: \"subject_type = '自然人'\"", f"copy_when: {json.dumps(condition, ensure_ascii=False)}")
    problem = _one(_problems(cat), f"{f}:{_line_of(text, 'copy_when')}:", message)
    assert "items.0.copy_when" in problem


@pytest.mark.parametrize("public_when, message", [
    ("{subject_kind: [法人]}", "'subject_kind' is not an item of credit.penalty"),
    ("{subject_type: []}", "list the values"),
])
def test_public_when_names_items_and_values(tmp_path, public_when, message):
    cat = _copy_catalog(tmp_path)
    f = cat / "resources" / "credit.penalty.yml"
    text = _edit(f, "public_when: {subject_type: [法人及非法人组织, 法人, 法人和非法人组织, 非法人组织]}",
                 f"public_when: {public_when}")
    problem = _one(_problems(cat), f"{f}:{_line_of(text, 'public_when')}:", message)
    assert "items.0.public_when" in problem


# ---- the blocking limit ---------------------------------------------------------------------


def test_every_resource_has_a_blocking_limit_from_the_catalog(tmp_path, settings):
    cat = _copy_catalog(tmp_path)
    catalog = load_catalog(cat)
    assert catalog.defaults.max_quarantine_rate == 0.5
    assert not (settings.expectations_dir / "amr.enterprise.yml").exists()
    amr = rules_for(catalog.resource("amr.enterprise"), catalog, DUCKDB, settings.expectations_dir)
    assert amr.max_quarantine_rate == 0.5
    (cat / "defaults.yml").write_text("max_quarantine_rate: 0.3\n", encoding="utf-8")
    _edit(cat / "resources" / "tax.credit_rating.yml", "core_business: true\n",
          "core_business: true\nmax_quarantine_rate: 0.1\n")
    catalog = load_catalog(cat)
    rates = {code: rules_for(catalog.resource(code), catalog, DUCKDB, settings.expectations_dir).max_quarantine_rate
             for code in ("amr.enterprise", "tax.credit_rating", "credit.penalty")}
    # the catalog default, a resource's own limit, and the expectations file's blocking setting
    assert rates == {"amr.enterprise": 0.3, "tax.credit_rating": 0.1, "credit.penalty": 0.5}


def test_a_blocking_limit_outside_zero_to_one_is_refused(tmp_path):
    cat = _copy_catalog(tmp_path)
    (cat / "defaults.yml").write_text("max_quarantine_rate: 1.5\nmax_quarantine: 0.2\n", encoding="utf-8")
    problems = _problems(cat)
    _one(problems, f"{cat / 'defaults.yml'}:1:", "less than or equal to 1")
    _one(problems, f"{cat / 'defaults.yml'}:2:1:", "max_quarantine: Extra inputs are not permitted")


# ---- expectations files ---------------------------------------------------------------------


def _copy_expectations(tmp_path: Path) -> Path:
    target = tmp_path / "expectations"
    shutil.copytree(REPO_ROOT / "expectations", target)
    return target


def test_repository_expectations_are_valid():
    assert check_expectations(load_catalog(REPO_ROOT / "catalog"), REPO_ROOT / "expectations") == []


def test_broken_expectations_are_all_reported_with_file_and_line(tmp_path):
    catalog = load_catalog(REPO_ROOT / "catalog")
    exp = _copy_expectations(tmp_path)
    (exp / "credit.nothing.yml").write_text("resource: credit.nothing\nrules: []\n", encoding="utf-8")
    f = exp / "court.dishonest.yml"
    _edit(f, "id: CD.person_id", "id: CD.subject_code")
    _edit(f, "severity: warning", "severity: blocking")
    _edit(f, "removed_date is null\"", "removed_day is null\"")
    _edit(f, "rules:\n", "rules:\n"
          "  - {id: CD.a, severity: row, zh: 甲, en: a, expectation: ExpectColumnValuesToBeValidUsc,"
          " kwargs: {column: uscc__in}}\n"
          "  - {id: CD.b, severity: row, zh: 乙, en: b, expectation: ExpectColumnValuesToBeValidUscc,"
          " kwargs: {column: uscc__in, mostly: 0.9}}\n"
          "  - {id: CD.c, severity: row, zh: 丙, en: c, fail_when: \"regexp_full_match(uscc__in, '(')\"}\n")
    _edit(f, "blocking:\n  max_quarantine_rate: 0.5", "overrides: {required.nothing: {enabled: false}}\n"
          "blocking:\n  max_quarantine_rate: 2")
    text = f.read_text(encoding="utf-8")
    problems = check_expectations(catalog, exp)
    _one(problems, f"{exp / 'credit.nothing.yml'}:1:", "no resource 'credit.nothing' in the catalog")
    _one(problems, f"{f}:{_line_of(text, 'ValidUsc,')}:", "unknown expectation 'ExpectColumnValuesToBeValidUsc'")
    _one(problems, f"{f}:{_line_of(text, 'mostly')}:", "unknown kwarg 'mostly'")
    _one(problems, f"{f}:{_line_of(text, 'CD.c')}:", "DuckDB rejects")
    dup = _one(problems, f"{f}:{_line_of(text, 'id: CD.subject_code', 2)}:", "'CD.subject_code' is declared twice")
    assert f"first at line {_line_of(text, 'id: CD.subject_code')}" in dup
    _one(problems, f"{f}:{_line_of(text, 'severity: blocking')}:", "severity 'blocking': must be row or warning")
    _one(problems, f"{f}:{_line_of(text, 'removed_day')}:", "unknown column removed_day")
    _one(problems, f"{f}:{_line_of(text, 'required.nothing')}:", "no rule 'required.nothing'")
    _one(problems, f"{f}:{_line_of(text, 'max_quarantine_rate: 2')}:", "not a share of rows between 0 and 1")
    assert len(problems) == 9, problems
    # the run-time loading raises the same problems of the file instead of a traceback later
    with pytest.raises(CatalogError) as info:
        rules_for(catalog.resource("court.dishonest"), catalog, DUCKDB, exp)
    assert sorted(info.value.problems) == sorted(p for p in problems if p.startswith(str(f)))


def test_expectations_files_are_read_strictly(tmp_path):
    catalog = load_catalog(REPO_ROOT / "catalog")
    exp = _copy_expectations(tmp_path)
    f = exp / "court.dishonest.yml"
    text = _edit(f, "    severity: row\n", "    severity: row\n    severity: warning\n")
    (exp / "psb.population.yml").write_text("- resource: psb.population\n", encoding="utf-8")
    problems = check_expectations(catalog, exp)
    _one(problems, f"{f}:{_line_of(text, 'severity: warning')}:", "duplicate key 'severity'")
    _one(problems, f"{exp / 'psb.population.yml'}:1:1:", "the top level must be a mapping")


FORK = """
import os, sys
from govlake.catalog import load_catalog
from govlake.config import REPO_ROOT
from govlake.quality import check_expectations
load_catalog(REPO_ROOT / "catalog")
pid = os.fork()
if pid == 0:  # a task process forked after the catalog was loaded (its checks use DuckDB)
    assert check_expectations(load_catalog(REPO_ROOT / "catalog"), REPO_ROOT / "expectations") == []
    sys.exit(0)  # a normal exit: interpreter shutdown must not wait on the parent's DuckDB
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_loading_the_catalog_leaves_nothing_that_hangs_a_forked_process():
    out = subprocess.run([sys.executable, "-c", FORK], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
