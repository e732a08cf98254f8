"""report.html in a real browser: headless Chromium opens it from disk, offline, and every image
decodes with no console error. Skipped, with the reason, where Chromium or its driver is not
installed (Debian: apt-get install chromium chromium-driver; .ci/run does it)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import write_results

from nnsweep.report import build_report

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        missing = " and ".join(name for name, path in (("chromium", CHROMIUM),
                                                       ("chromedriver", CHROMEDRIVER))
                               if path is None)
        pytest.skip(f"{missing} not found on PATH; install Debian's chromium and "
                    "chromium-driver packages to run the browser test")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", "--disable-quic",
                     "--window-size=1300,1800",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver is the one installed beside Chromium: selenium must never download one.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def opened(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """The small sweep's report, loaded from a file:// URL."""
    directory = write_results(tmp_path_factory.mktemp("browser") / "results")
    page = build_report(directory)
    browser.get(page.resolve().as_uri())
    return browser, directory


def test_the_report_opens_from_disk_with_its_title(opened: tuple[Any, Path]) -> None:
    driver, _ = opened
    assert driver.title == "small: nnsweep report"
    assert driver.execute_script("return document.readyState") == "complete"


def test_every_image_in_the_report_is_decoded(opened: tuple[Any, Path]) -> None:
    driver, directory = opened
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth]);")
    assert len(images) == len(list((directory / "plots").glob("*.png")))
    broken = [alt for alt, complete, width in images if not complete or width == 0]
    assert broken == []


def test_the_report_logs_no_console_error(opened: tuple[Any, Path]) -> None:
    driver, _ = opened
    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []


def test_a_screenshot_of_the_report_is_taken(opened: tuple[Any, Path]) -> None:
    driver, directory = opened
    screenshot = directory / "report-screenshot.png"
    assert driver.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000  # a rendered page, not a blank one
