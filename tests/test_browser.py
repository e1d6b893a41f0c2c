"""A real browser on the app: upload, run, watch the steps stream in (status line and the
distortion–perception plane), compare with WebP and AVIF, move the step slider."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from app_server import serve, slowed
from dirac_demo import DiracPipeline
from dirac_demo.protect import DEFAULT_FEATHER
from dirac_demo.web.crop import GAP
from dirac_demo.web.paint import brush_radius

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
STEPS = 8

# Record every text the status line shows, so updates that come and go are still seen.
WATCH_STATUS = """() => {
  window.statusTexts = [];
  const node = document.querySelector('#send-status');
  new MutationObserver(() => window.statusTexts.push(node.innerText))
    .observe(node, {subtree: true, childList: true, characterData: true});
}"""

# Record how many points the distortion–perception plane draws each time its chart changes.
POINTS = "document.querySelectorAll('#send-plane [aria-roledescription=point]').length"
WATCH_PLANE = """() => {
  window.planeCounts = [];
  const node = document.querySelector('#send-plane');
  new MutationObserver(() => window.planeCounts.push(%s))
    .observe(node, {subtree: true, childList: true, attributes: true});
}""" % POINTS


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent (CI installs it with apt-get install chromium, see .ci/run)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def url(tiny_assets, tmp_path_factory):
    pipe = DiracPipeline.from_pretrained(str(tiny_assets), device="cpu", precision="fp32")
    with serve(slowed(pipe, 0.3), str(tmp_path_factory.mktemp("browser-work"))) as url:
        yield url


def _set_slider(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def _wait_text(page, elem_id: str, test: str, timeout: int = 30_000) -> None:
    """Wait until the text of #elem_id passes ``test``, e.g. ".includes('Done')"."""
    page.wait_for_function(f"(document.querySelector('#{elem_id}')?.innerText ?? ''){test}", timeout=timeout)


def _open_with_photo(browser, url, photo_path, steps: int, width: int = 1400, height: int = 1000):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    page.locator("#input-image input[type=file]").set_input_files(str(photo_path))
    page.wait_for_selector("#input-image img")
    _set_slider(page, "send-steps", steps)
    return page


def test_upload_run_stream_and_scrub(browser, url, photo_path):
    page = _open_with_photo(browser, url, photo_path, STEPS)
    page.evaluate(WATCH_STATUS)
    page.evaluate(WATCH_PLANE)
    page.locator("#send-run").click()
    _wait_text(page, "send-status", ".includes('At the same bytes')", timeout=90_000)
    seen = page.evaluate("window.statusTexts")
    lines = [line for text in seen for line in text.splitlines()]
    steps_seen = {line.split(" · ")[0] for line in lines if line.startswith("Step ")}
    assert len(steps_seen) >= 3, seen          # several steps arrived one by one, not only the last
    compressed = next(text for text in seen if "bytes" in text)   # the compression shows first
    assert "bpp" in compressed and "PSNR" in compressed and "SWD" in compressed and "Step " not in compressed
    assert any("Done" in text and "WebP and AVIF files of at most" in text for text in seen)   # pending, said
    assert page.locator("#send-step-md").inner_text().startswith(f"Step {STEPS} of {STEPS}")
    assert "SWD" in page.locator("#send-step-md").inner_text()

    # the plane grew while the steps streamed: (steps so far + 1) + base + chosen step, then WebP and AVIF
    final = (STEPS + 1) + 2 + 2
    page.wait_for_function(f"{POINTS} === {final}")
    counts = page.evaluate("window.planeCounts")
    growing = sorted({n for n in counts if 3 < n < STEPS + 3})
    assert len(growing) >= 3, counts           # several partial runs drawn, not only the finished one
    legend = page.evaluate("document.querySelector('#send-plane .role-legend').textContent")
    assert all(kind in legend for kind in ("steps", "base", "chosen", "WebP", "AVIF")), legend

    # WebP and AVIF at the same bytes are offered as references for the before/after slider
    reference_image = "document.querySelectorAll('#send-compare img')[0].src"
    with_original = page.evaluate(reference_image)
    webp = page.locator("#send-reference label", has_text="WebP")
    assert "bytes" in webp.inner_text() and page.locator("#send-reference label", has_text="AVIF").count() == 1
    webp.click()
    page.wait_for_function(f"{reference_image} !== {with_original!r}", timeout=30_000)
    _wait_text(page, "send-step-md", ".includes('Compared with WebP quality')")

    step_image = "document.querySelectorAll('#send-compare img')[1].src"
    after_run = page.evaluate(step_image)
    slider = page.locator("#send-step input[type=range]")
    slider.focus()
    slider.press("Home")                        # back to step 0: the base reconstruction
    _wait_text(page, "send-step-md", ".startsWith('Step 0 of')")
    page.wait_for_function(f"{step_image} !== {after_run!r}", timeout=30_000)
    slider.press("ArrowRight")
    _wait_text(page, "send-step-md", ".startsWith('Step 1 of')")
    assert page.locator("#send-png").is_enabled()
    page.close()


def test_an_error_after_a_run_leaves_no_stale_controls(browser, url, photo_path, tmp_path):
    page = _open_with_photo(browser, url, photo_path, 1)
    page.locator("#send-run").click()
    _wait_text(page, "send-status", ".includes('Done')", timeout=90_000)
    assert page.locator("#send-png").is_enabled() and page.locator("#send-drc").is_enabled()
    big = tmp_path / "big.png"
    Image.new("RGB", (2100, 2100), "gray").save(big)                      # over the pipeline's 4 MP limit
    page.locator("#input-image input[type=file]").set_input_files(str(big))
    page.wait_for_selector("#input-image img")
    page.locator("label", has_text="Downscale images over").first.click() # untick: the run is refused
    page.locator("#send-run").click()
    _wait_text(page, "send-status", ".includes('⚠️')", timeout=60_000)
    assert "Downscale images over" in page.locator("#send-status").inner_text()
    assert not page.locator("#send-png").is_enabled() and not page.locator("#send-drc").is_enabled()
    assert page.locator("#send-step input[type=range]").is_disabled()
    assert page.locator("#send-compare img").count() == 0 and page.locator("#send-current img").count() == 0
    page.close()


def test_stop_cancels_between_steps(browser, url, photo_path):
    page = _open_with_photo(browser, url, photo_path, 30)
    page.locator("#send-run").click()             # any step from 2 on: the page may skip a status
    _wait_text(page, "send-status", ".match(/Step (\\d+) of 30/)?.[1] >= 2", timeout=60_000)
    page.locator("#send-stop").click()
    _wait_text(page, "send-status", ".includes('Stopped after')")
    page.wait_for_timeout(1500)                 # a stopped run must not overwrite the page later
    status = page.locator("#send-status").inner_text()
    stopped = int(status.split("Stopped after ")[1].split(" of")[0])
    assert "Done" not in status and 2 <= stopped < 30
    slider = page.locator("#send-step input[type=range]")
    assert slider.is_enabled() and slider.get_attribute("max") == str(stopped)
    page.close()


def test_neural_codec_with_refined_encoder(browser, url, photo_path):
    """Picking the neural codec shows the refinement box; ticked, the page says it is refining,
    then shows the compressed file and runs the steps."""
    page = _open_with_photo(browser, url, photo_path, 2)
    refine = page.locator("#send-refine input[type=checkbox]")
    assert not refine.is_visible()              # JPEG: no refinement
    page.locator("#send-codec label", has_text="Neural codec").click()
    refine.wait_for(state="visible")
    _set_slider(page, "send-steps", 2)
    refine.check()
    page.evaluate(WATCH_STATUS)
    page.locator("#send-run").click()
    _wait_text(page, "send-status", ".includes('Done')", timeout=90_000)
    seen = page.evaluate("window.statusTexts")
    assert any("Refining the encoding" in text for text in seen), seen
    assert "bpp" in page.locator("#send-status").inner_text()
    assert page.locator("#send-step-md").inner_text().startswith("Step 2 of 2")
    page.close()


def test_receiver_takes_a_dropped_jpeg_and_streams_its_steps(browser, url, photo, tmp_path):
    jpg = tmp_path / "from_a_camera.jpg"
    photo.save(jpg, format="JPEG", quality=15, progressive=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.get_by_role("tab", name="Receiver: decode a bitstream").click()
    page.locator("#rx-file input[type=file]").set_input_files(str(jpg))
    page.wait_for_timeout(1000)
    page.locator("#rx-run").click()
    _wait_text(page, "rx-status", ".includes('Done')", timeout=90_000)
    status = page.locator("#rx-status").inner_text()
    assert "JPEG quality factor 15" in status and "JPEG file 96x72" in status and "progressive" in status
    assert page.locator("#rx-step-md").inner_text().startswith("Step 20 of 20")
    page.close()


def test_zoomed_crop_keeps_its_pixels_and_scrolls_sideways_on_a_phone(browser, url, photo_path):
    """At 3× on a 390-pixel-wide screen the crop (original | base | step) is wider than the page:
    it keeps its pixel size and scrolls from its left edge to its right one, every panel in reach."""
    page = _open_with_photo(browser, url, photo_path, 1, width=390, height=844)
    page.get_by_label("3×").check()
    page.locator("#send-run").click()
    _wait_text(page, "send-status", ".includes('Done')", timeout=90_000)
    page.locator("#send-crop").scroll_into_view_if_needed()       # the page loads images as they come in view
    page.wait_for_function("document.querySelector('#send-crop img')?.naturalWidth > 0")
    where = """() => { const img = document.querySelector('#send-crop img'), box = img.closest('button');
        const i = img.getBoundingClientRect(), b = box.getBoundingClientRect();
        return {natural: img.naturalWidth, shown: i.width, left: i.left - b.left, right: i.right - b.right,
                scroll: box.scrollWidth, width: box.clientWidth}; }"""
    start = page.evaluate(where)
    assert start["natural"] == start["shown"] == 3 * 3 * 96 + 2 * GAP      # 1:1, not scaled or cut
    assert abs(start["left"]) < 1 and start["scroll"] == start["natural"] > start["width"]
    page.evaluate("document.querySelector('#send-crop img').closest('button').scrollLeft = 1e6")
    assert abs(page.evaluate(where)["right"]) < 1                          # the step panel's right edge
    page.close()


@pytest.fixture(scope="module")
def cached_url(tiny_assets, photo, tmp_path_factory):
    """The page with two small examples whose runs are cached before it serves."""
    import app
    folder = tmp_path_factory.mktemp("examples")
    photo.save(folder / "a.png")
    photo.save(folder / "b.jpg", quality=40)
    shipped, app.EXAMPLES = app.EXAMPLES, folder
    pipe = DiracPipeline.from_pretrained(str(tiny_assets), device="cpu", precision="fp32")
    try:
        with serve(pipe, str(tmp_path_factory.mktemp("cached-work")), example_cache="now") as url:
            yield url if slowed(pipe, 0.3) else None    # live runs slowed once the cache is built
    finally:
        app.EXAMPLES = shipped


def test_a_cached_example_shows_its_finished_run_and_a_run_scrolls_to_the_results(browser, cached_url):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(cached_url)
    thumb = page.locator("#example-gallery img").first
    thumb.wait_for()
    assert page.evaluate("document.querySelector('#example-gallery img').naturalWidth") <= 160
    page.evaluate("document.addEventListener('click', () => { window.clickedAt ??= performance.now(); }, true)")
    thumb.click()                                # timed from the click the page receives
    _wait_text(page, "send-step-md", ".startsWith('Step 20 of 20')", timeout=2_000)
    assert page.evaluate("performance.now() - window.clickedAt") < 2_000
    assert "Precomputed run" in page.locator("#send-status").inner_text()
    assert page.locator("#send-step input[type=range]").is_enabled() and page.locator("#send-png").is_enabled()
    page.wait_for_selector("#input-image img")               # the full file is the input
    page.evaluate("window.scrollTo(0, 0)")
    page.locator("#send-run").click()
    page.wait_for_function("""(() => { const r = document.querySelector('#send-results').getBoundingClientRect();
        return r.top >= -1 && r.top < window.innerHeight / 2; })()""", timeout=2_000)   # the run takes 6 s
    page.locator("#send-stop").click()          # no run left computing when the server closes
    _wait_text(page, "send-status", ".match(/Stopped after|Done/)", timeout=30_000)
    page.close()


# The composed step in the before/after slider, and the paint editor's zoom ("469%": image pixels to canvas).
STEP_IMAGE = "document.querySelectorAll('#send-compare img')[1]?.src"
ZOOM = """parseFloat([...document.querySelectorAll('#send-paint *')]
    .find(e => e.children.length === 0 && /^\\d+%$/.test(e.textContent.trim()))?.textContent)"""
EDITOR_ZOOM = f"() => {ZOOM}"
# The editor has loaded an image of [width, height] pixels: it fits its canvas at the zoom shown (an
# empty editor shows its 800 x 800 default canvas at a smaller zoom).
EDITOR_FITS = f"""([w, h]) => {{ const c = document.querySelector('#send-paint canvas'), z = {ZOOM} / 100;
    return c && z && w * z <= c.clientWidth + 1 && h * z <= c.clientHeight + 1
        && (w * z > c.clientWidth / 2 || h * z > c.clientHeight / 2); }}"""


def _fetch(page, src: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB")).astype(int)


def _editor_ready(page, size: tuple[int, int]) -> None:
    """Wait until the editor shows an image of ``size`` at a zoom that no longer changes."""
    page.wait_for_function(EDITOR_FITS, arg=list(size), timeout=30_000)
    zoom = page.evaluate(EDITOR_ZOOM)
    for _ in range(20):
        page.wait_for_timeout(500)
        if zoom == (zoom := page.evaluate(EDITOR_ZOOM)):
            return


def _stroke(page, y: float, x0: float, x1: float, size: tuple[int, int]) -> None:
    """Drag the brush along row ``y`` from column ``x0`` to ``x1`` of the image (its pixels): the editor
    shows the image centred in its canvas at its zoom."""
    canvas = page.locator("#send-paint canvas").first.bounding_box()
    scale = page.evaluate(EDITOR_ZOOM) / 100
    left = canvas["x"] + (canvas["width"] - size[0] * scale) / 2
    top = canvas["y"] + (canvas["height"] - size[1] * scale) / 2
    page.mouse.move(left + x0 * scale, top + y * scale)
    page.mouse.down()
    page.mouse.move(left + x1 * scale, top + y * scale, steps=12)
    page.mouse.up()


def test_a_painted_stroke_keeps_its_region_at_step_1_and_nothing_else_changes(browser, url, photo_path):
    page = _open_with_photo(browser, url, photo_path, 3)
    page.locator("#send-run").click()
    _wait_text(page, "send-status", ".includes('At the same bytes')", timeout=90_000)
    page.locator("#send-paint canvas").first.scroll_into_view_if_needed()
    _editor_ready(page, (96, 72))
    before_src = page.evaluate(STEP_IMAGE)
    before = _fetch(page, before_src)
    _stroke(page, 20, 20, 60, (96, 72))
    page.wait_for_function(f"{STEP_IMAGE} !== {before_src!r}", timeout=30_000)
    after = _fetch(page, page.evaluate(STEP_IMAGE))
    changed = np.abs(after - before).sum(-1) > 0
    rows, cols = np.nonzero(changed)
    reach = brush_radius(96, 72) + DEFAULT_FEATHER + 2        # the brush, the feather band and antialiasing
    assert changed[20, 30:50].all()                            # the stroke's middle is composed
    assert rows.min() >= 20 - reach and rows.max() <= 20 + reach, (rows.min(), rows.max())
    assert cols.min() >= 20 - reach and cols.max() <= 60 + reach, (cols.min(), cols.max())
    assert "keeps step 1; the rest shows step 3" in page.locator("#send-paint-md").inner_text()

    composed_src = page.evaluate(STEP_IMAGE)
    page.locator("#send-paint-on input").uncheck()              # protection off: the step as it is
    page.wait_for_function(f"{STEP_IMAGE} !== {composed_src!r}", timeout=30_000)
    assert np.array_equal(_fetch(page, page.evaluate(STEP_IMAGE)), before)
    page.locator("#send-paint-on input").check()
    page.wait_for_function(f"{STEP_IMAGE} === {composed_src!r}", timeout=30_000)
    page.locator("#send-paint-clear").click()                  # cleared: the step as it is, nothing painted
    _wait_text(page, "send-paint-md", ".startsWith('Nothing painted')")
    assert np.array_equal(_fetch(page, page.evaluate(STEP_IMAGE)), before)

    page.locator("#send-run").click()                          # a new run empties the editor at once
    page.wait_for_function(f"!({EDITOR_FITS})([96, 72])", timeout=5_000)
    _wait_text(page, "send-status", ".includes('Done')", timeout=90_000)
    _editor_ready(page, (96, 72))                              # and shows its last step once done
    page.close()


@pytest.fixture(scope="module")
def page_limit_url(tiny_assets, tmp_path_factory):
    """The page as deployed: 1 MP per image (``DIRAC_MAX_PIXELS``' default)."""
    from dirac_demo.web.settings import APP_MAX_PIXELS
    pipe = DiracPipeline.from_pretrained(str(tiny_assets), device="cpu", precision="fp32", max_pixels=APP_MAX_PIXELS)
    with serve(slowed(pipe, 0.3), str(tmp_path_factory.mktemp("window-work")), example_cache="off") as url:
        yield url


def test_a_12_mp_jpeg_is_enhanced_in_a_chosen_full_resolution_window(browser, page_limit_url, tmp_path):
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:3024, 0:4032].astype(np.float32)
    pixels = np.stack([xx / 16, yy / 12, (xx + yy) / 28], -1) % 256 + rng.normal(0, 8, (3024, 4032, 3))
    jpg = tmp_path / "IMG_4032.jpg"
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(jpg, quality=30)
    del pixels
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(page_limit_url)
    page.locator("#input-image input[type=file]").set_input_files(str(jpg))
    _wait_text(page, "send-file-note", ".includes('full-resolution')", timeout=60_000)
    assert "4032×3024" in page.locator("#send-file-note").inner_text()
    picker = page.locator("#window-picker img")
    picker.wait_for(timeout=30_000)
    _wait_text(page, "window-picker", ".includes('Window 1024×1024 at x 1504, y 992 of 4032×3024')")
    box = picker.bounding_box()
    picker.click(position={"x": box["width"] * 0.1, "y": box["height"] * 0.1})   # near the top left corner
    _wait_text(page, "window-picker", ".includes('at x 0, y 0 of')", timeout=30_000)
    _set_slider(page, "send-steps", 3)
    page.evaluate(WATCH_STATUS)
    page.locator("#send-as-is").click()
    _wait_text(page, "send-status", ".includes('Done')", timeout=120_000)
    seen = page.evaluate("window.statusTexts")
    steps_seen = {line.split(" · ")[0] for text in seen for line in text.splitlines() if line.startswith("Step ")}
    assert len(steps_seen) >= 2, seen                   # the steps streamed in one by one
    status = page.locator("#send-status").inner_text()
    assert "1024×1024" in status and "window at x 0, y 0 of its 4032×3024 pixels, enhanced at 100 %" in status
    shown = _fetch(page, page.evaluate("document.querySelectorAll('#send-compare img')[1].src"))
    assert shown.shape[:2] == (1024, 1024)              # full resolution: the window's own pixels, not a downscale
    page.close()
