"""The Train page under AppTest: train a tiny config, attach to a running job, reuse a run,
refuse what the server's limits do not allow."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from rnnkit import RunStore, load_imdb, train, ui
from rnnkit import jobs as jobs_module
from tests.app_helpers import APP, texts
from tests.conftest import write_archive
from tests.test_jobs import GatedTrain, wait_for
from tests.test_training import TINY_OVERRIDES, tiny_config, tiny_reviews


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    path = write_archive(tmp_path / "corpus.tar.gz", tiny_reviews())
    monkeypatch.setenv("RNNKIT_DATA", str(path))
    ui.job_board.clear()  # a fresh board on this test's run store
    yield path
    board = ui.job_board()
    board.shutdown()
    ui.job_board.clear()


def open_train_page(**overrides: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120)
    app.switch_page("views/train.py").run()
    assert not app.exception, app.exception
    for name, value in {**TINY_OVERRIDES, **overrides}.items():
        widget = app.get("text_input") + app.get("number_input")
        (match,) = [w for w in widget if w.key == f"cfg_field_{name}"]
        kind = LIMIT_KINDS[name]
        match.set_value(kind(value) if kind else value)
    app.run()
    assert not app.exception, app.exception
    return app


LIMIT_KINDS = {
    "data.num_words": int,
    "data.max_length": int,
    "model.rnn_units": None,
    "model.embedding_dim": int,
    "model.dense_units": None,
    "training.batch_size": int,
    "training.epochs": int,
    "training.seed": int,
}


def button(app: AppTest, key: str):
    (found,) = [b for b in app.button if b.key == key]
    return found


def test_the_form_shows_the_model_before_training(corpus):
    app = open_train_page()
    values = {metric.label: metric.value for metric in app.metric}
    # Embedding 100 x 8 + BiSimpleRNN(8): 2 x (8*8 + 8*8 + 8) + Dense 16->8 + Dense 8->1
    assert values["Parameters"] == f"{800 + 2 * (64 + 64 + 8) + (16 * 8 + 8) + 9:,}"
    assert "Estimated time per epoch" in values
    assert button(app, "train_start").label == "Train"


def test_the_form_offers_a_model_without_an_rnn(corpus):
    (preset_box,) = [box for box in open_train_page().selectbox if box.key == "cfg_preset"]
    assert preset_box.options == ["seed", "notebook", "recommended", "best_rnn"]
    app = open_train_page(**{"model.rnn_units": ""})
    (units,) = [field for field in app.text_input if field.key == "cfg_field_model.rnn_units"]
    assert "With no RNN layer the model averages each review's word vectors" in units.help
    values = {metric.label: metric.value for metric in app.metric}
    # Embedding 100 x 8, then the mean of the word vectors: Dense 8->8 + Dense 8->1.
    assert values["Parameters"] == f"{800 + (8 * 8 + 8) + 9:,}"
    assert "no RNN (mean of word vectors)" in texts(app)
    assert "computed by the mean of word vectors, no RNN (0.85 GFLOP/s until" in texts(app)


def test_a_tiny_config_trains_from_the_page_and_shows_its_curves(corpus):
    app = open_train_page()
    button(app, "train_start").click().run()
    run_id = tiny_config().run_id(load_imdb(num_words=100, path=corpus).fingerprint)
    view = ui.job_board().wait(run_id, timeout=120)
    assert view.state == "done"
    app.run()
    assert not app.exception, app.exception
    assert "trained already" in texts(app)
    values = {metric.label: metric.value for metric in app.metric}
    assert values["Best epoch"] in {"1", "2", "3"}
    assert values["Test accuracy"].endswith("%")
    assert [chart.key for chart in app.get("arrow_vega_lite_chart")] or app.get("vega_lite_chart")


def test_a_second_session_attaches_to_the_running_job(corpus, monkeypatch):
    fake = GatedTrain()
    monkeypatch.setattr(jobs_module, "train", fake)
    first = open_train_page()
    button(first, "train_start").click().run()
    data = load_imdb(num_words=100, path=corpus)
    run_id = tiny_config().run_id(data.fingerprint)
    wait_for(lambda: ui.job_board().view(run_id).state == "running")
    second = open_train_page()
    assert [b.key for b in second.button if b.key == "train_start"] == []
    assert button(second, "train_cancel").label == "Cancel training"
    assert "switching pages or closing the tab does not stop it" in texts(second)
    assert len(ui.job_board().active()) == 1 and fake.calls == [run_id]
    button(second, "train_cancel").click().run()
    assert ui.job_board().wait(run_id, 10).state == "cancelled"
    fake.gate(run_id).set()


def test_a_completed_config_shows_its_results_with_no_training(corpus, monkeypatch):
    data = load_imdb(num_words=100, path=corpus)
    train(tiny_config(), data, RunStore())
    fake = GatedTrain()
    monkeypatch.setattr(jobs_module, "train", fake)
    app = open_train_page()
    assert "trained already" in texts(app)
    assert [b.key for b in app.button if b.key == "train_start"] == []
    assert fake.calls == []


def test_over_limit_settings_are_refused(corpus, monkeypatch):
    monkeypatch.setenv("RNNKIT_MAX_EPOCHS", "2")
    ui.job_board.clear()
    app = open_train_page(**{"training.epochs": "5"})
    assert "Refused: training.epochs = 5 is over this server's limit of 2" in texts(app)
    assert button(app, "train_start").disabled


def test_an_invalid_setting_is_explained(corpus):
    app = open_train_page(**{"model.rnn_units": "64, lots"})
    assert "This configuration is not valid" in texts(app)
    assert "model.rnn_units" in texts(app)


def test_coming_back_to_the_page_shows_the_job_again(corpus, monkeypatch):
    fake = GatedTrain()
    monkeypatch.setattr(jobs_module, "train", fake)
    app = open_train_page()
    button(app, "train_start").click().run()
    run_id = tiny_config().run_id(load_imdb(num_words=100, path=corpus).fingerprint)
    wait_for(lambda: ui.job_board().view(run_id).state == "running")
    app.switch_page("views/home.py").run()
    app.switch_page("views/train.py").run()
    assert not app.exception, app.exception
    assert f"Run id `{run_id}`" in texts(app)  # the form kept the settings
    assert button(app, "train_cancel").label == "Cancel training"
    fake.gate(run_id).set()


def test_another_session_opens_a_running_job_from_the_list(corpus, monkeypatch):
    fake = GatedTrain()
    monkeypatch.setattr(jobs_module, "train", fake)
    first = open_train_page()
    button(first, "train_start").click().run()
    run_id = tiny_config().run_id(load_imdb(num_words=100, path=corpus).fingerprint)
    wait_for(lambda: ui.job_board().view(run_id).state == "running")
    other = AppTest.from_file(APP, default_timeout=120)
    other.switch_page("views/train.py").run()  # the seed preset: another configuration
    assert "**Training on this server now** (1)" in texts(other)
    button(other, f"open_job_{run_id}").click().run()
    assert f"Run id `{run_id}`" in texts(other)
    assert button(other, "train_cancel").label == "Cancel training"
    assert fake.calls == [run_id]
    fake.gate(run_id).set()
