"""Headless Chromium (Debian's ``chromium``) for the bulletin PDF, screenshots and the browser tests.

Chromium is started with no network: every host resolves to nothing and the proxy is a closed
port, so a page that tried to fetch anything would show it as a console error.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

NO_NETWORK = ("--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
              "--disable-background-networking", "--disable-component-update", "--no-first-run",
              "--disable-sync", "--disable-default-apps", "--disable-extensions")


def chromium() -> str | None:
    """Path of a Chromium binary, or None when none is installed."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def run_chromium(args: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run headless Chromium with ``args`` (a throwaway profile, no sandbox, no GPU, no network)."""
    binary = chromium()
    if binary is None:
        raise FileNotFoundError("no Chromium found (Debian: apt-get install chromium; `make setup` does it as root)")
    with tempfile.TemporaryDirectory(prefix="govlake-chromium-") as profile:
        cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               f"--user-data-dir={profile}", *NO_NETWORK, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def print_pdf(page: Path, pdf: Path) -> Path:
    """Print ``page`` to ``pdf`` (A4, no header and footer)."""
    result = run_chromium(["--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.resolve().as_uri()])
    if not pdf.exists() or pdf.stat().st_size == 0:
        raise RuntimeError(f"chromium did not write {pdf}: {result.stderr[-500:]}")
    return pdf


def screenshot(page: Path, png: Path, *, width: int = 1280, height: int = 1400) -> Path:
    """A PNG of ``page`` at ``width`` × ``height``."""
    result = run_chromium([f"--screenshot={png}", f"--window-size={width},{height}", "--hide-scrollbars",
                           page.resolve().as_uri()])
    if not png.exists():
        raise RuntimeError(f"chromium did not write {png}: {result.stderr[-500:]}")
    return png


def dump_dom(page: Path) -> tuple[str, list[str]]:
    """The page's DOM after load, and the console messages and page errors Chromium logged."""
    result = run_chromium(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=2000", "--dump-dom",
                           page.resolve().as_uri()])
    console = [line for line in result.stderr.splitlines()
               if "CONSOLE" in line or "Uncaught" in line or "net::ERR" in line or "Failed to load" in line]
    return result.stdout, console
