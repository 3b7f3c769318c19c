"""Training on a tiny corpus: results stored, never trained twice, cancel, resume, kill, locks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rnnkit import CancelToken, RunStore, TrainingCancelled, load_imdb, train
from rnnkit.training import SAVE_SECONDS, prepare_data, setup_training
from tests.helpers import free_port, tiny_masked_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs")


def test_prepare_data_carves_a_seeded_validation_split(data):
    config = tiny_masked_config()
    prepared = prepare_data(config, data)
    assert prepared.x_train.shape == (64, 16) and prepared.x_validation.shape == (16, 16)
    assert prepared.x_test.shape == (20, 16)
    again = prepare_data(config, data)
    assert np.array_equal(prepared.x_validation, again.x_validation)
    other_seed = prepare_data(tiny_masked_config(**{"training.seed": "2"}), data)
    assert not np.array_equal(prepared.x_validation, other_seed.x_validation)
    # post padding: zeros after the tokens, and every row starts with <START>.
    assert (prepared.x_train[:, 0] == 1).all()


def test_prepare_data_refuses_another_num_words(data):
    with pytest.raises(ValueError, match=r"num_words=100 .* data.num_words=200"):
        prepare_data(tiny_masked_config(**{"data.num_words": "200"}), data)


def test_masked_configs_train_on_length_grouped_batches(data):
    # Reviews of 6 to 18 tokens (with <START>): a batch of similar lengths needs fewer steps.
    config = tiny_masked_config(**{"model.mask_padding": "true", "training.batch_size": "8"})
    setup = setup_training(config, data)
    prepared = setup.prepared
    lengths = np.count_nonzero(prepared.x_train, axis=1)
    passes = []
    for _ in range(2):
        rows_seen, widths = [], []
        for tokens, labels in setup.fit_arguments["x"].as_numpy_iterator():
            widths.append(tokens.shape[1])
            assert (tokens[:, 0] == 1).all()  # post padding: cut at the end, <START> kept
            assert np.count_nonzero(tokens, axis=1).max() == tokens.shape[1]  # no empty column
            for row, label in zip(tokens, labels, strict=True):
                full = np.zeros(16, np.int32)
                full[: len(row)] = row
                match = np.flatnonzero((prepared.x_train == full).all(axis=1))
                assert prepared.y_train[match].tolist() == [label] * len(match)
                rows_seen.append(match[0])
        assert len(widths) == setup.batches_per_epoch == 8
        assert sum(widths) < 8 * 16  # fewer steps than batches padded to max_length
        assert sorted(lengths[rows_seen]) == sorted(lengths)  # every review once per pass
        passes.append(widths)
    assert passes[0] != passes[1]  # a new random grouping every epoch


def test_length_grouped_datasets_do_not_start_tf_datas_autotuning(data):
    # With autotuning, destroying an iterator waited for tf.data's tuning thread to wake: Keras
    # makes one per epoch and per validation pass, and some epochs of the seed preset took
    # 20.5 s instead of 12 s, idle for 8 s at the end. A generator has nothing to tune.
    config = tiny_masked_config(**{"model.mask_padding": "true"})
    setup = setup_training(config, data)
    for dataset in (setup.fit_arguments["x"], setup.fit_arguments["validation_data"]):
        assert dataset.options().autotune.enabled is False


def test_length_grouping_does_not_change_a_masked_models_output(data):
    config = tiny_masked_config(**{"model.mask_padding": "true", "data.padding": "pre"})
    setup = setup_training(config, data)
    full_width = setup.model.predict(setup.prepared.x_test, verbose=0)[:, 0]
    np.testing.assert_allclose(setup.predict(setup.prepared.x_test), full_width, atol=1e-6)


def test_tiny_config_trains_and_stores_everything(data, store):
    events = []
    run = train(tiny_masked_config(), data, store, on_progress=events.append)
    assert store.status(run.run_id) == "complete"
    assert [record["epoch"] for record in run.history] == [1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(run.history[0])
    assert run.predictions.shape == (20,)
    assert ((run.predictions >= 0) & (run.predictions <= 1)).all()
    assert run.versions["keras"] and run.timings["seconds"] > 0
    assert run.config == tiny_masked_config().to_dict()
    assert not store.backup_dir(run.run_id).exists()
    # The saved model gives the stored predictions.
    model = run.model()
    prepared = prepare_data(tiny_masked_config(), data)
    reloaded = model.predict(prepared.x_test, verbose=0)[:, 0]
    np.testing.assert_allclose(reloaded, run.predictions, atol=1e-5)
    # The stored test metrics agree with Keras' own evaluation.
    keras_loss, keras_accuracy = model.evaluate(prepared.x_test, prepared.y_test, verbose=0)
    assert run.metrics["test_loss"] == pytest.approx(keras_loss, abs=1e-4)
    assert run.metrics["test_accuracy"] == pytest.approx(keras_accuracy, abs=1e-6)
    kinds = [event.kind for event in events]
    epoch = ["batch"] * 4 + ["validate", "epoch"]
    assert kinds == ["start", *epoch * 3, "evaluate", "save", "end"]  # every phase, in order
    # The time left counts every phase still to come: after the last batch, the validation,
    # the test-set pass and the saving; it falls from phase to phase, to 0 at the end.
    last_batch = [event for event in events if event.kind == "batch"][-1]
    assert last_batch.fraction == 1.0
    by_kind = {event.kind: event for event in events}  # the last event of each kind
    assert all(event.eta is not None for event in events[1:])
    assert last_batch.eta > by_kind["evaluate"].eta > by_kind["save"].eta > 0
    assert by_kind["save"].eta == pytest.approx(SAVE_SECONDS) and by_kind["end"].eta == 0
    assert by_kind["evaluate"].phase == "evaluating the test set (20 reviews)"
    assert all(event.overall_fraction(event.sent_at) < 1 for event in events[:-1])
    timings = run.timings
    assert timings["start_seconds"] > 0 and len(timings["validation_seconds"]) == 3
    assert timings["test_seconds"] > 0 and timings["save_seconds"] > 0


def test_a_model_without_an_rnn_trains_stores_and_reloads(data, store):
    config = tiny_masked_config(**{"model.rnn_units": "none", "model.dense_units": "none"})
    run = train(config, data, store)
    assert store.status(run.run_id) == "complete" and len(run.history) == 3
    assert run.timings["fused_rnn"] is False
    model = run.model()  # saved and loaded by Keras alone
    assert [type(layer).__name__ for layer in model.layers][1:] == [
        "Embedding",
        "GlobalAveragePooling1D",
        "Dense",
    ]
    prepared = prepare_data(config, data)
    reloaded = model.predict(prepared.x_test, verbose=0)[:, 0]
    np.testing.assert_allclose(reloaded, run.predictions, atol=1e-5)


def test_a_trained_config_is_never_trained_again(data, store):
    first = train(tiny_masked_config(), data, store)
    events = []
    started = time.perf_counter()
    second = train(tiny_masked_config(), data, store, on_progress=events.append)
    assert time.perf_counter() - started < 5  # loads, never fits (a loose bound: no training)
    assert events == []
    assert second.run_id == first.run_id
    assert second.history == first.history
    np.testing.assert_array_equal(second.predictions, first.predictions)


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("metrics.json", lambda path: path.write_text("{}")),
        ("predictions.npy", lambda path: np.save(path, np.zeros(7, np.float32))),
        ("history.json", lambda path: path.write_text('[{"loss": "0.5"}]')),
    ],
)
def test_a_damaged_run_is_trained_again_from_scratch(data, store, name, damage):
    first = train(tiny_masked_config(), data, store)
    damage(first.folder / name)
    assert store.status(first.run_id) == "damaged"
    events = []
    again = train(tiny_masked_config(), data, store, on_progress=events.append)
    assert events[0].kind == "start" and events[0].epoch == 1  # from scratch, not served
    assert [event.epoch for event in events if event.kind == "epoch"] == [1, 2, 3]
    assert store.status(again.run_id) == "complete"
    assert [record["epoch"] for record in again.history] == [1, 2, 3]
    assert len(again.predictions) == again.summary["test_reviews"] == len(data.test)
    assert set(again.metrics) >= {"test_loss", "test_accuracy"}


def test_a_checkpoint_keras_cannot_load_starts_the_run_over(data, store):
    # What Keras' own BackupAndRestore left when stopped while writing its weights file (an
    # older rnnkit used it): the run failed at every resume. Now it starts over.
    config = tiny_masked_config()
    run_id = config.run_id(data.fingerprint)
    store.create(run_id, config.to_dict())
    epochs = [{"epoch": epoch, "loss": 0.6, "accuracy": 0.6} for epoch in (1, 2)]
    store.write_json(run_id, "history.json", epochs)
    store.backup_dir(run_id).mkdir()
    (store.backup_dir(run_id) / "latest.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(99))
    (store.backup_dir(run_id) / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    assert store.checkpoint(run_id)[0] == 2
    events = []
    run = train(config, data, store, on_progress=events.append)
    assert events[0].kind == "start" and events[0].epoch == 1
    assert [record["epoch"] for record in run.history] == [1, 2, 3]
    assert run.history[0]["loss"] != 0.6  # trained again, not kept


def test_each_epoch_leaves_one_whole_checkpoint_that_agrees_with_the_history(data, store):
    config = tiny_masked_config(**{"training.epochs": "4"})
    run_id = config.run_id(data.fingerprint)
    seen = []

    def look(event):
        if event.kind == "batch" and event.batch == 1 and event.epoch > 1:
            epoch, weights = store.checkpoint(run_id)
            seen.append((event.epoch, epoch, len(store.history_epochs(run_id)), weights.name))
            assert sorted(path.name for path in weights.parent.iterdir()) == [
                weights.name,
                "training_metadata.json",
            ]

    train(config, data, store, on_progress=look)
    assert seen == [
        (epoch, epoch - 1, epoch - 1, f"epoch-{epoch - 1}.weights.h5") for epoch in (2, 3, 4)
    ]


def test_same_config_and_seed_give_the_same_history(data, tmp_path):
    first = train(tiny_masked_config(), data, RunStore(tmp_path / "a"))
    second = train(tiny_masked_config(), data, RunStore(tmp_path / "b"))
    for a, b in zip(first.history, second.history, strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert a[key] == pytest.approx(b[key], abs=1e-5)


def test_cancel_stops_within_a_batch_and_the_run_resumes(data, store):
    config = tiny_masked_config(**{"training.epochs": "4"})
    token = CancelToken()
    seen = []

    def cancel_in_second_epoch(event):
        seen.append(event)
        if event.kind == "batch" and event.epoch == 2 and event.batch == 2:
            token.cancel()

    with pytest.raises(TrainingCancelled):
        train(config, data, store, on_progress=cancel_in_second_epoch, cancel=token)
    run_id = config.run_id(data.fingerprint)
    assert seen[-1].kind == "batch" and (seen[-1].epoch, seen[-1].batch) == (2, 2)
    assert store.status(run_id) == "incomplete"
    assert [record["epoch"] for record in store.history_epochs(run_id)] == [1]
    resumed = []
    run = train(config, data, store, on_progress=resumed.append)
    assert resumed[0].kind == "start" and resumed[0].epoch == 2  # from the last finished epoch
    assert [record["epoch"] for record in run.history] == [1, 2, 3, 4]


def test_a_resumed_run_has_the_history_of_an_uninterrupted_one(data, tmp_path):
    config = tiny_masked_config(**{"training.epochs": "4"})
    whole = train(config, data, RunStore(tmp_path / "whole"))
    store = RunStore(tmp_path / "stopped")
    token = CancelToken()

    def stop_after_the_second_epoch(event):
        if event.kind == "epoch" and event.epoch == 2:
            token.cancel()

    with pytest.raises(TrainingCancelled):
        train(config, data, store, on_progress=stop_after_the_second_epoch, cancel=token)
    assert len(store.history_epochs(whole.run_id)) == 2
    resumed = train(config, data, store)
    # Epochs 3 and 4 see the batches they see uninterrupted, from the same weights and
    # optimizer state: the same numbers, to float32 rounding.
    for a, b in zip(whole.history, resumed.history, strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert a[key] == pytest.approx(b[key], abs=1e-6)


def test_a_failure_is_recorded_and_retraining_works(data, store, monkeypatch):
    import rnnkit.model

    def broken(config):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(rnnkit.model, "build_model", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        train(tiny_masked_config(), data, store)
    run_id = tiny_masked_config().run_id(data.fingerprint)
    assert store.status(run_id) == "failed"
    (summary,) = store.list_runs()
    assert "out of memory" in summary.error
    monkeypatch.undo()
    assert train(tiny_masked_config(), data, store).run_id == run_id
    assert store.status(run_id) == "complete"


TRAIN_SCRIPT = """
import json, os, sys, time
import rnnkit
from tests.helpers import tiny_masked_config
config = tiny_masked_config(**json.loads(os.environ["OVERRIDES"]))
data = rnnkit.load_imdb(num_words=100, path=os.environ["CORPUS"])
store = rnnkit.RunStore(os.environ["RUNS"])
slow = float(os.environ.get("SLOW", "0"))
trained = []
def on_progress(event):
    trained.append(event)
    if event.kind == "batch":
        time.sleep(slow)
run = rnnkit.train(config, data, store, on_progress=on_progress)
print(json.dumps({"trained": bool(trained), "run_id": run.run_id,
                  "test_accuracy": run.metrics["test_accuracy"]}))
"""


def start_training_process(corpus: Path, runs: Path, overrides: dict, slow: float = 0.0):
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CORPUS": str(corpus),
        "RUNS": str(runs),
        "OVERRIDES": json.dumps(overrides),
        "SLOW": str(slow),
    }
    return subprocess.Popen(
        [sys.executable, "-c", TRAIN_SCRIPT],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_killed_training_leaves_no_complete_run_and_the_rerun_finishes(corpus, tmp_path):
    runs = tmp_path / "runs"
    overrides = {"training.epochs": "3"}
    process = start_training_process(corpus, runs, overrides, slow=0.3)  # ~1.2 s per epoch
    store = RunStore(runs)
    config = tiny_masked_config(**overrides)
    data = load_imdb(num_words=100, path=corpus)
    run_id = config.run_id(data.fingerprint)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if len(store.history_epochs(run_id)) >= 1:
                break
        except Exception:  # the history file appears while we look
            pass
        time.sleep(0.05)
    time.sleep(0.5)  # into the second epoch
    assert process.poll() is None, process.communicate()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert store.status(run_id) == "incomplete"
    assert store.history_epochs(run_id)[0]["epoch"] == 1
    resumed = []
    run = train(config, data, store, on_progress=resumed.append)
    assert resumed[0].epoch == 2
    assert [record["epoch"] for record in run.history] == [1, 2, 3]
    assert store.status(run_id) == "complete"


def test_two_processes_on_one_config_train_once(corpus, tmp_path):
    runs = tmp_path / "runs"
    processes = [start_training_process(corpus, runs, {}, slow=0.02) for _ in range(2)]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    assert sorted(result["trained"] for result in results) == [False, True]
    assert results[0]["run_id"] == results[1]["run_id"]
    assert results[0]["test_accuracy"] == results[1]["test_accuracy"]
    assert len(RunStore(runs).list_runs()) == 1


MIRRORED_SCRIPT = """
import json, os
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
import rnnkit
from tests.helpers import tiny_masked_config
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
data = rnnkit.load_imdb(num_words=100, path=os.environ["CORPUS"])
store = rnnkit.RunStore(os.environ["RUNS"])
run = rnnkit.train(tiny_masked_config(), data, store, strategy=strategy)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "epochs": len(run.history),
                  "test_accuracy": run.metrics["test_accuracy"]}))
"""


def test_training_under_a_mirrored_strategy_of_two_cpu_devices(corpus, tmp_path):
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CORPUS": str(corpus),
        "RUNS": str(tmp_path / "runs"),
    }
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["replicas"] == 2 and outcome["epochs"] == 3
    assert 0.0 <= outcome["test_accuracy"] <= 1.0


MULTI_WORKER_SCRIPT = """
import json, os
import tensorflow as tf
import rnnkit
from tests.helpers import tiny_masked_config
strategy = tf.distribute.MultiWorkerMirroredStrategy()
data = rnnkit.load_imdb(num_words=100, path=os.environ["CORPUS"])
store = rnnkit.RunStore(os.environ["RUNS"])
batches = []
def count(event):
    if event.kind == "batch":
        batches.append(event.batch)
run = rnnkit.train(tiny_masked_config(), data, store, strategy=strategy, on_progress=count)
print(json.dumps({"task": strategy.cluster_resolver.task_id,
                  "chief": rnnkit.training.is_chief(strategy),
                  "replicas": strategy.num_replicas_in_sync, "batches": len(batches),
                  "run_id": run.run_id, "epochs": [record["epoch"] for record in run.history],
                  "test_accuracy": run.metrics["test_accuracy"]}))
"""


def test_one_run_trained_by_two_workers_under_a_multi_worker_strategy(corpus, data, tmp_path):
    runs = tmp_path / "runs"
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "CORPUS": str(corpus),
            "RUNS": str(runs),
            "TF_CONFIG": json.dumps(tf_config),
        }
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", MULTI_WORKER_SCRIPT],
                cwd=ROOT,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outcomes = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, stderr[-3000:]
            outcomes.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for process in processes:
            process.kill()
    assert [outcome["task"] for outcome in outcomes] == [0, 1]
    assert [outcome["chief"] for outcome in outcomes] == [True, False]
    assert all(outcome["replicas"] == 2 for outcome in outcomes)
    # Both trained every step, each on half of each batch, the gradients summed over the two.
    assert outcomes[0]["batches"] == outcomes[1]["batches"] == 3 * 4  # 3 epochs of 4 batches
    assert outcomes[0]["run_id"] == outcomes[1]["run_id"]
    assert outcomes[0]["epochs"] == outcomes[1]["epochs"] == [1, 2, 3]
    assert outcomes[0]["test_accuracy"] == outcomes[1]["test_accuracy"]  # the stored run's
    store = RunStore(runs)
    # Stored once, by the chief: one run folder, and the store's lock folder.
    assert [run.run_id for run in store.list_runs()] == [outcomes[0]["run_id"]]
    assert sorted(path.name for path in runs.iterdir()) == sorted([".locks", outcomes[0]["run_id"]])
    assert store.status(outcomes[0]["run_id"]) == "complete"
    # Half of each batch on each worker, the gradients summed: the steps of one process.
    alone = train(tiny_masked_config(), data, RunStore(tmp_path / "alone"))
    for ours, reference in zip(store.load(alone.run_id).history, alone.history, strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert ours[key] == pytest.approx(reference[key], abs=1e-5)
