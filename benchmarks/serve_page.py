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
    python benchmarks/serve_page.py --screenshots docs/          # and docs/serve_*.png

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
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="checkpoint or shipped model name")
    parser.add_argument("--photo", type=Path, help="photo to open (default: astronaut)")
    parser.add_argument("--megapixels", type=float, default=1.0, help="resize the photo to this")
    parser.add_argument("--points", type=int, default=6, help="points to place")
    parser.add_argument("--screenshots", type=Path, help="folder for serve_*.png")
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
        if args.screenshots:
            args.screenshots.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.screenshots / "serve_open.png"))
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
            wait_for(lambda: driver.find_elements("css selector", "#palette .swatch"),
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
        if args.screenshots:
            driver.save_screenshot(str(args.screenshots / "serve_points.png"))
            driver.find_element("id", "compare").click()  # the slider's middle: half gray
            time.sleep(0.3)
            driver.save_screenshot(str(args.screenshots / "serve_compare.png"))
            marks = driver.execute_script(
                "return document.getElementById('points').children.length")
            print(f"screenshots written to {args.screenshots} ({marks} points shown)")
    finally:
        driver.quit()
    if args.screenshots:
        phone = open_browser(390, 844, mobile=True)
        try:
            phone.get(url)
            phone.find_element("id", "file-input").send_keys(str(tmp / "astronaut.jpg"))
            wait_result(phone, 0)
            click_at(phone, w // 2, h // 3, (w, h))
            wait_for(lambda: phone.find_elements("css selector", "#palette .swatch"))
            time.sleep(0.5)
            phone.save_screenshot(str(args.screenshots / "serve_phone.png"))
        finally:
            phone.quit()
    server.should_exit = True
    json.dump({"megapixels": w * h / 1e6, "latencies_ms": latencies}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
