"""Great Expectations Data Docs work offline: every stylesheet and script a GX page loads is a
vendored file of the site (quality/gx_assets), nothing is fetched from the network, and (marker
browser) headless Chromium with no network runs the pages' scripts with no console error."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import duckdb
import pytest

from govlake.quality._gx import validate_with_gx
from govlake.quality._gx_offline import ASSETS, REMOTE, make_offline, rewrite_page
from govlake.quality._rules import Rule
from govlake.report._browser import chromium, dump_dom

RULES = [Rule("T.name", "row", "名称为必填项", "Name is required", "name is null"),
         Rule("T.amount", "row", "金额不得为负", "Amount must not be negative", "amount < 0")]


class _Loads(HTMLParser):
    """What a page loads: stylesheets, scripts and images (href/src as written)."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "link" and "stylesheet" in (a.get("rel") or "") and a.get("href"):
            self.loads.append(("stylesheet", a["href"]))
        elif tag == "script" and a.get("src"):
            self.loads.append(("script", a["src"]))
        elif tag == "img" and a.get("src"):
            self.loads.append(("img", a["src"]))


def _loads(page: Path) -> list[tuple[str, str]]:
    p = _Loads()
    p.feed(page.read_text(encoding="utf-8"))
    return p.loads


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    """GX Data Docs of two validation runs of a five-row table."""
    site = tmp_path_factory.mktemp("gx") / "gx"
    con = duckdb.connect()
    con.execute("""create table checked as select * from (values
        ('b1', 1, 'a', 10.0), ('b1', 2, null, 5.0), ('b1', 3, 'c', -1.0), ('b1', 4, 'd', 0.0), ('b1', 5, 'e', 2.5))
        as t(_batch_id, _row_number, name, amount)""")
    for run in ("run-1", "run-2"):
        outcomes = validate_with_gx(con, "checked", RULES, suite_name=f"t_{run}", docs_dir=site)
        assert {o.rule_id: o.unexpected_count for o in outcomes} == {"T.name": 1, "T.amount": 1}
    con.close()
    return site


def test_every_stylesheet_and_script_of_every_gx_page_is_a_local_file(docs):
    pages = sorted(docs.rglob("*.html"))
    assert len(pages) >= 5  # the index, an expectations page and a validation page per run
    kinds = set()
    for page in pages:
        loads = _loads(page)
        assert not REMOTE.search(page.read_text(encoding="utf-8")), page
        for kind, url in loads:
            assert not url.startswith(("http:", "https:", "//")), f"{page.relative_to(docs)} loads {url}"
            if kind != "img" or "logo" in url:
                target = (page.parent / unquote(url.split("?")[0])).resolve()
                assert target.is_file(), f"{page.relative_to(docs)}: {url} does not resolve"
            kinds.add(kind)
        assert sum(kind == "stylesheet" and "/vendor/" in url for kind, url in loads) >= 6, page
    assert kinds == {"stylesheet", "script", "img"}
    # the vendored files are installed once, with their licences, and pages of both runs point at them
    vendor = docs / "static" / "vendor"
    assert (vendor / "README.md").read_bytes() == (ASSETS / "README.md").read_bytes()
    assert {p.name for p in vendor.rglob("LICENSE*")} and len(list(vendor.rglob("LICENSE*"))) == 7
    assert not list((docs / "static").glob(".vendor-*"))


def test_unknown_network_assets_are_left_for_the_check_to_catch(tmp_path):
    """An address govlake has not vendored stays as it is and is reported; the unused chart scripts go."""
    page = tmp_path / "site" / "validations" / "x.html"
    page.parent.mkdir(parents=True)
    page.write_text('<head><link rel="stylesheet" href="https://example.org/new.css">'
                    '<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>\n'
                    '<script src="https://code.jquery.com/jquery-3.7.1.min.js" integrity="sha384-x" '
                    'crossorigin="anonymous"></script></head>', encoding="utf-8")
    assert make_offline(tmp_path / "site") == [page]
    text = page.read_text(encoding="utf-8")
    assert "vega" not in text and "integrity" not in text
    assert '<script src="../static/vendor/jquery-3.7.1/jquery.min.js"></script>' in text
    assert 'href="https://example.org/new.css"' in text
    assert rewrite_page('<img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png'
                        '?d=20261120T1">', "../..") == '<img src="../../static/images/logo-long.png">'


@pytest.mark.browser
@pytest.mark.skipif(chromium() is None, reason="no Chromium (make setup installs Debian's chromium)")
def test_gx_pages_run_their_scripts_in_chromium_with_no_network(docs):
    validation = next(iter(sorted((docs / "validations").rglob("*.html"))))
    for page in (docs / "index.html", validation):
        dom, console = dump_dom(page)
        assert console == [], f"{page.name}: {console}"
        assert "Great Expectations" in dom
