"""The run store: atomic writes, statuses, listings of damaged stores, locks and run id checks."""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
import threading
import zipfile
from pathlib import Path

import filelock
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.config import preset
from rnnkit.run_schema import CHECKPOINT_FILE, SCHEMA, JsonList, JsonObject
from rnnkit.runs import Run, RunError, RunStore, RunSummary, is_run_id

FINGERPRINT = "ab" * 32  # the data the runs below were "trained" on


def seed_config(seed: int):
    return preset("seed").with_overrides({"training.seed": seed})


# Three configurations and their run ids on that data (a run's folder is named by its id).
CONFIGS = {seed_config(seed).run_id(FINGERPRINT): seed_config(seed) for seed in (1, 2, 3)}
RUN_ID, OTHER_ID, THIRD_ID = CONFIGS
CONFIG = CONFIGS[RUN_ID].to_dict()
HISTORY = [
    {"epoch": 1, "loss": 0.6, "accuracy": 0.70, "val_loss": 0.5, "val_accuracy": 0.80},
    {"epoch": 2, "loss": 0.4, "accuracy": 0.85, "val_loss": 0.4, "val_accuracy": 0.86},
    {"epoch": 3, "loss": 0.3, "accuracy": 0.90, "val_loss": 0.45, "val_accuracy": 0.84},
]
METRICS = {"test_loss": 0.35, "test_accuracy": 0.85}
PREDICTIONS = np.array([0.1, 0.9, 0.6, 0.3], dtype=np.float32)
SUMMARY = {
    "best_val_accuracy": 0.86,
    "best_epoch": 2,
    "test_accuracy": 0.85,
    "epochs_done": 3,
    "seconds": 12.5,
    "test_reviews": len(PREDICTIONS),
    "data_fingerprint": FINGERPRINT,
}


def config_of(run_id: str) -> dict:
    return CONFIGS[run_id].to_dict()


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs")


def write_placeholder_model(path: Path) -> None:
    """A zip archive standing in for model.keras (a .keras file is a zip)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")


def write_results(store: RunStore, run_id: str) -> None:
    """Every file a complete run holds, but not its marker."""
    store.create(run_id, config_of(run_id))
    store.write_json(run_id, "history.json", HISTORY)
    store.write_json(run_id, "metrics.json", METRICS)
    store.write_array(run_id, "predictions.npy", PREDICTIONS)
    store.write_json(run_id, "timings.json", {"epoch_seconds": [4.0, 4.5, 4.0]})
    store.write_json(run_id, "versions.json", {"keras": "3.15.1"})
    write_placeholder_model(store.model_path(run_id))


def write_complete_run(store: RunStore, run_id: str, **summary) -> None:
    write_results(store, run_id)
    store.mark_complete(run_id, {**SUMMARY, **summary})


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# --- roots and run ids ------------------------------------------------------------------------


def test_default_root_comes_from_the_runs_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert RunStore().root == tmp_path / "elsewhere"


def test_default_root_falls_back_to_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("RNNKIT_RUNS_DIR", raising=False)
    assert RunStore().root == tmp_path / "cache" / "runs"  # conftest sets RNNKIT_CACHE_DIR


def test_run_ids_are_sixteen_lowercase_hex_characters():
    assert is_run_id(RUN_ID)
    for text in ("../etc", "ABC", "", "0123456789abcdef0", "0123456789ABCDEF", "0123456789abcdeg"):
        assert not is_run_id(text), text
    assert not is_run_id(None)
    assert not is_run_id(RUN_ID + "\n")


INVALID_IDS = ["../etc", "ABC", "", "0123456789abcdef0", "../0123456789abcd", "a/b", None]
PUBLIC_METHODS = {
    "folder": lambda store, run_id: store.folder(run_id),
    "create": lambda store, run_id: store.create(run_id, CONFIG),
    "lock": lambda store, run_id: store.lock(run_id),
    "write_json": lambda store, run_id: store.write_json(run_id, "metrics.json", {}),
    "read_json": lambda store, run_id: store.read_json(run_id, "metrics.json"),
    "write_array": lambda store, run_id: store.write_array(run_id, "predictions.npy", PREDICTIONS),
    "read_array": lambda store, run_id: store.read_array(run_id, "predictions.npy"),
    "model_path": lambda store, run_id: store.model_path(run_id),
    "backup_dir": lambda store, run_id: store.backup_dir(run_id),
    "mark_complete": lambda store, run_id: store.mark_complete(run_id, SUMMARY),
    "mark_failed": lambda store, run_id: store.mark_failed(run_id, "boom"),
    "status": lambda store, run_id: store.status(run_id),
    "load": lambda store, run_id: store.load(run_id),
    "delete": lambda store, run_id: store.delete(run_id),
    "discard_results": lambda store, run_id: store.discard_results(run_id),
    "history_epochs": lambda store, run_id: store.history_epochs(run_id),
}


@pytest.mark.parametrize("method", PUBLIC_METHODS)
@pytest.mark.parametrize("run_id", INVALID_IDS)
def test_every_method_rejects_invalid_run_ids(store, tmp_path, method, run_id):
    (tmp_path / "etc").mkdir()
    with pytest.raises(ValueError, match="not a valid run id"):
        PUBLIC_METHODS[method](store, run_id)
    # Nothing was created in the store nor removed outside it.
    assert (tmp_path / "etc").is_dir()
    assert not store.root.exists()


@pytest.mark.parametrize("name", ["../config.json", "a/b.json", ".hidden", "", "/etc/passwd"])
def test_file_names_must_be_plain(store, name):
    store.create(RUN_ID, CONFIG)
    with pytest.raises(ValueError, match="not a valid run file name"):
        store.write_json(RUN_ID, name, {})
    with pytest.raises(ValueError, match="not a valid run file name"):
        store.read_json(RUN_ID, name)


def test_folder_model_path_and_backup_dir_create_nothing(store):
    assert store.folder(RUN_ID) == store.root / RUN_ID
    assert store.model_path(RUN_ID) == store.root / RUN_ID / "model.keras"
    assert store.backup_dir(RUN_ID) == store.root / RUN_ID / "backup"
    assert not store.root.exists()


# --- atomic writes ----------------------------------------------------------------------------


def test_writes_leave_no_temporary_files(store):
    store.create(RUN_ID, CONFIG)
    store.write_json(RUN_ID, "history.json", HISTORY[:1])
    store.write_json(RUN_ID, "history.json", HISTORY)
    store.write_array(RUN_ID, "predictions.npy", PREDICTIONS)
    assert sorted(path.name for path in store.folder(RUN_ID).iterdir()) == [
        "config.json",
        "history.json",
        "predictions.npy",
    ]
    assert store.read_json(RUN_ID, "history.json") == HISTORY
    assert store.read_json(RUN_ID, "config.json") == CONFIG
    saved = store.read_array(RUN_ID, "predictions.npy")
    assert saved.dtype == np.float32
    np.testing.assert_array_equal(saved, PREDICTIONS)


def test_a_crash_mid_write_keeps_the_previous_file(store, monkeypatch):
    store.create(RUN_ID, CONFIG)
    store.write_json(RUN_ID, "history.json", HISTORY[:1])
    store.write_array(RUN_ID, "predictions.npy", PREDICTIONS)

    def crash(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(RunError, match=f"Run {RUN_ID} could not be saved in .*: disk full"):
        store.write_json(RUN_ID, "history.json", HISTORY)
    with pytest.raises(RunError, match="disk full"):
        store.write_array(RUN_ID, "predictions.npy", np.zeros(7, dtype=np.float32))
    monkeypatch.undo()

    assert store.history_epochs(RUN_ID) == HISTORY[:1]
    np.testing.assert_array_equal(store.read_array(RUN_ID, "predictions.npy"), PREDICTIONS)
    assert sorted(path.name for path in store.folder(RUN_ID).iterdir()) == [
        "config.json",
        "history.json",
        "predictions.npy",
    ]


def test_unwritable_data_keeps_the_previous_file(store):
    store.create(RUN_ID, CONFIG)
    store.write_json(RUN_ID, "metrics.json", {"accuracy": 0.5})
    with pytest.raises(TypeError):
        store.write_json(RUN_ID, "metrics.json", {"accuracy": object()})
    with pytest.raises(ValueError, match="Python objects"):
        store.write_array(RUN_ID, "predictions.npy", np.array([object()]))
    assert store.read_json(RUN_ID, "metrics.json") == {"accuracy": 0.5}
    assert len(list(store.folder(RUN_ID).iterdir())) == 2


def test_numpy_values_are_written_as_json(store):
    store.create(RUN_ID, CONFIG)
    store.write_json(RUN_ID, "metrics.json", {"accuracy": np.float32(0.5), "counts": np.arange(3)})
    assert store.read_json(RUN_ID, "metrics.json") == {"accuracy": 0.5, "counts": [0, 1, 2]}


def test_writing_to_a_run_without_a_folder_fails(store):
    with pytest.raises(RunError, match="create"):
        store.write_json(RUN_ID, "history.json", HISTORY)
    assert not store.folder(RUN_ID).exists()


# --- statuses ---------------------------------------------------------------------------------


def test_status_goes_from_missing_to_incomplete_to_complete(store):
    assert store.status(RUN_ID) == "missing"
    store.create(RUN_ID, CONFIG)
    assert store.status(RUN_ID) == "incomplete"
    write_results(store, RUN_ID)
    assert store.status(RUN_ID) == "incomplete"  # every result, but no marker yet
    store.backup_dir(RUN_ID).mkdir()
    store.mark_complete(RUN_ID, SUMMARY)
    assert store.status(RUN_ID) == "complete"
    assert not store.backup_dir(RUN_ID).exists()  # a complete run never resumes


def test_a_failed_run_is_failed_until_it_completes(store):
    store.create(RUN_ID, CONFIG)
    store.mark_failed(RUN_ID, "ResourceExhaustedError: out of memory")
    assert store.status(RUN_ID) == "failed"
    failure = store.read_json(RUN_ID, "failed.json")
    assert failure["error"] == "ResourceExhaustedError: out of memory"
    assert failure["when"]
    write_results(store, RUN_ID)  # create() again: the run is trained again
    assert store.status(RUN_ID) == "incomplete"
    store.mark_failed(RUN_ID, "again")
    store.mark_complete(RUN_ID, SUMMARY)
    assert store.status(RUN_ID) == "complete"
    assert not (store.folder(RUN_ID) / "failed.json").exists()


def test_creating_a_failed_run_again_keeps_what_resumes_it(store):
    store.create(RUN_ID, CONFIG)
    store.write_json(RUN_ID, "history.json", HISTORY[:2])
    store.backup_dir(RUN_ID).mkdir()
    (store.backup_dir(RUN_ID) / "latest.weights.h5").write_bytes(b"weights")
    store.mark_failed(RUN_ID, "interrupted")
    store.create(RUN_ID, CONFIG)
    assert store.status(RUN_ID) == "incomplete"
    assert store.history_epochs(RUN_ID) == HISTORY[:2]
    assert (store.backup_dir(RUN_ID) / "latest.weights.h5").read_bytes() == b"weights"


def test_creating_again_leaves_an_unchanged_config_untouched(store):
    store.create(RUN_ID, CONFIG)
    config_path = store.folder(RUN_ID) / "config.json"
    os.utime(config_path, (1_000_000_000, 1_000_000_000))
    store.create(RUN_ID, dict(CONFIG))
    assert config_path.stat().st_mtime == 1_000_000_000  # still when training first started


def test_a_complete_run_is_never_created_again(store):
    write_complete_run(store, RUN_ID)
    with pytest.raises(RunError, match=f"{RUN_ID} is already complete"):
        store.create(RUN_ID, CONFIG)
    assert store.status(RUN_ID) == "complete"


DAMAGES = {
    "truncated complete.json": (lambda folder: truncate(folder / "complete.json"), "complete.json"),
    "truncated history.json": (lambda folder: truncate(folder / "history.json"), "history.json"),
    "missing model.keras": (lambda folder: (folder / "model.keras").unlink(), "model.keras"),
    "truncated model.keras": (lambda folder: truncate(folder / "model.keras"), "model.keras"),
    "truncated predictions": (
        lambda folder: truncate(folder / "predictions.npy"),
        "predictions.npy",
    ),
    "missing metrics.json": (lambda folder: (folder / "metrics.json").unlink(), "metrics.json"),
    "missing config.json": (lambda folder: (folder / "config.json").unlink(), "config.json"),
    "garbage config.json": (
        lambda folder: (folder / "config.json").write_bytes(b"\xff\x00garbage"),
        "config.json",
    ),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_complete_run_with_a_damaged_file_is_damaged(store, damage):
    write_complete_run(store, RUN_ID)
    damage_folder, file_named = DAMAGES[damage]
    damage_folder(store.folder(RUN_ID))
    assert store.status(RUN_ID) == "damaged"
    [summary] = store.list_runs()
    assert summary.status == "damaged"
    assert file_named in summary.error


def test_an_unfinished_run_without_config_is_damaged(store):
    store.folder(RUN_ID).mkdir(parents=True)  # a crash between mkdir and config.json
    assert store.status(RUN_ID) == "damaged"
    store.create(RUN_ID, CONFIG)  # training it again repairs it
    assert store.status(RUN_ID) == "incomplete"


def test_marking_complete_needs_every_result(store):
    write_results(store, RUN_ID)
    store.model_path(RUN_ID).unlink()
    with pytest.raises(RunError, match=r"model\.keras is missing"):
        store.mark_complete(RUN_ID, SUMMARY)
    assert store.status(RUN_ID) == "incomplete"
    assert not (store.folder(RUN_ID) / "complete.json").exists()


def test_the_summary_records_when_training_started(store):
    write_results(store, RUN_ID)
    os.utime(store.folder(RUN_ID) / "config.json", (1_700_000_000, 1_700_000_000))
    store.mark_complete(RUN_ID, SUMMARY)
    assert store.read_json(RUN_ID, "complete.json")["created"] == "2023-11-14T22:13:20+00:00"


# --- retraining ---------------------------------------------------------------------------------


def test_discarding_results_keeps_only_the_config(store):
    write_complete_run(store, RUN_ID)
    store.model_path(RUN_ID).unlink()
    store.backup_dir(RUN_ID).mkdir()
    assert store.status(RUN_ID) == "damaged"
    removed = store.discard_results(RUN_ID)
    assert removed == [
        "backup",
        "complete.json",
        "history.json",
        "metrics.json",
        "predictions.npy",
        "timings.json",
        "versions.json",
    ]
    assert [path.name for path in store.folder(RUN_ID).iterdir()] == ["config.json"]
    assert store.status(RUN_ID) == "incomplete"
    assert store.history_epochs(RUN_ID) == []
    assert store.discard_results(OTHER_ID) == []


def test_creating_a_damaged_run_starts_it_over(store):
    write_complete_run(store, RUN_ID)
    truncate(store.folder(RUN_ID) / "history.json")
    store.create(RUN_ID, CONFIG)
    assert store.status(RUN_ID) == "incomplete"
    assert store.history_epochs(RUN_ID) == []
    assert [path.name for path in store.folder(RUN_ID).iterdir()] == ["config.json"]


def test_history_epochs(store):
    assert store.history_epochs(RUN_ID) == []
    store.create(RUN_ID, CONFIG)
    assert store.history_epochs(RUN_ID) == []
    store.write_json(RUN_ID, "history.json", HISTORY[:2])
    assert store.history_epochs(RUN_ID) == HISTORY[:2]
    truncate(store.folder(RUN_ID) / "history.json")
    with pytest.raises(RunError, match=f"{RUN_ID}.*discard_results"):
        store.history_epochs(RUN_ID)


# --- listing ------------------------------------------------------------------------------------


def test_list_runs_of_an_empty_store(store):
    assert store.list_runs() == []


def test_list_runs_shows_every_run_newest_first_and_ignores_junk(store):
    write_complete_run(store, RUN_ID, created="2024-01-01T10:00:00+00:00")
    write_complete_run(store, OTHER_ID, created="2024-03-01T10:00:00+00:00")
    store.create(THIRD_ID, config_of(THIRD_ID))
    store.write_json(THIRD_ID, "history.json", HISTORY[:1])
    store.mark_failed(THIRD_ID, "Killed")
    os.utime(store.folder(THIRD_ID) / "config.json", (1_706_781_600, 1_706_781_600))  # 2024-02-01
    damaged_id = "dddddddddddddddd"
    store.folder(damaged_id).mkdir()
    (store.folder(damaged_id) / "config.json").write_text('{"units": ')
    os.utime(store.folder(damaged_id), (1_600_000_000, 1_600_000_000))  # 2020
    # Junk: none of it is a run.
    (store.root / "README.txt").write_text("not a run")
    (store.root / "notes").mkdir()
    (store.root / "notes" / "config.json").write_text("{}")
    (store.root / "0123456789ABCDEF").mkdir()
    store.lock(RUN_ID)  # makes root/.locks

    summaries = store.list_runs()
    assert [summary.run_id for summary in summaries] == [OTHER_ID, THIRD_ID, RUN_ID, damaged_id]
    assert all(isinstance(summary, RunSummary) for summary in summaries)
    newest, failed, oldest, damaged = summaries
    assert newest == RunSummary(
        run_id=OTHER_ID,
        status="complete",
        config=config_of(OTHER_ID),
        best_val_accuracy=0.86,
        best_epoch=2,
        test_accuracy=0.85,
        created="2024-03-01T10:00:00+00:00",
        seconds=12.5,
        epochs_done=3,
        error=None,
    )
    assert (failed.status, failed.error, failed.epochs_done) == ("failed", "Killed", 1)
    assert failed.created == "2024-02-01T10:00:00+00:00"
    assert failed.best_val_accuracy is None
    assert oldest.status == "complete"
    assert damaged.status == "damaged"
    assert damaged.config is None
    assert "config.json is unreadable" in damaged.error


def test_a_file_named_like_a_run_is_listed_as_damaged(store):
    store.root.mkdir()
    store.folder(RUN_ID).write_text("garbage")
    assert store.status(RUN_ID) == "damaged"
    [summary] = store.list_runs()
    assert (summary.run_id, summary.status, summary.error) == (RUN_ID, "damaged", "not a folder")
    assert store.delete(RUN_ID)
    assert store.list_runs() == []


# --- loading ------------------------------------------------------------------------------------


def test_load_reads_a_complete_run(store):
    write_complete_run(store, RUN_ID)
    run = store.load(RUN_ID)
    assert isinstance(run, Run)
    assert (run.run_id, run.folder) == (RUN_ID, store.folder(RUN_ID))
    assert run.config == CONFIG
    assert run.history == HISTORY
    assert run.metrics == METRICS
    assert run.predictions.dtype == np.float32
    np.testing.assert_array_equal(run.predictions, PREDICTIONS)
    assert run.timings == {"epoch_seconds": [4.0, 4.5, 4.0]}
    assert run.versions == {"keras": "3.15.1"}
    assert run.summary["best_val_accuracy"] == 0.86
    assert run.summary["created"]


def prepare_incomplete(store: RunStore) -> None:
    store.create(RUN_ID, CONFIG)
    store.write_json(RUN_ID, "history.json", HISTORY[:2])


def prepare_failed(store: RunStore) -> None:
    store.create(RUN_ID, CONFIG)
    store.mark_failed(RUN_ID, "NaN loss at epoch 2")


def prepare_damaged(store: RunStore) -> None:
    write_complete_run(store, RUN_ID)
    store.model_path(RUN_ID).unlink()


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda store: None, f"no run {RUN_ID}.*train its configuration"),
        (prepare_incomplete, f"{RUN_ID} is not finished \\(2 epoch.*train it again to resume"),
        (prepare_failed, f"{RUN_ID} failed: NaN loss at epoch 2.*Train it again"),
        (
            prepare_damaged,
            f"{RUN_ID}.*damaged \\(marked complete, but model.keras is missing\\).*"
            f"python -m rnnkit delete {RUN_ID}` or train it again",
        ),
    ],
    ids=["missing", "incomplete", "failed", "damaged"],
)
def test_load_explains_why_a_run_cannot_be_loaded(store, prepare, message):
    prepare(store)
    with pytest.raises(RunError, match=message):
        store.load(RUN_ID)


def test_run_model_loads_the_saved_keras_model(store):
    import keras

    write_results(store, RUN_ID)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.save(store.model_path(RUN_ID))
    store.mark_complete(RUN_ID, SUMMARY)
    loaded = store.load(RUN_ID).model()
    assert loaded.count_params() == 4  # 3 weights and a bias
    for saved, restored in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, restored)


# --- deleting and locking -----------------------------------------------------------------------


def test_delete_removes_the_run(store):
    write_complete_run(store, RUN_ID)
    write_complete_run(store, OTHER_ID)
    assert store.delete(RUN_ID) is True
    assert store.status(RUN_ID) == "missing"
    assert store.delete(RUN_ID) is False
    assert store.status(OTHER_ID) == "complete"
    assert sorted(path.name for path in store.root.iterdir()) == [OTHER_ID]  # no trash left


def test_a_lock_excludes_other_holders_and_survives_deletion(store):
    write_complete_run(store, RUN_ID)
    lock = store.lock(RUN_ID)
    lock_path = Path(lock.lock_file)
    assert lock_path.parent == store.root / ".locks"
    with lock:
        with pytest.raises(filelock.Timeout):
            filelock.FileLock(lock_path).acquire(timeout=0.1)
        errors = []

        def try_from_another_thread():
            try:
                store.lock(RUN_ID).acquire(timeout=0.1)
            except filelock.Timeout as error:
                errors.append(error)

        thread = threading.Thread(target=try_from_another_thread)
        thread.start()
        thread.join()
        assert len(errors) == 1
        assert store.delete(RUN_ID)
        with pytest.raises(filelock.Timeout):
            store.lock(RUN_ID).acquire(timeout=0.1)  # still held after the run is gone
    other = store.lock(RUN_ID)
    other.acquire(timeout=0.1)
    other.release()
    # Other ids are not held by this lock.
    with store.lock(RUN_ID), store.lock(OTHER_ID):
        pass


def test_the_store_json_files_are_readable_as_plain_json(store):
    write_complete_run(store, RUN_ID)
    complete = json.loads((store.folder(RUN_ID) / "complete.json").read_text(encoding="utf-8"))
    assert complete["best_epoch"] == 2


# --- every file against the schema: generated damage ---------------------------------------------

# Any JSON value: what a damaged or hand-edited file may hold where a value belongs.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)
# Every (file, key, what it must hold) of the schema's JSON objects.
SCHEMA_FIELDS = [
    (name, key, value)
    for name, spec in SCHEMA.items()
    for items in [spec.items if isinstance(spec, JsonList) else spec]
    if isinstance(items, JsonObject)
    for key, value in {**items.required, **items.optional}.items()
]


UNFINISHED_RUN_FILES = ("failed.json", CHECKPOINT_FILE)


def complete_run_files(store: RunStore, run_id: str = RUN_ID) -> Path:
    """A complete run, its files written by the store; returns its folder."""
    write_complete_run(store, run_id)
    return store.folder(run_id)


def rewrite_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def assert_damaged_everywhere(store: RunStore, file_named: str, run_id: str = RUN_ID) -> str:
    """The run is damaged, with a reason naming `file_named`, for status, summary, listings
    and load; returns the reason."""
    assert store.status(run_id) == "damaged"
    summary = store.summary(run_id)
    assert summary.status == "damaged" and file_named in summary.error, summary.error
    assert [(item.run_id, item.status) for item in store.list_runs()] == [(run_id, "damaged")]
    with pytest.raises(RunError, match=f"Run {run_id} in .* is damaged .*rnnkit delete {run_id}"):
        store.load(run_id)
    return summary.error


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_value_of_the_wrong_type_or_range_in_any_file_makes_the_run_damaged(data):
    # A complete run has no failed.json nor checkpoint: see the tests of those below.
    fields = [field for field in SCHEMA_FIELDS if field[0] not in UNFINISHED_RUN_FILES]
    name, key, expected = data.draw(st.sampled_from(fields), label="field")
    wrong = data.draw(JSON_VALUES.filter(lambda value: not expected.fits(value)), label="value")
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        run = complete_run_files(store)
        if name == "history.json":
            epoch = data.draw(st.integers(0, len(HISTORY) - 1), label="epoch")
            rewrite_json(run / name, lambda history: history[epoch].__setitem__(key, wrong))
        else:
            rewrite_json(run / name, lambda record: record.__setitem__(key, wrong))
        reason = assert_damaged_everywhere(store, name)
        assert key in reason


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_missing_key_or_a_file_of_another_shape_makes_the_run_damaged(data):
    names = SCHEMA.keys() - {"predictions.npy", *UNFINISHED_RUN_FILES}
    name = data.draw(st.sampled_from(sorted(names)))
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        run = complete_run_files(store)
        spec = SCHEMA[name]
        required = (spec.items if isinstance(spec, JsonList) else spec).required
        if required and data.draw(st.booleans(), label="drop a key"):
            key = data.draw(st.sampled_from(sorted(required)))
            if name == "history.json":
                rewrite_json(run / name, lambda history: history[-1].pop(key))
            else:
                rewrite_json(run / name, lambda record: record.pop(key))
        else:
            shapes = JSON_VALUES.filter(
                lambda value: not isinstance(value, list if name == "history.json" else dict)
            )
            (run / name).write_text(json.dumps(data.draw(shapes)))
        assert_damaged_everywhere(store, name)


@pytest.mark.parametrize(
    ("damage", "file_named"),
    [
        (lambda run: (run / "metrics.json").write_text("{}"), "metrics.json"),
        (lambda run: (run / "history.json").write_text("[]"), "history.json"),
        (
            lambda run: rewrite_json(run / "history.json", lambda history: history.reverse()),
            "history.json entry 1 is epoch 3, not 1",
        ),
        (
            lambda run: rewrite_json(run / "history.json", lambda history: history.pop(0)),
            "history.json entry 1 is epoch 2",
        ),
        (
            lambda run: rewrite_json(run / "history.json", lambda history: history.append({})),
            "history.json entry 4 has no 'epoch'",
        ),
        (
            lambda run: rewrite_json(
                run / "history.json", lambda history: history[1].__setitem__("epoch", 2.0)
            ),
            "history.json entry 2: epoch is 2.0, not a whole number of 1 or more",
        ),
        (
            lambda run: rewrite_json(
                run / "metrics.json", lambda metrics: metrics.__setitem__("test_accuracy", "0.85")
            ),
            "metrics.json: test_accuracy is '0.85', not a number from 0 to 1",
        ),
        (
            lambda run: rewrite_json(
                run / "complete.json", lambda summary: summary.__setitem__("epochs_done", 2)
            ),
            "complete.json says 2 epochs, history.json holds 3",
        ),
        (
            lambda run: rewrite_json(
                run / "complete.json", lambda summary: summary.__setitem__("best_epoch", 4)
            ),
            "best_epoch is 4, after the last epoch",
        ),
        (
            lambda run: rewrite_json(
                run / "complete.json", lambda summary: summary.__setitem__("test_accuracy", 0.5)
            ),
            "complete.json's test_accuracy 0.5 is not metrics.json's 0.85",
        ),
        (
            lambda run: rewrite_json(
                run / "complete.json", lambda summary: summary.__setitem__("created", "yesterday")
            ),
            "complete.json: created is 'yesterday', not an ISO 8601 time",
        ),
        (
            lambda run: (run / "config.json").write_text(json.dumps(config_of(OTHER_ID))),
            f"config.json is the configuration of run {OTHER_ID}",
        ),
        (
            lambda run: (run / "config.json").write_text('{"model": {"cell": "transformer"}}'),
            "config.json is not a configuration (model.cell must be one of",
        ),
        (lambda run: (run / "versions.json").write_text('{"keras": 3}'), "versions.json"),
        (lambda run: (run / "timings.json").write_text("[]"), "timings.json"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_files_that_disagree_or_break_a_rule_make_the_run_damaged(store, damage, file_named):
    damage(complete_run_files(store))
    assert_damaged_everywhere(store, file_named)


@pytest.mark.parametrize(
    ("predictions", "problem"),
    [
        (np.array([0.1, 0.9, 0.6], np.float32), "holds 3 values, not one per test review (4)"),
        (np.array([0.1, 0.9, 0.6, 0.3, 0.5], np.float32), "holds 5 values"),
        (np.array([0.1, 0.9, 0.6, 0.3], np.float64), "holds float64 of shape (4,)"),
        (np.array([[0.1, 0.9], [0.6, 0.3]], np.float32), "holds float32 of shape (2, 2)"),
        (np.array([0.1, 1.5, 0.6, 0.3], np.float32), "holds np.float32(1.5), not a probability"),
        (np.array([0.1, np.nan, 0.6, 0.3], np.float32), "holds np.float32(nan)"),
        (np.array([1, 0, 1, 0], np.int64), "holds int64"),
    ],
)
def test_predictions_must_be_one_probability_per_test_review(store, predictions, problem):
    run = complete_run_files(store)
    np.save(run / "predictions.npy", predictions, allow_pickle=False)
    assert problem in assert_damaged_everywhere(store, "predictions.npy")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.floats(0, 1),
    st.floats(0, 1e6),
    st.lists(st.floats(0, 1e4), max_size=4),
    st.dictionaries(st.text(max_size=6), st.floats(-1e9, 1e9), max_size=3),
)
def test_values_within_the_schema_keep_the_run_complete(accuracy, loss, seconds, extra):
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        store.create(RUN_ID, CONFIG)
        history = [{**record, **extra, **record} for record in HISTORY]
        store.write_json(RUN_ID, "history.json", history)
        store.write_json(
            RUN_ID, "metrics.json", {**extra, "test_accuracy": accuracy, "test_loss": loss}
        )
        store.write_array(RUN_ID, "predictions.npy", PREDICTIONS)
        store.write_json(RUN_ID, "timings.json", {"epoch_seconds": seconds, "fused_rnn": False})
        write_placeholder_model(store.model_path(RUN_ID))
        store.mark_complete(RUN_ID, {**SUMMARY, "test_accuracy": accuracy})
        assert store.status(RUN_ID) == "complete"
        assert store.load(RUN_ID).metrics["test_accuracy"] == accuracy


def test_marking_complete_checks_the_summary_against_the_files(store):
    write_results(store, RUN_ID)
    for change, problem in [
        ({"test_reviews": 5}, "holds 4 values, not one per test review (5)"),
        ({"data_fingerprint": "cd" * 32}, "config.json is the configuration of run"),
        ({"epochs_done": 4}, "complete.json says 4 epochs"),
        ({"test_accuracy": "high"}, "test_accuracy is 'high'"),
    ]:
        with pytest.raises(
            RunError, match=f"{RUN_ID} cannot be marked complete: .*{re.escape(problem)}"
        ):
            store.mark_complete(RUN_ID, {**SUMMARY, **change})
        assert store.status(RUN_ID) == "incomplete"
    summary = {key: value for key, value in SUMMARY.items() if key != "test_reviews"}
    with pytest.raises(RunError, match=r"complete\.json has no 'test_reviews'"):
        store.mark_complete(RUN_ID, summary)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES)
def test_an_unfinished_runs_history_is_checked_before_it_resumes(history):
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        store.create(RUN_ID, CONFIG)
        (store.folder(RUN_ID) / "history.json").write_text(json.dumps(history))
        valid = isinstance(history, list) and not history  # the only valid value here: []
        if valid:
            assert store.status(RUN_ID) == "incomplete"
            assert store.history_epochs(RUN_ID) == []
        else:
            assert store.status(RUN_ID) == "damaged"
            assert "history.json" in store.summary(RUN_ID).error
            with pytest.raises(RunError, match=f"history of run {RUN_ID} .* is damaged"):
                store.history_epochs(RUN_ID)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES)
def test_a_damaged_failure_record_leaves_the_run_failed_and_resumable(record):
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        store.create(RUN_ID, CONFIG)
        store.write_json(RUN_ID, "history.json", HISTORY[:1])
        (store.folder(RUN_ID) / "failed.json").write_text(json.dumps(record))
        summary = store.summary(RUN_ID)
        assert (summary.status, summary.epochs_done) == ("failed", 1)
        if not (isinstance(record, dict) and isinstance(record.get("error"), str)):
            assert summary.error.startswith("unknown error (failed.json")


def test_creating_a_run_needs_a_configuration(store):
    with pytest.raises(ValueError, match=f"Run {RUN_ID} cannot be created: config.json is not"):
        store.create(RUN_ID, {"units": 64})
    assert not store.folder(RUN_ID).exists()


# --- a store that cannot be written --------------------------------------------------------------

WRITE_ERRORS = {
    errno.EACCES: "make .* writable, or point RNNKIT_RUNS_DIR \\(or --runs-dir\\) at another",
    errno.EROFS: "make .* writable",
    errno.ENOSPC: "free disk space where .* is and train again",
    errno.EDQUOT: "free disk space",
    errno.ENOTDIR: "a file stands where a folder belongs",
    errno.EIO: "check the disk, or point RNNKIT_RUNS_DIR",
}
# What the store may be doing when the disk says no: each on a run with every file written.
STORE_WRITES = {
    "create": lambda store: store.create(OTHER_ID, config_of(OTHER_ID)),
    "write_json": lambda store: store.write_json(RUN_ID, "history.json", HISTORY[:1]),
    "write_array": lambda store: store.write_array(RUN_ID, "predictions.npy", PREDICTIONS),
    "mark_complete": lambda store: store.mark_complete(RUN_ID, SUMMARY),
    "mark_failed": lambda store: store.mark_failed(RUN_ID, "boom"),
    "write_checkpoint": lambda store: store.write_checkpoint(
        RUN_ID, 1, lambda path: path.write_bytes(b"weights")
    ),
    "discard_results": lambda store: store.discard_results(RUN_ID),
    "delete": lambda store: store.delete(RUN_ID),
    "lock": lambda store: store.lock(RUN_ID).acquire(timeout=1),
}
# The calls a write goes through; each fails in turn.
FAILING_CALLS = [
    (os, "replace"),
    (os, "open"),
    (os, "unlink"),
    (os, "mkdir"),
    (os, "rename"),
    (os, "rmdir"),
    (os, "fsync"),
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(STORE_WRITES)),
    st.sampled_from(FAILING_CALLS),
    st.sampled_from(sorted(WRITE_ERRORS)),
)
def test_a_write_the_disk_refuses_is_a_run_error_naming_the_folder_and_the_fix(
    operation, failing, error_number
):
    module, name = failing
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(Path(folder) / "runs")
        write_results(store, RUN_ID)
        before = {path.name: path.read_bytes() for path in store.folder(RUN_ID).iterdir()}
        assert "history.json" in before  # rewritten by one of the writes, whole
        original = getattr(module, name)

        def refuse(*arguments, **keywords):
            path = arguments[0] if isinstance(arguments[0], str | os.PathLike) else None
            raise OSError(error_number, os.strerror(error_number), path)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(module, name, refuse)
            try:
                STORE_WRITES[operation](store)
            except RunError as error:
                message = str(error)
                assert str(store.root) in message, message
                assert os.strerror(error_number) in message, message
                assert re.search(WRITE_ERRORS[error_number], message), message
            except OSError as error:  # what must not happen
                pytest.fail(f"{operation} let {error!r} through ({module.__name__}.{name})")
        assert getattr(module, name) is original
        # Nothing half written: each file is as it was or whole, no temporary file is left
        # (unless removing files is what failed).
        folder = store.folder(RUN_ID)
        files = [path for path in folder.rglob("*") if path.is_file()] if folder.is_dir() else []
        if name != "unlink":
            assert not [path for path in files if path.name.startswith(".")], files
        for path in files:
            if path.name in before and path.name != "history.json":
                assert path.read_bytes() == before[path.name], path.name
            elif path.suffix == ".json" and not path.name.startswith("."):
                json.loads(path.read_text())  # whole


def test_a_store_whose_root_is_a_file_says_so(tmp_path):
    (tmp_path / "runs").write_text("not a folder")
    store = RunStore(tmp_path / "runs")
    with pytest.raises(RunError, match=r"a file stands where a folder belongs: move .*runs away"):
        store.lock(RUN_ID)
    with pytest.raises(RunError, match="a file stands where a folder belongs"):
        store.create(RUN_ID, CONFIG)
    with pytest.raises(RunError, match=r"run store .*runs cannot be read \(Not a directory\)"):
        store.list_runs()
    assert store.status(RUN_ID) == "missing"


# --- the checkpoint -------------------------------------------------------------------------------


def test_a_checkpoint_counts_once_its_metadata_names_it(store):
    store.create(RUN_ID, CONFIG)
    assert store.checkpoint(RUN_ID) is None
    store.write_checkpoint(RUN_ID, 1, lambda path: path.write_bytes(b"epoch one"))
    epoch, weights = store.checkpoint(RUN_ID)
    assert (epoch, weights.read_bytes()) == (1, b"epoch one")

    def killed_while_saving(path: Path) -> None:
        path.write_bytes(b"epoch tw")  # half of it
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.write_checkpoint(RUN_ID, 2, killed_while_saving)
    epoch, weights = store.checkpoint(RUN_ID)
    assert (epoch, weights.read_bytes()) == (1, b"epoch one")  # the previous one, whole
    store.write_checkpoint(RUN_ID, 2, lambda path: path.write_bytes(b"epoch two"))
    assert sorted(path.name for path in store.backup_dir(RUN_ID).iterdir()) == [
        "epoch-2.weights.h5",
        "training_metadata.json",
    ]


@pytest.mark.parametrize(
    "metadata",
    ['{"epoch": 0, "weights": "epoch-0.weights.h5"}', '{"epoch": 1, "weights": "../x"}', "{", "[]"],
)
def test_a_checkpoint_that_is_not_one_is_not_resumed(store, metadata):
    store.create(RUN_ID, CONFIG)
    store.write_checkpoint(RUN_ID, 1, lambda path: path.write_bytes(b"weights"))
    (store.backup_dir(RUN_ID) / "training_metadata.json").write_text(metadata)
    assert store.checkpoint(RUN_ID) is None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_checkpoint_with_a_wrong_value_is_not_resumed(data):
    spec = SCHEMA[CHECKPOINT_FILE]
    key, expected = data.draw(st.sampled_from(sorted({**spec.required, **spec.optional}.items())))
    wrong = data.draw(JSON_VALUES.filter(lambda value: not expected.fits(value)))
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        store.create(RUN_ID, CONFIG)
        store.write_checkpoint(RUN_ID, 2, lambda path: path.write_bytes(b"weights"))
        rewrite_json(store.folder(RUN_ID) / CHECKPOINT_FILE, lambda meta: meta.update({key: wrong}))
        assert store.checkpoint(RUN_ID) is None


def test_a_reason_quotes_only_plain_values(store):
    run = complete_run_files(store)
    link = "[click](http://example.org)"
    rewrite_json(run / "metrics.json", lambda metrics: metrics.update(test_accuracy=link))
    reason = store.summary(RUN_ID).error
    assert f"test_accuracy is text of {len(link)} characters, not a number from 0 to 1" in reason
    assert "http" not in reason
    rewrite_json(run / "metrics.json", lambda metrics: metrics.update(test_accuracy=[1] * 10**5))
    assert "test_accuracy is a list of 100000 items" in store.summary(RUN_ID).error


def test_a_run_completed_before_its_test_count_was_recorded_stays_complete(store):
    # complete.json without test_reviews and data_fingerprint, as runs were completed before
    # rnnkit recorded them: complete, its predictions' length and run id unchecked.
    write_complete_run(store, RUN_ID)
    path = store.folder(RUN_ID) / "complete.json"
    summary = json.loads(path.read_text())
    for key in ("test_reviews", "data_fingerprint"):
        del summary[key]
    path.write_text(json.dumps(summary))
    assert store.status(RUN_ID) == "complete"
    assert len(store.load(RUN_ID).predictions) == len(PREDICTIONS)


# --- derived files --------------------------------------------------------------------------------


def test_derived_files_hold_json_or_arrays_in_the_runs_derived_folder(store):
    write_complete_run(store, RUN_ID)
    profile = {"format": 1, "curve": np.array([1.0, 0.5], np.float32)}
    path = store.write_derived(RUN_ID, "profile.json", profile)
    assert path == store.folder(RUN_ID) / "derived" / "profile.json"
    assert store.read_derived(RUN_ID, "profile.json") == {"format": 1, "curve": [1.0, 0.5]}
    arrays = {"values": np.arange(6, dtype=np.float32).reshape(2, 3), "names": np.array(["a"])}
    store.write_derived(RUN_ID, "units.npz", arrays)
    read = store.read_derived(RUN_ID, "units.npz")
    assert sorted(read) == ["names", "values"]
    np.testing.assert_array_equal(read["values"], arrays["values"])
    assert read["names"].tolist() == ["a"]
    assert store.status(RUN_ID) == "complete"  # derived files are no part of the run's check
    assert not [p for p in (store.folder(RUN_ID) / "derived").iterdir() if "partial" in p.name]


@pytest.mark.parametrize("name", ["../config.json", "a/b.json", ".hidden.json", "x.npy", "x"])
def test_derived_file_names_are_plain_json_or_npz_names(store, name):
    write_complete_run(store, RUN_ID)
    with pytest.raises(ValueError):
        store.write_derived(RUN_ID, name, {})
    with pytest.raises(ValueError):
        store.read_derived(RUN_ID, name)


def test_derived_arrays_never_hold_pickles(store):
    write_complete_run(store, RUN_ID)
    with pytest.raises(ValueError, match="Python objects"):
        store.write_derived(RUN_ID, "units.npz", {"values": np.array([{}], dtype=object)})
    folder = store.folder(RUN_ID) / "derived"
    folder.mkdir(exist_ok=True)
    np.savez(folder / "units.npz", values=np.array([{"a": 1}], dtype=object))  # a pickle
    with pytest.raises(ValueError, match=r"not a whole \.npz file"):
        store.read_derived(RUN_ID, "units.npz")


@pytest.mark.parametrize(
    "content", [b"", b"not a zip", b"PK\x03\x04 truncated", b"\x93NUMPY", b'{"a": 1}']
)
def test_a_damaged_derived_array_file_reads_as_a_value_error(store, content):
    write_complete_run(store, RUN_ID)
    store.write_derived(RUN_ID, "units.npz", {"values": np.zeros(3)})
    path = store.folder(RUN_ID) / "derived" / "units.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError):
        store.read_derived(RUN_ID, "units.npz")
    with pytest.raises(FileNotFoundError):
        store.read_derived(RUN_ID, "other.npz")


def test_a_half_written_derived_array_file_reads_as_a_value_error(store):
    write_complete_run(store, RUN_ID)
    store.write_derived(RUN_ID, "units.npz", {"values": np.arange(1000.0)})
    truncate(store.folder(RUN_ID) / "derived" / "units.npz")
    with pytest.raises(ValueError, match=r"not a whole \.npz file"):
        store.read_derived(RUN_ID, "units.npz")


def test_writing_a_derived_file_never_brings_a_deleted_run_back(store):
    write_complete_run(store, RUN_ID)
    store.delete(RUN_ID)
    with pytest.raises(RunError, match="has no folder"):
        store.write_derived(RUN_ID, "profile.json", {})
    assert not store.folder(RUN_ID).exists()


def test_discarding_a_runs_results_discards_what_was_derived_from_them(store):
    write_complete_run(store, RUN_ID)
    store.write_derived(RUN_ID, "profile.json", {})
    assert "derived" in store.discard_results(RUN_ID)
    assert not (store.folder(RUN_ID) / "derived").exists()
