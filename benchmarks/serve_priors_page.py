"""Screenshots of the page's "Colours you know" and "Show versions" in use, at 1440x900.

Opens scikit-image's public-domain ``astronaut`` made gray, gives it a palette colour and
a reference photo (scikit-image's ``coffee``), then shows the versions and uses one:

    python benchmarks/serve_priors_page.py OUT_DIR            # OUT_DIR/priors_*.png, 1440x900
    python benchmarks/serve_priors_page.py OUT_DIR 390x844    # a phone: OUT_DIR/priors_390x844_*.png
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from serve_page import open_browser, start_server, test_photo, wait_for  # noqa: E402

from chromatize.server import create_app  # noqa: E402


def main() -> None:
    from skimage import data

    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    size = sys.argv[2] if len(sys.argv) > 2 else "1440x900"
    width, height = (int(v) for v in size.split("x"))
    prefix = "priors_" if size == "1440x900" else f"priors_{size}_"
    tmp = Path(tempfile.mkdtemp(prefix="chromatize-priors-"))
    test_photo(0.5, None).save(tmp / "astronaut.jpg", quality=95)
    Image.fromarray(data.coffee()).save(tmp / "coffee.jpg", quality=90)
    server, url = start_server(create_app("default"))
    driver = open_browser(width, height)
    by_id = lambda name: driver.find_element("id", name)  # noqa: E731
    results = lambda: driver.execute_script("return window.chromatizeStats.results")  # noqa: E731

    def settle(shown: int) -> None:
        wait_for(lambda: results() > shown, driver=driver)
        time.sleep(0.6)

    try:
        driver.get(url)
        by_id("file-input").send_keys(str(tmp / "astronaut.jpg"))
        settle(0)
        shown = results()
        driver.execute_script("document.getElementById('add-colour').value = '#c8a020'")
        by_id("add-colour-ok").click()
        settle(shown)
        driver.save_screenshot(str(out / f"{prefix}1_palette.png"))
        shown = results()
        by_id("reference-input").send_keys(str(tmp / "coffee.jpg"))
        settle(shown)
        driver.save_screenshot(str(out / f"{prefix}2_reference.png"))
        by_id("show-versions").click()
        wait_for(lambda: by_id("alternatives").is_displayed()
                 and driver.find_elements("css selector", "#alternative-list img"), driver=driver)
        time.sleep(0.6)
        driver.save_screenshot(str(out / f"{prefix}3_versions.png"))
        shown = results()
        driver.find_elements("css selector", "#alternative-list button")[1].click()
        settle(shown)
        driver.save_screenshot(str(out / f"{prefix}4_version_used.png"))
    finally:
        driver.quit()
        server.should_exit = True
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    main()
