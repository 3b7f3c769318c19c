"""What the AppTest page tests share: a store of tiny trained runs, running app.py on a page,
and reading what it shows."""

from __future__ import annotations

import contextlib
import html
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from rnnkit import RunStore, load_imdb, train, ui
from tests.conftest import write_archive
from tests.test_training import tiny_config, tiny_reviews

APP = str(Path(__file__).resolve().parents[1] / "app.py")
# The kinds of element a page writes its sentences in.
TEXT_KINDS = ("markdown", "caption", "info", "success", "error", "warning")


def open_page(page: str, **query_params: str | list[str]) -> AppTest:
    """Run app.py on `page` (a file under views/) with the URL's query parameters; it must
    run without an exception."""
    app = AppTest.from_file(APP, default_timeout=120)
    for name, value in query_params.items():
        app.query_params[name] = value
    app.switch_page(page).run()
    assert not app.exception, app.exception
    return app


def texts(app: AppTest) -> str:
    """Every sentence the page shows (markdown, captions and alerts), one element a line."""
    return "\n".join(str(element.value) for kind in TEXT_KINDS for element in app.get(kind))


def metrics(app: AppTest) -> dict[str, str]:
    """The page's metrics, label to value."""
    return {metric.label: metric.value for metric in app.metric}


def chips(markup: str) -> list[str]:
    """The text of each token chip (span) of an HTML token view, in order."""
    return [html.unescape(text) for text in re.findall(r"<span[^>]*>([^<]*)", markup)]


def chart_data(app: AppTest, index: int) -> list[pd.DataFrame]:
    """The data a page's chart ships to the browser: Streamlit sends each dataset as Arrow."""
    chart = app.get("vega_lite_chart")[index].proto
    return [pa.ipc.open_stream(dataset.data.data).read_pandas() for dataset in chart.datasets]


class TinyRuns(NamedTuple):
    corpus: Path
    runs: Path  # the store both runs are in
    run_id: str  # tiny_config(): 3 epochs, the newer run
    other_run_id: str  # tiny_config with 1 epoch, the older run


def train_tiny_runs(folder: Path) -> TinyRuns:
    """Train two tiny runs on a tiny corpus, all under `folder` (for a module fixture: copy the
    store before a test changes it)."""
    corpus = write_archive(folder / "corpus.tar.gz", tiny_reviews())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RNNKIT_CACHE_DIR", str(folder / "cache"))
        data = load_imdb(num_words=100, path=corpus)
        store = RunStore(folder / "runs")
        other = train(tiny_config(**{"training.epochs": "1"}), data, store)
        run = train(tiny_config(), data, store)
    return TinyRuns(corpus, store.root, run.run_id, other.run_id)


@contextlib.contextmanager
def app_on_a_copy(trained: TinyRuns, folder: Path, monkeypatch) -> Iterator[TinyRuns]:
    """The app on the tiny corpus and a copy of the two runs in `folder`, with a fresh job
    board (shut down afterwards): a test may damage the copy."""
    root = shutil.copytree(trained.runs, folder)
    monkeypatch.setenv("RNNKIT_DATA", str(trained.corpus))
    monkeypatch.setenv("RNNKIT_RUNS_DIR", str(root))
    ui.job_board.clear()
    yield trained._replace(runs=root)
    ui.job_board().shutdown()
    ui.job_board.clear()
