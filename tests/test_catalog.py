"""The catalog loads, and a broken entry is reported with its file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from govlake.catalog import CatalogError, load_catalog
from govlake.config import REPO_ROOT


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


def test_personal_data_cannot_be_level_l1(tmp_path):
    cat = _copy_catalog(tmp_path)
    f = cat / "resources" / "psb.population.yml"
    f.write_text(f.read_text(encoding="utf-8").replace("level: L3, pii: phone", "level: L1, pii: phone"),
                 encoding="utf-8")
    with pytest.raises(CatalogError, match="personal data"):
        load_catalog(cat)
