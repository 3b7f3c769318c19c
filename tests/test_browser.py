"""The app in a real browser: Debian's Chromium driven by Playwright against `streamlit run`.

A module fixture starts the server on a free port with a tiny corpus and waits for
`/_stcore/health`; each test opens a page and waits for the script to finish. A failing test
saves a screenshot to `test-artifacts/`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import write_archive
from tests.test_training import tiny_reviews

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    corpus = write_archive(folder / "corpus.tar.gz", tiny_reviews())
    port = _free_port()
    environment = {
        **os.environ,
        "RNNKIT_DATA": str(corpus),
        "RNNKIT_CACHE_DIR": str(folder / "cache"),
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.read() == b"ok":
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("streamlit run app.py did not become healthy within 90 s")
        time.sleep(0.3)
    yield url
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Chromium (apt-get install chromium; .ci/run does)")
        pytest.skip("Chromium is not installed: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    tab = context.new_page()
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def open_page(page, url: str) -> None:
    """Go to `url` and wait until the script has run (no 'running' indicator left)."""
    page.goto(url)
    page.wait_for_selector("[data-testid='stSidebar']", timeout=60_000)
    settle(page)


def settle(page, timeout: float = 60.0) -> None:
    """Wait until Streamlit has finished running the script: its running indicator absent for
    1.5 s (it appears only some moments after a run starts)."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 5:
        running = page.locator("[data-testid='stStatusWidget']").count()
        quiet = 0 if running else quiet + 1
        if time.monotonic() > deadline:
            raise AssertionError("the app kept running")
        time.sleep(0.3)


def main_text(page) -> str:
    return page.locator("[data-testid='stMain']").inner_text()


@pytest.mark.parametrize(
    ("path", "heading"),
    [
        ("", "rnnkit: bidirectional RNNs on the IMDB reviews"),
        ("vocabulary", "Vocabulary"),
        ("reviews", "Reviews"),
        ("lengths", "Lengths and padding"),
        ("train", "Train"),
        ("curves", "Learning curves"),
        ("predictions", "Predictions"),
    ],
)
def test_every_page_opens_without_an_error(server, page, path, heading):
    open_page(page, f"{server}/{path}")
    assert page.locator("h1").first.inner_text().strip() == heading
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator("[data-testid='stAlertContentError']").count() == 0


def test_vocabulary_search_finds_a_word(server, page):
    open_page(page, f"{server}/vocabulary")
    search = page.get_by_label("Search words")
    search.fill("brillian")
    search.press("Enter")
    settle(page)
    assert "1 of 1 matching words shown" in main_text(page)
    assert "search=brillian" in page.url  # the view is shareable
    lookup = page.get_by_label("Word → id")
    lookup.fill("brilliant")
    lookup.press("Enter")
    settle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    assert "brilliant" in main_text(page)


def test_a_review_is_decoded(server, page):
    open_page(page, f"{server}/reviews?split=test&index=0")
    page.get_by_text("<START>").first.wait_for(timeout=30_000)
    assert "<START>" in main_text(page)
    assert page.locator("[data-testid='stException']").count() == 0


def metric_value(page, label: str) -> str:
    metric = page.locator("[data-testid='stMetric']").filter(has_text=label)
    return metric.locator("[data-testid='stMetricValue']").inner_text().strip()


def test_the_max_length_slider_changes_the_truncated_share(server, page):
    open_page(page, f"{server}/lengths")
    assert metric_value(page, "Reviews truncated") == "0.0%"  # max_length 500: none is cut
    slider = page.get_by_role("slider").first
    slider.focus()
    slider.press("Home")  # the smallest max_length: every review is cut
    settle(page)
    assert metric_value(page, "Reviews truncated") == "100.0%"
    assert "max_length=" in page.url


TINY_FIELDS = {
    "num words": "100",
    "max length": "16",
    "rnn units": "8",
    "embedding dim": "8",
    "dense units": "8",
    "batch size": "16",
    "epochs": "3",
}


def test_training_a_tiny_config_then_predicting_a_typed_review(server, page):
    open_page(page, f"{server}/train")
    for label, value in TINY_FIELDS.items():
        field = page.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Enter")
        settle(page)
    assert "BiSimpleRNN 8 · emb 8 · dense 8 · len 16 post · 3 epochs" in main_text(page)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Training runs on the server").wait_for(timeout=60_000)
    page.get_by_text("trained already").wait_for(timeout=240_000)
    settle(page)
    assert metric_value(page, "Best epoch") in {"1", "2", "3"}
    assert page.locator("[data-testid='stVegaLiteChart']").count() >= 1
    assert page.locator("[data-testid='stException']").count() == 0

    open_page(page, f"{server}/predictions")
    review = page.get_by_label("Type or paste a review")
    review.fill("A brilliant film, superb acting and great fun.")
    review.press("Control+Enter")
    settle(page)
    probability = float(metric_value(page, "Probability of positive"))
    assert 0.0 <= probability <= 1.0
    assert metric_value(page, "Label") == ("positive" if probability > 0.5 else "negative")
    assert metric_value(page, "Words read") == "8"  # a brilliant film superb acting and great fun
    assert page.locator("[data-testid='stException']").count() == 0
