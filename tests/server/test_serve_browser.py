"""End to end: the real page in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) against a real uvicorn server on localhost."""

from __future__ import annotations

import json
import shutil
import time
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image
from serve_helpers import LiveServer, colorizer, lab, needs_hints  # noqa: F401 (fixture)

from chromatize import color
from chromatize.server import create_app

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                "(pip install selenium)")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
BLUE = "#1030ff"

# The pixel of the shown result (the <img id="result">, maybe a smaller preview) at pixel
# (x, y) of a photo ``arguments[2]`` pixels wide.
READ_PIXEL = """
const img = document.getElementById('result');
const canvas = document.createElement('canvas');
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
const g = canvas.getContext('2d'); g.drawImage(img, 0, 0);
const s = img.naturalWidth / arguments[2];
return Array.from(g.getImageData(Math.floor(arguments[0] * s), Math.floor(arguments[1] * s),
                                 1, 1).data.slice(0, 3));
"""


def wait_for(condition, timeout: float = 300, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def browser(tmp_path):
    if not CHROMIUM or not DRIVER:
        pytest.skip("headless browser test: chromium and chromedriver not found on PATH "
                    "(apt-get install -y chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--disable-gpu"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    except Exception as e:  # a driver that does not match the browser, no display libs...
        pytest.skip(f"headless browser test: chromium could not start ({str(e).splitlines()[0]})")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


@needs_hints
def test_page_colours_a_point_and_downloads(browser, colorizer, tmp_path):  # noqa: F811
    # A gray photo with a flat middle band, where a blue point should show. Larger than it
    # is shown, so the page's updates are smaller previews and the download is full size.
    w, h = 640, 480
    y, x = np.mgrid[0:h, 0:w]
    gray = (90 + 60 * np.sin(x / 25.0) * (np.abs(y - h / 2) > h / 5)).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "street.png")
    px, py = w // 2, h // 2

    with LiveServer(create_app(colorizer, model_name="default")) as server:
        browser.get(server.url + "/")
        browser.find_element("id", "file-input").send_keys(str(tmp_path / "street.png"))
        stats = lambda: browser.execute_script("return window.chromatizeStats")  # noqa: E731
        wait_for(lambda: stats()["results"] >= 1, what="the first result")
        before = browser.execute_script(READ_PIXEL, px, py, w)

        # Click the result at image pixel (px, py): a point, selected, with its palette.
        stage = browser.find_element("id", "stage")
        rect = browser.execute_script("return arguments[0].getBoundingClientRect().toJSON()", stage)
        dx = (px + 0.5) / w * rect["width"] - rect["width"] / 2
        dy = (py + 0.5) / h * rect["height"] - rect["height"] / 2
        webdriver.ActionChains(browser).move_to_element_with_offset(stage, dx, dy).click().perform()
        wait_for(lambda: browser.find_elements("css selector", "#palette .swatch"),
                 what="the suggested colours")
        assert len(browser.find_elements("css selector", "#points .point")) == 1

        # A colour from the free picker (its native dialog cannot be driven: set its value).
        shown = stats()["results"]
        browser.execute_script(
            "const p = document.getElementById('picker'); p.value = arguments[0];"
            "p.dispatchEvent(new Event('input', {bubbles: true}));", BLUE)
        wait_for(lambda: stats()["results"] > shown, what="the re-solved result")
        after = browser.execute_script(READ_PIXEL, px, py, w)
        want = color.rgb_to_lab_np(np.array([0x10, 0x30, 0xFF]) / 255)[1:]
        got = color.rgb_to_lab_np(np.array(after) / 255)[1:]
        assert np.hypot(*(got - want)) < 15, (before, after)
        assert np.abs(np.array(after) - np.array(before)).max() > 30

        # Downloads: the result at full size, and the points for `colorize --marks`.
        browser.find_element("id", "download-png").click()
        png = wait_for(lambda: list(browser.downloads.glob("street_colorized.png")),
                       what="the PNG download")[0]
        browser.find_element("id", "download-points").click()
        points_file = wait_for(lambda: list(browser.downloads.glob("street_points.json")),
                               what="the points download")[0]
        time.sleep(0.2)  # let Chromium finish renaming its .crdownload files
        result = Image.open(png)
        assert result.size == (w, h)
        assert browser.execute_script("return document.getElementById('result').naturalWidth") < w
        assert np.hypot(*(lab(result)[py, px, 1:] - want)) < 15
        assert np.abs(lab(result)[..., 0] - color.gray_to_l_lut(8)[gray]).max() < 1.5
        points = json.loads(points_file.read_text())
        # The click lands within a screen pixel of (px, py): up to 2 photo pixels.
        assert abs(points[0]["x"] - px) <= 2 and abs(points[0]["y"] - py) <= 2
        assert [{**p, "x": px, "y": py} for p in points] == [{"x": px, "y": py, "color": BLUE,
                                                              "radius": 4}]
        from chromatize.inference.hints import load_marks

        hint_ab, hint_mask = load_marks(points, Image.fromarray(gray))
        assert hint_mask[py, px] and np.hypot(*(hint_ab[py, px] - want)) < 1

        # The keyboard: Delete removes the focused point, Ctrl+Z brings it back.
        point = browser.find_element("css selector", "#points .point")
        point.send_keys(webdriver.Keys.DELETE)
        assert not browser.find_elements("css selector", "#points .point")
        webdriver.ActionChains(browser).key_down(webdriver.Keys.CONTROL).send_keys("z") \
            .key_up(webdriver.Keys.CONTROL).perform()
        assert len(browser.find_elements("css selector", "#points .point")) == 1
        resolves = stats()["resolves"]
        print(f"\nre-solve latency seen by the page ({w}x{h}): {resolves[-1]:.0f} ms")

        # Nothing was requested from another host.
        hosts = set()
        for entry in browser.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                url = urlparse(message["params"]["request"]["url"])
                hosts.add(url.scheme if url.scheme in ("data", "blob") else url.netloc)
        assert hosts and hosts <= {f"127.0.0.1:{server.port}", "data", "blob"}, hosts
