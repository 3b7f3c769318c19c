"""Training jobs on a Ray cluster, for an app with more visitors than one machine can train for.

With `RNNKIT_RAY_ADDRESS` set, the app's `JobBoard` and `python -m rnnkit train --cluster` hand
each job to Ray (`train_on_cluster`) instead of a child process of their own. The job is a Ray
task that runs `rnnkit.jobs.train_order` on some node: the order that a training child gets,
the same training, the same reports. Ray reserves `RNNKIT_RAY_JOB_CPUS` CPUs for it, so a
cluster runs as many jobs at once as its nodes have room for and keeps the others in its queue.

Every node opens the same run store (`RNNKIT_RUNS_DIR`, a path every node mounts, with the
reviews' archive), so the store's per-run file lock keeps two nodes from training one
configuration, a run written by a node is there for the app at once, and a task that Ray runs
again after its node was lost (`MAX_RETRIES`) resumes the run from its last finished epoch.

Reports travel through one small actor per driver process (`ProgressHub`, kept on the
driver's node): the task sends it each report, the driver's thread takes them every
`POLL_SECONDS` and gives them to its callbacks as `ProgressEvent`s. A cancel is a flag in the
same actor, which the task reads every `POLL_SECONDS` and turns into a `CancelToken` (training
stops after the batch in progress, resumable); a job still waiting in Ray's queue is taken out
of it with `ray.cancel`.

`ray` is optional: this module imports it only when a function needs it, and says to install
`requirements-cluster.txt` when it is missing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from rnnkit.settings import RAY_ADDRESS_VARIABLE, ray_missing_message, training_variables
from rnnkit.training import CancelToken, ProgressEvent, TrainingCancelled

NAMESPACE = "rnnkit"
POLL_SECONDS = 0.25  # how often the driver takes reports, and a task looks for a cancel
MAX_RETRIES = 3  # a task whose node is lost is run again elsewhere, this many times at most
# A task still running this long after its cancel (a node that does not answer) is killed.
CANCEL_GRACE_SECONDS = 60.0
# Environment variables a task takes from the driver, so that a node trains as the server
# would: the run store, the caches, the fused-loop switch.
FORWARDED_PREFIX = "RNNKIT_"


def task_environment() -> dict[str, str]:
    """The environment variables a training task's worker process starts with: the driver's
    rnnkit variables, and TensorFlow's for training (`settings.training_variables`: the
    pooling allocator), each at the driver's value where it sets one."""
    forwarded = {
        name: value for name, value in os.environ.items() if name.startswith(FORWARDED_PREFIX)
    }
    return {**training_variables(), **forwarded}


class ClusterError(RuntimeError):
    """The cluster cannot be used: ray is missing, or the cluster cannot be reached."""


def import_ray() -> Any:
    """The `ray` module, imported now.

    Raises:
        ClusterError: ray is not installed; the message says how to install it.
    """
    try:
        import ray
    except ImportError as error:
        address = os.environ.get(RAY_ADDRESS_VARIABLE, "").strip() or "a cluster"
        raise ClusterError(ray_missing_message(address)) from error
    return ray


# Ray's client proxy sometimes loses the server it forks for a new client (Ray issue 63202:
# gRPC's threads and fork(), a few percent of connections); then ray.init fails with this
# message, and trying again starts another server.
SERVER_START_FAILED = "Starting Ray client server failed"
CONNECT_ATTEMPTS = 3
_connection_lock = threading.Lock()
_connected: dict[str, Any] = {}  # "address": the address this process is connected to


def connect(address: str) -> Any:
    """Connect this process to the Ray cluster at `address` (once; again if it changes).

    Args:
        address: `auto`, `ray://HOST:PORT` or `HOST:PORT`.

    Returns:
        The `ray` module, connected.

    Raises:
        ClusterError: ray is missing, or no cluster answers at `address`.
    """
    ray = import_ray()
    with _connection_lock:
        if ray.is_initialized() and _connected.get("address") == address:
            return ray
        if ray.is_initialized():
            ray.shutdown()
            _connected.clear()
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                ray.init(
                    address=address,
                    namespace=NAMESPACE,
                    log_to_driver=False,  # a task's output stays in the node's logs
                    logging_level=logging.WARNING,
                    configure_logging=False,
                )
                break
            except (ConnectionError, RuntimeError, ValueError) as error:
                if SERVER_START_FAILED in str(error) and attempt < CONNECT_ATTEMPTS:
                    with contextlib.suppress(Exception):
                        ray.shutdown()
                    continue
                raise ClusterError(
                    f"No Ray cluster answers at {address!r} ({RAY_ADDRESS_VARIABLE}): {error}"
                ) from error
        _connected["address"] = address
    return ray


def disconnect() -> None:
    """Leave the cluster (its jobs of this process end with the hub); nothing if not connected."""
    with _connection_lock:
        ray = import_ray()
        if ray.is_initialized():
            ray.shutdown()
        _connected.clear()


class ProgressHub:
    """The actor that carries reports from tasks to their driver, and cancels the other way.

    Each job has a key (its run id and a nonce); the actor keeps, per key, the reports not
    yet taken and whether the job was cancelled.
    """

    def __init__(self) -> None:
        self.reports: dict[str, list[dict]] = {}
        self.cancelled: set[str] = set()

    def report(self, key: str, message: dict) -> None:
        """Keep a task's report for its driver."""
        self.reports.setdefault(key, []).append(message)

    def take(self, key: str) -> list[dict]:
        """The job's reports not taken yet, oldest first."""
        return self.reports.pop(key, [])

    def cancel(self, key: str) -> None:
        """Ask the job's task to stop after its batch in progress."""
        self.cancelled.add(key)

    def is_cancelled(self, key: str) -> bool:
        """Whether the job was asked to stop."""
        return key in self.cancelled

    def forget(self, key: str) -> None:
        """Drop what the actor keeps of a job that has ended."""
        self.reports.pop(key, None)
        self.cancelled.discard(key)


def _hub(ray: Any) -> Any:
    """This process's `ProgressHub` actor, started on the driver's node when first needed (its
    reports must outlive a worker node that is lost)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    with _connection_lock:
        if _connected.get("hub") is None:
            here = ray.get_runtime_context().get_node_id()
            _connected["hub"] = (
                ray.remote(ProgressHub)
                .options(
                    num_cpus=0,
                    max_restarts=0,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True),
                )
                .remote()
            )
        return _connected["hub"]


def _run_task(order: dict, hub: Any, key: str, cpus: int) -> dict:
    """The Ray task: train `order` on this node, reporting to `hub` under `key`.

    Returns:
        `rnnkit.jobs.train_order`'s result.
    """
    import ray

    from rnnkit.jobs import train_order

    context = ray.get_runtime_context()
    hub.report.remote(
        key,
        {
            "started": {
                "node": ray.util.get_node_ip_address(),
                "node_id": context.get_node_id(),
                "pid": os.getpid(),
            }
        },
    )
    _limit_threads(cpus)  # TensorFlow loads meanwhile: the job shows as starting on this node
    cancel = CancelToken()
    finished = threading.Event()

    def watch_for_cancel() -> None:
        while not finished.wait(POLL_SECONDS):
            with contextlib.suppress(Exception):  # the hub is gone: the driver is too
                if ray.get(hub.is_cancelled.remote(key), timeout=30):
                    cancel.cancel()
                    return

    watcher = threading.Thread(target=watch_for_cancel, daemon=True)
    watcher.start()
    try:
        result = train_order(order, lambda message: hub.report.remote(key, message), cancel)
    finally:
        finished.set()
    # The hub runs one caller's calls in order: once this one is answered, every report is in.
    with contextlib.suppress(Exception):
        ray.get(hub.report.remote(key, {"finished": True}), timeout=60)
    return result


def _limit_threads(cpus: int) -> None:
    """Keep TensorFlow within the CPUs Ray reserved for the task, where it is not started yet
    (a node's worker process trains one job after another, with the threads of the first)."""
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # set already in this process
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(min(cpus, 2))


def _remote_task(ray: Any) -> Any:
    """`_run_task` as a Ray remote function, made once per connection."""
    with _connection_lock:
        if _connected.get("task") is None:
            _connected["task"] = ray.remote(_run_task)
        return _connected["task"]


def free_job_slots(address: str, cpus: int) -> int:
    """How many jobs of `cpus` CPUs the cluster could start now.

    Args:
        address: the cluster.
        cpus: the CPUs a job takes.

    Returns:
        Free CPUs over the cluster's nodes, in jobs (rounded down).

    Raises:
        ClusterError: ray is missing, or no cluster answers at `address`.
    """
    ray = connect(address)
    return int(ray.available_resources().get("CPU", 0) // cpus)


def train_on_cluster(
    order: dict,
    address: str,
    cpus: int = 1,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    cancel: CancelToken | None = None,
    on_start: Callable[[dict], None] | None = None,
    node_id: str | None = None,
) -> None:
    """Train `order` (`rnnkit.jobs.training_order`'s result) on the Ray cluster; block until
    it ends, as `rnnkit.jobs.train_in_child` does.

    Args:
        order: what to train; its paths must be the same on every node.
        address: the cluster (`auto`, `ray://HOST:PORT`, `HOST:PORT`).
        cpus: the CPUs Ray reserves for the job on its node.
        on_progress: called with each `ProgressEvent` the task reports (start, batches at most
            4 a second, epochs, end), in this thread.
        cancel: cancelling it stops the job within a batch (or takes it out of Ray's queue).
        on_start: called with `{"node": IP, "node_id": ..., "pid": ...}` when the task starts
            on a node, and again if Ray runs it again elsewhere.
        node_id: a node to prefer (Ray's node id); the job goes elsewhere if it is lost.

    Raises:
        TrainingCancelled: the job stopped on request; the run stays resumable.
        ClusterError: ray is missing, the cluster cannot be reached, or the task was lost
            more than `MAX_RETRIES` times.
        rnnkit.jobs.TrainingProcessError: training failed; the message is its error.
    """
    from rnnkit.jobs import TrainingProcessError

    ray = connect(address)
    hub = _hub(ray)
    key = f"{order['run_id']}-{uuid.uuid4().hex}"
    options: dict[str, Any] = {
        "num_cpus": cpus,
        "max_retries": MAX_RETRIES,
        "retry_exceptions": False,  # a failure in training is reported, not tried again
        "runtime_env": {"env_vars": task_environment()},
    }
    if node_id is not None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id, soft=True)
    task = _remote_task(ray).options(**options).remote(order, hub, key, cpus)
    started = False
    asked_to_stop: float | None = None

    def deliver(reports: list[dict]) -> None:
        nonlocal started
        for report in reports:
            if "started" in report:
                started = True
                if on_start is not None:
                    on_start(report["started"])
            elif "event" in report and on_progress is not None:
                on_progress(ProgressEvent(**report["event"]))

    try:
        while True:
            done, _ = ray.wait([task], timeout=POLL_SECONDS)
            deliver(ray.get(hub.take.remote(key)))
            if done:
                break
            if cancel is not None and cancel.cancelled and asked_to_stop is None:
                asked_to_stop = time.monotonic()
                hub.cancel.remote(key)
                if not started:  # still in Ray's queue: it leaves it
                    ray.cancel(task)
            elif (
                asked_to_stop is not None
                and time.monotonic() - asked_to_stop > CANCEL_GRACE_SECONDS
            ):
                ray.cancel(task, force=True)
        try:
            result = ray.get(task)
        except ray.exceptions.TaskCancelledError as error:
            raise TrainingCancelled(f"run {order['run_id']} was cancelled") from error
        except ray.exceptions.RayTaskError as error:  # not train_order's: it reports its own
            raise TrainingProcessError(f"the task failed on the cluster: {error}") from error
        except ray.exceptions.RayError as error:  # lost more often than it was retried
            raise ClusterError(
                f"the cluster lost the job of run {order['run_id']}: {error}"
            ) from error
    finally:
        with contextlib.suppress(Exception):
            hub.forget.remote(key)
    if result.get("result") == "cancelled":
        raise TrainingCancelled(f"run {order['run_id']} was cancelled")
    if result.get("result") == "failed":
        raise TrainingProcessError(result["error"])
