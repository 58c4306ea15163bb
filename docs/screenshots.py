"""Regenerate the README's screenshots of the run report (docs/*.png) in Debian's Chromium.

    cropaudit demo --out /tmp/demo
    cropaudit demo --out /tmp/demo3 --models baseline smartcrop opencv-spectral-residual
    .venv/bin/python docs/screenshots.py /tmp/demo /tmp/demo3

Each shot is one section of report.html at a 1,280 px wide window, cut to at most ``MAX_HEIGHT``
pixels and stored with an adaptive palette (each under 300 KB).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent
MAX_HEIGHT = 1100
#: file name -> (which demo, section id)
SHOTS = {
    "report-findings.png": (0, "findings"),
    "report-croppers.png": (1, "croppers"),
    "report-gallery.png": (0, "gallery"),
}


def main(demos: list[str]) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        for name, (demo, section) in SHOTS.items():
            page.goto((Path(demos[demo]) / "report.html").resolve().as_uri())
            png = page.locator(f"#{section}").screenshot()
            image = Image.open(io.BytesIO(png)).convert("RGB")
            image = image.crop((0, 0, image.width, min(image.height, MAX_HEIGHT)))
            image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(
                DOCS / name, optimize=True
            )
            print(f"{DOCS / name}: {(DOCS / name).stat().st_size / 1000:.0f} KB")
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1:3])
