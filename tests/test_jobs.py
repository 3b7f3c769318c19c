"""The job board: background training shared by sessions, a queue, cancel, server limits.

The tests that train do it in a real child process on a tiny corpus; the queueing tests use an
in-process fake (the `gated` fixture's `GatedTrain`) that holds each job until the test lets it
go.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rnnkit import RunStore, load_imdb
from rnnkit import jobs as jobs_module
from rnnkit.jobs import CANCELLED_EXIT, LimitError, child_command, limit_problems
from rnnkit.settings import TrainingLimits, child_environment
from tests.helpers import (
    cancel_part_way,
    new_job_board,
    tiny_masked_config,
    tiny_reviews,
    wait_for,
    write_archive,
)


def test_a_job_trains_in_a_child_process_and_stores_the_run(data, tmp_path):
    board = new_job_board(tmp_path)
    job = board.submit(tiny_masked_config(), data)
    view = board.wait(job.run_id, timeout=120)
    assert view.state == "done" and view.error is None
    assert view.pid is not None and view.pid != os.getpid()
    assert [epoch["epoch"] for epoch in view.epochs] == [1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(view.epochs[0])
    assert board.store.status(job.run_id) == "complete"
    assert view.progress.kind == "end" and "test_accuracy" in view.progress.logs


def test_a_job_takes_the_process_on_standby(data, tmp_path):
    board = new_job_board(tmp_path, standby=True)
    board.prepare()
    standby = board.standby_pid()
    assert standby is not None and standby != os.getpid()
    board.prepare()  # one on standby already: no second process
    assert board.standby_pid() == standby
    job = board.submit(tiny_masked_config(), data)
    view = board.wait(job.run_id, timeout=120)
    assert view.state == "done" and view.pid == standby  # the job ran in it
    assert board.store.status(job.run_id) == "complete"
    assert board.standby_pid() is None  # taken; the next prepare() starts another
    # Its timings count from the order: the start is the wait for the first batch, not for
    # TensorFlow to load.
    timings = board.store.timings(job.run_id)
    assert 0 < timings["start_seconds"] < 60 and timings["warm_start"] is True


def test_a_process_on_standby_trains_on_the_reviews_it_loaded_while_waiting(
    corpus, data, tmp_path, monkeypatch
):
    import rnnkit.data
    import rnnkit.sources
    import rnnkit.training
    from rnnkit.training import CancelToken

    # Without a configured source it loads nothing: no download on speculation.
    monkeypatch.setattr(rnnkit.sources, "download_imdb", lambda *a, **k: pytest.fail("download"))
    assert jobs_module.preload_reviews() is None
    monkeypatch.setenv("RNNKIT_DATA", str(corpus))
    preloaded = jobs_module.preload_reviews()
    assert preloaded is not None and preloaded.num_words == 10000  # the notebook's vocabulary
    trained_on, loads = [], []
    monkeypatch.setattr(
        rnnkit.training, "train", lambda config, data, *a, **k: trained_on.append(data)
    )
    real_load = rnnkit.data.load_imdb
    monkeypatch.setattr(
        rnnkit.data, "load_imdb", lambda **options: loads.append(options) or real_load(**options)
    )
    store = RunStore(tmp_path / "runs")

    def train_order(config, data):
        monkeypatch.setitem(jobs_module._PRELOADED, "reviews", preloaded)  # as on standby
        order = jobs_module.training_order(config, data, store)
        report = jobs_module.train_order(order, lambda message: None, CancelToken(), True)
        assert report == {"result": "done"}
        assert "reviews" not in jobs_module._PRELOADED  # taken, used or let go of

    # An order for those reviews trains on them as they are, without loading them again.
    train_order(tiny_masked_config(**{"data.num_words": "10000"}), preloaded)
    assert trained_on[-1] is preloaded and loads == []
    # Another vocabulary is loaded for the order.
    train_order(tiny_masked_config(), data)
    assert trained_on[-1] is not preloaded and loads[-1]["num_words"] == 100
    # So are the same reviews when the source changed since they were loaded.
    monkeypatch.setattr(rnnkit.sources, "source_fingerprint", lambda path: "changed")
    train_order(tiny_masked_config(**{"data.num_words": "10000"}), preloaded)
    assert trained_on[-1] is not preloaded and loads[-1]["num_words"] == 10000


def test_a_process_on_standby_ends_when_unused(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs_module, "STANDBY_IDLE_SECONDS", 0.5)
    board = new_job_board(tmp_path, standby=True)
    board.prepare()
    pid = board.standby_pid()
    wait_for(lambda: board.standby_pid() is None, timeout=30)
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") or process_ended(pid), timeout=30)


def process_ended(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] == "Z"  # a zombie: it has exited


@pytest.mark.parametrize(
    ("standby", "limits"),
    [(False, TrainingLimits()), (True, TrainingLimits(allow_training=False))],
)
def test_no_process_is_put_on_standby_when_it_could_not_be_used(tmp_path, standby, limits):
    board = new_job_board(tmp_path, limits, standby=standby)
    board.prepare()
    assert board.standby_pid() is None


def test_the_job_board_does_not_load_tensorflow():
    code = "import sys, rnnkit.jobs; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


# 50 epochs of 4 tiny batches: long enough to cancel part way.
LONG = {"training.epochs": "50"}


def test_cancel_stops_the_child_and_a_resubmit_resumes_from_the_saved_epoch(data, tmp_path):
    board = new_job_board(tmp_path)
    config = tiny_masked_config(**LONG)
    job, saved = cancel_part_way(board, config, data, epoch_timeout=120, stop_timeout=60)
    resumed = board.submit(config, data)
    assert resumed is not job
    view = board.wait(resumed.run_id, timeout=180)
    assert view.state == "done"
    assert view.epochs[0]["epoch"] == saved + 1  # the saved epochs are not trained again
    assert len(board.store.history_epochs(job.run_id)) == 50


def test_a_child_that_cannot_load_the_data_fails_the_job_with_its_error(tmp_path):
    archive = write_archive(tmp_path / "gone.tar.gz", tiny_reviews())
    data = load_imdb(num_words=100, path=archive)
    archive.unlink()  # the server has the reviews in memory; the child cannot read them
    board = new_job_board(tmp_path)
    job = board.submit(tiny_masked_config(), data)
    view = board.wait(job.run_id, timeout=120)
    assert view.state == "failed"
    assert view.error.startswith("DataError: No IMDB data at") and "gone.tar.gz" in view.error


def test_a_child_that_dies_without_a_report_fails_the_job_with_its_stderr(
    data, tmp_path, monkeypatch
):
    crash = [sys.executable, "-c", "import sys; sys.stderr.write('segfault, say'); sys.exit(7)"]
    monkeypatch.setattr(jobs_module, "child_command", lambda *arguments: crash)
    board = new_job_board(tmp_path)
    view = board.wait(board.submit(tiny_masked_config(), data).run_id, timeout=30)
    assert view.state == "failed"
    assert view.error == "the training process ended with exit code 7: segfault, say"


def test_the_child_stops_resumable_when_the_server_closes_its_stdin(data, tmp_path):
    store = RunStore(tmp_path / "runs")
    config = tiny_masked_config(**LONG)
    child = subprocess.Popen(
        child_command(config, data, store),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_environment(),
        text=True,
    )
    try:
        for line in child.stdout:  # wait until it trains
            if json.loads(line).get("event", {}).get("kind") == "epoch":
                break
        child.stdin.close()  # what the server's death does to the pipe
        reports = [json.loads(line) for line in child.stdout]
        assert child.wait(timeout=60) == CANCELLED_EXIT
    finally:
        child.kill()
        child.wait()
    assert reports[-1] == {"result": "cancelled"}
    assert store.status(config.run_id(data.fingerprint)) == "incomplete"


def test_a_second_request_attaches_to_the_running_job(data, tmp_path, gated):
    board = new_job_board(tmp_path)
    first = board.submit(tiny_masked_config(), data)
    second = board.submit(tiny_masked_config(), data)
    assert second is first
    wait_for(lambda: board.view(first.run_id).state == "running")
    gated.gate(first.run_id).set()
    assert board.wait(first.run_id, 10).state == "done"
    assert gated.calls == [first.run_id]  # trained once


def test_jobs_queue_beyond_max_jobs_in_order(data, tmp_path, gated):
    board = new_job_board(tmp_path, TrainingLimits(max_jobs=1))
    configs = [tiny_masked_config(**{"training.seed": str(seed)}) for seed in (1, 2, 3)]
    jobs = [board.submit(config, data) for config in configs]
    wait_for(lambda: board.view(jobs[0].run_id).state == "running")
    assert [board.view(job.run_id).queue_position for job in jobs] == [None, 1, 2]
    assert board.cancel(jobs[1].run_id)
    assert board.view(jobs[1].run_id).state == "cancelled"
    assert board.view(jobs[2].run_id).queue_position == 1
    gated.gate(jobs[0].run_id).set()
    wait_for(lambda: board.view(jobs[2].run_id).state == "running")
    gated.gate(jobs[2].run_id).set()
    board.wait(jobs[2].run_id, 10)
    assert gated.calls == [jobs[0].run_id, jobs[2].run_id]
    assert board.active() == []


def test_cancel_stops_a_running_job(data, tmp_path, gated):
    board = new_job_board(tmp_path)
    job = board.submit(tiny_masked_config(), data)
    wait_for(lambda: board.view(job.run_id).state == "running")
    assert board.cancel(job.run_id)
    assert board.wait(job.run_id, 10).state == "cancelled"
    assert not board.cancel(job.run_id)  # nothing active left to stop
    again = board.submit(tiny_masked_config(), data)  # a cancelled run can be resumed
    assert again is not job and board.view(again.run_id).state in ("queued", "running")
    gated.gate(job.run_id).set()
    assert board.wait(job.run_id, 10).state == "done"


def test_the_time_limit_cancels_a_job_with_a_reason(data, tmp_path, gated):
    board = new_job_board(tmp_path, TrainingLimits(max_training_minutes=0.001))
    job = board.submit(tiny_masked_config(), data)
    view = board.wait(job.run_id, 10)
    assert view.state == "cancelled"
    assert "time limit of 0.001 minutes" in view.error


@pytest.mark.parametrize(
    ("overrides", "limits", "message"),
    [
        ({"training.epochs": "20"}, TrainingLimits(max_epochs=10), "training.epochs = 20 is over"),
        ({"model.rnn_units": "300"}, TrainingLimits(), "model.rnn_units = 300 is over .* 256"),
        ({"data.max_length": "900"}, TrainingLimits(max_length=500), "data.max_length = 900"),
        ({"model.embedding_dim": "64"}, TrainingLimits(max_embedding_dim=32), "embedding_dim"),
        ({}, TrainingLimits(allow_training=False), "Training is switched off"),
    ],
)
def test_the_server_refuses_what_its_limits_do_not_allow(
    data, tmp_path, gated, overrides, limits, message
):
    board = new_job_board(tmp_path, limits)
    with pytest.raises(LimitError, match=message):
        board.submit(tiny_masked_config(**overrides), data)
    assert gated.calls == [] and board.active() == []


def test_a_full_queue_refuses_more(data, tmp_path, gated):
    board = new_job_board(tmp_path, TrainingLimits(max_jobs=1, max_queue=1))
    running = board.submit(tiny_masked_config(**{"training.seed": "1"}), data)
    wait_for(lambda: board.view(running.run_id).state == "running")
    board.submit(tiny_masked_config(**{"training.seed": "2"}), data)
    with pytest.raises(LimitError, match=r"The queue is full: 1 waiting, .*RNNKIT_MAX_QUEUE = 1"):
        board.submit(tiny_masked_config(**{"training.seed": "3"}), data)


def test_limit_problems_lists_each_broken_limit_once():
    config = tiny_masked_config(**{"model.rnn_units": "300,300", "training.epochs": "99"})
    problems = limit_problems(config, TrainingLimits(max_epochs=50))
    assert problems == [
        "training.epochs = 99 is over this server's limit of 50",
        "model.rnn_units = 300 is over this server's limit of 256",
    ]
