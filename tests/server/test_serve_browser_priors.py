"""End to end, in headless Chromium against a live server (as test_serve_browser.py): the
colours you know (a palette, a reference photo chosen or dropped on its own area, a bad
reference named once) and the versions shown large, one of them used as the starting
point, all in the photo's undo history and its fix."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from serve_helpers import LiveServer, colorizer, needs_hints  # noqa: F401 (fixture)
from test_serve_browser import browser, street, wait_for  # noqa: F401 (fixture)

from chromatize.server import create_app

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                "(pip install selenium)")

# The shown result drawn at 16x16, as RGB bytes: enough to see that it changed.
SIGNATURE = """
const img = document.getElementById('result');
const c = document.createElement('canvas'); c.width = 16; c.height = 16;
const g = c.getContext('2d'); g.drawImage(img, 0, 0, 16, 16);
return Array.from(g.getImageData(0, 0, 16, 16).data).filter((_, i) => i % 4 !== 3);
"""
# A reference photo dropped onto the reference area (a File made in the page).
DROP_REFERENCE = """
const c = document.createElement('canvas'); c.width = 24; c.height = 16;
const g = c.getContext('2d'); g.fillStyle = '#2e8b3a'; g.fillRect(0, 0, 24, 16);
c.toBlob((blob) => {
  const dt = new DataTransfer();
  dt.items.add(new File([blob], 'green.png', { type: 'image/png' }));
  const area = document.getElementById('reference-drop');
  for (const type of ['dragover', 'drop']) {
    area.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  }
}, 'image/png');
"""


@needs_hints
def test_colours_you_know_and_versions_steer_the_photo(browser, colorizer, tmp_path):  # noqa: F811
    Image.fromarray(street(96, 64)).save(tmp_path / "street.png")
    Image.new("RGB", (32, 24), (200, 40, 30)).save(tmp_path / "red town.png")
    (tmp_path / "notes.txt").write_text("not a photo")
    by_id = lambda name: browser.find_element("id", name)  # noqa: E731
    stats = lambda: browser.execute_script("return window.chromatizeStats")  # noqa: E731
    signature = lambda: np.array(browser.execute_script(SIGNATURE), int)  # noqa: E731
    fix = lambda: browser.execute_script("return fixOf(state.current)")  # noqa: E731

    def after(action, what):
        """Do ``action``, wait for the next result on screen, return its signature."""
        shown = stats()["results"]
        action()
        wait_for(lambda: stats()["results"] > shown, timeout=60, what=what)
        return signature()

    assert colorizer.index_path is not None  # the shipped model has its versions' index
    with LiveServer(create_app(colorizer, model_name="default")) as server:
        browser.get(server.url + "/")
        by_id("file-input").send_keys(str(tmp_path / "street.png"))
        wait_for(lambda: stats()["results"] >= 1, timeout=60, what="the first result")
        auto = signature()
        assert by_id("known").is_displayed() and "Colours you know" in by_id("known").text
        assert not by_id("strength-row").is_displayed()

        # A colour the photo has: the result changes, the pull appears with its default.
        def add_red():
            browser.execute_script("document.getElementById('add-colour').value = '#c82820'")
            by_id("add-colour-ok").click()
        with_palette = after(add_red, "the result with a palette")
        assert np.abs(with_palette - auto).max() > 10
        assert by_id("strength-row").is_displayed() and by_id("strength-value").text == "auto"
        assert fix()["palette"] == "#c82820" and "strength" not in fix()

        # A reference photo, chosen: its thumbnail and name; the result changes again.
        with_reference = after(lambda: by_id("reference-input").send_keys(
            str(tmp_path / "red town.png")), "the result with a reference")
        assert np.abs(with_reference - with_palette).max() > 3
        assert by_id("reference-thumb").is_displayed() and "red town.png" in by_id("known").text
        assert fix()["reference"] == "red town.png"
        assert by_id("command").text == ("chromatize colorize street.png --marks "
                                         "street_fix.json --reference 'red town.png'")
        # Its pull, from the limits of /api/health, enters the fix once moved.
        browser.execute_script("const s = document.getElementById('strength'); s.value = 2;"
                               "s.dispatchEvent(new Event('input', {bubbles: true}));")
        assert by_id("strength").get_attribute("max") == "3" and fix()["strength"] == 2

        # A reference dropped onto its own area replaces it; no photo is opened.
        after(lambda: browser.execute_script(DROP_REFERENCE), "the dropped reference")
        assert fix()["reference"] == "green.png"
        assert len(browser.find_elements("css selector", "#photos button")) == 1

        # Not an image: the server's message once in the status line, the reference goes,
        # the page goes on working.
        by_id("reference-input").send_keys(str(tmp_path / "notes.txt"))
        status = wait_for(lambda: "error" in by_id("status").get_attribute("class")
                          and by_id("status").text, timeout=60, what="the reference's error")
        assert status.count("notes.txt") == 1 and "not an image type" in status, status
        wait_for(lambda: "reference" not in fix(), timeout=60, what="the reference removed")
        assert not by_id("reference-thumb").is_displayed()

        # Versions, shown large; the second becomes the starting point and replaces the
        # colours given (the API takes one or the other), which the status line says.
        by_id("show-versions").click()
        use = wait_for(lambda: by_id("alternatives").is_displayed()
                       and browser.find_elements("css selector", "#alternative-list button"),
                       timeout=60, what="the versions")
        assert len(use) == 4 and "versions" in by_id("alternatives-title").text
        version = after(lambda: use[1].click(), "version 2 as the result")
        assert not by_id("alternatives").is_displayed()
        assert "version 2 of 4" in by_id("start").text
        assert "cleared" in by_id("status").text
        assert not by_id("photo-colours").text and "palette" not in fix()
        assert (fix()["variant"], fix()["k"]) == (2, 4)
        assert np.abs(version - with_palette).max() > 3

        # Undo brings the palette back and drops the version.
        undone = after(lambda: webdriver.ActionChains(browser).key_down(webdriver.Keys.CONTROL)
                       .send_keys("z").key_up(webdriver.Keys.CONTROL).perform(), "the undo")
        assert "#c82820" in by_id("photo-colours").text and "variant" not in fix()
        assert not by_id("start").is_displayed()
        assert np.abs(undone - version).max() > 3
