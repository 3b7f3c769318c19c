"""Faults: the server killed in the middle of a training, and damaged files in the run store and
the data cache.

A killed server leaves its run resumable: after a restart the Train page lists it as stopped part
way, and resuming it goes on from its last saved epoch; completed runs are left byte for byte as
they were. A damaged run is named, with what is damaged and the fix, on the pages that list runs;
every page keeps working, the other runs stay usable, and nothing saved is removed by looking.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rnnkit import RunStore, TrainConfig, load_imdb, train
from rnnkit.runs import RunError
from rnnkit.settings import get_settings
from rnnkit.sources import DataWarning
from rnnkit.ui.loading import clear_loaded_data
from rnnkit.ui.untrusted import escape_markdown
from tests.helpers import (
    TinyRuns,
    app_on_a_copy,
    chromium,
    exceptions,
    main_text,
    metric_value,
    metrics,
    new_tab,
    open_in_browser,
    open_page,
    screenshot,
    settle,
    shown,
    shown_texts,
    start_server,
    texts,
    tiny_masked_config,
    tiny_reviews,
    train_tiny_runs,
    write_archive,
)

PAGES = (
    "views/home.py",
    "views/vocabulary.py",
    "views/reviews.py",
    "views/lengths.py",
    "views/train.py",
    "views/curves.py",
    "views/inside.py",
    "views/predictions.py",
)


def file_hashes(folder: Path) -> dict[str, str]:
    """Every file under `folder` (relative path) with the SHA-256 of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# --- the server killed during a training --------------------------------------------------------

# The run to interrupt: tiny, but with epochs of 40 batches (160 training reviews in batches of
# 4), so the server is killed inside a later epoch, not after the last.
EPOCHS = 4
INTERRUPTED_FIELDS = {
    "num words": "100",
    "max length": "16",
    "rnn units": "8",
    "embedding dim": "8",
    "dense units": "8",
    "batch size": "4",
    "epochs": str(EPOCHS),
}


def saved_epochs(folder: Path) -> int:
    """Epochs both in `history.json` and in the Keras backup, 0 while either is missing or is
    being written: the moment to kill the server is when they agree."""
    try:
        history = json.loads((folder / "history.json").read_text())
        backup = json.loads((folder / "backup" / "training_metadata.json").read_text())
    except (OSError, ValueError):
        return 0
    return len(history) if backup.get("epoch") == len(history) else 0


@pytest.mark.browser
def test_a_killed_server_leaves_its_run_resumable_and_completed_runs_intact(tmp_path, request):
    corpus = write_archive(tmp_path / "corpus.tar.gz", tiny_reviews(train_per_label=100))
    store = RunStore(tmp_path / "runs")
    environment = {
        "RNNKIT_DATA": str(corpus),
        "RNNKIT_CACHE_DIR": str(tmp_path / "server-cache"),
        "RNNKIT_RUNS_DIR": str(store.root),
    }
    data = load_imdb(num_words=100, path=corpus)
    completed = train(tiny_masked_config(**{"training.epochs": "1"}), data, store)
    completed_files = file_hashes(completed.folder)

    with chromium() as browser, new_tab(browser, request) as page:
        server = start_server(environment)
        try:
            open_in_browser(page, f"{server.url}/train")
            for label, value in INTERRUPTED_FIELDS.items():
                field = page.get_by_label(label, exact=True)
                field.fill(value)
                field.press("Enter")
                settle(page)
            (run_id,) = re.findall(r"Run id ([0-9a-f]{16})", main_text(page))
            page.get_by_role("button", name="Train", exact=True).click()
            folder = store.folder(run_id)
            deadline = time.monotonic() + 240
            while not saved_epochs(folder):
                assert store.status(run_id) != "complete", "trained to the end before the kill"
                if time.monotonic() > deadline:
                    screenshot(page, request.node.name)
                    pytest.fail(f"no epoch was saved within 240 s: {store.summary(run_id)}")
                time.sleep(0.05)
        finally:
            server.kill()  # SIGKILL, the whole process group: nothing cleans up

        # On disk: resumable from its saved epochs, its lock free, the other run untouched.
        summary = store.summary(run_id)
        assert summary.status == "incomplete"
        stopped_at = summary.epochs_done
        assert 1 <= stopped_at < EPOCHS
        history_at_kill = store.history_epochs(run_id)
        with store.lock(run_id).acquire(timeout=0):
            pass
        assert file_hashes(completed.folder) == completed_files

        server = start_server(environment)
        try:
            open_in_browser(page, f"{server.url}/train")
            shown = main_text(page)
            assert "Stopped part way (1)" in shown
            assert f"{run_id}" in shown
            assert f"incomplete, {stopped_at} of {EPOCHS} epochs trained" in shown
            page.get_by_role("button", name="Continue").click()
            settle(page)
            shown = main_text(page)
            assert f"Run id {run_id}" in shown
            assert (
                f"{stopped_at} of {EPOCHS} epochs are trained; training resumes from epoch "
                f"{stopped_at + 1}" in shown
            )
            page.get_by_role("button", name="Resume training").click()
            page.get_by_text("trained already").wait_for(timeout=240_000)
            settle(page)
            assert exceptions(page) == 0
            best_epoch = metric_value(page, "Best epoch")
            assert best_epoch in {str(epoch) for epoch in range(1, EPOCHS + 1)}
        finally:
            server.stop()

    assert store.status(run_id) == "complete"
    history = store.history_epochs(run_id)
    assert [epoch["epoch"] for epoch in history] == list(range(1, EPOCHS + 1))
    # The epochs before the kill are the very records written then (their timings too): the
    # run went on from them, it did not start over.
    assert history[:stopped_at] == history_at_kill
    assert store.load(run_id).summary["epochs_done"] == EPOCHS
    assert file_hashes(completed.folder) == completed_files
    assert [summary.status for summary in store.list_runs()] == ["complete", "complete"]


# --- damaged files in the run store -------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> TinyRuns:
    return train_tiny_runs(tmp_path_factory.mktemp("faults"))


@pytest.fixture
def runs(trained, tmp_path, monkeypatch) -> TinyRuns:
    """The app on the tiny corpus and a copy of the two runs, with a fresh job board."""
    with app_on_a_copy(trained, tmp_path / "runs", monkeypatch) as copy:
        yield copy


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def junk_archive(path: Path) -> None:
    """A zip archive that is no Keras model: no config.json in it."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "not a model")


# damage -> (file, what it does to the file, what the warning says is wrong)
DAMAGES = {
    "garbage history": (
        "history.json",
        lambda path: path.write_bytes(b"\xff\x00junk"),
        "unreadable",
    ),
    "truncated history": ("history.json", truncate, "unreadable"),
    "history of no epochs": (
        "history.json",
        lambda path: path.write_text("[1, 2, 3]"),
        "history.json entry 1 is 1, not a JSON object",
    ),
    "garbage config": ("config.json", lambda path: path.write_bytes(b"\x00\x01junk"), "unreadable"),
    "truncated model": ("model.keras", truncate, "is not a whole Keras model file"),
    "junk model archive": ("model.keras", junk_archive, "is not a whole Keras model file"),
    "truncated predictions": ("predictions.npy", truncate, "unreadable"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_run_is_named_with_the_fix_and_every_page_keeps_working(runs, damage):
    name, spoil, problem = DAMAGES[damage]
    spoil(RunStore().folder(runs.run_id) / name)
    saved = file_hashes(runs.runs)
    for page in PAGES:
        app = open_page(page)  # asserts that no exception is shown
        assert app.title, page  # the page ran to its content
        if page in ("views/train.py", "views/curves.py", "views/inside.py", "views/predictions.py"):
            (warning,) = [shown(alert.value) for alert in app.warning if "damaged" in alert.value]
            assert f"{runs.run_id}: " in warning, page
            assert name in warning and problem in warning, page
            assert "python -m rnnkit delete <run id>" in warning, page
            assert runs.other_run_id not in warning, page
    # The other run is still listed and usable.
    curves = open_page("views/curves.py", curves_runs=[runs.other_run_id])
    table = curves.dataframe[0].value.set_index("run")
    assert table.loc[runs.other_run_id, "status"] == "complete"
    assert table.loc[runs.run_id, "status"] == "damaged"
    assert name in table.loc[runs.run_id, "problem"]
    predictions = open_page("views/predictions.py")
    (picker,) = [box for box in predictions.selectbox if box.key == "predict_run"]
    assert picker.value == runs.other_run_id and len(picker.options) == 1
    assert 0 <= float(metrics(predictions)["Probability of positive"]) <= 1
    # Looking changed and removed nothing: the damaged file stays for its owner to inspect.
    assert file_hashes(runs.runs) == saved


def rewrite_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def wrong_length_predictions(path: Path) -> None:
    np.save(path, np.load(path)[:-3], allow_pickle=False)


# Files that parse but do not hold what a run's files must (rnnkit.run_schema), as the issue
# found them: damage -> (file, what it does to the file, what the warning says is wrong).
SCHEMA_DAMAGES = {
    "history without epoch numbers": (
        "history.json",
        lambda path: rewrite_json(path, lambda history: [epoch.pop("epoch") for epoch in history]),
        "history.json entry 1 has no 'epoch'",
    ),
    "empty metrics": (
        "metrics.json",
        lambda path: path.write_text("{}"),
        "metrics.json has no 'test_accuracy'",
    ),
    "predictions of the wrong length": (
        "predictions.npy",
        wrong_length_predictions,
        "predictions.npy holds 17 values, not one per test review (20)",
    ),
    "text where numbers belong": (
        "complete.json",
        lambda path: rewrite_json(path, lambda summary: summary.update(best_epoch="2", seconds="")),
        "complete.json: best_epoch is '2', not a whole number of 1 or more or null",
    ),
    "text in the history": (
        "history.json",
        lambda path: rewrite_json(path, lambda history: history[0].update(val_accuracy="high")),
        "history.json entry 1: val_accuracy is 'high', not a number from 0 to 1",
    ),
}


@pytest.mark.parametrize("damage", SCHEMA_DAMAGES)
def test_a_run_with_wrong_values_is_damaged_on_the_curves_and_predictions_pages(runs, damage):
    name, spoil, problem = SCHEMA_DAMAGES[damage]
    spoil(RunStore().folder(runs.run_id) / name)
    saved = file_hashes(runs.runs)
    for page, query in [
        ("views/curves.py", {"curves_runs": [runs.run_id, runs.other_run_id]}),
        ("views/predictions.py", {"predict_run": runs.run_id}),
    ]:
        app = open_page(page, **query)  # asserts that no exception is shown
        (warning,) = [alert.value for alert in app.warning if "are damaged" in alert.value]
        # The reason as the page shows it: escaped, since a file's text could be anything.
        shown = escape_markdown(f"marked complete, but {problem}")
        assert f"`{runs.run_id}`: {shown}" in warning, page
        assert "python -m rnnkit delete <run id>" in warning, page
    # Predictions open the other run instead; its numbers are there.
    (picker,) = [box for box in app.selectbox if box.key == "predict_run"]
    assert picker.value == runs.other_run_id and len(picker.options) == 1
    assert 0 <= float(metrics(app)["Probability of positive"]) <= 1
    assert file_hashes(runs.runs) == saved


def test_a_model_keras_cannot_load_is_explained_and_the_other_run_still_works(runs):
    # A whole archive with a config.json, so the run lists as complete, but not a model.
    path = RunStore().model_path(runs.run_id)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{not json")
    with pytest.raises(RunError, match=runs.run_id):
        RunStore().load(runs.run_id).model()
    saved = file_hashes(runs.runs)
    app = open_page("views/predictions.py", predict_run=runs.run_id)
    (error,) = [shown(alert.value) for alert in app.error]
    assert f"The model of run {runs.run_id}" in error and "cannot be loaded" in error
    assert f"python -m rnnkit delete {runs.run_id}" in error
    app.selectbox(key="predict_run").set_value(runs.other_run_id).run()
    assert not app.exception, app.exception
    assert 0 <= float(metrics(app)["Probability of positive"]) <= 1
    assert file_hashes(runs.runs) == saved


def unfinished_run(runs: TinyRuns, seed: str) -> tuple[RunStore, TrainConfig, str]:
    """A run of the tiny config with training.seed `seed`, created in the store, not trained.

    Returns:
        (the store, the config, the run id).
    """
    config = tiny_masked_config(**{"training.seed": seed})
    run_id = config.run_id(load_imdb(num_words=100, path=runs.corpus).fingerprint)
    store = RunStore()
    store.create(run_id, config.to_dict())
    return store, config, run_id


def test_an_interrupted_run_with_a_damaged_history_says_it_starts_over(runs):
    store, _, run_id = unfinished_run(runs, "5")
    (store.folder(run_id) / "history.json").write_text('{"epoch": 1')
    assert store.status(run_id) == "damaged"  # resuming needs the history
    app = open_page("views/train.py")
    assert f"{run_id}: history.json is unreadable" in shown_texts(app)
    assert "Stopped part way" not in texts(app)


def test_stopped_runs_are_listed_on_the_train_page_to_continue(runs):
    store, config, run_id = unfinished_run(runs, "5")
    epoch = {"epoch": 1, "loss": 0.69, "accuracy": 0.5, "val_loss": 0.7, "val_accuracy": 0.45}
    store.write_json(run_id, "history.json", [epoch])
    _, failed_config, failed_id = unfinished_run(runs, "6")
    store.mark_failed(failed_id, "MemoryError: out of memory")
    app = open_page("views/train.py")
    shown = texts(app)
    assert "**Stopped part way** (2)" in shown
    assert f"`{run_id}` {config.summary()} — incomplete, 1 of 3 epochs trained" in shown
    assert f"`{failed_id}` {failed_config.summary()} — failed after 0 of 3 epochs: " in shown
    assert "MemoryError: out of memory" in shown
    app.button(key=f"resume_run_{run_id}").click().run()
    assert not app.exception, app.exception
    assert f"Run id `{run_id}`" in texts(app)
    assert "1 of 3 epochs are trained; training resumes from epoch 2." in texts(app)
    assert app.button(key="train_start").label == "Resume training"


# --- a damaged data cache ------------------------------------------------------------------------


def cache_folder() -> Path:
    (folder,) = [path for path in (get_settings().cache_dir / "imdb").iterdir() if path.is_dir()]
    return folder


CACHE_DAMAGES = {
    "truncated ranks": lambda folder: truncate(folder / "ranks.npy"),
    "garbage meta": lambda folder: (folder / "meta.json").write_bytes(b"\x00junk"),
    "garbage words": lambda folder: (folder / "words.txt").write_bytes(b"\xff\xfe\x00"),
    "missing lengths": lambda folder: (folder / "lengths.npy").unlink(),
    "meta of another corpus": lambda folder: (folder / "meta.json").write_text(
        json.dumps({**json.loads((folder / "meta.json").read_text()), "tokens": 3})
    ),
}


@pytest.mark.parametrize("damage", CACHE_DAMAGES)
def test_a_damaged_data_cache_is_named_and_parsed_again(tiny_archive, monkeypatch, damage):
    monkeypatch.setenv("RNNKIT_DATA", str(tiny_archive))
    assert not load_imdb(path=tiny_archive).source.from_cache  # parsed, and cached
    CACHE_DAMAGES[damage](cache_folder())
    with pytest.warns(DataWarning, match=r"The cached reviews in .* are damaged") as caught:
        again = load_imdb(path=tiny_archive)
    assert str(cache_folder()) in str(caught[0].message)  # which folder
    assert not again.source.from_cache and len(again.train) == 6
    assert load_imdb(path=tiny_archive).source.from_cache  # the cache is whole again

    CACHE_DAMAGES[damage](cache_folder())
    clear_loaded_data()  # the server's memory would answer before the disk cache
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        app = open_page("views/home.py")
    assert metrics(app)["Training reviews"] == "6"
    assert app.sidebar.status[0].proto.label.startswith("IMDB reviews ready (parsed")
    # The app says which cache was damaged, and goes on with the parsed reviews.
    (warning,) = [shown(item.value) for item in app.sidebar.warning]
    assert "are damaged" in warning and str(cache_folder()) in warning
