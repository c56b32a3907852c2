"""End to end: the real page in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) against a real uvicorn server on localhost.

A scripted first-time user opens a photo, reads the guidance, clicks a wrong region, picks
a saturated colour from the palette, limits the point's reach, zooms, drags the
before/after divider, downloads the result and the fix, and ``chromatize colorize --marks
FIX`` gives the same pixels with no other option."""

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
RECT = "return arguments[0].getBoundingClientRect().toJSON()"


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


def street(w: int = 640, h: int = 480) -> np.ndarray:
    """A gray photo: a light sky above, a textured street below, a flat band between."""
    y, x = np.mgrid[0:h, 0:w]
    gray = 90 + 60 * np.sin(x / 25.0) * (np.abs(y - h / 2) > h / 5)
    gray[: h // 4] = 200 - 20 * y[: h // 4] / (h / 4)
    return gray.astype(np.uint8)


def click_photo(browser, x: int, y: int, size: tuple[int, int]) -> None:
    """Click the shown photo at image pixel (x, y), whatever its zoom."""
    stage = browser.find_element("id", "stage")
    rect = browser.execute_script(RECT, stage)
    dx = (x + 0.5) / size[0] * rect["width"] - rect["width"] / 2
    dy = (y + 0.5) / size[1] * rect["height"] - rect["height"] / 2
    webdriver.ActionChains(browser).move_to_element_with_offset(stage, dx, dy).click().perform()


def point_in_image(browser, size: tuple[int, int]) -> tuple[float, float]:
    """Where the (only) point marker's centre lies on the photo, in image pixels."""
    point = browser.find_element("css selector", "#points .point")
    p = browser.execute_script(RECT, point)
    s = browser.execute_script(RECT, browser.find_element("id", "stage"))
    return ((p["x"] + p["width"] / 2 - s["x"]) / s["width"] * size[0],
            (p["y"] + p["height"] / 2 - s["y"]) / s["height"] * size[1])


@needs_hints
def test_a_first_time_user_fixes_a_colour_and_the_cli_reproduces_it(browser, colorizer,  # noqa: F811
                                                                    tmp_path):
    # Larger than it is shown, so updates are smaller previews and downloads full size.
    w, h = 640, 480
    gray = street(w, h)
    Image.fromarray(gray).save(tmp_path / "street.png")
    px, py = w // 2, h // 2
    by_id = lambda name: browser.find_element("id", name)  # noqa: E731
    stats = lambda: browser.execute_script("return window.chromatizeStats")  # noqa: E731

    with LiveServer(create_app(colorizer, model_name="default")) as server:
        browser.get(server.url + "/")
        by_id("file-input").send_keys(str(tmp_path / "street.png"))
        wait_for(lambda: stats()["results"] >= 1, what="the first result")
        # The page says what to do next.
        guide = wait_for(lambda: by_id("guide").is_displayed() and by_id("guide"),
                         what="the guidance line")
        assert "Click it on the photo" in guide.text

        # A wrong region: a click places a point there and opens its palette.
        click_photo(browser, px, py, (w, h))
        wait_for(lambda: browser.find_elements("css selector", "#vivid .swatch"),
                 what="the vivid suggestions")
        assert not by_id("guide").is_displayed()  # the point was placed: the tip goes
        assert "%" not in by_id("palette").text  # likelihoods are bars, not numbers
        assert len(browser.find_elements("css selector", "#common .swatch")) >= 6

        # A saturated colour from the palette: the vivid row's first swatch.
        shown = stats()["results"]
        swatch = browser.find_elements("css selector", "#vivid .swatch")[0]
        chosen = swatch.get_attribute("data-color")
        swatch.click()
        wait_for(lambda: stats()["results"] > shown, what="the re-solved result")
        want = color.rgb_to_lab_np(np.array([int(chosen[i:i + 2], 16) for i in (1, 3, 5)])
                                   / 255)[1:]
        got = color.rgb_to_lab_np(np.array(browser.execute_script(READ_PIXEL, px, py, w))
                                  / 255)[1:]
        assert np.hypot(*want) > 25 and np.hypot(*(got - want)) < 15, (chosen, got)
        # The arrow keys move between swatches.
        swatch = browser.find_elements("css selector", "#vivid .swatch")[0]
        swatch.send_keys(webdriver.Keys.ARROW_DOWN)
        assert browser.switch_to.active_element.get_attribute("class") == "swatch"
        assert browser.switch_to.active_element != swatch

        # Limit its reach.
        shown = stats()["results"]
        browser.find_element("css selector", 'input[name="reach"][value="local"]') \
            .find_element("xpath", "..").click()
        wait_for(lambda: stats()["results"] > shown, what="the local result")
        assert "Only this spot" in by_id("reach-explain").text

        # Zoom in twice: the point stays on its pixel; zoom back out.
        before = point_in_image(browser, (w, h))
        by_id("stage").send_keys("+")
        by_id("zoom-in").click()
        assert by_id("zoom-value").text == "188%"
        after = point_in_image(browser, (w, h))
        assert np.hypot(after[0] - before[0], after[1] - before[1]) < 2, (before, after)
        by_id("zoom-fit").click()

        # Before/after: B shows the divider on the photo; drag it to the left.
        by_id("stage").send_keys("b")
        divider = by_id("divider")
        assert divider.is_displayed()
        webdriver.ActionChains(browser).drag_and_drop_by_offset(divider, -120, 0).perform()
        split = float(divider.get_attribute("aria-valuenow"))
        assert split < 45, split
        assert "inset" in by_id("result").value_of_css_property("clip-path")

        # Downloads: the result at full size, and the fix with its settings.
        by_id("download-png").click()
        png = wait_for(lambda: list(browser.downloads.glob("street_colorized.png")),
                       what="the PNG download")[0]
        by_id("download-fix").click()
        fix_file = wait_for(lambda: list(browser.downloads.glob("street_fix.json")),
                            what="the fix download")[0]
        time.sleep(0.3)  # let Chromium finish renaming its .crdownload files
        assert "street_fix.json" in by_id("status").text  # stays until the next action
        assert by_id("command").text == "chromatize colorize street.png --marks street_fix.json"
        fix = json.loads(fix_file.read_text())
        assert set(fix) >= {"marks", "boost", "gain", "model"} and fix["model"] == "default"
        (mark,) = fix["marks"]
        assert abs(mark["x"] - px) <= 2 and abs(mark["y"] - py) <= 2
        assert mark["color"] == chosen and mark["reach"] == "local"
        result = Image.open(png)
        assert result.size == (w, h)
        assert np.abs(lab(result)[..., 0] - color.gray_to_l_lut(8)[gray]).max() < 1.5

        # The command line reproduces the page's result from the fix alone.
        from typer.testing import CliRunner

        from chromatize.cli import app

        (tmp_path / "cli").mkdir()
        shutil.copy(tmp_path / "street.png", tmp_path / "cli" / "street.png")
        out = CliRunner().invoke(app, ["colorize", str(tmp_path / "cli" / "street.png"),
                                       "--marks", str(fix_file)])
        assert out.exit_code == 0, out.output
        cli = np.asarray(Image.open(tmp_path / "cli" / "street_colorized.png").convert("RGB"))
        page = np.asarray(result.convert("RGB"))
        assert np.abs(cli.astype(int) - page).max() <= 1

        # The keyboard: Delete removes the focused point, Ctrl+Z brings it back.
        point = browser.find_element("css selector", "#points .point")
        point.send_keys(webdriver.Keys.DELETE)
        assert not browser.find_elements("css selector", "#points .point")
        webdriver.ActionChains(browser).key_down(webdriver.Keys.CONTROL).send_keys("z") \
            .key_up(webdriver.Keys.CONTROL).perform()
        assert len(browser.find_elements("css selector", "#points .point")) == 1
        print(f"\nre-solve latency seen by the page ({w}x{h}): {stats()['resolves'][-1]:.0f} ms")

        # Nothing was requested from another host.
        hosts = set()
        for entry in browser.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                url = urlparse(message["params"]["request"]["url"])
                hosts.add(url.scheme if url.scheme in ("data", "blob") else url.netloc)
        assert hosts and hosts <= {f"127.0.0.1:{server.port}", "data", "blob"}, hosts


@needs_hints
def test_several_photos_keep_their_fixes_and_download_as_one_zip(browser, colorizer,  # noqa: F811
                                                                 tmp_path):
    import zipfile

    for name, seed in (("one.png", 1), ("two.png", 2)):
        Image.fromarray(np.roll(street(96, 64), seed * 7, axis=1)).save(tmp_path / name)
    (tmp_path / "notes.jpg").write_bytes(b"not a photo at all")
    by_id = lambda name: browser.find_element("id", name)  # noqa: E731
    stats = lambda: browser.execute_script("return window.chromatizeStats")  # noqa: E731

    with LiveServer(create_app(colorizer, model_name="default")) as server:
        browser.get(server.url + "/")
        # An unreadable file: named once, with what to do; the status stays.
        by_id("file-input").send_keys(str(tmp_path / "notes.jpg"))
        status = wait_for(lambda: "error" in by_id("status").get_attribute("class")
                          and by_id("status").text, what="the error")
        assert status.count("notes.jpg") == 1 and "JPEG, PNG, TIFF and WebP" in status
        assert "Pillow" not in status
        time.sleep(0.5)
        assert by_id("status").text == status

        by_id("file-input").send_keys(f"{tmp_path / 'one.png'}\n{tmp_path / 'two.png'}")
        wait_for(lambda: len(browser.find_elements("css selector", "#photos button")) == 2,
                 what="two photos in the strip")
        wait_for(lambda: stats()["results"] >= 1, what="the first result")
        # A point and a gain on the first photo; the gain goes to both.
        results = stats()["results"]
        click_photo(browser, 40, 30, (96, 64))
        wait_for(lambda: stats()["results"] > results, what="the result with the point")
        # K: a click keeps the colour the photo has there (a square marker); F: back.
        by_id("stage").send_keys("k")
        shown = browser.execute_script(READ_PIXEL, 80, 10, 96)
        click_photo(browser, 80, 10, (96, 64))
        keep = wait_for(lambda: browser.find_elements("css selector", "#points .point.keep"),
                        what="the keep point")[0]
        rgb = [int(c) for c in keep.value_of_css_property("background-color")[5:-1]
               .split(",")[:3]]
        assert np.abs(np.array(rgb) - shown).max() <= 2
        assert "this colour stays" in by_id("point-title").text
        keep.send_keys(webdriver.Keys.DELETE)
        by_id("stage").send_keys("f")
        browser.execute_script("const g = document.getElementById('gain'); g.value = 1.6;"
                               "g.dispatchEvent(new Event('input', {bubbles: true}));")
        assert by_id("gain-value").text == "1.60"
        by_id("apply-all").click()
        assert "all 2 photos" in by_id("status").text
        browser.find_elements("css selector", "#photos button")[1].click()
        assert by_id("gain-value").text == "1.60"
        assert not browser.find_elements("css selector", "#points .point")
        # Undo on the second photo takes back the applied gain, and only there.
        webdriver.ActionChains(browser).key_down(webdriver.Keys.CONTROL).send_keys("z") \
            .key_up(webdriver.Keys.CONTROL).perform()
        assert by_id("gain-value").text == "1.00"
        browser.find_elements("css selector", "#photos button")[0].click()
        assert by_id("gain-value").text == "1.60"
        assert len(browser.find_elements("css selector", "#points .point")) == 1

        by_id("download-all").click()
        archive = wait_for(lambda: list(browser.downloads.glob("chromatize_photos.zip")),
                           what="the zip")[0]
        time.sleep(0.3)
        with zipfile.ZipFile(archive) as z:
            assert z.testzip() is None
            assert sorted(z.namelist()) == ["one_colorized.png", "one_fix.json",
                                            "two_colorized.png", "two_fix.json"]
            fixes = {n: json.loads(z.read(f"{n}_fix.json")) for n in ("one", "two")}
            assert (fixes["one"]["gain"], fixes["two"]["gain"]) == (1.6, 1.0)
            assert len(fixes["one"]["marks"]) == 1 and fixes["two"]["marks"] == []
            with z.open("two_colorized.png") as f:
                assert Image.open(f).size == (96, 64)
