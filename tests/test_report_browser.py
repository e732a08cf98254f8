"""report.html in a real browser: headless Chromium opens it from disk, offline; every image
decodes with no console error; the sections come answer first; every figure's tick text is
legible at the page's width; and the explorer shows the cell a reader clicks. Skipped, with
the reason, where Chromium or its driver is not installed (Debian: apt-get install chromium
chromium-driver; .ci/run does it)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import HELD_OUT_GRID, svg_tick_points, write_results
from PIL import Image

from nnsweep.report import LEGIBLE_PX, build_report, read_tables

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a browser and a trained sweep

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
    """The small sweep's report, loaded from a file:// URL; its figures' SVG copies let the
    tests read the tick text's size apart from the report's own sizing."""
    directory = write_results(tmp_path_factory.mktemp("browser") / "results")
    page = build_report(directory, svg=True)
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


# --- the page's order and its figures' legibility -----------------------------------------

def test_the_sections_come_answer_first_and_the_record_last(opened: tuple[Any, Path]) -> None:
    driver, _ = opened
    shown = driver.execute_script(
        "return Array.from(document.querySelectorAll('h2'))"
        ".filter(h => h.getBoundingClientRect().height > 0).map(h => h.id);")
    assert shown == ["answer", "glance", "heatmaps", "curves", "more", "spec", "manifest"]


def _tick_pixels(png: Path) -> float:
    """The figure's smallest tick text in the PNG's own pixels: its size in points (from the
    SVG saved beside it) at the resolution the PNG records."""
    points = svg_tick_points(png.with_suffix(".svg").read_text(encoding="utf-8"))
    assert points is not None
    with Image.open(png) as image:
        dpi = float(image.info["dpi"][0])
    return points * dpi / 72


def _shown_tick_pixels(driver: Any, directory: Path) -> dict[str, float]:
    """Each figure's smallest tick text as the page shows it, in CSS pixels."""
    shown = driver.execute_script(
        "return Array.from(document.images).map(i => "
        "[i.closest('figure').id, i.getBoundingClientRect().width, i.naturalWidth]);")
    return {name: width / natural * _tick_pixels(directory / "plots" / f"{name}.png")
            for name, width, natural in shown}


@pytest.mark.parametrize("window", [1300, 760])
def test_every_figure_keeps_its_tick_text_legible_at_the_pages_width(
        opened: tuple[Any, Path], window: int) -> None:
    driver, directory = opened
    driver.set_window_size(window, 1800)
    try:
        sizes = _shown_tick_pixels(driver, directory)
        assert len(sizes) == len(list((directory / "plots").glob("*.png")))
        assert {name: size for name, size in sizes.items() if size < LEGIBLE_PX} == {}
    finally:
        driver.set_window_size(1300, 1800)


def test_a_figure_wider_than_a_narrow_page_scrolls_instead_of_shrinking(
        opened: tuple[Any, Path]) -> None:
    driver, _ = opened
    driver.set_window_size(600, 1800)
    try:
        overflowing = driver.execute_script(
            "return Array.from(document.querySelectorAll('figure .scroll'))"
            ".filter(d => d.scrollWidth > d.clientWidth).length;")
        assert overflowing > 0
        assert driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;")
    finally:
        driver.set_window_size(1300, 1800)


# --- the explorer -------------------------------------------------------------------------

def _click_cell(driver: Any, label: str) -> None:
    from selenium.webdriver.common.by import By

    cell = driver.find_element(By.CSS_SELECTOR, f'#explore-heatmap .cell[aria-label="{label}"]')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", cell)
    cell.click()


def _numbers(driver: Any) -> dict[str, str]:
    rows = driver.execute_script(
        "return Array.from(document.querySelectorAll('#explore-numbers tr'))"
        ".map(r => [r.cells[0].textContent, r.cells[1].textContent]);")
    return dict(rows)


def test_the_explorer_draws_one_heatmap_cell_per_cell_of_the_sweep(
        opened: tuple[Any, Path]) -> None:
    driver, directory = opened
    trials = read_tables(directory)["trials"]
    labels = driver.execute_script(
        "return Array.from(document.querySelectorAll('#explore-heatmap .cell'))"
        ".map(c => c.getAttribute('aria-label'));")
    expected = {f"alpha = {a:g}, hidden = {h}"
                for a, h in trials[["alpha", "hidden"]].drop_duplicates().itertuples(
                    index=False)}
    assert sorted(labels) == sorted(expected)


@pytest.mark.parametrize("alpha, hidden", [("1", "2"), ("0.01", "4")])
def test_clicking_a_cell_shows_its_curve_and_its_numbers(opened: tuple[Any, Path], alpha: str,
                                                         hidden: str) -> None:
    driver, directory = opened
    _click_cell(driver, f"alpha = {alpha}, hidden = {hidden}")
    numbers = _numbers(driver)
    assert (numbers["alpha"], numbers["hidden"]) == (alpha, hidden)
    trials = read_tables(directory)["trials"]
    cell = trials[(trials["alpha"] == float(alpha)) & (trials["hidden"] == hidden)]
    assert numbers["seeds"] == str(len(cell))
    points = driver.execute_script(
        "return Array.from(document.querySelectorAll('#explore-curves polyline'))"
        ".map(p => p.getAttribute('points'));")
    assert len(points) == 1 and len(points[0].split()) >= 2
    pinned = driver.execute_script(
        "return document.querySelector('#explore-heatmap .cell.pinned')"
        ".getAttribute('aria-label');")
    assert pinned == f"alpha = {alpha}, hidden = {hidden}"


def test_two_cells_show_two_different_curves(opened: tuple[Any, Path]) -> None:
    driver, _ = opened
    shown = []
    for label in ("alpha = 0.01, hidden = 2", "alpha = 10, hidden = 2"):
        _click_cell(driver, label)
        shown.append(driver.execute_script(
            "return document.querySelector('#explore-curves polyline').getAttribute('points');"))
    assert shown[0] != shown[1]


def test_hostile_text_in_the_data_stays_data(browser: Any,
                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    """A sweep named to close the data's script element and run its own: the page still runs
    its explorer (here with one panel per activation), shows the name as text and raises no
    alert."""
    hostile = "</script><script>alert(1)</script><!-- \u2028 \u2029"
    directory = write_results(tmp_path_factory.mktemp("hostile") / "results",
                              {"alpha": [0.1, 10.0], "hidden": [(2,), (3,)],
                               "activation": ["sigmoid", "tanh"]}, {"epochs": 50, "seed": 1},
                              name=hostile)
    shown = browser.current_url
    browser.get(build_report(directory).resolve().as_uri())
    try:
        assert browser.find_element("tag name", "h1").text.startswith(hostile.split(" ")[0])
        assert browser.execute_script(
            "return document.querySelectorAll('#explore-heatmap .cell').length;") == 8
        assert browser.execute_script(
            "return Array.from(document.querySelectorAll('#explore-heatmap .panel-title'))"
            ".map(t => t.textContent);") == ["activation = sigmoid", "activation = tanh"]
        assert browser.execute_script("return document.querySelectorAll('script').length;") == 2
        severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert severe == []
    finally:
        browser.get(shown)  # the other tests' page, whatever order they run in


def test_pointing_at_a_cell_previews_it_over_the_pinned_one(opened: tuple[Any, Path]) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver, _ = opened
    _click_cell(driver, "alpha = 1, hidden = 4")
    other = driver.find_element(By.CSS_SELECTOR,
                                '#explore-heatmap .cell[aria-label="alpha = 10, hidden = 2"]')
    ActionChains(driver).move_to_element(other).perform()
    assert (_numbers(driver)["alpha"], _numbers(driver)["hidden"]) == ("10", "2")
    lines = driver.execute_script(
        "return Array.from(document.querySelectorAll('#explore-curves polyline'))"
        ".map(p => p.getAttribute('class'));")
    assert sorted(lines) == ["median", "reference"]
    pinned = driver.execute_script(
        "return document.querySelector('#explore-heatmap .cell.pinned')"
        ".getAttribute('aria-label');")
    assert pinned == "alpha = 1, hidden = 4"


def test_with_held_out_rows_a_cell_shows_its_dashed_validation_curve_and_gap(
        browser: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = write_results(tmp_path_factory.mktemp("held") / "results", HELD_OUT_GRID,
                              held_out=0.25)
    shown = browser.current_url
    browser.get(build_report(directory).resolve().as_uri())
    try:
        _click_cell(browser, "alpha = 0.1, hidden = 4")
        lines = browser.execute_script(
            "return Array.from(document.querySelectorAll('#explore-curves polyline'))"
            ".map(p => [p.getAttribute('class'), p.getAttribute('stroke-dasharray'),"
            " p.getAttribute('points').split(' ').length]);")
        assert sorted(line[0] for line in lines) == ["median", "validation"]
        [held] = [line for line in lines if line[0] == "validation"]
        assert held[1] and held[2] >= 2
        numbers = _numbers(browser)
        trials = read_tables(directory)["trials"]
        cell = trials[(trials["alpha"] == 0.1) & (trials["hidden"] == "4")]
        assert float(numbers["median final validation mae"]) == pytest.approx(
            cell["final_validation_error"].median(), rel=1e-3)
        gap = (cell["final_validation_error"] - cell["final_error"]).median()
        assert float(numbers["median gap (validation \u2212 training)"]) == pytest.approx(
            gap, rel=1e-3)
        severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert severe == []
    finally:
        browser.get(shown)  # the other tests' page, whatever order they run in
