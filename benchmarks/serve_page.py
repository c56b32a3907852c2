"""The re-solve latency seen from the page of ``chromatize serve``, and its screenshots.

Starts the app with uvicorn on a free localhost port, opens the page in headless Chromium
(Debian's ``chromium`` + ``chromium-driver``, driven by Selenium), opens a photo resized
to about ``--megapixels`` MP, then places ``--points`` colour points one by one (a click
opens the point's palette), each recoloured through the page's colour input, and drags
one. For every change the page records the time from the change (recolour, drag end) to
the new result on screen
(``window.chromatizeStats``, including its short debounce); the script prints the median
and the worst.

    python benchmarks/serve_page.py                              # 1 MP, 6 points
    python benchmarks/serve_page.py --screenshots docs/          # and docs/serve_steps/*.jpg

The photo defaults to scikit-image's public-domain ``astronaut``, made gray.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from chromatize.server import create_app


COLOURS = ["#c03030", "#2050c0", "#30a040", "#e0c020", "#8040a0", "#20a0a0"]


def wait_for(condition, timeout: float = 120, driver=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    status = driver.find_element("id", "status").text if driver else ""
    raise TimeoutError(f"the page did not answer in time (its status line: {status!r})")


def start_server(app):
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    wait_for(lambda: server.started, 60)
    return server, f"http://127.0.0.1:{port}/"


def open_browser(width: int, height: int, mobile: bool = False):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(arg)
    if mobile:
        options.add_experimental_option("mobileEmulation", {
            "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2}})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    if not mobile:  # the page itself at width x height, not the window around it
        inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])
    return driver


def test_photo(megapixels: float, path: Path | None) -> Image.Image:
    if path is None:
        from skimage import data

        image = Image.fromarray(data.astronaut())
    else:
        image = Image.open(path)
    image = image.convert("L")
    scale = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)


def click_at(driver, x: int, y: int, size: tuple[int, int]) -> None:
    """Click the result at image pixel (x, y)."""
    from selenium.webdriver import ActionChains

    stage = driver.find_element("id", "stage")
    rect = driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", stage)
    ActionChains(driver).move_to_element_with_offset(
        stage, int((x + 0.5) / size[0] * rect["width"] - rect["width"] / 2),
        int((y + 0.5) / size[1] * rect["height"] - rect["height"] / 2)).click().perform()


def stats(driver) -> dict:
    return driver.execute_script("return window.chromatizeStats")


def wait_result(driver, shown: int) -> float:
    """Wait for a result after the ``shown``-th; its change-to-screen time in ms."""
    wait_for(lambda: stats(driver)["results"] > shown, driver=driver)
    return stats(driver)["lastResolveMs"]


def shoot(driver, folder: Path, name: str, pictures: dict[str, Path]) -> None:
    """A screenshot of the window as a JPEG (docs stay small), and as a PNG at
    ``pictures[name]`` when the docs show it."""
    from io import BytesIO

    image = Image.open(BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    css = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    if image.width > css[0]:  # a phone's 2x pixels: kept at CSS size, the docs stay small
        image = image.resize(tuple(css), Image.LANCZOS)
    image.save(folder / name, quality=80, optimize=True)
    if name in pictures:
        image.save(pictures[name], optimize=True)


def redness(hex_colour: str) -> int:
    """How orange a "#rrggbb" colour is: red above blue, green between."""
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return r - b - abs(g - (r + b) // 2)


def zoom_to(driver, at: tuple[int, int], size: tuple[int, int], mobile: bool) -> None:
    """Zoom in on image pixel ``at``: the mouse wheel over it, or on a phone the + button
    and a drag of the photo to bring it to the middle."""
    from selenium.webdriver import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin

    stage = driver.find_element("id", "stage")
    rect = driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", stage)
    dx = (at[0] + 0.5) / size[0] * rect["width"] - rect["width"] / 2
    dy = (at[1] + 0.5) / size[1] * rect["height"] - rect["height"] / 2
    if not mobile:
        for _ in range(2):
            ActionChains(driver).scroll_from_origin(
                ScrollOrigin.from_element(stage, int(dx), int(dy)), 0, -300).perform()
        return
    for _ in range(2):
        driver.find_element("id", "zoom-in").click()
    zoom = 2.25
    ActionChains(driver).drag_and_drop_by_offset(stage, int(-dx * zoom), int(-dy * zoom)) \
        .perform()


def walkthrough(url: str, photo: Path, size: tuple[int, int], folder: Path, prefix: str,
                mobile: bool = False, pictures: dict[str, Path] | None = None) -> None:
    """A first-time user's steps, a screenshot after each: open a photo (the guidance
    line), click the suit, choose a vivid colour (the hint if it spreads), limit its
    reach, zoom to the face, drag the before/after divider, download the fix, look at the
    alternatives. ``pictures``: step screenshots (``"1_open.jpg"``...) also wanted as PNGs."""
    from selenium.webdriver import ActionChains

    pictures = {f"{prefix}{k}": v for k, v in (pictures or {}).items()}

    w, h = Image.open(photo).size
    driver = open_browser(*size, mobile=mobile)
    by_id = lambda name: driver.find_element("id", name)  # noqa: E731
    reveal = "arguments[0].scrollIntoView({block: 'nearest'})"
    try:
        driver.get(url)
        by_id("file-input").send_keys(str(photo))
        wait_result(driver, 0)
        wait_for(lambda: by_id("guide").is_displayed(), driver=driver)
        shoot(driver, folder, f"{prefix}1_open.jpg", pictures)
        click_at(driver, int(0.2 * w), int(0.7 * h), (w, h))
        wait_for(lambda: driver.find_elements("css selector", "#vivid .swatch"), driver=driver)
        time.sleep(0.3)
        if mobile:
            driver.execute_script(reveal, by_id("point-panel"))
        shoot(driver, folder, f"{prefix}2_point.jpg", pictures)
        shown = stats(driver)["results"]
        vivid = driver.find_elements("css selector", "#vivid .swatch")
        orange = lambda node: redness(node.get_attribute("data-color"))  # noqa: E731
        max(vivid, key=orange).click()
        wait_result(driver, shown)
        time.sleep(0.5)
        driver.execute_script("window.scrollTo(0, 0)")
        shoot(driver, folder, f"{prefix}3_colour.jpg", pictures)
        shown = stats(driver)["results"]
        label = driver.find_element("css selector", 'input[name="reach"][value="local"]')
        driver.execute_script("arguments[0].parentElement.click()", label)
        wait_result(driver, shown)
        if mobile:
            driver.execute_script(reveal, by_id("point-panel"))
        shoot(driver, folder, f"{prefix}4_reach.jpg", pictures)
        driver.execute_script("window.scrollTo(0, 0)")
        zoom_to(driver, (int(0.44 * w), int(0.25 * h)), (w, h), mobile)
        time.sleep(0.5)
        wait_for(lambda: "busy" not in by_id("viewport").get_attribute("class"), driver=driver)
        time.sleep(0.3)
        shoot(driver, folder, f"{prefix}5_zoom.jpg", pictures)
        by_id("zoom-fit").click()
        by_id("compare-toggle").click()
        ActionChains(driver).drag_and_drop_by_offset(by_id("divider"), -size[0] // 8, 0).perform()
        time.sleep(0.3)
        shoot(driver, folder, f"{prefix}6_compare.jpg", pictures)
        by_id("compare-toggle").click()
        by_id("download-fix").click()
        driver.execute_script(reveal, by_id("command"))
        time.sleep(0.3)
        shoot(driver, folder, f"{prefix}7_download.jpg", pictures)
        driver.execute_script("window.scrollTo(0, 0)")
        driver.execute_script("arguments[0].click()", by_id("show-alternatives"))
        wait_for(lambda: by_id("alternatives").is_displayed(), driver=driver)
        time.sleep(0.5)
        shoot(driver, folder, f"{prefix}8_alternatives.jpg", pictures)
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="checkpoint or shipped model name")
    parser.add_argument("--photo", type=Path, help="photo to open (default: astronaut)")
    parser.add_argument("--megapixels", type=float, default=1.0, help="resize the photo to this")
    parser.add_argument("--points", type=int, default=6, help="points to place")
    parser.add_argument("--screenshots", type=Path, help="folder for serve_open.png, "
                        "serve_phone.png and serve_steps/ (each step at 1440x900 and 390x844)")
    args = parser.parse_args()

    server, url = start_server(create_app(args.model))
    tmp = Path(tempfile.mkdtemp(prefix="chromatize-page-"))
    photo = test_photo(args.megapixels, args.photo)
    photo.save(tmp / "astronaut.jpg", quality=95)
    w, h = photo.size
    driver = open_browser(1360, 900)
    try:
        driver.get(url)
        driver.find_element("id", "file-input").send_keys(str(tmp / "astronaut.jpg"))
        first = wait_result(driver, 0)
        print(f"photo {w}x{h} ({w * h / 1e6:.2f} MP); first result on screen after "
              f"{first:.0f} ms (upload, network, guided upsampling, JPEG, display)")
        rng = np.random.default_rng(0)
        latencies = []
        for i in range(args.points):
            x, y = int(rng.uniform(0.15, 0.85) * w), int(rng.uniform(0.15, 0.85) * h)
            # A click places a point with the colour already there and opens its palette
            # (no re-solve: the picture would not change); choosing a swatch re-solves.
            before = len(driver.find_elements("css selector", "#points .point"))
            click_at(driver, x, y, (w, h))
            wait_for(lambda: len(driver.find_elements("css selector", "#points .point")) > before,
                     driver=driver)
            wait_for(lambda: driver.find_elements("css selector", "#likely .swatch"),
                     driver=driver)
            # Recolour it through the colour input (as the picker would; Selenium cannot
            # drive the native dialog): the change that re-solves.
            shown = stats(driver)["results"]
            driver.execute_script(
                "const p = document.getElementById('picker'); p.value = arguments[0];"
                "p.dispatchEvent(new Event('input', {bubbles: true}));", COLOURS[i % len(COLOURS)])
            latencies.append(wait_result(driver, shown))
        # Drag the last point by 40 screen pixels.
        from selenium.webdriver import ActionChains

        point = driver.find_elements("css selector", "#points .point")[-1]
        shown = stats(driver)["results"]
        ActionChains(driver).click_and_hold(point).move_by_offset(20, 0).move_by_offset(20, 10) \
            .release().perform()
        wait_for(lambda: stats(driver)["results"] > shown)
        time.sleep(1.0)  # let the last coalesced request land
        latencies.append(stats(driver)["lastResolveMs"])
        print(f"re-solve latency seen by the page over {len(latencies)} changes: median "
              f"{statistics.median(latencies):.0f} ms, worst {max(latencies):.0f} ms "
              f"(change -> new image on screen; {len(latencies)} changes: "
              + ", ".join(f"{v:.0f}" for v in latencies) + ")")
    finally:
        driver.quit()
    if args.screenshots:
        steps = args.screenshots / "serve_steps"
        steps.mkdir(parents=True, exist_ok=True)
        walkthrough(url, tmp / "astronaut.jpg", (1440, 900), steps, "desktop_",
                    pictures={"3_colour.jpg": args.screenshots / "serve_open.png"})
        walkthrough(url, tmp / "astronaut.jpg", (390, 844), steps, "phone_", mobile=True,
                    pictures={"2_point.jpg": args.screenshots / "serve_phone.png"})
        print(f"screenshots written to {steps}")
    server.should_exit = True
    json.dump({"megapixels": w * h / 1e6, "latencies_ms": latencies}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
