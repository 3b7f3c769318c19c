"""The app under load: 20 sessions view its pages while one training job runs.

`streamlit run app.py` is started headless on a free port with the real data, a run store in a
temporary folder, and one small complete run in it (trained from the command line first, so the
Predictions page has a model to show). Then:

1. the reference: one session alone, no training, visiting every page in turn (after a warm-up
   round that fills the server's caches, not counted);
2. one Chromium tab (Playwright) opens the Train page and starts a job (the notebook's model, a
   few epochs); it keeps watching the live progress, as a visitor would;
3. the load: N sessions at once (default 20, each a Streamlit session of its own) visit every
   page in turn, each session starting at another page, for a few rounds.

A session opens its first page by URL, then moves through the sidebar's navigation as a
visitor does; after an error it opens its next page afresh. An error is anything wrong with a
view (see the clients below), and a view over the timeout (30 s).

    RNNKIT_DATA=../shared/data/aclImdb_labeled.tar.gz python benchmarks/load.py \
        [--client stream|browser|apptest] [--sessions 20] [--rounds 2] [--cache-dir DIR]

Prints sessions, page views, errors (each with what it was), the median and 95th percentile
page time overall and per page, the same for the reference, and p95(load) / p95(alone). Exits
with 1 if there was any error. Needs Chromium at /usr/bin/chromium (apt-get install chromium)
except with `--client apptest`.

Clients (`--client`):

- `stream` (the default): each session is a websocket to the server's `/_stcore/stream`, speaking
  the browser frontend's protocol (Streamlit's protobuf messages): it opens its first page by
  name, as a URL does, and moves on by the page's script hash, as the sidebar does. It draws
  nothing, so the server has the machine's cores as it would on a host, where the browsers are
  the visitors' own machines. A page's time runs from the request until the server's
  `script_finished`; an error is an exception or error box in the page's messages, a page that
  is not the one asked for (its title, an `h1`), a page not found, a script that did not finish,
  a lost connection or a view over the timeout. The job is started and watched by one Chromium
  tab, as above.
- `browser`: each session is a Chromium context. A page's time runs from the click (or the
  navigation) until the script has finished (the page's title shown, the app's script state
  `notRunning`), the browser's drawing included. An error is an exception or error box on the
  page, a page that is not the one asked for, a lost connection, a navigation failure or a
  JavaScript error. On a 2-core machine the 20 renderers that make the load compete with the
  server for the same cores, and take most of them.
- `apptest`: each session is a Streamlit `AppTest` (the page scripts run as the server runs
  them, with the same caches and job board, in threads of this process), and the job is
  submitted to the job board, which trains it in a child process. A page's time is then its
  script's run; an error is an exception, an error box or a run over the timeout. AppTest's
  runtime stand-in is global, so its sessions in threads can trip over each other's state.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the browser tests' helpers start the app and name Chromium

from tests.helpers import CHROMIUM, CHROMIUM_FLAGS, PAGES, start_server  # noqa: E402

VIEWPORT = {"width": 1280, "height": 1000}  # wide enough for the sidebar to stay open

PAGE_NAMES = {path: path or "home" for path, _ in PAGES}

# The complete run the Predictions and Learning curves pages show: tiny, seconds to train.
COMPLETE_RUN_SETTINGS = {
    "data.max_length": "32",
    "model.rnn_units": "8",
    "model.embedding_dim": "8",
    "model.dense_units": "8",
    "training.epochs": "1",
}
# The job that trains during the load: the notebook's model, which computes every padded step,
# so that it is still training when the load ends; it is stopped then.
JOB_EPOCHS = "5"

# True once the page asked for has run to its end: its title shown and the app's script state
# `notRunning`. The title is the sign that this run is the new page's: under load the frontend
# may get a whole run's messages at once and never show the state `running`.
PAGE_DONE = """(heading) => {
    const app = document.querySelector("[data-testid='stApp']");
    if (app === null || app.getAttribute("data-test-script-state") !== "notRunning") {
        return false;
    }
    const title = document.querySelector("[data-testid='stMain'] h1");
    return title !== null && title.innerText.trim() === heading;
}"""
POLL_MS = 50


@dataclass(frozen=True)
class View:
    """One page view of one session."""

    session: int
    page: str  # PAGE_NAMES' name
    opened: bool  # the session's first view, by URL (a new Streamlit session)
    seconds: float
    error: str | None


def train_complete_run(environment: dict[str, str], cache_dir: Path | None = None) -> None:
    """Train the tiny complete run from the command line into the server's run store
    (benchmarks/memory.py too); `cache_dir` parses into a cache other than the server's."""
    settings = [f"--set={name}={value}" for name, value in COMPLETE_RUN_SETTINGS.items()]
    started = time.perf_counter()
    if cache_dir is not None:
        environment = {**environment, "RNNKIT_CACHE_DIR": str(cache_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "rnnkit", "train", "--preset", "seed", *settings],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"training the complete run failed:\n{done.stdout}\n{done.stderr}")
    print(f"complete run for the Predictions page trained in {time.perf_counter() - started:.0f} s")


async def page_problem(tab, heading: str) -> str | None:
    """What is wrong with the page just run, or None."""
    app = tab.locator("[data-testid='stApp']")
    connection = await app.get_attribute("data-test-connection-state")
    if connection != "CONNECTED":
        return f"connection {connection}"
    exceptions = tab.locator("[data-testid='stException']")
    if await exceptions.count():
        return "exception: " + (await exceptions.first.inner_text()).strip().splitlines()[0]
    errors = tab.locator("[data-testid='stAlertContentError']")
    if await errors.count():
        return "error box: " + (await errors.first.inner_text()).strip().splitlines()[0]
    titles = tab.locator("[data-testid='stMain'] h1")
    title = (await titles.first.inner_text()).strip() if await titles.count() else None
    if title != heading:
        return f"shows {title!r}, not {heading!r}"
    return None


async def page_state(tab) -> str:
    """The app's script and connection state and the title it shows, for a view that hung."""
    if tab is None:
        return "no page"
    try:
        app = tab.locator("[data-testid='stApp']")
        titles = tab.locator("[data-testid='stMain'] h1")
        title = (await titles.first.inner_text()).strip() if await titles.count() else None
        return (
            f"script {await app.get_attribute('data-test-script-state', timeout=5000)}, "
            f"connection {await app.get_attribute('data-test-connection-state', timeout=5000)}, "
            f"title {title!r}"
        )
    except Exception as failure:  # the page itself is gone
        return f"no state: {type(failure).__name__}"


async def tour(session: StreamSession | Session, rounds: int, first_page: int) -> None:
    """The session views every page in turn, `rounds` times, from `first_page` on."""
    for step in range(rounds * len(PAGES)):
        await session.view((first_page + step) % len(PAGES))


class StreamSession:
    """One Streamlit session held over the app's websocket as the browser's frontend holds it,
    re-opened after an error."""

    def __init__(self, url: str, number: int, timeout: float) -> None:
        self.url, self.number, self.timeout = url, number, timeout
        self.socket = None
        self.page_hashes: dict[str, str] = {}  # URL path -> page script hash, from `navigation`
        self.views: list[View] = []

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
            self.socket = None

    async def view(self, page_index: int) -> View:
        """View a page (open a session by the page's name if there is none), time it, check it."""
        path, heading = PAGES[page_index]
        opened = self.socket is None
        started = time.perf_counter()
        try:
            error = await asyncio.wait_for(self._show(path, heading, opened), self.timeout)
        except TimeoutError:
            error = f"over the {self.timeout:g} s timeout"
        except Exception as failure:  # a refused or lost connection: the view failed
            error = f"{type(failure).__name__}: {str(failure).strip()[:200]}"
        view = View(self.number, PAGE_NAMES[path], opened, time.perf_counter() - started, error)
        self.views.append(view)
        if error:
            await self.close()  # the next view starts a new session
        return view

    async def _show(self, path: str, heading: str, opened: bool) -> str | None:
        """Ask for the page's script run and read the server's messages until it has finished.

        Returns:
            What was wrong with the page, or None.
        """
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        from websockets.asyncio.client import connect

        request = BackMsg()
        if opened:
            address = self.url.replace("http://", "ws://") + "/_stcore/stream"
            self.socket = await connect(
                address, subprotocols=["streamlit"], origin=self.url, max_size=None
            )
            request.rerun_script.page_name = path  # the page in the URL
        else:
            request.rerun_script.page_script_hash = self.page_hashes[path]  # a sidebar click
        await self.socket.send(request.SerializeToString())
        problems, titles = [], []
        while True:
            message = ForwardMsg()
            message.ParseFromString(await self.socket.recv())
            kind = message.WhichOneof("type")
            if kind == "navigation":
                self.page_hashes = {
                    page.url_pathname: page.page_script_hash
                    for page in message.navigation.app_pages
                }
            elif kind == "page_not_found":
                problems.append(f"page {path!r} not found")
            elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                shown = element.WhichOneof("type")
                if shown == "exception":
                    problems.append(
                        f"exception: {element.exception.type}: {element.exception.message[:200]}"
                    )
                elif shown == "alert" and element.alert.format == element.alert.ERROR:
                    problems.append("error box: " + element.alert.body.splitlines()[0][:200])
                elif shown == "heading" and element.heading.tag == "h1":
                    titles.append(element.heading.body)
            elif kind == "script_finished":
                status = message.script_finished
                if status == ForwardMsg.FINISHED_SUCCESSFULLY:
                    break
                if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    problems.append("the script did not compile")
                    break
                # FINISHED_EARLY_FOR_RERUN (a new run follows) or a fragment's run: read on
        if heading not in titles:
            problems.append(f"shows {titles[:1]!r}, not {heading!r}")
        return "; ".join(problems) or None


class Session:
    """One browser context viewing the app: one Streamlit session, re-opened after an error."""

    def __init__(self, browser, url: str, number: int, timeout: float) -> None:
        self.browser, self.url, self.number, self.timeout = browser, url, number, timeout
        self.context = None
        self.tab = None
        self.script_errors: list[str] = []  # JavaScript errors since the last view
        self.views: list[View] = []

    async def close(self) -> None:
        if self.context is not None:
            await self.context.close()
            self.context = self.tab = None

    async def view(self, page_index: int) -> View:
        """View a page (open it by URL if the session has none), time it and check it."""
        path, heading = PAGES[page_index]
        opened = self.tab is None
        started = time.perf_counter()
        try:
            await asyncio.wait_for(self._show(page_index, opened), self.timeout)
            seconds = time.perf_counter() - started
            error = await page_problem(self.tab, heading)
        except TimeoutError:
            seconds = time.perf_counter() - started
            error = f"over the {self.timeout:g} s timeout ({await page_state(self.tab)})"
        except Exception as failure:  # a navigation or browser failure: the view failed
            seconds = time.perf_counter() - started
            error = f"{type(failure).__name__}: {str(failure).strip().splitlines()[0]}"
        if self.script_errors:
            error = error or f"JavaScript error: {self.script_errors[0]}"
            self.script_errors.clear()
        view = View(self.number, PAGE_NAMES[path], opened, seconds, error)
        self.views.append(view)
        if error:
            await self.close()  # the next view starts afresh
        return view

    async def _show(self, page_index: int, opened: bool) -> None:
        if opened:
            self.context = await self.browser.new_context(viewport=VIEWPORT)
            self.tab = await self.context.new_page()
            self.tab.set_default_timeout(self.timeout * 1000)  # asyncio.wait_for bounds the view
            self.tab.on("pageerror", lambda error: self.script_errors.append(str(error)))
            await self.tab.goto(f"{self.url}/{PAGES[page_index][0]}")
        else:
            await self.tab.locator("[data-testid='stSidebarNav'] a").nth(page_index).click()
        await self.tab.wait_for_function(PAGE_DONE, arg=PAGES[page_index][1], polling=POLL_MS)


async def start_training(browser, url: str, timeout: float):
    """Open the Train page, start the job and wait until its first batches train.

    Returns:
        The context (it stays on the page, watching the live progress) and its tab.
    """
    context = await browser.new_context(viewport=VIEWPORT)
    tab = await context.new_page()
    tab.set_default_timeout(timeout * 1000)
    await tab.goto(f"{url}/train")
    await tab.wait_for_function(PAGE_DONE, arg="Train", polling=POLL_MS)
    field = tab.get_by_label("epochs", exact=True)
    await field.fill(JOB_EPOCHS)
    await field.press("Enter")
    await tab.get_by_text(f"· {JOB_EPOCHS} epochs").first.wait_for()
    await tab.get_by_role("button", name="Train", exact=True).click()
    await tab.get_by_text(re.compile(r"Epoch \d+ of \d+: batch")).wait_for(timeout=timeout * 1000)
    return context, tab


async def job_state(tab) -> str:
    """The live job's progress as the watching session shows it, or what shows instead."""
    bars = tab.locator("[data-testid='stProgress']")
    if await bars.count():
        return (await bars.first.inner_text()).strip()
    return (
        "no job is training ("
        + (await tab.locator("[data-testid='stMain']").inner_text())[:200].replace("\n", " ")
        + ")"
    )


def percentile(values: list[float], share: float) -> float:
    """The `share` quantile of `values`, interpolated (statistics.quantiles' inclusive method)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def summary_line(name: str, seconds: list[float]) -> str:
    return (
        f"{name:<32} {len(seconds):>6} {statistics.median(seconds):>7.2f}s "
        f"{percentile(seconds, 0.95):>7.2f}s {max(seconds):>7.2f}s"
    )


def report(title: str, views: list[View]) -> float:
    """Print the views' times overall, for a session's first view and per page; the p95."""
    print(f"\n{title}")
    print(f"{'':<32} {'views':>6} {'median':>8} {'p95':>8} {'max':>8}")
    all_seconds = [view.seconds for view in views]
    print(summary_line("all page views", all_seconds))
    opens = [view.seconds for view in views if view.opened]
    print(summary_line("first view of a session (URL)", opens))
    by_page = defaultdict(list)
    for view in views:
        by_page[view.page].append(view.seconds)
    for name in PAGE_NAMES.values():
        if by_page[name]:
            print(summary_line(f"  {name}", by_page[name]))
    return percentile(all_seconds, 0.95)


async def measure(url: str, arguments: argparse.Namespace) -> int:
    """The load made by browser or stream sessions against the server, one Chromium tab training."""
    from playwright.async_api import async_playwright

    def new_session(browser, number: int) -> StreamSession | Session:
        if arguments.client == "stream":
            return StreamSession(url, number, arguments.timeout)
        return Session(browser, url, number, arguments.timeout)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            warm = new_session(browser, 0)
            started = time.perf_counter()
            await tour(warm, 1, 0)
            await warm.close()
            seconds = time.perf_counter() - started
            print(f"warm-up round (caches filled, TensorFlow loaded): {seconds:.1f} s")
            for view in warm.views:
                if view.error:
                    print(f"  warm-up error: {view.page}: {view.error}")

            alone = new_session(browser, 0)
            await tour(alone, arguments.rounds, 0)
            await alone.close()

            trainer, trainer_tab = await start_training(browser, url, arguments.timeout)
            print(f"training job started: {await job_state(trainer_tab)}")

            sessions = [new_session(browser, number) for number in range(arguments.sessions)]
            started = time.perf_counter()
            await asyncio.gather(
                *(
                    tour(session, arguments.rounds, session.number % len(PAGES))
                    for session in sessions
                )
            )
            load_seconds = time.perf_counter() - started
            training_after = await job_state(trainer_tab)
            cancel = trainer_tab.get_by_role("button", name="Cancel training")
            if await cancel.count():
                await cancel.click()
            for session in sessions:
                await session.close()
            await trainer.close()
        finally:
            await browser.close()

    load_views = [view for session in sessions for view in session.views]
    errors = [view for view in load_views if view.error] + [
        view for view in alone.views if view.error
    ]
    print(
        f"\n{arguments.client} sessions: {arguments.sessions} at once, "
        f"{arguments.rounds} round(s) of {len(PAGES)} pages each; "
        f"{len(load_views)} page views in {load_seconds:.0f} s"
    )
    print(f"training job when the load ended: {training_after}")
    print(f"errors: {len(errors)}")
    for view in errors:
        print(f"  session {view.session}, {view.page}, after {view.seconds:.1f} s: {view.error}")
    reference = report("alone (1 session, no training): the reference", alone.views)
    under_load = report(
        f"under load ({arguments.sessions} sessions, 1 training job)",
        load_views,
    )
    print(f"\np95 under load / p95 alone: {under_load / reference:.1f}x")
    return 1 if errors else 0


PAGE_SCRIPTS = {
    name: "views/home.py" if name == "home" else f"views/{name}.py" for name in PAGE_NAMES.values()
}


def apptest_tour(number: int, rounds: int, start: int, timeout: float) -> list[View]:
    """One AppTest session visiting every page `rounds` times, from the page at `start`."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    names = list(PAGE_SCRIPTS)
    views = []
    for step in range(rounds * len(names)):
        name = names[(start + step) % len(names)]
        began = time.perf_counter()
        try:
            app.switch_page(PAGE_SCRIPTS[name]).run()
            problems = [str(item.value) for item in app.exception] + [
                item.value for item in app.error
            ]
            error = "; ".join(problems)[:300] or None
        except Exception as failure:  # AppTest raises when a run outlasts its timeout
            error = f"{type(failure).__name__}: {failure}"[:300]
        views.append(View(number, name, step == 0, time.perf_counter() - began, error))
    return views


def measure_apptest(environment: dict[str, str], arguments: argparse.Namespace) -> int:
    """The load made by AppTest sessions in threads, with one job training in a child."""
    from concurrent.futures import ThreadPoolExecutor

    os.environ.update(environment)
    import rnnkit
    from rnnkit.ui.board import job_board

    apptest_tour(0, 1, 0, arguments.timeout)  # warm-up: caches filled, TensorFlow loaded
    alone = apptest_tour(0, arguments.rounds, 0, arguments.timeout)
    data = rnnkit.load_imdb(num_words=10000)
    config = rnnkit.preset("notebook").with_overrides({"training.epochs": int(JOB_EPOCHS)})
    board = job_board()
    job = board.submit(config, data)
    started = time.perf_counter()
    with ThreadPoolExecutor(arguments.sessions) as pool:
        futures = [
            pool.submit(apptest_tour, number, arguments.rounds, number, arguments.timeout)
            for number in range(arguments.sessions)
        ]
        load_views = [view for future in futures for view in future.result()]
    load_seconds = time.perf_counter() - started
    view = board.view(job.run_id)
    progress = view.progress
    training_after = (
        f"{view.state}, epoch {progress.epoch} of {progress.epochs}, batch {progress.batch} of "
        f"{progress.batches}"
        if progress
        else view.state
    )
    board.cancel(job.run_id)
    board.shutdown()
    errors = [view for view in load_views + alone if view.error]
    print(
        f"\nAppTest sessions: {arguments.sessions} at once, {arguments.rounds} round(s) of "
        f"{len(PAGES)} pages each; {len(load_views)} page views in {load_seconds:.0f} s"
    )
    print(f"training job (child process) when the load ended: {training_after}")
    print(f"errors: {len(errors)}")
    for item in errors:
        print(f"  session {item.session}, {item.page}, after {item.seconds:.1f} s: {item.error}")
    reference = report("alone (1 session, no training): the reference", alone)
    under_load = report(f"under load ({arguments.sessions} sessions, 1 training job)", load_views)
    print(f"\np95 under load / p95 alone: {under_load / reference:.1f}x")
    return 1 if errors else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20, help="sessions at once (20)")
    parser.add_argument("--rounds", type=int, default=2, help="visits of every page (2)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a view may take")
    parser.add_argument(
        "--cache-dir", type=Path, help="RNNKIT_CACHE_DIR to reuse (default: a new, empty one)"
    )
    parser.add_argument(
        "--client",
        choices=("stream", "browser", "apptest"),
        default="stream",
        help="websocket sessions (the frontend's protocol) or Chromium sessions against the "
        "server, or AppTest sessions in threads (stream)",
    )
    arguments = parser.parse_args()
    for name in ("sessions", "rounds", "timeout"):
        if getattr(arguments, name) <= 0:
            parser.error(f"--{name} must be above 0, not {getattr(arguments, name)}")
    data_path = os.environ.get("RNNKIT_DATA")
    if not data_path or not Path(data_path).exists():
        sys.exit("Set RNNKIT_DATA to the aclImdb archive (../shared/data/aclImdb_labeled.tar.gz)")
    if arguments.client != "apptest" and not Path(CHROMIUM).exists():
        sys.exit("Chromium is not installed: apt-get install -y chromium")

    with tempfile.TemporaryDirectory(prefix="rnnkit-load-") as folder:
        cache_dir = arguments.cache_dir or Path(folder) / "cache"
        environment = {
            **os.environ,
            "RNNKIT_DATA": str(Path(data_path).resolve()),
            "RNNKIT_CACHE_DIR": str(Path(cache_dir).resolve()),
            "RNNKIT_RUNS_DIR": str(Path(folder) / "runs"),  # always empty: the job trains
            "PYTHONPATH": str(ROOT),
        }
        train_complete_run(environment)
        if arguments.client == "apptest":
            sys.exit(measure_apptest(environment, arguments))
        server = start_server(environment, log_path=Path(folder) / "server.log")
        try:
            status = asyncio.run(measure(server.url, arguments))
        finally:
            server.stop()
        if status:
            log = (Path(folder) / "server.log").read_text()
            print(f"\nthe server's log, its end:\n{log[-3000:]}")
    sys.exit(status)


if __name__ == "__main__":
    main()
