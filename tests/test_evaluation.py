"""Evaluation: metrics and curves by hand, encoding as training pads, and explanations of a tiny
trained model."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from rnnkit import RunStore, TrainConfig, load_imdb, pad, preset, train
from rnnkit.data import ImdbData
from rnnkit.evaluation import (
    MAX_TEXT_CHARACTERS,
    accuracy_by_length,
    at_chance,
    confident_mistakes,
    distinguishing_decimals,
    encode_for_model,
    nearest_words,
    precision_recall_curve,
    predict_texts,
    prefix_predictions,
    probability_histogram,
    probability_text,
    readable_mistakes,
    roc_curve,
    threshold_metrics,
    token_contributions,
)
from rnnkit.vocabulary import Vocabulary
from tests.helpers import tiny_masked_config, tiny_reviews, write_archive

# --- scores -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accuracy", "chance"),
    [(0.508, True), (0.5, True), (0.46, True), (0.55, False), (0.449, False), (0.85, False)],
)
def test_a_test_accuracy_within_five_points_of_half_is_chance(accuracy, chance):
    assert at_chance(accuracy) is chance


@pytest.mark.parametrize(
    ("probability", "text"),
    [
        (0.508, "0.508"),
        (0.0004, "<0.001"),
        (0.0, "<0.001"),
        (0.001, "0.001"),
        (0.9996, ">0.999"),
        (1.0, ">0.999"),
        (0.9994, "0.999"),
    ],
)
def test_a_probability_never_shows_a_certainty_the_model_did_not_give(probability, text):
    assert probability_text(probability) == text


def test_cosines_get_the_decimals_that_tell_them_apart():
    assert distinguishing_decimals([0.9, 0.5, 0.1]) == 3  # the least
    assert distinguishing_decimals([0.99961, 0.99958, 0.99912]) == 5  # 0.9996 twice at 4
    assert distinguishing_decimals([0.9996, 0.9996, 0.5]) == 3  # equal values need none
    assert distinguishing_decimals([1 / 3, 1 / 3 + 1e-12]) == 8  # the most


def test_readable_mistakes_show_one_line_and_no_false_certainty():
    mistakes = pd.DataFrame(
        {
            "test review": [4],
            "true label": ["neg"],
            "probability": [0.99996],
            "confidence": [0.99996],
            "length": [12],
            "text": ["Loved it?<br /><br />No. Awful."],
        }
    )
    row = readable_mistakes(mistakes).iloc[0]
    assert (row["probability"], row["confidence"]) == (">0.999", ">0.999")
    assert row["text"] == "Loved it? No. Awful."
    assert mistakes["text"].iloc[0].startswith("Loved it?<br />")  # the report is kept


def test_threshold_metrics_on_six_reviews():
    probabilities = np.array([0.9, 0.8, 0.4, 0.6, 0.2, 0.5])
    labels = np.array([1, 1, 1, 0, 0, 0])
    result = threshold_metrics(probabilities, labels)
    # Above 0.5: 0.9, 0.8 (positive) and 0.6 (negative); 0.5 itself is not above.
    assert (result["tp"], result["fp"], result["tn"], result["fn"]) == (2, 1, 2, 1)
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(2 / 3)
    lower = threshold_metrics(probabilities, labels, threshold=0.3)  # 0.4 and 0.5 join
    assert (lower["tp"], lower["fp"], lower["tn"], lower["fn"]) == (3, 2, 1, 0)
    assert lower["precision"] == pytest.approx(3 / 5) and lower["recall"] == 1.0
    assert lower["f1"] == pytest.approx(2 * 0.6 / 1.6)


def test_threshold_metrics_where_scores_are_undefined_give_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nothing_positive = threshold_metrics(np.array([0.1, 0.2]), np.array([0, 0]))
    assert nothing_positive["accuracy"] == 1.0
    assert nothing_positive["precision"] == nothing_positive["recall"] == 0.0
    assert nothing_positive["f1"] == 0.0


def test_scores_refuse_bad_input():
    with pytest.raises(ValueError, match="one entry per review"):
        threshold_metrics(np.array([0.1, 0.2]), np.array([0]))
    with pytest.raises(ValueError, match="between 0 and 1"):
        threshold_metrics(np.array([1.5]), np.array([1]))
    with pytest.raises(ValueError, match=r"0 .* or 1"):
        threshold_metrics(np.array([0.5]), np.array([2]))
    with pytest.raises(ValueError, match="both labels"):
        roc_curve(np.array([0.1, 0.9]), np.array([1, 1]))


def test_roc_auc_of_perfect_reversed_and_a_small_case():
    labels = np.array([0, 0, 1, 1])
    _, perfect = roc_curve(np.array([0.1, 0.2, 0.8, 0.9]), labels)
    _, reversed_ranking = roc_curve(np.array([0.9, 0.8, 0.2, 0.1]), labels)
    assert perfect == 1.0 and reversed_ranking == 0.0
    # Of the 4 (positive, negative) pairs, 3 rank the positive higher: 0.35 < 0.4 is the one.
    curve, area = roc_curve(np.array([0.1, 0.4, 0.35, 0.8]), labels)
    assert area == pytest.approx(3 / 4)
    assert curve[["fpr", "tpr"]].to_numpy().tolist() == [
        [0.0, 0.0],
        [0.0, 0.5],
        [0.5, 0.5],
        [0.5, 1.0],
        [1.0, 1.0],
    ]
    assert np.isnan(curve["threshold"].iloc[0])  # nothing is predicted positive there
    assert curve["threshold"].iloc[1:].tolist() == [0.8, 0.4, 0.35, 0.1]


def test_average_precision_of_a_small_case():
    # By falling score: 0.8 pos (P 1, R 1/2), 0.4 neg, 0.35 pos (P 2/3, R 1), 0.1 neg.
    curve, average_precision = precision_recall_curve(
        np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])
    )
    assert average_precision == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert (curve["recall"].iloc[0], curve["precision"].iloc[0]) == (0.0, 1.0)
    assert np.isnan(curve["threshold"].iloc[0])
    assert curve["recall"].is_monotonic_increasing


def test_curves_are_thinned_to_500_points_keeping_both_ends():
    from sklearn import metrics

    generator = np.random.default_rng(0)
    labels = generator.integers(0, 2, 10_000)
    probabilities = np.clip(0.3 * labels + generator.uniform(0, 0.7, 10_000), 0, 1)
    full_curve = metrics.roc_curve(labels, probabilities, drop_intermediate=True)
    assert len(full_curve[0]) > 1000  # so the thinning has work to do
    curve, area = roc_curve(probabilities, labels)
    assert len(curve) <= 500
    assert curve.iloc[0][["fpr", "tpr"]].tolist() == [0.0, 0.0]
    assert curve.iloc[-1][["fpr", "tpr"]].tolist() == [1.0, 1.0]
    assert curve["fpr"].is_monotonic_increasing and curve["tpr"].is_monotonic_increasing
    assert area == pytest.approx(metrics.roc_auc_score(labels, probabilities))
    pr_curve, average_precision = precision_recall_curve(probabilities, labels)
    assert len(pr_curve) <= 500
    assert pr_curve.iloc[0][["recall", "precision"]].tolist() == [0.0, 1.0]
    assert pr_curve["recall"].iloc[-1] == 1.0
    assert pr_curve["precision"].iloc[-1] == pytest.approx(labels.mean())  # all called positive
    assert average_precision == pytest.approx(
        metrics.average_precision_score(labels, probabilities)
    )


def test_probability_histogram_counts_each_label_per_bin():
    histogram = probability_histogram(
        np.array([0.0, 0.05, 0.3, 0.55, 1.0, 0.9]), np.array([0, 0, 0, 1, 1, 1]), bins=4
    )
    assert len(histogram) == 8
    assert histogram["bin_start"].tolist()[:4] == [0.0, 0.25, 0.5, 0.75]
    negative = histogram[histogram["label"] == "neg"]["count"].tolist()
    positive = histogram[histogram["label"] == "pos"]["count"].tolist()
    assert negative == [2, 1, 0, 0]
    assert positive == [0, 0, 1, 2]  # 1.0 falls in the last bin


def test_accuracy_by_length_buckets():
    lengths = np.array([50, 150, 150, 250, 600, 1200])
    labels = np.array([1, 1, 0, 0, 1, 0])
    probabilities = np.array([0.9, 0.2, 0.1, 0.4, 0.7, 0.8])  # wrong: 150 (first), 1200
    table = accuracy_by_length(probabilities, labels, lengths, max_length=200)
    buckets = ["1-100", "101-200", "201-300", "301-500", "501-1000", "1001+"]
    assert table["bucket"].tolist() == buckets
    assert table["count"].tolist() == [1, 2, 1, 0, 1, 1]
    assert table["accuracy"].tolist()[:3] == [1.0, 0.5, 1.0]
    assert np.isnan(table["accuracy"].iloc[3])  # an empty bucket
    assert table["accuracy"].tolist()[4:] == [1.0, 0.0]
    assert table["truncated"].tolist() == [False, False, True, True, True, True]
    # max_length is always an edge: 250 reviews are whole, 251 and more lost tokens.
    custom = accuracy_by_length(
        probabilities, labels, np.array([50, 150, 250, 251, 600, 1200]), 250, buckets=[100]
    )
    assert custom["bucket"].tolist() == ["1-100", "101-250", "251+"]
    assert custom["count"].tolist() == [1, 2, 3]
    assert custom["truncated"].tolist() == [False, False, True]


def test_confident_mistakes_come_surest_first():
    probabilities = np.array([0.9, 0.2, 0.99, 0.01, 0.6, 0.3])
    labels = np.array([0, 1, 1, 1, 0, 0])
    mistakes = confident_mistakes(probabilities, labels)
    assert mistakes["index"].tolist() == [3, 0, 1, 4]
    assert mistakes["label"].tolist() == [1, 0, 1, 0]
    assert mistakes["confidence"].tolist() == pytest.approx([0.99, 0.9, 0.8, 0.6])
    assert mistakes["probability"].tolist() == pytest.approx([0.01, 0.9, 0.2, 0.6])
    assert confident_mistakes(probabilities, labels, top=2)["index"].tolist() == [3, 0]


# --- encoding a text --------------------------------------------------------------------------


@pytest.fixture
def vocab() -> Vocabulary:
    # ids: the 4, film 5, great 6, bad 7, then 8 to 11 (past num_words=10 from 10 on).
    words = ["the", "film", "great", "bad", "plot", "dull", "gem", "awful"]
    counts = np.arange(len(words), 0, -1)
    return Vocabulary(words, counts, counts, num_words=None)


def encoding_config(padding: str = "post", truncating: str = "pre") -> TrainConfig:
    return preset("seed").with_overrides(
        {
            "data.num_words": "10",
            "data.max_length": "5",
            "data.padding": padding,
            "data.truncating": truncating,
        }
    )


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
def test_encoding_pads_and_cuts_exactly_as_training(vocab, padding, truncating):
    config = encoding_config(padding, truncating)
    full = [1, 4, 5, 2, 6, 6, 7, 7]  # <START> the film <UNK> great great bad bad
    encoded = encode_for_model("The film was GREAT, great... bad bad!", vocab, config)
    assert encoded.ids.dtype == np.int32
    np.testing.assert_array_equal(encoded.ids, pad([full], 5, padding, truncating)[0])
    assert encoded.truncated and encoded.tokens_dropped == 3
    if truncating == "pre":  # the last 5 steps
        assert encoded.tokens == ["<UNK>", "great", "great", "bad", "bad"]
        assert encoded.words == ["was", "great", "great", "bad", "bad"]
        assert "first 3 are dropped" in encoded.note
    else:
        assert encoded.tokens == ["<START>", "the", "film", "<UNK>", "great"]
        assert encoded.words == ["<START>", "the", "film", "was", "great"]
        assert "last 3 are dropped" in encoded.note
    short = encode_for_model("great film", vocab, config)
    expected = [1, 6, 5, 0, 0] if padding == "post" else [0, 0, 1, 6, 5]
    assert short.ids.tolist() == expected == pad([[1, 6, 5]], 5, padding, truncating)[0].tolist()
    assert not short.truncated and short.tokens_dropped == 0 and short.note is None
    assert short.tokens == ["<START>", "great", "film"]
    assert short.steps.tolist() == ([0, 1, 2] if padding == "post" else [2, 3, 4])


def test_encoding_gives_ids_past_num_words_the_unknown_id(vocab):
    # "gem" (10) and "awful" (11) have no row in an embedding of num_words=10.
    encoded = encode_for_model("dull gem awful", vocab, encoding_config())
    assert encoded.ids.tolist() == [1, 9, 2, 2, 0]
    assert encoded.tokens == ["<START>", "dull", "<UNK>", "<UNK>"]


@pytest.mark.parametrize("text", ["", "   \n\t", "!!! ... ?"])
def test_a_text_without_words_is_refused(vocab, text):
    with pytest.raises(ValueError, match="no words"):
        encode_for_model(text, vocab, encoding_config())


def test_a_huge_text_is_cut_and_encoded_quickly(vocab):
    text = "bad " * 250_000 + "x"  # 1,000,001 characters; the cut loses the final "x"
    assert len(text) == MAX_TEXT_CHARACTERS + 1
    started = time.perf_counter()
    encoded = encode_for_model(text, vocab, encoding_config())
    assert time.perf_counter() - started < 3
    assert encoded.words == ["bad"] * 5
    assert encoded.tokens_dropped == 250_001 - 5
    assert "cut to its first 1,000,000 characters" in encoded.note


# --- a tiny trained model ---------------------------------------------------------------------


@dataclass(frozen=True)
class Trained:
    data: ImdbData
    config: TrainConfig
    model: object
    predictions: np.ndarray


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Trained:
    """One tiny model for every test here (seconds to train); its caches in its own folder."""
    folder = tmp_path_factory.mktemp("evaluation")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RNNKIT_CACHE_DIR", str(folder / "cache"))
        corpus = write_archive(folder / "corpus.tar.gz", tiny_reviews())
        data = load_imdb(num_words=100, path=corpus)
        run = train(tiny_masked_config(), data, RunStore(folder / "runs"))
    return Trained(data, tiny_masked_config(), run.model(), run.predictions)


def model_probabilities(model, rows: np.ndarray) -> np.ndarray:
    return model.predict(np.asarray(rows, dtype=np.int32), verbose=0)[:, 0]


def test_predict_texts_agrees_with_the_model_on_the_padded_ids(trained):
    texts = ["great fun, a gem", "dull and boring", "the plot was bad but the acting superb"]
    probabilities = predict_texts(trained.model, trained.data.vocab, trained.config, texts)
    rows = [encode_for_model(text, trained.data.vocab, trained.config).ids for text in texts]
    assert probabilities.shape == (3,)
    np.testing.assert_allclose(probabilities, model_probabilities(trained.model, rows), atol=1e-6)
    # The test reviews' texts, encoded again, give the run's stored test predictions.
    again = predict_texts(
        trained.model, trained.data.vocab, trained.config, list(trained.data.test.texts)
    )
    np.testing.assert_allclose(again, trained.predictions, atol=1e-5)
    assert predict_texts(trained.model, trained.data.vocab, trained.config, []).shape == (0,)
    with pytest.raises(ValueError, match=r"text 1: .*no words"):
        predict_texts(trained.model, trained.data.vocab, trained.config, ["good", "..."])


def test_occlusion_is_the_probability_change_when_a_word_becomes_unknown(trained):
    text = "the film was great and the plot superb"
    table = token_contributions(trained.model, trained.data.vocab, trained.config, text)
    assert table["word"].tolist() == text.split()
    assert table["position"].tolist() == list(range(1, 9))
    ids = encode_for_model(text, trained.data.vocab, trained.config).ids
    for position in (4, 8):  # "great" and "superb"
        row = table.iloc[position - 1]
        occluded = ids.copy()
        occluded[row["step"]] = 2
        whole, without = model_probabilities(trained.model, [ids, occluded])
        assert row["contribution"] == pytest.approx(whole - without, abs=1e-5)


def test_gradient_contributions_cover_each_real_token(trained):
    vocab, config = trained.data.vocab, trained.config
    short = token_contributions(trained.model, vocab, config, "a gem of a film", "gradient")
    assert short["word"].tolist() == ["a", "gem", "of", "a", "film"]
    assert short["step"].tolist() == [1, 2, 3, 4, 5]  # post padding: <START> at step 0
    assert np.isfinite(short["contribution"]).all() and (short["contribution"] != 0).any()
    # 20 words + <START> in 16 steps: the first 5 steps go, <START> with them.
    long_text = " ".join(f"word{number}" for number in range(20))
    long = token_contributions(trained.model, vocab, config, long_text, "gradient")
    assert long["word"].tolist() == [f"word{number}" for number in range(4, 20)]
    assert long["id"].tolist() == [2] * 16
    with pytest.raises(ValueError, match="method"):
        token_contributions(trained.model, vocab, config, "good", "saliency")


def test_gradient_contributions_respect_the_padding_mask(trained):
    from rnnkit.model import build_model

    # Pre padding with a mask: the padding steps the mask hides must stay hidden in the
    # gradient pass, or its probability would differ from the model's (which raises).
    config = tiny_masked_config(**{"data.padding": "pre", "model.mask_padding": "true"})
    table = token_contributions(
        build_model(config), trained.data.vocab, config, "great fun", "gradient"
    )
    assert table["word"].tolist() == ["great", "fun"]
    assert table["step"].tolist() == [14, 15]


def test_gradient_contributions_of_the_mean_of_word_vectors(trained):
    from rnnkit.model import build_model

    # Without an RNN, p = sigmoid(mean(vectors) . kernel + bias), so a word's gradient x input
    # is p (1 - p) (vector . kernel) / n over the n real tokens, the padding left out.
    config = tiny_masked_config(**{"model.rnn_units": "none", "model.dense_units": "none"})
    model = build_model(config)
    vocab = trained.data.vocab
    table = token_contributions(model, vocab, config, "great fun", "gradient")
    ids = encode_for_model("great fun", vocab, config).ids
    real = ids[ids != 0]  # <START>, great, fun
    probability = model_probabilities(model, [ids])[0]
    vectors = model.get_layer("embedding").get_weights()[0]
    kernel = model.get_layer("probability").get_weights()[0][:, 0]
    expected = probability * (1 - probability) * (vectors[real[1:]] @ kernel) / len(real)
    assert table["word"].tolist() == ["great", "fun"]
    np.testing.assert_allclose(table["contribution"], expected, rtol=1e-4, atol=1e-7)


def test_prefix_predictions_end_with_the_whole_text(trained):
    text = "the acting was dull but the story great fun"
    vocab, config = trained.data.vocab, trained.config
    table = prefix_predictions(trained.model, vocab, config, text)
    (whole,) = predict_texts(trained.model, vocab, config, [text])
    assert table["word"].tolist() == text.split()
    assert table["probability_after_prefix"].iloc[-1] == pytest.approx(whole, abs=1e-6)
    assert table["probability_from_suffix"].iloc[0] == pytest.approx(whole, abs=1e-6)
    (after_three,) = predict_texts(trained.model, vocab, config, ["the acting was"])
    assert table["probability_after_prefix"].iloc[2] == pytest.approx(after_three, abs=1e-6)


def test_a_loaded_model_reads_texts_of_any_length_without_tracing_again(trained, tmp_path):
    from rnnkit import evaluation

    # The run's model loaded as the Predictions page loads it: its functions traced at load.
    store = RunStore(tmp_path / "runs")
    run = train(trained.config, trained.data, store)
    model = evaluation.load_model(run)
    compiled = evaluation._compiled(model)
    # The forward pass is the fused reader's, never traced; the gradient is traced at load.
    assert compiled.reader is not None
    traced = (
        compiled.forward.experimental_get_tracing_count(),
        compiled.gradient.experimental_get_tracing_count(),
    )
    assert traced == (0, 1)
    vocab, config = trained.data.vocab, trained.config
    for text in ("great", "the plot was dull", " ".join(["superb fun"] * 20)):
        for method in ("occlusion", "gradient"):
            reading = evaluation.read_text(model, vocab, config, text, method)
            ids = encode_for_model(text, vocab, config).ids
            assert reading.probability == pytest.approx(
                model_probabilities(model, [ids])[0], abs=1e-6
            )
    assert compiled.forward.experimental_get_tracing_count() == 0
    assert compiled.gradient.experimental_get_tracing_count() == 1


def test_a_model_read_once_is_freed_when_dropped(trained):
    import gc
    import weakref

    from rnnkit.model import build_model

    # Its compiled functions refer to the model: kept anywhere but on the model, they would
    # keep every model a server ever loaded.
    model = build_model(trained.config)
    predict_texts(model, trained.data.vocab, trained.config, ["great fun"])
    dropped = weakref.ref(model)
    del model
    gc.collect()
    assert dropped() is None


def test_rows_of_mixed_lengths_come_back_in_their_order(trained):
    from rnnkit.evaluation import _predict

    # Under a mask, rows go through in length order with their all-padding columns left out;
    # every probability must still land on its own row, for either padding side.
    rows = [
        encode_for_model(text, trained.data.vocab, trained.config).ids
        for text in (
            "a gem of a film, great fun",
            "dull",
            "the acting was bad",
            "superb",
            "",
        )
        if text
    ] + [np.zeros(16, np.int32)]
    rows = np.stack(rows)
    np.testing.assert_allclose(
        _predict(trained.model, rows), model_probabilities(trained.model, rows), atol=1e-6
    )
    pre = np.stack([np.roll(row, 16 - np.count_nonzero(row)) for row in rows])  # pre padding
    np.testing.assert_allclose(
        _predict(trained.model, pre), model_probabilities(trained.model, pre), atol=1e-6
    )


def test_nearest_words_in_the_trained_embedding(trained):
    vocab = trained.data.vocab
    table = nearest_words(trained.model, vocab, "great", k=5)
    assert len(table) == 5
    assert "great" not in table["word"].tolist()
    assert table["cosine"].is_monotonic_decreasing
    assert ((table["cosine"] >= -1) & (table["cosine"] <= 1)).all()
    assert (table["id"] > 3).all() and (table["id"] < 100).all()
    embeddings = trained.model.get_layer("embedding").get_weights()[0]
    great, first = embeddings[vocab.word_to_id("great")], embeddings[table["id"].iloc[0]]
    cosine = great @ first / (np.linalg.norm(great) * np.linalg.norm(first))
    assert table["cosine"].iloc[0] == pytest.approx(cosine, abs=1e-5)
    with pytest.raises(ValueError, match="'flibbertigibbet'"):
        nearest_words(trained.model, vocab, "flibbertigibbet")
    with pytest.raises(ValueError, match="'<UNK>'"):
        nearest_words(trained.model, vocab, "<UNK>")


def test_nearest_words_from_the_stored_matrix_match_the_model(trained, tmp_path):
    from rnnkit.runs import RunError

    matrix = trained.model.get_layer("embedding").get_weights()[0]
    from_model = nearest_words(trained.model, trained.data.vocab, "great", k=5)
    from_matrix = nearest_words(np.asarray(matrix), trained.data.vocab, "great", k=5)
    assert from_matrix.equals(from_model)
    path = tmp_path / "model.keras"
    trained.model.save(path)
    from rnnkit.runs import Run

    run = Run("0123456789abcdef", tmp_path, {}, [], {}, np.zeros(1), {}, {}, {})
    np.testing.assert_array_equal(run.embedding(), matrix)  # read without Keras
    path.write_bytes(b"not a zip")
    with pytest.raises(RunError, match="embedding of run 0123456789abcdef cannot be read"):
        run.embedding()
