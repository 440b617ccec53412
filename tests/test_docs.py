"""The documentation stands on its own: README.md and docs/ link only to files of the repository
(and their headings), and docs/domain.md states the figures catalog/credit_rules.yml configures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from govlake.config import REPO_ROOT

DOCS = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
OUTSIDE = re.compile(r"DOMAIN\.md|STYLE\.md|\.\./shared|(?<![\w.])/work/")


def _anchor(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(doc: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
    return {_anchor(h.replace("`", "")) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_link_of_the_docs_stays_in_the_repository_and_resolves(doc):
    text = doc.read_text(encoding="utf-8")
    assert not OUTSIDE.findall(text), f"{doc.name} points outside the repository"
    for target in LINK.findall(text):
        assert not re.match(r"^[a-z]+:", target), f"{doc.name}: {target}"
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        assert file.is_relative_to(REPO_ROOT) and file.exists(), f"{doc.name}: {target} does not resolve"
        if anchor and file.suffix == ".md":
            assert anchor in _anchors(file), f"{doc.name}: no heading #{anchor} in {file.name}"


PROJECT_FILES = ("jobs", "*.py"), ("dags", "*.py"), ("infra", "*"), ("tests", "*.py"), ("sql", "*"), \
    ("catalog", "*.yml"), ("expectations", "*.yml")


def test_the_project_files_do_not_cite_files_outside_the_repository():
    files = [p for folder, pattern in PROJECT_FILES for p in sorted((REPO_ROOT / folder).rglob(pattern))
             if p.is_file() and p.suffix not in (".jar", ".png", ".woff", ".woff2", ".ttf")]
    files += [REPO_ROOT / "Makefile", REPO_ROOT / "pyproject.toml"]
    cited = [f"{p.relative_to(REPO_ROOT)}:{n}" for p in files
             for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
             if OUTSIDE.search(line) and p.name != "test_docs.py"]
    assert cited == []


def test_domain_md_states_the_configured_deadlines_periods_and_severity():
    from govlake.credit import load_credit_rules

    rules = load_credit_rules(REPO_ROOT / "catalog")
    doc = re.sub(r"\s+", " ", (REPO_ROOT / "docs" / "domain.md").read_text(encoding="utf-8"))
    assert f"within {rules.deadline.working_days} working days" in doc
    assert all(f"works with {days} working days" in doc for days in rules.deadline.by_department.values())
    for regime in rules.publicity.regimes:
        for severity, period in regime.classes.items():
            row = f"| {regime.id} | {severity} "
            assert row in doc, (regime.id, severity)
            line = doc[doc.index(row):].split(" | ", 5)
            assert f"{period.min_months} months" in line[3] and f"{period.max_months} months" in line[4], line
        assert ", ".join(regime.classes.serious.categories) in doc
        assert f"a fine of {regime.classes.serious.fine_from:g} 万元 or more" in doc
