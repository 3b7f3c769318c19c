"""The Learning-curves page under AppTest: the runs table, curves of picked runs, their
differences, downloads, deletion with confirmation, and the padding experiment."""

from __future__ import annotations

import io
import json
import shutil

import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from rnnkit import RunStore, load_imdb
from rnnkit.compare import PADDING_VARIANTS, padding_variants
from rnnkit.ui.board import job_board
from rnnkit.ui.curves import BASELINE_NAME
from tests.helpers import (
    APP,
    TrainedOnATinyCorpus,
    chart_data,
    texts,
    tiny_unmasked_config,
    train_on_a_tiny_corpus,
    wait_for,
)

POST, PRE, MASKED = PADDING_VARIANTS  # "post padding", "pre padding", "post padding, masked"
DAMAGED_ID = "dddddddddddddddd"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> TrainedOnATinyCorpus:
    """tiny_unmasked_config() trained post-padded, pre-padded and masked, once for the module:
    the run ids by padding variant label."""
    return train_on_a_tiny_corpus(
        tmp_path_factory.mktemp("curves"), padding_variants(tiny_unmasked_config())
    )


@pytest.fixture
def store(trained, monkeypatch) -> RunStore:
    """The page's run store (in this test's cache folder) on the module's corpus; empty."""
    monkeypatch.setenv("RNNKIT_DATA", str(trained.corpus))
    job_board.clear()  # a fresh board on this test's run store
    yield job_board().store
    job_board().shutdown()
    job_board.clear()


def copy_runs(trained: TrainedOnATinyCorpus, store: RunStore, *labels: str) -> list[str]:
    """Put trained runs into the page's store; their run ids."""
    for label in labels:
        run_id = trained.run_ids[label]
        shutil.copytree(trained.runs / run_id, store.folder(run_id))
    return [trained.run_ids[label] for label in labels]


def tiny_data(trained: TrainedOnATinyCorpus):
    return load_imdb(num_words=100, path=trained.corpus)


def incomplete_run(trained: TrainedOnATinyCorpus, store: RunStore, **overrides: str) -> str:
    """A run stopped after its first epoch (no job trains it)."""
    config = tiny_unmasked_config(**overrides)
    run_id = config.run_id(tiny_data(trained).fingerprint)
    store.create(run_id, config.to_dict())
    epoch = {"epoch": 1, "loss": 0.69, "accuracy": 0.5, "val_loss": 0.7, "val_accuracy": 0.45}
    store.write_json(run_id, "history.json", [epoch])
    return run_id


def damaged_run(store: RunStore) -> str:
    folder = store.folder(DAMAGED_ID)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{not json", encoding="utf-8")
    return DAMAGED_ID


def open_curves(*run_ids: str, **query_params: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120)
    if run_ids:
        app.query_params["curves_runs"] = list(run_ids)
    for name, value in query_params.items():
        app.query_params[name] = value
    app.switch_page("views/curves.py").run()
    assert not app.exception, app.exception
    return app


def keys(app: AppTest, kind: str = "button") -> list[str]:
    return [widget.key for widget in app.get(kind)]


def curve_runs(app: AppTest, index: int = 0) -> list[str]:
    """The runs a chart draws curves for, from the data it ships to the browser."""
    frames = [frame for frame in chart_data(app, index) if {"run", "part"} <= set(frame.columns)]
    return sorted({run for frame in frames for run in frame["run"]})


def chart_references(app: AppTest, index: int = 0) -> list[str]:
    frames = [frame for frame in chart_data(app, index) if "reference" in frame.columns]
    return sorted({name for frame in frames for name in frame["reference"]})


# --- the table ----------------------------------------------------------------------------------


def test_the_table_lists_every_run_with_its_numbers_damaged_and_incomplete_too(trained, store):
    post, pre = copy_runs(trained, store, POST, PRE)
    stopped = incomplete_run(trained, store, **{"training.seed": "5"})
    damaged_run(store)
    app = open_curves()
    table = app.dataframe[0].value.set_index("run")
    assert sorted(table.index) == sorted([post, pre, stopped, DAMAGED_ID])
    summary = {run.run_id: run for run in store.list_runs()}[post]
    row = table.loc[post]
    assert row["status"] == "complete"
    assert row["best epoch"] == summary.best_epoch
    assert row["best val accuracy"] == pytest.approx(summary.best_val_accuracy)
    assert row["test accuracy"] == pytest.approx(summary.test_accuracy)
    assert row["epochs"] == "3 / 3"
    assert "len 16 post ·" in row["settings"]
    assert "len 16 pre" in table.loc[pre, "settings"]
    assert table.loc[stopped, ["status", "epochs"]].tolist() == ["incomplete", "1 / 3"]
    assert pd.isna(table.loc[stopped, "test accuracy"])
    assert table.loc[DAMAGED_ID, "status"] == "damaged"
    assert "config.json is unreadable" in table.loc[DAMAGED_ID, "problem"]
    # The newest complete run is picked at first.
    assert app.multiselect(key="curves_runs").value == [pre]


def test_the_table_shows_the_results_first_with_widths_that_fit(trained, store):
    copy_runs(trained, store, POST, PRE, MASKED)
    app = open_curves()
    table = app.dataframe[0].proto
    shown = list(table.column_order)
    assert shown[:4] == ["run", "status", "test accuracy", "best val accuracy"]
    assert shown[-1] == "settings"  # the widest, last
    assert "created" not in shown and "problem" not in shown  # no run has a problem
    columns = json.loads(table.columns)
    widths = [columns[name]["width"] for name in shown[:-1]]
    # Every column before the settings has a width in pixels, which leaves the settings more
    # than 300 px of a 1400 px window (the sidebar and margins take about 460).
    assert all(isinstance(width, int) for width in widths)
    assert sum(widths) <= 1400 - 460 - 300


def test_the_runs_to_compare_show_short_labels_and_the_url_keeps_ids(trained, store):
    post, pre = copy_runs(trained, store, POST, PRE)
    app = open_curves(post)
    picker = app.multiselect(key="curves_runs")
    summaries = {summary.run_id: summary for summary in store.list_runs()}
    assert picker.options == [
        f"{run_id[:8]} · padding {side} · test {summaries[run_id].test_accuracy:.1%}"
        for run_id, side in ((pre, "pre"), (post, "post"))  # newest first
    ]
    picker.set_value([post, pre]).run()
    assert app.query_params["curves_runs"] == [post, pre]
    app.multiselect(key="curves_runs").set_value([]).run()
    assert not app.exception and not app.query_params.get("curves_runs")


def test_an_empty_store_says_where_runs_come_from(store):
    app = open_curves()
    assert "No run is stored yet" in texts(app)
    assert [(link.proto.page, link.proto.icon) for link in app.page_link] == [
        ("train", ":material/model_training:")
    ]


# --- curves and differences ---------------------------------------------------------------------


def test_picked_runs_show_one_series_each_and_bad_ids_in_the_url_are_ignored(trained, store):
    post, pre, masked = copy_runs(trained, store, POST, PRE, MASKED)
    app = open_curves(post, "not-a-run", pre, "0123456789abcdef")
    assert app.multiselect(key="curves_runs").value == [post, pre]
    assert curve_runs(app) == sorted([f"{post[:8]} · padding post", f"{pre[:8]} · padding pre"])
    app.multiselect(key="curves_runs").set_value([post, pre, masked]).run()
    assert len(curve_runs(app)) == 3
    # Each run's test accuracy is drawn in its own panel when side by side.
    app.segmented_control(key="curves_layout").set_value("side by side").run()
    assert not app.exception, app.exception
    spec = json.loads(app.get("vega_lite_chart")[0].proto.spec)
    assert "vconcat" in spec
    assert len(curve_runs(app)) == 3


def test_the_differences_table_shows_exactly_the_differing_settings(trained, store):
    post, pre, masked = copy_runs(trained, store, POST, PRE, MASKED)
    app = open_curves(post, pre)
    differences = app.dataframe[1].value
    assert differences.index.tolist() == ["data.padding"]
    assert differences.loc["data.padding"].tolist() == ["post", "pre"]
    app.multiselect(key="curves_runs").set_value([post, pre, masked]).run()
    differences = app.dataframe[1].value
    assert differences.index.tolist() == ["data.padding", "model.mask_padding"]
    assert differences[masked].tolist() == ["post", "True"]
    app.multiselect(key="curves_runs").set_value([post]).run()
    assert "Pick two or more runs" in texts(app)


def test_the_baseline_is_computed_on_request_then_read_from_disk(trained, store):
    (post,) = copy_runs(trained, store, POST)
    app = open_curves(post)
    assert chart_references(app) == []
    app.button(key="curves_baseline").click().run()
    assert not app.exception, app.exception
    assert chart_references(app) == [BASELINE_NAME]
    again = open_curves(post)  # another session: the disk cache answers, no button
    assert "curves_baseline" not in keys(again)
    assert chart_references(again) == [BASELINE_NAME]


def test_runs_without_curves_are_named_not_drawn(trained, store):
    stopped = incomplete_run(trained, store, **{"training.seed": "5"})
    damaged_run(store)
    app = open_curves(stopped, DAMAGED_ID)
    assert f"`{DAMAGED_ID}` is damaged" in texts(app)
    assert curve_runs(app) == [
        f"{stopped[:8]} · BiSimpleRNN 8 · emb 8 · dense 8 · len 16 post · 3 epochs"
    ]


# --- files and deletion -------------------------------------------------------------------------


@pytest.fixture
def downloads(monkeypatch) -> dict:
    """What the download buttons offer, by file name: bytes, or a callable giving them."""
    offered = {}
    add, add_deferred = MediaFileManager.add, MediaFileManager.add_deferred

    def record(manager, data, mimetype, coordinates, file_name=None, **options):
        offered[file_name] = data
        return add(manager, data, mimetype, coordinates, file_name=file_name, **options)

    def record_deferred(manager, data_callable, mimetype, coordinates, file_name=None, **options):
        offered[file_name] = data_callable
        return add_deferred(manager, data_callable, mimetype, coordinates, file_name, **options)

    monkeypatch.setattr(MediaFileManager, "add", record)
    monkeypatch.setattr(MediaFileManager, "add_deferred", record_deferred)
    return offered


def test_downloads_offer_the_history_csv_and_the_keras_model(trained, store, downloads):
    (post,) = copy_runs(trained, store, POST)
    stopped = incomplete_run(trained, store, **{"training.seed": "5"})
    app = open_curves(post, stopped)
    history = pd.read_csv(io.BytesIO(downloads[f"{post}-history.csv"]))
    assert history.columns[0] == "epoch"
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.columns)
    assert history["epoch"].tolist() == [1, 2, 3]
    model_bytes = downloads[f"{post}.keras"]()  # read when clicked
    assert model_bytes == store.model_path(post).read_bytes()
    assert model_bytes[:2] == b"PK"  # a .keras file is a zip archive
    assert app.download_button(key=f"curves_model_{stopped}").disabled  # no model yet
    stopped_history = pd.read_csv(io.BytesIO(downloads[f"{stopped}-history.csv"]))
    assert stopped_history["epoch"].tolist() == [1]


def test_delete_asks_for_a_confirmation_then_removes_the_run(trained, store):
    post, pre = copy_runs(trained, store, POST, PRE)
    app = open_curves(post, pre)
    app.button(key=f"curves_delete_{pre}").click().run()
    assert f"Delete run `{pre}` for good?" in texts(app)
    assert store.status(pre) == "complete"  # nothing yet
    app.button(key="curves_delete_cancel").click().run()
    assert "for good?" not in texts(app) and store.status(pre) == "complete"
    app.button(key=f"curves_delete_{pre}").click().run()
    app.button(key="curves_delete_confirm").click().run()
    assert not app.exception, app.exception
    assert store.status(pre) == "missing"
    assert f"Run `{pre}` is deleted." in texts(app)
    assert app.multiselect(key="curves_runs").value == [post]
    assert app.dataframe[0].value["run"].tolist() == [post]


def test_a_run_in_training_cannot_be_deleted(trained, store, gated):
    stopped = incomplete_run(trained, store, **{"training.seed": "5"})
    (post,) = copy_runs(trained, store, POST)
    job_board().submit(tiny_unmasked_config(**{"training.seed": "5"}), tiny_data(trained))
    wait_for(lambda: job_board().view(stopped).state == "running")
    app = open_curves(stopped, post)
    table = app.dataframe[0].value.set_index("run")
    assert table.loc[stopped, "status"] == "training"
    assert app.button(key=f"curves_delete_{stopped}").disabled
    # Trained by another process (its lock held): refused at the confirmation.
    with store.lock(post):
        app.button(key=f"curves_delete_{post}").click().run()
        app.button(key="curves_delete_confirm").click().run()
    assert f"Run `{post}` is training: cancel it first" in texts(app)
    assert store.status(post) == "complete"


# --- the padding experiment ---------------------------------------------------------------------


def test_the_padding_experiment_trains_three_variants_as_normal_jobs(trained, store, gated):
    stopped = incomplete_run(trained, store, **{"training.seed": "5"})
    data = tiny_data(trained)
    variants = padding_variants(tiny_unmasked_config(**{"training.seed": "5"}))
    expected = [variant.run_id(data.fingerprint) for variant in variants.values()]
    assert expected[0] == stopped  # its own config is the post-padded variant
    assert len(set(expected)) == 3
    app = open_curves(stopped)
    start = app.button(key="curves_padding_start")
    assert start.label == "Run the padding experiment (3 to train)"
    start.click().run()
    assert not app.exception, app.exception
    wait_for(lambda: len(gated.calls) == 1)
    assert [view.run_id for view in job_board().active()] == expected
    assert gated.calls == [expected[0]]  # one job at a time; the others wait their turn
    assert "Queued: place 1." in texts(app) and "Queued: place 2." in texts(app)
    app.run()  # the running variant's progress, in words, as on the Train page
    bars = [bar.proto.text for bar in app.get("progress")]
    assert "Epoch 1 of 1: batch 1 of 2" in bars
    for run_id in expected:
        gated.gate(run_id).set()
    wait_for(lambda: not job_board().active())
    assert gated.calls == expected


def test_a_trained_variant_is_not_trained_again(trained, store, gated):
    (post,) = copy_runs(trained, store, POST)
    app = open_curves(post)
    start = app.button(key="curves_padding_start")
    assert start.label == "Run the padding experiment (2 to train)"
    start.click().run()
    wait_for(lambda: len(gated.calls) == 1)
    assert [view.run_id for view in job_board().active()] == [
        trained.run_ids[PRE],
        trained.run_ids[MASKED],
    ]


def test_the_padding_experiment_shows_the_three_curves_side_by_side(trained, store):
    post, _, _ = copy_runs(trained, store, POST, PRE, MASKED)
    app = open_curves(post)
    assert "curves_padding_start" not in keys(app)  # nothing left to train
    assert texts(app).count("Done.") == 3
    assert curve_runs(app, index=1) == sorted([POST, PRE, MASKED])
    (results,) = [
        frame.value for frame in app.dataframe if list(frame.value.columns[:1]) == ["variant"]
    ]
    assert results["variant"].tolist() == [POST, PRE, MASKED]
    stored = [RunStore(store.root).load(trained.run_ids[label]) for label in (POST, PRE, MASKED)]
    assert results["test accuracy"].tolist() == [run.metrics["test_accuracy"] for run in stored]
    assert results["epochs"].tolist() == [len(run.history) for run in stored]


def test_the_padding_experiment_is_refused_over_the_limits(trained, store, monkeypatch):
    (post,) = copy_runs(trained, store, POST)
    monkeypatch.setenv("RNNKIT_MAX_EPOCHS", "2")
    job_board.clear()
    app = open_curves(post)
    assert "Refused: training.epochs = 3 is over this server's limit of 2." in texts(app)
    assert app.button(key="curves_padding_start").disabled


def test_a_full_queue_refuses_each_variant_with_the_reason(trained, store, gated, monkeypatch):
    (post,) = copy_runs(trained, store, POST)
    monkeypatch.setenv("RNNKIT_MAX_QUEUE", "1")
    job_board.clear()
    board, data = job_board(), tiny_data(trained)
    running = board.submit(tiny_unmasked_config(**{"training.seed": "7"}), data)
    wait_for(lambda: board.view(running.run_id).state == "running")
    board.submit(tiny_unmasked_config(**{"training.seed": "8"}), data)  # waits: the queue is full
    app = open_curves(post)
    app.button(key="curves_padding_start").click().run()
    assert not app.exception, app.exception
    errors = [error.value for error in app.error]
    assert any(error.startswith(f"{PRE}: refused. The queue is full") for error in errors)
    assert any(error.startswith(f"{MASKED}: refused. The queue is full") for error in errors)
    assert len(board.active()) == 2
