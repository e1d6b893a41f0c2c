"""Take the README screenshots of a running demo (``python app.py``) with headless Chromium.

    python docs/screenshots/capture.py [URL]      # default http://127.0.0.1:7860/

Sender tab: kodim23, JPEG QF 10, 20 steps and the WebP and AVIF files of the same bytes, then the
step slider moved back to step 8 and the crop placed on the macaw's eye by a click.
Receiver tab: the bitstream downloaded from the sender tab, decoded and enhanced.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
IMAGE = HERE.parent.parent / "assets" / "examples" / "kodim23.png"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
EYE = (213, 213)               # the blue-and-yellow macaw's eye in kodim23 (768 x 512)
DONE = "document.querySelector('#{}-status').innerText.includes('Done')"
SAME_BYTES = "document.querySelector('#send-status').innerText.includes('At the same bytes')"
WAIT_MS = 30 * 60 * 1000      # 20 steps of the real network on a small CPU take minutes


def click_crop(page, kind: str, x: int, y: int) -> None:
    """Click pixel (x, y) of the latest-step image: the full-resolution crop moves there."""
    img = page.locator(f"#{kind}-current img")
    box = img.bounding_box()
    before = page.locator(f"#{kind}-crop img").get_attribute("src")
    img.click(position={"x": box["width"] * x / 768, "y": box["height"] * y / 512})
    page.wait_for_function(f"document.querySelector('#{kind}-crop img').src !== {before!r}")
    page.wait_for_timeout(1500)


def sender(page, out: Path) -> Path:
    page.locator("#input-image input[type=file]").set_input_files(str(IMAGE))
    page.wait_for_selector("#input-image img")
    page.locator("#send-run").click()
    page.wait_for_function(SAME_BYTES, timeout=WAIT_MS)
    slider = page.locator("#send-step input[type=range]")
    slider.focus()
    for _ in range(12):
        slider.press("ArrowLeft")
    page.wait_for_function("document.querySelector('#send-step-md').innerText.startsWith('Step 8 of')")
    click_crop(page, "send", *EYE)
    page.screenshot(path=str(out), full_page=True)
    with page.expect_download() as download:
        page.locator("#send-drc").click()
    drc = Path(tempfile.mkdtemp()) / download.value.suggested_filename
    download.value.save_as(drc)
    return drc


def receiver(page, drc: Path, out: Path) -> None:
    page.get_by_role("tab", name="Receiver: decode a bitstream").click()
    page.locator("#rx-file input[type=file]").set_input_files(str(drc))
    page.wait_for_timeout(1000)
    page.locator("#rx-run").click()
    page.wait_for_function(DONE.format("rx"), timeout=WAIT_MS)
    click_crop(page, "rx", *EYE)
    page.screenshot(path=str(out), full_page=True)


def main(url: str = "http://127.0.0.1:7860/") -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        drc = sender(page, HERE / "sender.png")
        receiver(page, drc, HERE / "receiver.png")
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
