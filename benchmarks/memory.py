"""How much memory the app's server holds once it has loaded the reviews and a trained model.

A hosted instance (Streamlit Community Cloud) has about 1 to 2.7 GB; the target is 1.5 GB for
the server and its child processes. For each mode (default, and hosted: `RNNKIT_HOSTED=1`),
`streamlit run app.py` is started headless on a free port with the real data, an empty parse
cache (so the server parses the archive itself, as after a reboot of a hosted app; `--warm-cache`:
it reads the cache the training filled, as after a restart that kept the disk) and a run
store holding one tiny complete run (trained first from the command line, seconds). Chromium
(Playwright) then opens, as one visitor, Home (the reviews load), the explorer pages, Train,
and Predictions with the run selected and a typed review (the model loads and reads it), and
last types 50 different configurations into the Train form (`--configurations`), the largest
ones the config allows: the server's memory must not grow with a visitor's numbers.

After each step the server's resident memory is read from /proc (VmRSS of the server and of
its child processes, and the server's own peak VmHWM); a thread samples the whole tree's RSS
every 0.1 s for its peak. The reference, measured in the same invocation, is a bare
`python -c "import streamlit, tensorflow"`: a noisy machine moves both figures alike.

    RNNKIT_DATA=../shared/data/aclImdb_labeled.tar.gz python benchmarks/memory.py \
        [--modes default hosted] [--warm-cache]

Needs Chromium at /usr/bin/chromium (apt-get install chromium).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the browser tests' helpers start the app and name Chromium

from load import train_complete_run  # noqa: E402

from tests.helpers import CHROMIUM, CHROMIUM_FLAGS, start_server  # noqa: E402
from tests.helpers import settle as wait_until_quiet  # noqa: E402

TARGET_MIB = 1.5 * 1024  # 1.5 GiB: room to spare on a 2.7 GB hosted instance
REVIEW = "A brilliant film, superb acting and great fun, though the ending drags a little."
# (step name, URL path): what one visitor opens, in order.
STEPS = [
    ("Home: the reviews loaded", ""),
    ("Vocabulary", "vocabulary"),
    ("Reviews", "reviews"),
    ("Lengths and padding", "lengths"),
    ("Train", "train"),
    ("Learning curves", "curves"),
    ("Predictions: the model loaded", "predictions"),
]
APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def status_kib(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM and RssAnon of a process, in KiB (empty if it has ended)."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                name, _, rest = line.partition(":")
                if name in ("VmRSS", "VmHWM", "RssAnon"):
                    values[name] = int(rest.split()[0])
    except OSError:
        pass
    return values


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    # The parent id is the 2nd field after the ")" that ends the command name.
                    parents[int(entry)] = int(stat.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, its_parent in parents.items() if its_parent == parent]
        found += children
        frontier += children
    return found


def tree_mib(pid: int) -> tuple[float, float, float, float]:
    """(server RSS, its anonymous part, its children's RSS, server peak HWM) in MiB.

    RSS counts the pages of TensorFlow's libraries too (file-backed: the kernel can drop and
    reread them); the anonymous part is what the server's own objects hold.
    """
    server = status_kib(pid)
    children = sum(status_kib(child).get("VmRSS", 0) for child in descendants(pid))
    rss, anonymous, peak = (server.get(name, 0) for name in ("VmRSS", "RssAnon", "VmHWM"))
    return rss / 1024, anonymous / 1024, children / 1024, peak / 1024


class PeakSampler:
    """Samples the server tree's total RSS every 0.1 s in a thread; `peak` is the highest."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0.0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stopped.wait(0.1):
            server, _, children, _ = tree_mib(self.pid)
            self.peak = max(self.peak, server + children)

    def stop(self) -> float:
        self.stopped.set()
        self.thread.join()
        return self.peak


def reference_mib(imports: str) -> tuple[float, float]:
    """(RSS, HWM) in MiB of a bare Python process that imports `imports`."""
    code = f"import {imports}\nprint(open('/proc/self/status').read())"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    values = {}
    for line in done.stdout.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def settle(tab, timeout: float = 180.0) -> None:
    """Wait until the script run has finished: the app idle, its running indicator absent for
    1.5 s (it appears some moments after a run starts)."""
    tab.wait_for_selector(APP_IDLE, timeout=timeout * 1000)
    try:
        wait_until_quiet(tab, timeout)
    except AssertionError:
        sys.exit("the app kept running")


def problem(tab) -> str | None:
    """The page's first exception or error box, or None; a refusal by the server's limits
    (the hosted Train page refuses the notebook's 30 epochs) is not a problem."""
    for test_id in ("stException", "stAlertContentError"):
        for box in tab.locator(f"[data-testid='{test_id}']").all():
            text = box.inner_text().strip()
            if not text.startswith("Refused:"):
                return text.splitlines()[0]
    return None


def visit_configurations(tab, running, count: int, report) -> None:
    """Type `count` different configurations into the Train form, each within the config's
    LIMITS and the largest first (200,000 words, 1,024-dimensional vectors, about 205
    million parameters: more than this server trains, so it refuses them), reading the server's
    memory after the first and the last: the form counts a model without building it, so the
    server's memory must stay flat."""
    tab.goto(f"{running.url}/train")
    settle(tab)
    server_after = []
    for number in range(count):
        started = time.perf_counter()
        for label, value in (
            ("num words", 200_000 - 1000 * number),
            ("embedding dim", 1024 - number),
        ):
            field = tab.get_by_label(label, exact=True)
            field.fill(str(value))
            field.press("Enter")
            settle(tab)
        if number in (0, count - 1):
            report(
                f"Train form: configuration {number + 1} of {count}", time.perf_counter() - started
            )
        server_after.append(tree_mib(running.process.pid)[0])
    growth = server_after[-1] - server_after[0]
    print(
        f"the server over {count} configurations: {server_after[0]:.0f} -> {server_after[-1]:.0f} "
        f"MiB ({growth:+.0f} MiB, {growth / count:+.1f} MiB per configuration)"
    )


def measure_mode(
    mode: str,
    base: dict[str, str],
    folder: Path,
    browser,
    warm_cache: bool,
    configurations: int = 0,
) -> float:
    """Drive one server through STEPS, printing its memory after each; its sampled peak."""
    cache = folder / ("cache-training" if warm_cache else f"cache-{mode}")
    environment = {**base, "RNNKIT_CACHE_DIR": str(cache)}
    if mode == "hosted":
        environment["RNNKIT_HOSTED"] = "1"
    running = start_server(environment, log_path=folder / f"server-{mode}.log")
    sampler = PeakSampler(running.process.pid)
    print(f"\n{mode} (RNNKIT_HOSTED={environment.get('RNNKIT_HOSTED', 'unset')}), MiB")
    print(f"{'step':<45} {'server':>6} {'(anon)':>6} {'child':>5} {'total':>5} {'peak':>5}  s")

    def report(step: str, seconds: float) -> None:
        server, anonymous, children, peak = tree_mib(running.process.pid)
        print(
            f"{step:<45} {server:>6.0f} {anonymous:>6.0f} {children:>5.0f} "
            f"{server + children:>5.0f} {peak:>5.0f}  {seconds:.1f}"
        )

    try:
        report("started (healthy, no session yet)", 0.0)
        context = browser.new_context(viewport={"width": 1400, "height": 1200})
        tab = context.new_page()
        for step, path in STEPS:
            started = time.perf_counter()
            tab.goto(f"{running.url}/{path}")
            tab.wait_for_selector("[data-testid='stSidebar']", timeout=180_000)
            settle(tab)
            if path == "predictions":
                review = tab.get_by_label("Type or paste a review")
                review.fill(REVIEW)
                review.press("Control+Enter")
                settle(tab)
                step += ", a review read"
            found = problem(tab)
            if found:
                sys.exit(f"{step}: {found} (server log: {folder / f'server-{mode}.log'})")
            report(step, time.perf_counter() - started)
        time.sleep(3)
        report("3 s later, idle", 0.0)
        if configurations:
            visit_configurations(tab, running, configurations, report)
        context.close()
    finally:
        peak = sampler.stop()
        running.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", choices=["default", "hosted"], default=None)
    parser.add_argument(
        "--configurations",
        type=int,
        default=50,
        help="different configurations typed into the Train form after the tour (0: none)",
    )
    parser.add_argument(
        "--warm-cache",
        action="store_true",
        help="the server reads the reviews from a filled parse cache instead of parsing them",
    )
    arguments = parser.parse_args()
    modes = arguments.modes or ["default", "hosted"]
    data_path = os.environ.get("RNNKIT_DATA")
    if not data_path or not Path(data_path).exists():
        sys.exit("Set RNNKIT_DATA to the aclImdb archive (../shared/data/aclImdb_labeled.tar.gz)")
    if not Path(CHROMIUM).exists():
        sys.exit("Chromium is not installed: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    streamlit_only, _ = reference_mib("streamlit")
    reference, _ = reference_mib("streamlit, tensorflow")
    print(f"reference: python -c 'import streamlit' {streamlit_only:.0f} MiB RSS")
    print(f"reference: python -c 'import streamlit, tensorflow' {reference:.0f} MiB RSS")

    with tempfile.TemporaryDirectory(prefix="rnnkit-memory-") as temporary:
        folder = Path(temporary)
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("RNNKIT_") or key == "RNNKIT_DATA"
        }
        base |= {
            "RNNKIT_DATA": str(Path(data_path).resolve()),
            "RNNKIT_RUNS_DIR": str(folder / "runs"),
            "PYTHONPATH": str(ROOT),
        }
        train_complete_run(base, cache_dir=folder / "cache-training")
        peaks = {}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            for mode in modes:
                peaks[mode] = measure_mode(
                    mode, base, folder, browser, arguments.warm_cache, arguments.configurations
                )
            browser.close()

    print(f"\ntarget: {TARGET_MIB:.0f} MiB (1.5 GiB) for the server and its children")
    for mode, peak in peaks.items():
        verdict = "within" if peak <= TARGET_MIB else "OVER"
        print(
            f"{mode}: peak {peak:.0f} MiB (sampled every 0.1 s) = {peak / TARGET_MIB:.2f} x "
            f"target, {peak / reference:.2f} x reference; {verdict} the target"
        )


if __name__ == "__main__":
    main()
