"""Background training shared by every session of one app server.

A `JobBoard` (the app keeps one in `st.cache_resource`) holds one job per run id: a visitor who
asks for a configuration that is already training attaches to that job instead of starting
another. Each job trains in a worker thread of its own; at most `max_jobs` train at once and the
others wait in order of arrival, their place in the queue shown. Workers never call Streamlit:
pages read a job's state with `Job.view()`.

The server's limits (`rnnkit.settings.TrainingLimits`) are enforced here, whatever a form lets
through: sizes, epochs, whether training is allowed, the queue length and the training time.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from rnnkit.config import TrainConfig
from rnnkit.data import ImdbData
from rnnkit.runs import RunStore
from rnnkit.settings import TrainingLimits, get_limits
from rnnkit.training import CancelToken, ProgressEvent, TrainingCancelled, train

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
ACTIVE_STATES = ("queued", "running")


class LimitError(ValueError):
    """The server's limits refuse this request; the message says which limit and its value."""


def limit_problems(config: TrainConfig, limits: TrainingLimits) -> list[str]:
    """What in `config` the server's limits do not allow (empty when all is allowed).

    Args:
        config: the requested configuration.
        limits: the server's limits.

    Returns:
        One sentence per broken limit.
    """
    problems = []
    checks = [
        ("training.epochs", config.training.epochs, limits.max_epochs),
        ("data.max_length", config.data.max_length, limits.max_length),
        ("data.num_words", config.data.num_words, limits.max_num_words),
        ("model.embedding_dim", config.model.embedding_dim, limits.max_embedding_dim),
        *(("model.rnn_units", units, limits.max_units) for units in config.model.rnn_units),
        *(("model.dense_units", units, limits.max_units) for units in config.model.dense_units),
    ]
    for name, value, highest in checks:
        if value > highest:
            problems.append(f"{name} = {value} is over this server's limit of {highest}")
    return list(dict.fromkeys(problems))


@dataclass(frozen=True)
class JobView:
    """A consistent copy of a job's state, for a page to render."""

    run_id: str
    config: TrainConfig
    state: JobState
    queue_position: int | None  # 1 = next to start; None unless queued
    progress: ProgressEvent | None  # the latest event
    epochs: tuple[dict, ...]  # one dict of metrics per finished epoch (this process's)
    error: str | None
    submitted: float
    started: float | None
    finished: float | None


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
    cancel_token: CancelToken = field(default_factory=CancelToken)
    thread: threading.Thread | None = None


class JobBoard:
    """The jobs of one server: submit, attach, cancel and watch, within the limits."""

    def __init__(self, store: RunStore | None = None, limits: TrainingLimits | None = None):
        self.store = store or RunStore()
        self.limits = limits or get_limits()
        self._jobs: dict[str, Job] = {}
        self._queue: deque[str] = deque()  # run ids waiting, oldest first
        self._running = 0
        self._condition = threading.Condition()
        # At exit, stop the workers within a batch: a thread killed inside TensorFlow aborts.
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
        """
        run_id = config.run_id(data.fingerprint)
        with self._condition:
            existing = self._jobs.get(run_id)
            if existing is not None and existing.state in ACTIVE_STATES:
                return existing
            if not self.limits.allow_training:
                raise LimitError("Training is switched off on this server (RNNKIT_ALLOW_TRAINING).")
            problems = limit_problems(config, self.limits)
            if problems:
                raise LimitError("; ".join(problems) + ".")
            if len(self._queue) >= self.limits.max_queue:
                raise LimitError(
                    f"The queue is full: {len(self._queue)} waiting, this server's limit "
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
                job.epochs.append({"epoch": event.epoch, **event.logs})
        if job.started and time.time() - job.started > self.limits.max_training_minutes * 60:
            job.error = (
                f"stopped at this server's time limit of {self.limits.max_training_minutes:g} "
                f"minutes (RNNKIT_MAX_TRAINING_MINUTES); resume to go on"
            )
            job.cancel_token.cancel()

    def _work(self, job: Job) -> None:
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
        state, error = "done", None
        try:
            train(
                job.config,
                job.data,
                self.store,
                on_progress=lambda event: self._on_progress(job, event),
                cancel=job.cancel_token,
            )
        except TrainingCancelled:
            state, error = "cancelled", job.error
        except Exception as failure:  # the run store records it too; the page shows it
            state, error = "failed", f"{type(failure).__name__}: {failure}"
        finally:
            with self._condition:
                self._running -= 1
                self._finish(job, state, error)
                self._condition.notify_all()
