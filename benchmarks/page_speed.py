"""How long each page of the app takes to render with the real data cached.

Each view runs under Streamlit's AppTest as a browser's first look at it in a new session would:
app.py (navigation, the sidebar's data status), then the page, with the view's query
parameters. The time is the script's, to the last element sent, not the browser's drawing.
Before timing, the reviews are loaded once (parsing them into RNNKIT_CACHE_DIR if that cache is
empty) and one run fills `st.cache_resource`, as in a server that has served one visitor.

The reference is an AppTest run of a one-line script in the same invocation: the ratio says how
many times a page costs what Streamlit's own machinery does.

    RNNKIT_DATA=../shared/data/aclImdb_labeled.tar.gz python benchmarks/page_speed.py [--repeat N]

Target: every page view <= 2 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

TARGET_SECONDS = 2.0
APP = Path(__file__).resolve().parents[1] / "app.py"

# (page file, query parameters): each page's default view, and a heavier one.
VIEWS = [
    ("views/home.py", {}),
    ("views/vocabulary.py", {}),
    (
        "views/vocabulary.py",
        {"search": "ing", "sort": "count", "descending": "true", "word": "the"},
    ),
    ("views/reviews.py", {}),
    ("views/reviews.py", {"word": "great", "label": "pos", "index": "100", "max_length": "2000"}),
    ("views/lengths.py", {}),
    ("views/lengths.py", {"log_scale": "true", "max_length": "200", "padding": "pre"}),
]


def timed_view(page: str, query_params: dict[str, str]) -> tuple[float, float]:
    """Seconds for a first view of `page` in a new session, and for a rerun of it."""
    app = AppTest.from_file(str(APP), default_timeout=120)
    app.query_params.update(query_params)
    app.switch_page(page)
    started = time.perf_counter()
    app.run()
    first = time.perf_counter() - started
    if app.exception:
        sys.exit(f"{page} {query_params} raised: {app.exception[0].message}")
    if page != "views/home.py" and not app.sidebar.status:
        sys.exit(f"{page} did not run through app.py")
    started = time.perf_counter()
    app.run()
    return first, time.perf_counter() - started


def reference_seconds() -> float:
    app = AppTest.from_string("import streamlit as st\nst.write('ok')", default_timeout=30)
    started = time.perf_counter()
    app.run()
    return time.perf_counter() - started


def describe(query_params: dict[str, str]) -> str:
    """The view's URL query: "?word=great&label=pos", or "" for the default view."""
    return (
        "?" + "&".join(f"{name}={value}" for name, value in query_params.items())
        if query_params
        else ""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed views of each page")
    arguments = parser.parse_args()
    data_path = os.environ.get("RNNKIT_DATA")
    if not data_path or not Path(data_path).exists():
        sys.exit("Set RNNKIT_DATA to the aclImdb archive (../shared/data/aclImdb_labeled.tar.gz)")

    import rnnkit

    started = time.perf_counter()
    data = rnnkit.load_imdb()
    print(
        f"data: {len(data.train):,} train / {len(data.test):,} test reviews, "
        f"{'from the cache' if data.source.from_cache else 'parsed and cached'} in "
        f"{time.perf_counter() - started:.2f} s"
    )
    first_ever, _ = timed_view("views/home.py", {})
    print(f"first page view in this process (imports, cached data from disk): {first_ever:.2f} s")

    references = [reference_seconds() for _ in range(arguments.repeat)]
    reference = statistics.median(references)
    print(f"reference (AppTest run of a one-line script): median {reference * 1000:.0f} ms\n")
    print(f"{'view':<75} {'median':>7} {'max':>7} {'x ref':>6} {'rerun':>7}  <= 2 s")
    all_met = True
    for page, query_params in VIEWS:
        times = [timed_view(page, query_params) for _ in range(arguments.repeat)]
        firsts = [first for first, _ in times]
        median, longest = statistics.median(firsts), max(firsts)
        rerun = statistics.median(rerun for _, rerun in times)
        met = longest <= TARGET_SECONDS
        all_met &= met
        name = f"{page} {describe(query_params)}"
        print(
            f"{name:<75} {median:>6.2f}s {longest:>6.2f}s {median / reference:>6.1f} "
            f"{rerun:>6.2f}s  {'yes' if met else 'NO'}"
        )
    print("\nevery page view within 2 s" if all_met else "\nTARGET MISSED: a page took over 2 s")


if __name__ == "__main__":
    main()
