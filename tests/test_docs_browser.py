"""The built site renders in a real browser: headless Chromium (Debian's package) opens three pages."""
from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _chromium(*args: str) -> str:
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _dom(page: Path) -> str:
    return _chromium("--dump-dom", page.as_uri())


def _relative_targets(page: Path, dom: str) -> list[Path]:
    targets = []
    for url in re.findall(r'(?:href|src)="([^"]+)"', dom):
        url = html.unescape(url)
        parts = urlsplit(url)
        if parts.scheme or url.startswith(("#", "//", "data:", "mailto:")) or not parts.path:
            continue
        target = (page.parent / unquote(parts.path)).resolve()
        targets.append(target / "index.html" if target.is_dir() or url.endswith("/") else target)
    return targets


@pytest.mark.parametrize("rel, title", [
    ("index.html", "acezoo"),
    ("studies/nbody-egnn/index.html", "N-body, EGNN"),
    ("api/trainer/index.html", "Trainer"),
])
def test_page_renders_with_navigation_and_no_broken_link(site, rel, title):
    page = site / rel
    assert page.is_file()
    dom = _dom(page)
    assert re.search(r"<title>[^<]*" + re.escape(title), dom), f"title of {rel}"
    assert 'class="md-nav' in dom and "Command line" in dom, "the navigation did not render"
    broken = [str(t) for t in _relative_targets(page, dom) if not t.exists()]
    assert not broken, f"broken links in {rel}: {broken}"
    if rel.startswith("studies/"):
        images = re.findall(r'<img[^>]+src="([^"]+\.png)"', dom)
        assert images, "the study page shows no plot"
        assert all((page.parent / unquote(src)).resolve().is_file() for src in images)


def test_home_page_screenshot(site, tmp_path):
    shot = tmp_path / "home.png"
    _chromium(f"--screenshot={shot}", "--window-size=1280,900", (site / "index.html").as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000
    keep = ROOT / "docs" / "site" / "assets" / "home.png"
    if not keep.exists():
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, keep)
