"""The Train page under AppTest: train a tiny config, attach to a running job, reuse a run,
refuse what the server's limits do not allow."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from rnnkit import RunStore, load_imdb, preset, train
from rnnkit.config import LIMITS
from rnnkit.ui.board import job_board
from tests.helpers import (
    APP,
    button,
    open_train_page,
    shown_texts,
    texts,
    tiny_masked_config,
    wait_for,
)


@pytest.fixture
def served_corpus(corpus, monkeypatch):
    """The tiny corpus as the app's data, with a fresh job board (shut down afterwards)."""
    monkeypatch.setenv("RNNKIT_DATA", str(corpus))
    job_board.clear()  # a fresh board on this test's run store
    yield corpus
    board = job_board()
    board.shutdown()
    job_board.clear()


def test_the_form_shows_the_model_before_training(served_corpus):
    app = open_train_page()
    values = {metric.label: metric.value for metric in app.metric}
    # Embedding 100 x 8 + BiSimpleRNN(8): 2 x (8*8 + 8*8 + 8) + Dense 16->8 + Dense 8->1
    assert values["Parameters"] == f"{800 + 2 * (64 + 64 + 8) + (16 * 8 + 8) + 9:,}"
    assert "Estimated time per epoch" in values
    assert button(app, "train_start").label == "Train"


def test_the_form_offers_a_model_without_an_rnn(served_corpus, monkeypatch):
    from rnnkit import estimate

    # A machine twice as fast as the defaults' now: the default speed shown is doubled.
    reference = estimate.PROBE_REFERENCE_FLOPS_PER_SECOND
    monkeypatch.setattr(estimate, "probe_speed", lambda: 2 * reference)
    (preset_box,) = [box for box in open_train_page().selectbox if box.key == "cfg_preset"]
    assert preset_box.options == ["seed", "notebook", "recommended", "best_rnn"]
    app = open_train_page(**{"model.rnn_units": ""})
    (units,) = [field for field in app.text_input if field.key == "cfg_field_model.rnn_units"]
    assert "With no RNN layer the model averages each review's word vectors" in units.help
    values = {metric.label: metric.value for metric in app.metric}
    # Embedding 100 x 8, then the mean of the word vectors: Dense 8->8 + Dense 8->1.
    assert values["Parameters"] == f"{800 + (8 * 8 + 8) + 9:,}"
    assert "no RNN (mean of word vectors)" in texts(app)
    speed = 2 * estimate.NO_RNN_FLOPS_PER_SECOND / 1e9
    assert f"computed by the mean of word vectors, no RNN (about {speed:.3g} GFLOP/s until" in (
        texts(app)
    )


def test_a_tiny_config_trains_from_the_page_and_shows_its_curves(served_corpus):
    app = open_train_page()
    button(app, "train_start").click().run()
    run_id = tiny_masked_config().run_id(load_imdb(num_words=100, path=served_corpus).fingerprint)
    view = job_board().wait(run_id, timeout=120)
    assert view.state == "done"
    app.run()
    assert not app.exception, app.exception
    assert "trained already" in texts(app)
    values = {metric.label: metric.value for metric in app.metric}
    assert values["Best epoch"] in {"1", "2", "3"}
    assert values["Test accuracy"].endswith("%")
    assert [chart.key for chart in app.get("arrow_vega_lite_chart")] or app.get("vega_lite_chart")


def test_a_second_session_attaches_to_the_running_job(served_corpus, gated):
    first = open_train_page()
    button(first, "train_start").click().run()
    data = load_imdb(num_words=100, path=served_corpus)
    run_id = tiny_masked_config().run_id(data.fingerprint)
    wait_for(lambda: job_board().view(run_id).state == "running")
    second = open_train_page()
    assert [b.key for b in second.button if b.key == "train_start"] == []
    assert button(second, "train_cancel").label == "Cancel training"
    assert "switching pages or closing the tab does not stop it" in texts(second)
    assert len(job_board().active()) == 1 and gated.calls == [run_id]
    button(second, "train_cancel").click().run()
    assert job_board().wait(run_id, 10).state == "cancelled"
    gated.gate(run_id).set()


def test_a_completed_config_shows_its_results_with_no_training(served_corpus, gated):
    data = load_imdb(num_words=100, path=served_corpus)
    train(tiny_masked_config(), data, RunStore())
    app = open_train_page()
    assert "trained already" in texts(app)
    assert [b.key for b in app.button if b.key == "train_start"] == []
    assert gated.calls == []


def test_over_limit_settings_are_refused(served_corpus, monkeypatch):
    monkeypatch.setenv("RNNKIT_MAX_EPOCHS", "2")
    job_board.clear()
    app = open_train_page(**{"training.epochs": "5"})
    assert "Refused: training.epochs = 5 is over this server's limit of 2" in texts(app)
    assert button(app, "train_start").disabled


def test_an_invalid_setting_is_explained(served_corpus):
    app = open_train_page(**{"model.rnn_units": "64, lots"})
    assert "This configuration is not valid" in texts(app)
    assert "model.rnn_units" in shown_texts(app)


def test_coming_back_to_the_page_shows_the_job_again(served_corpus, gated):
    app = open_train_page()
    button(app, "train_start").click().run()
    run_id = tiny_masked_config().run_id(load_imdb(num_words=100, path=served_corpus).fingerprint)
    wait_for(lambda: job_board().view(run_id).state == "running")
    app.switch_page("views/home.py").run()
    app.switch_page("views/train.py").run()
    assert not app.exception, app.exception
    assert f"Run id `{run_id}`" in texts(app)  # the form kept the settings
    assert button(app, "train_cancel").label == "Cancel training"
    gated.gate(run_id).set()


def test_another_session_opens_a_running_job_from_the_list(served_corpus, gated):
    first = open_train_page()
    button(first, "train_start").click().run()
    run_id = tiny_masked_config().run_id(load_imdb(num_words=100, path=served_corpus).fingerprint)
    wait_for(lambda: job_board().view(run_id).state == "running")
    other = AppTest.from_file(APP, default_timeout=120)
    other.switch_page("views/train.py").run()  # the seed preset: another configuration
    assert "**Training on this server now** (1)" in texts(other)
    button(other, f"open_job_{run_id}").click().run()
    assert f"Run id `{run_id}`" in texts(other)
    assert button(other, "train_cancel").label == "Cancel training"
    assert gated.calls == [run_id]
    gated.gate(run_id).set()


def field(app: AppTest, name: str):
    """The Train form's widget of a setting ("training.epochs")."""
    (found,) = [
        widget for widget in app.main if getattr(widget, "key", None) == f"cfg_field_{name}"
    ]
    return found


def preset_box(app: AppTest):
    (found,) = [box for box in app.selectbox if box.key == "cfg_preset"]
    return found


def test_the_form_keeps_its_preset_and_fields_across_pages(served_corpus):
    app = AppTest.from_file(APP, default_timeout=120)
    app.switch_page("views/train.py").run()
    preset_box(app).set_value("notebook").run()
    field(app, "training.epochs").set_value(2)
    field(app, "data.num_words").set_value(5000).run()
    app.switch_page("views/home.py").run()
    app.switch_page("views/train.py").run()
    assert not app.exception, app.exception
    assert preset_box(app).value == "notebook"
    assert field(app, "training.epochs").value == 2
    assert field(app, "data.num_words").value == 5000
    assert field(app, "model.mask_padding").value is False  # notebook's, not seed's
    # The URL holds the preset and what differs from it: a copied link reopens the form.
    assert app.query_params["preset"] == "notebook"
    assert app.query_params["training.epochs"] == "2"
    assert app.query_params["data.num_words"] == "5000"
    assert "model.mask_padding" not in app.query_params


def test_a_link_reopens_the_configuration(served_corpus):
    link = {"preset": "notebook", "training.epochs": "2", "model.rnn_units": "8,4"}
    app = AppTest.from_file(APP, default_timeout=120)
    app.query_params.update(link)
    app.switch_page("views/train.py").run()
    assert not app.exception, app.exception
    assert preset_box(app).value == "notebook"
    assert field(app, "training.epochs").value == 2
    assert field(app, "model.rnn_units").value == "8, 4"
    data = load_imdb(num_words=10000, path=served_corpus)
    expected = preset("notebook").with_overrides({"training.epochs": 2, "model.rnn_units": "8,4"})
    assert f"Run id `{expected.run_id(data.fingerprint)}`" in texts(app)


@pytest.mark.parametrize(
    "link",
    [
        {"preset": "[evil](https://evil.example)", "training.epochs": "inf"},
        {"training.epochs": "1e400", "data.num_words": "nan", "model.cell": "<img src=x>"},
        {"training.epochs": "-5", "training.learning_rate": "３", "model.rnn_units": "64,lots"},
    ],
)
def test_a_links_unusable_settings_are_left_out_with_a_note(served_corpus, link):
    app = AppTest.from_file(APP, default_timeout=120)
    app.query_params.update(link)
    app.switch_page("views/train.py").run()
    assert not app.exception, app.exception
    shown = texts(app)
    assert "evil" not in shown and "<img" not in shown  # never the link's values
    settings = [name for name in LIMITS if name in link]  # named in the form's order
    assert f"The link's {', '.join(settings)} are not valid settings" in shown
    for name in settings:
        assert field(app, name).value == field_default(name)


def field_default(name: str):
    value = preset("seed").flat_settings()[name]
    return ", ".join(map(str, value)) if isinstance(value, tuple) else value


def test_without_an_rnn_the_rnn_only_fields_are_disabled(served_corpus):
    app = open_train_page()
    assert not field(app, "model.cell").disabled
    field(app, "model.rnn_units").set_value("").run()
    for name in ("model.cell", "model.bidirectional", "model.recurrent_dropout_rate"):
        assert field(app, name).disabled, name
    assert not field(app, "model.embedding_dim").disabled
    assert "cell, bidirectional and recurrent dropout rate change nothing" in texts(app)
    field(app, "model.rnn_units").set_value("8").run()
    assert not field(app, "model.cell").disabled


@pytest.mark.cluster
def test_a_job_on_a_cluster_waits_for_a_node_on_the_page_and_cancels(
    served_corpus, ray_cluster, monkeypatch
):
    monkeypatch.setenv("RNNKIT_RAY_ADDRESS", ray_cluster.address)
    # More CPUs than any node of the test cluster has: the job waits in Ray's queue.
    monkeypatch.setenv("RNNKIT_RAY_JOB_CPUS", "64")
    app = open_train_page()
    button(app, "train_start").click().run()
    run_id = tiny_masked_config().run_id(load_imdb(num_words=100, path=served_corpus).fingerprint)
    assert job_board().ray_address == ray_cluster.address
    assert job_board().view(run_id).state == "queued"
    second = open_train_page()  # another visitor sees the same job
    assert "Waiting for a free node of the cluster: place 1 among this server's jobs" in texts(
        second
    )
    button(second, "train_cancel").click().run()
    assert job_board().wait(run_id, timeout=60).state == "cancelled"
