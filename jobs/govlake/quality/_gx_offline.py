"""Great Expectations Data Docs that open with no network.

GX's page templates link Bootstrap, jQuery and a few plug-ins from public CDNs. :func:`make_offline`
rewrites every page of a freshly rendered Data Docs site to the copies in ``gx_assets/`` (see its
README for versions and licences), installed under the site's ``static/vendor/``; the chart
libraries (vega), which no govlake page uses, are dropped, and the logo comes from the site's own
``static/images``. quality/_gx.py calls it on each run's scratch site before its pages join the
kept one (``var/reports/gx``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from pathlib import Path

ASSETS = Path(__file__).with_name("gx_assets")
VENDOR = "static/vendor"

STYLESHEETS: dict[str, tuple[str, ...]] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": ("bootstrap-4.3.1/bootstrap.min.css",),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        ("bootstrap-table-1.19.1/bootstrap-table.min.css",),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        ("bootstrap-table-1.19.1/bootstrap-table-filter-control.min.css",),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        ("bootstrap-table-1.19.1/bootstrap-table-filter-control.min.css",),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        ("bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.css",),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        ("bootstrap-dark-1.1.0/bootstrap-prefers-dark.min.css",),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        ("fontawesome-free-6.6.0/css/fontawesome.min.css", "fontawesome-free-6.6.0/css/solid.min.css"),
}
"""CDN stylesheet in GX's templates → the vendored file(s) under static/vendor/."""

SCRIPTS: dict[str, str | None] = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery-3.7.1/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js-1.12.9/popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap-4.3.1/bootstrap.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js":
        "bootstrap-table-1.19.1/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table-1.19.1/bootstrap-table-filter-control.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.js",
    "https://cdn.jsdelivr.net/npm/vega@5": None,
    "https://cdn.jsdelivr.net/npm/vega-lite@5": None,
    "https://cdn.jsdelivr.net/npm/vega-embed@6": None,
}
"""CDN script in GX's templates → the vendored file under static/vendor/, or None: dropped (unused)."""

LOGO = re.compile(r'src="https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/([A-Za-z0-9_.-]+)'
                  r'(?:\?[^"]*)?"')
_LINK = re.compile(r"<link\b[^>]*\bhref=\"(https?://[^\"]+)\"[^>]*>", re.IGNORECASE)
_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=\"(https?://[^\"]+)\"[^>]*>\s*</script>\n?", re.IGNORECASE)
REMOTE = re.compile(r"<(?:link\b[^>]*\brel=\"?stylesheet\"?[^>]*\bhref|script\b[^>]*\bsrc)=\"(?:https?:)?//",
                    re.IGNORECASE)
"""A stylesheet or script still fetched from the network (what must not be left on a page)."""

log = logging.getLogger(__name__)


def make_offline(site: Path, *, rendered: Path | None = None) -> list[Path]:
    """Point every HTML page under ``rendered`` (default ``site``; a scratch site laid out like it)
    at the vendored assets, installed in ``site/static/vendor``; returns the pages that still fetch
    a stylesheet or script from the network (none unless a GX upgrade brought a new address: they
    are logged)."""
    install_assets(site / "static")
    pages = rendered or site
    remote = []
    for page in pages.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        fixed = rewrite_page(text, os.path.relpath(pages, page.parent))
        if fixed != text:
            page.write_text(fixed, encoding="utf-8")
        if REMOTE.search(fixed):
            remote.append(page)
    if remote:
        log.warning("GX Data Docs: %d page(s) still load a stylesheet or script from the network (e.g. %s); "
                    "vendor it in jobs/govlake/quality/gx_assets", len(remote), remote[0].name)
    return remote


def rewrite_page(html: str, root: str) -> str:
    """``html`` with the known CDN stylesheets and scripts pointed at ``<root>/static/vendor/…`` (no
    integrity or crossorigin attribute: a file: page cannot make the CORS request they need), the
    unused ones removed, and the logo taken from ``<root>/static/images``."""
    base = f"{root}/{VENDOR}/" if root != "." else f"{VENDOR}/"

    def link(m: re.Match) -> str:
        files = STYLESHEETS.get(m.group(1))
        if files is None:
            return m.group(0)
        return "".join(f'<link rel="stylesheet" href="{base}{f}">' for f in files)

    def script(m: re.Match) -> str:
        if m.group(1) not in SCRIPTS:
            return m.group(0)
        local = SCRIPTS[m.group(1)]
        return "" if local is None else f'<script src="{base}{local}"></script>\n'

    html = _SCRIPT.sub(script, _LINK.sub(link, html))
    images = f"{root}/static/images/" if root != "." else "static/images/"
    return LOGO.sub(lambda m: f'src="{images}{m.group(1)}"', html)


def install_assets(static: Path) -> Path:
    """Copy ``gx_assets`` to ``static/vendor`` unless the same copy is there (its README names the
    versions); a concurrent run that installed it first wins, and nothing is left half copied."""
    target = static / "vendor"
    marker = target / "README.md"
    if marker.is_file() and marker.read_bytes() == (ASSETS / "README.md").read_bytes():
        return target
    static.mkdir(parents=True, exist_ok=True)
    fresh = static / f".vendor-{uuid.uuid4().hex}"
    shutil.copytree(ASSETS, fresh)
    old = static / f".vendor-old-{uuid.uuid4().hex}"
    try:
        if target.exists():
            target.rename(old)
        fresh.rename(target)
    except OSError:  # another run replaced it at the same moment: theirs stays
        shutil.rmtree(fresh, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return target
