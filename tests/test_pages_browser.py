"""Both pages of the demo in a real browser (Playwright driving Debian's Chromium): the findings
inside the first 1280x800 viewport, no horizontal overflow at 1,280 px, every image decoded, no
console error, and the page counts when Chromium prints them to PDF with default settings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.slow

#: What a person reads: the demo's run report and its statistics page, and their page limits.
PAGES = {"report": ("report.html", 8), "stats": ("stats/report.html", 6)}


def open_page(browser, path: Path):
    """The page at 1280x800, loaded, with the console errors and failed requests it logged."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.url[:80]}"))
    page.goto(path.as_uri(), wait_until="load")
    return page, errors


@pytest.mark.parametrize("kind", sorted(PAGES))
def test_page_in_a_browser(browser, demo_output, kind):
    page, errors = open_page(browser, demo_output / PAGES[kind][0])
    try:
        box = page.locator("#findings").bounding_box()
        assert box is not None and box["y"] < 800  # the findings start in the first viewport
        first = page.locator("#findings li").first.bounding_box()
        assert first is not None and first["y"] + first["height"] <= 800  # a finding is read
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1280, f"horizontal overflow: {width} px"
        images = page.evaluate(
            "[...document.images].map(i => [i.alt, i.complete && i.naturalWidth > 0])"
        )
        assert images and all(ok for _, ok in images), [alt for alt, ok in images if not ok]
        headers = page.evaluate("[...document.querySelectorAll('th')].map(t => t.textContent)")
        assert not [h for h in headers if "_" in h]  # human headers, no snake_case
        assert errors == []
    finally:
        page.close()


def pdf_pages(pdf: bytes) -> int:
    """Pages of a PDF, counted by poppler's pdfinfo."""
    pdfinfo = shutil.which("pdfinfo")
    if pdfinfo is None:
        pytest.skip("pdfinfo not installed (apt-get install -y poppler-utils)")
    out = subprocess.run([pdfinfo, "-"], input=pdf, capture_output=True, check=True).stdout
    return int(
        next(line.split()[1] for line in out.decode().splitlines() if line.startswith("Pages:"))
    )


@pytest.mark.parametrize("kind", sorted(PAGES))
def test_printed_page_count(demo_output, tmp_path, kind):
    """Chromium's own --print-to-pdf with default settings, as a person prints the page."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium not installed (apt-get install -y chromium)")
    path, limit = PAGES[kind]
    pdf = tmp_path / "out.pdf"
    subprocess.run(
        [CHROMIUM, "--headless", *CHROMIUM_ARGS, f"--user-data-dir={tmp_path / 'profile'}",
         f"--print-to-pdf={pdf}", (demo_output / path).as_uri()],
        capture_output=True, timeout=240, check=False,
    )  # fmt: skip
    assert pdf.exists(), f"chromium printed no PDF of {path}"
    assert pdf_pages(pdf.read_bytes()) <= limit
