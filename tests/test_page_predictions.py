"""The Predictions page under AppTest: a tiny trained run's predictions on typed text and on the
test set, the bounds of the text, the run picker and its URL, and nearest words on the
vocabulary page.

Two tiny runs (3 epochs and 1 epoch of tiny_masked_config) are trained once for the module into a
store that each test copies and points RNNKIT_RUNS_DIR at.
"""

from __future__ import annotations

import json
import shutil

import pytest
from sklearn.metrics import roc_auc_score
from streamlit.testing.v1 import AppTest

from rnnkit import RunStore, load_imdb
from rnnkit.evaluation import (
    MAX_TEXT_CHARACTERS,
    predict_texts,
    probability_text,
    threshold_metrics,
)
from rnnkit.runs import COMPLETE_FILE
from rnnkit.ui.predictions import reading_caption
from rnnkit.vocabulary import plain_text, tokenize
from tests.helpers import (
    TinyRuns,
    chart_data,
    chips,
    metrics,
    open_page,
    point_the_app_at_a_copy,
    shown_texts,
    texts,
    tiny_masked_config,
    train_tiny_runs,
)

PAGE = "views/predictions.py"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> TinyRuns:
    return train_tiny_runs(tmp_path_factory.mktemp("predictions"))


@pytest.fixture
def with_runs(trained, tmp_path, monkeypatch) -> TinyRuns:
    """Point the app at the corpus and a copy of the store with both runs."""
    runs = point_the_app_at_a_copy(trained.corpus, trained.runs, tmp_path / "runs", monkeypatch)
    return trained._replace(runs=runs)


def widget(app: AppTest, kind: str, key: str):
    (found,) = [element for element in app.get(kind) if element.key == key]
    return found


def chart_spec(app: AppTest, title: str) -> tuple[int, str]:
    """The position and spec of the one chart whose spec holds `title`."""
    specs = [chart.proto.spec for chart in app.get("vega_lite_chart")]
    (found,) = [(index, spec) for index, spec in enumerate(specs) if title in spec]
    return found


def confusion_counts(app: AppTest) -> dict[tuple[str, str], int]:
    index, _ = chart_spec(app, '"title": "predicted"')
    (frame,) = chart_data(app, index)
    return {(row.true, row.predicted): int(row.count) for row in frame.itertuples()}


def token_view(app: AppTest) -> str:
    """The markup of the highlighted words."""
    (markup,) = [
        str(element.proto.body) for element in app.get("html") if "toward pos" in element.proto.body
    ]
    return markup


def shown_words(app: AppTest) -> list[str]:
    return chips(token_view(app).split('<div class="rk-caption">')[0])


def test_a_trained_run_shows_its_predictions(with_runs):
    app = open_page(PAGE)
    store = RunStore()
    run = store.load(with_runs.run_id)
    data = load_imdb(num_words=100, path=with_runs.corpus)
    picker = widget(app, "selectbox", "predict_run")
    assert picker.value == with_runs.run_id  # the newest complete run
    assert picker.options[0].endswith(f"· {with_runs.run_id}")
    assert "len 16" in picker.options[0] and "test " in picker.options[0]

    text = widget(app, "text_area", "predict_text").value
    shown = metrics(app)
    expected = predict_texts(run.model(), data.vocab, tiny_masked_config(), [text])[0]
    assert shown["Probability of positive"] == probability_text(expected)
    assert shown["Label"] == ("positive" if expected > 0.5 else "negative")
    # max_length 16 and truncating 'pre': the model reads the example's last 16 words.
    assert shown["Words read"] == "16"
    assert shown_words(app) == tokenize(text)[-16:]
    assert "its first 11 are dropped (truncating='pre')" in shown_texts(app)  # 26 words + <START>

    # The test set (20 reviews) at the default threshold 0.5: the run's own test accuracy.
    assert shown["Accuracy"] == f"{run.metrics['test_accuracy']:.2%}"
    scores = threshold_metrics(run.predictions, data.test.labels, 0.5)
    assert confusion_counts(app) == {
        ("neg", "neg"): scores["tn"],
        ("neg", "pos"): scores["fp"],
        ("pos", "neg"): scores["fn"],
        ("pos", "pos"): scores["tp"],
    }
    auc = roc_auc_score(data.test.labels, run.predictions)
    assert f"ROC curve: AUC {auc:.3f}" in chart_spec(app, "ROC curve")[1]
    mistakes, neighbours = (table.value for table in app.dataframe)
    for row in mistakes.itertuples():
        assert row.text == plain_text(data.test.texts[row[1]])  # the review's own text
        assert row[2] != ("pos" if run.predictions[row[1]] > 0.5 else "neg")  # wrong
        assert row.probability == probability_text(run.predictions[row[1]])
    assert list(neighbours.columns) == ["rank", "word", "id", "cosine"]
    assert neighbours["rank"].tolist() == list(range(1, 11))
    assert "great" not in neighbours["word"].tolist() and len(neighbours) == 10
    # The bidirectional run's curves are said to be its two directions.
    assert "as the forward direction reads them" in texts(app)


def set_test_accuracy(store: RunStore, run_id: str, accuracy: float) -> None:
    # In both files that hold it: a run whose files disagree is damaged.
    for name in ("metrics.json", "complete.json"):
        store.write_json(run_id, name, {**store.read_json(run_id, name), "test_accuracy": accuracy})


def test_a_model_at_chance_says_so_next_to_its_prediction(with_runs):
    store = RunStore()
    set_test_accuracy(store, with_runs.run_id, 0.508)  # the notebook preset after 2 epochs
    app = open_page(PAGE)
    (warning,) = [alert.value for alert in app.warning if "at chance" in alert.value]
    assert "its predictions mean nothing" in warning and "50.8%" in warning
    assert "seed preset" in warning
    set_test_accuracy(store, with_runs.run_id, 0.56)  # 6 points clear of chance
    assert not [alert for alert in open_page(PAGE).warning if "at chance" in alert.value]


def test_the_whole_of_a_confident_mistake_can_be_read(with_runs):
    data = load_imdb(num_words=100, path=with_runs.corpus)
    app = open_page(PAGE)
    mistakes = app.dataframe[0].value
    choice = widget(app, "selectbox", "predict_mistake")
    assert len(choice.options) == len(mistakes) > 1
    choice.set_value(1).run()
    index = int(mistakes["test review"].iloc[1])
    assert [element for element in app.get("html") if data.test.texts[index] in element.value]
    assert "<br" not in "".join(mistakes["text"])


def test_the_curves_caption_fits_a_model_without_an_rnn():
    mean = reading_caption(tiny_masked_config(**{"model.rnn_units": ""}))
    assert "no RNN" in mean and "forward" not in mean and "backward" not in mean
    one_way = reading_caption(tiny_masked_config(**{"model.bidirectional": "false"}))
    assert "backward" not in one_way


def test_empty_text_gives_a_message(with_runs):
    app = open_page(PAGE)
    widget(app, "text_area", "predict_text").set_value("").run()
    assert not app.exception, app.exception
    assert "No prediction: the text has no words" in texts(app)
    assert "Probability of positive" not in metrics(app)
    assert "Accuracy" in metrics(app)  # the test set still shows
    widget(app, "text_area", "predict_text").set_value(" ... !? ").run()
    assert "No prediction: the text has no words" in texts(app)


def test_a_one_megabyte_text_is_cut_with_a_note_and_predicted(with_runs):
    app = open_page(PAGE)
    text = "the film was great and the acting was superb " * 25_000  # 1,125,000 characters
    widget(app, "text_area", "predict_text").set_value(text).run(timeout=60)
    assert not app.exception, app.exception
    notes = shown_texts(app)
    assert f"The text was cut to its first {MAX_TEXT_CHARACTERS:,} characters" in notes
    assert "dropped (truncating='pre')" in notes
    assert 0 <= float(metrics(app)["Probability of positive"]) <= 1
    assert metrics(app)["Words read"] == "16"


def test_gradient_contributions_replace_occlusion(with_runs):
    app = open_page(PAGE)
    widget(app, "text_area", "predict_text").set_value("L'amour: great fun, good film").run()
    occlusion = token_view(app)
    widget(app, "toggle", "predict_gradient").set_value(True).run()
    assert not app.exception, app.exception
    gradient = token_view(app)
    assert gradient != occlusion
    assert shown_words(app) == ["l'amour", "great", "fun", "good", "film"]
    assert "l&#x27;amour" in gradient  # words are escaped into the markup
    assert "unknown to the model" in gradient  # l'amour is not in the tiny vocabulary


def test_the_threshold_changes_the_confusion_matrix(with_runs):
    app = open_page(PAGE)
    at_half = confusion_counts(app)
    widget(app, "slider", "predict_threshold").set_value(0.0).run()
    # Every probability is above 0: all 20 test reviews (10 per label) are called positive.
    assert confusion_counts(app) == {
        ("neg", "neg"): 0,
        ("neg", "pos"): 10,
        ("pos", "neg"): 0,
        ("pos", "pos"): 10,
    }
    assert confusion_counts(app) != at_half
    shown = metrics(app)
    assert (shown["Accuracy"], shown["Recall"], shown["Precision"]) == (
        "50.00%",
        "100.00%",
        "50.00%",
    )
    everything_positive = confusion_counts(app)
    assert confusion_counts(open_page(PAGE, predict_threshold="0.0")) == everything_positive  # URL


def test_the_picker_lists_only_complete_runs_of_these_reviews(with_runs):
    store = RunStore()
    incomplete_id = tiny_masked_config(**{"training.epochs": "2"}).run_id(
        load_imdb(num_words=100, path=with_runs.corpus).fingerprint
    )
    store.create(incomplete_id, tiny_masked_config(**{"training.epochs": "2"}).to_dict())
    failed_id = tiny_masked_config(**{"training.seed": "7"}).run_id(
        load_imdb(num_words=100, path=with_runs.corpus).fingerprint
    )
    store.create(failed_id, tiny_masked_config(**{"training.seed": "7"}).to_dict())
    store.mark_failed(failed_id, "out of memory")
    # A complete run whose id does not match its config on these reviews: other data.
    shutil.copytree(store.folder(with_runs.run_id), store.root / "0123456789abcdef")
    damaged = shutil.copytree(store.folder(with_runs.run_id), store.root / "fedcba9876543210")
    (damaged / "model.keras").unlink()
    assert {summary.status for summary in store.list_runs()} == {
        "complete",
        "incomplete",
        "failed",
        "damaged",
    }
    app = open_page(PAGE)
    picker = widget(app, "selectbox", "predict_run")
    assert [option.split(" · ")[-1] for option in picker.options] == [
        with_runs.run_id,
        with_runs.other_run_id,
    ]


def test_a_bad_or_unknown_run_id_in_the_url_falls_back(with_runs):
    # A path, an unknown id, text, nothing, upper case, a long value: the newest run each time.
    for value in ["../../etc/passwd", "0123456789abcdef", "not a run", "", "ABCDEF0123456789"]:
        app = open_page(PAGE, predict_run=value)
        assert widget(app, "selectbox", "predict_run").value == with_runs.run_id, value
        assert "Probability of positive" in metrics(app)
    app = open_page(PAGE, predict_run="x" * 5000)
    assert widget(app, "selectbox", "predict_run").value == with_runs.run_id


def test_a_run_id_in_the_url_picks_that_run(with_runs):
    app = open_page(PAGE, predict_run=with_runs.other_run_id)
    assert widget(app, "selectbox", "predict_run").value == with_runs.other_run_id
    other = RunStore().load(with_runs.other_run_id)
    assert metrics(app)["Accuracy"] == f"{other.metrics['test_accuracy']:.2%}"
    # The run's own label, as the select box writes it into the URL, picks it too.
    options = widget(app, "selectbox", "predict_run").options
    (label,) = [option for option in options if option.endswith(with_runs.other_run_id)]
    again = open_page(PAGE, predict_run=label)
    assert widget(again, "selectbox", "predict_run").value == with_runs.other_run_id


def test_an_incomplete_run_in_the_url_is_not_opened(with_runs):
    store = RunStore()
    (store.folder(with_runs.other_run_id) / COMPLETE_FILE).unlink()
    app = open_page(PAGE, predict_run=with_runs.other_run_id)
    picker = widget(app, "selectbox", "predict_run")
    assert picker.value == with_runs.run_id and len(picker.options) == 1


def test_with_no_run_the_page_says_how_to_train_one(trained, monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA", str(trained.corpus))
    app = open_page(PAGE)
    assert "No model is trained on these reviews yet" in texts(app)
    assert [link.proto.page for link in app.page_link] == ["train"]  # views/train.py
    assert not app.get("selectbox") and not app.metric


def test_the_vocabulary_page_shows_nearest_words_of_a_chosen_run(with_runs):
    app = open_page("views/vocabulary.py", word="great")
    choice = widget(app, "selectbox", "vocabulary_run")
    assert choice.value == with_runs.run_id  # the newest at first
    assert [option.split(" · ")[-1] for option in choice.options] == [
        with_runs.run_id,
        with_runs.other_run_id,
    ]
    assert f"embedding of run `{with_runs.run_id}`" in texts(app)
    (table,) = [table for table in app.dataframe if "cosine" in table.value]
    neighbours = table.value
    assert list(neighbours.columns) == ["rank", "word", "id", "cosine"] and len(neighbours) == 10
    assert neighbours["rank"].tolist() == list(range(1, 11))
    # The cosines are shown to as many decimals as tell every two different ones apart.
    shown_as = json.loads(table.proto.columns)["cosine"]["type_config"]["format"]
    cosines = neighbours["cosine"].unique()
    assert len({shown_as % cosine for cosine in cosines}) == len(cosines)
    # The URL picks the run, by its id.
    other = open_page("views/vocabulary.py", word="great", vocabulary_run=with_runs.other_run_id)
    assert widget(other, "selectbox", "vocabulary_run").value == with_runs.other_run_id
    assert f"embedding of run `{with_runs.other_run_id}`" in texts(other)
    app = open_page("views/vocabulary.py", word="zebra")
    assert "No neighbours: the model has no embedding for 'zebra'" in shown_texts(app)


def test_the_vocabulary_page_works_with_no_run(trained, monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA", str(trained.corpus))
    app = open_page("views/vocabulary.py", word="great")
    assert "Once a model is trained" in texts(app)
    assert not any("cosine" in table.value.columns for table in app.dataframe)
