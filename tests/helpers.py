"""What the tests share besides conftest's fixtures: tiny corpora, tiny configs, job boards in a
test's folder, a stand-in for the training child, running pages under Streamlit's AppTest, driving
`streamlit run` in Chromium, and Ray nodes on this machine for the cluster tests.

The browser helpers run the server in a process group of its own, so a test can kill it with
everything it started (`Server.kill`), as a crash or an out-of-memory kill would.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import strategies
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from rnnkit import RunStore, load_imdb, preset, train
from rnnkit.config import LIMITS, TrainConfig
from rnnkit.data import ImdbData
from rnnkit.jobs import Job, JobBoard
from rnnkit.settings import TrainingLimits, child_environment
from rnnkit.training import ProgressEvent, TrainingCancelled
from rnnkit.ui.board import job_board

ROOT = Path(__file__).resolve().parents[1]

# --- tiny corpora ---------------------------------------------------------------------------------

# (split, label) -> [(review id, rating, text)]: 6 training and 2 test reviews.
TINY_REVIEWS = {
    ("train", "pos"): [
        (0, 9, "A great film, great acting."),
        (1, 8, "Great story<br /><br />great fun!"),
        (2, 10, "I don't hate it: loved it."),
    ],
    ("train", "neg"): [
        (0, 2, "A bad film. Bad acting, bad story."),
        (1, 1, "Boring and bad."),
        (2, 3, "It's a dull film."),
    ],
    ("test", "pos"): [(0, 7, "Great fun, a gem.")],
    ("test", "neg"): [(0, 4, "Dull, boring, awful.")],
}

# Ranks of TINY_REVIEWS' training words: count first, then alphabetical order.
TINY_RANKED = [
    "bad", "great",  # 4 each
    "a", "film",  # 3 each
    "acting", "it", "story",  # 2 each
    "and", "boring", "don't", "dull", "fun", "hate", "i", "it's", "loved",  # 1 each
]  # fmt: skip


def write_corpus(root: Path, reviews: dict = TINY_REVIEWS) -> Path:
    """Write reviews as root/aclImdb/{split}/{label}/ID_RATING.txt; return root/aclImdb."""
    for (split, label), items in reviews.items():
        folder = root / "aclImdb" / split / label
        folder.mkdir(parents=True, exist_ok=True)
        for review_id, rating, text in items:
            data = text if isinstance(text, bytes) else text.encode()
            (folder / f"{review_id}_{rating}.txt").write_bytes(data)
    return root / "aclImdb"


def write_archive(path: Path, reviews: dict = TINY_REVIEWS) -> Path:
    """Write reviews as a .tar.gz of the aclImdb layout at `path`."""
    with tarfile.open(path, "w:gz") as archive:
        for (split, label), items in reviews.items():
            for review_id, rating, text in items:
                data = text if isinstance(text, bytes) else text.encode()
                member = tarfile.TarInfo(f"aclImdb/{split}/{label}/{review_id}_{rating}.txt")
                member.size = len(data)
                archive.addfile(member, io.BytesIO(data))
    return path


POSITIVE = ["good", "great", "fun", "superb", "loved", "brilliant"]
NEGATIVE = ["bad", "awful", "dull", "boring", "hated", "weak"]
NEUTRAL = ["the", "film", "story", "acting", "plot", "was", "and", "it"]


def tiny_reviews(train_per_label: int = 40, test_per_label: int = 10, seed: int = 0) -> dict:
    """Generated reviews a tiny model learns in seconds: neutral words and one to three words of
    their label's sentiment (the two lists share no word), in the layout `write_archive` takes."""
    generator = random.Random(seed)

    def review(words: list[str]) -> str:
        picked = generator.choices(NEUTRAL, k=generator.randint(3, 12))
        picked += generator.choices(words, k=generator.randint(1, 3))
        generator.shuffle(picked)
        return " ".join(picked) + "."

    reviews = {}
    for split, count in (("train", train_per_label), ("test", test_per_label)):
        for label, words in (("pos", POSITIVE), ("neg", NEGATIVE)):
            rating = 8 if label == "pos" else 2
            reviews[split, label] = [(i, rating, review(words)) for i in range(count)]
    return reviews


# --- tiny configs ---------------------------------------------------------------------------------

# A model small enough to train in a second: 1 layer of 8 units, sequences of 16 tokens.
TINY_OVERRIDES = {
    "data.num_words": "100",
    "data.max_length": "16",
    "model.rnn_units": "8",
    "model.embedding_dim": "8",
    "model.dense_units": "8",
    "training.batch_size": "16",
    "training.epochs": "3",
    "training.seed": "1",
}


def tiny_masked_config(**overrides: str) -> TrainConfig:
    """The seed preset shrunk to TINY_OVERRIDES: post padding, the padding masked."""
    return preset("seed").with_overrides({**TINY_OVERRIDES, **overrides})


def tiny_unmasked_config(**overrides: str) -> TrainConfig:
    """The tiny config post-padded without a mask: the padding experiment's first variant."""
    return tiny_masked_config(**{"model.mask_padding": "false", **overrides})


# --- job boards -----------------------------------------------------------------------------------


def new_job_board(folder: Path, limits: TrainingLimits | None = None, **options) -> JobBoard:
    """A job board whose runs go to `folder / "runs"`, within `limits` (default: the default
    limits, whatever the environment says), with JobBoard's other keyword `options`."""
    return JobBoard(
        RunStore(folder / "runs"), TrainingLimits() if limits is None else limits, **options
    )


def cancel_part_way(
    board: JobBoard,
    config: TrainConfig,
    data: ImdbData,
    *,
    epoch_timeout: float,
    stop_timeout: float,
) -> tuple[Job, int]:
    """Submit `config`, cancel its job once it has reported an epoch, and check that it stopped
    resumable: cancelled with no error, its run incomplete with some but not all epochs saved.

    Returns:
        The cancelled job and how many epochs its run saved.
    """
    job = board.submit(config, data)
    wait_for(lambda: board.view(job.run_id).epochs, timeout=epoch_timeout)
    assert board.cancel(job.run_id)
    view = board.wait(job.run_id, timeout=stop_timeout)
    # Pytest does not rewrite a helper's asserts: the messages say what was found.
    assert view.state == "cancelled" and view.error is None, view
    status = board.store.status(job.run_id)
    assert status == "incomplete", status
    saved = len(board.store.history_epochs(job.run_id))
    assert 1 <= saved < config.training.epochs, f"{saved} epochs saved"
    return job, saved


# --- the job board without a training child -------------------------------------------------------


class GatedTrain:
    """Stands in for rnnkit.jobs.train_in_child: emits events and waits for a gate per run."""

    def __init__(self):
        self.gates: dict[str, threading.Event] = {}
        self.calls: list[str] = []
        self.released = False  # True: every gate opens, those of jobs still queued too

    def gate(self, run_id: str) -> threading.Event:
        gate = self.gates.setdefault(run_id, threading.Event())
        if self.released:
            gate.set()
        return gate

    def __call__(self, config, data, store, on_progress, cancel, on_start=None, standby=None):
        if standby is not None:  # a fake trains nothing: the process on standby ends unused
            standby.close()
        run_id = config.run_id(data.fingerprint)
        self.calls.append(run_id)
        event = ProgressEvent("batch", run_id, epoch=1, epochs=1, batch=1, batches=2)
        while not self.gate(run_id).wait(0.01):
            on_progress(event)
            if cancel.cancelled:
                raise TrainingCancelled(run_id)


def wait_for(predicate, timeout=10.0):
    """Wait until `predicate()` is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


# --- pages under AppTest --------------------------------------------------------------------------

APP = str(ROOT / "app.py")
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


def shown(markdown: str) -> str:
    """The text a reader sees of a Markdown source (escapes resolved, markup and the invisible
    word joiners of `escape_markdown` left out)."""
    return render_markdown(markdown).text.replace("\u2060", "")


def shown_texts(app: AppTest) -> str:
    """Every sentence the page shows, as a reader sees it, one element a line."""
    return "\n".join(shown(str(element.value)) for kind in TEXT_KINDS for element in app.get(kind))


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


def button(app: AppTest, key: str):
    """The one button with `key`."""
    (found,) = [b for b in app.button if b.key == key]
    return found


# The Train page's fields a test sets, with the type of their widget's value (None: text).
TRAIN_FIELD_KINDS = {
    "data.num_words": int,
    "data.max_length": int,
    "model.rnn_units": None,
    "model.embedding_dim": int,
    "model.dense_units": None,
    "training.batch_size": int,
    "training.epochs": int,
    "training.seed": int,
}


def open_train_page(**overrides: str) -> AppTest:
    """The Train page with its fields set to TINY_OVERRIDES and then `overrides`."""
    app = AppTest.from_file(APP, default_timeout=120)
    app.switch_page("views/train.py").run()
    assert not app.exception, app.exception
    for name, value in {**TINY_OVERRIDES, **overrides}.items():
        widget = app.get("text_input") + app.get("number_input")
        (match,) = [w for w in widget if w.key == f"cfg_field_{name}"]
        kind = TRAIN_FIELD_KINDS[name]
        match.set_value(kind(value) if kind else value)
    app.run()
    assert not app.exception, app.exception
    return app


class TinyRuns(NamedTuple):
    corpus: Path
    runs: Path  # the store both runs are in
    run_id: str  # tiny_masked_config(): 3 epochs, the newer run
    other_run_id: str  # tiny_masked_config with 1 epoch, the older run


class TrainedOnATinyCorpus(NamedTuple):
    corpus: Path  # the tiny corpus's archive
    runs: Path  # the run store's folder
    run_ids: dict[str, str]  # each configuration's run id, by the name it was given


def train_on_a_tiny_corpus(folder: Path, configs: dict[str, TrainConfig]) -> TrainedOnATinyCorpus:
    """Write a tiny corpus and train `configs` on it, in their order, into a run store, all under
    `folder` (for a module fixture: a test that changes the store works on a copy of it,
    `point_the_app_at_a_copy`).

    Args:
        folder: an empty folder for the corpus, its cache and the run store.
        configs: what to train, by a name for its run id; each with `data.num_words` 100, as
            the tiny configs have.

    Returns:
        The corpus, the run store's folder, and the run ids by the names of `configs`.
    """
    corpus = write_archive(folder / "corpus.tar.gz", tiny_reviews())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RNNKIT_CACHE_DIR", str(folder / "cache"))
        data = load_imdb(num_words=100, path=corpus)
        store = RunStore(folder / "runs")
        run_ids = {name: train(config, data, store).run_id for name, config in configs.items()}
    return TrainedOnATinyCorpus(corpus, store.root, run_ids)


def train_tiny_runs(folder: Path) -> TinyRuns:
    """Train two tiny runs on a tiny corpus, all under `folder` (for a module fixture: copy the
    store before a test changes it)."""
    trained = train_on_a_tiny_corpus(
        folder,
        {"other": tiny_masked_config(**{"training.epochs": "1"}), "run": tiny_masked_config()},
    )
    return TinyRuns(trained.corpus, trained.runs, trained.run_ids["run"], trained.run_ids["other"])


def point_the_app_at_a_copy(corpus: Path, runs: Path, folder: Path, monkeypatch) -> Path:
    """Point the app at `corpus` (RNNKIT_DATA) and at a copy of the run store `runs` made at
    `folder` (RNNKIT_RUNS_DIR), which a test may change or damage; the copy's folder."""
    copy = shutil.copytree(runs, folder)
    monkeypatch.setenv("RNNKIT_DATA", str(corpus))
    monkeypatch.setenv("RNNKIT_RUNS_DIR", str(copy))
    return copy


@contextlib.contextmanager
def app_on_a_copy(trained: TinyRuns, folder: Path, monkeypatch) -> Iterator[TinyRuns]:
    """The app on the tiny corpus and a copy of the two runs in `folder`, with a fresh job
    board (shut down afterwards): a test may damage the copy."""
    root = point_the_app_at_a_copy(trained.corpus, trained.runs, folder, monkeypatch)
    job_board.clear()
    yield trained._replace(runs=root)
    job_board().shutdown()
    job_board.clear()


# --- Markdown as a page shows it -----------------------------------------------------------------

# The URL parameters each page reads, by its script (tests/test_page_inputs.py checks the code
# reads no other).
URL_PARAMETERS = {
    "views/home.py": [],
    "views/vocabulary.py": [
        "num_words",
        "word",
        "id",
        "search",
        "sort",
        "descending",
        "top_n",
        "vocabulary_run",
    ],
    "views/reviews.py": [
        "split",
        "label",
        "word",
        "index",
        "max_length",
        "padding",
        "truncating",
        "show_ids",
    ],
    "views/lengths.py": ["max_length", "padding", "truncating", "log_scale", "batch_size", "batch"],
    "views/train.py": ["preset", *LIMITS],  # the preset and every setting of the form
    "views/curves.py": ["curves_runs", "curves_layout"],
    "views/predictions.py": ["predict_run", "predict_threshold", "predict_word"],
    "views/inside.py": [
        "predict_run",
        "inside_source",
        "inside_review",
        "inside_memory_runs",
        "inside_unit",
    ],
}
# The URL parameters that hold a number, and the kind of widget that shows each.
URL_NUMBER_WIDGETS = {
    "num_words": "number_input",
    "id": "number_input",
    "top_n": "slider",
    "index": "number_input",
    "max_length": "slider",
    "batch": "number_input",
    "predict_threshold": "slider",
    "inside_review": "number_input",
    "inside_unit": "number_input",
}
# What a hostile link puts in a URL parameter: a link, an image, HTML, a script, Streamlit's
# colour directive and math.
HOSTILE_TEXTS = [
    "[x](https://evil.example)",
    "![i](https://evil.example/i.png)",
    "<img src=https://evil.example/x onerror=alert(1)>",
    "<script>alert(2)</script>",
    ":red[x]",
    "$x$",
]
HOSTILE_TEXT = " ".join(HOSTILE_TEXTS)
# What a URL may hold where a page expects a number: any text, floats (nan and infinities
# included), huge and negative whole numbers, other scripts' digits, Python's own spellings.
URL_NUMBERS = strategies.one_of(
    strategies.text(),
    strategies.floats().map(repr),
    strategies.floats().map(str).map(str.upper),
    strategies.integers().map(str),
    strategies.integers(min_value=10**15, max_value=10**400).map(str),
    strategies.integers(max_value=-1).map(str),
    strategies.sampled_from(
        ["１２", "٣", "1_000", "0x10", " 7 ", "+5", "-0", "1e400", "-1e400", "Infinity"]
    ),
)
# What a URL may hold where a page expects text: any text, markup, the hostile pieces joined.
URL_TEXTS = strategies.one_of(
    strategies.text(),
    strategies.text(alphabet=strategies.sampled_from([*string.punctuation, " ", "\n", "w"])),
    strategies.lists(strategies.sampled_from(HOSTILE_TEXTS), max_size=4).map(" ".join),
)
_COMMONMARK = MarkdownIt("commonmark")
# GitHub's autolink literals: remark-gfm, with which Streamlit renders Markdown, finds these in
# the text after parsing (backslash escapes do not stop it) and makes links of them. Its two
# patterns (mdast-util-gfm-autolink-literal), without its checks on the character before and on
# the domain, so that anything it could link is found.
GFM_AUTOLINK = re.compile(
    r"(?:https?://|www(?=\.))[-.\w]+|[-.\w+]+@[-\w]+(?:\.[-\w]+)+", re.IGNORECASE | re.ASCII
)


@dataclass
class RenderedMarkdown:
    """What a CommonMark renderer makes of a Markdown source."""

    blocks: list[str]  # the block tokens' types ("paragraph_open", "heading_open", ...)
    inline: list[str]  # the inline tokens' types ("text", "link_open", "em_open", ...)
    text: str  # the text a reader sees, without line breaks
    targets: list[str]  # where links and images point, GFM's autolink literals included
    html: list[str]  # raw HTML kept as HTML


def render_markdown(source: str) -> RenderedMarkdown:
    """Render `source` with markdown-it-py (CommonMark), plus GFM's autolink literals."""
    tokens = _COMMONMARK.parse(source)
    children = [child for token in tokens for child in token.children or []]
    text = "".join(child.content for child in children if child.type in ("text", "code_inline"))
    text += "".join(token.content for token in tokens if token.type in ("code_block", "fence"))
    targets = [
        child.attrGet("href") or child.attrGet("src") or ""
        for child in children
        if child.type in ("link_open", "image")
    ]
    targets += GFM_AUTOLINK.findall(text)
    html = [token.content for token in [*tokens, *children] if token.type.startswith("html")]
    return RenderedMarkdown(
        blocks=[token.type for token in tokens],
        inline=[child.type for child in children],
        text=text,
        targets=targets,
        html=html,
    )


# --- the app in a browser -------------------------------------------------------------------------

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
# Every page as (URL path, its title: the h1), in the sidebar's order (app.py).
PAGES = [
    ("", "rnnkit: bidirectional RNNs on the IMDB reviews"),
    ("vocabulary", "Vocabulary"),
    ("reviews", "Reviews"),
    ("lengths", "Lengths and padding"),
    ("train", "Train"),
    ("curves", "Learning curves"),
    ("inside", "Inside the RNN"),
    ("predictions", "Predictions"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A running `streamlit run app.py`."""

    process: subprocess.Popen
    url: str

    def stop(self) -> None:
        """Stop it as Ctrl+C would (its job board cancels its jobs first)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL its whole process group: no handler, no clean-up runs. Returns once every
        process of the group has exited (a training child too: its run's lock is then free)."""
        _kill_group(self.process)


def _running_in_group(group: int) -> bool:
    """Whether a process of process group `group` is still running: a thread of it is not yet
    a zombie. A killed process's main thread turns zombie before its other threads have exited,
    and its files (a run's lock) stay open until the last one has."""
    for stat in Path("/proc").glob("[0-9]*/task/[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ")".
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == group and fields[0] != "Z":
                return True
    return False


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process group that `process` leads, and return once every process of it has
    exited (or after 30 s): until then a killed process may still hold its files (a run's lock)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _running_in_group(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def start_server(
    environment: dict[str, str], timeout: float = 90.0, log_path: Path | None = None
) -> Server:
    """Start `streamlit run app.py` on a free port with `environment` added to this process's,
    and wait until `/_stcore/health` answers (the benchmarks start the app with this too).

    Args:
        environment: variables for the server (RNNKIT_DATA, RNNKIT_CACHE_DIR, ...).
        timeout: seconds to wait for it to become healthy; the test fails after them.
        log_path: a file for the server's output; None discards it.

    Returns:
        The running server.
    """
    port = free_port()
    with contextlib.ExitStack() as files:  # the child keeps its own copy of the log file
        log = files.enter_context(log_path.open("wb")) if log_path else subprocess.DEVNULL
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
            env={**os.environ, "PYTHONPATH": str(ROOT), **environment},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT if log_path else subprocess.DEVNULL,
            start_new_session=True,  # its own process group, for Server.kill
        )
    server = Server(process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as answer:
                if answer.read() == b"ok":
                    return server
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.kill()
            where = f": see {log_path}" if log_path else ""
            pytest.fail(f"streamlit run app.py did not become healthy within {timeout:g} s{where}")
        time.sleep(0.3)


@contextlib.contextmanager
def chromium() -> Iterator:
    """Debian's Chromium under Playwright; the test is skipped where it is not installed (and
    fails in CI)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Chromium (apt-get install chromium; .ci/run does)")
        pytest.skip("Chromium is not installed: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def new_tab(browser, request: pytest.FixtureRequest) -> Iterator:
    """A tab in a fresh browser context; a screenshot goes to `test-artifacts/` if the test
    fails."""
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    tab = context.new_page()
    try:
        yield tab
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            screenshot(tab, request.node.name)
        context.close()


def screenshot(tab, name: str) -> None:
    """Save the whole browser tab to `test-artifacts/<name>.png`."""
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def open_in_browser(tab, url: str) -> None:
    """Go to `url` in the browser tab and wait until the script has run (no 'running'
    indicator left)."""
    tab.goto(url)
    tab.wait_for_selector("[data-testid='stSidebar']", timeout=60_000)
    settle(tab)


def settle(tab, timeout: float = 60.0) -> None:
    """Wait until Streamlit has finished running the script in the browser tab: its running
    indicator absent for 1.5 s (it appears only some moments after a run starts)."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 5:
        running = tab.locator("[data-testid='stStatusWidget']").count()
        quiet = 0 if running else quiet + 1
        if time.monotonic() > deadline:
            raise AssertionError("the app kept running")
        time.sleep(0.3)


def main_text(tab) -> str:
    """The text of the browser tab's main area."""
    return tab.locator("[data-testid='stMain']").inner_text()


def metric_value(tab, label: str) -> str:
    """The value of the browser tab's metric labelled `label`."""
    metric = tab.locator("[data-testid='stMetric']").filter(has_text=label)
    return metric.locator("[data-testid='stMetricValue']").inner_text().strip()


def exceptions(tab) -> int:
    """How many exception boxes the browser tab shows."""
    return tab.locator("[data-testid='stException']").count()


# --- Ray nodes on this machine --------------------------------------------------------------------

# A loopback address other than 127.0.0.1, which Ray replaces with the machine's outward address:
# the test cluster's traffic stays on this machine.
RAY_HOST = "127.0.0.2"
RAY_OBJECT_STORE_BYTES = 80 * 1024 * 1024  # Ray's smallest store: the tasks pass small dicts
CLUSTER_REQUIREMENTS = (
    "the cluster tests need ray: pip install -r requirements-cluster.txt "
    '(or leave them out with -m "not cluster")'
)


def require_ray() -> None:
    """Fail (not skip) the test when ray is not installed, saying how to install it."""
    try:
        import ray  # noqa: F401
    except ImportError:
        pytest.fail(CLUSTER_REQUIREMENTS)


@dataclass
class RayNode:
    """One Ray node of this machine: `ray start --block`, leader of its own process group, which
    holds every process of the node (raylet, agents, the workers that run tasks)."""

    process: subprocess.Popen
    log: Path

    def kill(self) -> None:
        """SIGKILL every process of the node at once, as a machine that is lost; returns once
        they have all exited."""
        _kill_group(self.process)

    def stop(self) -> None:
        """Stop the node's processes (SIGTERM, then SIGKILL what is left after 5 s)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _running_in_group(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.kill()


# What the test cluster's nodes run with (`.ci/run` starts its nodes with the same).
RAY_TEST_ENVIRONMENT = {"RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": "180"}


def start_ray_node(
    log: Path,
    head_address: str | None = None,
    port: int | None = None,
    client_port: int | None = None,
    resources: dict[str, float] | None = None,
) -> RayNode:
    """Start a Ray node of one CPU on RAY_HOST and wait until it runs.

    Args:
        log: the file for `ray start`'s output.
        head_address: the head to join; None starts a head on `port`.
        port: the head's port (with `head_address` None).
        client_port: the port of the head's Ray client server (`ray://`).
        resources: custom resources only this node offers, e.g. {"doomed": 1}.

    Returns:
        The node; `stop()` it at the end.
    """
    ray = Path(sys.executable).with_name("ray")
    command = [
        str(ray),
        "start",
        "--block",
        "--node-ip-address",
        RAY_HOST,
        "--num-cpus",
        "1",
        "--object-store-memory",
        str(RAY_OBJECT_STORE_BYTES),
        "--disable-usage-stats",
    ]
    if head_address is None:
        command += [
            "--head",
            "--port",
            str(port),
            "--ray-client-server-port",
            str(client_port),
            "--include-dashboard=false",
        ]
    else:
        command += ["--address", head_address]
    if resources:
        command += ["--resources", json.dumps(resources)]
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its workers import this copy of rnnkit. The head's client server waits 30 s by
            # default for the server it starts for each `ray://` client: on 2 busy cores that
            # start (a Python process importing Ray) can take longer.
            env={**child_environment(), **RAY_TEST_ENVIRONMENT},
            start_new_session=True,
        )
    node = RayNode(process, log)
    deadline = time.monotonic() + 120
    while "Ray runtime started" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            node.stop()
            pytest.fail(f"ray start failed:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    return node


class RayCluster(NamedTuple):
    """Where the test cluster answers."""

    address: str  # the head's HOST:PORT, for a process that runs on a node's machine
    client_address: str  # ray://HOST:PORT, Ray's client server on the head


@contextlib.contextmanager
def local_ray_cluster(folder: Path) -> Iterator[RayCluster]:
    """A head and one more node on this machine, one CPU each; yields where they answer and
    stops both at the end."""
    port, client_port = free_port(), free_port()
    head = start_ray_node(folder / "head.log", port=port, client_port=client_port)
    nodes = [head]
    try:
        nodes.append(start_ray_node(folder / "node.log", head_address=f"{RAY_HOST}:{port}"))
        yield RayCluster(f"{RAY_HOST}:{port}", f"ray://{RAY_HOST}:{client_port}")
    finally:
        for node in reversed(nodes):
            node.stop()


def ray_node_id(resource: str, timeout: float = 60.0) -> str:
    """The id of the living node that offers the custom `resource` (waiting for it to join)."""
    import ray

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for node in ray.nodes():
            if node["Alive"] and resource in node["Resources"]:
                return node["NodeID"]
        time.sleep(0.2)
    raise AssertionError(f"no node with the resource {resource} joined")
