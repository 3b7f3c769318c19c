"""Training on a Ray cluster: the job board's jobs on the nodes, cancel and resume, the limits, a
configuration trained once by any node, and a node lost in the middle of a run.

The tests marked `cluster` run on a cluster of two nodes on this machine (conftest's
`ray_cluster`), one CPU each, with tiny configurations.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import uuid

import pytest

from rnnkit import RunStore, train
from rnnkit.cluster import ClusterError, connect, import_ray, train_on_cluster
from rnnkit.jobs import LimitError, training_order
from rnnkit.settings import TrainingLimits
from tests.helpers import (
    ROOT,
    cancel_part_way,
    new_job_board,
    ray_node_id,
    start_ray_node,
    tiny_masked_config,
    wait_for,
)

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


def test_without_ray_the_cluster_code_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an import finds where ray is missing
    monkeypatch.setenv("RNNKIT_RAY_ADDRESS", "auto")
    with pytest.raises(ClusterError, match=r"pip install -r requirements-cluster\.txt"):
        import_ray()


def test_rnnkit_and_its_job_board_do_not_import_ray():
    code = "import sys, rnnkit.jobs, rnnkit.cluster, rnnkit.cli; print('ray' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.split() == ["False"]


class FlakyRay:
    """Stands in for `ray`: `init` fails as given, one failure per call, then succeeds."""

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = list(failures)
        self.inits = 0
        self.initialized = False

    def init(self, **_: object) -> None:
        self.inits += 1
        if self.failures:
            raise self.failures.pop(0)
        self.initialized = True

    def is_initialized(self) -> bool:
        return self.initialized

    def shutdown(self) -> None:
        self.initialized = False


def test_a_client_server_that_fails_to_start_is_asked_for_again(monkeypatch):
    from rnnkit import cluster

    lost = RuntimeError("Starting Ray client server failed. See ray_client_server_23000.err")
    monkeypatch.setattr(cluster, "_connected", {})
    flaky = FlakyRay([lost, lost])
    monkeypatch.setattr(cluster, "import_ray", lambda: flaky)
    assert connect("ray://127.0.0.1:1") is flaky  # the third try connects
    assert flaky.inits == 3
    # Three lost servers in a row, or any other failure at once, say that no cluster answers.
    for failures, inits in (([lost] * 3, 3), ([ConnectionError("refused")], 1)):
        monkeypatch.setattr(cluster, "_connected", {})
        flaky = FlakyRay(failures)
        monkeypatch.setattr(cluster, "import_ray", lambda flaky=flaky: flaky)
        with pytest.raises(ClusterError, match=r"No Ray cluster answers at 'ray://127\.0\.0\.1:1'"):
            connect("ray://127.0.0.1:1")
        assert flaky.inits == inits


def test_a_training_task_starts_with_the_rnnkit_variables_and_the_pooling_allocator(
    monkeypatch,
):
    from rnnkit.cluster import task_environment

    monkeypatch.delenv("TF_CPU_ALLOCATOR_USE_BFC", raising=False)
    monkeypatch.setenv("RNNKIT_RUNS_DIR", "/runs/of/the/server")
    monkeypatch.setenv("SOMETHING_ELSE", "not for the node")
    environment = task_environment()
    assert environment["TF_CPU_ALLOCATOR_USE_BFC"] == "true"
    assert environment["RNNKIT_RUNS_DIR"] == "/runs/of/the/server"
    assert "SOMETHING_ELSE" not in environment
    # The driver's own setting wins.
    monkeypatch.setenv("TF_CPU_ALLOCATOR_USE_BFC", "false")
    assert task_environment()["TF_CPU_ALLOCATOR_USE_BFC"] == "false"


def epochs_of(view) -> list[int]:
    return [epoch["epoch"] for epoch in view.epochs]


@pytest.mark.cluster
def test_a_job_board_with_a_ray_address_trains_on_a_node(ray_cluster, data, tmp_path):
    board = new_job_board(tmp_path, ray_address=ray_cluster.address)
    job = board.submit(tiny_masked_config(), data)
    assert board.submit(tiny_masked_config(), data) is job  # a second visitor attaches
    view = board.wait(job.run_id, timeout=180)
    assert view.state == "done" and view.error is None
    assert view.node is not None and view.node.startswith("127.0.0.2 (")
    assert view.pid is not None and view.pid != os.getpid()
    assert epochs_of(view) == [1, 2, 3]
    assert view.progress.kind == "end" and "test_accuracy" in view.progress.logs
    # The node wrote the run where this process reads it, complete at once.
    assert board.store.status(job.run_id) == "complete"
    assert [record["epoch"] for record in board.store.load(job.run_id).history] == [1, 2, 3]


@pytest.mark.cluster
def test_two_jobs_train_at_once_on_the_two_nodes(ray_cluster, data, tmp_path):
    # One job at a time is this machine's limit: on a cluster, its nodes' CPUs decide.
    limits = TrainingLimits(max_jobs=1)
    board = new_job_board(tmp_path, limits, ray_address=ray_cluster.address)
    configs = [tiny_masked_config(**{"training.seed": str(seed), "training.epochs": "40"})
               for seed in (1, 2)]  # fmt: skip
    jobs = [board.submit(config, data) for config in configs]
    seen_together = []

    def both_running() -> bool:
        views = [board.view(job.run_id) for job in jobs]
        if all(view.state == "running" and view.progress is not None for view in views):
            seen_together.append({view.node for view in views})
        return bool(seen_together) or any(view.state not in ("queued", "running") for view in views)

    wait_for(both_running, timeout=240)
    assert seen_together, [board.view(job.run_id) for job in jobs]
    assert len(seen_together[0]) == 2  # one node each: each node has one CPU
    for job in jobs:
        assert board.wait(job.run_id, timeout=240).state == "done"


@pytest.mark.cluster
def test_cancel_on_the_cluster_stops_resumable_and_a_resubmit_resumes(ray_cluster, data, tmp_path):
    board = new_job_board(tmp_path, ray_address=ray_cluster.address)
    config = tiny_masked_config(**{"training.epochs": "50"})
    job, saved = cancel_part_way(board, config, data, epoch_timeout=180, stop_timeout=120)
    resumed = board.submit(config, data)
    view = board.wait(resumed.run_id, timeout=240)
    assert view.state == "done"
    assert epochs_of(view)[0] == saved + 1  # the saved epochs are not trained again
    assert len(board.store.history_epochs(job.run_id)) == 50


@pytest.mark.cluster
def test_the_queue_limit_and_a_cancel_in_rays_queue(ray_cluster, data, tmp_path):
    # 64 CPUs a job: no node of the test cluster can start one, so each waits in Ray's queue.
    limits = TrainingLimits(max_queue=1)
    board = new_job_board(tmp_path, limits, ray_address=ray_cluster.address, job_cpus=64)
    waiting = board.submit(tiny_masked_config(), data)
    assert board.view(waiting.run_id).queue_position == 1
    with pytest.raises(LimitError, match=r"The queue is full: 1 waiting"):
        board.submit(tiny_masked_config(**{"training.seed": "2"}), data)
    assert board.cancel(waiting.run_id)
    view = board.wait(waiting.run_id, timeout=60)
    assert view.state == "cancelled" and view.started is None
    assert board.store.status(waiting.run_id) == "missing"  # never started on a node
    assert board.active() == []


@pytest.mark.cluster
def test_the_time_limit_stops_a_cluster_job_with_a_reason(ray_cluster, data, tmp_path):
    limits = TrainingLimits(max_training_minutes=0.001)
    board = new_job_board(tmp_path, limits, ray_address=ray_cluster.address)
    job = board.submit(tiny_masked_config(**{"training.epochs": "50"}), data)
    view = board.wait(job.run_id, timeout=180)
    assert view.state == "cancelled"
    assert "time limit of 0.001 minutes" in view.error
    assert board.store.status(job.run_id) != "complete"


@pytest.mark.cluster
def test_two_nodes_asked_for_one_configuration_train_it_once(ray_cluster, data, tmp_path):
    ray = connect(ray_cluster.address)
    nodes = [node["NodeID"] for node in ray.nodes() if node["Alive"]][:2]
    assert len(nodes) == 2
    store = RunStore(tmp_path / "runs")
    order = training_order(tiny_masked_config(), data, store)
    events: list[list] = [[], []]
    errors = []

    def ask(index: int) -> None:
        try:
            train_on_cluster(
                order, ray_cluster.address, on_progress=events[index].append, node_id=nodes[index]
            )
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=ask, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    assert errors == []
    trained = [any(event.kind == "epoch" for event in reported) for reported in events]
    assert sorted(trained) == [False, True]  # the other waited for the lock, then read the run
    assert [run.run_id for run in store.list_runs()] == [order["run_id"]]
    assert store.status(order["run_id"]) == "complete"


@pytest.mark.cluster
def test_a_job_whose_node_is_lost_runs_again_elsewhere_from_its_last_epoch(
    ray_cluster, data, tmp_path
):
    config = tiny_masked_config(**{"training.epochs": "20"})
    uninterrupted = train(config, data, RunStore(tmp_path / "uninterrupted"))
    store = RunStore(tmp_path / "runs")
    order = training_order(config, data, store)
    connect(ray_cluster.address)  # before the node to lose joins: this process is not on it
    resource = f"doomed_{uuid.uuid4().hex[:8]}"
    doomed = start_ray_node(
        tmp_path / "doomed.log", head_address=ray_cluster.address, resources={resource: 1}
    )
    starts, events, errors = [], [], []

    def run() -> None:
        try:
            train_on_cluster(
                order,
                ray_cluster.address,
                on_progress=events.append,
                on_start=starts.append,
                node_id=ray_node_id(resource),
            )
        except Exception as error:
            errors.append(error)

    thread = threading.Thread(target=run)
    try:
        thread.start()
        # Once a checkpoint is written: killed between an epoch's history and its checkpoint,
        # the run rightly starts over.
        wait_for(lambda: starts and checkpointed(store, order["run_id"]) >= 1, timeout=180)
        # A lost machine loses every process on it at once. Killing the node's process group
        # alone leaves the training worker (Ray's raylet starts it) to notice later, and its
        # tiny epochs would finish the run first.
        assert starts[0]["node_id"] == ray_node_id(resource)
        with contextlib.suppress(ProcessLookupError):
            os.kill(starts[0]["pid"], signal.SIGKILL)
        doomed.kill()
        assert saved_epochs(store, order["run_id"]) < 20  # killed part way
    finally:
        doomed.stop()
        thread.join(300)
    assert errors == []
    assert len(starts) == 2 and starts[0]["node_id"] != starts[1]["node_id"]
    resumed_at = [event.epoch for event in events if event.kind == "start"][-1]
    assert resumed_at > 1  # from its checkpoint, not from scratch
    run = store.load(order["run_id"])
    assert [record["epoch"] for record in run.history] == list(range(1, 21))
    for ours, reference in zip(run.history, uninterrupted.history, strict=True):
        for key in HISTORY_KEYS:
            assert ours[key] == pytest.approx(reference[key], abs=1e-5)


def checkpointed(store: RunStore, run_id: str) -> int:
    """The epochs the run's checkpoint holds (0: none yet)."""
    try:
        checkpoint = store.checkpoint(run_id)
    except Exception:  # the files appear while we look
        return 0
    return checkpoint[0] if checkpoint else 0


def saved_epochs(store: RunStore, run_id: str) -> int:
    try:
        return len(store.history_epochs(run_id))
    except Exception:  # the files appear while we look
        return 0
