"""The app in a real browser: Debian's Chromium driven by Playwright against `streamlit run`.

A module fixture starts the server on a free port with a tiny corpus and waits for
`/_stcore/health`; each test opens a page and waits for the script to finish. A failing test
saves a screenshot to `test-artifacts/`.
"""

from __future__ import annotations

import shutil
import urllib.parse

import pytest

from tests.helpers import (
    HOSTILE_TEXT,
    PAGES,
    URL_PARAMETERS,
    chromium,
    exceptions,
    main_text,
    metric_value,
    new_tab,
    open_in_browser,
    screenshot,
    settle,
    start_server,
    tiny_reviews,
    train_tiny_runs,
    write_archive,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    corpus = write_archive(folder / "corpus.tar.gz", tiny_reviews())
    running = start_server(
        {
            "RNNKIT_DATA": str(corpus),
            "RNNKIT_CACHE_DIR": str(folder / "cache"),
            "RNNKIT_RUNS_DIR": str(folder / "cache" / "runs"),
        }
    )
    yield running.url
    running.stop()


@pytest.fixture(scope="module")
def server_with_runs(tiny_runs, tmp_path_factory):
    """The app on the generated corpus with a copy of the session's two tiny runs."""
    folder = tmp_path_factory.mktemp("browser-runs")
    running = start_server(
        {
            "RNNKIT_DATA": str(tiny_runs.corpus),
            "RNNKIT_CACHE_DIR": str(folder / "cache"),
            "RNNKIT_RUNS_DIR": str(shutil.copytree(tiny_runs.runs, folder / "runs")),
        }
    )
    yield running.url
    running.stop()


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser, request):
    with new_tab(browser, request) as tab:
        yield tab


@pytest.mark.parametrize(("path", "heading"), PAGES)
def test_every_page_opens_without_an_error(server, page, path, heading):
    open_in_browser(page, f"{server}/{path}")
    assert page.locator("h1").first.inner_text().strip() == heading
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator("[data-testid='stAlertContentError']").count() == 0


def test_the_sidebar_and_home_show_material_icons_not_emoji(server, page):
    # Debian's Chromium has no emoji font: an emoji icon would be an empty box.
    open_in_browser(page, server)
    icons = page.locator("[data-testid='stSidebarNav'] [data-testid='stIconMaterial']")
    assert [icon.inner_text() for icon in icons.all()] == [
        "home",
        "menu_book",
        "rate_review",
        "straighten",
        "model_training",
        "show_chart",
        "neurology",
        "psychology",
    ]
    links = page.locator("[data-testid='stMain'] [data-testid='stPageLink']")
    assert links.count() == 7  # every page but Home
    assert links.locator("[data-testid='stIconMaterial']").count() == 7
    assert page.locator("[data-testid='stIconEmoji']").count() == 0


def test_vocabulary_search_finds_a_word(server, page):
    open_in_browser(page, f"{server}/vocabulary")
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
    open_in_browser(page, f"{server}/reviews?split=test&index=0")
    page.get_by_text("<START>").first.wait_for(timeout=30_000)
    assert "<START>" in main_text(page)
    assert page.locator("[data-testid='stException']").count() == 0


def test_the_max_length_slider_changes_the_truncated_share(server, page):
    open_in_browser(page, f"{server}/lengths")
    assert metric_value(page, "Reviews truncated") == "0.0%"  # max_length 500: none is cut
    slider = page.get_by_role("slider").first
    slider.focus()
    slider.press("Home")  # the smallest max_length: every review is cut
    settle(page)
    assert metric_value(page, "Reviews truncated") == "100.0%"
    assert "max_length=" in page.url


# The pages that repeat a text parameter in a sentence (Vocabulary in lower case, as it looks
# the word up).
ECHOING_PAGES = {"vocabulary", "reviews", "predictions"}


@pytest.mark.parametrize(("path", "heading"), PAGES)
def test_markup_in_every_url_parameter_stays_text(server_with_runs, page, path, heading):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    script = f"views/{path or 'home'}.py"
    query = urllib.parse.urlencode({name: HOSTILE_TEXT for name in URL_PARAMETERS[script]})
    open_in_browser(page, f"{server_with_runs}/{path}?{query}")
    assert page.locator("h1").first.inner_text().strip() == heading
    assert page.locator('a[href*="evil"]').count() == 0
    assert page.locator('img[src*="evil"]').count() == 0
    assert page.locator('[src*="evil"], [href*="evil"], [srcset*="evil"]').count() == 0
    scripts = page.evaluate("() => [...document.scripts].map((script) => script.text)")
    assert not [text for text in scripts if "alert(" in text]
    # No math or coloured text made of the link's `$x$` and `:red[x]` (a page's own may be).
    rendered = page.locator(".katex-html, [data-testid='stMarkdownColoredText']").all_inner_texts()
    assert [text for text in rendered if text.strip() == "x"] == []
    page.wait_for_timeout(500)  # an onerror handler would fire by now
    assert dialogs == []
    assert exceptions(page) == 0
    if path in ECHOING_PAGES:  # shown as the very characters of the link
        assert HOSTILE_TEXT in main_text(page).replace("\u2060", "")


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
    open_in_browser(page, f"{server}/train")
    for label, value in TINY_FIELDS.items():
        field = page.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Enter")
        settle(page)
    assert "BiSimpleRNN 8 · emb 8 · dense 8 · len 16 post, masked · 3 epochs" in main_text(page)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Training runs on the server").wait_for(timeout=60_000)
    page.get_by_text("trained already").wait_for(timeout=240_000)
    settle(page)
    assert metric_value(page, "Best epoch") in {"1", "2", "3"}
    assert page.locator("[data-testid='stVegaLiteChart']").count() >= 1
    assert page.locator("[data-testid='stException']").count() == 0

    open_in_browser(page, f"{server}/predictions")
    review = page.get_by_label("Type or paste a review")
    review.fill("A brilliant film, superb acting and great fun.")
    review.press("Control+Enter")
    settle(page)
    probability = float(metric_value(page, "Probability of positive"))
    assert 0.0 <= probability <= 1.0
    assert metric_value(page, "Label") == ("positive" if probability > 0.5 else "negative")
    assert metric_value(page, "Words read") == "8"  # a brilliant film superb acting and great fun
    assert page.locator("[data-testid='stException']").count() == 0


def load_benchmark():
    """benchmarks/load.py as a module (benchmarks/ is a folder of scripts, not a package)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "load.py"
    spec = importlib.util.spec_from_file_location("load_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_the_load_benchmarks_stream_client_sees_pages_and_their_faults(server):
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    load = load_benchmark()

    async def views():
        session = load.StreamSession(server, 0, timeout=60)
        try:
            await load.tour(session, 1, 3)  # opens "lengths" by name, then the sidebar's hashes
            tour = list(session.views)
            wrong_title = await session._show("vocabulary", "Reviews", opened=False)
            await session.close()
            unknown = await session._show("no-such-page", "Vocabulary", opened=True)
        finally:
            await session.close()
        return tour, wrong_title, unknown

    # A thread of its own: the sync Playwright of this module's other tests keeps an event loop
    # running in the main thread, where asyncio.run refuses to start another.
    with ThreadPoolExecutor(1) as thread:
        tour, wrong_title, unknown = thread.submit(asyncio.run, views()).result()
    assert [view.page for view in tour] == [
        "lengths",
        "train",
        "curves",
        "inside",
        "predictions",
        "home",
        "vocabulary",
        "reviews",
    ]
    assert [view.error for view in tour] == [None] * 8
    assert [view.opened for view in tour] == [True] + [False] * 7
    assert wrong_title == "shows ['Vocabulary'], not 'Reviews'"
    assert unknown.startswith("page 'no-such-page' not found; shows ['rnnkit: ")


@pytest.fixture(scope="module")
def server_with_a_run(tmp_path_factory):
    """The app on the tiny corpus with two tiny trained runs (masked bidirectional SimpleRNNs)."""
    folder = tmp_path_factory.mktemp("browser-inside")
    trained = train_tiny_runs(folder)
    running = start_server(
        {
            "RNNKIT_DATA": str(trained.corpus),
            "RNNKIT_CACHE_DIR": str(folder / "cache"),
            "RNNKIT_RUNS_DIR": str(trained.runs),
        }
    )
    yield running.url, trained.run_id
    running.stop()


def test_inside_the_rnn_shows_states_memory_and_units(server_with_a_run, page):
    url, run_id = server_with_a_run
    open_in_browser(page, f"{url}/inside?predict_run={run_id}")
    assert page.locator("h1").first.inner_text().strip() == "Inside the RNN"
    page.locator("[data-testid='stVegaLiteChart']").nth(1).wait_for(timeout=60_000)
    assert page.locator("[data-testid='stVegaLiteChart']").count() == 2  # forward, backward
    assert "your review" in main_text(page)
    page.get_by_role("button", name="Compute the memory profile").click()
    page.locator("[data-testid='stVegaLiteChart']").nth(2).wait_for(timeout=120_000)
    settle(page)
    assert page.locator("[data-testid='stVegaLiteChart']").count() == 3
    assert page.get_by_role("button", name="Compute the memory profile").count() == 0
    page.get_by_role("button", name="Search the 20 test reviews").click()
    page.get_by_text("carry the sentiment most").wait_for(timeout=120_000)
    settle(page)
    assert page.locator("[data-testid='stVegaLiteChart']").count() == 4
    assert main_text(page).count("test review") >= 10  # the windows' headings
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator("[data-testid='stAlertContentError']").count() == 0
    screenshot(page, "inside-the-rnn")
