"""The Inside the RNN page under AppTest: a SimpleRNN, an LSTM and a no-RNN run of the tiny
corpus, trained once for the module; each test works on a copy of their store."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from rnnkit import RunStore, inside
from rnnkit.runs import DERIVED_FOLDER
from tests.helpers import (
    button,
    chart_data,
    open_page,
    point_the_app_at_a_copy,
    texts,
    tiny_masked_config,
    tiny_unmasked_config,
    train_on_a_tiny_corpus,
)

PAGE = "views/inside.py"


class Runs(NamedTuple):
    corpus: Path
    store: Path
    simple_rnn: str  # a bidirectional SimpleRNN, padding masked
    lstm: str  # a bidirectional LSTM, post-padded without a mask
    no_rnn: str  # the mean of word vectors


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Runs:
    one_epoch = {"training.epochs": "1"}
    trained = train_on_a_tiny_corpus(
        tmp_path_factory.mktemp("inside-page"),
        {
            "lstm": tiny_unmasked_config(**{"model.cell": "lstm", **one_epoch}),
            "no_rnn": tiny_masked_config(**{"model.rnn_units": "none", **one_epoch}),
            "simple_rnn": tiny_masked_config(**one_epoch),
        },
    )
    return Runs(trained.corpus, trained.runs, **trained.run_ids)


@pytest.fixture
def runs(trained, tmp_path, monkeypatch) -> Runs:
    store = point_the_app_at_a_copy(trained.corpus, trained.store, tmp_path / "runs", monkeypatch)
    return trained._replace(store=store)


def frames_with(app: AppTest, column: str) -> list[pd.DataFrame]:
    """The data of the page's charts that has `column`, as shipped to the browser."""
    return [
        frame
        for index in range(len(app.get("vega_lite_chart")))
        for frame in chart_data(app, index)
        if column in frame.columns
    ]


def state_charts(app: AppTest) -> list[pd.DataFrame]:
    """The heatmaps' data: a state per step and unit."""
    return frames_with(app, "state")


def test_a_simple_rnn_shows_a_heatmap_per_direction_of_a_typed_review(runs):
    app = open_page(PAGE, predict_run=runs.simple_rnn)
    assert app.title[0].value == "Inside the RNN"
    heatmaps = state_charts(app)
    assert len(heatmaps) == 2  # one layer, forward and backward
    for frame in heatmaps:
        assert len(frame) == 16 * 8  # max_length 16 steps, 8 units
        assert frame["state"].between(-1, 1).all()
    assert "your review" in texts(app)
    assert "padding, skipped" in texts(app) or "skipped" in texts(app)
    # The long computations wait for a click.
    assert button(app, "inside_memory_compute")
    assert button(app, "inside_units_compute")


def test_a_test_review_by_number_and_a_confident_mistake(runs):
    app = open_page(
        PAGE, predict_run=runs.simple_rnn, inside_source="test review", inside_review="3"
    )
    assert "test review 3" in texts(app)
    app = open_page(PAGE, predict_run=runs.simple_rnn, inside_source="confident mistake")
    shown = texts(app)
    assert "test review" in shown or "makes no mistake" in shown


@pytest.mark.parametrize("value", ["-5", "1e99", "nan", "seven", "19.5"])
def test_a_review_number_from_the_url_is_clamped_or_ignored(runs, value):
    app = open_page(
        PAGE, predict_run=runs.simple_rnn, inside_source="test review", inside_review=value
    )
    (number,) = [widget for widget in app.number_input if widget.key == "inside_review"]
    assert 0 <= number.value <= 19  # 20 tiny test reviews


def test_the_memory_profile_is_computed_on_request_and_shown_in_the_runs_table(runs):
    app = open_page(PAGE, predict_run=runs.lstm)
    assert len(state_charts(app)) == 2  # unmasked: the padding steps are read
    button(app, "inside_memory_compute").click().run()
    assert not app.exception, app.exception
    (curves,) = frames_with(app, "kind")
    assert set(curves["kind"]) == {"forward", "backward"}
    (table,) = [frame.value for frame in app.dataframe]
    store = RunStore(runs.store)
    profile = inside.stored_memory_profile(
        store, runs.lstm, inside.TrainConfig.from_dict(store.load(runs.lstm).config)
    )
    assert table["memory (steps)"].tolist() == [profile.memory_text]
    assert (Path(runs.store) / runs.lstm / DERIVED_FOLDER / inside.PROFILE_FILE).is_file()
    # Learning curves shows the same number, and nothing for the runs not computed.
    curves_page = open_page("views/curves.py")
    runs_table = curves_page.dataframe[0].value.set_index("run")
    assert runs_table.loc[runs.lstm, "memory (steps)"] == profile.memory_text
    assert pd.isna(runs_table.loc[runs.simple_rnn, "memory (steps)"])


def test_a_run_without_an_rnn_has_no_state_and_a_flat_memory(runs):
    app = open_page(
        PAGE,
        predict_run=runs.no_rnn,
        inside_memory_runs=[runs.no_rnn, "../etc/passwd", runs.simple_rnn],
    )
    assert app.multiselect(key="inside_memory_runs").value == [runs.no_rnn, runs.simple_rnn]
    assert "The link names 1 run(s) that are not complete runs here" in texts(app)
    assert "passwd" not in texts(app)
    assert "This run has no RNN" in texts(app)
    assert state_charts(app) == []
    assert not [b for b in app.button if b.key == "inside_units_compute"]
    button(app, "inside_memory_compute").click().run()
    assert not app.exception, app.exception
    (curves,) = frames_with(app, "kind")
    flat = curves[curves["kind"] == "mean of word vectors"]
    assert len(flat) > 0 and (flat["gradient"] - 1).abs().max() < 1e-5
    assert set(curves["kind"]) == {"mean of word vectors", "forward", "backward"}
    table = app.dataframe[0].value
    assert table["memory (steps)"].iloc[0] == "every position"
    assert app.query_params["inside_memory_runs"] == [runs.no_rnn, runs.simple_rnn]


def test_what_a_unit_responds_to(runs):
    app = open_page(PAGE, predict_run=runs.simple_rnn)
    button(app, "inside_units_compute").click().run()
    assert not app.exception, app.exception
    windows = [
        element.proto.body for element in app.get("html") if "test review" in element.proto.body
    ]
    assert (
        len(windows) == 1 and windows[0].count('class="rk-box rk-tokens"') == 10
    )  # 10 test reviews
    assert "carry the sentiment most" in texts(app)
    # Read from the run's folder next time, for any unit.
    again = open_page(PAGE, predict_run=runs.simple_rnn, inside_unit="7")
    assert not [b for b in again.button if b.key == "inside_units_compute"]
    (unit,) = [widget for widget in again.number_input if widget.key == "inside_unit"]
    assert unit.value == 7


URL_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=24
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    source=st.sampled_from(["test review", "typed", "confident mistake"]) | URL_TEXT,
    review=URL_TEXT,
    unit=URL_TEXT,
    memory_runs=st.lists(URL_TEXT.map(lambda text: f"zqx{text}"), max_size=3),
)
def test_any_url_opens_the_page_with_its_numbers_in_range_and_its_text_unshown(
    runs, source, review, unit, memory_runs
):
    app = open_page(
        PAGE,
        predict_run=runs.simple_rnn,
        inside_source=source,
        inside_review=review,
        inside_unit=unit,
        inside_memory_runs=memory_runs,
    )
    for widget in app.number_input:
        if widget.key == "inside_review":
            assert 0 <= widget.value <= 19
    assert app.multiselect(key="inside_memory_runs").value == [runs.simple_rnn]
    assert "zqx" not in texts(app)  # a link's run names are counted, never shown


def test_the_states_of_a_typed_review_show_the_words_as_the_model_reads_them(runs):
    app = open_page(PAGE, predict_run=runs.simple_rnn)
    app.text_area(key="inside_text").set_value("<b>Superb</b> [link](x) fun!").run()
    assert not app.exception
    (heatmap, _) = state_charts(app)
    words = heatmap[heatmap["unit"] == 0].sort_values("step")["word"].tolist()
    # Tags and links are words like any other (b, link, x: unknown to the tiny vocabulary).
    unknown = "<UNK>"
    assert words == ["<START>", unknown, "superb", unknown, unknown, unknown, "fun"] + ["<PAD>"] * 9
