"""Background training shared by every session of one app server.

A `JobBoard` (the app keeps one in `st.cache_resource`) holds one job per run id: a visitor who
asks for a configuration that is already training attaches to that job instead of starting
another. At most `max_jobs` train at once and the others wait in order of arrival, their place in
the queue shown. Workers never call Streamlit: pages read a job's state with `Job.view()`.

Each job trains in a child process (`python -m rnnkit.jobs`), watched by a worker thread of the
server: TensorFlow's CPU-bound work and its garbage then never stall the server's threads, and
Streamlit's `keras.backend.clear_session()` after every script run cannot clear the caches of a
training in progress. The child reloads the reviews (from the on-disk cache), calls
`rnnkit.training.train`, and reports each `ProgressEvent` as one JSON line on its stdout; it
stops within a batch when it reads "cancel" on its stdin, or when its stdin closes (the server
has gone), and the run stays resumable. The run store's per-run lock keeps two processes from
training one configuration.

With a Ray cluster's address (`RNNKIT_RAY_ADDRESS`), the board hands each job to the cluster
instead (`rnnkit.cluster.train_on_cluster`): the same order and reports, trained by a task on
some node. Every job goes to Ray at once and Ray runs as many as its nodes have CPUs for; a job
is "queued" until its task starts on a node, and the queue limit counts the jobs beyond those
the cluster has free CPUs for. Cancel, the time limit and attaching work as for a child.

The server's limits (`rnnkit.settings.TrainingLimits`) are enforced here, whatever a form lets
through: sizes, epochs, whether training is allowed, the queue length and the training time.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from rnnkit.config import TrainConfig
from rnnkit.data import ImdbData
from rnnkit.runs import RunStore
from rnnkit.settings import LIMITED_SETTINGS, TrainingLimits, get_limits, training_environment
from rnnkit.training import CancelToken, ProgressEvent, TrainingCancelled

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
ACTIVE_STATES = ("queued", "running")

CANCELLED_EXIT = 3  # the child's exit code when it stopped on request (1: it failed)
BATCH_EVENT_SECONDS = 0.25  # the child reports at most 4 batch events a second
CHILD_NICENESS = 10  # the child yields the cores to the server's page views when both need them
STDERR_TAIL = 2000  # characters of a crashed child's stderr kept for its error message
# A process on standby (TensorFlow loaded) that no job has taken for this long is ended: it
# holds a few hundred MB that a small server needs.
STANDBY_IDLE_SECONDS = 600.0


class LimitError(ValueError):
    """The server's limits refuse this request; the message says which limit and its value."""


class TrainingProcessError(RuntimeError):
    """The training process failed; the message is its error (`DataError: ...`) or its exit."""


def limit_problems(config: TrainConfig, limits: TrainingLimits) -> list[str]:
    """What in `config` the server's limits do not allow (empty when all is allowed).

    Args:
        config: the requested configuration.
        limits: the server's limits.

    Returns:
        One sentence per setting over its limit.
    """
    problems = []
    settings = config.flat_settings()
    for name in LIMITED_SETTINGS:  # in the order the limits are listed
        highest = limits.highest(name)
        values = settings[name] if isinstance(settings[name], tuple) else (settings[name],)
        for item in values:
            if item > highest:
                problems.append(f"{name} = {item} is over this server's limit of {highest}")
                break
    return problems


def lower_to_limits(config: TrainConfig, limits: TrainingLimits) -> tuple[TrainConfig, dict]:
    """`config` with every setting over the server's limits lowered to the limit (a preset of
    30 epochs on a server that trains 10, say).

    Args:
        config: a configuration, typically a preset.
        limits: the server's limits.

    Returns:
        (the lowered config, {dotted name: its new value} for each setting lowered).
    """
    lowered: dict[str, object] = {}
    settings = config.flat_settings()
    for name in LIMITED_SETTINGS:
        value, highest = settings[name], limits.highest(name)
        if isinstance(value, tuple) and any(item > highest for item in value):
            lowered[name] = [min(item, highest) for item in value]
        elif isinstance(value, int) and value > highest:
            lowered[name] = highest
    return config.with_overrides(lowered), lowered


# --- one training in a child process ----------------------------------------------------------


def training_order(config: TrainConfig, data: ImdbData, store: RunStore) -> dict:
    """What a child process needs to train `config`: the config, its run id, where the
    reviews come from and the run store. The child loads the reviews again from their source
    (the on-disk cache makes that fast) and refuses to train if they no longer name the same
    run.

    Args:
        config: what to train.
        data: the reviews, loaded with `num_words == config.data.num_words`.
        store: the run store the child writes to.

    Returns:
        The order, JSON-compatible.
    """
    return {
        "config": config.to_dict(),
        "run_id": config.run_id(data.fingerprint),
        "data": _data_order(data),
        "runs_dir": str(Path(store.root).resolve()),
        "started_at": time.time(),  # the child's progress and timings count from here
    }


def _data_order(data: ImdbData) -> dict:
    """Where `data` comes from and how it was loaded: what a child passes to `load_imdb`."""
    source = data.source
    return {
        "source": "keras" if source.kind == "keras" else "aclImdb",
        "path": None if source.path is None else str(Path(source.path).resolve()),
        "num_words": data.num_words,
        "index_from": data.index_from,
        "seed": data.seed,
    }


def child_command(config: TrainConfig, data: ImdbData, store: RunStore) -> list[str]:
    """The command line of a new child process that trains `config` on the reviews of `data`.

    Returns:
        The arguments for `subprocess.Popen` (`sys.executable -m rnnkit.jobs JSON`).
    """
    return [sys.executable, "-m", "rnnkit.jobs", json.dumps(training_order(config, data, store))]


STANDBY_COMMAND = [sys.executable, "-m", "rnnkit.jobs", "--standby"]


@dataclass
class TrainingProcess:
    """A child training process: started with its order, or on standby waiting for one."""

    process: subprocess.Popen
    stderr: IO[bytes]  # a temporary file: the tail of a crash's message comes from it
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def start(cls, command: list[str]) -> TrainingProcess:
        """Start `command` (`child_command(...)` or `STANDBY_COMMAND`) with pipes to talk."""
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 (it lives as long as the process)
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=training_environment(),
                text=True,
            )
        except BaseException:
            stderr.close()
            raise
        return cls(process, stderr)

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float) -> bool:
        """Wait until a standby process has loaded and warmed up (it says so on stdout);
        False if it did not within `timeout` seconds. Call it before the job's reports are
        read, if at all: a job does not need it (its order waits in the pipe)."""
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        return bool(ready) and "ready" in json.loads(self.process.stdout.readline() or "{}")

    def give_order(self, order: dict) -> bool:
        """Send a standby process its order; False if it is gone."""
        try:
            self.process.stdin.write(json.dumps(order) + "\n")
            self.process.stdin.flush()
        except (OSError, ValueError):
            return False
        return True

    def close(self) -> None:
        """End a standby process: its stdin closes, so it exits without training."""
        with contextlib.suppress(OSError, ValueError):
            self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


def _reap(handle: TrainingProcess) -> None:
    """Wait for a child that has reported its result to exit, and let its files go."""
    with contextlib.suppress(OSError):
        handle.process.stdin.close()
    handle.process.wait()
    handle.stderr.close()


def _read_reports(
    stream: IO[str],
    on_progress: Callable[[ProgressEvent], None] | None,
    results: list[dict],
) -> None:
    """Turn the child's stdout lines into `ProgressEvent`s; keep its final report in `results`."""
    for line in stream:
        try:
            report = json.loads(line)
        except ValueError:
            continue  # not a report: the child's stdout carries only reports, but be safe
        if "event" in report and on_progress is not None:
            on_progress(ProgressEvent(**report["event"]))
        elif "result" in report:
            results.append(report)


def train_in_child(
    config: TrainConfig,
    data: ImdbData,
    store: RunStore,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    cancel: CancelToken | None = None,
    on_start: Callable[[int], None] | None = None,
    standby: TrainingProcess | None = None,
) -> None:
    """Train `config` as `rnnkit.training.train` does, in a child process; block until it ends.

    Args:
        config: what to train.
        data: the reviews, loaded with `num_words == config.data.num_words`.
        store: the run store (the child opens the same folder).
        on_progress: called, in this thread's helper, with each `ProgressEvent` the child
            reports (start, batches at most 4 a second, epochs, end).
        cancel: a `CancelToken`; cancelling tells the child to stop within one batch.
        on_start: called with the child's process id once it has started.
        standby: a process on standby (`STANDBY_COMMAND`, TensorFlow loaded) to give the job
            to; None, or one that has ended: a new process is started.

    Raises:
        TrainingCancelled: the child stopped on request; the run stays resumable.
        TrainingProcessError: the child failed; the message is its error.
    """
    handle = None
    if standby is not None and standby.alive():
        if standby.give_order(training_order(config, data, store)):
            handle = standby
        else:
            standby.close()
    if handle is None:
        handle = TrainingProcess.start(child_command(config, data, store))
    child = handle.process
    if on_start is not None:
        on_start(child.pid)
    results: list[dict] = []
    reader = threading.Thread(
        target=_read_reports, args=(child.stdout, on_progress, results), daemon=True
    )
    reader.start()
    asked_to_stop = False
    while True:
        try:
            child.wait(0.1)
            break
        except subprocess.TimeoutExpired:
            pass
        if results and results[-1].get("result") == "done":
            # Trained and stored, its lock released: the results need not wait for the
            # process to tear TensorFlow down (seconds); it is reaped in the background.
            threading.Thread(target=_reap, args=(handle,), daemon=True).start()
            return
        if cancel is not None and cancel.cancelled and not asked_to_stop:
            asked_to_stop = True
            with contextlib.suppress(OSError):  # it may be ending already
                child.stdin.write("cancel\n")
                child.stdin.close()
    reader.join()
    with contextlib.suppress(OSError):
        child.stdin.close()
    handle.stderr.seek(0)
    error_output = handle.stderr.read().decode(errors="replace")[-STDERR_TAIL:].strip()
    handle.stderr.close()
    result = results[-1] if results else {}
    if result.get("result") == "done" and child.returncode == 0:
        return
    if result.get("result") == "cancelled" or child.returncode == CANCELLED_EXIT:
        raise TrainingCancelled(f"run {config.run_id(data.fingerprint)} was cancelled")
    if result.get("error"):
        raise TrainingProcessError(result["error"])
    raise TrainingProcessError(
        f"the training process ended with exit code {child.returncode}"
        + (f": {error_output}" if error_output else " and no message")
    )


def _as_child() -> IO[str]:
    """Set this process up as a training child; return the stream its reports go to."""
    # The reports get their own copy of stdout; anything else printed (by TensorFlow's C++ too)
    # goes to stderr and cannot garble them.
    reports = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Ctrl+C in the server's terminal reaches this process group too: the server stops the
    # child (by closing its stdin), so that a batch is never interrupted half way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(CHILD_NICENESS)
    return reports


def _standby_main() -> int:
    """`python -m rnnkit.jobs --standby`: load TensorFlow and rnnkit's training code and warm
    them with a tiny model, then wait for an order (a line of JSON) on stdin and train it; exit
    quietly when stdin closes first.

    Returns:
        The exit code, as `_child_main`'s (0 when no order came).
    """
    reports = _as_child()
    from rnnkit.training import warm_up

    warm_up()
    _PRELOADED["reviews"] = preload_reviews()
    reports.write(json.dumps({"ready": True}) + "\n")
    order = sys.stdin.readline()
    if not order.strip():
        return 0
    return _child_main(order, reports, warm=True)


# The reviews a process on standby loaded while it waited, until its order takes them (the
# order's own, or let go of before the order loads others).
_PRELOADED: dict[str, ImdbData | None] = {}


def preload_reviews() -> ImdbData | None:
    """The reviews most jobs ask for (the source `RNNKIT_DATA` names, the notebook's
    vocabulary), loaded by a process on standby while it waits: an order for them then starts
    without reading them (0.6-1.5 s of a start on the 2-core machine, most of it faulting in
    fresh memory). None where no source is configured (nothing is downloaded on speculation)
    or it cannot be loaded: the order's own load says why."""
    import warnings

    from rnnkit.config import DataConfig
    from rnnkit.data import load_imdb
    from rnnkit.settings import get_settings

    try:
        path = get_settings().data_path
        if path is None:
            return None
        with warnings.catch_warnings():  # the order's load warns, if it loads them itself
            warnings.simplefilter("ignore")
            return load_imdb(num_words=DataConfig().num_words, path=path)
    except Exception:  # any failure: the order loads its reviews itself, and says why
        return None


def _take_preloaded(order: dict) -> ImdbData | None:
    """The preloaded reviews where they are what `order` asks for, loaded from the source as
    it still is; else None, and they are let go of."""
    preloaded = _PRELOADED.pop("reviews", None)
    if preloaded is None or _data_order(preloaded) != order["data"]:
        return None
    from rnnkit.sources import source_fingerprint

    path = preloaded.source.path
    try:
        unchanged = path is not None and source_fingerprint(Path(path)) == (
            preloaded.source.fingerprint
        )
    except OSError:
        return None
    return preloaded if unchanged else None


def train_order(
    order: dict,
    report: Callable[[dict], None],
    cancel: CancelToken,
    warm: bool = False,
) -> dict:
    """Train what `order` (`training_order`'s result) asks for, in this process, reporting as a
    job does: a training child (`python -m rnnkit.jobs`) and a task on a Ray cluster
    (`rnnkit.cluster`) both call it.

    Args:
        order: the order.
        report: called with `{"event": {...}}` for each `ProgressEvent` (batches at most 4 a
            second), from the training thread.
        cancel: stops training within a batch when cancelled; the run stays resumable.
        warm: the process was loaded before the order came (timings say so); the reviews it
            loaded meanwhile (`preload_reviews`) serve the order where they are the order's.

    Returns:
        The result: `{"result": "done"}`, `{"result": "cancelled"}` or
        `{"result": "failed", "error": "DataError: ..."}` (the traceback went to stderr).
    """
    last_batch = 0.0

    def on_progress(event: ProgressEvent) -> None:
        nonlocal last_batch
        if event.kind == "batch" and event.batch < event.batches:
            now = time.monotonic()
            if now - last_batch < BATCH_EVENT_SECONDS:
                return
            last_batch = now
        report({"event": dataclasses.asdict(event)})

    try:
        from rnnkit.data import load_imdb
        from rnnkit.training import train

        config = TrainConfig.from_dict(order["config"])
        source = order["data"]
        data = _take_preloaded(order) or load_imdb(
            num_words=source["num_words"],
            index_from=source["index_from"],
            source=source["source"],
            path=source["path"],
            seed=source["seed"],
        )
        run_id = config.run_id(data.fingerprint)
        if run_id != order["run_id"]:
            raise ValueError(
                f"the reviews at {source['path']} changed since the server loaded them: they "
                f"now give run {run_id}, not {order['run_id']}; reload the page"
            )
        store = RunStore(order["runs_dir"])
        started_at = order.get("started_at")
        train(config, data, store, on_progress, cancel, started_at=started_at, warm_start=warm)
    except TrainingCancelled:
        return {"result": "cancelled"}
    except Exception as failure:
        traceback.print_exc()
        return {"result": "failed", "error": f"{type(failure).__name__}: {failure}"}
    return {"result": "done"}


def _child_main(order_json: str, reports: IO[str] | None = None, warm: bool = False) -> int:
    """`python -m rnnkit.jobs JSON`: train one configuration, reporting on stdout.

    Args:
        order_json: `training_order`'s result, as JSON.
        reports: where the reports go, when the process is set up already (`_as_child`).
        warm: the process was on standby, TensorFlow loaded before the order came.

    Returns:
        The exit code: 0 trained, `CANCELLED_EXIT` stopped on request, 1 failed.
    """
    reports = reports or _as_child()
    cancel = CancelToken()

    def report(message: dict) -> None:
        try:
            reports.write(json.dumps(message) + "\n")
        except (OSError, ValueError):  # the server is gone: stop, resumable
            cancel.cancel()

    def watch_stdin() -> None:
        for line in sys.stdin:  # ends on "cancel" or when the server closes the pipe
            if line.strip() == "cancel":
                break
        cancel.cancel()

    threading.Thread(target=watch_stdin, daemon=True).start()
    result = train_order(json.loads(order_json), report, cancel, warm)
    report(result)
    return {"done": 0, "cancelled": CANCELLED_EXIT}.get(result["result"], 1)


# --- the board ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobView:
    """A consistent copy of a job's state, for a page to render."""

    run_id: str
    config: TrainConfig
    state: JobState
    queue_position: int | None  # 1 = next to start; None unless queued
    progress: ProgressEvent | None  # the latest event
    epochs: tuple[dict, ...]  # one dict of metrics per finished epoch (this job's)
    error: str | None
    submitted: float
    started: float | None
    finished: float | None
    pid: int | None = None  # the training process, once started
    # The cluster node that trains it, "IP (the start of its node id)"; None on this machine.
    node: str | None = None


@dataclass
class Job:
    """One configuration being trained (or waiting to be) by this server."""

    run_id: str
    config: TrainConfig
    data: ImdbData
    state: JobState = "queued"
    progress: ProgressEvent | None = None
    epochs: list[dict] = field(default_factory=list)
    error: str | None = None
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    pid: int | None = None
    node: str | None = None
    cancel_token: CancelToken = field(default_factory=CancelToken)
    thread: threading.Thread | None = None


class JobBoard:
    """The jobs of one server: submit, attach, cancel and watch, within the limits."""

    def __init__(
        self,
        store: RunStore | None = None,
        limits: TrainingLimits | None = None,
        standby: bool = False,
        ray_address: str | None = None,
        job_cpus: int = 1,
    ):
        """A board over `store` (default `RunStore()`) within `limits` (default
        `get_limits()`); with `standby`, `prepare()` keeps a process ready for the next job.
        With `ray_address`, jobs train on that Ray cluster, `job_cpus` CPUs each (no process
        on standby then: the nodes train)."""
        self.store = store or RunStore()
        self.limits = limits or get_limits()
        self.ray_address = ray_address
        self.job_cpus = job_cpus
        self.standby = standby and ray_address is None
        self._jobs: dict[str, Job] = {}
        self._queue: deque[str] = deque()  # run ids waiting, oldest first
        self._running = 0
        self._condition = threading.Condition()
        self._standby: TrainingProcess | None = None  # the next job's process, TensorFlow loaded
        self._standby_wanted = 0.0  # time.monotonic() of the last prepare()
        # At exit, stop the children within a batch, so that their runs stay resumable.
        atexit.register(self.shutdown)

    def submit(self, config: TrainConfig, data: ImdbData) -> Job:
        """Train `config` in the background, or attach to the job already training it.

        Args:
            config: what to train.
            data: the reviews, loaded with `num_words == config.data.num_words`.

        Returns:
            The job (new, or the one already queued or running for this run id).

        Raises:
            LimitError: training is off, a setting is over a limit, or the queue is full.
            rnnkit.cluster.ClusterError: the board trains on a cluster that cannot be reached.
        """
        run_id = config.run_id(data.fingerprint)
        cluster_slots = None  # jobs the cluster could start now (asked outside the lock)
        if self.ray_address is not None and run_id not in {view.run_id for view in self.active()}:
            from rnnkit.cluster import free_job_slots

            cluster_slots = free_job_slots(self.ray_address, self.job_cpus)
        with self._condition:
            existing = self._jobs.get(run_id)
            if existing is not None and existing.state in ACTIVE_STATES:
                return existing
            if not self.limits.allow_training:
                raise LimitError("Training is switched off on this server (RNNKIT_ALLOW_TRAINING).")
            problems = limit_problems(config, self.limits)
            if problems:
                raise LimitError("; ".join(problems) + ".")
            # The queue also holds jobs a free slot is about to take: those do not wait.
            if self.ray_address is not None:
                free_slots = cluster_slots or 0
            else:
                free_slots = max(0, self.limits.max_jobs - self._running)
            waiting = max(0, len(self._queue) - free_slots)
            if len(self._queue) >= free_slots and waiting >= self.limits.max_queue:
                raise LimitError(
                    f"The queue is full: {waiting} waiting, this server's limit "
                    f"(RNNKIT_MAX_QUEUE = {self.limits.max_queue}); try again later."
                )
            job = Job(run_id=run_id, config=config, data=data)
            self._jobs[run_id] = job
            self._queue.append(run_id)
            job.thread = threading.Thread(
                target=self._work, args=(job,), name=f"rnnkit-job-{run_id}", daemon=True
            )
            job.thread.start()
            return job

    def prepare(self) -> None:
        """Start a training process ahead of the next job, so that a job starts without
        waiting for TensorFlow to load (seconds): call it where a visitor may soon ask for one
        (the Train page). Nothing happens without `standby`, when training is off, no job could
        start now, or a
        process is on standby already; one left unused for `STANDBY_IDLE_SECONDS` ends."""
        with self._condition:
            self._standby_wanted = time.monotonic()
            if (
                not self.standby
                or not self.limits.allow_training
                or self._running >= self.limits.max_jobs
                or (self._standby is not None and self._standby.alive())
            ):
                return
            if self._standby is not None:  # it ended (out of memory, killed): start another
                self._standby.close()
            self._standby = TrainingProcess.start(STANDBY_COMMAND)
            self._retire_later(self._standby, STANDBY_IDLE_SECONDS)

    def _retire_later(self, standby: TrainingProcess, seconds: float) -> None:
        timer = threading.Timer(seconds, self._retire_if_idle, args=(standby,))
        timer.daemon = True
        timer.start()

    def _retire_if_idle(self, standby: TrainingProcess) -> None:
        with self._condition:
            if self._standby is not standby:
                return  # a job took it, or it was replaced
            idle = time.monotonic() - self._standby_wanted
            if idle < STANDBY_IDLE_SECONDS:  # wanted again meanwhile: look again later
                self._retire_later(standby, STANDBY_IDLE_SECONDS - idle)
                return
            self._standby = None
        standby.close()

    def standby_process(self) -> TrainingProcess | None:
        """The process on standby, or None (for a benchmark to wait until it is ready)."""
        with self._condition:
            return self._standby

    def standby_pid(self) -> int | None:
        """The process id of the process on standby, or None when there is none."""
        with self._condition:
            standby = self._standby
        return standby.process.pid if standby is not None and standby.alive() else None

    def _take_standby(self) -> TrainingProcess | None:
        with self._condition:
            standby, self._standby = self._standby, None
        return standby

    def job(self, run_id: str) -> Job | None:
        """The job of a run id, if this server has one (active or finished)."""
        with self._condition:
            return self._jobs.get(run_id)

    def view(self, run_id: str) -> JobView | None:
        """A copy of a job's state, or None if this server has no job for the run id."""
        with self._condition:
            job = self._jobs.get(run_id)
            if job is None:
                return None
            position = self._queue.index(run_id) + 1 if run_id in self._queue else None
            return JobView(
                run_id=job.run_id,
                config=job.config,
                state=job.state,
                queue_position=position,
                progress=job.progress,
                epochs=tuple(job.epochs),
                error=job.error,
                submitted=job.submitted,
                started=job.started,
                finished=job.finished,
                pid=job.pid,
                node=job.node,
            )

    def active(self) -> list[JobView]:
        """Views of the queued and running jobs, oldest first."""
        with self._condition:
            run_ids = [job.run_id for job in self._jobs.values() if job.state in ACTIVE_STATES]
        views = (self.view(run_id) for run_id in run_ids)
        return [view for view in views if view is not None]

    def cancel(self, run_id: str) -> bool:
        """Stop a job: a queued one leaves the queue, a running one stops within a batch.

        Returns:
            True if there was an active job to stop.
        """
        with self._condition:
            job = self._jobs.get(run_id)
            if job is None or job.state not in ACTIVE_STATES:
                return False
            job.cancel_token.cancel()
            if job.state == "queued":
                self._queue.remove(run_id)
                self._finish(job, "cancelled", None)
            self._condition.notify_all()
            return True

    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel every active job and wait (up to `timeout` seconds) for its worker to end.

        The runs stay resumable from their last finished epoch.
        """
        with self._condition:
            active = [job for job in self._jobs.values() if job.state in ACTIVE_STATES]
        for job in active:
            self.cancel(job.run_id)
        standby = self._take_standby()
        if standby is not None:
            standby.close()
        deadline = time.monotonic() + timeout
        for job in active:
            if job.thread is not None:
                job.thread.join(max(0.0, deadline - time.monotonic()))

    def wait(self, run_id: str, timeout: float | None = None) -> JobView | None:
        """Block until the job of `run_id` is no longer active (for tests and scripts)."""
        job = self.job(run_id)
        if job is not None and job.thread is not None:
            job.thread.join(timeout)
        return self.view(run_id)

    def _finish(self, job: Job, state: JobState, error: str | None) -> None:
        job.state, job.error, job.finished = state, error, time.time()

    def _on_progress(self, job: Job, event: ProgressEvent) -> None:
        with self._condition:
            job.progress = event
            if event.kind == "epoch":
                # A run trained again from its checkpoint (its node lost) may report an epoch
                # again: the last report of each epoch counts.
                job.epochs = [item for item in job.epochs if item["epoch"] < event.epoch]
                job.epochs.append({"epoch": event.epoch, **event.logs})

    def _on_start(self, job: Job, pid: int) -> None:
        with self._condition:
            job.pid = pid

    def _stop_at_time_limit(self, job: Job) -> None:
        with self._condition:
            if job.state != "running":
                return
            job.error = (
                f"stopped at this server's time limit of {self.limits.max_training_minutes:g} "
                f"minutes (RNNKIT_MAX_TRAINING_MINUTES); resume to go on"
            )
            job.cancel_token.cancel()

    def _start_time_limit(self, job: Job) -> threading.Timer:
        """Stop `job` at the server's time limit unless the returned timer is cancelled first."""
        timer = threading.Timer(
            self.limits.max_training_minutes * 60, self._stop_at_time_limit, args=(job,)
        )
        timer.daemon = True  # a server that exits does not wait for a job's limit
        timer.start()
        return timer

    def _work(self, job: Job) -> None:
        if self.ray_address is not None:
            self._work_on_cluster(job)
            return
        with self._condition:
            while job.state == "queued" and not (
                self._running < self.limits.max_jobs and self._queue[0] == job.run_id
            ):
                self._condition.wait()
            if job.state != "queued":  # cancelled while waiting
                return
            self._queue.popleft()
            self._running += 1
            job.state, job.started = "running", time.time()
        timer = self._start_time_limit(job)
        state, error = "done", None
        try:
            train_in_child(
                job.config,
                job.data,
                self.store,
                on_progress=lambda event: self._on_progress(job, event),
                cancel=job.cancel_token,
                on_start=lambda pid: self._on_start(job, pid),
                standby=self._take_standby(),
            )
        except TrainingCancelled:
            state, error = "cancelled", job.error
        except TrainingProcessError as failure:  # the run store records it too
            state, error = "failed", str(failure)
        except Exception as failure:  # e.g. no process could start; the page shows it
            state, error = "failed", f"{type(failure).__name__}: {failure}"
        finally:
            timer.cancel()
            with self._condition:
                self._running -= 1
                self._finish(job, state, error)
                self._condition.notify_all()

    def _work_on_cluster(self, job: Job) -> None:
        """Train `job` on the cluster: it stays queued until its task starts on a node."""
        from rnnkit.cluster import ClusterError, train_on_cluster

        timers: list[threading.Timer] = []

        def on_start(where: dict) -> None:
            with self._condition:
                job.pid = where["pid"]
                job.node = f"{where['node']} ({where['node_id'][:8]})"  # nodes may share an IP
                if job.state != "queued":  # run again after its node was lost
                    return
                self._queue.remove(job.run_id)
                self._running += 1
                job.state, job.started = "running", time.time()
            timers.append(self._start_time_limit(job))

        state, error = "done", None
        try:
            with self._condition:
                if job.state != "queued":  # cancelled before it was handed to the cluster
                    return
            train_on_cluster(
                training_order(job.config, job.data, self.store),
                self.ray_address,
                cpus=self.job_cpus,
                on_progress=lambda event: self._on_progress(job, event),
                cancel=job.cancel_token,
                on_start=on_start,
            )
        except TrainingCancelled:
            state, error = "cancelled", job.error
        except (TrainingProcessError, ClusterError) as failure:
            state, error = "failed", str(failure)
        except Exception as failure:
            state, error = "failed", f"{type(failure).__name__}: {failure}"
        finally:
            for timer in timers:
                timer.cancel()
            with self._condition:
                if job.state == "running":
                    self._running -= 1
                elif job.run_id in self._queue:
                    self._queue.remove(job.run_id)
                if job.state in ACTIVE_STATES:
                    self._finish(job, state, error)
                self._condition.notify_all()


if __name__ == "__main__":
    sys.exit(_standby_main() if sys.argv[1] == "--standby" else _child_main(sys.argv[1]))
