"""What the browser tests share: `streamlit run app.py` as a subprocess, Debian's Chromium
driven by Playwright, and waiting for a page's script to finish.

The server runs in a process group of its own, so a test can kill it with everything it started
(`Server.kill`), as a crash or an out-of-memory kill would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

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
# Every page as (URL path, its title: the h1), in the sidebar's order (app.py).
PAGES = [
    ("", "rnnkit: bidirectional RNNs on the IMDB reviews"),
    ("vocabulary", "Vocabulary"),
    ("reviews", "Reviews"),
    ("lengths", "Lengths and padding"),
    ("train", "Train"),
    ("curves", "Learning curves"),
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
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _running_in_group(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)


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


def screenshot(page, name: str) -> None:
    """Save the whole page to `test-artifacts/<name>.png`."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


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


def metric_value(page, label: str) -> str:
    metric = page.locator("[data-testid='stMetric']").filter(has_text=label)
    return metric.locator("[data-testid='stMetricValue']").inner_text().strip()


def exceptions(page) -> int:
    """How many exception boxes the page shows."""
    return page.locator("[data-testid='stException']").count()
